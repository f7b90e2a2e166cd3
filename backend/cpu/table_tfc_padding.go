package cpu

import (
	"fmt"
	"math"

	"github.com/tfc-compiler/tfc/ir"
)

// Padding removal (docs/fusion.md, "Padding removal"): tfc.PackTokens,
// tfc.UnpackTokens and the variable-length tfc.PackedAttention. This file
// sorts after table.go, so its init runs after the one that builds opTable.
func init() {
	opTable = append(opTable,
		opDef{Domain: "tfc", Op: "PackTokens", types: numericTypes | boolTypes, build: buildPackTokens,
			Notes: "keeps the tokens whose mask is nonzero, in order; one copy per run of valid tokens (one per sequence under right padding)"},
		opDef{Domain: "tfc", Op: "UnpackTokens", types: numericTypes | boolTypes, build: buildUnpackTokens,
			Notes: "scatters packed tokens back to [B, S, ...]; padded positions are zeros"},
		opDef{Domain: "tfc", Op: "PackedAttention", types: f32Types, widen: true, build: buildPackedAttention,
			Notes: "variable-length attention over packed tokens (bidirectional, causal or sliding window within each sequence), threaded over sequences × heads, no work on padding; checks that the mask hides every padded key"},
	)
}

// tokenMask reads a [B, S] mask of any numeric or bool type as valid flags
// (nonzero is valid).
func tokenMask(t *Tensor) ([]bool, int, int, error) {
	if t == nil || len(t.Shape) != 2 {
		return nil, 0, 0, fmt.Errorf("the token mask must be 2-D [batch, seq], got %v", t)
	}
	b, s := t.Shape[0], t.Shape[1]
	if d, ok := t.Data.([]bool); ok {
		return d, b, s, nil
	}
	if iv, err := intValues(t); err == nil {
		out := make([]bool, len(iv))
		for i, v := range iv {
			out[i] = v != 0
		}
		return out, b, s, nil
	}
	fv, ok := t.Float64s()
	if !ok {
		return nil, 0, 0, fmt.Errorf("the token mask has unsupported type %v", t.DType)
	}
	out := make([]bool, len(fv))
	for i, v := range fv {
		out[i] = v != 0
	}
	return out, b, s, nil
}

// packLayout is where each kept token goes: offsets[b] is the first packed
// row of sequence b, index[t] = b*S + s the padded position of row t.
type packLayout struct {
	B, S    int
	offsets []int64
	index   []int64
}

// readLayout checks offsets [B+1] and index [T] against B, S and T.
func readLayout(offT, idxT *Tensor, B, S, T int) (*packLayout, error) {
	off, err := intValues(offT)
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	idx, err := intValues(idxT)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	if len(off) != B+1 || off[0] != 0 || off[B] != int64(T) || len(idx) != T {
		return nil, fmt.Errorf("offsets %v and index of %d entries do not describe %d tokens of %d sequences", offT.Shape, len(idx), T, B)
	}
	for b := 0; b < B; b++ {
		if off[b+1] < off[b] {
			return nil, fmt.Errorf("offsets decrease at sequence %d", b)
		}
		for t := off[b]; t < off[b+1]; t++ {
			if p := idx[t] - int64(b*S); p < 0 || p >= int64(S) {
				return nil, fmt.Errorf("index[%d] = %d is not a position of sequence %d (seq length %d)", t, idx[t], b, S)
			}
		}
	}
	return &packLayout{B: B, S: S, offsets: off, index: idx}, nil
}

func buildPackTokens(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		valid, B, S, err := tokenMask(in[1])
		if err != nil {
			return nil, err
		}
		if len(x.Shape) < 2 || x.Shape[0] != B || x.Shape[1] != S {
			return nil, fmt.Errorf("x %v does not start with the mask's [batch, seq] = [%d, %d]", x.Shape, B, S)
		}
		inner := shapeSize(x.Shape[2:])
		T := 0
		for _, v := range valid {
			if v {
				T++
			}
		}
		packed := r.mustAlloc(x.DType, append([]int{T}, x.Shape[2:]...))
		offsets := r.mustAlloc(ir.Int64, []int{B + 1})
		index := r.mustAlloc(ir.Int64, []int{T})
		off, idx := offsets.Data.([]int64), index.Data.([]int64)
		t := 0
		for b := 0; b < B; b++ {
			off[b] = int64(t)
			// Copy runs of consecutive valid tokens: under right padding
			// a sequence is one run and one copy.
			for s := 0; s < S; {
				if !valid[b*S+s] {
					s++
					continue
				}
				e := s
				for e < S && valid[b*S+e] {
					idx[t+e-s] = int64(b*S + e)
					e++
				}
				copyElems(packed.Data, x.Data, t*inner, (b*S+s)*inner, (e-s)*inner)
				t += e - s
				s = e
			}
		}
		off[B] = int64(t)
		return []*Tensor{packed, offsets, index}, nil
	}, nil
}

func buildUnpackTokens(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 4); err != nil {
			return nil, fmt.Errorf("%w (packed, offsets, index and a reference [batch, seq, ...] tensor)", err)
		}
		packed, ref := in[0], in[3]
		if len(packed.Shape) < 1 || len(ref.Shape) < 2 {
			return nil, fmt.Errorf("packed %v must be at least 1-D and the reference %v at least 2-D", packed.Shape, ref.Shape)
		}
		B, S, T := ref.Shape[0], ref.Shape[1], packed.Shape[0]
		lay, err := readLayout(in[1], in[2], B, S, T)
		if err != nil {
			return nil, err
		}
		inner := shapeSize(packed.Shape[1:])
		out := r.mustAlloc(packed.DType, append([]int{B, S}, packed.Shape[1:]...))
		for t := 0; t < T; {
			// Scatter runs of consecutive positions with one copy each.
			e := t + 1
			for e < T && lay.index[e] == lay.index[e-1]+1 {
				e++
			}
			copyElems(out.Data, packed.Data, int(lay.index[t])*inner, t*inner, (e-t)*inner)
			t = e
		}
		return []*Tensor{out}, nil
	}, nil
}

// packedAttentionProblem is one PackedAttention call, checked.
type packedAttentionProblem struct {
	attentionProblem // B, Hq, Hkv, D, Dv, q/k/v (packed rows), masks over [B,Hq,S,S]
	T                int
	lay              *packLayout
	valid            []bool
}

func newPackedAttentionProblem(in []*Tensor) (*packedAttentionProblem, error) {
	if err := needInputs(in, 6); err != nil {
		return nil, err
	}
	q, k, v := in[0], in[1], in[2]
	for i, t := range []*Tensor{q, k, v} {
		if len(t.Shape) != 3 {
			return nil, fmt.Errorf("input %d must be 3-D [tokens, heads, head_size], has shape %v", i, t.Shape)
		}
		if t.DType != ir.Float {
			return nil, fmt.Errorf("input %d is %v, want float32", i, t.DType)
		}
	}
	valid, B, S, err := tokenMask(in[5])
	if err != nil {
		return nil, err
	}
	p := &packedAttentionProblem{T: q.Shape[0], valid: valid}
	p.B, p.Hq, p.D, p.Hkv, p.Dv, p.Sq, p.Skv = B, q.Shape[1], q.Shape[2], k.Shape[1], v.Shape[2], S, S
	if k.Shape[0] != p.T || v.Shape[0] != p.T || k.Shape[2] != p.D || v.Shape[1] != p.Hkv {
		return nil, fmt.Errorf("incompatible packed Q %v, K %v and V %v", q.Shape, k.Shape, v.Shape)
	}
	if p.Hkv == 0 || p.Hq%p.Hkv != 0 {
		return nil, fmt.Errorf("%d query heads are not a multiple of %d key/value heads", p.Hq, p.Hkv)
	}
	if p.lay, err = readLayout(in[3], in[4], B, S, p.T); err != nil {
		return nil, err
	}
	for t, pos := range p.lay.index {
		if !valid[pos] {
			return nil, fmt.Errorf("packed token %d (position %d) is padding in the token mask", t, pos)
		}
	}
	p.q, p.k, p.v = f32(q), f32(k), f32(v)
	full := [4]int{B, p.Hq, S, S}
	if b := inputN(in, 6); b != nil {
		if b.DType != ir.Float {
			return nil, fmt.Errorf("the additive bias is %v, want float32", b.DType)
		}
		if p.biasStrides, err = maskStrides("the additive bias", b.Shape, full); err != nil {
			return nil, err
		}
		p.bias = f32(b)
	}
	if m := inputN(in, 7); m != nil {
		if m.DType != ir.Bool {
			return nil, fmt.Errorf("the keep mask is %v, want bool", m.DType)
		}
		if p.keepStrides, err = maskStrides("the keep mask", m.Shape, full); err != nil {
			return nil, err
		}
		p.keep = m.Data.([]bool)
	}
	return p, nil
}

// hiddenMargin is how far below the best valid key's mask offset every
// padded key's offset must be for skipping padded keys to be exact in
// float32: exp(-1e4 + Δ) is 0 for any score difference Δ below ~9900
// (exporters write -1e4, the float32 minimum or -inf).
const hiddenMargin = 1e4

// checkPaddingHidden verifies that, for every kept query, the model's own
// mask hides every padded key of its sequence (offset at least
// hiddenMargin below the best valid key's), so that skipping padded keys
// gives the unpacked result. The mask inputs are the model's tensors, so
// this checks the compiler's assumption, not the user's data. Under a
// causal or sliding kind the frontier is at the tokens' padded positions
// (Sq = Skv = S), so right and left padding both keep each sequence's
// relative positions, and keys past the frontier need no mask. A mask that
// fails it (not a padding mask) is an error, never a silent difference.
// It is the check of the online kernel and the reference of prepareMasks,
// which makes the same check row by row for the fast kernel.
func (p *packedAttentionProblem) checkPaddingHidden(par tfcAttentionParams) error {
	if p.bias == nil && p.keep == nil && !par.causal {
		return fmt.Errorf("no mask input: attention over padded keys cannot be skipped")
	}
	heads := p.Hq
	if p.headInvariant() {
		heads = 1 // the mask does not vary by head
	}
	S := p.lay.S
	for b := 0; b < p.B; b++ {
		o0, o1 := p.lay.offsets[b], p.lay.offsets[b+1]
		if o1-o0 == int64(S) {
			continue // no padding in this sequence
		}
		for h := 0; h < heads; h++ {
			for t := o0; t < o1; t++ {
				i := int(p.lay.index[t]) - b*S
				bestValid, bestPad, padAt := math.Inf(-1), math.Inf(-1), -1
				for j := 0; j < S; j++ {
					s := float64(p.maskedScore(par, 0, b, h, i, j))
					if p.valid[b*S+j] {
						bestValid = math.Max(bestValid, s)
					} else if s > bestPad {
						bestPad, padAt = s, j
					}
				}
				if math.IsInf(bestValid, -1) {
					return fmt.Errorf("the attention mask hides every key from query %d of sequence %d", i, b)
				}
				if padAt >= 0 && bestPad > bestValid-hiddenMargin {
					return fmt.Errorf("the attention mask lets query %d of sequence %d see padded key %d (mask offset %g, best valid key %g): it is not a padding mask", i, b, padAt, bestPad, bestValid)
				}
			}
		}
	}
	return nil
}

func buildPackedAttention(n *ir.Node, _ *compiler) (kernel, error) {
	par, err := parseTfcAttention(n)
	if err != nil {
		return nil, err
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		p, err := newPackedAttentionProblem(in)
		if err != nil {
			return nil, err
		}
		if !fastKernels {
			if err := p.checkPaddingHidden(par); err != nil {
				return nil, err
			}
			y := r.mustAlloc(ir.Float, []int{p.T, p.Hq, p.Dv})
			packedAttentionOnline(r, par, p, f32(y))
			return []*Tensor{y}, nil
		}
		masks, err := p.prepareMasks(r, par)
		if err != nil {
			return nil, err
		}
		y := r.mustAlloc(ir.Float, []int{p.T, p.Hq, p.Dv})
		if err := packedAttentionBlocked(r, par, p, masks, f32(y)); err != nil {
			return nil, err
		}
		return []*Tensor{y}, nil
	}, nil
}

// packedAttentionOnline threads over (sequence, query head) pairs; each
// kept query makes one online-softmax pass over the kept keys of its own
// sequence (attentionOnline's loop), so padded tokens cost nothing. Masks
// are read at the tokens' padded positions. Its reference is
// packedAttentionReference.
func packedAttentionOnline(r *runState, par tfcAttentionParams, p *packedAttentionProblem, y []float32) {
	group := p.Hq / p.Hkv
	S := p.lay.S
	r.parallelFor(p.B*p.Hq, func(lo, hi int) {
		acc := make([]float32, p.Dv)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/p.Hq, bh%p.Hq
			kvh := h / group
			o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
			for t := o0; t < o1; t++ {
				i := int(p.lay.index[t]) - b*S
				qRow := p.q[(t*p.Hq+h)*p.D:][:p.D]
				m := float32(math.Inf(-1))
				var l float32
				clear(acc)
				for u := o0; u < o1; u++ {
					j := int(p.lay.index[u]) - b*S
					s := dotF32(qRow, p.k[(u*p.Hkv+kvh)*p.D:][:p.D]) * par.scale
					if p.bias != nil || p.keep != nil || par.causal {
						s = p.maskedScore(par, s, b, h, i, j)
					}
					if s == float32(math.Inf(-1)) {
						continue
					}
					if s > m {
						c := float32(math.Exp(float64(m - s)))
						l *= c
						for d := range acc {
							acc[d] *= c
						}
						m = s
					}
					w := float32(math.Exp(float64(s - m)))
					l += w
					axpyF32(acc, w, p.v[(u*p.Hkv+kvh)*p.Dv:][:p.Dv])
				}
				out := y[(t*p.Hq+h)*p.Dv:][:p.Dv]
				if l == 0 {
					clear(out)
					continue
				}
				inv := 1 / l
				for d := range out {
					out[d] = acc[d] * inv
				}
			}
		}
	})
}

// packedAttentionReference is the oracle of the packed kernels, in
// float64: for packed query t of sequence b and query head h, over the
// sequence's packed keys u only,
//
//	s[u] = maskedScore(scale * sum_d q[t,h,d] k[u,h/group,d])   (masks read at the padded positions)
//	p = softmax(s)            (zeros when every s[u] is -inf)
//	y[t,h,:] = sum_u p[u] v[u,h/group,:]
//
// which is attentionReference on each sequence alone, unpadded, when the
// mask hides the padded keys (checkPaddingHidden).
func packedAttentionReference(par tfcAttentionParams, p *packedAttentionProblem) []float32 {
	y := make([]float32, p.T*p.Hq*p.Dv)
	group := p.Hq / p.Hkv
	S := p.lay.S
	for b := 0; b < p.B; b++ {
		o0, o1 := int(p.lay.offsets[b]), int(p.lay.offsets[b+1])
		s := make([]float64, o1-o0)
		for h := 0; h < p.Hq; h++ {
			kvh := h / group
			for t := o0; t < o1; t++ {
				i := int(p.lay.index[t]) - b*S
				mx := math.Inf(-1)
				for u := o0; u < o1; u++ {
					dot := 0.0
					for d := 0; d < p.D; d++ {
						dot += float64(p.q[(t*p.Hq+h)*p.D+d]) * float64(p.k[(u*p.Hkv+kvh)*p.D+d])
					}
					j := int(p.lay.index[u]) - b*S
					s[u-o0] = float64(p.maskedScore(par, float32(dot*float64(par.scale)), b, h, i, j))
					mx = math.Max(mx, s[u-o0])
				}
				if math.IsInf(mx, -1) {
					continue
				}
				sum := 0.0
				for u := range s {
					s[u] = math.Exp(s[u] - mx)
					sum += s[u]
				}
				for d := 0; d < p.Dv; d++ {
					acc := 0.0
					for u := range s {
						acc += s[u] / sum * float64(p.v[((o0+u)*p.Hkv+kvh)*p.Dv+d])
					}
					y[(t*p.Hq+h)*p.Dv+d] = float32(acc)
				}
			}
		}
	}
	return y
}
