package cpu

import "sync/atomic"

// runDynamic runs work items 0..n-1 on up to threads goroutines that
// claim items one at a time, in increasing order, from a shared counter.
// Attention items cost in proportion to the square of their sequence
// length, so equal contiguous chunks (parallelFor) leave one thread with
// most of the work; callers order items costliest first and the last
// items, the cheapest, even out the finish. Each goroutine calls
// newWorker once and runs its items through the returned function, which
// may keep scratch buffers. A panic in a worker is re-raised on the
// caller's goroutine after every worker stopped, as parallelFor does.
func runDynamic(threads, n int, newWorker func() func(item int)) {
	if n <= 0 {
		return
	}
	threads = max(1, min(threads, n))
	if threads == 1 {
		work := newWorker()
		for it := 0; it < n; it++ {
			work(it)
		}
		return
	}
	var next atomic.Int64
	goEach(threads, func(int) {
		work := newWorker()
		for {
			it := int(next.Add(1) - 1)
			if it >= n {
				return
			}
			work(it)
		}
	}, func() { next.Store(int64(n)) }) // let the other workers drain quickly
}

// threadsOf is the run's thread count (1 for a nil runState, as in
// parallelFor).
func threadsOf(r *runState) int {
	if r == nil {
		return 1
	}
	return r.threads
}
