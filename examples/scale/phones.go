package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/examples/internal/workpool"
	"github.com/fieldsync/fieldsync/internal/benchcity"
	"github.com/fieldsync/fieldsync/internal/pause"
	"github.com/fieldsync/fieldsync/server/demo"
	"github.com/fieldsync/fieldsync/syncproto"
)

// pushBatch is how many ops a phone sends per push, as in the push target.
const pushBatch = 20

// signInWorkers sign-ins at once: the server hashes each password with
// argon2id, about 45 ms of a core, so more than a few only queue.
const signInWorkers = 8

// keepOpen is how many of its open warnings a phone remembers, to record
// attempts on.
const keepOpen = 200

// warningRef is an open warning a lead may assign, at the version it saw.
type warningRef struct {
	id      string
	version uint64
}

// phone is one device: a township lead or a village cadre.
type phone struct {
	c      *remote.Client
	person syncproto.UserInput
	id     string // device id, the one the store was built with
	userID string
	role   string
	cursor string
	seq    uint64 // last client_seq used
	rnd    *mrand.Rand
	// open are the ids of warnings a cadre holds open (assigned or in
	// progress), up to keepOpen.
	open []string
	// assignable are a lead's open warnings by village, held by the
	// village's first cadre, for the push phase to spread.
	assignable map[string][]warningRef
	// cadre1 is the first cadre's user id by village, which a lead's
	// pull is told to look for.
	cadre1 map[string]string
	next   int
}

// counts are what a phase did, for its progress line.
type counts struct {
	changes, applied, rejected atomic.Int64
}

// drive runs the phases against the server at url and returns their rows.
func drive(ctx context.Context, cfg *config, url string, m *meter, stderr io.Writer) ([]phaseRow, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * cfg.devices,
		MaxIdleConnsPerHost: 2 * cfg.devices,
		IdleConnTimeout:     5 * time.Minute,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	var phones []*phone
	for i, p := range benchcity.People(cfg.devices) {
		c := remote.New(url)
		c.HTTP = hc
		phones = append(phones, &phone{c: c, person: p, id: benchcity.DeviceID(p.Username), role: syncproto.UnitLevel(p.Unit), rnd: mrand.New(mrand.NewPCG(uint64(i), 7))})
	}

	var rows []phaseRow
	phase := func(name string, work func(n *counts) error) error {
		fmt.Fprintf(stderr, "scale: %s ...\n", name)
		var n counts
		m.begin()
		err := work(&n)
		row, merr := m.end(ctx, name)
		if err = errors.Join(err, merr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, row)
		fmt.Fprintf(stderr, "scale: %s took %v: %d changes pulled, %d ops applied, %d rejected; RssAnon %s (peak %s), heap in use %s\n",
			name, row.took.Round(100*time.Millisecond), n.changes.Load(), n.applied.Load(), n.rejected.Load(), mib(row.end.Anon), mib(row.anonPeak), mib(row.heap.inuse))
		return nil
	}

	steps := []struct {
		name string
		work func(n *counts) error
	}{
		{"started", func(*counts) error { return nil }},
		{"sign-in", func(*counts) error { return signIn(ctx, phones) }},
		{"initial sync", func(n *counts) error {
			return workpool.Run(cfg.syncConc, len(phones), func(i int) error { return phones[i].pullToHead(ctx, n) })
		}},
		{"push", func(n *counts) error { return pushPhase(ctx, cfg, phones, n) }},
		{"held pulls", func(n *counts) error { return holdPulls(ctx, cfg, phones, n) }},
		{"idle", func(*counts) error { return pause.For(ctx, cfg.idle) }},
	}
	for _, s := range steps {
		if err := phase(s.name, s.work); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// signIn signs every phone in from its device and tells each lead its
// villages' first cadres.
func signIn(ctx context.Context, phones []*phone) error {
	err := workpool.Run(signInWorkers, len(phones), func(i int) error {
		p := phones[i]
		resp, err := p.c.Login(ctx, syncproto.LoginRequest{Username: p.person.Username, Password: p.person.Password, DeviceID: p.id, DeviceName: "scale " + p.person.Username, Platform: "scale"})
		if err != nil {
			return fmt.Errorf("sign %s in: %w", p.person.Username, err)
		}
		p.c.SetToken(resp.AccessToken)
		p.userID = resp.User.ID
		return nil
	})
	if err != nil {
		return err
	}
	cadre1 := map[string]string{}
	for _, p := range phones {
		if p.role == syncproto.RoleVillage && p.person.Username == demo.CadreUsername(p.person.Unit, 1) {
			cadre1[p.person.Unit] = p.userID
		}
	}
	for _, p := range phones {
		if p.role == syncproto.RoleTownship {
			p.cadre1, p.assignable = cadre1, map[string][]warningRef{}
		}
	}
	return nil
}

// pullToHead pulls from the phone's cursor until more is false, as the
// SDK does on a good link, and notes the open warnings it may work on.
func (p *phone) pullToHead(ctx context.Context, n *counts) error {
	for range 100_000 {
		resp, err := p.c.Pull(ctx, syncproto.PullRequest{DeviceID: p.id, Cursor: p.cursor, Limit: syncproto.MaxPullLimit})
		if err != nil {
			return fmt.Errorf("%s pulls: %w", p.person.Username, err)
		}
		n.changes.Add(int64(len(resp.Changes)))
		p.seq = max(p.seq, resp.LastClientSeq)
		for _, ch := range resp.Changes {
			if w, ok := ch.Data.(*syncproto.Warning); ok && ch.Kind == syncproto.ChangePut {
				p.note(w)
			}
		}
		p.cursor = resp.Cursor
		if !resp.More {
			return nil
		}
	}
	return fmt.Errorf("%s: pull never reached the head", p.person.Username)
}

// note remembers w if the phone may work on it: a cadre's open warning,
// or, for a lead, an open warning its village's first cadre holds.
func (p *phone) note(w *syncproto.Warning) {
	if w.Status != syncproto.WarningAssigned && w.Status != syncproto.WarningInProgress {
		return
	}
	switch p.role {
	case syncproto.RoleVillage:
		if w.Assignee == p.userID && len(p.open) < keepOpen {
			p.open = append(p.open, w.ID)
		}
	case syncproto.RoleTownship:
		if w.Status == syncproto.WarningAssigned && w.Assignee != "" && w.Assignee == p.cadre1[w.Unit] && len(p.assignable[w.Unit]) < keepOpen {
			p.assignable[w.Unit] = append(p.assignable[w.Unit], warningRef{w.ID, w.Version})
		}
	}
}

// pushPhase: the leads spread work to the extra cadres, every cadre pulls,
// then all cadres push their batches of attempts at once, each push
// followed by a pull.
func pushPhase(ctx context.Context, cfg *config, phones []*phone, n *counts) error {
	extra := map[string][]*phone{} // extra cadres by village
	var leads, cadres []*phone
	for _, p := range phones {
		switch {
		case p.role == syncproto.RoleTownship:
			leads = append(leads, p)
		case p.person.Username != demo.CadreUsername(p.person.Unit, 1):
			extra[p.person.Unit] = append(extra[p.person.Unit], p)
			cadres = append(cadres, p)
		default:
			cadres = append(cadres, p)
		}
	}
	err := workpool.Run(len(leads), len(leads), func(i int) error {
		lead := leads[i]
		var ops []syncproto.Op
		for village, refs := range lead.assignable {
			for _, c := range extra[village] {
				for range cfg.assign {
					if len(refs) == 0 {
						break
					}
					ops = append(ops, lead.assignOp(refs[0], c.userID))
					refs = refs[1:]
				}
			}
		}
		return lead.pushAll(ctx, ops, n)
	})
	if err != nil {
		return err
	}
	if err := workpool.Run(cfg.syncConc, len(cadres), func(i int) error { return cadres[i].pullToHead(ctx, n) }); err != nil {
		return err
	}
	return workpool.Run(len(cadres), len(cadres), func(i int) error {
		c := cadres[i]
		if len(c.open) == 0 {
			return nil
		}
		for range cfg.batches {
			if err := c.pushAll(ctx, c.recordOps(pushBatch), n); err != nil {
				return err
			}
			if err := c.pullToHead(ctx, n); err != nil {
				return err
			}
		}
		return nil
	})
}

// pushAll pushes ops in batches of pushBatch and counts their results; a
// rejected op (a warning closed meanwhile) is counted, as a phone shows
// it and goes on.
func (p *phone) pushAll(ctx context.Context, ops []syncproto.Op, n *counts) error {
	for len(ops) > 0 {
		batch := ops[:min(pushBatch, len(ops))]
		ops = ops[len(batch):]
		resp, err := p.c.Push(ctx, syncproto.PushRequest{DeviceID: p.id, Ops: batch})
		if err != nil {
			return fmt.Errorf("%s pushes: %w", p.person.Username, err)
		}
		for _, r := range resp.Results {
			if r.Status == syncproto.StatusRejected {
				n.rejected.Add(1)
			} else {
				n.applied.Add(1)
			}
		}
	}
	return nil
}

func (p *phone) assignOp(w warningRef, to string) syncproto.Op {
	p.seq++
	return syncproto.Op{
		ID: benchcity.UUID(p.rnd), ClientSeq: p.seq, Type: syncproto.OpAssigned, WarningID: w.id,
		BaseVersion: w.version, At: time.Now(), Body: syncproto.OpBody{Assignee: to},
	}
}

// attemptOutcomes are the attempts' outcomes in turn.
// recordOps makes k dissuasion attempts on the phone's open warnings in
// turn, as a cadre records them offline.
func (p *phone) recordOps(k int) []syncproto.Op {
	ops := make([]syncproto.Op, k)
	now := time.Now()
	for i := range ops {
		p.seq++
		ops[i] = benchcity.RecordedOp(p.rnd, p.seq, p.open[p.next%len(p.open)], p.next, now)
		p.next++
	}
	return ops
}

// holdPulls has every phone hold a long-poll pull from its head at once,
// as idle phones do; nothing changes, so each answers when its wait ends.
func holdPulls(ctx context.Context, cfg *config, phones []*phone, n *counts) error {
	wait := min(max(int(cfg.hold/time.Second), 1), syncproto.MaxPullWait)
	var wg sync.WaitGroup
	errs := make([]error, len(phones))
	for i, p := range phones {
		wg.Go(func() {
			resp, err := p.c.Pull(ctx, syncproto.PullRequest{DeviceID: p.id, Cursor: p.cursor, Limit: syncproto.DefaultPullLimit, Wait: wait})
			if err != nil {
				errs[i] = fmt.Errorf("%s holds a pull: %w", p.person.Username, err)
				return
			}
			n.changes.Add(int64(len(resp.Changes)))
			p.cursor = resp.Cursor
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
