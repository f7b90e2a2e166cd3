//go:build !amd64 || purego

package gemm

// useAsm is always false without the amd64 assembly kernel.
var useAsm = false

func microKernel(kcb int, a, b, c []float32, ldc int, alpha float32, accumulate bool) {
	microKernelGo(kcb, a, b, c, ldc, alpha, accumulate)
}

func microKernelRows(kcb int, a []float32, lda int, b, c []float32, ldc int, alpha float32, accumulate bool) {
	microKernelRowsGo(kcb, a, lda, b, c, ldc, alpha, accumulate)
}

func haveFMAPeakLoops() bool  { return false }
func fmaThroughputLoop(n int) {}
func fmaLatencyLoop(n int)    {}
