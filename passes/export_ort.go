package passes

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// export-ort lowers every tfc op to ops that ONNX Runtime (1.31, CPU)
// runs, so that `tfc compile --target ort` writes a model ONNX Runtime
// loads (docs/fusion.md, "Export to ONNX Runtime"). It is in no -O
// pipeline: the CLI runs it last, after the fusions. The lowering keeps
// each tfc op's reference semantics (backend/cpu/table_tfc_*.go):
//
//   - LayerNorm → LayerNormalization (ai.onnx 17; below 17 ONNX Runtime
//     registers the same op in the ai.onnx domain as a contrib op).
//   - RMSNorm → RMSNormalization (ai.onnx ≥ 23), else
//     SimplifiedLayerNormalization (ONNX Runtime registers it in the
//     ai.onnx domain, not com.microsoft).
//   - SkipLayerNorm, SkipRMSNorm → com.microsoft SkipLayerNormalization,
//     SkipSimplifiedLayerNormalization (output 3 is the sum), or an Add
//     and the plain norm when the shapes do not fit those ops.
//   - Gelu → Gelu (ai.onnx ≥ 20), else com.microsoft Gelu (erf) or
//     FastGelu (tanh); BiasGelu → com.microsoft BiasGelu (erf) or FastGelu
//     with its bias input (tanh).
//   - PackTokens, UnpackTokens (remove-padding, -O3) → NonZero/Gather and
//     ScatterND; PackedAttention → its inputs unpacked to [B, H, S, D],
//     the Attention lowering below with padded keys masked by -inf, and
//     the kept rows gathered back (ONNX Runtime's PackedAttention is
//     CUDA-only).
//   - Attention → ONNX Attention (ai.onnx ≥ 23), else com.microsoft
//     MultiHeadAttention (K/V heads repeated first for GQA) when the head
//     count and sizes allow, else standard ops (MatMul, Softmax, MatMul,
//     masks from Range/Less/Where).
//
// It never raises the model's ai.onnx opset and imports com.microsoft
// version 1 when it uses that domain.

func init() {
	register(&Pass{
		Name:      "export-ort",
		Summary:   "lower tfc ops to ops ONNX Runtime runs (opset-23 Attention/RMSNormalization where the opset allows, else com.microsoft contrib ops, else standard ops); run last for --target ort",
		Semantics: WithinRounding,
		Options: []Option{
			{Name: "attention", Kind: StringOption, Default: "auto", Help: "auto: ONNX Attention (opset ≥ 23), else com.microsoft MultiHeadAttention where the head count is known and K and V heads have one size, else standard ops; decompose: always standard ops; mha: MultiHeadAttention where it fits, else standard ops"},
		},
		Run: runExportOrt,
	})
}

// msDomain is ONNX Runtime's contrib-op domain and the version imported.
const (
	msDomain        = "com.microsoft"
	msDomainVersion = 1
)

// Rewrite rule names counted by export-ort, one per target op.
const (
	ruleOrtLayerNorm     = "LayerNorm->LayerNormalization"
	ruleOrtRMSNorm23     = "RMSNorm->RMSNormalization"
	ruleOrtRMSNormSimpl  = "RMSNorm->SimplifiedLayerNormalization"
	ruleOrtSkipLN        = "SkipLayerNorm->com.microsoft.SkipLayerNormalization"
	ruleOrtSkipLNAdd     = "SkipLayerNorm->Add+LayerNormalization"
	ruleOrtSkipRMS       = "SkipRMSNorm->com.microsoft.SkipSimplifiedLayerNormalization"
	ruleOrtSkipRMSAdd    = "SkipRMSNorm->Add+RMSNorm"
	ruleOrtGelu20        = "Gelu->Gelu"
	ruleOrtGeluMS        = "Gelu->com.microsoft.Gelu"
	ruleOrtFastGelu      = "Gelu->com.microsoft.FastGelu"
	ruleOrtBiasGelu      = "BiasGelu->com.microsoft.BiasGelu"
	ruleOrtBiasFastGelu  = "BiasGelu->com.microsoft.FastGelu"
	ruleOrtBiasGeluAdd   = "BiasGelu->Add+Gelu"
	ruleOrtAttention23   = "Attention->Attention"
	ruleOrtAttentionMHA  = "Attention->com.microsoft.MultiHeadAttention"
	ruleOrtAttentionDeco = "Attention->MatMul+Softmax+MatMul"
	ruleOrtPackTokens    = "PackTokens->NonZero+Gather"
	ruleOrtUnpackTokens  = "UnpackTokens->ScatterND"
	ruleOrtPackedAttn    = "PackedAttention->unpack+Attention+Gather"
)

// ortExporter holds the state of one run of export-ort.
type ortExporter struct {
	opset     int64  // the model's ai.onnx opset
	attention string // the attention option
	names     *namer
	st        *Stats
	usesMS    bool
}

func runExportOrt(_ *Context, m *ir.Model, opts Values) (Stats, error) {
	var st Stats
	mode := opts.String("attention")
	switch mode {
	case "auto", "decompose", "mha":
	default:
		return st, fmt.Errorf("export-ort: option attention=%q is not one of auto, decompose, mha", mode)
	}
	if m.Graph == nil {
		return st, fmt.Errorf("export-ort: model has no graph")
	}
	ex := &ortExporter{opset: m.OpsetVersion(""), attention: mode, names: newNamer(m.Graph), st: &st}
	if err := ex.graph(m.Graph); err != nil {
		return st, err
	}
	st.Count("unique-node-names", ex.uniqueNodeNames(m.Graph))
	// Keep the tfc import only if something of that domain is left
	// (there is not: graph fails on any tfc op it cannot lower).
	var opsets []ir.OpsetID
	for _, o := range m.Opsets {
		if o.Domain == "tfc" {
			continue
		}
		opsets = append(opsets, o)
	}
	if ex.usesMS && m.OpsetVersion(msDomain) == 0 {
		opsets = append(opsets, ir.OpsetID{Domain: msDomain, Version: msDomainVersion})
	}
	m.Opsets = opsets
	return st, nil
}

// graph lowers the tfc nodes of g and of its nested graphs.
func (ex *ortExporter) graph(g *ir.Graph) error {
	for _, n := range append([]*ir.Node(nil), g.Nodes...) {
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				if err := ex.graph(sg); err != nil {
					return err
				}
			}
		}
		if n.Domain != "tfc" {
			continue
		}
		if err := ex.node(g, n); err != nil {
			return fmt.Errorf("export-ort: %s: %w", n.Describe(), err)
		}
	}
	return nil
}

// node replaces one tfc node by its lowering.
func (ex *ortExporter) node(g *ir.Graph, n *ir.Node) error {
	e := &emitter{g: g, anchor: n, names: ex.names}
	var outs []*ir.Value
	var rule string
	var err error
	switch n.Op {
	case "LayerNorm":
		outs, rule, err = ex.layerNorm(e, n)
	case "RMSNorm":
		outs, rule, err = ex.rmsNorm(e, n)
	case "SkipLayerNorm", "SkipRMSNorm":
		outs, rule, err = ex.skipNorm(e, n)
	case "Gelu", "BiasGelu":
		outs, rule, err = ex.gelu(e, n)
	case "Attention":
		outs, rule, err = ex.attentionNode(e, n)
	case "PackTokens":
		outs, rule, err = ex.packTokens(e, n)
	case "UnpackTokens":
		outs, rule, err = ex.unpackTokens(e, n)
	case "PackedAttention":
		outs, rule, err = ex.packedAttention(g, e, n)
	default:
		err = fmt.Errorf("tfc.%s has no ONNX Runtime lowering", n.Op)
	}
	if err != nil {
		return err
	}
	for i, o := range n.Outputs {
		if o == nil || o.NumUses() == 0 {
			continue
		}
		if i >= len(outs) || outs[i] == nil {
			return fmt.Errorf("output %d (%q) is used but the lowering has no such output", i, o.Name)
		}
		if ok, why := replaceValue(o, outs[i], ex.names); !ok {
			return fmt.Errorf("cannot replace output %q: %s", o.Name, why)
		}
	}
	if err := g.Remove(n); err != nil {
		return err
	}
	if e.usesMS {
		ex.usesMS = true
	}
	ex.st.Count(rule, 1)
	return nil
}

// emitter creates nodes and constants just before an anchor node, with
// fresh names derived from the anchor's.
type emitter struct {
	g      *ir.Graph
	anchor *ir.Node
	names  *namer
	usesMS bool
}

// op creates a one-output node; args are *ir.Value inputs (nil for an
// omitted one) and *ir.Attr attributes. "dom::Op" sets the domain.
func (e *emitter) op(op string, args ...any) *ir.Value { return e.opOuts(op, []bool{true}, args...)[0] }

// opOuts creates a node whose output i exists when want[i]; omitted
// outputs are nil.
func (e *emitter) opOuts(op string, want []bool, args ...any) []*ir.Value {
	spec := ir.NodeSpec{Op: op}
	if dom, name, ok := strings.Cut(op, "::"); ok {
		spec.Domain, spec.Op = dom, name
	}
	if spec.Domain == msDomain {
		e.usesMS = true
	}
	for _, a := range args {
		switch a := a.(type) {
		case *ir.Value:
			spec.Inputs = append(spec.Inputs, a)
		case *ir.Attr:
			spec.Attrs = append(spec.Attrs, a)
		case nil:
			spec.Inputs = append(spec.Inputs, nil)
		default:
			panic(fmt.Sprintf("export-ort: emitter argument of type %T is neither *ir.Value nor *ir.Attr", a))
		}
	}
	// Drop trailing omitted inputs: ONNX reads a shorter list the same.
	for len(spec.Inputs) > 0 && spec.Inputs[len(spec.Inputs)-1] == nil {
		spec.Inputs = spec.Inputs[:len(spec.Inputs)-1]
	}
	spec.Name = e.names.freshNode(nodeLabel(e.anchor) + "/" + spec.Op)
	last := 0
	for i, w := range want {
		if w {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		name := ""
		if want[i] {
			name = e.names.fresh(strings.ToLower(spec.Op))
		}
		spec.Outputs = append(spec.Outputs, name)
	}
	node := e.g.NewNode(spec)
	e.g.InsertBefore(node, e.anchor)
	out := make([]*ir.Value, len(want))
	copy(out, node.Outputs)
	return out
}

func (e *emitter) constant(base string, t *ir.Tensor) *ir.Value {
	return e.g.AddConstant(e.names.fresh(base), t)
}

func (e *emitter) ints(base string, vals ...int64) *ir.Value {
	return e.constant(base, ir.Int64Tensor([]int64{int64(len(vals))}, vals...))
}

func (e *emitter) scalarInt(base string, v int64) *ir.Value {
	return e.constant(base, ir.Int64Tensor([]int64{}, v))
}

func (e *emitter) scalarFloat(base string, v float32) *ir.Value {
	return e.constant(base, ir.Float32Tensor([]int64{}, v))
}

// dims returns dimensions [start, end) of x's runtime shape, 1-D int64.
func (e *emitter) dims(x *ir.Value, start, end int64) *ir.Value {
	return e.op("Slice", e.op("Shape", x), e.ints("start", start), e.ints("end", end))
}

// castTo casts v to element type dt when v's element type is known and
// differs (tfc's norm kernels accept scale and bias of another float
// type; ONNX Runtime's ops do not).
func (e *emitter) castTo(v *ir.Value, dt ir.DataType) *ir.Value {
	if v == nil || dt == ir.Undefined || v.Type.Elem == ir.Undefined || v.Type.Elem == dt {
		return v
	}
	return e.op("Cast", v, ir.IntAttr("to", int64(dt)))
}

// onesOver returns ones shaped like dimensions [axis, rank) of x, for an
// omitted Scale (ONNX's norms require one).
func (e *emitter) onesOver(x *ir.Value, axis int64) *ir.Value {
	dt := x.Type.Elem
	if dt == ir.Undefined {
		dt = ir.Float
	}
	one := ir.Float32Tensor([]int64{1}, 1)
	if dt != ir.Float {
		// A one-element tensor of dt: the value attribute fixes the type.
		one = castOne(dt)
	}
	shape := e.op("Slice", e.op("Shape", x), e.ints("axis", axis), e.ints("end", math.MaxInt64))
	return e.op("ConstantOfShape", shape, ir.TensorAttr("value", one))
}

// castOne returns a one-element tensor holding 1 in dt, for float types
// other than float32 (float64, float16, bfloat16).
func castOne(dt ir.DataType) *ir.Tensor {
	switch dt {
	case ir.Double:
		return ir.MustTensor(ir.Double, []int64{1}, []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f})
	case ir.Float16:
		return ir.MustTensor(ir.Float16, []int64{1}, []byte{0x00, 0x3c})
	case ir.BFloat16:
		return ir.MustTensor(ir.BFloat16, []int64{1}, []byte{0x80, 0x3f})
	}
	return ir.Float32Tensor([]int64{1}, 1)
}

func input(n *ir.Node, i int) *ir.Value {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return nil
}

func wantOutputs(n *ir.Node) []bool {
	w := make([]bool, len(n.Outputs))
	for i, o := range n.Outputs {
		w[i] = o != nil && o.NumUses() > 0
	}
	return w
}

// normalizedAxis returns the axis attribute made non-negative when X's
// rank is known, or as given (ONNX's norms accept negative axes; a
// Slice of the shape needs the non-negative one).
func normalizedAxis(n *ir.Node) (int64, error) {
	axis := n.AttrInt("axis", -1)
	x := n.Inputs[0]
	if r := x.Type.Rank(); r >= 0 {
		if axis < -int64(r) || axis >= int64(r) {
			return 0, fmt.Errorf("axis %d is out of range for X of rank %d", axis, r)
		}
		if axis < 0 {
			axis += int64(r)
		}
	}
	return axis, nil
}

func (ex *ortExporter) layerNorm(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	x := n.Inputs[0]
	axis, err := normalizedAxis(n)
	if err != nil {
		return nil, "", err
	}
	scale := e.castTo(input(n, 1), x.Type.Elem)
	if scale == nil {
		scale = e.onesOver(x, axis)
	}
	y := e.op("LayerNormalization", x, scale, e.castTo(input(n, 2), x.Type.Elem),
		ir.IntAttr("axis", axis), ir.FloatAttr("epsilon", n.AttrFloat("epsilon", 1e-5)))
	return []*ir.Value{y}, ruleOrtLayerNorm, nil
}

// rms emits RMSNormalization or SimplifiedLayerNormalization of x.
func (ex *ortExporter) rms(e *emitter, x, scale *ir.Value, axis int64, eps float32) (*ir.Value, string) {
	scale = e.castTo(scale, x.Type.Elem)
	if scale == nil {
		scale = e.onesOver(x, axis)
	}
	args := []any{x, scale, ir.IntAttr("axis", axis), ir.FloatAttr("epsilon", eps)}
	if ex.opset >= 23 {
		return e.op("RMSNormalization", args...), ruleOrtRMSNorm23
	}
	return e.op("SimplifiedLayerNormalization", args...), ruleOrtRMSNormSimpl
}

func (ex *ortExporter) rmsNorm(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	axis, err := normalizedAxis(n)
	if err != nil {
		return nil, "", err
	}
	y, rule := ex.rms(e, n.Inputs[0], input(n, 1), axis, n.AttrFloat("epsilon", 1e-5))
	return []*ir.Value{y}, rule, nil
}

// skipNormFits says whether ONNX Runtime's Skip(Simplified)LayerNormalization
// takes these operands: X of rank 2 or 3, Skip of X's shape or one that
// differs only by leading ones, 1-D scale and biases of X's last
// dimension, all of one element type.
func skipNormFits(x, skip *ir.Value, vecs ...*ir.Value) bool {
	r := x.Type.Rank()
	if r != 2 && r != 3 || x.Type.Elem != ir.Float {
		return false
	}
	hidden := x.Type.Shape[r-1]
	if skip.Type.Rank() != r || skip.Type.Elem != ir.Float {
		return false
	}
	for i := range r {
		if !skip.Type.Shape[i].SameAs(x.Type.Shape[i]) && !(i == 0 && r == 3 && skip.Type.Shape[i].IsKnown() && skip.Type.Shape[i].Size == 1) {
			return false
		}
	}
	for _, v := range vecs {
		if v == nil {
			continue
		}
		if v.Type.Rank() != 1 || v.Type.Elem != ir.Float || !v.Type.Shape[0].SameAs(hidden) {
			return false
		}
	}
	return true
}

func (ex *ortExporter) skipNorm(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	rms := n.Op == "SkipRMSNorm"
	x, skip, scale := n.Inputs[0], n.Inputs[1], n.Inputs[2]
	if x == nil || skip == nil || scale == nil {
		return nil, "", fmt.Errorf("X, Skip and Scale are required")
	}
	var beta, bias *ir.Value
	if rms {
		bias = input(n, 3)
	} else {
		beta, bias = input(n, 3), input(n, 4)
	}
	eps := n.AttrFloat("epsilon", 1e-5)
	want := wantOutputs(n)
	wantSum := len(want) > 1 && want[1]
	if skipNormFits(x, skip, scale, beta, bias) {
		// Output 3 of both ops is input + skip + bias.
		outputs := []bool{true, false, false, wantSum}
		if rms {
			// SkipSimplifiedLayerNormalization has no beta: its inputs are
			// input, skip, gamma, bias.
			outs := e.opOuts(msDomain+"::SkipSimplifiedLayerNormalization", outputs, x, skip, scale, bias, ir.FloatAttr("epsilon", eps))
			return []*ir.Value{outs[0], outs[3]}, ruleOrtSkipRMS, nil
		}
		outs := e.opOuts(msDomain+"::SkipLayerNormalization", outputs, x, skip, scale, beta, bias, ir.FloatAttr("epsilon", eps))
		return []*ir.Value{outs[0], outs[3]}, ruleOrtSkipLN, nil
	}
	// The sum with standard Adds, then the plain norm over the last axis.
	sum := e.op("Add", x, e.castTo(skip, x.Type.Elem))
	if bias != nil {
		sum = e.op("Add", sum, e.castTo(bias, x.Type.Elem))
	}
	if rms {
		y, _ := ex.rms(e, sum, scale, -1, eps)
		return []*ir.Value{y, sum}, ruleOrtSkipRMSAdd, nil
	}
	y := e.op("LayerNormalization", sum, e.castTo(scale, x.Type.Elem), e.castTo(beta, x.Type.Elem),
		ir.IntAttr("axis", -1), ir.FloatAttr("epsilon", eps))
	return []*ir.Value{y, sum}, ruleOrtSkipLNAdd, nil
}

// geluOf emits GELU of x with the given formula.
func (ex *ortExporter) geluOf(e *emitter, x *ir.Value, approx string) (*ir.Value, string) {
	if ex.opset >= 20 {
		return e.op("Gelu", x, ir.StringAttr("approximate", approx)), ruleOrtGelu20
	}
	if approx == "tanh" {
		return e.op(msDomain+"::FastGelu", x), ruleOrtFastGelu
	}
	return e.op(msDomain+"::Gelu", x), ruleOrtGeluMS
}

func (ex *ortExporter) gelu(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	approx := n.AttrString("approximate", "none")
	if approx != "none" && approx != "tanh" {
		return nil, "", fmt.Errorf("approximate=%q is neither none nor tanh", approx)
	}
	x := n.Inputs[0]
	if n.Op == "Gelu" {
		y, rule := ex.geluOf(e, x, approx)
		return []*ir.Value{y}, rule, nil
	}
	bias := input(n, 1)
	if bias == nil {
		return nil, "", fmt.Errorf("Bias is required")
	}
	// ONNX Runtime's BiasGelu and FastGelu take a 1-D bias of X's last
	// dimension and X's element type; anything else is Add then Gelu.
	r := x.Type.Rank()
	if r >= 1 && bias.Type.Rank() == 1 && x.Type.Shape[r-1].SameAs(bias.Type.Shape[0]) &&
		x.Type.Elem == ir.Float && bias.Type.Elem == ir.Float {
		if approx == "tanh" {
			return []*ir.Value{e.op(msDomain+"::FastGelu", x, bias)}, ruleOrtBiasFastGelu, nil
		}
		return []*ir.Value{e.op(msDomain+"::BiasGelu", x, bias)}, ruleOrtBiasGelu, nil
	}
	y, _ := ex.geluOf(e, e.op("Add", x, e.castTo(bias, x.Type.Elem)), approx)
	return []*ir.Value{y}, ruleOrtBiasGeluAdd, nil
}

// ortAttention is a parsed tfc.Attention node (see
// backend/cpu/table_tfc_attention.go for the semantics).
type ortAttention struct {
	q, k, v, bias, keep *ir.Value
	scale               float32
	causal              bool
	window              int64
	fill                float32
}

func parseOrtAttention(n *ir.Node) (*ortAttention, error) {
	if len(n.Inputs) < 3 || n.Inputs[0] == nil || n.Inputs[1] == nil || n.Inputs[2] == nil {
		return nil, fmt.Errorf("Q, K and V are required")
	}
	a := &ortAttention{q: n.Inputs[0], k: n.Inputs[1], v: n.Inputs[2], bias: input(n, 3), keep: input(n, 4),
		fill: n.AttrFloat("mask_fill", float32(math.Inf(-1)))}
	sc := n.Attr("scale")
	if sc == nil || sc.Type != ir.AttrFloat {
		return nil, fmt.Errorf("the float attribute scale is missing")
	}
	a.scale = sc.F
	kind := n.AttrString("mask_kind", "none")
	for _, part := range strings.Split(kind, "+") {
		switch {
		case part == "none", part == "additive", part == "boolean":
		case part == "causal":
			a.causal = true
		case strings.HasPrefix(part, "sliding:"):
			w, err := strconv.ParseInt(strings.TrimPrefix(part, "sliding:"), 10, 64)
			if err != nil || w <= 0 {
				return nil, fmt.Errorf("mask_kind %q: the sliding window must be a positive integer", kind)
			}
			a.causal, a.window = true, w
		default:
			return nil, fmt.Errorf("mask_kind %q: unknown part %q", kind, part)
		}
	}
	for _, v := range []*ir.Value{a.q, a.k, a.v, a.bias} {
		if v != nil && v.Type.Elem != ir.Float && v.Type.Elem != ir.Undefined {
			return nil, fmt.Errorf("%q is %v; the export handles float32 attention", v.Name, v.Type.Elem)
		}
	}
	return a, nil
}

// headsEqual reports whether Q and K provably have the same number of
// heads.
func (a *ortAttention) headsEqual() bool {
	hq, hkv := a.q.Type, a.k.Type
	if hq.Rank() != 4 || hkv.Rank() != 4 {
		return false
	}
	return hq.Shape[1].SameAs(hkv.Shape[1])
}

// sameHeadSize reports whether K and V provably have the same head size
// (MultiHeadAttention's BNSH key and value must have one shape).
func (a *ortAttention) sameHeadSize() bool {
	return a.k.Type.Rank() == 4 && a.v.Type.Rank() == 4 && a.k.Type.Shape[3].SameAs(a.v.Type.Shape[3])
}

// numHeads returns the known number of query heads.
func (a *ortAttention) numHeads(n *ir.Node) (int64, bool) {
	if h := n.AttrInt("num_heads", 0); h > 0 {
		return h, true
	}
	if a.q.Type.Rank() == 4 && a.q.Type.Shape[1].IsKnown() {
		return a.q.Type.Shape[1].Size, true
	}
	return 0, false
}

// ortLowestFinite is the most negative mask value the export writes for
// ONNX Attention (see additiveMask).
const ortLowestFinite = -1e30

// absorbingFill reports whether adding the keep mask's fill to a score
// gives the same softmax as replacing the score by it: -inf, or a value
// so large that a float32 score vanishes in the sum (finfo.min).
func (a *ortAttention) absorbingFill() bool {
	f := float64(a.fill)
	return math.IsInf(f, -1) || f <= -1e30
}

func (ex *ortExporter) attentionNode(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	a, err := parseOrtAttention(n)
	if err != nil {
		return nil, "", err
	}
	fused := a.keep == nil || a.absorbingFill()
	switch {
	case ex.attention == "auto" && ex.opset >= 23 && fused:
		return []*ir.Value{ex.attention23(e, a)}, ruleOrtAttention23, nil
	case ex.attention != "decompose" && fused && a.sameHeadSize():
		if h, ok := a.numHeads(n); ok {
			if !a.headsEqual() {
				// MultiHeadAttention has one head count: repeat the K/V
				// heads first, as the model did before fuse-attention
				// folded its repeat_kv.
				a.k, a.v = e.repeatKV(a.q, a.k), e.repeatKV(a.q, a.v)
			}
			return []*ir.Value{ex.attentionMHA(e, a, h)}, ruleOrtAttentionMHA, nil
		}
	}
	return []*ir.Value{ex.attentionDecomposed(e, a)}, ruleOrtAttentionDeco, nil
}

// causalMask returns the additive mask [Sq, Skv] of the causal (and
// sliding-window) frontier, aligned bottom-right as tfc.Attention does:
// query i stands at key position i + Skv - Sq and sees keys j with
// j <= pos and pos - j < window. ONNX Attention's is_causal aligns
// top-left, so it is not used.
func (e *emitter) causalMask(a *ortAttention) *ir.Value {
	shapeQ, shapeK := e.op("Shape", a.q), e.op("Shape", a.k)
	two := e.scalarInt("seq_axis", 2)
	sq := e.op("Gather", shapeQ, two, ir.IntAttr("axis", 0))
	skv := e.op("Gather", shapeK, two, ir.IntAttr("axis", 0))
	zero, one := e.scalarInt("zero", 0), e.scalarInt("one", 1)
	rows := e.op("Reshape", e.op("Range", zero, sq, one), e.ints("column", -1, 1))
	pos := e.op("Add", rows, e.op("Sub", skv, sq))
	cols := e.op("Range", zero, skv, one)
	keep := e.op("Less", cols, e.op("Add", pos, one))
	if a.window > 0 {
		keep = e.op("And", keep, e.op("Less", e.op("Sub", pos, cols), e.scalarInt("window", a.window)))
	}
	return e.op("Where", keep, e.scalarFloat("zero_f", 0), e.scalarFloat("neg_inf", float32(math.Inf(-1))))
}

// additiveMask folds the keep mask, the bias and the causal frontier into
// one additive float mask whose last two dimensions are [Sq, Skv] (ONNX
// Runtime's Attention and MultiHeadAttention require them in full), or
// nil when there is no mask. Only valid when the fill is absorbing.
//
// ONNX Runtime's opset-23 Attention takes a row whose largest score is
// the lowest float32 (finfo.min, the fill most exporters use) as fully
// masked and writes zeros, where tfc.Attention (and the original model)
// gives a softmax over those scores. With lowestIsMasked, finite mask
// values below ortLowestFinite are raised to it: the softmax is the same
// (a float32 score vanishes next to either) and the row is not zeroed.
func (e *emitter) additiveMask(a *ortAttention, lowestIsMasked bool) *ir.Value {
	var mask *ir.Value
	add := func(m *ir.Value) {
		if mask == nil {
			mask = m
		} else {
			mask = e.op("Add", mask, m)
		}
	}
	if a.keep != nil {
		fill := a.fill
		if lowestIsMasked && !math.IsInf(float64(fill), -1) {
			fill = max(fill, ortLowestFinite)
		}
		add(e.op("Where", a.keep, e.scalarFloat("zero_f", 0), e.scalarFloat("mask_fill", fill)))
	}
	if a.bias != nil {
		bias := a.bias
		if lowestIsMasked {
			// Raise finite values below ortLowestFinite to it, keeping -inf.
			floor := e.op("Max", bias, e.scalarFloat("floor", ortLowestFinite))
			bias = e.op("Where", e.op("IsInf", bias, ir.IntAttr("detect_positive", 0)), bias, floor)
		}
		add(bias)
	}
	if a.causal {
		add(e.causalMask(a))
	}
	if mask == nil {
		return nil
	}
	// Expand to [1, 1, Sq, Skv] at least: a padding mask [B, 1, 1, Skv]
	// becomes [B, 1, Sq, Skv].
	full := e.op("Concat", e.ints("ones", 1, 1), e.dims(a.q, 2, 3), e.dims(a.k, 2, 3), ir.IntAttr("axis", 0))
	return e.op("Expand", mask, full)
}

// attention23 emits ONNX Attention (opset 23) on the 4-D operands; it
// reads K/V heads from the shapes, so GQA needs nothing more. A row whose
// scores are all -inf gives zeros in ONNX Runtime as in tfc.
func (ex *ortExporter) attention23(e *emitter, a *ortAttention) *ir.Value {
	return e.op("Attention", a.q, a.k, a.v, e.additiveMask(a, true), ir.FloatAttr("scale", a.scale))
}

// attentionMHA emits com.microsoft MultiHeadAttention: Q as [B, Sq,
// H*D], K and V as [B, H, Skv, D] (its BNSH form), the mask as
// attention_bias, and the output back to [B, H, Sq, Dv]. A fully masked
// row is NaN there and zeros in tfc, hence the Where.
func (ex *ortExporter) attentionMHA(e *emitter, a *ortAttention, heads int64) *ir.Value {
	q3 := e.op("Reshape", e.op("Transpose", a.q, ir.IntsAttr("perm", 0, 2, 1, 3)), e.ints("bsd", 0, 0, -1))
	mask := e.additiveMask(a, false)
	y3 := e.op(msDomain+"::MultiHeadAttention", q3, a.k, a.v, nil, nil, mask,
		ir.IntAttr("num_heads", heads), ir.FloatAttr("scale", a.scale))
	y := e.op("Transpose", e.op("Reshape", y3, e.ints("bsnh", 0, 0, heads, -1)), ir.IntsAttr("perm", 0, 2, 1, 3))
	if mask != nil {
		y = e.op("Where", e.op("IsNaN", y), e.scalarFloat("zero_f", 0), y)
	}
	return y
}

// attentionDecomposed emits tfc.Attention's reference with standard ops:
// repeat K/V heads for GQA, S = Q·Kᵀ·scale, keep mask (Where with the
// fill), + bias, + causal mask, Softmax, zeros for rows with every
// score -inf (Softmax gives NaN there), times V.
func (ex *ortExporter) attentionDecomposed(e *emitter, a *ortAttention) *ir.Value {
	k, v := a.k, a.v
	if !a.headsEqual() {
		k, v = e.repeatKV(a.q, k), e.repeatKV(a.q, v)
	}
	s := e.op("MatMul", a.q, e.op("Transpose", k, ir.IntsAttr("perm", 0, 1, 3, 2)))
	s = e.op("Mul", s, e.scalarFloat("scale", a.scale))
	masked := false
	if a.keep != nil {
		s = e.op("Where", a.keep, s, e.scalarFloat("mask_fill", a.fill))
		masked = true
	}
	if a.bias != nil {
		s = e.op("Add", s, a.bias)
		masked = true
	}
	if a.causal {
		s = e.op("Add", s, e.causalMask(a))
		masked = true
	}
	p := e.op("Softmax", s, ir.IntAttr("axis", -1))
	if masked {
		p = e.op("Where", e.op("IsNaN", p), e.scalarFloat("zero_f", 0), p)
	}
	return e.op("MatMul", p, v)
}

// repeatKV repeats the heads of x [B, Hkv, S, D] to Q's Hq, head h of
// the result being head h / (Hq/Hkv) of x, as tfc.Attention reads them.
// The sizes come from the runtime shapes, so unknown head counts work.
func (e *emitter) repeatKV(q, x *ir.Value) *ir.Value {
	hq, hkv := e.dims(q, 1, 2), e.dims(x, 1, 2)
	group := e.op("Div", hq, hkv)
	lead, tail := e.dims(x, 0, 2), e.dims(x, 2, 4)
	one := e.ints("one", 1)
	x5 := e.op("Reshape", x, e.op("Concat", lead, one, tail, ir.IntAttr("axis", 0)))
	x5 = e.op("Expand", x5, e.op("Concat", lead, group, tail, ir.IntAttr("axis", 0)))
	return e.op("Reshape", x5, e.op("Concat", e.dims(x, 0, 1), hq, tail, ir.IntAttr("axis", 0)))
}

// Targets lists the values of the CLI's --target that AppendTarget
// accepts.
var Targets = []string{"onnx", "ort", "cpu", "cuda"}

// AppendTarget appends the passes a --target needs after the
// optimization pipeline: export-ort for "ort" (ONNX Runtime runs no tfc
// op); nothing for "onnx" (tfc runs its own ops), "cpu" and "cuda" (the
// backends run tfc ops), or "" (the default, onnx). Any other target is
// an error naming it.
func AppendTarget(p *Pipeline, target string) error {
	switch target {
	case "", "onnx", "cpu", "cuda":
		return nil
	case "ort":
		pass, ok := registry["export-ort"]
		if !ok {
			return fmt.Errorf("--target ort: pass export-ort is not registered")
		}
		p.Steps = append(p.Steps, Step{Pass: pass, Options: pass.defaults()})
		return nil
	}
	return fmt.Errorf("--target %q is not one of %s", target, strings.Join(Targets, ", "))
}

// packTokens lowers tfc.PackTokens(x [B, S, ...], mask [B, S]): index =
// the flat positions of nonzero mask entries in row-major order (the
// kernel's order), packed = those rows of x, offsets = 0 then the
// running count of valid tokens per sequence.
func (ex *ortExporter) packTokens(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	x, mask := input(n, 0), input(n, 1)
	if x == nil || mask == nil {
		return nil, "", fmt.Errorf("x and the token mask are required")
	}
	valid := mask
	if mask.Type.Elem != ir.Bool {
		valid = e.op("Cast", mask, ir.IntAttr("to", int64(ir.Bool)))
	}
	index := e.op("Reshape", e.op("NonZero", e.op("Reshape", valid, e.ints("flat", -1))), e.ints("flat", -1))
	rows := e.op("Reshape", x, e.op("Concat", e.ints("minus1", -1), e.dims(x, 2, math.MaxInt64), ir.IntAttr("axis", 0)))
	packed := e.op("Gather", rows, index, ir.IntAttr("axis", 0))
	counts := e.op("Cast", valid, ir.IntAttr("to", int64(ir.Int64)))
	if ex.opset >= 13 {
		counts = e.op("ReduceSum", counts, e.ints("seq_axis", 1), ir.IntAttr("keepdims", 0))
	} else {
		counts = e.op("ReduceSum", counts, ir.IntsAttr("axes", 1), ir.IntAttr("keepdims", 0))
	}
	offsets := e.op("Concat", e.ints("zero", 0), e.op("CumSum", counts, e.scalarInt("axis", 0)), ir.IntAttr("axis", 0))
	return []*ir.Value{packed, offsets, index}, ruleOrtPackTokens, nil
}

// zeros returns zeros of dt with the runtime shape shape (1-D int64).
func (e *emitter) zeros(shape *ir.Value, dt ir.DataType) (*ir.Value, error) {
	zero, ok := zeroTensor(dt)
	if !ok {
		return nil, fmt.Errorf("no zero of element type %v to fill padded positions", dt)
	}
	return e.op("ConstantOfShape", shape, ir.TensorAttr("value", zero)), nil
}

// zeroTensor returns a one-element zero of dt (all zero bytes), or false
// when dt has no fixed size.
func zeroTensor(dt ir.DataType) (*ir.Tensor, bool) {
	size := map[ir.DataType]int{ir.Float: 4, ir.Double: 8, ir.Float16: 2, ir.BFloat16: 2, ir.Int64: 8, ir.Int32: 4,
		ir.Int16: 2, ir.Int8: 1, ir.Uint8: 1, ir.Uint16: 2, ir.Uint32: 4, ir.Uint64: 8, ir.Bool: 1}[dt]
	if size == 0 {
		return nil, false
	}
	t, err := ir.NewTensor(dt, []int64{1}, make([]byte, size))
	return t, err == nil
}

// unpack scatters packed rows [T, ...] to [B, S, ...] (B and S from the
// reference ref), zeros at padded positions.
func (e *emitter) unpack(packed, index, ref *ir.Value) (*ir.Value, error) {
	rest := e.dims(packed, 1, math.MaxInt64)
	bs := e.dims(ref, 0, 2)
	flat := e.op("Concat", e.op("ReduceProd", bs, ir.IntAttr("keepdims", 1)), rest, ir.IntAttr("axis", 0))
	zeros, err := e.zeros(flat, packed.Type.Elem)
	if err != nil {
		return nil, err
	}
	at := e.op("Reshape", index, e.ints("column", -1, 1))
	out := e.op("ScatterND", zeros, at, packed)
	return e.op("Reshape", out, e.op("Concat", bs, rest, ir.IntAttr("axis", 0))), nil
}

// unpackTokens lowers tfc.UnpackTokens(packed, offsets, index, ref).
func (ex *ortExporter) unpackTokens(e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	packed, index, ref := input(n, 0), input(n, 2), input(n, 3)
	if packed == nil || index == nil || ref == nil {
		return nil, "", fmt.Errorf("packed, index and the [batch, seq, ...] reference input are required")
	}
	y, err := e.unpack(packed, index, ref)
	if err != nil {
		return nil, "", err
	}
	return []*ir.Value{y}, ruleOrtUnpackTokens, nil
}

// packedAttention lowers tfc.PackedAttention(q, k, v [T, H, D], offsets,
// index, mask [B, S], bias?, keep?) by unpacking Q, K and V to
// [B, H, S, D], attending with the padded keys masked by -inf (the kernel
// skips them), and gathering the kept rows back. The kernel's check that
// the model's mask hides padding is not exported: ONNX Runtime computes
// what the unpacked model computes.
func (ex *ortExporter) packedAttention(g *ir.Graph, e *emitter, n *ir.Node) ([]*ir.Value, string, error) {
	if len(n.Inputs) < 6 {
		return nil, "", fmt.Errorf("q, k, v, offsets, index and the token mask are required")
	}
	q, k, v, index, mask := n.Inputs[0], n.Inputs[1], n.Inputs[2], n.Inputs[4], n.Inputs[5]
	if q == nil || k == nil || v == nil || index == nil || mask == nil {
		return nil, "", fmt.Errorf("q, k, v, index and the token mask are required")
	}
	heads := func(x *ir.Value) (*ir.Value, error) {
		u, err := e.unpack(x, index, mask) // [B, S, H, D]
		if err != nil {
			return nil, err
		}
		h := e.op("Transpose", u, ir.IntsAttr("perm", 0, 2, 1, 3))
		if x.Type.Rank() == 3 {
			// [B, H, S, D]: the head count and size known from the packed
			// type let the attention lowering pick a fused op.
			any := ir.Dim{Size: ir.UnknownSize}
			h.Type = ir.TensorOf(x.Type.Elem, any, x.Type.Shape[1], any, x.Type.Shape[2])
		}
		return h, nil
	}
	var qkv [3]*ir.Value
	for i, x := range []*ir.Value{q, k, v} {
		h, err := heads(x)
		if err != nil {
			return nil, "", err
		}
		qkv[i] = h
	}
	valid := mask
	if mask.Type.Elem != ir.Bool {
		valid = e.op("Cast", mask, ir.IntAttr("to", int64(ir.Bool)))
	}
	// [B, 1, 1, S]: 0 on valid keys, -inf on padded ones.
	padBias := e.op("Where", e.op("Reshape", valid, e.ints("keys", 0, 1, 1, -1)),
		e.scalarFloat("zero_f", 0), e.scalarFloat("neg_inf", float32(math.Inf(-1))))
	bias := padBias
	if b := input(n, 6); b != nil {
		bias = e.op("Add", b, padBias)
	}
	kinds := []string{"additive"}
	args := []any{qkv[0], qkv[1], qkv[2], bias}
	if keep := input(n, 7); keep != nil {
		kinds = append(kinds, "boolean")
		args = append(args, keep)
	}
	for _, part := range strings.Split(n.AttrString("mask_kind", "none"), "+") {
		if part != "none" && part != "additive" && part != "boolean" {
			kinds = append(kinds, part)
		}
	}
	for _, a := range n.Attrs {
		if a.Name != "mask_kind" {
			args = append(args, a)
		}
	}
	args = append(args, ir.StringAttr("mask_kind", strings.Join(kinds, "+")))
	att := e.op("tfc::Attention", args...) // [B, H, S, Dv]
	rows := e.op("Reshape", e.op("Transpose", att, ir.IntsAttr("perm", 0, 2, 1, 3)),
		e.op("Concat", e.ints("minus1", -1), e.dims(att, 1, 2), e.dims(att, 3, 4), ir.IntAttr("axis", 0)))
	y := e.op("Gather", rows, index, ir.IntAttr("axis", 0))
	// Lower the tfc.Attention now that its output has a user.
	attNode, _ := att.Producer()
	if err := ex.node(g, attNode); err != nil {
		return nil, "", fmt.Errorf("its unpacked attention: %w", err)
	}
	return []*ir.Value{y}, ruleOrtPackedAttn, nil
}

// uniqueNodeNames renames nodes whose name an earlier node already has:
// ONNX Runtime refuses such a model ("two nodes with same node name"),
// while the IR allows it. It returns how many it renamed.
func (ex *ortExporter) uniqueNodeNames(root *ir.Graph) int {
	seen := map[string]bool{}
	renamed := 0
	root.Walk(func(n *ir.Node) {
		if n.Name == "" {
			return
		}
		if seen[n.Name] {
			n.Name = ex.names.freshNode(n.Name)
			renamed++
		}
		seen[n.Name] = true
	})
	return renamed
}
