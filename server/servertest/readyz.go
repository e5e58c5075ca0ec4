package servertest

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/freeport"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ClusterHealth reads a cluster node's GET /v1/readyz at url: its role,
// quorum, lag and applied index, from the 200 answer or from the 503
// error's details. ok is false when the node does not answer or says
// nothing of a cluster. The cluster tests and the load program's failover
// run poll it.
func ClusterHealth(ctx context.Context, url string) (h syncproto.ClusterHealth, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/readyz", nil)
	if err != nil {
		return h, false
	}
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return h, false
	}
	defer resp.Body.Close()
	var body struct {
		Cluster *syncproto.ClusterHealth `json:"cluster"`
		Error   *struct {
			Details struct {
				Cluster *syncproto.ClusterHealth `json:"cluster"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil {
		return h, false
	}
	switch {
	case body.Cluster != nil:
		return *body.Cluster, true
	case body.Error != nil && body.Error.Details.Cluster != nil:
		return *body.Error.Details.Cluster, true
	}
	return h, false
}

// FreeAddr is a 127.0.0.1 address no one listens on now: a cluster node's
// addresses must be known before it starts (to name it in --peers) and
// stay the same across its restarts, so they are chosen before it runs.
// It is below the kernel's ephemeral range (freeport), where no listener
// on port 0 or outgoing connection takes it before the node binds it, or
// while a killed node is down.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		tb.Fatal(err)
	}
	return addr
}
