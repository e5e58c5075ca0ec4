package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/examples/internal/machine"
	"github.com/fieldsync/fieldsync/internal/procstatus"
)

// goHeap is the server's Go heap as its /metrics says (the Go collector's
// go_memstats_*): in use, idle but not yet returned to the OS (still
// anonymous resident memory, or at least counted in it until returned),
// and everything the runtime took from the OS.
type goHeap struct {
	inuse, idleKept, sys uint64
}

// meter samples the server child's memory through each phase.
type meter struct {
	pid        int
	metricsURL string
	storeFile  string
	every      time.Duration

	mu       sync.Mutex
	anonPeak uint64
	stop     func()
	started  time.Time
}

// phaseRow is one phase's line of the report.
type phaseRow struct {
	name     string
	took     time.Duration
	end      procstatus.Memory
	anonPeak uint64
	heap     goHeap
	fileSize int64
	loadAvg  string
}

// begin starts sampling a new phase.
func (m *meter) begin() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.mu.Lock()
	m.anonPeak, m.started = 0, time.Now()
	m.mu.Unlock()
	m.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		t := time.NewTicker(m.every)
		defer t.Stop()
		for {
			m.observe()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (m *meter) observe() {
	s, err := procstatus.Read(m.pid)
	if err != nil {
		return
	}
	m.mu.Lock()
	m.anonPeak = max(m.anonPeak, s.Anon)
	m.mu.Unlock()
}

// end stops sampling and returns the phase's row.
func (m *meter) end(ctx context.Context, name string) (phaseRow, error) {
	m.stop()
	m.observe()
	s, err := procstatus.Read(m.pid)
	if err != nil {
		return phaseRow{}, fmt.Errorf("the server's memory: %w", err)
	}
	m.mu.Lock()
	r := phaseRow{name: name, took: time.Since(m.started), end: s, anonPeak: max(m.anonPeak, s.Anon), loadAvg: machine.LoadAverage()}
	m.mu.Unlock()
	if r.heap, err = readHeap(ctx, m.metricsURL); err != nil {
		return r, err
	}
	if fi, err := os.Stat(m.storeFile); err == nil {
		r.fileSize = fi.Size()
	}
	return r, nil
}

// readHeap scrapes the server's /metrics. The server listens on loopback
// without a metrics-token-file, so /metrics needs no token
// (docs/OPERATIONS.md).
func readHeap(ctx context.Context, url string) (goHeap, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return goHeap{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return goHeap{}, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return goHeap{}, fmt.Errorf("metrics: %s", resp.Status)
	}
	vals := map[string]uint64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "go_memstats_") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			vals[name] = uint64(f)
		}
	}
	if err := sc.Err(); err != nil {
		return goHeap{}, fmt.Errorf("metrics: %w", err)
	}
	idle, released := vals["go_memstats_heap_idle_bytes"], vals["go_memstats_heap_released_bytes"]
	h := goHeap{inuse: vals["go_memstats_heap_inuse_bytes"], sys: vals["go_memstats_sys_bytes"]}
	if idle > released {
		h.idleKept = idle - released
	}
	return h, nil
}
