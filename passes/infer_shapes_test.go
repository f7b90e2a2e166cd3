package passes

import (
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

func TestInferShapesPass(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Sym("batch"), ir.Known(8)))
	w := b.Const("w", ir.Float32Tensor([]int64{8, 4}, make([]float32, 32)...))
	y := b.Op("Softmax", b.Op("MatMul", x, w), ir.IntAttr("axis", -1))
	b.Output(y)
	m := b.Model()
	r := runPasses(t, "infer-shapes", m)
	// [batch,8] x [8,4] = [batch,4], and Softmax keeps it.
	if got := y.Type.String(); got != "f32[batch,4]" {
		t.Fatalf("Softmax output type = %s, want f32[batch,4]", got)
	}
	if len(r.Passes) != 1 || r.Passes[0].NodesBefore != 2 || r.Passes[0].NodesAfter != 2 {
		t.Fatalf("report = %+v", r.Passes)
	}
}

func TestInferShapesPassReportsContradiction(t *testing.T) {
	// A declared type that contradicts the rule: the pass fails naming the
	// node, with a reproducer. (Verify would reject this input first, so
	// the pipeline runs without VerifyEach.)
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(2), ir.Known(8)))
	y := b.Op("Relu", x)
	y.Type = f32(ir.Known(3), ir.Known(8))
	b.Output(y)
	p, err := ParseSpec("infer-shapes")
	if err != nil {
		t.Fatal(err)
	}
	p.ReproDir = t.TempDir()
	_, err = p.Run(nil, b.Model())
	if err == nil || !strings.Contains(err.Error(), `pass "infer-shapes"`) || !strings.Contains(err.Error(), "Relu_0") || !strings.Contains(err.Error(), "reproducer: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestRuleSetRewritesNestedGraphs(t *testing.T) {
	b := ir.NewBuilder(17)
	cond := b.Input("cond", ir.TensorOf(ir.Bool))
	x := b.Input("x", f32(ir.Known(4)))
	g := b.Graph()
	body := ir.NewSubgraph("then", g, nil)
	n1 := body.Append(ir.NodeSpec{Name: "neg1", Op: "Neg", Inputs: []*ir.Value{x}, Outputs: []string{"n1"}})
	n2 := body.Append(ir.NodeSpec{Name: "neg2", Op: "Neg", Inputs: []*ir.Value{n1.Outputs[0]}, Outputs: []string{"n2"}})
	body.AddOutput(n2.Outputs[0])
	other := ir.NewSubgraph("else", g, nil)
	other.AddOutput(x)
	n := g.Append(ir.NodeSpec{Name: "if", Op: "If", Inputs: []*ir.Value{cond}, Attrs: []*ir.Attr{ir.GraphAttr("then_branch", body), ir.GraphAttr("else_branch", other)}, Outputs: []string{"y"}})
	body.ParentNode, other.ParentNode = n, n
	b.Output(n.Outputs[0])
	m := b.Model()
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	// Neg(Neg(v)) -> Abs(v) (a test rule: a real one would return v).
	r := &Rule{Name: "neg-neg-abs", Pattern: Op("Neg", Op("Neg", Any("v"))), Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
		return rw.Op("Abs", m.Value("v"))
	}}
	var st Stats
	if err := MustRuleSet(r).Apply(nil, m.Graph, &st); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	wantOps(t, body, "Abs")
	// The branch output keeps its name.
	if body.Outputs[0].Name != "n2" || body.Nodes[0].Inputs[0] != x {
		t.Fatalf("branch output %q, Abs input %v", body.Outputs[0].Name, body.Nodes[0].Inputs[0])
	}
	if st.Rewrites["neg-neg-abs"] != 1 {
		t.Fatalf("rewrites = %v", st.Rewrites)
	}
}
