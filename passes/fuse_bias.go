package passes

import (
	"github.com/tfc-compiler/tfc/ir"
)

// fuse-bias folds the bias Add of a linear layer into the fused op that
// reads it:
//
//	tfc.Gelu(x + bias)                   -> tfc.BiasGelu(x, bias)
//	tfc.SkipLayerNorm(x + bias, skip, …) -> tfc.SkipLayerNorm(x, skip, …, bias)
//	tfc.SkipRMSNorm(x + bias, skip, s)   -> tfc.SkipRMSNorm(x, skip, s, bias)
//
// (the bias Add may be on either operand of the skip norm). The bias
// must be a constant 1-D tensor as long as x's last dimension, the form a
// linear layer's bias has; x must not be a constant.
func init() {
	register(&Pass{
		Name:      "fuse-bias",
		Summary:   "fold a linear layer's bias Add into tfc.Gelu (giving tfc.BiasGelu) and into the bias input of tfc.SkipLayerNorm and tfc.SkipRMSNorm",
		Semantics: WithinRounding,
		Run: func(ctx *Context, m *ir.Model, _ Values) (Stats, error) {
			var st Stats
			// Why no bias folds into a SkipLayerNorm is worth saying
			// only where an Add feeds it and it has no bias yet.
			relevant := func(rule string, n *ir.Node) bool {
				if rule != "skip-layernorm-bias" && rule != "skip-rmsnorm-bias" {
					return true
				}
				if optionalInput(n, skipBiasIndex(n)) != nil {
					return false
				}
				for _, in := range n.Inputs[:2] {
					if p := producerOrNil(in); p != nil && p.Op == "Add" {
						return true
					}
				}
				return false
			}
			if err := applyExplaining(ctx, biasRules, m.Graph, &st, relevant); err != nil {
				return st, err
			}
			n := st.Rewrites["bias-gelu"]
			st.CountFused("BiasGelu", n)
			st.CountFused("Gelu", -n) // each BiasGelu used up a Gelu
			return st, nil
		},
	})
}

// biasAdd matches x + bias for a linear layer's bias (see linearBias).
func biasAdd() *Pattern {
	return Op("Add", Any("x").If(notConst), Any("bias").If(linearBias))
}

var notConst = Cond{"is not a constant", func(_ *Match, v *ir.Value) bool { return !v.IsConst() }}

// linearBias holds for a constant 1-D float tensor as long as the last
// dimension of capture x.
var linearBias = Cond{"is a constant 1-D bias as long as x's last dimension", func(m *Match, v *ir.Value) bool {
	x := m.Value("x")
	if x == nil || !isFixedConst(v) || v.Type.Rank() != 1 || !v.Type.Elem.IsFloat() {
		return false
	}
	r := x.Type.Rank()
	return r >= 1 && v.Type.Shape[0].SameAs(x.Type.Shape[r-1])
}}

var biasRules = MustRuleSet(
	&Rule{
		Name:    "bias-gelu",
		Pattern: Op("tfc::Gelu", biasAdd()),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			return rw.Op("tfc::BiasGelu", m.Value("x"), m.Value("bias"),
				ir.StringAttr("approximate", m.Root.AttrString("approximate", "none")))
		},
	},
	&Rule{
		Name: "skip-layernorm-bias",
		Pattern: OneOf(
			Op("tfc::SkipLayerNorm", biasAdd().Bind("biased"), Any("skip"), Any("scale")).ExtraInputs(),
			Op("tfc::SkipLayerNorm", Any("skip"), biasAdd().Bind("biased"), Any("scale")).ExtraInputs(),
		),
		Checks:  []Cond{hasNoBiasYet},
		Rewrite: foldSkipBias,
	},
	&Rule{
		Name: "skip-rmsnorm-bias",
		Pattern: OneOf(
			Op("tfc::SkipRMSNorm", biasAdd().Bind("biased"), Any("skip"), Any("scale")),
			Op("tfc::SkipRMSNorm", Any("skip"), biasAdd().Bind("biased"), Any("scale")),
		),
		Rewrite: foldSkipBias,
	},
)

// skipBiasIndex is the input index of the bias of a SkipLayerNorm (after
// the optional B) or a SkipRMSNorm.
func skipBiasIndex(n *ir.Node) int {
	if n.Op == "SkipRMSNorm" {
		return 3
	}
	return 4
}

var hasNoBiasYet = Cond{"has no bias input yet", func(m *Match, _ *ir.Value) bool {
	return optionalInput(m.Root, skipBiasIndex(m.Root)) == nil
}}

// foldSkipBias rebuilds the matched skip norm with the bias of its biased
// operand as its bias input; the sum output stays x + bias + skip.
func foldSkipBias(rw *Rewriter, m *Match) *ir.Value {
	sn, x, skip := m.Root, m.Value("x"), m.Value("skip")
	// X must be the operand with the output's shape; after taking the
	// bias off, x may have lost that role to skip.
	if !sameShape(x, sn.Outputs[0]) {
		if !sameShape(skip, sn.Outputs[0]) {
			return rw.Decline("neither %q nor %q provably has the output's shape", x.Name, skip.Name)
		}
		x, skip = skip, x
	}
	args := []any{x, skip, sn.Inputs[2]}
	for i := 3; i < skipBiasIndex(sn); i++ {
		args = append(args, optionalInput(sn, i))
	}
	args = append(args, m.Value("bias"))
	for _, a := range sn.Attrs {
		args = append(args, a)
	}
	nOut := 1
	sum := optionalOutput(sn, 1)
	if sum != nil {
		nOut = 2
	}
	outs := rw.OpN(sn.Domain+"::"+sn.Op, nOut, args...)
	if sum != nil {
		if ok, why := replaceValue(sum, outs[1], rw.names); !ok {
			return rw.Decline("cannot move the readers of the sum: %s", why)
		}
	}
	return outs[0]
}

// optionalOutput returns output i of n, or nil when absent.
func optionalOutput(n *ir.Node, i int) *ir.Value {
	if i < len(n.Outputs) {
		return n.Outputs[i]
	}
	return nil
}
