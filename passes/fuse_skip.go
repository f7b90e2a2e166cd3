package passes

import (
	"github.com/tfc-compiler/tfc/ir"
)

// fuse-skip-layernorm turns LayerNorm(a + b) over the last axis, where a
// and b are both computed values (a residual connection), into
// tfc.SkipLayerNorm(X, Skip, Scale, B), and RMSNorm(a + b) with a scale
// into tfc.SkipRMSNorm(X, Skip, Scale). X is the operand with the sum's
// shape; Skip may broadcast to it. When something else also reads the sum
// (pre-LN models such as GPT-2 carry the residual stream on), the fused op
// exposes it as output 1 and those readers switch to it.
//
// The residual Add is deliberately outside the pattern: the engine would
// refuse the match when the sum has other readers, and here those readers
// are the normal case. The rewrite moves them to output 1 itself; the pass
// then removes the dead Adds and restores topological order (a reader of
// the sum may sit before the LayerNorm).
func init() {
	register(&Pass{
		Name:      "fuse-skip-layernorm",
		Summary:   "fuse a residual Add feeding tfc.LayerNorm or tfc.RMSNorm into tfc.SkipLayerNorm or tfc.SkipRMSNorm, exposing the sum as output 1 when it has other readers",
		Semantics: WithinRounding,
		Run: func(ctx *Context, m *ir.Model, _ Values) (Stats, error) {
			var st Stats
			if err := skipRules.Apply(ctx, m.Graph, &st); err != nil {
				return st, err
			}
			n := st.Rewrites["skip-layernorm"]
			st.CountFused("SkipLayerNorm", n)
			// Fused counts are of ops present at the end, as in ONNX
			// Runtime's statistics: each SkipLayerNorm used up a LayerNorm.
			// A SkipRMSNorm stays in the RMSNorm category, as ONNX
			// Runtime counts SkipSimplifiedLayerNormalization.
			st.CountFused("LayerNorm", -n)
			if n+st.Rewrites["skip-rmsnorm"] > 0 {
				if err := tidyAfterRewire(m.Graph); err != nil {
					return st, err
				}
			}
			return st, nil
		},
	})
}

var skipRules = MustRuleSet(
	&Rule{
		Name: "skip-layernorm",
		Pattern: Op("tfc::LayerNorm", Any("sum").If(residualSum), Any("scale")).ExtraInputs().
			WhereNode("normalizes the last axis", normalizesLastAxis),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value { return fuseSkip(rw, m, "tfc::SkipLayerNorm") },
	},
	&Rule{
		Name: "skip-rmsnorm",
		Pattern: Op("tfc::RMSNorm", Any("sum").If(residualSum), Any("scale")).
			WhereNode("normalizes the last axis", normalizesLastAxis),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value { return fuseSkip(rw, m, "tfc::SkipRMSNorm") },
	},
)

// fuseSkip builds op(X, Skip, Scale[, B]) from the matched norm of a
// residual sum, moving the sum's other readers to output 1.
func fuseSkip(rw *Rewriter, m *Match, op string) *ir.Value {
	norm, sum := m.Root, m.Value("sum")
	add, _ := sum.Producer()
	x, skip := add.Inputs[0], add.Inputs[1]
	if !sameShape(x, sum) {
		x, skip = skip, x
	}
	if !sameShape(x, sum) {
		return rw.Decline("neither operand of %s %q provably has the sum's shape %v", add.Op, nodeLabel(add), sum.Type)
	}
	exposeSum := sum.IsOutput() || sum.NumUses() > 1
	nOut := 1
	if exposeSum {
		nOut = 2
	}
	args := []any{x, skip, norm.Inputs[1]}
	if beta := optionalInput(norm, 2); beta != nil {
		args = append(args, beta)
	}
	args = append(args, ir.FloatAttr("epsilon", norm.AttrFloat("epsilon", 1e-5)))
	outs := rw.OpN(op, nOut, args...)
	if exposeSum {
		if ok, why := replaceValue(sum, outs[1], rw.names); !ok {
			return rw.Decline("cannot expose the residual sum: %s", why)
		}
	}
	return outs[0]
}

// residualSum holds for the output of a two-input Add of computed values:
// a constant operand makes it a bias, not a residual connection. The Add
// must be in the LayerNorm's graph: its other readers move to an output of
// the fused node, which an outer graph cannot read.
var residualSum = Cond{"is the sum of two computed values (a residual Add) in the same graph", func(m *Match, v *ir.Value) bool {
	n, _ := v.Producer()
	if n == nil || n.Op != "Add" || (n.Domain != "" && n.Domain != "ai.onnx") || len(n.Inputs) != 2 || n.Graph() != m.Root.Graph() {
		return false
	}
	for _, in := range n.Inputs {
		if in == nil || in.IsConst() {
			return false
		}
	}
	return true
}}

// sameShape reports whether a and b provably have the same shape.
func sameShape(a, b *ir.Value) bool {
	ra, rb := a.Type.Rank(), b.Type.Rank()
	if ra < 0 || ra != rb {
		return false
	}
	for i, d := range a.Type.Shape {
		if !d.SameAs(b.Type.Shape[i]) {
			return false
		}
	}
	return true
}

// tidyAfterRewire removes nodes left without readers by rewrites that
// moved readers themselves (the residual Adds) and restores topological
// order, in g and its nested graphs.
func tidyAfterRewire(g *ir.Graph) error {
	var dead []*ir.Node
	for _, n := range g.Nodes {
		if n.Op == "Add" && (n.Domain == "" || n.Domain == "ai.onnx") && allOutputsUnused(n) {
			dead = append(dead, n)
		}
	}
	removeDead(g, dead)
	if err := g.TopoSort(); err != nil {
		return err
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				if err := tidyAfterRewire(sg); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
