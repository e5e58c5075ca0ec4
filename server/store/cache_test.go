package store

import (
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// A state read outside the writer goes into the cache only when no write
// transaction merged after the snapshot it was read in changed it, as far
// as the cache remembers the merges, and never over a state the cache
// holds: either could be older than what the writer committed.
func TestWarningCache_Offer(t *testing.T) {
	c := newWarningCache(3)
	a1 := &syncproto.Warning{ID: "a", Version: 1}
	c.merge(map[string]*syncproto.Warning{"a": a1}, 5)

	c.offer(map[string]*syncproto.Warning{"b": {ID: "b"}}, 3)
	if c.get("b", 5) != nil {
		t.Error("a state read in snapshot 3 was taken, though what transaction 4 changed is not known")
	}
	c.offer(map[string]*syncproto.Warning{"b": {ID: "b"}}, 4)
	if c.get("b", 5) == nil {
		t.Error("a state read in snapshot 4 was refused, though transaction 5, merged since, did not change it")
	}
	delete(c.entries, "b")
	c.offer(map[string]*syncproto.Warning{"b": {ID: "b"}}, 6)
	if c.get("b", 5) != nil {
		t.Error("a state read in snapshot 6 was taken before transaction 6 was merged")
	}

	b := &syncproto.Warning{ID: "b"}
	c.offer(map[string]*syncproto.Warning{"a": {ID: "a", Version: 0}, "b": b}, 5)
	if got := c.get("a", 5); got != a1 {
		t.Errorf("an offered state replaced the one the writer merged: %+v", got)
	}
	if got := c.get("b", 5); got != b {
		t.Errorf("a state read in snapshot 5, the cache's, was not taken: %v", got)
	}

	// A transaction committed after the snapshot merges over what was
	// offered.
	b2 := &syncproto.Warning{ID: "b", Version: 6}
	c.merge(map[string]*syncproto.Warning{"b": b2}, 6)
	if got := c.get("b", 6); got != b2 {
		t.Errorf("the state merged by transaction 6 did not replace the offered one: %+v", got)
	}

	// Transaction 6 changed b: a state of b read before it is refused, one
	// of c taken.
	delete(c.entries, "b")
	c.offer(map[string]*syncproto.Warning{"b": {ID: "b", Version: 5}, "c": {ID: "c"}}, 5)
	if got := c.get("b", 6); got != nil {
		t.Errorf("a state of b read in snapshot 5 was taken after transaction 6 changed b: %+v", got)
	}
	if c.get("c", 6) == nil {
		t.Error("a state of c read in snapshot 5 was refused, though transaction 6 did not change c")
	}
	if held, missing, txid := c.split([]string{"c", "b"}); len(missing) != 1 || missing[0] != "b" || len(held) != 1 || held["c"] == nil || txid != 6 {
		t.Errorf("split(c, b) = %v, %v, %d; want c's state, [b], 6", held, missing, txid)
	}
	c.offer(map[string]*syncproto.Warning{"c": {ID: "c"}, "d": {ID: "d"}, "e": {ID: "e"}}, 6)
	if n := len(c.entries); n > 3 {
		t.Errorf("the cache of 3 holds %d states after an offer", n)
	}

	// Merges further back than the cache remembers refuse every state.
	for txid := 7; txid <= 6+recentMerges; txid++ {
		c.merge(nil, txid)
	}
	c.offer(map[string]*syncproto.Warning{"x": {ID: "x"}}, 6)
	if c.get("x", 6+recentMerges) != nil {
		t.Errorf("a state read %d merges back was taken", recentMerges)
	}
	c.offer(map[string]*syncproto.Warning{"x": {ID: "x"}}, 7)
	if c.get("x", 6+recentMerges) == nil {
		t.Errorf("a state read %d merges back, none of which changed it, was refused", recentMerges-1)
	}

	c.reset(100)
	c.offer(map[string]*syncproto.Warning{"y": {ID: "y"}}, 99)
	if c.get("y", 100) != nil {
		t.Error("a state read before the store was replaced was taken")
	}
	c.offer(map[string]*syncproto.Warning{"y": {ID: "y"}}, 100)
	if c.get("y", 100) == nil {
		t.Error("a state read after the store was replaced was refused")
	}
}

// The states a push carries to the writer (warm) are used only while no
// merge since they were read changed them, and never from a snapshot
// newer than the last merge.
func TestStore_WarmedState(t *testing.T) {
	s := &Store{cache: newWarningCache(10)}
	s.cache.merge(map[string]*syncproto.Warning{"a": {ID: "a", Version: 1}}, 5)
	a, b := &syncproto.Warning{ID: "a", Version: 1}, &syncproto.Warning{ID: "b", Version: 1}
	if s.warmedState("a") != nil {
		t.Error("a state was found with no push being applied")
	}
	s.warmed = &warmedStates{states: map[string]*syncproto.Warning{"a": a, "b": b}, txid: 5}
	if s.warmedState("a") != a || s.warmedState("b") != b {
		t.Error("states read after the last merge were not used")
	}
	s.cache.merge(map[string]*syncproto.Warning{"a": {ID: "a", Version: 6}}, 6)
	if got := s.warmedState("a"); got != nil {
		t.Errorf("a state read before transaction 6 changed it was used: %+v", got)
	}
	if s.warmedState("b") != b {
		t.Error("a state no merge since changed was not used")
	}
	s.warmed.txid = 7
	if s.warmedState("b") != nil {
		t.Error("a state after a transaction not yet merged was used")
	}
}
