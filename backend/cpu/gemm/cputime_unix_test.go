//go:build unix

package gemm

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time (user + system) this process has used.
// The benchmark machine is shared, so wall-clock GFLOP/s moves with other
// people's load; GFLOP per CPU-second does not (for one thread) and shows
// what the kernel does when it has the core.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
