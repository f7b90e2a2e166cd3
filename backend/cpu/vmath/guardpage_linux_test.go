//go:build linux

package vmath

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// guardedPage maps three pages and makes the outer two inaccessible: a
// slice that ends at the end of the middle page, or starts at its start,
// faults on any access past its end or before its start.
func guardedPage(t *testing.T) []float32 {
	t.Helper()
	ps := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 3*ps, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[:ps], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	if err := syscall.Mprotect(mem[2*ps:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&mem[ps])), ps/4)
}

// TestNoAccessOutsideSlices runs every function on slices that touch an
// inaccessible page at either end: a read or write past the slice (a
// full-width load or store in the tail) crashes the test.
func TestNoAccessOutsideSlices(t *testing.T) {
	a, b, c := guardedPage(t), guardedPage(t), guardedPage(t)
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range a {
		a[i] = float32(4*rng.Float64() - 2)
		b[i] = float32(rng.Float64() - 0.5)
	}
	unary := []func(dst, src []float32){Exp, Erf, Tanh, Gelu, GeluTanh}
	for _, impl := range impls(t) {
		withImpl(impl, func() {
			for n := 1; n <= 70; n++ {
				for _, atEnd := range []bool{true, false} {
					lo := 0
					if atEnd {
						lo = len(a) - n
					}
					src, bias, dst := a[lo:lo+n], b[lo:lo+n], c[lo:lo+n]
					for _, f := range unary {
						f(dst, src)
					}
					BiasGelu(dst, src, bias)
					BiasGeluTanh(dst, src, bias)
					copy(dst, src)
					Softmax(dst)
					copy(dst, src)
					ScaledSoftmax(dst, 0.3)
				}
			}
		})
	}
}
