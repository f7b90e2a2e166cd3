package passes

import (
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// reshapeByShapeModel is the exporter idiom for x.view(-1, x.size(1)):
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, here with static
// dimensions so the whole shape computation folds.
func reshapeByShapeModel(dims ...ir.Dim) *ir.Model {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(dims...))
	shape := b.Op("Shape", x)
	d1 := b.Op("Gather", shape, b.Const("one", i64([]int64{}, 1)), ir.IntAttr("axis", 0))
	u := b.Op("Unsqueeze", d1, b.Const("axes0", i64(nil, 0)))
	target := b.Op("Concat", b.Const("minus1", i64(nil, -1)), u, ir.IntAttr("axis", 0))
	b.Output(b.Op("Reshape", x, target))
	return b.Model()
}

func TestCanonicalizeFoldsShapeChain(t *testing.T) {
	m := reshapeByShapeModel(ir.Known(2), ir.Known(3), ir.Known(4))
	r := runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Reshape")
	target := m.Graph.Nodes[0].Inputs[1]
	// The folded constant keeps the name of the value it replaces.
	if target.Name != "concat_0" {
		t.Fatalf("Reshape target is %q, want concat_0", target.Name)
	}
	wantConst(t, target, ir.Int64, []int64{2}, -1, 3)
	// The constants the chain read are dead and gone.
	if len(m.Graph.Constants) != 1 {
		t.Fatalf("constants = %v, want only concat_0", m.Graph.Constants)
	}
	rw := r.Passes[0].Rewrites
	for _, rule := range []string{"fold-Shape", "fold-Gather", "fold-Unsqueeze", "fold-Concat"} {
		if rw[rule] != 1 {
			t.Errorf("rewrites[%s] = %d, want 1 (all: %v)", rule, rw[rule], rw)
		}
	}
	if r.Passes[0].NodesBefore != 5 || r.Passes[0].NodesAfter != 1 {
		t.Fatalf("nodes %d -> %d, want 5 -> 1", r.Passes[0].NodesBefore, r.Passes[0].NodesAfter)
	}
}

func TestCanonicalizeKeepsSymbolicShape(t *testing.T) {
	// Dimension 1 is a symbol: Shape cannot fold, so nothing downstream
	// does either.
	m := reshapeByShapeModel(ir.Sym("batch"), ir.Sym("seq"), ir.Known(4))
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Shape", "Gather", "Unsqueeze", "Concat", "Reshape")

	// Shape with start=1 of f32[batch,8] reads only the known dimension.
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Sym("batch"), ir.Known(8)))
	b.Output(b.Op("Shape", x, ir.IntAttr("start", 1)))
	m = b.Model()
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph)
	wantConst(t, m.Graph.Outputs[0], ir.Int64, []int64{1}, 8)
}

func TestCanonicalizeConstantNodes(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Int64, ir.Known(2)))
	k := b.Op("Constant", ir.IntsAttr("value_ints", 5, 6))
	s := b.Op("Constant", ir.StringAttr("value_string", "keep"))
	b.Output(b.Op("Add", x, k), s)
	m := b.Model()
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Constant", "Add")
	add := m.Graph.Nodes[1]
	wantConst(t, add.Inputs[1], ir.Int64, []int64{2}, 5, 6)
	if add.Inputs[1].Name != "constant_0" {
		t.Fatalf("constant is named %q, want constant_0", add.Inputs[1].Name)
	}
}

func TestCanonicalizeIdentities(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	relu := b.Op("Relu", b.Op("Identity", x))
	out := b.Op("Identity", relu)
	// An Identity from an input straight to an output must stay: removing
	// it would rename the output or the input.
	passthrough := b.Op("Identity", x)
	b.Output(out, passthrough)
	m := b.Model()
	r := runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Relu", "Identity")
	if o := m.Graph.Outputs[0]; o.Name != "identity_1" || m.Graph.Nodes[0].Outputs[0] != o {
		t.Fatalf("output 0 is %q from %v; want identity_1 produced by the Relu", o.Name, o)
	}
	if m.Graph.Nodes[0].Inputs[0] != x {
		t.Fatalf("Relu input is %v, want x", m.Graph.Nodes[0].Inputs[0])
	}
	if r.Passes[0].Rewrites["identity"] != 2 {
		t.Fatalf("rewrites = %v", r.Passes[0].Rewrites)
	}
}

func TestCanonicalizeDropout(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	inference := b.OpN("Dropout", 2, x)
	withMask := b.OpN("Dropout", 2, x, b.Const("ratio", ir.Float32Tensor([]int64{}, 0.1)), b.Const("train", ir.MustTensor(ir.Bool, nil, []byte{0})))
	training := b.OpN("Dropout", 1, x, b.Const("ratio2", ir.Float32Tensor([]int64{}, 0.2)), b.Const("train2", ir.MustTensor(ir.Bool, nil, []byte{1})))
	b.Output(b.Op("Relu", inference[0]), withMask[0], withMask[1], training[0])
	m := b.Model()
	runPasses(t, "canonicalize", m)
	// Only the first goes: the second's mask is an output, the third
	// trains.
	wantOps(t, m.Graph, "Dropout", "Dropout", "Relu")
	if m.Graph.Nodes[2].Inputs[0] != x {
		t.Fatalf("Relu reads %v, want x", m.Graph.Nodes[2].Inputs[0])
	}
}

func TestCanonicalizeNoopCast(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	relu := b.Op("Relu", x) // typed only by inference
	same := b.Op("Cast", x, ir.IntAttr("to", int64(ir.Float)))
	half := b.Op("Cast", x, ir.IntAttr("to", int64(ir.Float16)))
	b.Output(b.Op("Neg", same), half, b.Op("Cast", relu, ir.IntAttr("to", int64(ir.Float))))
	build := b.Model
	m := build()
	// Without inference the Relu's type is unknown and its Cast stays.
	runPasses(t, "canonicalize{infer=false}", m)
	wantOps(t, m.Graph, "Relu", "Cast", "Neg", "Cast")
	if neg := m.Graph.Nodes[2]; neg.Inputs[0] != x {
		t.Fatalf("Neg reads %v, want x", neg.Inputs[0])
	}
	// With it, that Cast is a no-op too; the output keeps its name.
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Relu", "Cast", "Neg")
	if o := m.Graph.Outputs[2]; o.Name != "cast_2" || m.Graph.Nodes[0].Outputs[0] != o {
		t.Fatalf("output 2 is %q, want cast_2 from the Relu", o.Name)
	}
}

func TestCanonicalizeDCE(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	w := b.Const("w", ir.Float32Tensor(nil, 1, 2, 3, 4))
	b.Const("unused", ir.Float32Tensor(nil, 9))
	b.Op("Exp", b.Op("Mul", x, w)) // dead chain
	b.Op("custom::Log", x)         // unknown domain: may have effects, stays
	// A graph input with a default is an interface, not dead.
	b.Graph().Inputs = append(b.Graph().Inputs, b.Const("opt_in", ir.Float32Tensor(nil, 0)))
	b.Output(b.Op("Relu", x))
	m := b.Model()
	r := runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Log", "Relu")
	if len(m.Graph.Constants) != 1 || m.Graph.Constants[0].Name != "opt_in" {
		t.Fatalf("constants = %v, want only opt_in", m.Graph.Constants)
	}
	if rw := r.Passes[0].Rewrites; rw["dce"] != 2 || rw["dce-constant"] != 2 {
		t.Fatalf("rewrites = %v, want dce 2, dce-constant 2", rw)
	}
}

func TestCanonicalizeCSE(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(2), ir.Known(4)))
	r1 := b.Op("Relu", x)
	r2 := b.Op("Relu", x)
	// Equal axes held by two constants: merged first, then the Unsqueezes.
	u1 := b.Op("Unsqueeze", r1, b.Const("ax_a", i64(nil, 0)))
	u2 := b.Op("Unsqueeze", r2, b.Const("ax_b", i64(nil, 0)))
	s0 := b.Op("Softmax", x, ir.IntAttr("axis", 0))
	s1 := b.Op("Softmax", x, ir.IntAttr("axis", 1))
	n1 := b.Op("RandomNormalLike", x)
	n2 := b.Op("RandomNormalLike", x)
	b.Output(b.Op("Add", u1, u2), s0, s1, n1, n2)
	m := b.Model()
	r := runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Relu", "Unsqueeze", "Softmax", "Softmax", "RandomNormalLike", "RandomNormalLike", "Add")
	add := m.Graph.Nodes[6]
	if add.Inputs[0] != add.Inputs[1] {
		t.Fatalf("Add reads %v and %v, want the one merged Unsqueeze twice", add.Inputs[0], add.Inputs[1])
	}
	if rw := r.Passes[0].Rewrites; rw["cse"] != 2 || rw["cse-constant"] != 1 {
		t.Fatalf("rewrites = %v, want cse 2, cse-constant 1", rw)
	}

	// With cse=false nothing merges.
	b = ir.NewBuilder(17)
	x = b.Input("x", f32(ir.Known(4)))
	b.Output(b.Op("Add", b.Op("Relu", x), b.Op("Relu", x)))
	m = b.Model()
	runPasses(t, "canonicalize{cse=false}", m)
	wantOps(t, m.Graph, "Relu", "Relu", "Add")
}

func TestCanonicalizeDistinguishesEmptyFromScalar(t *testing.T) {
	// i64[0] and the scalar 0 have equal Tensor.Hash (dims and data are
	// hashed without lengths); they must not be merged.
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	empty := b.Const("empty", i64([]int64{0}))
	zero := b.Const("zero", i64([]int64{}, 0))
	b.Output(b.Op("Reshape", x, b.Const("shape", i64(nil, 4))), b.Op("Expand", x, empty), b.Op("Unsqueeze", x, zero))
	m := b.Model()
	runPasses(t, "canonicalize", m)
	if exp, uns := m.Graph.Nodes[1], m.Graph.Nodes[2]; exp.Inputs[1] == uns.Inputs[1] {
		t.Fatalf("Expand and Unsqueeze read the same constant %v", exp.Inputs[1])
	}
}

func TestCanonicalizeCSEKeepsOutputNames(t *testing.T) {
	// Both duplicates are graph outputs: merging would lose a name.
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	b.Output(b.Op("Relu", x), b.Op("Relu", x))
	m := b.Model()
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Relu", "Relu")

	// Only the second is an output: it is merged into the first, which
	// takes its name.
	b = ir.NewBuilder(17)
	x = b.Input("x", f32(ir.Known(4)))
	r1 := b.Op("Relu", x)
	r2 := b.Op("Relu", x)
	b.Output(b.Op("Neg", r1), r2)
	m = b.Model()
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Relu", "Neg")
	if o := m.Graph.Outputs[1]; o.Name != "relu_1" || m.Graph.Nodes[1].Inputs[0] != o {
		t.Fatalf("output 1 is %q, want relu_1 read by the Neg", o.Name)
	}
}

func TestCanonicalizeNestedGraph(t *testing.T) {
	b := ir.NewBuilder(17)
	cond := b.Input("cond", ir.TensorOf(ir.Bool))
	x := b.Input("x", f32(ir.Known(4)))
	g := b.Graph()
	branch := func(name string) *ir.Graph {
		sg := ir.NewSubgraph(name, g, nil)
		id := sg.Append(ir.NodeSpec{Name: name + "_id", Op: "Identity", Inputs: []*ir.Value{x}, Outputs: []string{name + "_id_out"}})
		neg := sg.Append(ir.NodeSpec{Name: name + "_neg", Op: "Neg", Inputs: []*ir.Value{id.Outputs[0]}, Outputs: []string{name + "_out"}})
		sg.AddOutput(neg.Outputs[0])
		return sg
	}
	thenG, elseG := branch("then"), branch("else")
	n := g.Append(ir.NodeSpec{Name: "if", Op: "If", Inputs: []*ir.Value{cond}, Attrs: []*ir.Attr{ir.GraphAttr("then_branch", thenG), ir.GraphAttr("else_branch", elseG)}, Outputs: []string{"y"}})
	thenG.ParentNode, elseG.ParentNode = n, n
	b.Output(n.Outputs[0])
	m := b.Model()
	r := runPasses(t, "canonicalize", m)
	for _, sg := range []*ir.Graph{thenG, elseG} {
		wantOps(t, sg, "Neg")
		if sg.Nodes[0].Inputs[0] != x {
			t.Fatalf("%s: Neg reads %v, want outer x", sg.Name, sg.Nodes[0].Inputs[0])
		}
	}
	if r.Passes[0].Rewrites["identity"] != 2 || r.Passes[0].NodesBefore != 5 || r.Passes[0].NodesAfter != 3 {
		t.Fatalf("report = %+v", r.Passes[0])
	}
}
