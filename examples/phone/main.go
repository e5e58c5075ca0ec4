// Command phone is a village cadre's (or a township lead's) phone on the
// command line: the real client SDK, with its sealed local store, outbox
// and sync, driven one command at a time. It shows what the app on a phone
// without signal does: work is recorded at once and sent when a sync can
// reach the server.
//
//	go run ./server/cmd/fieldsyncd demo        # a demo city; prints logins
//	go run ./examples/phone -server http://127.0.0.1:8080 -dir ./phone-data login a1
//	go run ./examples/phone -dir ./phone-data sync
//	go run ./examples/phone -dir ./phone-data list -status assigned,in_progress
//	go run ./examples/phone -dir ./phone-data offline on     # no signal from now on
//	go run ./examples/phone -dir ./phone-data record 0199c3 -method visit -outcome dissuaded -reached -notes "上门劝阻"
//	go run ./examples/phone -dir ./phone-data sync           # refused: offline
//	go run ./examples/phone -dir ./phone-data offline off
//	go run ./examples/phone -dir ./phone-data sync
//	go run ./examples/phone -dir ./phone-data show 0199c3
//
// Warning and op ids may be given by any unique prefix; list shows the
// shortest unique one. Times are Beijing time (UTC+8), as in the console,
// whatever the machine's zone.
//
// The folder holds the SDK's store (sdk/), the settings (phone.json: the
// server, the offline switch) and demo.key, the key that seals the store.
// demo.key is for this demo only: a real app never writes its key to a
// file; it keeps it in the platform keystore (Android Keystore, iOS
// Keychain) and passes it to the SDK.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/fieldsync/fieldsync/examples/internal/cli"
)

func main() { cli.Main("phone", run) }

// stdin is where login reads a password from when -password is not given.
var stdin io.Reader = os.Stdin

// command is one subcommand.
type command struct {
	args  string
	help  string
	run   func(ctx context.Context, p *phone, args []string) error
	noSDK bool
}

// commands is filled by init: the commands refer to it for their usage.
var commands map[string]command

func init() {
	commands = map[string]command{
		"login":     {args: "USER [-password P]", help: "sign in (asks for the password)", run: cmdLogin},
		"logout":    {help: "sign out; unsent work stays", run: cmdLogout},
		"sync":      {help: "send the outbox, then pull the changes", run: cmdSync},
		"list":      {args: "[-status s,s] [-overdue] [-risk r] [-text t] [-pending]", help: "the warnings on the phone, most urgent first", run: cmdList},
		"show":      {args: "ID", help: "a warning: fields, attempts, return reason, escalations, reviews, flags, ops", run: cmdShow},
		"record":    {args: "ID -method m -outcome o [-reached] [-notes n] [-loss-fen n] [-photo file]...", help: "record a dissuasion attempt", run: cmdRecord},
		"review":    {args: "ID approve|return [-comment c]", help: "review the work on a warning (leads)", run: cmdReview},
		"assign":    {args: "ID USERNAME", help: "give a warning to a village cadre (leads)", run: cmdAssign},
		"dispatch":  {args: "ID UNIT", help: "send a warning down to a unit, by code or name (leads)", run: cmdDispatch},
		"escalate":  {args: "ID -reason r", help: "ask for help with a warning", run: cmdEscalate},
		"answer":    {args: "ID -answer a", help: "answer a warning's requests for help (county and center)", run: cmdAnswer},
		"rejected":  {help: "ops the server refused, with why", run: cmdRejected},
		"dismiss":   {args: "OPID", help: "forget a rejected op", run: cmdDismiss},
		"directory": {help: "units and cadres in scope (leads)", run: cmdDirectory},
		"offline":   {args: "[on|off]", help: "the no-signal switch: when on, nothing touches the network", run: cmdOffline, noSDK: true},
		"status":    {help: "who, where, and what waits to be sent", run: cmdStatus},
	}
}

// run is the whole program: global flags, then one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("phone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "fieldsync server URL, with the city's path behind a province's proxy (https://province.example/4110), or the comma-separated URLs of a city's cluster nodes, tried in turn; saved at login (default "+defaultServer+")")
	dir := fs.String("dir", "./phone-data", "this phone's folder")
	password := fs.String("password", "", "password for login; asked for when empty")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	name := fs.Arg(0)
	cmd, ok := commands[name]
	if !ok {
		fs.Usage()
		return fmt.Errorf("unknown command %q", name)
	}
	p, err := openPhone(*dir, *server, !cmd.noSDK)
	if err != nil {
		return err
	}
	defer p.close()
	p.stdout, p.stderr, p.password = stdout, stderr, *password
	return cmd.run(ctx, p, fs.Args()[1:])
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: phone [-server URL] [-dir DIR] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-9s %s\n            %s\n", n, c.args, c.help)
	}
	fmt.Fprintln(w, "\nflags:")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nTimes are Beijing time (UTC+8), as in the console.")
}

// parseArgs parses a command's flags wherever they stand among its
// positional arguments ("record ID -method visit" and "record -method
// visit ID" alike) and checks the count of those.
func parseArgs(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < min || len(pos) > max {
		return nil, fmt.Errorf("%s: want %s", fs.Name(), strings.TrimSpace(commands[fs.Name()].args))
	}
	return pos, nil
}
