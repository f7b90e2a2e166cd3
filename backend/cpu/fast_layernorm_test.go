package cpu

import (
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// TestLayerNormFastMatchesReference: the float32 path of the standard
// LayerNormalization (Y, Mean, InvStdDev) and RMSNormalization against
// their float64 reference kernel, normalising the last axis or the last
// two, with Scale/B as vectors, with leading ones, and in shapes the fast
// path declines (then both runs are the reference), and with a large
// offset (mean 1e3, spread 1), where float32 one-pass statistics would
// cancel.
func TestLayerNormFastMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	for _, op := range []string{"LayerNormalization", "RMSNormalization"} {
		for _, cols := range append(awkwardSizes, 384) {
			for _, c := range []struct {
				axis        int64
				scaleShape  []int
				withB       bool
				offset      float32
				description string
			}{
				{-1, []int{cols}, true, 0, "vector Scale and B"},
				{2, []int{1, 1, cols}, false, 0, "leading ones, no B"},
				{-1, []int{cols}, true, 1e3, "offset 1e3"},
				{-2, []int{3, cols}, true, 0, "two axes"},
				{-2, []int{cols}, true, 0, "Scale broadcast over an axis (declined)"},
			} {
				if op == "RMSNormalization" && c.withB {
					c.withB = false
				}
				shape := []int{2, 3, cols}
				x := guardedFloats(rng, 6*cols)
				for i := range x {
					x[i] += c.offset
				}
				in := []*Tensor{Float32Tensor(shape, x), Float32Tensor(c.scaleShape, guardedFloats(rng, shapeSize(c.scaleShape)))}
				if c.withB {
					in = append(in, Float32Tensor(c.scaleShape, guardedFloats(rng, shapeSize(c.scaleShape))))
				}
				n := &ir.Node{Op: op, Attrs: []*ir.Attr{ir.IntAttr("axis", c.axis), ir.FloatAttr("epsilon", 1e-5)}}
				for _, threads := range []int{1, 3} {
					fast, ref := runBothWays(t, buildLayerNorm, n, in, threads)
					if len(fast) != len(ref) {
						t.Fatalf("%s cols=%d %s: %d outputs, reference %d", op, cols, c.description, len(fast), len(ref))
					}
					for i := range ref {
						if err := closeF32(fast[i], ref[i], 1e-5, 1e-5); err != nil {
							t.Fatalf("%s cols=%d %s threads=%d output %d: %v", op, cols, c.description, threads, i, err)
						}
					}
				}
			}
		}
	}
}
