// Package vmath owns the vectorised float32 math of the CPU kernels:
// exp, erf, tanh, GELU (erf and tanh forms, with an optional fused bias),
// softmax, and LayerNorm/RMSNorm rows with a fused skip and bias
// (norm.go; float32 statistics by a shifted two-pass sum, see its bound), with AVX2+FMA assembly on amd64 and a pure-Go
// twin used elsewhere, with the purego build tag, or when the CPU lacks
// AVX2 or FMA (gemm.HasAVX2FMA decides, so one CPUID probe rules both
// packages).
//
// The reference for every function is package math evaluated in float64;
// each function's doc comment states its error bound against it, and the
// tests hold both implementations to that bound on random and special
// inputs. The assembly and Go versions evaluate the same formulas with
// the same constants (the assembly fuses multiply-adds, so results may
// differ in the last bits, never beyond the stated bounds).
//
// Functions take dst and src slices of equal length (the same slice for
// in-place use; partially overlapping slices are not supported), allocate
// nothing, and never read or write outside the slices (the assembly
// finishes a slice with masked loads and stores). It imports only gemm
// (for the CPU feature probe) and must not know about tensors or graphs.
package vmath
