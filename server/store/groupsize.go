package store

import (
	"math"
	"sync/atomic"
)

// DefaultGroupPageBytes is Options.GroupPageBytes' default. A transaction
// holds every page it dirtied, and the nodes they came from, in the Go
// heap until it commits: that, not the bytes its commands bring, is what
// a group costs the server's memory, and it grows with the store (an op
// of the load program dirties 7-8 KB of pages in a store of 100,000
// warnings, 14 KB in one of a million: a deeper tree, fewer ops sharing a
// leaf). The writer sizes its groups to dirty about this much, as the
// last groups measured; the nodes and the decoded states come on top,
// about as much again. At a million warnings this makes groups of some
// 1,800 ops of the load program's (the writer's transaction some 60 MB);
// in a store of 100,000, some 2,800.
const DefaultGroupPageBytes = 24 << 20

// minGroupBytes is the least weight a group is cut at, however many
// pages the last ones dirtied: a store whose every op dirties many pages
// still shares each fsync among some hundreds of ops.
const minGroupBytes = 128 << 10

// groupSizer keeps the pages the recent groups dirtied per byte of their
// commands' weight, and from it the weight of the next group.
type groupSizer struct {
	// ratio is a float64's bits: page bytes per byte of weight, a
	// moving average; 0 until a group has been measured.
	ratio  atomic.Uint64
	budget int
}

// observe records a group of weight that dirtied pageBytes.
func (g *groupSizer) observe(pageBytes int64, weight int) {
	if pageBytes <= 0 || weight <= 0 {
		return
	}
	r := float64(pageBytes) / float64(weight)
	if old := math.Float64frombits(g.ratio.Load()); old > 0 {
		r = 0.75*old + 0.25*r
	}
	g.ratio.Store(math.Float64bits(r))
}

// limit is the weight the next group is cut at: what dirties about the
// budget of pages, at most maxBytes and at least minGroupBytes.
func (g *groupSizer) limit(maxBytes int) int {
	r := math.Float64frombits(g.ratio.Load())
	if r <= 0 {
		return maxBytes
	}
	return min(maxBytes, max(minGroupBytes, int(float64(g.budget)/r)))
}
