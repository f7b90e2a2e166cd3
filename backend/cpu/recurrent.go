package cpu

import (
	"fmt"
	"math"

	"github.com/tfc-compiler/tfc/ir"
)

// buildLinearAttention implements LinearAttention: a per-head state
// S [d_k, d_v] updated token by token (optionally decayed by exp(decay)
// and delta-corrected by beta), read by the query; GQA shares a KV head's
// state among q_num_heads/kv_num_heads query heads. Inputs are 3-D
// [B, T, H*D]; outputs Y [B, T, Hq*d_v] and present_state
// [B, Hkv, d_k, d_v]. Computed in float64.
func buildLinearAttention(n *ir.Node, _ *compiler) (kernel, error) {
	rule := n.AttrString("update_rule", "gated_delta")
	gating := rule == "gated" || rule == "gated_delta"
	delta := rule == "delta" || rule == "gated_delta"
	if !gating && !delta && rule != "linear" {
		return nil, fmt.Errorf("update_rule %q is not linear, gated, delta or gated_delta", rule)
	}
	hq := int(n.AttrInt("q_num_heads", 0))
	hk := int(n.AttrInt("kv_num_heads", 0))
	if hq <= 0 || hk <= 0 || hq%hk != 0 {
		return nil, fmt.Errorf("q_num_heads %d must be a positive multiple of kv_num_heads %d", hq, hk)
	}
	scaleAttr := float64(n.AttrFloat("scale", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		q, k, v := in[0], in[1], in[2]
		past, decay, beta := inputN(in, 3), inputN(in, 4), inputN(in, 5)
		if gating != (decay != nil) || delta != (beta != nil) {
			return nil, fmt.Errorf("update_rule %q needs decay=%v and beta=%v", rule, gating, delta)
		}
		for i, t := range []*Tensor{q, k, v} {
			if len(t.Shape) != 3 {
				return nil, fmt.Errorf("input %d must be [B, T, H*D], has shape %v", i, t.Shape)
			}
		}
		B, T := q.Shape[0], q.Shape[1]
		if q.Shape[2]%hq != 0 || k.Shape[2]%hk != 0 || v.Shape[2]%hk != 0 {
			return nil, fmt.Errorf("hidden sizes %d, %d, %d do not split into %d/%d heads", q.Shape[2], k.Shape[2], v.Shape[2], hq, hk)
		}
		dk, dv := q.Shape[2]/hq, v.Shape[2]/hk
		if k.Shape[2] != hk*dk || k.Shape[0] != B || v.Shape[0] != B || k.Shape[1] != T || v.Shape[1] != T {
			return nil, fmt.Errorf("query %v, key %v and value %v do not agree", q.Shape, k.Shape, v.Shape)
		}
		qv, _ := q.Float64s()
		kv, _ := k.Float64s()
		vv, _ := v.Float64s()
		state := make([]float64, B*hk*dk*dv)
		stateType := q.DType
		if past != nil {
			if !sameShape(past.Shape, []int{B, hk, dk, dv}) {
				return nil, fmt.Errorf("past_state %v must be [%d %d %d %d]", past.Shape, B, hk, dk, dv)
			}
			state, _ = past.Float64s()
			stateType = past.DType
		}
		var dec, bet []float64
		decPerKey := false
		if decay != nil {
			if len(decay.Shape) != 3 || (decay.Shape[2] != hk && decay.Shape[2] != hk*dk) {
				return nil, fmt.Errorf("decay %v must be [B, T, %d] or [B, T, %d]", decay.Shape, hk, hk*dk)
			}
			decPerKey = decay.Shape[2] == hk*dk && hk*dk != hk
			dec, _ = decay.Float64s()
		}
		betaHeads := 0
		if beta != nil {
			if len(beta.Shape) != 3 || (beta.Shape[2] != hk && beta.Shape[2] != 1) {
				return nil, fmt.Errorf("beta %v must be [B, T, %d] or [B, T, 1]", beta.Shape, hk)
			}
			betaHeads = beta.Shape[2]
			bet, _ = beta.Float64s()
		}
		scale := scaleAttr
		if scale == 0 {
			scale = 1 / math.Sqrt(float64(dk))
		}
		group := hq / hk
		y := make([]float64, B*T*hq*dv)
		vt := make([]float64, dv)
		for b := 0; b < B; b++ {
			for t := 0; t < T; t++ {
				for h := 0; h < hk; h++ {
					S := state[((b*hk)+h)*dk*dv:][:dk*dv]
					kt := kv[(b*T+t)*hk*dk+h*dk:][:dk]
					copy(vt, vv[(b*T+t)*hk*dv+h*dv:][:dv])
					if gating {
						for d := 0; d < dk; d++ {
							g := dec[(b*T+t)*hk+h]
							if decPerKey {
								g = dec[(b*T+t)*hk*dk+h*dk+d]
							}
							e := math.Exp(g)
							for m := 0; m < dv; m++ {
								S[d*dv+m] *= e
							}
						}
					}
					if delta {
						bt := bet[(b*T+t)*betaHeads+min(h, betaHeads-1)]
						for m := 0; m < dv; m++ {
							ret := 0.0
							for d := 0; d < dk; d++ {
								ret += S[d*dv+m] * kt[d]
							}
							vt[m] = bt * (vt[m] - ret)
						}
					}
					for d := 0; d < dk; d++ {
						for m := 0; m < dv; m++ {
							S[d*dv+m] += kt[d] * vt[m]
						}
					}
					for g := 0; g < group; g++ {
						qh := h*group + g
						qt := qv[(b*T+t)*hq*dk+qh*dk:][:dk]
						out := y[(b*T+t)*hq*dv+qh*dv:][:dv]
						for m := 0; m < dv; m++ {
							s := 0.0
							for d := 0; d < dk; d++ {
								s += qt[d] * S[d*dv+m]
							}
							out[m] = scale * s
						}
					}
				}
			}
		}
		out, err := f64Result(r, y, []int{B, T, hq * dv}, q.DType)
		if err != nil {
			return nil, err
		}
		st, err := f64Result(r, state, []int{B, hk, dk, dv}, stateType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out, st}, nil
	}, nil
}

// buildCausalConvWithState: a depthwise causal 1-D convolution over
// [B, C, L] whose left context is past_state [B, C, k-1] (zeros when
// absent), with optional SiLU; present_state is the last k-1 positions of
// the padded input.
func buildCausalConvWithState(n *ir.Node, _ *compiler) (kernel, error) {
	act := n.AttrString("activation", "none")
	if act != "none" && act != "silu" && act != "swish" {
		return nil, fmt.Errorf("activation %q is not none, silu or swish", act)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, w, bias, past := in[0], in[1], inputN(in, 2), inputN(in, 3)
		if len(x.Shape) != 3 || len(w.Shape) != 3 || w.Shape[0] != x.Shape[1] || w.Shape[1] != 1 {
			return nil, fmt.Errorf("input %v and weight %v must be [B, C, L] and [C, 1, k]", x.Shape, w.Shape)
		}
		B, C, L, K := x.Shape[0], x.Shape[1], x.Shape[2], w.Shape[2]
		if K < 1 {
			return nil, fmt.Errorf("kernel size must be at least 1")
		}
		xv, _ := x.Float64s()
		wv, _ := w.Float64s()
		var bv, pv []float64
		if bias != nil {
			if bias.NumElements() != C {
				return nil, fmt.Errorf("bias must hold %d values", C)
			}
			bv, _ = bias.Float64s()
		}
		if past != nil {
			if !sameShape(past.Shape, []int{B, C, K - 1}) {
				return nil, fmt.Errorf("past_state %v must be [%d %d %d]", past.Shape, B, C, K-1)
			}
			pv, _ = past.Float64s()
		}
		P := L + K - 1
		padded := make([]float64, B*C*P)
		for bc := 0; bc < B*C; bc++ {
			if pv != nil {
				copy(padded[bc*P:], pv[bc*(K-1):][:K-1])
			}
			copy(padded[bc*P+K-1:], xv[bc*L:][:L])
		}
		y := make([]float64, B*C*L)
		for bc := 0; bc < B*C; bc++ {
			c := bc % C
			for t := 0; t < L; t++ {
				s := 0.0
				for j := 0; j < K; j++ {
					s += padded[bc*P+t+j] * wv[c*K+j]
				}
				if bv != nil {
					s += bv[c]
				}
				s = float64(float32(s)) // the reference rounds the convolution to the input type first
				if act != "none" {
					s *= sigmoid(s)
				}
				y[bc*L+t] = s
			}
		}
		state := make([]float64, B*C*(K-1))
		for bc := 0; bc < B*C; bc++ {
			copy(state[bc*(K-1):], padded[bc*P+L:][:K-1])
		}
		out, err := f64Result(r, y, x.Shape, x.DType)
		if err != nil {
			return nil, err
		}
		st, err := f64Result(r, state, []int{B, C, K - 1}, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out, st}, nil
	}, nil
}
