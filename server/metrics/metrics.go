package metrics

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldsync/fieldsync/server/store"
	"github.com/fieldsync/fieldsync/syncproto"
)

// Reasons of an authentication failure, the only values of the reason label
// of fieldsync_auth_failures_total. None names a person or a device.
const (
	// AuthBadCredentials is a sign-in refused for its username and
	// password: an unknown username, a wrong password, or a disabled
	// account. One reason for all three, because whoever reads the
	// metrics must not learn from them which usernames exist (or which
	// guessed password was right for a disabled account); the answer,
	// its time and the lockout do not tell them apart either.
	AuthBadCredentials = "bad_credentials"
	// AuthAccountDisabled is a request with the token of an account
	// disabled since it signed in.
	AuthAccountDisabled = "account_disabled"
	// AuthNoToken is a request without a usable Authorization header.
	AuthNoToken = "no_token"
	// AuthBadToken is an access token that fails verification: bad
	// signature, unknown kid, wrong alg, missing claims.
	AuthBadToken = "bad_token"
	// AuthTokenExpired is an access token past its lifetime: a client
	// refreshes it, so a steady trickle is normal.
	AuthTokenExpired = "token_expired"
	// AuthDeviceRevoked is a revoked device trying to sync or sign in.
	AuthDeviceRevoked = "device_revoked"
	// AuthForbiddenDevice is a device that is not the token's or the
	// user's: another user's device, or a body naming another device.
	AuthForbiddenDevice = "forbidden_device"
	// AuthRefreshInvalid is a refresh token that is unknown, expired or of
	// an ended chain.
	AuthRefreshInvalid = "refresh_invalid"
	// AuthRefreshReused is a spent refresh token presented again: the
	// device's chain is ended, as a stolen token would be.
	AuthRefreshReused = "refresh_reused"
	// AuthMetricsToken is a scrape of /metrics with a wrong token.
	AuthMetricsToken = "metrics_token"
	// AuthLockedOut is a sign-in refused unchecked: its username or its
	// address failed too often (lockout).
	AuthLockedOut = "locked_out"
)

var authReasons = []string{AuthBadCredentials, AuthAccountDisabled, AuthNoToken,
	AuthBadToken, AuthTokenExpired, AuthDeviceRevoked, AuthForbiddenDevice, AuthRefreshInvalid,
	AuthRefreshReused, AuthMetricsToken, AuthLockedOut}

// pushedOpTypes are the op types a client may push; anything else is
// counted as "other" (Validate refuses it before it gets here).
var pushedOpTypes = []string{syncproto.OpDispatched, syncproto.OpAssigned, syncproto.OpRecorded,
	syncproto.OpEscalated, syncproto.OpReviewed, syncproto.OpAnswered}

// Buckets. Requests: from a no-change pull (a fraction of a millisecond)
// to a push stuck behind a slow disk. Commits: an fsync is about a
// millisecond on a good disk. Batches: one request up to Options.MaxBatch
// (512).
var (
	requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	commitBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	batchBuckets   = prometheus.ExponentialBuckets(1, 2, 10) // 1 .. 512
	pushOpBuckets  = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500}
)

// Options tune Metrics.
type Options struct {
	// Now is the clock of the active-device windows; time.Now when nil.
	Now func() time.Time
}

// Metrics holds fieldsyncd's collectors and their registry. Create it with
// New; a nil *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	// httpMu guards httpChildren, the label children already looked up, so
	// a request costs a map read instead of hashing its labels.
	httpMu       sync.RWMutex
	httpChildren map[routeKey]httpChild

	ops *prometheus.CounterVec
	// opsByType is filled by New and only read after.
	opsByType map[string]opChildren
	opsOther  opChildren
	pushOps   prometheus.Histogram

	pullChanges prometheus.Counter
	pullResets  prometheus.Counter

	feedCreated, feedDuplicate, feedInvalid prometheus.Counter

	commitRequests prometheus.Histogram
	commitSeconds  prometheus.Histogram
	commitFailures prometheus.Counter

	authFailures *prometheus.CounterVec
	authByReason map[string]prometheus.Counter
	refreshGrace prometheus.Counter

	devices   *deviceTracker
	storeOnce sync.Once
}

type routeKey struct {
	route, method string
	status        int
}

type httpChild struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type opChildren struct {
	typ                string
	applied, duplicate prometheus.Counter
}

// New makes the collectors and registers them, with the Go runtime's and
// the process's, on a registry of their own.
func New(opts Options) *Metrics {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Metrics{
		reg:          prometheus.NewRegistry(),
		now:          opts.Now,
		httpChildren: make(map[routeKey]httpChild),
		opsByType:    make(map[string]opChildren, len(pushedOpTypes)),
		authByReason: make(map[string]prometheus.Counter, len(authReasons)),
		devices:      newDeviceTracker(),
	}
	// promauto registers each collector on m.reg as it is made; the
	// helpers keep each metric to its name, help, labels and buckets.
	f := promauto.With(m.reg)
	counter := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return f.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return f.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}

	m.httpRequests = counterVec("fieldsync_http_requests_total",
		"HTTP requests answered, by route pattern (never the raw path), method and status.",
		"route", "method", "status")
	m.httpDuration = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fieldsync_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern, method and status; a push includes its durable commit.",
		Buckets: requestBuckets,
	}, []string{"route", "method", "status"})
	m.ops = counterVec("fieldsync_ops_total",
		"Pushed ops by type and outcome (applied, duplicate, rejected); code is the rejection's error code, empty otherwise.",
		"type", "outcome", "code")
	m.pushOps = histogram("fieldsync_push_ops", "Ops per successful push request.", pushOpBuckets)
	m.pullChanges = counter("fieldsync_pull_changes_total",
		"Changes (warning, unit and user puts and removes) sent in pull responses.")
	m.pullResets = counter("fieldsync_pull_resets_total",
		"Pulls answered with reset: the device's cursor was of another incarnation or scope, or below its scope's tombstone horizon.")
	feedRows := counterVec("fieldsync_feed_rows_total",
		"Warning feed rows imported, by result: created, duplicate (external id already known) or invalid.",
		"result")
	m.feedCreated = feedRows.WithLabelValues("created")
	m.feedDuplicate = feedRows.WithLabelValues("duplicate")
	m.feedInvalid = feedRows.WithLabelValues("invalid")
	m.commitRequests = histogram("fieldsync_store_commit_requests",
		"Write requests (pushes, logins, imports...) sharing one group-commit transaction.", batchBuckets)
	m.commitSeconds = histogram("fieldsync_store_commit_duration_seconds",
		"Time of one group commit: running its requests, writing and fsyncing the bbolt file.", commitBuckets)
	m.commitFailures = counter("fieldsync_store_commit_failures_total",
		"Group commits that failed; every request in them was failed and nothing of them was written.")
	m.authFailures = counterVec("fieldsync_auth_failures_total",
		"Authentication failures by reason (bad_credentials, bad_token, refresh_reused...); never by user or device.",
		"reason")
	for _, r := range authReasons {
		m.authByReason[r] = m.authFailures.WithLabelValues(r)
	}
	m.refreshGrace = counter("fieldsync_refresh_grace_total",
		"Refreshes answered under the grace window: a spent refresh token presented again before its successor was used, as a client that lost the answer does.")
	for _, t := range pushedOpTypes {
		m.opsByType[t] = m.opChildren(t)
	}
	m.opsOther = m.opChildren("other")
	for _, window := range []time.Duration{time.Hour, 24 * time.Hour} {
		f.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "fieldsync_active_devices",
			Help:        "Distinct devices that pushed or pulled within the window.",
			ConstLabels: prometheus.Labels{"window": windowLabel(window)},
		}, func() float64 { return float64(m.devices.count(m.now(), window)) })
	}
	m.reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func windowLabel(d time.Duration) string {
	return strconv.Itoa(int(d.Hours())) + "h"
}

func (m *Metrics) opChildren(typ string) opChildren {
	return opChildren{
		typ:       typ,
		applied:   m.ops.WithLabelValues(typ, syncproto.StatusApplied, ""),
		duplicate: m.ops.WithLabelValues(typ, syncproto.StatusDuplicate, ""),
	}
}

// Handler serves the registry in the text exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the private registry, for collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// WatchedStore is what WatchStore reads of a store at each scrape;
// *store.Store has it.
type WatchedStore interface {
	Usage() (store.Usage, error)
	PullsWaiting() int
}

var _ WatchedStore = (*store.Store)(nil)

// WatchStore adds gauges read from st at each scrape: its size, the
// newest log sequence and the pulls it holds waiting. Only the first store
// given is watched.
func (m *Metrics) WatchStore(st WatchedStore) {
	if m == nil {
		return
	}
	m.storeOnce.Do(func() {
		m.reg.MustRegister(&storeCollector{st: st,
			size: prometheus.NewDesc("fieldsync_store_size_bytes",
				"Size of the bbolt file's used pages in bytes (photos are beside it, not counted).", nil, nil),
			seq: prometheus.NewDesc("fieldsync_store_log_seq",
				"Newest sequence number of the append-only log: its length, since seqs have no gaps.", nil, nil),
			waiting: prometheus.NewDesc("fieldsync_pulls_waiting",
				"Pulls held now waiting for a change in their scope (long polls, wait > 0).", nil, nil),
		})
	})
}

// storeCollector reads a store's gauges at each scrape, its size and log
// length in one read transaction.
type storeCollector struct {
	st                 WatchedStore
	size, seq, waiting *prometheus.Desc
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.seq
	ch <- c.waiting
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	u, err := c.st.Usage()
	switch {
	case err == nil, errors.Is(err, store.ErrClosed):
		// A closed store reads as 0: the server stops before it closes.
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(u.Bytes))
		ch <- prometheus.MustNewConstMetric(c.seq, prometheus.GaugeValue, float64(u.LastSeq))
	default:
		// The scrape fails and says why, rather than report a size of 0.
		ch <- prometheus.NewInvalidMetric(c.size, err)
		ch <- prometheus.NewInvalidMetric(c.seq, err)
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(c.st.PullsWaiting()))
}

// ObserveRequest counts one answered HTTP request. route must be the
// route's pattern, never the raw path: a path can carry ids.
func (m *Metrics) ObserveRequest(route, method string, status int, took time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	key := routeKey{route: route, method: knownMethod(method), status: status}
	m.httpMu.RLock()
	child, ok := m.httpChildren[key]
	m.httpMu.RUnlock()
	if !ok {
		labels := []string{key.route, key.method, strconv.Itoa(status)}
		child = httpChild{requests: m.httpRequests.WithLabelValues(labels...), duration: m.httpDuration.WithLabelValues(labels...)}
		m.httpMu.Lock()
		m.httpChildren[key] = child
		m.httpMu.Unlock()
	}
	child.requests.Inc()
	child.duration.Observe(took.Seconds())
}

// knownMethod keeps a client from making up label values with methods of
// its own.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// Pushed counts a successful push: its ops by type and outcome, and its
// device as active. results are in client_seq order, as the store
// answers; ops in the order the client sent them.
func (m *Metrics) Pushed(deviceID string, ops []syncproto.Op, results []syncproto.Result) {
	if m == nil {
		return
	}
	m.devices.see(deviceID, m.now())
	m.pushOps.Observe(float64(len(ops)))
	order := clientSeqOrder(ops)
	for i := range results {
		r := &results[i]
		kind := m.opsOther
		if i < len(ops) {
			j := i
			if order != nil {
				j = order[i]
			}
			if ops[j].ID == r.OpID {
				if k, ok := m.opsByType[ops[j].Type]; ok {
					kind = k
				}
			}
		}
		switch r.Status {
		case syncproto.StatusApplied:
			kind.applied.Inc()
		case syncproto.StatusDuplicate:
			kind.duplicate.Inc()
		default:
			m.ops.WithLabelValues(kind.typ, syncproto.StatusRejected, r.Code).Inc()
		}
	}
}

// clientSeqOrder returns the indexes of ops stably sorted by client_seq, the
// order of the store's results, or nil when ops are in that order already
// (as the SDK sends them).
func clientSeqOrder(ops []syncproto.Op) []int {
	sorted := true
	for i := 1; i < len(ops); i++ {
		if ops[i].ClientSeq < ops[i-1].ClientSeq {
			sorted = false
			break
		}
	}
	if sorted {
		return nil
	}
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ops[a].ClientSeq, ops[b].ClientSeq) })
	return order
}

// Pulled counts a successful pull: the changes it sent, whether it reset,
// and its device as active.
func (m *Metrics) Pulled(deviceID string, resp *syncproto.PullResponse) {
	if m == nil {
		return
	}
	m.devices.see(deviceID, m.now())
	m.pullChanges.Add(float64(len(resp.Changes)))
	if resp.Reset {
		m.pullResets.Inc()
	}
}

// FeedImported counts a feed import's rows by result.
func (m *Metrics) FeedImported(resp *syncproto.FeedResponse) {
	if m == nil {
		return
	}
	m.feedCreated.Add(float64(len(resp.Created)))
	m.feedDuplicate.Add(float64(len(resp.Duplicates)))
	m.feedInvalid.Add(float64(len(resp.Invalid)))
}

// ObserveCommit records one group commit; it has the signature of
// store.Options.OnCommit.
func (m *Metrics) ObserveCommit(requests int, took time.Duration, failed bool) {
	if m == nil {
		return
	}
	m.commitRequests.Observe(float64(requests))
	m.commitSeconds.Observe(took.Seconds())
	if failed {
		m.commitFailures.Inc()
	}
}

// AuthFailure counts an authentication failure; reason is one of the Auth
// constants (anything else is counted as "other").
func (m *Metrics) AuthFailure(reason string) {
	if m == nil {
		return
	}
	c, ok := m.authByReason[reason]
	if !ok {
		c = m.authFailures.WithLabelValues("other")
	}
	c.Inc()
}

// RefreshGraced counts a refresh answered under the grace window. It is not
// an authentication failure: the client gets a new pair. A rise with no
// rise in lost answers (a link worse than usual) may be a replayed token.
func (m *Metrics) RefreshGraced() {
	if m == nil {
		return
	}
	m.refreshGrace.Inc()
}
