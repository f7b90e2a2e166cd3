package cpu

// Static memory plan of the main graph.
//
// At Compile every tensor value that a node of the main graph produces gets
// a liveness interval [defining step, last step that reads it]. Values that
// a kernel returns as a view of an input (Reshape, Identity, ...: opDef.view)
// join their input's alias group: one buffer serves the whole group, alive
// from the root's definition to the last read of any member. Groups are
// coloured onto slots greedily (colourSlots: by start step and by size,
// the smaller plan kept); a slot's size is the largest size of the groups
// it serves, as an expression over the graph's dimension symbols, and the
// planned peak is the sum of the slot sizes. At Run an arena holds one
// growable buffer per slot (memplan_arena.go). docs/cpu-backend.md has
// the user-facing description.
//
// What is left out of the plan (served by the per-Run dynamic pool, exactly
// as before the plan existed): graph outputs and every value aliased to one
// (they are handed to the caller and must be fresh memory), groups rooted at
// a graph input, a constant or an outer value, values that are not tensors,
// string tensors, outputs of Constant, outputs of one node that allocation
// cannot tell apart (ambiguous), tensors that become part of a sequence or
// optional (SequenceConstruct keeps them without copying), and everything
// inside nested If/Loop/Scan bodies. Values of unknown type are planned,
// sized in bytes at run time.

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// viewInput returns the input that node n's kernel may return a view of
// (opDef.view: input 0), or nil.
func viewInput(n *ir.Node) *ir.Value {
	if d := lookupOp(n.Domain, n.Op); d == nil || !d.view || len(n.Inputs) == 0 {
		return nil
	}
	return n.Inputs[0]
}

// keepsInputs lists ops that store their input tensors inside a sequence or
// optional without copying; those inputs are left to the dynamic pool.
var keepsInputs = map[string]bool{"SequenceConstruct": true, "SequenceInsert": true, "Optional": true}

// memPlan is the static memory plan of the main graph.
type memPlan struct {
	slots []*planSlot
	// slotOf maps a planned value (every member of a planned alias group)
	// to its slot index.
	slotOf map[*ir.Value]int
	// stepOuts[i] are the outputs of step i that own their slot from that
	// step on (group roots); alloc hands their slots out.
	stepOuts [][]plannedOut
	// bindDims[i] are the symbolic dimensions of step i's outputs, bound
	// at run time from the actual shapes.
	bindDims [][]dimBinding
	// inputDims binds symbols from the graph inputs' shapes.
	inputDims []dimBinding
}

// plannedOut is a step output that is the root of a planned alias group.
type plannedOut struct {
	out   int // index in the node's outputs
	slot  int
	dt    ir.DataType // Undefined: any element type
	elems sizeTerm    // element count (coefficient 1 per element)
	// anySize: the value is untyped, elems counts bytes; any size fits.
	anySize bool
	// shape is the declared shape (nil when the rank is unknown).
	shape []ir.Dim
}

// dimBinding says that dimension dim of value v (output out of its step,
// or graph input out) is named sym.
type dimBinding struct {
	out int
	dim int // -1: the element count (unknown rank); -2: the bytes (unknown type)
	sym string
}

// planSlot is one buffer of the plan.
type planSlot struct {
	size   slotSize
	values []*ir.Value // every value served, in schedule order
}

// sizeTerm is coeff × the product of dimension symbols (each a symbol
// name as shape inference writes it: "batch", "batch*seq", "min(seq,512)",
// or "?value[i]" for a dimension only known at run time).
type sizeTerm struct {
	coeff   int64
	factors []string // sorted
}

func (t sizeTerm) key() string { return strings.Join(t.factors, "\x00") }

func (t sizeTerm) String() string {
	parts := []string{strconv.FormatInt(t.coeff, 10)}
	for _, f := range t.factors {
		if strings.ContainsAny(f, "+-") && !strings.HasPrefix(f, "?") && !(strings.HasPrefix(f, "(") && strings.HasSuffix(f, ")")) {
			f = "(" + f + ")"
		}
		parts = append(parts, f)
	}
	if t.coeff == 1 && len(t.factors) > 0 {
		parts = parts[1:]
	}
	return strings.Join(parts, "*")
}

// eval evaluates the term with the given symbol values.
func (t sizeTerm) eval(dims map[string]int64) (int64, error) {
	v := t.coeff
	for _, f := range t.factors {
		x, err := evalSym(f, dims)
		if err != nil {
			return 0, err
		}
		v *= x
	}
	return v, nil
}

// nominal is the term with every symbol at 64: a rough size used only to
// choose slots. A dimension only known at run time counts as 64*64: in
// practice it is a token count (the packed batch*seq after padding
// removal), and pricing it like one symbol would rank a packed [T,1536]
// activation below a padded [batch,seq,384] one.
func (t sizeTerm) nominal() float64 {
	v := float64(t.coeff)
	for _, f := range t.factors {
		v *= 64
		if strings.HasPrefix(f, "?") {
			v *= 64
		}
	}
	return v
}

// slotSize is the max of its terms; terms with the same symbols are merged
// (the larger coefficient wins).
type slotSize []sizeTerm

func (s slotSize) with(t sizeTerm) slotSize {
	for i, u := range s {
		if u.key() == t.key() {
			if t.coeff > u.coeff {
				s[i] = t
			}
			return s
		}
	}
	return append(s, t)
}

func (s slotSize) nominal() float64 {
	m := 0.0
	for _, t := range s {
		m = max(m, t.nominal())
	}
	return m
}

func (s slotSize) String() string {
	if len(s) == 1 {
		return s[0].String()
	}
	parts := make([]string, len(s))
	for i, t := range s {
		parts[i] = t.String()
	}
	return "max(" + strings.Join(parts, ", ") + ")"
}

func (s slotSize) eval(dims map[string]int64) (int64, error) {
	var m int64
	for _, t := range s {
		v, err := t.eval(dims)
		if err != nil {
			return 0, err
		}
		m = max(m, v)
	}
	return m, nil
}

// storageBytes is the size of one element in the Go slice that holds dt
// (sub-byte types take a byte each); 0 for types the plan does not place:
// strings (their storage holds pointers), complex types (the backend has
// no storage for them) and unknown ones (no bit width).
func storageBytes(dt ir.DataType) int64 {
	if dt == ir.String || dt == ir.Complex64 || dt == ir.Complex128 {
		return 0
	}
	return (int64(dt.Bits()) + 7) / 8
}

// elemCount returns the element count of v's type as a term, naming
// dimensions that are neither known nor named after v ("?name[i]"), and
// the bindings that tell their values at run time. For a value of unknown
// type (or element type) the term counts bytes ("?name[bytes]"). unk
// names unknown dimensions that provably equal another value's.
func elemCount(v *ir.Value, unk unknownDims) (sizeTerm, []dimBinding) {
	t := sizeTerm{coeff: 1}
	var binds []dimBinding
	if untyped(v) {
		sym := "?" + v.Name + "[bytes]"
		return sizeTerm{coeff: 1, factors: []string{sym}}, []dimBinding{{dim: -2, sym: sym}}
	}
	if !v.Type.HasShape {
		sym := "?" + v.Name + "[*]"
		return sizeTerm{coeff: 1, factors: []string{sym}}, []dimBinding{{dim: -1, sym: sym}}
	}
	for i, d := range v.Type.Shape {
		switch {
		case d.IsKnown():
			t.coeff *= d.Size
		case d.IsSym():
			t.factors = append(t.factors, d.Sym)
			binds = append(binds, dimBinding{dim: i, sym: d.Sym})
		default:
			sym := unk.name(v, i)
			t.factors = append(t.factors, sym)
			binds = append(binds, dimBinding{dim: i, sym: sym})
		}
	}
	if t.coeff == 0 {
		t.factors = nil
	}
	sort.Strings(t.factors)
	return t, binds
}

// planMemory computes the static plan of a main-graph plan.
func planMemory(p *plan) *memPlan {
	g := p.g
	unk := shareUnknownDims(g)
	step := map[*ir.Value]int{} // defining step of node outputs
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				step[o] = i
			}
		}
	}
	// Alias groups: parent links from an alias op's output to the input
	// it may view; the root is the member not defined by viewing another.
	parent := map[*ir.Value]*ir.Value{}
	for _, n := range g.Nodes {
		in := viewInput(n)
		if in == nil {
			continue
		}
		for _, o := range n.Outputs {
			if o != nil {
				parent[o] = in
			}
		}
	}
	root := func(v *ir.Value) *ir.Value {
		for {
			u, ok := parent[v]
			if !ok {
				return v
			}
			v = u
		}
	}
	type group struct {
		root       *ir.Value
		members    []*ir.Value
		start, end int
		excluded   bool
	}
	groups := map[*ir.Value]*group{}
	var order []*group
	member := func(v *ir.Value) *group {
		r := root(v)
		gr := groups[r]
		if gr == nil {
			gr = &group{root: r, start: -1, end: -1}
			if _, ok := step[r]; !ok {
				gr.excluded = true // a graph input, constant or outer value
			} else {
				gr.start, gr.end = step[r], step[r]
			}
			groups[r] = gr
			order = append(order, gr)
		}
		return gr
	}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == nil {
				continue
			}
			gr := member(o)
			gr.members = append(gr.members, o)
			if !plannable(o) || n.Op == "Constant" || (untyped(o) && seqOps[n.Op]) {
				gr.excluded = true
			}
		}
		keeps := keepsInputs[n.Op] // a node that stores its inputs inside a sequence or optional
		for _, o := range n.Outputs {
			if o != nil && (o.Type.Kind == ir.KindSequence || o.Type.Kind == ir.KindOptional) {
				keeps = true
			}
		}
		for _, v := range nodeReads(n) {
			if _, ok := step[v]; !ok {
				continue
			}
			gr := member(v)
			gr.end = max(gr.end, i)
			if keeps {
				gr.excluded = true
			}
		}
	}
	for _, v := range g.Outputs {
		if v != nil {
			if _, ok := step[v]; ok {
				member(v).excluded = true
			}
		}
	}
	// Slots are handed to a step's allocations by element type and count.
	// When two outputs of one node cannot be told apart that way (TopK's
	// values and indices, both int64), the kernel's allocation order
	// decides which buffer each gets, so neither is planned.
	for _, n := range g.Nodes {
		var roots []*ir.Value
		for _, o := range n.Outputs {
			if o != nil && groups[o] != nil && !groups[o].excluded {
				roots = append(roots, o)
			}
		}
		for a := range roots {
			for b := range roots {
				if a != b && ambiguous(roots[a], roots[b], unk) {
					groups[roots[a]].excluded = true
				}
			}
		}
	}
	mp := &memPlan{
		slotOf:   map[*ir.Value]int{},
		stepOuts: make([][]plannedOut, len(g.Nodes)),
		bindDims: make([][]dimBinding, len(g.Nodes)),
	}
	// Assign groups to slots (colourSlots), then record the result.
	var planned []*group
	var counts []sizeTerm // element count of each planned group's root
	var spans []span
	for _, gr := range order {
		if gr.excluded {
			continue
		}
		cnt, _ := elemCount(gr.root, unk)
		need := sizeTerm{coeff: cnt.coeff * elemBytes(gr.root), factors: cnt.factors}
		if need.coeff == 0 {
			continue // empty: nothing to place
		}
		planned = append(planned, gr)
		counts = append(counts, cnt)
		spans = append(spans, span{start: gr.start, end: gr.end, need: need, id: gr.root.ID})
	}
	assign, nslots := colourSlots(spans)
	mp.slots = make([]*planSlot, nslots)
	for i := range mp.slots {
		mp.slots[i] = &planSlot{}
	}
	byStart := make([]int, len(planned))
	for k := range byStart {
		byStart[k] = k
	}
	slices.SortStableFunc(byStart, func(a, b int) int { return planned[a].start - planned[b].start })
	for _, k := range byStart {
		gr, best, cnt := planned[k], assign[k], counts[k]
		s := mp.slots[best]
		s.size = s.size.with(spans[k].need)
		slices.SortFunc(gr.members, func(a, b *ir.Value) int { return step[a] - step[b] })
		for _, v := range gr.members {
			mp.slotOf[v] = best
		}
		s.values = append(s.values, gr.members...)
		i := gr.start
		n := g.Nodes[i]
		for j, o := range n.Outputs {
			if o == gr.root {
				mp.stepOuts[i] = append(mp.stepOuts[i], plannedOut{out: j, slot: best, dt: o.Type.Elem, elems: cnt, anySize: untyped(o), shape: declaredShape(o)})
			}
		}
	}
	for i := range mp.stepOuts {
		slices.SortFunc(mp.stepOuts[i], func(a, b plannedOut) int { return a.out - b.out })
	}
	for i, n := range g.Nodes {
		for j, o := range n.Outputs {
			if o == nil || !plannable(o) {
				continue
			}
			_, binds := elemCount(o, unk)
			for _, b := range binds {
				b.out = j
				mp.bindDims[i] = append(mp.bindDims[i], b)
			}
		}
	}
	for j, v := range g.Inputs {
		if !plannable(v) {
			continue
		}
		_, binds := elemCount(v, unk)
		for _, b := range binds {
			b.out = j
			mp.inputDims = append(mp.inputDims, b)
		}
	}
	return mp
}

// MemoryPlan describes the static memory plan of an Executable's main
// graph.
type MemoryPlan struct {
	Slots []MemorySlot
}

// MemorySlot is one buffer of the plan: its size in bytes as an expression
// over dimension symbols ("max(a, b)" when it serves values of different
// shapes), and the values it serves in schedule order (values of one alias
// group share it at the same time; the others one after another).
type MemorySlot struct {
	Size   string   `json:"size"`
	Values []string `json:"values"`
}

// PeakBytesExpr is the planned peak: the sum of the slot sizes.
func (p MemoryPlan) PeakBytesExpr() string {
	if len(p.Slots) == 0 {
		return "0"
	}
	parts := make([]string, len(p.Slots))
	for i, s := range p.Slots {
		parts[i] = s.Size
	}
	return strings.Join(parts, " + ")
}

// String prints one line per slot.
func (p MemoryPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "memory plan: %d slots, planned peak %s bytes\n", len(p.Slots), p.PeakBytesExpr())
	for i, s := range p.Slots {
		fmt.Fprintf(&b, "  slot %d: %s bytes: %s\n", i, s.Size, strings.Join(s.Values, ", "))
	}
	return b.String()
}

// MemoryPlan returns the static memory plan of the main graph.
func (e *Executable) MemoryPlan() MemoryPlan {
	var out MemoryPlan
	if e.plan.mem == nil {
		return out
	}
	for _, s := range e.plan.mem.slots {
		ms := MemorySlot{Size: s.size.String()}
		for _, v := range s.values {
			ms.Values = append(ms.Values, v.Name)
		}
		out.Slots = append(out.Slots, ms)
	}
	return out
}

// PlannedPeakBytes evaluates the planned peak (the sum of the slot sizes)
// for the given dimension symbols, e.g. {"batch": 8, "seq": 128}. Derived
// symbols ("batch*seq", "min(seq,512)") are computed from their parts
// unless given themselves. Dimensions only known at run time are named
// "?value[i]"; RunStats.Symbols of a Run holds the values it saw. The
// error names the first symbol that is unbound.
func (e *Executable) PlannedPeakBytes(dims map[string]int64) (int64, error) {
	if e.plan.mem == nil {
		return 0, nil
	}
	var total int64
	for i, s := range e.plan.mem.slots {
		v, err := s.size.eval(dims)
		if err != nil {
			return 0, fmt.Errorf("memory plan slot %d (%s): %w", i, s.size, err)
		}
		total += v
	}
	return total, nil
}

// evalSym evaluates a dimension symbol: its value when dims holds it,
// else as an expression of +, -, *, parentheses, min(a,b) and max(a,b)
// over numbers and symbols.
func evalSym(sym string, dims map[string]int64) (int64, error) {
	if v, ok := dims[sym]; ok {
		return v, nil
	}
	if strings.HasPrefix(sym, "?") {
		return 0, fmt.Errorf("symbol %q is unbound (a dimension only known at run time)", sym)
	}
	ps := symParser{s: sym, dims: dims}
	v, err := ps.expr()
	if err == nil && ps.pos != len(ps.s) {
		err = fmt.Errorf("symbol %q is unbound", sym)
	}
	if err != nil {
		if ps.compound {
			return 0, fmt.Errorf("dimension %q: %w", sym, err)
		}
		return 0, fmt.Errorf("symbol %q is unbound", sym)
	}
	return v, nil
}

// symParser is a recursive-descent evaluator for derived symbol names.
type symParser struct {
	s        string
	pos      int
	dims     map[string]int64
	compound bool // saw an operator: the name is an expression
}

func (p *symParser) peek() byte {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *symParser) expr() (int64, error) {
	v, err := p.term()
	if err != nil {
		return 0, err
	}
	for {
		c := p.peek()
		if c != '+' && c != '-' {
			return v, nil
		}
		p.pos++
		p.compound = true
		w, err := p.term()
		if err != nil {
			return 0, err
		}
		if c == '+' {
			v += w
		} else {
			v -= w
		}
	}
}

func (p *symParser) term() (int64, error) {
	v, err := p.factor()
	if err != nil {
		return 0, err
	}
	for p.peek() == '*' {
		p.pos++
		p.compound = true
		w, err := p.factor()
		if err != nil {
			return 0, err
		}
		v *= w
	}
	return v, nil
}

func (p *symParser) factor() (int64, error) {
	if p.peek() == '(' {
		p.pos++
		p.compound = true
		v, err := p.expr()
		if err != nil {
			return 0, err
		}
		if p.peek() != ')' {
			return 0, fmt.Errorf("unbalanced parentheses in %q", p.s)
		}
		p.pos++
		return v, nil
	}
	start := p.pos
	for p.pos < len(p.s) && !strings.ContainsRune("+-*(), ", rune(p.s[p.pos])) {
		p.pos++
	}
	name := p.s[start:p.pos]
	if name == "" {
		return 0, fmt.Errorf("malformed dimension %q", p.s)
	}
	if (name == "min" || name == "max") && p.peek() == '(' {
		p.pos++
		p.compound = true
		var args []int64
		for {
			v, err := p.expr()
			if err != nil {
				return 0, err
			}
			args = append(args, v)
			if c := p.peek(); c == ',' {
				p.pos++
				continue
			} else if c != ')' {
				return 0, fmt.Errorf("malformed %s(...) in %q", name, p.s)
			}
			p.pos++
			break
		}
		if name == "min" {
			return slices.Min(args), nil
		}
		return slices.Max(args), nil
	}
	if n, err := strconv.ParseInt(name, 10, 64); err == nil {
		return n, nil
	}
	if v, ok := p.dims[name]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("symbol %q is unbound", name)
}

// untyped reports whether the graph does not say v's element type (or
// says nothing about v): the plan then sizes it in bytes at run time and
// hands its slot to an allocation of any element type.
func untyped(v *ir.Value) bool {
	return v.Type.Kind == ir.KindUnknown || v.Type.Elem == ir.Undefined
}

// plannable reports whether a value may live in a slot: a tensor (or a
// value of unknown type, which at run time is a tensor in practice; the
// safety net covers the rest) whose storage holds no pointers.
func plannable(v *ir.Value) bool {
	if untyped(v) {
		return v.Type.Kind == ir.KindUnknown || v.Type.Kind == ir.KindTensor
	}
	return v.Type.Kind == ir.KindTensor && storageBytes(v.Type.Elem) > 0
}

// elemBytes is the element size for sizing v: 1 when untyped (its term
// counts bytes).
func elemBytes(v *ir.Value) int64 {
	if untyped(v) {
		return 1
	}
	return storageBytes(v.Type.Elem)
}

// ambiguous reports whether an allocation for a could be taken for b.
func ambiguous(a, b *ir.Value, unk unknownDims) bool {
	if untyped(a) || untyped(b) {
		return true
	}
	if a.Type.Elem != b.Type.Elem {
		return false
	}
	ca, _ := elemCount(a, unk)
	cb, _ := elemCount(b, unk)
	// Different symbols may still be equal at run time.
	return ca.coeff == cb.coeff || ca.key() != cb.key()
}

// seqOps produce sequences or optionals; an output of theirs whose type
// the graph does not declare is never planned.
var seqOps = map[string]bool{
	"SplitToSequence": true, "SequenceConstruct": true, "SequenceEmpty": true, "SequenceInsert": true,
	"SequenceErase": true, "SequenceMap": true, "Optional": true, "Loop": true, "Scan": true, "If": true,
}

func declaredShape(v *ir.Value) []ir.Dim {
	if !v.Type.HasShape {
		return nil
	}
	return append([]ir.Dim{}, v.Type.Shape...)
}

// span is an alias group to place: alive over steps [start, end], needing
// need bytes.
type span struct {
	start, end int
	need       sizeTerm
	id         int // for a deterministic order
}

// colourSlots assigns spans to slots so that spans sharing a slot are
// never alive at the same step (a step reads its inputs while it writes
// its outputs, so touching intervals conflict too), and returns each
// span's slot and the slot count.
//
// Two greedy orders are tried and the plan with the smaller sum of slot
// sizes, at every symbol = 64, is kept:
//   - by start step: a slot is free when its last span ended before this
//     one starts; among free slots the smallest one already big enough,
//     else the biggest (it grows least).
//   - by size, largest first (TensorFlow Lite's "greedy by size"): the
//     first slot with no overlapping span, preferring the smallest that
//     is big enough. On transformer encoders this one wins: the FFN's
//     wide activations take two slots early and the many narrow
//     activations fill them between uses, where ordering by start leaves
//     narrow, long-lived values in slots that must later grow.
func colourSlots(spans []span) ([]int, int) {
	a1, n1, cost1 := colourByStart(spans)
	a2, n2, cost2 := colourBySize(spans)
	if cost2 < cost1 {
		return a2, n2
	}
	return a1, n1
}

// better reports whether a slot of nominal size have is a better home for
// want bytes than the current choice cur (-1: none yet).
func better(have, cur, want float64) bool {
	switch {
	case cur < 0:
		return true
	case have >= want:
		return cur < want || have < cur
	default:
		return cur < want && have > cur
	}
}

func slotsCost(sizes []slotSize) float64 {
	c := 0.0
	for _, s := range sizes {
		c += s.nominal()
	}
	return c
}

// colourByStart places spans by start step.
func colourByStart(spans []span) ([]int, int, float64) {
	return colourGreedy(spans, func(a, b span) int { return a.start - b.start })
}

// colourBySize places spans largest first, ties by start step.
func colourBySize(spans []span) ([]int, int, float64) {
	return colourGreedy(spans, func(a, b span) int {
		na, nb := a.need.nominal(), b.need.nominal()
		switch {
		case na > nb:
			return -1
		case na < nb:
			return 1
		}
		return a.start - b.start
	})
}

// colourGreedy places the spans in the order cmp gives (ties by id), each
// in the best slot (better) among those none of whose spans overlaps it,
// or in a new slot, and returns each span's slot, the slot count and the
// plan's cost.
func colourGreedy(spans []span, cmp func(a, b span) int) ([]int, int, float64) {
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp(spans[a], spans[b]); c != 0 {
			return c
		}
		return spans[a].id - spans[b].id
	})
	assign := make([]int, len(spans))
	var sizes []slotSize
	var busy [][]span // spans placed in each slot
	for _, k := range order {
		sp := spans[k]
		best, cur := -1, -1.0
	slots:
		for i := range sizes {
			for _, o := range busy[i] {
				if o.start <= sp.end && sp.start <= o.end {
					continue slots
				}
			}
			if have := sizes[i].nominal(); better(have, cur, sp.need.nominal()) {
				best, cur = i, have
			}
		}
		if best < 0 {
			best = len(sizes)
			sizes = append(sizes, nil)
			busy = append(busy, nil)
		}
		sizes[best] = sizes[best].with(sp.need)
		busy[best] = append(busy[best], sp)
		assign[k] = best
	}
	return assign, len(sizes), slotsCost(sizes)
}

// unknownDims names, per value, the dimensions the graph leaves unknown
// that provably equal an unknown dimension of an input ("" elsewhere), so
// that the packed token count after padding removal is one run-time symbol
// instead of one per value.
type unknownDims map[*ir.Value][]string

// name is the run-time symbol of v's unknown dimension i: the shared one,
// else "?value[i]".
func (unk unknownDims) name(v *ir.Value, i int) string {
	if s := unk[v]; i < len(s) && s[i] != "" {
		return s[i]
	}
	return "?" + v.Name + "[" + strconv.Itoa(i) + "]"
}

// sameShapeOps give output 0 the shape of input 0.
var sameShapeOps = map[string]bool{
	"Acos": true, "Acosh": true, "Asin": true, "Asinh": true, "Atan": true, "Atanh": true, "Ceil": true,
	"Cos": true, "Cosh": true, "Erf": true, "Exp": true, "Floor": true, "Log": true, "Reciprocal": true,
	"Relu": true, "Round": true, "Sigmoid": true, "Sign": true, "Sin": true, "Sinh": true, "Softplus": true,
	"Softsign": true, "Sqrt": true, "Tan": true, "Tanh": true, "Elu": true, "Selu": true, "Celu": true,
	"LeakyRelu": true, "HardSigmoid": true, "HardSwish": true, "Mish": true, "Gelu": true, "Swish": true,
	"Softmax": true, "LogSoftmax": true, "Neg": true, "Abs": true, "Not": true, "Cast": true, "Clip": true,
	"Identity": true, "Dropout": true, "LayerNormalization": true, "SkipLayerNorm": true, "LayerNorm": true,
	"RMSNorm": true, "RMSNormalization": true, "BiasGelu": true, "FastGelu": true, "SimplifiedLayerNormalization": true,
}

// broadcastOps follow numpy broadcasting over all their inputs.
var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Mod": true, "Max": true, "Min": true,
	"Sum": true, "Mean": true, "Where": true, "And": true, "Or": true, "Xor": true, "Equal": true,
	"Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true, "PRelu": true,
}

func shareUnknownDims(g *ir.Graph) unknownDims {
	unk := unknownDims{}
	// fromRight returns input v's dimension r places from the right: its
	// run-time name when unknown, "" when known (ok false when known and
	// not 1, or when v has no such dimension, ok true and "").
	fromRight := func(v *ir.Value, r int) (sym string, present, isOne bool) {
		if v == nil || !v.Type.HasShape || r >= len(v.Type.Shape) {
			return "", false, false
		}
		i := len(v.Type.Shape) - 1 - r
		d := v.Type.Shape[i]
		switch {
		case d.IsKnown():
			return "", true, d.Size == 1
		case d.IsSym():
			return "", true, false
		}
		return unk.name(v, i), true, false
	}
	for _, n := range g.Nodes {
		if len(n.Outputs) == 0 || n.Outputs[0] == nil {
			continue
		}
		o := n.Outputs[0]
		if !o.Type.HasShape || untyped(o) {
			continue
		}
		rank := len(o.Type.Shape)
		var names []string
		for i, d := range o.Type.Shape {
			if d.IsKnown() || d.IsSym() {
				continue
			}
			r := rank - 1 - i
			sym := ""
			switch {
			case sameShapeOps[n.Op] && len(n.Inputs) > 0 && n.Inputs[0] != nil && n.Inputs[0].Type.Rank() == rank:
				sym, _, _ = fromRight(n.Inputs[0], r)
			case broadcastOps[n.Op] && (n.Domain == "" || n.Domain == "ai.onnx"):
				// The output dimension is the input one when exactly one
				// input has it unknown and the others lack it or have 1.
				count := 0
				for _, in := range n.Inputs {
					s, present, isOne := fromRight(in, r)
					switch {
					case s != "":
						if sym != s {
							count++
						}
						sym = s
					case present && !isOne:
						count = 2 // a symbol or size the unknown one must match: leave it
					}
				}
				if count != 1 {
					sym = ""
				}
			case (n.Op == "Attention" || n.Op == "PackedAttention") && n.Domain == "tfc" && r > 0 && len(n.Inputs) > 0 && n.Inputs[0] != nil && n.Inputs[0].Type.Rank() == rank:
				// Every dimension but the last (heads × value size)
				// follows the query's.
				sym, _, _ = fromRight(n.Inputs[0], r)
			case isReshapeLike(n) && len(n.Inputs) > 0:
				// Reshape and friends keep the element count: with one
				// unknown dimension on each side and the rest known, the
				// two are equal when the known products are.
				if in := n.Inputs[0]; in != nil && in.Type.HasShape {
					ki, ui := knownProduct(in.Type.Shape)
					ko, uo := knownProduct(o.Type.Shape)
					if len(ui) == 1 && len(uo) == 1 && ki == ko {
						sym = unk.name(in, ui[0])
					}
				}
			case n.Op == "MatMul" && len(n.Inputs) == 2 && rank >= 2 && n.Inputs[0] != nil && n.Inputs[1] != nil:
				if r == 1 && n.Inputs[0].Type.Rank() >= 2 {
					sym, _, _ = fromRight(n.Inputs[0], 1)
				} else if r == 0 && n.Inputs[1].Type.Rank() >= 2 {
					sym, _, _ = fromRight(n.Inputs[1], 0)
				}
			}
			if sym == "" {
				continue
			}
			if names == nil {
				names = make([]string, rank)
			}
			names[i] = sym
		}
		if names != nil {
			unk[o] = names
		}
	}
	return unk
}

// knownProduct returns the product of the known dimensions and the
// indices of the others (symbols count as others).
func knownProduct(dims []ir.Dim) (int64, []int) {
	p := int64(1)
	var others []int
	for i, d := range dims {
		if d.IsKnown() {
			p *= d.Size
		} else {
			others = append(others, i)
		}
	}
	return p, others
}

// isReshapeLike reports whether n is Reshape, Flatten, Squeeze or
// Unsqueeze: an op that keeps its input's element count.
func isReshapeLike(n *ir.Node) bool {
	switch n.Op {
	case "Reshape", "Flatten", "Squeeze", "Unsqueeze":
		return n.Domain == "" || n.Domain == "ai.onnx"
	}
	return false
}
