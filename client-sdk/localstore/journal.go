package localstore

import (
	"encoding/binary"
	"time"

	"github.com/fieldsync/fieldsync/syncproto"
)

// JournalOp is an op the server applied and a pull confirmed. It left the
// outbox then, but stays here for a while: if the server is restored from
// a backup taken before it was applied, the server no longer holds it and
// this device is the only place it still exists.
type JournalOp struct {
	// Op is the op as it was last sent, under the client_seq the server
	// applied it with.
	Op syncproto.Op `json:"op"`
	// Confirmed is when a pull confirmed it, by the device's clock.
	Confirmed time.Time `json:"confirmed"`
}

// PutJournal keeps a confirmed op under its client_seq.
func (t *Tx) PutJournal(j *JournalOp) error {
	return t.put(bucketJournal, seqKey(j.Op.ClientSeq), j)
}

// DeleteJournal forgets a confirmed op.
func (t *Tx) DeleteJournal(seq uint64) error {
	return t.tx.Bucket(bucketJournal).Delete(seqKey(seq))
}

// Journal lists the confirmed ops with a client_seq of at least from, in
// client_seq order.
func (t *Tx) Journal(from uint64) ([]JournalOp, error) {
	var out []JournalOp
	c := t.tx.Bucket(bucketJournal).Cursor()
	for k, v := c.Seek(seqKey(from)); k != nil; k, v = c.Next() {
		plain, err := t.s.unseal(v, append(append([]byte{}, bucketJournal...), k...))
		if err != nil {
			return nil, err
		}
		var j JournalOp
		if err := unmarshal(plain, &j); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// LastJournalSeq is the highest client_seq in the journal, and 0 when it
// is empty. It decrypts nothing.
func (t *Tx) LastJournalSeq() uint64 {
	k, _ := t.tx.Bucket(bucketJournal).Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// PruneJournal drops confirmed ops from the lowest client_seq up, while
// the journal holds more than max of them or the op was confirmed before
// cutoff. It stops at the first op it keeps, so what stays is always
// every op after some point: the ops a restored server may lack are the
// newest. It returns how many it dropped.
func (t *Tx) PruneJournal(cutoff time.Time, max int) (int, error) {
	b := t.tx.Bucket(bucketJournal)
	// Counted by walking the keys: Bucket.Stats reads committed pages and
	// misses what this transaction changed.
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	dropped := 0
	for k, v := c.First(); k != nil; k, v = c.First() {
		if n-dropped <= max {
			plain, err := t.s.unseal(v, append(append([]byte{}, bucketJournal...), k...))
			if err != nil {
				return dropped, err
			}
			var j JournalOp
			if err := unmarshal(plain, &j); err != nil {
				return dropped, err
			}
			if !j.Confirmed.Before(cutoff) {
				break
			}
		}
		if err := c.Delete(); err != nil {
			return dropped, err
		}
		dropped++
	}
	return dropped, nil
}

// DeleteJournalNotHeld forgets the confirmed ops on warnings not in held:
// those warnings left the device, and their personal data goes with them.
// It returns how many it dropped.
func (t *Tx) DeleteJournalNotHeld(held map[string]*syncproto.Warning) (int, error) {
	var drop [][]byte
	c := t.tx.Bucket(bucketJournal).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		plain, err := t.s.unseal(v, append(append([]byte{}, bucketJournal...), k...))
		if err != nil {
			return 0, err
		}
		var j JournalOp
		if err := unmarshal(plain, &j); err != nil {
			return 0, err
		}
		if _, ok := held[j.Op.WarningID]; !ok {
			drop = append(drop, append([]byte(nil), k...))
		}
	}
	b := t.tx.Bucket(bucketJournal)
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

// ClearJournal forgets every confirmed op: the device starts afresh or may
// no longer sync, and the ops' personal data must go.
func (t *Tx) ClearJournal() error {
	if err := t.tx.DeleteBucket(bucketJournal); err != nil {
		return err
	}
	_, err := t.tx.CreateBucket(bucketJournal)
	return err
}
