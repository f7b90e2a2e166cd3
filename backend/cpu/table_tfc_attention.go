package cpu

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// tfc.Attention (docs/fusion.md, "Attention fusion"). This file sorts
// after table.go, so its init runs after the one that builds opTable.
func init() {
	opTable = append(opTable, opDef{Domain: "tfc", Op: "Attention", types: f32Types, widen: true, build: buildTfcAttention,
		Notes: "fused scaled dot-product attention after the head split: GQA/MQA, additive bias, boolean keep mask with fill, causal and sliding window; float32 inputs: per (batch, head, query block) scores and P·V as GEMMs with a float32 softmax; the reference is a one-pass online-softmax kernel (no S×S matrix); threaded over batch × heads"})
}

// tfcAttentionParams are the attributes of a tfc.Attention node.
type tfcAttentionParams struct {
	scale    float32
	causal   bool
	window   int     // sliding window: key j is seen by query i when 0 <= i' - j < window; 0 means none
	maskFill float32 // the score where the keep mask is false
}

func parseTfcAttention(n *ir.Node) (tfcAttentionParams, error) {
	a := n.Attr("scale")
	if a == nil || a.Type != ir.AttrFloat {
		return tfcAttentionParams{}, fmt.Errorf("tfc.Attention needs a float attribute scale")
	}
	p := tfcAttentionParams{scale: a.F, maskFill: n.AttrFloat("mask_fill", float32(math.Inf(-1)))}
	kind := n.AttrString("mask_kind", "none")
	for _, part := range strings.Split(kind, "+") {
		switch {
		case part == "none", part == "additive", part == "boolean":
		case part == "causal":
			p.causal = true
		case strings.HasPrefix(part, "sliding:"):
			w, err := strconv.Atoi(strings.TrimPrefix(part, "sliding:"))
			if err != nil || w <= 0 {
				return p, fmt.Errorf("mask_kind %q: the sliding window must be a positive integer", kind)
			}
			p.causal, p.window = true, w
		default:
			return p, fmt.Errorf("mask_kind %q: unknown part %q (want none, additive, boolean, causal, sliding:W)", kind, part)
		}
	}
	return p, nil
}

// attentionProblem is one call's sizes and operands, checked.
type attentionProblem struct {
	B, Hq, Hkv, Sq, Skv, D, Dv int
	q, k, v                    []float32
	bias                       []float32
	biasStrides                [4]int // element strides over [B,Hq,Sq,Skv]; 0 on broadcast axes
	keep                       []bool
	keepStrides                [4]int
}

// maskStrides returns the strides that read a mask of shape ms as if
// broadcast to full, failing when it would not broadcast or would widen
// the scores.
func maskStrides(what string, ms []int, full [4]int) ([4]int, error) {
	var st [4]int
	if len(ms) > 4 {
		return st, fmt.Errorf("%s has rank %d, more than 4", what, len(ms))
	}
	padded := [4]int{1, 1, 1, 1}
	copy(padded[4-len(ms):], ms)
	acc := 1
	for i := 3; i >= 0; i-- {
		switch padded[i] {
		case full[i]:
			st[i] = acc
		case 1:
			st[i] = 0
		default:
			return st, fmt.Errorf("%s of shape %v does not broadcast to the scores %v", what, ms, full)
		}
		acc *= padded[i]
	}
	return st, nil
}

func newAttentionProblem(in []*Tensor) (*attentionProblem, error) {
	if err := needInputs(in, 3); err != nil {
		return nil, err
	}
	q, k, v := in[0], in[1], in[2]
	for i, t := range []*Tensor{q, k, v} {
		if len(t.Shape) != 4 {
			return nil, fmt.Errorf("input %d must be 4-D [batch, heads, seq, head_size], has shape %v", i, t.Shape)
		}
		if t.DType != ir.Float {
			return nil, fmt.Errorf("input %d is %v, want float32", i, t.DType)
		}
	}
	p := &attentionProblem{B: q.Shape[0], Hq: q.Shape[1], Sq: q.Shape[2], D: q.Shape[3], Hkv: k.Shape[1], Skv: k.Shape[2], Dv: v.Shape[3]}
	if k.Shape[0] != p.B || v.Shape[0] != p.B || k.Shape[3] != p.D || v.Shape[1] != p.Hkv || v.Shape[2] != p.Skv {
		return nil, fmt.Errorf("incompatible Q %v, K %v and V %v", q.Shape, k.Shape, v.Shape)
	}
	if p.Hkv == 0 || p.Hq%p.Hkv != 0 {
		return nil, fmt.Errorf("%d query heads are not a multiple of %d key/value heads", p.Hq, p.Hkv)
	}
	p.q, p.k, p.v = f32(q), f32(k), f32(v)
	full := [4]int{p.B, p.Hq, p.Sq, p.Skv}
	if b := inputN(in, 3); b != nil {
		if b.DType != ir.Float {
			return nil, fmt.Errorf("the additive bias is %v, want float32", b.DType)
		}
		st, err := maskStrides("the additive bias", b.Shape, full)
		if err != nil {
			return nil, err
		}
		p.bias, p.biasStrides = f32(b), st
	}
	if m := inputN(in, 4); m != nil {
		if m.DType != ir.Bool {
			return nil, fmt.Errorf("the keep mask is %v, want bool", m.DType)
		}
		st, err := maskStrides("the keep mask", m.Shape, full)
		if err != nil {
			return nil, err
		}
		p.keep, p.keepStrides = m.Data.([]bool), st
	}
	return p, nil
}

// maskedScore applies the keep mask, the bias and the causal/sliding
// frontier to the scaled score s of query i, key j. The frontier is
// aligned bottom-right: query i stands at key position i + Skv - Sq.
func (p *attentionProblem) maskedScore(par tfcAttentionParams, s float32, b, h, i, j int) float32 {
	if par.causal {
		pos := i + p.Skv - p.Sq
		if j > pos || par.window > 0 && pos-j >= par.window {
			return float32(math.Inf(-1))
		}
	}
	if p.keep != nil {
		st := p.keepStrides
		if !p.keep[b*st[0]+h*st[1]+i*st[2]+j*st[3]] {
			s = par.maskFill
		}
	}
	if p.bias != nil {
		st := p.biasStrides
		s += p.bias[b*st[0]+h*st[1]+i*st[2]+j*st[3]]
	}
	return s
}

func buildTfcAttention(n *ir.Node, _ *compiler) (kernel, error) {
	par, err := parseTfcAttention(n)
	if err != nil {
		return nil, err
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		p, err := newAttentionProblem(in)
		if err != nil {
			return nil, err
		}
		y := r.mustAlloc(ir.Float, []int{p.B, p.Hq, p.Sq, p.Dv})
		if err := attentionBlocked(r, par, p, f32(y)); err != nil {
			return nil, err
		}
		return []*Tensor{y}, nil
	}, nil
}

// attentionOnline is the earlier one-pass kernel (attentionBlocked runs
// now; this one is kept with its tests): for each (batch, head) in parallel
// and each query row, one pass over the keys and values with an online
// softmax (running maximum m, running sum l, output accumulator rescaled
// when m grows), so no [Sq, Skv] score matrix exists. A row whose scores
// are all -inf gives zeros. Its reference is attentionReference.
func attentionOnline(r *runState, par tfcAttentionParams, p *attentionProblem, y []float32) {
	group := p.Hq / p.Hkv
	r.parallelFor(p.B*p.Hq, func(lo, hi int) {
		acc := make([]float32, p.Dv)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/p.Hq, bh%p.Hq
			kvh := h / group
			kBase := (b*p.Hkv + kvh) * p.Skv * p.D
			vBase := (b*p.Hkv + kvh) * p.Skv * p.Dv
			for i := 0; i < p.Sq; i++ {
				qRow := p.q[((b*p.Hq+h)*p.Sq+i)*p.D:][:p.D]
				m := float32(math.Inf(-1))
				var l float32
				clear(acc)
				for j := 0; j < p.Skv; j++ {
					s := p.maskedScore(par, dotF32(qRow, p.k[kBase+j*p.D:][:p.D])*par.scale, b, h, i, j)
					if s == float32(math.Inf(-1)) {
						continue
					}
					vRow := p.v[vBase+j*p.Dv:][:p.Dv]
					if s > m {
						// Rescale what was summed under the old maximum.
						c := float32(math.Exp(float64(m - s)))
						l *= c
						for d := range acc {
							acc[d] *= c
						}
						m = s
					}
					w := float32(math.Exp(float64(s - m)))
					l += w
					axpyF32(acc, w, vRow)
				}
				out := y[((b*p.Hq+h)*p.Sq+i)*p.Dv:][:p.Dv]
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

// dotF32 is sum_d a[d]*b[d] over len(a) (b at least as long), four
// lanes at a time.
func dotF32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	n := len(a) &^ 3
	for d := 0; d < n; d += 4 {
		s0 += a[d] * b[d]
		s1 += a[d+1] * b[d+1]
		s2 += a[d+2] * b[d+2]
		s3 += a[d+3] * b[d+3]
	}
	for d := n; d < len(a); d++ {
		s0 += a[d] * b[d]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyF32 is y[d] += w*x[d] over len(y) (x at least as long).
func axpyF32(y []float32, w float32, x []float32) {
	x = x[:len(y)]
	n := len(y) &^ 3
	for d := 0; d < n; d += 4 {
		y[d] += w * x[d]
		y[d+1] += w * x[d+1]
		y[d+2] += w * x[d+2]
		y[d+3] += w * x[d+3]
	}
	for d := n; d < len(y); d++ {
		y[d] += w * x[d]
	}
}

// attentionReference is the oracle, in float64, row by row:
//
//	s[j] = maskedScore(scale * sum_d q[i,d] k[j,d])
//	p = softmax(s)            (zeros when every s[j] is -inf)
//	y[i,:] = sum_j p[j] v[j,:]
//
// with query head h reading key/value head h / (Hq/Hkv).
func attentionReference(par tfcAttentionParams, p *attentionProblem) []float32 {
	y := make([]float32, p.B*p.Hq*p.Sq*p.Dv)
	group := p.Hq / p.Hkv
	s := make([]float64, p.Skv)
	for b := 0; b < p.B; b++ {
		for h := 0; h < p.Hq; h++ {
			kvh := h / group
			for i := 0; i < p.Sq; i++ {
				mx := math.Inf(-1)
				for j := 0; j < p.Skv; j++ {
					dot := 0.0
					for d := 0; d < p.D; d++ {
						dot += float64(p.q[((b*p.Hq+h)*p.Sq+i)*p.D+d]) * float64(p.k[((b*p.Hkv+kvh)*p.Skv+j)*p.D+d])
					}
					s[j] = float64(p.maskedScore(par, float32(dot*float64(par.scale)), b, h, i, j))
					mx = math.Max(mx, s[j])
				}
				if math.IsInf(mx, -1) {
					continue
				}
				sum := 0.0
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for d := 0; d < p.Dv; d++ {
					acc := 0.0
					for j := range s {
						acc += s[j] / sum * float64(p.v[((b*p.Hkv+kvh)*p.Skv+j)*p.Dv+d])
					}
					y[((b*p.Hq+h)*p.Sq+i)*p.Dv+d] = float32(acc)
				}
			}
		}
	}
	return y
}
