package clientsdk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldsync/fieldsync/client-sdk/internal/stall"
	"github.com/fieldsync/fieldsync/client-sdk/localstore"
	"github.com/fieldsync/fieldsync/client-sdk/remote"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Report says what one Sync did.
type Report struct {
	Pushed   int
	Applied  int
	Rejected int
	Pulled   int
	// Kept is how many warnings the pull left out because the phone had
	// computed their state after its push (PullRequest.Have).
	Kept    int
	Removed int
	Reset   bool
	// Resent is how many ops the server had confirmed and then lost (it
	// was restored from a backup) came back from the journal to be sent
	// again.
	Resent int
	Photos int
	// PhotosFailed is how many photo uploads failed; they stay for the
	// next sync (Status says why).
	PhotosFailed int
	// Attempts is how many tries it took.
	Attempts int

	// resetSettled: the token refresh and scrub that follow a reset are
	// done, so a later pull of the same sync does not do them again.
	resetSettled bool
}

// Status is the device's sync state, for a status line.
type Status struct {
	LoggedIn bool
	Revoked  bool
	Wiped    bool
	Pending  int
	Rejected int
	// PhotosPending is how many photos are still on the phone only;
	// PhotosFailed how many of them failed their last try, and
	// PhotoError why the newest of those failed.
	PhotosPending int
	PhotosFailed  int
	PhotoError    string
	LastSync      time.Time
	LastError     error
}

// Status returns the device's sync state.
func (c *Client) Status() Status {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r := &c.replica
	st := Status{
		LoggedIn: r.state.RefreshToken != "", Revoked: r.state.Revoked, Wiped: r.state.Wiped,
		Pending: len(r.outbox), Rejected: len(r.rejected), LastSync: r.state.LastSync, LastError: c.lastError,
	}
	var latest time.Time
	for _, p := range r.photos {
		if p.Uploaded {
			continue
		}
		st.PhotosPending++
		if p.Failures > 0 {
			st.PhotosFailed++
			if st.PhotoError == "" || p.Added.After(latest) {
				st.PhotoError, latest = p.LastError, p.Added
			}
		}
	}
	return st
}

// Sync pushes the outbox in order, pulls every page of changes, then
// uploads waiting photos (resumably: a cut photo goes on from the last byte
// the server holds; a failed one waits for the next sync, counted in
// Status, and does not fail this one). A transient failure (no network, a
// stall, 5xx, 429) is retried with exponential backoff and jitter, up to
// RetryPolicy.Attempts tries; each try resumes where the last stopped. It returns ErrNotLoggedIn
// or ErrRevoked when it cannot sync at all, and the last error otherwise.
func (c *Client) Sync(ctx context.Context) (Report, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	attempts := c.opts.Retry.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	var rep Report
	var err error
	for try := 0; try < attempts; try++ {
		rep.Attempts = try + 1
		err = c.syncOnce(ctx, &rep)
		if err == nil || !Transient(err) || ctx.Err() != nil {
			break
		}
		if try+1 < attempts && !errors.Is(err, ErrNetworkChanged) {
			if serr := c.sleep(ctx, c.backoff(try, err)); serr != nil {
				break
			}
		}
	}
	c.mu.Lock()
	c.lastError = err
	c.mu.Unlock()
	c.emit(Event{Kind: EventSync})
	return rep, err
}

// Transient reports whether an error is worth retrying as it is: the
// network, a timeout, the server's 5xx, 429 and 503.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, stall.ErrStalled) {
		// The watchdog cancels a stalled request's context: the link's
		// failure, not the caller's.
		return true
	}
	if errors.Is(err, ErrNetworkChanged) {
		return true
	}
	if errors.Is(err, ErrNotLoggedIn) || errors.Is(err, ErrRevoked) || errors.Is(err, context.Canceled) {
		return false
	}
	var se *remote.StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests || se.Status == http.StatusRequestTimeout
	}
	if pe := syncproto.AsError(err); pe != nil {
		return pe.Code == syncproto.CodeUnavailable || pe.Code == syncproto.CodeRateLimited
	}
	// Anything else is the transport's: no route, reset, timeout, a cut
	// or garbled response.
	return true
}

// backoff is the wait before try+1: exponential with full jitter, and never
// less than the server's Retry-After.
func (c *Client) backoff(try int, err error) time.Duration {
	initial, ceiling := c.opts.Retry.Initial, c.opts.Retry.Max
	if initial <= 0 {
		initial = time.Second
	}
	if ceiling <= 0 {
		ceiling = DefaultRetryMax
	}
	d := initial << min(try, 20)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	d = time.Duration(rand.Int64N(int64(d)) + 1)
	if ra := retryAfter(err, c.now()); ra > d {
		d = ra
	}
	return d
}

// retryAfter is the wait the server asked for in err: its Retry-After
// header (seconds, or an HTTP date read against now, the client's clock),
// else the error's details.retry_after (seconds).
func retryAfter(err error, now time.Time) time.Duration {
	var se *remote.StatusError
	if errors.As(err, &se) && se.RetryAfter != "" {
		if secs, err := strconv.Atoi(se.RetryAfter); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(se.RetryAfter); err == nil {
			return t.Sub(now)
		}
	}
	if pe := syncproto.AsError(err); pe != nil {
		if d, ok := pe.DetailSeconds("retry_after"); ok {
			return d
		}
	}
	return 0
}

// sleep waits d between tries, or less when NetworkAvailable says the
// network is back.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.opts.Retry.Sleep != nil {
		return c.opts.Retry.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.networkBack():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// networkBack is closed by the next NetworkAvailable.
func (c *Client) networkBack() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.netBack == nil {
		c.netBack = make(chan struct{})
	}
	return c.netBack
}

// syncOnce is one try, in lanes: ops out, then changes in, then photos.
// Photos go last because they are megabytes on a link of kilobytes a
// second: a new warning (a high-risk one has two hours) must not wait
// behind them, nor an attempt the lead is waiting to review.
func (c *Client) syncOnce(ctx context.Context, rep *Report) error {
	c.mu.RLock()
	st := c.replica.state
	c.mu.RUnlock()
	switch {
	case st.Revoked:
		return ErrRevoked
	case st.RefreshToken == "":
		return ErrNotLoggedIn
	}
	if err := c.push(ctx, rep); err != nil {
		return err
	}
	if err := c.pull(ctx, rep); err != nil {
		return err
	}
	// A pull can show that the server lost ops it had acknowledged or
	// confirmed (it was restored from a backup): they were renumbered,
	// send them now, and pull once more so the device sees them confirmed.
	if c.hasUnsent() {
		pushed := rep.Pushed
		if err := c.push(ctx, rep); err != nil {
			return err
		}
		if rep.Pushed > pushed {
			if err := c.pull(ctx, rep); err != nil {
				return err
			}
		}
	}
	if err := c.updateState(func(s *localstore.State) { s.LastSync = c.now().UTC() }); err != nil {
		return err
	}
	c.uploadPhotos(ctx, rep)
	return nil
}

func (c *Client) hasUnsent() bool {
	return c.unsentCount() > 0
}

// call runs one request with a fresh access token, refreshing it first
// when it has expired and once more when the server says it has. fn gets
// a context that NetworkAvailable cancels: a request on a connection of
// the network that went away ends with ErrNetworkChanged at once, instead
// of waiting out the stall timeout.
func (c *Client) call(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, done := c.inFlight(ctx)
	defer done()
	err := c.callToken(ctx, fn)
	if err != nil && errors.Is(context.Cause(ctx), ErrNetworkChanged) {
		return fmt.Errorf("%w: %w", ErrNetworkChanged, err)
	}
	return err
}

func (c *Client) callToken(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := c.ensureToken(ctx, false); err != nil {
		return err
	}
	err := fn(ctx)
	if syncproto.ErrorCode(err) == syncproto.CodeTokenExpired {
		if err := c.ensureToken(ctx, true); err != nil {
			return err
		}
		err = fn(ctx)
	}
	if pe := syncproto.AsError(err); pe != nil && pe.Code == syncproto.CodeDeviceRevoked {
		wipe, _ := pe.Details["wipe"].(bool)
		if rerr := c.revoked(wipe); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%w: %w", ErrRevoked, err)
	}
	return err
}

// ensureToken refreshes the access token when it is about to expire (or
// when force is set). A refused refresh token logs the device out.
func (c *Client) ensureToken(ctx context.Context, force bool) error {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	c.mu.RLock()
	st := c.replica.state
	c.mu.RUnlock()
	if st.RefreshToken == "" {
		return ErrNotLoggedIn
	}
	if !force && st.AccessToken != "" && c.now().Add(30*time.Second).Before(st.AccessExpires) {
		c.remote.SetToken(st.AccessToken)
		return nil
	}
	resp, err := c.remote.Refresh(ctx, syncproto.RefreshRequest{RefreshToken: st.RefreshToken, DeviceID: st.DeviceID})
	if err != nil {
		switch syncproto.ErrorCode(err) {
		case syncproto.CodeUnauthorized:
			_ = c.updateState(func(s *localstore.State) { s.AccessToken, s.RefreshToken = "", "" })
			c.emit(Event{Kind: EventAuth})
			return fmt.Errorf("%w: %w", ErrNotLoggedIn, err)
		case syncproto.CodeDeviceRevoked:
			wipe, _ := syncproto.AsError(err).Details["wipe"].(bool)
			if rerr := c.revoked(wipe); rerr != nil {
				return rerr
			}
			return fmt.Errorf("%w: %w", ErrRevoked, err)
		}
		return err
	}
	// The refresh token rotated: the old one is spent, so the new one
	// must be on disk before anything else can fail.
	err = c.updateState(func(s *localstore.State) {
		s.AccessToken, s.RefreshToken = resp.AccessToken, resp.RefreshToken
		s.AccessExpires = c.now().Add(time.Duration(resp.ExpiresIn) * time.Second)
		s.User = resp.User
	})
	if err != nil {
		return err
	}
	c.remote.SetToken(resp.AccessToken)
	return nil
}

// push sends the outbox in client_seq order, in batches, until nothing is
// left to send.
func (c *Client) push(ctx context.Context, rep *Report) error {
	batch := c.opts.PushBatch
	renumbered := 0
	for {
		ops := c.unsent(batch)
		if len(ops) == 0 {
			return nil
		}
		c.report(Progress{Phase: "push", Pushed: rep.Pushed, ToPush: rep.Pushed + c.unsentCount()})
		var resp *syncproto.PushResponse
		var wrote atomic.Bool
		trace := &httptrace.ClientTrace{
			WroteRequest: func(info httptrace.WroteRequestInfo) {
				if info.Err == nil {
					wrote.Store(true)
				}
			},
		}
		err := c.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = c.remote.Push(httptrace.WithClientTrace(ctx, trace), syncproto.PushRequest{DeviceID: c.DeviceID(), Ops: ops})
			return err
		})
		if err != nil && wrote.Load() {
			// The ops left the phone and the answer was lost: the person
			// sees "sent", and the next push asks again. Ops whose push
			// never left (no link, no token) stay "pending".
			if merr := c.markSent(ops); merr != nil {
				return merr
			}
		}
		if err != nil {
			pe := syncproto.AsError(err)
			switch {
			case pe != nil && pe.Code == syncproto.CodePayloadTooLarge && batch > 1:
				batch /= 2
				continue
			case pe != nil && pe.Code == syncproto.CodeInvalidRequest:
				// The server refused the whole batch for one malformed op
				// (a newer rule than this SDK knows): set that op aside as
				// rejected so the rest can go. Its client_seq was not
				// used, so the next push meets out_of_order and the ops
				// after it are numbered again.
				i, ok := badOpIndex(pe)
				if !ok || i >= len(ops) {
					return err
				}
				if err := c.rejectLocally(ops[i], pe); err != nil {
					return err
				}
				rep.Rejected++
				continue
			case pe != nil && pe.Code == syncproto.CodeOutOfOrder:
				// The server has fewer of this device's ops than this
				// device thinks (it was restored): number the outbox
				// again from where the server stands.
				// The server has handled exactly this device's ops below
				// expected_client_seq: those from there on go again, in
				// order and without gaps (a restore lost some, or an op
				// set aside left a hole).
				expected, ok := asUint(pe.Details["expected_client_seq"])
				if renumbered++; !ok || expected == 0 || renumbered > 3 {
					return err
				}
				// Every op from there on, answered or not: the server
				// lost those it had answered, and the journal's it had
				// confirmed.
				resent, err := c.renumber(expected, func(p *localstore.PendingOp) bool { return p.Op.ClientSeq >= expected })
				if err != nil {
					return err
				}
				rep.Resent += resent
				continue
			}
			return err
		}
		if err := c.settle(ops, resp, rep); err != nil {
			return err
		}
		detail := c.pullDetail()
		c.mu.Lock()
		c.noteApplied(ops, resp, detail)
		c.mu.Unlock()
		rep.Pushed += len(ops)
		c.report(Progress{Phase: "push", Pushed: rep.Pushed, ToPush: rep.Pushed + c.unsentCount()})
	}
}

// badOpIndex reads which op of a batch an invalid_request names, from its
// details.field ("ops[3].body.method").
func badOpIndex(pe *syncproto.Error) (int, bool) {
	field, _ := pe.Details["field"].(string)
	rest, ok := strings.CutPrefix(field, "ops[")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil && i >= 0
}

// rejectLocally moves an op the server refused to read into the rejected
// list, as if it had answered rejected.
func (c *Client) rejectLocally(op syncproto.Op, pe *syncproto.Error) error {
	err := c.changeOutbox(func(p *localstore.PendingOp) (bool, bool) {
		if p.Op.ID != op.ID {
			return true, false
		}
		p.State, p.Code, p.Message = localstore.OpRejected, pe.Code, pe.Message
		return false, true
	})
	if err != nil {
		return err
	}
	c.emit(Event{Kind: EventOps, IDs: []string{op.ID}})
	return nil
}

func asUint(v any) (uint64, bool) {
	switch n := v.(type) {
	case float64:
		return uint64(n), n >= 0
	case int64:
		return uint64(n), n >= 0
	case uint64:
		return n, true
	case int8, int16, int32, uint8, uint16, uint32, int:
		i, err := strconv.ParseInt(fmt.Sprint(n), 10, 64)
		return uint64(i), err == nil && i >= 0
	}
	return 0, false
}

// unsent returns up to n ops the server has not answered yet.
func (c *Client) unsent(n int) []syncproto.Op {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.unsent(n)
}

func (c *Client) unsentCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.unsentCount()
}

// markSent records that ops left the phone in a push whose answer was
// lost: the person sees "sent", and the next push asks again.
func (c *Client) markSent(ops []syncproto.Op) error {
	return c.changeOutbox(func(p *localstore.PendingOp) (keep bool, changed bool) {
		if p.State == localstore.OpPending && containsSeq(ops, p.Op.ClientSeq) {
			p.State = localstore.OpSent
			return true, true
		}
		return true, false
	})
}

func containsSeq(ops []syncproto.Op, seq uint64) bool {
	return len(ops) > 0 && seq >= ops[0].ClientSeq && seq <= ops[len(ops)-1].ClientSeq
}

// settle records the server's answer for each op: applied ops wait for the
// pull that brings their effect; rejected ones leave the outbox for the
// rejected list, so they never block the rest.
func (c *Client) settle(ops []syncproto.Op, resp *syncproto.PushResponse, rep *Report) error {
	bySeq := make(map[uint64]syncproto.Result, len(resp.Results))
	for _, r := range resp.Results {
		bySeq[r.ClientSeq] = r
	}
	reused := uint64(0)
	err := c.changeOutbox(func(p *localstore.PendingOp) (bool, bool) {
		r, ok := bySeq[p.Op.ClientSeq]
		if !ok || r.OpID != p.Op.ID && r.Code != syncproto.CodeSeqReused {
			return true, false
		}
		switch {
		case r.Code == syncproto.CodeSeqReused:
			// Another op holds this client_seq on the server: this one
			// was never applied. It is numbered again below.
			if reused == 0 {
				reused = p.Op.ClientSeq
			}
			p.State = localstore.OpPending
			return true, true
		case r.Status == syncproto.StatusRejected || r.Code != "":
			p.State, p.Code, p.Message, p.Flags = localstore.OpRejected, r.Code, r.Message, r.Flags
			rep.Rejected++
			return false, true
		default:
			p.State, p.Version, p.Flags = localstore.OpApplied, r.Version, r.Flags
			rep.Applied++
			return true, true
		}
	})
	if err != nil {
		return err
	}
	if reused > 0 {
		// Only the ops the server has not applied move past its last
		// client_seq; those it applied keep theirs.
		resent, err := c.renumber(resp.LastClientSeq+1, func(p *localstore.PendingOp) bool {
			return p.State != localstore.OpApplied && p.Op.ClientSeq >= reused
		})
		if err != nil {
			return err
		}
		rep.Resent += resent
	}
	ids := make([]string, len(ops))
	for i := range ops {
		ids[i] = ops[i].ID
	}
	c.emit(Event{Kind: EventOps, IDs: ids})
	return nil
}

// renumber gives the outbox ops that pick chooses new client_seqs from
// `start` on, in their order, and marks them pending: the server does not
// hold them under their old numbers. The others keep their numbers, since
// the server has them and will confirm them.
//
// start is always one past the highest client_seq the server says it holds
// of this device. A journal op from there on is one the server confirmed
// and then lost (it was restored from an older backup): it comes back into
// the outbox as pending, among the picked ops in the order the server first
// applied them (before the rest, as a rule), and leaves the journal in the
// same transaction, so a crash on either side of it sends it once. It
// returns how many ops came back from the journal.
func (c *Client) renumber(start uint64, pick func(p *localstore.PendingOp) bool) (int, error) {
	c.mu.Lock()
	var kept, picked []localstore.PendingOp
	for _, p := range c.replica.outbox {
		if pick(&p) {
			picked = append(picked, p)
		} else {
			kept = append(kept, p)
		}
	}
	st := c.replica.state
	var moved []localstore.PendingOp
	var back int
	err := c.local.Update(func(tx *localstore.Tx) error {
		journal, err := tx.Journal(start)
		if err != nil {
			return err
		}
		back = len(journal)
		moved = make([]localstore.PendingOp, 0, len(journal)+len(picked))
		for _, j := range journal {
			if err := tx.DeleteJournal(j.Op.ClientSeq); err != nil {
				return err
			}
			moved = append(moved, localstore.PendingOp{Op: j.Op, State: localstore.OpPending})
		}
		for _, p := range picked {
			if err := tx.DeleteOp(p.Op.ClientSeq); err != nil {
				return err
			}
			moved = append(moved, p)
		}
		// By the numbers they had: the order the server applied (or was
		// to apply) them in. A journal op goes first on a tie: it was
		// confirmed, so it was sent first.
		slices.SortStableFunc(moved, func(a, b localstore.PendingOp) int { return cmp.Compare(a.Op.ClientSeq, b.Op.ClientSeq) })
		next := start
		for i := range moved {
			moved[i].Op.ClientSeq = next
			moved[i].State = localstore.OpPending
			next++
			if err := tx.PutOp(&moved[i]); err != nil {
				return err
			}
		}
		st.NextSeq = max(next, start)
		return tx.SetState(st)
	})
	if err != nil {
		c.mu.Unlock()
		return 0, err
	}
	c.log.Warn("renumbered the outbox: the server does not hold these ops", "start", start, "ops", len(moved), "from_journal", back)
	outbox := append(kept, moved...)
	slices.SortFunc(outbox, func(a, b localstore.PendingOp) int { return cmp.Compare(a.Op.ClientSeq, b.Op.ClientSeq) })
	c.replica.outbox, c.replica.state = outbox, st
	c.mu.Unlock()
	if back > 0 {
		ids := make([]string, 0, back)
		for _, p := range moved {
			ids = append(ids, p.Op.ID)
		}
		c.emit(Event{Kind: EventOps, IDs: ids})
		c.emit(Event{Kind: EventWarnings})
	}
	return back, nil
}

// changeOutbox runs fn over the outbox; ops it drops or changes are written
// in one transaction, then the memory copy follows. An op it drops as
// rejected moves to the rejected list, which keeps it until the person
// dismisses it.
func (c *Client) changeOutbox(fn func(p *localstore.PendingOp) (keep, changed bool)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make([]localstore.PendingOp, 0, len(c.replica.outbox))
	var put, rejected []localstore.PendingOp
	var drop []uint64
	for _, p := range c.replica.outbox {
		keep, changed := fn(&p)
		switch {
		case !keep:
			drop = append(drop, p.Op.ClientSeq)
			if p.State == localstore.OpRejected {
				rejected = append(rejected, p)
			}
		case changed:
			put = append(put, p)
		}
		if keep {
			next = append(next, p)
		}
	}
	if len(put) == 0 && len(drop) == 0 {
		return nil
	}
	err := c.local.Update(func(tx *localstore.Tx) error {
		for _, seq := range drop {
			if err := tx.DeleteOp(seq); err != nil {
				return err
			}
		}
		for i := range put {
			if err := tx.PutOp(&put[i]); err != nil {
				return err
			}
		}
		for i := range rejected {
			if err := tx.PutRejected(&rejected[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.replica.outbox = next
	c.replica.rejected = append(c.replica.rejected, rejected...)
	return nil
}

// pagesRetried is how many pages in a row a pull asks again at once after
// the link cut them, each smaller, before it leaves the rest to the
// backoff: a cut is the link's, not a sign the server is overloaded.
const pagesRetried = 4

// pull fetches pages until the server has no more. Each page is applied
// with its cursor in one transaction, so a crash or a cut resumes at the
// next page. Pages are sized in bytes to the link (pager).
func (c *Client) pull(ctx context.Context, rep *Report) error {
	return c.pullFrom(ctx, rep, nil)
}

// pullDetail is the detail this device's pulls ask for.
func (c *Client) pullDetail() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return detailFor(c.opts.PullDetail, c.replica.state.User.Role)
}

// detailFor is the pull detail for a device of role with option set:
// when it is unset, summaries for leads above a township.
func detailFor(set, role string) string {
	switch {
	case set != "":
		return set
	case role == syncproto.RoleCounty || role == syncproto.RoleCenter:
		return syncproto.DetailSummary
	}
	return ""
}

// pullFrom pulls, taking first (when set) as the answer to the first
// page's request.
func (c *Client) pullFrom(ctx context.Context, rep *Report, first *syncproto.PullResponse) error {
	scrub := false
	// left: a page of this pull reset the device's copy or removed a
	// warning, so the journal may hold ops of warnings no longer here.
	left := false
	cuts := 0
	for {
		c.mu.RLock()
		cursor := c.replica.state.Cursor
		c.mu.RUnlock()
		req := syncproto.PullRequest{DeviceID: c.DeviceID(), Cursor: cursor, Limit: c.opts.PullLimit, MaxBytes: c.pager.next(),
			Detail: c.pullDetail()}
		var resp *syncproto.PullResponse
		var m stall.Meter
		var err error
		// offered are the states this page's have names, which the
		// server may keep instead of sending.
		var offered map[string]candidate
		if first != nil {
			resp, first = first, nil
		} else {
			req.Have, offered = c.offer(cursor, req.Detail, req.Limit)
			resp, m, err = c.pullPage(ctx, req)
		}
		if syncproto.ErrorCode(err) == syncproto.CodeCursorExpired && cursor != "" {
			// The server cannot read the cursor at all: start again, and
			// take what comes as a new base, as for a reset, since the
			// removes in between may be gone. Recorded with the cursor so
			// a crash before the first page keeps it.
			if err := c.updateState(func(s *localstore.State) { s.Cursor, s.ResetPending = "", true }); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if cutByLink(err) && ctx.Err() == nil {
				c.pager.cut(m)
				if cuts++; cuts <= pagesRetried {
					continue
				}
			}
			return err
		}
		cuts = 0
		if !m.Headers.IsZero() {
			c.pager.done(m, resp.More && len(resp.Changes)+len(resp.Kept) < req.Limit)
		}
		page, err := c.applyPage(resp, left, offered)
		if err != nil {
			return err
		}
		if len(resp.Changes)+len(resp.Kept) > 0 {
			// A kept warning changed too: its state is now the
			// server's (version, received_at), no longer the pending
			// op's view.
			ids := make([]string, 0, len(resp.Changes)+len(resp.Kept))
			for _, ch := range resp.Changes {
				ids = append(ids, ch.ID)
			}
			ids = append(ids, resp.Kept...)
			c.emit(Event{Kind: EventWarnings, IDs: ids})
		}
		if page.lostOps {
			// The server has fewer of this device's ops than it
			// acknowledged or confirmed (it was restored): send them
			// again.
			last := resp.LastClientSeq
			resent, err := c.renumber(last+1, func(p *localstore.PendingOp) bool { return p.Op.ClientSeq > last })
			if err != nil {
				return err
			}
			rep.Resent += resent
		}
		rep.Pulled += len(resp.Changes)
		rep.Kept += len(resp.Kept)
		rep.Removed += page.removed
		rep.Reset = rep.Reset || resp.Reset || page.reset
		scrub = scrub || page.removed > 0
		left = left || page.reset || page.removed > 0
		c.report(Progress{Phase: "pull", Pushed: rep.Pushed, ToPush: rep.Pushed, Pulled: rep.Pulled, Remaining: resp.Remaining})
		if !resp.More {
			break
		}
	}
	// Once per sync, even when a try fails after the reset and the next
	// one pulls again.
	afterReset := rep.Reset && !rep.resetSettled
	if afterReset {
		// A reset may come from a change of the user's unit or role: the
		// refreshed token brings the user as the server knows it now, which
		// is who pending ops are shown as.
		if err := c.ensureToken(ctx, true); err != nil {
			return err
		}
	}
	if scrub || afterReset {
		// Removed warnings' personal data must not linger in free pages.
		if err := c.local.Scrub(); err != nil {
			return fmt.Errorf("scrub local store: %w", err)
		}
	}
	rep.resetSettled = rep.resetSettled || afterReset
	return nil
}

// Poll waits, by long poll, for changes in the device's scope after its
// cursor: up to PollWait, answered as soon as the server commits one. It
// applies what comes (then pulls any further pages) and reports whether
// anything did. It does not hold the sync lock while it waits, so Sync
// and local writes go on meanwhile. A device that never synced has no
// cursor to wait from: it returns at once.
func (c *Client) Poll(ctx context.Context) (bool, error) {
	c.mu.RLock()
	cursor, st := c.replica.state.Cursor, c.replica.state
	c.mu.RUnlock()
	switch {
	case st.Revoked:
		return false, ErrRevoked
	case st.RefreshToken == "":
		return false, ErrNotLoggedIn
	case cursor == "":
		return false, nil
	}
	req := syncproto.PullRequest{DeviceID: st.DeviceID, Cursor: cursor, Limit: c.opts.PullLimit,
		MaxBytes: c.pager.next(), Wait: int(c.opts.PollWait / time.Second), Detail: detailFor(c.opts.PullDetail, st.User.Role)}
	resp, _, err := c.pullPage(ctx, req)
	if err != nil {
		return false, err
	}
	if len(resp.Changes) == 0 && !resp.More && !resp.Reset {
		return false, nil
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.RLock()
	moved := c.replica.state.Cursor != cursor
	c.mu.RUnlock()
	var rep Report
	if moved {
		// A sync pulled meanwhile: this answer is stale; pull from where
		// that sync stopped.
		err = c.pull(ctx, &rep)
	} else {
		err = c.pullFrom(ctx, &rep, resp)
	}
	if err == nil {
		err = c.updateState(func(s *localstore.State) { s.LastSync = c.now().UTC() })
	}
	c.emit(Event{Kind: EventSync})
	return err == nil, err
}

// photoRetries is how many failed tries of a photo bring the next sync
// forward; after them it waits for the regular interval, so a photo the
// server keeps refusing does not keep the radio busy.
const photoRetries = 5

// photosFailing reports whether a photo waits after a failed try.
func (c *Client) photosFailing() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.photosFailing()
}

// pullPage asks for one page, measuring its answer for the pager.
func (c *Client) pullPage(ctx context.Context, req syncproto.PullRequest) (*syncproto.PullResponse, stall.Meter, error) {
	var m stall.Meter
	var resp *syncproto.PullResponse
	err := c.call(ctx, func(ctx context.Context) error {
		m = stall.Meter{}
		mctx := stall.WithMeter(ctx, &m)
		if req.Wait > 0 {
			mctx = stall.WithWait(mctx, time.Duration(req.Wait)*time.Second)
		}
		var err error
		resp, err = c.remote.Pull(mctx, req)
		return err
	})
	return resp, m, err
}

// cutByLink reports whether err is the link failing mid-request (a reset,
// an early end, a stall) rather than an answer from the server. Callers
// check their context first: its end is not the link's.
func cutByLink(err error) bool {
	if err == nil || errors.Is(err, ErrNotLoggedIn) || errors.Is(err, ErrRevoked) {
		return false
	}
	var se *remote.StatusError
	return !errors.As(err, &se) && syncproto.AsError(err) == nil
}

// pageApplied is what storing one pull page did.
type pageApplied struct {
	// removed is how many warnings the page took off the device.
	removed int
	// lostOps: the server holds fewer of this device's ops than it
	// acknowledged or confirmed (it was restored from a backup).
	lostOps bool
	// reset: the server's side starts again from this page.
	reset bool
}

// applyPage stores one page and its cursor. The warnings the page kept
// take the states offered for them in its request's have, as if the page
// had carried them. On the last page it also moves
// the ops the server confirms it has applied from the outbox to the
// journal, prunes the journal, and reports lostOps when the server holds
// fewer of this device's ops than it acknowledged or confirmed.
func (c *Client) applyPage(resp *syncproto.PullResponse, left bool, offered map[string]candidate) (pageApplied, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var page pageApplied
	// next is the replica as the page leaves it, in place of the current
	// one once the page is stored.
	next := c.replica
	page.reset = resp.Reset || next.state.ResetPending
	next.state.Cursor, next.state.ResetPending = resp.Cursor, false
	next.state.LastClientSeq = resp.LastClientSeq
	if page.reset {
		// The server's state starts again from this page; pending ops
		// stay and are applied on top of it.
		next.forgetPulled()
	}
	kept := make([]*syncproto.Warning, len(resp.Kept))
	for i, id := range resp.Kept {
		cand, ok := offered[id]
		if !ok {
			// The page lacks a state the device does not have: storing
			// the cursor past it would lose the warning's change.
			return pageApplied{}, fmt.Errorf("the server kept warning %s, which the pull did not offer", id)
		}
		kept[i] = cand.w
	}
	var removedPhotos []string
	var confirmed []localstore.PendingOp
	if !resp.More {
		next.outbox = next.outbox[:0:0]
		for _, p := range c.replica.outbox {
			switch {
			case p.State == localstore.OpApplied && p.Op.ClientSeq <= resp.LastClientSeq:
				confirmed = append(confirmed, p)
				continue
			case p.State == localstore.OpApplied:
				page.lostOps = true
			}
			next.outbox = append(next.outbox, p)
		}
	}
	err := c.local.Update(func(tx *localstore.Tx) error {
		if page.reset {
			if err := tx.ClearServerState(); err != nil {
				return err
			}
		}
		for _, w := range kept {
			if err := next.applyChange(tx, syncproto.Change{Kind: syncproto.ChangePut, Entity: syncproto.EntityWarning, ID: w.ID, Version: w.Version, Data: w}); err != nil {
				return err
			}
		}
		for _, ch := range resp.Changes {
			if err := next.applyChange(tx, ch); err != nil {
				return err
			}
			if ch.Kind == syncproto.ChangeRemove && ch.Entity == syncproto.EntityWarning {
				page.removed++
				for sum, ph := range next.photos {
					if ph.WarningID == ch.ID && ph.Uploaded {
						removedPhotos = append(removedPhotos, sum)
						if err := tx.DeletePhoto(sum); err != nil {
							return err
						}
					}
				}
			}
		}
		if !resp.More {
			lost, err := c.journal(tx, confirmed, resp.LastClientSeq, next.warnings)
			if err != nil {
				return err
			}
			page.lostOps = page.lostOps || lost
			// Warnings that left the device (removed, or absent from the
			// copy a reset brought) take their confirmed ops out of the
			// journal: the protocol's remove deletes a warning's personal
			// data, and an op's notes and location are that. Not when the
			// server lost ops (a restore): those are about to be sent again.
			if !page.lostOps && (left || page.reset || page.removed > 0) {
				if _, err := tx.DeleteJournalNotHeld(next.warnings); err != nil {
					return err
				}
			}
		}
		return tx.SetState(next.state)
	})
	if err != nil {
		return pageApplied{}, err
	}
	c.replica = next
	c.settleCandidates(resp, page.reset)
	for _, sum := range removedPhotos {
		delete(c.replica.photos, sum)
		_ = c.local.RemovePhotoFile(sum)
	}
	return page, nil
}

// journal moves the ops a pull confirmed from the outbox to the journal and
// drops the journal's ops older than the retention window or past its cap.
// It reports whether the journal holds an op the server no longer has:
// lastClientSeq, the server's newest of this device's ops, is lower than
// an op it confirmed. Only a restore does that; a reset for a new scope or
// cursor leaves it as it was. Callers hold c.mu.
func (c *Client) journal(tx *localstore.Tx, confirmed []localstore.PendingOp, lastClientSeq uint64, held map[string]*syncproto.Warning) (lost bool, err error) {
	now := c.now().UTC()
	keep := c.opts.JournalRetention > 0
	for i := range confirmed {
		if err := tx.DeleteOp(confirmed[i].Op.ClientSeq); err != nil {
			return false, err
		}
		// An op on a warning this device no longer holds (reassigned away
		// before the pull confirmed the op) is not kept: its personal data
		// left with the warning.
		if keep && held[confirmed[i].Op.WarningID] != nil {
			if err := tx.PutJournal(&localstore.JournalOp{Op: confirmed[i].Op, Confirmed: now}); err != nil {
				return false, err
			}
		}
	}
	if _, err := tx.PruneJournal(now.Add(-c.opts.JournalRetention), c.opts.JournalMax); err != nil {
		return false, err
	}
	return tx.LastJournalSeq() > lastClientSeq, nil
}

// revoked handles device_revoked: no more syncing; with wipe, every
// warning, the directory and the tokens go, and unsent ops stay for
// hand-over.
func (c *Client) revoked(wipe bool) error {
	c.mu.Lock()
	st := c.replica.state
	st.Revoked, st.AccessToken, st.RefreshToken = true, "", ""
	if wipe {
		st.Wiped, st.Cursor = true, ""
	}
	err := c.local.Update(func(tx *localstore.Tx) error {
		// A revoked device never syncs again: the ops the server confirmed
		// have no further use here, and they hold personal data.
		if err := tx.ClearJournal(); err != nil {
			return err
		}
		if wipe {
			if err := tx.ClearServerState(); err != nil {
				return err
			}
			if err := c.deletePhotos(tx); err != nil {
				return err
			}
		}
		return tx.SetState(st)
	})
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.replica.state = st
	c.replica.handOver = unsentOps(c.replica.outbox)
	if wipe {
		c.removePhotoFiles()
		c.replica.forgetPulled()
	}
	c.mu.Unlock()
	if wipe {
		if err := c.local.Scrub(); err != nil {
			return err
		}
	}
	c.emit(Event{Kind: EventAuth})
	c.emit(Event{Kind: EventWarnings})
	return nil
}

// uploadPhotos sends each photo the server lacks, after ops and changes
// have gone both ways. A photo the server already holds (its attempt is
// confirmed and the warning lists it no more as missing) is not sent
// again. A failure leaves the photo for the next sync, counted in the
// status with its reason; it never fails the sync, whose ops and changes
// are through. Photos go photoLanes at a time.
func (c *Client) uploadPhotos(ctx context.Context, rep *Report) {
	todo := c.photosToSend()
	var mu sync.Mutex
	next, finished := 0, 0
	// A panic in a lane (an app's own transport, say) reaches the
	// caller, as it would with no lanes, instead of ending the process.
	var panicked any
	var wg sync.WaitGroup
	for range min(photoLanes, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					mu.Lock()
					if panicked == nil {
						panicked = r
					}
					next = len(todo)
					mu.Unlock()
				}
			}()
			for {
				mu.Lock()
				if next == len(todo) || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				p := todo[next]
				next++
				progress := Progress{Phase: "photos", Pushed: finished, ToPush: len(todo)}
				mu.Unlock()
				c.report(progress)
				sent, err := c.uploadPhoto(ctx, p)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				finished++
				switch {
				case err != nil:
					rep.PhotosFailed++
				case sent:
					rep.Photos++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

// photoLanes is how many photos upload at once. Each upload leaves the
// link idle while it waits a round trip (for an answer, or for the
// server's offset after a cut: on a link cut every 40 KB at 800 ms, a
// third of the time); a second one keeps the link busy meanwhile.
const photoLanes = 2

// uploadPhoto sends p unless the server holds it, and records the result;
// sent reports whether it was sent now.
func (c *Client) uploadPhoto(ctx context.Context, p localstore.Photo) (sent bool, err error) {
	if c.serverHolds(p) {
		c.photoDone(p)
		return false, nil
	}
	if err := c.sendPhoto(ctx, &p); err != nil {
		if ctx.Err() == nil {
			c.photoFailed(p, err)
		}
		return false, err
	}
	c.photoDone(p)
	return true, nil
}

// photosToSend lists the photos not yet uploaded, oldest first.
func (c *Client) photosToSend() []localstore.Photo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.photosToSend()
}

// serverHolds reports whether the server has photo p (replica.serverHolds).
func (c *Client) serverHolds(p localstore.Photo) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.replica.serverHolds(p)
}

// errUploadGone: the server no longer knows a photo's upload. Either it
// expired, or it completed and the answer was lost: the next sync's pull
// tells which (the warning no longer lists the photo as missing), so the
// photo is not sent again in this one.
var errUploadGone = errors.New("the server no longer has this photo's upload; the next sync checks whether it arrived")

// piecesRetried is how many pieces in a row may fail without the server
// holding more of a photo before it waits for the next sync.
const piecesRetried = 3

// sendPhoto uploads one photo by a resumable upload, in pieces sized to
// the link, resuming after a cut from the last byte the server stored.
func (c *Client) sendPhoto(ctx context.Context, p *localstore.Photo) error {
	data, err := c.local.PhotoFile(p.SHA256)
	if err != nil {
		return fmt.Errorf("read the photo on the phone: %w", err)
	}
	stuck := 0
	up := upload{known: -1, cutFrom: -1}
	stored := int64(-1)
	for {
		var done bool
		err := c.call(ctx, func(ctx context.Context) error {
			var err error
			done, err = c.uploadStep(ctx, p, data, &up)
			return err
		})
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			stuck = 0
			continue
		case errors.Is(err, errUploadGone), !cutByLink(err), ctx.Err() != nil:
			return err
		}
		if up.stored > stored {
			// A cut piece that left bytes on the server is progress: on
			// a link cut every few tens of kilobytes, most pieces are.
			stored, stuck = up.stored, 0
		}
		if stuck++; stuck > piecesRetried {
			return err
		}
	}
}

// upload is where one photo's upload stands between its steps.
type upload struct {
	// known is the server's offset as its last answer gave it; -1: ask
	// (at the start, and after a cut).
	known int64
	// cutFrom and cutLen are the offset and size of the piece the link
	// cut last, until the server says how much of it arrived; cutFrom
	// is -1 when there is none.
	cutFrom int64
	cutLen  int
	// stored is the most the server said it holds.
	stored int64
}

// uploadStep sends the next piece of a photo, making its upload first if
// need be, and reports whether the server now holds all of it.
func (c *Client) uploadStep(ctx context.Context, p *localstore.Photo, data []byte, up *upload) (bool, error) {
	size := int64(len(data))
	offset := int64(0)
	switch {
	case p.UploadURL != "" && up.known >= 0 && up.known < size:
		offset = up.known
	case p.UploadURL != "":
		off, err := c.remote.UploadOffset(ctx, p.UploadURL)
		switch {
		case remote.UploadGone(err):
			p.UploadURL = ""
			c.putPhoto(*p)
			return false, errUploadGone
		case err != nil:
			return false, err
		case off >= size:
			// Every byte arrived, yet the upload was not completed (its
			// check failed): start it afresh.
			p.UploadURL = ""
		default:
			offset = off
		}
		up.stored = max(up.stored, off)
		if up.cutFrom >= 0 {
			c.chunker.cut(up.cutLen, int(max(0, off-up.cutFrom)))
			up.cutFrom = -1
		}
	}
	up.known = -1
	if p.UploadURL == "" {
		url, err := c.remote.CreateUpload(ctx, p.SHA256, p.ContentType, size)
		if err != nil {
			return false, err
		}
		// Kept on the phone, so a later sync (or a restart) resumes it.
		p.UploadURL = url
		c.putPhoto(*p)
	}
	end := min(offset+int64(c.chunker.next()), size)
	start := time.Now()
	next, err := c.remote.PatchUpload(ctx, p.UploadURL, offset, data[offset:end])
	if err != nil {
		if cutByLink(err) {
			// How much of the piece arrived is known from the server's
			// offset, asked next.
			up.cutFrom, up.cutLen = offset, int(end-offset)
		}
		return false, err
	}
	c.chunker.done(int(end-offset), time.Since(start))
	up.known = next
	return next >= size, nil
}

// photoDone records that the server holds p; the phone's copy of the
// bytes is no longer needed.
func (c *Client) photoDone(p localstore.Photo) {
	p.Uploaded, p.UploadURL, p.Failures, p.LastError = true, "", 0, ""
	c.putPhoto(p)
	_ = c.local.RemovePhotoFile(p.SHA256)
	c.emit(Event{Kind: EventWarnings, IDs: []string{p.WarningID}})
}

// photoFailed counts a failed try of p and keeps its reason.
func (c *Client) photoFailed(p localstore.Photo, err error) {
	c.log.Info("photo upload failed; will retry", "sha256", p.SHA256, "err", err)
	p.Failures++
	p.LastError = err.Error()
	if pe := syncproto.AsError(err); pe != nil {
		// The server's sentence for the person, after its code as the
		// mobile facade writes errors ("photo_quota_exceeded: ..."),
		// without the HTTP status.
		p.LastError = pe.Error()
	}
	c.putPhoto(p)
}

func (c *Client) putPhoto(p localstore.Photo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.replica.photos[p.SHA256]; !ok {
		return // the warning left the device meanwhile
	}
	// Once uploaded, the server no longer misses it: the copy of the
	// warning says so now rather than after the next pull, which the
	// server's announcement of the photo brings anyway.
	var w *syncproto.Warning
	if old := c.replica.warnings[p.WarningID]; p.Uploaded && old != nil && slices.Contains(old.MissingPhotos, p.SHA256) {
		w = old.Clone()
		w.MissingPhotos = slices.DeleteFunc(w.MissingPhotos, func(s string) bool { return s == p.SHA256 })
		if len(w.MissingPhotos) == 0 {
			w.MissingPhotos = nil
		}
	}
	err := c.local.Update(func(tx *localstore.Tx) error {
		if w != nil {
			if err := tx.PutWarning(w); err != nil {
				return err
			}
		}
		return tx.PutPhoto(&p)
	})
	if w != nil && err == nil {
		c.replica.warnings[w.ID] = w
	}
	if err != nil {
		c.log.Warn("photo state not saved", "sha256", p.SHA256, "err", err)
		return
	}
	c.replica.photos[p.SHA256] = p
}
