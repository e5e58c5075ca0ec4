package clientsdk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/syncproto"
)

// FetchWarning asks the server for warning id whole, with its attempts'
// notes, places and photos: what a summary pull (Options.PullDetail)
// leaves out. The answer replaces the phone's copy unless that copy is
// newer, so the warning reads whole offline too until its next change
// brings a summary again. It needs the network; the server records the
// read in its audit log.
func (c *Client) FetchWarning(ctx context.Context, id string) (Warning, error) {
	var d struct {
		Warning *syncproto.Warning `json:"warning"`
	}
	err := c.call(ctx, func(ctx context.Context) error {
		return c.remote.Do(ctx, http.MethodGet, "/v1/warnings/"+url.PathEscape(id), nil, &d)
	})
	if err != nil {
		return Warning{}, err
	}
	if d.Warning == nil || d.Warning.ID != id {
		return Warning{}, fmt.Errorf("fetch warning: the server answered without warning %s", id)
	}
	if err := c.keepFetched(d.Warning); err != nil {
		return Warning{}, err
	}
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	w := c.replica.warnings[id]
	if w == nil || w.Version < d.Warning.Version {
		w = d.Warning
	}
	return c.replica.view(w, now), nil
}

// keepFetched stores w, a warning's whole state from the server, in place
// of the phone's copy when that copy is not newer. A warning not on the
// phone is not added: pulls decide what the phone holds. It does not wait
// for a sync in progress; a page of it may bring the summary back, of the
// same version, until the next fetch.
func (c *Client) keepFetched(w *syncproto.Warning) error {
	c.mu.Lock()
	old := c.replica.warnings[w.ID]
	if old == nil || old.Version > w.Version || (old.Version == w.Version && !old.Summary) {
		c.mu.Unlock()
		return nil
	}
	err := c.local.Update(func(tx *localstore.Tx) error { return tx.PutWarning(w) })
	if err == nil {
		c.replica.warnings[w.ID] = w
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("keep the fetched warning on the phone: %w", err)
	}
	c.emit(Event{Kind: EventWarnings, IDs: []string{w.ID}})
	return nil
}
