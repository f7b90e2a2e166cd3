package passes

import "github.com/tfc-compiler/tfc/ir"

// fuse-layernorm turns every layer normalization and RMS normalization
// into tfc.LayerNorm and tfc.RMSNorm, whatever form the exporter wrote:
//
//   - the standard ops LayerNormalization (opset 17) and RMSNormalization
//     (opset 23), so that later passes (fuse-skip-layernorm) and backends
//     see one form;
//   - the decomposed LayerNorm (x-mean(x)) / sqrt(mean((x-mean(x))^2)+eps)
//     with the square as Pow 2 or a self-Mul and the division as Div or
//     Reciprocal+Mul;
//   - the decomposed RMSNorm x / sqrt(mean(x^2)+eps) (Llama, Mistral, T5:
//     Mul by Reciprocal, Mul by Div(1, ...), or Div).
//
// The normalization core is fused first, without scale or bias; separate
// rules then fold the scale Mul, the bias Add, and the Casts of fp16-safe
// exports (Cast to float32 before the statistics and back after) into the
// fused op. Splitting it this way keeps each pattern one short tree and
// lets the folds serve every source form.
func init() {
	register(&Pass{
		Name:      "fuse-layernorm",
		Summary:   "fuse LayerNormalization, RMSNormalization and their decomposed forms (with scale, bias and fp16-safe Casts) into tfc.LayerNorm and tfc.RMSNorm",
		Semantics: WithinRounding,
		Run: func(ctx *Context, m *ir.Model, _ Values) (Stats, error) {
			var st Stats
			if err := applyExplaining(ctx, normRules, m.Graph, &st, normExplainRelevant); err != nil {
				return st, err
			}
			st.CountFused("LayerNorm", st.Rewrites["layernorm-standard"]+st.Rewrites["layernorm-decomposed"])
			st.CountFused("RMSNorm", st.Rewrites["rmsnorm-standard"]+st.Rewrites["rmsnorm-decomposed"])
			return st, nil
		},
	})
}

var normRules = MustRuleSet(
	&Rule{
		Name: "layernorm-standard",
		Pattern: Op("LayerNormalization", Any("x"), Any("scale")).ExtraInputs().
			WhereNode("its Mean and InvStdDev outputs are unused", onlyOutput0Used),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			n := m.Root
			return rw.Op("tfc::LayerNorm", n.Inputs[0], n.Inputs[1], optionalInput(n, 2),
				ir.IntAttr("axis", n.AttrInt("axis", -1)), ir.FloatAttr("epsilon", n.AttrFloat("epsilon", 1e-5)))
		},
	},
	&Rule{
		Name:    "layernorm-decomposed",
		Pattern: decomposedLayerNorm(),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			eps, _ := constScalar(m.Value("eps"))
			return rw.Op("tfc::LayerNorm", m.Value("x"), ir.IntAttr("axis", -1), ir.FloatAttr("epsilon", float32(eps)))
		},
	},
	&Rule{
		Name:    "rmsnorm-standard",
		Pattern: Op("RMSNormalization", Any("x"), Any("scale")),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			n := m.Root
			return rw.Op("tfc::RMSNorm", n.Inputs[0], n.Inputs[1],
				ir.IntAttr("axis", n.AttrInt("axis", -1)), ir.FloatAttr("epsilon", n.AttrFloat("epsilon", 1e-5)))
		},
	},
	&Rule{
		Name:    "rmsnorm-decomposed",
		Pattern: decomposedRMSNorm(),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			eps, _ := constScalar(m.Value("eps"))
			return rw.Op("tfc::RMSNorm", m.Value("x"), ir.IntAttr("axis", -1), ir.FloatAttr("epsilon", float32(eps)))
		},
	},
	&Rule{
		// norm(x) * scale, or Cast(norm(x)) * scale, with the scale
		// varying only along the normalized (last) axis.
		Name: "norm-fold-scale",
		Pattern: Op("Mul", Optional(castToFloat(OneOf(
			Op("tfc::LayerNorm", Any("x")),
			Op("tfc::RMSNorm", Any("x")),
		).Bind("norm").WhereNode("normalizes the last axis", normalizesLastAxis))).Bind("normOut"),
			Any("scale").If(variesOnlyAlongLastAxisOf("x"))),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			return refoldNorm(rw, m, 1, m.Value("scale"))
		},
	},
	&Rule{
		// LayerNorm(x, scale) + bias, or Cast(LayerNorm(x, scale)) + bias.
		Name: "norm-fold-bias",
		Pattern: Op("Add", Optional(castToFloat(
			Op("tfc::LayerNorm", Any("x"), Any("scale")).Bind("norm").WhereNode("normalizes the last axis", normalizesLastAxis),
		)).Bind("normOut"),
			Any("bias").If(variesOnlyAlongLastAxisOf("x"))),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			return refoldNorm(rw, m, 2, m.Value("bias"))
		},
	},
	&Rule{
		// Cast(norm(Cast(x) to float32)) back to x's type, as fp16-safe
		// exports write it: the fused op computes in float64 anyway.
		Name: "norm-strip-casts",
		Pattern: Op("Cast", OneOf(
			Op("tfc::LayerNorm", Op("Cast", Any("x")).Bind("widened")).ExtraInputs(),
			Op("tfc::RMSNorm", Op("Cast", Any("x")).Bind("widened")).ExtraInputs(),
		).Bind("norm")),
		Checks: []Cond{{"the inner Cast widens a float input to float32 or float64 and the outer Cast casts back to the input's type", castsBackAroundNorm}},
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			n := m.Node("norm")
			args := []any{m.Value("x")}
			for _, in := range n.Inputs[1:] {
				args = append(args, in)
			}
			for _, a := range n.Attrs {
				args = append(args, a)
			}
			return rw.Op(n.Domain+"::"+n.Op, args...)
		},
	},
)

// decomposedLayerNorm matches (x - mean(x)) / sqrt(mean(d^2) + eps), d =
// x - mean(x), means over the last axis: the normalization without scale
// and bias, which norm-fold-scale and norm-fold-bias add.
func decomposedLayerNorm() *Pattern {
	d := func() *Pattern { return Any("d") }
	centered := Op("Sub", Any("x"), lastAxisMean(Any("x"))).Bind("d")
	sq := OneOf(Op("Pow", d(), Const("two").If(ScalarNear(2, 0))), Op("Mul", d(), d()))
	std := func() *Pattern { return sqrtOfMeanPlusEps(sq) }
	return OneOf(
		Op("Div", centered, std()),
		Op("Mul", centered, Op("Reciprocal", std())),
	)
}

// decomposedRMSNorm matches x / sqrt(mean(x^2) + eps), mean over the last
// axis, in the ways exporters write the division.
func decomposedRMSNorm() *Pattern {
	x := func() *Pattern { return Any("x") }
	sq := func() *Pattern { return OneOf(Op("Pow", x(), Const("two").If(ScalarNear(2, 0))), Op("Mul", x(), x())) }
	rms := func() *Pattern { return sqrtOfMeanPlusEps(sq()) }
	return OneOf(
		Op("Mul", x(), Op("Reciprocal", rms())),                             // torch.rsqrt, dynamo
		Op("Mul", x(), Op("Div", Const("one").If(ScalarNear(1, 0)), rms())), // torch.rsqrt, TorchScript
		Op("Div", x(), rms()),                                               // x / torch.sqrt(...)
	)
}

// sqrtOfMeanPlusEps matches Sqrt(ReduceMean(sq) + eps) with a constant
// scalar eps and the mean over the last axis.
func sqrtOfMeanPlusEps(sq *Pattern) *Pattern {
	return Op("Sqrt", Op("Add", lastAxisMean(sq), Const("eps").If(Cond{"is a constant scalar", func(_ *Match, v *ir.Value) bool {
		_, ok := constScalar(v)
		return ok
	}})))
}

// lastAxisMean matches a ReduceMean over the last axis only, keeping it.
func lastAxisMean(in *Pattern) *Pattern {
	return Op("ReduceMean", in).ExtraInputs().WhereNode("reduces over the last axis only and keeps it (keepdims=1)", reducesLastAxis)
}

// reducesLastAxis checks a ReduceMean node: keepdims=1, axes (attribute
// before opset 18, constant input after) is exactly the last axis of its
// input, whose rank must be known.
func reducesLastAxis(_ *Match, n *ir.Node) bool {
	if n.AttrInt("keepdims", 1) != 1 || len(n.Inputs) == 0 || n.Inputs[0] == nil {
		return false
	}
	rank := n.Inputs[0].Type.Rank()
	if rank < 1 {
		return false
	}
	axes, ok := n.AttrInts("axes")
	if len(n.Inputs) > 1 && n.Inputs[1] != nil {
		if ok || !isFixedConst(n.Inputs[1]) || n.Inputs[1].Const == nil {
			return false
		}
		axes, ok = n.Inputs[1].Const.AsInt64s()
	}
	if !ok || len(axes) != 1 {
		return false
	}
	return axes[0] == -1 || axes[0] == int64(rank-1)
}

// normalizesLastAxis checks that a tfc norm node normalizes only the last
// axis of its input.
func normalizesLastAxis(_ *Match, n *ir.Node) bool {
	rank := n.Inputs[0].Type.Rank()
	axis := n.AttrInt("axis", -1)
	return axis == -1 || rank > 0 && axis == int64(rank-1)
}

// variesOnlyAlongLastAxisOf holds for a value whose static shape
// broadcasts along the last axis of capture x without growing it: rank at
// most x's, every dimension 1 but the last, and the last 1 or x's last.
func variesOnlyAlongLastAxisOf(x string) Cond {
	return Cond{"varies only along the normalized last axis of " + x, func(m *Match, v *ir.Value) bool {
		xv := m.Value(x)
		if xv == nil || !v.Type.IsTensor() || !v.Type.Elem.IsFloat() {
			return false
		}
		rank, xrank := v.Type.Rank(), xv.Type.Rank()
		if rank < 0 || xrank < 1 || rank > xrank {
			return false
		}
		for i, d := range v.Type.Shape {
			last := i == rank-1
			if d.IsKnown() && d.Size == 1 {
				continue
			}
			if !last || !d.SameAs(xv.Type.Shape[xrank-1]) {
				return false
			}
		}
		return true
	}}
}

// refoldNorm rebuilds the matched norm node with extra input at index
// idx (1 scale, 2 bias), keeping its other inputs and attributes, and the
// Cast after it when the match had one.
func refoldNorm(rw *Rewriter, m *Match, idx int, extra *ir.Value) *ir.Value {
	n := m.Node("norm")
	args := make([]any, 0, 3+len(n.Attrs))
	for i := 0; i < idx; i++ {
		args = append(args, optionalInput(n, i))
	}
	args = append(args, extra)
	for _, a := range n.Attrs {
		args = append(args, a)
	}
	out := rw.Op(n.Domain+"::"+n.Op, args...)
	if c, _ := m.Value("normOut").Producer(); c != nil && c.Op == "Cast" {
		out = rw.Op("Cast", out, ir.IntAttr("to", c.AttrInt("to", 0)))
	}
	return out
}

// castsBackAroundNorm checks Cast(norm(Cast(x))): the inner Cast widens a
// float x to float32 or float64 and the outer one casts back to x's type.
func castsBackAroundNorm(m *Match, _ *ir.Value) bool {
	outer := m.Root
	x, widened := m.Value("x"), m.Node("widened")
	if x == nil || widened == nil || !x.Type.IsTensor() || !x.Type.Elem.IsFloat() {
		return false
	}
	to := ir.DataType(widened.AttrInt("to", 0))
	return (to == ir.Float || to == ir.Double) && outer.AttrInt("to", 0) == int64(x.Type.Elem)
}

// castToFloat matches a Cast of in to a floating-point type: scaling
// commutes with such a Cast up to rounding, not with one to integers.
func castToFloat(in *Pattern) *Pattern {
	return Op("Cast", in).WhereNode("casts to a floating-point type", func(_ *Match, n *ir.Node) bool {
		return ir.DataType(n.AttrInt("to", 0)).IsFloat()
	})
}

// onlyOutput0Used holds when every output but the first is absent or
// unused.
func onlyOutput0Used(_ *Match, n *ir.Node) bool {
	for _, o := range n.Outputs[1:] {
		if o != nil && o.NumUses() > 0 {
			return false
		}
	}
	return true
}

// optionalInput returns input i of n, or nil when omitted.
func optionalInput(n *ir.Node, i int) *ir.Value {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return nil
}

// applyExplaining applies rs to g like RuleSet.Apply, but hands on to
// ctx.Explain only the explanations whose anchor a reader would expect
// to fuse (relevant returns true for it). These rules are anchored at
// ops as common as Mul and Add; explaining every Mul of a model would bury
// the few explanations that matter.
func applyExplaining(ctx *Context, rs *RuleSet, g *ir.Graph, st *Stats, relevant func(rule string, anchor *ir.Node) bool) error {
	if ctx == nil || ctx.Explain == nil {
		return rs.Apply(ctx, g, st)
	}
	local := *ctx
	local.Explain = &Explanations{}
	if err := rs.Apply(&local, g, st); err != nil {
		return err
	}
	byLabel := map[string]*ir.Node{}
	g.Walk(func(n *ir.Node) { byLabel[nodeLabel(n)] = n })
	for _, e := range local.Explain.Items {
		if n := byLabel[e.Anchor]; n != nil && relevant(e.Rule, n) {
			ctx.Explain.Items = append(ctx.Explain.Items, e)
		}
	}
	return nil
}

// feedsFrom reports whether an op in ops produces a value within depth
// producer steps above n: the sign that n ends a subgraph of that kind.
func feedsFrom(n *ir.Node, depth int, ops ...string) bool {
	if depth == 0 {
		return false
	}
	for _, in := range n.Inputs {
		if in == nil {
			continue
		}
		p, _ := in.Producer()
		if p == nil {
			continue
		}
		for _, op := range ops {
			if p.Op == op {
				return true
			}
		}
		if feedsFrom(p, depth-1, ops...) {
			return true
		}
	}
	return false
}

// readBy reports whether an output of n is read by a node of one of ops.
func readBy(n *ir.Node, ops ...string) bool {
	for _, o := range n.Outputs {
		if o == nil {
			continue
		}
		for _, u := range o.Uses() {
			for _, op := range ops {
				if u.Node.Op == op {
					return true
				}
			}
		}
	}
	return false
}

// normExplainRelevant keeps explanations at norm ops, at the last
// product or quotient fed by a ReduceMean (a decomposed norm that did not
// fuse), and at anchors reading a tfc norm (a scale, bias or Cast that did
// not fold).
func normExplainRelevant(rule string, n *ir.Node) bool {
	switch rule {
	case "layernorm-standard", "rmsnorm-standard":
		return true
	case "layernorm-decomposed", "rmsnorm-decomposed":
		return feedsFrom(n, 5, "ReduceMean") && !readBy(n, "Mul", "Div")
	}
	// The folds: relevant where the norm read still lacks what the rule
	// would fold in.
	for _, in := range n.Inputs {
		p := producerOrNil(in)
		if p != nil && p.Op == "Cast" && rule != "norm-strip-casts" {
			p = producerOrNil(p.Inputs[0])
		}
		if p == nil || p.Domain != "tfc" || p.Op != "LayerNorm" && p.Op != "RMSNorm" {
			continue
		}
		switch rule {
		case "norm-fold-scale":
			return optionalInput(p, 1) == nil
		case "norm-fold-bias":
			return p.Op == "LayerNorm" && optionalInput(p, 1) != nil && optionalInput(p, 2) == nil
		case "norm-strip-casts":
			return n.Op == "Cast" && p.Inputs[0] != nil && producerOrNil(p.Inputs[0]) != nil && producerOrNil(p.Inputs[0]).Op == "Cast"
		}
	}
	return false
}

// producerOrNil returns the node producing v, or nil for an omitted input,
// a graph input or a constant.
func producerOrNil(v *ir.Value) *ir.Node {
	if v == nil {
		return nil
	}
	n, _ := v.Producer()
	return n
}
