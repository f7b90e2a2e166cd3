package passes

import (
	"math"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// erfGelu is the shape exporters write for GELU(x) = x * 0.5 * (1 +
// erf(x / sqrt 2)), in any grouping of the outer products, with the
// division written as a multiplication by 1/sqrt 2 or not. It exercises
// alternatives, commutative operands and a repeated capture together.
var erfGelu = func() *Rule {
	x := Any("x")
	scaled := OneOf(
		Op("Div", x, Const("sqrt2").If(ScalarNear(math.Sqrt2, 1e-4))),
		Op("Mul", x, Const("rsqrt2").If(ScalarNear(1/math.Sqrt2, 1e-4))),
	)
	onePlusErf := Op("Add", Op("Erf", scaled), Const("one").If(ScalarNear(1, 0)))
	half := Const("half").If(ScalarNear(0.5, 0))
	return &Rule{
		Name: "test-erf-gelu",
		Pattern: OneOf(
			Op("Mul", Op("Mul", Any("x"), half), onePlusErf), // (x*0.5)*(1+erf)
			Op("Mul", Op("Mul", Any("x"), onePlusErf), half), // (x*(1+erf))*0.5
			Op("Mul", half, Op("Mul", Any("x"), onePlusErf)), // 0.5*(x*(1+erf))
		),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value { return rw.Op("tfc::Gelu", m.Value("x")) },
	}
}()

func scalarF(b *ir.Builder, name string, v float64) *ir.Value {
	return b.Const(name, ir.Float32Tensor([]int64{}, float32(v)))
}

func TestErfGeluVariants(t *testing.T) {
	type variant func(b *ir.Builder, x *ir.Value) *ir.Value
	variants := map[string]variant{
		"torchscript": func(b *ir.Builder, x *ir.Value) *ir.Value {
			e := b.Op("Erf", b.Op("Div", x, scalarF(b, "s", math.Sqrt2)))
			return b.Op("Mul", b.Op("Mul", x, b.Op("Add", e, scalarF(b, "one", 1))), scalarF(b, "half", 0.5))
		},
		"swapped-operands": func(b *ir.Builder, x *ir.Value) *ir.Value {
			e := b.Op("Erf", b.Op("Mul", x, scalarF(b, "r", 1/math.Sqrt2)))
			return b.Op("Mul", b.Op("Add", scalarF(b, "one", 1), e), b.Op("Mul", scalarF(b, "half", 0.5), x))
		},
		"half-outside": func(b *ir.Builder, x *ir.Value) *ir.Value {
			e := b.Op("Erf", b.Op("Div", x, scalarF(b, "s", math.Sqrt2)))
			return b.Op("Mul", scalarF(b, "half", 0.5), b.Op("Mul", b.Op("Add", e, scalarF(b, "one", 1)), x))
		},
	}
	for name, build := range variants {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(17)
			x := b.Input("x", f32(ir.Sym("batch"), ir.Known(8)))
			b.Output(build(b, x))
			m := b.Model()
			var st Stats
			if err := MustRuleSet(erfGelu).Apply(nil, m.Graph, &st); err != nil {
				t.Fatal(err)
			}
			if err := ir.Verify(m); err != nil {
				t.Fatal(err)
			}
			wantOps(t, m.Graph, "Gelu")
			if m.Graph.Nodes[0].Inputs[0] != x {
				t.Fatalf("Gelu reads %v", m.Graph.Nodes[0].Inputs[0])
			}
		})
	}
}

func TestErfGeluMustNotMatch(t *testing.T) {
	cases := map[string]struct {
		build  func(b *ir.Builder, x, y *ir.Value) *ir.Value
		reason string
	}{
		// tanh is a different function: no match.
		"tanh-form": {func(b *ir.Builder, x, _ *ir.Value) *ir.Value {
			e := b.Op("Tanh", b.Op("Div", x, scalarF(b, "s", math.Sqrt2)))
			return b.Op("Mul", b.Op("Mul", x, b.Op("Add", e, scalarF(b, "one", 1))), scalarF(b, "half", 0.5))
		}, "want a Erf node"},
		// The erf argument is another value: x must be one value.
		"two-values": {func(b *ir.Builder, x, y *ir.Value) *ir.Value {
			e := b.Op("Erf", b.Op("Div", y, scalarF(b, "s", math.Sqrt2)))
			return b.Op("Mul", b.Op("Mul", x, b.Op("Add", e, scalarF(b, "one", 1))), scalarF(b, "half", 0.5))
		}, `capture "x" must be the same value twice`},
		// A wrong constant.
		"wrong-scale": {func(b *ir.Builder, x, _ *ir.Value) *ir.Value {
			e := b.Op("Erf", b.Op("Div", x, scalarF(b, "s", 2)))
			return b.Op("Mul", b.Op("Mul", x, b.Op("Add", e, scalarF(b, "one", 1))), scalarF(b, "half", 0.5))
		}, "near"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b := ir.NewBuilder(17)
			x := b.Input("x", f32(ir.Known(8)))
			y := b.Input("y", f32(ir.Known(8)))
			out := c.build(b, x, y)
			b.Output(out)
			m := b.Model()
			before := ops(m.Graph)
			ctx := &Context{Explain: &Explanations{}}
			if err := MustRuleSet(erfGelu).Apply(ctx, m.Graph, &Stats{}); err != nil {
				t.Fatal(err)
			}
			wantOps(t, m.Graph, before...)
			found := false
			for _, e := range ctx.Explain.Items {
				if contains(e.Reason, c.reason) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no explanation mentions %q: %+v", c.reason, ctx.Explain.Items)
			}
		})
	}
}
