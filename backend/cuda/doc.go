// Package cuda will hold tfc's CUDA backend: CUDA C generated from the IR,
// with the CUDA driver, NVRTC and cuBLAS loaded at run time (no cgo), so
// that the tfc binary builds and runs on machines without CUDA.
//
// It is not built yet: `tfc compile --target cuda` says so, and no other
// package imports this one. It may import ir only.
package cuda
