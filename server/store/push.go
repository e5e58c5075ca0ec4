package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Push handles a device's batch of ops, each exactly once, in client_seq
// order, and returns once the batch is durable. actor is the token's user and
// device. It returns out_of_order (nothing applied) when the batch skips a
// client_seq, device_revoked for a revoked device, and forbidden when the
// device is not the actor's.
func (s *Store) Push(ctx context.Context, actor syncproto.Actor, ops []syncproto.Op) (*syncproto.PushResponse, error) {
	sorted, err := pushable(ops)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(sorted))
	for i := range sorted {
		ids[i] = sorted[i].WarningID
	}
	warmed := s.warm(ids)
	return submit[*syncproto.PushResponse](ctx, s, &pushCmd{Actor: principalOf(actor), Ops: sorted, Limits: s.warningLimits, warmed: warmed})
}

// pushCmd is a device's batch of ops, in client_seq order, received at Now.
type pushCmd struct {
	Actor  principal               `json:"actor"`
	Ops    []syncproto.Op          `json:"ops"`
	Now    time.Time               `json:"now"`
	Limits syncproto.WarningLimits `json:"limits"`
	// warmed are the states Push read before it submitted the command
	// (warm); not in the entry: a command applied from the replicated
	// log reads its states as it applies.
	warmed *warmedStates
}

func (*pushCmd) kind() cmdKind { return cmdPush }

// weight is about what the push's ops make in the store: the log entry,
// the state and the indexes (some 600 bytes an op in the load program's
// bucket table) and the text they carry.
func (c *pushCmd) weight() int {
	n := 0
	for i := range c.Ops {
		b := &c.Ops[i].Body
		n += 600 + len(b.Notes) + len(b.Comment) + 70*len(b.Photos)
	}
	return n
}

func (c *pushCmd) stamp(now time.Time) { c.Now = now.UTC() }

func (c *pushCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	s.warmed = c.warmed
	defer func() { s.warmed = nil }()
	return s.push(tx, c.Actor.actor(), c.Ops, c.Now, c.Limits)
}

// pushable validates a batch's ops and returns them in client_seq order.
func pushable(ops []syncproto.Op) ([]syncproto.Op, error) {
	// A malformed op fails the whole request before anything is written:
	// a client must not be able to burn client_seqs with garbage, and the
	// SDK never sends what Validate refuses.
	for i := range ops {
		if err := ops[i].Validate(); err != nil {
			field, _ := err.Details["field"].(string)
			return nil, syncproto.InvalidField(fmt.Sprintf("ops[%d].%s", i, field), "op %d: %s", i, err.Message)
		}
	}
	sorted := slices.Clone(ops)
	slices.SortStableFunc(sorted, func(a, b syncproto.Op) int {
		switch {
		case a.ClientSeq < b.ClientSeq:
			return -1
		case a.ClientSeq > b.ClientSeq:
			return 1
		}
		return 0
	})
	return sorted, nil
}

// push applies a batch of ops received at now, within limits.
func (s *Store) push(tx *bolt.Tx, actor syncproto.Actor, ops []syncproto.Op, now time.Time, limits syncproto.WarningLimits) (*syncproto.PushResponse, error) {
	dev, err := s.activeDevice(tx, actor)
	if err != nil {
		return nil, err
	}
	// Check the whole batch against last_client_seq before writing
	// anything: a gap fails it whole.
	last := dev.LastClientSeq
	for _, op := range ops {
		if op.ClientSeq == last+1 {
			last++
		} else if op.ClientSeq > last+1 {
			return nil, syncproto.Errorf(syncproto.CodeOutOfOrder,
				"op with client_seq %d skips ahead; send from client_seq %d", op.ClientSeq, dev.LastClientSeq+1).
				With("expected_client_seq", dev.LastClientSeq+1)
		}
	}
	user, err := activeUser(tx, actor.UserID, syncproto.CodeForbidden)
	if err != nil {
		return nil, err
	}
	// Scope and role come from the stored user, not the token, so a user
	// moved or demoted since the token was issued acts with what they have now.
	actor = user.Actor(actor.DeviceID)
	resp := &syncproto.PushResponse{Results: make([]syncproto.Result, 0, len(ops))}
	results := tx.Bucket(schema.BucketResults)
	for i := range ops {
		op := &ops[i]
		key := resultKey(dev.ID, op.ClientSeq)
		if op.ClientSeq <= dev.LastClientSeq {
			var stored syncproto.Result
			found, err := getResult(results, key, op.ClientSeq, &stored)
			if err != nil {
				return nil, err
			}
			switch {
			case !found:
				resp.Results = append(resp.Results, syncproto.Result{OpID: op.ID, ClientSeq: op.ClientSeq, Status: syncproto.StatusDuplicate})
			case stored.OpID != op.ID:
				resp.Results = append(resp.Results, syncproto.Result{
					OpID: op.ID, ClientSeq: op.ClientSeq, Status: syncproto.StatusRejected, Code: syncproto.CodeSeqReused,
					Message: "this client_seq was already used by another op; it was not applied",
				})
			default:
				stored.Status = syncproto.StatusDuplicate
				resp.Results = append(resp.Results, stored)
			}
			continue
		}
		res, err := s.applyOp(tx, actor, op, now, limits)
		if err != nil {
			return nil, err
		}
		if err := putResult(results, key, op.ClientSeq, res); err != nil {
			return nil, err
		}
		dev.LastClientSeq = op.ClientSeq
		resp.Results = append(resp.Results, *res)
	}
	dev.LastSeen = now
	if err := put(tx.Bucket(schema.BucketDevices), []byte(dev.ID), dev); err != nil {
		return nil, err
	}
	resp.LastClientSeq = dev.LastClientSeq
	resp.ServerSeq = tx.Bucket(schema.BucketLog).Sequence()
	resp.ReceivedAt = now
	return resp, nil
}

// applyOp logs one new op and applies it, or records why it was rejected,
// as syncproto.ApplyPushed decides.
func (s *Store) applyOp(tx *bolt.Tx, actor syncproto.Actor, op *syncproto.Op, now time.Time, limits syncproto.WarningLimits) (*syncproto.Result, error) {
	seq, err := appendLogSeq(tx)
	if err != nil {
		return nil, err
	}
	w, err := s.loadWarning(tx, op.WarningID)
	if err != nil {
		return nil, err
	}
	dir := &txDir{tx: tx}
	p := syncproto.ApplyPushed(w, op, syncproto.Env{Actor: actor, Version: seq, Now: now, Dir: dir, Limits: limits})
	if dir.err != nil {
		return nil, dir.err
	}
	if p.Warning != nil {
		if err := s.saveWarning(tx, seq, w, p.Warning); err != nil {
			return nil, err
		}
	}
	res := &p.Result
	entry := &LogEntry{Seq: seq, Type: op.Type, EntityID: op.WarningID, ActorID: actor.UserID, DeviceID: actor.DeviceID, ReceivedAt: now, Op: p.Logged, Result: res}
	if err := putLog(tx, entry); err != nil {
		return nil, err
	}
	if p.InHistory {
		if err := addHistory(tx, w.ID, seq); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// activeDevice loads the actor's device and refuses a revoked or foreign
// one, and a token of a session that has ended (checkSession).
func (s *Store) activeDevice(tx *bolt.Tx, actor syncproto.Actor) (*Device, error) {
	var dev Device
	found, err := get(tx.Bucket(schema.BucketDevices), []byte(actor.DeviceID), &dev)
	if err != nil {
		return nil, err
	}
	switch {
	case !found || dev.UserID != actor.UserID:
		return nil, syncproto.Errorf(syncproto.CodeForbidden, "this device is not registered to you; log in again")
	case dev.Revoked:
		return nil, syncproto.Errorf(syncproto.CodeDeviceRevoked, "this device may no longer sync").With("wipe", dev.Wipe)
	}
	if err := checkSession(actor, &dev); err != nil {
		return nil, err
	}
	return &dev, nil
}

// deviceAndUser is activeDevice and then activeUser of the actor, whose
// disabled account is refused with code: what a request's sign-in check
// and a pull read first.
func (s *Store) deviceAndUser(tx *bolt.Tx, actor syncproto.Actor, code string) (*Device, *User, error) {
	dev, err := s.activeDevice(tx, actor)
	if err != nil {
		return nil, nil, err
	}
	u, err := activeUser(tx, actor.UserID, code)
	if err != nil {
		return nil, nil, err
	}
	return dev, u, nil
}

func resultKey(deviceID string, seq uint64) []byte {
	k := make([]byte, 0, len(deviceID)+8)
	k = append(k, deviceID...)
	return append(k, schema.U64(seq)...)
}

// saveWarning stores a warning's new state, and of its attempts those new
// or changed (attempts.go), and moves it between scope indexes: a put
// wherever it now belongs, a remove where it left.
func (s *Store) saveWarning(tx *bolt.Tx, seq uint64, before, after *syncproto.Warning) error {
	if err := putState(tx, after); err != nil {
		return err
	}
	if err := putAttempts(tx, before, after); err != nil {
		return err
	}
	s.batch[after.ID] = after
	if err := s.updateStats(tx, before, after); err != nil {
		return err
	}
	if err := updateList(tx, before, after); err != nil {
		return err
	}
	if err := updateTally(tx, before, after); err != nil {
		return err
	}
	if err := updateRetention(tx, before, after); err != nil {
		return err
	}
	var beforeScopes []string
	if before != nil {
		beforeScopes = warningScopes(before)
	}
	if err := s.indexMove(tx, seq, entWarning, after.ID, beforeScopes, warningScopes(after)); err != nil {
		return err
	}
	return indexPhotos(tx, before, after)
}

// indexPhotos records which warnings refer to each photo, so a photo is
// served only to users whose scope holds one of them.
func indexPhotos(tx *bolt.Tx, before, after *syncproto.Warning) error {
	n := 0
	if before != nil {
		n = len(before.Attempts)
	}
	refs := tx.Bucket(schema.BucketBlobRefs)
	for _, a := range after.Attempts[min(n, len(after.Attempts)):] {
		for _, p := range a.Photos {
			// The reference remembers who named the photo: it grants
			// access only if that person also uploaded it, so naming
			// someone else's hash in an attempt reveals nothing.
			if err := refs.Put([]byte(p+after.ID), []byte(a.By)); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendLogSeq reserves the next log sequence; putLog stores the entry.
func appendLogSeq(tx *bolt.Tx) (uint64, error) {
	return tx.Bucket(schema.BucketLog).NextSequence()
}

func putLog(tx *bolt.Tx, e *LogEntry) error {
	b := tx.Bucket(schema.BucketLog)
	return putLogEntry(b, e)
}
