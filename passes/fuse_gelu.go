package passes

import (
	"math"

	"github.com/tfc-compiler/tfc/ir"
)

// fuse-gelu turns GELU into tfc.Gelu with approximate="none" (the erf
// form) or "tanh" (the tanh approximation). The two are different
// functions (they differ by up to about 5e-4), so each pattern recognizes
// exactly one and the attribute keeps them apart:
//
//	erf:  x * 0.5 * (1 + erf(x / sqrt 2))            (Div by sqrt 2 or Mul by 1/sqrt 2)
//	tanh: x * 0.5 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))   (Pow 3 or x*x*x;
//	      or with sqrt(2/pi) multiplied in: tanh(0.79788 x + 0.035677 x^3))
//
// in any grouping of the outer product: (x*0.5)*(1+f), (x*(1+f))*0.5 and
// x*(0.5*(1+f)); operand order is the engine's business. The standard
// Gelu op (opset 20) becomes tfc.Gelu too.
func init() {
	register(&Pass{
		Name:      "fuse-gelu",
		Summary:   "fuse Gelu and its erf and tanh forms into tfc.Gelu, keeping approximate=none and approximate=tanh distinct",
		Semantics: WithinRounding,
		Run: func(ctx *Context, m *ir.Model, _ Values) (Stats, error) {
			var st Stats
			if err := applyExplaining(ctx, geluRules, m.Graph, &st, geluExplainRelevant); err != nil {
				return st, err
			}
			st.CountFused("Gelu", st.Rewrites["gelu-standard"]+st.Rewrites["gelu-erf"]+st.Rewrites["gelu-tanh"])
			return st, nil
		},
	})
}

// geluConstTol is how far a constant of a GELU form may be from its exact
// value: exporters write them in float32 (sqrt 2 = 1.4142135), some with
// fewer digits (0.7978845608 for sqrt(2/pi)).
const geluConstTol = 1e-5

var geluRules = MustRuleSet(
	&Rule{
		Name: "gelu-standard",
		Pattern: Op("Gelu", Any("x")).WhereNode(`approximate is "none" or "tanh"`, func(_ *Match, n *ir.Node) bool {
			a := n.AttrString("approximate", "none")
			return a == "none" || a == "tanh"
		}),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			return rw.Op("tfc::Gelu", m.Value("x"), ir.StringAttr("approximate", m.Root.AttrString("approximate", "none")))
		},
	},
	&Rule{
		Name:    "gelu-erf",
		Pattern: geluProduct(erfOnePlus),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			return rw.Op("tfc::Gelu", m.Value("x"), ir.StringAttr("approximate", "none"))
		},
	},
	&Rule{
		Name:    "gelu-tanh",
		Pattern: geluProduct(tanhOnePlus),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			return rw.Op("tfc::Gelu", m.Value("x"), ir.StringAttr("approximate", "tanh"))
		},
	},
)

// geluProduct matches x * 0.5 * onePlus() in the three groupings.
func geluProduct(onePlus func() *Pattern) *Pattern {
	half := func() *Pattern { return Const("half").If(ScalarNear(0.5, geluConstTol)) }
	return OneOf(
		Op("Mul", Op("Mul", Any("x"), half()), onePlus()), // (x*0.5)*(1+f)
		Op("Mul", Op("Mul", Any("x"), onePlus()), half()), // (x*(1+f))*0.5
		Op("Mul", Any("x"), Op("Mul", half(), onePlus())), // x*(0.5*(1+f)), dynamo
	)
}

func oneConst() *Pattern { return Const("one").If(ScalarNear(1, geluConstTol)) }

// erfOnePlus matches 1 + erf(x / sqrt 2).
func erfOnePlus() *Pattern {
	scaled := OneOf(
		Op("Div", Any("x"), Const("sqrt2").If(ScalarNear(math.Sqrt2, geluConstTol))),
		Op("Mul", Any("x"), Const("rsqrt2").If(ScalarNear(1/math.Sqrt2, geluConstTol))),
	)
	return Op("Add", Op("Erf", scaled), oneConst())
}

// tanhOnePlus matches 1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)).
func tanhOnePlus() *Pattern {
	x := func() *Pattern { return Any("x") }
	cube := OneOf(
		Op("Pow", x(), Const("three").If(ScalarNear(3, 0))),
		Op("Mul", Op("Mul", x(), x()), x()),
	)
	c := func() *Pattern { return Const("c").If(ScalarNear(math.Sqrt(2/math.Pi), geluConstTol)) }
	inner := Op("Add", x(), Op("Mul", cube, Const("k").If(ScalarNear(0.044715, geluConstTol))))
	arg := OneOf(
		Op("Mul", inner, c()),
		// sqrt(2/pi) multiplied in: c*x + (c*0.044715)*x^3 (FastGelu's form).
		Op("Add", Op("Mul", x(), c()), Op("Mul", cube, Const("ck").If(ScalarNear(math.Sqrt(2/math.Pi)*0.044715, geluConstTol)))),
	)
	return Op("Add", Op("Tanh", arg), oneConst())
}

// geluExplainRelevant keeps explanations at Gelu ops and at the last
// product of a chain fed by an Erf or Tanh (a GELU form that did not
// fuse), one per near miss.
func geluExplainRelevant(rule string, n *ir.Node) bool {
	switch rule {
	case "gelu-erf":
		return feedsFrom(n, 3, "Erf") && !readBy(n, "Mul")
	case "gelu-tanh":
		return feedsFrom(n, 3, "Tanh") && !readBy(n, "Mul")
	}
	return true
}
