package ir

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Rules for the linear-algebra and network ops: MatMul, Gemm, Einsum,
// normalizations, Attention, convolution and pooling.

// matmulShape applies MatMul's rules: 1-D operands are promoted and the
// added dimension removed again; batch dimensions broadcast.
func matmulShape(a, b Type) (Type, error) {
	if a.Rank() < 0 || b.Rank() < 0 {
		return unranked(Undefined), nil
	}
	if a.Rank() == 0 || b.Rank() == 0 {
		return Type{}, fmt.Errorf("MatMul operands must not be scalars")
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []Dim{Known(1), as[0]}
	}
	if len(bs) == 1 {
		bs = []Dim{bs[0], Known(1)}
	}
	ka, kb := as[len(as)-1], bs[len(bs)-2]
	if ka.Conflicts(kb) {
		return Type{}, fmt.Errorf("inner dimensions %d and %d differ", ka.Size, kb.Size)
	}
	batch, err := broadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return Type{}, fmt.Errorf("batch dimensions: %w", err)
	}
	out := batch
	if a.Rank() > 1 {
		out = append(out, as[len(as)-2])
	}
	if b.Rank() > 1 {
		out = append(out, bs[len(bs)-1])
	}
	if out == nil {
		out = []Dim{}
	}
	return shaped(Undefined, out), nil
}

// inferMatMul returns MatMul's rule with inputs a, b and the output element
// type taken from input elemFrom (or fixed when elemFrom < 0).
func inferMatMul(a, b int, elemFrom int, fixed DataType) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		t, err := matmulShape(c.Type(a), c.Type(b))
		if err != nil {
			return InferResult{}, err
		}
		if elemFrom >= 0 {
			t.Elem = c.Elem(elemFrom)
		} else {
			t.Elem = fixed
		}
		return one(t)
	}
}

// inferGemm: [M, N] from A (transA) and B (transB).
func inferGemm(c *InferContext) (InferResult, error) {
	a, b := c.Type(0), c.Type(1)
	if a.Rank() != 2 || b.Rank() != 2 {
		return one(shaped(c.Elem(0), unknownDims(2)))
	}
	m, ka := a.Shape[0], a.Shape[1]
	if c.AttrInt("transA", 0) != 0 {
		m, ka = ka, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if c.AttrInt("transB", 0) != 0 {
		kb, n = n, kb
	}
	if ka.Conflicts(kb) {
		return InferResult{}, fmt.Errorf("inner dimensions %d and %d differ", ka.Size, kb.Size)
	}
	return one(shaped(c.Elem(0), []Dim{m, n}))
}

// inferEinsum parses the equation ("ij,jk->ik", with "..." and the implicit
// output form) and gives each output label its dimension.
func inferEinsum(c *InferContext) (InferResult, error) {
	eq := strings.ReplaceAll(c.AttrString("equation", ""), " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	elem := elemOf(c, 0)
	if len(terms) != len(c.Node.Inputs) {
		return InferResult{}, fmt.Errorf("equation %q has %d operands, node has %d inputs", eq, len(terms), len(c.Node.Inputs))
	}
	dims := map[byte]Dim{}
	count := map[byte]int{}
	var ellipsis []Dim
	ellipsisKnown := true
	sawEllipsis := false
	for i, term := range terms {
		t := c.Type(i)
		pre, post, hasEll := strings.Cut(term, "...")
		nLabels := len(pre) + len(post)
		if t.Rank() < 0 {
			if hasEll {
				ellipsisKnown = false
				sawEllipsis = true
			}
			for _, l := range []byte(pre + post) {
				count[l]++
				if _, ok := dims[l]; !ok {
					dims[l] = UnknownDim()
				}
			}
			continue
		}
		if (!hasEll && t.Rank() != nLabels) || (hasEll && t.Rank() < nLabels) {
			return InferResult{}, fmt.Errorf("operand %d term %q does not fit rank %d", i, term, t.Rank())
		}
		labelDims := t.Shape[:len(pre)]
		var ell []Dim
		if hasEll {
			sawEllipsis = true
			ell = t.Shape[len(pre) : t.Rank()-len(post)]
			labelDims = append(append([]Dim(nil), labelDims...), t.Shape[t.Rank()-len(post):]...)
			b, err := broadcastShapes(ellipsis, ell)
			if err != nil {
				return InferResult{}, fmt.Errorf("ellipsis dimensions: %w", err)
			}
			ellipsis = b
		}
		for k, l := range []byte(pre + post) {
			count[l]++
			d := labelDims[k]
			if old, ok := dims[l]; ok {
				// Repeated labels must agree, except that size 1
				// broadcasts in some runtimes: be conservative.
				if old.IsKnown() && d.IsKnown() && old.Size != d.Size && old.Size != 1 && d.Size != 1 {
					return InferResult{}, fmt.Errorf("label %q has sizes %d and %d", l, old.Size, d.Size)
				}
				if !old.SameAs(d) {
					dims[l] = UnknownDim()
				}
				continue
			}
			dims[l] = d
		}
	}
	if !explicit {
		var labels []byte
		for l, n := range count {
			if n == 1 {
				labels = append(labels, l)
			}
		}
		sort.Slice(labels, func(i, j int) bool { return labels[i] < labels[j] })
		rhs = string(labels)
		if sawEllipsis {
			rhs = "..." + rhs
		}
	}
	pre, post, hasEll := strings.Cut(rhs, "...")
	var out []Dim
	for _, l := range []byte(pre) {
		d, ok := dims[l]
		if !ok {
			return InferResult{}, fmt.Errorf("output label %q does not appear in the inputs", l)
		}
		out = append(out, d)
	}
	if hasEll {
		if !ellipsisKnown {
			return one(unranked(elem))
		}
		out = append(out, ellipsis...)
	}
	for _, l := range []byte(post) {
		d, ok := dims[l]
		if !ok {
			return InferResult{}, fmt.Errorf("output label %q does not appear in the inputs", l)
		}
		out = append(out, d)
	}
	if out == nil {
		out = []Dim{}
	}
	return one(shaped(elem, out))
}

// inferLayerNorm: Y is X; Mean and InvStdDev keep the dimensions before
// axis and have size 1 from it.
func inferLayerNorm(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	y := tensorType(x)
	// Mean and InvStdDev are computed in stash_type; runtimes differ on
	// whether they are returned in it or in X's type, so a difference
	// leaves the element type open.
	stash := DataType(c.AttrInt("stash_type", int64(Float)))
	if stash != x.Elem {
		stash = Undefined
	}
	if x.Rank() < 0 {
		return InferResult{Types: []Type{y, unranked(stash), unranked(stash)}}, nil
	}
	axis, ok := normAxis(c.AttrInt("axis", -1), x.Rank())
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", -1), x.Rank())
	}
	stat := append([]Dim(nil), x.Shape[:axis]...)
	for range x.Rank() - axis {
		stat = append(stat, Known(1))
	}
	return InferResult{Types: []Type{y, shaped(stash, stat), shaped(stash, slices.Clone(stat))}}, nil
}

// inferAttention is opset 23's Attention: Q, K, V either 3-D [B, S,
// heads*head_size] (with q_num_heads/kv_num_heads) or 4-D [B, heads, S,
// head_size]; optional past K/V are 4-D. Outputs: Y in Q's layout,
// present K/V [B, kv_heads, past+S_kv, head_size], and the QK product
// [B, q_heads, S_q, past+S_kv].
func inferAttention(qHeadsAttr, kvHeadsAttr string) InferFunc {
	return func(c *InferContext) (InferResult, error) { return attentionTypes(c, qHeadsAttr, kvHeadsAttr) }
}

func attentionTypes(c *InferContext, qHeadsAttr, kvHeadsAttr string) (InferResult, error) {
	q, k, v := c.Type(0), c.Type(1), c.Type(2)
	elemQ, elemV := c.Elem(0), c.Elem(2)
	res := InferResult{Types: []Type{unranked(elemQ), unranked(elemQ), unranked(elemV), unranked(elemQ)}}
	if q.Rank() < 0 || k.Rank() < 0 || v.Rank() < 0 {
		return res, nil
	}
	if q.Rank() != k.Rank() || q.Rank() != v.Rank() || (q.Rank() != 3 && q.Rank() != 4) {
		return res, nil
	}
	var b, sq, skv, qHeads, kvHeads, headQK, headV Dim
	if q.Rank() == 4 {
		b, qHeads, sq, headQK = q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
		kvHeads, skv = k.Shape[1], k.Shape[2]
		headV = v.Shape[3]
		if headQK.Conflicts(k.Shape[3]) {
			return InferResult{}, fmt.Errorf("Q head size %d differs from K's %d", headQK.Size, k.Shape[3].Size)
		}
	} else {
		b, sq, skv = q.Shape[0], q.Shape[1], k.Shape[1]
		qn := c.AttrInt(qHeadsAttr, 0)
		kvn := c.AttrInt(kvHeadsAttr, qn)
		if qn <= 0 || kvn <= 0 {
			return res, nil
		}
		qHeads, kvHeads = Known(qn), Known(kvn)
		headQK = symDiv(SymIntOf(q.Shape[2]), KnownInt(qn)).Dim()
		headV = symDiv(SymIntOf(v.Shape[2]), KnownInt(kvn)).Dim()
	}
	total := skv
	if c.Has(4) {
		if p := c.Type(4); p.Rank() == 4 {
			total = dimSum(p.Shape[2], skv)
		} else {
			total = UnknownDim()
		}
	}
	if q.Rank() == 4 {
		res.Types[0] = shaped(elemQ, []Dim{b, qHeads, sq, headV})
	} else {
		res.Types[0] = shaped(elemQ, []Dim{b, sq, dimMul(qHeads, headV)})
	}
	res.Types[1] = shaped(elemQ, []Dim{b, kvHeads, total, headQK})
	res.Types[2] = shaped(elemV, []Dim{b, kvHeads, total, headV})
	res.Types[3] = shaped(elemQ, []Dim{b, qHeads, sq, total})
	return res, nil
}

// convPads returns the begin and end padding of each spatial axis, or
// false when auto_pad makes them depend on sizes (handled by the caller).
func convPads(c *InferContext, n int) ([]int64, bool) {
	p, ok := c.AttrInts("pads")
	if !ok {
		return make([]int64, 2*n), true
	}
	if len(p) != 2*n {
		return nil, false
	}
	return p, true
}

func attrIntsOr(c *InferContext, name string, n int, def int64) ([]int64, bool) {
	v, ok := c.AttrInts(name)
	if !ok {
		v = make([]int64, n)
		for i := range v {
			v[i] = def
		}
		return v, true
	}
	return v, len(v) == n
}

// windowOut computes one spatial output size of a convolution or pooling
// window, or an unknown dimension.
func windowOut(c *InferContext, in Dim, k, stride, dil, padB, padE int64, ceil bool) Dim {
	if !in.IsKnown() || stride <= 0 {
		return UnknownDim()
	}
	switch c.AttrString("auto_pad", "NOTSET") {
	case "SAME_UPPER", "SAME_LOWER":
		return Known((in.Size + stride - 1) / stride)
	case "VALID":
		padB, padE = 0, 0
	case "NOTSET", "":
	default:
		return UnknownDim()
	}
	eff := dil*(k-1) + 1
	num := in.Size + padB + padE - eff
	if num < 0 {
		return UnknownDim()
	}
	if ceil && num%stride != 0 {
		// ceil_mode's last-window rule differs between versions and
		// runtimes; leave it open.
		return UnknownDim()
	}
	return Known(num/stride + 1)
}

// inferConvLike covers Conv, ConvInteger, QLinearConv (weights at wIdx)
// and the pooling ops (wIdx < 0: kernel_shape attribute, channels kept).
func inferConvLike(wIdx int, elem func(*InferContext) DataType, pool bool) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		x := c.Type(0)
		e := elem(c)
		if x.Rank() < 3 {
			if x.Rank() < 0 {
				return one(unranked(e))
			}
			return unknownResult()
		}
		n := x.Rank() - 2
		outC := x.Shape[1]
		kernel, ok := c.AttrInts("kernel_shape")
		if wIdx >= 0 {
			w := c.Type(wIdx)
			outC = UnknownDim()
			if w.Rank() == x.Rank() {
				outC = w.Shape[0]
				if !ok {
					kernel = make([]int64, n)
					ok = true
					for i, d := range w.Shape[2:] {
						if !d.IsKnown() {
							ok = false
						}
						kernel[i] = d.Size
					}
				}
			}
		}
		out := []Dim{x.Shape[0], outC}
		strides, okS := attrIntsOr(c, "strides", n, 1)
		dils, okD := attrIntsOr(c, "dilations", n, 1)
		pads, okP := convPads(c, n)
		ceil := pool && c.AttrInt("ceil_mode", 0) != 0
		for i := 0; i < n; i++ {
			if !ok || !okS || !okD || !okP || len(kernel) != n {
				out = append(out, UnknownDim())
				continue
			}
			out = append(out, windowOut(c, x.Shape[2+i], kernel[i], strides[i], dils[i], pads[i], pads[i+n], ceil))
		}
		res := InferResult{Types: []Type{shaped(e, out)}}
		if pool && c.NumOutputs() > 1 {
			res.Types = append(res.Types, shaped(Int64, slices.Clone(out)))
		}
		return res, nil
	}
}

// inferConvTranspose: [N, W[1]*group, ...] with the transposed window
// formula or output_shape.
func inferConvTranspose(c *InferContext) (InferResult, error) {
	x, w := c.Type(0), c.Type(1)
	e := c.Elem(0)
	if x.Rank() < 3 {
		return one(unranked(e))
	}
	n := x.Rank() - 2
	outC := UnknownDim()
	kernel, ok := c.AttrInts("kernel_shape")
	if w.Rank() == x.Rank() {
		outC = dimMul(w.Shape[1], Known(c.AttrInt("group", 1)))
		if !ok {
			kernel = make([]int64, n)
			ok = true
			for i, d := range w.Shape[2:] {
				if !d.IsKnown() {
					ok = false
				}
				kernel[i] = d.Size
			}
		}
	}
	out := []Dim{x.Shape[0], outC}
	if os, has := c.AttrInts("output_shape"); has && len(os) >= n {
		for _, s := range os[len(os)-n:] {
			out = append(out, Known(s))
		}
		return one(shaped(e, out))
	}
	strides, okS := attrIntsOr(c, "strides", n, 1)
	dils, okD := attrIntsOr(c, "dilations", n, 1)
	outPad, okO := attrIntsOr(c, "output_padding", n, 0)
	pads, okP := convPads(c, n)
	autoPad := c.AttrString("auto_pad", "NOTSET")
	for i := 0; i < n; i++ {
		in := x.Shape[2+i]
		if !ok || !okS || !okD || !okO || !okP || len(kernel) != n || !in.IsKnown() {
			out = append(out, UnknownDim())
			continue
		}
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out = append(out, Known(in.Size*strides[i]))
		case "NOTSET", "", "VALID":
			pb, pe := pads[i], pads[i+n]
			if autoPad == "VALID" {
				pb, pe = 0, 0
			}
			out = append(out, Known(strides[i]*(in.Size-1)+outPad[i]+(kernel[i]-1)*dils[i]+1-pb-pe))
		default:
			out = append(out, UnknownDim())
		}
	}
	return one(shaped(e, out))
}

// inferGlobalPool: [N, C, 1, ...].
func inferGlobalPool(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	if x.Rank() < 2 {
		return one(unranked(c.Elem(0)))
	}
	out := []Dim{x.Shape[0], x.Shape[1]}
	for range x.Rank() - 2 {
		out = append(out, Known(1))
	}
	return one(shaped(c.Elem(0), out))
}

// inferBatchNorm: Y is X; in training mode (opset 14+) the running mean and
// variance have the types of the mean and variance inputs.
func inferBatchNorm(c *InferContext) (InferResult, error) {
	res := InferResult{Types: []Type{tensorType(c.Type(0))}}
	if c.AtLeast(14) && c.NumOutputs() == 3 {
		res.Types = append(res.Types, tensorType(c.Type(3)), tensorType(c.Type(4)))
	}
	return res, nil
}

// inferIf: each output takes what both branches agree on.
func inferIf(c *InferContext) (InferResult, error) {
	th, el := c.Node.Attr("then_branch"), c.Node.Attr("else_branch")
	if th == nil || el == nil || th.G == nil || el.G == nil {
		return unknownResult()
	}
	n := c.NumOutputs()
	if len(th.G.Outputs) != n || len(el.G.Outputs) != n {
		return InferResult{}, fmt.Errorf("branches have %d and %d outputs, node has %d", len(th.G.Outputs), len(el.G.Outputs), n)
	}
	res := InferResult{Types: make([]Type, n)}
	for i := range n {
		res.Types[i] = commonType(th.G.Outputs[i].Type, el.G.Outputs[i].Type)
	}
	return res, nil
}

// commonType returns what two types (of values that may be either) share:
// their kind, element type when equal, rank when equal, and each dimension
// that is the same in both.
func commonType(a, b Type) Type {
	if a.Kind == KindUnknown || b.Kind == KindUnknown || a.Kind != b.Kind {
		return Type{}
	}
	out := Type{Kind: a.Kind}
	if a.Elem == b.Elem {
		out.Elem = a.Elem
	}
	if a.HasShape && b.HasShape && len(a.Shape) == len(b.Shape) {
		out.HasShape = true
		out.Shape = make([]Dim, len(a.Shape))
		for i := range a.Shape {
			if a.Shape[i].SameAs(b.Shape[i]) {
				out.Shape[i] = Dim{Size: a.Shape[i].Size, Sym: a.Shape[i].Sym}
			} else {
				out.Shape[i] = UnknownDim()
			}
		}
	}
	if a.Inner != nil && b.Inner != nil {
		in := commonType(*a.Inner, *b.Inner)
		out.Inner = &in
	}
	return out
}

// inferLoop: loop-carried outputs take what the initial value and the body
// output agree on; scan outputs get a leading dimension of unknown length.
func inferLoop(c *InferContext) (InferResult, error) {
	body := c.Node.Attr("body")
	if body == nil || body.G == nil {
		return unknownResult()
	}
	g := body.G
	nCarried := len(c.Node.Inputs) - 2
	if nCarried < 0 || len(g.Outputs) < 1+nCarried {
		return unknownResult()
	}
	res := InferResult{Types: make([]Type, c.NumOutputs())}
	for i := range res.Types {
		switch {
		case i < nCarried:
			res.Types[i] = commonType(c.Type(2+i), g.Outputs[1+i].Type)
		case 1+i < len(g.Outputs):
			t := g.Outputs[1+i].Type
			if t.Kind == KindTensor && t.HasShape {
				res.Types[i] = shaped(t.Elem, append([]Dim{UnknownDim()}, t.Shape...))
			} else if t.Kind == KindTensor {
				res.Types[i] = unranked(t.Elem)
			}
		}
	}
	return res, nil
}

// seedLoopBody gives a Loop body's inputs the element types (not the
// shapes, which may change between iterations) of the node's inputs where
// the body does not declare them.
func seedLoopBody(n *Node, g *Graph) {
	for i, in := range g.Inputs {
		if in == nil || in.Type.Kind != KindUnknown {
			continue
		}
		switch {
		case i == 0:
			in.Type = TensorOf(Int64)
		case i == 1:
			in.Type = TensorOf(Bool)
		case i < len(n.Inputs) && n.Inputs[i] != nil && n.Inputs[i].Type.Kind == KindTensor:
			in.Type = unranked(n.Inputs[i].Type.Elem)
		}
	}
}

// inferScan (opset 9+): state outputs take what the initial value and the
// body agree on; scan outputs insert the sequence length at their axis.
func inferScan(c *InferContext) (InferResult, error) {
	if !c.AtLeast(9) {
		return unknownResult()
	}
	body := c.Node.Attr("body")
	if body == nil || body.G == nil {
		return unknownResult()
	}
	g := body.G
	m := int(c.AttrInt("num_scan_inputs", 0))
	nState := len(c.Node.Inputs) - m
	if m <= 0 || nState < 0 || len(g.Outputs) != c.NumOutputs() {
		return unknownResult()
	}
	inAxes, _ := c.AttrInts("scan_input_axes")
	seqLen := UnknownDim()
	if t := c.Type(nState); t.Rank() > 0 {
		a := int64(0)
		if len(inAxes) > 0 {
			a = inAxes[0]
		}
		if i, ok := normAxis(a, t.Rank()); ok {
			seqLen = t.Shape[i]
		}
	}
	outAxes, _ := c.AttrInts("scan_output_axes")
	res := InferResult{Types: make([]Type, c.NumOutputs())}
	for i := range res.Types {
		t := g.Outputs[i].Type
		if i < nState {
			res.Types[i] = commonType(c.Type(i), t)
			continue
		}
		if t.Kind != KindTensor || !t.HasShape {
			continue
		}
		a := int64(0)
		if k := i - nState; k < len(outAxes) {
			a = outAxes[k]
		}
		ax, ok := normAxis(a, t.Rank()+1)
		if !ok {
			continue
		}
		dims := append([]Dim(nil), t.Shape[:ax]...)
		dims = append(dims, seqLen)
		dims = append(dims, t.Shape[ax:]...)
		res.Types[i] = shaped(t.Elem, dims)
	}
	return res, nil
}

// seedScanBody gives a Scan body's undeclared inputs the element types of
// the node's inputs.
func seedScanBody(n *Node, g *Graph, opset int64) {
	if opset != 0 && opset < 9 {
		return
	}
	for i, in := range g.Inputs {
		if in == nil || in.Type.Kind != KindUnknown || i >= len(n.Inputs) || n.Inputs[i] == nil {
			continue
		}
		if t := n.Inputs[i].Type; t.Kind == KindTensor {
			in.Type = unranked(t.Elem)
		}
	}
}

// inferPackTokens (tfc): packed [T, ...] with T the unknown token count,
// offsets [B+1], index [T].
func inferPackTokens(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	tokens := UnknownDim()
	packed := unranked(c.Elem(0))
	offsets := shaped(Int64, []Dim{UnknownDim()})
	if x.Rank() >= 2 {
		packed = shaped(c.Elem(0), append([]Dim{tokens}, x.Shape[2:]...))
		offsets = shaped(Int64, []Dim{dimSum(x.Shape[0], Known(1))})
	}
	return InferResult{Types: []Type{packed, offsets, shaped(Int64, []Dim{tokens})}}, nil
}

// inferUnpackTokens (tfc): inputs packed [T, ...], offsets [B+1], index
// [T], and optionally the original padded tensor [B, S, ...] whose batch
// and sequence dimensions the output takes.
func inferUnpackTokens(c *InferContext) (InferResult, error) {
	p := c.Type(0)
	if p.Rank() < 1 {
		return one(unranked(c.Elem(0)))
	}
	b, s := UnknownDim(), UnknownDim()
	if o := c.Type(1); o.Rank() == 1 {
		b = symAdd(SymIntOf(o.Shape[0]), KnownInt(1), -1).Dim()
	}
	if c.Has(3) && c.Rank(3) >= 2 {
		b, s = c.Type(3).Shape[0], c.Type(3).Shape[1]
	}
	return one(shaped(c.Elem(0), append([]Dim{b, s}, p.Shape[1:]...)))
}

// inferSkipLayerNorm returns the rule of a skip layer norm whose output 0,
// and the optional input+skip(+bias) sum at output sumIdx, have X's type.
func inferSkipLayerNorm(sumIdx int) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		x := tensorType(c.Type(0))
		res := InferResult{Types: make([]Type, c.NumOutputs())}
		if len(res.Types) > 0 {
			res.Types[0] = x
		}
		if sumIdx < len(res.Types) {
			res.Types[sumIdx] = x.Clone()
		}
		return res, nil
	}
}

// inferRNN covers RNN, GRU and LSTM: Y [seq, dirs, batch, hidden] and
// Y_h (and LSTM's Y_c) [dirs, batch, hidden]; with layout 1 the batch
// comes first.
func inferRNN(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	e := c.Elem(0)
	res := InferResult{Types: make([]Type, c.NumOutputs())}
	for i := range res.Types {
		res.Types[i] = unranked(e)
	}
	if x.Rank() != 3 {
		return res, nil
	}
	hidden := UnknownDim()
	if h := c.AttrInt("hidden_size", 0); h > 0 {
		hidden = Known(h)
	}
	dirs := Known(1)
	if c.AttrString("direction", "forward") == "bidirectional" {
		dirs = Known(2)
	}
	seq, batch := x.Shape[0], x.Shape[1]
	layout := c.AttrInt("layout", 0)
	if layout != 0 {
		seq, batch = x.Shape[1], x.Shape[0]
	}
	for i := range res.Types {
		switch {
		case i == 0 && layout == 0:
			res.Types[i] = shaped(e, []Dim{seq, dirs, batch, hidden})
		case i == 0:
			res.Types[i] = shaped(e, []Dim{batch, seq, dirs, hidden})
		case layout == 0:
			res.Types[i] = shaped(e, []Dim{dirs, batch, hidden})
		default:
			res.Types[i] = shaped(e, []Dim{batch, dirs, hidden})
		}
	}
	return res, nil
}

// inferDet: [..., M, M] to [...].
func inferDet(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	if x.Rank() < 2 {
		return one(unranked(c.Elem(0)))
	}
	r := x.Rank()
	if x.Shape[r-1].Conflicts(x.Shape[r-2]) {
		return InferResult{}, fmt.Errorf("matrices are %v×%v, not square", x.Shape[r-2], x.Shape[r-1])
	}
	return one(shaped(c.Elem(0), slices.Clone(x.Shape[:r-2])))
}

// inferUnique: Y is 1-D (or X's rank with the axis unknown), the index
// outputs 1-D int64, all of unknown length.
func inferUnique(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	y := shaped(c.Elem(0), []Dim{UnknownDim()})
	if a := c.Node.Attr("axis"); a != nil && a.Type == AttrInt {
		y = unranked(c.Elem(0))
		if x.Rank() >= 0 {
			if i, ok := normAxis(a.I, x.Rank()); ok {
				d := slices.Clone(x.Shape)
				d[i] = UnknownDim()
				y = shaped(c.Elem(0), d)
			}
		}
	}
	res := InferResult{Types: []Type{y}}
	for i := 1; i < c.NumOutputs(); i++ {
		res.Types = append(res.Types, shaped(Int64, []Dim{UnknownDim()}))
	}
	// inverse_indices (output 2) has one entry per element of X along the
	// axis, or per element when flattened.
	if c.NumOutputs() > 2 {
		if a := c.Node.Attr("axis"); a != nil && a.Type == AttrInt && x.Rank() >= 0 {
			if i, ok := normAxis(a.I, x.Rank()); ok {
				res.Types[2] = shaped(Int64, []Dim{x.Shape[i]})
			}
		} else if x.Rank() >= 0 {
			if p, ok := dimProduct(x.Shape); ok {
				res.Types[2] = shaped(Int64, []Dim{p.symInt().Dim()})
			}
		}
	}
	return res, nil
}
