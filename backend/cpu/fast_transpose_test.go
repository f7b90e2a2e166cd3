package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// randomTransposeCase draws a shape of the given rank (sizes 0..7, many
// 1s, now and then a large axis) and a random permutation.
func randomTransposeCase(rng *rand.Rand, rank int, allowEmpty bool) ([]int, []int) {
	shape := make([]int, rank)
	for i := range shape {
		switch rng.IntN(6) {
		case 0:
			shape[i] = 1
		case 1:
			shape[i] = 17 + rng.IntN(40) // crosses the 16-element tiles
		default:
			shape[i] = 2 + rng.IntN(6)
		}
		if allowEmpty && rng.IntN(12) == 0 {
			shape[i] = 0
		}
	}
	// Keep tensors small enough for the reference.
	for shapeSize(shape) > 200_000 {
		shape[rng.IntN(rank)] = 2
	}
	return shape, rng.Perm(rank)
}

// TestTransposeFastMatchesReference: on random shapes and permutations of
// rank 0..6 (size-1 axes, empty tensors, 4- and 8-byte and other element
// types), on 1 and 3 threads, the fast path gives exactly the reference.
func TestTransposeFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	dtypes := []ir.DataType{ir.Float, ir.Int64, ir.Double, ir.Int32, ir.Uint16, ir.Uint8, ir.Bool}
	for it := 0; it < 400; it++ {
		rank := it % 7 // 0 is a scalar
		shape, perm := randomTransposeCase(rng, rank, true)
		dt := dtypes[it%len(dtypes)]
		x := randomTransposeInput(rng, dt, shape)
		for _, threads := range []int{1, 3} {
			r := testState(threads)
			want := transposeRef(r, x, perm)
			got := transposeFast(r, x, perm)
			if got == nil {
				t.Fatalf("%v perm %v: fast path declined %v", x, perm, dt)
			}
			if !slices.Equal(got.Shape, want.Shape) {
				t.Fatalf("%v perm %v: shape %v, want %v", x, perm, got.Shape, want.Shape)
			}
			if err := sameTransposeData(got.Data, want.Data); err != nil {
				t.Fatalf("%v perm %v threads %d: %v", x, perm, threads, err)
			}
		}
	}
}

// TestTransposeFastLargeParallel covers the parallel split of both the
// contiguous-run and the tiled 2-D cases (BERT's head split/merge and a
// K^T), against the reference.
func TestTransposeFastLargeParallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	cases := []struct {
		shape, perm []int
	}{
		{[]int{2, 33, 12, 64}, []int{0, 2, 1, 3}}, // head split
		{[]int{2, 12, 33, 64}, []int{0, 2, 1, 3}}, // head merge
		{[]int{2, 12, 33, 65}, []int{0, 1, 3, 2}}, // K^T, ragged tiles
		{[]int{257, 300}, []int{1, 0}},            // plain matrix
		{[]int{3, 5, 7, 11, 13}, []int{4, 2, 0, 3, 1}},
	}
	for _, c := range cases {
		x := randomTransposeInput(rng, ir.Float, c.shape)
		for _, threads := range []int{1, 2, 3} {
			r := testState(threads)
			want := transposeRef(r, x, c.perm)
			got := transposeFast(r, x, c.perm)
			if err := sameTransposeData(got.Data, want.Data); err != nil {
				t.Fatalf("%v perm %v threads %d: %v", c.shape, c.perm, threads, err)
			}
		}
	}
}

// TestPermuteCopyGuards: permuteCopy writes exactly the output, nothing
// before or after it (NaN guard cells around the destination), on the
// random cases.
func TestPermuteCopyGuards(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const guard = 19
	for it := 0; it < 300; it++ {
		shape, perm := randomTransposeCase(rng, 1+it%6, false)
		n := shapeSize(shape)
		src := randFloats(rng, n+guard)[:n] // data past n must not be read into dst
		buf := make([]float32, n+2*guard)
		for i := range buf {
			buf[i] = float32(math.NaN())
		}
		for _, threads := range []int{1, 3} {
			permuteCopy(testState(threads), buf[guard:guard+n], src, simplifyTranspose(shape, perm))
			want := transposeRef(testState(1), &Tensor{DType: ir.Float, Shape: shape, Data: src}, perm).Data.([]float32)
			for i, v := range buf {
				inside := i >= guard && i < guard+n
				switch {
				case !inside && !math.IsNaN(float64(v)):
					t.Fatalf("%v perm %v: guard cell %d overwritten with %g", shape, perm, i, v)
				case inside && math.Float32bits(v) != math.Float32bits(want[i-guard]):
					t.Fatalf("%v perm %v: element %d = %g, reference %g", shape, perm, i-guard, v, want[i-guard])
				}
			}
		}
	}
}

// TestSimplifyTranspose checks the merged axes on the shapes the head
// split/merge produce and on size-1 axes (the permutation must still be
// reproduced; TestTransposeFastMatchesReference checks the data).
func TestSimplifyTranspose(t *testing.T) {
	cases := []struct {
		shape, perm, dims, want []int
	}{
		{[]int{2, 3, 4, 5}, []int{0, 2, 3, 1}, []int{2, 3, 20}, []int{0, 2, 1}},
		{[]int{2, 3, 4, 5}, []int{0, 1, 2, 3}, []int{120}, []int{0}},
		{[]int{2, 1, 4, 5}, []int{0, 2, 1, 3}, []int{40}, []int{0}},
		{[]int{2, 3, 4, 5}, []int{2, 3, 0, 1}, []int{6, 20}, []int{1, 0}},
		{[]int{1, 1}, []int{1, 0}, nil, []int{}},
	}
	for _, c := range cases {
		p := simplifyTranspose(c.shape, c.perm)
		if !slices.Equal(p.dims, c.dims) || !slices.Equal(p.perm, c.want) {
			t.Errorf("simplifyTranspose(%v, %v) = dims %v perm %v, want dims %v perm %v", c.shape, c.perm, p.dims, p.perm, c.dims, c.want)
		}
	}
}

func randomTransposeInput(rng *rand.Rand, dt ir.DataType, shape []int) *Tensor {
	n := shapeSize(shape)
	data, err := makeData(dt, n)
	if err != nil {
		panic(err)
	}
	switch d := data.(type) {
	case []float32:
		copy(d, randFloats(rng, n))
	case []float64:
		for i := range d {
			d[i] = rng.NormFloat64()
		}
	case []int64:
		for i := range d {
			d[i] = rng.Int64()
		}
	case []int32:
		for i := range d {
			d[i] = rng.Int32()
		}
	case []uint16:
		for i := range d {
			d[i] = uint16(rng.Uint32())
		}
	case []uint8:
		for i := range d {
			d[i] = uint8(rng.Uint32())
		}
	case []bool:
		for i := range d {
			d[i] = rng.IntN(2) == 0
		}
	default:
		panic(fmt.Sprintf("randomTransposeInput: %T", data))
	}
	return &Tensor{DType: dt, Shape: shape, Data: data}
}

// sameTransposeData compares two payloads element by element (bit patterns for
// floats).
func sameTransposeData(got, want any) error {
	switch w := want.(type) {
	case []float32:
		g := got.([]float32)
		if len(g) != len(w) {
			return fmt.Errorf("%d elements, want %d", len(g), len(w))
		}
		for i := range w {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				return fmt.Errorf("element %d = %g, want %g", i, g[i], w[i])
			}
		}
		return nil
	case []float64:
		g := got.([]float64)
		if len(g) != len(w) {
			return fmt.Errorf("%d elements, want %d", len(g), len(w))
		}
		for i := range w {
			if math.Float64bits(g[i]) != math.Float64bits(w[i]) {
				return fmt.Errorf("element %d = %g, want %g", i, g[i], w[i])
			}
		}
		return nil
	case []int64:
		return equalTransposeSlices(got.([]int64), w)
	case []int32:
		return equalTransposeSlices(got.([]int32), w)
	case []uint16:
		return equalTransposeSlices(got.([]uint16), w)
	case []uint8:
		return equalTransposeSlices(got.([]uint8), w)
	case []bool:
		return equalTransposeSlices(got.([]bool), w)
	}
	return fmt.Errorf("sameTransposeData: %T", want)
}

func equalTransposeSlices[T comparable](got, want []T) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d elements, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("element %d = %v, want %v", i, got[i], want[i])
		}
	}
	return nil
}
