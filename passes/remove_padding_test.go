package passes

import (
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
		{"causal", encoderOptions{maskKind: "additive+causal"}, "only padding masks"},
		{"unknown reader", encoderOptions{poolReduce: true}, "ReduceMean"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := paddedEncoder(c.o)
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
			ex := ctx.Explain.Items
			if Fingerprint(m.Graph) != before {
				t.Fatalf("a declined model was changed:\n%s", ir.PrintGraph(m.Graph))
			}
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
