package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Commands. Every write of the store is a command: a value that holds
// everything its apply needs (the clock reading it was made at, every id
// or random value it writes, the principal it acts for, the policies of
// Options it applies), so applying it is a function of the command and
// the state it finds, on this machine or another. An exported method
// reads the clock, makes the ids, builds the command and submits it; the
// writer applies each group of commands in one transaction. With
// Options.Replicate set the group goes out as one encoded entry instead,
// and comes back through ApplyEntry, which is how every node of a cluster
// will apply the same log (docs/CLUSTER.md).
//
// Like Nomad's and Consul's FSM messages, a command on the wire is a kind
// byte and the MessagePack of its body; a kind's number is never reused
// nor renumbered, and a new kind goes at the end.

// cmdKind is a command's kind on the wire.
type cmdKind uint8

const (
	cmdPush cmdKind = iota + 1
	cmdReplay
	cmdImportFeed
	cmdLogin
	cmdRefresh
	cmdLogout
	cmdRevokeDevice
	cmdAddSigningKey
	cmdRotateSigningKey
	cmdTouchDevices
	cmdForgetStale
	cmdEndConsoleSessions
	cmdUpsertUnits
	cmdUpsertUsers
	cmdSweep
	cmdCompactDelete
	cmdForgetGone
	cmdAuditWarning
	cmdAuditList
	cmdPutBlob
	cmdDeletePhotos
	cmdSetIncarnation
)

// command is one write. apply runs it inside the group's transaction and
// returns what its caller gets back. It must not read the clock, draw
// random numbers, or read anything of the store but tx: what it needs is
// in the command. It may return a *syncproto.Error only before it has
// written anything (the refusal is the command's answer, and the group
// goes on); any other error fails the whole group.
type command interface {
	kind() cmdKind
	apply(s *Store, tx *bolt.Tx) (any, error)
}

// stamped is a command that takes the time it was received at from the
// writer, which reads the clock once per group as it forms it: every
// command of a group bears the same reading, and readings grow with the
// log's seqs as they did when each write read the clock in its
// transaction (seqReceivedBefore searches the log by it).
type stamped interface {
	stamp(now time.Time)
}

// newCommand is an empty command of kind k, for decoding an entry: the one
// list of every kind.
func newCommand(k cmdKind) (command, error) {
	switch k {
	case cmdPush:
		return &pushCmd{}, nil
	case cmdReplay:
		return &replayCmd{}, nil
	case cmdImportFeed:
		return &importCmd{}, nil
	case cmdLogin:
		return &loginCmd{}, nil
	case cmdRefresh:
		return &refreshCmd{}, nil
	case cmdLogout:
		return &logoutCmd{}, nil
	case cmdRevokeDevice:
		return &revokeCmd{}, nil
	case cmdAddSigningKey:
		return &addKeyCmd{}, nil
	case cmdRotateSigningKey:
		return &rotateKeyCmd{}, nil
	case cmdTouchDevices:
		return &touchCmd{}, nil
	case cmdForgetStale:
		return &forgetStaleCmd{}, nil
	case cmdEndConsoleSessions:
		return &endConsoleCmd{}, nil
	case cmdUpsertUnits:
		return &unitsCmd{}, nil
	case cmdUpsertUsers:
		return &usersCmd{}, nil
	case cmdSweep:
		return &sweepCmd{}, nil
	case cmdCompactDelete:
		return &compactCmd{}, nil
	case cmdForgetGone:
		return &forgetGoneCmd{}, nil
	case cmdAuditWarning:
		return &auditWarningCmd{}, nil
	case cmdAuditList:
		return &auditListCmd{}, nil
	case cmdPutBlob:
		return &blobCmd{}, nil
	case cmdDeletePhotos:
		return &deletePhotosCmd{}, nil
	case cmdSetIncarnation:
		return &incarnationCmd{}, nil
	}
	return nil, fmt.Errorf("unknown command kind %d", k)
}

// principal is an actor as a command carries it. syncproto.Actor leaves
// its session out of every encoding (it never goes on the wire), and a
// command must keep it: a push checks it against the device's session.
type principal struct {
	UserID   string `json:"user_id"`
	Role     string `json:"role"`
	Unit     string `json:"unit"`
	DeviceID string `json:"device_id"`
	Session  uint64 `json:"session"`
}

func principalOf(a syncproto.Actor) principal {
	return principal{UserID: a.UserID, Role: a.Role, Unit: a.Unit, DeviceID: a.DeviceID, Session: a.Session}
}

func (p principal) actor() syncproto.Actor {
	return syncproto.Actor{UserID: p.UserID, Role: p.Role, Unit: p.Unit, DeviceID: p.DeviceID, Session: p.Session}
}

// submit hands c to the writer and returns what its apply returned, once
// the group it joined is durable.
func submit[R any](ctx context.Context, s *Store, c command) (R, error) {
	var zero R
	v, err := s.write(ctx, c)
	if err != nil {
		return zero, err
	}
	r, _ := v.(R)
	return r, nil
}

// entryVersion is an entry's first byte: the layout of what follows.
const entryVersion = 1

// wireCmd is a command in an entry.
type wireCmd struct {
	Kind cmdKind `json:"k"`
	Body []byte  `json:"b"`
}

// encodeEntry is a group of commands as one replicated log entry: the
// version byte, then the MessagePack of the commands in order.
func encodeEntry(cmds []command) ([]byte, error) {
	wire := make([]wireCmd, len(cmds))
	for i, c := range cmds {
		b, err := encode(c)
		if err != nil {
			return nil, fmt.Errorf("encode command %d: %w", c.kind(), err)
		}
		wire[i] = wireCmd{Kind: c.kind(), Body: b}
	}
	b, err := encode(wire)
	if err != nil {
		return nil, fmt.Errorf("encode entry: %w", err)
	}
	return append([]byte{entryVersion}, b...), nil
}

// decodeEntry reads what encodeEntry wrote.
func decodeEntry(entry []byte) ([]command, error) {
	if len(entry) == 0 || entry[0] != entryVersion {
		return nil, errors.New("decode entry: not an entry of a known version")
	}
	var wire []wireCmd
	if err := decode(entry[1:], &wire); err != nil {
		return nil, fmt.Errorf("decode entry: %w", err)
	}
	cmds := make([]command, len(wire))
	for i, w := range wire {
		c, err := newCommand(w.Kind)
		if err != nil {
			return nil, fmt.Errorf("decode entry: %w", err)
		}
		if err := decode(w.Body, c); err != nil {
			return nil, fmt.Errorf("decode command %d: %w", w.Kind, err)
		}
		cmds[i] = c
	}
	return cmds, nil
}

// outcome is what one command's apply returned.
type outcome struct {
	val any
	err error
}

// Applied is what applying one entry gave: its index and, for each of its
// commands in order, its answer. Options.Replicate returns the one
// ApplyEntry made on this node, which the writer hands to the requests
// that made the commands.
type Applied struct {
	// Index is the entry's index (meta "applied_index" once applied).
	Index    uint64
	outcomes []outcome
}

// Outcome is what the i-th command of the entry gave back: its answer's
// value and its refusal (a *syncproto.Error), for tests that compare two
// nodes' answers.
func (a *Applied) Outcome(i int) (any, error) {
	return a.outcomes[i].val, a.outcomes[i].err
}

// Len is how many commands the entry held.
func (a *Applied) Len() int { return len(a.outcomes) }

// AppliedIndex is the index of the last group applied: the store's own
// count of group commits on a single node, the raft index in a cluster.
func (s *Store) AppliedIndex() uint64 { return s.applied.Load() }

// ApplyEntry applies an entry that Options.Replicate was given, on this
// node or another, as the entry's index: what a replicated store's state
// machine calls for each committed entry, in index order. An entry at or
// below the applied index was applied already (a node that replays its
// log after a restart) and is skipped. A group that fails as a whole
// (anything but a command's protocol error) is not recorded as applied
// and its error is returned: the node cannot go on without it.
func (s *Store) ApplyEntry(index uint64, entry []byte) (*Applied, error) {
	cmds, err := decodeEntry(entry)
	if err != nil {
		return nil, err
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if index <= s.applied.Load() {
		return &Applied{Index: index, outcomes: make([]outcome, len(cmds))}, nil
	}
	s.fromLog = true
	out, err := s.applyGroup(index, cmds)
	s.fromLog = false
	if err != nil {
		return nil, err
	}
	return &Applied{Index: index, outcomes: out}, nil
}

// Entry is one committed entry of the replicated log and its index.
type Entry struct {
	Index uint64
	Data  []byte
}

// ApplyEntries is ApplyEntry for consecutive committed entries, in index
// order, applied in one transaction (applyGroups). It returns the apply of
// each entry up to the first that fails as a whole, and that failure:
// when the joint transaction fails, the entries are applied again one by
// one, so those before the failing one are applied and recorded as usual.
func (s *Store) ApplyEntries(entries []Entry) ([]*Applied, error) {
	groups := make([][]command, len(entries))
	for i, e := range entries {
		cmds, err := decodeEntry(e.Data)
		if err != nil {
			// Applied one by one, the entries before it go in.
			return s.applyEach(entries)
		}
		groups[i] = cmds
	}
	s.applyMu.Lock()
	applied := make([]*Applied, len(entries))
	var indexes []uint64
	var fresh [][]command
	for i, e := range entries {
		if e.Index <= s.applied.Load() {
			applied[i] = &Applied{Index: e.Index, outcomes: make([]outcome, len(groups[i]))}
			continue
		}
		indexes = append(indexes, e.Index)
		fresh = append(fresh, groups[i])
	}
	if len(fresh) == 0 {
		s.applyMu.Unlock()
		return applied, nil
	}
	s.fromLog = true
	out, err := s.applyGroups(indexes, fresh)
	s.fromLog = false
	s.applyMu.Unlock()
	if err != nil {
		return s.applyEach(entries)
	}
	j := 0
	for i := range applied {
		if applied[i] == nil {
			applied[i] = &Applied{Index: entries[i].Index, outcomes: out[j]}
			j++
		}
	}
	return applied, nil
}

// applyEach applies entries one by one up to the first that fails.
func (s *Store) applyEach(entries []Entry) ([]*Applied, error) {
	applied := make([]*Applied, 0, len(entries))
	for _, e := range entries {
		a, err := s.ApplyEntry(e.Index, e.Data)
		if err != nil {
			return applied, err
		}
		applied = append(applied, a)
	}
	return applied, nil
}

// applyGroup runs cmds in one transaction that also records index as the
// last applied, then does what follows a commit (the cache, the photos'
// files, the held pulls), and returns each command's outcome. A command
// refused with a protocol error is answered with it; any other error rolls
// back the whole group and is returned. The caller holds applyMu.
func (s *Store) applyGroup(index uint64, cmds []command) ([]outcome, error) {
	out, err := s.applyGroups([]uint64{index}, [][]command{cmds})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// applyGroups is applyGroup for consecutive groups at once, in one
// transaction that records the last of indexes as applied: what raft's
// batches of committed entries cost a node of a cluster is then one commit
// and one fsync, not one per entry. An error in any group rolls back them
// all.
func (s *Store) applyGroups(indexes []uint64, groups [][]command) ([][]outcome, error) {
	clear(s.batch)
	clear(s.touched)
	clear(s.unlink)
	s.stats.reset()
	s.afterCommit = s.afterCommit[:0]
	out := make([][]outcome, len(groups))
	n := 0
	for i, cmds := range groups {
		out[i] = make([]outcome, len(cmds))
		n += len(cmds)
	}
	index := indexes[len(indexes)-1]
	txid := 0
	// The wall clock here times the commit for OnCommit; it writes nothing.
	start := time.Now()
	pagesBefore := s.pageAlloc()
	err := s.db.Update(func(tx *bolt.Tx) error {
		txid = tx.ID()
		schema.SetFill(tx)
		for g, cmds := range groups {
			for i, c := range cmds {
				out[g][i].val, out[g][i].err = c.apply(s, tx)
				if out[g][i].err != nil && syncproto.AsError(out[g][i].err) == nil {
					return out[g][i].err
				}
			}
		}
		if err := s.stats.flush(tx); err != nil {
			return err
		}
		return tx.Bucket(schema.BucketMeta).Put(schema.KeyAppliedIndex, schema.U64(index))
	})
	if s.onCommit != nil {
		s.onCommit(n, time.Since(start), err != nil)
	}
	if err != nil {
		// Nothing of the group reached the file, so nothing of it may
		// reach the cache.
		clear(s.batch)
		return nil, fmt.Errorf("commit: %w", err)
	}
	if w, weighed := groupsWeight(groups); weighed {
		s.sizer.observe(s.pageAlloc()-pagesBefore, w)
	}
	s.cache.merge(s.batch, txid)
	for _, f := range s.afterCommit {
		f()
	}
	// Only now: who sees the group applied (a cluster's catch-up, a
	// test waiting for the nodes to agree) also sees what it did in
	// memory, a new incarnation, signing keys, the cache.
	s.applied.Store(index)
	// Before the answers, and before the next transaction can store the
	// same photo again.
	s.unlinkPhotos()
	// Before the answers: a device whose push is acknowledged finds its
	// held pulls already woken.
	s.notify.wake(s.touched)
	s.progressed()
	return out, nil
}

// groupsWeight is the weight of the commands of groups, and whether each
// weighed itself: a sweep, a compaction or an administrator's command
// weighs a default and may dirty megabytes, which would tell the sizer
// nothing of what the next pushes cost.
func groupsWeight(groups [][]command) (int, bool) {
	n, weighedAll := 0, true
	for _, cmds := range groups {
		for _, c := range cmds {
			n += weight(c)
			if _, ok := c.(weighed); !ok {
				weighedAll = false
			}
		}
	}
	return n, weighedAll
}

// pageAlloc is the bytes of pages the store's commits have allocated so
// far: a commit writes exactly those.
func (s *Store) pageAlloc() int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}
