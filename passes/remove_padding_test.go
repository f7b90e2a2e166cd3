package passes

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// encoderOptions vary the builder-made one-layer encoder.
type encoderOptions struct {
	noMask       bool   // attention without a mask input (ViT-like)
	maskKind     string // mask_kind attribute; "additive" by default
	poolReduce   bool   // a ReduceMean over the sequence reads the hidden states
	clsPool      bool   // a CLS Gather reads the output
	shapeOfHeads bool   // sdpa-style Shape of the head split
}

// paddedEncoder builds ids, mask -> embedding Gather -> LayerNorm ->
// Q/K/V projections -> head split -> tfc.Attention with an additive mask
// from the mask input -> head merge -> output projection + SkipLayerNorm
// -> BiasGelu MLP -> output, in the -O2 form remove-padding sees.
func paddedEncoder(o encoderOptions) *ir.Model {
	const H, heads, D, V = 8, 2, 4, 11
	b := ir.NewBuilder(17)
	B, S := ir.Sym("batch"), ir.Sym("seq")
	ids := b.Input("input_ids", ir.TensorOf(ir.Int64, B, S))
	mask := b.Input("attention_mask", ir.TensorOf(ir.Int64, B, S))
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%7)/7 - 0.4
		}
		return v
	}
	w := func(name string, dims ...int64) *ir.Value {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		return b.Const(name, ir.Float32Tensor(dims, vals(int(n))...))
	}
	x := b.Op("Gather", w("emb", V, H), ids)
	h := b.Op("tfc::LayerNorm", x, w("ln_s", H), w("ln_b", H), ir.FloatAttr("epsilon", 1e-5))
	split := b.Const("split_shape", ir.Int64Tensor([]int64{4}, 0, 0, heads, D))
	proj := func(name string) *ir.Value {
		p := b.Op("Add", b.Op("MatMul", h, w(name+"_w", H, H)), w(name+"_b", H))
		return b.Op("Transpose", b.Op("Reshape", p, split), ir.IntsAttr("perm", 0, 2, 1, 3))
	}
	q, k, v := proj("q"), proj("k"), proj("v")
	args := []any{q, k, v}
	kind := o.maskKind
	if kind == "" {
		kind = "additive"
	}
	if !o.noMask {
		m := b.Op("Cast", b.Op("Unsqueeze", mask, b.Const("axes", ir.Int64Tensor([]int64{2}, 1, 2))), ir.IntAttr("to", int64(ir.Float)))
		bias := b.Op("Mul", b.Op("Sub", b.Const("one", ir.Float32Tensor([]int64{}, 1)), m), b.Const("neg", ir.Float32Tensor([]int64{}, -10000)))
		args = append(args, bias)
	} else {
		kind = "none"
	}
	args = append(args, ir.FloatAttr("scale", 0.5), ir.IntAttr("num_heads", heads), ir.IntAttr("kv_num_heads", heads), ir.StringAttr("mask_kind", kind))
	a := b.Op("tfc::Attention", args...)
	if o.shapeOfHeads {
		b.Output(b.Op("Shape", q))
	}
	merged := b.Op("Reshape", b.Op("Transpose", a, ir.IntsAttr("perm", 0, 2, 1, 3)), b.Const("merge_shape", ir.Int64Tensor([]int64{3}, 0, 0, H)))
	h2 := b.Op("tfc::SkipLayerNorm", b.Op("MatMul", merged, w("o_w", H, H)), h, w("ln2_s", H), w("ln2_b", H), ir.FloatAttr("epsilon", 1e-5))
	mlp := b.Op("MatMul", b.Op("tfc::BiasGelu", b.Op("MatMul", h2, w("fc1", H, 2*H)), w("fc1_b", 2*H), ir.StringAttr("approximate", "none")), w("fc2", 2*H, H))
	out := b.Op("tfc::SkipLayerNorm", mlp, h2, w("ln3_s", H), w("ln3_b", H), ir.FloatAttr("epsilon", 1e-5))
	b.Output(out)
	if o.clsPool {
		b.Output(b.Op("Gather", out, b.Const("cls", ir.Int64Tensor([]int64{}, 0)), ir.IntAttr("axis", 1)))
	}
	if o.poolReduce {
		b.Output(b.Op("ReduceMean", out, b.Const("seq_axis", ir.Int64Tensor([]int64{1}, 1))))
	}
	return b.Model()
}

func countOps(g *ir.Graph, op string) int {
	n := 0
	for _, x := range g.Nodes {
		if x.Op == op {
			n++
		}
	}
	return n
}

func runRemovePadding(t *testing.T, m *ir.Model) (*Report, []Explanation) {
	t.Helper()
	if err := ir.Verify(m); err != nil {
		t.Fatalf("test model does not verify: %v", err)
	}
	p, err := ParseSpec("infer-shapes,remove-padding,canonicalize")
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	p.ReproDir = t.TempDir()
	ctx := &Context{Explain: &Explanations{}}
	r, err := p.Run(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	return r, ctx.Explain.Items
}

// runDeclinedRemovePadding infers shapes, runs remove-padding with
// --explain on, fails if the model changed, and returns the
// explanations.
func runDeclinedRemovePadding(t *testing.T, m *ir.Model) []Explanation {
	t.Helper()
	p, _ := ParseSpec("infer-shapes")
	if _, err := p.Run(nil, m); err != nil {
		t.Fatal(err)
	}
	before := Fingerprint(m.Graph)
	rp, _ := ParseSpec("remove-padding")
	rp.VerifyEach = true
	ctx := &Context{Explain: &Explanations{}}
	if _, err := rp.Run(ctx, m); err != nil {
		t.Fatal(err)
	}
	if Fingerprint(m.Graph) != before {
		t.Fatalf("a declined model was changed:\n%s", ir.PrintGraph(m.Graph))
	}
	return ctx.Explain.Items
}

func TestRemovePaddingPacksEncoder(t *testing.T) {
	for _, o := range []encoderOptions{{}, {clsPool: true}, {shapeOfHeads: true}} {
		m := paddedEncoder(o)
		outNames := []string{}
		for _, v := range m.Graph.Outputs {
			outNames = append(outNames, v.Name)
		}
		_, ex := runRemovePadding(t, m)
		g := m.Graph
		if countOps(g, "PackTokens") != 1 || countOps(g, "PackedAttention") != 1 || countOps(g, "Attention") != 0 {
			t.Fatalf("%+v: want one PackTokens, one PackedAttention, no Attention; explanations %v\n%s", o, ex, ir.PrintGraph(g))
		}
		// One unpack per per-token reader: the output, and the CLS Gather
		// shares it.
		if n := countOps(g, "UnpackTokens"); n != 1 {
			t.Fatalf("%+v: %d UnpackTokens, want 1\n%s", o, n, ir.PrintGraph(g))
		}
		for i, v := range g.Outputs {
			if v.Name != outNames[i] {
				t.Fatalf("%+v: output %d is %q, want the original name %q", o, i, v.Name, outNames[i])
			}
		}
		// Every token-wise op after the pack runs on [T, ...]: no value
		// between PackTokens and UnpackTokens keeps the [batch, seq] dims
		// except the mask arithmetic.
		for _, n := range g.Nodes {
			if n.Op == "MatMul" || n.Op == "SkipLayerNorm" || n.Op == "BiasGelu" {
				if r := n.Outputs[0].Type.Rank(); r != 2 {
					t.Fatalf("%+v: %s has rank %d output %v, want packed [T, H]", o, n.Describe(), r, n.Outputs[0].Type)
				}
			}
		}
		if o.shapeOfHeads {
			// The Shape of the head split reads the mask's dims now.
			for _, n := range g.Nodes {
				if n.Op == "Shape" && n.Inputs[0].Name != "attention_mask" {
					t.Fatalf("a Shape still reads %q", n.Inputs[0].Name)
				}
			}
		}
	}
}

func TestRemovePaddingDeclines(t *testing.T) {
	for _, c := range []struct {
		name string
		o    encoderOptions
		why  string
	}{
		{"no mask", encoderOptions{noMask: true}, "no mask input"},
		{"unknown reader", encoderOptions{poolReduce: true}, "ReduceMean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := runDeclinedRemovePadding(t, paddedEncoder(c.o))
			found := false
			for _, e := range ex {
				if e.Pass == "remove-padding" && strings.Contains(e.Anchor+" "+e.Reason, c.why) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no remove-padding explanation containing %q; got %v", c.why, ex)
			}
		})
	}
}

func TestRemovePaddingIdempotent(t *testing.T) {
	m := paddedEncoder(encoderOptions{clsPool: true})
	runRemovePadding(t, m)
	once := Fingerprint(m.Graph)
	runRemovePadding(t, m)
	if Fingerprint(m.Graph) != once {
		t.Fatalf("a second run changed the packed graph:\n%s", ir.PrintGraph(m.Graph))
	}
}

// decoderOptions vary the builder-made one-layer decoder.
type decoderOptions struct {
	fusedQKV   bool   // GPT-2: Reshape [-1, H] -> Gemm -> Reshape back -> Split of the fused QKV
	rotary     bool   // Llama: q·cos + rotate_half(q)·sin in the head layout, cos/sin [1, 1, S, D]
	maskKind   string // "additive" by default
	splitAxis  int64  // the fused QKV Split's axis; 2 by default
	flattenSeq bool   // a Reshape [B, S, H] -> [B, S·H] reads the hidden states
	gqaRepeat  bool   // one K/V head repeated to two (Unsqueeze, Expand, Reshape) before the attention
	castLike   bool   // a CastLike takes the element type of the head split
	kRoundTrip bool   // K goes through [B·H, S, D], [B·H, D, S], [B, H, D, S], a scalar Mul and back (dynamo sdpa-op17)
}

// paddedDecoder builds ids, mask, positions -> token embedding Gather,
// position embedding [1, S, H] added by a SkipLayerNorm (GPT-2) or a
// pre-norm RMSNorm over the embeddings (Llama) -> Q/K/V projections ->
// head split -> optional rotary -> tfc.Attention with an additive mask
// from the mask input -> head merge -> output projection -> residual Add
// -> output, in the -O2 form remove-padding sees.
func paddedDecoder(o decoderOptions) *ir.Model {
	const H, heads, D, V = 8, 2, 4, 11
	b := ir.NewBuilder(17)
	B, S := ir.Sym("batch"), ir.Sym("seq")
	ids := b.Input("input_ids", ir.TensorOf(ir.Int64, B, S))
	mask := b.Input("attention_mask", ir.TensorOf(ir.Int64, B, S))
	posIDs := b.Input("position_ids", ir.TensorOf(ir.Int64, ir.Known(1), S))
	w := func(name string, dims ...int64) *ir.Value {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%5)/5 - 0.3
		}
		return b.Const(name, ir.Float32Tensor(dims, v...))
	}
	i64 := func(name string, vals ...int64) *ir.Value {
		return b.Const(name, ir.Int64Tensor([]int64{int64(len(vals))}, vals...))
	}
	x := b.Op("Gather", w("wte", V, H), ids)
	var h, resid *ir.Value
	if o.fusedQKV {
		pos := b.Op("Gather", w("wpe", 16, H), posIDs)
		outs := b.OpN("tfc::SkipLayerNorm", 2, x, pos, w("ln_s", H), w("ln_b", H), ir.FloatAttr("epsilon", 1e-5))
		h, resid = outs[0], outs[1]
	} else {
		h = b.Op("tfc::RMSNorm", x, w("rms_s", H), ir.FloatAttr("epsilon", 1e-5))
		resid = x
	}
	if o.flattenSeq {
		b.Output(b.Op("Reshape", h, i64("flat_seq", 0, -1)))
	}
	headShape := i64("head_shape", 0, 0, heads, D)
	split := func(p *ir.Value) *ir.Value {
		return b.Op("Transpose", b.Op("Reshape", p, headShape), ir.IntsAttr("perm", 0, 2, 1, 3))
	}
	var q, k, v *ir.Value
	if o.fusedQKV {
		flat := b.Op("Reshape", h, i64("flat", -1, H))
		qkv := b.Op("Gemm", flat, w("c_attn", H, 3*H), w("c_attn_b", 3*H))
		// The shape back to [B, S, 3H] is read from the hidden states.
		bs := b.Op("Slice", b.Op("Shape", h), i64("zero", 0), i64("two", 2))
		back := b.Op("Reshape", qkv, b.Op("Concat", bs, i64("three_h", 3*H), ir.IntAttr("axis", 0)))
		ax := o.splitAxis
		if ax == 0 {
			ax = 2
		}
		parts := b.OpN("Split", 3, back, i64("sizes", H, H, H), ir.IntAttr("axis", ax))
		q, k, v = split(parts[0]), split(parts[1]), split(parts[2])
	} else {
		q, k, v = split(b.Op("MatMul", h, w("wq", H, H))), split(b.Op("MatMul", h, w("wk", H, H))), split(b.Op("MatMul", h, w("wv", H, H)))
	}
	if o.rotary {
		// cos and sin per position, [1, 1, S, D].
		freq := b.Op("Mul", b.Op("Unsqueeze", b.Op("Cast", posIDs, ir.IntAttr("to", int64(ir.Float))), i64("last", 2)), w("inv_freq", D))
		ang := b.Op("Unsqueeze", freq, i64("heads_axis", 1))
		cos, sin := b.Op("Cos", ang), b.Op("Sin", ang)
		loS, loE, loA := i64("lo_s", 0), i64("lo_e", D/2), i64("lo_a", 3)
		hiS, hiE, hiA := i64("hi_s", D/2), i64("hi_e", 1<<62), i64("hi_a", -1)
		rope := func(t *ir.Value) *ir.Value {
			lo := b.Op("Slice", t, loS, loE, loA)
			hi := b.Op("Slice", t, hiS, hiE, hiA)
			rot := b.Op("Concat", b.Op("Neg", hi), lo, ir.IntAttr("axis", -1))
			return b.Op("Add", b.Op("Mul", t, cos), b.Op("Mul", rot, sin))
		}
		q, k = rope(q), rope(k)
	}
	if o.gqaRepeat {
		// K and V computed with one head, repeated to two as Llama's
		// repeat_kv writes it.
		kvShape := i64("kv_shape", 0, 0, 1, D)
		rep, expShape, merged := i64("rep_axis", 2), i64("rep_shape", 1, 1, heads, 1, 1), i64("rep_merge", 0, heads, -1, D)
		kv := func(name string) *ir.Value {
			one := b.Op("Transpose", b.Op("Reshape", b.Op("MatMul", h, w(name, H, D)), kvShape), ir.IntsAttr("perm", 0, 2, 1, 3))
			return b.Op("Reshape", b.Op("Expand", b.Op("Unsqueeze", one, rep), expShape), merged)
		}
		k, v = kv("wk1"), kv("wv1")
	}
	if o.kRoundTrip {
		shape := b.Op("Shape", k)
		last2 := b.Op("Slice", shape, i64("m2", -2), i64("m1", -1))
		last := b.Op("Slice", shape, i64("m1b", -1), i64("big", 1<<62))
		first2 := b.Op("Slice", shape, i64("small", -1<<62), i64("m2b", -2))
		flat := b.Op("Reshape", k, b.Op("Concat", i64("minus1", -1), last2, last, ir.IntAttr("axis", 0)))
		back := b.Op("Reshape", b.Op("Transpose", flat, ir.IntsAttr("perm", 0, 2, 1)), b.Op("Concat", first2, last, last2, ir.IntAttr("axis", 0)))
		scaled := b.Op("Mul", back, b.Const("sqrt_scale", ir.Float32Tensor([]int64{}, 0.9)))
		k = b.Op("Transpose", scaled, ir.IntsAttr("perm", 0, 1, 3, 2))
	}
	scale := b.Const("scale", ir.Float32Tensor([]int64{}, 0.5))
	if o.castLike {
		scale = b.Op("CastLike", scale, q)
	}
	kind := o.maskKind
	if kind == "" {
		kind = "additive"
	}
	m := b.Op("Cast", b.Op("Unsqueeze", mask, i64("axes", 1, 2)), ir.IntAttr("to", int64(ir.Float)))
	if o.castLike {
		// The scale's type taken from the queries (dynamo's sdpa), applied to the bias.
		m = b.Op("Mul", m, scale)
	}
	bias := b.Op("Mul", b.Op("Sub", b.Const("one", ir.Float32Tensor([]int64{}, 1)), m), b.Const("neg", ir.Float32Tensor([]int64{}, -10000)))
	a := b.Op("tfc::Attention", q, k, v, bias, ir.FloatAttr("scale", 0.5), ir.IntAttr("num_heads", heads), ir.IntAttr("kv_num_heads", heads), ir.StringAttr("mask_kind", kind))
	merged := b.Op("Reshape", b.Op("Transpose", a, ir.IntsAttr("perm", 0, 2, 1, 3)), i64("merge_shape", 0, 0, H))
	b.Output(b.Op("Add", b.Op("MatMul", merged, w("o_w", H, H)), resid))
	return b.Model()
}

func TestRemovePaddingPacksDecoder(t *testing.T) {
	for _, c := range []struct {
		name  string
		o     decoderOptions
		packs int // PackTokens: the hidden states and each per-position tensor
	}{
		{"gpt2", decoderOptions{fusedQKV: true}, 2},
		{"llama", decoderOptions{rotary: true}, 3},
		{"causal kind", decoderOptions{fusedQKV: true, maskKind: "additive+causal"}, 2},
		{"sliding kind", decoderOptions{rotary: true, maskKind: "additive+sliding:3"}, 3},
		{"gqa repeat", decoderOptions{rotary: true, gqaRepeat: true}, 3},
		{"castlike", decoderOptions{fusedQKV: true, castLike: true}, 2},
		{"k round trip", decoderOptions{rotary: true, kRoundTrip: true}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := paddedDecoder(c.o)
			_, ex := runRemovePadding(t, m)
			g := m.Graph
			if countOps(g, "PackTokens") != c.packs || countOps(g, "PackedAttention") != 1 || countOps(g, "Attention") != 0 || countOps(g, "UnpackTokens") != 1 {
				t.Fatalf("want %d PackTokens, one PackedAttention and one UnpackTokens, no Attention; explanations %v\n%s", c.packs, ex, ir.PrintGraph(g))
			}
			// The residual stream is packed from the embeddings on: a
			// PackTokens reads the token embedding Gather.
			embeddings := false
			for _, n := range g.Nodes {
				if p, _ := n.Inputs[0].Producer(); n.Op == "PackTokens" && p != nil && p.Op == "Gather" && p.Inputs[0].Name == "wte" {
					embeddings = true
				}
			}
			if !embeddings {
				t.Fatalf("the token embeddings are not packed:\n%s", ir.PrintGraph(g))
			}
			if c.o.kRoundTrip {
				// The layout round trip is gone; its scalar Mul stays, on
				// the packed [T, H, D] keys.
				scaled := 0
				for _, n := range g.Nodes {
					if len(n.Inputs) == 2 && n.Inputs[1].Name == "sqrt_scale" {
						scaled++
						if n.Outputs[0].Type.Rank() != 3 {
							t.Fatalf("%s works on %v, want packed [T, H, D]", n.Describe(), n.Outputs[0].Type)
						}
					}
					if p, _ := n.AttrInts("perm"); n.Op == "Transpose" && !slices.Equal(p, []int64{0, 2, 1, 3}) {
						t.Fatalf("the round trip's %s is left", n.Describe())
					}
				}
				if scaled != 1 {
					t.Fatalf("want the scalar Mul once:\n%s", ir.PrintGraph(g))
				}
			}
			for _, n := range g.Nodes {
				switch n.Op {
				case "MatMul", "Gemm", "Split", "RMSNorm", "SkipLayerNorm":
					if r := n.Outputs[0].Type.Rank(); r != 2 {
						t.Fatalf("%s has output %v, want packed [T, ...]", n.Describe(), n.Outputs[0].Type)
					}
				case "Slice", "Concat", "Neg":
					if n.Outputs[0].Type.Rank() == 4 {
						t.Fatalf("%s still works in the padded head layout: %v", n.Describe(), n.Outputs[0].Type)
					}
				case "PackedAttention":
					want := c.o.maskKind
					if want == "" {
						want = "additive"
					}
					if got := n.AttrString("mask_kind", ""); got != want {
						t.Fatalf("PackedAttention mask_kind %q, want the attention's %q", got, want)
					}
				}
			}
		})
	}
}

func TestRemovePaddingDeclinesDecoder(t *testing.T) {
	for _, c := range []struct {
		name string
		o    decoderOptions
		why  string
	}{
		{"split along seq", decoderOptions{fusedQKV: true, splitAxis: 1}, "along the batch or seq axis"},
		{"reshape merges seq", decoderOptions{rotary: true, flattenSeq: true}, "reshapes more than the dims after batch and seq"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := runDeclinedRemovePadding(t, paddedDecoder(c.o))
			found := false
			for _, e := range ex {
				if e.Pass == "remove-padding" && strings.Contains(e.Reason, c.why) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no remove-padding explanation containing %q; got %v", c.why, ex)
			}
		})
	}
}

// TestRegroup: the Reshape bookkeeping of identityChain follows whole
// original axes through merges and splits, and refuses what it cannot
// prove (a reshape that moves data between axes is not a relabeling).
func TestRegroup(t *testing.T) {
	B, S := ir.Sym("batch"), ir.Sym("seq")
	atoms := []ir.Dim{B, ir.Known(2), S, ir.Known(4)} // [B, H, S, D]
	start := [][]int{{0}, {1}, {2}, {3}}
	// [B, H, S, D] -> [B·H, S, D]: the symbolic first dim takes B and H.
	g := regroup(start, atoms, []ir.Dim{ir.Sym("batch*2"), S, ir.Known(4)})
	if fmt.Sprint(g) != "[[0 1] [2] [3]]" {
		t.Fatalf("merge: %v", g)
	}
	// After a Transpose [0, 2, 1]: [B·H, D, S] -> [B, H, D, S].
	g = regroup([][]int{{0, 1}, {3}, {2}}, atoms, []ir.Dim{B, ir.Known(2), ir.Known(4), S})
	if fmt.Sprint(g) != "[[0] [1] [3] [2]]" {
		t.Fatalf("split: %v", g)
	}
	// A known size spanning two known axes.
	g = regroup([][]int{{0}, {2}, {1}, {3}}, atoms, []ir.Dim{B, S, ir.Known(8)})
	if fmt.Sprint(g) != "[[0] [2] [1 3]]" {
		t.Fatalf("known merge: %v", g)
	}
	// [B, H, S, D] -> [B, S, H, D] moves data; it is not provable as a
	// regrouping and must be refused.
	if g := regroup(start, atoms, []ir.Dim{B, S, ir.Known(2), ir.Known(4)}); g != nil {
		t.Fatalf("a data-moving reshape was taken for a regrouping: %v", g)
	}
	// A known size that no run of whole axes makes.
	if g := regroup(start, atoms, []ir.Dim{B, ir.Known(3), S, ir.Known(8)}); g != nil {
		t.Fatalf("a split of an axis was accepted: %v", g)
	}
}
