package servertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// BuildFieldsyncd builds fieldsyncd into a temporary directory of the test,
// for tests that run it as a child process (the crash tests kill it, the
// province test puts two behind nginx). It is built with the race detector
// when the test binary has it, so its packages come from the build cache
// the test's own build filled, and a child under test is race-checked too.
// The build takes as long as the machine needs; only the test binary's
// -timeout bounds it.
func BuildFieldsyncd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fieldsyncd")
	args := []string{"build", "-o", bin}
	if raceBuild {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(t.Context(), goTool(t), append(args, "github.com/fieldsync/fieldsync/server/cmd/fieldsyncd")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build fieldsyncd: %v\n%s", err, out)
	}
	return bin
}

// goTool is the go command of the toolchain running the test.
func goTool(t testing.TB) string {
	t.Helper()
	//lint:ignore SA1019 the test runs where it was built, so GOROOT is meaningful.
	path := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	// go test puts its own GOROOT/bin first on PATH.
	path, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build fieldsyncd: %v", err)
	}
	return path
}
