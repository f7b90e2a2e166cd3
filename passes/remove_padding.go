package passes

import (
	"fmt"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// remove-padding (ByteTransformer) packs the valid tokens of a masked
// encoder, or of a causal decoder's prefill, once, right after the
// embeddings, runs every token-wise op on the packed [T, hidden] matrix
// (and the rotary embedding on the packed [T, heads, size] head layout),
// packs per-position tensors (position embeddings, rotary cos/sin) on the
// same mask, replaces each tfc.Attention with tfc.PackedAttention
// (per-sequence bounds; causal frontiers at the padded positions), and
// unpacks once before each reader that needs the [B, S, ...] layout
// (graph outputs, CLS Gather, mask-weighted pooling). Padded positions of
// unpacked outputs are zeros. docs/fusion.md, "Padding removal", lists
// what is understood.
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
	// flat: [B·S, rest...], a Reshape that merged batch and seq (GPT-2's
	// Conv1D writes one around each Gemm); packed it is the same
	// [T, rest...] as the tokens value it came from.
	flat
	// tokenSeq: a sequence (SplitToSequence along a trailing axis) of
	// tokens values.
	tokenSeq
)

// leadDims is how many leading dims of a value in state s the packing
// replaces with the one token dim.
func leadDims(s packState) int {
	if s == tokens {
		return 2
	}
	return 1
}

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
	kindNoop                           // the packed output is the packed input (a full Slice)
	kindShapeOnly                      // starts a chain read only by Shape nodes: those are rebuilt from the mask
	kindChain                          // starts a Reshape/Transpose chain that gives back its input: removed
	kindTypeOnly                       // reads only the element type (CastLike's target): reads the packed value
)

// fullSlice reports whether entry k of Slice n's constant starts, ends
// and steps takes the whole axis: start 0, step 1, end at least 2³¹-1.
func fullSlice(n *ir.Node, k int) bool {
	at := func(i int, def int64) (int64, bool) {
		if optionalInput(n, i) == nil {
			return def, true
		}
		v, ok := constInt64s(n.Inputs[i])
		if !ok || k >= len(v) {
			return 0, false
		}
		return v[k], true
	}
	start, ok1 := at(1, -1)
	end, ok2 := at(2, 0)
	step, ok3 := at(4, 1)
	return ok1 && ok2 && ok3 && start == 0 && step == 1 && end >= 1<<31-1
}

// constInt64s is v's integer values when v is a constant; false when v
// is absent, computed or not integers.
func constInt64s(v *ir.Value) ([]int64, bool) {
	if v == nil || !v.IsConst() {
		return nil, false
	}
	return v.Const.Int64s()
}

// axisOps are the token-wise ops with an axis attribute (over the dims
// after batch and seq), renumbered for the packed operand.
var axisOps = map[string]bool{"::Split": true, "::SplitToSequence": true, "::Concat": true, "::Softmax": true, "::LogSoftmax": true,
	"tfc::LayerNorm": true, "tfc::RMSNorm": true, "tfc::SkipLayerNorm": true, "tfc::SkipRMSNorm": true}

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
	// sides[n] are the inputs of n that are per-position tensors
	// ([B or 1, S, ...], e.g. position embeddings or rotary cos/sin) not
	// computed from the hidden states: each is packed by its own
	// PackTokens on the same mask.
	sides map[*ir.Node][]int
	// packedAxes are the constant axes inputs of Slice nodes, renumbered.
	packedAxes map[*ir.Node][]int64
	// shapeChains[n] are the nodes from n on whose outputs only Shape
	// nodes read in the end (sdpa exports repeat K/V for GQA only to
	// read the shape); the Shapes are rebuilt from the mask's dims and the
	// chain is removed.
	shapeChains map[*ir.Node][]*ir.Node
	// seqAxis is the seq axis of attention-layout values where it is not
	// 2; packedShape the constant shape input of a packed Expand or
	// Reshape in that layout.
	seqAxis     map[*ir.Value]int
	packedShape map[*ir.Node][]int64
	// chains[n] are the Reshape and Transpose nodes from n on that give
	// back n's input (sdpa exports pass K through [B·H, S, D] and back).
	chains map[*ir.Node][]*ir.Node
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

func qop(n *ir.Node) string { return opKey(n.Domain, n.Op) }

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
	pl := &packPlan{g: g, state: map[*ir.Value]packState{}, kinds: map[*ir.Node]nodeKind{}, exits: map[*ir.Value]bool{},
		sides: map[*ir.Node][]int{}, packedAxes: map[*ir.Node][]int64{}, shapeChains: map[*ir.Node][]*ir.Node{},
		seqAxis: map[*ir.Value]int{}, packedShape: map[*ir.Node][]int64{}, chains: map[*ir.Node][]*ir.Node{}}
	// The mask input: the one non-constant graph input every attention's
	// mask is computed from.
	for _, a := range attns {
		// Causal and sliding kinds pack too: PackedAttention puts their
		// frontier at the tokens' padded positions. The padding itself
		// must come from a mask tensor.
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
	pl.entry = pl.hoistEntry(entry)
	entry = pl.entry
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
				return nil, declined{"output " + v.Name, "a graph output is in a packed layout other than [batch, seq, ...] (the head layout, flattened tokens or a sequence)"}
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
			// A Shape reads dims only, not the data of what it measures,
			// and CastLike only the element type of its second input.
			switch qop(p) {
			case "::Shape", "::Size":
			case "::CastLike":
				stack = append(stack, p.Inputs[0])
			default:
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

// projectionInput finds the hidden states an attention's Q is projected
// from: walking back (input 0 first) through the head split (Transpose,
// Reshape), a fused QKV Split, rotary embedding (Mul, Add, Neg, Slice,
// Concat) and bias Adds to the first MatMul or Gemm with a constant
// weight; a Reshape that flattens batch and seq in front of it is walked
// through too.
func projectionInput(q *ir.Value) (*ir.Value, string) {
	first := ""
	fail := func(format string, args ...any) {
		if first == "" {
			first = fmt.Sprintf(format, args...)
		}
	}
	seen := map[*ir.Value]bool{}
	var walk func(v *ir.Value, depth int) *ir.Value
	walk = func(v *ir.Value, depth int) *ir.Value {
		if v == nil || v.IsConst() || seen[v] {
			return nil
		}
		seen[v] = true
		p, _ := v.Producer()
		if p == nil {
			fail("the query is computed from the graph input %q, not a projection of hidden states", v.Name)
			return nil
		}
		if depth > 12 {
			fail("the query projection is too deep to follow")
			return nil
		}
		switch qop(p) {
		case "::MatMul", "::Gemm":
			if !constantWeight(p.Inputs[1], 0) {
				fail("the query projection %s has no constant weight", p.Describe())
				return nil
			}
			if qop(p) == "::Gemm" && p.AttrInt("transA", 0) != 0 {
				fail("the query projection %s transposes its input", p.Describe())
				return nil
			}
			h := p.Inputs[0]
			if r, _ := h.Producer(); r != nil && qop(r) == "::Reshape" && r.Inputs[0].Type.Rank() >= 3 && h.Type.Rank() == 2 {
				h = r.Inputs[0] // [B, S, K] flattened to [B·S, K]
			}
			return h
		case "::Transpose", "::Reshape", "::Split", "::SplitToSequence", "::SequenceAt", "::Slice", "::Squeeze", "::Unsqueeze", "::Cast", "::Identity", "::Neg",
			"::Add", "::Sub", "::Mul", "::Div", "::Concat":
			if qop(p) == "::Add" && !p.Inputs[0].IsConst() && !p.Inputs[1].IsConst() && !isTokenWiseRotary(p) {
				fail("the query projection %s adds two computed values", p.Describe())
			}
			for _, in := range p.Inputs {
				if h := walk(in, depth+1); h != nil {
					return h
				}
			}
			return nil
		default:
			fail("the query is computed by %s, not a MatMul projection of the hidden states", p.Describe())
			return nil
		}
	}
	if h := walk(q, 0); h != nil {
		return h, ""
	}
	if first == "" {
		first = "the query projection was not found"
	}
	return nil, first
}

// constantWeight reports whether w is a constant or computed from
// constants only by layout ops (dynamo writes Transpose(weight) rather
// than a transposed initializer).
func constantWeight(w *ir.Value, depth int) bool {
	if w == nil || depth > 4 {
		return false
	}
	if w.IsConst() {
		return true
	}
	p, _ := w.Producer()
	if p == nil {
		return false
	}
	switch qop(p) {
	case "::Transpose", "::Cast", "::Identity", "::Reshape":
		for _, in := range p.Inputs {
			if in != nil && !constantWeight(in, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// isTokenWiseRotary reports whether an Add of two computed values is the
// rotary form q·cos + rotate_half(q)·sin: both operands are products.
func isTokenWiseRotary(add *ir.Node) bool {
	for _, in := range add.Inputs[:2] {
		p, _ := in.Producer()
		if p == nil || qop(p) != "::Mul" {
			return false
		}
	}
	return true
}

// hoistEntry moves the entry up through token-wise nodes where the
// residual stream branches (the entry's producer has another output in
// use, as SkipLayerNorm's sum, or its input has other readers, as the
// embeddings read by a pre-norm and the first residual Add), so the
// residual stream is packed too and does not force an unpack. The other
// inputs of such a node must be parameters or per-position tensors.
func (pl *packPlan) hoistEntry(entry *ir.Value) *ir.Value {
	for range 4 {
		p, _ := entry.Producer()
		if p == nil || !tokenWiseUnary[qop(p)] && !tokenWiseBinary[qop(p)] {
			return entry
		}
		x := p.Inputs[0]
		r := entry.Type.Rank()
		if x == nil || x.Type.Rank() != r || !pl.tokenShaped(x.Type, 0, 1) {
			return entry
		}
		if xp, _ := x.Producer(); xp == nil {
			return entry
		}
		branches := len(x.Uses()) > 1
		for _, o := range p.Outputs {
			if o != nil && o != entry && len(o.Uses()) > 0 {
				branches = true
			}
		}
		if !branches {
			return entry
		}
		for _, in := range p.Inputs[1:] {
			if !pl.isParam(in, r-2) && !pl.isSide(in, r) {
				return entry
			}
		}
		entry = x
	}
	return entry
}

// isSide reports whether v is a per-position tensor [B or 1, S, ...] of
// rank r, not computed from the hidden states, that can be packed by its
// own PackTokens.
func (pl *packPlan) isSide(v *ir.Value, r int) bool {
	if v == nil || pl.state[v] != 0 || v.Type.Rank() != r || r < 2 {
		return false
	}
	if !pl.isSeq(v.Type.Shape[1]) || !pl.isBatchOrOne(v.Type.Shape[0]) {
		return false
	}
	if pl.isBatch(v.Type.Shape[0]) {
		// A [B, S, ...] tensor computed from the mask is pooling weights,
		// read unpacked (an exit), not a per-position input.
		return !slices.Contains(graphInputsOf([]*ir.Value{v}), pl.mask)
	}
	return true
}

// isBatch and isSeq report whether d is provably the batch or the seq
// dim: the mask's, or the entry hidden states' (the two may carry
// different symbols, e.g. dynamo's s18 and s43 for the batch; PackTokens
// checks at run time that they agree).
func (pl *packPlan) isBatch(d ir.Dim) bool { return sameAsAny(d, pl.batchDims) }
func (pl *packPlan) isSeq(d ir.Dim) bool   { return sameAsAny(d, pl.seqDims) }

// isBatchOrOne reports whether d is the batch or a known 1 (a tensor
// that broadcasts over the batch).
func (pl *packPlan) isBatchOrOne(d ir.Dim) bool {
	return pl.isBatch(d) || d.IsKnown() && d.Size == 1
}

func sameAsAny(d ir.Dim, set []ir.Dim) bool {
	return slices.ContainsFunc(set, func(o ir.Dim) bool { return d.SameAs(o) })
}

// tokenShaped reports whether t's dims at positions bi and si are the
// batch and seq dims.
func (pl *packPlan) tokenShaped(t ir.Type, bi, si int) bool {
	if t.Rank() <= max(bi, si) {
		return false
	}
	return pl.isBatch(t.Shape[bi]) && pl.isSeq(t.Shape[si])
}

// isParam reports whether v is not packed and has rank at most maxRank,
// so that it broadcasts along the trailing dims of a packed operand only
// (maxRank leaves out the dims the packing replaces).
func (pl *packPlan) isParam(v *ir.Value, maxRank int) bool {
	return v == nil || pl.state[v] == 0 && v.Type.Rank() >= 0 && v.Type.Rank() <= maxRank
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
	if op == "::CastLike" && pl.state[in0] == 0 {
		// Reads only the element type of the packed value.
		pl.kinds[n] = kindTypeOnly
		return declined{}
	}
	if op != "::Shape" {
		if chain := pl.shapeOnlyChain(n); chain != nil {
			pl.shapeChains[n] = chain
			pl.kinds[n] = kindShapeOnly
			return declined{}
		}
	}
	// Readers of the head layout: attention, the merge back, Shape, an
	// identity Reshape or a Reshape/Transpose chain that gives the value
	// back; the rest (rotary, GQA repeat) in classifyHeads.
	for i, in := range n.Inputs {
		if in != nil && pl.state[in] == headsFirst {
			k := pl.seqAxisOf(in)
			switch {
			case op == "tfc::Attention" && i <= 2 && k == 2:
				continue
			case op == "::Reshape" && i == 0 && k == 2 && sameShape(in, n.Outputs[0]):
				// An identity reshape (sdpa exports write one after attention).
				return set(kindSplitHeads, headsFirst)
			case op == "::Shape":
				if !restKnownExcept(in.Type, 0, k) {
					return bad("the shape of %q beyond batch and seq is not known", in.Name)
				}
				return set(kindShape, 0)
			case op == "::Transpose" && isPerm0213(n) && n.Outputs[0].Type.Rank() == 4 && k == 2:
				if !pl.tokenShaped(n.Outputs[0].Type, 0, 1) {
					return bad("the merged heads %v are not [batch, seq, heads, size]", n.Outputs[0].Type)
				}
				return set(kindMergeHeads, tokens)
			}
			if (op == "::Reshape" || op == "::Transpose") && i == 0 {
				if chain := pl.identityChain(n); chain != nil {
					pl.chains[n] = chain
					pl.kinds[n] = kindChain
					end := chain[len(chain)-1].Outputs[0]
					pl.state[end], pl.seqAxis[end] = headsFirst, k
					return declined{}
				}
			}
			return pl.classifyHeads(n)
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
	switch {
	case op == "::SplitToSequence":
		ax, ok := normAxis(n.AttrInt("axis", 0), in0.Type.Rank())
		switch {
		case pl.state[in0] != tokens || !pl.tokenShaped(in0.Type, 0, 1):
			return bad("splits a value that is not packed [batch, seq, ...] tokens")
		case !ok || ax < 2 || n.AttrInt("keepdims", 1) != 1 || len(n.Inputs) < 2 || n.Inputs[1] == nil || pl.state[n.Inputs[1]] != 0:
			return bad("only a split along a trailing axis with given sizes is packed")
		}
		return set(kindSame, tokenSeq)
	case op == "::SequenceAt":
		if pl.state[in0] != tokenSeq || pl.state[n.Inputs[1]] != 0 || !pl.tokenShaped(n.Outputs[0].Type, 0, 1) {
			return bad("reads a packed sequence and is not understood by remove-padding")
		}
		return set(kindSame, tokens)
	}
	for _, in := range n.Inputs {
		if in != nil && pl.state[in] == tokenSeq {
			return bad("reads the packed sequence %q and is not understood by remove-padding", in.Name)
		}
	}
	// From here on at least one input is in the tokens or flat state;
	// every tokens value must provably be [batch, seq, ...], and all packed
	// inputs must be in the same state.
	st := packState(0)
	r := -1
	for _, in := range n.Inputs {
		if in == nil || pl.state[in] == 0 {
			continue
		}
		if pl.state[in] == tokens && !pl.tokenShaped(in.Type, 0, 1) {
			return bad("input %q is %v, not provably [batch, seq, ...]", in.Name, in.Type)
		}
		if st != 0 && (pl.state[in] != st || in.Type.Rank() != r) {
			return bad("combines packed values of different layouts (%q is %v)", in.Name, in.Type)
		}
		st, r = pl.state[in], in.Type.Rank()
	}
	lead := leadDims(st)
	// outSame: every output has the packed inputs' rank (and, as tokens,
	// is [batch, seq, ...]), so the packed op gives [T, ...]. The flat
	// ops accepted keep dim 0 (their parameters have rank <= r-1).
	outSame := func() bool {
		for _, o := range n.Outputs {
			if o == nil {
				continue
			}
			if o.Type.Rank() != r || st == tokens && !pl.tokenShaped(o.Type, 0, 1) {
				return false
			}
		}
		return true
	}
	// param: broadcasts along the dims after the packed lead dims only.
	param := func(v *ir.Value) bool { return pl.isParam(v, r-lead) }
	// side: a per-position tensor, packed by its own PackTokens.
	side := func(i int) bool {
		if st != tokens || !pl.isSide(n.Inputs[i], r) {
			return false
		}
		pl.sides[n] = append(pl.sides[n], i)
		return true
	}
	// axisOK: the node's axis attribute (default def) is past the lead dims.
	axisOK := func(def int64) bool {
		if !axisOps[op] {
			return true
		}
		ax, ok := normAxis(n.AttrInt("axis", def), r)
		return ok && ax >= lead
	}
	switch {
	case op == "::Shape":
		if st != tokens {
			return bad("Shape of a value whose batch and seq are merged")
		}
		if !restKnown(in0.Type) {
			return bad("the shape of %q beyond batch and seq is not known", in0.Name)
		}
		return set(kindShape, 0)
	case tokenWiseUnary[op]:
		if pl.state[in0] == 0 {
			return bad("input 0 is not the packed hidden states")
		}
		if !axisOK(-1) {
			return bad("normalizes over the batch or seq axis (axis %d)", n.AttrInt("axis", -1))
		}
		for i := 1; i < len(n.Inputs); i++ {
			in := n.Inputs[i]
			if (op == "tfc::SkipLayerNorm" || op == "tfc::SkipRMSNorm") && i == 1 && (pl.state[in] != 0 || side(i)) {
				continue
			}
			if !param(in) {
				return bad("operand %d (%q, %v) is neither packed nor a parameter of the last axes", i, in.Name, in.Type)
			}
		}
		if !outSame() {
			return bad("the output is not [batch, seq, ...]")
		}
		return set(kindSame, st)
	case tokenWiseBinary[op]:
		a, b := n.Inputs[0], n.Inputs[1]
		pa, pb := pl.state[a] != 0, pl.state[b] != 0
		switch {
		case pa && pb && outSame():
			return set(kindSame, st)
		case pa && param(b) && outSame(), pb && param(a) && outSame():
			return set(kindSame, st)
		case pa && outSame() && side(1), pb && outSame() && side(0):
			return set(kindSame, st)
		case st == tokens && (pa && pl.tokenShaped(b.Type, 0, 1) || pb && pl.tokenShaped(a.Type, 0, 1)):
			// Mask-weighted pooling and the like: read the unpacked
			// tensor (zeros at padded positions).
			return set(kindExit, 0)
		}
		return bad("combines the packed hidden states with %v, which is neither packed, a parameter of the last axes nor a per-position tensor", map[bool]ir.Type{true: b.Type, false: a.Type}[pa])
	case op == "::Split" || op == "::Concat":
		if !axisOK(0) {
			return bad("splits or concatenates along the batch or seq axis")
		}
		for i, in := range n.Inputs {
			if in != nil && pl.state[in] == 0 && (op == "::Concat" || i == 0) {
				return bad("operand %d (%q) is not packed", i, in.Name)
			}
		}
		if !outSame() {
			return bad("the output is not [batch, seq, ...]")
		}
		return set(kindSame, st)
	case op == "::Slice":
		if pl.state[in0] == 0 || len(n.Inputs) < 4 || n.Inputs[3] == nil || !n.Inputs[3].IsConst() {
			return bad("slices without constant axes")
		}
		for _, in := range n.Inputs[1:] {
			if in != nil && pl.state[in] != 0 {
				return bad("slice bounds computed from the hidden states")
			}
		}
		axes, ok := n.Inputs[3].Const.Int64s()
		if !ok {
			return bad("slice axes are not integers")
		}
		var packedAxes []int64
		for k, ax := range axes {
			if ax < 0 {
				ax += int64(r)
			}
			if ax < int64(lead) {
				// dynamo writes x[:, ...] as a full Slice of the batch.
				if !fullSlice(n, k) {
					return bad("slices the batch or seq axis")
				}
				continue
			}
			if ax >= int64(r) {
				return bad("slice axis %d out of range", ax)
			}
			packedAxes = append(packedAxes, ax-int64(lead)+1)
		}
		if !outSame() {
			return bad("the output is not [batch, seq, ...]")
		}
		if len(packedAxes) == 0 {
			return set(kindNoop, st)
		}
		if len(packedAxes) != len(axes) {
			return bad("slices a trailing axis and, in full, the batch or seq axis")
		}
		pl.packedAxes[n] = packedAxes
		return set(kindSame, st)
	case op == "::MatMul":
		w := n.Inputs[1]
		if pl.state[in0] == 0 || pl.state[w] != 0 || w.Type.Rank() != 2 || r <= lead {
			return bad("only [batch, seq, ..., k] × [k, n] products with a non-token right operand are packed")
		}
		return set(kindSame, st)
	case op == "::Gemm":
		if st != flat || pl.state[in0] != flat || n.AttrInt("transA", 0) != 0 || pl.state[n.Inputs[1]] != 0 ||
			len(n.Inputs) > 2 && n.Inputs[2] != nil && (pl.state[n.Inputs[2]] != 0 || n.Inputs[2].Type.Rank() > 1) {
			return bad("only a Gemm of flattened tokens [B·S, k] (not transposed) by a non-token operand with a bias over the last axis is packed")
		}
		return set(kindSame, flat)
	case op == "::Reshape":
		out := n.Outputs[0]
		if pl.state[in0] == 0 {
			return bad("the new shape is computed from the hidden states")
		}
		inRest, ok := restProduct(in0.Type, lead)
		switch {
		case pl.tokenShaped(out.Type, 0, 1) && restKnown(out.Type):
			if outRest, _ := restProduct(out.Type, 2); ok && outRest != inRest {
				return bad("reshapes more than the dims after batch and seq (output %v)", out.Type)
			}
			return set(kindReshape, tokens)
		case ok && out.Type.Rank() >= 1:
			// [B, S, rest...] (or [B·S, rest...]) to [?, rest'...] with
			// the same trailing element count: dim 0 is B·S.
			if outRest, ok2 := restProduct(out.Type, 1); ok2 && outRest == inRest {
				return set(kindReshape, flat)
			}
		}
		return bad("reshapes more than the dims after batch and seq (output %v)", out.Type)
	case op == "::Transpose" && isPerm0213(n) && st == tokens && in0.Type.Rank() == 4:
		if !pl.tokenShaped(n.Outputs[0].Type, 0, 2) {
			return bad("the head split %v is not [batch, heads, seq, size]", n.Outputs[0].Type)
		}
		if n.Outputs[0].IsOutput() {
			return bad("the head split is a graph output")
		}
		return set(kindSplitHeads, headsFirst)
	case op == "::Gather" && st == tokens && n.AttrInt("axis", 0) == 1 && n.Inputs[1].IsConst():
		// CLS pooling reads the unpacked tensor.
		return set(kindExit, 0)
	}
	return bad("reads the token-wise value %q and is not understood by remove-padding", in0.Name)
}

// classifyHeads classifies an op on values in the attention layout
// [B, H, S, D] (packed [T, H, D]) other than attention and the head
// merge: the rotary embedding q·cos + rotate_half(q)·sin, with cos and sin
// per-position tensors [B or 1, 1, S, D], and the GQA repeat of K and V
// (Unsqueeze to [B, Hkv, 1, S, D], Expand, Reshape to [B, H, S, D]).
// Values in this state have the batch at 0 and the seq at pl.seqAxisOf;
// packed, both become the one token dim and the others keep their order.
func (pl *packPlan) classifyHeads(n *ir.Node) declined {
	bad := func(format string, args ...any) declined {
		return declined{n.Describe(), fmt.Sprintf(format, args...)}
	}
	op := qop(n)
	in0 := n.Inputs[0]
	r, k := -1, -1
	for _, in := range n.Inputs {
		if in == nil || pl.state[in] == 0 {
			continue
		}
		if pl.state[in] != headsFirst || r >= 0 && (in.Type.Rank() != r || pl.seqAxisOf(in) != k) {
			return bad("combines the attention-layout value with the packed value %q of another layout", in.Name)
		}
		r, k = in.Type.Rank(), pl.seqAxisOf(in)
	}
	// packedAxis maps axis a of a value with the seq at ks to the packed
	// value's; false for the batch and seq axes.
	packedAxis := func(a int64, rank, ks int) (int64, bool) {
		if a < 0 {
			a += int64(rank)
		}
		switch {
		case a <= 0 || a == int64(ks) || a >= int64(rank):
			return 0, false
		case a < int64(ks):
			return a, true
		}
		return a - 1, true
	}
	outOK := func(rank, ks int) bool {
		for _, o := range n.Outputs {
			if o != nil && (o.Type.Rank() != rank || !pl.tokenShaped(o.Type, 0, ks)) {
				return false
			}
		}
		return true
	}
	set := func(ks int) declined {
		pl.kinds[n] = kindSame
		for _, o := range n.Outputs {
			if o != nil {
				pl.state[o] = headsFirst
				pl.seqAxis[o] = ks
			}
		}
		return declined{}
	}
	switch {
	case op == "::Neg" || op == "::Cast" || op == "::Identity":
		if !outOK(r, k) {
			return bad("the output is not [batch, heads, seq, size]")
		}
		return set(k)
	case tokenWiseBinary[op]:
		for i, in := range n.Inputs[:2] {
			switch {
			case pl.state[in] == headsFirst, pl.isParam(in, r-1-k):
			case r == 4 && k == 2 && pl.isHeadSide(in):
				pl.sides[n] = append(pl.sides[n], i)
			default:
				return bad("combines the attention-layout value with %q %v, which is neither packed, a parameter of the last axis nor a per-position [batch or 1, 1, seq, size] tensor", in.Name, in.Type)
			}
		}
		if !outOK(r, k) {
			return bad("the output is not [batch, heads, seq, size]")
		}
		return set(k)
	case op == "::Concat":
		for _, in := range n.Inputs {
			if pl.state[in] != headsFirst {
				return bad("concatenates the attention-layout value with %q, which is not packed", in.Name)
			}
		}
		if _, ok := packedAxis(n.AttrInt("axis", 0), r, k); !ok {
			return bad("concatenates along the batch or seq axis")
		}
		if !outOK(r, k) {
			return bad("the output is not [batch, heads, seq, size]")
		}
		return set(k)
	case op == "::Slice":
		axes, ok := constInt64s(optionalInput(n, 3))
		if !ok || pl.state[in0] != headsFirst {
			return bad("slices without constant axes")
		}
		for _, in := range n.Inputs[1:] {
			if in != nil && pl.state[in] != 0 {
				return bad("slice bounds computed from the hidden states")
			}
		}
		var packed []int64
		for i, ax := range axes {
			pa, ok := packedAxis(ax, r, k)
			if !ok {
				if fullSlice(n, i) {
					continue // dynamo writes x[:, ...] as a full Slice
				}
				return bad("slices the batch or seq axis of the attention layout")
			}
			packed = append(packed, pa)
		}
		if !outOK(r, k) {
			return bad("the output is not [batch, heads, seq, size]")
		}
		if len(packed) == 0 {
			pl.kinds[n] = kindNoop
			pl.state[n.Outputs[0]], pl.seqAxis[n.Outputs[0]] = headsFirst, k
			return declined{}
		}
		if len(packed) != len(axes) {
			return bad("slices a head or size axis and, in full, the batch or seq axis")
		}
		pl.packedAxes[n] = packed
		return set(k)
	case op == "::Unsqueeze":
		axes, ok := constInt64s(optionalInput(n, 1))
		if !ok {
			return bad("unsqueezes along axes that are not constant inputs")
		}
		ro := r + len(axes)
		inserted := map[int64]bool{}
		for _, a := range axes {
			if a < 0 {
				a += int64(ro)
			}
			inserted[a] = true
		}
		if inserted[0] || len(inserted) != len(axes) {
			return bad("unsqueezes in front of the batch axis")
		}
		// The output position of the seq axis.
		ko, seen := -1, 0
		for a := 0; a < ro; a++ {
			if !inserted[int64(a)] {
				if seen == k {
					ko = a
				}
				seen++
			}
		}
		var packed []int64
		for a := range inserted {
			pa, _ := packedAxis(a, ro, ko)
			packed = append(packed, pa)
		}
		slices.Sort(packed)
		if !outOK(ro, ko) {
			return bad("the output is not [batch, ..., seq, ...]")
		}
		pl.packedAxes[n] = packed
		return set(ko)
	case op == "::Expand":
		o := n.Outputs[0]
		if pl.state[n.Inputs[1]] != 0 || !outOK(r, k) {
			return bad("expands the batch or seq axis")
		}
		shape := []int64{1}
		for i, d := range o.Type.Shape {
			if i == 0 || i == k {
				continue
			}
			if !d.IsKnown() {
				return bad("expands to %v, whose head and size dims are not known", o.Type)
			}
			shape = append(shape, d.Size)
		}
		pl.packedShape[n] = shape
		return set(k)
	case op == "::Reshape":
		// A reshape within the dims before the seq and within the dims
		// after it (the GQA repeat merges [Hkv, n] into H).
		o := n.Outputs[0]
		ko := -1
		for i, d := range o.Type.Shape {
			if i > 0 && pl.isSeq(d) {
				if ko >= 0 {
					return bad("the reshaped %v has two seq axes", o.Type)
				}
				ko = i
			}
		}
		if ko < 0 || !outOK(o.Type.Rank(), ko) || pl.state[n.Inputs[1]] != 0 {
			return bad("reshapes the batch or seq axis of the attention layout (output %v)", o.Type)
		}
		inMid, ok1 := dimsProduct(in0.Type.Shape[1:k])
		inEnd, ok2 := dimsProduct(in0.Type.Shape[k+1:])
		outMid, ok3 := dimsProduct(o.Type.Shape[1:ko])
		outEnd, ok4 := dimsProduct(o.Type.Shape[ko+1:])
		if !ok1 || !ok2 || !ok3 || !ok4 || inMid != outMid || inEnd != outEnd {
			return bad("reshapes across the seq axis of the attention layout (%v to %v)", in0.Type, o.Type)
		}
		shape := []int64{-1}
		for i, d := range o.Type.Shape {
			if i != 0 && i != ko {
				shape = append(shape, d.Size)
			}
		}
		pl.packedShape[n] = shape
		return set(ko)
	}
	return bad("reads the attention-layout value %q and is not understood by remove-padding", in0.Name)
}

// identityChain returns the Reshape and Transpose nodes from n on, each
// output read only by the next, whose composition gives back n's input
// (same dims, same element order); nil when there is none. It follows
// which original axes each dim holds: a Transpose permutes the dims, a
// Reshape regroups whole original axes (a new dim provably equal to one
// axis, a known size equal to the product of known axes, or, for the one
// dim that matches neither, what the provable dims after it leave).
func (pl *packPlan) identityChain(n *ir.Node) []*ir.Node {
	start := n.Inputs[0]
	if start.Type.Rank() < 0 {
		return nil
	}
	atoms := start.Type.Shape
	groups := make([][]int, len(atoms))
	for i := range groups {
		groups[i] = []int{i}
	}
	var chain []*ir.Node
	for m := n; len(chain) < 8; {
		chain = append(chain, m)
		out := m.Outputs[0]
		if out == nil || out.IsOutput() || out.Type.Rank() < 0 {
			return nil
		}
		switch qop(m) {
		case "::Mul", "::Div", "::Add", "::Sub":
			// By a scalar (chainLink checked it; sdpa-op17 exports scale
			// K by √scale inside the round trip): commutes with the
			// layout changes and is re-created on the packed value.
			if len(chain) == 1 {
				return nil
			}
		case "::Transpose":
			perm, ok := m.AttrInts("perm")
			if !ok || len(perm) != len(groups) {
				return nil
			}
			next := make([][]int, len(perm))
			for i, p := range perm {
				if p < 0 || int(p) >= len(groups) {
					return nil
				}
				next[i] = groups[p]
			}
			groups = next
		case "::Reshape":
			groups = regroup(groups, atoms, reshapeDims(m, groupDims(groups, atoms)))
			if groups == nil {
				return nil
			}
		default:
			return nil
		}
		identity := len(groups) == len(atoms)
		for i, g := range groups {
			identity = identity && len(g) == 1 && g[0] == i
		}
		if identity && len(chain) > 1 {
			return chain
		}
		uses := out.Uses()
		if len(uses) != 1 || !chainLink(uses[0]) {
			return nil
		}
		m = uses[0].Node
	}
	return nil
}

// chainLink says the use continues a layout chain: input 0 of a Reshape
// or Transpose, or the non-scalar operand of a scalar Mul/Div/Add/Sub.
func chainLink(u ir.Use) bool {
	switch qop(u.Node) {
	case "::Reshape", "::Transpose":
		return u.Index == 0
	case "::Mul", "::Add":
		return u.Index <= 1 && isScalarOperand(u.Node, u.Index == 1)
	case "::Div", "::Sub":
		return u.Index == 0 && isScalarOperand(u.Node, false)
	}
	return false
}

// isScalarOperand reports whether the operand of binary node m that is
// not the chain value (input 1, or input 0 when swapped) is a single
// value (rank 0, or rank 1 of size 1), and the output has the chain
// value's rank.
func isScalarOperand(m *ir.Node, swapped bool) bool {
	if len(m.Inputs) != 2 {
		return false
	}
	x, c := m.Inputs[0], m.Inputs[1]
	if swapped {
		x, c = c, x
	}
	// Rank at most 1, so it broadcasts the same way over the packed value.
	if c == nil || c.Type.Rank() < 0 || c.Type.Rank() > 1 || m.Outputs[0].Type.Rank() != x.Type.Rank() {
		return false
	}
	for _, d := range c.Type.Shape {
		if !d.IsKnown() || d.Size != 1 {
			return false
		}
	}
	return true
}

// groupDims is the dims of the current value: the product of each
// group's original axes (unknown when a group of several holds a
// symbol).
func groupDims(groups [][]int, atoms []ir.Dim) []ir.Dim {
	out := make([]ir.Dim, len(groups))
	for i, g := range groups {
		if len(g) == 1 {
			out[i] = atoms[g[0]]
			continue
		}
		p := int64(1)
		for _, a := range g {
			if !atoms[a].IsKnown() {
				p = -1
				break
			}
			p *= atoms[a].Size
		}
		out[i] = ir.UnknownDim()
		if p >= 0 {
			out[i] = ir.Known(p)
		}
	}
	return out
}

// reshapeDims is what Reshape m's output dims provably are: its inferred
// type, sharpened where the shape input can be read as constants and
// slices of Shape() of values with known dims (exporters write
// Concat(-1, Shape(x)[-2:-1], ...); shape inference may leave those
// dims unknown). cur is the input's dims; a 0 copies the input's dim
// (without allowzero) and -1 stays unknown.
func reshapeDims(m *ir.Node, cur []ir.Dim) []ir.Dim {
	out := slices.Clone(m.Outputs[0].Type.Shape)
	elems, ok := shapeVector(m.Inputs[1], 0)
	if !ok || len(elems) != len(out) {
		return out
	}
	allowZero := m.AttrInt("allowzero", 0) != 0
	for i, e := range elems {
		switch {
		case e.IsSym():
			out[i] = e // a dim read from a Shape: provably that dim
		case !e.IsKnown():
			if !out[i].IsKnown() && !out[i].IsSym() {
				out[i] = e // else keep what inference proved
			}
		case e.Size == 0 && !allowZero:
			if i < len(cur) {
				out[i] = cur[i]
			}
		case e.Size > 0:
			out[i] = e
		}
	}
	return out
}

// shapeVector evaluates a 1-D int64 shape value as dims: constants are
// known sizes (-1 included), Shape(x) gives x's dims; Concat on axis 0,
// Slice with constant bounds, Gather of one constant index and
// Unsqueeze of a scalar are followed. ok is false for anything else.
func shapeVector(v *ir.Value, depth int) ([]ir.Dim, bool) {
	if v == nil || depth > 8 {
		return nil, false
	}
	if v.IsConst() {
		vals, ok := v.Const.Int64s()
		if !ok {
			return nil, false
		}
		out := make([]ir.Dim, len(vals))
		for i, x := range vals {
			out[i] = ir.Dim{Size: x}
		}
		return out, true
	}
	p, _ := v.Producer()
	if p == nil {
		return nil, false
	}
	constInts := func(i int) ([]int64, bool) { return constInt64s(optionalInput(p, i)) }
	switch qop(p) {
	case "::Shape":
		t := p.Inputs[0].Type
		if t.Rank() < 0 {
			return nil, false
		}
		r := int64(t.Rank())
		start, end := clampAxis(p.AttrInt("start", 0), r), clampAxis(p.AttrInt("end", r), r)
		if start >= end {
			return nil, true
		}
		return slices.Clone(t.Shape[start:end]), true
	case "::Concat":
		var out []ir.Dim
		for _, in := range p.Inputs {
			part, ok := shapeVector(in, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, part...)
		}
		return out, true
	case "::Slice":
		vec, ok := shapeVector(p.Inputs[0], depth+1)
		starts, ok1 := constInts(1)
		ends, ok2 := constInts(2)
		if !ok || !ok1 || !ok2 || len(starts) != 1 || len(ends) != 1 {
			return nil, false
		}
		if axes, ok := constInts(3); len(p.Inputs) > 3 && p.Inputs[3] != nil && (!ok || len(axes) != 1 || axes[0] != 0 && axes[0] != -1) {
			return nil, false
		}
		if steps, ok := constInts(4); len(p.Inputs) > 4 && p.Inputs[4] != nil && (!ok || len(steps) != 1 || steps[0] != 1) {
			return nil, false
		}
		n := int64(len(vec))
		s, e := clampAxis(starts[0], n), clampAxis(ends[0], n)
		if s >= e {
			return nil, true
		}
		return vec[s:e], true
	case "::Gather":
		vec, ok := shapeVector(p.Inputs[0], depth+1)
		idx, ok1 := constInts(1)
		if !ok || !ok1 || len(idx) != 1 || p.Inputs[1].Type.Rank() != 0 {
			return nil, false
		}
		i := idx[0]
		if i < 0 {
			i += int64(len(vec))
		}
		if i < 0 || i >= int64(len(vec)) {
			return nil, false
		}
		return []ir.Dim{vec[i]}, true
	case "::Unsqueeze":
		if p.Inputs[0].Type.Rank() != 0 {
			return nil, false
		}
		return shapeVector(p.Inputs[0], depth+1)
	}
	return nil, false
}

// regroup maps the dims of a Reshape's output onto the original axes
// (atoms) that the current dims (groups, in order) hold; nil when a new
// dim is not provably a run of whole atoms.
func regroup(groups [][]int, atoms []ir.Dim, out []ir.Dim) [][]int {
	var flat []int
	for _, g := range groups {
		flat = append(flat, g...)
	}
	next := make([][]int, len(out))
	at := 0
	for i, d := range out {
		if at >= len(flat) {
			return nil
		}
		switch {
		case d.SameAs(atoms[flat[at]]) && !d.IsKnown() || d.IsKnown() && atoms[flat[at]].IsKnown() && d.Size == atoms[flat[at]].Size:
			next[i] = []int{flat[at]}
			at++
		case d.IsKnown():
			p, j := int64(1), at
			for j < len(flat) && p < d.Size && atoms[flat[j]].IsKnown() {
				p *= atoms[flat[j]].Size
				j++
			}
			if p != d.Size {
				return nil
			}
			next[i], at = slices.Clone(flat[at:j]), j
		default:
			// The rest must match one atom each, provably; this dim takes
			// what is left before them.
			take := len(flat) - at - (len(out) - i - 1)
			if take < 1 {
				return nil
			}
			next[i], at = slices.Clone(flat[at:at+take]), at+take
		}
	}
	if at != len(flat) {
		return nil
	}
	// Dims after a "what is left" one were matched one-to-one above only
	// when provable; check every single-atom dim is.
	for i, g := range next {
		if len(g) == 1 && !out[i].SameAs(atoms[g[0]]) && !(out[i].IsKnown() && atoms[g[0]].IsKnown() && out[i].Size == atoms[g[0]].Size) {
			return nil
		}
	}
	return next
}

// seqAxisOf is where the seq axis of a value in the attention layout is:
// 2 ([B, H, S, D]) unless a GQA repeat moved it.
func (pl *packPlan) seqAxisOf(v *ir.Value) int {
	if k, ok := pl.seqAxis[v]; ok {
		return k
	}
	return 2
}

// shapeOnlyChain returns n and the nodes after it when everything they
// compute is, in the end, read only by Shape nodes whose input dims are
// each the batch, the seq or a known size; nil otherwise.
func (pl *packPlan) shapeOnlyChain(n *ir.Node) []*ir.Node {
	seen := map[*ir.Node]bool{}
	var chain []*ir.Node
	var visit func(m *ir.Node) bool
	visit = func(m *ir.Node) bool {
		if seen[m] {
			return true
		}
		seen[m] = true
		chain = append(chain, m)
		if len(chain) > 16 || m.Graph() != pl.g {
			return false
		}
		if qop(m) == "::Shape" {
			return pl.dimsFromMask(m.Inputs[0].Type) != nil
		}
		used := false
		for _, o := range m.Outputs {
			if o == nil {
				continue
			}
			if o.IsOutput() {
				return false
			}
			for _, u := range o.Uses() {
				used = true
				if !visit(u.Node) {
					return false
				}
			}
		}
		return used
	}
	if !visit(n) {
		return nil
	}
	return chain
}

// dimsFromMask says where each dim of t comes from: -1 the batch, -2 the
// seq (both read from the mask's shape), else a known size; nil when a
// dim is neither.
func (pl *packPlan) dimsFromMask(t ir.Type) []int64 {
	if t.Rank() < 0 {
		return nil
	}
	out := make([]int64, 0, t.Rank())
	for _, d := range t.Shape {
		switch {
		case d.IsKnown():
			out = append(out, d.Size)
		case pl.isBatch(d):
			out = append(out, -1)
		case pl.isSeq(d):
			out = append(out, -2)
		default:
			return nil
		}
	}
	return out
}

// isHeadSide reports whether v is a per-position tensor in the attention
// layout, [B or 1, 1, S, D], not computed from the hidden states (rotary
// cos and sin): it is packed to [T, 1, D].
func (pl *packPlan) isHeadSide(v *ir.Value) bool {
	if v == nil || pl.state[v] != 0 || v.Type.Rank() != 4 {
		return false
	}
	h := v.Type.Shape[1]
	if !h.IsKnown() || h.Size != 1 {
		return false
	}
	return pl.isSeq(v.Type.Shape[2]) && pl.isBatchOrOne(v.Type.Shape[0])
}

// restProduct is the product of t's dims from lead on, when all are known.
func restProduct(t ir.Type, lead int) (int64, bool) {
	if t.Rank() < lead {
		return 0, false
	}
	return dimsProduct(t.Shape[lead:])
}

// dimsProduct is the product of dims, when all are known.
func dimsProduct(dims []ir.Dim) (int64, bool) {
	p := int64(1)
	for _, d := range dims {
		if !d.IsKnown() {
			return 0, false
		}
		p *= d.Size
	}
	return p, true
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
	// packSide packs a per-position tensor [B or 1, S, ...] on the same
	// mask, expanded over the batch first when it broadcasts over it.
	sidePacked := map[*ir.Value]*ir.Value{}
	packSide := func(v *ir.Value, before *ir.Node) *ir.Value {
		if p, ok := sidePacked[v]; ok {
			return p
		}
		x := v
		if pl.state[before.Outputs[0]] == headsFirst {
			// [B or 1, 1, S, D] to [B or 1, S, 1, D]: packs to [T, 1, D].
			tr := g.NewNode(ir.NodeSpec{Name: name("remove_padding/Transpose"), Op: "Transpose", Inputs: []*ir.Value{v},
				Attrs: []*ir.Attr{ir.IntsAttr("perm", 0, 2, 1, 3)}, Outputs: []string{name(v.Name + "/tokens_first")}})
			g.InsertBefore(tr, before)
			x = tr.Outputs[0]
		}
		if !pl.isBatch(v.Type.Shape[0]) {
			batch := g.NewNode(ir.NodeSpec{Name: name("remove_padding/batch_of_mask"), Op: "Shape", Inputs: []*ir.Value{pl.mask},
				Attrs: []*ir.Attr{ir.IntAttr("start", 0), ir.IntAttr("end", 1)}, Outputs: []string{name(v.Name + "/batch")}})
			ones := slices.Repeat([]int64{1}, v.Type.Rank()-1)
			shape := g.NewNode(ir.NodeSpec{Name: name("remove_padding/expand_shape"), Op: "Concat", Attrs: []*ir.Attr{ir.IntAttr("axis", 0)},
				Inputs:  []*ir.Value{batch.Outputs[0], g.AddConstant(name(v.Name+"/ones"), ir.Int64Tensor([]int64{int64(len(ones))}, ones...))},
				Outputs: []string{name(v.Name + "/expand_shape")}})
			expand := g.NewNode(ir.NodeSpec{Name: name("remove_padding/Expand"), Op: "Expand", Inputs: []*ir.Value{x, shape.Outputs[0]},
				Outputs: []string{name(v.Name + "/expanded")}})
			for _, nn := range []*ir.Node{batch, shape, expand} {
				g.InsertBefore(nn, before)
			}
			x = expand.Outputs[0]
		}
		pk := g.NewNode(ir.NodeSpec{Name: name("remove_padding/PackTokens"), Domain: "tfc", Op: "PackTokens",
			Inputs: []*ir.Value{x, pl.mask}, Outputs: []string{name(v.Name + "/packed"), name(v.Name + "/offsets"), name(v.Name + "/index")}})
		g.InsertBefore(pk, before)
		sidePacked[v] = pk.Outputs[0]
		return pk.Outputs[0]
	}
	var old []*ir.Node
	chained := map[*ir.Node]bool{}
	for _, n := range pl.order {
		switch pl.kinds[n] {
		case kindSplitHeads, kindMergeHeads, kindNoop:
			newv[n.Outputs[0]] = newv[n.Inputs[0]]
		case kindSame, kindAttention, kindReshape:
			spec := ir.NodeSpec{Name: n.Name + "/packed", Domain: n.Domain, Op: n.Op, Attrs: slices.Clone(n.Attrs)}
			for _, in := range n.Inputs {
				spec.Inputs = append(spec.Inputs, mapIn(in))
			}
			for _, i := range pl.sides[n] {
				spec.Inputs[i] = packSide(n.Inputs[i], n)
			}
			if axisOps[qop(n)] {
				pl.renumberAxis(&spec, n)
			}
			if axes, ok := pl.packedAxes[n]; ok {
				at := 3 // Slice
				if qop(n) == "::Unsqueeze" {
					at = 1
				}
				spec.Inputs[at] = g.AddConstant(name(n.Name+"/packed_axes"), ir.Int64Tensor([]int64{int64(len(axes))}, axes...))
			}
			if shape, ok := pl.packedShape[n]; ok {
				spec.Inputs[1] = g.AddConstant(name(n.Name+"/packed_shape"), ir.Int64Tensor([]int64{int64(len(shape))}, shape...))
				spec.Attrs = nil
			}
			switch pl.kinds[n] {
			case kindAttention:
				spec.Op, spec.Domain = "PackedAttention", "tfc"
				bias, keep := optionalInput(n, 3), optionalInput(n, 4)
				spec.Inputs = []*ir.Value{spec.Inputs[0], spec.Inputs[1], spec.Inputs[2], offsets, index, pl.mask, bias, keep}
				if keep == nil {
					spec.Inputs = spec.Inputs[:7]
					if bias == nil {
						spec.Inputs = spec.Inputs[:6]
					}
				}
			case kindReshape:
				dims := []int64{-1}
				for _, d := range n.Outputs[0].Type.Shape[leadDims(pl.state[n.Outputs[0]]):] {
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
		case kindTypeOnly:
			n.SetInput(1, newv[n.Inputs[1]])
			continue
		case kindChain:
			// The layout changes vanish; scalar arithmetic on the way is
			// re-created on the packed value.
			chain := pl.chains[n]
			v, prev := newv[n.Inputs[0]], n.Inputs[0]
			for _, m := range chain {
				switch qop(m) {
				case "::Mul", "::Div", "::Add", "::Sub":
					ins := slices.Clone(m.Inputs)
					ins[slices.Index(ins, prev)] = v
					nn := g.NewNode(ir.NodeSpec{Name: m.Name + "/packed", Domain: m.Domain, Op: m.Op, Inputs: ins,
						Outputs: []string{name(m.Outputs[0].Name + "/packed")}})
					g.InsertBefore(nn, m)
					v = nn.Outputs[0]
				}
				prev = m.Outputs[0]
			}
			newv[prev] = v
			old = append(old, chain...)
			continue
		case kindShapeOnly:
			for _, m := range pl.shapeChains[n] {
				if qop(m) == "::Shape" && !chained[m] {
					pl.rewriteShape(m)
				}
				if !chained[m] {
					chained[m] = true
					old = append(old, m)
				}
			}
			continue
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

// renumberAxis rewrites a non-negative axis attribute of n for the
// packed operand, which has leadDims-1 fewer leading dims.
func (pl *packPlan) renumberAxis(spec *ir.NodeSpec, n *ir.Node) {
	var st packState
	k := 2
	for _, in := range n.Inputs {
		if in != nil && pl.state[in] != 0 {
			st, k = pl.state[in], pl.seqAxisOf(in)
			break
		}
	}
	for i, a := range spec.Attrs {
		if a.Name != "axis" || a.Type != ir.AttrInt || a.I < 0 {
			continue
		}
		ax := a.I - int64(leadDims(st)) + 1
		if st == headsFirst {
			// [B, H, S, D] packs to [T, H, D]: axes before the seq keep
			// their number, those after it lose one.
			ax = a.I
			if a.I > int64(k) {
				ax = a.I - 1
			}
		}
		spec.Attrs[i] = ir.IntAttr("axis", ax)
	}
}

// rewriteShape replaces Shape(x), x packed, with the padded shape: batch
// and seq from the mask's shape, the other dims constant. x is [B, S, ...]
// or, in the attention layout, [B, H, S, D].
func (pl *packPlan) rewriteShape(n *ir.Node) {
	g := pl.g
	x := n.Inputs[0]
	bi, si := 0, 1
	if pl.state[x] == headsFirst {
		si = pl.seqAxisOf(x)
	}
	var origin []int64 // where each dim comes from, for a Shape at the end of a shape-only chain
	if pl.state[x] == 0 {
		origin = pl.dimsFromMask(x.Type)
		bi, si = -1, -1
	}
	r := int64(x.Type.Rank())
	start, end := clampAxis(n.AttrInt("start", 0), r), clampAxis(n.AttrInt("end", r), r)
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
		switch {
		case int(i) == bi, origin != nil && origin[i] == -1:
			from = 0
		case int(i) == si, origin != nil && origin[i] == -2:
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
