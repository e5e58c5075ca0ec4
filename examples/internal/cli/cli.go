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
