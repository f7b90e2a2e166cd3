//go:build amd64 && !purego

package gemm

// useAsm is true when the AVX2+FMA micro-kernel can run: the CPU reports
// AVX, AVX2 and FMA3, and the OS saves YMM state (OSXSAVE and XCR0 bits 1
// and 2). Read with CPUID/XGETBV directly to keep golang.org/x/sys out of
// the module. Tests flip it to exercise the Go kernel too.
var useAsm = detectAVX2FMA()

func detectAVX2FMA() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if ecx1&fma == 0 || ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const avx2 = 1 << 5
	return ebx7&avx2 != 0
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
func xgetbv() (eax, edx uint32)

//go:noescape
func sgemmKernel6x16(k int, a, b, c *float32, ldc int, alpha float32, accumulate bool)

//go:noescape
func sgemmKernel6x16Rows(k int, a *float32, lda int, b, c *float32, ldc int, alpha float32, accumulate bool)

// fmaThroughputLoop and fmaLatencyLoop time the FMA pipes for the peak
// derivation (see BenchmarkFMAPeak).
func fmaThroughputLoop(n int)
func fmaLatencyLoop(n int)

// microKernel computes one mr x nr tile of C (see microKernelGo). The
// slices are bounds-checked here; the assembly reads kcb*mr floats of a,
// kcb*nr of b and the tile of c.
func microKernel(kcb int, a, b, c []float32, ldc int, alpha float32, accumulate bool) {
	if !useAsm {
		microKernelGo(kcb, a, b, c, ldc, alpha, accumulate)
		return
	}
	_ = a[kcb*mr-1]
	_ = b[kcb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	sgemmKernel6x16(kcb, &a[0], &b[0], &c[0], ldc, alpha, accumulate)
}

// microKernelRows is microKernel with A read in place from six rows of a
// row-major matrix (see microKernelRowsGo); the assembly reads
// a[i*lda+l] for i < mr, l < kcb.
func microKernelRows(kcb int, a []float32, lda int, b, c []float32, ldc int, alpha float32, accumulate bool) {
	if !useAsm {
		microKernelRowsGo(kcb, a, lda, b, c, ldc, alpha, accumulate)
		return
	}
	_ = a[(mr-1)*lda+kcb-1]
	_ = b[kcb*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	sgemmKernel6x16Rows(kcb, &a[0], lda, &b[0], &c[0], ldc, alpha, accumulate)
}

func haveFMAPeakLoops() bool { return useAsm }
