package metrics

import (
	"hash/maphash"
	"sync"
	"time"
)

// activeHorizon is the longest window of fieldsync_active_devices: a device
// not seen for longer is forgotten.
const activeHorizon = 24 * time.Hour

// pruneEvery is how often see drops devices past the horizon, so memory
// follows the devices of the last day even when nobody scrapes.
const pruneEvery = time.Minute

// deviceTracker remembers when each device last synced. It keeps no device
// id: only a keyed 64-bit hash of it, with a seed made at start, which is
// enough to count distinct devices (a collision among a city's few
// thousand phones is about as likely as none at all matters) and says
// nothing about which they were.
type deviceTracker struct {
	seed maphash.Seed

	mu        sync.Mutex
	lastSeen  map[uint64]int64 // hash of device id -> unix nanoseconds
	lastPrune time.Time
}

func newDeviceTracker() *deviceTracker {
	return &deviceTracker{seed: maphash.MakeSeed(), lastSeen: make(map[uint64]int64)}
}

// see records that the device synced at now.
func (t *deviceTracker) see(deviceID string, now time.Time) {
	h := maphash.String(t.seed, deviceID)
	t.mu.Lock()
	t.lastSeen[h] = now.UnixNano()
	if now.Sub(t.lastPrune) >= pruneEvery {
		t.prune(now)
	}
	t.mu.Unlock()
}

// count returns how many devices synced within window before now.
func (t *deviceTracker) count(now time.Time, window time.Duration) int {
	since := now.Add(-window).UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, seen := range t.lastSeen {
		if seen >= since {
			n++
		}
	}
	return n
}

// prune forgets devices past the horizon; t.mu is held.
func (t *deviceTracker) prune(now time.Time) {
	t.lastPrune = now
	horizon := now.Add(-activeHorizon).UnixNano()
	for h, seen := range t.lastSeen {
		if seen < horizon {
			delete(t.lastSeen, h)
		}
	}
}
