//go:build unix

package clustertest_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Bucket names of server/store/store.go, read here straight from the
// files of the stopped nodes.
var (
	bucketLog = []byte("log")
	// bucketWarnings holds each warning's state under its id, and beside
	// it (schema 8 on) its attempts, keyed by the id, attemptTag and a
	// 4-byte ordinal, its history and its latest entries, keyed by the
	// id, a 0x00 byte and tags of their own; the state holds no attempts.
	// Attempts are compact from schema 13 on, states from schema 14 on:
	// store.DecodeAttempt and store.DecodeState read either form.
	bucketWarnings = []byte("warnings")
)

// attemptTag starts, after a warning's id, the keys of its attempts.
var attemptTag = []byte{0x00, 'a'}

// nodeState is what the test reads of a stopped node's store.
type nodeState struct {
	digest      string
	incarnation [16]byte
	opCount     map[string]int      // op id -> times in the log
	warnings    map[string]snapshot // warning id -> its state
}

// snapshot is what a phone and the server must agree on for a warning.
type snapshot struct {
	unit     string
	version  uint64
	attempts []string // attempt ids, sorted
}

func snapshotOf(w *syncproto.Warning) snapshot {
	s := snapshot{unit: w.Unit, version: w.Version}
	for _, a := range w.Attempts {
		s.attempts = append(s.attempts, a.ID)
	}
	slices.Sort(s.attempts)
	return s
}

func (s snapshot) String() string {
	return fmt.Sprintf("v%d with %d attempts", s.version, len(s.attempts))
}

func (s snapshot) equal(o snapshot) bool {
	return s.unit == o.unit && s.version == o.version && slices.Equal(s.attempts, o.attempts)
}

// readNode reads a stopped node's store file: the log's ops and the
// warnings straight from bbolt, then the store's digest and incarnation.
func readNode(t *testing.T, n *node) *nodeState {
	t.Helper()
	s := &nodeState{opCount: map[string]int{}, warnings: map[string]snapshot{}}
	db, err := bolt.Open(filepath.Join(n.dir, store.DBFile), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketLog).ForEach(func(k, v []byte) error {
			var e store.LogEntry
			if err := store.DecodeLogEntry(v, &e); err != nil {
				return fmt.Errorf("log entry %x: %w", k, err)
			}
			if e.Op != nil {
				s.opCount[e.Op.ID]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketWarnings).ForEach(func(k, v []byte) error {
			if bytes.IndexByte(k, 0x00) >= 0 {
				return nil // one of a warning's records beside its state
			}
			var w syncproto.Warning
			if err := store.DecodeState(v, &w); err != nil {
				return fmt.Errorf("warning %s: %w", k, err)
			}
			prefix := append(bytes.Clone(k), attemptTag...)
			c := tx.Bucket(bucketWarnings).Cursor()
			for ak, av := c.Seek(prefix); ak != nil && len(ak) == len(prefix)+4 && bytes.HasPrefix(ak, prefix); ak, av = c.Next() {
				var a syncproto.Attempt
				if err := store.DecodeAttempt(av, &a); err != nil {
					return fmt.Errorf("warning %s: attempt %x: %w", k, ak[len(prefix):], err)
				}
				w.Attempts = append(w.Attempts, a)
			}
			s.warnings[w.ID] = snapshotOf(&w)
			return nil
		})
	})
	db.Close()
	if err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	st, err := store.Open(n.dir, store.Options{})
	if err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	defer st.Close()
	if s.digest, err = st.Digest(); err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	s.incarnation = st.Incarnation()
	return s
}

// checkStores checks the three stopped nodes: the same digest and
// incarnation; every op a phone recorded in every node's log exactly once
// (each phone's sync ended with nothing pending, so every op was
// acknowledged), and no other op, the probe's refused push included.
func checkStores(t *testing.T, c *testCluster, phones []*phone, refused []string) []*nodeState {
	t.Helper()
	var states []*nodeState
	for _, n := range c.nodes {
		states = append(states, readNode(t, n))
	}
	for i, s := range states[1:] {
		if s.digest != states[0].digest {
			t.Errorf("%s's store differs from %s's: digest %s, %s", c.nodes[i+1].id, c.nodes[0].id, s.digest[:12], states[0].digest[:12])
		}
		if s.incarnation != states[0].incarnation {
			t.Errorf("%s's incarnation differs from %s's", c.nodes[i+1].id, c.nodes[0].id)
		}
	}
	for i, s := range states {
		id := c.nodes[i].id
		recorded := 0
		for _, p := range phones {
			for op, seq := range p.recorded {
				recorded++
				if n := s.opCount[op]; n != 1 {
					t.Errorf("%s: %s's op %s (client_seq %d) is in the log %d times", id, p.username, op, seq, n)
				}
			}
		}
		for _, op := range refused {
			if s.opCount[op] != 0 {
				t.Errorf("%s: the op a node alone refused is in the log", id)
			}
		}
		if len(s.opCount) != recorded {
			t.Errorf("%s: %d ops in the log, the phones recorded %d", id, len(s.opCount), recorded)
		}
	}
	return states
}

// checkPhones checks every phone holds exactly the server's warnings of
// its village, each at the server's version with the same attempts.
func checkPhones(t *testing.T, phones []*phone, held map[*phone][]clientsdk.Warning, server *nodeState) {
	t.Helper()
	for _, p := range phones {
		mine := map[string]snapshot{}
		for _, w := range held[p] {
			mine[w.ID] = snapshotOf(&w.Warning)
		}
		want := 0
		for id, sw := range server.warnings {
			if sw.unit != p.village {
				continue
			}
			want++
			if got, ok := mine[id]; !ok {
				t.Errorf("%s lacks warning %s of its village", p.username, id)
			} else if !got.equal(sw) {
				t.Errorf("%s holds warning %s as %s, the server has %s", p.username, id, got, sw)
			}
		}
		if len(mine) != want {
			t.Errorf("%s holds %d warnings, the server has %d in its village", p.username, len(mine), want)
		}
	}
}
