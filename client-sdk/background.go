package clientsdk

import (
	"context"
	"time"
)

// background is the optional sync loop.
type background struct {
	cancel context.CancelFunc
	kick   chan struct{}
	done   chan struct{}
}

// StartBackgroundSync syncs every interval, soon after each local write,
// and after a failure with exponential backoff and jitter, until
// StopBackgroundSync or Close. It stops by itself when the device is
// revoked or logged out.
func (c *Client) StartBackgroundSync(interval time.Duration) {
	c.StopBackgroundSync()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, kick: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	c.background = b
	c.mu.Unlock()
	go func() {
		defer close(b.done)
		failures := 0
		wait := time.Duration(0)
		for {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-b.kick:
				t.Stop()
			}
			_, err := c.Sync(ctx)
			switch {
			case err == nil:
				failures, wait = 0, interval
			case !Transient(err):
				if st := c.Status(); st.Revoked || !st.LoggedIn {
					return
				}
				failures++
				wait = c.backoff(failures, err)
			default:
				failures++
				wait = c.backoff(failures, err)
			}
		}
	}()
}

// StopBackgroundSync stops the loop and waits for a sync in progress.
func (c *Client) StopBackgroundSync() {
	c.mu.Lock()
	b := c.background
	c.background = nil
	c.mu.Unlock()
	if b != nil {
		b.cancel()
		<-b.done
	}
}

// kickBackground asks the loop to sync soon after a local write.
func (c *Client) kickBackground() {
	c.mu.RLock()
	b := c.background
	c.mu.RUnlock()
	if b != nil {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}
