package passes

import (
	"slices"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// foldOne builds a one-node graph over constant inputs, runs canonicalize
// with the given opset, and returns the graph's only output.
func foldOne(t *testing.T, opset int64, op string, args ...any) *ir.Value {
	t.Helper()
	b := ir.NewBuilder(opset)
	var built []any
	for _, a := range args {
		if tt, ok := a.(*ir.Tensor); ok {
			built = append(built, b.Const("k", tt))
			continue
		}
		built = append(built, a)
	}
	// Constants named "k" repeat; give them distinct names.
	for i, c := range b.Graph().Constants {
		c.Name = c.Name + string(rune('a'+i))
	}
	out := b.Op(op, built...)
	b.Output(out)
	m := b.Model()
	runPasses(t, "canonicalize", m)
	if len(m.Graph.Nodes) != 0 {
		t.Fatalf("%s was not folded:\n%s", op, ir.Print(m))
	}
	return m.Graph.Outputs[0]
}

// notFolded checks that canonicalize leaves the single node in place.
func notFolded(t *testing.T, opset int64, op string, args ...any) {
	t.Helper()
	b := ir.NewBuilder(opset)
	var built []any
	for i, a := range args {
		if tt, ok := a.(*ir.Tensor); ok {
			built = append(built, b.Const("k"+string(rune('a'+i)), tt))
			continue
		}
		built = append(built, a)
	}
	b.Output(b.Op(op, built...))
	m := b.Model()
	runPasses(t, "canonicalize", m)
	if len(m.Graph.Nodes) != 1 {
		t.Fatalf("%s was folded, want it left to run:\n%s", op, ir.Print(m))
	}
}

// refBroadcastAdd is the plain reference: out[i][j][k] = a[i][0][k] + b[j][0]
// for a of shape [2,1,3] and b of shape [4,1].
func refBroadcastAdd(a, b []int64) []int64 {
	var out []int64
	for i := 0; i < 2; i++ {
		for j := 0; j < 4; j++ {
			for k := 0; k < 3; k++ {
				out = append(out, a[i*3+k]+b[j])
			}
		}
	}
	return out
}

func TestFoldBinaryBroadcast(t *testing.T) {
	a := []int64{1, 2, 3, 10, 20, 30}
	bv := []int64{100, 200, 300, 400}
	out := foldOne(t, 17, "Add", i64([]int64{2, 1, 3}, a...), i64([]int64{4, 1}, bv...))
	wantConst(t, out, ir.Int64, []int64{2, 4, 3}, refBroadcastAdd(a, bv)...)

	wantConst(t, foldOne(t, 17, "Sub", i64(nil, 5, 7), i64([]int64{}, 2)), ir.Int64, []int64{2}, 3, 5)
	wantConst(t, foldOne(t, 17, "Mul", i64(nil, 5, -7), i64(nil, 3, 2)), ir.Int64, []int64{2}, 15, -14)
	wantConst(t, foldOne(t, 17, "Div", i64(nil, 12, -12, 7), i64(nil, 4, 4, 7)), ir.Int64, []int64{3}, 3, -3, 1)
	// Inexact negative quotients and division by zero stay for run time.
	notFolded(t, 17, "Div", i64(nil, -7), i64(nil, 2))
	notFolded(t, 17, "Div", i64(nil, 7), i64(nil, 0))
	// Int32 stays Int32.
	i32 := ir.MustTensor(ir.Int32, []int64{2}, []byte{1, 0, 0, 0, 2, 0, 0, 0})
	wantConst(t, foldOne(t, 17, "Add", i32, i32), ir.Int32, []int64{2}, 2, 4)
}

func TestFoldShapeOps(t *testing.T) {
	// Gather on axis 0 with a scalar index gives a scalar.
	wantConst(t, foldOne(t, 17, "Gather", i64(nil, 2, 3, 4), i64([]int64{}, -1)), ir.Int64, []int64{}, 4)
	// Gather on axis 1 of a [2,3] matrix with indices [2,0].
	wantConst(t, foldOne(t, 17, "Gather", i64([]int64{2, 3}, 1, 2, 3, 4, 5, 6), i64(nil, 2, 0), ir.IntAttr("axis", 1)),
		ir.Int64, []int64{2, 2}, 3, 1, 6, 4)
	// An index out of range is left for run time to report. (Verify
	// rejects such a model, so ask the folder directly.)
	b := ir.NewBuilder(17)
	g := b.Op("Gather", b.Const("data", i64(nil, 1, 2)), b.Const("idx", i64([]int64{}, 5)))
	if _, ok := (&folder{limit: 100}).fold(producerOf(g), 17); ok {
		t.Fatal("Gather with index 5 of 2 elements folded")
	}

	wantConst(t, foldOne(t, 17, "Unsqueeze", i64([]int64{}, 7), i64(nil, 0)), ir.Int64, []int64{1}, 7)
	wantConst(t, foldOne(t, 11, "Unsqueeze", i64(nil, 7, 8), ir.IntsAttr("axes", 0, -1)), ir.Int64, []int64{1, 2, 1}, 7, 8)
	wantConst(t, foldOne(t, 17, "Squeeze", i64([]int64{1, 2, 1}, 7, 8), i64(nil, -1)), ir.Int64, []int64{1, 2}, 7, 8)
	wantConst(t, foldOne(t, 11, "Squeeze", i64([]int64{1, 2, 1}, 7, 8)), ir.Int64, []int64{2}, 7, 8)

	wantConst(t, foldOne(t, 17, "Concat", i64(nil, 1), i64(nil, 2, 3), ir.IntAttr("axis", 0)), ir.Int64, []int64{3}, 1, 2, 3)
	// Axis 1 of [2,1] and [2,2]: rows interleave.
	wantConst(t, foldOne(t, 17, "Concat", i64([]int64{2, 1}, 1, 4), i64([]int64{2, 2}, 2, 3, 5, 6), ir.IntAttr("axis", 1)),
		ir.Int64, []int64{2, 3}, 1, 2, 3, 4, 5, 6)

	wantConst(t, foldOne(t, 17, "Reshape", i64(nil, 1, 2, 3, 4, 5, 6), i64(nil, 3, -1)), ir.Int64, []int64{3, 2}, 1, 2, 3, 4, 5, 6)
	wantConst(t, foldOne(t, 17, "Reshape", i64([]int64{2, 3}, 1, 2, 3, 4, 5, 6), i64(nil, 0, 3)), ir.Int64, []int64{2, 3}, 1, 2, 3, 4, 5, 6)
	b = ir.NewBuilder(17)
	r := b.Op("Reshape", b.Const("data", i64(nil, 1, 2, 3)), b.Const("shape", i64(nil, 2, -1)))
	if _, ok := (&folder{limit: 100}).fold(producerOf(r), 17); ok {
		t.Fatal("Reshape of 3 elements to [2,-1] folded")
	}

	wantConst(t, foldOne(t, 17, "Range", i64([]int64{}, 2), i64([]int64{}, 11), i64([]int64{}, 3)), ir.Int64, []int64{3}, 2, 5, 8)
	wantConst(t, foldOne(t, 17, "Range", i64([]int64{}, 5), i64([]int64{}, 1), i64([]int64{}, -2)), ir.Int64, []int64{2}, 5, 3)
	wantConst(t, foldOne(t, 17, "Range", i64([]int64{}, 5), i64([]int64{}, 1), i64([]int64{}, 2)), ir.Int64, []int64{0})

	c := foldOne(t, 17, "Cast", i64(nil, 3, -1), ir.IntAttr("to", int64(ir.Float)))
	if f, ok := c.Const.Float32s(); !ok || !slices.Equal(f, []float32{3, -1}) {
		t.Fatalf("Cast to float = %v", c.Const)
	}
	wantConst(t, foldOne(t, 17, "Cast", i64(nil, 3, -1), ir.IntAttr("to", int64(ir.Int32))), ir.Int32, []int64{2}, 3, -1)
}

func TestFoldSlice(t *testing.T) {
	data := i64([]int64{3, 4}, 0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23)
	// Rows 1.., columns from the end backwards with step -2: [3,1] of rows 1 and 2.
	out := foldOne(t, 17, "Slice", data, i64(nil, 1, -1), i64(nil, 100, -100), i64(nil, 0, 1), i64(nil, 1, -2))
	wantConst(t, out, ir.Int64, []int64{2, 2}, 13, 11, 23, 21)
	// The common exporter form: x[:-1] on a 1-D shape.
	wantConst(t, foldOne(t, 17, "Slice", i64(nil, 2, 8, 64), i64(nil, 0), i64(nil, -1)), ir.Int64, []int64{2}, 2, 8)
	// Opset 9 takes attributes.
	wantConst(t, foldOne(t, 9, "Slice", i64(nil, 2, 8, 64), ir.IntsAttr("starts", 1), ir.IntsAttr("ends", 3)), ir.Int64, []int64{2}, 8, 64)
}

func TestFoldRespectsLimit(t *testing.T) {
	b := ir.NewBuilder(17)
	r := b.Op("Range", b.Const("s", i64([]int64{}, 0)), b.Const("l", i64([]int64{}, 5)), b.Const("d", i64([]int64{}, 1)))
	b.Output(r)
	m := b.Model()
	runPasses(t, "canonicalize{fold-limit=4}", m)
	wantOps(t, m.Graph, "Range")
	runPasses(t, "canonicalize{fold-limit=5}", m)
	wantOps(t, m.Graph)
	wantConst(t, m.Graph.Outputs[0], ir.Int64, []int64{5}, 0, 1, 2, 3, 4)
}

func TestFoldLeavesOverridableInputs(t *testing.T) {
	// "n" is a graph input with a default: a caller may feed another
	// value, so Add(n, 1) must not fold, nor may a pattern take it for a
	// constant.
	b := ir.NewBuilder(17)
	n := b.Const("n", i64(nil, 4))
	b.Graph().Inputs = append(b.Graph().Inputs, n)
	sum := b.Op("Add", n, b.Const("one", i64(nil, 1)))
	b.Output(sum)
	m := b.Model()
	runPasses(t, "canonicalize", m)
	wantOps(t, m.Graph, "Add")
	mustNotMatch(t, Op("Add", Const("c"), Const("d")), sum, "is a constant")
}
