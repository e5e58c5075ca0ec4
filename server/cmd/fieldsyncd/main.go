// Command fieldsyncd is fieldsync's server: `init` creates a store, `serve`
// serves it, `demo` serves a ready demo city from a temporary store.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/server/store/storefile"
)

// ownProcess is set when fieldsyncd runs as its own program, not inside a
// test's process: only then does serve make process-wide settings (the
// runtime's memory limit).
var ownProcess bool

func main() {
	ownProcess = true
	// A SIGHUP (a certificate renewal hook, systemctl reload) may come
	// before serve is ready to reload anything: it is held, not fatal.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hangups = hup
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fieldsyncd:", err)
	}
	stop()
	os.Exit(exitCode(err))
}

// exitCode is the process's exit status after run: 0 when it succeeded
// or printed the help that was asked for.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

const usage = `usage: fieldsyncd <command> [flags]

commands:
  init    create a store and its admin user
  serve   serve a store until SIGINT or SIGTERM
  demo    serve a ready demo city from a temporary store
  check   check a stopped store's consistency
  backup  download a hot backup of a running server into a file
  restore restore a backup file into a store directory (server stopped)
  keys    rotate or list a stopped store's signing keys
  compact compact a stopped store's indexes and file
  province the nginx configuration of a province's cities behind one address
  cluster init, status, add or remove the nodes of a running cluster

Run "fieldsyncd <command> -h" for the flags of each.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return commands{
		usage: usage,
		run: map[string]command{
			"init":     runInit,
			"serve":    runServe,
			"demo":     runDemo,
			"check":    withoutContext(runCheck),
			"backup":   runBackup,
			"restore":  runRestore,
			"keys":     runKeys,
			"compact":  runCompact,
			"province": runProvince,
			"cluster":  runCluster,
		},
	}.dispatch(ctx, args, stdout, stderr)
}

// command is one subcommand: args after its name, output on stdout and
// stderr.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// withoutContext is a command that needs no context (it works on a
// stopped store and ends on its own).
func withoutContext(run func(args []string, stdout, stderr io.Writer) error) command {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) error {
		return run(args, stdout, stderr)
	}
}

// commands is a level of subcommands: fieldsyncd's, or those of one of
// its commands ("keys rotate").
type commands struct {
	// usage lists the commands; help prints it on stdout, a missing or
	// unknown command on stderr.
	usage string
	// of names the parent command in errors ("keys"); empty at the top.
	of  string
	run map[string]command
}

// dispatch runs the command args[0] names with the rest of args.
func (c commands) dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	prefix := ""
	if c.of != "" {
		prefix = c.of + ": "
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, c.usage)
		return errors.New(prefix + "no command given")
	}
	if run, ok := c.run[args[0]]; ok {
		return run(ctx, args[1:], stdout, stderr)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, c.usage)
		return nil
	}
	fmt.Fprint(stderr, c.usage)
	return fmt.Errorf("%sunknown command %q", prefix, args[0])
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "store directory (required)")
	pwFile := fs.String("admin-password-file", "", "file holding the admin password; without it a random one is printed once")
	var root rootUnit
	root.code, root.name = "4110", "Xuchang"
	fs.Var(&root, "root-unit", "root unit as `CODE NAME` (a 4-digit city code and its name)")
	if err := parseOnly(fs, joinRootUnit(args), "data"); err != nil {
		return err
	}
	if root.name == "" {
		return errors.New("--root-unit needs a code and a name")
	}
	if err := refuseNode(*dataDir, "make its admin with `fieldsyncd cluster init` against the running nodes"); err != nil {
		return err
	}
	password, printed := "", false
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("read admin password: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	} else {
		password, printed = randomPassword(), true
	}
	st, err := store.Open(*dataDir, store.Options{Create: true})
	if err != nil {
		return err
	}
	defer st.Close()
	admin, err := st.UserByUsername(app.AdminUsername)
	if err != nil {
		return err
	}
	if admin != nil && printed {
		return errors.New("this store is already initialized; give --admin-password-file to reset the admin password")
	}
	if err := app.Bootstrap(ctx, st, root.code, root.name, password); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialized %s with root unit %s %s\n", *dataDir, root.code, root.name)
	if printed {
		fmt.Fprintf(stdout, "admin password (shown once): %s\n", password)
	}
	return nil
}

// rootUnit parses "--root-unit CODE NAME" given as one or two arguments.
type rootUnit struct{ code, name string }

func (r *rootUnit) String() string { return strings.TrimSpace(r.code + " " + r.name) }

func (r *rootUnit) Set(v string) error {
	code, name, _ := strings.Cut(strings.TrimSpace(v), " ")
	r.code, r.name = code, strings.TrimSpace(name)
	return nil
}

// joinRootUnit lets "--root-unit 4110 Xuchang" be written as two arguments,
// as the protocol's command line shows, by joining the name to the code.
func joinRootUnit(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a == "--root-unit" || a == "-root-unit") && i+2 < len(args) && !strings.HasPrefix(args[i+2], "-") && !strings.Contains(args[i+1], " ") {
			out = append(out, a, args[i+1]+" "+args[i+2])
			i += 2
			continue
		}
		out = append(out, a)
	}
	return out
}

func randomPassword() string {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", "", "store directory (required; the server must be stopped)")
	if err := parseOnly(fs, args, "data"); err != nil {
		return err
	}
	rep, err := storefile.Check(*dataDir)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	fmt.Fprintf(stdout, "schema version %d (this fieldsyncd: %d)\n", rep.Schema, store.SchemaVersion)
	fmt.Fprintf(stdout, "%d log entries, %d warnings, %d problems\n", rep.LogEntries, rep.Warnings, len(rep.Problems))
	if len(rep.Problems) > 0 {
		return fmt.Errorf("the store at %s has %d problems", *dataDir, len(rep.Problems))
	}
	return nil
}

// parseOnly parses flags, refuses arguments beside them, and refuses an
// empty value for each flag named in required.
func parseOnly(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	return nil
}
