// Package localstore is the SDK's file on the phone: a bbolt database whose
// values are sealed with AES-256-GCM under a key the app keeps in the
// platform keystore. It holds the server state of each warning in scope,
// the directory, the outbox of ops not yet confirmed, the journal of ops
// confirmed lately (kept in case the server is restored from a backup
// older than them), the ops rejected and not yet dismissed, photos waiting
// to upload, and the sync metadata (cursor, tokens, client_seq counter).
//
// It knows nothing of sync: the sync engine applies each pulled page, with
// its cursor, in one transaction, so a crash between pages loses nothing.
package localstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/syncproto"
)

var (
	bucketMeta     = []byte("meta")
	bucketWarnings = []byte("warnings")
	bucketUnits    = []byte("units")
	bucketUsers    = []byte("users")
	bucketOutbox   = []byte("outbox")
	bucketRejected = []byte("rejected")
	bucketPhotos   = []byte("photos")
	bucketJournal  = []byte("journal")

	allBuckets = [][]byte{bucketMeta, bucketWarnings, bucketUnits, bucketUsers, bucketOutbox, bucketRejected, bucketPhotos, bucketJournal}

	keyState = []byte("state")
	keyCheck = []byte("keycheck")
)

// ErrWrongKey is returned by Open when the file was sealed with another key.
var ErrWrongKey = errors.New("the local data was encrypted with another key")

// FileName is the database inside the SDK's folder.
const FileName = "fieldsync-local.db"

// State is the sync metadata, one record.
type State struct {
	DeviceID      string             `json:"device_id"`
	User          syncproto.UserInfo `json:"user"`
	AccessToken   string             `json:"access_token"`
	AccessExpires time.Time          `json:"access_expires"`
	RefreshToken  string             `json:"refresh_token"`
	Cursor        string             `json:"cursor"`
	// ResetPending makes the next pulled page a new base, as a reset does:
	// set when the server could not read the cursor.
	ResetPending bool `json:"reset_pending,omitempty"`
	// NextSeq is the client_seq the next op takes.
	NextSeq uint64 `json:"next_seq"`
	// LastClientSeq is the highest of this device's ops the server has
	// handled, as the last pull said.
	LastClientSeq uint64 `json:"last_client_seq"`
	// Revoked and Wiped record a device_revoked answer.
	Revoked bool `json:"revoked"`
	Wiped   bool `json:"wiped"`
	// Scope is the bucket the cursor was made for; a change of user resets.
	LastSync time.Time `json:"last_sync"`
	// Server is the server address that answered last, of those the app
	// lists: the next start begins there.
	Server string `json:"server,omitempty"`
}

// Op states a person can see.
const (
	OpPending  = "pending"
	OpSent     = "sent"
	OpApplied  = "applied"
	OpRejected = "rejected"
)

// PendingOp is an op in the outbox, or a rejected one kept for the person.
type PendingOp struct {
	Op      syncproto.Op     `json:"op"`
	State   string           `json:"state"`
	Code    string           `json:"code,omitempty"`
	Message string           `json:"message,omitempty"`
	Flags   []syncproto.Flag `json:"flags,omitempty"`
	Version uint64           `json:"version,omitempty"`
}

// Photo is a photo attached to an attempt, stored sealed beside the
// database until the server has it.
type Photo struct {
	SHA256      string    `json:"sha256"`
	ContentType string    `json:"content_type"`
	WarningID   string    `json:"warning_id"`
	Uploaded    bool      `json:"uploaded"`
	Added       time.Time `json:"added"`
	// UploadURL is the server's resumable upload of this photo, once
	// made: a later try continues it from the bytes the server holds.
	UploadURL string `json:"upload_url,omitempty"`
	// Failures counts tries that failed since the last success, and
	// LastError says why the last one did, for the status line.
	Failures  int    `json:"failures,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Store is the local database. Methods are safe for concurrent use.
type Store struct {
	// mu lets Scrub swap the file while no transaction runs.
	mu   sync.RWMutex
	db   *bolt.DB
	dir  string
	aead cipher.AEAD
}

// Open opens (or creates) the store in dir, sealed with key (32 bytes).
func Open(dir string, key []byte) (*Store, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the encryption key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "photos"), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	s := &Store{dir: dir, aead: aead}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	db, err := bolt.Open(filepath.Join(s.dir, FileName), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open local store: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		check := meta.Get(keyCheck)
		if check == nil {
			sealed, err := s.seal([]byte("fieldsync"), keyCheck)
			if err != nil {
				return err
			}
			return meta.Put(keyCheck, sealed)
		}
		if _, err := s.unseal(check, keyCheck); err != nil {
			return ErrWrongKey
		}
		return nil
	})
	if err != nil {
		db.Close()
		return err
	}
	s.db = db
	return nil
}

// Close closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

// Path is the database file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// seal encrypts plain, bound to its key so a value cannot be moved to
// another record.
func (s *Store) seal(plain, key []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plain, key), nil
}

func (s *Store) unseal(sealed, key []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], key)
	if err != nil {
		return nil, fmt.Errorf("decrypt local value: %w", err)
	}
	return plain, nil
}

// marshal and unmarshal keep records as the wire encodes them.
func marshal(v any) ([]byte, error) { return syncproto.MarshalMsgpack(v) }

func unmarshal(data []byte, v any) error { return syncproto.UnmarshalMsgpack(data, v) }

// Tx is a transaction over the store.
type Tx struct {
	s  *Store
	tx *bolt.Tx
}

// View runs fn in a read transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{s: s, tx: tx}) })
}

// Update runs fn in a write transaction, committed (fsynced) when fn
// returns nil.
func (s *Store) Update(fn func(tx *Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{s: s, tx: tx}) })
}

func (t *Tx) put(bucket, key []byte, v any) error {
	plain, err := marshal(v)
	if err != nil {
		return err
	}
	sealed, err := t.s.seal(plain, append(append([]byte{}, bucket...), key...))
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucket).Put(key, sealed)
}

func (t *Tx) get(bucket, key []byte, v any) (bool, error) {
	sealed := t.tx.Bucket(bucket).Get(key)
	if sealed == nil {
		return false, nil
	}
	plain, err := t.s.unseal(sealed, append(append([]byte{}, bucket...), key...))
	if err != nil {
		return false, err
	}
	return true, unmarshal(plain, v)
}

func (t *Tx) each(bucket []byte, fn func(k []byte, plain []byte) error) error {
	return t.tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		plain, err := t.s.unseal(v, append(append([]byte{}, bucket...), k...))
		if err != nil {
			return err
		}
		return fn(k, plain)
	})
}

// values decodes every value of a bucket, in key order.
func values[T any](t *Tx, bucket []byte) ([]T, error) {
	var out []T
	err := t.each(bucket, func(_ []byte, plain []byte) error {
		var v T
		if err := unmarshal(plain, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// State returns the sync metadata (zero when new).
func (t *Tx) State() (State, error) {
	var st State
	_, err := t.get(bucketMeta, keyState, &st)
	return st, err
}

// SetState stores the sync metadata.
func (t *Tx) SetState(st State) error { return t.put(bucketMeta, keyState, st) }

// PutWarning stores a warning's server state.
func (t *Tx) PutWarning(w *syncproto.Warning) error {
	return t.put(bucketWarnings, []byte(w.ID), w)
}

// DeleteWarning removes a warning's server state.
func (t *Tx) DeleteWarning(id string) error {
	return t.tx.Bucket(bucketWarnings).Delete([]byte(id))
}

// Warning returns a warning's server state, or nil.
func (t *Tx) Warning(id string) (*syncproto.Warning, error) {
	var w syncproto.Warning
	found, err := t.get(bucketWarnings, []byte(id), &w)
	if err != nil || !found {
		return nil, err
	}
	return &w, nil
}

// EachWarning calls fn for every stored warning.
func (t *Tx) EachWarning(fn func(w *syncproto.Warning) error) error {
	return t.each(bucketWarnings, func(_ []byte, plain []byte) error {
		var w syncproto.Warning
		if err := unmarshal(plain, &w); err != nil {
			return err
		}
		return fn(&w)
	})
}

// PutUnit and the rest keep the directory a lead's device pulls.
func (t *Tx) PutUnit(u *syncproto.Unit) error { return t.put(bucketUnits, []byte(u.Code), u) }

// DeleteUnit removes a unit from the directory.
func (t *Tx) DeleteUnit(code string) error { return t.tx.Bucket(bucketUnits).Delete([]byte(code)) }

// PutUser stores a directory user.
func (t *Tx) PutUser(u *syncproto.DirectoryUser) error { return t.put(bucketUsers, []byte(u.ID), u) }

// DeleteUser removes a directory user.
func (t *Tx) DeleteUser(id string) error { return t.tx.Bucket(bucketUsers).Delete([]byte(id)) }

// Units lists the directory's units.
func (t *Tx) Units() ([]syncproto.Unit, error) {
	return values[syncproto.Unit](t, bucketUnits)
}

// Users lists the directory's users.
func (t *Tx) Users() ([]syncproto.DirectoryUser, error) {
	return values[syncproto.DirectoryUser](t, bucketUsers)
}

// ClearServerState drops every warning and the directory, for a reset.
// The outbox and rejected ops stay.
func (t *Tx) ClearServerState() error {
	for _, b := range [][]byte{bucketWarnings, bucketUnits, bucketUsers} {
		if err := t.tx.DeleteBucket(b); err != nil {
			return err
		}
		if _, err := t.tx.CreateBucket(b); err != nil {
			return err
		}
	}
	return nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// PutOp stores an outbox op under its client_seq.
func (t *Tx) PutOp(p *PendingOp) error { return t.put(bucketOutbox, seqKey(p.Op.ClientSeq), p) }

// DeleteOp removes an op from the outbox.
func (t *Tx) DeleteOp(seq uint64) error { return t.tx.Bucket(bucketOutbox).Delete(seqKey(seq)) }

// Outbox lists the outbox in client_seq order.
func (t *Tx) Outbox() ([]PendingOp, error) {
	return values[PendingOp](t, bucketOutbox)
}

// PutRejected keeps a rejected op until the person dismisses it.
func (t *Tx) PutRejected(p *PendingOp) error { return t.put(bucketRejected, []byte(p.Op.ID), p) }

// DeleteRejected dismisses a rejected op.
func (t *Tx) DeleteRejected(opID string) (bool, error) {
	b := t.tx.Bucket(bucketRejected)
	if b.Get([]byte(opID)) == nil {
		return false, nil
	}
	return true, b.Delete([]byte(opID))
}

// Rejected lists the rejected ops not yet dismissed.
func (t *Tx) Rejected() ([]PendingOp, error) {
	return values[PendingOp](t, bucketRejected)
}

// PutPhoto records a photo to upload.
func (t *Tx) PutPhoto(p *Photo) error { return t.put(bucketPhotos, []byte(p.SHA256), p) }

// DeletePhoto forgets a photo.
func (t *Tx) DeletePhoto(sum string) error { return t.tx.Bucket(bucketPhotos).Delete([]byte(sum)) }

// Photos lists the recorded photos.
func (t *Tx) Photos() ([]Photo, error) {
	return values[Photo](t, bucketPhotos)
}
