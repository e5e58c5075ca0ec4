package localstore_test

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

func mustOpen(tb testing.TB) *localstore.Store {
	tb.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	s, err := localstore.Open(tb.TempDir(), key)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// putJournal keeps one op per client_seq, confirmed at the given times.
func putJournal(tb testing.TB, s *localstore.Store, confirmed map[uint64]time.Time) {
	tb.Helper()
	err := s.Update(func(tx *localstore.Tx) error {
		for seq, at := range confirmed {
			j := localstore.JournalOp{Op: syncproto.Op{ClientSeq: seq, Type: syncproto.OpEscalated}, Confirmed: at}
			if err := tx.PutJournal(&j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func journalSeqs(tb testing.TB, s *localstore.Store, from uint64) []uint64 {
	tb.Helper()
	var seqs []uint64
	err := s.View(func(tx *localstore.Tx) error {
		ops, err := tx.Journal(from)
		for _, j := range ops {
			seqs = append(seqs, j.Op.ClientSeq)
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return seqs
}

func prune(tb testing.TB, s *localstore.Store, cutoff time.Time, max int) int {
	tb.Helper()
	var n int
	err := s.Update(func(tx *localstore.Tx) error {
		var err error
		n, err = tx.PruneJournal(cutoff, max)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestJournal_Prune: the journal keeps the ops confirmed since the cutoff,
// at most max of them, and always a run of the newest client_seqs.
func TestJournal_Prune(t *testing.T) {
	day := 24 * time.Hour
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	t.Run("Window", func(t *testing.T) {
		s := mustOpen(t)
		putJournal(t, s, map[uint64]time.Time{1: t0, 2: t0.Add(day), 3: t0.Add(2 * day), 4: t0.Add(3 * day)})
		if n := prune(t, s, t0.Add(2*day), 100); n != 2 {
			t.Errorf("pruned %d, want 2", n)
		}
		if got := journalSeqs(t, s, 0); !slices.Equal(got, []uint64{3, 4}) {
			t.Errorf("journal after pruning before day 2: %v, want [3 4] (an op confirmed at the cutoff stays)", got)
		}
	})
	t.Run("Cap", func(t *testing.T) {
		s := mustOpen(t)
		putJournal(t, s, map[uint64]time.Time{1: t0, 2: t0, 3: t0, 4: t0, 5: t0})
		prune(t, s, t0.Add(-day), 3)
		if got := journalSeqs(t, s, 0); !slices.Equal(got, []uint64{3, 4, 5}) {
			t.Errorf("journal capped at 3: %v, want the newest [3 4 5]", got)
		}
	})
	t.Run("KeepsTheNewestRun", func(t *testing.T) {
		// Op 2 was confirmed after op 3 (its answer was lost and a later
		// push confirmed it): pruning stops at the first op it keeps, so
		// the journal is still every op after some client_seq.
		s := mustOpen(t)
		putJournal(t, s, map[uint64]time.Time{1: t0, 2: t0.Add(2 * day), 3: t0.Add(day), 4: t0.Add(2 * day)})
		prune(t, s, t0.Add(2*day), 100)
		if got := journalSeqs(t, s, 0); !slices.Equal(got, []uint64{2, 3, 4}) {
			t.Errorf("journal: %v, want [2 3 4]", got)
		}
	})
	t.Run("None", func(t *testing.T) {
		s := mustOpen(t)
		putJournal(t, s, map[uint64]time.Time{1: t0, 2: t0})
		prune(t, s, t0.Add(time.Nanosecond), 0)
		if got := journalSeqs(t, s, 0); len(got) != 0 {
			t.Errorf("journal with a cap of 0: %v, want empty", got)
		}
	})
	t.Run("FromAndLast", func(t *testing.T) {
		s := mustOpen(t)
		var last uint64
		_ = s.View(func(tx *localstore.Tx) error { last = tx.LastJournalSeq(); return nil })
		if last != 0 {
			t.Errorf("last seq of an empty journal: %d", last)
		}
		putJournal(t, s, map[uint64]time.Time{7: t0, 8: t0, 300: t0})
		_ = s.View(func(tx *localstore.Tx) error { last = tx.LastJournalSeq(); return nil })
		if last != 300 {
			t.Errorf("last seq %d, want 300", last)
		}
		if got := journalSeqs(t, s, 8); !slices.Equal(got, []uint64{8, 300}) {
			t.Errorf("journal from 8: %v", got)
		}
		if err := s.Update(func(tx *localstore.Tx) error { return tx.ClearJournal() }); err != nil {
			t.Fatal(err)
		}
		if got := journalSeqs(t, s, 0); len(got) != 0 {
			t.Errorf("journal after clearing: %v", got)
		}
	})
}
