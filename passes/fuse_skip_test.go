package passes

import (
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// hidden is the [batch, seq, 8] activation type of these tests.
func hidden() ir.Type { return f32(ir.Sym("batch"), ir.Sym("seq"), ir.Known(8)) }

func ones8(b *ir.Builder, name string) *ir.Value {
	return b.Const(name, ir.Float32Tensor([]int64{8}, 1, 1, 1, 1, 1, 1, 1, 1))
}

// layerNorm writes a standard LayerNormalization with scale and bias.
func layerNorm(b *ir.Builder, x *ir.Value, tag string) *ir.Value {
	return b.Op("LayerNormalization", x, ones8(b, "gamma"+tag), ones8(b, "beta"+tag), ir.FloatAttr("epsilon", 1e-12))
}

// Post-LN (BERT): LayerNorm(x + sublayer(x)); the sum has no other reader.
func TestFuseSkipLayerNormPostLN(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", hidden())
	y := b.Op("Relu", x)
	b.Output(layerNorm(b, b.Op("Add", y, x), ""))
	m := b.Model()
	r := runPasses(t, "infer-shapes,fuse-layernorm,fuse-skip-layernorm", m)
	wantOps(t, m.Graph, "Relu", "SkipLayerNorm")
	n := m.Graph.Nodes[1]
	if n.Inputs[0] != y || n.Inputs[1] != x || len(n.Outputs) != 1 || n.AttrFloat("epsilon", 0) != float32(1e-12) {
		t.Fatalf("fused %s reads %v", n.Describe(), n.Inputs)
	}
	if r.Fused["SkipLayerNorm"] != 1 || r.Fused["LayerNorm"] != 0 {
		t.Fatalf("fused = %v, want SkipLayerNorm 1 and no LayerNorm left", r.Fused)
	}
}

// Pre-LN (GPT-2): the residual stream goes on past the LayerNorm, so the
// fused op exposes the sum as output 1. One reader of the sum sits before
// the LayerNorm in node order, and the sum is also a graph output.
func TestFuseSkipLayerNormPreLNExposesSum(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", hidden())
	attn := b.Input("attn", hidden())
	sum := b.Op("Add", x, attn)
	early := b.Op("Neg", sum)
	h := layerNorm(b, sum, "")
	b.Output(b.Op("Add", sum, b.Op("Relu", h)), early, sum)
	m := b.Model()
	runPasses(t, "infer-shapes,fuse-layernorm,fuse-skip-layernorm", m)
	wantOps(t, m.Graph, "SkipLayerNorm", "Neg", "Relu", "Add")
	sln := m.Graph.Nodes[0]
	if len(sln.Outputs) != 2 {
		t.Fatalf("SkipLayerNorm has %d outputs, want the sum too", len(sln.Outputs))
	}
	s := sln.Outputs[1]
	if m.Graph.Nodes[1].Inputs[0] != s || m.Graph.Nodes[3].Inputs[0] != s || m.Graph.Outputs[2] != s {
		t.Fatalf("readers of the sum were not moved to output 1:\n%s", ir.PrintGraph(m.Graph))
	}
	if m.Graph.Outputs[2].Name != "add_0" {
		t.Fatalf("graph output renamed to %q", m.Graph.Outputs[2].Name)
	}
}

// A skip that broadcasts ([1, seq, 8] position embeddings) is Skip, and
// the full-shape operand is X, whichever side of the Add it is on.
func TestFuseSkipLayerNormBroadcastSkip(t *testing.T) {
	b := ir.NewBuilder(17)
	pos := b.Input("pos", f32(ir.Known(1), ir.Sym("seq"), ir.Known(8)))
	x := b.Input("x", hidden())
	b.Output(layerNorm(b, b.Op("Add", pos, x), ""))
	m := b.Model()
	runPasses(t, "infer-shapes,fuse-layernorm,fuse-skip-layernorm", m)
	wantOps(t, m.Graph, "SkipLayerNorm")
	if n := m.Graph.Nodes[0]; n.Inputs[0] != x || n.Inputs[1] != pos {
		t.Fatalf("fused %s reads %v, want X=x, Skip=pos", n.Describe(), n.Inputs)
	}
}

func TestFuseSkipLayerNormMustNotFuse(t *testing.T) {
	cases := map[string]struct {
		build  func(b *ir.Builder, x *ir.Value) *ir.Value
		reason string
	}{
		"constant-operand-is-a-bias": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			return layerNorm(b, b.Op("Add", x, ones8(b, "c")), "")
		}, "residual Add"},
		"not-the-last-axis": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			return b.Op("LayerNormalization", b.Op("Add", x, b.Op("Relu", x)), b.Const("g", ir.Float32Tensor([]int64{1}, 1)), ir.IntAttr("axis", 1))
		}, "normalizes the last axis"},
		"neither-operand-has-the-sum-shape": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			rows := b.Input("rows", f32(ir.Sym("batch"), ir.Known(1), ir.Known(8)))
			cols := b.Input("cols", f32(ir.Known(1), ir.Sym("seq"), ir.Known(8)))
			return layerNorm(b, b.Op("Add", rows, cols), "")
		}, "neither operand"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(17)
			x := b.Input("x", hidden())
			b.Output(c.build(b, x))
			m := b.Model()
			runPasses(t, "infer-shapes,fuse-layernorm", m)
			requireDeclines(t, skipRules, m, c.reason)
		})
	}
}

// Llama/T5 pre-norm: RMSNorm(x + attn) with the sum carried on becomes a
// SkipRMSNorm exposing the sum; with a bias Add on the sublayer output,
// fuse-bias folds it in. The report keeps counting it as RMSNorm.
func TestFuseSkipRMSNorm(t *testing.T) {
	for _, withBias := range []bool{false, true} {
		b := ir.NewBuilder(23)
		x := b.Input("x", hidden())
		attn := b.Op("Relu", x)
		var bias *ir.Value
		if withBias {
			bias = ones8(b, "bias")
			attn = b.Op("Add", attn, bias)
		}
		sum := b.Op("Add", x, attn)
		h := b.Op("RMSNormalization", sum, ones8(b, "w"), ir.FloatAttr("epsilon", 1e-6))
		b.Output(b.Op("Add", sum, b.Op("Neg", h)))
		m := b.Model()
		r := runPasses(t, allFusions, m)
		wantOps(t, m.Graph, "Relu", "SkipRMSNorm", "Neg", "Add")
		n, relu := m.Graph.Nodes[1], m.Graph.Nodes[0].Outputs[0]
		operands := [2]*ir.Value{n.Inputs[0], n.Inputs[1]}
		if operands != [2]*ir.Value{x, relu} && operands != [2]*ir.Value{relu, x} || len(n.Outputs) != 2 || m.Graph.Nodes[3].Inputs[0] != n.Outputs[1] {
			t.Fatalf("fused %s reads %v:\n%s", n.Describe(), n.Inputs, ir.PrintGraph(m.Graph))
		}
		if withBias && (len(n.Inputs) != 4 || n.Inputs[3] != bias) {
			t.Fatalf("bias not folded: %s reads %v", n.Describe(), n.Inputs)
		}
		if r.Fused["RMSNorm"] != 1 || r.Fused["SkipLayerNorm"] != 0 {
			t.Fatalf("fused = %v, want RMSNorm 1", r.Fused)
		}
	}
}
