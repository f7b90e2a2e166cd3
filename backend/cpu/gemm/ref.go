package gemm

// sgemmRef is the reference for Sgemm, a direct transcription of the BLAS
// definition with float32 accumulation in natural k order:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var sum float32
//			for l := 0; l < k; l++ {
//				sum += opA(i, l) * opB(l, j)
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * sum
//			} else {
//				c[i*ldc+j] = alpha*sum + beta*c[i*ldc+j]
//			}
//		}
//	}
//
// where opA(i, l) is a[i*lda+l], or a[l*lda+i] when transA, and opB(l, j)
// is b[l*ldb+j], or b[j*ldb+l] when transB. With beta == 0, C is written
// without being read (BLAS semantics: NaN in C does not propagate).
// Arguments are assumed valid (check with checkArgs first).
func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	opA := func(i, l int) float32 {
		if transA {
			return a[l*lda+i]
		}
		return a[i*lda+l]
	}
	opB := func(l, j int) float32 {
		if transB {
			return b[j*ldb+l]
		}
		return b[l*ldb+j]
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var sum float32
			for l := 0; l < k; l++ {
				sum += opA(i, l) * opB(l, j)
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * sum
			} else {
				c[i*ldc+j] = alpha*sum + beta*c[i*ldc+j]
			}
		}
	}
}
