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
// items are (batch, head) pairs, or (batch, head, block of query rows)
// when there are too few pairs to keep the threads busy, claimed
// dynamically by the run's threads; for each block of query rows
//
//	S = scale * Q_blk K^T            (gemm, float32)
//	S = masked(S) row by row         (keep mask and bias; rows prepared once per call when they do not vary by head; then the causal/sliding frontier)
//	P = softmax(S) row by row        (softmaxRowF32; a row of only -inf gives 0)
//	Y_blk = P V                      (gemm)
//
// over only the keys some row of the block can see (under a causal or
// sliding mask the others get weight 0: about half the work of causal
// self-attention is skipped). K is transposed per item so the score GEMM
// packs it with contiguous copies, and a non-causal item of several
// blocks packs Kᵀ and V for the GEMMs once.
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
	threads := threadsOf(r)
	itemBlocks := 1 // query blocks per work item
	if p.B*p.Hq >= 2*threads {
		itemBlocks = blocks
	}
	groups := (blocks + itemBlocks - 1) / itemBlocks
	items := p.B * p.Hq * groups
	masks := p.prepareDenseMasks(r, par)
	errs := make([]error, items)
	ldq, ldv, ldy, ldkt := max(1, p.D), max(1, p.Dv), max(1, p.Dv), max(1, p.Skv)
	runDynamic(threads, items, func() func(int) {
		scores := make([]float32, rows*p.Skv)
		var kt []float32
		var row keyMaskRow
		return func(it int) {
			bh, g := it/groups, it%groups
			b, h := bh/p.Hq, bh%p.Hq
			kvh := h / group
			blk0, blk1 := g*itemBlocks, min(blocks, (g+1)*itemBlocks)
			if p.Skv == 0 {
				i0, i1 := blk0*rows, min(p.Sq, blk1*rows)
				clear(y[((b*p.Hq+h)*p.Sq+i0)*p.Dv : ((b*p.Hq+h)*p.Sq+i1)*p.Dv])
				return
			}
			// Kᵀ (D x Skv), so the score GEMM packs it with contiguous copies.
			if cap(kt) < p.D*p.Skv {
				kt = make([]float32, p.D*p.Skv)
			}
			kt = kt[:p.D*p.Skv]
			transposeInto(kt, p.Skv, p.k[(b*p.Hkv+kvh)*p.Skv*p.D:], p.Skv, p.D, max(1, p.D))
			v := p.v[(b*p.Hkv+kvh)*p.Skv*p.Dv:]
			var kPacked, vPacked *gemm.PackedB
			if blk1-blk0 > 1 && !par.causal {
				var err error
				if kPacked, err = gemm.PackB(false, p.D, p.Skv, kt, ldkt); err == nil {
					vPacked, err = gemm.PackB(false, p.Skv, p.Dv, v, ldv)
				}
				if err != nil {
					errs[it] = err
					return
				}
			}
			for blk := blk0; blk < blk1; blk++ {
				i0 := blk * rows
				nr := min(rows, p.Sq-i0)
				q := p.q[((b*p.Hq+h)*p.Sq+i0)*p.D:]
				out := y[((b*p.Hq+h)*p.Sq+i0)*p.Dv:]
				// Keys j0..j1-1 are the ones some row of the block may
				// see; the others are past every row's causal frontier
				// or before every row's window and get weight 0.
				j0, j1 := p.causalKeyRange(par, i0, nr)
				n := j1 - j0
				if n <= 0 {
					clear(out[:nr*p.Dv]) // no row sees a key
					continue
				}
				s := scores[:nr*n]
				var err error
				if kPacked != nil {
					err = gemm.SgemmPacked(false, nr, par.scale, q, ldq, kPacked, 0, s, n)
				} else {
					err = gemm.Sgemm(false, false, nr, n, p.D, par.scale, q, ldq, kt[min(j0, len(kt)):], ldkt, 0, s, n)
				}
				if err != nil {
					errs[it] = err
					return
				}
				for i := 0; i < nr; i++ {
					sr := s[i*n : (i+1)*n]
					switch {
					case masks.none:
					case masks.rows != nil:
						masks.rows[masks.index(b, i0+i)].apply(sr, j0)
					default:
						p.readKeyRow(par, b, h, i0+i, nil, 0, p.Skv, &row)
						row.apply(sr, j0)
					}
					if par.causal {
						p.applyFrontier(par, sr, i0+i, j0)
					}
					softmaxRowF32(sr)
				}
				if vPacked != nil {
					err = gemm.SgemmPacked(false, nr, 1, s, n, vPacked, 0, out, ldy)
				} else {
					err = gemm.Sgemm(false, false, nr, p.Dv, n, 1, s, n, v[j0*p.Dv:], ldv, 0, out, ldy)
				}
				if err != nil {
					errs[it] = err
					return
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

// causalKeyRange returns the keys [j0, j1) that query rows i0..i0+nr-1
// may see: all of them without a causal mask; else up to the last row's
// frontier and, under a sliding window, from the first row's window start
// (the frontier is aligned bottom-right as in maskedScore).
func (p *attentionProblem) causalKeyRange(par tfcAttentionParams, i0, nr int) (int, int) {
	if !par.causal {
		return 0, p.Skv
	}
	shift := p.Skv - p.Sq
	j0, j1 := 0, min(p.Skv, i0+nr-1+shift+1)
	if par.window > 0 {
		j0 = max(0, i0+shift-par.window+1)
	}
	return j0, j1
}

// applyFrontier sets the scores of query i past the causal frontier (and
// before the sliding window) to -inf; row holds keys first,
// first+1, ...; the frontier is aligned bottom-right as in maskedScore.
func (p *attentionProblem) applyFrontier(par tfcAttentionParams, row []float32, i, first int) {
	pos := i + p.Skv - p.Sq - first // the frontier, as an index into row
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
