package cpu

import (
	"fmt"
	"math"
	"slices"
)

// keyMaskRow is what the keep mask and the additive bias do to one
// query's scaled scores over the keys it sees, prepared once so that a
// row costs one vector-friendly add and a short scatter instead of a
// strided lookup per score. It applies maskedScore's rule exactly:
//
//	score[u] += add[u]          for every key (add empty: the bias is 0 on every key)
//	score[masked[k]] = fill[k]  where the keep mask is false (mask fill + bias)
//
// The zero value changes nothing.
type keyMaskRow struct {
	add    []float32
	masked []int32
	fill   []float32
}

// trivial says the row leaves every score as it is.
func (m *keyMaskRow) trivial() bool { return len(m.add) == 0 && len(m.masked) == 0 }

// apply masks the scores of one query against keys first, first+1, ...,
// first+len(row)-1 of the keys the row was read for.
func (m *keyMaskRow) apply(row []float32, first int) {
	if len(m.add) != 0 {
		add := m.add[first : first+len(row)]
		for u := range row {
			row[u] += add[u]
		}
	}
	for k, u := range m.masked {
		if u := int(u) - first; u >= 0 && u < len(row) {
			row[u] = m.fill[k]
		}
	}
}

// detach returns a copy of m that does not share m's buffers, its floats
// taken from arena, so a worker can read rows into one scratch row and
// keep only the ones that change something.
func (m *keyMaskRow) detach(arena *floatArena) keyMaskRow {
	var out keyMaskRow
	if len(m.add) != 0 {
		out.add = arena.take(len(m.add))
		copy(out.add, m.add)
	}
	if len(m.masked) != 0 {
		out.masked = slices.Clone(m.masked)
		out.fill = arena.take(len(m.fill))
		copy(out.fill, m.fill)
	}
	return out
}

// floatArena hands out slices of a few large chunks, so that preparing
// thousands of mask rows does not allocate thousands of slices.
type floatArena struct{ chunk []float32 }

func (a *floatArena) take(n int) []float32 {
	if len(a.chunk) < n {
		a.chunk = make([]float32, max(n, 1<<14))
	}
	s := a.chunk[:n:n]
	a.chunk = a.chunk[n:]
	return s
}

// readKeyRow fills dst with the masks of query i of batch b, head h over
// n keys: key u is at position keys[u] of the [.., Skv] mask axis, or at
// first+u when keys is nil. dst's buffers are reused; add stays empty
// while every bias value read is zero.
func (p *attentionProblem) readKeyRow(par tfcAttentionParams, b, h, i int, keys []int32, first, n int, dst *keyMaskRow) {
	dst.add, dst.masked, dst.fill = dst.add[:0], dst.masked[:0], dst.fill[:0]
	ks, bs := p.keepStrides, p.biasStrides
	kb := b*ks[0] + h*ks[1] + i*ks[2]
	bb := b*bs[0] + h*bs[1] + i*bs[2]
	if keys == nil && p.keep == nil && bs[3] == 1 {
		// The common case (a contiguous run of keys, a bias row, no keep
		// mask): find the first nonzero bias with a plain scan.
		row := p.bias[bb+first : bb+first+n]
		for u, v := range row {
			if v != 0 {
				dst.add = growZeros(dst.add, n)
				copy(dst.add[u:], row[u:])
				break
			}
		}
		return
	}
	for u := 0; u < n; u++ {
		j := first + u
		if keys != nil {
			j = int(keys[u])
		}
		var bias float32
		if p.bias != nil {
			bias = p.bias[bb+j*bs[3]]
		}
		if p.keep != nil && !p.keep[kb+j*ks[3]] {
			dst.masked = append(dst.masked, int32(u))
			dst.fill = append(dst.fill, par.maskFill+bias)
			continue
		}
		// s + 0 is s (up to the sign of a zero, which softmax ignores),
		// so zero biases need no add.
		if bias != 0 {
			if len(dst.add) == 0 {
				dst.add = growZeros(dst.add, n)
			}
			dst.add[u] = bias
		}
	}
}

// growZeros returns n zeros in buf's storage when it is large enough.
func growZeros(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// headInvariant says neither mask varies over the query heads, so one
// prepared row serves every head.
func (p *attentionProblem) headInvariant() bool {
	return p.keepStrides[1] == 0 && p.biasStrides[1] == 0
}

// queryInvariant says neither mask varies over the queries.
func (p *attentionProblem) queryInvariant() bool {
	return p.keepStrides[2] == 0 && p.biasStrides[2] == 0
}

// packedMasks is the masking of one PackedAttention call over each
// sequence's packed keys, prepared once per call (not once per head).
type packedMasks struct {
	// none: every query keeps every packed key with a zero bias (the usual
	// key-padding mask once padding is removed): no masking at all.
	none bool
	// rows[t] is query t's row when the masks do not vary by head; nil
	// when they do, and rows are then read per (query, head).
	rows []keyMaskRow
}

// prepareMasks checks, as checkPaddingHidden does (it is the reference),
// that the model's mask hides every padded key from every kept query, and
// prepares the masking of the packed keys. Both read each mask row once
// per call, row by row; heads are visited only when the masks vary by
// head.
func (p *packedAttentionProblem) prepareMasks(r *runState, par tfcAttentionParams) (*packedMasks, error) {
	if p.bias == nil && p.keep == nil && !par.causal {
		return nil, fmt.Errorf("no mask input: attention over padded keys cannot be skipped")
	}
	m := &packedMasks{}
	perHead := !p.headInvariant()
	if !perHead {
		m.rows = make([]keyMaskRow, p.T)
	}
	S := p.lay.S
	errs := make([]error, p.B)
	nonTrivial := make([]bool, p.B)
	runDynamic(threadsOf(r), p.B, func() func(int) {
		var keyBuf []int32
		var scratch keyMaskRow
		var arena floatArena
		return func(b int) {
			o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
			if o1 == o0 {
				return
			}
			queries := o1 - o0
			if p.queryInvariant() {
				queries = 1 // every query reads the same row
			}
			if o1-o0 != S {
				heads := p.Hq
				if !perHead {
					heads = 1
				}
				for h := 0; h < heads; h++ {
					for t := o0; t < o0+queries; t++ {
						if err := p.checkRowHidden(par, b, h, int(p.lay.index[t])-b*S); err != nil {
							errs[b] = err
							return
						}
					}
				}
			}
			if perHead {
				nonTrivial[b] = true
				return
			}
			seqKeys, first := p.keyPositions(b, keyBuf)
			if seqKeys != nil {
				keyBuf = seqKeys
			}
			for t := o0; t < o0+queries; t++ {
				p.readKeyRow(par, b, 0, int(p.lay.index[t])-b*S, seqKeys, first, o1-o0, &scratch)
				if !scratch.trivial() {
					m.rows[t] = scratch.detach(&arena)
					nonTrivial[b] = true
				}
			}
			for t := o0 + queries; t < o1; t++ {
				m.rows[t] = m.rows[o0]
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	m.none = !slices.Contains(nonTrivial, true)
	if m.none {
		m.rows = nil
	}
	return m, nil
}

// keyPositions returns the positions (in [0, S)) of sequence b's packed
// tokens, in packed order, reusing buf; when they are one contiguous run
// (right or left padding) it returns nil and the first position instead.
func (p *packedAttentionProblem) keyPositions(b int, buf []int32) ([]int32, int) {
	o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
	buf = buf[:0]
	contiguous := true
	for t := o0; t < o1; t++ {
		buf = append(buf, int32(p.lay.index[t]-int64(b*p.lay.S)))
		contiguous = contiguous && buf[t-o0] == buf[0]+int32(t-o0)
	}
	if contiguous && len(buf) > 0 {
		return nil, int(buf[0])
	}
	return buf, 0
}

// checkRowHidden is checkPaddingHidden for query i (a position in [0, S))
// of sequence b, head h: the best mask offset of a padded key must lie
// hiddenMargin below the best valid key's. The offsets are
// maskedScore(par, 0, b, h, i, j), read row by row; a NaN offset of a
// valid key makes the comparison pass, as math.Max does in the reference.
func (p *packedAttentionProblem) checkRowHidden(par tfcAttentionParams, b, h, i int) error {
	S := p.lay.S
	ks, bs := p.keepStrides, p.biasStrides
	kb := b*ks[0] + h*ks[1] + i*ks[2]
	bb := b*bs[0] + h*bs[1] + i*bs[2]
	valid := p.valid[b*S : (b+1)*S]
	inf := float32(math.Inf(-1))
	bestValid, bestPad, padAt := inf, inf, -1
	validNaN := false
	for j, isValid := range valid {
		if par.causal && (j > i || par.window > 0 && i-j >= par.window) {
			continue // past the causal frontier or before the window: hidden anyway
		}
		var s float32
		if p.keep != nil && !p.keep[kb+j*ks[3]] {
			s = par.maskFill
		}
		if p.bias != nil {
			s += p.bias[bb+j*bs[3]]
		}
		switch {
		case isValid:
			if s > bestValid {
				bestValid = s
			} else if s != s {
				validNaN = true
			}
		case s > bestPad:
			bestPad, padAt = s, j
		}
	}
	if validNaN {
		return nil
	}
	if bestValid == inf {
		return fmt.Errorf("the attention mask hides every key from query %d of sequence %d", i, b)
	}
	if padAt >= 0 && float64(bestPad) > float64(bestValid)-hiddenMargin {
		return fmt.Errorf("the attention mask lets query %d of sequence %d see padded key %d (mask offset %g, best valid key %g): it is not a padding mask", i, b, padAt, float64(bestPad), float64(bestValid))
	}
	return nil
}

// denseMaskRowsLimit bounds the prepared rows of a tfc.Attention call
// (rows x keys): above it rows are read per (query, head) instead.
const denseMaskRowsLimit = 1 << 20

// denseMasks is the masking of one tfc.Attention call (causal and sliding
// frontiers aside, which apply after it).
type denseMasks struct {
	// none: no mask input, or every query keeps every key with a zero
	// bias.
	none bool
	// rows[index(b, i)] is the row of batch b, query i when the masks do
	// not vary by head (and there are few enough distinct rows); nil
	// otherwise, and rows are then read per (query, head).
	rows             []keyMaskRow
	bStride, iStride int
}

func (m *denseMasks) index(b, i int) int { return b*m.bStride + i*m.iStride }

// prepareDenseMasks reads each distinct mask row (over batches and queries
// the masks vary on) once per call when the masks do not vary by head.
func (p *attentionProblem) prepareDenseMasks(r *runState, par tfcAttentionParams) *denseMasks {
	if p.bias == nil && p.keep == nil {
		return &denseMasks{none: true}
	}
	m := &denseMasks{}
	nb, ni := 1, 1
	if p.keepStrides[0] != 0 || p.biasStrides[0] != 0 {
		nb = p.B
	}
	if !p.queryInvariant() {
		ni = p.Sq
	}
	if !p.headInvariant() || nb*ni*p.Skv > denseMaskRowsLimit {
		return m
	}
	m.rows, m.iStride = make([]keyMaskRow, nb*ni), 1
	if nb > 1 {
		m.bStride = ni
	}
	if ni == 1 {
		m.iStride = 0
	}
	nonTrivial := make([]bool, nb)
	runDynamic(threadsOf(r), nb, func() func(int) {
		var scratch keyMaskRow
		var arena floatArena
		return func(b int) {
			for i := 0; i < ni; i++ {
				p.readKeyRow(par, b, 0, i, nil, 0, p.Skv, &scratch)
				if !scratch.trivial() {
					m.rows[b*ni+i] = scratch.detach(&arena)
					nonTrivial[b] = true
				}
			}
		}
	})
	m.none = !slices.Contains(nonTrivial, true)
	return m
}
