package app

import (
	"context"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/server/store"
)

// Background upkeep of a running server: pull sightings written to the
// devices' LastSeen, the daily index compaction, and the hourly sweep of
// expired photo uploads and of photos no attempt names.

// sightings are the devices seen pulling since the last flush. Pulls run in
// read-only transactions: writing LastSeen on each would turn every pull
// into a write, so they are noted here and written at most once a minute.
type sightings struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newSightings() *sightings { return &sightings{seen: map[string]time.Time{}} }

func (s *sightings) note(deviceID string, at time.Time) {
	s.mu.Lock()
	if at.After(s.seen[deviceID]) {
		s.seen[deviceID] = at
	}
	s.mu.Unlock()
}

func (s *sightings) take() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return nil
	}
	out := s.seen
	s.seen = map[string]time.Time{}
	return out
}

// FlushSightings writes the pulls noted since the last flush to the
// devices' LastSeen. On failure they are noted again for the next flush.
func (a *App) FlushSightings(ctx context.Context) error {
	seen := a.seen.take()
	if err := a.store.TouchDevices(ctx, seen); err != nil {
		for id, at := range seen {
			a.seen.note(id, at)
		}
		return err
	}
	return nil
}

// Compact runs the index compaction with the configured tombstone horizon.
func (a *App) Compact(ctx context.Context) (*store.CompactReport, error) {
	return a.store.CompactIndex(ctx, a.cfg.TombstoneHorizon)
}

// Upkeep intervals of RunUpkeep.
const (
	SightingsEvery = time.Minute
	CompactEvery   = 24 * time.Hour
	// CompactFirstAfter delays the first compaction after start, so a
	// server starting up serves its phones' morning sync first.
	CompactFirstAfter = 10 * time.Minute
	// UploadSweepEvery is how often expired uploads and unreferenced
	// photos are deleted: each outlives its expiry or grace by at most
	// this (a photo longer while a backup runs).
	UploadSweepEvery = time.Hour
	// DeviceExpireEvery is how often devices unseen for the device
	// expiry are forgotten (store.ExpireDevices).
	DeviceExpireEvery = 24 * time.Hour
)

// RunUpkeep flushes pull sightings every SightingsEvery, compacts the
// scope indexes CompactFirstAfter after start and then every CompactEvery,
// deletes expired uploads and unreferenced photos every UploadSweepEvery
// and forgets expired devices every DeviceExpireEvery, until ctx ends; then
// it flushes the last sightings. The store must stay open until it
// returns.
func (a *App) RunUpkeep(ctx context.Context) {
	flush := time.NewTicker(SightingsEvery)
	defer flush.Stop()
	sweep := time.NewTicker(UploadSweepEvery)
	defer sweep.Stop()
	compact := time.NewTimer(CompactFirstAfter)
	defer compact.Stop()
	expire := time.NewTicker(DeviceExpireEvery)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := a.FlushSightings(last); err != nil {
				a.log.Error("flush device sightings", "err", err)
			}
			return
		case <-flush.C:
			if err := a.FlushSightings(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("flush device sightings", "err", err)
			}
		case <-compact.C:
			compact.Reset(CompactEvery)
			if !a.leads() {
				continue
			}
			start := time.Now()
			rep, err := a.Compact(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				a.log.Error("index compaction failed", "err", err)
			case err == nil:
				a.log.Info("index compaction", "scopes", rep.Scopes, "entries", rep.Entries, "superseded", rep.Superseded,
					"tombstones", rep.Tombstones, "horizon_seq", rep.HorizonSeq, "scopes_moved", rep.ScopesMoved, "took", time.Since(start))
			}
		case <-sweep.C:
			a.sweepFiles(ctx)
		case <-expire.C:
			if a.leads() {
				a.expireDevices(ctx)
			}
		}
	}
}

// expireDevices forgets the devices unseen for the device expiry that
// hold nothing worth keeping (store.ExpireDevices), and logs how many.
func (a *App) expireDevices(ctx context.Context) {
	n, err := a.store.ExpireDevices(ctx)
	if err != nil && ctx.Err() == nil {
		a.log.Error("forget expired devices", "err", err)
	}
	if n > 0 {
		a.log.Info("expired devices forgotten", "devices", n)
	}
}

// leads reports whether this node runs the upkeep that decides for the
// whole store. On a cluster every node's decision would go through the
// log and apply safely (each command checks its items again), but three
// nodes deciding the same thing triple the work and the log: only the
// leader decides; a follower that becomes leader takes over at its next
// tick.
func (a *App) leads() bool { return a.cfg.Leads == nil || a.cfg.Leads() }

// sweepFiles deletes the expired uploads, on every node (an unfinished
// upload is a file of the node it came through), and the unreferenced
// photos, on the leader (a command for the whole store).
func (a *App) sweepFiles(ctx context.Context) {
	n, err := a.SweepUploads(ctx)
	if err != nil && ctx.Err() == nil {
		a.log.Error("sweep expired uploads", "err", err)
	}
	if n > 0 {
		a.log.Info("expired uploads deleted", "uploads", n)
	}
	if !a.leads() {
		return
	}
	n, err = a.SweepPhotos(ctx)
	if err != nil && ctx.Err() == nil {
		a.log.Error("sweep unreferenced photos", "err", err)
	}
	if n > 0 {
		a.log.Info("unreferenced photos deleted", "photos", n, "grace", a.cfg.OrphanPhotoGrace.String())
	}
}
