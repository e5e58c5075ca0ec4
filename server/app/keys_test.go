package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// TestVerifyToken_KeyMadeElsewhere: a token signed with a key that reached
// the store after the app loaded its keys (another node of a cluster made
// it) is accepted; a token of a key the store does not hold is not.
func TestVerifyToken_KeyMadeElsewhere(t *testing.T) {
	ctx := context.Background()
	st, a := newApp(t)
	claims := auth.Claims{UserID: "u-1", Role: syncproto.RoleVillage, Unit: "411002001001", DeviceID: "d-1", Session: 1}
	token := func(k auth.Key) string {
		iss, err := auth.NewIssuer([]auth.Key{k}, k.ID, auth.DefaultAccessTTL, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := iss.Issue(claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	stranger, err := auth.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VerifyToken(token(stranger)); syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
		t.Fatalf("a token of a key nobody stored: %v, want unauthorized", err)
	}

	other, err := auth.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddSigningKey(ctx, store.SigningKey{ID: other.ID, Seed: other.Private.Seed(), Created: other.Created}, true); err != nil {
		t.Fatal(err)
	}
	p, err := a.VerifyToken(token(other))
	if err != nil {
		t.Fatalf("a token of a key another node stored: %v", err)
	}
	if p.Actor.UserID != claims.UserID || p.Actor.DeviceID != claims.DeviceID {
		t.Fatalf("the token verified as %+v", p.Actor)
	}
}
