package cpu

import (
	"cmp"
	"math"
	"slices"
	"sort"

	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
)

// packedAttentionBlocked is the fast path of tfc.PackedAttention for
// float32. Work items are (sequence, query head) pairs, claimed
// dynamically, longest sequence first (an item costs ∝ L²). Per item and
// block of query rows, the scores scale·Q·Kᵀ over the sequence's packed
// tokens are one GEMM (the packed [T, H, D] rows of one head are a matrix
// with leading dimension H·D; K is transposed first), the masks prepared
// by prepareMasks are applied row by row (not at all for the usual
// key-padding mask, which keeps every packed key), a float32 softmax
// follows, and P·V is a second GEMM written straight into the packed
// output. Padded tokens cost nothing, as in the online kernel; the score
// block is bounded by attentionScoreBlock elements per worker, and when a
// head needs several blocks its Kᵀ and V are packed for the GEMM once, not
// once per block. Its reference is packedAttentionReference.
func packedAttentionBlocked(r *runState, par tfcAttentionParams, p *packedAttentionProblem, masks *packedMasks, y []float32) error {
	if p.Dv == 0 {
		return nil
	}
	group := p.Hq / p.Hkv
	S := p.lay.S
	ldq, ldk, ldv, ldy := p.Hq*p.D, p.Hkv*p.D, p.Hkv*p.Dv, p.Hq*p.Dv
	seqLen := func(b int) int { return int(p.lay.offsets[b+1] - p.lay.offsets[b]) }
	// Sequences longest first; empty ones have no work.
	order := make([]int, 0, p.B)
	for b := 0; b < p.B; b++ {
		if seqLen(b) > 0 {
			order = append(order, b)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(seqLen(b), seqLen(a)) })
	items := len(order) * p.Hq
	errs := make([]error, items)
	runDynamic(threadsOf(r), items, func() func(int) {
		var scores, kt []float32
		var keyBuf []int32
		var row keyMaskRow
		return func(it int) {
			b, h := order[it/p.Hq], it%p.Hq
			kvh := h / group
			o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
			L := o1 - o0
			rows := max(1, min(L, attentionScoreBlock/L))
			if cap(scores) < rows*L {
				scores = make([]float32, rows*L)
			}
			perHeadMask := !masks.none && masks.rows == nil
			var seqKeys []int32
			first := 0
			if perHeadMask {
				if seqKeys, first = p.keyPositions(b, keyBuf); seqKeys != nil {
					keyBuf = seqKeys
				}
			}
			// Kᵀ (D x L) in the worker's buffer: the GEMM then packs it
			// with contiguous copies; its strided gather of K took 12%
			// of this kernel's time on MiniLM shapes, the transpose and
			// the copies take about 5%.
			if cap(kt) < p.D*L {
				kt = make([]float32, p.D*L)
			}
			kt = kt[:p.D*L]
			transposeInto(kt, L, p.k[(o0*p.Hkv+kvh)*p.D:], L, p.D, ldk)
			v := p.v[(o0*p.Hkv+kvh)*p.Dv:]
			var kPacked, vPacked *gemm.PackedB
			if rows < L && !par.causal {
				var err error
				if p.D > 0 {
					kPacked, err = gemm.PackB(false, p.D, L, kt, L)
				}
				if err == nil {
					vPacked, err = gemm.PackB(false, L, p.Dv, v, ldv)
				}
				if err != nil {
					errs[it] = err
					return
				}
			}
			for r0 := 0; r0 < L; r0 += rows {
				nr := min(rows, L-r0)
				s := scores[:nr*L]
				t0 := o0 + r0
				q := p.q[(t0*p.Hq+h)*p.D:]
				out := y[(t0*p.Hq+h)*p.Dv:]
				// Under a causal or sliding kind only the packed keys
				// u0..u1-1 can be seen by some row of the block.
				u0, u1 := 0, L
				if par.causal {
					u0, u1 = p.packedKeyRange(par, b, r0, nr)
				}
				n := u1 - u0
				if n <= 0 {
					for ii := 0; ii < nr; ii++ {
						clear(out[ii*ldy : ii*ldy+p.Dv])
					}
					continue
				}
				s = scores[:nr*n]
				var err error
				switch {
				case p.D == 0:
					clear(s)
				case kPacked != nil:
					err = gemm.SgemmPacked(false, nr, par.scale, q, ldq, kPacked, 0, s, L)
				default:
					err = gemm.Sgemm(false, false, nr, n, p.D, par.scale, q, ldq, kt[u0:], L, 0, s, n)
				}
				if err != nil {
					errs[it] = err
					return
				}
				for ii := 0; ii < nr; ii++ {
					sr := s[ii*n : ii*n+n]
					switch {
					case masks.none:
					case perHeadMask:
						p.readKeyRow(par, b, h, int(p.lay.index[t0+ii])-b*S, seqKeys, first, L, &row)
						row.apply(sr, u0)
					default:
						masks.rows[t0+ii].apply(sr, u0)
					}
					if par.causal {
						p.applyPackedFrontier(par, sr, o0, t0+ii, u0)
					}
					softmaxRowF32(sr)
				}
				if vPacked != nil {
					err = gemm.SgemmPacked(false, nr, 1, s, L, vPacked, 0, out, ldy)
				} else {
					err = gemm.Sgemm(false, false, nr, p.Dv, n, 1, s, n, v[u0*ldv:], ldv, 0, out, ldy)
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

// packedKeyRange returns the packed keys [u0, u1) of sequence b that its
// query rows r0 .. r0+nr-1 (counted from the sequence's first packed row)
// may see under a causal or sliding kind: positions (in the padded row)
// up to the last row's and, with a window, from the first row's window
// start. Packed tokens are in increasing position order, so both ends
// are binary searches.
func (p *packedAttentionProblem) packedKeyRange(par tfcAttentionParams, b, r0, nr int) (int, int) {
	o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
	L := o1 - o0
	keys := p.lay.index[o0:o1]
	last := keys[r0+nr-1]
	u1 := sort.Search(L, func(u int) bool { return keys[u] > last })
	u0 := 0
	if par.window > 0 {
		from := keys[r0] - int64(par.window) + 1
		u0 = sort.Search(L, func(u int) bool { return keys[u] >= from })
	}
	return u0, u1
}

// applyPackedFrontier sets to -inf the scores of packed query t (of the
// sequence starting at packed row o0) against keys past its causal
// frontier or before its sliding window, by padded positions; row holds
// the packed keys first, first+1, ... of the sequence.
func (p *packedAttentionProblem) applyPackedFrontier(par tfcAttentionParams, row []float32, o0, t, first int) {
	pos := p.lay.index[t]
	inf := float32(math.Inf(-1))
	for u := range row {
		kp := p.lay.index[o0+first+u]
		if kp > pos || par.window > 0 && pos-kp >= int64(par.window) {
			row[u] = inf
		}
	}
}
