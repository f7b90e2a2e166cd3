package passes

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

func init() {
	register(&Pass{
		Name:      "canonicalize",
		Summary:   "fold small integer constants and shape arithmetic, turn Constant nodes into constants, drop Identity, inference Dropout and no-op Cast, remove dead nodes and constants, merge common subexpressions",
		Semantics: Exact,
		Options: []Option{
			{Name: "fold-limit", Kind: IntOption, Default: int64(1024), Help: "largest constant, in elements, that folding reads or writes and that constant merging compares"},
			{Name: "infer", Kind: BoolOption, Default: true, Help: "run shape inference (ir.InferShapes) before each round, so that Shape of values with static dimensions folds and one run reaches a fixed point"},
			{Name: "fold", Kind: BoolOption, Default: true, Help: "fold constants and Constant nodes"},
			{Name: "cse", Kind: BoolOption, Default: true, Help: "merge nodes with the same op, attributes and inputs, and identical small constants"},
			{Name: "dce", Kind: BoolOption, Default: true, Help: "remove nodes whose outputs are unused and unused constants"},
			{Name: "max-iterations", Kind: IntOption, Default: int64(20), Help: "rounds of fold, simplify, CSE and DCE before giving up on reaching a fixed point"},
		},
		Run: runCanonicalize,
	})
}

// simplifyRules remove ops that compute their input unchanged.
var simplifyRules = MustRuleSet(
	&Rule{
		Name:    "identity",
		Pattern: Op("Identity", Any("x")),
		Rewrite: func(_ *Rewriter, m *Match) *ir.Value { return m.Value("x") },
	},
	&Rule{
		Name:    "dropout",
		Pattern: Op("Dropout", Any("x")).ExtraInputs(),
		Checks: []Cond{{"runs in inference mode (training_mode absent or constant false) and its mask output is unused", func(m *Match, _ *ir.Value) bool {
			n := m.Root
			if len(n.Inputs) > 2 && n.Inputs[2] != nil {
				v, ok := constScalar(n.Inputs[2])
				if !ok || v != 0 {
					return false
				}
			}
			return len(n.Outputs) < 2 || n.Outputs[1] == nil || n.Outputs[1].NumUses() == 0
		}}},
		Rewrite: func(_ *Rewriter, m *Match) *ir.Value { return m.Value("x") },
	},
	&Rule{
		Name: "noop-cast",
		Pattern: Op("Cast", Any("x")).WhereNode("casts to the input's own element type", func(_ *Match, n *ir.Node) bool {
			t := n.Inputs[0].Type
			return t.IsTensor() && t.Elem != ir.Undefined && int64(t.Elem) == n.AttrInt("to", -1)
		}),
		Rewrite: func(_ *Rewriter, m *Match) *ir.Value { return m.Value("x") },
	},
)

// effectFreeDomains are the domains whose ops have no side effects, so an
// op whose outputs are unused may go. Ops of other (custom) domains stay.
var effectFreeDomains = map[string]bool{"": true, "ai.onnx": true, "ai.onnx.ml": true, "com.microsoft": true, "tfc": true}

// nondeterministicOps must not be merged by CSE: two calls give different
// values.
var nondeterministicOps = map[string]bool{
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true, "RandomUniformLike": true,
	"Multinomial": true, "Bernoulli": true, "Dropout": true,
}

type canonicalizer struct {
	ctx     *Context
	folder  folder
	opset   int64
	names   *namer
	stats   Stats
	model   *ir.Model
	doInfer bool
	doFold  bool
	doCSE   bool
	doDCE   bool
	maxIter int
}

func runCanonicalize(ctx *Context, m *ir.Model, opts Values) (Stats, error) {
	c := &canonicalizer{
		ctx:     ctx,
		folder:  folder{limit: opts.Int("fold-limit")},
		opset:   m.OpsetVersion(""),
		names:   newNamer(m.Graph),
		model:   m,
		doInfer: opts.Bool("infer"),
		doFold:  opts.Bool("fold"),
		doCSE:   opts.Bool("cse"),
		doDCE:   opts.Bool("dce"),
		maxIter: int(opts.Int("max-iterations")),
	}
	err := c.graph(m.Graph)
	return c.stats, err
}

func (c *canonicalizer) graph(g *ir.Graph) error {
	for iter := 0; ; iter++ {
		if err := c.ctx.context().Err(); err != nil {
			return err
		}
		if iter >= c.maxIter {
			return fmt.Errorf("graph %q: canonicalize did not reach a fixed point in %d rounds", g.Name, c.maxIter)
		}
		before := c.stats.TotalRewrites()
		if c.doInfer {
			// Inference runs over the whole model (nested graphs need
			// their outer values typed), so each round of a nested
			// graph reruns it too; nested graphs are rare and small.
			if _, err := ir.InferShapes(c.model); err != nil {
				return fmt.Errorf("shape inference: %w", err)
			}
		}
		if c.doFold {
			c.fold(g)
		}
		// These rules are not what --explain is for: a Cast that
		// converts is not a near miss.
		quiet := &Context{Ctx: c.ctx.Ctx}
		st := &applyState{rs: simplifyRules, ctx: quiet, names: c.names, stats: &c.stats, explains: map[explainKey]Explanation{}}
		if _, err := st.sweep(g); err != nil {
			return err
		}
		if c.doCSE {
			c.mergeConstants(g)
			c.cse(g)
		}
		if c.doDCE {
			c.dce(g)
		}
		if c.stats.TotalRewrites() == before {
			break
		}
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				if err := c.graph(sg); err != nil {
					return fmt.Errorf("in %s: %w", n.Describe(), err)
				}
			}
		}
	}
	return nil
}

// fold replaces nodes computable from small constants (and Shape of
// static shapes) by constants. Node order is topological, so a node whose
// inputs were just folded is folded in the same round.
func (c *canonicalizer) fold(g *ir.Graph) {
	for _, n := range slices.Clone(g.Nodes) {
		if slices.ContainsFunc(n.Outputs, func(o *ir.Value) bool { return o == nil }) {
			continue
		}
		tensors, ok := c.folder.fold(n, c.opset)
		if !ok || len(tensors) != len(n.Outputs) {
			continue
		}
		for i, o := range n.Outputs {
			// The constant takes the output's name, so names in the
			// text form stay stable and graph outputs keep theirs.
			name := o.Name
			o.Name = c.names.fresh(name + "_folded")
			k := g.AddConstant(name, tensors[i])
			o.ReplaceAllUsesWith(k)
		}
		if err := g.Remove(n); err != nil {
			continue
		}
		rule := "fold-" + n.Op
		if n.Op == "Constant" {
			rule = "constant-node"
		}
		c.stats.Count(rule, 1)
	}
}

// mergeConstants points uses of identical small constants at the first.
func (c *canonicalizer) mergeConstants(g *ir.Graph) {
	first := map[string]*ir.Value{}
	for _, k := range slices.Clone(g.Constants) {
		t := k.Const
		if t == nil || !t.HasData() || t.NumElements() > c.folder.limit || k.IsGraphInput() {
			continue
		}
		key := tensorKey(t)
		f, ok := first[key]
		if !ok {
			first[key] = k
			continue
		}
		if ok, _ := canReplace(k, f); !ok {
			continue
		}
		replaceValue(k, f, c.names)
		if g.RemoveConstant(k) == nil {
			c.stats.Count("cse-constant", 1)
		}
	}
}

// cseKey identifies a node's computation, or "" for nodes CSE leaves
// alone.
func cseKey(n *ir.Node, ids map[*ir.Value]int) string {
	if !effectFreeDomains[n.Domain] || nondeterministicOps[n.Op] || len(n.Outputs) == 0 {
		return ""
	}
	for _, a := range n.Attrs {
		if len(a.Subgraphs()) > 0 {
			return ""
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s::%s:%s|%s|", n.Domain, n.Op, n.Overload, attrsKey(n.Attrs))
	for _, in := range n.Inputs {
		if in == nil {
			b.WriteString("_,")
			continue
		}
		id, ok := ids[in]
		if !ok {
			id = len(ids)
			ids[in] = id
		}
		b.WriteString(strconv.Itoa(id) + ",")
	}
	b.WriteByte('|')
	for _, o := range n.Outputs {
		if o == nil {
			b.WriteByte('_')
		} else {
			b.WriteByte('o')
		}
	}
	return b.String()
}

// cse replaces a node by an earlier one with the same op, domain,
// attributes and inputs.
func (c *canonicalizer) cse(g *ir.Graph) {
	ids := map[*ir.Value]int{}
	first := map[string]*ir.Node{}
	for _, n := range slices.Clone(g.Nodes) {
		key := cseKey(n, ids)
		if key == "" {
			continue
		}
		f, ok := first[key]
		if !ok {
			first[key] = n
			continue
		}
		possible := true
		for i, o := range n.Outputs {
			if o != nil {
				if ok, _ := canReplace(o, f.Outputs[i]); !ok {
					possible = false
				}
			}
		}
		if !possible {
			continue
		}
		for i, o := range n.Outputs {
			if o != nil {
				replaceValue(o, f.Outputs[i], c.names)
			}
		}
		if g.Remove(n) == nil {
			c.stats.Count("cse", 1)
		}
	}
}

// dce removes nodes of effect-free domains whose outputs are all unused,
// last first so that chains go in one round, and unused constants.
func (c *canonicalizer) dce(g *ir.Graph) {
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		if !effectFreeDomains[n.Domain] || !allOutputsUnused(n) {
			continue
		}
		if g.Remove(n) == nil {
			c.stats.Count("dce", 1)
		}
	}
	for _, k := range slices.Clone(g.Constants) {
		if k.NumUses() == 0 && !k.IsGraphInput() {
			if g.RemoveConstant(k) == nil {
				c.stats.Count("dce-constant", 1)
			}
		}
	}
}
