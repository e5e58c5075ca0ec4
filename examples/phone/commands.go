package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/syncproto"
)

func (p *phone) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(p.stderr)
	return fs
}

func cmdLogin(ctx context.Context, p *phone, args []string) error {
	fs := p.flags("login")
	password := fs.String("password", p.password, "the password; asked for when empty")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := p.online(); err != nil {
		return err
	}
	if *password == "" {
		fmt.Fprintf(p.stderr, "password for %s (shown as typed): ", pos[0])
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return fmt.Errorf("read password: %w", err)
		}
		*password = strings.TrimRight(line, "\r\n")
	}
	u, err := p.sdk.Login(ctx, pos[0], *password)
	if err != nil {
		return err
	}
	if err := p.saveSettings(); err != nil {
		return err
	}
	fmt.Fprintf(p.stdout, "logged in as %s (%s), %s of unit %s, on %s\ndevice %s; run `sync` to fetch your warnings\n",
		u.Name, u.Username, u.Role, u.Unit, p.settings.Server, p.sdk.DeviceID())
	return nil
}

func cmdLogout(ctx context.Context, p *phone, args []string) error {
	if _, err := parseArgs(p.flags("logout"), args, 0, 0); err != nil {
		return err
	}
	if err := p.online(); err != nil {
		return err
	}
	if err := p.sdk.Logout(ctx); err != nil {
		return err
	}
	fmt.Fprintln(p.stdout, "logged out; unsent work stays on the phone for your next login")
	return nil
}

func cmdSync(ctx context.Context, p *phone, args []string) error {
	if _, err := parseArgs(p.flags("sync"), args, 0, 0); err != nil {
		return err
	}
	if err := p.online(); err != nil {
		return fmt.Errorf("sync refused, nothing sent or received: %w", err)
	}
	bar := newProgressBar(p.stdout)
	stop := p.sdk.OnProgress(bar.update)
	rep, err := p.sdk.Sync(ctx)
	stop()
	bar.done(err == nil)
	if err != nil {
		return fmt.Errorf("sync failed after %d tries (the outbox is kept): %w", rep.Attempts, err)
	}
	fmt.Fprintf(p.stdout, "synced: sent %d ops (%d applied, %d rejected), %d photos; pulled %d changes", rep.Pushed, rep.Applied, rep.Rejected, rep.Photos, rep.Pulled)
	if rep.Removed > 0 {
		fmt.Fprintf(p.stdout, ", %d warnings left this phone", rep.Removed)
	}
	if rep.Reset {
		fmt.Fprint(p.stdout, " (the server reset this phone's copy)")
	}
	fmt.Fprintln(p.stdout)
	if n := len(p.sdk.Rejected()); n > 0 {
		fmt.Fprintf(p.stdout, "%d ops were rejected: see `rejected`\n", n)
	}
	return nil
}

func cmdList(_ context.Context, p *phone, args []string) error {
	fs := p.flags("list")
	status := fs.String("status", "", "statuses to show, comma-separated")
	overdue := fs.Bool("overdue", false, "only overdue warnings")
	risk := fs.String("risk", "", "only this risk: high, medium, low")
	text := fs.String("text", "", "part of the name or address, or the end of the phone number")
	pending := fs.Bool("pending", false, "only warnings with unsent work")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	f := clientsdk.Filter{Risk: *risk, Text: *text, Pending: *pending}
	for _, s := range strings.Split(*status, ",") {
		if s = strings.TrimSpace(s); s != "" {
			f.Status = append(f.Status, s)
		}
	}
	if *overdue {
		f.Overdue = overdue
	}
	printList(p, p.sdk.Warnings(f))
	return nil
}

func cmdShow(_ context.Context, p *phone, args []string) error {
	pos, err := parseArgs(p.flags("show"), args, 1, 1)
	if err != nil {
		return err
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	w, _ := p.sdk.Warning(id)
	printWarning(p, &w)
	return nil
}

func cmdRecord(_ context.Context, p *phone, args []string) error {
	fs := p.flags("record")
	var a clientsdk.Attempt
	fs.StringVar(&a.Method, "method", "", "visit, phone, video or other")
	fs.StringVar(&a.Outcome, "outcome", "", "dissuaded, already_defrauded, not_target, unreachable or refused")
	fs.BoolVar(&a.Reached, "reached", false, "the person at risk was spoken to")
	fs.StringVar(&a.Notes, "notes", "", "what happened")
	fs.Int64Var(&a.LossFen, "loss-fen", 0, "money already lost, in fen (with already_defrauded)")
	fs.Func("photo", "a JPEG or PNG to attach (repeatable)", func(s string) error {
		a.Photos = append(a.Photos, s)
		return nil
	})
	lat := fs.Float64("lat", 0, "latitude where it happened")
	lng := fs.Float64("lng", 0, "longitude where it happened")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *lat != 0 || *lng != 0 {
		a.Location = &syncproto.Location{Lat: *lat, Lng: *lng}
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	op, err := p.sdk.RecordAttempt(id, a)
	return p.queued(op, err)
}

// queued reports a write: it is on the phone now, and goes at the next sync.
func (p *phone) queued(op clientsdk.OpStatus, err error) error {
	if err != nil {
		return err
	}
	fmt.Fprintf(p.stdout, "%s on warning %s: saved on the phone as op %s (%s); `sync` sends it\n",
		op.Type, p.shortWarningIDs()[op.WarningID], op.OpID, op.State)
	return nil
}

func cmdReview(_ context.Context, p *phone, args []string) error {
	fs := p.flags("review")
	comment := fs.String("comment", "", "what the cadre should know (required to return)")
	pos, err := parseArgs(fs, args, 2, 2)
	if err != nil {
		return err
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	return p.queued(p.sdk.Review(id, pos[1], *comment))
}

func cmdAssign(_ context.Context, p *phone, args []string) error {
	pos, err := parseArgs(p.flags("assign"), args, 2, 2)
	if err != nil {
		return err
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	var userID string
	var known []string
	for _, u := range p.sdk.Cadres() {
		if strings.EqualFold(u.Username, pos[1]) || u.ID == pos[1] {
			userID = u.ID
		}
		known = append(known, u.Username)
	}
	if userID == "" {
		return fmt.Errorf("no cadre %q in this phone's directory (known: %s); sync first?", pos[1], strings.Join(known, ", "))
	}
	return p.queued(p.sdk.Assign(id, userID))
}

func cmdDispatch(_ context.Context, p *phone, args []string) error {
	pos, err := parseArgs(p.flags("dispatch"), args, 2, 2)
	if err != nil {
		return err
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	unit := pos[1]
	if syncproto.UnitLevel(unit) == "" {
		// A name: it must name exactly one unit of the directory.
		var codes []string
		for _, u := range p.sdk.Units() {
			if strings.Contains(u.Name, unit) {
				codes = append(codes, u.Code)
			}
		}
		if len(codes) != 1 {
			return fmt.Errorf("%q names %d units of this phone's directory (%s): give a unit code", unit, len(codes), strings.Join(codes, ", "))
		}
		unit = codes[0]
	}
	return p.queued(p.sdk.Dispatch(id, unit))
}

func cmdEscalate(_ context.Context, p *phone, args []string) error {
	fs := p.flags("escalate")
	reason := fs.String("reason", "", "why help is needed (required)")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return errors.New("escalate: say why with -reason")
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	return p.queued(p.sdk.Escalate(id, *reason))
}

func cmdAnswer(_ context.Context, p *phone, args []string) error {
	fs := p.flags("answer")
	answer := fs.String("answer", "", "the reply the township and the cadre will read (required)")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*answer) == "" {
		return errors.New("answer: write the reply with -answer")
	}
	id, err := p.warningID(pos[0])
	if err != nil {
		return err
	}
	return p.queued(p.sdk.AnswerEscalation(id, *answer))
}

func cmdRejected(_ context.Context, p *phone, args []string) error {
	if _, err := parseArgs(p.flags("rejected"), args, 0, 0); err != nil {
		return err
	}
	printRejected(p, p.sdk.Rejected())
	return nil
}

func cmdDismiss(_ context.Context, p *phone, args []string) error {
	pos, err := parseArgs(p.flags("dismiss"), args, 1, 1)
	if err != nil {
		return err
	}
	id, err := p.rejectedOpID(pos[0])
	if err != nil {
		return err
	}
	if err := p.sdk.Dismiss(id); err != nil {
		return err
	}
	fmt.Fprintf(p.stdout, "dismissed op %s\n", id)
	return nil
}

func cmdDirectory(_ context.Context, p *phone, args []string) error {
	if _, err := parseArgs(p.flags("directory"), args, 0, 0); err != nil {
		return err
	}
	printDirectory(p)
	return nil
}

func cmdOffline(_ context.Context, p *phone, args []string) error {
	pos, err := parseArgs(p.flags("offline"), args, 0, 1)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		switch pos[0] {
		case "on":
			p.settings.Offline = true
		case "off":
			p.settings.Offline = false
		default:
			return fmt.Errorf("offline: want on or off, not %q", pos[0])
		}
		if err := p.saveSettings(); err != nil {
			return err
		}
	}
	if p.settings.Offline {
		fmt.Fprintln(p.stdout, "offline: on (no signal: work is saved on the phone; sync is refused until `offline off`)")
	} else {
		fmt.Fprintln(p.stdout, "offline: off (sync reaches "+p.settings.Server+")")
	}
	return nil
}

func cmdStatus(_ context.Context, p *phone, args []string) error {
	if _, err := parseArgs(p.flags("status"), args, 0, 0); err != nil {
		return err
	}
	printStatus(p)
	return nil
}
