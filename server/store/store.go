package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fieldsync/fieldsync/server/store/internal/schema"
	"github.com/fieldsync/fieldsync/syncproto"
)

// ErrClosed is returned for writes after Close, and by Ready and Usage.
var ErrClosed = errors.New("store is closed")

// ErrNotInitialized is returned by Open when the directory holds no store
// and Options.Create is false.
var ErrNotInitialized = errors.New("no fieldsync store here; run fieldsyncd init first")

// Options tune a store.
type Options struct {
	// Create makes a new store when none exists.
	Create bool
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Deadlines give the time allowed per risk when a feed row has none.
	Deadlines syncproto.DeadlinePolicy
	// MaxBatch caps how many requests share one transaction.
	MaxBatch int
	// MaxGroupBytes caps, roughly, the bytes the requests of one
	// transaction bring (DefaultMaxGroupBytes when 0): a group of many
	// large pushes or imports is cut before it, so a phone's small push
	// does not wait behind one huge commit. A single request larger than
	// the cap still goes in, alone.
	MaxGroupBytes int
	// GroupPageBytes is about how many bytes of pages one group's
	// transaction may dirty (DefaultGroupPageBytes when 0): the writer
	// cuts its groups, under MaxGroupBytes, at the weight the last groups
	// dirtied that much with.
	GroupPageBytes int
	// NoSync skips fsync: only for benchmarks that measure everything else.
	NoSync bool
	// NoUpgrade refuses a store of an older schema instead of migrating
	// it: for tools that only inspect or touch a store in passing, which
	// must not make it unreadable to the server that wrote it.
	NoUpgrade bool
	// OnCommit, when set, hears of every group commit before its requests
	// are answered: how many requests shared the transaction, how long it
	// took with its fsync, and whether it failed. It runs on the writer
	// goroutine, so it must be quick.
	OnCommit func(requests int, took time.Duration, failed bool)
	// LockWait is how long Open waits for another process (a server, a
	// restore, a compaction) to let go of the file before it refuses;
	// 2 s when 0.
	LockWait time.Duration
	// MaxPullWaiters caps the pulls held at once waiting for a change
	// (PullPage.Wait); DefaultMaxPullWaiters when 0. Past it a pull
	// answers at once.
	MaxPullWaiters int
	// PullTimer starts the timer that ends a held pull's wait and returns
	// its channel and its stop; time.NewTimer's by default. Tests give one
	// that fires when they say.
	PullTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// MaxDevicesPerUser caps the devices one user may have signed in at
	// once (DefaultMaxDevicesPerUser when 0, no cap when negative);
	// DeviceExpiry is how long a device may go unseen before it counts
	// as signed out (DefaultDeviceExpiry when 0). See devices.go.
	MaxDevicesPerUser int
	DeviceExpiry      time.Duration
	// WarningLimits bound how far pushed ops can make a warning grow;
	// syncproto.DefaultWarningLimits where a field is 0.
	WarningLimits syncproto.WarningLimits
	// PhotoQuota is how many bytes of new photos a device may store per
	// day, Beijing time (photos.go); DefaultPhotoQuota when 0.
	PhotoQuota int64
	// Replicate, when set, receives each group of writes encoded as one
	// entry instead of the writer applying it: it must have the entry
	// applied to st through st.ApplyEntry (a replicated log's state
	// machine does, once the entry is committed) and return what
	// ApplyEntry returned, whose answers go to the group's requests. An
	// error fails every request of the group. Unset (one node), the
	// writer applies each group itself and encodes nothing
	// (command.go, docs/CLUSTER.md).
	Replicate func(ctx context.Context, st *Store, entry []byte) (*Applied, error)
	// CursorWait, on a node of a cluster, is how long a pull whose cursor
	// is newer than what this node applied waits for it before it answers
	// unavailable with Retry-After, instead of resetting the device
	// (cluster.go). 0 (one node): such a cursor resets, as it always has.
	CursorWait time.Duration
	// The photo hooks of a node of a cluster (docs/CLUSTER.md, "Photos
	// across the nodes"); unset on one node, where a photo's file is
	// always where its metadata says.
	//
	// ReplicatePhoto is given a photo's checked, fsynced file (its SHA-256
	// in lowercase hex, its path and size) before its metadata is
	// submitted, and returns once a majority of the cluster, this node
	// included, holds the file; its error fails the upload and nothing is
	// committed (a *syncproto.Error, unavailable with reason no_quorum,
	// reaches the client as it is).
	ReplicatePhoto func(ctx context.Context, sum, path string, size int64) error
	// FetchPhoto gets a photo whose metadata this store holds and whose
	// file it lacks from another node and installs it (InstallPhoto):
	// OpenBlob calls it before it serves such a photo.
	FetchPhoto func(ctx context.Context, sum string) error
	// PhotoMissing hears of a photo whose metadata an entry of the log
	// just stored here without its file (another node received it). It
	// runs on the applying goroutine after the commit, so it must only
	// note the photo for a fetch later, never block.
	PhotoMissing func(sum string)
}

// Store is the authoritative store. It is safe for concurrent use.
type Store struct {
	db          *bolt.DB
	dir         string
	now         func() time.Time
	deadlines   syncproto.DeadlinePolicy
	incarnation [16]byte
	maxBatch    int
	maxBytes    int
	// sizer sizes the groups by the pages they dirty (groupsize.go).
	sizer     groupSizer
	onCommit  func(requests int, took time.Duration, failed bool)
	migrated  []Migration
	noUpgrade bool
	// compacting lets one index compaction run at a time.
	compacting sync.Mutex
	// devices is the sign-in policy of Options (devices.go).
	devices devicePolicy

	// replicate is Options.Replicate; life is its context, ended by
	// Close.
	replicate func(ctx context.Context, st *Store, entry []byte) (*Applied, error)
	// slots and inFlight count the groups in replication (dispatch).
	slots    chan struct{}
	inFlight sync.WaitGroup
	// keysMu guards onKeys, called after a commit that changed the
	// signing keys (OnSigningKeys).
	keysMu sync.Mutex
	onKeys func()
	// fromLog is set while ApplyEntry applies an entry of the replicated
	// log (under applyMu): a photo's file may then be on another node.
	fromLog bool
	life    context.Context
	endLife context.CancelFunc
	// cursorWait is Options'; progress is closed and replaced after each
	// group a node of a cluster applies (cluster.go).
	cursorWait time.Duration
	progressMu sync.Mutex
	progress   chan struct{}
	// applyMu is held by whoever applies a group (the writer, or
	// ApplyEntry): the fields below marked "applier only" are its.
	// applied is the index of the last group applied (meta
	// "applied_index"); afterCommit what the group in progress does once
	// it has committed (applier only).
	applyMu     sync.Mutex
	applied     atomic.Uint64
	afterCommit []func()

	// cache holds decoded committed states; batch the states written by
	// the transaction in progress (applier only).
	cache *warningCache
	batch map[string]*syncproto.Warning
	// warmed are the states the push being applied read before it
	// reached the writer (applier only; warm).
	warmed *warmedStates
	// touched are the scopes the transaction in progress wrote index
	// entries into (applier only): their held pulls are woken
	// after it commits.
	touched map[string]struct{}
	// stats are the statistics the transaction in progress changed
	// (applier only), written as it commits.
	stats     *statsDelta
	notify    *notifier
	pullTimer func(d time.Duration) (<-chan time.Time, func() bool)

	warningLimits syncproto.WarningLimits
	photoQuota    int64
	// unlink are the photos whose metadata the transaction in progress
	// deleted, each with the function told how its file's removal went
	// (applier only): the files go once it commits (photos.go).
	unlink map[string]func(error)
	// replicatePhoto, fetchPhoto and photoMissing are Options'.
	replicatePhoto func(ctx context.Context, sum, path string, size int64) error
	fetchPhoto     func(ctx context.Context, sum string) error
	photoMissing   func(sum string)
	// staged are the paths of the photo files this store staged and has
	// submitted the metadata of: the only staged files a command's
	// apply renames (blobs.go). Guarded by stagedMu.
	stagedMu sync.Mutex
	staged   map[string]struct{}
	// photoFiles is read-held by each backup while it copies the photos,
	// and held by the sweep of unreferenced photos while it deletes them.
	photoFiles sync.RWMutex

	writes    chan *writeRequest
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	// mu guards sending on writes against Close.
	mu     sync.RWMutex
	closed bool
}

// DBFile is the name of the bbolt file inside a store's directory.
const DBFile = "fieldsync.db"

// Open opens the store in dir, creating it when opts.Create is set.
func Open(dir string, opts Options) (*Store, error) {
	path := filepath.Join(dir, DBFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !opts.Create {
		return nil, ErrNotInitialized
	}
	if err := os.MkdirAll(filepath.Join(dir, schema.BlobDir), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := openLocked(path, opts.NoSync, opts.LockWait)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:         db,
		dir:        dir,
		now:        opts.Now,
		deadlines:  opts.Deadlines,
		maxBatch:   opts.MaxBatch,
		maxBytes:   opts.MaxGroupBytes,
		noUpgrade:  opts.NoUpgrade,
		onCommit:   opts.OnCommit,
		replicate:  opts.Replicate,
		slots:      make(chan struct{}, groupsInFlight),
		cursorWait: opts.CursorWait,
		progress:   make(chan struct{}),
		writes:     make(chan *writeRequest, 1024),
		cache:      newWarningCache(cachedWarnings),
		batch:      make(map[string]*syncproto.Warning),
		touched:    make(map[string]struct{}),
		stats:      newStatsDelta(),
		notify:     newNotifier(opts.MaxPullWaiters),
		pullTimer:  opts.PullTimer,
		devices:    newDevicePolicy(opts.MaxDevicesPerUser, opts.DeviceExpiry),
		unlink:     make(map[string]func(error)),
		staged:     make(map[string]struct{}),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.replicatePhoto, s.fetchPhoto, s.photoMissing = opts.ReplicatePhoto, opts.FetchPhoto, opts.PhotoMissing
	if s.now == nil {
		s.now = time.Now
	}
	if s.deadlines == nil {
		s.deadlines = syncproto.DefaultDeadlines
	}
	if s.maxBytes <= 0 {
		s.maxBytes = DefaultMaxGroupBytes
	}
	s.sizer.budget = opts.GroupPageBytes
	if s.sizer.budget <= 0 {
		s.sizer.budget = DefaultGroupPageBytes
	}
	if s.maxBatch <= 0 {
		s.maxBatch = 512
	}
	if s.pullTimer == nil {
		s.pullTimer = defaultPullTimer
	}
	s.warningLimits = opts.WarningLimits
	if s.warningLimits.MaxAttempts == 0 {
		s.warningLimits.MaxAttempts = syncproto.DefaultWarningLimits.MaxAttempts
	}
	if s.warningLimits.MaxBytes == 0 {
		s.warningLimits.MaxBytes = syncproto.DefaultWarningLimits.MaxBytes
	}
	s.photoQuota = opts.PhotoQuota
	if s.photoQuota == 0 {
		s.photoQuota = DefaultPhotoQuota
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	go s.writer()
	return s, nil
}

// openLocked opens the bbolt file at path and takes its lock. A file
// replaced while the lock was awaited (a restore swapping the directory
// from under a server starting) is let go and the new one opened: running
// on the replaced file would acknowledge pushes into a file nobody reads.
func openLocked(path string, noSync bool, lockWait time.Duration) (*bolt.DB, error) {
	if lockWait <= 0 {
		lockWait = 2 * time.Second
	}
	for try := 0; ; try++ {
		before, _ := os.Stat(path)
		// The freelist is not written at each commit (it is rebuilt at
		// open): in a file of hundreds of megabytes, writing it was a good
		// part of every group commit.
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait, NoSync: noSync, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		after, err := os.Stat(path)
		if err == nil && (before == nil || os.SameFile(before, after)) {
			return db, nil
		}
		db.Close()
		if try == 2 {
			return nil, fmt.Errorf("open %s: the file was replaced while it was being opened", path)
		}
	}
}

func (s *Store) init() error {
	if err := checkSchema(s.db, s.noUpgrade); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range schema.Buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(schema.BucketMeta)
		if meta.Get(schema.KeySchema) == nil {
			// A new store: it has the current layout from the start.
			if err := meta.Put(schema.KeySchema, schema.U64(SchemaVersion)); err != nil {
				return err
			}
		}
		inc := meta.Get(schema.KeyIncarnation)
		if inc == nil {
			var id [16]byte
			if _, err := rand.Read(id[:]); err != nil {
				return fmt.Errorf("make incarnation id: %w", err)
			}
			if err := meta.Put(schema.KeyIncarnation, id[:]); err != nil {
				return err
			}
			inc = id[:]
		}
		copy(s.incarnation[:], inc)
		if v := meta.Get(schema.KeyAppliedIndex); len(v) == 8 {
			s.applied.Store(schema.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.migrated, err = migrate(s.db)
	return err
}

// Migrated lists the schema migrations Open ran on this store, oldest
// first; none when it was already current.
func (s *Store) Migrated() []Migration { return s.migrated }

// NewIncarnation gives the store a new incarnation id, so every device's
// cursor resets: done after a restore, whose log may be behind what devices
// already pulled.
func (s *Store) NewIncarnation(ctx context.Context) error {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("make incarnation id: %w", err)
	}
	_, err := s.write(ctx, &incarnationCmd{ID: id})
	return err
}

// incarnationCmd sets the incarnation id.
type incarnationCmd struct {
	ID [16]byte `json:"id"`
}

func (*incarnationCmd) kind() cmdKind { return cmdSetIncarnation }

func (c *incarnationCmd) apply(s *Store, tx *bolt.Tx) (any, error) {
	if err := tx.Bucket(schema.BucketMeta).Put(schema.KeyIncarnation, c.ID[:]); err != nil {
		return nil, err
	}
	s.afterCommit = append(s.afterCommit, func() {
		s.mu.Lock()
		s.incarnation = c.ID
		s.mu.Unlock()
	})
	return nil, nil
}

// Incarnation is the id that makes cursors of this store differ from any
// other's.
func (s *Store) Incarnation() [16]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.incarnation
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Usage is how much a store holds, as one read transaction saw it.
type Usage struct {
	// Bytes is the size of the bbolt file's used pages (the photos beside
	// it are not counted).
	Bytes int64
	// LastSeq is the newest log sequence: the log's length, since seqs
	// have no gaps.
	LastSeq uint64
}

// Usage reads the store's size and log length, for monitoring; ErrClosed
// once the store is closed.
func (s *Store) Usage() (Usage, error) {
	var u Usage
	err := s.db.View(func(tx *bolt.Tx) error {
		u.Bytes = tx.Size()
		u.LastSeq = tx.Bucket(schema.BucketLog).Sequence()
		return nil
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return Usage{}, ErrClosed
	}
	if err != nil {
		return Usage{}, fmt.Errorf("read store usage: %w", err)
	}
	return u, nil
}

// Contents counts what a store holds, as one read transaction saw it.
type Contents struct {
	Warnings, Units, Users, Photos int
	// Phones are the devices that are not the web console's sessions.
	Phones int
	// LastSeq is the newest log sequence.
	LastSeq uint64
}

// Contents counts what the store holds: a cluster's restore from a backup
// (server/cluster) refuses a store holding more than a new cluster's
// founding entries make.
func (s *Store) Contents() (Contents, error) {
	var c Contents
	err := s.db.View(func(tx *bolt.Tx) error {
		c.Warnings = schema.CountWarnings(tx.Bucket(schema.BucketWarnings))
		c.Units = tx.Bucket(schema.BucketUnits).Stats().KeyN
		c.Users = tx.Bucket(schema.BucketUsers).Stats().KeyN
		c.Photos = tx.Bucket(schema.BucketBlobs).Stats().KeyN
		c.LastSeq = tx.Bucket(schema.BucketLog).Sequence()
		return forEachRecord(tx.Bucket(schema.BucketDevices), func(_ []byte, d *Device) error {
			if !d.Console {
				c.Phones++
			}
			return nil
		})
	})
	if err != nil {
		return Contents{}, fmt.Errorf("count the store's contents: %w", err)
	}
	return c, nil
}

// CommitStats is the cumulative cost of the store's commits since it
// opened, as bbolt counts it.
type CommitStats struct {
	// WriteTime is the time spent writing pages to the file, SpillTime
	// the time spent preparing them (spilling the changed B+tree nodes).
	WriteTime, SpillTime time.Duration
	// PagesWritten is how many pages were written: bbolt's count of
	// writes, one per page or run of overflow pages, and one per commit
	// for its meta page.
	PagesWritten int64
	// PageBytes is the bytes of the pages the commits wrote: every page a
	// commit writes is one it allocated (copy on write), so it is bbolt's
	// PageAlloc, overflow pages included; each commit's meta page, one
	// more page, is not. It counts every page rewritten for a small
	// change: what an op really costs the disk, beside what it adds to
	// the buckets (BucketSizes).
	PageBytes int64
}

// CommitStats reads the cost of the commits so far: for load tools that
// tell the disk's share of a run from the rest.
func (s *Store) CommitStats() CommitStats {
	tx := s.db.Stats().TxStats
	return CommitStats{WriteTime: tx.GetWriteTime(), SpillTime: tx.GetSpillTime(), PagesWritten: tx.GetWrite(), PageBytes: tx.GetPageAlloc()}
}

// Close stops the writer after the requests already queued, then closes the
// file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.closing)
		s.mu.Unlock()
		// A group waiting on replication is let go; one node's writer
		// never waits on it.
		s.endLife()
		<-s.done
	})
	return s.db.Close()
}

// writeRequest is one command for the writer, and its answer.
type writeRequest struct {
	cmd  command
	done chan outcome
}

// write submits c to the next group commit and returns its apply's
// answer once the group is durable.
func (s *Store) write(ctx context.Context, c command) (any, error) {
	req := &writeRequest{cmd: c, done: make(chan outcome, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case s.writes <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, ctx.Err()
	}
	s.mu.RUnlock()
	// Once queued the request is committed or failed whatever the caller
	// does: waiting here keeps "acknowledged" and "durable" the same thing.
	o := <-req.done
	return o.val, o.err
}

func (s *Store) writer() {
	defer close(s.done)
	// Groups still in replication are answered before the store closes.
	defer s.inFlight.Wait()
	// carry is a request that would have made the last group too large:
	// it opens the next.
	var carry *writeRequest
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.writes:
			case <-s.closing:
				// Drain what was queued before Close.
				for {
					select {
					case r := <-s.writes:
						s.commit([]*writeRequest{r})
					default:
						return
					}
				}
			}
		}
		batch, size := []*writeRequest{first}, weight(first.cmd)
		limit := s.sizer.limit(s.maxBytes)
	gather:
		for len(batch) < s.maxBatch && size < limit {
			select {
			case r := <-s.writes:
				w := weight(r.cmd)
				if size+w > limit {
					carry = r
					break gather
				}
				batch, size = append(batch, r), size+w
			default:
				break gather
			}
		}
		s.dispatch(batch)
	}
}

// cachedWarnings is how many decoded warning states the cache keeps: some
// 2.5 KB of the Go heap each, so 25 MB. The states a push acts on are read
// into it before the push reaches the writer (warm), and the states a
// group wrote are merged in as it commits, for the pulls that follow; at
// 20,000 it was a quarter of the server's live heap at 1,000,000 warnings
// and 1,000 devices (examples/scale).
const cachedWarnings = 10_000

// DefaultMaxGroupBytes is Options.MaxGroupBytes' default: a group of 200
// phones' pushes of 20 ops (about 2.5 MB) fits; an import of a day's
// feed in chunks shares a transaction with a few pushes at most. Under
// it, the groups are sized by the pages they dirty (GroupPageBytes).
const DefaultMaxGroupBytes = 8 << 20

// weighed is a command that can tell, roughly, how many bytes it brings;
// weight counts any other as a small one.
type weighed interface{ weight() int }

func weight(c command) int {
	if w, ok := c.(weighed); ok {
		return w.weight()
	}
	return 512
}

// groupsInFlight bounds the groups a node of a cluster has handed to
// Options.Replicate and not yet seen applied. One node commits a group at
// a time: bbolt has one writer, and the next group's fsync could not
// start before this one's. A node of a cluster spends most of a group's
// time waiting (the entry crosses the network and is fsynced in raft's
// log on a majority, then applied), so it hands the next groups on
// meanwhile; raft keeps their order in its log, and each apply re-checks
// what it decides against the state it finds, so a group proposed before
// the previous one applied gives the same result as one proposed after.
const groupsInFlight = 4

// dispatch commits a gathered group: on one node before the writer
// gathers the next, on a node of a cluster concurrently with up to
// groupsInFlight-1 others.
func (s *Store) dispatch(batch []*writeRequest) {
	if s.replicate == nil {
		s.commit(batch)
		return
	}
	s.slots <- struct{}{}
	s.inFlight.Add(1)
	go func() {
		defer s.inFlight.Done()
		defer func() { <-s.slots }()
		s.commit(batch)
	}()
}

// commit applies a batch's commands as one group, on this node alone or
// through Options.Replicate, and answers each request: with its
// command's outcome, or, when the group failed as a whole, with that
// failure.
func (s *Store) commit(batch []*writeRequest) {
	cmds := make([]command, len(batch))
	for i, r := range batch {
		cmds[i] = r.cmd
	}
	out, err := s.applyBatch(cmds)
	if err != nil {
		for _, r := range batch {
			r.done <- outcome{err: err}
		}
		return
	}
	for i, r := range batch {
		r.done <- out[i]
	}
}

// applyBatch is commit's work: one node applies the group itself, under
// the next index; a replicated one encodes it and waits for it to come
// back applied.
func (s *Store) applyBatch(cmds []command) ([]outcome, error) {
	now := s.now()
	for _, c := range cmds {
		if st, ok := c.(stamped); ok {
			st.stamp(now)
		}
	}
	if s.replicate == nil {
		s.applyMu.Lock()
		defer s.applyMu.Unlock()
		return s.applyGroup(s.applied.Load()+1, cmds)
	}
	entry, err := encodeEntry(cmds)
	if err != nil {
		return nil, err
	}
	a, err := s.replicate(s.life, s, entry)
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	if a == nil || len(a.outcomes) != len(cmds) {
		return nil, errors.New("replicate: the entry came back with other commands than it holds")
	}
	return a.outcomes, nil
}

// encode and decode keep records as the wire encodes them.
func encode(v any) ([]byte, error) { return syncproto.MarshalMsgpack(v) }

func decode(data []byte, v any) error { return syncproto.UnmarshalMsgpack(data, v) }

// put encodes v and stores it under key.
func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := encode(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// get decodes the value under key into v and reports whether it was there.
func get(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	return true, decode(data, v)
}

// view runs fn in a read transaction and returns what it read.
func view[T any](s *Store, fn func(tx *bolt.Tx) (T, error)) (T, error) {
	var v T
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		v, err = fn(tx)
		return err
	})
	return v, err
}

// load decodes the record under key, nil when there is none.
func load[T any](b *bolt.Bucket, key []byte) (*T, error) {
	var v T
	found, err := get(b, key, &v)
	if err != nil || !found {
		return nil, err
	}
	return &v, nil
}

// forEachRecord decodes each value of b, in key order, and calls fn with
// its key and the record; a value that does not decode, or an error of
// fn, ends the walk with that error.
func forEachRecord[T any](b *bolt.Bucket, fn func(k []byte, rec *T) error) error {
	return b.ForEach(func(k, v []byte) error {
		var rec T
		if err := decode(v, &rec); err != nil {
			return err
		}
		return fn(k, &rec)
	})
}
