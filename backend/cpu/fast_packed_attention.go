package cpu

import (
	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
)

// packedAttentionBlocked is the fast path of tfc.PackedAttention for
// float32: per (sequence, query head, block of query rows), the scores
// scale·Q·Kᵀ over the sequence's valid tokens are one strided GEMM (the
// packed [T, H, D] rows of one head are a matrix with leading dimension
// H·D), the masks are applied as packedAttentionOnline applies them, a
// float32 softmax follows, and P·V is a second GEMM written straight into
// the packed output. Padded tokens cost nothing, as in the online kernel;
// the score block is bounded by attentionScoreBlock elements per worker.
// Its reference is packedAttentionReference (through the online kernel's
// tests, which run both).
func packedAttentionBlocked(r *runState, par tfcAttentionParams, p *packedAttentionProblem, y []float32) error {
	group := p.Hq / p.Hkv
	S := p.lay.S
	ldq, ldk, ldv, ldy := p.Hq*p.D, p.Hkv*p.D, p.Hkv*p.Dv, p.Hq*p.Dv
	errs := make([]error, p.B*p.Hq)
	r.parallelFor(p.B*p.Hq, func(lo, hi int) {
		var scores []float32
		for bh := lo; bh < hi; bh++ {
			b, h := bh/p.Hq, bh%p.Hq
			kvh := h / group
			o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
			L := o1 - o0
			if L == 0 || p.Dv == 0 {
				continue
			}
			rows := max(1, min(L, attentionScoreBlock/L))
			if cap(scores) < rows*L {
				scores = make([]float32, rows*L)
			}
			k := p.k[(o0*p.Hkv+kvh)*p.D:]
			v := p.v[(o0*p.Hkv+kvh)*p.Dv:]
			for r0 := 0; r0 < L; r0 += rows {
				nr := min(rows, L-r0)
				s := scores[:nr*L]
				t0 := o0 + r0
				q := p.q[(t0*p.Hq+h)*p.D:]
				if p.D == 0 {
					clear(s)
				} else if err := gemm.Sgemm(false, true, nr, L, p.D, par.scale, q, ldq, k, ldk, 0, s, L); err != nil {
					errs[bh] = err
					break
				}
				for ii := 0; ii < nr; ii++ {
					row := s[ii*L : (ii+1)*L]
					if p.bias != nil || p.keep != nil {
						i := int(p.lay.index[t0+ii]) - b*S
						for u := range row {
							j := int(p.lay.index[o0+u]) - b*S
							row[u] = p.maskedScore(par, row[u], b, h, i, j)
						}
					}
					softmaxRowF32(row)
				}
				out := y[(t0*p.Hq+h)*p.Dv:]
				if err := gemm.Sgemm(false, false, nr, p.Dv, L, 1, s, L, v, ldv, 0, out, ldy); err != nil {
					errs[bh] = err
					break
				}
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
