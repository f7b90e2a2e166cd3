package passes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// Rule is a pattern and a rewrite. Rewrite builds the replacement through
// rw (new nodes go just before the anchor) and returns the value that
// replaces the root value, or nil to decline (rw.Decline records why).
// Checks run on the whole match before Rewrite; a failing check counts as
// a pattern failure for --explain.
type Rule struct {
	Name    string
	Pattern *Pattern
	Checks  []Cond
	Rewrite func(rw *Rewriter, m *Match) *ir.Value
}

// RuleSet is a list of rules dispatched by the op of their root.
type RuleSet struct {
	rules []*Rule
	byOp  map[string][]*Rule
	// MaxSweeps caps the fixed-point iteration: a rule set still
	// rewriting after this many sweeps over the graph is an error.
	MaxSweeps int
}

// DefaultMaxSweeps is RuleSet.MaxSweeps unless set.
const DefaultMaxSweeps = 50

// NewRuleSet checks the rules (unique names, node-rooted patterns, well
// formed optional nodes) and indexes them by root op.
func NewRuleSet(rules ...*Rule) (*RuleSet, error) {
	rs := &RuleSet{byOp: map[string][]*Rule{}, MaxSweeps: DefaultMaxSweeps}
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Name == "" || seen[r.Name] {
			return nil, fmt.Errorf("rule names must be unique and not empty: %q", r.Name)
		}
		seen[r.Name] = true
		if r.Pattern == nil || r.Rewrite == nil {
			return nil, fmt.Errorf("rule %q needs a pattern and a rewrite", r.Name)
		}
		if err := checkPattern(r.Pattern); err != nil {
			return nil, fmt.Errorf("rule %q: %w", r.Name, err)
		}
		ops, err := r.Pattern.rootOps()
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", r.Name, err)
		}
		for _, op := range ops {
			if !slices.Contains(rs.byOp[op], r) {
				rs.byOp[op] = append(rs.byOp[op], r)
			}
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

// MustRuleSet is NewRuleSet for package-level rule tables, where a bad rule
// is a programming error found by any test.
func MustRuleSet(rules ...*Rule) *RuleSet {
	rs, err := NewRuleSet(rules...)
	if err != nil {
		panic(err)
	}
	return rs
}

func checkPattern(p *Pattern) error {
	switch p.kind {
	case patOptional:
		inner := p.alts[0]
		if inner.kind != patOp || len(inner.inputs) == 0 {
			return fmt.Errorf("Optional needs an Op pattern with inputs, got %s", inner.describe())
		}
	case patOneOf:
		if len(p.alts) == 0 {
			return fmt.Errorf("OneOf needs alternatives")
		}
	case patOp:
		if p.op == "" {
			return fmt.Errorf("Op pattern with an empty op")
		}
	}
	for _, q := range append(slices.Clone(p.inputs), p.alts...) {
		if q == nil {
			return fmt.Errorf("nil pattern inside %s", p.describe())
		}
		if err := checkPattern(q); err != nil {
			return err
		}
	}
	return nil
}

// Explanation says why a rule did not apply at an anchor node.
type Explanation struct {
	Pass   string   `json:"pass"`
	Rule   string   `json:"rule"`
	Anchor string   `json:"anchor"`
	Reason string   `json:"reason"`
	Nodes  []string `json:"nodes,omitempty"`
}

func (e Explanation) String() string {
	s := fmt.Sprintf("%s: rule %s at %s: %s", e.Pass, e.Rule, e.Anchor, e.Reason)
	if len(e.Nodes) > 0 {
		s += " [" + strings.Join(e.Nodes, ", ") + "]"
	}
	return s
}

// Explanations collects explanations across passes.
type Explanations struct {
	Items []Explanation
}

// Match tries rule r at node n (explaining failures when explain is set)
// and returns the match, or nil and the reason.
func (r *Rule) Match(n *ir.Node, explain bool) (*Match, *MatchFailure) {
	var best *MatchFailure
	for _, o := range rootChoices(r.Pattern, n) {
		mt := newMatcher(n, explain)
		ok := mt.match(o, n.Outputs[o.out], nil, func() bool {
			for _, c := range r.Checks {
				if !c.Check(mt.m, n.Outputs[o.out]) {
					mt.fail(func() string { return "the match fails the check: " + c.Desc }, n)
					return false
				}
			}
			if v, user, bad := mt.m.escapes(); bad {
				mt.fail(func() string {
					return fmt.Sprintf("intermediate value %s is also used by %s outside the match", describeValue(v), user)
				}, producerOf(v))
				return false
			}
			return true
		})
		if ok {
			mt.m.rootOut = o.out
			return mt.m, nil
		}
		// Each root alternative has its own matcher; the deepest failure
		// over all of them explains best.
		if mt.best != nil && (best == nil || mt.best.depth > best.depth) {
			best = mt.best
		}
	}
	if best != nil {
		return nil, best
	}
	return nil, &MatchFailure{Reason: "no alternative of the root matches " + nodeLabel(n)}
}

func producerOf(v *ir.Value) *ir.Node {
	n, _ := v.Producer()
	return n
}

// rootChoices returns the Op patterns among the root's alternatives that
// name n's op and an output n has.
func rootChoices(p *Pattern, n *ir.Node) []*Pattern {
	var out []*Pattern
	var walk func(*Pattern)
	walk = func(q *Pattern) {
		switch q.kind {
		case patOp:
			if opKey(q.domain, q.op) == opKey(n.Domain, n.Op) && q.out < len(n.Outputs) && n.Outputs[q.out] != nil {
				out = append(out, q)
			}
		case patOneOf:
			for _, a := range q.alts {
				walk(a)
			}
		}
	}
	walk(p)
	if p.kind == patOneOf && (p.name != "" || len(p.conds) > 0) {
		// A named OneOf root: match through it so its capture binds.
		for i := range out {
			out[i] = OneOf(out[i]).Bind(p.name).If(p.conds...)
			out[i].out = out[i].alts[0].out
		}
	}
	return out
}

// Rewriter creates the nodes and constants of a replacement, just before
// the anchor node, and names them uniquely.
type Rewriter struct {
	g       *ir.Graph
	anchor  *ir.Node
	rule    string
	names   *namer
	nodes   []*ir.Node
	consts  []*ir.Value
	decline string
}

// Graph returns the graph being rewritten.
func (rw *Rewriter) Graph() *ir.Graph { return rw.g }

// Op creates a one-output node; args are *ir.Value inputs (nil for an
// omitted one) and *ir.Attr attributes, as in ir.Builder. "dom::Op" sets
// the domain.
func (rw *Rewriter) Op(op string, args ...any) *ir.Value { return rw.OpN(op, 1, args...)[0] }

// OpN creates a node with n outputs.
func (rw *Rewriter) OpN(op string, n int, args ...any) []*ir.Value {
	spec := ir.NodeSpec{Op: op}
	if dom, name, ok := strings.Cut(op, "::"); ok {
		spec.Domain, spec.Op = dom, name
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
			// A rule passing something else is a bug in the rule.
			panic(fmt.Sprintf("rule %q: Rewriter.Op argument of type %T is neither *ir.Value nor *ir.Attr", rw.rule, a))
		}
	}
	base := nodeLabel(rw.anchor) + "/" + spec.Op
	spec.Name = rw.names.freshNode(base)
	for i := 0; i < n; i++ {
		spec.Outputs = append(spec.Outputs, rw.names.fresh(strings.ToLower(spec.Op)))
	}
	node := rw.g.NewNode(spec)
	rw.g.InsertBefore(node, rw.anchor)
	rw.nodes = append(rw.nodes, node)
	return node.Outputs
}

// Const adds a constant named after base.
func (rw *Rewriter) Const(base string, t *ir.Tensor) *ir.Value {
	v := rw.g.AddConstant(rw.names.fresh(base), t)
	rw.consts = append(rw.consts, v)
	return v
}

// Decline records why the rewrite does not apply (for --explain) and
// returns nil, for `return rw.Decline(...)`.
func (rw *Rewriter) Decline(format string, args ...any) *ir.Value {
	rw.decline = fmt.Sprintf(format, args...)
	return nil
}

// undo removes what a declined rewrite created.
func (rw *Rewriter) undo() {
	for i := len(rw.nodes) - 1; i >= 0; i-- {
		n := rw.nodes[i]
		for _, o := range n.Outputs {
			if o != nil {
				// Nodes created later have been removed already;
				// nothing else can use these outputs.
				for _, u := range o.Uses() {
					u.Node.SetInput(u.Index, nil)
				}
			}
		}
		_ = rw.g.Remove(n)
	}
	for _, c := range rw.consts {
		if c.NumUses() == 0 {
			_ = rw.g.RemoveConstant(c)
		}
	}
}

// namer hands out value and node names unused anywhere in a model's graph
// tree, so new names never shadow one in a nested graph.
type namer struct {
	values, nodes map[string]bool
}

func newNamer(root *ir.Graph) *namer {
	nm := &namer{values: map[string]bool{}, nodes: map[string]bool{}}
	var visit func(g *ir.Graph)
	visit = func(g *ir.Graph) {
		g.ForEachValue(func(v *ir.Value) { nm.values[v.Name] = true })
		for _, n := range g.Nodes {
			nm.nodes[n.Name] = true
			for _, a := range n.Attrs {
				for _, sg := range a.Subgraphs() {
					visit(sg)
				}
			}
		}
	}
	visit(root)
	return nm
}

func freshIn(taken map[string]bool, base string) string {
	name := base
	for i := 1; taken[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	taken[name] = true
	return name
}

func (nm *namer) fresh(base string) string     { return freshIn(nm.values, base) }
func (nm *namer) freshNode(base string) string { return freshIn(nm.nodes, base) }

// replaceValue points every use of old (graph outputs included) at repl.
// When old is a graph output, repl takes old's name, because output names
// are the model's interface; that needs repl to be a value of the same
// graph that is neither a graph input nor another output. It returns a
// reason when the replacement is not possible.
func replaceValue(old, repl *ir.Value, names *namer) (ok bool, why string) {
	if ok, why := canReplace(old, repl); !ok {
		return false, why
	}
	if old.IsOutput() {
		oldName := old.Name
		old.Name = names.fresh(oldName + "_replaced")
		repl.Name = oldName
	}
	if repl.Type.Kind == ir.KindUnknown {
		repl.Type = old.Type.Clone()
	}
	old.ReplaceAllUsesWith(repl)
	return true, ""
}

// canReplace says whether replaceValue(old, repl) can work, and if not,
// why.
func canReplace(old, repl *ir.Value) (bool, string) {
	if old == repl {
		return false, "the replacement is the value itself"
	}
	if old.IsOutput() && (repl.Graph() != old.Graph() || repl.IsOutput() || repl.IsGraphInput()) {
		return false, fmt.Sprintf("%q is a graph output and its replacement %q cannot take its name", old.Name, repl.Name)
	}
	return true, ""
}

// removeDead removes the given nodes that no longer have used outputs,
// consumers first, and reports how many it removed.
func removeDead(g *ir.Graph, candidates []*ir.Node) int {
	pos := make(map[*ir.Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		pos[n] = i
	}
	sorted := slices.Clone(candidates)
	slices.SortFunc(sorted, func(a, b *ir.Node) int { return pos[b] - pos[a] })
	removed := 0
	for _, n := range sorted {
		if _, in := pos[n]; !in || !allOutputsUnused(n) {
			continue
		}
		if g.Remove(n) == nil {
			delete(pos, n)
			removed++
		}
	}
	return removed
}

func allOutputsUnused(n *ir.Node) bool {
	for _, o := range n.Outputs {
		if o != nil && o.NumUses() > 0 {
			return false
		}
	}
	return true
}

// applyState is the state of one RuleSet.Apply call.
type applyState struct {
	rs       *RuleSet
	ctx      *Context
	names    *namer
	stats    *Stats
	explains map[explainKey]Explanation
}

type explainKey struct {
	rule *Rule
	node *ir.Node
}

// Apply rewrites g and its nested graphs with the rules to a fixed point:
// sweeps over the nodes, trying the rules for each node's op in order,
// until a sweep changes nothing. It fails when MaxSweeps sweeps still
// change the graph, or when a sweep returns the graph to a state seen
// before (a rewrite cycle). Applied rewrites are counted in stats by rule
// name. With ctx.Explain set, each rule whose root op matched a node that
// is still there at the end but whose pattern failed is explained.
func (rs *RuleSet) Apply(ctx *Context, g *ir.Graph, stats *Stats) error {
	if ctx == nil {
		ctx = &Context{}
	}
	st := &applyState{rs: rs, ctx: ctx, names: newNamer(g), stats: stats, explains: map[explainKey]Explanation{}}
	if err := st.applyGraph(g); err != nil {
		return err
	}
	if ctx.Explain != nil {
		live := map[*ir.Node]bool{}
		g.Walk(func(n *ir.Node) { live[n] = true })
		var items []Explanation
		for k, e := range st.explains {
			if live[k.node] {
				items = append(items, e)
			}
		}
		slices.SortFunc(items, func(a, b Explanation) int {
			return strings.Compare(a.Anchor+"\x00"+a.Rule, b.Anchor+"\x00"+b.Rule)
		})
		ctx.Explain.Items = append(ctx.Explain.Items, items...)
	}
	return nil
}

func (st *applyState) applyGraph(g *ir.Graph) error {
	maxSweeps := st.rs.MaxSweeps
	if maxSweeps <= 0 {
		maxSweeps = DefaultMaxSweeps
	}
	seen := map[string]bool{Fingerprint(g): true}
	for sweep := 0; ; sweep++ {
		if err := st.ctx.context().Err(); err != nil {
			return err
		}
		changed, err := st.sweep(g)
		if err != nil {
			return err
		}
		if !changed {
			break
		}
		if sweep+1 >= maxSweeps {
			return fmt.Errorf("graph %q: rewrites did not reach a fixed point after %d sweeps", g.Name, maxSweeps)
		}
		fp := Fingerprint(g)
		if seen[fp] {
			return fmt.Errorf("graph %q: rewrites cycle: sweep %d returned the graph to an earlier state", g.Name, sweep+1)
		}
		seen[fp] = true
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				if err := st.applyGraph(sg); err != nil {
					return fmt.Errorf("in %s: %w", n.Describe(), err)
				}
			}
		}
	}
	return nil
}

// sweep tries the rules once at every node present when it starts.
func (st *applyState) sweep(g *ir.Graph) (bool, error) {
	live := make(map[*ir.Node]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		live[n] = true
	}
	changed := false
	for _, n := range slices.Clone(g.Nodes) {
		if !live[n] {
			continue
		}
		for _, r := range st.rs.byOp[opKey(n.Domain, n.Op)] {
			removed, applied := st.try(g, r, n)
			for _, d := range removed {
				live[d] = false
			}
			if applied {
				changed = true
				break
			}
		}
	}
	return changed, nil
}

// try applies rule r at node n and returns the nodes it removed.
func (st *applyState) try(g *ir.Graph, r *Rule, n *ir.Node) (removed []*ir.Node, applied bool) {
	explain := st.ctx.Explain != nil
	m, f := r.Match(n, explain)
	key := explainKey{r, n}
	if m == nil {
		if explain && f != nil {
			st.explains[key] = Explanation{Pass: st.ctx.pass, Rule: r.Name, Anchor: nodeLabel(n), Reason: f.Reason, Nodes: f.Nodes}
		}
		return nil, false
	}
	rw := &Rewriter{g: g, anchor: n, rule: r.Name, names: st.names}
	root := m.RootValue()
	repl := r.Rewrite(rw, m)
	why := rw.decline
	if repl != nil {
		ok, reason := replaceValue(root, repl, st.names)
		if !ok {
			repl, why = nil, reason
		}
	}
	if repl == nil {
		rw.undo()
		if explain {
			if why == "" {
				why = "the rewrite declined"
			}
			st.explains[key] = Explanation{Pass: st.ctx.pass, Rule: r.Name, Anchor: nodeLabel(n), Reason: why, Nodes: labels(m.nodes)}
		}
		return nil, false
	}
	delete(st.explains, key)
	pos := map[*ir.Node]bool{}
	before := slices.Clone(g.Nodes)
	removeDead(g, m.nodes)
	for _, x := range g.Nodes {
		pos[x] = true
	}
	for _, x := range before {
		if !pos[x] {
			removed = append(removed, x)
		}
	}
	st.stats.Count(r.Name, 1)
	return removed, true
}

func labels(nodes []*ir.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = nodeLabel(n)
	}
	return out
}

// Fingerprint is a digest of a graph's structure that does not depend on
// value or node names: each value is identified by where it comes from
// (its producer's position and output index, an input's position, or a
// constant's type and, when small, data). Equal fingerprints mean equal
// graphs up to renaming. The rewrite engine uses it to detect cycles.
func Fingerprint(g *ir.Graph) string {
	h := sha256.New()
	ids := map[*ir.Value]string{}
	for i, v := range g.Inputs {
		ids[v] = "in" + strconv.Itoa(i)
	}
	for _, c := range g.Constants {
		if _, ok := ids[c]; !ok {
			ids[c] = "c:" + constKey(c)
		}
	}
	id := func(v *ir.Value) string {
		if v == nil {
			return "_"
		}
		if s, ok := ids[v]; ok {
			return s
		}
		return "outer:" + v.Name
	}
	for i, n := range g.Nodes {
		fmt.Fprintf(h, "%s::%s|%s|", n.Domain, n.Op, attrsKey(n.Attrs))
		for _, in := range n.Inputs {
			h.Write([]byte(id(in) + ","))
		}
		h.Write([]byte{'\n'})
		for j, o := range n.Outputs {
			if o != nil {
				ids[o] = strconv.Itoa(i) + "." + strconv.Itoa(j)
			}
		}
	}
	for _, o := range g.Outputs {
		h.Write([]byte("out " + id(o) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// smallConstElems bounds the constants whose data keys hash and compare:
// hashing every weight of a large model on every sweep would cost more
// than the rewrites.
const smallConstElems = 4096

// constKey identifies a constant by type and, when small, data; large
// constants by name.
func constKey(v *ir.Value) string {
	t := v.Const
	if t == nil {
		return "sparse:" + v.Name
	}
	if t.NumElements() <= smallConstElems && t.HasData() {
		return tensorKey(t)
	}
	return fmt.Sprintf("%v%v:%s", t.DType, t.Dims, v.Name)
}

// attrsKey prints attributes canonically (sorted by name) for CSE and
// fingerprints. Graph attributes print by identity: nodes holding them are
// never equal.
func attrsKey(attrs []*ir.Attr) string {
	sorted := slices.Clone(attrs)
	slices.SortFunc(sorted, func(a, b *ir.Attr) int { return strings.Compare(a.Name, b.Name) })
	var b strings.Builder
	for _, a := range sorted {
		fmt.Fprintf(&b, "%s:%d=", a.Name, a.Type)
		switch a.Type {
		case ir.AttrFloat:
			fmt.Fprintf(&b, "%x", math.Float32bits(a.F))
		case ir.AttrInt:
			b.WriteString(strconv.FormatInt(a.I, 10))
		case ir.AttrString:
			b.WriteString(strconv.Quote(string(a.S)))
		case ir.AttrFloats:
			for _, f := range a.Floats {
				fmt.Fprintf(&b, "%x,", math.Float32bits(f))
			}
		case ir.AttrInts:
			for _, i := range a.Ints {
				b.WriteString(strconv.FormatInt(i, 10) + ",")
			}
		case ir.AttrStrings:
			for _, s := range a.Strings {
				b.WriteString(strconv.Quote(string(s)) + ",")
			}
		case ir.AttrTensor:
			if a.T != nil {
				b.WriteString(tensorKey(a.T))
			}
		case ir.AttrTensors:
			for _, t := range a.Tensors {
				b.WriteString(tensorKey(t) + ",")
			}
		case ir.AttrTypeProto:
			if a.TypeP != nil {
				b.WriteString(a.TypeP.String())
			}
		default:
			fmt.Fprintf(&b, "%p", a)
		}
		if a.RefAttrName != "" {
			b.WriteString("@" + a.RefAttrName)
		}
		b.WriteByte(';')
	}
	return b.String()
}

// tensorKey identifies a tensor by element type, dimensions and data.
// Tensor.Hash alone is not enough: it hashes dims and data without
// lengths, so i64[0] (no data) and the scalar i64[] 0 hash alike.
func tensorKey(t *ir.Tensor) string {
	return fmt.Sprintf("%v%v:%s", t.DType, t.Dims, t.Hash())
}
