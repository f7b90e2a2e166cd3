package onnx

import (
	"container/heap"
	"fmt"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// sortNodes returns the nodes in an order where each comes after the
// producers of the values it (or a graph in its attributes) uses. ONNX
// requires files to be sorted already; this is leniency for files that are
// not. Already sorted input is returned unchanged; otherwise the original
// order is kept wherever dependencies allow. A cycle is an error naming a
// node on it.
//
// predefined holds the names the graph defines otherwise (inputs,
// initializers): a node output reusing one is a duplicate the builder
// reports, not a dependency.
func sortNodes(nodes []*onnxpb.NodeProto, graphName string, predefined map[string]*ir.Value) ([]*onnxpb.NodeProto, error) {
	producer := make(map[string]int, len(nodes))
	for i, n := range nodes {
		for _, o := range n.GetOutput() {
			if _, dup := producer[o]; o != "" && !dup && predefined[o] == nil {
				producer[o] = i
			}
		}
	}
	deps := make([][]int, len(nodes))
	sorted := true
	for i, n := range nodes {
		add := func(name string) {
			if j, ok := producer[name]; ok && name != "" {
				deps[i] = append(deps[i], j)
				if j >= i {
					sorted = false
				}
			}
		}
		for _, in := range n.GetInput() {
			add(in)
		}
		for _, a := range n.GetAttribute() {
			for _, g := range attrGraphs(a) {
				for name := range freeNames(g, 0) {
					add(name)
				}
			}
		}
	}
	if sorted {
		return nodes, nil
	}
	indeg := make([]int, len(nodes))
	users := make([][]int, len(nodes))
	for i, ds := range deps {
		for _, j := range ds {
			indeg[i]++
			users[j] = append(users[j], i)
		}
	}
	ready := &minHeap{}
	for i := range nodes {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	out := make([]*onnxpb.NodeProto, 0, len(nodes))
	done := make([]bool, len(nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		done[i] = true
		out = append(out, nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				heap.Push(ready, u)
			}
		}
	}
	if len(out) != len(nodes) {
		for i, n := range nodes {
			if !done[i] {
				return nil, fmt.Errorf("graph %q has a cycle through %s", graphName, describeNode(n))
			}
		}
	}
	return out, nil
}

// attrGraphs returns the graphs an attribute holds.
func attrGraphs(a *onnxpb.AttributeProto) []*onnxpb.GraphProto {
	var gs []*onnxpb.GraphProto
	if a.GetG() != nil {
		gs = append(gs, a.GetG())
	}
	return append(gs, a.GetGraphs()...)
}

// freeNames returns the names a graph (with its nested graphs) uses but
// does not define: references to enclosing graphs.
func freeNames(g *onnxpb.GraphProto, depth int) map[string]bool {
	free := map[string]bool{}
	if depth > maxMessageDepth {
		return free
	}
	defined := map[string]bool{}
	for _, vi := range g.GetInput() {
		defined[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		defined[t.GetName()] = true
	}
	for _, s := range g.GetSparseInitializer() {
		defined[s.GetValues().GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			defined[o] = true
		}
	}
	use := func(name string) {
		if name != "" && !defined[name] {
			free[name] = true
		}
	}
	for _, n := range g.GetNode() {
		for _, in := range n.GetInput() {
			use(in)
		}
		for _, a := range n.GetAttribute() {
			for _, sg := range attrGraphs(a) {
				for name := range freeNames(sg, depth+1) {
					use(name)
				}
			}
		}
	}
	for _, vi := range g.GetOutput() {
		use(vi.GetName())
	}
	return free
}

type minHeap []int

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
