package passes

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// fuse-attention turns scaled dot-product attention into tfc.Attention
// (docs/fusion.md, "Attention fusion"). The op works after the head split:
// Q [B,Hq,Sq,D], K [B,Hkv,Skv,D], V [B,Hkv,Skv,Dv] -> Y [B,Hq,Sq,Dv], so
// that both exporters' head splitting, rotary embedding, past-K/V Concat
// and head merging stay outside it as ordinary ops, and a rewrite only
// replaces what lies between the projections and the head merge.

func init() {
	register(&Pass{
		Name:      "fuse-attention",
		Summary:   "scaled dot-product attention (QK^T, scale, additive or boolean mask, Softmax, times V; ONNX opset-23 Attention) into tfc.Attention, folding GQA/MQA K/V repetition",
		Semantics: WithinRounding,
		Options: []Option{
			{Name: "fold-gqa", Kind: BoolOption, Default: true, Help: "read K and V before a repeat_kv (Unsqueeze, Expand, Reshape) and set kv_num_heads, instead of attending over the repeated heads"},
		},
		Run: runFuseAttention,
	})
}

// attentionDomainVersion is the version of the tfc domain the pass
// imports when it creates tfc.Attention.
const attentionDomainVersion = 1

func runFuseAttention(ctx *Context, m *ir.Model, opts Values) (Stats, error) {
	if ctx == nil {
		ctx = &Context{}
	}
	rs := attentionRules(m.OpsetVersion(""), opts.Bool("fold-gqa"))
	// The rules anchor at MatMul and Attention nodes; most MatMuls are
	// projections, so their explanations are filtered down to the ones
	// about a Softmax (see explainSoftmaxes).
	inner := &Context{Ctx: ctx.Ctx, pass: ctx.pass}
	if ctx.Explain != nil {
		inner.Explain = &Explanations{}
	}
	var st Stats
	if err := rs.Apply(inner, m.Graph, &st); err != nil {
		return st, err
	}
	fused := st.Rewrites[ruleAttention] + st.Rewrites[ruleAttentionOnnx]
	st.CountFused("Attention", fused)
	if fused > 0 && m.OpsetVersion("tfc") == 0 {
		m.Opsets = append(m.Opsets, ir.OpsetID{Domain: "tfc", Version: attentionDomainVersion})
	}
	if ctx.Explain != nil {
		ctx.Explain.Items = append(ctx.Explain.Items, explainSoftmaxes(ctx.pass, m.Graph, inner.Explain.Items)...)
	}
	return st, nil
}

// explainSoftmaxes keeps, for each Softmax left in the graph, the
// explanation of the MatMul or Einsum its probabilities feed (through at
// most a NaN-to-zero Where), and says so when there is none; and the
// explanations of ONNX Attention nodes left unconverted.
func explainSoftmaxes(pass string, g *ir.Graph, items []Explanation) []Explanation {
	byAnchor := map[string]Explanation{}
	for _, e := range items {
		if e.Rule == ruleEinsumShape {
			continue
		}
		if e.Rule == ruleAttention {
			byAnchor[e.Anchor] = e
		} else {
			// Attention nodes the op23 rule could not convert are
			// attention left unfused too.
			byAnchor["\x00"+e.Anchor] = e
		}
	}
	var out []Explanation
	g.Walk(func(n *ir.Node) {
		if n.Domain == "" && n.Op == "Attention" {
			if e, ok := byAnchor["\x00"+nodeLabel(n)]; ok {
				out = append(out, e)
			}
			return
		}
		if n.Domain != "" || n.Op != "Softmax" || n.Outputs[0] == nil {
			return
		}
		var users []string
		var found *Explanation
		var visit func(v *ir.Value, depth int)
		visit = func(v *ir.Value, depth int) {
			for _, u := range v.Uses() {
				users = append(users, u.Node.Op+" "+nodeLabel(u.Node))
				if e, ok := byAnchor[nodeLabel(u.Node)]; ok && found == nil && (u.Node.Op == "MatMul" || u.Node.Op == "Einsum") {
					found = &e
				}
				if depth > 0 && (u.Node.Op == "Where" || u.Node.Op == "IsNaN" || u.Node.Op == "Cast") && u.Node.Outputs[0] != nil {
					visit(u.Node.Outputs[0], depth-1)
				}
			}
		}
		visit(n.Outputs[0], 2)
		e := Explanation{Pass: pass, Rule: ruleAttention, Anchor: nodeLabel(n)}
		if found != nil {
			e.Reason = "at " + found.Anchor + ": " + found.Reason
			e.Nodes = found.Nodes
		} else {
			e.Reason = "the Softmax output does not reach a MatMul or Einsum with V; it is used by " + strings.Join(users, ", ")
			if len(users) == 0 {
				e.Reason = "the Softmax output is unused"
			}
		}
		out = append(out, e)
	})
	return out
}

const (
	ruleAttention     = "attention"
	ruleAttentionOnnx = "onnx-attention"
	ruleEinsumShape   = "einsum-shape"
)

// oneElementConst holds for a one-element float constant (a scale).
var oneElementConst = Cond{"is a one-element float constant", func(_ *Match, v *ir.Value) bool {
	_, ok := constFloat(v)
	return ok
}}

// constFloat reads a one-element float32 or float64 constant.
func constFloat(v *ir.Value) (float64, bool) {
	if !isFixedConst(v) || v.Const == nil || !v.Const.HasData() || v.Const.NumElements() != 1 {
		return 0, false
	}
	switch v.Const.DType {
	case ir.Float, ir.Double:
		return tensorScalarFloat(v.Const)
	}
	return 0, false
}

// tensorScalarFloat reads the one element of a float32 or float64 tensor.
func tensorScalarFloat(t *ir.Tensor) (float64, bool) {
	b := t.Bytes()
	switch {
	case t.DType == ir.Float && len(b) == 4:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), true
	case t.DType == ir.Double && len(b) == 8:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), true
	}
	return 0, false
}

// attentionPattern is the decomposed form both exporters write, eager and
// sdpa, and the Einsum form of XLNet, Funnel and Transformer-XL:
//
//	Y  = MatMul(P, V) | Einsum(P, V)                                  (PV; Einsum in any layout)
//	P  = Softmax(S) | Where(IsNaN(Softmax(S)), 0, Softmax(S))         (sdpa NaN guard)
//	S  = Sub(A, negbias) | A                                          (XLNet, Funnel: - 1e30 * mask)
//	A  = Add(Add(F, bias2), bias1) | Add(F, bias1) | F                (masks, position biases)
//	F  = Where(keep, T, fill) | Where(drop, fill, T) | T              (masked_fill)
//	T  = Div(QK, c) | Mul(QK, c) | Mul(Add(QK, prebias), c) | QK      (scale on the scores)
//	QK = MatMul([Mul(Q, c)], [Mul(Kt, c)]) | Einsum(Q, K)             (sdpa: sqrt(scale) on Q and K)
//	Kt = [Transpose(K)]                                               (K^T)
//
// Brackets mark optional nodes; commutative operands match in either
// order. The rule's checks require the Softmax to normalize the key axis
// of the scores and a PV Einsum to contract it. Rotary embedding, GQA
// repetition and past-K/V Concat are inputs: the rewrite looks through
// the repetition, the rest stays outside the op.
func attentionPattern(opset int64) *Pattern {
	scale := func(name string) *Pattern { return Any(name).If(oneElementConst) }
	q := Optional(Op("Mul", Any("q"), scale("q_scale")))
	kTransposed := Optional(Op("Transpose", Any("k_src"))).Bind("kT")
	kSide := Optional(Op("Mul", kTransposed, scale("k_scale")))
	qk := OneOf(
		Op("MatMul", q, kSide),
		// XLNet, Funnel: Einsum over [i,b,n,d]-like layouts.
		Op("Einsum", Any("q"), Any("k_einsum")).WhereNode("is a QK^T contraction of [b,n,i,d] and [b,n,j,d] in any layout", func(_ *Match, n *ir.Node) bool {
			_, _, _, ok := qkEinsumPerms(n.AttrString("equation", ""))
			return ok
		}),
	).Bind("qk").If(RankIs(4))
	scaled := OneOf(
		Op("Div", qk, scale("s_div")),
		Op("Mul", qk, scale("s_mul")),
		// XLNet: (content + position scores) * scale.
		Op("Mul", Op("Add", qk, Any("prebias")), scale("s_mul")),
		qk,
	).Bind("scaled")
	fill := Any("fill").If(oneElementConst)
	filled := OneOf(
		Op("Where", Any("keep"), scaled, fill),
		Op("Where", Any("drop"), fill, scaled),
		scaled,
	)
	summed := OneOf(
		Op("Add", Op("Add", filled, Any("bias2")), Any("bias1")),
		Op("Add", filled, Any("bias1")),
		filled,
	)
	masked := OneOf(
		// XLNet, Funnel: scores - 1e30 * mask.
		Op("Sub", summed, Any("negbias")),
		summed,
	)
	softmax := Op("Softmax", masked).Bind("probs")
	probs := OneOf(
		Op("Where", Op("IsNaN", softmax), scale("nan_fill").If(ScalarNear(0, 0)), Any("probs")),
		softmax,
	)
	return OneOf(
		Op("MatMul", probs, Any("v").If(RankIs(4))),
		Op("Einsum", probs, Any("v").If(RankIs(4))),
	)
}

// einsumLabels splits a two-operand Einsum equation with explicit output
// and four single-letter labels per operand ("ibnd,jbnd->bnij").
func einsumLabels(eq string) (a, b, out string, ok bool) {
	eq = strings.ReplaceAll(eq, " ", "")
	ins, out, found := strings.Cut(eq, "->")
	a, b, two := strings.Cut(ins, ",")
	if !found || !two || strings.Contains(eq, ".") || len(a) != 4 || len(b) != 4 || len(out) != 4 {
		return "", "", "", false
	}
	for _, s := range []string{a, b, out} {
		for i := range s {
			if strings.Count(s, s[i:i+1]) != 1 {
				return "", "", "", false
			}
		}
	}
	return a, b, out, true
}

// permOf returns, for each label of want, its position in have.
func permOf(have string, want ...byte) ([]int64, bool) {
	perm := make([]int64, len(want))
	for i, c := range want {
		j := strings.IndexByte(have, c)
		if j < 0 {
			return nil, false
		}
		perm[i] = int64(j)
	}
	return perm, true
}

// qkEinsumPerms reads a QK^T Einsum: Q's labels are b, n (shared with
// K and kept), i (Q only), d (summed); K's are b, n, j (K only), d. It
// returns the perms that bring Q to [b,n,i,d], K to [b,n,j,d] and the
// scores (the Einsum's output, in any order) to [b,n,i,j]. b and n are
// told apart by their order in Q's labels.
func qkEinsumPerms(eq string) (qPerm, kPerm, sPerm []int64, ok bool) {
	q, k, o, ok := einsumLabels(eq)
	if !ok {
		return nil, nil, nil, false
	}
	in := func(s string, c byte) bool { return strings.IndexByte(s, c) >= 0 }
	var shared []byte
	var i, j, d byte
	for x := range 4 {
		c := q[x]
		switch {
		case in(k, c) && in(o, c):
			shared = append(shared, c)
		case in(k, c):
			d = c
		case in(o, c):
			i = c
		}
	}
	for x := range 4 {
		if c := k[x]; !in(q, c) && in(o, c) {
			j = c
		}
	}
	if len(shared) != 2 || i == 0 || j == 0 || d == 0 {
		return nil, nil, nil, false
	}
	b, n := shared[0], shared[1]
	qPerm, ok1 := permOf(q, b, n, i, d)
	kPerm, ok2 := permOf(k, b, n, j, d)
	sPerm, ok3 := permOf(o, b, n, i, j)
	return qPerm, kPerm, sPerm, ok1 && ok2 && ok3
}

// pvEinsumPerms reads a PV Einsum whose first operand is the
// probabilities, laid out so that sPerm takes them to [b,n,i,j]. It
// returns the perm that brings V to [b,n,j,e] and the one that takes
// tfc.Attention's [b,n,i,e] to the Einsum's output layout.
func pvEinsumPerms(eq string, sPerm []int64) (vPerm, yPerm []int64, ok bool) {
	p, v, o, ok := einsumLabels(eq)
	if !ok || len(sPerm) != 4 {
		return nil, nil, false
	}
	in := func(s string, c byte) bool { return strings.IndexByte(s, c) >= 0 }
	b, n, i, j := p[sPerm[0]], p[sPerm[1]], p[sPerm[2]], p[sPerm[3]]
	if !in(v, b) || !in(o, b) || !in(v, n) || !in(o, n) || in(v, i) || !in(o, i) || !in(v, j) || in(o, j) {
		return nil, nil, false
	}
	var e byte
	for x := range 4 {
		if c := v[x]; !in(p, c) {
			e = c
		}
	}
	if e == 0 || !in(o, e) {
		return nil, nil, false
	}
	vPerm, ok1 := permOf(v, b, n, j, e)
	yPerm, ok2 := permOf(string([]byte{b, n, i, e}), o[0], o[1], o[2], o[3])
	return vPerm, yPerm, ok1 && ok2
}

// scoresPerm returns the perm that takes the matched scores to [b,n,i,j]:
// the identity after a MatMul, the Einsum's own layout otherwise.
func scoresPerm(m *Match) ([]int64, bool) {
	if n := m.Node("qk"); n != nil && n.Op == "Einsum" {
		_, _, sPerm, ok := qkEinsumPerms(n.AttrString("equation", ""))
		return sPerm, ok
	}
	return []int64{0, 1, 2, 3}, true
}

// transposeIfNeeded returns x transposed by perm, or x for the identity.
func transposeIfNeeded(rw *Rewriter, x *ir.Value, perm []int64) *ir.Value {
	if slices.Equal(perm, []int64{0, 1, 2, 3}) {
		return x
	}
	t := rw.Op("Transpose", x, ir.IntsAttr("perm", perm...))
	t.Type = transposedType(x.Type, perm)
	return t
}

// softmaxOnAxis reports whether a Softmax over a 4-D input normalizes
// axis want alone. Before opset 13 Softmax flattens to 2-D at its axis
// (default 1), which is the same only at the last axis.
func softmaxOnAxis(n *ir.Node, opset int64, want int64) bool {
	rank := int64(n.Inputs[0].Type.Rank())
	if rank != 4 {
		return false
	}
	def := int64(-1)
	if opset != 0 && opset < 13 {
		def = 1
	}
	axis := n.AttrInt("axis", def)
	if axis < 0 {
		axis += rank
	}
	if opset != 0 && opset < 13 && axis != rank-1 {
		return false
	}
	return axis == want
}

func attentionRules(opset int64, foldGQA bool) *RuleSet {
	decomposed := &Rule{
		Name:    ruleAttention,
		Pattern: attentionPattern(opset),
		Checks: []Cond{
			{"the Softmax normalizes the key axis of the scores (the last one, or the Einsum's key label)", func(m *Match, _ *ir.Value) bool {
				sPerm, ok := scoresPerm(m)
				return ok && softmaxOnAxis(m.Node("probs"), opset, sPerm[3])
			}},
			{"an Einsum taking the probabilities contracts their key axis with V's", func(m *Match, _ *ir.Value) bool {
				if m.Root.Op != "Einsum" {
					return true
				}
				sPerm, ok := scoresPerm(m)
				_, _, ok2 := pvEinsumPerms(m.Root.AttrString("equation", ""), sPerm)
				return ok && ok2
			}},
		},
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value { return rewriteDecomposedAttention(rw, m, foldGQA) },
	}
	onnxAttention := &Rule{
		Name: ruleAttentionOnnx,
		Pattern: OneOf(
			Op("Attention", Any("q"), Any("k"), Any("v")),
			Op("Attention", Any("q"), Any("k"), Any("v"), Any("mask")),
		),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value { return rewriteOnnxAttention(rw, m, foldGQA) },
	}
	// XLNet reads the shape of its QK^T Einsum to build the relative
	// shift; that use would keep the scores alive and block the fusion.
	// The shape of an Einsum is a gather of its operands' shapes.
	einsumShape := &Rule{
		Name: ruleEinsumShape,
		Pattern: Op("Shape", Any("x").Where("comes from a QK^T Einsum of 4-D operands", func(_ *Match, v *ir.Value) bool {
			n, _ := v.Producer()
			if n == nil || n.Op != "Einsum" || n.Domain != "" || len(n.Inputs) != 2 || n.Inputs[0] == nil || n.Inputs[1] == nil {
				return false
			}
			_, _, _, ok := qkEinsumPerms(n.AttrString("equation", ""))
			return ok && feedsSoftmax(v, 4)
		})),
		Rewrite: rewriteEinsumShape,
	}
	return MustRuleSet(decomposed, onnxAttention, einsumShape)
}

// attentionShapes are the head layout the rewrite proved.
type attentionShapes struct {
	qHeads, kvHeads ir.Dim
}

// checkQKV checks that Q [B,Hq,Sq,D], K [B,Hkv,Skv,D] and V [B,Hkv,Skv,Dv]
// can form one attention: no size that provably differs where the op
// needs equal ones, and query heads that are the key/value heads or a
// multiple of them when both are known. Sizes the shape algebra cannot
// compare are left to the kernel, which checks them at run time and fails
// rather than broadcast the way MatMul would.
func checkQKV(q, k, v *ir.Value) (attentionShapes, string) {
	for _, x := range []*ir.Value{q, k, v} {
		if x.Type.Rank() != 4 {
			return attentionShapes{}, fmt.Sprintf("%s is not 4-D (type %v)", describeValue(x), x.Type)
		}
	}
	qs, ks, vs := q.Type.Shape, k.Type.Shape, v.Type.Shape
	if qs[0].Conflicts(ks[0]) || qs[0].Conflicts(vs[0]) || ks[0].Conflicts(vs[0]) {
		return attentionShapes{}, fmt.Sprintf("Q, K and V have different batch sizes (%v, %v, %v)", qs[0], ks[0], vs[0])
	}
	if ks[1].Conflicts(vs[1]) || ks[2].Conflicts(vs[2]) {
		return attentionShapes{}, fmt.Sprintf("K %v and V %v differ in heads or sequence", k.Type, v.Type)
	}
	if qs[3].Conflicts(ks[3]) {
		return attentionShapes{}, fmt.Sprintf("Q and K have different head sizes (%v, %v)", qs[3], ks[3])
	}
	hq, hkv := qs[1], ks[1]
	if hq.IsKnown() && hkv.IsKnown() && (hkv.Size == 0 || hq.Size%hkv.Size != 0) {
		return attentionShapes{}, fmt.Sprintf("mismatched head counts: Q has %v heads, K/V %v", hq, hkv)
	}
	return attentionShapes{qHeads: hq, kvHeads: hkv}, ""
}

// keyFromTransposed returns K for K^T: the input of a matched Transpose with
// the perm composed, or a new Transpose.
func keyFromTransposed(rw *Rewriter, m *Match) (*ir.Value, string) {
	kT := m.Value("kT")
	if kT.Type.Rank() != 4 {
		return nil, fmt.Sprintf("K^T %s is not 4-D", describeValue(kT))
	}
	perm := []int64{0, 1, 3, 2}
	src := kT
	if n, _ := kT.Producer(); n != nil && n.Op == "Transpose" && n.Domain == "" && m.Contains(n) {
		p, ok := n.AttrInts("perm")
		if !ok {
			p = []int64{3, 2, 1, 0}
		}
		if len(p) != 4 {
			return nil, fmt.Sprintf("Transpose %q has perm %v, want 4 axes", nodeLabel(n), p)
		}
		perm = []int64{p[0], p[1], p[3], p[2]}
		src = n.Inputs[0]
	}
	if slices.Equal(perm, []int64{0, 1, 2, 3}) {
		return src, ""
	}
	k := rw.Op("Transpose", src, ir.IntsAttr("perm", perm...))
	k.Type = transposedType(src.Type, perm)
	return k, ""
}

func transposedType(t ir.Type, perm []int64) ir.Type {
	if t.Rank() != len(perm) {
		return ir.TensorOfUnknownRank(t.Elem)
	}
	dims := make([]ir.Dim, len(perm))
	for i, p := range perm {
		dims[i] = t.Shape[p]
	}
	return ir.TensorOf(t.Elem, dims...)
}

// unrepeatKV looks through Llama's repeat_kv: Reshape(Expand(Unsqueeze(x,
// axis 2), [B,Hkv,n,S,D]), [B,Hkv*n,S,D]), returning x, whose head h
// serves the repeated heads h*n .. h*n+n-1, and n.
func unrepeatKV(v *ir.Value) (*ir.Value, int64, bool) {
	rs, _ := v.Producer()
	if rs == nil || rs.Op != "Reshape" || rs.Domain != "" {
		return nil, 0, false
	}
	ex, _ := rs.Inputs[0].Producer()
	if ex == nil || ex.Op != "Expand" || ex.Domain != "" {
		return nil, 0, false
	}
	un, _ := ex.Inputs[0].Producer()
	if un == nil || un.Op != "Unsqueeze" || un.Domain != "" {
		return nil, 0, false
	}
	x := un.Inputs[0]
	u, e, out := un.Outputs[0].Type, ex.Outputs[0].Type, v.Type
	if x.Type.Rank() != 4 || u.Rank() != 5 || e.Rank() != 5 || out.Rank() != 4 {
		return nil, 0, false
	}
	xs, es, os := x.Type.Shape, e.Shape, out.Shape
	if !u.Shape[2].IsKnown() || u.Shape[2].Size != 1 {
		return nil, 0, false // the new axis is not axis 2
	}
	if !es[0].SameAs(xs[0]) || !es[1].SameAs(xs[1]) || !es[3].SameAs(xs[2]) || !es[4].SameAs(xs[3]) {
		return nil, 0, false
	}
	if !os[0].SameAs(xs[0]) || !os[2].SameAs(xs[2]) || !os[3].SameAs(xs[3]) {
		return nil, 0, false
	}
	if !es[2].IsKnown() || !xs[1].IsKnown() || !os[1].IsKnown() || os[1].Size != xs[1].Size*es[2].Size || es[2].Size < 1 {
		return nil, 0, false
	}
	return x, es[2].Size, true
}

// maskFits reports whether a mask of type mt may broadcast to the scores
// [B,Hq,Sq,Skv] without widening them: rank at most 4 and no dimension
// that provably differs from the score's and is not 1. Symbolic sizes the
// shape algebra cannot compare (a key length written two ways) are
// allowed: the kernel checks the mask's run-time shape and fails, naming
// the node, rather than widen.
func maskFits(mt ir.Type, scores []ir.Dim) bool {
	r := mt.Rank()
	if r < 0 || r > 4 {
		return false
	}
	for i := 0; i < r; i++ {
		d, s := mt.Shape[i], scores[4-r+i]
		switch {
		case d.IsKnown() && d.Size == 1, d.SameAs(s):
		case d.IsKnown() && s.IsKnown():
			return false // provably different sizes
		case s.IsKnown() && s.Size == 1:
			return false // the mask would widen a length-1 axis
		}
	}
	return true
}

func rewriteDecomposedAttention(rw *Rewriter, m *Match, foldGQA bool) *ir.Value {
	q, v := m.Value("q"), m.Value("v")
	qk := m.Value("qk")
	for _, x := range []*ir.Value{q, qk, m.Value("probs")} {
		if x.Type.Rank() != 4 {
			return rw.Decline("%s is not 4-D (type %v)", describeValue(x), x.Type)
		}
	}
	if q.Type.Elem != ir.Float || v.Type.Elem != ir.Float {
		return rw.Decline("Q and V are %v and %v; tfc.Attention's CPU kernel is float32", q.Type.Elem, v.Type.Elem)
	}
	// The scale is the product of the constants on Q, K and the scores.
	scale := 1.0
	for _, name := range []string{"q_scale", "k_scale", "s_mul"} {
		if c := m.Value(name); c != nil {
			f, _ := constFloat(c)
			scale *= f
		}
	}
	if c := m.Value("s_div"); c != nil {
		f, _ := constFloat(c)
		if f == 0 {
			return rw.Decline("the scores are divided by zero")
		}
		scale /= f
	}
	// The masks: additive terms that must not widen the scores, and a
	// boolean keep (or drop) mask.
	for _, name := range []string{"bias1", "bias2", "prebias", "negbias", "keep", "drop"} {
		b := m.Value(name)
		if b == nil {
			continue
		}
		want := ir.Float
		if name == "keep" || name == "drop" {
			want = ir.Bool
		}
		if b.Type.Elem != want {
			return rw.Decline("mask %s is %v, not %v", describeValue(b), b.Type.Elem, want)
		}
		if !maskFits(b.Type, qk.Type.Shape) {
			return rw.Decline("cannot prove mask %s (type %v) fits the scores %v without widening them", describeValue(b), b.Type, qk.Type)
		}
	}
	var k *ir.Value
	sPerm, _ := scoresPerm(m)
	if qkNode := m.Node("qk"); qkNode.Op == "Einsum" {
		qPerm, kPerm, _, _ := qkEinsumPerms(qkNode.AttrString("equation", ""))
		q = transposeIfNeeded(rw, q, qPerm)
		k = transposeIfNeeded(rw, m.Value("k_einsum"), kPerm)
	} else {
		var why string
		if k, why = keyFromTransposed(rw, m); k == nil {
			return rw.Decline("%s", why)
		}
	}
	var yPerm []int64
	if m.Root.Op == "Einsum" {
		var vPerm []int64
		vPerm, yPerm, _ = pvEinsumPerms(m.Root.AttrString("equation", ""), sPerm)
		v = transposeIfNeeded(rw, v, vPerm)
	}
	if foldGQA {
		kx, kn, okK := unrepeatKV(k)
		vx, vn, okV := unrepeatKV(v)
		if okK && okV && kn == vn {
			k, v = kx, vx
		}
	}
	shapes, why := checkQKV(q, k, v)
	if why != "" {
		return rw.Decline("%s", why)
	}
	// Masks are laid out like the scores; an Einsum's scores in another
	// order than [b,n,i,j] need rank-4 masks, transposed.
	identity := slices.Equal(sPerm, []int64{0, 1, 2, 3})
	toScores := func(x *ir.Value) *ir.Value {
		if identity {
			return x
		}
		return transposeIfNeeded(rw, x, sPerm)
	}
	if !identity {
		for _, name := range []string{"bias1", "bias2", "prebias", "negbias", "keep", "drop"} {
			if b := m.Value(name); b != nil && b.Type.Rank() != 4 {
				return rw.Decline("mask %s is not 4-D and the scores are laid out as %v, not [b,n,i,j]", describeValue(b), sPerm)
			}
		}
	}
	// The additive terms in the order the graph adds them; the result is
	// equal within rounding.
	var mask *ir.Value
	add := func(op string, x *ir.Value) {
		x = toScores(x)
		switch {
		case mask != nil:
			mask = rw.Op(op, mask, x)
		case op == "Sub":
			mask = rw.Op("Neg", x)
		default:
			mask = x
		}
	}
	if pb := m.Value("prebias"); pb != nil {
		// scale * (QK + pb) = scale * QK + scale * pb. When a masked_fill
		// follows (Transformer-XL), the op fills before adding, so the
		// term is zeroed where the fill applies:
		// where(keep, s + t, fill) = where(keep, s, fill) + where(keep, t, 0).
		term := rw.Op("Mul", pb, m.Value("s_mul"))
		if kp := m.Value("keep"); kp != nil {
			term = rw.Op("Where", kp, term, rw.Const("zero", ir.Float32Tensor([]int64{}, 0)))
		} else if dp := m.Value("drop"); dp != nil {
			term = rw.Op("Where", dp, rw.Const("zero", ir.Float32Tensor([]int64{}, 0)), term)
		}
		add("Add", term)
	}
	for _, name := range []string{"bias2", "bias1"} {
		if b := m.Value(name); b != nil {
			add("Add", b)
		}
	}
	if nb := m.Value("negbias"); nb != nil {
		add("Sub", nb)
	}
	keep := m.Value("keep")
	if d := m.Value("drop"); d != nil {
		keep = rw.Op("Not", d)
		keep.Type = d.Type.Clone()
	}
	if keep != nil {
		keep = toScores(keep)
	}
	var kinds []string
	args := []any{q, k, v, mask}
	if keep != nil {
		kinds = append(kinds, "boolean")
		args = append(args, keep)
	}
	if mask != nil {
		kinds = append(kinds, "additive")
	}
	args = append(args, attentionAttrs(shapes, scale, kinds)...)
	if keep != nil {
		f, _ := constFloat(m.Value("fill"))
		args = append(args, ir.FloatAttr("mask_fill", float32(f)))
	}
	y := rw.Op("tfc::Attention", trimOmitted(args)...)
	if yPerm != nil {
		y = transposeIfNeeded(rw, y, yPerm)
	}
	return y
}

// trimOmitted drops trailing omitted inputs (nil *ir.Value) before the
// attributes.
func trimOmitted(args []any) []any {
	last := -1
	for i, a := range args {
		if v, ok := a.(*ir.Value); ok && v != nil {
			last = i
		}
	}
	var out []any
	for i, a := range args {
		if v, ok := a.(*ir.Value); ok || a == nil {
			if i > last {
				continue
			}
			out = append(out, v)
			continue
		}
		out = append(out, a)
	}
	return out
}

func attentionAttrs(s attentionShapes, scale float64, kinds []string) []any {
	kind := strings.Join(kinds, "+")
	if kind == "" {
		kind = "none"
	}
	var attrs []any
	if s.qHeads.IsKnown() {
		attrs = append(attrs, ir.IntAttr("num_heads", s.qHeads.Size))
	}
	if s.kvHeads.IsKnown() {
		attrs = append(attrs, ir.IntAttr("kv_num_heads", s.kvHeads.Size))
	}
	return append(attrs, ir.FloatAttr("scale", float32(scale)), ir.StringAttr("mask_kind", kind))
}

// rewriteOnnxAttention converts ONNX Attention (opset 23) with 4-D
// inputs, no past K/V and only Y used.
func rewriteOnnxAttention(rw *Rewriter, m *Match, foldGQA bool) *ir.Value {
	n := m.Root
	for i := 1; i < len(n.Outputs); i++ {
		if o := n.Outputs[i]; o != nil && o.NumUses() > 0 {
			return rw.Decline("output %d (%s) is used; tfc.Attention has no present K/V or QK output", i, o.Name)
		}
	}
	if sc := n.AttrFloat("softcap", 0); sc != 0 {
		return rw.Decline("softcap %g is not supported by tfc.Attention", sc)
	}
	q, k, v := m.Value("q"), m.Value("k"), m.Value("v")
	if q.Type.Elem != ir.Float || v.Type.Elem != ir.Float {
		return rw.Decline("Q and V are %v and %v; tfc.Attention's CPU kernel is float32", q.Type.Elem, v.Type.Elem)
	}
	if q.Type.Rank() != 4 {
		return rw.Decline("Q %s is not 4-D; the 3-D form of ONNX Attention is not converted", describeValue(q))
	}
	skv := k.Type.Shape // the key length before unrepeating, for the causal check
	if foldGQA {
		kx, kn, okK := unrepeatKV(k)
		vx, vn, okV := unrepeatKV(v)
		if okK && okV && kn == vn {
			k, v = kx, vx
		}
	}
	shapes, why := checkQKV(q, k, v)
	if why != "" {
		return rw.Decline("%s", why)
	}
	var scale float64
	if a := n.Attr("scale"); a != nil {
		scale = float64(a.F)
	} else if d := q.Type.Shape[3]; d.IsKnown() && d.Size > 0 {
		scale = 1 / math.Sqrt(float64(d.Size))
	} else {
		return rw.Decline("no scale attribute and the head size %v is not known", d)
	}
	var kinds []string
	if n.AttrInt("is_causal", 0) != 0 {
		// ONNX aligns the causal frontier top-left, tfc.Attention
		// bottom-right; they agree when Sq = Skv.
		if !q.Type.Shape[2].SameAs(skv[2]) {
			return rw.Decline("is_causal with query length %v and key length %v that may differ", q.Type.Shape[2], skv[2])
		}
		kinds = append(kinds, "causal")
	}
	args := []any{q, k, v}
	if mask := m.Value("mask"); mask != nil {
		scores := []ir.Dim{q.Type.Shape[0], q.Type.Shape[1], q.Type.Shape[2], k.Type.Shape[2]}
		if !maskFits(mask.Type, scores) {
			return rw.Decline("cannot prove mask %s (type %v) broadcasts to the scores %v (ONNX pads a short mask; tfc.Attention does not)", describeValue(mask), mask.Type, scores)
		}
		switch mask.Type.Elem {
		case ir.Bool:
			kinds = append(kinds, "boolean")
			args = append(args, nil, mask)
		case ir.Float:
			kinds = append(kinds, "additive")
			args = append(args, mask)
		default:
			return rw.Decline("mask %s is %v, neither bool nor float32", describeValue(mask), mask.Type.Elem)
		}
	}
	args = append(args, attentionAttrs(shapes, scale, kinds)...)
	if slices.Contains(kinds, "boolean") {
		args = append(args, ir.FloatAttr("mask_fill", float32(math.Inf(-1))))
	}
	return rw.Op("tfc::Attention", args...)
}

// rewriteEinsumShape computes Shape(Einsum(a, b)) as a Gather of
// Concat(Shape(a), Shape(b)): each output label's size is that of the
// operand holding it (explicit labels do not broadcast).
func rewriteEinsumShape(rw *Rewriter, m *Match) *ir.Value {
	n := m.Root
	ein, _ := m.Value("x").Producer()
	a, b, out, _ := einsumLabels(ein.AttrString("equation", ""))
	var idx []int64
	for x := range len(out) {
		if p := strings.IndexByte(a, out[x]); p >= 0 {
			idx = append(idx, int64(p))
		} else {
			idx = append(idx, int64(len(a)+strings.IndexByte(b, out[x])))
		}
	}
	// Shape's start and end (opset 15) select a range of the dims.
	start, end := n.AttrInt("start", 0), n.AttrInt("end", int64(len(idx)))
	clamp := func(x int64) int64 {
		if x < 0 {
			x += int64(len(idx))
		}
		return max(0, min(x, int64(len(idx))))
	}
	start, end = clamp(start), clamp(end)
	if start > end {
		start = end
	}
	idx = idx[start:end]
	shapes := rw.Op("Concat", rw.Op("Shape", ein.Inputs[0]), rw.Op("Shape", ein.Inputs[1]), ir.IntAttr("axis", 0))
	at := rw.Const("einsum_shape_index", ir.Int64Tensor([]int64{int64(len(idx))}, idx...))
	return rw.Op("Gather", shapes, at, ir.IntAttr("axis", 0))
}

// feedsSoftmax reports whether v reaches a Softmax through at most depth
// elementwise score ops (scale, bias, mask): it is attention scores.
func feedsSoftmax(v *ir.Value, depth int) bool {
	for _, u := range v.Uses() {
		switch u.Node.Op {
		case "Softmax":
			return true
		case "Add", "Sub", "Mul", "Div", "Where", "Cast":
			if depth > 0 && u.Node.Outputs[0] != nil && feedsSoftmax(u.Node.Outputs[0], depth-1) {
				return true
			}
		}
	}
	return false
}
