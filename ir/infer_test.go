package ir_test

import (
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

var (
	batch = ir.Sym("batch")
	seq   = ir.Sym("seq")
)

func f32(dims ...ir.Dim) ir.Type { return ir.TensorOf(ir.Float, dims...) }

func k(n int64) ir.Dim { return ir.Known(n) }

func ints(b *ir.Builder, name string, v ...int64) *ir.Value {
	return b.Const(name, ir.Int64Tensor(nil, v...))
}

func scalar(b *ir.Builder, name string, v int64) *ir.Value {
	return b.Const(name, ir.Int64Tensor([]int64{}, v))
}

// infer runs InferShapes on the builder's model and fails the test on an
// error.
func infer(t *testing.T, b *ir.Builder) {
	t.Helper()
	if _, err := ir.InferShapes(b.Model()); err != nil {
		t.Fatalf("InferShapes: %v", err)
	}
}

func wantType(t *testing.T, v *ir.Value, want string) {
	t.Helper()
	if got := v.Type.String(); got != want {
		t.Errorf("%s: got %s, want %s", v.Name, got, want)
	}
}

// Each case builds one small graph; want is derived by hand from the ONNX
// operator specification.
type shapeCase struct {
	name  string
	build func(b *ir.Builder) *ir.Value
	want  string
}

func runShapeCases(t *testing.T, opset int64, cases []shapeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder(opset)
			out := tc.build(b)
			b.Output(out)
			infer(t, b)
			wantType(t, out, tc.want)
			if err := ir.Verify(b.Model()); err != nil {
				t.Errorf("Verify after inference: %v", err)
			}
		})
	}
}

func TestInferElementwise(t *testing.T) {
	runShapeCases(t, 17, []shapeCase{
		{"add bias", func(b *ir.Builder) *ir.Value {
			return b.Op("Add", b.Input("x", f32(batch, seq, k(768))), b.Input("bias", f32(k(768))))
		}, "f32[batch,seq,768]"},
		{"mask broadcast", func(b *ir.Builder) *ir.Value {
			return b.Op("Add", b.Input("s", f32(batch, k(12), seq, seq)), b.Input("m", f32(batch, k(1), k(1), seq)))
		}, "f32[batch,12,seq,seq]"},
		{"one against symbol", func(b *ir.Builder) *ir.Value {
			return b.Op("Mul", b.Input("a", f32(k(1), seq)), b.Input("c", f32(batch, k(1))))
		}, "f32[batch,seq]"},
		{"different symbols stay open", func(b *ir.Builder) *ir.Value {
			return b.Op("Sub", b.Input("a", f32(seq)), b.Input("c", f32(ir.Sym("other"))))
		}, "f32[?]"},
		{"known beats symbol", func(b *ir.Builder) *ir.Value {
			return b.Op("Add", b.Input("a", f32(seq, k(4))), b.Input("c", f32(k(8), k(4))))
		}, "f32[8,4]"},
		{"comparison is bool", func(b *ir.Builder) *ir.Value {
			return b.Op("Less", b.Input("a", f32(batch, seq)), b.Input("c", f32()))
		}, "bool[batch,seq]"},
		{"where takes X's type", func(b *ir.Builder) *ir.Value {
			return b.Op("Where", b.Input("c", ir.TensorOf(ir.Bool, k(1), k(1), seq, seq)),
				b.Input("x", f32(batch, k(12), seq, seq)), b.Input("y", f32()))
		}, "f32[batch,12,seq,seq]"},
		{"variadic max", func(b *ir.Builder) *ir.Value {
			return b.Op("Max", b.Input("a", f32(k(3), k(1))), b.Input("c", f32(k(4))), b.Input("d", f32(k(1))))
		}, "f32[3,4]"},
		{"pow keeps base type", func(b *ir.Builder) *ir.Value {
			return b.Op("Pow", b.Input("a", f32(batch, k(8))), b.Input("e", ir.TensorOf(ir.Int64)))
		}, "f32[batch,8]"},
		{"cast", func(b *ir.Builder) *ir.Value {
			return b.Op("Cast", b.Input("a", f32(batch, seq)), ir.IntAttr("to", int64(ir.Float16)))
		}, "f16[batch,seq]"},
		{"castlike", func(b *ir.Builder) *ir.Value {
			return b.Op("CastLike", b.Input("a", f32(batch)), b.Input("l", ir.TensorOf(ir.Double)))
		}, "f64[batch]"},
		{"isnan", func(b *ir.Builder) *ir.Value {
			return b.Op("IsNaN", b.Input("a", f32(batch, k(2))))
		}, "bool[batch,2]"},
		{"unknown rank", func(b *ir.Builder) *ir.Value {
			return b.Op("Add", b.Input("a", ir.TensorOfUnknownRank(ir.Float)), b.Input("c", f32(k(2))))
		}, "f32[*]"},
	})
}

func TestInferMatMulFamily(t *testing.T) {
	runShapeCases(t, 17, []shapeCase{
		{"projection", func(b *ir.Builder) *ir.Value {
			return b.Op("MatMul", b.Input("x", f32(batch, seq, k(768))), b.Input("w", f32(k(768), k(3072))))
		}, "f32[batch,seq,3072]"},
		{"scores", func(b *ir.Builder) *ir.Value {
			return b.Op("MatMul", b.Input("q", f32(batch, k(12), seq, k(64))), b.Input("kt", f32(batch, k(12), k(64), seq)))
		}, "f32[batch,12,seq,seq]"},
		{"batch broadcast", func(b *ir.Builder) *ir.Value {
			return b.Op("MatMul", b.Input("a", f32(k(1), k(5), k(2), k(3))), b.Input("c", f32(k(4), k(1), k(3), k(6))))
		}, "f32[4,5,2,6]"},
		{"vector times matrix", func(b *ir.Builder) *ir.Value {
			return b.Op("MatMul", b.Input("a", f32(k(3))), b.Input("c", f32(batch, k(3), k(6))))
		}, "f32[batch,6]"},
		{"matrix times vector", func(b *ir.Builder) *ir.Value {
			return b.Op("MatMul", b.Input("a", f32(batch, k(2), k(3))), b.Input("c", f32(k(3))))
		}, "f32[batch,2]"},
		{"dot", func(b *ir.Builder) *ir.Value {
			return b.Op("MatMul", b.Input("a", f32(k(3))), b.Input("c", f32(k(3))))
		}, "f32[]"},
		{"gemm transB", func(b *ir.Builder) *ir.Value {
			return b.Op("Gemm", b.Input("a", f32(batch, k(768))), b.Input("w", f32(k(10), k(768))), ir.IntAttr("transB", 1))
		}, "f32[batch,10]"},
		{"einsum explicit", func(b *ir.Builder) *ir.Value {
			return b.Op("Einsum", b.Input("q", f32(batch, k(12), seq, k(64))), b.Input("kk", f32(batch, k(12), ir.Sym("kv"), k(64))),
				ir.StringAttr("equation", "bhqd,bhkd->bhqk"))
		}, "f32[batch,12,seq,kv]"},
		{"einsum implicit", func(b *ir.Builder) *ir.Value {
			return b.Op("Einsum", b.Input("a", f32(k(2), k(3))), b.Input("c", f32(k(3), k(5))), ir.StringAttr("equation", "ij,jk"))
		}, "f32[2,5]"},
		{"einsum ellipsis", func(b *ir.Builder) *ir.Value {
			return b.Op("Einsum", b.Input("a", f32(batch, k(2), k(3))), b.Input("c", f32(k(1), k(3), k(5))), ir.StringAttr("equation", "...ij,...jk->...ik"))
		}, "f32[batch,2,5]"},
		{"einsum transpose", func(b *ir.Builder) *ir.Value {
			return b.Op("Einsum", b.Input("a", f32(k(2), seq)), ir.StringAttr("equation", "ij->ji"))
		}, "f32[seq,2]"},
	})
}

// TestInferTorchScriptReshape is the BERT self-attention head split as the
// TorchScript exporter writes it: the target shape is computed at run time
// from Shape -> Gather -> Unsqueeze -> Concat.
func TestInferTorchScriptReshape(t *testing.T) {
	b := ir.NewBuilder(13)
	x := b.Input("x", f32(batch, seq, k(768)))
	shape := b.Op("Shape", x)
	bsz := b.Op("Gather", shape, scalar(b, "zero", 0), ir.IntAttr("axis", 0))
	slen := b.Op("Gather", shape, scalar(b, "one", 1), ir.IntAttr("axis", 0))
	axes0 := ints(b, "axes0", 0)
	ub := b.Op("Unsqueeze", bsz, axes0)
	us := b.Op("Unsqueeze", slen, axes0)
	target := b.Op("Concat", ub, us, ints(b, "heads", 12), ints(b, "hd", 64), ir.IntAttr("axis", 0))
	split := b.Op("Reshape", x, target)
	perm := b.Op("Transpose", split, ir.IntsAttr("perm", 0, 2, 1, 3))
	back := b.Op("Transpose", perm, ir.IntsAttr("perm", 0, 2, 1, 3))
	merged := b.Op("Reshape", back, b.Op("Concat", ub, us, ints(b, "minus1", -1), ir.IntAttr("axis", 0)))
	flat := b.Op("Reshape", x, ints(b, "flat", -1, 768))
	unflat := b.Op("Reshape", flat, b.Op("Concat", ub, us, ints(b, "m1", -1), ir.IntAttr("axis", 0)))
	copied := b.Op("Reshape", x, ints(b, "copy", 0, 0, 12, -1))
	b.Output(merged, unflat, copied)
	infer(t, b)

	wantType(t, shape, "i64[3]")
	wantType(t, bsz, "i64[]")
	wantType(t, target, "i64[4]")
	wantType(t, split, "f32[batch,seq,12,64]")
	wantType(t, perm, "f32[batch,12,seq,64]")
	wantType(t, merged, "f32[batch,seq,768]")
	wantType(t, flat, "f32[batch*seq,768]")
	wantType(t, unflat, "f32[batch,seq,768]")
	wantType(t, copied, "f32[batch,seq,12,64]")
	if err := ir.Verify(b.Model()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestInferShapeArithmetic follows run-time shape computations through
// arithmetic, Slice, Range, ConstantOfShape, Expand, Where/Equal.
func TestInferShapeArithmetic(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(batch, seq, k(768)))
	past := b.Input("past", f32(batch, k(12), ir.Sym("past_seq"), k(64)))
	shape := b.Op("Shape", x)
	last := b.Op("Slice", shape, ints(b, "s", -1), ints(b, "e", 9223372036854775807))
	slen := b.Op("Gather", shape, scalar(b, "one", 1))
	pastLen := b.Op("Gather", b.Op("Shape", past), scalar(b, "two", 2))
	total := b.Op("Add", pastLen, slen)
	positions := b.Op("Range", pastLen, total, scalar(b, "step", 1))
	zeroBased := b.Op("Range", scalar(b, "z", 0), slen, scalar(b, "st", 1))
	heads := b.Op("Div", b.Op("Gather", shape, scalar(b, "i2", 2)), scalar(b, "hd", 64))
	ones := b.Op("ConstantOfShape", shape)
	mask := b.Op("Expand", b.Input("m", f32(batch, k(1), k(1), k(1))),
		b.Op("Concat", b.Op("Unsqueeze", b.Op("Gather", shape, scalar(b, "i0", 0)), ints(b, "a0", 0)),
			ints(b, "one1", 1), b.Op("Unsqueeze", slen, ints(b, "a1", 0)), b.Op("Unsqueeze", total, ints(b, "a2", 0)), ir.IntAttr("axis", 0)))
	// TorchScript's Expand pattern: Where(Equal(shape, -1), ones, shape).
	tgt := ints(b, "tgt", -1, 12, 1)
	fixed := b.Op("Where", b.Op("Equal", tgt, ints(b, "neg", -1)), b.Op("ConstantOfShape", ints(b, "three", 3), ir.TensorAttr("value", ir.Int64Tensor([]int64{1}, 1))), tgt)
	size := b.Op("Size", x)
	b.Output(last, positions, zeroBased, heads, ones, mask, fixed, size)
	st, err := ir.InferShapes(b.Model())
	if err != nil {
		t.Fatal(err)
	}
	wantType(t, last, "i64[1]")
	wantType(t, positions, "i64[seq]")
	wantType(t, zeroBased, "i64[seq]")
	wantType(t, heads, "i64[]")
	wantType(t, ones, "f32[batch,seq,768]")
	wantType(t, mask, "f32[batch,1,seq,past_seq+seq]")
	wantType(t, total, "i64[]")
	// The contents are checked through ops that consume them.
	if st.ShapeTensor == 0 {
		t.Errorf("no shape-tensor contents were tracked")
	}
	useHeads := b.Op("Reshape", b.Input("v", f32(k(12))), b.Op("Unsqueeze", heads, ints(b, "a3", 0)))
	useFixed := b.Op("Expand", b.Input("w", f32(k(1))), fixed)
	useLast := b.Op("Reshape", b.Input("u", f32(k(768))), last)
	useSize := b.Op("Reshape", x, b.Op("Unsqueeze", size, ints(b, "a4", 0)))
	b.Output(useHeads, useFixed, useLast, useSize)
	infer(t, b)
	wantType(t, useHeads, "f32[12]")
	wantType(t, useFixed, "f32[1,12,1]")
	wantType(t, useLast, "f32[768]")
	wantType(t, useSize, "f32[768*batch*seq]")
}

func TestInferDataMovement(t *testing.T) {
	runShapeCases(t, 18, []shapeCase{
		{"transpose default", func(b *ir.Builder) *ir.Value {
			return b.Op("Transpose", b.Input("x", f32(batch, seq, k(3))))
		}, "f32[3,seq,batch]"},
		{"flatten symbolic", func(b *ir.Builder) *ir.Value {
			return b.Op("Flatten", b.Input("x", f32(batch, seq, k(4), k(2))), ir.IntAttr("axis", 2))
		}, "f32[batch*seq,8]"},
		{"squeeze input axes", func(b *ir.Builder) *ir.Value {
			return b.Op("Squeeze", b.Input("x", f32(batch, k(1), seq)), ints(b, "ax", -2))
		}, "f32[batch,seq]"},
		{"unsqueeze two", func(b *ir.Builder) *ir.Value {
			return b.Op("Unsqueeze", b.Input("x", f32(batch, seq)), ints(b, "ax", 1, -1))
		}, "f32[batch,1,seq,1]"},
		{"concat symbolic axis", func(b *ir.Builder) *ir.Value {
			return b.Op("Concat", b.Input("p", f32(batch, k(12), ir.Sym("past"), k(64))), b.Input("c", f32(batch, k(12), seq, k(64))), ir.IntAttr("axis", 2))
		}, "f32[batch,12,past+seq,64]"},
		{"concat known", func(b *ir.Builder) *ir.Value {
			return b.Op("Concat", b.Input("p", f32(ir.UnknownDim(), k(2))), b.Input("c", f32(k(3), k(5))), ir.IntAttr("axis", 1))
		}, "f32[3,7]"},
		{"slice known", func(b *ir.Builder) *ir.Value {
			return b.Op("Slice", b.Input("x", f32(k(20), k(10), seq)), ints(b, "s", 0, 1), ints(b, "e", 3, -1), ints(b, "a", 0, 1), ints(b, "st", 1, 2))
		}, "f32[3,4,seq]"},
		{"slice reverse", func(b *ir.Builder) *ir.Value {
			return b.Op("Slice", b.Input("x", f32(k(20), k(10))), ints(b, "s", -1), ints(b, "e", -1000), ints(b, "a", 1), ints(b, "st", -3))
		}, "f32[20,4]"},
		{"slice keeps symbolic", func(b *ir.Builder) *ir.Value {
			return b.Op("Slice", b.Input("x", f32(batch, seq)), ints(b, "s", 0), ints(b, "e", 9223372036854775807), ints(b, "a", 1))
		}, "f32[batch,seq]"},
		{"gather rows", func(b *ir.Builder) *ir.Value {
			return b.Op("Gather", b.Input("emb", f32(k(30522), k(768))), b.Input("ids", ir.TensorOf(ir.Int64, batch, seq)))
		}, "f32[batch,seq,768]"},
		{"gather axis 1 scalar", func(b *ir.Builder) *ir.Value {
			return b.Op("Gather", b.Input("x", f32(batch, seq, k(768))), scalar(b, "i", 0), ir.IntAttr("axis", 1))
		}, "f32[batch,768]"},
		{"gather elements", func(b *ir.Builder) *ir.Value {
			return b.Op("GatherElements", b.Input("x", f32(k(3), k(3))), b.Input("i", ir.TensorOf(ir.Int64, k(2), k(3))))
		}, "f32[2,3]"},
		{"gather nd", func(b *ir.Builder) *ir.Value {
			return b.Op("GatherND", b.Input("x", f32(k(2), k(3), k(4))), b.Input("i", ir.TensorOf(ir.Int64, batch, k(2))))
		}, "f32[batch,4]"},
		{"split even", func(b *ir.Builder) *ir.Value {
			return b.OpN("Split", 3, b.Input("x", f32(batch, seq, k(2304))), ir.IntAttr("axis", -1))[1]
		}, "f32[batch,seq,768]"},
		{"split sizes", func(b *ir.Builder) *ir.Value {
			return b.OpN("Split", 2, b.Input("x", f32(k(10), seq)), ints(b, "sp", 4, 6))[1]
		}, "f32[6,seq]"},
		{"split num_outputs uneven", func(b *ir.Builder) *ir.Value {
			return b.OpN("Split", 3, b.Input("x", f32(k(7))), ir.IntAttr("num_outputs", 3))[2]
		}, "f32[1]"},
		{"tile", func(b *ir.Builder) *ir.Value {
			return b.Op("Tile", b.Input("x", f32(batch, k(3))), ints(b, "r", 2, 2))
		}, "f32[2*batch,6]"},
		{"pad", func(b *ir.Builder) *ir.Value {
			return b.Op("Pad", b.Input("x", f32(batch, k(3), k(5))), ints(b, "p", 0, 1, 2, 0, 1, 2))
		}, "f32[batch,5,9]"},
		{"pad axes", func(b *ir.Builder) *ir.Value {
			return b.Op("Pad", b.Input("x", f32(batch, seq)), ints(b, "p", 1, 1), nil, ints(b, "ax", -1))
		}, "f32[batch,seq+2]"},
		{"shape start end", func(b *ir.Builder) *ir.Value {
			return b.Op("Shape", b.Input("x", f32(batch, seq, k(3))), ir.IntAttr("start", 1), ir.IntAttr("end", -1))
		}, "i64[1]"},
		{"constant of shape", func(b *ir.Builder) *ir.Value {
			return b.Op("ConstantOfShape", ints(b, "s", 2, 3), ir.TensorAttr("value", ir.Int64Tensor([]int64{1}, 5)))
		}, "i64[2,3]"},
		{"range known", func(b *ir.Builder) *ir.Value {
			return b.Op("Range", scalar(b, "a", 10), scalar(b, "l", 1), scalar(b, "d", -3))
		}, "i64[3]"},
		{"reduce sum input no keepdims", func(b *ir.Builder) *ir.Value {
			return b.Op("ReduceSum", b.Input("x", f32(batch, seq, k(768))), ints(b, "ax", 1), ir.IntAttr("keepdims", 0))
		}, "f32[batch,768]"},
		{"reduce all", func(b *ir.Builder) *ir.Value {
			return b.Op("ReduceMax", b.Input("x", f32(batch, seq)), ir.IntAttr("keepdims", 0))
		}, "f32[]"},
		{"reduce noop", func(b *ir.Builder) *ir.Value {
			return b.Op("ReduceMax", b.Input("x", f32(batch, seq)), ir.IntAttr("noop_with_empty_axes", 1))
		}, "f32[batch,seq]"},
		{"argmax", func(b *ir.Builder) *ir.Value {
			return b.Op("ArgMax", b.Input("x", f32(batch, seq, k(5))), ir.IntAttr("axis", -1), ir.IntAttr("keepdims", 0))
		}, "i64[batch,seq]"},
		{"topk symbolic k", func(b *ir.Builder) *ir.Value {
			x := b.Input("x", f32(batch, k(100)))
			kk := b.Op("Gather", b.Op("Shape", b.Input("y", f32(seq))), ints(b, "i", 0))
			return b.OpN("TopK", 2, x, kk)[1]
		}, "i64[batch,seq]"},
		{"nonzero", func(b *ir.Builder) *ir.Value {
			return b.Op("NonZero", b.Input("x", f32(batch, seq)))
		}, "i64[2,?]"},
		{"onehot", func(b *ir.Builder) *ir.Value {
			return b.Op("OneHot", b.Input("i", ir.TensorOf(ir.Int64, batch)), scalar(b, "d", 10), b.Input("v", f32(k(2))), ir.IntAttr("axis", 0))
		}, "f32[10,batch]"},
		{"depth to space", func(b *ir.Builder) *ir.Value {
			return b.Op("DepthToSpace", b.Input("x", f32(batch, k(16), ir.Sym("h"), k(3))), ir.IntAttr("blocksize", 2))
		}, "f32[batch,4,2*h,6]"},
		{"space to depth", func(b *ir.Builder) *ir.Value {
			return b.Op("SpaceToDepth", b.Input("x", f32(batch, k(3), k(8), k(6))), ir.IntAttr("blocksize", 2))
		}, "f32[batch,12,4,3]"},
		{"resize sizes", func(b *ir.Builder) *ir.Value {
			return b.Op("Resize", b.Input("x", f32(batch, k(3), k(8), k(8))), nil, nil, ints(b, "sz", 1, 3, 16, 12))
		}, "f32[1,3,16,12]"},
		{"resize scales", func(b *ir.Builder) *ir.Value {
			return b.Op("Resize", b.Input("x", f32(batch, k(3), k(8), k(8))), nil, b.Const("sc", ir.Float32Tensor(nil, 1, 1, 2, 0.5)))
		}, "f32[batch,3,16,4]"},
		{"expand", func(b *ir.Builder) *ir.Value {
			return b.Op("Expand", b.Input("x", f32(k(3), k(1))), ints(b, "s", 2, 1, 6))
		}, "f32[2,3,6]"},
	})
}

func TestInferNetworkOps(t *testing.T) {
	runShapeCases(t, 23, []shapeCase{
		{"layernorm mean", func(b *ir.Builder) *ir.Value {
			return b.OpN("LayerNormalization", 3, b.Input("x", f32(batch, seq, k(768))), b.Input("g", f32(k(768))), b.Input("bb", f32(k(768))))[1]
		}, "f32[batch,seq,1]"},
		{"softmax", func(b *ir.Builder) *ir.Value {
			return b.Op("Softmax", b.Input("x", f32(batch, k(12), seq, seq)))
		}, "f32[batch,12,seq,seq]"},
		{"attention 3d y", func(b *ir.Builder) *ir.Value {
			return b.Op("Attention", b.Input("q", f32(batch, seq, k(768))), b.Input("kk", f32(batch, ir.Sym("kv"), k(256))),
				b.Input("v", f32(batch, ir.Sym("kv"), k(256))), ir.IntAttr("q_num_heads", 12), ir.IntAttr("kv_num_heads", 4))
		}, "f32[batch,seq,768]"},
		{"attention 4d present key", func(b *ir.Builder) *ir.Value {
			return b.OpN("Attention", 3, b.Input("q", f32(batch, k(8), seq, k(64))), b.Input("kk", f32(batch, k(2), seq, k(64))),
				b.Input("v", f32(batch, k(2), seq, k(32))), nil, b.Input("pk", f32(batch, k(2), ir.Sym("past"), k(64))), b.Input("pv", f32(batch, k(2), ir.Sym("past"), k(32))))[1]
		}, "f32[batch,2,past+seq,64]"},
		{"attention 4d qk output", func(b *ir.Builder) *ir.Value {
			return b.OpN("Attention", 4, b.Input("q", f32(batch, k(8), seq, k(64))), b.Input("kk", f32(batch, k(2), seq, k(64))),
				b.Input("v", f32(batch, k(2), seq, k(32))))[3]
		}, "f32[batch,8,seq,seq]"},
		{"vit patch conv", func(b *ir.Builder) *ir.Value {
			return b.Op("Conv", b.Input("x", f32(batch, k(3), k(224), k(224))), b.Input("w", f32(k(768), k(3), k(16), k(16))), ir.IntsAttr("strides", 16, 16))
		}, "f32[batch,768,14,14]"},
		{"conv padded", func(b *ir.Builder) *ir.Value {
			return b.Op("Conv", b.Input("x", f32(k(1), k(1), k(7), k(5))), b.Input("w", f32(k(1), k(1), k(3), k(3))),
				ir.IntsAttr("strides", 2, 2), ir.IntsAttr("pads", 1, 1, 1, 1))
		}, "f32[1,1,4,3]"},
		{"conv same", func(b *ir.Builder) *ir.Value {
			return b.Op("Conv", b.Input("x", f32(k(1), k(1), k(7), k(5))), b.Input("w", f32(k(4), k(1), k(3), k(3))),
				ir.IntsAttr("strides", 2, 2), ir.StringAttr("auto_pad", "SAME_UPPER"))
		}, "f32[1,4,4,3]"},
		{"maxpool", func(b *ir.Builder) *ir.Value {
			return b.Op("MaxPool", b.Input("x", f32(batch, k(3), k(32), k(32))), ir.IntsAttr("kernel_shape", 2, 2), ir.IntsAttr("strides", 2, 2))
		}, "f32[batch,3,16,16]"},
		{"global pool", func(b *ir.Builder) *ir.Value {
			return b.Op("GlobalAveragePool", b.Input("x", f32(batch, k(3), k(32), k(32))))
		}, "f32[batch,3,1,1]"},
		{"batchnorm", func(b *ir.Builder) *ir.Value {
			c := f32(k(3))
			return b.Op("BatchNormalization", b.Input("x", f32(batch, k(3), k(4))), b.Input("s", c), b.Input("bb", c), b.Input("m", c), b.Input("v", c))
		}, "f32[batch,3,4]"},
		{"dropout mask", func(b *ir.Builder) *ir.Value {
			return b.OpN("Dropout", 2, b.Input("x", f32(batch, seq)))[1]
		}, "bool[batch,seq]"},
		{"tfc attention", func(b *ir.Builder) *ir.Value {
			// Q [B,Hq,Sq,D], K/V [B,Hkv,Skv,D] (GQA 12:4): Y [B,Hq,Sq,Dv].
			return b.Op("tfc::Attention", b.Input("q", f32(batch, k(12), seq, k(64))), b.Input("kk", f32(batch, k(4), seq, k(64))), b.Input("v", f32(batch, k(4), seq, k(32))), ir.FloatAttr("scale", 0.125))
		}, "f32[batch,12,seq,32]"},
		{"tfc pack offsets", func(b *ir.Builder) *ir.Value {
			return b.OpN("tfc::PackTokens", 3, b.Input("x", f32(batch, seq, k(768))), b.Input("m", ir.TensorOf(ir.Int64, batch, seq)))[1]
		}, "i64[batch+1]"},
		{"lstm", func(b *ir.Builder) *ir.Value {
			return b.OpN("LSTM", 3, b.Input("x", f32(seq, batch, k(10))), b.Input("w", f32(k(2), k(80), k(10))), b.Input("r", f32(k(2), k(80), k(20))),
				ir.IntAttr("hidden_size", 20), ir.StringAttr("direction", "bidirectional"))[0]
		}, "f32[seq,2,batch,20]"},
	})
}

// TestInferOpsetDependent checks ops whose inputs moved from attributes to
// inputs between opsets.
func TestInferOpsetDependent(t *testing.T) {
	runShapeCases(t, 11, []shapeCase{
		{"reduce mean attr", func(b *ir.Builder) *ir.Value {
			return b.Op("ReduceMean", b.Input("x", f32(batch, seq, k(768))), ir.IntsAttr("axes", -1))
		}, "f32[batch,seq,1]"},
		{"unsqueeze attr", func(b *ir.Builder) *ir.Value {
			return b.Op("Unsqueeze", b.Input("x", f32(batch)), ir.IntsAttr("axes", 0))
		}, "f32[1,batch]"},
		{"reducesum attr", func(b *ir.Builder) *ir.Value {
			return b.Op("ReduceSum", b.Input("x", f32(batch, k(4))), ir.IntsAttr("axes", 1), ir.IntAttr("keepdims", 0))
		}, "f32[batch]"},
		{"split attr", func(b *ir.Builder) *ir.Value {
			return b.OpN("Split", 2, b.Input("x", f32(k(5))), ir.IntsAttr("split", 2, 3))[0]
		}, "f32[2]"},
	})
	runShapeCases(t, 9, []shapeCase{
		{"slice attrs", func(b *ir.Builder) *ir.Value {
			return b.Op("Slice", b.Input("x", f32(k(10), k(8))), ir.IntsAttr("starts", 1), ir.IntsAttr("ends", 4), ir.IntsAttr("axes", 1))
		}, "f32[10,3]"},
		{"pad attr", func(b *ir.Builder) *ir.Value {
			return b.Op("Pad", b.Input("x", f32(k(2), k(2))), ir.IntsAttr("pads", 1, 0, 1, 0))
		}, "f32[4,2]"},
		{"topk attr", func(b *ir.Builder) *ir.Value {
			return b.OpN("TopK", 2, b.Input("x", f32(batch, k(10))), ir.IntAttr("k", 3))[0]
		}, "f32[batch,3]"},
	})
	// In opset 13 a ReduceSum with no axes input reduces everything, even
	// if a stale axes attribute is present.
	runShapeCases(t, 13, []shapeCase{
		{"reducesum input era", func(b *ir.Builder) *ir.Value {
			return b.Op("ReduceSum", b.Input("x", f32(batch, k(4))), ir.IntAttr("keepdims", 0))
		}, "f32[]"},
	})
}

func TestInferControlFlow(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(batch, seq))
	cond := b.Input("c", ir.TensorOf(ir.Bool))
	g := b.Graph()
	thenG := ir.NewSubgraph("then", g, nil)
	elseG := ir.NewSubgraph("else", g, nil)
	// Both branches use the outer x; then gives [batch,seq], else
	// [batch,1]: they agree on the rank and the batch dimension.
	tOut := thenG.Append(ir.NodeSpec{Op: "Relu", Inputs: []*ir.Value{x}, Outputs: []string{"t"}}).Outputs[0]
	thenG.AddOutput(tOut)
	eOut := elseG.Append(ir.NodeSpec{Op: "ReduceMax", Inputs: []*ir.Value{x}, Attrs: []*ir.Attr{ir.IntsAttr("axes", 1)}, Outputs: []string{"e"}}).Outputs[0]
	elseG.AddOutput(eOut)
	out := b.Op("If", cond, ir.GraphAttr("then_branch", thenG), ir.GraphAttr("else_branch", elseG))
	owner, _ := out.Producer()
	thenG.ParentNode, elseG.ParentNode = owner, owner
	b.Output(out)
	infer(t, b)
	wantType(t, tOut, "f32[batch,seq]")
	wantType(t, eOut, "f32[batch,1]")
	wantType(t, out, "f32[batch,?]")
	if err := ir.Verify(b.Model()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestInferErrors: provable contradictions are errors naming the node.
func TestInferErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *ir.Builder)
		want  string
	}{
		{"broadcast", func(b *ir.Builder) {
			b.Op("Add", b.Input("a", f32(k(3), k(4))), b.Input("c", f32(k(5), k(4))))
		}, "do not broadcast"},
		{"matmul inner", func(b *ir.Builder) {
			b.Op("MatMul", b.Input("a", f32(batch, k(768))), b.Input("w", f32(k(512), k(10))))
		}, "inner dimensions 768 and 512"},
		{"reshape count", func(b *ir.Builder) {
			b.Op("Reshape", b.Input("a", f32(k(3), k(4))), ints(b, "s", 5, 2))
		}, "cannot reshape"},
		{"reshape not multiple", func(b *ir.Builder) {
			b.Op("Reshape", b.Input("a", f32(k(3), k(4))), ints(b, "s", 5, -1))
		}, "not a multiple"},
		{"concat", func(b *ir.Builder) {
			b.Op("Concat", b.Input("a", f32(k(3), k(4))), b.Input("c", f32(k(2), k(5))), ir.IntAttr("axis", 0))
		}, "must be equal"},
		{"gather index", func(b *ir.Builder) {
			b.Op("Gather", b.Op("Shape", b.Input("a", f32(batch, seq))), scalar(b, "i", 5))
		}, "out of range"},
		{"declared", func(b *ir.Builder) {
			v := b.Op("Relu", b.Input("a", f32(batch, k(4))))
			v.Type = f32(batch, k(5))
		}, `output "relu_0"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := ir.NewBuilder(17)
			tc.build(b)
			_, err := ir.InferShapes(b.Model())
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "node \"") {
				t.Errorf("error %q does not name the node and %q", err, tc.want)
			}
		})
	}
}

// TestInferMergeKeepsDeclared: declared information is never lost.
func TestInferMergeKeepsDeclared(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(batch, ir.UnknownDim()))
	y := b.Op("Relu", x)
	y.Type = f32(ir.UnknownDim(), k(8))
	b.Output(y)
	infer(t, b)
	wantType(t, y, "f32[batch,8]")

	merged, err := ir.MergeTypes(f32(ir.Sym("n"), ir.UnknownDim()), f32(ir.Sym("m"), k(3)))
	if err != nil {
		t.Fatal(err)
	}
	if merged.String() != "f32[n,3]" {
		t.Errorf("MergeTypes gave %v, want f32[n,3]", merged)
	}
}

// TestVerifyUsesRules: Verify reports declared types that contradict a
// rule, and arity violations, but says nothing about unknown ops.
func TestVerifyUsesRules(t *testing.T) {
	b := ir.NewBuilder(17)
	y := b.Op("MatMul", b.Input("a", f32(batch, k(4))), b.Input("w", f32(k(4), k(6))))
	y.Type = f32(batch, k(7))
	b.Output(y)
	err := ir.Verify(b.Model())
	if err == nil || !strings.Contains(err.Error(), "MatMul") || !strings.Contains(err.Error(), "f32[batch,7]") {
		t.Errorf("Verify: got %v, want a contradiction naming MatMul and f32[batch,7]", err)
	}

	b = ir.NewBuilder(17)
	z := b.Op("Add", b.Input("a", f32(k(4))))
	b.Output(z)
	if err := ir.Verify(b.Model()); err == nil || !strings.Contains(err.Error(), "at least 2 inputs") {
		t.Errorf("Verify: got %v, want an arity error", err)
	}

	b = ir.NewBuilder(17)
	u := b.Op("custom::Thing", b.Input("a", f32(k(4))))
	u.Type = f32(k(99))
	b.Output(u)
	if err := ir.Verify(b.Model()); err != nil {
		t.Errorf("Verify of an unknown op: %v", err)
	}
}

// TestInferPositionIDsPattern is the BERT/RoBERTa position-id pattern of
// the TorchScript exporter: a fixed table [1, 512] sliced to [0:seq] (min
// of seq and 512), gathered and added to the token embeddings, where the
// broadcast proves the result has seq positions; and Expand's shape
// computed with Where(Equal(shape, -1), ones, shape).
func TestInferPositionIDsPattern(t *testing.T) {
	b := ir.NewBuilder(17)
	ids := b.Input("ids", ir.TensorOf(ir.Int64, batch, seq))
	emb := b.Op("Gather", b.Input("wte", f32(k(1000), k(64))), ids)
	shape := b.Op("Shape", ids)
	slen := b.Op("Unsqueeze", b.Op("Gather", shape, scalar(b, "one", 1)), ints(b, "ax", 0))
	pos := b.Op("Slice", b.Const("table", ir.Int64Tensor([]int64{1, 512}, make([]int64, 512)...)), ints(b, "z", 0), slen, ints(b, "a1", 1))
	posEmb := b.Op("Gather", b.Input("wpe", f32(k(512), k(64))), pos)
	sum := b.Op("Add", emb, posEmb)

	bsz := b.Op("Unsqueeze", b.Op("Gather", shape, scalar(b, "zero", 0)), ints(b, "ax2", 0))
	target := b.Op("Concat", bsz, ints(b, "m1", -1), ir.IntAttr("axis", 0))
	ones := b.Op("ConstantOfShape", ints(b, "two", 2), ir.TensorAttr("value", ir.Int64Tensor([]int64{1}, 1)))
	fixed := b.Op("Where", b.Op("Equal", target, b.Op("Mul", ones, scalar(b, "neg", -1))), ones, target)
	expanded := b.Op("Expand", b.Input("row", ir.TensorOf(ir.Int64, k(1), k(66))), fixed)
	b.Output(sum, expanded)
	infer(t, b)
	wantType(t, pos, "i64[1,min(seq,512)]")
	wantType(t, sum, "f32[batch,seq,64]")
	wantType(t, expanded, "i64[batch,66]")
}

func TestInferCastAndNegContents(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", f32(batch, seq))
	// Range bounds written as float constants cast to int64 (dynamo).
	start := b.Op("Cast", b.Const("f0", ir.Float32Tensor([]int64{}, 0)), ir.IntAttr("to", int64(ir.Int64)))
	step := b.Op("CastLike", b.Const("f1", ir.Float32Tensor([]int64{}, 1)), scalar(b, "like", 0))
	slen := b.Op("Gather", b.Op("Shape", x), scalar(b, "one", 1))
	r := b.Op("Range", start, slen, step)
	// Neg of a constant axis list feeds ConstantOfShape (expanded
	// LayerNormalization).
	n := b.Op("ConstantOfShape", b.Op("Neg", ints(b, "ax", -2)))
	half := b.Op("Range", b.Const("h", ir.Float32Tensor([]int64{}, 0.5)), scalar(b, "l", 4), scalar(b, "s", 1))
	b.Output(r, n, half)
	infer(t, b)
	wantType(t, r, "i64[seq]")
	wantType(t, n, "f32[2]")
	// A float start that is not a whole number gives no contents, and a
	// mixed-type Range no length.
	wantType(t, half, "f32[?]")
}

func TestInferSequencesAndLosses(t *testing.T) {
	runShapeCases(t, 17, []shapeCase{
		{"sequence construct then at", func(b *ir.Builder) *ir.Value {
			s := b.Op("SequenceConstruct", b.Input("a", f32(batch, k(3))), b.Input("c", f32(batch, k(4))))
			return b.Op("SequenceAt", s, scalar(b, "i", 0))
		}, "f32[batch,?]"},
		{"sequence length", func(b *ir.Builder) *ir.Value {
			return b.Op("SequenceLength", b.Op("SequenceEmpty"))
		}, "i64[]"},
		{"nll none", func(b *ir.Builder) *ir.Value {
			return b.Op("NegativeLogLikelihoodLoss", b.Input("x", f32(batch, k(5), seq)), b.Input("t", ir.TensorOf(ir.Int64, batch, seq)), ir.StringAttr("reduction", "none"))
		}, "f32[batch,seq]"},
		{"sce mean", func(b *ir.Builder) *ir.Value {
			return b.Op("SoftmaxCrossEntropyLoss", b.Input("x", f32(batch, k(5))), b.Input("t", ir.TensorOf(ir.Int64, batch)))
		}, "f32[]"},
	})
}
