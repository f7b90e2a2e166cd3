package cpu

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// to4D views a [B, S, H*D] tensor as [B, H, S, D] (copying through a
// transpose); 4-D inputs are returned as they are.
func to4D(r *runState, t *Tensor, heads int, name string) (*Tensor, error) {
	switch len(t.Shape) {
	case 4:
		return t, nil
	case 3:
		if heads <= 0 || t.Shape[2]%heads != 0 {
			return nil, fmt.Errorf("%s: hidden size %d is not divisible by %d heads", name, t.Shape[2], heads)
		}
		v := view(t, []int{t.Shape[0], t.Shape[1], heads, t.Shape[2] / heads})
		return transpose(r, v, []int{0, 2, 1, 3}), nil
	}
	return nil, fmt.Errorf("%s must be 3-D or 4-D, has shape %v", name, t.Shape)
}

// buildAttention implements ONNX Attention (opsets 23 and 24) as its
// reference semantics: scores = (Q*sqrt(scale)) (K*sqrt(scale))^T,
// optional softcap, plus the bias from the mask, causal frontier and
// nonpad_kv_seqlen; softmax (rows whose bias is all -inf become zeros);
// times V. K/V heads are shared by q_num_heads/kv_num_heads query heads.
func buildAttention(n *ir.Node, _ *compiler) (kernel, error) {
	causal := n.AttrInt("is_causal", 0) != 0
	qHeadsAttr := int(n.AttrInt("q_num_heads", 0))
	kvHeadsAttr := int(n.AttrInt("kv_num_heads", 0))
	mode := n.AttrInt("qk_matmul_output_mode", 0)
	scaleAttr := n.Attr("scale")
	scaleVal := float64(n.AttrFloat("scale", 0))
	softcap := float64(n.AttrFloat("softcap", 0))
	if mode < 0 || mode > 3 {
		return nil, fmt.Errorf("qk_matmul_output_mode %d is not 0..3", mode)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		qIn, kIn, vIn := in[0], in[1], in[2]
		mask, pastK, pastV, nonpad := inputN(in, 3), inputN(in, 4), inputN(in, 5), inputN(in, 6)
		if (pastK == nil) != (pastV == nil) {
			return nil, fmt.Errorf("past_key and past_value must be given together")
		}
		if len(qIn.Shape) != len(kIn.Shape) || len(qIn.Shape) != len(vIn.Shape) {
			return nil, fmt.Errorf("Q %v, K %v and V %v must have one rank", qIn.Shape, kIn.Shape, vIn.Shape)
		}
		rank3 := len(qIn.Shape) == 3
		q, err := to4D(r, qIn, qHeadsAttr, "Q")
		if err != nil {
			return nil, err
		}
		k, err := to4D(r, kIn, kvHeadsAttr, "K")
		if err != nil {
			return nil, err
		}
		v, err := to4D(r, vIn, kvHeadsAttr, "V")
		if err != nil {
			return nil, err
		}
		if pastK != nil {
			if k, err = concat(r, []*Tensor{pastK, k}, 2); err != nil {
				return nil, fmt.Errorf("past_key: %w", err)
			}
			if v, err = concat(r, []*Tensor{pastV, v}, 2); err != nil {
				return nil, fmt.Errorf("past_value: %w", err)
			}
		}
		B, Hq, Sq, D := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
		Hk, Skv, Dv := k.Shape[1], k.Shape[2], v.Shape[3]
		if k.Shape[0] != B || v.Shape[0] != B || v.Shape[1] != Hk || v.Shape[2] != Skv || k.Shape[3] != D {
			return nil, fmt.Errorf("incompatible Q %v, K %v, V %v (after past and head split)", q.Shape, k.Shape, v.Shape)
		}
		if Hk == 0 || Hq%Hk != 0 {
			return nil, fmt.Errorf("%d query heads are not a multiple of %d key/value heads", Hq, Hk)
		}
		group := Hq / Hk
		scale := 1 / math.Sqrt(float64(D))
		if scaleAttr != nil {
			scale = scaleVal
		}
		sq := float32(math.Sqrt(scale)) // applied to Q and K alike, as the reference does

		// bias[b,h,i,j] over the full [B,Hq,Sq,Skv], built by broadcasting.
		full := []int{B, Hq, Sq, Skv}
		bias := make([]float64, shapeSize(full))
		if mask != nil {
			mv, ok := mask.Float64s()
			if !ok {
				return nil, fmt.Errorf("attn_mask must be bool or numeric")
			}
			if mask.DType == ir.Bool {
				for i, x := range mv {
					if x != 0 {
						mv[i] = 0
					} else {
						mv[i] = math.Inf(-1)
					}
				}
			}
			ms := slices.Clone(mask.Shape)
			if len(ms) == 0 {
				return nil, fmt.Errorf("attn_mask must have rank >= 1")
			}
			last := ms[len(ms)-1]
			if last > Skv {
				return nil, fmt.Errorf("attn_mask %v is longer than the %d keys", mask.Shape, Skv)
			}
			if last < Skv { // pad the key axis with -inf
				padded := make([]float64, shapeSize(ms[:len(ms)-1])*Skv)
				for row := 0; row*last < len(mv) || (last == 0 && row < len(padded)/max(Skv, 1)); row++ {
					for j := 0; j < Skv; j++ {
						if j < last {
							padded[row*Skv+j] = mv[row*last+j]
						} else {
							padded[row*Skv+j] = math.Inf(-1)
						}
					}
				}
				mv = padded
				ms[len(ms)-1] = Skv
			}
			if _, err := broadcastShapes(ms, full); err != nil || len(ms) > 4 {
				return nil, fmt.Errorf("attn_mask %v does not broadcast to %v", mask.Shape, full)
			}
			im := broadcastIndex(ms, full)
			for e := range bias {
				bias[e] = mv[im[e]]
			}
		}
		var nonpadLen []int64
		if nonpad != nil {
			if nonpadLen, err = intValues(nonpad); err != nil || len(nonpadLen) != B {
				return nil, fmt.Errorf("nonpad_kv_seqlen must hold %d integers", B)
			}
		}
		if causal {
			for b := 0; b < B; b++ {
				offset := 0
				switch {
				case pastK != nil:
					offset = pastK.Shape[2]
				case nonpadLen != nil:
					offset = int(nonpadLen[b]) - Sq
				}
				for h := 0; h < Hq; h++ {
					for i := 0; i < Sq; i++ {
						row := bias[((b*Hq+h)*Sq+i)*Skv:][:Skv]
						for j := range row {
							if j > i+offset {
								row[j] += math.Inf(-1)
							}
						}
					}
				}
			}
		}
		if nonpadLen != nil {
			for b := 0; b < B; b++ {
				for hi := 0; hi < Hq*Sq; hi++ {
					row := bias[(b*Hq*Sq+hi)*Skv:][:Skv]
					for j := range row {
						if int64(j) >= nonpadLen[b] {
							row[j] += math.Inf(-1)
						}
					}
				}
			}
		}

		qv, kv, vv := q.Data.([]float32), k.Data.([]float32), v.Data.([]float32)
		y := make([]float32, B*Hq*Sq*Dv)
		qkOut := make([]float64, B*Hq*Sq*Skv)
		r.parallelFor(B*Hq, func(lo, hi int) {
			scores := make([]float64, Skv)
			qs := make([]float32, D)
			for bh := lo; bh < hi; bh++ {
				b, h := bh/Hq, bh%Hq
				kh := h / group
				kBase := (b*Hk + kh) * Skv * D
				vBase := (b*Hk + kh) * Skv * Dv
				for i := 0; i < Sq; i++ {
					qRow := qv[((b*Hq+h)*Sq+i)*D:][:D]
					for d := range qs {
						qs[d] = qRow[d] * sq
					}
					brow := bias[((b*Hq+h)*Sq+i)*Skv:][:Skv]
					qk := qkOut[((b*Hq+h)*Sq+i)*Skv:][:Skv]
					allMasked := true
					for j := 0; j < Skv; j++ {
						kRow := kv[kBase+j*D:][:D]
						s := 0.0
						for d, x := range qs {
							s += float64(x) * float64(kRow[d]*sq)
						}
						if softcap > 0 {
							s = softcap * math.Tanh(s/softcap)
						}
						if mode <= 1 {
							qk[j] = s
						}
						scores[j] = s + brow[j]
						if !math.IsInf(brow[j], -1) {
							allMasked = false
						}
						if mode == 2 {
							qk[j] = scores[j]
						}
					}
					out := y[((b*Hq+h)*Sq+i)*Dv:][:Dv]
					if allMasked || Skv == 0 {
						if mode == 3 {
							clear(qk)
						}
						continue
					}
					softmaxRows(scores, Skv, false)
					if mode == 3 {
						copy(qk, scores)
					}
					for j, p := range scores {
						if p == 0 {
							continue
						}
						vRow := vv[vBase+j*Dv:][:Dv]
						for d := range out {
							out[d] += float32(p) * vRow[d]
						}
					}
				}
			}
		})
		yT := &Tensor{DType: ir.Float, Shape: []int{B, Hq, Sq, Dv}, Data: y}
		if rank3 {
			yT = transpose(r, yT, []int{0, 2, 1, 3})
			yT = view(yT, []int{B, Sq, Hq * Dv})
		} else {
			c := r.mustAlloc(ir.Float, yT.Shape)
			copy(c.Data.([]float32), y)
			yT = c
		}
		outs := []*Tensor{yT, k, v}
		{
			qkT, err := convertData(r, &Tensor{DType: ir.Double, Shape: full, Data: qkOut}, ir.Float)
			if err != nil {
				return nil, err
			}
			outs = append(outs, qkT)
		}
		return outs, nil
	}, nil
}

// buildRotary implements RotaryEmbedding (opset 23): rotate the first
// rotary_embedding_dim features of each head by the cached angles, in
// halves or interleaved pairs.
func buildRotary(n *ir.Node, _ *compiler) (kernel, error) {
	interleaved := n.AttrInt("interleaved", 0) != 0
	rotDimAttr := int(n.AttrInt("rotary_embedding_dim", 0))
	numHeads := int(n.AttrInt("num_heads", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		x, cosC, sinC, pos := in[0], in[1], in[2], inputN(in, 3)
		var B, S, H, D int
		// element (b, s, h, d) of x lives at offset xOff(b,s,h)+d.
		var xOff func(b, s, h int) int
		switch len(x.Shape) {
		case 4: // [B, H, S, D]
			B, H, S, D = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
			xOff = func(b, s, h int) int { return ((b*H+h)*S + s) * D }
		case 3: // [B, S, H*D]
			B, S = x.Shape[0], x.Shape[1]
			if numHeads <= 0 || x.Shape[2]%numHeads != 0 {
				return nil, fmt.Errorf("3-D input needs num_heads dividing %d, got %d", x.Shape[2], numHeads)
			}
			H, D = numHeads, x.Shape[2]/numHeads
			xOff = func(b, s, h int) int { return ((b*S+s)*H + h) * D }
		default:
			return nil, fmt.Errorf("input must be 3-D or 4-D, has shape %v", x.Shape)
		}
		rot := rotDimAttr
		if rot == 0 {
			rot = D
		}
		if rot > D || rot%2 != 0 {
			return nil, fmt.Errorf("rotary_embedding_dim %d must be even and at most the head size %d", rot, D)
		}
		half := rot / 2
		cv, sv := f32(cosC), f32(sinC)
		if cosC.Shape[len(cosC.Shape)-1] != half || sinC.Shape[len(sinC.Shape)-1] != half {
			return nil, fmt.Errorf("cos/sin caches %v, %v must end in rotary_embedding_dim/2 = %d", cosC.Shape, sinC.Shape, half)
		}
		// cacheRow(b, s) is the offset of the angle row for that token.
		var cacheRow func(b, s int) (int, error)
		if pos != nil {
			pv, err := intValues(pos)
			if err != nil || len(pv) != B*S {
				return nil, fmt.Errorf("position_ids must be [%d, %d] integers", B, S)
			}
			maxPos := cosC.Shape[0]
			cacheRow = func(b, s int) (int, error) {
				p := pv[b*S+s]
				if p < 0 || p >= int64(maxPos) {
					return 0, fmt.Errorf("position id %d is outside the cache of %d positions", p, maxPos)
				}
				return int(p) * half, nil
			}
		} else {
			if len(cosC.Shape) != 3 || cosC.Shape[0] != B || cosC.Shape[1] != S {
				return nil, fmt.Errorf("without position_ids the caches must be [%d, %d, %d], got %v", B, S, half, cosC.Shape)
			}
			cacheRow = func(b, s int) (int, error) { return (b*S + s) * half, nil }
		}
		out, err := convertData(r, x, x.DType)
		if err != nil {
			return nil, err
		}
		xv, ov := f32(x), f32(out)
		for b := 0; b < B; b++ {
			for s := 0; s < S; s++ {
				c, err := cacheRow(b, s)
				if err != nil {
					return nil, err
				}
				for h := 0; h < H; h++ {
					base := xOff(b, s, h)
					for i := 0; i < half; i++ {
						i1, i2 := base+i, base+i+half
						if interleaved {
							i1, i2 = base+2*i, base+2*i+1
						}
						x1, x2 := xv[i1], xv[i2]
						cs, sn := cv[c+i], sv[c+i]
						ov[i1] = cs*x1 - sn*x2
						ov[i2] = sn*x1 + cs*x2
					}
				}
			}
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildTensorScatter writes update into a copy of past_cache along axis at
// per-batch write_indices (linear) or modulo the cache length (circular).
func buildTensorScatter(n *ir.Node, _ *compiler) (kernel, error) {
	mode := n.AttrString("mode", "linear")
	if mode != "linear" && mode != "circular" {
		return nil, fmt.Errorf("mode %q must be linear or circular", mode)
	}
	axisAttr := n.AttrInt("axis", -2)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		cache, upd := in[0], in[1]
		rank := len(cache.Shape)
		ax, err := normAxis(axisAttr, rank)
		if err != nil {
			return nil, err
		}
		if ax == 0 {
			return nil, fmt.Errorf("axis must not be the batch axis")
		}
		if len(upd.Shape) != rank || upd.DType != cache.DType {
			return nil, fmt.Errorf("update %v does not match cache %v", upd, cache)
		}
		for i := range cache.Shape {
			if (i != ax && cache.Shape[i] != upd.Shape[i]) || (i == ax && upd.Shape[i] > cache.Shape[i]) {
				return nil, fmt.Errorf("update shape %v is not compatible with cache shape %v", upd.Shape, cache.Shape)
			}
		}
		B := cache.Shape[0]
		write := make([]int64, B)
		if t := inputN(in, 2); t != nil {
			if write, err = intValues(t); err != nil || len(write) != B {
				return nil, fmt.Errorf("write_indices must hold %d integers", B)
			}
		}
		out, err := convertData(r, cache, cache.DType)
		if err != nil {
			return nil, err
		}
		maxLen, seqLen := cache.Shape[ax], upd.Shape[ax]
		inner := shapeSize(cache.Shape[ax+1:])
		prefix := shapeSize(cache.Shape[:ax])
		perBatch := prefix / max(B, 1)
		for p := 0; p < prefix; p++ {
			b := p / max(perBatch, 1)
			for s := 0; s < seqLen; s++ {
				c := write[b] + int64(s)
				if mode == "circular" {
					c %= int64(maxLen)
				}
				if c < 0 || c >= int64(maxLen) {
					return nil, fmt.Errorf("write position %d is outside the cache of %d", c, maxLen)
				}
				copyElems(out.Data, upd.Data, (p*maxLen+int(c))*inner, (p*seqLen+s)*inner, inner)
			}
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildEinsum is the reference einsum: a loop over every combination of
// label values, multiplying the addressed operand elements.
func buildEinsum(n *ir.Node, _ *compiler) (kernel, error) {
	eq := strings.ReplaceAll(n.AttrString("equation", ""), " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if len(terms) != len(in) {
			return nil, fmt.Errorf("equation %q has %d operands, node has %d inputs", eq, len(terms), len(in))
		}
		if err := needInputs(in, len(in)); err != nil {
			return nil, err
		}
		// Expand "..." into upper-case-free placeholder labels ('0'..'9').
		ellRank := 0
		for i, t := range terms {
			if strings.Contains(t, "...") {
				ellRank = max(ellRank, len(in[i].Shape)-(len(t)-3))
			}
		}
		ell := ""
		for i := 0; i < ellRank; i++ {
			ell += string(rune('0' + i))
		}
		labels := make([]string, len(terms))
		for i, t := range terms {
			if strings.Contains(t, "...") {
				own := len(in[i].Shape) - (len(t) - 3)
				if own < 0 {
					return nil, fmt.Errorf("operand %d has rank %d, too small for %q", i, len(in[i].Shape), t)
				}
				t = strings.Replace(t, "...", ell[ellRank-own:], 1)
			}
			if len(t) != len(in[i].Shape) {
				return nil, fmt.Errorf("term %q does not match operand %d of shape %v", terms[i], i, in[i].Shape)
			}
			labels[i] = t
		}
		size := map[rune]int{}
		count := map[rune]int{}
		for i, t := range labels {
			for a, c := range t {
				d := in[i].Shape[a]
				if old, ok := size[c]; ok && old != d {
					if old == 1 {
						size[c] = d
					} else if d != 1 {
						return nil, fmt.Errorf("label %q has sizes %d and %d", c, old, d)
					}
				} else if !ok {
					size[c] = d
				}
				count[c]++
			}
		}
		out := rhs
		if explicit {
			out = strings.Replace(out, "...", ell, 1)
		} else {
			var single []rune
			for c, k := range count {
				if k == 1 && !(c >= '0' && c <= '9') {
					single = append(single, c)
				}
			}
			slices.Sort(single)
			out = ell + string(single)
		}
		var all []rune
		all = append(all, []rune(out)...)
		for _, t := range labels {
			for _, c := range t {
				if !slices.Contains(all, c) {
					all = append(all, c)
				}
			}
		}
		dims := make([]int, len(all))
		for i, c := range all {
			dims[i] = size[c]
		}
		outShape := dims[:len([]rune(out))]
		vals := make([][]float64, len(in))
		// axis positions of each operand label inside all, with strides
		opStr := make([][]int, len(in))
		for i, t := range in {
			v, ok := t.Float64s()
			if !ok {
				return nil, fmt.Errorf("operand %d must be numeric", i)
			}
			vals[i] = v
			st := strides(t.Shape)
			opStr[i] = make([]int, len(all))
			for a, c := range labels[i] {
				if t.Shape[a] != 1 {
					opStr[i][slices.Index(all, c)] += st[a]
				}
			}
		}
		res := make([]float64, shapeSize(outShape))
		outN := len(outShape)
		inner := shapeSize(dims[outN:])
		forEachIndex(dims, func(k int, pos []int) {
			p := 1.0
			for i := range in {
				off := 0
				for a, s := range opStr[i] {
					off += pos[a] * s
				}
				p *= vals[i][off]
			}
			res[k/max(inner, 1)] += p
		})
		o, err := r.alloc(in[0].DType, outShape)
		if err != nil {
			return nil, err
		}
		if intTypes.has(o.DType) {
			iv := make([]int64, len(res))
			for i, v := range res {
				iv[i] = int64(v)
			}
			storeInts(o, iv)
		} else {
			storeFloats(o, res)
		}
		return []*Tensor{o}, nil
	}, nil
}

// buildFlexAttention implements ai.onnx.preview FlexAttention: 4-D
// Q, K, V (GQA by head repetition), scores = (Q*sqrt(scale))
// (K*sqrt(scale))^T, then the optional score_mod graph on the whole
// [B, H, L, S] score tensor, softmax, the optional prob_mod graph, and
// the product with V. Scores and probabilities are handed to the graphs
// in the input's type (float32 for float32 and the widened halves,
// float64 for float64); arithmetic is in float64.
func buildFlexAttention(n *ir.Node, c *compiler) (kernel, error) {
	scaleAttr := n.Attr("scale")
	scaleVal := float64(n.AttrFloat("scale", 0))
	mods := map[string]*plan{}
	for _, name := range []string{"score_mod", "prob_mod"} {
		a := n.Attr(name)
		if a == nil {
			continue
		}
		if a.Type != ir.AttrGraph || a.G == nil || len(a.G.Inputs) != 1 || len(a.G.Outputs) != 1 {
			return nil, fmt.Errorf("%s must be a graph with one input and one output", name)
		}
		p, err := c.compileGraph(a.G)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		mods[name] = p
	}
	// runMod passes vals (shape) through a mod graph as dt and reads the
	// result back.
	runMod := func(r *runState, name string, vals []float64, shape []int, dt ir.DataType) ([]float64, error) {
		p := mods[name]
		if p == nil {
			return vals, nil
		}
		t, err := f64Result(r, vals, shape, dt)
		if err != nil {
			return nil, err
		}
		outer := r.curFrame
		fr := &frame{vals: map[*ir.Value]*Tensor{p.g.Inputs[0]: t}, parent: outer}
		outs, err := r.runPlan(p, fr)
		r.curFrame = outer
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		o := outs[0]
		res, ok := o.Float64s()
		if !ok || !sameShape(o.Shape, shape) {
			return nil, fmt.Errorf("%s returned %v, want shape %v", name, o, shape)
		}
		return res, nil
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		q, k, v := in[0], in[1], in[2]
		if len(q.Shape) != 4 || len(k.Shape) != 4 || len(v.Shape) != 4 {
			return nil, fmt.Errorf("Q %v, K %v and V %v must be 4-D", q.Shape, k.Shape, v.Shape)
		}
		if k.DType != q.DType || v.DType != q.DType {
			return nil, fmt.Errorf("Q, K and V must have one element type, got %v, %v, %v", q.DType, k.DType, v.DType)
		}
		B, Hq, L, E := q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
		Hk, S, Dv := k.Shape[1], k.Shape[2], v.Shape[3]
		if k.Shape[0] != B || v.Shape[0] != B || v.Shape[1] != Hk || v.Shape[2] != S || k.Shape[3] != E {
			return nil, fmt.Errorf("incompatible Q %v, K %v, V %v", q.Shape, k.Shape, v.Shape)
		}
		if Hk == 0 || Hq%Hk != 0 {
			return nil, fmt.Errorf("%d query heads are not a multiple of %d key/value heads", Hq, Hk)
		}
		group := Hq / Hk
		scale := 1 / math.Sqrt(float64(E))
		if scaleAttr != nil {
			scale = scaleVal
		}
		sq := math.Sqrt(float64(float32(scale)))
		if q.DType == ir.Float {
			sq = float64(float32(sq))
		}
		qv, _ := q.Float64s()
		kv, _ := k.Float64s()
		vv, _ := v.Float64s()
		shape := []int{B, Hq, L, S}
		sv := make([]float64, B*Hq*L*S)
		r.parallelFor(B*Hq, func(lo, hi int) {
			for bh := lo; bh < hi; bh++ {
				b, h := bh/Hq, bh%Hq
				kBase := (b*Hk + h/group) * S * E
				for i := 0; i < L; i++ {
					qRow := qv[(bh*L+i)*E:][:E]
					for j := 0; j < S; j++ {
						kRow := kv[kBase+j*E:][:E]
						s := 0.0
						for d := range qRow {
							s += (qRow[d] * sq) * (kRow[d] * sq)
						}
						sv[(bh*L+i)*S+j] = s
					}
				}
			}
		})
		sv, err := runMod(r, "score_mod", sv, shape, q.DType)
		if err != nil {
			return nil, err
		}
		softmaxRows(sv, S, false)
		pv, err := runMod(r, "prob_mod", sv, shape, q.DType)
		if err != nil {
			return nil, err
		}
		ov := make([]float64, B*Hq*L*Dv)
		r.parallelFor(B*Hq, func(lo, hi int) {
			for bh := lo; bh < hi; bh++ {
				b, h := bh/Hq, bh%Hq
				vBase := (b*Hk + h/group) * S * Dv
				for i := 0; i < L; i++ {
					dst := ov[(bh*L+i)*Dv:][:Dv]
					for j := 0; j < S; j++ {
						p := pv[(bh*L+i)*S+j]
						for d := range dst {
							dst[d] += p * vv[vBase+j*Dv+d]
						}
					}
				}
			}
		})
		out, err := f64Result(r, ov, []int{B, Hq, L, Dv}, q.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
