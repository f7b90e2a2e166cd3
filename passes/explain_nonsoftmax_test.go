package passes

import (
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// explainFuseAttention runs fuse-attention with --explain on m and returns
// the explanations.
func explainFuseAttention(t *testing.T, m *ir.Model) []Explanation {
	t.Helper()
	p, err := NewPipeline("infer-shapes", "fuse-attention")
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	ctx := &Context{Explain: &Explanations{}}
	if _, err := p.Run(ctx, m); err != nil {
		t.Fatal(err)
	}
	return ctx.Explain.Items
}

func TestExplainLinearAttentionWithoutSoftmax(t *testing.T) {
	// Linear attention: phi(Q) (phi(K)^T V), with phi = Elu + 1; no Softmax.
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("seq"), ir.Known(4)))
	w := func(name string) *ir.Value {
		return b.Const(name, ir.Float32Tensor([]int64{4, 4}, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1))
	}
	one := b.Const("one", ir.Float32Tensor([]int64{}, 1))
	q := b.Op("Add", b.Op("Elu", b.Op("MatMul", x, w("wq"))), one)
	k := b.Op("Add", b.Op("Elu", b.Op("MatMul", x, w("wk"))), one)
	v := b.Op("MatMul", x, w("wv"))
	kv := b.Op("MatMul", b.Op("Transpose", k, ir.IntsAttr("perm", 1, 0)), v)
	b.Output(b.Op("MatMul", q, kv))

	items := explainFuseAttention(t, b.Model())
	var found []Explanation
	for _, e := range items {
		if strings.Contains(e.Reason, "no Softmax attention was found") {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one explanation for the Softmax-free attention, got %d: %v", len(found), items)
	}
	if len(found[0].Nodes) != 2 {
		t.Errorf("want the two products of computed tensors named, got %v", found[0].Nodes)
	}
}

func TestNoExplanationForProjectionsOnly(t *testing.T) {
	// A feed-forward block: every MatMul has a constant weight.
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("seq"), ir.Known(2)))
	w := b.Const("w", ir.Float32Tensor([]int64{2, 2}, 1, 2, 3, 4))
	b.Output(b.Op("MatMul", b.Op("Relu", b.Op("MatMul", x, w)), w))
	for _, e := range explainFuseAttention(t, b.Model()) {
		if strings.Contains(e.Reason, "no Softmax attention was found") {
			t.Fatalf("projections with constant weights are not attention: %v", e)
		}
	}
}
