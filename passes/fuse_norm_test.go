package passes

import (
	"math"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// normModel builds a model whose output is build(x) for x:
// f32[batch, seq, 8] and a scale and bias of length 8.
func normModel(opset int64, xType ir.Type, build func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value) (*ir.Model, *ir.Value, *ir.Value, *ir.Value) {
	b := ir.NewBuilder(opset)
	x := b.Input("x", xType)
	scale := b.Const("scale", ir.Float32Tensor([]int64{8}, 1, 2, 3, 4, 5, 6, 7, 8))
	bias := b.Const("bias", ir.Float32Tensor([]int64{8}, 8, 7, 6, 5, 4, 3, 2, 1))
	b.Output(build(b, x, scale, bias))
	return b.Model(), x, scale, bias
}

func xType() ir.Type { return f32(ir.Sym("batch"), ir.Sym("seq"), ir.Known(8)) }

func axesAttr() *ir.Attr { return ir.IntsAttr("axes", -1) }

// layerNormByHand writes (x - mean) / sqrt(var + eps) * scale + bias the
// way exporters decompose it; the variants choose the square, the
// division and whether axes are an attribute or an input (opset 18+).
func layerNormByHand(square, divide string, axesInput bool) func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
	return func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
		mean := func(v *ir.Value) *ir.Value {
			if axesInput {
				return b.Op("ReduceMean", v, b.Const("axes_"+v.Name, i64([]int64{1}, -1)))
			}
			return b.Op("ReduceMean", v, axesAttr())
		}
		d := b.Op("Sub", x, mean(x))
		var sq *ir.Value
		if square == "pow" {
			sq = b.Op("Pow", d, scalarF(b, "two", 2))
		} else {
			sq = b.Op("Mul", d, d)
		}
		std := b.Op("Sqrt", b.Op("Add", mean(sq), scalarF(b, "eps", 1e-12)))
		var norm *ir.Value
		if divide == "div" {
			norm = b.Op("Div", d, std)
		} else {
			norm = b.Op("Mul", b.Op("Reciprocal", std), d)
		}
		return b.Op("Add", bias, b.Op("Mul", norm, scale))
	}
}

// rmsNormByHand writes x * rsqrt(mean(x^2) + eps) * weight in the forms
// of Llama (dynamo: Reciprocal; TorchScript: Div(1, .)), T5, and x/sqrt.
func rmsNormByHand(form string) func(b *ir.Builder, x, scale, _ *ir.Value) *ir.Value {
	return func(b *ir.Builder, x, scale, _ *ir.Value) *ir.Value {
		ms := b.Op("ReduceMean", b.Op("Pow", x, scalarF(b, "two", 2)), axesAttr())
		den := b.Op("Sqrt", b.Op("Add", ms, scalarF(b, "eps", 1e-6)))
		var norm *ir.Value
		switch form {
		case "reciprocal":
			norm = b.Op("Mul", x, b.Op("Reciprocal", den))
		case "div-one":
			norm = b.Op("Mul", x, b.Op("Div", scalarF(b, "one", 1), den))
		case "div":
			norm = b.Op("Div", x, den)
		}
		return b.Op("Mul", scale, norm)
	}
}

func TestFuseLayerNormForms(t *testing.T) {
	cases := map[string]func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value{
		"pow-div-attr":         layerNormByHand("pow", "div", false),
		"mul-reciprocal-input": layerNormByHand("mul", "reciprocal", true),
		"standard": func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			return b.Op("LayerNormalization", x, scale, bias, ir.IntAttr("axis", -1), ir.FloatAttr("epsilon", 1e-12))
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			opset := int64(17)
			if name == "mul-reciprocal-input" {
				opset = 18
			}
			m, x, scale, bias := normModel(opset, xType(), build)
			r := runPasses(t, "infer-shapes,fuse-layernorm", m)
			wantOps(t, m.Graph, "LayerNorm")
			n := m.Graph.Nodes[0]
			if n.Domain != "tfc" || n.Inputs[0] != x || n.Inputs[1] != scale || n.Inputs[2] != bias {
				t.Fatalf("fused node %s reads %v", n.Describe(), n.Inputs)
			}
			if eps := n.AttrFloat("epsilon", 0); eps != float32(1e-12) || n.AttrInt("axis", 0) != -1 {
				t.Fatalf("epsilon %g axis %d, want 1e-12 and -1", eps, n.AttrInt("axis", 0))
			}
			if r.Fused["LayerNorm"] != 1 {
				t.Fatalf("fused = %v, want LayerNorm 1", r.Fused)
			}
		})
	}
}

func TestFuseRMSNormForms(t *testing.T) {
	for _, form := range []string{"reciprocal", "div-one", "div", "standard"} {
		t.Run(form, func(t *testing.T) {
			build := rmsNormByHand(form)
			opset := int64(17)
			if form == "standard" {
				opset = 23
				build = func(b *ir.Builder, x, scale, _ *ir.Value) *ir.Value {
					return b.Op("RMSNormalization", x, scale, ir.FloatAttr("epsilon", 1e-6))
				}
			}
			m, x, scale, _ := normModel(opset, xType(), build)
			r := runPasses(t, "infer-shapes,fuse-layernorm", m)
			wantOps(t, m.Graph, "RMSNorm")
			n := m.Graph.Nodes[0]
			if n.Inputs[0] != x || n.Inputs[1] != scale || n.AttrFloat("epsilon", 0) != float32(1e-6) {
				t.Fatalf("fused node %s reads %v", n.Describe(), n.Inputs)
			}
			if r.Fused["RMSNorm"] != 1 || r.Fused["LayerNorm"] != 0 {
				t.Fatalf("fused = %v, want RMSNorm 1", r.Fused)
			}
		})
	}
}

// The fp16-safe export: x is cast to float32 for the statistics and the
// result cast back before the weight.
func TestFuseRMSNormWithCasts(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float16, ir.Sym("batch"), ir.Known(8)))
	w := b.Const("w", ir.MustTensor(ir.Float16, []int64{8}, make([]byte, 16)))
	xf := b.Op("Cast", x, ir.IntAttr("to", int64(ir.Float)))
	ms := b.Op("ReduceMean", b.Op("Pow", xf, scalarF(b, "two", 2)), axesAttr())
	norm := b.Op("Mul", xf, b.Op("Reciprocal", b.Op("Sqrt", b.Op("Add", ms, scalarF(b, "eps", 1e-6)))))
	b.Output(b.Op("Mul", w, b.Op("Cast", norm, ir.IntAttr("to", int64(ir.Float16)))))
	m := b.Model()
	runPasses(t, "infer-shapes,fuse-layernorm", m)
	wantOps(t, m.Graph, "RMSNorm")
	n := m.Graph.Nodes[0]
	if n.Inputs[0] != x || n.Inputs[1] != w || m.Graph.Outputs[0].Type.Elem != ir.Float16 {
		t.Fatalf("fused node %s reads %v, output %v", n.Describe(), n.Inputs, m.Graph.Outputs[0].Type)
	}
}

func TestFuseLayerNormMustNotFuse(t *testing.T) {
	type builder = func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value
	cases := map[string]struct {
		build  builder
		reason string
		xType  ir.Type
		// after lists the ops left when a smaller rule rightly applies
		// (nil: the graph must not change).
		after []string
	}{
		"variance-over-another-axis": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			d := b.Op("Sub", x, b.Op("ReduceMean", x, axesAttr()))
			v := b.Op("ReduceMean", b.Op("Pow", d, scalarF(b, "two", 2)), ir.IntsAttr("axes", 1))
			return b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, scalarF(b, "eps", 1e-5))))
		}, "reduces over the last axis only", ir.Type{}, nil},
		"two-axes": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			d := b.Op("Sub", x, b.Op("ReduceMean", x, ir.IntsAttr("axes", -2, -1)))
			v := b.Op("ReduceMean", b.Op("Pow", d, scalarF(b, "two", 2)), ir.IntsAttr("axes", -2, -1))
			return b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, scalarF(b, "eps", 1e-5))))
		}, "reduces over the last axis only", ir.Type{}, nil},
		"eps-not-constant": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			eps := b.Input("eps", f32())
			d := b.Op("Sub", x, b.Op("ReduceMean", x, axesAttr()))
			v := b.Op("ReduceMean", b.Op("Pow", d, scalarF(b, "two", 2)), axesAttr())
			return b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, eps)))
		}, "is a constant", ir.Type{}, nil},
		"cube-not-square": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			d := b.Op("Sub", x, b.Op("ReduceMean", x, axesAttr()))
			v := b.Op("ReduceMean", b.Op("Pow", d, scalarF(b, "three", 3)), axesAttr())
			return b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, scalarF(b, "eps", 1e-5))))
		}, "near 2", ir.Type{}, nil},
		"centered-value-used-elsewhere": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			d := b.Op("Sub", x, b.Op("ReduceMean", x, axesAttr()))
			v := b.Op("ReduceMean", b.Op("Pow", d, scalarF(b, "two", 2)), axesAttr())
			y := b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, scalarF(b, "eps", 1e-5))))
			b.Output(b.Op("Relu", d))
			return y
		}, "outside the match", ir.Type{},
			// d / sqrt(mean(d^2)+eps) is still an RMSNorm of d.
			[]string{"ReduceMean", "Sub", "RMSNorm", "Relu"}},
		"keepdims-0": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			ms := b.Op("ReduceMean", b.Op("Pow", x, scalarF(b, "two", 2)), axesAttr(), ir.IntAttr("keepdims", 0))
			return b.Op("Div", x, b.Op("Sqrt", b.Op("Add", ms, scalarF(b, "eps", 1e-5))))
		}, "keeps it", f32(ir.Known(8), ir.Known(8)), nil},
		"layernorm-mean-output-used": {func(b *ir.Builder, x, scale, bias *ir.Value) *ir.Value {
			outs := b.OpN("LayerNormalization", 2, x, scale, bias)
			b.Output(outs[1])
			return outs[0]
		}, "Mean and InvStdDev outputs are unused", ir.Type{}, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			xt := c.xType
			if xt.Kind == ir.KindUnknown {
				xt = xType()
			}
			m, _, _, _ := normModel(17, xt, c.build)
			runPasses(t, "infer-shapes", m)
			before := ops(m.Graph)
			ctx := &Context{Explain: &Explanations{}}
			var st Stats
			if err := normRules.Apply(ctx, m.Graph, &st); err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(m); err != nil {
				t.Fatal(err)
			}
			if c.after != nil {
				before = c.after
			}
			wantOps(t, m.Graph, before...)
			if c.after != nil {
				// The anchor is gone; ask the LayerNorm rule alone why it
				// did not apply.
				m, _, _, _ = normModel(17, xt, c.build)
				runPasses(t, "infer-shapes", m)
				ctx = &Context{Explain: &Explanations{}}
				if err := MustRuleSet(ruleNamed(t, normRules, "layernorm-decomposed")).Apply(ctx, m.Graph, &st); err != nil {
					t.Fatal(err)
				}
			}
			found := false
			for _, e := range ctx.Explain.Items {
				found = found || contains(e.Reason, c.reason) && contains(e.Rule, "norm")
			}
			if !found {
				t.Fatalf("no explanation mentions %q: %+v", c.reason, ctx.Explain.Items)
			}
		})
	}
}

// A scale that varies along another axis than the normalized one cannot
// fold: the LayerNorm core fuses and the Mul stays.
func TestFuseLayerNormScaleMustVaryAlongLastAxis(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4), ir.Known(8)))
	wrong := b.Const("w", ir.Float32Tensor([]int64{4, 1}, 1, 2, 3, 4))
	b.Output(b.Op("Mul", b.Op("LayerNormalization", x, b.Const("one", ir.Float32Tensor([]int64{8}, 1, 1, 1, 1, 1, 1, 1, 1))), wrong))
	m := b.Model()
	runPasses(t, "infer-shapes,fuse-layernorm", m)
	wantOps(t, m.Graph, "LayerNorm", "Mul")
}

// A decomposed LayerNorm without scale and bias becomes a LayerNorm with
// only X; the epsilon constant is read as float32.
func TestFuseLayerNormWithoutAffine(t *testing.T) {
	m, x, _, _ := normModel(17, xType(), func(b *ir.Builder, x, _, _ *ir.Value) *ir.Value {
		d := b.Op("Sub", x, b.Op("ReduceMean", x, axesAttr()))
		v := b.Op("ReduceMean", b.Op("Mul", d, d), axesAttr())
		return b.Op("Div", d, b.Op("Sqrt", b.Op("Add", scalarF(b, "eps", 1e-5), v)))
	})
	runPasses(t, "infer-shapes,fuse-layernorm", m)
	wantOps(t, m.Graph, "LayerNorm")
	n := m.Graph.Nodes[0]
	if len(n.Inputs) != 1 || n.Inputs[0] != x || math.Abs(float64(n.AttrFloat("epsilon", 0))-1e-5) > 1e-12 {
		t.Fatalf("fused node %s reads %v", n.Describe(), n.Inputs)
	}
}

func ruleNamed(t *testing.T, rs *RuleSet, name string) *Rule {
	t.Helper()
	for _, r := range rs.rules {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return nil
}

// An fp16-safe LayerNorm: statistics in float32, cast back before the
// fp16 scale and bias. Everything folds into one LayerNorm on the fp16 x.
func TestFuseLayerNormWithCasts(t *testing.T) {
	b := ir.NewBuilder(17)
	half := func(name string) *ir.Value {
		return b.Const(name, ir.MustTensor(ir.Float16, []int64{8}, make([]byte, 16)))
	}
	x := b.Input("x", ir.TensorOf(ir.Float16, ir.Sym("batch"), ir.Known(8)))
	xf := b.Op("Cast", x, ir.IntAttr("to", int64(ir.Float)))
	d := b.Op("Sub", xf, b.Op("ReduceMean", xf, axesAttr()))
	v := b.Op("ReduceMean", b.Op("Pow", d, scalarF(b, "two", 2)), axesAttr())
	n := b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, scalarF(b, "eps", 1e-5))))
	g, beta := half("g"), half("beta")
	b.Output(b.Op("Add", b.Op("Mul", b.Op("Cast", n, ir.IntAttr("to", int64(ir.Float16))), g), beta))
	m := b.Model()
	r := runPasses(t, "infer-shapes,fuse-layernorm", m)
	wantOps(t, m.Graph, "LayerNorm")
	ln := m.Graph.Nodes[0]
	if ln.Inputs[0] != x || ln.Inputs[1] != g || ln.Inputs[2] != beta || m.Graph.Outputs[0].Type.Elem != ir.Float16 {
		t.Fatalf("fused %s reads %v, output %v", ln.Describe(), ln.Inputs, m.Graph.Outputs[0].Type)
	}
	if r.Fused["LayerNorm"] != 1 {
		t.Fatalf("fused = %v", r.Fused)
	}
}

// A Cast to an integer type between the norm and the scale does not
// commute with the scale: nothing folds across it.
func TestFuseNormScaleNotAcrossIntegerCast(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(2), ir.Known(8)))
	w := b.Const("w", ir.Int64Tensor([]int64{8}, 1, 2, 3, 4, 5, 6, 7, 8))
	d := b.Op("Sub", x, b.Op("ReduceMean", x, axesAttr()))
	v := b.Op("ReduceMean", b.Op("Mul", d, d), axesAttr())
	n := b.Op("Div", d, b.Op("Sqrt", b.Op("Add", v, scalarF(b, "eps", 1e-5))))
	b.Output(b.Op("Mul", b.Op("Cast", n, ir.IntAttr("to", int64(ir.Int64))), w))
	m := b.Model()
	runPasses(t, "infer-shapes,fuse-layernorm", m)
	wantOps(t, m.Graph, "LayerNorm", "Cast", "Mul")
}
