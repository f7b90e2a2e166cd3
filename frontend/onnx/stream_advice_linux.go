//go:build linux

package onnx

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// adviseRange tells the kernel how the pages under b will be read. b may be
// any part of a mapping (or of the heap): the range is widened to whole
// pages, as madvise requires. Advice is a hint, so failures are ignored.
func adviseRange(b []byte, a access) {
	if len(b) == 0 {
		return
	}
	advice := syscall.MADV_NORMAL
	switch a {
	case accessRandom:
		advice = syscall.MADV_RANDOM
	case accessSequential:
		advice = syscall.MADV_SEQUENTIAL
	case accessWillNeed:
		advice = syscall.MADV_WILLNEED
	}
	// The page start is passed as a plain address, never as a pointer:
	// it may lie in another heap object, which the garbage collector must
	// not see referenced (it would mark a free object and abort).
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	aligned := start &^ (page - 1)
	syscall.Syscall(syscall.SYS_MADVISE, aligned, start-aligned+uintptr(len(b)), uintptr(advice))
	runtime.KeepAlive(b)
}
