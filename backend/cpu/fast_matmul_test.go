package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
	"github.com/tfc-compiler/tfc/ir"
)

const fastGuard = 11

var nan32 = float32(math.NaN())

// guardedFloats returns n random values in the middle of a buffer whose
// fastGuard cells on each side are NaN: a kernel that reads past its
// operand turns the result into NaN.
func guardedFloats(rng *rand.Rand, n int) []float32 {
	buf := make([]float32, n+2*fastGuard)
	for i := range buf {
		buf[i] = nan32
	}
	copy(buf[fastGuard:], randFloats(rng, n))
	return buf[fastGuard : fastGuard+n : fastGuard+n]
}

// guardedOutput makes the next n-element float32 allocation of r land in
// the middle of a NaN-guarded buffer and returns a check that the guard
// cells are untouched.
func guardedOutput(r *runState, n int) func() error {
	buf := make([]float32, n+2*fastGuard)
	for i := range buf {
		buf[i] = nan32
	}
	r.pool[poolKey{ir.Float, n}] = append(r.pool[poolKey{ir.Float, n}], buf[fastGuard:fastGuard+n])
	return func() error {
		for i := 0; i < fastGuard; i++ {
			if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[len(buf)-1-i])) {
				return fmt.Errorf("guard cell next to the output was overwritten")
			}
		}
		return nil
	}
}

// compareF32 compares a fast result with the reference kernel's within a
// float32 rounding bound that grows with the summed depth k.
func compareF32(got, want []float32, k int) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d elements, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(g) || math.Abs(g-w) > 4*(1e-5+1e-6*float64(k)*math.Max(1, math.Abs(w))) {
			return fmt.Errorf("element %d = %g, reference %g", i, g, w)
		}
	}
	return nil
}

// TestFastMatMulMatchesReference runs the gemm-backed MatMul (plain, with
// a pre-packed B, batched, broadcast) against the reference kernel
// matmulTyped at awkward sizes, with NaN guards around every operand and
// the output.
func TestFastMatMulMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	type shapes struct{ a, b []int }
	var cases []shapes
	for _, m := range awkwardSizes {
		for _, k := range []int{1, 7, 64, 65} {
			for _, n := range []int{1, 63, 65} {
				cases = append(cases, shapes{[]int{m, k}, []int{k, n}})
			}
		}
	}
	cases = append(cases,
		shapes{[]int{2, 7, 65}, []int{65, 33}},               // rows of a batch merged
		shapes{[]int{3, 2, 7, 65}, []int{3, 2, 65, 9}},       // equal batches
		shapes{[]int{1, 2, 7, 65}, []int{3, 1, 65, 9}},       // mixed broadcast
		shapes{[]int{7, 64}, []int{5, 64, 17}},               // A broadcast
		shapes{[]int{4, 13, 8}, []int{1, 8, 129}},            // B broadcast with a leading 1
		shapes{[]int{65}, []int{65, 7}},                      // 1-D A
		shapes{[]int{2, 7, 63}, []int{63}},                   // 1-D B
		shapes{[]int{2, 0, 5}, []int{5, 3}},                  // empty M
		shapes{[]int{2, 4, 0}, []int{0, 3}},                  // empty K: zeros
		shapes{[]int{2, 12, 128, 64}, []int{2, 12, 64, 128}}, // attention-shaped
	)
	for _, threads := range []int{1, 3} {
		for _, c := range cases {
			name := fmt.Sprintf("threads=%d %v x %v", threads, c.a, c.b)
			a := Float32Tensor(c.a, guardedFloats(rng, shapeSize(c.a)))
			b := Float32Tensor(c.b, guardedFloats(rng, shapeSize(c.b)))
			batch, aB, bB, outShape, m, k, n, err := matmulShapes(c.a, c.b)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, shapeSize(outShape))
			matmulTyped(testState(1), f32(a), f32(b), want, batch, aB, bB, m, k, n)

			var packings []*gemm.PackedB
			packings = append(packings, nil)
			if len(c.b) == 2 && k > 0 && n > 0 {
				pb, err := gemm.PackB(false, k, n, f32(b), n)
				if err != nil {
					t.Fatal(err)
				}
				packings = append(packings, pb)
			}
			for _, pb := range packings {
				r := testState(threads)
				check := guardedOutput(r, len(want))
				got, err := matmulFastF32(r, a, b, pb)
				if err != nil {
					t.Fatalf("%s packed=%v: %v", name, pb != nil, err)
				}
				if !sameShape(got.Shape, outShape) {
					t.Fatalf("%s: shape %v, want %v", name, got.Shape, outShape)
				}
				if err := check(); err != nil {
					t.Fatalf("%s packed=%v: %v", name, pb != nil, err)
				}
				if err := compareF32(f32(got), want, k); err != nil {
					t.Fatalf("%s packed=%v: %v", name, pb != nil, err)
				}
			}
		}
	}
}

// TestFastGemmMatchesReference compares the gemm-backed Gemm (bias
// prefilled and scaled by beta, alpha, transposes, constant B packed at
// compile time) with the float64 reference kernel on the same node.
func TestFastGemmMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, tc := range []struct {
		m, k, n        int
		transA, transB bool
		alpha, beta    float32
		cShape         []int // nil: no C
		constB         bool
	}{
		{1, 1, 1, false, false, 1, 1, []int{1}, false},
		{7, 65, 63, false, true, 1, 1, []int{63}, true},
		{64, 7, 65, true, false, 0.5, 2, []int{64, 65}, true},
		{65, 64, 1, true, true, 1, 0.25, []int{65, 1}, false},
		{63, 63, 7, false, false, 2, 1, []int{1, 7}, true},
		{5, 9, 130, false, true, 1, 1, nil, true},
		{5, 9, 11, false, false, 1, 0, []int{5, 11}, false},
		{3, 9, 4, false, false, 1, 1, []int{}, false},
	} {
		name := fmt.Sprintf("%+v", tc)
		aShape := []int{tc.m, tc.k}
		if tc.transA {
			aShape = []int{tc.k, tc.m}
		}
		bShape := []int{tc.k, tc.n}
		if tc.transB {
			bShape = []int{tc.n, tc.k}
		}
		a := Float32Tensor(aShape, guardedFloats(rng, shapeSize(aShape)))
		bData := guardedFloats(rng, shapeSize(bShape))
		in := []*Tensor{a, Float32Tensor(bShape, bData)}
		if tc.cShape != nil {
			in = append(in, Float32Tensor(tc.cShape, guardedFloats(rng, shapeSize(tc.cShape))))
		}
		node := &ir.Node{Op: "Gemm", Attrs: []*ir.Attr{
			ir.FloatAttr("alpha", tc.alpha), ir.FloatAttr("beta", tc.beta),
			ir.IntAttr("transA", b2i(tc.transA)), ir.IntAttr("transB", b2i(tc.transB)),
		}}
		bVal := &ir.Value{Name: "B", Type: ir.TensorOf(ir.Float)}
		if tc.constB {
			dims := []int64{int64(bShape[0]), int64(bShape[1])}
			bVal.Const = ir.Float32Tensor(dims, bData...)
		}
		node.Inputs = []*ir.Value{{Name: "A"}, bVal}

		// The switch is read at build and at run time: off for both.
		fastKernels = false
		ref, err := buildGemm(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref(testState(1), in)
		fastKernels = true
		if err != nil {
			t.Fatalf("%s: reference: %v", name, err)
		}
		fast, err := buildGemm(node, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, threads := range []int{1, 2} {
			r := testState(threads)
			check := guardedOutput(r, tc.m*tc.n)
			got, err := fast(r, in)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := check(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := compareF32(f32(got[0]), f32(want[0]), tc.k); err != nil {
				t.Fatalf("%s threads=%d: %v", name, threads, err)
			}
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestFastMatMulErrors: bad shapes are errors naming the problem, never
// panics, on the packed and unpacked paths.
func TestFastMatMulErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	pb, err := gemm.PackB(false, 8, 4, randFloats(rng, 32), 4)
	if err != nil {
		t.Fatal(err)
	}
	a := Float32Tensor([]int{3, 7}, randFloats(rng, 21))
	b := Float32Tensor([]int{8, 4}, randFloats(rng, 32))
	if _, err := matmulFastF32(testState(2), a, b, pb); err == nil {
		t.Fatal("inner dimensions 7 and 8: no error")
	}
	if _, err := gemmFastF32(testState(2), a, b, nil, 1, 1, false, false, pb); err == nil {
		t.Fatal("Gemm inner dimensions 7 and 8: no error")
	}
	a = Float32Tensor([]int{3, 8}, randFloats(rng, 24))
	c := Float32Tensor([]int{2, 4}, randFloats(rng, 8))
	if _, err := gemmFastF32(testState(2), a, b, c, 1, 1, false, false, pb); err == nil {
		t.Fatal("C [2 4] against Y [3 4]: no error")
	}
}
