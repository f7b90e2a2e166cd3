package cpu

import (
	"github.com/tfc-compiler/tfc/backend/cpu/vmath"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// TestExpF32 compares vmath.ScalarExp with math.Exp on random and edge arguments.
func TestExpF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	xs := []float32{0, -0.5, 0.5, -1e-8, 1e-8, -87.3, -87.33654, -87.4, -100, 88.7, 88.72283, 89, -20, 20}
	for range 200000 {
		xs = append(xs, float32(rng.Float64()*176-88))
	}
	for _, x := range xs {
		got, want := float64(vmath.ScalarExp(x)), math.Exp(float64(x))
		switch {
		case x < -87.33654:
			if got != 0 {
				t.Fatalf("vmath.ScalarExp(%g) = %g, want 0 below the normal range", x, got)
			}
		case x > 88.72283:
			if !math.IsInf(got, 1) {
				t.Fatalf("vmath.ScalarExp(%g) = %g, want +Inf", x, got)
			}
		default:
			if math.Abs(got-want) > 3e-7*want {
				t.Fatalf("vmath.ScalarExp(%g) = %g, math.Exp %g (rel. error %g)", x, got, want, math.Abs(got-want)/want)
			}
		}
	}
	if got := vmath.ScalarExp(float32(math.Inf(-1))); got != 0 {
		t.Fatalf("vmath.ScalarExp(-Inf) = %g", got)
	}
	if got := vmath.ScalarExp(float32(math.NaN())); got == got {
		t.Fatalf("vmath.ScalarExp(NaN) = %g", got)
	}
}

// TestAttentionBlockedMatchesReference checks the gemm-blocked kernel the
// executor runs against the float64 reference on random inputs of awkward
// sizes (including query blocks that split a head, and more keys than
// queries), every mask kind, GQA, with NaN guards around every operand and
// the output.
func TestAttentionBlockedMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	type cfg struct {
		B, Hq, Hkv, Sq, Skv, D, Dv int
		kind                       string
		bias, keep                 bool
	}
	var cfgs []cfg
	for _, s := range []int{1, 7, 65} {
		for _, d := range []int{8, 63} {
			cfgs = append(cfgs,
				cfg{2, 2, 2, s, s, d, d, "none", false, false},
				cfg{1, 4, 2, s, s, d, 7, "causal", true, false},
				cfg{2, 3, 1, s, s + 3, d, d, "sliding:5", false, true},
				cfg{1, 4, 1, s, s, d, d, "none", true, true},
			)
		}
	}
	cfgs = append(cfgs,
		cfg{1, 2, 2, 300, 129, 16, 16, "causal", true, true}, // several query blocks per head
		cfg{1, 1, 1, 3, 0, 8, 8, "none", false, false},       // no keys: zeros
	)
	for _, c := range cfgs {
		kind := c.kind
		p := &attentionProblem{B: c.B, Hq: c.Hq, Hkv: c.Hkv, Sq: c.Sq, Skv: c.Skv, D: c.D, Dv: c.Dv,
			q: guardedFloats(rng, c.B*c.Hq*c.Sq*c.D), k: guardedFloats(rng, c.B*c.Hkv*c.Skv*c.D), v: guardedFloats(rng, c.B*c.Hkv*c.Skv*c.Dv)}
		full := [4]int{c.B, c.Hq, c.Sq, c.Skv}
		if c.bias {
			p.bias = guardedFloats(rng, c.B*c.Sq*c.Skv)
			p.biasStrides, _ = maskStrides("bias", []int{c.B, 1, c.Sq, c.Skv}, full)
			kind += "+additive"
		}
		if c.keep {
			p.keep = make([]bool, c.B*c.Skv)
			for j := range p.keep {
				p.keep[j] = rng.IntN(3) != 0
			}
			p.keepStrides, _ = maskStrides("keep", []int{c.B, 1, 1, c.Skv}, full)
			kind += "+boolean"
		}
		n := &ir.Node{Attrs: []*ir.Attr{ir.FloatAttr("scale", 0.3), ir.StringAttr("mask_kind", kind), ir.FloatAttr("mask_fill", -1e4)}}
		par, err := parseTfcAttention(n)
		if err != nil {
			t.Fatal(err)
		}
		size := c.B * c.Hq * c.Sq * c.Dv
		for _, threads := range []int{1, 3} {
			r := testState(threads)
			check := guardedOutput(r, size)
			y := r.mustAlloc(ir.Float, []int{size})
			for i := range f32(y) {
				f32(y)[i] = nan32 // the kernel must write every element
			}
			if err := attentionBlocked(r, par, p, f32(y)); err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			if err := check(); err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			want := attentionReference(par, p)
			for i, w := range want {
				g := f32(y)[i]
				if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) || math.IsNaN(float64(g)) {
					t.Fatalf("%+v threads=%d: element %d = %g, reference %g", c, threads, i, g, w)
				}
			}
		}
	}
}
