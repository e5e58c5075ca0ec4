package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientsdk "github.com/fieldsync/fieldsync/client-sdk"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/internal/testwait"
	"github.com/fieldsync/fieldsync/server/cluster"
	"github.com/fieldsync/fieldsync/server/servertest"
	"github.com/fieldsync/fieldsync/syncproto"
)

// photoFile is where m keeps the photo sum.
func photoFile(m *member, sum string) string {
	return filepath.Join(m.dir, "blobs", sum[:2], sum)
}

// holds reports whether m's disk holds exactly photo under sum.
func holds(m *member, sum string, photo []byte) bool {
	got, err := os.ReadFile(photoFile(m, sum))
	return err == nil && bytes.Equal(got, photo)
}

// holders counts the running nodes that hold the photo.
func (c *testCluster) holders(sum string, photo []byte) int {
	n := 0
	for _, m := range c.running() {
		if holds(m, sum, photo) {
			n++
		}
	}
	return n
}

// sendPhoto records a visit with the photo on the phone and syncs: the
// photo is uploaded, and acknowledged, before Sync returns.
func (p *phone) sendPhoto(warningID string, photo []byte) {
	p.t.Helper()
	path := filepath.Join(p.t.TempDir(), "photo.png")
	if err := os.WriteFile(path, photo, 0o600); err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.sdk.RecordAttempt(warningID, clientsdk.Attempt{Method: syncproto.MethodVisit, Reached: true, Outcome: syncproto.OutcomeDissuaded, Photos: []string{path}}); err != nil {
		p.t.Fatal(err)
	}
	rep, err := p.sdk.Sync(context.Background())
	if err != nil || rep.Photos != 1 {
		p.t.Fatalf("sync with a photo: %+v %v, want the photo sent", rep, err)
	}
}

// TestCluster_Photos: a photo uploaded through a follower is on a
// majority of the nodes by the time it is acknowledged, and on all three
// soon after; a node that lost its file, or was down during the upload,
// fetches it from a peer, and refuses a peer's bytes that do not hash to
// the photo; a node alone refuses an upload with no_quorum and stores
// nothing.
func TestCluster_Photos(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 3)
	c.members[0].srv.LoadCity(t)
	w := c.members[0].srv.Import(t, "center1",
		servertest.FeedRow("R1", servertest.UnitVillA1, syncproto.RiskHigh, time.Now().Add(-time.Hour)))
	lead := c.leader()
	var follower *member
	for _, m := range c.members {
		if m != lead {
			follower = m
			break
		}
	}
	a := newPhone(t, follower.srv.URL, "a1")
	a.sync()

	photo, sum := servertest.PNG("现场照片，第一张")
	a.sendPhoto(w["R1"], photo)
	if n := c.holders(sum, photo); n < 2 {
		t.Fatalf("%d nodes hold the photo when its upload is acknowledged, want a majority (2 of 3)", n)
	}
	if !holds(follower, sum, photo) {
		t.Fatal("the node that received the photo lacks it")
	}
	testwait.Until(t, "the photo on every node", func() bool { return c.holders(sum, photo) == 3 })
	c.waitConverged("the photo's metadata on every node")

	// A node that lost the file fetches it from a peer when asked.
	lost := c.members[2]
	if lost == follower {
		lost = c.members[1]
	}
	if err := os.Remove(photoFile(lost, sum)); err != nil {
		t.Fatal(err)
	}
	leadA := lost.srv.Login(t, "leadA", servertest.CityPassword)
	if got, err := leadA.GetBlob(ctx, sum); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("the photo from %s, which lost it: %d bytes, %v", lost.id, len(got), err)
	}
	if !holds(lost, sum, photo) {
		t.Fatalf("%s served the photo without keeping it", lost.id)
	}

	// Peers whose bytes do not hash to the photo are refused: the node
	// says it cannot serve it now, and keeps none of their bytes.
	if err := os.Remove(photoFile(lost, sum)); err != nil {
		t.Fatal(err)
	}
	wrong := append([]byte("X"), photo[1:]...)
	for _, m := range c.running() {
		if m != lost {
			if err := os.WriteFile(photoFile(m, sum), wrong, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err := leadA.GetBlob(ctx, sum)
	var perr *syncproto.Error
	if !errors.As(err, &perr) || perr.Code != syncproto.CodeUnavailable || perr.Details["reason"] != "photo_not_here" {
		t.Fatalf("the photo when every peer sends other bytes: %v, want unavailable, photo_not_here", err)
	}
	if _, err := os.Stat(photoFile(lost, sum)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s kept a file of bytes that do not match: %v", lost.id, err)
	}
	if err := os.WriteFile(photoFile(follower, sum), photo, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := leadA.GetBlob(ctx, sum); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("the photo once one peer holds it again: %d bytes, %v", len(got), err)
	}

	// A node down during an upload fetches the photo once it is back.
	down := lost
	c.stop(down)
	photo2, sum2 := servertest.PNG("现场照片，第二张")
	a.sendPhoto(w["R1"], photo2)
	if n := c.holders(sum2, photo2); n != 2 {
		t.Fatalf("%d of the 2 nodes running hold the photo when its upload is acknowledged", n)
	}
	c.restart(down)
	testwait.Until(t, "the photo sent while "+down.id+" was down, on it", func() bool { return holds(down, sum2, photo2) })
	c.waitConverged("the nodes after the restart")

	// A node alone cannot make a majority: the upload is refused with
	// no_quorum and Retry-After, and nothing of it is stored.
	alone := follower
	for _, m := range c.running() {
		if m != alone {
			c.stop(m)
		}
	}
	photo3, sum3 := servertest.PNG("现场照片，第三张")
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, alone.srv.URL+"/v1/blobs/"+sum3, bytes.NewReader(photo3))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+leadA.Login.AccessToken)
	req.Header.Set("Content-Type", "image/png")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("an upload to a node alone: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	client := remote.New(alone.srv.URL)
	client.SetToken(leadA.Login.AccessToken)
	_, err = client.PutBlob(ctx, sum3, "image/png", photo3)
	if !errors.As(err, &perr) || perr.Code != syncproto.CodeUnavailable || perr.Details["reason"] != cluster.ReasonNoQuorum {
		t.Fatalf("an upload to a node alone: %v, want unavailable with reason no_quorum", err)
	}
	if m, err := alone.st.BlobMeta(sum3); err != nil || m != nil {
		t.Fatalf("the refused photo's metadata: %+v %v", m, err)
	}
}
