package cluster

import "sync"

// HoldApplies keeps the node's store from applying any entry raft commits
// (raft itself goes on taking them) until release is called: a follower
// held behind its leader, as a slow disk or a busy machine leaves one.
// The test's cleanup releases it too, so that raft can stop.
func (n *Node) HoldApplies() (release func()) {
	held := make(chan struct{})
	n.fsm.held.Store(&held)
	var once sync.Once
	return func() {
		once.Do(func() {
			n.fsm.held.Store(nil)
			close(held)
		})
	}
}
