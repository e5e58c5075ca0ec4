// Package procstatus reads a process's memory as Linux counts it in
// /proc/PID/status: what the memory targets are measured in.
package procstatus

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident memory, in bytes.
type Memory struct {
	// RSS (VmRSS) is all of it: anonymous and file pages.
	RSS uint64
	// Peak (VmHWM) is RSS's high-water mark since the process started.
	Peak uint64
	// Anon (RssAnon) is anonymous pages: the Go heap, stacks.
	Anon uint64
	// File (RssFile) is file pages, here mostly bbolt's memory-mapped
	// store: page cache the kernel can drop, counted once touched.
	File uint64
}

// Read reads /proc/PID/status; pid 0 is this process.
func Read(pid int) (Memory, error) {
	var m Memory
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			m.RSS = kb << 10
		case "VmHWM":
			m.Peak = kb << 10
		case "RssAnon":
			m.Anon = kb << 10
		case "RssFile":
			m.File = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}
