//go:build unix

package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/internal/pause"
	"github.com/fieldsync/fieldsync/syncproto"
)

// A phone's work: each round it records 0 to 2 attempts on warnings of
// its village and syncs. It is given the three nodes' addresses, its own
// village's node first (clientsdk.Options.ServerURLs): the SDK goes on to
// the next address when one gives no answer or a 502, 503 or 504.
const (
	// maxAttemptsPerWarning stays under the server's limit per warning
	// (syncproto.DefaultWarningLimits), which would refuse the op.
	maxAttemptsPerWarning = 150
	syncTimeout           = 30 * time.Second
	// failPause spaces a phone's syncs while they fail (every node down
	// or without a quorum), so it does not spin.
	failPause = 20 * time.Millisecond
	// syncPause spaces a phone's syncs when they succeed: some fifteen a
	// second, still far more than a cadre's, and about as many as the
	// phones made before the server got faster. Without it six phones
	// synced up to forty times a second each; with three race-built nodes
	// and the test on two cores, the phase that wipes a follower then
	// found no leader for minutes in four runs of eight (the survivors
	// kept forwarding writes to the node killed).
	syncPause = 40 * time.Millisecond
)

// phone is a cadre's phone on the real SDK.
type phone struct {
	t        *testing.T
	c        *testCluster
	id       int // its number in the history
	username string
	password string
	village  string
	dir      string
	rng      *rand.Rand
	sdk      *clientsdk.Client
	warnings []string

	// Written by the phone's goroutine only, read after it ended.
	recorded map[string]int // op id -> client_seq, every op it recorded
	attempts map[string]int // warning id -> attempts recorded
	full     int            // warnings with maxAttemptsPerWarning attempts
	spent    bool           // full on every warning, and synced since
	history  []porcupine.Operation
	// since is the call time of the first sync since the last one that
	// succeeded; written the warnings with ops among those syncs.
	since   int64
	written map[string]bool
	syncs   int
	fails   int
	// servers counts the syncs that ended on each address.
	servers map[string]int
}

// acked counts syncs that carried ops and succeeded, across phones: the
// test waits on it to see the cluster take writes.
var acked atomic.Int64

// spentPhones counts the phones that have recorded the most attempts on
// every warning of theirs: once all have, no write will come, and the
// test must say so rather than wait for one.
var spentPhones atomic.Int64

// epoch is the zero of the history's times: monotonic, from one clock
// for every phone.
var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) }

func newPhone(t *testing.T, c *testCluster, id int, username, password, village string, seed uint64) *phone {
	p := &phone{t: t, c: c, id: id, username: username, password: password, village: village, dir: t.TempDir(),
		rng: rand.New(rand.NewPCG(seed, uint64(id))), recorded: map[string]int{}, attempts: map[string]int{}, written: map[string]bool{},
		servers: map[string]int{}}
	sdk, err := clientsdk.Open(p.dir, clientsdk.Options{ServerURLs: c.urls(id), Key: make([]byte, 32), DeviceName: "clustertest " + username,
		Platform: "test", StallTimeout: 5 * time.Second, ConnectTimeout: 2 * time.Second,
		// One try of each address per sync: the phone's loop tries again.
		Retry: clientsdk.RetryPolicy{Attempts: 1}})
	if err != nil {
		t.Fatalf("open the SDK of %s: %v", username, err)
	}
	p.sdk = sdk
	t.Cleanup(func() { sdk.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	if _, err := p.sdk.Login(ctx, username, password); err != nil {
		t.Fatalf("sign in %s: %v", username, err)
	}
	return p
}

// run works until stop is closed.
func (p *phone) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range p.rng.IntN(3) {
			p.record()
		}
		if err := p.sync(); err != nil {
			_ = pause.For(context.Background(), failPause)
		} else {
			_ = pause.For(context.Background(), syncPause)
		}
	}
}

// record records an attempt on one of the village's warnings.
func (p *phone) record() {
	w := p.warnings[p.rng.IntN(len(p.warnings))]
	if p.attempts[w] >= maxAttemptsPerWarning {
		return
	}
	outcomes := []string{syncproto.OutcomeDissuaded, syncproto.OutcomeNotTarget, syncproto.OutcomeRefused}
	st, err := p.sdk.RecordAttempt(w, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true,
		Outcome: outcomes[p.rng.IntN(len(outcomes))], Notes: fmt.Sprintf("第%d次上门", p.attempts[w]+1)})
	if err != nil {
		p.t.Errorf("%s: record: %v", p.username, err)
		return
	}
	p.attempts[w]++
	p.recorded[st.OpID] = int(st.ClientSeq)
	p.written[w] = true
	if p.attempts[w] == maxAttemptsPerWarning {
		p.full++
	}
}

// sync syncs once and, when it succeeds, adds to the history a read of
// every warning of the village, or a write of those it had ops on (since
// the last sync that succeeded: a failed one may have landed them).
func (p *phone) sync() error {
	call := now()
	if p.since == 0 {
		p.since = call
	}
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	rep, err := p.sdk.Sync(ctx)
	cancel()
	p.syncs++
	if rep.Reset {
		p.t.Errorf("%s was reset at %s", p.username, p.sdk.Server())
	}
	if err != nil {
		if !clientsdk.Transient(err) && !errors.Is(err, context.DeadlineExceeded) {
			p.t.Errorf("%s: sync at %s: %v", p.username, p.sdk.Server(), err)
		}
		p.fails++
		return err
	}
	p.servers[p.sdk.Server()]++
	ret := now()
	if st := p.sdk.Status(); st.Pending != 0 || st.Rejected != 0 {
		p.t.Errorf("%s: after a sync %d ops pending, %d rejected", p.username, st.Pending, st.Rejected)
	}
	for _, w := range p.warnings {
		held, ok := p.sdk.Warning(w)
		if !ok {
			p.t.Errorf("%s holds no warning %s after a sync", p.username, w)
			continue
		}
		op := porcupine.Operation{ClientId: p.id, Input: access{warning: w, write: p.written[w]}, Call: call, Output: held.Version, Return: ret}
		if p.written[w] {
			op.Call = p.since
		}
		p.history = append(p.history, op)
	}
	if len(p.written) > 0 {
		acked.Add(1)
	}
	if p.full == len(p.warnings) && !p.spent {
		// Its last ops are acknowledged: it will write no more.
		p.spent = true
		spentPhones.Add(1)
	}
	p.since, p.written = 0, map[string]bool{}
	return nil
}

// workload runs every phone until the returned stop is called.
func workload(phones []*phone) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(done)
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
