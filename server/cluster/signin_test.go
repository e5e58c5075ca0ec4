package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/app"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// startCity starts three nodes, loads the test city through the leader
// and waits until every node has it; it returns the leader and its admin.
func startCity(t *testing.T) (*testCluster, *member, *servertest.Device) {
	c := startCluster(t, 3)
	lead := c.leader()
	lead.srv.LoadCity(t)
	admin := lead.srv.Admin(t)
	c.waitConverged("the city on every node")
	return c, lead, admin
}

// holdApplies keeps m's store from applying what raft commits until the
// returned release (also run at the test's end).
func holdApplies(t *testing.T, m *member) (release func()) {
	release = m.node.HoldApplies()
	t.Cleanup(release)
	return release
}

// releaseOnCatchUp releases held applies once a sign-in on m has failed
// and asked m's node to catch up: the sign-in is then waiting.
func releaseOnCatchUp(t *testing.T, m *member, release func()) {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		select {
		case <-m.askedCatchUp:
			release()
		case <-done:
		}
	}()
}

// TestCluster_SignInOnFollowerBehind: a cadre made through the leader
// signs in through a follower that has not applied the account yet: the
// follower catches up with the leader before it answers, and signs the
// cadre in. The same for a password reset and an account enabled again.
func TestCluster_SignInOnFollowerBehind(t *testing.T) {
	ctx := context.Background()
	c, lead, admin := startCity(t)
	f := c.follower()
	active, inactive := true, false

	steps := []struct {
		what     string
		change   syncproto.UserInput
		password string
	}{
		{"a new account", syncproto.UserInput{Username: "cadre-new", Password: "first-password-1", Name: "新村干部", Unit: servertest.UnitVillA1}, "first-password-1"},
		{"a password reset", syncproto.UserInput{Username: "cadre-new", Password: "second-password-2"}, "second-password-2"},
		{"an account enabled again", syncproto.UserInput{Username: "cadre-new", Active: &active}, "second-password-2"},
	}
	for _, step := range steps {
		if step.change.Active != nil {
			// Disabled first, with the follower caught up.
			if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "cadre-new", Active: &inactive}}); err != nil {
				t.Fatal(err)
			}
			c.waitConverged("the account disabled on every node")
		}
		release := holdApplies(t, f)
		if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{step.change}); err != nil {
			t.Fatalf("%s through the leader: %v", step.what, err)
		}
		if f.st.AppliedIndex() >= lead.st.AppliedIndex() {
			t.Fatalf("%s: the follower applied it while held", step.what)
		}
		asked := f.catchUps.Load()
		releaseOnCatchUp(t, f, release)
		if _, err := f.srv.LoginDevice("cadre-new", step.password, uuid.NewString()); err != nil {
			t.Fatalf("sign-in on %s, a follower behind, right after %s through the leader: %v", f.id, step.what, err)
		}
		if f.catchUps.Load() == asked {
			t.Fatalf("%s: the sign-in succeeded without catching up: the follower was not behind, and the test showed nothing", step.what)
		}
		release()
		c.waitConverged("the sign-in on every node")
	}
}

// TestCluster_WrongPasswordOnFollower: a wrong password on a follower is
// still refused once the follower has caught up, and each counts once
// toward the lockout: the threshold's failures are each unauthorized, the
// next is rate_limited.
func TestCluster_WrongPasswordOnFollower(t *testing.T) {
	c, _, _ := startCity(t)
	f := c.follower()
	asked := f.catchUps.Load()
	for i := range app.DefaultLockoutThreshold {
		_, err := f.srv.LoginDevice("a1", "not-the-password-1", uuid.NewString())
		if code := syncproto.ErrorCode(err); code != syncproto.CodeUnauthorized {
			t.Fatalf("wrong password %d on a follower: %v, want unauthorized", i+1, err)
		}
	}
	if got := f.catchUps.Load() - asked; got != app.DefaultLockoutThreshold {
		t.Fatalf("%d of %d failed sign-ins on a follower caught up first", got, app.DefaultLockoutThreshold)
	}
	_, err := f.srv.LoginDevice("a1", servertest.CityPassword, uuid.NewString())
	var perr *syncproto.Error
	if !errors.As(err, &perr) || perr.Code != syncproto.CodeRateLimited {
		t.Fatalf("a sign-in after %d wrong passwords: %v, want rate_limited", app.DefaultLockoutThreshold, err)
	}
}

// TestCluster_RefreshOnFollowerBehind: a refresh token issued through the
// leader is good at once on a follower that has not applied its sign-in:
// the refresh is a write, checked at its place in the log, after the
// sign-in, so the follower needs no catching up for it.
func TestCluster_RefreshOnFollowerBehind(t *testing.T) {
	ctx := context.Background()
	c, lead, _ := startCity(t)
	f := c.follower()
	release := holdApplies(t, f)
	d := lead.srv.Login(t, "a1", servertest.CityPassword)
	signedIn := lead.st.AppliedIndex()
	// The follower forwards the refresh to the leader and answers from
	// its own apply of it, once released: after the leader applied it.
	type result struct {
		resp *syncproto.TokenResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := f.srv.Client().Refresh(ctx, syncproto.RefreshRequest{RefreshToken: d.Login.RefreshToken, DeviceID: d.ID})
		done <- result{resp, err}
	}()
	testwait.Until(t, "the refresh applied on the leader", func() bool { return lead.st.AppliedIndex() > signedIn })
	if f.st.AppliedIndex() >= signedIn {
		t.Fatal("the follower applied the sign-in while held")
	}
	release()
	r := <-done
	if r.err != nil {
		t.Fatalf("a refresh on a follower behind, of a token the leader issued: %v", r.err)
	}
	if r.resp.RefreshToken == "" || r.resp.RefreshToken == d.Login.RefreshToken {
		t.Fatal("the refresh gave no new refresh token")
	}
}

// TestCluster_OldPasswordOnFollowerBehind: after a password reset (or a
// disable) made through the leader, the old password no longer signs in
// through a follower that has not applied the change: the follower checks
// the password against the account as it read it, but the sign-in's entry
// holds only if the account is still that one where the log applies it.
func TestCluster_OldPasswordOnFollowerBehind(t *testing.T) {
	ctx := context.Background()
	c, lead, admin := startCity(t)
	f := c.follower()
	inactive := false

	for _, change := range []struct {
		what  string
		input syncproto.UserInput
	}{
		{"a password reset", syncproto.UserInput{Username: "a1", Password: "a-new-password-3"}},
		{"a disable", syncproto.UserInput{Username: "a2x", Active: &inactive}},
	} {
		release := holdApplies(t, f)
		if _, err := admin.UpsertUsers(ctx, []syncproto.UserInput{change.input}); err != nil {
			t.Fatalf("%s through the leader: %v", change.what, err)
		}
		changed := lead.st.AppliedIndex()
		done := make(chan error, 1)
		go func() {
			_, err := f.srv.LoginDevice(change.input.Username, servertest.CityPassword, uuid.NewString())
			done <- err
		}()
		// The sign-in's entry reaches the leader, which refuses it; the
		// follower answers from its own apply, once released.
		testwait.Until(t, "the sign-in's entry applied on the leader", func() bool { return lead.st.AppliedIndex() > changed })
		if f.st.AppliedIndex() >= changed {
			t.Fatalf("%s: the follower applied it while held, and the test showed nothing", change.what)
		}
		release()
		if err := <-done; syncproto.ErrorCode(err) != syncproto.CodeUnauthorized {
			t.Fatalf("the old password after %s, on a follower behind: %v, want unauthorized", change.what, err)
		}
		c.waitConverged(change.what + " on every node")
	}
}

// TestCluster_CatchUpBehindALeader: a leader's store may not have applied
// every entry raft committed (a leader just elected applies its
// predecessor's last entries after it wins). So a leader's CatchUp waits
// for its own store, and a follower's asks the leader how far it applied
// only after a barrier there: with the applies held and an entry
// committed, neither says it caught up while its store lacks the entry;
// released, each returns once its store applied it.
func TestCluster_CatchUpBehindALeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		follower bool // the follower catches up, both held; else the leader, alone held
	}{
		{"on the leader", false},
		{"on a follower while the leader is behind", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c, lead, admin := startCity(t)
			who := lead
			releases := []func(){holdApplies(t, lead)}
			if tc.follower {
				who = c.follower()
				releases = append(releases, holdApplies(t, who))
			}
			committed := lead.node.Status().CommitIndex
			written := make(chan error, 1)
			go func() {
				_, err := admin.UpsertUsers(ctx, []syncproto.UserInput{{Username: "cadre-late", Password: "late-password-1", Name: "迟到村干部", Unit: servertest.UnitVillA1}})
				written <- err
			}()
			testwait.Until(t, "the account's entry committed on the leader", func() bool { return lead.node.Status().CommitIndex > committed })
			target := lead.node.Status().CommitIndex
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err := who.node.CatchUp(short)
			cancel()
			if err == nil && who.st.AppliedIndex() < target {
				t.Fatalf("CatchUp returned with the store at index %d, before the committed entry %d", who.st.AppliedIndex(), target)
			}
			for _, release := range releases {
				release()
			}
			if err := <-written; err != nil {
				t.Fatal(err)
			}
			if err := who.node.CatchUp(ctx); err != nil {
				t.Fatalf("CatchUp once released: %v", err)
			}
			if got := who.st.AppliedIndex(); got < target {
				t.Fatalf("CatchUp returned with the store at index %d, before the committed entry %d", got, target)
			}
		})
	}
}
