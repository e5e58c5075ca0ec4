package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/fieldsync/fieldsync/internal/fakeclock"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// testGrace is the refresh grace window of these tests.
const testGrace = 5 * time.Minute

// refreshWorld is a store holding the small test city with its cadre a1
// signed in on one device, on a clock that moves only when a test moves
// it. Tokens are named by number; the store sees only their hashes, as it
// does in production.
type refreshWorld struct {
	st     *store.Store
	clock  *fakeclock.Clock
	user   store.User
	device string
	grace  time.Duration
	minted int
}

func newRefreshWorld(tb testing.TB) *refreshWorld {
	tb.Helper()
	ctx := context.Background()
	w := &refreshWorld{clock: fakeclock.At(fixtureStart), device: "00000000-0000-4000-8000-0000000000a1", grace: testGrace}
	st, err := store.Open(tb.TempDir(), store.Options{Create: true, NoSync: true, Now: w.clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	w.st = st
	w.user = servertest.LoadStore(tb, st, servertest.City())["a1"]
	if _, err := st.Login(ctx, &w.user, store.SignIn{DeviceID: w.device, Name: "phone", Platform: "test", RefreshHash: w.token(0), RefreshTTL: 30 * 24 * time.Hour}); err != nil {
		tb.Fatal(err)
	}
	return w
}

// token is the hash of token n; 0 is the one Login stored.
func (w *refreshWorld) token(n int) [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "refresh token %d", n))
}

// refresh presents token n and, when the store takes it, returns the
// number of the successor it stored.
func (w *refreshWorld) refresh(n int) (next int, graced bool, err error) {
	w.minted++
	sess, err := w.st.Refresh(context.Background(), w.token(n), w.device, w.token(w.minted), 30*24*time.Hour, w.grace)
	if err == nil && (sess.User == nil || sess.User.ID != w.user.ID) {
		return 0, false, fmt.Errorf("refresh answered user %+v, want %s", sess.User, w.user.ID)
	}
	return w.minted, sess.Graced, err
}

// mustRefresh presents token n, which must work, as a plain rotation or
// as a grace retry as graced says.
func (w *refreshWorld) mustRefresh(tb testing.TB, n int, graced bool) int {
	tb.Helper()
	next, got, err := w.refresh(n)
	if err != nil {
		tb.Fatalf("refresh with token %d: %v", n, err)
	}
	if got != graced {
		tb.Fatalf("refresh with token %d: graced %v, want %v", n, got, graced)
	}
	return next
}

// wantReused presents token n, which must end the chain.
func (w *refreshWorld) wantReused(tb testing.TB, n int) {
	tb.Helper()
	if _, _, err := w.refresh(n); !errors.Is(err, store.ErrRefreshReused) {
		tb.Fatalf("refresh with token %d: %v, want ErrRefreshReused", n, err)
	}
}

// wantEnded presents token n, which must be refused without being taken
// for reuse: its chain has ended already.
func (w *refreshWorld) wantEnded(tb testing.TB, n int) {
	tb.Helper()
	_, _, err := w.refresh(n)
	if syncproto.ErrorCode(err) != syncproto.CodeUnauthorized || errors.Is(err, store.ErrRefreshReused) {
		tb.Fatalf("refresh with token %d of an ended chain: %v, want unauthorized", n, err)
	}
}

func TestStore_Refresh_Rotates(t *testing.T) {
	w := newRefreshWorld(t)
	b := w.mustRefresh(t, 0, false)
	w.clock.Add(time.Hour)
	c := w.mustRefresh(t, b, false)
	w.mustRefresh(t, c, false)
}

// The answer to a refresh was lost: the phone presents the spent token
// again, gets a new pair, and goes on with it. The successor it never
// received is retired: presenting it later ends the chain.
func TestStore_Refresh_GraceRetry(t *testing.T) {
	w := newRefreshWorld(t)
	lost := w.mustRefresh(t, 0, false)
	w.clock.Add(testGrace - time.Second)
	live := w.mustRefresh(t, 0, true)
	if live == lost {
		t.Fatal("the retry got the lost successor back")
	}
	w.clock.Add(time.Hour)
	next := w.mustRefresh(t, live, false)
	w.wantReused(t, lost)
	w.wantEnded(t, next)
}

// Each retry in the window retires the unused successor before it, so the
// phone holds one live token, the newest.
func TestStore_Refresh_GraceRetriesRetireEachOther(t *testing.T) {
	for _, retired := range []int{0, 1} {
		t.Run(fmt.Sprintf("Retired%d", retired+1), func(t *testing.T) {
			w := newRefreshWorld(t)
			successors := []int{w.mustRefresh(t, 0, false)}
			w.clock.Add(time.Minute)
			successors = append(successors, w.mustRefresh(t, 0, true))
			w.clock.Add(time.Minute)
			successors = append(successors, w.mustRefresh(t, 0, true))
			w.wantReused(t, successors[retired])
			w.wantEnded(t, successors[2])
		})
	}
	t.Run("NewestLives", func(t *testing.T) {
		w := newRefreshWorld(t)
		w.mustRefresh(t, 0, false)
		w.mustRefresh(t, 0, true)
		third := w.mustRefresh(t, 0, true)
		w.mustRefresh(t, third, false)
	})
}

// The window is counted from the first use: retries do not stretch it.
func TestStore_Refresh_GraceWindowFromFirstUse(t *testing.T) {
	w := newRefreshWorld(t)
	w.mustRefresh(t, 0, false)
	w.clock.Add(testGrace - time.Minute)
	live := w.mustRefresh(t, 0, true)
	w.clock.Add(2 * time.Minute)
	w.wantReused(t, 0)
	w.wantEnded(t, live)
}

func TestStore_Refresh_ReuseAfterWindow(t *testing.T) {
	w := newRefreshWorld(t)
	successor := w.mustRefresh(t, 0, false)
	w.clock.Add(testGrace + time.Second)
	w.wantReused(t, 0)
	w.wantEnded(t, successor)
}

// Once the phone used the successor, the old token coming back is not a
// lost answer: it was copied. Every session of the device ends.
func TestStore_Refresh_ReuseAfterSuccessorUsed(t *testing.T) {
	w := newRefreshWorld(t)
	before, _, err := w.st.Device(w.device)
	if err != nil {
		t.Fatal(err)
	}
	b := w.mustRefresh(t, 0, false)
	c := w.mustRefresh(t, b, false)
	w.wantReused(t, 0)
	w.wantEnded(t, c)
	if d, ok, err := w.st.Device(w.device); err != nil || !ok || d.RefreshGen != before.RefreshGen+1 || d.Session == before.Session {
		t.Fatalf("device after reuse: %+v %v %v, want the next refresh generation and a new session", d, ok, err)
	}
}

// Only the token just before the live one gets grace, never one two
// rotations back, even within the window.
func TestStore_Refresh_TwoGenerationsBack(t *testing.T) {
	w := newRefreshWorld(t)
	b := w.mustRefresh(t, 0, false)
	w.mustRefresh(t, b, false)
	// b is just before the live token: a retry of it is graced.
	live := w.mustRefresh(t, b, true)
	w.wantReused(t, 0)
	w.wantEnded(t, live)
}

func TestStore_Refresh_NoGrace(t *testing.T) {
	w := newRefreshWorld(t)
	w.grace = -1
	successor := w.mustRefresh(t, 0, false)
	w.wantReused(t, 0)
	w.wantEnded(t, successor)
}

// A retry finds the chain as logout, revocation and a disabled account
// left it: the grace opens nothing they closed.
func TestStore_Refresh_GraceAfterChainEnded(t *testing.T) {
	ctx := context.Background()
	t.Run("Logout", func(t *testing.T) {
		w := newRefreshWorld(t)
		successor := w.mustRefresh(t, 0, false)
		if err := w.st.Logout(ctx, w.device); err != nil {
			t.Fatal(err)
		}
		w.wantEnded(t, 0)
		w.wantEnded(t, successor)
	})
	t.Run("Revoked", func(t *testing.T) {
		w := newRefreshWorld(t)
		w.mustRefresh(t, 0, false)
		admin := syncproto.Actor{UserID: "system", Role: syncproto.RoleCenter, Unit: "4110"}
		if err := w.st.RevokeDevice(ctx, admin, w.device, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := w.refresh(0); syncproto.ErrorCode(err) != syncproto.CodeDeviceRevoked {
			t.Fatalf("retry on a revoked device: %v", err)
		}
	})
	t.Run("AccountDisabled", func(t *testing.T) {
		w := newRefreshWorld(t)
		successor := w.mustRefresh(t, 0, false)
		system := syncproto.Actor{UserID: "system", Role: syncproto.RoleCenter, Unit: "4110"}
		update := store.UserUpdate{Username: "a1", Active: new(false)}
		if _, err := w.st.UpsertUsers(ctx, system, []store.UserUpdate{update}); err != nil {
			t.Fatal(err)
		}
		w.wantEnded(t, 0)
		// The refused retry changed nothing: once the account is back,
		// the successor works.
		update.Active = new(true)
		if _, err := w.st.UpsertUsers(ctx, system, []store.UserUpdate{update}); err != nil {
			t.Fatal(err)
		}
		w.mustRefresh(t, successor, false)
	})
	t.Run("OtherDevice", func(t *testing.T) {
		w := newRefreshWorld(t)
		successor := w.mustRefresh(t, 0, false)
		if _, err := w.st.Refresh(ctx, w.token(0), "00000000-0000-4000-8000-0000000000ff", w.token(99), time.Hour, testGrace); syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
			t.Fatalf("retry naming another device: %v", err)
		}
		w.mustRefresh(t, successor, false)
	})
}

// oldRefreshToken is the shape of store.RefreshToken before the grace
// added UsedAt and Next.
type oldRefreshToken struct {
	DeviceID string    `json:"device_id"`
	UserID   string    `json:"user_id"`
	Gen      uint64    `json:"gen"`
	Used     bool      `json:"used"`
	Expires  time.Time `json:"expires"`
}

// Refresh records written before the grace decode with no successor and
// no spend time, and need no migration: an unspent one rotates and then
// gets grace like a new one; a spent one gets none, as before.
func TestStore_Refresh_RecordsOfOlderSchema(t *testing.T) {
	const a1Phone, b1Phone = "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000b1"
	dir := copyV1(t)
	records := map[[32]byte]store.RefreshToken{}
	rawView(t, dir, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("refresh")).ForEach(func(k, v []byte) error {
			var rt store.RefreshToken
			rawDecode(t, v, &rt)
			records[[32]byte(k)] = rt
			return nil
		})
	})
	var a1Token, b1Token [32]byte
	var a1Record, b1Record store.RefreshToken
	for hash, rt := range records {
		if !rt.UsedAt.IsZero() || rt.Next != nil {
			t.Fatalf("a schema-1 refresh record decodes with a spend time or successor: %+v", rt)
		}
		switch {
		case rt.Used:
		case rt.DeviceID == a1Phone && rt.Expires.After(a1Record.Expires):
			a1Token, a1Record = hash, rt
		case rt.DeviceID == b1Phone:
			b1Token, b1Record = hash, rt
		}
	}
	if a1Record.UserID == "" || b1Record.UserID == "" {
		t.Fatalf("the fixture lacks unspent refresh tokens of a1's and b1's phones: %d records", len(records))
	}
	// b1's token as the old code left it once spent.
	db, err := bolt.Open(filepath.Join(dir, store.DBFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	spent := oldRefreshToken{DeviceID: b1Record.DeviceID, UserID: b1Record.UserID, Gen: b1Record.Gen, Used: true, Expires: b1Record.Expires}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	if err := enc.Encode(&spent); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("refresh")).Put(b1Token[:], buf.Bytes()) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	clock := fakeclock.At(a1Record.Expires.Add(-24 * time.Hour))
	st, err := store.Open(dir, store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	refresh := func(old [32]byte, device string, next byte) (bool, error) {
		sess, err := st.Refresh(ctx, old, device, [32]byte{next}, 30*24*time.Hour, testGrace)
		return sess.Graced, err
	}
	if graced, err := refresh(a1Token, a1Phone, 1); err != nil || graced {
		t.Fatalf("a schema-1 token: graced %v, %v", graced, err)
	}
	clock.Add(time.Minute)
	if graced, err := refresh(a1Token, a1Phone, 2); err != nil || !graced {
		t.Fatalf("a retry of the schema-1 token spent by this code: graced %v, %v", graced, err)
	}
	if _, err := refresh(b1Token, b1Phone, 3); !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("a token the old code spent, presented again: %v, want ErrRefreshReused", err)
	}
}
