package cpu

import (
	"fmt"
	"github.com/tfc-compiler/tfc/backend/cpu/vmath"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// TestErfF32 compares vmath.ScalarErf with math.Erf.
func TestErfF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	xs := []float32{0, 1e-8, -1e-8, 0.5, -0.5, 3.99, 4, 4.01, -4.01, 10, -10}
	for range 200000 {
		xs = append(xs, float32(rng.Float64()*12-6))
	}
	for _, x := range xs {
		got, want := float64(vmath.ScalarErf(x)), math.Erf(float64(x))
		if math.Abs(got-want) > 5e-7 { // measured worst: 3.7e-7 near |x| = 3.5
			t.Fatalf("vmath.ScalarErf(%g) = %.9g, math.Erf %.9g", x, got, want)
		}
	}
	if v := vmath.ScalarErf(float32(math.NaN())); v == v {
		t.Fatalf("vmath.ScalarErf(NaN) = %g", v)
	}
}

// runBothWays builds node n's kernel and runs it with the fast paths off
// (the reference) and on, the fast run with NaN guards around its outputs.
func runBothWays(t *testing.T, build func(*ir.Node, *compiler) (kernel, error), n *ir.Node, in []*Tensor, threads int) (fast, ref []*Tensor) {
	t.Helper()
	fastKernels = false
	k, err := build(n, nil)
	if err == nil {
		ref, err = k(testState(1), in)
	}
	fastKernels = true
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	k, err = build(n, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := testState(threads)
	var checks []func() error
	for _, o := range ref {
		checks = append(checks, guardedOutput(r, o.NumElements()))
	}
	fast, err = k(r, in)
	if err != nil {
		t.Fatalf("fast: %v", err)
	}
	for _, c := range checks {
		if err := c(); err != nil {
			t.Fatal(err)
		}
	}
	return fast, ref
}

func closeF32(got, want *Tensor, rtol, atol float64) error {
	if !sameShape(got.Shape, want.Shape) {
		return fmt.Errorf("shape %v, reference %v", got.Shape, want.Shape)
	}
	g, w := f32(got), f32(want)
	for i := range w {
		d := math.Abs(float64(g[i]) - float64(w[i]))
		if math.IsNaN(float64(g[i])) || d > atol+rtol*math.Abs(float64(w[i])) {
			return fmt.Errorf("element %d = %g, reference %g", i, g[i], w[i])
		}
	}
	return nil
}

// TestSkipLayerNormFastMatchesReference: the float32 path of
// SkipLayerNorm/SkipRMSNorm against the float64 reference kernel, with
// and without the optional inputs and the sum output, at awkward widths.
func TestSkipLayerNormFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(63, 64))
	for _, op := range []string{"SkipLayerNorm", "SkipRMSNorm"} {
		for _, cols := range awkwardSizes {
			// Skip shaped like X, and broadcast over X's leading axes (the
			// embedding LayerNorm adds [1, S, N] position embeddings).
			for si, skipShape := range [][]int{{2, 5, cols}, {5, cols}, {1, 5, cols}} {
				full := si != 1
				shape := []int{2, 5, cols}
				in := []*Tensor{
					Float32Tensor(shape, guardedFloats(rng, 10*cols)),
					Float32Tensor(skipShape, guardedFloats(rng, shapeSize(skipShape))),
					Float32Tensor([]int{cols}, guardedFloats(rng, cols)),
				}
				optional := 2 // LayerNorm: B, Bias; RMSNorm: Bias
				if op == "SkipRMSNorm" {
					optional = 1
				}
				for range optional {
					var v *Tensor
					if full {
						v = Float32Tensor([]int{cols}, guardedFloats(rng, cols))
					}
					in = append(in, v)
				}
				n := &ir.Node{Domain: "tfc", Op: op, Attrs: []*ir.Attr{ir.FloatAttr("epsilon", 1e-5)}, Outputs: []*ir.Value{{Name: "y"}}}
				if full {
					n.Outputs = append(n.Outputs, &ir.Value{Name: "sum"})
				}
				for _, threads := range []int{1, 3} {
					fast, ref := runBothWays(t, buildTfcSkipLayerNorm, n, in, threads)
					for i := range ref {
						if err := closeF32(fast[i], ref[i], 1e-4, 1e-5); err != nil {
							t.Fatalf("%s cols=%d skip %v full=%v threads=%d output %d: %v", op, cols, skipShape, full, threads, i, err)
						}
					}
				}
			}
		}
	}
}

// TestBiasGeluFastMatchesReference: the float32 Gelu/BiasGelu (erf and
// tanh forms) against the float64 reference kernel.
func TestBiasGeluFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(65, 66))
	for _, op := range []string{"Gelu", "BiasGelu"} {
		for _, approx := range []string{"none", "tanh"} {
			for _, cols := range awkwardSizes {
				shape := []int{3, cols}
				x := guardedFloats(rng, 3*cols)
				for i := range x {
					x[i] *= 4 // reach the tails of erf and tanh
				}
				in := []*Tensor{Float32Tensor(shape, x)}
				if op == "BiasGelu" {
					in = append(in, Float32Tensor([]int{cols}, guardedFloats(rng, cols)))
				}
				n := &ir.Node{Domain: "tfc", Op: op, Attrs: []*ir.Attr{ir.StringAttr("approximate", approx)}}
				fast, ref := runBothWays(t, buildTfcGelu, n, in, 2)
				if err := closeF32(fast[0], ref[0], 1e-5, 1e-6); err != nil {
					t.Fatalf("%s approximate=%s cols=%d: %v", op, approx, cols, err)
				}
			}
		}
	}
}

// TestBroadcastArithMatchesReference: float32 Add/Sub/Mul/Div with a
// row-broadcast operand on either side (the fast broadcast engine of
// fast_bcast.go) against broadcastBinary.
func TestBroadcastArithMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(67, 68))
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		for _, c := range [][2][]int{
			{{2, 7, 65}, {65}},
			{{65}, {2, 7, 65}},
			{{3, 64}, {}},
			{{}, {3, 63}},
			{{4, 7}, {1, 1, 7}},
			{{2, 3, 5}, {3, 5}},
			{{1, 70000}, {1, 70000}},
			{{3, 5}, {3, 1}}, // not a suffix: declines, reference runs
		} {
			as, bs := c[0], c[1]
			a := Float32Tensor(as, guardedFloats(rng, shapeSize(as)))
			b := Float32Tensor(bs, guardedFloats(rng, shapeSize(bs)))
			n := &ir.Node{Op: op}
			fast, ref := runBothWays(t, buildArith, n, []*Tensor{a, b}, 3)
			if err := closeF32(fast[0], ref[0], 0, 0); err != nil {
				t.Fatalf("%s %v, %v: %v", op, as, bs, err)
			}
		}
	}
}
