// Package workpool runs a bounded number of goroutines over numbered work
// items, for the example programs.
package workpool

import (
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// Run calls fn(0..n-1) on up to workers goroutines and returns the first
// error; after an error no new item starts.
func Run(workers, n int, fn func(i int) error) error {
	var g errgroup.Group
	g.SetLimit(workers)
	var failed atomic.Bool
	for i := range n {
		if failed.Load() {
			break
		}
		g.Go(func() error {
			if failed.Load() {
				return nil
			}
			err := fn(i)
			if err != nil {
				failed.Store(true)
			}
			return err
		})
	}
	return g.Wait()
}
