package ir

import "testing"

func TestCloneStructure(t *testing.T) {
	b := NewBuilder(17)
	cond := b.Input("cond", TensorOf(Bool))
	x := b.Input("x", TensorOf(Float, Sym("batch"), Known(4)))
	w := b.Const("w", Float32Tensor([]int64{4}, 1, 2, 3, 4))
	y := b.Op("Mul", x, w)
	g := b.Graph()
	then := NewSubgraph("then", g, nil)
	neg := then.Append(NodeSpec{Name: "neg", Op: "Neg", Inputs: []*Value{y}, Outputs: []string{"then_out"}})
	then.AddOutput(neg.Outputs[0])
	els := NewSubgraph("else", g, nil)
	els.AddOutput(y)
	n := g.Append(NodeSpec{Name: "if", Op: "If", Inputs: []*Value{cond}, Attrs: []*Attr{GraphAttr("then_branch", then), GraphAttr("else_branch", els)}, Outputs: []string{"z"}})
	then.ParentNode, els.ParentNode = n, n
	b.Output(n.Outputs[0], y)
	m := b.Model()
	if err := Verify(m); err != nil {
		t.Fatal(err)
	}
	want := Print(m)

	c := m.CloneStructure()
	if err := Verify(c); err != nil {
		t.Fatalf("clone does not verify: %v", err)
	}
	if got := Print(c); got != want {
		t.Fatalf("clone prints differently:\n%s\nwant:\n%s", got, want)
	}
	cy := c.Graph.Nodes[0].Outputs[0]
	if cy == y || cy.NumUses() != y.NumUses() || cy.Const != nil {
		t.Fatalf("clone of y: same object %v, uses %d vs %d", cy == y, cy.NumUses(), y.NumUses())
	}
	if c.Graph.Constants[0].Const != w.Const {
		t.Fatal("clone copied tensor data instead of sharing it")
	}
	csub := c.Graph.Nodes[1].Attrs[0].G
	if csub == then || csub.Parent != c.Graph || csub.ParentNode != c.Graph.Nodes[1] || csub.Nodes[0].Inputs[0] != cy {
		t.Fatal("nested graph is not rewired to the clone")
	}

	// Changing the clone leaves the original alone.
	c.Graph.Nodes[0].Op = "Add"
	c.Graph.Nodes[0].SetInput(1, c.Graph.Inputs[1])
	if Print(m) != want {
		t.Fatal("editing the clone changed the original")
	}
	if w.NumUses() != 1 {
		t.Fatalf("original constant has %d uses, want 1", w.NumUses())
	}
}
