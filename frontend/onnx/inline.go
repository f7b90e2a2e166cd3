package onnx

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

const (
	// maxInlineDepth bounds nested function calls.
	maxInlineDepth = 64
	// maxInlinedNodes bounds the nodes inlining may create, so that
	// functions calling each other several times cannot blow up
	// exponentially.
	maxInlinedNodes = 5_000_000
)

// inliner expands calls of model-local functions at the protobuf level,
// before the IR is built, so that the IR builder sees plain nodes.
type inliner struct {
	funcs map[string]*onnxpb.FunctionProto
	taken map[string]bool // every value name in use in the model
	calls int
	nodes int64
	// sizes memoizes expandedSize per function.
	sizes map[string]int64
}

// expandedSize returns how many nodes a call of function key becomes once
// fully inlined (saturating above maxInlinedNodes; recursion counts as
// one node here and is reported by expand).
func (in *inliner) expandedSize(key string, visiting map[string]bool) int64 {
	if s, ok := in.sizes[key]; ok {
		return s
	}
	f := in.funcs[key]
	if f == nil || visiting[key] {
		return 1
	}
	if visiting == nil {
		visiting = map[string]bool{}
	}
	visiting[key] = true
	defer delete(visiting, key)
	var total int64
	for _, n := range f.GetNode() {
		sub := funcKey(n.GetDomain(), n.GetOpType(), n.GetOverload())
		if _, isCall := in.funcs[sub]; isCall {
			total += in.expandedSize(sub, visiting)
		} else {
			total++
		}
		if total > maxInlinedNodes {
			total = maxInlinedNodes + 1
			break
		}
	}
	if in.sizes == nil {
		in.sizes = map[string]int64{}
	}
	in.sizes[key] = total
	return total
}

func funcKey(domain, name, overload string) string {
	return normDomain(domain) + "\x00" + name + "\x00" + overload
}

// inlineFunctions replaces every call of a model-local function in the
// main graph (and its nested graphs) by the function's body, and returns
// the opsets extended with domains the bodies import.
func (d *decoder) inlineFunctions(mp *onnxpb.ModelProto, opsets []ir.OpsetID) ([]ir.OpsetID, error) {
	in := &inliner{funcs: map[string]*onnxpb.FunctionProto{}, taken: map[string]bool{}}
	for _, f := range mp.GetFunctions() {
		key := funcKey(f.GetDomain(), f.GetName(), f.GetOverload())
		if _, dup := in.funcs[key]; dup {
			return nil, fmt.Errorf("function %q (domain %q) is defined twice", f.GetName(), f.GetDomain())
		}
		in.funcs[key] = f
	}
	collectNames(mp.GetGraph(), in.taken, 0)
	if err := in.graph(mp.GetGraph(), nil, 0); err != nil {
		return nil, err
	}
	d.info.InlinedCalls = in.calls
	if in.calls == 0 {
		return opsets, nil
	}
	// The inlined bodies use the functions' opset imports; add the ones
	// the model lacks and warn where versions differ.
	have := map[string]int64{}
	for _, o := range opsets {
		have[normDomain(o.Domain)] = o.Version
	}
	for _, f := range mp.GetFunctions() {
		for _, o := range f.GetOpsetImport() {
			dom := normDomain(o.GetDomain())
			v, ok := have[dom]
			switch {
			case !ok:
				opsets = append(opsets, ir.OpsetID{Domain: o.GetDomain(), Version: o.GetVersion()})
				have[dom] = o.GetVersion()
			case v != o.GetVersion():
				d.warnf("function %q imports domain %q at version %d but the model imports version %d; inlined nodes use the model's", f.GetName(), o.GetDomain(), o.GetVersion(), v)
			}
		}
	}
	return opsets, nil
}

// collectNames records every value name defined or used in g.
func collectNames(g *onnxpb.GraphProto, names map[string]bool, depth int) {
	if g == nil || depth > maxMessageDepth {
		return
	}
	for _, vi := range g.GetInput() {
		names[vi.GetName()] = true
	}
	for _, vi := range g.GetOutput() {
		names[vi.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		names[t.GetName()] = true
	}
	for _, s := range g.GetSparseInitializer() {
		names[s.GetValues().GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, s := range n.GetInput() {
			names[s] = true
		}
		for _, s := range n.GetOutput() {
			names[s] = true
		}
		for _, a := range n.GetAttribute() {
			for _, sg := range attrGraphs(a) {
				collectNames(sg, names, depth+1)
			}
		}
	}
}

// graph expands calls in g's nodes and nested graphs.
func (in *inliner) graph(g *onnxpb.GraphProto, stack []string, depth int) error {
	if g == nil {
		return nil
	}
	nodes, err := in.expand(g.GetNode(), stack, depth)
	if err != nil {
		return fmt.Errorf("graph %q: %w", g.GetName(), err)
	}
	g.Node = nodes
	return nil
}

// expand returns nodes with every call replaced by the called body.
func (in *inliner) expand(nodes []*onnxpb.NodeProto, stack []string, depth int) ([]*onnxpb.NodeProto, error) {
	var out []*onnxpb.NodeProto
	for _, n := range nodes {
		f := in.funcs[funcKey(n.GetDomain(), n.GetOpType(), n.GetOverload())]
		if f == nil {
			for _, a := range n.GetAttribute() {
				for _, sg := range attrGraphs(a) {
					if err := in.graph(sg, stack, depth+1); err != nil {
						return nil, err
					}
				}
			}
			out = append(out, n)
			continue
		}
		key := funcKey(f.GetDomain(), f.GetName(), f.GetOverload())
		for _, s := range stack {
			if s == key {
				return nil, fmt.Errorf("%s: function %q calls itself (recursion is not allowed)", describeNode(n), f.GetName())
			}
		}
		if len(stack) >= maxInlineDepth || depth > maxMessageDepth {
			return nil, fmt.Errorf("%s: function calls nest deeper than %d levels", describeNode(n), maxInlineDepth)
		}
		if in.nodes+in.expandedSize(key, nil) > maxInlinedNodes {
			return nil, fmt.Errorf("inlining functions would create more than %d nodes", maxInlinedNodes)
		}
		body, err := in.instantiate(f, n)
		if err != nil {
			return nil, fmt.Errorf("%s: inlining function %q: %w", describeNode(n), f.GetName(), err)
		}
		in.calls++
		in.nodes += int64(len(body))
		body, err = in.expand(body, append(stack, key), depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describeNode(n), err)
		}
		out = append(out, body...)
	}
	return out, nil
}

// fresh returns an unused value name derived from base.
func (in *inliner) fresh(base string) string {
	name := base
	for i := 1; in.taken[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	in.taken[name] = true
	return name
}

// instantiate copies f's body for one call: formal parameters become the
// call's operands, every other value gets a fresh name, and attribute
// references take the call's attributes or the function's defaults.
func (in *inliner) instantiate(f *onnxpb.FunctionProto, call *onnxpb.NodeProto) ([]*onnxpb.NodeProto, error) {
	prefix := call.GetName()
	if prefix == "" {
		prefix = strings.ToLower(call.GetOpType())
	}
	prefix = in.fresh(prefix + "/")
	rename := map[string]string{}
	for i, formal := range f.GetInput() {
		actual := ""
		if i < len(call.GetInput()) {
			actual = call.GetInput()[i]
		}
		rename[formal] = actual
	}
	if len(call.GetInput()) > len(f.GetInput()) {
		return nil, fmt.Errorf("the call has %d inputs, the function takes %d", len(call.GetInput()), len(f.GetInput()))
	}
	if len(call.GetOutput()) > len(f.GetOutput()) {
		return nil, fmt.Errorf("the call has %d outputs, the function returns %d", len(call.GetOutput()), len(f.GetOutput()))
	}
	for i, formal := range f.GetOutput() {
		if i < len(call.GetOutput()) && call.GetOutput()[i] != "" {
			rename[formal] = call.GetOutput()[i]
		}
	}
	body := make([]*onnxpb.NodeProto, len(f.GetNode()))
	for i, n := range f.GetNode() {
		body[i] = proto.Clone(n).(*onnxpb.NodeProto)
	}
	// Fresh names for every value the body defines (nested graphs too).
	var define func(nodes []*onnxpb.NodeProto, depth int)
	defineName := func(name string) {
		if _, ok := rename[name]; !ok && name != "" {
			rename[name] = in.fresh(prefix + name)
		}
	}
	define = func(nodes []*onnxpb.NodeProto, depth int) {
		if depth > maxMessageDepth {
			return
		}
		for _, n := range nodes {
			for _, o := range n.GetOutput() {
				defineName(o)
			}
			for _, a := range n.GetAttribute() {
				for _, g := range attrGraphs(a) {
					for _, vi := range g.GetInput() {
						defineName(vi.GetName())
					}
					for _, t := range g.GetInitializer() {
						defineName(t.GetName())
					}
					for _, s := range g.GetSparseInitializer() {
						defineName(s.GetValues().GetName())
					}
					define(g.GetNode(), depth+1)
				}
			}
		}
	}
	define(body, 0)
	renameNodes(body, rename, prefix, 0)
	if err := substituteAttrs(body, f, call, 0); err != nil {
		return nil, err
	}
	return body, nil
}

// renameNodes applies a value renaming to nodes and their nested graphs,
// and prefixes node names.
func renameNodes(nodes []*onnxpb.NodeProto, rename map[string]string, prefix string, depth int) {
	if depth > maxMessageDepth {
		return
	}
	r := func(s string) string {
		if t, ok := rename[s]; ok {
			return t
		}
		return s
	}
	for _, n := range nodes {
		for i, s := range n.Input {
			if s != "" {
				n.Input[i] = r(s)
			}
		}
		for i, s := range n.Output {
			if s != "" {
				n.Output[i] = r(s)
			}
		}
		if n.Name != "" {
			n.Name = prefix + n.Name
		}
		for _, a := range n.GetAttribute() {
			for _, g := range attrGraphs(a) {
				for _, vi := range g.GetInput() {
					vi.Name = r(vi.Name)
				}
				for _, vi := range g.GetOutput() {
					vi.Name = r(vi.Name)
				}
				for _, vi := range g.GetValueInfo() {
					vi.Name = r(vi.Name)
				}
				for _, t := range g.GetInitializer() {
					t.Name = r(t.Name)
				}
				for _, s := range g.GetSparseInitializer() {
					if s.GetValues() != nil {
						s.Values.Name = r(s.Values.Name)
					}
				}
				renameNodes(g.GetNode(), rename, prefix, depth+1)
			}
		}
	}
}

// substituteAttrs resolves attribute references (ref_attr_name) in nodes
// and their nested graphs against the call's attributes, then the
// function's defaults; a reference to an attribute given nowhere is dropped.
func substituteAttrs(nodes []*onnxpb.NodeProto, f *onnxpb.FunctionProto, call *onnxpb.NodeProto, depth int) error {
	if depth > maxMessageDepth {
		return fmt.Errorf("graphs nest deeper than %d levels", maxMessageDepth)
	}
	find := func(list []*onnxpb.AttributeProto, name string) *onnxpb.AttributeProto {
		for _, a := range list {
			if a.GetName() == name {
				return a
			}
		}
		return nil
	}
	for _, n := range nodes {
		var kept []*onnxpb.AttributeProto
		for _, a := range n.GetAttribute() {
			if ref := a.GetRefAttrName(); ref != "" {
				src := find(call.GetAttribute(), ref)
				if src == nil {
					src = find(f.GetAttributeProto(), ref)
				}
				if src == nil {
					continue
				}
				c := proto.Clone(src).(*onnxpb.AttributeProto)
				c.Name, c.DocString = a.GetName(), a.GetDocString()
				if c.Type == onnxpb.AttributeProto_UNDEFINED {
					c.Type = a.GetType()
				}
				kept = append(kept, c)
				continue
			}
			for _, g := range attrGraphs(a) {
				if err := substituteAttrs(g.GetNode(), f, call, depth+1); err != nil {
					return err
				}
			}
			kept = append(kept, a)
		}
		n.Attribute = kept
	}
	return nil
}
