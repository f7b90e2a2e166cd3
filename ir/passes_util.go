package ir

import "slices"

// CloneStructure returns a copy of m whose graphs, nodes, values and
// attributes are new objects, while tensor data is shared (tensors are
// read-only views). It costs time in proportion to the number of nodes,
// not to the size of the weights, so the pass pipeline snapshots its input
// with it and prints the snapshot only when a pass fails. The copy does
// not own m's memory-mapped files: it is valid while m is open.
//
// It copies the structure as it is, also when it does not verify
// (a value used before it is produced, or produced nowhere in the model:
// such a value is copied as a free-standing value without a graph).
func (m *Model) CloneStructure() *Model {
	c := *m
	c.closers = nil
	c.Opsets = slices.Clone(m.Opsets)
	c.Meta = slices.Clone(m.Meta)
	c.TrainingInfo = slices.Clone(m.TrainingInfo)
	c.Configurations = slices.Clone(m.Configurations)
	cl := &cloner{values: map[*Value]*Value{}, nodes: map[*Node]*Node{}}
	if m.Graph != nil {
		c.Graph = cl.shell(m.Graph, nil, nil)
	}
	c.Functions = make([]*Function, len(m.Functions))
	for i, f := range m.Functions {
		fc := *f
		fc.AttrNames = slices.Clone(f.AttrNames)
		fc.AttrDefaults = make([]*Attr, len(f.AttrDefaults))
		for j, a := range f.AttrDefaults {
			fc.AttrDefaults[j] = cl.attr(a, nil, nil)
		}
		fc.Opsets = slices.Clone(f.Opsets)
		fc.Meta = slices.Clone(f.Meta)
		if f.Body != nil {
			fc.Body = cl.shell(f.Body, nil, nil)
		}
		c.Functions[i] = &fc
	}
	cl.wire()
	if m.Functions == nil {
		c.Functions = nil
	}
	return &c
}

type cloner struct {
	values map[*Value]*Value
	nodes  map[*Node]*Node
	graphs [][2]*Graph // (original, copy), for wiring
}

// value copies v into graph g (nil for a value of no graph), once.
func (cl *cloner) value(v *Value, g *Graph) *Value {
	if v == nil {
		return nil
	}
	if w, ok := cl.values[v]; ok {
		return w
	}
	w := &Value{ID: v.ID, Name: v.Name, Type: v.Type.Clone(), Const: v.Const, SparseConst: v.SparseConst,
		HasInfo: v.HasInfo, Doc: v.Doc, Meta: slices.Clone(v.Meta), graph: g, outIndex: v.outIndex}
	cl.values[v] = w
	return w
}

// shell copies g's values, nodes (without inputs) and nested graphs.
func (cl *cloner) shell(g *Graph, parent *Graph, owner *Node) *Graph {
	c := &Graph{Name: g.Name, Doc: g.Doc, Meta: slices.Clone(g.Meta), Extras: slices.Clone(g.Extras),
		Parent: parent, ParentNode: owner, nextValueID: g.nextValueID, nextNodeID: g.nextNodeID}
	cl.graphs = append(cl.graphs, [2]*Graph{g, c})
	for _, v := range g.Inputs {
		c.Inputs = append(c.Inputs, cl.value(v, c))
	}
	for _, v := range g.Constants {
		c.Constants = append(c.Constants, cl.value(v, c))
	}
	for _, n := range g.Nodes {
		nc := &Node{ID: n.ID, Name: n.Name, Domain: n.Domain, Op: n.Op, Overload: n.Overload,
			Doc: n.Doc, Meta: slices.Clone(n.Meta), graph: c}
		cl.nodes[n] = nc
		nc.Outputs = make([]*Value, len(n.Outputs))
		for i, o := range n.Outputs {
			if o != nil {
				w := cl.value(o, c)
				w.producer = nc
				nc.Outputs[i] = w
			}
		}
		nc.Attrs = make([]*Attr, len(n.Attrs))
		for i, a := range n.Attrs {
			nc.Attrs[i] = cl.attr(a, c, nc)
		}
		if n.Attrs == nil {
			nc.Attrs = nil
		}
		c.Nodes = append(c.Nodes, nc)
	}
	return c
}

func (cl *cloner) attr(a *Attr, g *Graph, owner *Node) *Attr {
	c := *a
	c.Floats = slices.Clone(a.Floats)
	c.Ints = slices.Clone(a.Ints)
	c.Strings = slices.Clone(a.Strings)
	c.Tensors = slices.Clone(a.Tensors)
	c.Sparses = slices.Clone(a.Sparses)
	c.TypePs = slices.Clone(a.TypePs)
	if a.G != nil {
		c.G = cl.shell(a.G, g, owner)
	}
	if a.Graphs != nil {
		c.Graphs = make([]*Graph, len(a.Graphs))
		for i, sg := range a.Graphs {
			c.Graphs[i] = cl.shell(sg, g, owner)
		}
	}
	return &c
}

// wire fills node inputs, use lists and graph outputs, once every value
// of the model has its copy.
func (cl *cloner) wire() {
	for _, gc := range cl.graphs {
		g, c := gc[0], gc[1]
		for i, n := range g.Nodes {
			nc := c.Nodes[i]
			nc.Inputs = make([]*Value, len(n.Inputs))
			for j, in := range n.Inputs {
				if in == nil {
					continue
				}
				w := cl.value(in, nil)
				nc.Inputs[j] = w
				w.uses = append(w.uses, Use{nc, j})
			}
		}
		for _, o := range g.Outputs {
			w := cl.value(o, nil)
			c.Outputs = append(c.Outputs, w)
			if w != nil {
				w.outputs++
			}
		}
	}
}
