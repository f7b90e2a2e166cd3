package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// Tests of the vmath routes of the standard float32 ops against the
// float64 reference kernels (fastKernels off). Tolerances are vmath's
// documented bounds plus half an ulp (2^-24 relative) for the rounding
// of the float64 reference to float32:
//
//	Exp  relative 3e-7 + 2^-24                          -> 4e-7
//	Erf  absolute 4e-7 + 2^-24                          -> 5e-7
//	Tanh relative 4.5e-7 + 2^-24                        -> 5.2e-7
//	Sigmoid 1/(1+e) with e = exp(-x) off by 3e-7 relative moves the
//	     result by at most 3e-7 relative; the add, the divide and the
//	     reference's rounding add 3 * 2^-24              -> 5e-7
//	Gelu inputs clamped to |x| <= 5: 0.5|x| (4.5e-7 + 7 * 2^-24) plus
//	     2 * 2^-24 |y|                                  -> 1.6e-6 abs, 1.2e-7 rel
//	Softmax rows of <= 65 entries with |x| <= 5 (|v - max| <= 10): vmath's
//	     3e-7 + (10 + 65 + 4) 2^-24 + the in-sum term 3e-7 + 10 * 2^-24,
//	     plus 2^-24                                      -> 6e-6 rel
func TestVmathRoutesMatchReference(t *testing.T) {
	type route struct {
		op, approx string
		rtol, atol float64
	}
	routes := []route{
		{op: "Exp", rtol: 4e-7},
		{op: "Erf", atol: 5e-7},
		{op: "Tanh", rtol: 5.2e-7},
		{op: "Sigmoid", rtol: 5e-7},
		{op: "Gelu", approx: "none", rtol: 1.2e-7, atol: 1.6e-6},
		{op: "Gelu", approx: "tanh", rtol: 1.2e-7, atol: 1.6e-6},
		{op: "Softmax", rtol: 6e-6},
	}
	rng := rand.New(rand.NewPCG(81, 82))
	for _, rt := range routes {
		for _, cols := range awkwardSizes {
			for _, threads := range []int{1, 3} {
				x := guardedFloats(rng, 4*cols)
				for i := range x {
					x[i] = max(-5, min(5, 2*x[i]))
				}
				n := &ir.Node{Op: rt.op, Outputs: []*ir.Value{{Name: "y"}}}
				if rt.approx != "" {
					n.Attrs = append(n.Attrs, ir.StringAttr("approximate", rt.approx))
				}
				build := func(n *ir.Node, _ *compiler) (kernel, error) {
					if rt.op == "Softmax" {
						return buildSoftmax(n, &compiler{opsets: map[string]int64{"": 13}})
					}
					return buildUnary(n, nil)
				}
				fast, ref := runBothWays(t, build, n, []*Tensor{Float32Tensor([]int{4, cols}, x)}, threads)
				if err := closeF32(fast[0], ref[0], rt.rtol, rt.atol); err != nil {
					t.Fatalf("%s %s cols=%d threads=%d: %v", rt.op, rt.approx, cols, threads, err)
				}
			}
		}
	}
}

// TestSoftmaxF32Rows: the legacy (opset < 13) coercion to 2-D rows, and
// rows of only -Inf, which give NaN as in the float64 reference (vmath
// alone gives zeros, attention's convention).
func TestSoftmaxF32Rows(t *testing.T) {
	rng := rand.New(rand.NewPCG(83, 84))
	x := guardedFloats(rng, 2*3*5)
	for i := 15; i < 20; i++ {
		x[i] = float32(math.Inf(-1)) // one fully masked row of the 3-D case
	}
	for _, c := range []struct {
		opset int64
		axis  int64
	}{{13, -1}, {11, 1}, {11, 2}} {
		n := &ir.Node{Op: "Softmax", Attrs: []*ir.Attr{ir.IntAttr("axis", c.axis)}, Outputs: []*ir.Value{{Name: "y"}}}
		build := func(n *ir.Node, _ *compiler) (kernel, error) {
			return buildSoftmax(n, &compiler{opsets: map[string]int64{"": c.opset}})
		}
		fast, ref := runBothWays(t, build, n, []*Tensor{Float32Tensor([]int{2, 3, 5}, x)}, 2)
		g, w := f32(fast[0]), f32(ref[0])
		for i := range w {
			if math.IsNaN(float64(w[i])) != math.IsNaN(float64(g[i])) {
				t.Fatalf("opset %d axis %d: element %d = %g, reference %g", c.opset, c.axis, i, g[i], w[i])
			}
			if d := math.Abs(float64(g[i]) - float64(w[i])); d > 6e-6*math.Abs(float64(w[i])) {
				t.Fatalf("opset %d axis %d: element %d = %g, reference %g", c.opset, c.axis, i, g[i], w[i])
			}
		}
	}
}
