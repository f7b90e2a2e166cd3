package ir

import (
	"container/heap"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// OpsetID is one opset import: a domain ("" is ai.onnx) and its version.
type OpsetID struct {
	Domain  string
	Version int64
}

// Model is a whole ONNX model: header fields, the main graph, kept
// model-local functions, and parts tfc keeps without interpreting.
type Model struct {
	IRVersion       int64
	Opsets          []OpsetID
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Meta            []StringPair
	Graph           *Graph
	// Functions holds model-local functions that were not inlined (the
	// decoder inlines them unless asked to keep them).
	Functions []*Function
	// TrainingInfo and Configurations are the encoded TrainingInfoProto and
	// DeviceConfigurationProto messages, kept byte for byte and not
	// interpreted.
	TrainingInfo   [][]byte
	Configurations [][]byte

	closers []io.Closer
}

// OpsetVersion returns the imported version of a domain ("" and "ai.onnx"
// are the same domain), or 0 if the model does not import it.
func (m *Model) OpsetVersion(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// AddCloser registers a resource (a memory-mapped file) that backs tensor
// data and must stay open until the model is closed.
func (m *Model) AddCloser(c io.Closer) { m.closers = append(m.closers, c) }

// Close releases the files that back the model's tensors. Tensors must not
// be used after Close.
func (m *Model) Close() error {
	var first error
	for _, c := range m.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.closers = nil
	return first
}

// Function is a model-local ONNX function kept as a function (not
// inlined). Its body is a graph whose inputs and outputs are the formal
// parameters; their types are usually unknown.
type Function struct {
	Name     string
	Domain   string
	Overload string
	Body     *Graph
	// AttrNames lists attributes without defaults; AttrDefaults those with.
	AttrNames    []string
	AttrDefaults []*Attr
	Opsets       []OpsetID
	Doc          string
	Meta         []StringPair
	// ValueInfo carries the function's value_info types (IR 10), attached
	// to body values; nothing else needs it.
}

// Graph is an ordered list of nodes with inputs, outputs and constants. A
// nested graph (the body of If/Loop/Scan) has a Parent and may use values of
// its enclosing graphs directly.
type Graph struct {
	Name      string
	Doc       string
	Inputs    []*Value
	Outputs   []*Value
	Nodes     []*Node
	Constants []*Value // initializers, in file order
	Meta      []StringPair
	// Extras holds encoded GraphProto fields tfc keeps but does not
	// interpret (quantization annotations), by field number.
	Extras []RawField

	Parent     *Graph
	ParentNode *Node // the node whose attribute holds this graph

	nextValueID int
	nextNodeID  int
}

// RawField is one protobuf field kept as encoded bytes.
type RawField struct {
	Number int32
	Bytes  []byte
}

// Value is an SSA value: a graph input, a constant, or one output of one
// node. It knows its users.
type Value struct {
	ID   int
	Name string
	Type Type
	// Const is set for constants (initializers); SparseConst for sparse
	// initializers. A graph input may also carry a Const: its default.
	Const       *Tensor
	SparseConst *SparseTensor
	// HasInfo records that the model declared this value's type in
	// value_info (kept so that re-encoding writes it again).
	HasInfo bool
	Doc     string
	Meta    []StringPair

	graph    *Graph
	producer *Node
	outIndex int
	uses     []Use
	outputs  int // how many times it appears in its graph's (or a subgraph's) Outputs
}

// Use is one use of a value: input Index of Node.
type Use struct {
	Node  *Node
	Index int
}

// Node is one operation.
type Node struct {
	ID       int
	Name     string
	Domain   string // "" is ai.onnx
	Op       string
	Overload string
	Attrs    []*Attr
	// Inputs and Outputs may hold nil for omitted optional operands.
	Inputs  []*Value
	Outputs []*Value
	Doc     string
	Meta    []StringPair

	graph *Graph
}

// NewModel returns a model with an empty main graph.
func NewModel(irVersion int64, opsets ...OpsetID) *Model {
	return &Model{IRVersion: irVersion, Opsets: opsets, Graph: NewGraph("main")}
}

// NewGraph returns an empty top-level graph.
func NewGraph(name string) *Graph { return &Graph{Name: name} }

// NewSubgraph returns an empty graph nested in parent, to become an
// attribute of node owner (which may be nil until the node exists; set
// ParentNode then).
func NewSubgraph(name string, parent *Graph, owner *Node) *Graph {
	return &Graph{Name: name, Parent: parent, ParentNode: owner}
}

// Graph returns the graph a value belongs to.
func (v *Value) Graph() *Graph { return v.graph }

// Producer returns the node that produces v and the output index, or nil
// for graph inputs and constants.
func (v *Value) Producer() (*Node, int) { return v.producer, v.outIndex }

// IsConst reports whether v is a constant (dense or sparse).
func (v *Value) IsConst() bool { return v.Const != nil || v.SparseConst != nil }

// IsGraphInput reports whether v is an input of its graph.
func (v *Value) IsGraphInput() bool {
	return v.graph != nil && slices.Contains(v.graph.Inputs, v)
}

// Uses returns the value's uses by nodes (a copy, safe to range over while
// rewriting).
func (v *Value) Uses() []Use { return slices.Clone(v.uses) }

// NumUses counts uses by nodes plus appearances among graph outputs, so
// "is this used only here?" is a field read.
func (v *Value) NumUses() int { return len(v.uses) + v.outputs }

// IsOutput reports whether v appears among its graph's outputs (or a
// subgraph's outputs).
func (v *Value) IsOutput() bool { return v.outputs > 0 }

// String returns "%name".
func (v *Value) String() string {
	if v == nil {
		return "_"
	}
	return "%" + v.Name
}

// Graph returns the graph a node belongs to.
func (n *Node) Graph() *Graph { return n.graph }

// QualifiedOp returns "domain::Op", with an empty domain for ai.onnx.
func (n *Node) QualifiedOp() string { return n.Domain + "::" + n.Op }

// Attr returns the attribute with the given name, or nil.
func (n *Node) Attr(name string) *Attr {
	for _, a := range n.Attrs {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// AttrInt returns an INT attribute's value, or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil && a.Type == AttrInt {
		return a.I
	}
	return def
}

// AttrFloat returns a FLOAT attribute's value, or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil && a.Type == AttrFloat {
		return a.F
	}
	return def
}

// AttrString returns a STRING attribute's value, or def when absent.
func (n *Node) AttrString(name, def string) string {
	if a := n.Attr(name); a != nil && a.Type == AttrString {
		return string(a.S)
	}
	return def
}

// AttrInts returns an INTS attribute's value, or nil and false when absent.
func (n *Node) AttrInts(name string) ([]int64, bool) {
	if a := n.Attr(name); a != nil && a.Type == AttrInts {
		return a.Ints, true
	}
	return nil, false
}

// SetAttr replaces or adds an attribute.
func (n *Node) SetAttr(a *Attr) {
	for i, old := range n.Attrs {
		if old.Name == a.Name {
			n.Attrs[i] = a
			return
		}
	}
	n.Attrs = append(n.Attrs, a)
}

// Describe names a node for error messages: its name if it has one, else
// its op and the name of its first output.
func (n *Node) Describe() string {
	if n.Name != "" {
		return fmt.Sprintf("node %q (%s)", n.Name, n.Op)
	}
	for _, o := range n.Outputs {
		if o != nil {
			return fmt.Sprintf("%s node producing %q", n.Op, o.Name)
		}
	}
	return fmt.Sprintf("unnamed %s node", n.Op)
}

func (g *Graph) newValue(name string, t Type) *Value {
	v := &Value{ID: g.nextValueID, Name: name, Type: t, graph: g}
	g.nextValueID++
	return v
}

// AddInput appends a graph input.
func (g *Graph) AddInput(name string, t Type) *Value {
	v := g.newValue(name, t)
	g.Inputs = append(g.Inputs, v)
	return v
}

// AddConstant appends a constant (initializer) whose type is the tensor's.
func (g *Graph) AddConstant(name string, t *Tensor) *Value {
	v := g.newValue(name, t.Type())
	v.Const = t
	g.Constants = append(g.Constants, v)
	return v
}

// AddSparseConstant appends a sparse initializer.
func (g *Graph) AddSparseConstant(name string, s *SparseTensor) *Value {
	dt := Undefined
	if s.Values != nil {
		dt = s.Values.DType
	}
	t := TensorOfSizes(dt, s.Dims...)
	t.Kind = KindSparseTensor
	v := g.newValue(name, t)
	v.SparseConst = s
	g.Constants = append(g.Constants, v)
	return v
}

// AddOutput appends v to the graph's outputs.
func (g *Graph) AddOutput(v *Value) {
	g.Outputs = append(g.Outputs, v)
	v.outputs++
}

// SetOutput replaces output i.
func (g *Graph) SetOutput(i int, v *Value) {
	g.Outputs[i].outputs--
	g.Outputs[i] = v
	v.outputs++
}

// NodeSpec describes a node to create.
type NodeSpec struct {
	Name    string
	Domain  string
	Op      string
	Inputs  []*Value // nil entries are omitted optional inputs
	Attrs   []*Attr
	Outputs []string // output names; "" makes an omitted optional output
	Types   []Type   // optional output types, parallel to Outputs
}

// NewNode creates a node from spec and its output values, without placing
// it in the node list. Use Append or InsertBefore/InsertAfter to place it.
func (g *Graph) NewNode(spec NodeSpec) *Node {
	n := &Node{ID: g.nextNodeID, Name: spec.Name, Domain: spec.Domain, Op: spec.Op, Attrs: spec.Attrs, graph: g}
	g.nextNodeID++
	n.Inputs = make([]*Value, len(spec.Inputs))
	for i, in := range spec.Inputs {
		n.Inputs[i] = in
		if in != nil {
			in.uses = append(in.uses, Use{n, i})
		}
	}
	n.Outputs = make([]*Value, len(spec.Outputs))
	for i, name := range spec.Outputs {
		if name == "" {
			continue
		}
		var t Type
		if i < len(spec.Types) {
			t = spec.Types[i]
		}
		v := g.newValue(name, t)
		v.producer, v.outIndex = n, i
		n.Outputs[i] = v
	}
	return n
}

// Append creates a node from spec and appends it to the node list.
func (g *Graph) Append(spec NodeSpec) *Node {
	n := g.NewNode(spec)
	g.Nodes = append(g.Nodes, n)
	return n
}

// indexOf returns the position of n in the node list, or -1.
func (g *Graph) indexOf(n *Node) int { return slices.Index(g.Nodes, n) }

// InsertBefore places n (created by NewNode) just before ref.
func (g *Graph) InsertBefore(n, ref *Node) {
	i := g.indexOf(ref)
	if i < 0 {
		i = len(g.Nodes)
	}
	g.Nodes = slices.Insert(g.Nodes, i, n)
}

// InsertAfter places n (created by NewNode) just after ref.
func (g *Graph) InsertAfter(n, ref *Node) {
	i := g.indexOf(ref)
	if i < 0 {
		g.Nodes = append(g.Nodes, n)
		return
	}
	g.Nodes = slices.Insert(g.Nodes, i+1, n)
}

// SetInput points input i of n at v, keeping use lists right.
func (n *Node) SetInput(i int, v *Value) {
	if old := n.Inputs[i]; old != nil {
		old.removeUse(n, i)
	}
	n.Inputs[i] = v
	if v != nil {
		v.uses = append(v.uses, Use{n, i})
	}
}

// AddInput appends an input to n.
func (n *Node) AddInput(v *Value) {
	n.Inputs = append(n.Inputs, nil)
	n.SetInput(len(n.Inputs)-1, v)
}

func (v *Value) removeUse(n *Node, i int) {
	for k, u := range v.uses {
		if u.Node == n && u.Index == i {
			v.uses = slices.Delete(v.uses, k, k+1)
			return
		}
	}
}

// ReplaceAllUsesWith points every use of v (node inputs, in any graph, and
// graph outputs) at w.
func (v *Value) ReplaceAllUsesWith(w *Value) {
	if v == w {
		return
	}
	for _, u := range slices.Clone(v.uses) {
		u.Node.SetInput(u.Index, w)
	}
	if v.outputs == 0 || v.graph == nil {
		return
	}
	replaceIn := func(g *Graph) {
		for i, o := range g.Outputs {
			if o == v {
				g.SetOutput(i, w)
			}
		}
	}
	replaceIn(v.graph)
	// Subgraph outputs may name an outer value directly.
	v.graph.walkSubgraphs(replaceIn)
}

func (g *Graph) walkSubgraphs(f func(*Graph)) {
	for _, n := range g.Nodes {
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				f(sg)
				sg.walkSubgraphs(f)
			}
		}
	}
}

// Remove deletes n from the node list and drops its uses of its inputs.
// Its outputs must have no remaining uses; Remove returns an error naming
// the first one that does.
func (g *Graph) Remove(n *Node) error {
	for _, o := range n.Outputs {
		if o != nil && o.NumUses() > 0 {
			return fmt.Errorf("cannot remove %s: output %q still has %d uses", n.Describe(), o.Name, o.NumUses())
		}
	}
	for i, in := range n.Inputs {
		if in != nil {
			in.removeUse(n, i)
		}
	}
	// Drop uses held by nested graphs of n, which die with it.
	for _, a := range n.Attrs {
		for _, sg := range a.Subgraphs() {
			sg.dropAllUses()
		}
	}
	if i := g.indexOf(n); i >= 0 {
		g.Nodes = slices.Delete(g.Nodes, i, i+1)
	}
	return nil
}

func (g *Graph) dropAllUses() {
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in != nil {
				in.removeUse(n, i)
			}
		}
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				sg.dropAllUses()
			}
		}
	}
	for _, o := range g.Outputs {
		o.outputs--
	}
}

// RemoveConstant deletes an unused constant.
func (g *Graph) RemoveConstant(v *Value) error {
	if v.NumUses() > 0 {
		return fmt.Errorf("cannot remove constant %q: it has %d uses", v.Name, v.NumUses())
	}
	if i := slices.Index(g.Constants, v); i >= 0 {
		g.Constants = slices.Delete(g.Constants, i, i+1)
	}
	return nil
}

// NewValueName returns a name not used by any value of g or its enclosing
// graphs, derived from base.
func (g *Graph) NewValueName(base string) string {
	taken := map[string]bool{}
	for s := g; s != nil; s = s.Parent {
		s.ForEachValue(func(v *Value) { taken[v.Name] = true })
	}
	if !taken[base] {
		return base
	}
	for i := 1; ; i++ {
		name := base + "_" + strconv.Itoa(i)
		if !taken[name] {
			return name
		}
	}
}

// ForEachValue calls f for every value defined in g itself: inputs,
// constants (not already inputs) and node outputs, in that order.
func (g *Graph) ForEachValue(f func(*Value)) {
	for _, v := range g.Inputs {
		f(v)
	}
	for _, v := range g.Constants {
		if !slices.Contains(g.Inputs, v) {
			f(v)
		}
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				f(o)
			}
		}
	}
}

// Walk calls f for every node of g and, depth first, of its nested graphs.
func (g *Graph) Walk(f func(*Node)) {
	for _, n := range g.Nodes {
		f(n)
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				sg.Walk(f)
			}
		}
	}
}

// Renumber gives nodes and values dense IDs in their current order, so
// that printing is deterministic after rewrites.
func (g *Graph) Renumber() {
	g.nextValueID, g.nextNodeID = 0, 0
	g.ForEachValue(func(v *Value) { v.ID = g.nextValueID; g.nextValueID++ })
	for _, n := range g.Nodes {
		n.ID = g.nextNodeID
		g.nextNodeID++
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				sg.Renumber()
			}
		}
	}
}

// NumValues is an upper bound on value IDs in g (for dense ID-indexed
// slices).
func (g *Graph) NumValues() int { return g.nextValueID }

// NumNodeIDs is an upper bound on node IDs in g.
func (g *Graph) NumNodeIDs() int { return g.nextNodeID }

// TopoSort reorders g's nodes so that every node comes after the producers
// of its inputs (and of values its nested graphs use from g), keeping the
// existing order where it already holds. It returns an error naming a node
// on a cycle.
func (g *Graph) TopoSort() error {
	pos := make(map[*Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		pos[n] = i
	}
	// deps[i]: nodes of g that node i must follow.
	deps := make([][]int, len(g.Nodes))
	for i, n := range g.Nodes {
		addDep := func(v *Value) {
			if v == nil || v.producer == nil {
				return
			}
			if j, ok := pos[v.producer]; ok && j != i {
				deps[i] = append(deps[i], j)
			}
		}
		for _, in := range n.Inputs {
			addDep(in)
		}
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				sg.forEachOuterUse(g, addDep)
			}
		}
	}
	indeg := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	for i, ds := range deps {
		for _, j := range ds {
			indeg[i]++
			users[j] = append(users[j], i)
		}
	}
	// Kahn's algorithm taking the ready node with the smallest original
	// position first, so an already sorted graph keeps its order exactly.
	out := make([]*Node, 0, len(g.Nodes))
	done := make([]bool, len(g.Nodes))
	ready := &intHeap{}
	for i := range g.Nodes {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		done[i] = true
		out = append(out, g.Nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				heap.Push(ready, u)
			}
		}
	}
	if len(out) != len(g.Nodes) {
		for i, n := range g.Nodes {
			if !done[i] {
				return fmt.Errorf("graph %q has a cycle through %s", g.Name, n.Describe())
			}
		}
	}
	g.Nodes = out
	return nil
}

// forEachOuterUse calls f for each value of graph outer used by nodes in g
// or its nested graphs.
func (g *Graph) forEachOuterUse(outer *Graph, f func(*Value)) {
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != nil && in.graph == outer {
				f(in)
			}
		}
		for _, a := range n.Attrs {
			for _, sg := range a.Subgraphs() {
				sg.forEachOuterUse(outer, f)
			}
		}
	}
	for _, o := range g.Outputs {
		if o != nil && o.graph == outer {
			f(o)
		}
	}
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
