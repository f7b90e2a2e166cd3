package passes

import (
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// matchAt matches p rooted at the producer of v.
func matchAt(t *testing.T, p *Pattern, v *ir.Value) (*Match, *MatchFailure) {
	t.Helper()
	n, _ := v.Producer()
	if n == nil {
		t.Fatalf("%v has no producer", v)
	}
	r := &Rule{Name: "test", Pattern: p, Rewrite: func(*Rewriter, *Match) *ir.Value { return nil }}
	if _, err := NewRuleSet(r); err != nil {
		t.Fatal(err)
	}
	return r.Match(n, true)
}

func mustMatch(t *testing.T, p *Pattern, v *ir.Value) *Match {
	t.Helper()
	m, f := matchAt(t, p, v)
	if m == nil {
		t.Fatalf("pattern did not match %v: %s %v", v, f.Reason, f.Nodes)
	}
	return m
}

func mustNotMatch(t *testing.T, p *Pattern, v *ir.Value, reasonHas string) *MatchFailure {
	t.Helper()
	m, f := matchAt(t, p, v)
	if m != nil {
		t.Fatalf("pattern matched %v, want no match (captures %v)", v, m.values)
	}
	if !strings.Contains(f.Reason, reasonHas) {
		t.Fatalf("failure reason %q does not mention %q", f.Reason, reasonHas)
	}
	return f
}

func TestPatternCapturesAndSameValue(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	y := b.Input("y", f32(ir.Known(4)))
	xx := b.Op("Mul", x, x)
	xy := b.Op("Mul", x, y)
	b.Output(xx, xy)

	p := Op("Mul", Any("a"), Any("a"))
	m := mustMatch(t, p, xx)
	if m.Value("a") != x {
		t.Fatalf("a = %v, want %v", m.Value("a"), x)
	}
	// A capture used twice must bind one value: Mul(x, y) has two.
	f := mustNotMatch(t, p, xy, `capture "a" must be the same value twice`)
	if len(f.Nodes) == 0 || f.Nodes[0] != "Mul_1" {
		t.Fatalf("failure names nodes %v, want Mul_1", f.Nodes)
	}
}

func TestPatternCommutative(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(2), ir.Known(3)))
	w := b.Const("w", ir.Float32Tensor([]int64{3, 3}, make([]float32, 9)...))
	bias := b.Const("bias", ir.Float32Tensor([]int64{3}, 1, 2, 3))
	mm := b.Op("MatMul", x, w)
	biasFirst := b.Op("Add", bias, mm)
	sub := b.Op("Sub", b.Op("MatMul", x, w), bias)
	b.Output(biasFirst, sub)

	p := Op("Add", Op("MatMul", Any("x"), Const("w")), Const("bias"))
	m := mustMatch(t, p, biasFirst)
	if m.Value("bias") != bias || m.Value("x") != x || m.Value("w") != w {
		t.Fatalf("captures = %v", m.values)
	}
	// Sub is not commutative: Sub(bias, MatMul) must not match Sub(mm, bias).
	mustNotMatch(t, Op("Sub", Const("c"), Op("MatMul", Any("x"), Any("w"))), sub, "is a constant")
	// Commutative(false) turns swapping off for Add too.
	mustNotMatch(t, Op("Add", Op("MatMul", Any("x"), Any("w")), Const("bias")).Commutative(false), biasFirst, "MatMul")
}

func TestPatternBacktracksAcrossOperandOrders(t *testing.T) {
	// Add(Mul(a, b), b): the capture x must end up bound to b, which needs
	// the Mul tried in swapped order after the Add's second input fails.
	b := ir.NewBuilder(17)
	a := b.Input("a", f32(ir.Known(4)))
	bb := b.Input("b", f32(ir.Known(4)))
	out := b.Op("Add", b.Op("Mul", a, bb), bb)
	b.Output(out)
	m := mustMatch(t, Op("Add", Op("Mul", Any("x"), Any("y")), Any("x")).Commutative(false), out)
	if m.Value("x") != bb || m.Value("y") != a {
		t.Fatalf("x = %v, y = %v; want b, a", m.Value("x"), m.Value("y"))
	}
}

func TestPatternOptionalNode(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	withCast := b.Op("Softmax", b.Op("Cast", x, ir.IntAttr("to", int64(ir.Float))))
	without := b.Op("Softmax", x)
	b.Output(withCast, without)

	p := Op("Softmax", Optional(Op("Cast", Any("x")).Bind("cast")))
	m := mustMatch(t, p, withCast)
	if m.Value("x") != x || m.Node("cast") == nil || len(m.Nodes()) != 2 {
		t.Fatalf("with Cast: x = %v, cast = %v, nodes = %d", m.Value("x"), m.Node("cast"), len(m.Nodes()))
	}
	m = mustMatch(t, p, without)
	if m.Value("x") != x || m.Value("cast") != nil || len(m.Nodes()) != 1 {
		t.Fatalf("without Cast: x = %v, cast = %v, nodes = %d", m.Value("x"), m.Value("cast"), len(m.Nodes()))
	}
}

func TestPatternAlternativesAndAttributes(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(2), ir.Known(4)))
	sm := b.Op("Softmax", b.Op("Relu", x), ir.IntAttr("axis", -1))
	smAxis0 := b.Op("Softmax", b.Op("Tanh", x), ir.IntAttr("axis", 0))
	smSigmoid := b.Op("Softmax", b.Op("Sigmoid", x))
	b.Output(sm, smAxis0, smSigmoid)

	act := OneOf(Op("Relu", Any("x")), Op("Tanh", Any("x"))).Bind("act")
	p := Op("Softmax", act).If(AttrIntIs("axis", -1, -1))
	m := mustMatch(t, p, sm)
	if m.Value("x") != x || m.Value("act") == nil {
		t.Fatalf("captures = %v", m.values)
	}
	mustNotMatch(t, p, smAxis0, "attribute axis is -1")
	// Softmax's default axis is -1 (opset 13), so an absent attribute
	// passes the condition; the input alternatives then fail.
	f := mustNotMatch(t, p, smSigmoid, "Sigmoid")
	if !strings.Contains(f.Reason, "want a Tanh node") && !strings.Contains(f.Reason, "want a Relu node") {
		t.Fatalf("reason %q", f.Reason)
	}
}

func TestPatternShapeAndConstantPredicates(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Sym("batch"), ir.Known(8)))
	two := b.Const("two", ir.Float32Tensor([]int64{}, 2))
	three := b.Const("three", ir.Float32Tensor([]int64{}, 3))
	sq := b.Op("Pow", x, two)
	cube := b.Op("Pow", x, three)
	b.Output(sq, cube)
	p := Op("Pow", Any("x").If(RankIs(2)), Const("e").If(ScalarNear(2, 0)))
	mustMatch(t, p, sq)
	mustNotMatch(t, p, cube, "is a constant scalar near 2")
	mustNotMatch(t, Op("Pow", Any("x").If(RankIs(3)), Any("")), sq, "has rank 3")
}

func TestPatternSharedIntermediateDiamond(t *testing.T) {
	// LayerNorm without scale: (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(2), ir.Known(8)))
	axes := ir.IntsAttr("axes", -1)
	mean := b.Op("ReduceMean", x, axes)
	d := b.Op("Sub", x, mean)
	variance := b.Op("ReduceMean", b.Op("Pow", d, b.Const("two", ir.Float32Tensor([]int64{}, 2))), axes)
	out := b.Op("Div", d, b.Op("Sqrt", b.Op("Add", variance, b.Const("eps", ir.Float32Tensor([]int64{}, 1e-5)))))
	b.Output(out)

	xp := Any("x")
	dp := Op("Sub", xp, Op("ReduceMean", xp)).Bind("d")
	p := Op("Div", dp, Op("Sqrt", Op("Add", Op("ReduceMean", Op("Pow", Any("d"), Const("two").If(ScalarNear(2, 0)))), Const("eps"))))
	m := mustMatch(t, p, out)
	if m.Value("x") != x || len(m.Nodes()) != 7 {
		t.Fatalf("x = %v, %d nodes matched, want 7", m.Value("x"), len(m.Nodes()))
	}
}

func TestPatternAbsentInput(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	mn := b.Const("mn", ir.Float32Tensor([]int64{}, 0))
	noMin := b.Op("Clip", x)
	withMin := b.Op("Clip", x, mn)
	b.Output(noMin, withMin)
	p := Op("Clip", Any("x"), Absent())
	mustMatch(t, p, noMin)
	mustNotMatch(t, p, withMin, "want an omitted input")
	// Without Absent or ExtraInputs, an extra input fails the arity check.
	mustNotMatch(t, Op("Clip", Any("x")), withMin, "has 2 inputs, the pattern wants 1")
	mustMatch(t, Op("Clip", Any("x")).ExtraInputs(), withMin)
}

// fuseMulAdd is a test rule: Add(Mul(a, b), c) -> tfc::MulAdd(a, b, c).
var fuseMulAdd = &Rule{
	Name:    "mul-add",
	Pattern: Op("Add", Op("Mul", Any("a"), Any("b")), Any("c")),
	Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
		return rw.Op("tfc::MulAdd", m.Value("a"), m.Value("b"), m.Value("c"))
	},
}

func mulAddModel(escape string) (*ir.Model, *ir.Value) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	y := b.Input("y", f32(ir.Known(4)))
	z := b.Input("z", f32(ir.Known(4)))
	mul := b.Op("Mul", x, y)
	out := b.Op("Add", z, mul)
	out.Type = f32(ir.Known(4))
	b.Output(out)
	switch escape {
	case "user":
		b.Output(b.Op("Neg", mul))
	case "output":
		b.Output(mul)
	}
	return b.Model(), out
}

func TestRuleSetRewritesAndCounts(t *testing.T) {
	m, _ := mulAddModel("")
	rs := MustRuleSet(fuseMulAdd)
	var st Stats
	if err := rs.Apply(nil, m.Graph, &st); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	wantOps(t, m.Graph, "MulAdd")
	n := m.Graph.Nodes[0]
	if n.Domain != "tfc" || n.Inputs[0].Name != "x" || n.Inputs[1].Name != "y" || n.Inputs[2].Name != "z" {
		t.Fatalf("fused node %s inputs %v", n.QualifiedOp(), n.Inputs)
	}
	// The model's output keeps its name and type.
	if o := m.Graph.Outputs[0]; o.Name != "add_0" || o.Type.Rank() != 1 {
		t.Fatalf("output is %q %v, want add_0 f32[4]", o.Name, o.Type)
	}
	if st.Rewrites["mul-add"] != 1 {
		t.Fatalf("rewrites = %v", st.Rewrites)
	}
}

func TestRuleSetRefusesEscapingIntermediate(t *testing.T) {
	for _, escape := range []string{"user", "output"} {
		t.Run(escape, func(t *testing.T) {
			m, _ := mulAddModel(escape)
			before := ops(m.Graph)
			ctx := &Context{Explain: &Explanations{}}
			var st Stats
			if err := MustRuleSet(fuseMulAdd).Apply(ctx, m.Graph, &st); err != nil {
				t.Fatal(err)
			}
			wantOps(t, m.Graph, before...)
			if st.TotalRewrites() != 0 {
				t.Fatalf("rewrites = %v, want none", st.Rewrites)
			}
			if len(ctx.Explain.Items) != 1 {
				t.Fatalf("explanations = %v, want one", ctx.Explain.Items)
			}
			e := ctx.Explain.Items[0]
			want := map[string]string{"user": `Neg "Neg_0"`, "output": "a graph output"}[escape]
			if e.Anchor != "Add_0" || !strings.Contains(e.Reason, "also used by "+want) || len(e.Nodes) != 1 || e.Nodes[0] != "Mul_0" {
				t.Fatalf("explanation = %+v", e)
			}
		})
	}
}

func TestRuleDeclineUndoesAndExplains(t *testing.T) {
	m, _ := mulAddModel("")
	decline := &Rule{
		Name:    "decline",
		Pattern: fuseMulAdd.Pattern,
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
			rw.Op("Neg", m.Value("a"))
			rw.Const("k", ir.Float32Tensor(nil, 1))
			return rw.Decline("test declines after building %d node", 1)
		},
	}
	ctx := &Context{Explain: &Explanations{}}
	var st Stats
	if err := MustRuleSet(decline).Apply(ctx, m.Graph, &st); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	wantOps(t, m.Graph, "Mul", "Add")
	if len(m.Graph.Constants) != 0 {
		t.Fatalf("declined rewrite left constants %v", m.Graph.Constants)
	}
	if len(ctx.Explain.Items) != 1 || ctx.Explain.Items[0].Reason != "test declines after building 1 node" {
		t.Fatalf("explanations = %+v", ctx.Explain.Items)
	}
}

func TestRuleSetFixedPointCapAndCycle(t *testing.T) {
	build := func() *ir.Model {
		b := ir.NewBuilder(17)
		x := b.Input("x", f32(ir.Known(4)))
		y := b.Input("y", f32(ir.Known(4)))
		b.Output(b.Op("Neg", b.Op("Neg", b.Op("Neg", b.Op("Neg", b.Op("Add", x, y))))))
		return b.Model()
	}
	// Converging: Neg(Neg(v)) -> v needs two sweeps for four Negs.
	m := build()
	var st Stats
	negNeg := &Rule{Name: "neg-neg", Pattern: Op("Neg", Op("Neg", Any("v"))), Rewrite: func(_ *Rewriter, m *Match) *ir.Value { return m.Value("v") }}
	if err := MustRuleSet(negNeg).Apply(nil, m.Graph, &st); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	wantOps(t, m.Graph, "Add")
	if st.Rewrites["neg-neg"] != 2 {
		t.Fatalf("rewrites = %v, want 2", st.Rewrites)
	}

	// Growing forever: Neg(v) -> Neg(Neg(Neg(v))) hits the cap.
	grow := &Rule{Name: "grow", Pattern: Op("Neg", Any("v")), Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
		return rw.Op("Neg", rw.Op("Neg", rw.Op("Neg", m.Value("v"))))
	}}
	rs := MustRuleSet(grow)
	rs.MaxSweeps = 4
	err := rs.Apply(nil, build().Graph, &Stats{})
	if err == nil || !strings.Contains(err.Error(), "did not reach a fixed point after 4 sweeps") {
		t.Fatalf("err = %v, want the sweep cap", err)
	}

	// Swapping operands back and forth: a cycle, found before the cap.
	swap := &Rule{Name: "swap", Pattern: Op("Add", Any("a"), Any("b")).Commutative(false), Rewrite: func(rw *Rewriter, m *Match) *ir.Value {
		return rw.Op("Add", m.Value("b"), m.Value("a"))
	}}
	err = MustRuleSet(swap).Apply(nil, build().Graph, &Stats{})
	if err == nil || !strings.Contains(err.Error(), "rewrites cycle") {
		t.Fatalf("err = %v, want a cycle", err)
	}
}

func TestRuleSetRejectsBadRules(t *testing.T) {
	rw := func(*Rewriter, *Match) *ir.Value { return nil }
	cases := map[string][]*Rule{
		"rooted at a node":  {{Name: "a", Pattern: Any("x"), Rewrite: rw}},
		"unique":            {{Name: "a", Pattern: Op("Neg", Any("x")), Rewrite: rw}, {Name: "a", Pattern: Op("Abs", Any("x")), Rewrite: rw}},
		"Optional needs":    {{Name: "a", Pattern: Op("Neg", Optional(Any("x"))), Rewrite: rw}},
		"pattern and a rew": {{Name: "a", Pattern: Op("Neg", Any("x"))}},
	}
	for want, rules := range cases {
		if _, err := NewRuleSet(rules...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewRuleSet: err = %v, want one mentioning %q", err, want)
		}
	}
}

func TestRuleSetDispatchesOneOfRoot(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Known(4)))
	b.Output(b.Op("Relu", b.Op("Neg", x)), b.Op("Sigmoid", b.Op("Abs", x)))
	m := b.Model()
	r := &Rule{
		Name:    "act-of-neg",
		Pattern: OneOf(Op("Relu", Op("Neg", Any("x"))), Op("Sigmoid", Op("Abs", Any("x")))).Bind("act"),
		Rewrite: func(rw *Rewriter, m *Match) *ir.Value { return rw.Op("tfc::Fused", m.Value("x")) },
	}
	var st Stats
	if err := MustRuleSet(r).Apply(nil, m.Graph, &st); err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	wantOps(t, m.Graph, "Fused", "Fused")
}

func TestFingerprintIgnoresNames(t *testing.T) {
	build := func(name string) *ir.Graph {
		b := ir.NewBuilder(17)
		x := b.Input("x", f32(ir.Known(4)))
		v := b.Op("Neg", x)
		v.Name = name
		b.Output(b.Op("Abs", v))
		return b.Graph()
	}
	if Fingerprint(build("a")) != Fingerprint(build("b")) {
		t.Fatal("renaming a value changed the fingerprint")
	}
	g := build("a")
	g.Nodes[1].Op = "Relu"
	if Fingerprint(g) == Fingerprint(build("a")) {
		t.Fatal("changing an op did not change the fingerprint")
	}
}

func TestPatternOutputsAndMoreConditions(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(ir.Sym("batch"), ir.Known(8)))
	y := b.Input("y", f32(ir.Sym("batch"), ir.Known(8)))
	parts := b.OpN("Split", 2, x, b.Const("sizes", i64(nil, 4, 4)), ir.IntAttr("axis", 1))
	tr := b.Op("Transpose", parts[1], ir.IntsAttr("perm", 1, 0))
	mode := b.Op("Resize", x, ir.StringAttr("mode", "linear"))
	sum := b.Op("Add", x, y)
	b.Output(tr, mode, sum)

	p := Op("Transpose", Op("Split", Any("x").If(ElemIs(ir.Float)), Const("")).Out(1).Bind("second").ExtraInputs()).If(AttrIntsIs("perm", 1, 0))
	m := mustMatch(t, p, tr)
	if m.Value("second") != parts[1] || !m.Contains(producerOf(parts[1])) {
		t.Fatalf("second = %v", m.Value("second"))
	}
	mustNotMatch(t, Op("Transpose", Op("Split", Any("x"), Any("")).Out(0)), tr, "want output 0")
	// Split's other output escaping makes the same pattern fail.
	b.Output(parts[0])
	mustNotMatch(t, p, tr, `"split_0_0" (output 0 of Split "Split_0") is also used by a graph output`)
	mustNotMatch(t, Op("Transpose", Any("v")).If(AttrIntsIs("perm", 0, 1)), tr, "attribute perm is [0 1]")
	mustNotMatch(t, Op("Transpose", Any("v").If(ElemIs(ir.Float16))), tr, "has element type f16")
	mustMatch(t, Op("Resize", Any("x")).If(AttrStringIs("mode", "nearest", "linear")), mode)
	mustNotMatch(t, Op("Resize", Any("x")).If(AttrStringIs("mode", "nearest", "cubic")), mode, `attribute mode is "cubic"`)
	mustMatch(t, Op("Add", Any("a"), Any("b").If(SameShapeAs("a"))), sum)
	mustNotMatch(t, Op("Add", Any("a"), Any("b").Where("is not a", func(m *Match, v *ir.Value) bool { return v != m.Value("a") })).Commutative(false), b.Op("Add", x, x), `fails the condition: is not a`)
}
