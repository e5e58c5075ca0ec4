// Command etcdload puts etcd beside fieldsync's load program: the same
// shape of load against one etcd node on this machine, so docs/BENCHMARKS.md
// can say what a durable log on this disk does (issue 17).
//
// It starts the etcd binary it finds (Debian's etcd-server package; `make
// bench-deps` installs it) as a child process on 127.0.0.1 with free ports
// and a temporary data directory, one node with its defaults: the WAL is
// fsynced before every answer. Then -clients clients loop for -duration,
// as fieldsync's phones do (push, then pull):
//
//   - one transaction of -puts puts of -value-bytes bytes each, to keys of
//     the client's own prefix, cycling over -keys keys (fieldsync's load
//     gives each phone 500 warnings and records attempts on them in turn);
//   - then one read, as a pull of changes (-read changes, the default): a
//     range over the client's prefix with min_mod_revision just above the
//     revision of the client's previous read, so it returns what changed
//     since, the transaction just committed. etcd filters by revision after
//     reading every key of the range, so this read costs the prefix's -keys
//     keys, not the changes; -read written ranges over the keys just
//     written instead, the cost of a read that knows what changed.
//
// It prints records/s (puts acknowledged), transaction and read latency,
// etcd's CPU (from /proc) per record and etcd's version, in the load
// program's format. It removes the data directory and stops etcd at the
// end; the kernel kills etcd if this program dies first.
//
//	go run .                        # defaults: 200 clients, 20 s
//	go run . -read written          # read back the keys just written instead
//
// This directory is its own Go module, so the main module does not take in
// etcd's client and its dependencies; `make test` and `go build ./...` at the
// repository's root do not enter it, `make bench` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "etcdload:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	etcd       string
	clients    int
	duration   time.Duration
	puts       int
	valueBytes int
	keys       int
	read       string
}

// Reads a client can do after each transaction.
const (
	readChanges = "changes"
	readWritten = "written"
)

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("etcdload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.etcd, "etcd", "etcd", "the etcd server binary (looked up in PATH)")
	fs.IntVar(&c.clients, "clients", 200, "clients committing at once, as the load program's phones")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long the clients write and read")
	fs.IntVar(&c.puts, "puts", 20, "puts per transaction, as the load program's ops per push")
	fs.IntVar(&c.valueBytes, "value-bytes", 300, "bytes of each put's value")
	fs.IntVar(&c.keys, "keys", 500, "keys of each client, written in turn (the load program's warnings per phone)")
	fs.StringVar(&c.read, "read", readChanges, "the read after each transaction: changes (range over the client's prefix above its last seen revision) or written (range over the keys just written)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.clients < 1 || c.clients > 5000:
		return nil, errors.New("-clients must be between 1 and 5000")
	case c.duration <= 0 || c.duration > time.Hour:
		return nil, errors.New("-duration must be positive and at most an hour")
	case c.puts < 1 || c.puts > 128:
		return nil, errors.New("-puts must be between 1 and 128 (etcd's default --max-txn-ops)")
	case c.valueBytes < 8 || c.valueBytes > 64<<10:
		return nil, errors.New("-value-bytes must be between 8 and 65536")
	case c.keys < c.puts || c.keys > 1_000_000:
		return nil, errors.New("-keys must be at least -puts and at most 1000000")
	case c.read != readChanges && c.read != readWritten:
		return nil, fmt.Errorf("-read must be %s or %s", readChanges, readWritten)
	}
	return c, nil
}

// run starts etcd, loads it and prints the figures.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(cfg.etcd)
	if err != nil {
		return fmt.Errorf("no etcd binary (%w): make bench-deps installs Debian's etcd-server", err)
	}
	srv, err := startEtcd(ctx, bin, stderr)
	if err != nil {
		return err
	}
	defer srv.stop()
	fmt.Fprintf(stdout, "etcd load: %d clients, txns of %d puts of %d B, then a read of %s, %v; etcd %s (%s), one node, WAL fsynced before every answer; GOMAXPROCS %d, %s\n",
		cfg.clients, cfg.puts, cfg.valueBytes, cfg.read, cfg.duration, srv.version, bin, runtime.GOMAXPROCS(0), runtime.Version())
	fmt.Fprintf(stderr, "etcd load: %d clients for %v ...\n", cfg.clients, cfg.duration)
	res, err := runLoad(ctx, cfg, srv)
	if err != nil {
		return err
	}
	res.print(stdout)
	return nil
}
