package passes

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// A Pattern describes a subgraph by the value it computes. Patterns are
// built once (usually in a package-level var) and matched many times:
//
//	x := Any("x")
//	mean := Op("ReduceMean", x).Bind("mean")
//	d := Op("Sub", x, mean).Bind("d")
//	p := Op("Div", d, Op("Sqrt", Op("Add", Op("ReduceMean", Op("Pow", d, Const("two"))), Const("eps"))))
//
// Matching rules:
//   - A name given to Any or Bind is a capture. A name used twice must bind
//     the same value: above, both uses of d must be the one Sub.
//   - Op matches a node of that op (a "dom::Op" name sets the domain;
//     "ai.onnx" and "" are the same) at output Out (0 by default). The
//     node must have exactly the listed inputs, apart from trailing
//     omitted ones, unless ExtraInputs allows more.
//   - A two-input Op pattern whose op the op table (ir.LookupOp) marks
//     commutative (Add, Mul, ...) is tried in both operand orders, unless
//     Commutative(false) says not to; Commutative(true) forces it for ops
//     the table does not know (custom domains).
//   - OneOf tries alternatives in order; Optional(p) matches p, or else
//     p's first input in p's place (an optional Cast or Reshape).
//   - Conditions (Where, WhereNode and the helpers returning Cond) are
//     checked when their pattern is reached, after its own capture is
//     bound; they see the captures bound so far, in depth-first,
//     left-to-right order. Rule checks see all captures.
//
// The matcher backtracks over alternatives, optional nodes and operand
// orders, so a later failure retries earlier choices.
type Pattern struct {
	kind        patternKind
	name        string // capture name, "" for none
	domain, op  string
	inputs      []*Pattern
	out         int
	extraInputs bool
	commute     int8 // 0: by the op table, 1: always, -1: never
	alts        []*Pattern
	conds       []Cond
}

type patternKind uint8

const (
	patAny patternKind = iota
	patOp
	patOneOf
	patOptional
	patAbsent
)

// Cond is a named condition on a matched value. Desc is what --explain
// prints when it fails ("axis is -1").
type Cond struct {
	Desc  string
	Check func(m *Match, v *ir.Value) bool
}

// isFixedConst reports whether v is a constant whose value cannot change
// at run time: an initializer that is not also a graph input (an input
// with a default may be fed a different value).
func isFixedConst(v *ir.Value) bool {
	return v != nil && v.IsConst() && !v.IsGraphInput()
}

// Any matches any present value and, if name is not empty, captures it.
func Any(name string) *Pattern { return &Pattern{kind: patAny, name: name} }

// Const matches a constant (an initializer that is not also a graph
// input) and captures it under name.
func Const(name string) *Pattern { return Any(name).If(IsConst()) }

// Absent matches an omitted optional input.
func Absent() *Pattern { return &Pattern{kind: patAbsent} }

// Op matches output 0 of a node of the given op whose inputs match inputs.
func Op(op string, inputs ...*Pattern) *Pattern {
	p := &Pattern{kind: patOp, op: op, inputs: inputs}
	if dom, name, ok := strings.Cut(op, "::"); ok {
		p.domain, p.op = dom, name
	}
	if p.domain == "ai.onnx" {
		p.domain = ""
	}
	return p
}

// OneOf matches the first alternative that leads to a whole match.
func OneOf(alts ...*Pattern) *Pattern { return &Pattern{kind: patOneOf, alts: alts} }

// Optional matches p, or, when p does not match, p's first input pattern
// at the same value: the node p describes may be present or not. p must be
// an Op pattern with at least one input.
func Optional(p *Pattern) *Pattern {
	return &Pattern{kind: patOptional, alts: []*Pattern{p}}
}

// Bind captures the value p matches under name and returns p.
func (p *Pattern) Bind(name string) *Pattern { p.name = name; return p }

// Out makes an Op pattern match output i of the node instead of output 0.
func (p *Pattern) Out(i int) *Pattern { p.out = i; return p }

// ExtraInputs lets an Op pattern match nodes with more inputs than it
// lists (the rest are not looked at).
func (p *Pattern) ExtraInputs() *Pattern { p.extraInputs = true; return p }

// Commutative overrides whether a two-input Op pattern is tried in both
// operand orders.
func (p *Pattern) Commutative(yes bool) *Pattern {
	p.commute = -1
	if yes {
		p.commute = 1
	}
	return p
}

// If adds conditions.
func (p *Pattern) If(conds ...Cond) *Pattern { p.conds = append(p.conds, conds...); return p }

// Where adds a condition on the matched value.
func (p *Pattern) Where(desc string, check func(m *Match, v *ir.Value) bool) *Pattern {
	return p.If(Cond{desc, check})
}

// WhereNode adds a condition on the node an Op pattern matched.
func (p *Pattern) WhereNode(desc string, check func(m *Match, n *ir.Node) bool) *Pattern {
	return p.If(Cond{desc, func(m *Match, v *ir.Value) bool {
		n, _ := v.Producer()
		return n != nil && check(m, n)
	}})
}

// describe prints a pattern briefly for explanations.
func (p *Pattern) describe() string {
	switch p.kind {
	case patAny:
		if p.name != "" {
			return "any value " + p.name
		}
		return "any value"
	case patAbsent:
		return "an omitted input"
	case patOp:
		return "a " + p.qualifiedOp() + " node"
	case patOptional:
		return "optional " + p.alts[0].describe()
	case patOneOf:
		parts := make([]string, len(p.alts))
		for i, a := range p.alts {
			parts[i] = a.describe()
		}
		return "one of (" + strings.Join(parts, ", ") + ")"
	}
	return "?"
}

func (p *Pattern) qualifiedOp() string {
	if p.domain == "" {
		return p.op
	}
	return p.domain + "::" + p.op
}

// rootOps returns the ops a pattern can be anchored at, for dispatch, or
// an error if its root is not a node.
func (p *Pattern) rootOps() ([]string, error) {
	switch p.kind {
	case patOp:
		return []string{opKey(p.domain, p.op)}, nil
	case patOneOf:
		var out []string
		for _, a := range p.alts {
			ops, err := a.rootOps()
			if err != nil {
				return nil, err
			}
			out = append(out, ops...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a rule's pattern must be rooted at a node (Op or OneOf of Ops), not %s", p.describe())
}

func opKey(domain, op string) string {
	if domain == "ai.onnx" {
		domain = ""
	}
	return domain + "::" + op
}

func (p *Pattern) isCommutative() bool {
	switch p.commute {
	case 1:
		return true
	case -1:
		return false
	}
	if len(p.inputs) != 2 {
		return false
	}
	schema := ir.LookupOp(p.domain, p.op)
	return schema != nil && schema.Commutative
}

// Match is the result of matching a pattern: the captures and the nodes
// the match covers.
type Match struct {
	Root    *ir.Node // the anchor: the node the pattern's root matched
	rootOut int
	values  map[string]*ir.Value
	nodes   []*ir.Node
	inMatch map[*ir.Node]int // how many times each node was matched (diamonds)
}

// RootValue returns the output of Root that the pattern's root matched:
// the value the rewrite replaces.
func (m *Match) RootValue() *ir.Value { return m.Root.Outputs[m.rootOut] }

// Value returns a capture, or nil.
func (m *Match) Value(name string) *ir.Value { return m.values[name] }

// Node returns the node that produced a capture, or nil for a graph input,
// a constant, or an unknown name.
func (m *Match) Node(name string) *ir.Node {
	if v := m.values[name]; v != nil {
		n, _ := v.Producer()
		return n
	}
	return nil
}

// Nodes returns the matched nodes in the order they were reached.
func (m *Match) Nodes() []*ir.Node { return slices.Clone(m.nodes) }

// Contains reports whether n is part of the match.
func (m *Match) Contains(n *ir.Node) bool { return m.inMatch[n] > 0 }

// MatchFailure says why a pattern did not match: the condition that
// failed deepest into the pattern (after the most matched nodes), which
// is the most useful to read when the matcher backtracked, and the nodes
// involved.
type MatchFailure struct {
	Reason string
	Nodes  []string
	depth  int // matched nodes when it failed
}

// matcher holds the state of one match attempt; undo entries restore it
// when the matcher backtracks.
type matcher struct {
	m       *Match
	undo    []func()
	explain bool
	best    *MatchFailure
}

func newMatcher(root *ir.Node, explain bool) *matcher {
	return &matcher{m: &Match{Root: root, values: map[string]*ir.Value{}, inMatch: map[*ir.Node]int{}}, explain: explain}
}

func (mt *matcher) mark() int { return len(mt.undo) }

func (mt *matcher) restore(mark int) {
	for len(mt.undo) > mark {
		mt.undo[len(mt.undo)-1]()
		mt.undo = mt.undo[:len(mt.undo)-1]
	}
}

// fail records why an attempt failed when explaining. nodes are the
// nodes involved.
func (mt *matcher) fail(reason func() string, nodes ...*ir.Node) {
	if !mt.explain {
		return
	}
	depth := len(mt.m.nodes)
	if mt.best != nil && mt.best.depth >= depth {
		return
	}
	f := &MatchFailure{depth: depth, Reason: reason()}
	for _, n := range nodes {
		if n != nil {
			f.Nodes = append(f.Nodes, nodeLabel(n))
		}
	}
	mt.best = f
}

// nodeLabel names a node for explanations: its name, or its op and first
// output.
func nodeLabel(n *ir.Node) string {
	if n.Name != "" {
		return n.Name
	}
	for _, o := range n.Outputs {
		if o != nil {
			return n.Op + "->" + o.Name
		}
	}
	return n.Op
}

// describeValue says what a value is, for explanations.
func describeValue(v *ir.Value) string {
	if v == nil {
		return "an omitted input"
	}
	if n, i := v.Producer(); n != nil {
		if len(n.Outputs) > 1 {
			return fmt.Sprintf("%q (output %d of %s %q)", v.Name, i, n.Op, nodeLabel(n))
		}
		return fmt.Sprintf("%q (from %s %q)", v.Name, n.Op, nodeLabel(n))
	}
	if v.IsConst() {
		return fmt.Sprintf("constant %q", v.Name)
	}
	return fmt.Sprintf("%q (a graph input or outer value)", v.Name)
}

func (mt *matcher) bind(name string, v *ir.Value, at *ir.Node) bool {
	if name == "" {
		return true
	}
	if old, ok := mt.m.values[name]; ok {
		if old != v {
			mt.fail(func() string {
				return fmt.Sprintf("capture %q must be the same value twice, but is %s and %s", name, describeValue(old), describeValue(v))
			}, at)
			return false
		}
		return true
	}
	mt.m.values[name] = v
	mt.undo = append(mt.undo, func() { delete(mt.m.values, name) })
	return true
}

func (mt *matcher) addNode(n *ir.Node) {
	if mt.m.inMatch[n] == 0 {
		mt.m.nodes = append(mt.m.nodes, n)
	}
	mt.m.inMatch[n]++
	mt.undo = append(mt.undo, func() {
		mt.m.inMatch[n]--
		if mt.m.inMatch[n] == 0 {
			delete(mt.m.inMatch, n)
			mt.m.nodes = mt.m.nodes[:len(mt.m.nodes)-1]
		}
	})
}

func (mt *matcher) checkConds(p *Pattern, v *ir.Value, at *ir.Node) bool {
	for _, c := range p.conds {
		if !c.Check(mt.m, v) {
			mt.fail(func() string { return fmt.Sprintf("%s fails the condition: %s", describeValue(v), c.Desc) }, at)
			return false
		}
	}
	return true
}

// match matches p at v (used as an input of node user, nil at the root)
// and then calls k. It returns k's result; when it returns false the
// matcher's state is as it was before the call.
func (mt *matcher) match(p *Pattern, v *ir.Value, user *ir.Node, k func() bool) bool {
	switch p.kind {
	case patAbsent:
		if v != nil {
			mt.fail(func() string { return fmt.Sprintf("want an omitted input, got %s", describeValue(v)) }, user)
			return false
		}
		return k()
	case patAny:
		if v == nil {
			mt.fail(func() string { return "a required input is omitted" }, user)
			return false
		}
		mark := mt.mark()
		if mt.bind(p.name, v, user) && mt.checkConds(p, v, user) && k() {
			return true
		}
		mt.restore(mark)
		return false
	case patOneOf:
		for _, a := range p.alts {
			if mt.matchNamed(p, a, v, user, k) {
				return true
			}
		}
		return false
	case patOptional:
		inner := p.alts[0]
		if mt.matchNamed(p, inner, v, user, k) {
			return true
		}
		return mt.matchNamed(p, inner.inputs[0], v, user, k)
	case patOp:
		return mt.matchOp(p, v, user, k)
	}
	return false
}

// matchNamed matches a choice of a OneOf or Optional pattern outer, which
// may carry its own capture and conditions.
func (mt *matcher) matchNamed(outer, choice *Pattern, v *ir.Value, user *ir.Node, k func() bool) bool {
	if outer.name == "" && len(outer.conds) == 0 {
		return mt.match(choice, v, user, k)
	}
	return mt.match(choice, v, user, func() bool {
		mark := mt.mark()
		if mt.bind(outer.name, v, user) && mt.checkConds(outer, v, user) && k() {
			return true
		}
		mt.restore(mark)
		return false
	})
}

func (mt *matcher) matchOp(p *Pattern, v *ir.Value, user *ir.Node, k func() bool) bool {
	if v == nil {
		mt.fail(func() string { return fmt.Sprintf("want %s, got an omitted input", p.describe()) }, user)
		return false
	}
	n, out := v.Producer()
	if n == nil {
		mt.fail(func() string { return fmt.Sprintf("want %s, got %s", p.describe(), describeValue(v)) }, user)
		return false
	}
	dom := n.Domain
	if dom == "ai.onnx" {
		dom = ""
	}
	if n.Op != p.op || dom != p.domain {
		mt.fail(func() string { return fmt.Sprintf("want %s, got %s", p.describe(), describeValue(v)) }, user, n)
		return false
	}
	if out != p.out {
		mt.fail(func() string {
			return fmt.Sprintf("want output %d of %s %q, got output %d", p.out, n.Op, nodeLabel(n), out)
		}, n)
		return false
	}
	present := len(n.Inputs)
	for present > 0 && n.Inputs[present-1] == nil {
		present--
	}
	if present > len(p.inputs) && !p.extraInputs || present < countRequired(p.inputs) {
		mt.fail(func() string {
			return fmt.Sprintf("%s %q has %d inputs, the pattern wants %d", n.Op, nodeLabel(n), present, len(p.inputs))
		}, n)
		return false
	}
	mark := mt.mark()
	mt.addNode(n)
	if !mt.bind(p.name, v, n) || !mt.checkConds(p, v, n) {
		mt.restore(mark)
		return false
	}
	if mt.matchInputs(p, n, false, 0, k) {
		return true
	}
	if p.isCommutative() && len(p.inputs) == 2 && mt.matchInputs(p, n, true, 0, k) {
		return true
	}
	mt.restore(mark)
	return false
}

// countRequired is the number of leading pattern inputs that must be
// present on the node: all up to the last one that is not Absent.
func countRequired(inputs []*Pattern) int {
	n := len(inputs)
	for n > 0 && inputs[n-1].kind == patAbsent {
		n--
	}
	return n
}

func (mt *matcher) matchInputs(p *Pattern, n *ir.Node, swapped bool, i int, k func() bool) bool {
	if i == len(p.inputs) {
		return k()
	}
	j := i
	if swapped {
		j = 1 - i
	}
	var in *ir.Value
	if j < len(n.Inputs) {
		in = n.Inputs[j]
	}
	return mt.match(p.inputs[i], in, n, func() bool { return mt.matchInputs(p, n, swapped, i+1, k) })
}

// escapes reports the first matched intermediate value that is used
// outside the match or is a graph output. The root's outputs are exempt:
// the rewrite replaces the matched one, and a root kept alive by other
// outputs keeps its inputs alive with it.
func (m *Match) escapes() (val *ir.Value, user string, ok bool) {
	for _, n := range m.nodes {
		if n == m.Root {
			continue
		}
		for _, o := range n.Outputs {
			if o == nil {
				continue
			}
			if o.IsOutput() {
				return o, "a graph output", true
			}
			for _, u := range o.Uses() {
				if m.inMatch[u.Node] == 0 {
					return o, fmt.Sprintf("%s %q", u.Node.Op, nodeLabel(u.Node)), true
				}
			}
		}
	}
	return nil, "", false
}

// Helpers for common conditions.

// IsConst holds for constants: initializers that are not also graph
// inputs.
func IsConst() Cond {
	return Cond{"is a constant", func(_ *Match, v *ir.Value) bool { return isFixedConst(v) }}
}

// RankIs holds for tensors of known rank r.
func RankIs(r int) Cond {
	return Cond{fmt.Sprintf("has rank %d", r), func(_ *Match, v *ir.Value) bool { return v.Type.Rank() == r }}
}

// ElemIs holds for tensors of element type dt.
func ElemIs(dt ir.DataType) Cond {
	return Cond{"has element type " + dt.String(), func(_ *Match, v *ir.Value) bool {
		return v.Type.IsTensor() && v.Type.Elem == dt
	}}
}

// ScalarNear holds for a constant with one element (any rank) of a float or
// integer type whose value is within tol of want.
func ScalarNear(want, tol float64) Cond {
	return Cond{fmt.Sprintf("is a constant scalar near %g", want), func(_ *Match, v *ir.Value) bool {
		x, ok := constScalar(v)
		return ok && math.Abs(x-want) <= tol
	}}
}

// constScalar reads a one-element constant as a float64.
func constScalar(v *ir.Value) (float64, bool) {
	if !isFixedConst(v) || v.Const == nil || !v.Const.HasData() || v.Const.NumElements() != 1 {
		return 0, false
	}
	t := v.Const
	switch t.DType {
	case ir.Float:
		f, ok := t.Float32s()
		if !ok {
			return 0, false
		}
		return float64(f[0]), true
	default:
		xs, ok := t.AsInt64s()
		if !ok {
			return 0, false
		}
		return float64(xs[0]), true
	}
}

// AttrIntIs holds when the node's INT attribute name (def when absent)
// equals want.
func AttrIntIs(name string, def, want int64) Cond {
	return nodeCond(fmt.Sprintf("attribute %s is %d", name, want), func(n *ir.Node) bool { return n.AttrInt(name, def) == want })
}

// AttrStringIs holds when the node's STRING attribute (def when absent)
// equals want.
func AttrStringIs(name, def, want string) Cond {
	return nodeCond(fmt.Sprintf("attribute %s is %q", name, want), func(n *ir.Node) bool { return n.AttrString(name, def) == want })
}

// AttrIntsIs holds when the node's INTS attribute is present and equals
// want.
func AttrIntsIs(name string, want ...int64) Cond {
	return nodeCond(fmt.Sprintf("attribute %s is %v", name, want), func(n *ir.Node) bool {
		got, ok := n.AttrInts(name)
		return ok && slices.Equal(got, want)
	})
}

func nodeCond(desc string, f func(*ir.Node) bool) Cond {
	return Cond{desc, func(_ *Match, v *ir.Value) bool {
		n, _ := v.Producer()
		return n != nil && f(n)
	}}
}

// SameShapeAs holds when the value's shape is provably the same as that of
// the capture other (bound earlier in the walk).
func SameShapeAs(other string) Cond {
	return Cond{"has the same shape as " + other, func(m *Match, v *ir.Value) bool {
		o := m.Value(other)
		if o == nil || v.Type.Rank() < 0 || v.Type.Rank() != o.Type.Rank() {
			return false
		}
		for i, d := range v.Type.Shape {
			if !d.SameAs(o.Type.Shape[i]) {
				return false
			}
		}
		return true
	}}
}
