// Package cli runs the example programs' commands the same way: until
// done or interrupted, with their errors on stderr and a failing exit
// status.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// Run is one program's command: args without the program name, its output
// on stdout and stderr. It returns flag.ErrHelp after printing its usage.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs run with a context that ends at SIGINT or SIGTERM, prints its
// error as "name: error" and exits 1 when it fails; help asked for with
// -h is no failure.
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Command is a Run whose flags parse into a C before the work starts, so
// each program writes its flags and its work, and none repeats the glue.
func Command[C any](parse func(args []string, stderr io.Writer) (C, error), work func(ctx context.Context, c C, stdout, stderr io.Writer) error) Run {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		c, err := parse(args, stderr)
		if err != nil {
			return err
		}
		return work(ctx, c, stdout, stderr)
	}
}

// ParseAll parses args into fs and refuses arguments left over: the
// programs take flags only.
func ParseAll(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// LoopbackAddr refuses an address other than 127.0.0.1:PORT for flag
// name: what the programs serve (pprof, a shaped link) is for this
// machine only.
func LoopbackAddr(name, addr string) error {
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		return fmt.Errorf("-%s must be a 127.0.0.1:PORT address", name)
	}
	return nil
}
