// Package cityload puts people and warnings on a running fieldsync server
// through its admin and feed APIs, for the example programs that start a
// real server in-process (examples/load, examples/twog).
//
// Users go in small requests a few at a time, because the server hashes
// every password with argon2id (about 45 ms of a core each, by design),
// which is most of a setup's time. Feed rows go in chunks well under the
// server's 1 MiB body limit, and their ids come back in row order, so a
// caller can pair each row with the warning it made.
package cityload

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/examples/internal/workpool"
	"github.com/fieldsync/fieldsync/syncproto"
)

// userChunk users per request and userWorkers requests at once keep each
// request short (25 hashes) while using both cores of a small machine.
const (
	userChunk   = 25
	userWorkers = 4
)

// FeedChunk is the most rows per feed request: a row is about 250 bytes of
// MessagePack, so a chunk stays well under the 1 MiB body limit.
const FeedChunk = 2000

// UpsertUsers creates or updates users as admin and returns their ids by
// username.
func UpsertUsers(ctx context.Context, admin *remote.Client, users []syncproto.UserInput) (map[string]string, error) {
	var mu sync.Mutex
	ids := make(map[string]string, len(users))
	err := workpool.Run(userWorkers, (len(users)+userChunk-1)/userChunk, func(i int) error {
		part := users[i*userChunk : min(len(users), (i+1)*userChunk)]
		resp, err := admin.UpsertUsers(ctx, part)
		if err != nil {
			return fmt.Errorf("create users: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, u := range resp.Users {
			ids[u.Username] = u.ID
		}
		return nil
	})
	return ids, err
}

// ImportFeed imports rows as c (a center user, or the admin), FeedChunk at
// a time, and returns the created warnings' ids in row order. A row the
// server refused or took for a duplicate fails the import: the callers
// make every row new and valid, so either is a bug of theirs.
func ImportFeed(ctx context.Context, c *remote.Client, rows []syncproto.FeedWarning) ([]string, error) {
	ids := make([]string, 0, len(rows))
	for start := 0; start < len(rows); start += FeedChunk {
		part := rows[start:min(len(rows), start+FeedChunk)]
		resp, err := c.ImportFeed(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("import feed: %w", err)
		}
		if len(resp.Created) != len(part) {
			return nil, fmt.Errorf("feed created %d of %d warnings (%d invalid, %d duplicates)", len(resp.Created), len(part), len(resp.Invalid), len(resp.Duplicates))
		}
		for i, created := range resp.Created {
			if created.ExternalID != part[i].ExternalID {
				return nil, errors.New("feed answer out of row order")
			}
			ids = append(ids, created.ID)
		}
	}
	return ids, nil
}
