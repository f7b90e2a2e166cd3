package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// randBcastShapes returns an output shape of rank 0..5 and n operand
// shapes that broadcast to it: each operand drops some leading axes and
// turns some axes into 1s. Sizes include 0 (rarely) and 1.
func randBcastShapes(rng *rand.Rand, n int, big bool) (out []int, ins [][]int) {
	sizes := []int{1, 2, 3, 5, 7}
	rank := rng.IntN(6)
	out = make([]int, rank)
	for i := range out {
		out[i] = sizes[rng.IntN(len(sizes))]
		if rng.IntN(40) == 0 {
			out[i] = 0
		}
	}
	if big && rank > 0 { // reach the threaded path (>= bcastParallelMin)
		for shapeSize(out) < bcastParallelMin && shapeSize(out) > 0 {
			out[rng.IntN(rank)] *= 3
		}
	}
	for range n {
		drop := rng.IntN(rank + 1)
		if rng.IntN(2) == 0 {
			drop = 0
		}
		s := make([]int, rank-drop)
		for i := range s {
			s[i] = out[drop+i]
			if rng.IntN(3) == 0 {
				s[i] = 1
			}
		}
		ins = append(ins, s)
	}
	return out, ins
}

// TestBcastLoopMatchesBroadcastIndex: walking a bcastLoop over any
// sub-range of the output visits exactly that range, each element once,
// and reads every operand at the element broadcastIndex (the reference)
// names.
func TestBcastLoopMatchesBroadcastIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	for it := range 3000 {
		out, ins := randBcastShapes(rng, 1+rng.IntN(3), false)
		l := newBcastLoop(out, ins...)
		n := shapeSize(out)
		if l.n != n {
			t.Fatalf("loop over %v has %d elements, want %d", out, l.n, n)
		}
		lo, hi := 0, n
		if it%2 == 1 && n > 0 {
			lo = rng.IntN(n)
			hi = lo + rng.IntN(n-lo+1)
		}
		got := make([][]int, len(ins))
		for k := range got {
			got[k] = make([]int, n)
			for i := range got[k] {
				got[k][i] = -1
			}
		}
		visits := make([]int, n)
		l.walk(lo, hi, func(o int, off [bcastMaxOperands]int, m int) {
			if m <= 0 || o < lo || o+m > hi {
				t.Fatalf("out %v ins %v range [%d,%d): run [%d,%d) outside it", out, ins, lo, hi, o, o+m)
			}
			for j := range m {
				visits[o+j]++
				for k := range ins {
					got[k][o+j] = off[k] + j*l.step[k]
				}
			}
		})
		for k, in := range ins {
			if s := l.step[k]; s != 0 && s != 1 {
				t.Fatalf("out %v in %v: inner step %d", out, in, s)
			}
			want := broadcastIndex(in, out)
			for i := lo; i < hi; i++ {
				if visits[i] != 1 {
					t.Fatalf("out %v ins %v: element %d visited %d times", out, ins, i, visits[i])
				}
				if got[k][i] != want[i] {
					t.Fatalf("out %v operand %d %v: element %d reads %d, reference %d", out, k, in, i, got[k][i], want[i])
				}
			}
		}
	}
}

// guarded puts a buffer of n elements of type dt, with guard cells
// holding fill on both sides, into r's pool so that the next allocation
// of that size gets it; the returned check reports overwritten guards.
func guarded[T comparable](r *runState, dt ir.DataType, n int, fill T) func() error {
	buf := make([]T, n+2*fastGuard)
	for i := range buf {
		buf[i] = fill
	}
	key := poolKey{dt, n}
	r.pool[key] = append(r.pool[key], buf[fastGuard:fastGuard+n])
	return func() error {
		for i := range fastGuard {
			if buf[i] != fill || buf[len(buf)-1-i] != fill {
				return fmt.Errorf("guard cell next to the %v output was overwritten", dt)
			}
		}
		return nil
	}
}

// guardOutput is guarded for a tensor shaped like want.
func guardOutput(r *runState, want *Tensor) func() error {
	n := want.NumElements()
	switch want.DType {
	case ir.Float:
		return guarded(r, ir.Float, n, float32(-12345.678)) // not NaN: guards compare with ==
	case ir.Double:
		return guarded(r, ir.Double, n, float64(-7.25))
	case ir.Int64:
		return guarded(r, ir.Int64, n, int64(0x5a5a5a5a))
	case ir.Int32:
		return guarded(r, ir.Int32, n, int32(0x5a5a5a))
	case ir.Bool:
		return guarded(r, ir.Bool, n, true)
	}
	return func() error { return nil }
}

// runFastAndRef runs kernel-builder build for node n on in with
// fastKernels off (the reference, one thread) and on (threads, guarded
// outputs), and fails unless the outputs are identical (NaN matching
// NaN).
func runFastAndRef(t *testing.T, what string, build func(*ir.Node, *compiler) (kernel, error), n *ir.Node, in []*Tensor, threads int) {
	t.Helper()
	fastKernels = false
	k, err := build(n, nil)
	var ref []*Tensor
	if err == nil {
		ref, err = k(testState(1), in)
	}
	fastKernels = true
	if err != nil {
		t.Fatalf("%s: reference: %v", what, err)
	}
	if k, err = build(n, nil); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	r := testState(threads)
	var checks []func() error
	for _, o := range ref {
		checks = append(checks, guardOutput(r, o))
	}
	got, err := k(r, in)
	if err != nil {
		t.Fatalf("%s: fast: %v", what, err)
	}
	for _, c := range checks {
		if err := c(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for i := range ref {
		if err := identical(got[i], ref[i]); err != nil {
			t.Fatalf("%s: output %d: %v", what, i, err)
		}
	}
}

// identical compares two tensors element by element (NaN equals NaN).
func identical(got, want *Tensor) error {
	if got.DType != want.DType || !sameShape(got.Shape, want.Shape) {
		return fmt.Errorf("got %v, reference %v", got, want)
	}
	switch w := want.Data.(type) {
	case []float32:
		g := got.Data.([]float32)
		for i := range w {
			if g[i] != w[i] && !(g[i] != g[i] && w[i] != w[i]) {
				return fmt.Errorf("element %d = %g, reference %g", i, g[i], w[i])
			}
		}
	case []float64:
		g := got.Data.([]float64)
		for i := range w {
			if g[i] != w[i] && !(math.IsNaN(g[i]) && math.IsNaN(w[i])) {
				return fmt.Errorf("element %d = %g, reference %g", i, g[i], w[i])
			}
		}
	case []int64:
		return sameElems(got.Data.([]int64), w)
	case []int32:
		return sameElems(got.Data.([]int32), w)
	case []bool:
		return sameElems(got.Data.([]bool), w)
	default:
		return fmt.Errorf("cannot compare %T", want.Data)
	}
	return nil
}

func sameElems[T comparable](g, w []T) error {
	for i := range w {
		if g[i] != w[i] {
			return fmt.Errorf("element %d = %v, reference %v", i, g[i], w[i])
		}
	}
	return nil
}

// randTensor fills a tensor of type dt and shape s with values that make
// every op's result depend on the operands (small ints collide often
// enough for Equal to be true sometimes).
func randTensor(rng *rand.Rand, dt ir.DataType, s []int) *Tensor {
	t, err := NewTensor(dt, s)
	if err != nil {
		panic(err)
	}
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = float32(rng.NormFloat64())
			if rng.IntN(8) == 0 {
				d[i] = float32(rng.IntN(3)) // ties for the comparisons
			}
		}
	case []float64:
		for i := range d {
			d[i] = rng.NormFloat64()
		}
	case []int64:
		for i := range d {
			d[i] = int64(rng.IntN(7)) - 3
		}
	case []int32:
		for i := range d {
			d[i] = int32(rng.IntN(7)) - 3
		}
	case []bool:
		for i := range d {
			d[i] = rng.IntN(2) == 0
		}
	}
	return t
}

// TestBcastBinaryKernelsMatchReference: arithmetic, comparisons and
// logic through the broadcasting engine against the index-array
// reference, on random broadcast patterns (rank 0..5, size-1 and empty
// axes, dropped leading axes on either side), one and three threads,
// small and large outputs.
func TestBcastBinaryKernelsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(83, 84))
	type opCase struct {
		op    string
		types []ir.DataType
		build func(*ir.Node, *compiler) (kernel, error)
	}
	num := []ir.DataType{ir.Float, ir.Double, ir.Int64, ir.Int32}
	ops := []opCase{
		{"Add", num, buildArith}, {"Sub", num, buildArith}, {"Mul", num, buildArith},
		{"Div", []ir.DataType{ir.Float, ir.Double}, buildArith},
		{"Max", num, buildArith}, {"Min", num, buildArith}, {"PRelu", []ir.DataType{ir.Float}, buildArith},
		{"Sum", []ir.DataType{ir.Float, ir.Int64}, buildVariadic},
		{"Equal", append(num, ir.Bool), buildCompare}, {"Less", num, buildCompare}, {"Greater", num, buildCompare},
		{"LessOrEqual", num, buildCompare}, {"GreaterOrEqual", num, buildCompare},
		{"And", []ir.DataType{ir.Bool}, buildLogic}, {"Or", []ir.DataType{ir.Bool}, buildLogic}, {"Xor", []ir.DataType{ir.Bool}, buildLogic},
	}
	for it := range 60 {
		big := it%15 == 14
		out, ins := randBcastShapes(rng, 2, big)
		for _, oc := range ops {
			for _, dt := range oc.types {
				in := []*Tensor{randTensor(rng, dt, ins[0]), randTensor(rng, dt, ins[1])}
				for _, threads := range []int{1, 3} {
					what := fmt.Sprintf("%s %v %v, %v -> %v threads=%d", oc.op, dt, ins[0], ins[1], out, threads)
					runFastAndRef(t, what, oc.build, &ir.Node{Op: oc.op}, in, threads)
				}
			}
		}
	}
}

// TestBcastWhereExpandMatchReference: Where (three-way broadcasting) and
// Expand against their take-based references.
func TestBcastWhereExpandMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(85, 86))
	for it := range 200 {
		big := it%40 == 39
		out, ins := randBcastShapes(rng, 3, big)
		for _, dt := range []ir.DataType{ir.Float, ir.Int64, ir.Bool, ir.Double} {
			in := []*Tensor{randTensor(rng, ir.Bool, ins[0]), randTensor(rng, dt, ins[1]), randTensor(rng, dt, ins[2])}
			for _, threads := range []int{1, 3} {
				what := fmt.Sprintf("Where %v %v, %v, %v -> %v threads=%d", dt, ins[0], ins[1], ins[2], out, threads)
				runFastAndRef(t, what, buildWhere, &ir.Node{Op: "Where"}, in, threads)

				// Expand to the output shape, or to a shape that is itself
				// broadcast with the input (Expand's shape may have 1s).
				target := out
				if it%3 == 0 {
					target = ins[2]
				}
				dims := make([]int64, len(target))
				for i, d := range target {
					dims[i] = int64(d)
				}
				ein := []*Tensor{in[1], Int64Tensor([]int{len(dims)}, dims)}
				what = fmt.Sprintf("Expand %v %v to %v threads=%d", dt, ins[1], target, threads)
				runFastAndRef(t, what, buildExpand, &ir.Node{Op: "Expand"}, ein, threads)
			}
		}
	}
}

// TestBcastEmptyAndScalar covers the corner shapes explicitly: rank 0
// with rank 0, a scalar with an empty tensor, and an empty axis against
// a size-1 axis.
func TestBcastEmptyAndScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(87, 88))
	for _, c := range [][2][]int{{{}, {}}, {{}, {0}}, {{0}, {}}, {{3, 0}, {1, 1}}, {{1}, {3, 0, 2}}, {{2, 1, 4}, {}}, {{}, {1, 1, 1}}} {
		for _, op := range []string{"Add", "Mul", "Div"} {
			in := []*Tensor{randTensor(rng, ir.Float, c[0]), randTensor(rng, ir.Float, c[1])}
			runFastAndRef(t, fmt.Sprintf("%s %v, %v", op, c[0], c[1]), buildArith, &ir.Node{Op: op}, in, 2)
		}
		in := []*Tensor{randTensor(rng, ir.Bool, c[0]), randTensor(rng, ir.Float, c[1]), randTensor(rng, ir.Float, []int{})}
		runFastAndRef(t, fmt.Sprintf("Where %v, %v", c[0], c[1]), buildWhere, &ir.Node{Op: "Where"}, in, 2)
	}
}

// BenchmarkBcastMask times the HF attention-mask construction shapes
// (a [B,1,1,S] mask broadcast over [B,1,S,S]) through the engine and
// the reference.
func BenchmarkBcastMask(b *testing.B) {
	rng := rand.New(rand.NewPCG(89, 90))
	cond := randTensor(rng, ir.Bool, []int{32, 1, 1, 128})
	x := randTensor(rng, ir.Float, []int{})
	y := randTensor(rng, ir.Float, []int{32, 1, 128, 128})
	k, _ := buildWhere(&ir.Node{Op: "Where"}, nil)
	for _, fast := range []bool{false, true} {
		b.Run(fmt.Sprintf("fast=%v", fast), func(b *testing.B) {
			fastKernels = fast
			defer func() { fastKernels = true }()
			b.SetBytes(int64(y.NumElements() * 4))
			for b.Loop() {
				if _, err := k(testState(2), []*Tensor{cond, x, y}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestCastFastMatchesReference: Cast among float32, float64, int32,
// int64 and bool against castData, on values that probe the rounding
// and truncation rules (fractions, negatives, NaN, infinities, int64s
// that float32 rounds twice through float64, out-of-range floats).
func TestCastFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(93, 94))
	types := []ir.DataType{ir.Float, ir.Double, ir.Int32, ir.Int64, ir.Bool}
	for _, n := range []int{0, 1, 7, 65, bcastParallelMin + 3} {
		for _, from := range types {
			x := randTensor(rng, from, []int{n})
			switch d := x.Data.(type) {
			case []float32:
				special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), -0.5, 2.5, -3.99, 3e9, -3e9, 1e20}
				for i := range d {
					d[i] *= 1000
					if i < len(special) {
						d[i] = special[i]
					}
				}
			case []float64:
				special := []float64{math.NaN(), math.Inf(1), -0.5, 2.5, -3.99, 3e9, -3e9, 1e20, 1<<53 + 1}
				for i := range d {
					d[i] *= 1e6
					if i < len(special) {
						d[i] = special[i]
					}
				}
			case []int64:
				special := []int64{1<<53 + 1<<29 + 1, 1<<53 + 1, 1<<24 + 1, -(1<<60 + 12345), math.MaxInt64, math.MinInt64, 1 << 40}
				for i := range d {
					d[i] = int64(rng.Uint64())
					if i < len(special) {
						d[i] = special[i]
					}
				}
			case []int32:
				for i := range d {
					d[i] = int32(rng.Uint32())
				}
			}
			for _, to := range types {
				n := &ir.Node{Op: "Cast", Attrs: []*ir.Attr{ir.IntAttr("to", int64(to))}}
				for _, threads := range []int{1, 3} {
					runFastAndRef(t, fmt.Sprintf("Cast %v[%d] to %v threads=%d", from, x.Shape[0], to, threads), buildCast, n, []*Tensor{x}, threads)
				}
			}
		}
	}
}
