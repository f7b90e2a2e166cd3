package passes

import (
	"math"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// geluBuilder writes 1 + f(x) and the outer product x * 0.5 * (1 + f(x))
// in one of the groupings exporters use.
type geluBuilder func(b *ir.Builder, x *ir.Value) *ir.Value

func erfOnePlusByHand(mulByInverse bool) geluBuilder {
	return func(b *ir.Builder, x *ir.Value) *ir.Value {
		var s *ir.Value
		if mulByInverse {
			s = b.Op("Mul", scalarF(b, "rsqrt2", 1/math.Sqrt2), x)
		} else {
			s = b.Op("Div", x, scalarF(b, "sqrt2", float64(float32(math.Sqrt2))))
		}
		return b.Op("Add", scalarF(b, "one", 1), b.Op("Erf", s))
	}
}

func tanhOnePlusByHand(cube string, k, c float64) geluBuilder {
	return func(b *ir.Builder, x *ir.Value) *ir.Value {
		var x3 *ir.Value
		if cube == "pow" {
			x3 = b.Op("Pow", x, scalarF(b, "three", 3))
		} else {
			x3 = b.Op("Mul", x, b.Op("Mul", x, x))
		}
		inner := b.Op("Add", b.Op("Mul", scalarF(b, "k", k), x3), x)
		return b.Op("Add", b.Op("Tanh", b.Op("Mul", inner, scalarF(b, "c", c))), scalarF(b, "one", 1))
	}
}

func geluGrouping(grouping string, onePlus geluBuilder) geluBuilder {
	return func(b *ir.Builder, x *ir.Value) *ir.Value {
		half := scalarF(b, "half", 0.5)
		switch grouping {
		case "x-half-first": // (x*0.5)*(1+f): TorchScript tanh GELU
			return b.Op("Mul", b.Op("Mul", x, half), onePlus(b, x))
		case "half-last": // (x*(1+f))*0.5: TorchScript erf GELU
			return b.Op("Mul", b.Op("Mul", onePlus(b, x), x), half)
		default: // x*(0.5*(1+f)): dynamo
			return b.Op("Mul", x, b.Op("Mul", half, onePlus(b, x)))
		}
	}
}

const sqrt2OverPi = 0.7978845608028654

func geluModel(opset int64, build geluBuilder) (*ir.Model, *ir.Value) {
	b := ir.NewBuilder(opset)
	x := b.Input("x", f32(ir.Sym("batch"), ir.Known(16)))
	b.Output(build(b, x))
	return b.Model(), x
}

func TestFuseGeluForms(t *testing.T) {
	type tc struct {
		build  geluBuilder
		approx string
	}
	cases := map[string]tc{}
	for _, g := range []string{"x-half-first", "half-last", "x-times-half-product"} {
		cases["erf-div/"+g] = tc{geluGrouping(g, erfOnePlusByHand(false)), "none"}
		cases["erf-mul/"+g] = tc{geluGrouping(g, erfOnePlusByHand(true)), "none"}
		cases["tanh-pow/"+g] = tc{geluGrouping(g, tanhOnePlusByHand("pow", 0.044715, sqrt2OverPi)), "tanh"}
		cases["tanh-xxx/"+g] = tc{geluGrouping(g, tanhOnePlusByHand("mul", 0.044715, 0.7978845608)), "tanh"}
	}
	cases["tanh-distributed"] = tc{geluGrouping("x-half-first", func(b *ir.Builder, x *ir.Value) *ir.Value {
		x3 := b.Op("Mul", b.Op("Mul", x, x), x)
		arg := b.Op("Add", b.Op("Mul", scalarF(b, "c", sqrt2OverPi), x), b.Op("Mul", x3, scalarF(b, "ck", 0.0356774081)))
		return b.Op("Add", b.Op("Tanh", arg), scalarF(b, "one", 1))
	}), "tanh"}
	for _, approx := range []string{"none", "tanh"} {
		cases["standard-"+approx] = tc{func(b *ir.Builder, x *ir.Value) *ir.Value {
			return b.Op("Gelu", x, ir.StringAttr("approximate", approx))
		}, approx}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m, x := geluModel(20, c.build)
			r := runPasses(t, "infer-shapes,fuse-gelu", m)
			wantOps(t, m.Graph, "Gelu")
			n := m.Graph.Nodes[0]
			if n.Domain != "tfc" || n.Inputs[0] != x || n.AttrString("approximate", "") != c.approx {
				t.Fatalf("fused %s, want tfc::Gelu(x) approximate=%s", n.Describe(), c.approx)
			}
			if r.Fused["Gelu"] != 1 {
				t.Fatalf("fused = %v", r.Fused)
			}
		})
	}
}

func TestFuseGeluMustNotFuse(t *testing.T) {
	cases := map[string]struct {
		build  geluBuilder
		reason string
	}{
		// erf's constants around tanh (and the reverse) are neither form.
		"tanh-of-erf-argument": {geluGrouping("half-last", func(b *ir.Builder, x *ir.Value) *ir.Value {
			return b.Op("Add", b.Op("Tanh", b.Op("Div", x, scalarF(b, "sqrt2", math.Sqrt2))), scalarF(b, "one", 1))
		}), "want a Erf node"},
		"erf-of-tanh-argument": {geluGrouping("half-last", func(b *ir.Builder, x *ir.Value) *ir.Value {
			inner := b.Op("Add", b.Op("Mul", scalarF(b, "k", 0.044715), b.Op("Pow", x, scalarF(b, "three", 3))), x)
			return b.Op("Add", b.Op("Erf", b.Op("Mul", inner, scalarF(b, "c", sqrt2OverPi))), scalarF(b, "one", 1))
		}), "want a Tanh node"},
		"wrong-sqrt2": {geluGrouping("half-last", func(b *ir.Builder, x *ir.Value) *ir.Value {
			return b.Op("Add", b.Op("Erf", b.Op("Div", x, scalarF(b, "s", 1.5))), scalarF(b, "one", 1))
		}), "near 1.414"},
		"wrong-cubic-coefficient": {geluGrouping("x-half-first", tanhOnePlusByHand("pow", 0.05, sqrt2OverPi)), "near 0.044715"},
		"wrong-half": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			return b.Op("Mul", b.Op("Mul", x, scalarF(b, "h", 0.6)), erfOnePlusByHand(false)(b, x))
		}, "near 0.5"},
		"square-not-cube": {geluGrouping("x-half-first", func(b *ir.Builder, x *ir.Value) *ir.Value {
			inner := b.Op("Add", b.Op("Mul", scalarF(b, "k", 0.044715), b.Op("Pow", x, scalarF(b, "p", 2))), x)
			return b.Op("Add", b.Op("Tanh", b.Op("Mul", inner, scalarF(b, "c", sqrt2OverPi))), scalarF(b, "one", 1))
		}), "near 3"},
		"erf-used-elsewhere": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			e := b.Op("Erf", b.Op("Div", x, scalarF(b, "s", math.Sqrt2)))
			b.Output(b.Op("Neg", e))
			return b.Op("Mul", b.Op("Mul", x, scalarF(b, "half", 0.5)), b.Op("Add", e, scalarF(b, "one", 1)))
		}, "outside the match"},
		"approximate-unknown": {func(b *ir.Builder, x *ir.Value) *ir.Value {
			return b.Op("Gelu", x, ir.StringAttr("approximate", "sigmoid"))
		}, "approximate is"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m, _ := geluModel(20, c.build)
			runPasses(t, "infer-shapes", m)
			requireDeclines(t, geluRules, m, c.reason)
		})
	}
}

// Through the pass, --explain keeps the explanation of an almost-GELU and
// drops those of ordinary products that no GELU rule could be about.
func TestFuseGeluExplainsOnlyNearMisses(t *testing.T) {
	b := ir.NewBuilder(20)
	x := b.Input("x", f32(ir.Sym("batch"), ir.Known(16)))
	plain := b.Op("Mul", b.Op("Mul", x, x), scalarF(b, "k", 3))
	wrong := geluGrouping("half-last", func(b *ir.Builder, x *ir.Value) *ir.Value {
		return b.Op("Add", b.Op("Erf", b.Op("Div", x, scalarF(b, "s", 1.5))), scalarF(b, "one", 1))
	})(b, x)
	b.Output(plain, wrong)
	m := b.Model()
	p, err := ParseSpec("infer-shapes,fuse-gelu")
	if err != nil {
		t.Fatal(err)
	}
	ctx := &Context{Explain: &Explanations{}}
	if _, err := p.Run(ctx, m); err != nil {
		t.Fatal(err)
	}
	wrongNode, _ := wrong.Producer()
	var anchors []string
	for _, e := range ctx.Explain.Items {
		anchors = append(anchors, e.Anchor)
		if e.Pass != "fuse-gelu" {
			t.Errorf("explanation names pass %q", e.Pass)
		}
	}
	if len(anchors) != 1 || anchors[0] != wrongNode.Name {
		t.Fatalf("explained at %v, want only %s: %+v", anchors, wrongNode.Name, ctx.Explain.Items)
	}
}
