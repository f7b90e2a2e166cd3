package cpu

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// TestAttentionOnlineMatchesReference checks the one-pass kernel against
// the float64 reference on random inputs of awkward sizes, with NaN guard
// cells around the output to catch writes out of bounds.
func TestAttentionOnlineMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	randf := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	type cfg struct {
		B, Hq, Hkv, Sq, Skv, D, Dv int
		kind                       string
		bias, keep                 bool
	}
	var cfgs []cfg
	for _, s := range []int{1, 7, 65} {
		for _, d := range []int{8, 64} {
			cfgs = append(cfgs,
				cfg{2, 2, 2, s, s, d, d, "none", false, false},
				cfg{1, 4, 2, s, s, d, 7, "causal", true, false},
				cfg{2, 3, 1, s, s + 3, d, d, "sliding:5", false, true},
				cfg{1, 4, 1, s, s, d, d, "none", true, true},
			)
		}
	}
	for _, c := range cfgs {
		kind := c.kind
		p := &attentionProblem{B: c.B, Hq: c.Hq, Hkv: c.Hkv, Sq: c.Sq, Skv: c.Skv, D: c.D, Dv: c.Dv,
			q: randf(c.B * c.Hq * c.Sq * c.D), k: randf(c.B * c.Hkv * c.Skv * c.D), v: randf(c.B * c.Hkv * c.Skv * c.Dv)}
		full := [4]int{c.B, c.Hq, c.Sq, c.Skv}
		if c.bias {
			p.bias = randf(c.B * c.Sq * c.Skv)
			p.biasStrides, _ = maskStrides("bias", []int{c.B, 1, c.Sq, c.Skv}, full)
			kind += "+additive"
		}
		if c.keep {
			p.keep = make([]bool, c.Skv)
			for j := range p.keep {
				p.keep[j] = rng.IntN(3) != 0
			}
			p.keepStrides, _ = maskStrides("keep", []int{c.Skv}, full)
			kind += "+boolean"
		}
		n := &ir.Node{Attrs: []*ir.Attr{ir.FloatAttr("scale", 0.3), ir.StringAttr("mask_kind", kind), ir.FloatAttr("mask_fill", -1e4)}}
		par, err := parseTfcAttention(n)
		if err != nil {
			t.Fatal(err)
		}
		const guard = 16
		size := c.B * c.Hq * c.Sq * c.Dv
		buf := make([]float32, size+2*guard)
		for i := range buf {
			buf[i] = float32(math.NaN())
		}
		attentionOnline(&runState{threads: 3}, par, p, buf[guard:guard+size])
		want := attentionReference(par, p)
		for i := 0; i < guard; i++ {
			if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[guard+size+i])) {
				t.Fatalf("%+v: the kernel wrote outside its output", c)
			}
		}
		for i, w := range want {
			g := buf[guard+i]
			if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) || math.IsNaN(float64(g)) {
				t.Fatalf("%+v: element %d = %g, reference %g", c, i, g, w)
			}
		}
	}
}

// BenchmarkTfcAttention runs the blocked kernel, the one-pass kernel and
// the reference on the same problems (BERT-base-like heads, an additive padding mask).
func BenchmarkTfcAttention(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	randf := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, s := range []int{64, 256} {
		const B, H, D = 1, 12, 64
		p := &attentionProblem{B: B, Hq: H, Hkv: H, Sq: s, Skv: s, D: D, Dv: D,
			q: randf(B * H * s * D), k: randf(B * H * s * D), v: randf(B * H * s * D), bias: randf(B * s)}
		p.biasStrides, _ = maskStrides("bias", []int{B, 1, 1, s}, [4]int{B, H, s, s})
		par := tfcAttentionParams{scale: 0.125, maskFill: float32(math.Inf(-1))}
		y := make([]float32, B*H*s*D)
		bytes := int64(4 * (len(p.q) + len(p.k) + len(p.v) + len(y)))
		b.Run("blocked/S="+strconv.Itoa(s), func(b *testing.B) {
			b.SetBytes(bytes)
			r := testState(2)
			for range b.N {
				if err := attentionBlocked(r, par, p, y); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("online/S="+strconv.Itoa(s), func(b *testing.B) {
			b.SetBytes(bytes)
			for range b.N {
				attentionOnline(&runState{threads: 2}, par, p, y)
			}
		})
		b.Run("reference/S="+strconv.Itoa(s), func(b *testing.B) {
			b.SetBytes(bytes)
			for range b.N {
				attentionReference(par, p)
			}
		})
	}
}
