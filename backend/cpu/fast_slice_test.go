package cpu

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// TestSliceFastMatchesReference: Slice with unit steps through sliceFast
// against the index-array reference (fastKernels off), on random shapes of
// rank 1..5 with random starts/ends on random axis subsets (negative
// indices, clamping, empty results), several element types, 1 and 3
// threads, with guard cells around the fast output; steps other than 1
// must fall back and agree too.
func TestSliceFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 92))
	for trial := 0; trial < 600; trial++ {
		rank := 1 + rng.IntN(5)
		shape := make([]int, rank)
		for i := range shape {
			shape[i] = 1 + rng.IntN(7)
		}
		if trial%50 == 0 {
			shape[rank-1] = 3000 // large enough to take the threaded path
		}
		n := shapeSize(shape)
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(i) + 0.5
		}
		var x *Tensor
		switch trial % 3 {
		case 0:
			x = Float32Tensor(shape, vals)
		case 1:
			iv := make([]int64, n)
			for i := range iv {
				iv[i] = int64(i)
			}
			x = &Tensor{DType: ir.Int64, Shape: shape, Data: iv}
		default:
			bv := make([]bool, n)
			for i := range bv {
				bv[i] = rng.IntN(2) == 0
			}
			x = &Tensor{DType: ir.Bool, Shape: shape, Data: bv}
		}
		var starts, ends, axes, steps []int64
		for a := 0; a < rank; a++ {
			if rng.IntN(2) == 0 {
				continue
			}
			d := int64(shape[a])
			starts = append(starts, rng.Int64N(2*d+1)-d)
			ends = append(ends, rng.Int64N(2*d+3)-d-1)
			axes = append(axes, int64(a))
			st := int64(1)
			if trial%7 == 0 {
				st = int64(1 + rng.IntN(2)) // some steps of 2: the fallback
			}
			steps = append(steps, st)
		}
		vec := func(v []int64) *Tensor {
			return &Tensor{DType: ir.Int64, Shape: []int{len(v)}, Data: append([]int64{}, v...)}
		}
		in := []*Tensor{x, vec(starts), vec(ends), vec(axes), vec(steps)}
		node := &ir.Node{Op: "Slice", Outputs: []*ir.Value{{Name: "y"}}}
		for _, threads := range []int{1, 3} {
			fast, ref := runBothWays(t, buildSlice, node, in, threads)
			if !sameShape(fast[0].Shape, ref[0].Shape) {
				t.Fatalf("trial %d: shape %v, reference %v", trial, fast[0].Shape, ref[0].Shape)
			}
			if !equalData(fast[0], ref[0]) {
				t.Fatalf("trial %d %v starts %v ends %v axes %v steps %v threads %d: data differs from the reference", trial, shape, starts, ends, axes, steps, threads)
			}
		}
	}
}

// equalData reports whether two tensors hold the same values of the same
// element type (the test data has no NaN).
func equalData(a, b *Tensor) bool { return reflect.DeepEqual(a.Data, b.Data) }
