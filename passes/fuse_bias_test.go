package passes

import (
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

const allFusions = "infer-shapes,fuse-layernorm,fuse-gelu,fuse-skip-layernorm,fuse-bias"

// linear writes x W + b with W [8, 8] and b [8], bias on either side.
func linear(b *ir.Builder, x *ir.Value, tag string, biasFirst bool) (mm, bias, out *ir.Value) {
	w := b.Const("w"+tag, ir.Float32Tensor([]int64{8, 8}, make([]float32, 64)...))
	bias = b.Const("b"+tag, ir.Float32Tensor([]int64{8}, 1, 2, 3, 4, 5, 6, 7, 8))
	mm = b.Op("MatMul", x, w)
	if biasFirst {
		return mm, bias, b.Op("Add", bias, mm)
	}
	return mm, bias, b.Op("Add", mm, bias)
}

// A BERT layer's tail: GELU(x W1 + b1) W2 + b2, residual, LayerNorm.
// Everything fuses: BiasGelu, and SkipLayerNorm with the bias folded in.
func TestFuseBiasBERTLayer(t *testing.T) {
	for _, biasFirst := range []bool{false, true} {
		b := ir.NewBuilder(20)
		x := b.Input("x", hidden())
		mm1, b1, pre := linear(b, x, "1", biasFirst)
		g := b.Op("Gelu", pre, ir.StringAttr("approximate", "tanh"))
		mm2, b2, out := linear(b, g, "2", !biasFirst)
		b.Output(layerNorm(b, b.Op("Add", x, out), ""))
		m := b.Model()
		r := runPasses(t, allFusions, m)
		wantOps(t, m.Graph, "MatMul", "BiasGelu", "MatMul", "SkipLayerNorm")
		bg, sln := m.Graph.Nodes[1], m.Graph.Nodes[3]
		if bg.Inputs[0] != mm1 || bg.Inputs[1] != b1 || bg.AttrString("approximate", "") != "tanh" {
			t.Fatalf("BiasGelu reads %v, %s", bg.Inputs, bg.Describe())
		}
		if sln.Inputs[0] != mm2 || sln.Inputs[1] != x || sln.Inputs[4] != b2 {
			t.Fatalf("SkipLayerNorm reads %v", sln.Inputs)
		}
		want := map[string]int{"Attention": 0, "LayerNorm": 0, "SkipLayerNorm": 1, "RMSNorm": 0, "Gelu": 0, "BiasGelu": 1}
		for k, n := range want {
			if r.Fused[k] != n {
				t.Fatalf("fused = %v, want %v", r.Fused, want)
			}
		}
	}
}

// Pre-LN with a bias: the sum output (x + skip + bias) keeps its readers.
func TestFuseBiasIntoSkipLayerNormWithSum(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", hidden())
	mm, bias, out := linear(b, x, "", false)
	sum := b.Op("Add", out, x)
	b.Output(b.Op("Relu", layerNorm(b, sum, "")), sum)
	m := b.Model()
	runPasses(t, allFusions, m)
	wantOps(t, m.Graph, "MatMul", "SkipLayerNorm", "Relu")
	sln := m.Graph.Nodes[1]
	if sln.Inputs[0] != mm || sln.Inputs[4] != bias || len(sln.Outputs) != 2 || m.Graph.Outputs[1] != sln.Outputs[1] {
		t.Fatalf("fused %s reads %v, outputs %v", sln.Describe(), sln.Inputs, m.Graph.Outputs)
	}
}

func TestFuseBiasMustNotFuse(t *testing.T) {
	cases := map[string]struct {
		build  func(b *ir.Builder, x *ir.Value) *ir.Value
		reason string
	}{
		"bias-not-1d": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			bias := b.Const("b", ir.Float32Tensor([]int64{1, 8}, 1, 2, 3, 4, 5, 6, 7, 8))
			return b.Op("Gelu", b.Op("Add", b.Op("Relu", x), bias))
		}, "constant 1-D bias"},
		"bias-not-constant": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			bias := b.Input("b", f32(ir.Known(8)))
			return b.Op("Gelu", b.Op("Add", b.Op("Relu", x), bias))
		}, "constant 1-D bias"},
		"bias-wrong-length": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			bias := b.Const("b", ir.Float32Tensor([]int64{1}, 1))
			return b.Op("Gelu", b.Op("Add", b.Op("Relu", x), bias))
		}, "constant 1-D bias"},
		"biased-value-used-elsewhere": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			_, _, pre := linear(b, x, "", false)
			b.Output(b.Op("Neg", pre))
			return b.Op("Gelu", pre)
		}, "outside the match"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(20)
			x := b.Input("x", hidden())
			b.Output(c.build(b, x))
			m := b.Model()
			runPasses(t, "infer-shapes,fuse-gelu", m)
			requireDeclines(t, biasRules, m, c.reason)
		})
	}
}
