package procstatus

import (
	"os"
	"testing"
)

// This process's memory reads as Linux counts it: something resident,
// anonymous pages among it, and a peak no lower than now.
func TestRead_Self(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	for _, pid := range []int{0, os.Getpid()} {
		m, err := Read(pid)
		if err != nil {
			t.Fatal(err)
		}
		if m.RSS == 0 || m.Anon == 0 || m.Peak < m.RSS || m.Anon+m.File > m.RSS+(1<<20) {
			t.Errorf("pid %d: implausible memory %+v", pid, m)
		}
	}
	if _, err := Read(-1); err == nil {
		t.Error("pid -1 read without an error")
	}
}
