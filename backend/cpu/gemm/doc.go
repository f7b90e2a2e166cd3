// Package gemm owns tfc's single-precision matrix multiply for the CPU
// backend: C = alpha*op(A)*op(B) + beta*C on row-major float32 buffers with
// BLAS argument conventions, its pure-Go reference (sgemmRef), the blocked
// fast path (Goto/BLIS style: B is packed into contiguous panels sized for
// the L1/L2 caches; a 6x16 register-blocked micro-kernel reads A in place
// from six rows, or from packed panels for a transposed A and the last
// m mod 6 rows), the AVX2+FMA micro-kernels in Go assembly for amd64, a
// parallel entry that splits the output over goroutines, a batched entry
// for attention-shaped products, and pre-packed B operands for constant
// weights.
//
// It imports nothing of tfc's: the backend/cpu executor calls it, never
// the other way round. It must not know about graphs, tensors or dtypes
// other than float32.
//
// Build tags: on amd64 the assembly micro-kernel is used when the CPU
// reports AVX2 and FMA3 and the OS saves YMM state (read with CPUID and
// XGETBV in cpuid_amd64.s, so the package adds no dependency); elsewhere,
// or with the purego tag, a Go micro-kernel with the same packed layout is
// used.
package gemm
