package store

import (
	"testing"

	"github.com/fieldsync/fieldsync/syncproto"
)

// A state read outside the writer goes into the cache only when no write
// transaction was merged after the snapshot it was read in, and never
// over a state the cache holds: either could be older than what the
// writer committed.
func TestWarningCache_Offer(t *testing.T) {
	c := newWarningCache(3)
	a1 := &syncproto.Warning{ID: "a", Version: 1}
	c.merge(map[string]*syncproto.Warning{"a": a1}, 5)

	c.offer(map[string]*syncproto.Warning{"b": {ID: "b"}}, 4)
	if c.get("b", 5) != nil {
		t.Error("a state read in snapshot 4 was taken after transaction 5 was merged")
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

	if missing := c.missing([]string{"x", "b"}); len(missing) != 1 || missing[0] != "x" {
		t.Errorf("missing(x, b) = %v, want [x]", missing)
	}
	c.offer(map[string]*syncproto.Warning{"c": {ID: "c"}, "d": {ID: "d"}, "e": {ID: "e"}}, 6)
	if n := len(c.entries); n > 3 {
		t.Errorf("the cache of 3 holds %d states after an offer", n)
	}
}
