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
		ctx.Explain.Items = append(ctx.Explain.Items, explainNonSoftmaxAttention(ctx.pass, m.Graph)...)
	}
	return st, nil
}

// explainSoftmaxes keeps, for each Softmax left in the graph, the
// explanation of the MatMul or Einsum its probabilities feed (through at
// most a NaN-to-zero Where, or a Reshape to [B*H,S,S]), and says so when
// there is none; and the explanations of ONNX Attention nodes left
// unconverted.
func explainSoftmaxes(pass string, g *ir.Graph, items []Explanation) []Explanation {
	byAnchor := map[string]Explanation{}
	for _, e := range items {
		if e.Rule == ruleEinsumShape || e.Rule == ruleScoresShape {
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
				if depth > 0 && (u.Node.Op == "Where" || u.Node.Op == "IsNaN" || u.Node.Op == "Cast" || u.Node.Op == "Reshape") && u.Node.Outputs[0] != nil {
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
	ruleScoresShape   = "scores-shape"
)

// oneElementConst holds for a one-element float constant (a fill value).
var oneElementConst = Cond{"is a one-element float constant", func(_ *Match, v *ir.Value) bool {
	_, ok := constFloat(v)
	return ok
}}

// staticScale holds for a scale known at compile time: a one-element
// float constant, or a scalar the graph computes from constants and known
// dimensions (DeBERTa divides by Sqrt(Cast(Shape(q)[-1]) * 3)).
var staticScale = Cond{"is a one-element float constant, or a scalar computed from constants and known dimensions", func(_ *Match, v *ir.Value) bool {
	_, ok := staticScalar(v)
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
//	QK = MatMul([Mul(Q, c)], Mul(Kt, c) | Div(Kt, c) | Kt)            (sdpa: sqrt(scale) on Q and K)
//	   | Einsum(Q, K)
//	Kt = [Transpose(K)]                                               (K^T)
//
// and the [B*H,S,D] form (DeBERTa-v2, exports that batch heads into the
// MatMul batch axis): the scores of 3-D operands split into heads before
// the masks and Softmax, the probabilities merged back for a 3-D PV:
//
//	Y  = MatMul(Reshape(P) to [B*H,Sq,Skv], V3)                       (V3: [B*H,Skv,Dv])
//	   | MatMul(Softmax(Reshape(S) to [B*H,Sq,Skv]), V3)              (older BART: 3-D Softmax)
//	T  = Reshape(S3) to [B,H,Sq,Skv]
//	S3 = Add(T3, bias3) | T3                                          (DeBERTa: c2p + p2c position terms)
//	T3 = Div(QK3, c) | Mul(QK3, c) | QK3
//	QK3 = MatMul([Mul(Q3, c)], Div(Kt3, c) | Mul(Kt3, c) | Kt3)       (Q3, K3: [B*H,S,D])
//	Kt3 = Transpose(K3, perm [0,2,1])
//
// Brackets mark optional nodes; commutative operands match in either
// order. A scale c is a one-element constant or a scalar computed from
// constants and known dimensions (DeBERTa: 1/sqrt(d*3)). The rule's
// checks require the Softmax to normalize the key axis of the scores and
// a PV Einsum to contract it. Rotary embedding, GQA
// repetition and past-K/V Concat are inputs: the rewrite looks through
// the repetition, the rest stays outside the op.
func attentionPattern(opset int64) *Pattern {
	scale := func(name string) *Pattern { return Any(name).If(staticScale) }
	q := Optional(Op("Mul", Any("q"), scale("q_scale")))
	kTransposed := Optional(Op("Transpose", Any("k_src"))).Bind("kT")
	kSide := OneOf(
		Op("Mul", kTransposed, scale("k_scale")),
		Op("Div", kTransposed, scale("k_div")),
		kTransposed,
	)
	qk := OneOf(
		Op("MatMul", q, kSide),
		// XLNet, Funnel: Einsum over [i,b,n,d]-like layouts.
		Op("Einsum", Any("q"), Any("k_einsum")).WhereNode("is a QK^T contraction of [b,n,i,d] and [b,n,j,d] in any layout", func(_ *Match, n *ir.Node) bool {
			_, _, _, ok := qkEinsumPerms(n.AttrString("equation", ""))
			return ok
		}),
	).Bind("qk").If(RankIs(4))
	// The [B*H,S,D] form: 3-D QK^T, split into heads by a Reshape.
	kT3 := Op("Transpose", Any("k3").If(RankIs(3))).If(AttrIntsIs("perm", 0, 2, 1))
	qk3 := Op("MatMul",
		Optional(Op("Mul", Any("q3").If(RankIs(3)), scale("q_scale"))),
		OneOf(Op("Div", kT3, scale("k_div")), Op("Mul", kT3, scale("k_scale")), kT3),
	).Bind("qk3").If(RankIs(3))
	scaled3 := OneOf(Op("Div", qk3, scale("s_div")), Op("Mul", qk3, scale("s_mul")), qk3)
	split := Op("Reshape", OneOf(Op("Add", scaled3, Any("bias3")), scaled3), Any("split_shape")).Bind("split").If(RankIs(4))
	scaled := OneOf(
		Op("Div", qk, scale("s_div")),
		Op("Mul", qk, scale("s_mul")),
		// XLNet: (content + position scores) * scale.
		Op("Mul", Op("Add", qk, Any("prebias")), scale("s_mul")),
		qk,
		split,
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
	).Bind("masked")
	softmax := OneOf(
		Op("Softmax", masked),
		// Older BART/Marian exports: the masked [B,H,Sq,Skv] scores
		// merged back to [B*H,Sq,Skv] for a 3-D Softmax.
		Op("Softmax", Op("Reshape", masked, Any("scores_merge_shape")).Bind("scores3").If(RankIs(3))),
	).Bind("probs")
	probs := OneOf(
		Op("Where", Op("IsNaN", softmax), scale("nan_fill").If(ScalarNear(0, 0)), Any("probs")),
		softmax,
	)
	return OneOf(
		// V is 4-D, or 3-D [B*H,S,Dv] after a 3-D Softmax; the rewrite
		// checks which. (One alternative for both, so that --explain
		// reports the deepest failure of the one that applies.)
		Op("MatMul", probs, Any("v")),
		Op("Einsum", probs, Any("v").If(RankIs(4))),
		// [B,H,S,S] probabilities merged to [B*H,S,S], times 3-D V.
		Op("MatMul", Op("Reshape", probs, Any("merge_shape")).Bind("probs3").If(RankIs(3)), Any("v3").If(RankIs(3))),
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
	if rank == 3 && want == 3 {
		want = 2 // [B*H,Sq,Skv] probabilities: the key axis is the last
	} else if rank != 4 {
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
	// DeBERTa reads the shapes of its scores and probabilities to build
	// the [B*H,S,S] <-> [B,H,S,S] Reshapes; those uses would keep them
	// alive too. Their dimensions are dimensions of the QK^T operands.
	scoresShape := &Rule{
		Name:    ruleScoresShape,
		Pattern: Op("Shape", Any("x").Where("is attention scores or probabilities (reaches a Softmax, or is one)", func(_ *Match, v *ir.Value) bool { return isScores(v) })),
		Rewrite: rewriteScoresShape,
	}
	return MustRuleSet(decomposed, onnxAttention, einsumShape, scoresShape)
}

// scoreOps are the ops between QK^T and the Softmax: scale, biases,
// masked_fill, the head split.
var scoreOps = map[string]bool{"Add": true, "Sub": true, "Mul": true, "Div": true, "Where": true, "Cast": true, "Reshape": true}

// isScores reports whether v is a Softmax output or an output of a
// MatMul or score op that reaches a Softmax through score ops.
func isScores(v *ir.Value) bool {
	n, _ := v.Producer()
	if n == nil || n.Domain != "" {
		return false
	}
	var reaches func(v *ir.Value, depth int) bool
	reaches = func(v *ir.Value, depth int) bool {
		for _, u := range v.Uses() {
			if u.Node.Domain != "" || u.Node.Outputs[0] == nil {
				continue
			}
			if u.Node.Op == "Softmax" || depth > 0 && scoreOps[u.Node.Op] && reaches(u.Node.Outputs[0], depth-1) {
				return true
			}
		}
		return false
	}
	return n.Op == "Softmax" || (n.Op == "MatMul" || scoreOps[n.Op]) && reaches(v, 6)
}

// scoreShapeSources finds the QK^T MatMul behind scores v (through score
// ops and the Softmax) and returns values outside the attention whose
// dimensions the scores share: its operands with scalar scales and
// Transposes looked through, and the inputs of the Reshape or Transpose
// producing those (the 4-D Q and K before a head merge); then the masks
// and biases the score ops take, which are not scores themselves and
// not computed from them.
func scoreShapeSources(v *ir.Value) []*ir.Value {
	var qk *ir.Node
	var side []*ir.Value
	var find func(v *ir.Value, depth int)
	find = func(v *ir.Value, depth int) {
		n, _ := v.Producer()
		if n == nil || n.Domain != "" || depth < 0 {
			return
		}
		switch {
		case n.Op == "MatMul" && len(n.Inputs) == 2:
			if qk == nil {
				qk = n
			}
		case n.Op == "Softmax" || n.Op == "Reshape" || n.Op == "Cast":
			find(n.Inputs[0], depth-1)
		case scoreOps[n.Op]:
			for _, in := range n.Inputs {
				if in != nil {
					side = append(side, in)
					find(in, depth-1)
				}
			}
		}
	}
	find(v, 8)
	var qkOperands []*ir.Value
	if qk != nil {
		qkOperands = qk.Inputs
	}
	var out []*ir.Value
	for _, x := range qkOperands {
		for {
			n, _ := x.Producer()
			if n == nil || n.Domain != "" {
				break
			}
			if n.Op == "Transpose" {
				x = n.Inputs[0]
				continue
			}
			if (n.Op == "Mul" || n.Op == "Div") && len(n.Inputs) == 2 {
				if _, ok := staticScalar(n.Inputs[1]); ok {
					x = n.Inputs[0]
					continue
				}
				if _, ok := staticScalar(n.Inputs[0]); ok && n.Op == "Mul" {
					x = n.Inputs[1]
					continue
				}
			}
			break
		}
		out = append(out, x)
		if n, _ := x.Producer(); n != nil && n.Domain == "" && (n.Op == "Reshape" || n.Op == "Transpose") {
			out = append(out, n.Inputs[0])
		}
	}
	for _, x := range side {
		if !isScores(x) && !fromScores(x) {
			out = append(out, x)
		}
	}
	return out
}

// fromScores reports whether an input of v's producer is scores
// (IsNaN(probabilities) in the sdpa NaN guard).
func fromScores(v *ir.Value) bool {
	n, _ := v.Producer()
	return n != nil && slices.ContainsFunc(n.Inputs, func(in *ir.Value) bool { return in != nil && isScores(in) })
}

// rewriteScoresShape computes Shape(scores) from the shapes of values
// outside the attention (scoreShapeSources): each known dimension as a
// constant, each symbolic one sliced from the Shape of a source that
// provably has it.
func rewriteScoresShape(rw *Rewriter, m *Match) *ir.Value {
	n := m.Root
	x := m.Value("x")
	r := int64(x.Type.Rank())
	if r < 0 {
		return rw.Decline("%s has unknown rank", describeValue(x))
	}
	clamp := func(i int64) int64 {
		if i < 0 {
			i += r
		}
		return max(0, min(i, r))
	}
	start, end := clamp(n.AttrInt("start", 0)), clamp(n.AttrInt("end", r))
	sources := scoreShapeSources(x)
	for _, s := range sources {
		if isScores(s) {
			return rw.Decline("the QK^T operand %s is itself scores", describeValue(s))
		}
	}
	var parts []*ir.Value
	var known []int64
	flush := func() {
		if len(known) > 0 {
			parts = append(parts, rw.Const("scores_dims", ir.Int64Tensor([]int64{int64(len(known))}, known...)))
			known = nil
		}
	}
	for i := start; i < end; i++ {
		d := x.Type.Shape[i]
		if d.IsKnown() {
			known = append(known, d.Size)
			continue
		}
		var from *ir.Value
		var axis int
		for _, s := range sources {
			if s.Type.Rank() < 0 {
				continue
			}
			if j := slices.IndexFunc(s.Type.Shape, d.SameAs); j >= 0 {
				from, axis = s, j
				break
			}
		}
		if from == nil {
			return rw.Decline("no value outside the attention (QK^T operands, the tensors they were merged from, masks) provably has dimension %d (%v) of %s", i, d, describeValue(x))
		}
		flush()
		parts = append(parts, sliceShape(rw, from, int64(axis), int64(axis+1)))
	}
	flush()
	switch len(parts) {
	case 0:
		return rw.Const("scores_shape", ir.Int64Tensor([]int64{0}))
	case 1:
		return parts[0]
	}
	args := make([]any, 0, len(parts)+1)
	for _, p := range parts {
		args = append(args, p)
	}
	return rw.Op("Concat", append(args, ir.IntAttr("axis", 0))...)
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
	// probs4 is the [B,H,Sq,Skv] form of the probabilities: the
	// Softmax output, or, for a 3-D Softmax, the masked scores it reads.
	probs4 := m.Value("probs")
	v, v3 := m.Value("v"), m.Value("v3")
	if v != nil && v.Type.Rank() == 3 && m.Value("scores3") != nil {
		v, v3 = nil, v
	}
	if scores3 := m.Value("scores3"); scores3 != nil {
		probs4 = m.Value("masked")
		if !splitsHeads(scores3.Type, probs4.Type) {
			return rw.Decline("cannot prove Reshape %s merges the heads of the scores %v", describeValue(scores3), probs4.Type)
		}
		if m.Value("probs3") != nil || v3 == nil {
			return rw.Decline("the 3-D probabilities %s do not meet a 3-D V", describeValue(m.Value("probs")))
		}
	}
	if probs4.Type.Rank() != 4 {
		return rw.Decline("the probabilities %s are not 4-D (type %v)", describeValue(probs4), probs4.Type)
	}
	// The scores as the masks see them: QK^T, or the [B*H,Sq,Skv] scores
	// split into heads.
	var q, k *ir.Value
	var scores []ir.Dim
	split := m.Value("split")
	if split != nil {
		qk3 := m.Value("qk3")
		if !splitsHeads(qk3.Type, split.Type) {
			return rw.Decline("cannot prove Reshape %s splits the scores %v into heads (want [B,H,Sq,Skv] with H known)", describeValue(split), qk3.Type)
		}
		scores = split.Type.Shape
		var why string
		if q, why = unmergeHeads(rw, m.Value("q3"), scores[1]); q == nil {
			return rw.Decline("Q: %s", why)
		}
		if k, why = unmergeHeads(rw, m.Value("k3"), scores[1]); k == nil {
			return rw.Decline("K: %s", why)
		}
	} else {
		q = m.Value("q")
		qk := m.Value("qk")
		for _, x := range []*ir.Value{q, qk} {
			if x.Type.Rank() != 4 {
				return rw.Decline("%s is not 4-D (type %v)", describeValue(x), x.Type)
			}
		}
		scores = qk.Type.Shape
	}
	if v3 != nil {
		if p3 := m.Value("probs3"); p3 != nil && !splitsHeads(p3.Type, probs4.Type) {
			return rw.Decline("cannot prove Reshape %s merges the heads of the probabilities %v", describeValue(p3), probs4.Type)
		}
		var why string
		if v, why = unmergeHeads(rw, v3, probs4.Type.Shape[1]); v == nil {
			return rw.Decline("V: %s", why)
		}
	}
	if q.Type.Elem != ir.Float || v.Type.Elem != ir.Float {
		return rw.Decline("Q and V are %v and %v; tfc.Attention's CPU kernel is float32", q.Type.Elem, v.Type.Elem)
	}
	// The scale is the product of the scalars on Q, K and the scores.
	scale := 1.0
	for _, name := range []string{"q_scale", "k_scale", "s_mul"} {
		if c := m.Value(name); c != nil {
			f, _ := staticScalar(c)
			scale *= f
		}
	}
	for _, name := range []string{"k_div", "s_div"} {
		if c := m.Value(name); c != nil {
			f, _ := staticScalar(c)
			if f == 0 {
				return rw.Decline("the scores are divided by zero (%s)", describeValue(c))
			}
			scale /= f
		}
	}
	// A bias on the [B*H,Sq,Skv] scores, split into heads like them.
	var bias3 *ir.Value
	if b := m.Value("bias3"); b != nil {
		var why string
		if bias3, why = splitBias(rw, b, m.Value("qk3").Type, scores[1]); bias3 == nil {
			return rw.Decline("%s", why)
		}
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
		if !maskFits(b.Type, scores) {
			return rw.Decline("cannot prove mask %s (type %v) fits the scores %v without widening them", describeValue(b), b.Type, scores)
		}
	}
	if bias3 != nil && !maskFits(bias3.Type, scores) {
		return rw.Decline("cannot prove the bias %s (type %v, split into heads) fits the scores %v without widening them", describeValue(m.Value("bias3")), bias3.Type, scores)
	}
	sPerm, _ := scoresPerm(m)
	switch qkNode := m.Node("qk"); {
	case split != nil:
		// Q and K were unmerged from the [B*H,S,D] operands above.
	case qkNode.Op == "Einsum":
		qPerm, kPerm, _, _ := qkEinsumPerms(qkNode.AttrString("equation", ""))
		q = transposeIfNeeded(rw, q, qPerm)
		k = transposeIfNeeded(rw, m.Value("k_einsum"), kPerm)
	default:
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
	// A term added before a masked_fill: the op fills before adding, so
	// the term is zeroed where the fill applies:
	// where(keep, s + t, fill) = where(keep, s, fill) + where(keep, t, 0).
	zeroFilled := func(term *ir.Value) *ir.Value {
		if kp := m.Value("keep"); kp != nil {
			return rw.Op("Where", kp, term, rw.Const("zero", ir.Float32Tensor([]int64{}, 0)))
		} else if dp := m.Value("drop"); dp != nil {
			if n, _ := dp.Producer(); n != nil && n.Op == "Not" && n.Domain == "" {
				return rw.Op("Where", n.Inputs[0], term, rw.Const("zero", ir.Float32Tensor([]int64{}, 0)))
			}
			return rw.Op("Where", dp, rw.Const("zero", ir.Float32Tensor([]int64{}, 0)), term)
		}
		return term
	}
	if pb := m.Value("prebias"); pb != nil {
		// scale * (QK + pb) = scale * QK + scale * pb (Transformer-XL
		// fills after this).
		add("Add", zeroFilled(rw.Op("Mul", pb, m.Value("s_mul"))))
	}
	if bias3 != nil {
		add("Add", zeroFilled(bias3))
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
		if n, _ := d.Producer(); n != nil && n.Op == "Not" && n.Domain == "" {
			keep = n.Inputs[0] // DeBERTa: Where(Not(mask), fill, scores)
		} else {
			keep = rw.Op("Not", d)
			keep.Type = d.Type.Clone()
		}
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
	if v3 != nil {
		// Back to [B*H,Sq,Dv]: B*H from V's first axis, which the 3-D
		// PV MatMul shares with the probabilities.
		y = rw.Op("Reshape", y, rw.Op("Concat",
			sliceShape(rw, v3, 0, 1), sliceShape(rw, y, 2, 4), ir.IntAttr("axis", 0)))
	}
	return y
}

// splitsHeads reports whether a Reshape from t3 [B*H,X,Y] to t4 [B,H,X,Y]
// splits the first axis into heads: the trailing axes provably kept, and
// H known (the element count, equal across a Reshape, then fixes B). Read
// the other way it is the merge of t4's first two axes.
func splitsHeads(t3, t4 ir.Type) bool {
	if t3.Rank() != 3 || t4.Rank() != 4 {
		return false
	}
	h := t4.Shape[1]
	if !h.IsKnown() || h.Size < 1 || !t4.Shape[2].SameAs(t3.Shape[1]) || !t4.Shape[3].SameAs(t3.Shape[2]) {
		return false
	}
	if b, bh := t4.Shape[0], t3.Shape[0]; b.IsKnown() && bh.IsKnown() && b.Size*h.Size != bh.Size {
		return false
	}
	return true
}

// unmergeHeads returns x3 [B*H,S,D] as [B,H,S,D]: the input of the
// Reshape that merged the heads, when the types prove it did, or a new
// Reshape. Slice i of x3 is head i%H of sequence i/H either way, the
// order in which the scores' Reshape splits them.
func unmergeHeads(rw *Rewriter, x3 *ir.Value, heads ir.Dim) (*ir.Value, string) {
	if x3.Type.Rank() != 3 {
		return nil, fmt.Sprintf("%s is not 3-D (type %v)", describeValue(x3), x3.Type)
	}
	if !heads.IsKnown() || heads.Size < 1 {
		return nil, fmt.Sprintf("the head count %v is not known", heads)
	}
	if n, _ := x3.Producer(); n != nil && n.Op == "Reshape" && n.Domain == "" && splitsHeads(x3.Type, n.Inputs[0].Type) && n.Inputs[0].Type.Shape[1].SameAs(heads) {
		return n.Inputs[0], ""
	}
	to := rw.Op("Concat", rw.Const("heads_shape", ir.Int64Tensor([]int64{2}, -1, heads.Size)), sliceShape(rw, x3, 1, 3), ir.IntAttr("axis", 0))
	x4 := rw.Op("Reshape", x3, to)
	x4.Type = ir.TensorOf(x3.Type.Elem, ir.UnknownDim(), heads, x3.Type.Shape[1], x3.Type.Shape[2])
	return x4, ""
}

// splitBias returns the bias b of [B*H,Sq,Skv] scores (type scores3) as
// a bias of the [B,H,Sq,Skv] scores: split into heads when it has the
// B*H axis, as it is when it broadcasts over that axis.
func splitBias(rw *Rewriter, b *ir.Value, scores3 ir.Type, heads ir.Dim) (*ir.Value, string) {
	if b.Type.Elem != ir.Float {
		return nil, fmt.Sprintf("bias %s is %v, not %v", describeValue(b), b.Type.Elem, ir.Float)
	}
	switch r := b.Type.Rank(); {
	case r >= 0 && r <= 2, r == 3 && b.Type.Shape[0].IsKnown() && b.Type.Shape[0].Size == 1:
		return b, ""
	case r == 3 && scores3.Rank() == 3 && b.Type.Shape[0].SameAs(scores3.Shape[0]):
		to := rw.Op("Concat", rw.Const("heads_shape", ir.Int64Tensor([]int64{2}, -1, heads.Size)), sliceShape(rw, b, 1, 3), ir.IntAttr("axis", 0))
		b4 := rw.Op("Reshape", b, to)
		b4.Type = ir.TensorOf(b.Type.Elem, ir.UnknownDim(), heads, b.Type.Shape[1], b.Type.Shape[2])
		return b4, ""
	}
	return nil, fmt.Sprintf("cannot prove bias %s (type %v) is per [B*H] slice or broadcasts over it, for the scores %v", describeValue(b), b.Type, scores3)
}

// sliceShape returns Shape(x)[from:to] as a new Slice of a new Shape.
func sliceShape(rw *Rewriter, x *ir.Value, from, to int64) *ir.Value {
	return rw.Op("Slice", rw.Op("Shape", x),
		rw.Const("shape_from", ir.Int64Tensor([]int64{1}, from)),
		rw.Const("shape_to", ir.Int64Tensor([]int64{1}, to)))
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

// staticScalar evaluates a one-element value that the graph computes from
// constants and known dimensions, such as DeBERTa's scale
// Sqrt(Cast(Squeeze(Slice(Shape(q), -1))) * 3), where canonicalize cannot
// fold the Shape because other dimensions of q are symbolic.
func staticScalar(v *ir.Value) (float64, bool) {
	xs, ok := staticValues(v, 12)
	if !ok || len(xs) != 1 || math.IsNaN(xs[0]) || math.IsInf(xs[0], 0) {
		return 0, false
	}
	return xs[0], true
}

// maxStaticElems bounds the vectors staticValues works on (shape-sized).
const maxStaticElems = 16

// staticValues evaluates a small 0-D or 1-D value built from constants
// and Shape by shape arithmetic (Slice, Gather, Squeeze, Unsqueeze,
// Reshape, Concat, Cast, Add, Sub, Mul, Div, Sqrt, Neg, Reciprocal).
// Unknown dimensions read by Shape are NaN and spread through arithmetic;
// indices must be known. depth bounds the producers it follows.
func staticValues(v *ir.Value, depth int) ([]float64, bool) {
	if v == nil {
		return nil, false
	}
	if v.IsConst() {
		return constValues(v)
	}
	n, _ := v.Producer()
	if n == nil || depth <= 0 || (n.Domain != "" && n.Domain != "ai.onnx") {
		return nil, false
	}
	in := func(i int) ([]float64, bool) {
		if i >= len(n.Inputs) {
			return nil, false
		}
		return staticValues(n.Inputs[i], depth-1)
	}
	ints := func(i int) ([]int64, bool) {
		xs, ok := in(i)
		if !ok {
			return nil, false
		}
		out := make([]int64, len(xs))
		for j, x := range xs {
			if math.IsNaN(x) || x != math.Trunc(x) {
				return nil, false
			}
			// Slice ends of INT64_MAX read as 2^63, which int64
			// cannot hold; any bound beyond the data clamps the same.
			out[j] = int64(max(-1<<62, min(x, 1<<62)))
		}
		return out, true
	}
	outElem := v.Type.Elem
	switch n.Op {
	case "Shape":
		t := n.Inputs[0].Type
		r := int64(t.Rank())
		if r < 0 || r > maxStaticElems {
			return nil, false
		}
		clamp := func(x int64) int64 {
			if x < 0 {
				x += r
			}
			return max(0, min(x, r))
		}
		start, end := clamp(n.AttrInt("start", 0)), clamp(n.AttrInt("end", r))
		var out []float64
		for i := start; i < end; i++ {
			d := t.Shape[i]
			if d.IsKnown() {
				out = append(out, float64(d.Size))
			} else {
				out = append(out, math.NaN())
			}
		}
		return out, true
	case "Identity", "Squeeze", "Unsqueeze", "Reshape", "Flatten":
		return in(0)
	case "Cast":
		xs, ok := in(0)
		if !ok {
			return nil, false
		}
		out := make([]float64, len(xs))
		for i, x := range xs {
			switch outElem {
			case ir.Float:
				out[i] = float64(float32(x))
			case ir.Double:
				out[i] = x
			case ir.Int64, ir.Int32:
				out[i] = math.Trunc(x)
			default:
				return nil, false
			}
		}
		return out, true
	case "Gather":
		data, ok1 := in(0)
		idx, ok2 := ints(1)
		if !ok1 || !ok2 || n.AttrInt("axis", 0) != 0 || n.Inputs[0].Type.Rank() != 1 {
			return nil, false
		}
		out := make([]float64, len(idx))
		for i, j := range idx {
			if j < 0 {
				j += int64(len(data))
			}
			if j < 0 || j >= int64(len(data)) {
				return nil, false
			}
			out[i] = data[j]
		}
		return out, true
	case "Slice":
		data, ok := in(0)
		starts, ok1 := ints(1)
		ends, ok2 := ints(2)
		if !ok || !ok1 || !ok2 || len(starts) != 1 || len(ends) != 1 || n.Inputs[0].Type.Rank() != 1 {
			return nil, false
		}
		if len(n.Inputs) > 3 && n.Inputs[3] != nil {
			if axes, ok := ints(3); !ok || len(axes) != 1 || (axes[0] != 0 && axes[0] != -1) {
				return nil, false
			}
		}
		if len(n.Inputs) > 4 && n.Inputs[4] != nil {
			if steps, ok := ints(4); !ok || len(steps) != 1 || steps[0] != 1 {
				return nil, false
			}
		}
		l := int64(len(data))
		clamp := func(x int64) int64 {
			if x < 0 {
				x += l
			}
			return max(0, min(x, l))
		}
		s, e := clamp(starts[0]), clamp(ends[0])
		if s >= e {
			return []float64{}, true
		}
		return slices.Clone(data[s:e]), true
	case "Concat":
		var out []float64
		for i := range n.Inputs {
			xs, ok := in(i)
			if !ok || len(out)+len(xs) > maxStaticElems {
				return nil, false
			}
			out = append(out, xs...)
		}
		return out, true
	case "Add", "Sub", "Mul", "Div":
		a, ok1 := in(0)
		b, ok2 := in(1)
		if !ok1 || !ok2 || len(a) == 0 || len(b) == 0 || (len(a) != len(b) && len(a) != 1 && len(b) != 1) {
			return nil, false
		}
		out := make([]float64, max(len(a), len(b)))
		for i := range out {
			x, y := a[min(i, len(a)-1)], b[min(i, len(b)-1)]
			switch n.Op {
			case "Add":
				out[i] = x + y
			case "Sub":
				out[i] = x - y
			case "Mul":
				out[i] = x * y
			case "Div":
				out[i] = x / y
				if outElem != ir.Float && outElem != ir.Double {
					out[i] = math.Trunc(out[i])
				}
			}
			if outElem == ir.Float {
				out[i] = float64(float32(out[i]))
			}
		}
		return out, true
	case "Sqrt", "Neg", "Reciprocal":
		xs, ok := in(0)
		if !ok {
			return nil, false
		}
		out := make([]float64, len(xs))
		for i, x := range xs {
			switch n.Op {
			case "Sqrt":
				out[i] = math.Sqrt(x)
			case "Neg":
				out[i] = -x
			case "Reciprocal":
				out[i] = 1 / x
			}
			if outElem == ir.Float {
				out[i] = float64(float32(out[i]))
			}
		}
		return out, true
	}
	return nil, false
}

// constValues reads a small fixed float or integer constant as float64s.
func constValues(v *ir.Value) ([]float64, bool) {
	if !isFixedConst(v) || v.Const == nil || !v.Const.HasData() {
		return nil, false
	}
	t := v.Const
	n := t.NumElements()
	if n < 0 || n > maxStaticElems {
		return nil, false
	}
	b := t.Bytes()
	out := make([]float64, n)
	switch t.DType {
	case ir.Float:
		if len(b) != 4*int(n) {
			return nil, false
		}
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case ir.Double:
		if len(b) != 8*int(n) {
			return nil, false
		}
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
	default:
		xs, ok := t.AsInt64s()
		if !ok {
			return nil, false
		}
		for i, x := range xs {
			out[i] = float64(x)
		}
	}
	return out, true
}
