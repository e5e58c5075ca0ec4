// Package workpool runs a bounded number of goroutines over numbered work
// items, for the example programs.
package workpool

import (
	"sync"
	"sync/atomic"
)

// Run calls fn(0..n-1) on up to workers goroutines and returns the first
// error; after an error no new item starts.
func Run(workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for first.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}
