package ir

import (
	"errors"
	"fmt"
)

// maxVerifyErrors bounds how many problems Verify reports at once.
const maxVerifyErrors = 10

// Verify checks the structural invariants of a model's main graph and kept
// functions: every value has one producer, use lists match node inputs,
// every use is defined earlier in the same graph or in an enclosing graph
// before the node that holds the nested graph (so the node order is
// topological), value names are unique within a scope, and declared types
// do not contradict the types each op's rule infers. It returns nil or an
// error listing up to ten problems, each naming the graph and node.
func Verify(m *Model) error {
	if m.Graph == nil {
		return errors.New("model has no graph")
	}
	v := &verifier{opsets: opsetMap(m.Opsets)}
	v.graph(m.Graph, nil)
	for _, f := range m.Functions {
		if f.Body == nil {
			v.errf("function %s::%s has no body", f.Domain, f.Name)
			continue
		}
		fv := &verifier{opsets: opsetMap(f.Opsets), inFunction: true}
		fv.graph(f.Body, nil)
		v.errs = append(v.errs, fv.errs...)
	}
	return v.result()
}

// VerifyGraph checks one top-level graph as Verify does, using the given
// opset imports for type rules.
func VerifyGraph(g *Graph, opsets []OpsetID) error {
	v := &verifier{opsets: opsetMap(opsets)}
	v.graph(g, nil)
	return v.result()
}

func opsetMap(ops []OpsetID) map[string]int64 {
	m := make(map[string]int64, len(ops))
	for _, o := range ops {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		m[d] = o.Version
	}
	return m
}

type verifier struct {
	opsets     map[string]int64
	inFunction bool
	errs       []error
}

func (v *verifier) errf(format string, args ...any) {
	if len(v.errs) < maxVerifyErrors {
		v.errs = append(v.errs, fmt.Errorf(format, args...))
	} else if len(v.errs) == maxVerifyErrors {
		v.errs = append(v.errs, errors.New("further problems not listed"))
	}
}

func (v *verifier) result() error {
	if len(v.errs) == 0 {
		return nil
	}
	return errors.Join(v.errs...)
}

// scope is the set of values visible at a point, chained to the enclosing
// graph's scope as it stood at the node holding the nested graph.
type scope struct {
	defined map[*Value]bool
	names   map[string]*Value
	parent  *scope
}

func (s *scope) visible(val *Value) bool {
	for ; s != nil; s = s.parent {
		if s.defined[val] {
			return true
		}
	}
	return false
}

func (s *scope) lookupName(name string) *Value {
	for ; s != nil; s = s.parent {
		if w, ok := s.names[name]; ok {
			return w
		}
	}
	return nil
}

func (v *verifier) graph(g *Graph, parent *scope) {
	sc := &scope{defined: map[*Value]bool{}, names: map[string]*Value{}, parent: parent}
	where := fmt.Sprintf("graph %q", g.Name)
	define := func(val *Value, role string) {
		if val == nil {
			return
		}
		if val.graph != g {
			v.errf("%s: %s %q belongs to another graph", where, role, val.Name)
		}
		if sc.defined[val] {
			return
		}
		if val.Name == "" {
			v.errf("%s: %s has an empty name", where, role)
		} else if other := sc.lookupName(val.Name); other != nil && other != val {
			v.errf("%s: value name %q is defined twice (%s)", where, val.Name, role)
		}
		sc.defined[val] = true
		sc.names[val.Name] = val
	}
	for _, in := range g.Inputs {
		if in == nil {
			v.errf("%s: nil graph input", where)
			continue
		}
		if in.producer != nil {
			v.errf("%s: input %q is also produced by %s", where, in.Name, in.producer.Describe())
		}
		define(in, "input")
	}
	for _, c := range g.Constants {
		if c == nil || !c.IsConst() {
			v.errf("%s: constant list holds a value without data", where)
			continue
		}
		if c.producer != nil {
			v.errf("%s: constant %q is also produced by %s", where, c.Name, c.producer.Describe())
		}
		if c.Const != nil && c.Const.HasData() {
			if err := c.Const.checkSize(); err != nil {
				v.errf("%s: constant %q: %v", where, c.Name, err)
			}
		}
		define(c, "constant")
	}
	for _, n := range g.Nodes {
		v.node(g, n, sc, where)
	}
	for i, o := range g.Outputs {
		if o == nil {
			v.errf("%s: output %d is missing", where, i)
			continue
		}
		if !sc.visible(o) {
			v.errf("%s: output %q is not defined in the graph or an enclosing one", where, o.Name)
		}
	}
	v.checkUses(g)
}

func (v *verifier) node(g *Graph, n *Node, sc *scope, where string) {
	if n.graph != g {
		v.errf("%s: %s belongs to another graph", where, n.Describe())
	}
	if n.Op == "" {
		v.errf("%s: %s has an empty op type", where, n.Describe())
	}
	for i, in := range n.Inputs {
		if in == nil {
			continue
		}
		if !sc.visible(in) {
			if in.producer != nil && in.producer.graph == g {
				v.errf("%s: %s uses %q before it is produced (nodes are not in topological order, or they form a cycle)", where, n.Describe(), in.Name)
			} else {
				v.errf("%s: %s input %d %q has no producer in scope", where, n.Describe(), i, in.Name)
			}
		}
	}
	for _, a := range n.Attrs {
		for _, sg := range a.Subgraphs() {
			if sg.Parent != g {
				v.errf("%s: attribute %q of %s holds a graph whose parent is not this graph", where, a.Name, n.Describe())
			}
			v.graph(sg, sc)
		}
	}
	for i, o := range n.Outputs {
		if o == nil {
			continue
		}
		if o.producer != n || o.outIndex != i {
			v.errf("%s: output %d %q of %s records a different producer", where, i, o.Name, n.Describe())
		}
		defineOutput(v, sc, g, o, where, n)
	}
	if !v.inFunction {
		if err := checkNodeTypes(n, v.opsets); err != nil {
			v.errf("%s: %s: %v", where, n.Describe(), err)
		}
	}
}

func defineOutput(v *verifier, sc *scope, g *Graph, val *Value, where string, n *Node) {
	if val.graph != g {
		v.errf("%s: output %q of %s belongs to another graph", where, val.Name, n.Describe())
	}
	if val.Name == "" {
		v.errf("%s: an output of %s has an empty name", where, n.Describe())
	} else if other := sc.lookupName(val.Name); other != nil && other != val {
		v.errf("%s: value name %q is defined twice (again by %s)", where, val.Name, n.Describe())
	}
	if sc.defined[val] {
		v.errf("%s: value %q is produced twice", where, val.Name)
	}
	sc.defined[val] = true
	sc.names[val.Name] = val
}

// checkUses compares every value's recorded uses with the node inputs that
// refer to it, within g and its nested graphs.
func (v *verifier) checkUses(g *Graph) {
	want := map[*Value]int{}
	g.Walk(func(n *Node) {
		for i, in := range n.Inputs {
			if in == nil {
				continue
			}
			want[in]++
			found := false
			for _, u := range in.uses {
				if u.Node == n && u.Index == i {
					found = true
					break
				}
			}
			if !found {
				v.errf("graph %q: %s input %d %q is missing from the value's use list", g.Name, n.Describe(), i, in.Name)
			}
		}
	})
	g.ForEachValue(func(val *Value) {
		if len(val.uses) != want[val] && val.graph == g {
			// Uses from other graphs (outer values used inside
			// subgraphs) are counted by the walk above too, so a
			// mismatch means a stale use.
			v.errf("graph %q: value %q records %d uses but %d node inputs refer to it", g.Name, val.Name, len(val.uses), want[val])
		}
	})
}
