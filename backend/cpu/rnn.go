package cpu

import (
	"fmt"
	"math"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// rnnActivation returns the named activation, consuming alpha/beta values
// from the attribute lists when the function takes them.
func rnnActivation(name string, alphas, betas *[]float64) (func(float64) float64, error) {
	take := func(list *[]float64, def float64) float64 {
		if len(*list) == 0 {
			return def
		}
		v := (*list)[0]
		*list = (*list)[1:]
		return v
	}
	switch strings.ToLower(name) {
	case "sigmoid":
		return sigmoid, nil
	case "tanh":
		return math.Tanh, nil
	case "relu":
		return func(x float64) float64 { return math.Max(0, x) }, nil
	case "affine":
		a, b := take(alphas, 1), take(betas, 0)
		return func(x float64) float64 { return a*x + b }, nil
	case "leakyrelu":
		a := take(alphas, 0.01)
		return func(x float64) float64 {
			if x < 0 {
				return a * x
			}
			return x
		}, nil
	case "thresholdedrelu":
		a := take(alphas, 1)
		return func(x float64) float64 {
			if x > a {
				return x
			}
			return 0
		}, nil
	case "scaledtanh":
		a, b := take(alphas, 1), take(betas, 1)
		return func(x float64) float64 { return a * math.Tanh(b*x) }, nil
	case "hardsigmoid":
		a, b := take(alphas, 0.2), take(betas, 0.5)
		return func(x float64) float64 { return math.Max(0, math.Min(1, a*x+b)) }, nil
	case "elu":
		a := take(alphas, 1)
		return func(x float64) float64 {
			if x < 0 {
				return a * (math.Exp(x) - 1)
			}
			return x
		}, nil
	case "softsign":
		return func(x float64) float64 { return x / (1 + math.Abs(x)) }, nil
	case "softplus":
		return func(x float64) float64 { return math.Log1p(math.Exp(x)) }, nil
	}
	return nil, fmt.Errorf("activation %q is not supported", name)
}

// buildRNN covers RNN, GRU and LSTM (ONNX gate orders: GRU z, r, h; LSTM
// i, o, f, c), forward, reverse and bidirectional, both layouts,
// sequence_lens, clip, peepholes and linear_before_reset. Computed in
// float64.
func buildRNN(n *ir.Node, _ *compiler) (kernel, error) {
	op := n.Op
	gates := map[string]int{"RNN": 1, "GRU": 3, "LSTM": 4}[op]
	nAct := map[string]int{"RNN": 1, "GRU": 2, "LSTM": 3}[op]
	hidden := int(n.AttrInt("hidden_size", 0))
	if hidden <= 0 {
		return nil, fmt.Errorf("hidden_size must be positive")
	}
	direction := n.AttrString("direction", "forward")
	dirs := 1
	switch direction {
	case "forward", "reverse":
	case "bidirectional":
		dirs = 2
	default:
		return nil, fmt.Errorf("direction %q is not supported", direction)
	}
	layout := n.AttrInt("layout", 0)
	clip := float64(n.AttrFloat("clip", 0))
	linearBeforeReset := n.AttrInt("linear_before_reset", 0) != 0
	inputForget := n.AttrInt("input_forget", 0) != 0
	var names []string
	if a := n.Attr("activations"); a != nil {
		for _, s := range a.Strings {
			names = append(names, string(s))
		}
	} else {
		def := map[string][]string{"RNN": {"Tanh"}, "GRU": {"Sigmoid", "Tanh"}, "LSTM": {"Sigmoid", "Tanh", "Tanh"}}[op]
		for d := 0; d < dirs; d++ {
			names = append(names, def...)
		}
	}
	if len(names) == nAct && dirs == 2 {
		names = append(names, names...)
	}
	if len(names) != nAct*dirs {
		return nil, fmt.Errorf("%d activations given, %s needs %d per direction", len(names), op, nAct)
	}
	var alphas, betas []float64
	if v := n.Attr("activation_alpha"); v != nil {
		for _, f := range v.Floats {
			alphas = append(alphas, float64(f))
		}
	}
	if v := n.Attr("activation_beta"); v != nil {
		for _, f := range v.Floats {
			betas = append(betas, float64(f))
		}
	}
	acts := make([]func(float64) float64, len(names))
	for i, name := range names {
		f, err := rnnActivation(name, &alphas, &betas)
		if err != nil {
			return nil, err
		}
		acts[i] = f
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		x, w, rw := in[0], in[1], in[2]
		if len(x.Shape) != 3 {
			return nil, fmt.Errorf("X must be 3-D, has shape %v", x.Shape)
		}
		S, B, I := x.Shape[0], x.Shape[1], x.Shape[2]
		if layout == 1 {
			S, B = x.Shape[1], x.Shape[0]
		}
		G, H := gates, hidden
		if !sameShape(w.Shape, []int{dirs, G * H, I}) || !sameShape(rw.Shape, []int{dirs, G * H, H}) {
			return nil, fmt.Errorf("W %v and R %v must be [%d %d %d] and [%d %d %d]", w.Shape, rw.Shape, dirs, G*H, I, dirs, G*H, H)
		}
		xv, _ := x.Float64s()
		wv, _ := w.Float64s()
		rv, _ := rw.Float64s()
		xAt := func(t, b, i int) float64 {
			if layout == 1 {
				return xv[(b*S+t)*I+i]
			}
			return xv[(t*B+b)*I+i]
		}
		bias := make([]float64, dirs*2*G*H)
		if t := inputN(in, 3); t != nil {
			if t.NumElements() != len(bias) {
				return nil, fmt.Errorf("B must hold %d values", len(bias))
			}
			bias, _ = t.Float64s()
		}
		lens := make([]int64, B)
		for b := range lens {
			lens[b] = int64(S)
		}
		if t := inputN(in, 4); t != nil {
			v, err := intValues(t)
			if err != nil || len(v) != B {
				return nil, fmt.Errorf("sequence_lens must hold %d integers", B)
			}
			for _, l := range v {
				if l < 0 || l > int64(S) {
					return nil, fmt.Errorf("sequence length %d is out of range", l)
				}
			}
			lens = v
		}
		// initial state, laid out [dirs, B, H] (layout 1 gives [B, dirs, H])
		state := func(t *Tensor) ([]float64, error) {
			out := make([]float64, dirs*B*H)
			if t == nil {
				return out, nil
			}
			v, _ := t.Float64s()
			if len(v) != len(out) {
				return nil, fmt.Errorf("initial state %v must hold %d values", t.Shape, len(out))
			}
			for d := 0; d < dirs; d++ {
				for b := 0; b < B; b++ {
					src := (d*B + b) * H
					if layout == 1 {
						src = (b*dirs + d) * H
					}
					copy(out[(d*B+b)*H:][:H], v[src:][:H])
				}
			}
			return out, nil
		}
		h0, err := state(inputN(in, 5))
		if err != nil {
			return nil, err
		}
		c0 := make([]float64, dirs*B*H)
		peep := make([]float64, dirs*3*H)
		if op == "LSTM" {
			if c0, err = state(inputN(in, 6)); err != nil {
				return nil, err
			}
			if t := inputN(in, 7); t != nil {
				if t.NumElements() != len(peep) {
					return nil, fmt.Errorf("P must hold %d values", len(peep))
				}
				peep, _ = t.Float64s()
			}
		}
		clipv := func(v float64) float64 {
			if clip > 0 {
				return math.Max(-clip, math.Min(clip, v))
			}
			return v
		}
		Y := make([]float64, S*dirs*B*H)
		for d := 0; d < dirs; d++ {
			reverse := direction == "reverse" || d == 1
			f, g, hAct := acts[d*nAct], acts[d*nAct], acts[d*nAct]
			if nAct > 1 {
				g = acts[d*nAct+1]
			}
			if nAct > 2 {
				hAct = acts[d*nAct+2]
			}
			W := wv[d*G*H*I:][:G*H*I]
			R := rv[d*G*H*H:][:G*H*H]
			Wb, Rb := bias[d*2*G*H:][:G*H], bias[d*2*G*H+G*H:][:G*H]
			P := peep[d*3*H:][:3*H]
			for b := 0; b < B; b++ {
				h := append([]float64(nil), h0[(d*B+b)*H:][:H]...)
				c := append([]float64(nil), c0[(d*B+b)*H:][:H]...)
				L := int(lens[b])
				xw := make([]float64, G*H) // X W^T + Wb
				hr := make([]float64, G*H) // H R^T + Rb
				for step := 0; step < L; step++ {
					t := step
					if reverse {
						t = L - 1 - step
					}
					for j := 0; j < G*H; j++ {
						s := Wb[j]
						for i := 0; i < I; i++ {
							s += xAt(t, b, i) * W[j*I+i]
						}
						xw[j] = s
						s = Rb[j]
						for i := 0; i < H; i++ {
							s += h[i] * R[j*H+i]
						}
						hr[j] = s
					}
					nh := make([]float64, H)
					switch op {
					case "RNN":
						for j := 0; j < H; j++ {
							nh[j] = f(clipv(xw[j] + hr[j]))
						}
					case "GRU":
						z, rg := make([]float64, H), make([]float64, H)
						for j := 0; j < H; j++ {
							z[j] = f(clipv(xw[j] + hr[j]))
							rg[j] = f(clipv(xw[H+j] + hr[H+j]))
						}
						for j := 0; j < H; j++ {
							var cand float64
							if linearBeforeReset {
								cand = g(clipv(xw[2*H+j] + rg[j]*hr[2*H+j]))
							} else { // (r ⊙ H) R_h^T + Rb_h
								s := Rb[2*H+j]
								for i := 0; i < H; i++ {
									s += rg[i] * h[i] * R[(2*H+j)*H+i]
								}
								cand = g(clipv(xw[2*H+j] + s))
							}
							nh[j] = (1-z[j])*cand + z[j]*h[j]
						}
					case "LSTM":
						nc := make([]float64, H)
						for j := 0; j < H; j++ {
							ig := f(clipv(xw[j] + hr[j] + P[j]*c[j]))
							fg := f(clipv(xw[2*H+j] + hr[2*H+j] + P[2*H+j]*c[j]))
							if inputForget {
								fg = 1 - ig
							}
							cg := g(clipv(xw[3*H+j] + hr[3*H+j]))
							nc[j] = fg*c[j] + ig*cg
							og := f(clipv(xw[H+j] + hr[H+j] + P[H+j]*nc[j]))
							nh[j] = og * hAct(nc[j])
						}
						c = nc
					}
					h = nh
					copy(Y[((t*dirs+d)*B+b)*H:][:H], h)
				}
				copy(h0[(d*B+b)*H:][:H], h)
				copy(c0[(d*B+b)*H:][:H], c)
			}
		}
		// Outputs in the requested layout.
		yShape := []int{S, dirs, B, H}
		hShape := []int{dirs, B, H}
		yOut, hOut, cOut := Y, h0, c0
		if layout == 1 {
			yShape, hShape = []int{B, S, dirs, H}, []int{B, dirs, H}
			yOut = make([]float64, len(Y))
			for t := 0; t < S; t++ {
				for d := 0; d < dirs; d++ {
					for b := 0; b < B; b++ {
						copy(yOut[((b*S+t)*dirs+d)*H:][:H], Y[((t*dirs+d)*B+b)*H:][:H])
					}
				}
			}
			swap := func(v []float64) []float64 {
				o := make([]float64, len(v))
				for d := 0; d < dirs; d++ {
					for b := 0; b < B; b++ {
						copy(o[(b*dirs+d)*H:][:H], v[(d*B+b)*H:][:H])
					}
				}
				return o
			}
			hOut, cOut = swap(h0), swap(c0)
		}
		outs := []*Tensor{}
		for _, o := range []struct {
			v     []float64
			shape []int
		}{{yOut, yShape}, {hOut, hShape}, {cOut, hShape}}[:map[string]int{"RNN": 2, "GRU": 2, "LSTM": 3}[op]] {
			t, err := f64Result(r, o.v, o.shape, x.DType)
			if err != nil {
				return nil, err
			}
			outs = append(outs, t)
		}
		return outs, nil
	}, nil
}
