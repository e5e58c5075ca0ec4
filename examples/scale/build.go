package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/internal/benchcity"
	"github.com/fieldsync/fieldsync/server/store"
)

// buildInfo is what was built into a data directory, kept beside the
// store as build.json so that a later run can reuse it and report it.
type buildInfo struct {
	Warnings   int       `json:"warnings"`
	Devices    int       `json:"devices"`
	Attempts   int       `json:"attempts"`
	Reviews    int       `json:"reviews"`
	LogEntries uint64    `json:"log_entries"`
	Seconds    float64   `json:"build_seconds"`
	FileBytes  int64     `json:"file_bytes"`
	Built      time.Time `json:"built"`
}

// buildOrReuse returns what dir holds: the store of an earlier run with
// the same -warnings and -devices, or one it builds there now.
func buildOrReuse(ctx context.Context, cfg *config, dir string, stderr io.Writer) (*buildInfo, error) {
	infoFile := filepath.Join(dir, "build.json")
	storeDir := filepath.Join(dir, "store")
	if data, err := os.ReadFile(infoFile); err == nil {
		var b buildInfo
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("%s: %w", infoFile, err)
		}
		if b.Warnings != cfg.warnings || b.Devices != cfg.devices {
			return nil, fmt.Errorf("%s holds a store of %d warnings and %d devices, not %d and %d: give another -data", dir, b.Warnings, b.Devices, cfg.warnings, cfg.devices)
		}
		fmt.Fprintf(stderr, "scale: reusing the store built %s in %s (earlier runs' pushes are in it too)\n", b.Built.Format(time.RFC3339), storeDir)
		return &b, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if _, err := os.Stat(storeDir); err == nil {
		return nil, fmt.Errorf("%s holds a store but no build.json (a build cut short?): remove it or give another -data", storeDir)
	}
	b, err := build(ctx, cfg, storeDir, stderr)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, err
	}
	return b, os.WriteFile(infoFile, append(data, '\n'), 0o600)
}

// build makes the city in storeDir as BenchmarkQueriesAt1M does, then
// adds cadres until it has cfg.devices devices, and closes the store.
func build(ctx context.Context, cfg *config, storeDir string, stderr io.Writer) (*buildInfo, error) {
	start := time.Now()
	fmt.Fprintf(stderr, "scale: building a store of %d warnings in %s (fsync off) ...\n", cfg.warnings, storeDir)
	clock := benchcity.NewClock(time.Now())
	c, err := benchcity.New(ctx, storeDir, benchcity.Options{NoSync: true, Now: clock.Now})
	if err != nil {
		return nil, err
	}
	defer func() { c.Store.Close() }()
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "scale: "+format+"\n", args...) }
	ld, err := c.LoadWarnings(ctx, clock, cfg.warnings, logf)
	if err != nil {
		return nil, err
	}
	// The cadres sign in at the real time, as people would today.
	if err := c.Reopen(store.Options{NoSync: true}); err != nil {
		return nil, err
	}
	if err := c.AddCadres(ctx, cfg.devices); err != nil {
		return nil, err
	}
	seq, err := c.Store.LastSeq()
	if err != nil {
		return nil, err
	}
	if err := c.Store.Close(); err != nil {
		return nil, err
	}
	b := &buildInfo{Warnings: ld.Warnings, Devices: c.Devices(), Attempts: ld.Attempts, Reviews: ld.Reviews, LogEntries: seq,
		Seconds: time.Since(start).Seconds(), Built: time.Now().UTC()}
	if fi, err := os.Stat(filepath.Join(storeDir, store.DBFile)); err == nil {
		b.FileBytes = fi.Size()
	}
	fmt.Fprintf(stderr, "scale: built %d warnings, %d attempts, %d approvals, %d devices (log %d entries, file %.0f MiB) in %v\n",
		b.Warnings, b.Attempts, b.Reviews, b.Devices, seq, float64(b.FileBytes)/(1<<20), time.Since(start).Round(time.Second))
	return b, nil
}

// buildFieldsyncd builds the server into bin.
func buildFieldsyncd(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/fieldsync/fieldsync/server/cmd/fieldsyncd").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build fieldsyncd: %w\n%s", err, out)
	}
	return nil
}
