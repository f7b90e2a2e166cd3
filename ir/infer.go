package ir

import (
	"errors"
	"fmt"
)

// maxSymElems bounds the shape tensors whose contents inference tracks:
// shape tensors are short, and tracking big constants costs memory for
// nothing.
const maxSymElems = 64

// InferStats counts what InferShapes did.
type InferStats struct {
	Nodes       int // nodes visited, nested graphs included
	WithRule    int // nodes whose op has a shape rule
	UnknownOps  int // nodes whose op the table does not know
	Outputs     int // node outputs visited
	FullyKnown  int // outputs whose element type and every dimension are known or symbolic
	RankKnown   int // outputs with at least a known rank
	ShapeTensor int // outputs whose symbolic contents are known
}

// InferShapes fills Value.Type for every node output of the model's main
// graph and its nested graphs (outer-scope values are visible inside), by
// running each op's rule in node order. Inferred types are merged with the
// declared ones: the more specific information wins and a known dimension
// is never replaced by an unknown one. A provable contradiction (between
// inputs, or between an inferred and a declared type) is an error naming
// the node and the value.
func InferShapes(m *Model) (InferStats, error) {
	if m.Graph == nil {
		return InferStats{}, errors.New("model has no graph")
	}
	return InferGraph(m.Graph, m.Opsets)
}

// InferGraph runs shape inference on one graph and its nested graphs with
// the given opset imports.
func InferGraph(g *Graph, opsets []OpsetID) (InferStats, error) {
	inf := &inferrer{opsets: opsetMap(opsets), sym: map[*Value][]SymInt{}}
	err := inf.graph(g)
	return inf.stats, err
}

type inferrer struct {
	opsets map[string]int64
	sym    map[*Value][]SymInt
	stats  InferStats
}

func (inf *inferrer) graph(g *Graph) error {
	for _, n := range g.Nodes {
		if err := inf.node(n); err != nil {
			return fmt.Errorf("graph %q: %w", g.Name, err)
		}
	}
	return nil
}

func (inf *inferrer) node(n *Node) error {
	inf.stats.Nodes++
	s := LookupOp(n.Domain, n.Op)
	if s == nil {
		inf.stats.UnknownOps++
	}
	if err := inf.subgraphs(n); err != nil {
		return err
	}
	var res InferResult
	if s != nil && s.Infer != nil {
		inf.stats.WithRule++
		ctx := newInferContext(n, opsetFor(inf.opsets, n.Domain), inf.sym)
		var err error
		res, err = runRule(s, ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Describe(), err)
		}
	}
	for i, o := range n.Outputs {
		if o == nil {
			continue
		}
		inf.stats.Outputs++
		if i < len(res.Types) {
			merged, err := MergeTypes(o.Type, res.Types[i])
			if err != nil {
				return fmt.Errorf("%s: output %q: %w", n.Describe(), o.Name, err)
			}
			o.Type = merged
		}
		if i < len(res.Sym) && res.Sym[i] != nil && len(res.Sym[i]) <= maxSymElems {
			inf.sym[o] = res.Sym[i]
			inf.stats.ShapeTensor++
		} else if c := constOf(o); c != nil {
			// Constant-like outputs get their contents from the data.
			if sv := symOfTensor(c); sv != nil {
				inf.sym[o] = sv
				inf.stats.ShapeTensor++
			}
		}
		if o.Type.Rank() >= 0 {
			inf.stats.RankKnown++
			full := o.Type.Elem != Undefined
			for _, d := range o.Type.Shape {
				if !d.IsKnown() && !d.IsSym() {
					full = false
				}
			}
			if full {
				inf.stats.FullyKnown++
			}
		}
	}
	return nil
}

// subgraphs infers the nested graphs of n first, so that the node's rule
// can read their output types. Loop and Scan bodies get their input types
// from the node's inputs where the body leaves them undeclared.
func (inf *inferrer) subgraphs(n *Node) error {
	for _, a := range n.Attrs {
		for _, sg := range a.Subgraphs() {
			if n.Domain == "" {
				switch n.Op {
				case "Loop":
					seedLoopBody(n, sg)
				case "Scan":
					seedScanBody(n, sg, opsetFor(inf.opsets, ""))
				}
			}
			if err := inf.graph(sg); err != nil {
				return fmt.Errorf("%s: attribute %q: %w", n.Describe(), a.Name, err)
			}
		}
	}
	return nil
}

// MergeTypes combines a declared type with an inferred one, keeping the
// more specific information of each part: a known element type over an
// undefined one, a known rank over an unknown one, and per dimension a
// known size over a symbol over an unknown (a declared symbol is kept over
// a different inferred symbol). It returns an error when they provably
// disagree.
func MergeTypes(declared, inferred Type) (Type, error) {
	if declared.Conflicts(inferred) {
		return declared, fmt.Errorf("declared type %v contradicts inferred type %v", declared, inferred)
	}
	if inferred.Kind == KindUnknown {
		return declared, nil
	}
	if declared.Kind == KindUnknown {
		return inferred.Clone(), nil
	}
	out := declared.Clone()
	if out.Elem == Undefined {
		out.Elem = inferred.Elem
	}
	switch {
	case !out.HasShape && inferred.HasShape:
		out.HasShape = true
		out.Shape = append([]Dim(nil), inferred.Shape...)
	case out.HasShape && inferred.HasShape:
		for i, d := range out.Shape {
			in := inferred.Shape[i]
			switch {
			case d.IsKnown():
			case in.IsKnown():
				out.Shape[i] = Dim{Size: in.Size, Denotation: d.Denotation}
			case d.IsSym():
			case in.IsSym():
				out.Shape[i] = Dim{Size: UnknownSize, Sym: in.Sym, Denotation: d.Denotation}
			}
		}
	}
	if out.Inner == nil && inferred.Inner != nil {
		in := inferred.Inner.Clone()
		out.Inner = &in
	} else if out.Inner != nil && inferred.Inner != nil {
		in, err := MergeTypes(*out.Inner, *inferred.Inner)
		if err != nil {
			return declared, err
		}
		out.Inner = &in
	}
	return out, nil
}

// newInferContext gathers a node's input types, constant data and symbolic
// contents. sym may be nil (Verify), in which case only constants give
// contents.
func newInferContext(n *Node, opset int64, sym map[*Value][]SymInt) *InferContext {
	c := &InferContext{
		Node:    n,
		Opset:   opset,
		In:      make([]Type, len(n.Inputs)),
		InConst: make([]*Tensor, len(n.Inputs)),
		InSym:   make([][]SymInt, len(n.Inputs)),
	}
	for i, v := range n.Inputs {
		if v == nil {
			continue
		}
		c.In[i] = v.Type
		c.InConst[i] = constOf(v)
		if s, ok := sym[v]; ok {
			c.InSym[i] = s
		} else if c.InConst[i] != nil {
			c.InSym[i] = symOfTensor(c.InConst[i])
		}
	}
	return c
}

// constOf returns the data of a constant value, or of the output of a
// Constant node holding a dense tensor; nil otherwise. A graph input with a
// default (an initializer that is also an input) is not constant: callers
// may override it.
func constOf(v *Value) *Tensor {
	if v.Const != nil && !v.IsGraphInput() && v.Const.HasData() {
		return v.Const
	}
	if p, _ := v.Producer(); p != nil && p.Op == "Constant" && (p.Domain == "" || p.Domain == "ai.onnx") {
		if a := p.Attr("value"); a != nil && a.Type == AttrTensor && a.T != nil && a.T.HasData() {
			return a.T
		}
	}
	return nil
}

// symOfTensor returns the contents of a small 0-D/1-D integer tensor.
func symOfTensor(t *Tensor) []SymInt {
	if len(t.Dims) > 1 || !t.DType.IsInteger() && t.DType != Bool {
		return nil
	}
	if n := t.NumElements(); n < 0 || n > maxSymElems {
		return nil
	}
	vals, ok := t.AsInt64s()
	if !ok {
		return nil
	}
	out := make([]SymInt, len(vals))
	for i, v := range vals {
		out[i] = KnownInt(v)
	}
	return out
}

// Helpers for rules.

// Has reports whether input i is present.
func (c *InferContext) Has(i int) bool { return i < len(c.Node.Inputs) && c.Node.Inputs[i] != nil }

// Type returns input i's type, or the unknown type when it is absent.
func (c *InferContext) Type(i int) Type {
	if i < len(c.In) {
		return c.In[i]
	}
	return Type{}
}

// Rank returns input i's rank, or -1.
func (c *InferContext) Rank(i int) int { return c.Type(i).Rank() }

// Elem returns input i's element type (Undefined when unknown).
func (c *InferContext) Elem(i int) DataType {
	t := c.Type(i)
	if t.Kind != KindTensor {
		return Undefined
	}
	return t.Elem
}

// Sym returns the symbolic contents of input i, or nil.
func (c *InferContext) Sym(i int) []SymInt {
	if i < len(c.InSym) {
		return c.InSym[i]
	}
	return nil
}

// Ints returns the contents of input i when every element is a known
// number.
func (c *InferContext) Ints(i int) ([]int64, bool) {
	if i < len(c.InConst) && c.InConst[i] != nil {
		if v, ok := c.InConst[i].AsInt64s(); ok {
			return v, true
		}
	}
	s := c.Sym(i)
	if s == nil {
		return nil, false
	}
	out := make([]int64, len(s))
	for k, e := range s {
		if !e.Known {
			return nil, false
		}
		out[k] = e.Val
	}
	return out, true
}

// Floats returns the contents of a constant float input (float32 or
// float64), converted to float64.
func (c *InferContext) Floats(i int) ([]float64, bool) {
	if i >= len(c.InConst) || c.InConst[i] == nil {
		return nil, false
	}
	t := c.InConst[i]
	switch t.DType {
	case Float:
		v, ok := t.Float32s()
		if !ok {
			return nil, false
		}
		out := make([]float64, len(v))
		for k, x := range v {
			out[k] = float64(x)
		}
		return out, true
	case Double:
		b := t.Bytes()
		if len(b)%8 != 0 {
			return nil, false
		}
		out := make([]float64, len(b)/8)
		for k := range out {
			out[k] = float64FromBytes(b[8*k:])
		}
		return out, true
	}
	return nil, false
}

// AttrInt, AttrInts, AttrFloat and AttrString read the node's attributes.
func (c *InferContext) AttrInt(name string, def int64) int64 { return c.Node.AttrInt(name, def) }

// AttrInts returns an INTS attribute.
func (c *InferContext) AttrInts(name string) ([]int64, bool) { return c.Node.AttrInts(name) }

// AttrString returns a STRING attribute.
func (c *InferContext) AttrString(name, def string) string { return c.Node.AttrString(name, def) }

// AtLeast reports whether the node's opset is at least v (an unknown opset
// counts as the newest).
func (c *InferContext) AtLeast(v int64) bool { return c.Opset == 0 || c.Opset >= v }

// NumOutputs is the node's output count.
func (c *InferContext) NumOutputs() int { return len(c.Node.Outputs) }
