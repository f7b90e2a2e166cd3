package passes

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/ir"
)

// attnDims are the sizes of the builder-made attention graphs: batch is
// symbolic as exporters write it.
var (
	attnB = ir.Sym("batch")
	attnS = ir.Sym("seq")
)

const attnHeads, attnHead = 4, 8

func scalarConst(b *ir.Builder, name string, v float64) *ir.Value {
	return b.Const(name, ir.Float32Tensor([]int64{}, float32(v)))
}

// headInputs adds Q and V as [B,H,S,D] graph inputs and K as [B,S,H,D]
// (before the exporters' head transpose).
func headInputs(b *ir.Builder, kvHeads int64) (q, kBSHD, v *ir.Value) {
	q = b.Input("q", f32(attnB, ir.Known(attnHeads), attnS, ir.Known(attnHead)))
	kBSHD = b.Input("k", f32(attnB, attnS, ir.Known(kvHeads), ir.Known(attnHead)))
	v = b.Input("v", f32(attnB, ir.Known(kvHeads), attnS, ir.Known(attnHead)))
	return
}

// runFuseAttention runs infer-shapes, fuse-attention and canonicalize with
// verification and explanations, and returns the explanations.
func runFuseAttentionTest(t *testing.T, m *ir.Model) []Explanation {
	t.Helper()
	if err := ir.Verify(m); err != nil {
		t.Fatalf("test model does not verify: %v", err)
	}
	p, err := ParseSpec("infer-shapes,fuse-attention,canonicalize")
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	p.ReproDir = t.TempDir()
	ctx := &Context{Explain: &Explanations{}}
	if _, err := p.Run(ctx, m); err != nil {
		t.Fatal(err)
	}
	return ctx.Explain.Items
}

func attentionNodes(g *ir.Graph) []*ir.Node {
	var out []*ir.Node
	for _, n := range g.Nodes {
		if n.Domain == "tfc" && n.Op == "Attention" {
			out = append(out, n)
		}
	}
	return out
}

func TestFuseAttentionVariants(t *testing.T) {
	sqrtD := math.Sqrt(attnHead)
	type want struct {
		scale          float64
		kind           string
		kvHeads        int64
		inputs         int     // tfc.Attention inputs
		kFromTranspose []int64 // perm of the Transpose feeding K, nil when K is a graph input
	}
	cases := map[string]struct {
		build func(b *ir.Builder) *ir.Value
		want  want
	}{
		// TorchScript BERT: K^T as Transpose(perm 0,2,3,1) of [B,S,H,D],
		// Mul by 1/sqrt(d) on the scores, additive [B,1,1,S] mask.
		"bert-padding-mask": {func(b *ir.Builder) *ir.Value {
			q, k, v := headInputs(b, attnHeads)
			mask := b.Input("mask", f32(attnB, ir.Known(1), ir.Known(1), attnS))
			kT := b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1))
			s := b.Op("Mul", b.Op("MatMul", q, kT), scalarConst(b, "c", 1/sqrtD))
			p := b.Op("Softmax", b.Op("Add", s, mask), ir.IntAttr("axis", -1))
			return b.Op("MatMul", p, v)
		}, want{1 / sqrtD, "additive", attnHeads, 4, []int64{0, 2, 1, 3}}},
		// ViT: Div by sqrt(d), no mask, the bias operand first.
		"vit-div-no-mask": {func(b *ir.Builder) *ir.Value {
			q, k, v := headInputs(b, attnHeads)
			kT := b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1))
			s := b.Op("Div", b.Op("MatMul", q, kT), scalarConst(b, "c", sqrtD))
			return b.Op("MatMul", b.Op("Softmax", s, ir.IntAttr("axis", 3)), v)
		}, want{1 / sqrtD, "none", attnHeads, 3, []int64{0, 2, 1, 3}}},
		// sdpa: sqrt(scale) on Q and on K^T, NaN-to-zero after Softmax,
		// mask operand first in the Add.
		"sdpa-split-scale-nan-guard": {func(b *ir.Builder) *ir.Value {
			q, k, v := headInputs(b, attnHeads)
			mask := b.Input("mask", f32(attnB, ir.Known(1), attnS, attnS))
			r := math.Sqrt(1 / sqrtD)
			kT := b.Op("Mul", b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1)), scalarConst(b, "ck", r))
			s := b.Op("MatMul", b.Op("Mul", scalarConst(b, "cq", r), q), kT)
			p := b.Op("Softmax", b.Op("Add", mask, s), ir.IntAttr("axis", -1))
			p = b.Op("Where", b.Op("IsNaN", p), scalarConst(b, "zero", 0), p)
			return b.Op("MatMul", p, v)
		}, want{1 / sqrtD, "additive", attnHeads, 4, []int64{0, 2, 1, 3}}},
		// GPT-2 masked_fill: Where(causal keep, scores, min) then the
		// padding mask added.
		"gpt2-masked-fill": {func(b *ir.Builder) *ir.Value {
			q, k, v := headInputs(b, attnHeads)
			keep := b.Input("keep", ir.TensorOf(ir.Bool, ir.Known(1), ir.Known(1), attnS, attnS))
			mask := b.Input("mask", f32(attnB, ir.Known(1), ir.Known(1), attnS))
			kT := b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1))
			s := b.Op("Div", b.Op("MatMul", q, kT), scalarConst(b, "c", sqrtD))
			s = b.Op("Where", keep, s, scalarConst(b, "fill", -3.4028234663852886e38))
			p := b.Op("Softmax", b.Op("Add", s, mask), ir.IntAttr("axis", -1))
			return b.Op("MatMul", p, v)
		}, want{1 / sqrtD, "boolean+additive", attnHeads, 5, []int64{0, 2, 1, 3}}},
		// T5: no scale, position bias and mask added one after the other;
		// K^T as a last-two-axes Transpose of [B,H,S,D].
		"t5-two-biases": {func(b *ir.Builder) *ir.Value {
			q, k, v := headInputs(b, attnHeads)
			pos := b.Input("pos", f32(ir.Known(1), ir.Known(attnHeads), attnS, attnS))
			mask := b.Input("mask", f32(attnB, ir.Known(1), ir.Known(1), attnS))
			kBHSD := b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 1, 3))
			s := b.Op("MatMul", q, b.Op("Transpose", kBHSD, ir.IntsAttr("perm", 0, 1, 3, 2)))
			p := b.Op("Softmax", b.Op("Add", b.Op("Add", s, pos), mask), ir.IntAttr("axis", -1))
			return b.Op("MatMul", p, v)
		}, want{1, "additive", attnHeads, 4, []int64{0, 2, 1, 3}}},
		// Llama GQA: K and V of 2 heads repeated to 4 by Unsqueeze,
		// Expand and Reshape; rotary stays outside (here: Q is an input).
		"llama-gqa-repeat": {func(b *ir.Builder) *ir.Value {
			q, k, v := headInputs(b, 2)
			kBHSD := b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 1, 3))
			repeat := func(x *ir.Value) *ir.Value {
				u := b.Op("Unsqueeze", x, b.Const("axes_"+x.Name, i64([]int64{1}, 2)))
				e := b.Op("Expand", u, b.Const("rep_"+x.Name, i64([]int64{5}, 1, 1, 2, 1, 1)))
				return b.Op("Reshape", e, b.Const("to4_"+x.Name, i64([]int64{4}, 0, attnHeads, -1, attnHead)))
			}
			kr := repeat(kBHSD)
			s := b.Op("Mul", b.Op("MatMul", q, b.Op("Transpose", kr, ir.IntsAttr("perm", 0, 1, 3, 2))), scalarConst(b, "c", 1/sqrtD))
			p := b.Op("Softmax", s, ir.IntAttr("axis", -1))
			return b.Op("MatMul", p, repeat(v))
		}, want{1 / sqrtD, "none", 2, 3, []int64{0, 2, 1, 3}}},
		// The ONNX opset-23 Attention op with a boolean mask.
		"onnx-attention-op23": {func(b *ir.Builder) *ir.Value {
			q, _, v := headInputs(b, attnHeads)
			k := b.Input("k4", f32(attnB, ir.Known(attnHeads), attnS, ir.Known(attnHead)))
			mask := b.Input("mask", ir.TensorOf(ir.Bool, attnB, ir.Known(1), attnS, attnS))
			return b.Op("Attention", q, k, v, mask, ir.FloatAttr("scale", 0.125))
		}, want{0.125, "boolean", attnHeads, 5, nil}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(23)
			y := c.build(b)
			b.Output(y)
			m := b.Model()
			items := runFuseAttentionTest(t, m)
			at := attentionNodes(m.Graph)
			if len(at) != 1 {
				t.Fatalf("%d tfc.Attention nodes, want 1; explanations %v\n%s", len(at), items, ir.PrintGraph(m.Graph))
			}
			n := at[0]
			for _, op := range ops(m.Graph) {
				if op == "Softmax" || op == "MatMul" {
					t.Fatalf("%s left after fusion:\n%s", op, ir.PrintGraph(m.Graph))
				}
			}
			if got := float64(n.AttrFloat("scale", -1)); math.Abs(got-c.want.scale) > 1e-6 {
				t.Errorf("scale %g, want %g", got, c.want.scale)
			}
			if got := n.AttrString("mask_kind", ""); got != c.want.kind {
				t.Errorf("mask_kind %q, want %q", got, c.want.kind)
			}
			if got := n.AttrInt("kv_num_heads", -1); got != c.want.kvHeads {
				t.Errorf("kv_num_heads %d, want %d", got, c.want.kvHeads)
			}
			if n.AttrInt("num_heads", -1) != attnHeads {
				t.Errorf("num_heads %d, want %d", n.AttrInt("num_heads", -1), attnHeads)
			}
			if len(n.Inputs) != c.want.inputs {
				t.Errorf("%d inputs, want %d: %s", len(n.Inputs), c.want.inputs, n.Describe())
			}
			if n.Inputs[0].Name != "q" {
				t.Errorf("Q is %q, want the input q", n.Inputs[0].Name)
			}
			if c.want.kvHeads != attnHeads && (n.Inputs[2].Name != "v") {
				t.Errorf("V is %q, want the unrepeated input v", n.Inputs[2].Name)
			}
			if c.want.kFromTranspose != nil {
				kp, _ := n.Inputs[1].Producer()
				if kp == nil || kp.Op != "Transpose" || kp.Inputs[0].Name != "k" {
					t.Fatalf("K comes from %v, want a Transpose of k", kp)
				}
				if perm, _ := kp.AttrInts("perm"); !slices.Equal(perm, c.want.kFromTranspose) {
					t.Errorf("K transpose perm %v, want %v", perm, c.want.kFromTranspose)
				}
			}
			if n.Outputs[0] != m.Graph.Outputs[0] {
				t.Errorf("tfc.Attention does not produce the graph output")
			}
		})
	}
}

func TestFuseAttentionMustNotFuse(t *testing.T) {
	cases := map[string]struct {
		build  func(b *ir.Builder) []*ir.Value
		reason string
	}{
		"softmax-not-last-axis": {func(b *ir.Builder) []*ir.Value {
			q, k, v := headInputs(b, attnHeads)
			s := b.Op("MatMul", q, b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1)))
			return []*ir.Value{b.Op("MatMul", b.Op("Softmax", s, ir.IntAttr("axis", 2)), v)}
		}, "normalizes the key axis"},
		"scores-used-elsewhere": {func(b *ir.Builder) []*ir.Value {
			q, k, v := headInputs(b, attnHeads)
			s := b.Op("Mul", b.Op("MatMul", q, b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1))), scalarConst(b, "c", 0.5))
			y := b.Op("MatMul", b.Op("Softmax", s, ir.IntAttr("axis", -1)), v)
			return []*ir.Value{y, s}
		}, "also used by"},
		"probabilities-used-elsewhere": {func(b *ir.Builder) []*ir.Value {
			q, k, v := headInputs(b, attnHeads)
			s := b.Op("MatMul", q, b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1)))
			p := b.Op("Softmax", s, ir.IntAttr("axis", -1))
			return []*ir.Value{b.Op("MatMul", p, v), b.Op("ReduceMax", p)}
		}, "also used by"},
		"mismatched-head-counts": {func(b *ir.Builder) []*ir.Value {
			q, _, _ := headInputs(b, attnHeads)
			k := b.Input("k3", f32(attnB, ir.Known(3), attnS, ir.Known(attnHead)))
			v := b.Input("v3", f32(attnB, ir.Known(3), attnS, ir.Known(attnHead)))
			return []*ir.Value{b.Op("Attention", q, k, v, ir.FloatAttr("scale", 0.125))}
		}, "mismatched head counts"},
		"scale-not-constant": {func(b *ir.Builder) []*ir.Value {
			q, k, v := headInputs(b, attnHeads)
			c := b.Input("c", f32())
			s := b.Op("Div", b.Op("MatMul", q, b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1))), c)
			return []*ir.Value{b.Op("MatMul", b.Op("Softmax", s, ir.IntAttr("axis", -1)), v)}
		}, "is a one-element float constant"},
		"mask-widens-scores": {func(b *ir.Builder) []*ir.Value {
			q := b.Input("q1", f32(attnB, ir.Known(attnHeads), ir.Known(1), ir.Known(attnHead)))
			_, k, v := headInputs(b, attnHeads)
			mask := b.Input("mask", f32(attnB, ir.Known(1), ir.Known(5), attnS))
			s := b.Op("MatMul", q, b.Op("Transpose", k, ir.IntsAttr("perm", 0, 2, 3, 1)))
			return []*ir.Value{b.Op("MatMul", b.Op("Softmax", b.Op("Add", s, mask), ir.IntAttr("axis", -1)), v)}
		}, "without widening"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(23)
			b.Output(c.build(b)...)
			m := b.Model()
			items := runFuseAttentionTest(t, m)
			if n := len(attentionNodes(m.Graph)); n != 0 {
				t.Fatalf("fused %d attention nodes:\n%s", n, ir.PrintGraph(m.Graph))
			}
			var texts []string
			found := false
			for _, e := range items {
				texts = append(texts, e.String())
				if e.Pass == "fuse-attention" && strings.Contains(e.Reason, c.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no fuse-attention explanation says %q:\n%s", c.reason, strings.Join(texts, "\n"))
			}
		})
	}
}

// TestFuseAttentionExplainsEachSoftmax checks that explanations are about
// Softmax anchors, one per unfused Softmax, and not about the projection
// MatMuls the rule also looked at.
func TestFuseAttentionExplainsEachSoftmax(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(attnB, attnS, ir.Known(attnHead)))
	w := b.Const("w", ir.Float32Tensor([]int64{attnHead, attnHead}, make([]float32, attnHead*attnHead)...))
	h := b.Op("MatMul", x, w)
	p := b.Op("Softmax", h, ir.IntAttr("axis", 1))
	b.Output(b.Op("MatMul", p, b.Op("Transpose", h, ir.IntsAttr("perm", 0, 2, 1))))
	m := b.Model()
	items := runFuseAttentionTest(t, m)
	if len(items) != 1 || !strings.Contains(items[0].Anchor, "Softmax") {
		t.Fatalf("want one explanation anchored at the Softmax, got %v", items)
	}
}

// TestFuseAttentionEinsumLayouts covers the Einsum forms of XLNet (scores
// [b,n,i,j], a position term inside the scale, the mask subtracted, and
// the shape of the scores read for the relative shift) and
// Transformer-XL (scores [i,j,b,n], Softmax over axis 1, masked_fill after
// the position term).
func TestFuseAttentionEinsumLayouts(t *testing.T) {
	sbnd := func(b *ir.Builder, name string) *ir.Value {
		return b.Input(name, f32(attnS, attnB, ir.Known(attnHeads), ir.Known(attnHead)))
	}
	cases := map[string]struct {
		build func(b *ir.Builder) []*ir.Value
		kind  string
		yPerm []int64
	}{
		"xlnet": {func(b *ir.Builder) []*ir.Value {
			q, k, v := sbnd(b, "q"), sbnd(b, "k"), sbnd(b, "v")
			pos := b.Input("pos", f32(attnB, ir.Known(attnHeads), attnS, attnS))
			mask := b.Input("mask", f32(attnB, ir.Known(1), ir.Known(1), attnS))
			ac := b.Op("Einsum", q, k, ir.StringAttr("equation", "ibnd,jbnd->bnij"))
			s := b.Op("Mul", b.Op("Add", ac, pos), scalarConst(b, "c", 0.125))
			s = b.Op("Sub", s, b.Op("Mul", mask, scalarConst(b, "big", 1e30)))
			p := b.Op("Softmax", s, ir.IntAttr("axis", 3))
			return []*ir.Value{b.Op("Einsum", p, v, ir.StringAttr("equation", "bnij,jbnd->ibnd")), b.Op("Shape", ac)}
		}, "additive", []int64{2, 0, 1, 3}},
		"transfo-xl": {func(b *ir.Builder) []*ir.Value {
			q, k, v := sbnd(b, "q"), sbnd(b, "k"), sbnd(b, "v")
			pos := b.Input("pos", f32(attnS, attnS, attnB, ir.Known(attnHeads)))
			drop := b.Input("drop", ir.TensorOf(ir.Bool, attnS, attnS, ir.Known(1), ir.Known(1)))
			ac := b.Op("Einsum", q, k, ir.StringAttr("equation", "ibnd,jbnd->ijbn"))
			s := b.Op("Mul", b.Op("Add", ac, pos), scalarConst(b, "c", 0.125))
			s = b.Op("Where", drop, scalarConst(b, "fill", math.Inf(-1)), s)
			p := b.Op("Softmax", s, ir.IntAttr("axis", 1))
			return []*ir.Value{b.Op("Einsum", p, v, ir.StringAttr("equation", "ijbn,jbnd->ibnd"))}
		}, "boolean+additive", []int64{2, 0, 1, 3}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(17)
			b.Output(c.build(b)...)
			m := b.Model()
			items := runFuseAttentionTest(t, m)
			at := attentionNodes(m.Graph)
			if len(at) != 1 {
				t.Fatalf("%d tfc.Attention nodes, want 1; explanations %v\n%s", len(at), items, ir.PrintGraph(m.Graph))
			}
			n := at[0]
			if slices.Contains(ops(m.Graph), "Einsum") || slices.Contains(ops(m.Graph), "Softmax") {
				t.Fatalf("Einsum or Softmax left:\n%s", ir.PrintGraph(m.Graph))
			}
			if got := n.AttrString("mask_kind", ""); got != c.kind {
				t.Errorf("mask_kind %q, want %q", got, c.kind)
			}
			if got := n.AttrFloat("scale", 0); got != 0.125 {
				t.Errorf("scale %g, want 0.125", got)
			}
			qp, _ := n.Inputs[0].Producer()
			if perm, _ := qp.AttrInts("perm"); qp.Op != "Transpose" || !slices.Equal(perm, []int64{1, 2, 0, 3}) {
				t.Errorf("Q comes from %s, want Transpose perm [1 2 0 3] of [i,b,n,d]", qp.Describe())
			}
			y := m.Graph.Outputs[0]
			yp, _ := y.Producer()
			if perm, _ := yp.AttrInts("perm"); yp.Op != "Transpose" || yp.Inputs[0] != n.Outputs[0] || !slices.Equal(perm, c.yPerm) {
				t.Errorf("the output comes from %s, want Transpose %v of the attention", yp.Describe(), c.yPerm)
			}
		})
	}
}

// headsInBatchCase selects a variant of the [B*H,S,D] attention graph.
type headsInBatchCase struct {
	inputs3D     bool // Q, K, V are [B*H,S,D] graph inputs, not merged from [B,H,S,D]
	probsUsed    bool // the [B*H,S,S] probabilities are also a graph output
	dynamicHeads bool // the scores' split reads the head count from an input
	softmax3D    bool // older BART: the masked scores merged back to 3-D for Softmax
	queryAxis    bool // with softmax3D: the Softmax normalizes axis 1 (queries), not keys
}

// buildHeadsInBatch builds attention the way transformers' DebertaV2
// writes it: heads merged into the batch axis, [B*H,S,D], for 3-D
// MatMuls; K^T divided by sqrt(d*3), d read from Shape(q); a c2p-like
// position term MatMul(q, pos) added; the scores split into [B,H,S,S] by
// a Reshape built from Shape(scores) for masked_fill (Where(Not(keep),
// min, s)) and Softmax; the probabilities merged back, with a Reshape
// built from Shape(probs), for the PV MatMul.
func buildHeadsInBatch(b *ir.Builder, c headsInBatchCase) []*ir.Value {
	one := func(name string, x int64) *ir.Value { return b.Const(name, i64([]int64{1}, x)) }
	minus1, c1, c2, c3, c4 := one("minus1", -1), one("one", 1), one("two", 2), one("three", 3), one("four", 4)
	var q3, k3, v3 *ir.Value
	if c.inputs3D {
		// The name shape inference gives B*H.
		t := f32(ir.Sym("4*batch"), attnS, ir.Known(attnHead))
		q3, k3, v3 = b.Input("q", t), b.Input("k", t), b.Input("v", t)
	} else {
		t := f32(attnB, ir.Known(attnHeads), attnS, ir.Known(attnHead))
		merge := func(x *ir.Value) *ir.Value {
			tail := b.Op("Slice", b.Op("Shape", x), c2, c4)
			return b.Op("Reshape", x, b.Op("Concat", minus1, tail, ir.IntAttr("axis", 0)))
		}
		q3, k3, v3 = merge(b.Input("q", t)), merge(b.Input("k", t)), merge(b.Input("v", t))
	}
	pos := b.Input("pos", f32(ir.Known(attnHead), attnS))
	keep := b.Input("keep", ir.TensorOf(ir.Bool, attnB, ir.Known(1), ir.Known(1), attnS))
	d := b.Op("Squeeze", b.Op("Slice", b.Op("Shape", q3), minus1, b.Const("int64_max", i64([]int64{1}, math.MaxInt64)), b.Const("axis0", i64([]int64{1}, 0))), b.Const("axes0", i64([]int64{1}, 0)))
	scale := b.Op("Sqrt", b.Op("Mul", b.Op("Cast", d, ir.IntAttr("to", int64(ir.Float))), scalarConst(b, "factor", 3)))
	qk := b.Op("MatMul", q3, b.Op("Div", b.Op("Transpose", k3, ir.IntsAttr("perm", 0, 2, 1)), scale))
	c2p := b.Op("Div", b.Op("MatMul", q3, pos), scale)
	s3 := b.Op("Add", qk, c2p)
	heads := c4
	if c.dynamicHeads {
		heads = b.Input("heads", ir.TensorOfSizes(ir.Int64, 1))
	}
	split := b.Op("Concat", minus1, heads, b.Op("Slice", b.Op("Shape", s3), c1, c3), ir.IntAttr("axis", 0))
	s4 := b.Op("Reshape", s3, split)
	s4 = b.Op("Where", b.Op("Not", keep), scalarConst(b, "fill", -math.MaxFloat32), s4)
	if c.softmax3D {
		s3 := b.Op("Reshape", s4, b.Op("Concat", minus1, b.Op("Slice", b.Op("Shape", s4), c2, c4), ir.IntAttr("axis", 0)))
		axis := int64(2)
		if c.queryAxis {
			axis = 1
		}
		p3 := b.Op("Softmax", s3, ir.IntAttr("axis", axis))
		return []*ir.Value{b.Op("MatMul", p3, v3)}
	}
	p4 := b.Op("Softmax", s4, ir.IntAttr("axis", -1))
	var merge *ir.Value
	if c.dynamicHeads {
		// Shape(probs) would have unknown dimensions: read the scores'.
		merge = b.Op("Slice", b.Op("Shape", s3), c1, c3)
	} else {
		merge = b.Op("Slice", b.Op("Shape", p4), c2, c4)
	}
	p3 := b.Op("Reshape", p4, b.Op("Concat", minus1, merge, ir.IntAttr("axis", 0)))
	out := []*ir.Value{b.Op("MatMul", p3, v3)}
	if c.probsUsed {
		out = append(out, p3)
	}
	return out
}

// headsInBatchFeeds returns random inputs for buildHeadsInBatch with
// batch 2 and sequence 5; some keys are masked, never a whole row.
func headsInBatchFeeds(t *testing.T, c headsInBatchCase) map[string]*cpu.Tensor {
	t.Helper()
	const batch, seq = 2, 5
	r := rand.New(rand.NewPCG(5, 17))
	floats := func(dims ...int64) *cpu.Tensor {
		n := int64(1)
		for _, x := range dims {
			n *= x
		}
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(r.NormFloat64())
		}
		ct, err := cpu.FromIR(ir.Float32Tensor(dims, xs...))
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	feeds := map[string]*cpu.Tensor{"pos": floats(attnHead, seq)}
	for _, name := range []string{"q", "k", "v"} {
		if c.inputs3D {
			feeds[name] = floats(batch*attnHeads, seq, attnHead)
		} else {
			feeds[name] = floats(batch, attnHeads, seq, attnHead)
		}
	}
	keep, err := cpu.NewTensor(ir.Bool, []int{batch, 1, 1, seq})
	if err != nil {
		t.Fatal(err)
	}
	kv := keep.Data.([]bool)
	for i := range kv {
		kv[i] = i%seq == 0 || r.IntN(3) != 0
	}
	kv[seq-1] = false // batch 0's last key is masked
	feeds["keep"] = keep
	return feeds
}

// TestFuseAttentionHeadsInBatch fuses the [B*H,S,S] form, with Q, K, V
// merged from [B,H,S,D] (DeBERTa-v2) or given in 3-D, and with the
// Softmax on 4-D or (older BART exports) 3-D scores, and checks the fused
// graph against the unfused one on the CPU backend.
func TestFuseAttentionHeadsInBatch(t *testing.T) {
	for name, c := range map[string]headsInBatchCase{
		"merged-from-4d": {},
		"3d-inputs":      {inputs3D: true},
		"3d-softmax":     {softmax3D: true},
	} {
		t.Run(name, func(t *testing.T) {
			build := func() *ir.Model {
				b := ir.NewBuilder(17)
				b.Output(buildHeadsInBatch(b, c)...)
				return b.Model()
			}
			feeds := headsInBatchFeeds(t, c)
			want := runHeadsInBatch(t, build(), feeds)
			m := build()
			items := runFuseAttentionTest(t, m)
			at := attentionNodes(m.Graph)
			if len(at) != 1 {
				t.Fatalf("%d tfc.Attention nodes, want 1; explanations %v\n%s", len(at), items, ir.PrintGraph(m.Graph))
			}
			n := at[0]
			for _, op := range ops(m.Graph) {
				if op == "Softmax" {
					t.Fatalf("%s left after fusion:\n%s", op, ir.PrintGraph(m.Graph))
				}
			}
			if got, want := float64(n.AttrFloat("scale", -1)), 1/math.Sqrt(attnHead*3); math.Abs(got-want) > 1e-6 {
				t.Errorf("scale %g, want 1/sqrt(d*3) = %g", got, want)
			}
			if got := n.AttrString("mask_kind", ""); got != "boolean+additive" {
				t.Errorf("mask_kind %q, want boolean+additive", got)
			}
			if got := n.AttrInt("num_heads", -1); got != attnHeads {
				t.Errorf("num_heads %d, want %d", got, attnHeads)
			}
			if !c.inputs3D {
				for i, name := range []string{"q", "k", "v"} {
					if n.Inputs[i].Name != name {
						t.Errorf("input %d is %q, want the [B,H,S,D] input %q before the head merge", i, n.Inputs[i].Name, name)
					}
				}
			}
			if n.Inputs[4].Name != "keep" {
				t.Errorf("keep mask is %q, want the input keep (Not(Not(keep)) folded)", n.Inputs[4].Name)
			}
			got := runHeadsInBatch(t, m, feeds)
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range want {
				if d := math.Abs(got[i] - want[i]); d > 1e-5+1e-4*math.Abs(want[i]) {
					t.Fatalf("output element %d is %g, the unfused graph gives %g", i, got[i], want[i])
				}
			}
		})
	}
}

// runHeadsInBatch runs m's first output on the CPU backend.
func runHeadsInBatch(t *testing.T, m *ir.Model, feeds map[string]*cpu.Tensor) []float64 {
	t.Helper()
	exe, err := cpu.Compile(m, cpu.Options{Threads: 1})
	if err != nil {
		t.Fatalf("cpu.Compile: %v\n%s", err, ir.PrintGraph(m.Graph))
	}
	outs, err := exe.Run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, ir.PrintGraph(m.Graph))
	}
	y, ok := outs[m.Graph.Outputs[0].Name].Float64s()
	if !ok {
		t.Fatalf("output %q is not float", m.Graph.Outputs[0].Name)
	}
	return y
}

// TestFuseAttentionHeadsInBatchMustNotFuse: the [B*H,S,S] probabilities
// returned too, a head count only known at run time, and a 3-D Softmax
// over the query axis.
func TestFuseAttentionHeadsInBatchMustNotFuse(t *testing.T) {
	for name, c := range map[string]struct {
		c      headsInBatchCase
		reason string
	}{
		"probabilities-used-elsewhere": {headsInBatchCase{probsUsed: true}, "graph output"},
		"head-count-not-known":         {headsInBatchCase{dynamicHeads: true}, "splits the scores"},
		"3d-softmax-over-queries":      {headsInBatchCase{softmax3D: true, queryAxis: true}, "normalizes the key axis"},
	} {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(17)
			b.Output(buildHeadsInBatch(b, c.c)...)
			m := b.Model()
			items := runFuseAttentionTest(t, m)
			if n := len(attentionNodes(m.Graph)); n != 0 {
				t.Fatalf("fused %d attention nodes:\n%s", n, ir.PrintGraph(m.Graph))
			}
			var texts []string
			found := false
			for _, e := range items {
				texts = append(texts, e.String())
				if e.Pass == "fuse-attention" && strings.Contains(e.Reason, c.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no fuse-attention explanation says %q:\n%s", c.reason, strings.Join(texts, "\n"))
			}
		})
	}
}

// TestStaticScalar evaluates scales computed from shapes: known
// dimensions fold, symbolic ones do not.
func TestStaticScalar(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(attnB, attnS, ir.Known(12)))
	last := b.Op("Slice", b.Op("Shape", x), b.Const("from", i64([]int64{1}, -1)), b.Const("to", i64([]int64{1}, math.MaxInt64)))
	cast := func(v *ir.Value) *ir.Value { return b.Op("Cast", v, ir.IntAttr("to", int64(ir.Float))) }
	known := b.Op("Sqrt", b.Op("Mul", cast(b.Op("Squeeze", last)), scalarConst(b, "three", 3)))
	first := b.Op("Gather", b.Op("Shape", x), b.Const("zero", i64([]int64{}, 0)), ir.IntAttr("axis", 0))
	symbolic := b.Op("Sqrt", cast(first))
	halved := b.Op("Div", b.Op("Squeeze", last), b.Const("five", i64([]int64{}, 5)))
	b.Output(known, symbolic, halved)
	m := b.Model()
	if _, err := ir.InferShapes(m); err != nil {
		t.Fatal(err)
	}
	if got, ok := staticScalar(known); !ok || math.Abs(got-6) > 1e-6 {
		t.Errorf("sqrt(12*3) = %g, %v; want 6, true", got, ok)
	}
	if got, ok := staticScalar(symbolic); ok {
		t.Errorf("sqrt(batch) evaluated to %g", got)
	}
	if got, ok := staticScalar(halved); !ok || got != 2 {
		t.Errorf("integer 12/5 = %g, %v; want 2 (truncated), true", got, ok)
	}
}
