package cpu

import (
	"math"

	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
)

// attentionScoreBlock bounds the scores one worker holds at once (query
// rows x keys), so a block of scores stays in the L2 cache while it is
// masked, exponentiated and multiplied by V.
const attentionScoreBlock = 1 << 14

// attentionBlocked is the tfc.Attention kernel the executor runs. Work
// items are (batch, head, block of query rows), spread over the run's
// threads; for each item
//
//	S = scale * Q_blk K^T            (gemm, float32)
//	S = maskedScore(S) row by row    (keep mask, bias, causal/sliding)
//	P = softmax(S) row by row        (expF32; a row of only -inf gives 0)
//	Y_blk = P V                      (gemm)
//
// Its reference is attentionReference; attentionOnline is the earlier
// one-pass kernel, kept with its tests. It returns gemm's argument errors,
// which cannot happen for a problem newAttentionProblem accepted.
func attentionBlocked(r *runState, par tfcAttentionParams, p *attentionProblem, y []float32) error {
	if p.B*p.Hq*p.Sq*p.Dv == 0 {
		return nil
	}
	group := p.Hq / p.Hkv
	rows := max(1, min(p.Sq, attentionScoreBlock/max(1, p.Skv)))
	blocks := (p.Sq + rows - 1) / rows
	items := p.B * p.Hq * blocks
	errs := make([]error, items)
	ldq, ldk, ldv, ldy, lds := max(1, p.D), max(1, p.D), max(1, p.Dv), max(1, p.Dv), max(1, p.Skv)
	r.parallelFor(items, func(lo, hi int) {
		scores := make([]float32, rows*p.Skv)
		for it := lo; it < hi; it++ {
			bh, blk := it/blocks, it%blocks
			b, h := bh/p.Hq, bh%p.Hq
			kvh := h / group
			i0 := blk * rows
			nr := min(rows, p.Sq-i0)
			q := p.q[((b*p.Hq+h)*p.Sq+i0)*p.D:]
			k := p.k[(b*p.Hkv+kvh)*p.Skv*p.D:]
			v := p.v[(b*p.Hkv+kvh)*p.Skv*p.Dv:]
			out := y[((b*p.Hq+h)*p.Sq+i0)*p.Dv:]
			if p.Skv == 0 {
				clear(out[:nr*p.Dv])
				continue
			}
			s := scores[:nr*p.Skv]
			if err := gemm.Sgemm(false, true, nr, p.Skv, p.D, par.scale, q, ldq, k, ldk, 0, s, lds); err != nil {
				errs[it] = err
				continue
			}
			for i := 0; i < nr; i++ {
				row := s[i*p.Skv : (i+1)*p.Skv]
				p.maskRow(par, row, b, h, i0+i)
				softmaxRowF32(row)
			}
			errs[it] = gemm.Sgemm(false, false, nr, p.Dv, p.Skv, 1, s, lds, v, ldv, 0, out, ldy)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// maskRow applies maskedScore to the scaled scores of query i against
// every key: keep mask (fill), then bias, then the causal/sliding
// frontier, which wins over both as it does in maskedScore.
func (p *attentionProblem) maskRow(par tfcAttentionParams, row []float32, b, h, i int) {
	if p.keep != nil {
		st := p.keepStrides
		keep := p.keep[b*st[0]+h*st[1]+i*st[2]:]
		for j := range row {
			if !keep[j*st[3]] {
				row[j] = par.maskFill
			}
		}
	}
	if p.bias != nil {
		st := p.biasStrides
		bias := p.bias[b*st[0]+h*st[1]+i*st[2]:]
		if st[3] == 1 {
			bias = bias[:len(row)]
			for j := range row {
				row[j] += bias[j]
			}
		} else {
			for j := range row {
				row[j] += bias[j*st[3]]
			}
		}
	}
	if par.causal {
		pos := i + p.Skv - p.Sq
		inf := float32(math.Inf(-1))
		for j := max(0, pos+1); j < len(row); j++ {
			row[j] = inf
		}
		if par.window > 0 {
			for j := 0; j <= min(pos-par.window, len(row)-1); j++ {
				row[j] = inf
			}
		}
	}
}
