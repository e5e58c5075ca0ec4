package clientsdk

import (
	"context"
	"errors"
	"time"
)

// background is the optional sync loop.
type background struct {
	cancel context.CancelFunc
	// kick: a local write wants sending soon.
	kick chan struct{}
	// network: the platform says the network is back.
	network chan struct{}
	// foreground: the app came on screen or left it.
	foreground chan struct{}
	done       chan struct{}
}

// StartBackgroundSync syncs every interval, soon after each local write,
// at once when NetworkAvailable says the network is back, and after a
// failure with exponential backoff and jitter capped at RetryPolicy.Max
// (a minute by default), until StopBackgroundSync or Close. While the app
// is in the foreground (SetForeground), it waits for new work by long
// poll instead of the interval, so a new warning shows within seconds. It
// stops by itself when the device is revoked or logged out.
func (c *Client) StartBackgroundSync(interval time.Duration) {
	c.StopBackgroundSync()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, kick: make(chan struct{}, 1), network: make(chan struct{}, 1),
		foreground: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	c.background = b
	foreground := c.foreground
	c.mu.Unlock()
	go func() {
		defer close(b.done)
		l := loop{c: c, b: b, interval: interval, foreground: foreground}
		l.run(ctx)
	}()
}

// loop is the state of the background sync loop.
type loop struct {
	c          *Client
	b          *background
	interval   time.Duration
	foreground bool
	failures   int
	// early counts polls in a row answered empty long before their wait:
	// one is a sync that superseded the poll on the server, several a
	// server (or proxy) that does not hold polls.
	early int
}

func (l *loop) run(ctx context.Context) {
	wait := time.Duration(0)
	for {
		if !l.wait(ctx, wait) {
			return
		}
		_, err := l.c.Sync(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && l.c.photosFailing():
			// Ops and changes are through, photos are not: try them
			// again after a backoff, not a whole interval.
			l.failures++
			wait = l.c.backoff(l.failures, nil)
		case err == nil:
			l.failures, wait = 0, l.interval
		case !Transient(err):
			if st := l.c.Status(); st.Revoked || !st.LoggedIn {
				return
			}
			l.failures++
			wait = l.c.backoff(l.failures, err)
		default:
			l.failures++
			wait = l.c.backoff(l.failures, err)
		}
	}
}

// wait returns when the next sync is due: after d, at a local write
// (unless backing off from failures: a write during an outage must not
// bring the next attempt forward), at once when the network is back. In
// the foreground after a good sync it long-polls until then, applying what
// the polls bring. It returns false when the loop must end.
func (l *loop) wait(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if l.foreground && l.failures == 0 && d > 0 && time.Now().Before(deadline) {
			switch l.poll(ctx) {
			case pollStop:
				return false
			case pollSync:
				return true
			case pollAgain:
				continue
			case pollIdle:
				// The server answered at once with nothing (it does not
				// hold polls): wait out the interval instead.
			}
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
			return true
		case <-l.b.network:
			t.Stop()
			l.failures = 0
			return true
		case <-l.b.foreground:
			t.Stop()
			if l.foreground = l.c.inForeground(); l.foreground {
				// Back on screen: catch up at once.
				return true
			}
		case <-l.b.kick:
			t.Stop()
			if l.failures == 0 {
				return true
			}
		}
	}
}

// What a long poll in the loop ended with.
type pollOutcome int

const (
	pollStop  pollOutcome = iota // the loop ends
	pollSync                     // sync now
	pollAgain                    // poll again
	pollIdle                     // the server does not hold polls
)

// poll waits for new work by one long poll.
func (l *loop) poll(ctx context.Context) pollOutcome {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		changed bool
		err     error
	}
	res := make(chan result, 1)
	started := time.Now()
	go func() {
		changed, err := l.c.Poll(pctx)
		res <- result{changed, err}
	}()
	stop := func() { cancel(); <-res }
	for {
		select {
		case <-ctx.Done():
			stop()
			return pollStop
		case r := <-res:
			switch {
			case r.err != nil:
				// The link failed under the poll: a full sync finds out
				// how, and backs off if it must.
				return pollSync
			case r.changed:
				l.early = 0
				return pollAgain
			case time.Since(started) < l.c.opts.PollWait/2:
				if l.early++; l.early >= 3 {
					l.early = 0
					return pollIdle
				}
				return pollAgain
			}
			l.early = 0
			return pollAgain
		case <-l.b.network:
			l.failures = 0
			stop()
			return pollSync
		case <-l.b.foreground:
			if l.foreground = l.c.inForeground(); !l.foreground {
				stop()
				return pollSync
			}
		case <-l.b.kick:
			stop()
			return pollSync
		}
	}
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

// NetworkAvailable tells the SDK that the platform reports the network
// back (Android ConnectivityManager's onAvailable, iOS NWPathMonitor's
// satisfied path): background sync runs at once, forgetting its backoff,
// and a Sync waiting between its tries tries again at once, so work made
// offline leaves within seconds of the link returning. Requests under
// way are ended with ErrNetworkChanged and sent again on a new
// connection (a Sync retries them at once), and kept connections are
// closed: they belonged to the network that went away.
func (c *Client) NetworkAvailable() {
	c.mu.Lock()
	b := c.background
	if c.netBack != nil {
		// Wakes a Sync waiting between its tries.
		close(c.netBack)
		c.netBack = nil
	}
	c.mu.Unlock()
	// Connections made on the network that went away are dead (a phone
	// back on the air often has a new address), and a request on one
	// would wait out the stall timeout: end them, and let the requests
	// start again on a new connection.
	c.netChanged()
	if b != nil {
		signal(b.network)
	}
}

// SetForeground tells the SDK whether the app is on screen. In the
// foreground, background sync waits for new work by long poll, so a new
// warning shows within seconds; in the background it syncs only every
// interval, to spare the battery and the data plan.
func (c *Client) SetForeground(on bool) {
	c.mu.Lock()
	c.foreground = on
	b := c.background
	c.mu.Unlock()
	if b != nil {
		signal(b.foreground)
	}
}

func (c *Client) inForeground() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.foreground
}

// kickBackground asks the loop to sync soon after a local write.
func (c *Client) kickBackground() {
	c.mu.RLock()
	b := c.background
	c.mu.RUnlock()
	if b != nil {
		signal(b.kick)
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ErrNetworkChanged ends a request that was under way when the app called
// NetworkAvailable. It is transient: a Sync sends the request again at
// once, on a new connection.
var ErrNetworkChanged = errors.New("the network changed while the request was under way")

// inFlight is ctx for one request, which netChanged cancels; done forgets
// it.
func (c *Client) inFlight(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	c.reqMu.Lock()
	if c.requests == nil {
		c.requests = map[*context.CancelCauseFunc]struct{}{}
	}
	key := &cancel
	c.requests[key] = struct{}{}
	c.reqMu.Unlock()
	return ctx, func() {
		c.reqMu.Lock()
		delete(c.requests, key)
		c.reqMu.Unlock()
		cancel(nil)
	}
}

// netChanged ends the requests under way with ErrNetworkChanged and
// closes the idle connections.
func (c *Client) netChanged() {
	c.reqMu.Lock()
	for cancel := range c.requests {
		(*cancel)(ErrNetworkChanged)
	}
	c.reqMu.Unlock()
	c.remote.HTTP.CloseIdleConnections()
}
