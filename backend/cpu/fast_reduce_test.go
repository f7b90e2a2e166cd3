package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// TestReduceFastMatchesReference: every Reduce* op with an inlined fold
// on float32 and float64 input, over random shapes (rank 0..5, size-1
// and empty axes) and random axes sets (including none: all axes, and
// noop_with_empty_axes), keepdims on and off, one and three threads,
// small inputs and inputs large enough for every threaded split (kept
// outer axis, kept inner run, neither). The fast path folds each output
// in the reference's order in float64, so results agree to a float64
// rounding (a fused multiply-add), far below float32's.
func TestReduceFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	var ops []string
	for name, red := range reducers {
		if red.kind != reduceOther {
			ops = append(ops, name)
		}
	}
	if len(ops) != 10 {
		t.Fatalf("%d reductions have an inlined fold, want all 10", len(ops))
	}
	// Large layouts for each threaded split: kept outer axis with a kept
	// or a reduced inner run, reduced outer axis with a kept inner run
	// (columns split), and reduced outer and inner axes (one thread).
	fixed := []struct {
		shape []int
		axes  []int64
	}{{[]int{64, 33, 40}, []int64{1}}, {[]int{257, 300}, []int64{-1}}, {[]int{300, 257}, []int64{0}}, {[]int{40, 50, 40}, []int64{0, 2}}}
	for it := range 120 + len(fixed) {
		var shape []int
		var axes []int64
		if it >= 120 {
			shape, axes = fixed[it-120].shape, fixed[it-120].axes
		} else {
			shape, _ = randBcastShapes(rng, 0, it%12 == 11)
			for i := range shape {
				if rng.IntN(2) == 0 {
					axes = append(axes, int64(i-len(shape)*rng.IntN(2))) // negative axes too
				}
			}
		}
		for _, op := range ops {
			for _, dt := range []ir.DataType{ir.Float, ir.Double} {
				x := randTensor(rng, dt, shape)
				if op == "ReduceProd" { // keep products of many terms finite and nonzero
					scaleTowardOne(x)
				}
				attrs := []*ir.Attr{ir.IntAttr("keepdims", int64(it%2))}
				if it%7 == 3 {
					attrs = append(attrs, ir.IntAttr("noop_with_empty_axes", 1))
				}
				n := &ir.Node{Op: op, Attrs: attrs}
				in := []*Tensor{x}
				if len(axes) > 0 {
					in = append(in, Int64Tensor([]int{len(axes)}, axes))
				}
				for _, threads := range []int{1, 3} {
					what := fmt.Sprintf("%s %v %v axes %v keepdims=%d threads=%d", op, dt, shape, axes, it%2, threads)
					got, ref := reduceBothWays(t, what, n, in, threads)
					if err := closeFloats(got, ref, 1e-12); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
				}
			}
		}
	}
}

// scaleTowardOne maps x's values into [0.9, 1.1].
func scaleTowardOne(x *Tensor) {
	switch d := x.Data.(type) {
	case []float32:
		for i, v := range d {
			d[i] = 1 + float32(math.Tanh(float64(v)))/10
		}
	case []float64:
		for i, v := range d {
			d[i] = 1 + math.Tanh(v)/10
		}
	}
}

// reduceBothWays runs buildReduce's kernel with fastKernels off (one
// thread) and on (threads, guarded output).
func reduceBothWays(t *testing.T, what string, n *ir.Node, in []*Tensor, threads int) (got, ref *Tensor) {
	t.Helper()
	fastKernels = false
	k, err := buildReduce(n, nil)
	var refs []*Tensor
	if err == nil {
		refs, err = k(testState(1), in)
	}
	fastKernels = true
	if err != nil {
		t.Fatalf("%s: reference: %v", what, err)
	}
	if k, err = buildReduce(n, nil); err != nil {
		t.Fatal(err)
	}
	r := testState(threads)
	check := guardOutput(r, refs[0])
	gots, err := k(r, in)
	if err != nil {
		t.Fatalf("%s: fast: %v", what, err)
	}
	if err := check(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return gots[0], refs[0]
}

// closeFloats compares float32 or float64 tensors within relative
// tolerance rtol of the float64 accumulation (after rounding to the
// element type); NaN must match NaN and infinities must match exactly.
func closeFloats(got, want *Tensor, rtol float64) error {
	if got.DType != want.DType || !sameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v, reference %v", got, want)
	}
	g, _ := got.Float64s()
	w, _ := want.Float64s()
	ulp := 0.0
	if want.DType == ir.Float {
		ulp = 1.2e-7 // one float32 rounding step, relative
	}
	for i := range w {
		if math.IsNaN(w[i]) || math.IsInf(w[i], 0) {
			if !(math.IsNaN(g[i]) && math.IsNaN(w[i])) && g[i] != w[i] {
				return fmt.Errorf("element %d = %g, reference %g", i, g[i], w[i])
			}
			continue
		}
		if math.Abs(g[i]-w[i]) > (rtol+ulp)*math.Abs(w[i]) || math.IsNaN(g[i]) {
			return fmt.Errorf("element %d = %g, reference %g", i, g[i], w[i])
		}
	}
	return nil
}

// BenchmarkReducePooling times the mean pooling of sentence-transformers
// models (ReduceSum over the sequence axis of [B,S,H]) through the fast
// path and the reference.
func BenchmarkReducePooling(b *testing.B) {
	rng := rand.New(rand.NewPCG(95, 96))
	x := randTensor(rng, ir.Float, []int{32, 128, 384})
	axes := Int64Tensor([]int{1}, []int64{1})
	k, _ := buildReduce(&ir.Node{Op: "ReduceSum", Attrs: []*ir.Attr{ir.IntAttr("keepdims", 0)}}, nil)
	for _, fast := range []bool{false, true} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			fastKernels = fast
			defer func() { fastKernels = true }()
			b.SetBytes(int64(x.NumElements() * 4))
			for b.Loop() {
				if _, err := k(testState(2), []*Tensor{x, axes}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
