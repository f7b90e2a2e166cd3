package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

func paddingRunState(threads int) *runState {
	return &runState{threads: threads, pool: map[poolKey][]any{}, refs: map[uintptr]int{}, owned: map[uintptr]int64{}}
}

// paddingMasks returns [B, S] masks of the patterns padding removal must
// handle: right padding (lengths 1, S, random), left padding, arbitrary
// holes, an empty sequence.
func paddingMasks(rng *rand.Rand, B, S int) map[string][]int64 {
	mk := func(valid func(b, s int) bool) []int64 {
		m := make([]int64, B*S)
		for b := 0; b < B; b++ {
			for s := 0; s < S; s++ {
				if valid(b, s) {
					m[b*S+s] = 1
				}
			}
		}
		return m
	}
	lens := make([]int, B)
	for b := range lens {
		lens[b] = 1 + rng.IntN(S)
	}
	holes := make([]bool, B*S)
	for i := range holes {
		holes[i] = rng.IntN(3) > 0
	}
	holes[0] = true // sequence 0 keeps at least one token
	return map[string][]int64{
		"right-random": mk(func(b, s int) bool { return s < lens[b] }),
		"right-len1":   mk(func(b, s int) bool { return s < 1 }),
		"full":         mk(func(b, s int) bool { return true }),
		"left-random":  mk(func(b, s int) bool { return s >= S-lens[b] }),
		"arbitrary":    mk(func(b, s int) bool { return holes[b*S+s] }),
		"empty-row":    mk(func(b, s int) bool { return b != 1 && s < lens[b] }),
	}
}

// TestPackUnpackTokens checks PackTokens against the plain definition (the
// valid tokens in order, offsets the running counts, index b*S+s) and
// that UnpackTokens restores them with zeros on padded positions.
func TestPackUnpackTokens(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 1))
	const B, S, H = 4, 7, 3
	x := make([]float32, B*S*H)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	pack, _ := buildPackTokens(nil, nil)
	unpack, _ := buildUnpackTokens(nil, nil)
	for name, mask := range paddingMasks(rng, B, S) {
		t.Run(name, func(t *testing.T) {
			r := paddingRunState(2)
			xt := &Tensor{DType: ir.Float, Shape: []int{B, S, H}, Data: x}
			mt := &Tensor{DType: ir.Int64, Shape: []int{B, S}, Data: mask}
			outs, err := pack(r, []*Tensor{xt, mt})
			if err != nil {
				t.Fatal(err)
			}
			var wantPacked []float32
			var wantIndex []int64
			wantOffsets := []int64{0}
			for b := 0; b < B; b++ {
				for s := 0; s < S; s++ {
					if mask[b*S+s] != 0 {
						wantPacked = append(wantPacked, x[(b*S+s)*H:(b*S+s+1)*H]...)
						wantIndex = append(wantIndex, int64(b*S+s))
					}
				}
				wantOffsets = append(wantOffsets, int64(len(wantIndex)))
			}
			if got := f32(outs[0]); !equalF32(got, wantPacked) || outs[0].Shape[0] != len(wantIndex) {
				t.Fatalf("packed %v = %v, want %v", outs[0].Shape, got, wantPacked)
			}
			if got := outs[1].Data.([]int64); !equalI64(got, wantOffsets) {
				t.Fatalf("offsets %v, want %v", got, wantOffsets)
			}
			if got := outs[2].Data.([]int64); !equalI64(got, wantIndex) {
				t.Fatalf("index %v, want %v", got, wantIndex)
			}
			un, err := unpack(r, []*Tensor{outs[0], outs[1], outs[2], mt})
			if err != nil {
				t.Fatal(err)
			}
			got := f32(un[0])
			for i := 0; i < B*S; i++ {
				for h := 0; h < H; h++ {
					want := float32(0)
					if mask[i] != 0 {
						want = x[i*H+h]
					}
					if got[i*H+h] != want {
						t.Fatalf("unpacked position %d [%d] = %v, want %v", i, h, got[i*H+h], want)
					}
				}
			}
		})
	}
}

func TestPackTokensBadInput(t *testing.T) {
	pack, _ := buildPackTokens(nil, nil)
	r := paddingRunState(1)
	x := &Tensor{DType: ir.Float, Shape: []int{2, 3, 4}, Data: make([]float32, 24)}
	m := &Tensor{DType: ir.Int64, Shape: []int{3, 3}, Data: make([]int64, 9)}
	if _, err := pack(r, []*Tensor{x, m}); err == nil || !strings.Contains(err.Error(), "[batch, seq]") {
		t.Fatalf("mismatched mask: err = %v", err)
	}
	unpack, _ := buildUnpackTokens(nil, nil)
	p := &Tensor{DType: ir.Float, Shape: []int{2, 4}, Data: make([]float32, 8)}
	off := &Tensor{DType: ir.Int64, Shape: []int{3}, Data: []int64{0, 1, 2}}
	idx := &Tensor{DType: ir.Int64, Shape: []int{2}, Data: []int64{0, 99}}
	ref := &Tensor{DType: ir.Int64, Shape: []int{2, 3}, Data: make([]int64, 6)}
	if _, err := unpack(r, []*Tensor{p, off, idx, ref}); err == nil || !strings.Contains(err.Error(), "index[1]") {
		t.Fatalf("out-of-range index: err = %v", err)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalI64(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPackedAttentionMatchesPerSequence runs the packed kernel and, for
// each sequence alone, attentionReference on just its valid tokens (B=1,
// S=its length, the mask restricted to those positions); every packed
// output row must match the unpadded run.
func TestPackedAttentionMatchesPerSequence(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	type cfg struct {
		B, S, Hq, Hkv, D, Dv int
		headBias, keep       bool
	}
	for _, c := range []cfg{
		{3, 7, 2, 2, 8, 8, false, false},
		{4, 65, 4, 2, 7, 5, true, false},
		{2, 16, 3, 1, 64, 64, false, true},
		{1, 9, 2, 2, 8, 8, false, false},
		{5, 1, 2, 2, 4, 4, false, false},
	} {
		for name, mask := range paddingMasks(rng, c.B, c.S) {
			B, S := c.B, c.S
			// Positions of valid tokens, packed order.
			var pos []int
			offsets := []int64{0}
			for b := 0; b < B; b++ {
				for s := 0; s < S; s++ {
					if mask[b*S+s] != 0 {
						pos = append(pos, b*S+s)
					}
				}
				offsets = append(offsets, int64(len(pos)))
			}
			T := len(pos)
			rnd := func(n int) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return v
			}
			q, k, v := rnd(T*c.Hq*c.D), rnd(T*c.Hkv*c.D), rnd(T*c.Hkv*c.Dv)
			// The model's mask: -inf-like bias on padded keys, plus a
			// random per-head bias on valid ones when headBias.
			biasHeads := 1
			if c.headBias {
				biasHeads = c.Hq
			}
			bias := make([]float32, B*biasHeads*S*S)
			var keep []bool
			if c.keep {
				keep = make([]bool, B*S)
			}
			for b := 0; b < B; b++ {
				for h := 0; h < biasHeads; h++ {
					for i := 0; i < S; i++ {
						for j := 0; j < S; j++ {
							val := float32(0)
							if c.headBias {
								val = float32(rng.NormFloat64())
							}
							if mask[b*S+j] == 0 && !c.keep {
								val = -math.MaxFloat32
							}
							bias[((b*biasHeads+h)*S+i)*S+j] = val
						}
					}
				}
				if c.keep {
					for j := 0; j < S; j++ {
						keep[b*S+j] = mask[b*S+j] != 0
					}
				}
			}
			idx := make([]int64, T)
			for i, p := range pos {
				idx[i] = int64(p)
			}
			in := []*Tensor{
				{DType: ir.Float, Shape: []int{T, c.Hq, c.D}, Data: q},
				{DType: ir.Float, Shape: []int{T, c.Hkv, c.D}, Data: k},
				{DType: ir.Float, Shape: []int{T, c.Hkv, c.Dv}, Data: v},
				{DType: ir.Int64, Shape: []int{B + 1}, Data: offsets},
				{DType: ir.Int64, Shape: []int{T}, Data: idx},
				{DType: ir.Int64, Shape: []int{B, S}, Data: mask},
				{DType: ir.Float, Shape: []int{B, biasHeads, S, S}, Data: bias},
			}
			if c.keep {
				in = append(in, &Tensor{DType: ir.Bool, Shape: []int{B, 1, 1, S}, Data: keep})
			}
			par := tfcAttentionParams{scale: 1 / float32(math.Sqrt(float64(c.D))), maskFill: float32(math.Inf(-1))}
			p, err := newPackedAttentionProblem(in)
			if err != nil {
				t.Fatalf("%v %s: %v", c, name, err)
			}
			if err := p.checkPaddingHidden(par); err != nil {
				t.Fatalf("%v %s: %v", c, name, err)
			}
			// NaN guard cells around the output catch stray writes.
			const guard = 5
			size := T * c.Hq * c.Dv
			buf := make([]float32, size+2*guard)
			for i := range buf {
				buf[i] = float32(math.NaN())
			}
			packedAttentionOnline(&runState{threads: 3}, par, p, buf[guard:guard+size])
			for i := 0; i < guard; i++ {
				if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[guard+size+i])) {
					t.Fatalf("%v %s: write outside the output", c, name)
				}
			}
			y := buf[guard : guard+size]
			for b := 0; b < B; b++ {
				o0, o1 := int(offsets[b]), int(offsets[b+1])
				L := o1 - o0
				if L == 0 {
					continue
				}
				// The sequence alone, unpadded, in [1, H, L, D] layout.
				seq := &attentionProblem{B: 1, Hq: c.Hq, Hkv: c.Hkv, Sq: L, Skv: L, D: c.D, Dv: c.Dv,
					q: headsFirst(q, o0, L, c.Hq, c.D), k: headsFirst(k, o0, L, c.Hkv, c.D), v: headsFirst(v, o0, L, c.Hkv, c.Dv)}
				if c.headBias {
					sub := make([]float32, c.Hq*L*L)
					for h := 0; h < c.Hq; h++ {
						for i := 0; i < L; i++ {
							for j := 0; j < L; j++ {
								pi, pj := pos[o0+i]-b*S, pos[o0+j]-b*S
								sub[(h*L+i)*L+j] = bias[((b*c.Hq+h)*S+pi)*S+pj]
							}
						}
					}
					seq.bias, seq.biasStrides = sub, [4]int{0, L * L, L, 1}
				}
				want := attentionReference(par, seq)
				for h := 0; h < c.Hq; h++ {
					for i := 0; i < L; i++ {
						for d := 0; d < c.Dv; d++ {
							g := y[((o0+i)*c.Hq+h)*c.Dv+d]
							w := want[(h*L+i)*c.Dv+d]
							if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) {
								t.Fatalf("%v %s: sequence %d head %d token %d [%d] = %v, unpadded run %v", c, name, b, h, i, d, g, w)
							}
						}
					}
				}
			}
			// The GEMM-blocked fast path must agree with the online
			// kernel checked above (same tolerance), write nothing
			// outside the output, and cover every element.
			fast := make([]float32, size+2*guard)
			for i := range fast {
				fast[i] = float32(math.NaN())
			}
			masks, err := p.prepareMasks(&runState{threads: 3}, par)
			if err != nil {
				t.Fatalf("%v %s: prepareMasks: %v", c, name, err)
			}
			if err := packedAttentionBlocked(&runState{threads: 3}, par, p, masks, fast[guard:guard+size]); err != nil {
				t.Fatalf("%v %s: blocked kernel: %v", c, name, err)
			}
			for i := range fast {
				inside := i >= guard && i < guard+size
				if !inside {
					if !math.IsNaN(float64(fast[i])) {
						t.Fatalf("%v %s: blocked kernel wrote outside the output", c, name)
					}
					continue
				}
				g, w := fast[i], buf[i]
				if math.IsNaN(float64(w)) != math.IsNaN(float64(g)) || math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) {
					t.Fatalf("%v %s: blocked kernel [%d] = %v, online kernel %v", c, name, i-guard, g, w)
				}
			}
		}
	}
}

// headsFirst copies L packed rows [L, H, D] starting at row o0 into
// [H, L, D].
func headsFirst(x []float32, o0, L, H, D int) []float32 {
	out := make([]float32, H*L*D)
	for i := 0; i < L; i++ {
		for h := 0; h < H; h++ {
			copy(out[(h*L+i)*D:(h*L+i+1)*D], x[((o0+i)*H+h)*D:((o0+i)*H+h+1)*D])
		}
	}
	return out
}

// TestPackedAttentionRejectsNonPaddingMask: when the model's mask lets a
// valid query see a padded key, skipping padding would change results,
// so the kernel fails instead.
func TestPackedAttentionRejectsNonPaddingMask(t *testing.T) {
	const B, S, H, D = 1, 3, 1, 2
	mask := []int64{1, 1, 0}
	in := []*Tensor{
		{DType: ir.Float, Shape: []int{2, H, D}, Data: []float32{1, 2, 3, 4}},
		{DType: ir.Float, Shape: []int{2, H, D}, Data: []float32{1, 2, 3, 4}},
		{DType: ir.Float, Shape: []int{2, H, D}, Data: []float32{1, 2, 3, 4}},
		{DType: ir.Int64, Shape: []int{B + 1}, Data: []int64{0, 2}},
		{DType: ir.Int64, Shape: []int{2}, Data: []int64{0, 1}},
		{DType: ir.Int64, Shape: []int{B, S}, Data: mask},
		{DType: ir.Float, Shape: []int{1, 1, 1, S}, Data: []float32{0, 0, 0}}, // hides nothing
	}
	k, err := buildPackedAttention(packedAttentionNode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k(paddingRunState(1), in); err == nil || !strings.Contains(err.Error(), "not a padding mask") {
		t.Fatalf("err = %v, want a not-a-padding-mask error", err)
	}
	in[6] = &Tensor{DType: ir.Float, Shape: []int{1, 1, 1, S}, Data: []float32{0, 0, -math.MaxFloat32}}
	if _, err := k(paddingRunState(1), in); err != nil {
		t.Fatalf("padding mask: %v", err)
	}
}

func packedAttentionNode() *ir.Node {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float))
	y := b.Op("tfc::PackedAttention", x, x, x, x, x, x, ir.FloatAttr("scale", 0.5), ir.StringAttr("mask_kind", "additive"))
	p, _ := y.Producer()
	return p
}

// TestPackedAttentionCausal: under causal and sliding kinds, the fast
// and online packed kernels equal packedAttentionReference (float64,
// frontier at the padded positions) and, for right and left padding,
// attentionReference run on each sequence alone, unpadded, with the same
// kind; GQA and a window narrower than the sequences are included. A
// causal kind without a mask input is exact under right padding and an
// error under left padding (padded keys before a query are visible).
func TestPackedAttentionCausal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 3))
	type cfg struct {
		B, S, Hq, Hkv, D int
		kind             string
	}
	for _, c := range []cfg{
		{3, 7, 2, 2, 8, "causal"},
		{4, 65, 4, 2, 7, "causal"},
		{2, 16, 3, 1, 16, "sliding:4"},
		{1, 9, 2, 2, 8, "sliding:1"},
		{5, 1, 2, 2, 4, "causal"},
		{2, 300, 2, 1, 8, "sliding:37"}, // several query blocks per sequence
	} {
		n := packedAttentionNode()
		for i, a := range n.Attrs {
			if a.Name == "mask_kind" {
				n.Attrs[i] = ir.StringAttr("mask_kind", c.kind)
			}
		}
		par, err := parseTfcAttention(n)
		if err != nil {
			t.Fatal(err)
		}
		par.scale = 1 / float32(math.Sqrt(float64(c.D)))
		B, S := c.B, c.S
		lens := make([]int, B)
		for b := range lens {
			lens[b] = 1 + rng.IntN(S)
		}
		lens[0] = S
		for _, layout := range []string{"right", "left"} {
			for _, withBias := range []bool{true, false} {
				mask := make([]int64, B*S)
				var pos []int
				offsets := []int64{0}
				for b := 0; b < B; b++ {
					for s := 0; s < S; s++ {
						valid := s < lens[b]
						if layout == "left" {
							valid = s >= S-lens[b]
						}
						if valid {
							mask[b*S+s] = 1
							pos = append(pos, b*S+s)
						}
					}
					offsets = append(offsets, int64(len(pos)))
				}
				T := len(pos)
				rnd := func(n int) []float32 {
					v := make([]float32, n)
					for i := range v {
						v[i] = float32(rng.NormFloat64())
					}
					return v
				}
				q, k, v := rnd(T*c.Hq*c.D), rnd(T*c.Hkv*c.D), rnd(T*c.Hkv*c.D)
				idx := make([]int64, T)
				for i, p := range pos {
					idx[i] = int64(p)
				}
				in := []*Tensor{
					{DType: ir.Float, Shape: []int{T, c.Hq, c.D}, Data: q},
					{DType: ir.Float, Shape: []int{T, c.Hkv, c.D}, Data: k},
					{DType: ir.Float, Shape: []int{T, c.Hkv, c.D}, Data: v},
					{DType: ir.Int64, Shape: []int{B + 1}, Data: offsets},
					{DType: ir.Int64, Shape: []int{T}, Data: idx},
					{DType: ir.Int64, Shape: []int{B, S}, Data: mask},
				}
				if withBias {
					// The model's key-padding bias [B, 1, 1, S].
					bias := make([]float32, B*S)
					for i, m := range mask {
						if m == 0 {
							bias[i] = -math.MaxFloat32
						}
					}
					in = append(in, &Tensor{DType: ir.Float, Shape: []int{B, 1, 1, S}, Data: bias})
				}
				what := fmt.Sprintf("%+v %s padding, bias %v", c, layout, withBias)
				p, err := newPackedAttentionProblem(in)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				errRef := p.checkPaddingHidden(par)
				masks, errFast := p.prepareMasks(paddingRunState(2), par)
				if (errRef == nil) != (errFast == nil) {
					t.Fatalf("%s: reference check %v, fast check %v", what, errRef, errFast)
				}
				wantErr := !withBias && layout == "left" && slices.ContainsFunc(lens, func(L int) bool { return L < S })
				if wantErr != (errRef != nil) {
					t.Fatalf("%s: check error %v, want an error: %v", what, errRef, wantErr)
				}
				if errRef != nil {
					continue
				}
				ref := packedAttentionReference(par, p)
				const guard = 3
				size := T * c.Hq * c.D
				for _, kern := range []string{"blocked", "online"} {
					buf := make([]float32, size+2*guard)
					for i := range buf {
						buf[i] = float32(math.NaN())
					}
					y := buf[guard : guard+size]
					if kern == "blocked" {
						if err := packedAttentionBlocked(paddingRunState(3), par, p, masks, y); err != nil {
							t.Fatalf("%s: %v", what, err)
						}
					} else {
						packedAttentionOnline(paddingRunState(3), par, p, y)
					}
					for i := 0; i < guard; i++ {
						if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[guard+size+i])) {
							t.Fatalf("%s %s: write outside the output", what, kern)
						}
					}
					for i := range ref {
						if math.Abs(float64(y[i]-ref[i])) > 1e-5+1e-4*math.Abs(float64(ref[i])) {
							t.Fatalf("%s %s: element %d = %v, reference %v", what, kern, i, y[i], ref[i])
						}
					}
				}
				// Each sequence alone, unpadded, with the same kind.
				for b := 0; b < B; b++ {
					o0, L := int(offsets[b]), int(offsets[b+1]-offsets[b])
					seq := &attentionProblem{B: 1, Hq: c.Hq, Hkv: c.Hkv, Sq: L, Skv: L, D: c.D, Dv: c.D,
						q: headsFirst(q, o0, L, c.Hq, c.D), k: headsFirst(k, o0, L, c.Hkv, c.D), v: headsFirst(v, o0, L, c.Hkv, c.D)}
					want := attentionReference(par, seq)
					for h := 0; h < c.Hq; h++ {
						for i := 0; i < L; i++ {
							for d := 0; d < c.D; d++ {
								g, w := ref[((o0+i)*c.Hq+h)*c.D+d], want[(h*L+i)*c.D+d]
								if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) {
									t.Fatalf("%s: sequence %d, head %d, query %d: packed %v, unpadded %v", what, b, h, i, g, w)
								}
							}
						}
					}
				}
			}
		}
	}
}
