package cluster

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fieldsync/fieldsync/server/store"
)

// fsm is the store as raft's state machine. Apply hands each committed
// entry to the store, which applies it as the leader did; Snapshot and
// Restore stream the store as its backup does. Raft calls the three from
// one goroutine, never at once, which is what the store's Snapshot and
// InstallSnapshot ask of their callers.
type fsm struct {
	st  *store.Store
	log *slog.Logger
	// counts receives the snapshots' times and sizes.
	counts *counters
	// fail stops the node: an entry that fails to apply as a whole (a
	// disk error, an unknown command kind) cannot be skipped, since every
	// other node applied it.
	fail func(error)
	// onRestore hears of each snapshot installed, whose photos this node
	// may lack.
	onRestore func()

	mu sync.Mutex
	// waiting are the entries this node forwarded to the leader, by their
	// SHA-256, each waiting for this node's own apply of it.
	waiting map[[32]byte][]*waiter
	// progress is closed and replaced after each entry or snapshot
	// applied; reached is the index they reached.
	progress chan struct{}
	reached  uint64

	// held, when set, holds every apply back until it is closed: the
	// tests' way to keep a follower behind its leader (export_test.go).
	held atomic.Pointer[chan struct{}]
}

var _ raft.BatchingFSM = (*fsm)(nil)

// waiter is a forwarded entry waiting for this node's apply.
type waiter struct {
	sum     [32]byte
	done    chan struct{}
	applied *store.Applied
	err     error
}

func newFSM(st *store.Store, log *slog.Logger, fail func(error), counts *counters) *fsm {
	return &fsm{st: st, log: log, fail: fail, counts: counts, waiting: map[[32]byte][]*waiter{}, progress: make(chan struct{})}
}

// Apply applies one committed entry. What it returns is the leader's
// answer (ApplyFuture.Response): the *store.Applied, or the error that
// failed the group.
func (f *fsm) Apply(l *raft.Log) any {
	f.waitHeld()
	a, err := f.st.ApplyEntry(l.Index, l.Data)
	return f.answer(l, a, err)
}

// ApplyBatch applies the entries raft committed together in one store
// transaction (store.ApplyEntries): one commit and one fsync for the
// batch, where Apply would make one per entry. Raft hands it configuration
// changes too, which hold nothing for the store. An entry that fails stops
// the node; those after it are not applied, and answer with the failure.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	f.waitHeld()
	out := make([]any, len(logs))
	entries := make([]store.Entry, 0, len(logs))
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			entries = append(entries, store.Entry{Index: l.Index, Data: l.Data})
		}
	}
	applied, err := f.st.ApplyEntries(entries)
	j := 0
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		switch {
		case j < len(applied):
			out[i] = f.answer(l, applied[j], nil)
		case j == len(applied):
			out[i] = f.answer(l, nil, err)
		default:
			out[i] = fmt.Errorf("entry %d not applied: an earlier entry failed: %w", l.Index, err)
		}
		j++
	}
	return out
}

// waitHeld waits while a test holds the applies back; nothing otherwise.
func (f *fsm) waitHeld() {
	if held := f.held.Load(); held != nil {
		<-*held
	}
}

// answer hands an entry's apply to the request of this node that
// forwarded it, if one did, and returns the leader's answer. A failed
// entry stops the node.
func (f *fsm) answer(l *raft.Log, a *store.Applied, err error) any {
	if err != nil {
		f.log.Error("cluster: an entry failed to apply; this node stops", "index", l.Index, "err", err)
		go f.fail(fmt.Errorf("apply entry %d: %w", l.Index, err))
	}
	f.mu.Lock()
	if len(f.waiting) > 0 {
		sum := sha256.Sum256(l.Data)
		if ws := f.waiting[sum]; len(ws) > 0 {
			w := ws[0]
			if len(ws) == 1 {
				delete(f.waiting, sum)
			} else {
				f.waiting[sum] = ws[1:]
			}
			w.applied, w.err = a, err
			close(w.done)
		}
	}
	f.reached = l.Index
	f.progressed()
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return a
}

// progressed wakes whoever waits for the next apply; f.mu held.
func (f *fsm) progressed() {
	close(f.progress)
	f.progress = make(chan struct{})
}

// expect registers an entry this node is about to forward.
func (f *fsm) expect(entry []byte) *waiter {
	w := &waiter{sum: sha256.Sum256(entry), done: make(chan struct{})}
	f.mu.Lock()
	f.waiting[w.sum] = append(f.waiting[w.sum], w)
	f.mu.Unlock()
	return w
}

// forget unregisters w if no apply took it.
func (f *fsm) forget(w *waiter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws := f.waiting[w.sum]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(f.waiting, w.sum)
	} else {
		f.waiting[w.sum] = ws
	}
}

// await waits for this node's apply of the forwarded entry the leader
// committed at index. A node that reached index by a snapshot never
// applies the entry itself and cannot tell its answers: unavailable, and
// the client retries (every write is safe to retry).
func (f *fsm) await(ctx context.Context, w *waiter, index uint64) (*store.Applied, error) {
	defer f.forget(w)
	for {
		f.mu.Lock()
		next, reached := f.progress, f.reached
		f.mu.Unlock()
		select {
		case <-w.done:
			return w.applied, w.err
		default:
		}
		// Apply closes done and moves reached under the same lock, so an
		// entry reached without done was not applied from the log here.
		if reached >= index {
			return nil, unavailable("caught_up_by_snapshot", "this server caught up with its cluster from a snapshot while it waited for your write; retry it")
		}
		select {
		case <-w.done:
			return w.applied, w.err
		case <-next:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Snapshot copies the store as it is between two applies.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	start := time.Now()
	sn, err := f.st.Snapshot()
	if err != nil {
		return nil, err
	}
	return &fsmSnapshot{sn: sn, start: start, counts: f.counts}, nil
}

// Restore replaces the store's state with a snapshot's: the store's own
// (this node's or another's), or a backup restored at an index
// (restore.go), whose applied index becomes that index.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	start := time.Now()
	r := bufio.NewReaderSize(rc, 64<<10)
	index, err := restoredAt(r)
	if err != nil {
		return err
	}
	if index > 0 {
		err = f.st.InstallBackup(r, index)
	} else {
		err = f.st.InstallSnapshot(r)
	}
	if err != nil {
		return err
	}
	f.counts.restored(time.Since(start))
	f.mu.Lock()
	f.reached = max(f.reached, f.st.AppliedIndex())
	f.progressed()
	f.mu.Unlock()
	if f.onRestore != nil {
		f.onRestore()
	}
	return nil
}

// fsmSnapshot is a copy of the store on its way to raft's snapshot
// store; start is when the copy began, for the snapshot's time.
type fsmSnapshot struct {
	sn     *store.Snapshot
	start  time.Time
	counts *counters
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	size, err := s.sn.WriteTo(sink)
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.counts.snapshotMade(time.Since(s.start), size)
	return nil
}

func (s *fsmSnapshot) Release() { s.sn.Close() }
