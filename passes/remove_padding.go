package passes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// remove-padding (ByteTransformer) packs the valid tokens of a masked
// encoder once, right after the embeddings, runs every token-wise op on
// the packed [T, hidden] matrix, replaces each tfc.Attention with
// tfc.PackedAttention (per-sequence bounds), and unpacks once before each
// reader that needs the [B, S, ...] layout (graph outputs, CLS Gather,
// mask-weighted pooling). Padded positions of unpacked outputs are zeros.
//
// The pass is all or nothing: it first classifies every node that reads a
// packed value, and declines (with an --explain reason, model unchanged)
// when any of them is an op it does not understand. Whether the model's
// attention mask really hides padded keys is checked by the PackedAttention
// kernel on every run (an error, never a silent difference).
func init() {
	register(&Pass{
		Name:      "remove-padding",
		Summary:   "pack valid tokens once after the embeddings (tfc.PackTokens), run token-wise ops and tfc.PackedAttention on them, unpack once at the outputs; within rounding on valid tokens, zeros at padded positions",
		Semantics: WithinRounding,
		Run: func(ctx *Context, m *ir.Model, _ Values) (Stats, error) {
			var st Stats
			pl, reason := planPacking(m.Graph)
			if pl == nil {
				if ctx != nil && ctx.Explain != nil && reason.reason != "" {
					ctx.Explain.Items = append(ctx.Explain.Items, Explanation{Pass: ctx.pass, Rule: "remove-padding", Anchor: reason.anchor, Reason: reason.reason})
				}
				return st, nil
			}
			if err := pl.apply(m); err != nil {
				return st, err
			}
			st.Count("pack-tokens", 1)
			st.Count("packed-attention", pl.attentions)
			st.Count("unpack-tokens", pl.unpacks)
			return st, nil
		},
	})
}

// packState is how a value of the original graph lives after packing.
type packState int

const (
	// tokens: [B, S, rest...] becomes [T, rest...].
	tokens packState = iota + 1
	// headsFirst: [B, H, S, D] (the head-split layout fed to attention)
	// becomes [T, H, D], the same packed value as its [B, S, H, D] input.
	headsFirst
)

// nodeKind is what the rewrite does with one node reading packed values.
type nodeKind int

const (
	kindSame       nodeKind = iota + 1 // same op on packed operands
	kindReshape                        // reshape of the trailing dims: new shape [-1, rest...]
	kindShape                          // Shape of a packed value: from the mask's shape
	kindSplitHeads                     // Transpose [0,2,1,3] to the attention layout: no-op
	kindMergeHeads                     // Transpose [0,2,1,3] back: no-op
	kindAttention                      // tfc.Attention becomes tfc.PackedAttention
	kindExit                           // reads the unpacked tensor
)

type declined struct{ anchor, reason string }

type packPlan struct {
	g     *ir.Graph
	mask  *ir.Value // the graph input [B, S] the attention masks come from
	entry *ir.Value // the hidden states packed once
	state map[*ir.Value]packState
	kinds map[*ir.Node]nodeKind
	order []*ir.Node // classified nodes in graph order
	exits map[*ir.Value]bool
	// batchDims and seqDims are the dims known to be the batch and the
	// sequence length.
	batchDims, seqDims []ir.Dim
	attentions         int
	unpacks            int
}

// tokenWiseUnary are ops applied to each element (or each token's last
// axis) whose extra inputs are parameters.
var tokenWiseUnary = map[string]bool{
	"::Relu": true, "::Tanh": true, "::Sigmoid": true, "::Erf": true, "::Gelu": true, "::Cast": true,
	"::Identity": true, "::Neg": true, "::Sqrt": true, "::Exp": true, "::Softplus": true, "::HardSwish": true,
	"tfc::Gelu": true, "tfc::BiasGelu": true, "tfc::LayerNorm": true, "tfc::RMSNorm": true,
	"tfc::SkipLayerNorm": true, "tfc::SkipRMSNorm": true,
}

var tokenWiseBinary = map[string]bool{"::Add": true, "::Sub": true, "::Mul": true, "::Div": true, "::Pow": true}

func qop(n *ir.Node) string {
	d := n.Domain
	if d == "ai.onnx" {
		d = ""
	}
	return d + "::" + n.Op
}

// planPacking decides whether and how g can be packed; it changes nothing.
func planPacking(g *ir.Graph) (*packPlan, declined) {
	var attns []*ir.Node
	for _, n := range g.Nodes {
		switch qop(n) {
		case "tfc::Attention":
			attns = append(attns, n)
		case "tfc::PackTokens":
			return nil, declined{n.Describe(), "the graph is already packed"}
		}
	}
	if len(attns) == 0 {
		return nil, declined{"graph " + g.Name, "no tfc.Attention in the graph (run fuse-attention first)"}
	}
	pl := &packPlan{g: g, state: map[*ir.Value]packState{}, kinds: map[*ir.Node]nodeKind{}, exits: map[*ir.Value]bool{}}
	// The mask input: the one non-constant graph input every attention's
	// mask is computed from.
	for _, a := range attns {
		kind := a.AttrString("mask_kind", "none")
		if slices.ContainsFunc(strings.Split(kind, "+"), func(part string) bool {
			return part == "causal" || strings.HasPrefix(part, "sliding")
		}) {
			return nil, declined{a.Describe(), fmt.Sprintf("mask_kind %q: only padding masks given as an additive or boolean tensor are packed", kind)}
		}
		var masks []*ir.Value
		for i := 3; i < len(a.Inputs) && i <= 4; i++ {
			if a.Inputs[i] != nil {
				masks = append(masks, a.Inputs[i])
			}
		}
		if len(masks) == 0 {
			return nil, declined{a.Describe(), "the attention has no mask input, so it attends to padded keys"}
		}
		for _, in := range graphInputsOf(masks) {
			if pl.mask != nil && pl.mask != in {
				return nil, declined{a.Describe(), fmt.Sprintf("the attention masks depend on two graph inputs, %q and %q", pl.mask.Name, in.Name)}
			}
			pl.mask = in
		}
	}
	if pl.mask == nil {
		return nil, declined{attns[0].Describe(), "the attention mask does not come from a graph input (no padding mask to pack by)"}
	}
	if pl.mask.Type.Rank() != 2 {
		return nil, declined{attns[0].Describe(), fmt.Sprintf("the mask input %q is %v, not [batch, seq]", pl.mask.Name, pl.mask.Type)}
	}
	// The entry: the hidden states the first attention's query projection
	// reads.
	entry, why := projectionInput(attns[0].Inputs[0])
	if entry == nil {
		return nil, declined{attns[0].Describe(), why}
	}
	pl.entry = entry
	ms := pl.mask.Type.Shape
	pl.batchDims, pl.seqDims = []ir.Dim{ms[0]}, []ir.Dim{ms[1]}
	if et := entry.Type; et.Rank() >= 3 && !et.Shape[0].Conflicts(ms[0]) && !et.Shape[1].Conflicts(ms[1]) &&
		(et.Shape[0].IsSym() || et.Shape[0].IsKnown()) && (et.Shape[1].IsSym() || et.Shape[1].IsKnown()) &&
		!et.Shape[0].SameAs(ms[1]) && !et.Shape[1].SameAs(ms[0]) {
		pl.batchDims = append(pl.batchDims, et.Shape[0])
		pl.seqDims = append(pl.seqDims, et.Shape[1])
	}
	if !pl.tokenShaped(entry.Type, 0, 1) || entry.Type.Rank() < 3 {
		return nil, declined{attns[0].Describe(), fmt.Sprintf("the hidden states %q are %v, not provably [batch, seq, ...] of the mask %q %v", entry.Name, entry.Type, pl.mask.Name, pl.mask.Type)}
	}
	if p, _ := entry.Producer(); p == nil {
		return nil, declined{attns[0].Describe(), fmt.Sprintf("the hidden states %q are a graph input", entry.Name)}
	}
	pl.state[entry] = tokens
	for _, n := range g.Nodes {
		reads := false
		for _, in := range n.Inputs {
			if in != nil && pl.state[in] != 0 {
				reads = true
			}
		}
		if !reads {
			continue
		}
		if d := pl.classify(n); d.reason != "" {
			return nil, d
		}
		pl.order = append(pl.order, n)
	}
	// Uses outside the main graph's node list cannot be rewired.
	for v, s := range pl.state {
		for _, u := range v.Uses() {
			if u.Node.Graph() != g {
				return nil, declined{u.Node.Describe(), fmt.Sprintf("a nested graph reads the token-wise value %q", v.Name)}
			}
		}
		if v.IsOutput() {
			if s != tokens {
				return nil, declined{"output " + v.Name, "a graph output is in the attention head layout"}
			}
			pl.exits[v] = true
		}
	}
	return pl, declined{}
}

// graphInputsOf returns the non-constant graph inputs the values are
// computed from.
func graphInputsOf(vs []*ir.Value) []*ir.Value {
	seen := map[*ir.Value]bool{}
	var out []*ir.Value
	stack := slices.Clone(vs)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == nil || seen[v] {
			continue
		}
		seen[v] = true
		if p, _ := v.Producer(); p != nil {
			// A Shape reads dims only, not the data of what it measures.
			if qop(p) != "::Shape" && qop(p) != "::Size" {
				stack = append(stack, p.Inputs...)
			}
			continue
		}
		if v.IsGraphInput() && !v.IsConst() {
			out = append(out, v)
		}
	}
	return out
}

// projectionInput walks from an attention's Q back through the head split
// (Transpose, Reshape) and the projection (bias Add, MatMul with a
// constant weight) to the hidden states.
func projectionInput(q *ir.Value) (*ir.Value, string) {
	v := q
	for steps := 0; steps < 8; steps++ {
		p, _ := v.Producer()
		if p == nil {
			return v, ""
		}
		switch qop(p) {
		case "::Transpose", "::Reshape":
			v = p.Inputs[0]
		case "::Add":
			if p.Inputs[0].IsConst() {
				v = p.Inputs[1]
			} else if p.Inputs[1].IsConst() {
				v = p.Inputs[0]
			} else {
				return nil, fmt.Sprintf("the query projection %s adds two computed values", p.Describe())
			}
		case "::MatMul":
			if !p.Inputs[1].IsConst() {
				return nil, fmt.Sprintf("the query projection %s has no constant weight", p.Describe())
			}
			return p.Inputs[0], ""
		default:
			return nil, fmt.Sprintf("the query is computed by %s, not a MatMul projection of the hidden states", p.Describe())
		}
	}
	return nil, "the query projection is too deep to follow"
}

// tokenShaped reports whether t's dims at positions bi and si are the
// batch and seq dims: the mask's, or the entry hidden states' (the two may
// carry different symbols, e.g. dynamo's s18 and s43 for the batch;
// PackTokens checks at run time that they agree).
func (pl *packPlan) tokenShaped(t ir.Type, bi, si int) bool {
	if t.Rank() <= max(bi, si) {
		return false
	}
	in := func(d ir.Dim, set []ir.Dim) bool {
		return slices.ContainsFunc(set, func(o ir.Dim) bool { return d.SameAs(o) })
	}
	return in(t.Shape[bi], pl.batchDims) && in(t.Shape[si], pl.seqDims)
}

// isParam reports whether v broadcasts along the trailing dims of a
// packed operand of rank r only (its rank leaves out batch and seq), and
// is not itself packed.
func (pl *packPlan) isParam(v *ir.Value, r int) bool {
	return v == nil || pl.state[v] == 0 && v.Type.Rank() >= 0 && v.Type.Rank() <= r-2
}

func (pl *packPlan) classify(n *ir.Node) declined {
	bad := func(format string, args ...any) declined {
		return declined{n.Describe(), fmt.Sprintf(format, args...)}
	}
	in0 := n.Inputs[0]
	set := func(k nodeKind, s packState) declined {
		pl.kinds[n] = k
		for _, o := range n.Outputs {
			if o != nil && s != 0 {
				pl.state[o] = s
			}
		}
		return declined{}
	}
	op := qop(n)
	// Readers of the head layout: only attention and the merge back.
	for i, in := range n.Inputs {
		if in != nil && pl.state[in] == headsFirst {
			switch {
			case op == "tfc::Attention" && i <= 2:
			case op == "::Reshape" && i == 0 && sameDims(in.Type, n.Outputs[0].Type):
				// An identity reshape (sdpa exports write one after attention).
				return set(kindSplitHeads, headsFirst)
			case op == "::Shape":
				if !restKnownExcept(in.Type, 0, 2) {
					return bad("the shape of %q beyond batch and seq is not known", in.Name)
				}
				return set(kindShape, 0)
			case op == "::Transpose" && isPerm0213(n) && n.Outputs[0].Type.Rank() == 4:
				if !pl.tokenShaped(n.Outputs[0].Type, 0, 1) {
					return bad("the merged heads %v are not [batch, seq, heads, size]", n.Outputs[0].Type)
				}
				return set(kindMergeHeads, tokens)
			default:
				return bad("reads the attention-layout value %q and is not understood by remove-padding", in.Name)
			}
		}
	}
	if op == "tfc::Attention" {
		for i := 0; i < 3; i++ {
			if pl.state[n.Inputs[i]] != headsFirst {
				return bad("input %d of the attention is not a head split of the packed hidden states", i)
			}
		}
		for i := 3; i < len(n.Inputs); i++ {
			if n.Inputs[i] != nil && pl.state[n.Inputs[i]] != 0 {
				return bad("the attention mask is computed from the hidden states")
			}
		}
		if n.Outputs[0].Type.Rank() != 4 || !pl.tokenShaped(n.Outputs[0].Type, 0, 2) {
			return bad("the attention output %v is not [batch, heads, seq, size]", n.Outputs[0].Type)
		}
		pl.attentions++
		return set(kindAttention, headsFirst)
	}
	// From here on at least one input is in the tokens state; every packed
	// value must provably be [batch, seq, ...].
	for _, in := range n.Inputs {
		if in != nil && pl.state[in] == tokens && !pl.tokenShaped(in.Type, 0, 1) {
			return bad("input %q is %v, not provably [batch, seq, ...]", in.Name, in.Type)
		}
	}
	// outTokens: every output is [batch, seq, ...] of the packed inputs'
	// rank, so the packed op gives [T, ...].
	outTokens := func() bool {
		r := -1
		for _, in := range n.Inputs {
			if in != nil && pl.state[in] == tokens {
				r = in.Type.Rank()
			}
		}
		for _, o := range n.Outputs {
			if o != nil && (!pl.tokenShaped(o.Type, 0, 1) || o.Type.Rank() != r) {
				return false
			}
		}
		return true
	}
	switch {
	case op == "::Shape":
		if pl.state[in0] != tokens {
			return bad("Shape of a non-token value")
		}
		if !restKnown(in0.Type) {
			return bad("the shape of %q beyond batch and seq is not known", in0.Name)
		}
		return set(kindShape, 0)
	case tokenWiseUnary[op]:
		if pl.state[in0] != tokens {
			return bad("input 0 is not the packed hidden states")
		}
		r := in0.Type.Rank()
		if ax := n.AttrInt("axis", -1); (op == "tfc::LayerNorm" || op == "tfc::RMSNorm") && ax >= 0 && ax < 2 {
			return bad("normalizes over the batch or seq axis (axis %d)", ax)
		}
		for i := 1; i < len(n.Inputs); i++ {
			in := n.Inputs[i]
			if (op == "tfc::SkipLayerNorm" || op == "tfc::SkipRMSNorm") && i == 1 && pl.state[in] == tokens && in.Type.Rank() == r {
				continue
			}
			if !pl.isParam(in, r) {
				return bad("operand %d (%q, %v) is neither packed nor a parameter of the last axes", i, in.Name, in.Type)
			}
		}
		if !outTokens() {
			return bad("the output is not [batch, seq, ...]")
		}
		return set(kindSame, tokens)
	case tokenWiseBinary[op]:
		a, b := n.Inputs[0], n.Inputs[1]
		pa, pb := pl.state[a] == tokens, pl.state[b] == tokens
		switch {
		case pa && pb && a.Type.Rank() == b.Type.Rank() && outTokens():
			return set(kindSame, tokens)
		case pa && pl.isParam(b, a.Type.Rank()) && outTokens(), pb && pl.isParam(a, b.Type.Rank()) && outTokens():
			return set(kindSame, tokens)
		case pa && pl.tokenShaped(b.Type, 0, 1), pb && pl.tokenShaped(a.Type, 0, 1):
			// Mask-weighted pooling and the like: read the unpacked
			// tensor (zeros at padded positions).
			return set(kindExit, 0)
		}
		return bad("combines the packed hidden states with %v, which is neither packed nor a parameter of the last axes", map[bool]ir.Type{true: b.Type, false: a.Type}[pa])
	case op == "::MatMul":
		w := n.Inputs[1]
		if pl.state[in0] != tokens || pl.state[w] != 0 || w.Type.Rank() != 2 || in0.Type.Rank() < 3 {
			return bad("only [batch, seq, ..., k] × [k, n] products with a non-token right operand are packed")
		}
		return set(kindSame, tokens)
	case op == "::Reshape":
		out := n.Outputs[0]
		if pl.state[in0] != tokens || !pl.tokenShaped(out.Type, 0, 1) || !restKnown(out.Type) {
			return bad("reshapes more than the dims after batch and seq (output %v)", out.Type)
		}
		return set(kindReshape, tokens)
	case op == "::Transpose" && isPerm0213(n) && in0.Type.Rank() == 4:
		if !pl.tokenShaped(n.Outputs[0].Type, 0, 2) {
			return bad("the head split %v is not [batch, heads, seq, size]", n.Outputs[0].Type)
		}
		for _, u := range n.Outputs[0].Uses() {
			if (qop(u.Node) != "tfc::Attention" || u.Index > 2) && qop(u.Node) != "::Shape" {
				return bad("the head split is read by %s, not only by attention", u.Node.Describe())
			}
		}
		if n.Outputs[0].IsOutput() {
			return bad("the head split is a graph output")
		}
		return set(kindSplitHeads, headsFirst)
	case op == "::Gather" && n.AttrInt("axis", 0) == 1 && n.Inputs[1].IsConst():
		// CLS pooling reads the unpacked tensor.
		return set(kindExit, 0)
	}
	return bad("reads the token-wise value %q and is not understood by remove-padding", in0.Name)
}

// sameDims reports whether two ranked types provably have the same dims.
func sameDims(a, b ir.Type) bool {
	if a.Rank() < 0 || a.Rank() != b.Rank() {
		return false
	}
	for i := range a.Shape {
		if !a.Shape[i].SameAs(b.Shape[i]) {
			return false
		}
	}
	return true
}

func restKnown(t ir.Type) bool { return restKnownExcept(t, 0, 1) }

// restKnownExcept reports whether every dim of t but the batch (bi) and
// seq (si) positions is a known size.
func restKnownExcept(t ir.Type, bi, si int) bool {
	if t.Rank() <= max(bi, si) {
		return false
	}
	for i, d := range t.Shape {
		if i != bi && i != si && !d.IsKnown() {
			return false
		}
	}
	return true
}

func isPerm0213(n *ir.Node) bool {
	p, ok := n.AttrInts("perm")
	return ok && slices.Equal(p, []int64{0, 2, 1, 3})
}

// apply rewrites the graph as planned.
func (pl *packPlan) apply(m *ir.Model) error {
	g := pl.g
	name := func(base string) string { return g.NewValueName(base) }
	prod, _ := pl.entry.Producer()
	pack := g.NewNode(ir.NodeSpec{Name: name("remove_padding/PackTokens"), Domain: "tfc", Op: "PackTokens",
		Inputs: []*ir.Value{pl.entry, pl.mask}, Outputs: []string{name(pl.entry.Name + "/packed"), name("remove_padding/offsets"), name("remove_padding/index")}})
	g.InsertAfter(pack, prod)
	offsets, index := pack.Outputs[1], pack.Outputs[2]
	newv := map[*ir.Value]*ir.Value{pl.entry: pack.Outputs[0]}
	mapIn := func(v *ir.Value) *ir.Value {
		if w, ok := newv[v]; ok {
			return w
		}
		return v
	}
	unpacked := map[*ir.Value]*ir.Value{}
	unpack := func(v *ir.Value, before *ir.Node) *ir.Value {
		if u, ok := unpacked[v]; ok {
			return u
		}
		n := g.NewNode(ir.NodeSpec{Name: name("remove_padding/UnpackTokens"), Domain: "tfc", Op: "UnpackTokens",
			Inputs: []*ir.Value{newv[v], offsets, index, pl.mask}, Outputs: []string{name(v.Name + "/unpacked")}})
		if before != nil {
			g.InsertBefore(n, before)
		} else {
			g.Nodes = append(g.Nodes, n)
		}
		pl.unpacks++
		unpacked[v] = n.Outputs[0]
		return n.Outputs[0]
	}
	var old []*ir.Node
	for _, n := range pl.order {
		switch pl.kinds[n] {
		case kindSplitHeads, kindMergeHeads:
			newv[n.Outputs[0]] = newv[n.Inputs[0]]
		case kindSame, kindAttention, kindReshape:
			spec := ir.NodeSpec{Name: n.Name + "/packed", Domain: n.Domain, Op: n.Op, Attrs: slices.Clone(n.Attrs)}
			for _, in := range n.Inputs {
				spec.Inputs = append(spec.Inputs, mapIn(in))
			}
			switch pl.kinds[n] {
			case kindAttention:
				spec.Op, spec.Domain = "PackedAttention", "tfc"
				bias, keep := inputAt(n, 3), inputAt(n, 4)
				spec.Inputs = []*ir.Value{spec.Inputs[0], spec.Inputs[1], spec.Inputs[2], offsets, index, pl.mask, bias, keep}
				if keep == nil {
					spec.Inputs = spec.Inputs[:7]
					if bias == nil {
						spec.Inputs = spec.Inputs[:6]
					}
				}
			case kindReshape:
				dims := []int64{-1}
				for _, d := range n.Outputs[0].Type.Shape[2:] {
					dims = append(dims, d.Size)
				}
				c := g.AddConstant(name(n.Outputs[0].Name+"/packed_shape"), ir.Int64Tensor([]int64{int64(len(dims))}, dims...))
				spec.Inputs = []*ir.Value{spec.Inputs[0], c}
				spec.Attrs = nil
			}
			for _, o := range n.Outputs {
				if o == nil {
					spec.Outputs = append(spec.Outputs, "")
				} else {
					spec.Outputs = append(spec.Outputs, name(o.Name+"/packed"))
				}
			}
			nn := g.NewNode(spec)
			g.InsertBefore(nn, n)
			for i, o := range n.Outputs {
				if o != nil {
					newv[o] = nn.Outputs[i]
				}
			}
		case kindShape:
			pl.rewriteShape(n)
		case kindExit:
			for i, in := range n.Inputs {
				if in != nil && pl.state[in] == tokens {
					n.SetInput(i, unpack(in, n))
				}
			}
			continue // the node stays
		}
		old = append(old, n)
	}
	// Graph outputs keep their names: the unpacked value takes it.
	for i, o := range slices.Clone(g.Outputs) {
		if !pl.exits[o] {
			continue
		}
		want := o.Name
		o.Name = name(want + "/padded")
		u := unpack(o, nil)
		u.Name = want
		g.SetOutput(i, u)
	}
	if removed := removeDead(g, old); removed != len(old) {
		return fmt.Errorf("remove-padding: %d of %d replaced nodes still have readers", len(old)-removed, len(old))
	}
	if err := g.TopoSort(); err != nil {
		return err
	}
	if _, err := ir.InferGraph(g, m.Opsets); err != nil {
		return fmt.Errorf("remove-padding: %w", err)
	}
	return nil
}

func inputAt(n *ir.Node, i int) *ir.Value {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return nil
}

// rewriteShape replaces Shape(x), x packed, with the padded shape: batch
// and seq from the mask's shape, the other dims constant. x is [B, S, ...]
// or, in the attention layout, [B, H, S, D].
func (pl *packPlan) rewriteShape(n *ir.Node) {
	g := pl.g
	x := n.Inputs[0]
	bi, si := 0, 1
	if pl.state[x] == headsFirst {
		si = 2
	}
	r := int64(x.Type.Rank())
	start, end := n.AttrInt("start", 0), n.AttrInt("end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = min(max(start, 0), r), min(max(end, 0), r)
	var parts []*ir.Value
	var consts []int64
	flush := func() {
		if len(consts) > 0 {
			parts = append(parts, g.AddConstant(g.NewValueName(n.Outputs[0].Name+"/dims"), ir.Int64Tensor([]int64{int64(len(consts))}, consts...)))
			consts = nil
		}
	}
	for i := start; i < end; i++ {
		from := int64(-1)
		switch int(i) {
		case bi:
			from = 0
		case si:
			from = 1
		}
		if from < 0 {
			consts = append(consts, x.Type.Shape[i].Size)
			continue
		}
		flush()
		sh := g.NewNode(ir.NodeSpec{Name: fmt.Sprintf("%s/mask_shape_%d", n.Name, from), Op: "Shape", Inputs: []*ir.Value{pl.mask},
			Attrs: []*ir.Attr{ir.IntAttr("start", from), ir.IntAttr("end", from+1)}, Outputs: []string{g.NewValueName(n.Outputs[0].Name + "/from_mask")}})
		g.InsertBefore(sh, n)
		parts = append(parts, sh.Outputs[0])
	}
	flush()
	var repl *ir.Value
	switch len(parts) {
	case 0:
		repl = g.AddConstant(g.NewValueName(n.Outputs[0].Name+"/empty"), ir.Int64Tensor([]int64{0}))
	case 1:
		repl = parts[0]
	default:
		c := g.NewNode(ir.NodeSpec{Name: n.Name + "/concat", Op: "Concat", Inputs: parts, Attrs: []*ir.Attr{ir.IntAttr("axis", 0)},
			Outputs: []string{g.NewValueName(n.Outputs[0].Name + "/padded_shape")}})
		g.InsertBefore(c, n)
		repl = c.Outputs[0]
	}
	if n.Outputs[0].IsOutput() {
		// A graph output keeps its name: copy through Identity.
		want := n.Outputs[0].Name
		n.Outputs[0].Name = g.NewValueName(want + "/old")
		id := g.NewNode(ir.NodeSpec{Name: n.Name + "/identity", Op: "Identity", Inputs: []*ir.Value{repl}, Outputs: []string{want}})
		g.InsertBefore(id, n)
		repl = id.Outputs[0]
	}
	n.Outputs[0].ReplaceAllUsesWith(repl)
}
