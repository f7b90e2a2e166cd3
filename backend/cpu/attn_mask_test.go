package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// packedMaskCase is one PackedAttention problem for the mask fast paths:
// a token layout and the model's masks over it.
type packedMaskCase struct {
	name                 string
	B, S, Hq, Hkv, D, Dv int
	layout               string // right, left, holes
	bias                 string // "", "pad" (0 / -MaxFloat32 on padded keys), "pad-row" (the same, [B,1,1,S]), "random" ([B,1,S,S] random on valid keys), "row-random" ([B,1,1,S]), "head" ([B,Hq,S,S])
	keep                 string // "", "pad" ([B,1,1,S] false on padded keys), "pad+hole" (also false on one valid key of each sequence)
	wantNone             bool   // prepareMasks must find that nothing needs masking
}

// build returns the kernel inputs of c (random Q, K, V) and the lengths.
func (c packedMaskCase) build(rng *rand.Rand) []*Tensor {
	B, S := c.B, c.S
	mask := make([]int64, B*S)
	for b := 0; b < B; b++ {
		L := 1 + rng.IntN(S)
		if b == 0 {
			L = S // one sequence without padding
		}
		for s := 0; s < S; s++ {
			switch c.layout {
			case "right":
				mask[b*S+s] = tokenFlag(s < L)
			case "left":
				mask[b*S+s] = tokenFlag(s >= S-L)
			case "holes":
				mask[b*S+s] = tokenFlag(b == 0 || s == 0 || rng.IntN(3) > 0)
			}
		}
	}
	var idx []int64
	offsets := []int64{0}
	for b := 0; b < B; b++ {
		for s := 0; s < S; s++ {
			if mask[b*S+s] != 0 {
				idx = append(idx, int64(b*S+s))
			}
		}
		offsets = append(offsets, int64(len(idx)))
	}
	T := len(idx)
	in := []*Tensor{
		{DType: ir.Float, Shape: []int{T, c.Hq, c.D}, Data: guardedFloats(rng, T*c.Hq*c.D)},
		{DType: ir.Float, Shape: []int{T, c.Hkv, c.D}, Data: guardedFloats(rng, T*c.Hkv*c.D)},
		{DType: ir.Float, Shape: []int{T, c.Hkv, c.Dv}, Data: guardedFloats(rng, T*c.Hkv*c.Dv)},
		{DType: ir.Int64, Shape: []int{B + 1}, Data: offsets},
		{DType: ir.Int64, Shape: []int{T}, Data: idx},
		{DType: ir.Int64, Shape: []int{B, S}, Data: mask},
		nil,
	}
	valid := func(b, j int) bool { return mask[b*S+j] != 0 }
	biasOf := func(heads, rows int, val func(b, h, i, j int) float32) *Tensor {
		d := make([]float32, B*heads*rows*S)
		for b := 0; b < B; b++ {
			for h := 0; h < heads; h++ {
				for i := 0; i < rows; i++ {
					for j := 0; j < S; j++ {
						d[((b*heads+h)*rows+i)*S+j] = val(b, h, i, j)
					}
				}
			}
		}
		return &Tensor{DType: ir.Float, Shape: []int{B, heads, rows, S}, Data: d}
	}
	padOr := func(b, j int, v float32) float32 {
		if !valid(b, j) && c.keep == "" {
			return -math.MaxFloat32
		}
		return v
	}
	rnd := func() float32 { return float32(rng.NormFloat64()) }
	switch c.bias {
	case "pad":
		in[6] = biasOf(1, S, func(b, _, _, j int) float32 { return padOr(b, j, 0) })
	case "pad-row":
		in[6] = biasOf(1, 1, func(b, _, _, j int) float32 { return padOr(b, j, 0) })
	case "random":
		in[6] = biasOf(1, S, func(b, _, _, j int) float32 { return padOr(b, j, rnd()) })
	case "row-random":
		in[6] = biasOf(1, 1, func(b, _, _, j int) float32 { return padOr(b, j, rnd()) })
	case "head":
		in[6] = biasOf(c.Hq, S, func(b, _, _, j int) float32 { return padOr(b, j, rnd()) })
	}
	if c.keep != "" {
		keep := make([]bool, B*S)
		for b := 0; b < B; b++ {
			hole := -1
			if c.keep == "pad+hole" && offsets[b+1]-offsets[b] > 1 {
				// Hide the last valid key of the sequence too.
				hole = int(idx[offsets[b+1]-1]) - b*S
			}
			for j := 0; j < S; j++ {
				keep[b*S+j] = valid(b, j) && j != hole
			}
		}
		in = append(in, &Tensor{DType: ir.Bool, Shape: []int{B, 1, 1, S}, Data: keep})
	}
	return in
}

func tokenFlag(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// TestPackedAttentionMaskFastPaths runs the fast PackedAttention kernel,
// with the masks prepareMasks prepares, on the mask shapes models use
// (a key-padding bias expanded to [B,1,S,S] as MiniLM's export has it, a
// [B,1,1,S] bias, a boolean keep mask with a hidden valid key, random
// biases that vary by query or by head), under right and left padding and
// arbitrary holes, at 1, 2 and 3 threads, against the float64
// packedAttentionReference, with NaN guards around the operands and the
// output. Sequences longer than the score block exercise the packed-K/V
// path.
func TestPackedAttentionMaskFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	var cases []packedMaskCase
	for _, layout := range []string{"right", "left", "holes"} {
		cases = append(cases,
			packedMaskCase{"pad-bias", 4, 13, 4, 4, 8, 8, layout, "pad", "", true},
			packedMaskCase{"pad-row-bias", 3, 9, 2, 1, 16, 5, layout, "pad-row", "", true},
			packedMaskCase{"keep", 3, 9, 2, 2, 7, 7, layout, "", "pad", true},
			packedMaskCase{"keep-hole", 3, 9, 2, 2, 7, 7, layout, "", "pad+hole", false},
			packedMaskCase{"keep-hole+bias", 3, 9, 3, 1, 7, 9, layout, "random", "pad+hole", false},
			packedMaskCase{"random-bias", 3, 11, 2, 2, 8, 8, layout, "random", "", false},
			packedMaskCase{"row-random-bias", 3, 11, 2, 2, 8, 8, layout, "row-random", "", false},
			packedMaskCase{"head-bias", 3, 11, 4, 2, 8, 8, layout, "head", "", false},
		)
	}
	cases = append(cases,
		packedMaskCase{"long", 2, 300, 2, 1, 16, 16, "right", "pad", "", true},
		packedMaskCase{"long-head-bias", 2, 200, 2, 2, 8, 8, "left", "head", "", false},
	)
	par := tfcAttentionParams{scale: 0.35, maskFill: float32(math.Inf(-1))}
	for _, c := range cases {
		t.Run(c.name+"/"+c.layout, func(t *testing.T) {
			in := c.build(rng)
			p, err := newPackedAttentionProblem(in)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.checkPaddingHidden(par); err != nil {
				t.Fatalf("the test's mask is not a padding mask: %v", err)
			}
			want := packedAttentionReference(par, p)
			for _, threads := range []int{1, 2, 3} {
				r := testState(threads)
				masks, err := p.prepareMasks(r, par)
				if err != nil {
					t.Fatal(err)
				}
				if masks.none != c.wantNone {
					t.Fatalf("prepareMasks: none = %v, want %v", masks.none, c.wantNone)
				}
				size := p.T * p.Hq * p.Dv
				check := guardedOutput(r, size)
				y := r.mustAlloc(ir.Float, []int{size})
				for i := range f32(y) {
					f32(y)[i] = nan32 // the kernel must write every element
				}
				if err := packedAttentionBlocked(r, par, p, masks, f32(y)); err != nil {
					t.Fatal(err)
				}
				if err := check(); err != nil {
					t.Fatal(err)
				}
				for i, w := range want {
					g := f32(y)[i]
					if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) || math.IsNaN(float64(g)) {
						t.Fatalf("threads=%d: element %d (token %d) = %g, reference %g", threads, i, i/(p.Hq*p.Dv), g, w)
					}
				}
			}
		})
	}
}

// TestPrepareMasksChecksAsReference: prepareMasks accepts exactly the
// masks checkPaddingHidden accepts, with the same error, on padding masks
// and on masks that are not (a padded key left visible to one query, to
// every query, a query that sees no key, a per-head leak, no mask).
func TestPrepareMasksChecksAsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	base := packedMaskCase{"", 3, 8, 2, 2, 4, 4, "right", "pad", "", true}
	par := tfcAttentionParams{scale: 0.5, maskFill: float32(math.Inf(-1))}
	type variant struct {
		name   string
		c      packedMaskCase
		mutate func(in []*Tensor)
	}
	// The bias of a padded key of the last sequence (which has padding:
	// its length is forced below S), for query row i.
	leak := func(i int, all bool) func(in []*Tensor) {
		return func(in []*Tensor) {
			S := base.S
			b := base.B - 1
			bias := f32(in[6])
			for j := 0; j < S; j++ {
				if in[5].Data.([]int64)[b*S+j] == 0 {
					for ii := 0; ii < S; ii++ {
						if all || ii == i {
							bias[(b*S+ii)*S+j] = 0
						}
					}
					return
				}
			}
		}
	}
	variants := []variant{
		{"padding", base, nil},
		{"keep", packedMaskCase{"", 3, 8, 2, 2, 4, 4, "left", "", "pad+hole", false}, nil},
		{"leak-one-query", base, leak(0, false)},
		{"leak-every-query", base, leak(0, true)},
		{"hides-everything", base, func(in []*Tensor) {
			S, b := base.S, base.B-1
			bias := f32(in[6])
			for j := 0; j < S; j++ {
				bias[(b*S+0)*S+j] = float32(math.Inf(-1)) // the last sequence's query 0
			}
		}},
		{"head-leak", packedMaskCase{"", 3, 8, 2, 2, 4, 4, "right", "head", "", false}, func(in []*Tensor) {
			S, H := base.S, 2
			b := base.B - 1
			bias := f32(in[6])
			for j := 0; j < S; j++ {
				if in[5].Data.([]int64)[b*S+j] == 0 {
					bias[((b*H+1)*S+0)*S+j] = 0 // head 1, query 0
					return
				}
			}
		}},
		{"no-mask", base, func(in []*Tensor) { in[6] = nil }},
		// A NaN offset on a valid key makes the reference's math.Max NaN,
		// and then no padded key fails the comparison.
		{"nan-valid-key", base, func(in []*Tensor) {
			leak(0, false)(in)
			S, b := base.S, base.B-1
			f32(in[6])[(b*S+0)*S+0] = float32(math.NaN())
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			var in []*Tensor
			for {
				// The last sequence must have padding for the leaks.
				in = v.c.build(rng)
				off := in[3].Data.([]int64)
				if off[v.c.B]-off[v.c.B-1] < int64(v.c.S) {
					break
				}
			}
			if v.mutate != nil {
				v.mutate(in)
			}
			p, err := newPackedAttentionProblem(in)
			if err != nil {
				t.Fatal(err)
			}
			want := p.checkPaddingHidden(par)
			for _, threads := range []int{1, 3} {
				_, got := p.prepareMasks(testState(threads), par)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("threads=%d: prepareMasks error %v, checkPaddingHidden %v", threads, got, want)
				}
			}
			if v.mutate != nil && want == nil && v.name != "nan-valid-key" {
				t.Fatalf("the variant should not be a padding mask")
			}
		})
	}
}

// TestAttentionBlockedMaskPaths covers the dense kernel's mask
// preparation: masks that keep every key (nothing to do), a [B,1,1,S]
// keep mask with a fully masked key and a bias row (rows prepared once),
// a bias that varies by head (rows read per head), a query with every key
// masked, against attentionReference.
func TestAttentionBlockedMaskPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	const B, Hq, Hkv, Sq, Skv, D, Dv = 3, 4, 2, 9, 11, 8, 6
	full := [4]int{B, Hq, Sq, Skv}
	type cfg struct {
		name                string
		biasShape, keepDims []int
		keepAll, hideRow    bool
		wantNone, wantRows  bool
	}
	for _, c := range []cfg{
		{"keep-all", nil, []int{B, 1, 1, Skv}, true, false, true, true},
		{"zero-bias", []int{1, 1, 1, Skv}, nil, false, false, true, true},
		{"keep+bias-row", []int{B, 1, 1, Skv}, []int{B, 1, 1, Skv}, false, false, false, true},
		{"keep+bias-per-query", []int{B, 1, Sq, Skv}, []int{B, 1, Sq, Skv}, false, true, false, true},
		{"bias-per-head", []int{1, Hq, Sq, Skv}, []int{B, 1, 1, Skv}, false, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &attentionProblem{B: B, Hq: Hq, Hkv: Hkv, Sq: Sq, Skv: Skv, D: D, Dv: Dv,
				q: guardedFloats(rng, B*Hq*Sq*D), k: guardedFloats(rng, B*Hkv*Skv*D), v: guardedFloats(rng, B*Hkv*Skv*Dv)}
			if c.biasShape != nil {
				n := shapeSize(c.biasShape)
				if c.name == "zero-bias" {
					p.bias = make([]float32, n)
				} else {
					p.bias = guardedFloats(rng, n)
				}
				p.biasStrides, _ = maskStrides("bias", c.biasShape, full)
			}
			if c.keepDims != nil {
				p.keep = make([]bool, shapeSize(c.keepDims))
				for j := range p.keep {
					p.keep[j] = c.keepAll || j%Skv != 3 && rng.IntN(4) != 0
				}
				if c.hideRow {
					for j := 0; j < Skv; j++ {
						p.keep[(1*Sq+2)*Skv+j] = false // batch 1, query 2 sees nothing
					}
				}
				p.keepStrides, _ = maskStrides("keep", c.keepDims, full)
			}
			par := tfcAttentionParams{scale: 0.3, maskFill: float32(math.Inf(-1))}
			want := attentionReference(par, p)
			for _, threads := range []int{1, 2, 3} {
				r := testState(threads)
				m := p.prepareDenseMasks(r, par)
				if m.none != c.wantNone || (m.rows != nil) != c.wantRows {
					t.Fatalf("prepareDenseMasks: none = %v, rows prepared = %v; want %v, %v", m.none, m.rows != nil, c.wantNone, c.wantRows)
				}
				size := B * Hq * Sq * Dv
				check := guardedOutput(r, size)
				y := r.mustAlloc(ir.Float, []int{size})
				for i := range f32(y) {
					f32(y)[i] = nan32
				}
				if err := attentionBlocked(r, par, p, f32(y)); err != nil {
					t.Fatal(err)
				}
				if err := check(); err != nil {
					t.Fatal(err)
				}
				for i, w := range want {
					g := f32(y)[i]
					if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) || math.IsNaN(float64(g)) {
						t.Fatalf("threads=%d: element %d = %g, reference %g", threads, i, g, w)
					}
				}
			}
		})
	}
}

// TestKeyMaskRowMatchesMaskedScore: a prepared row changes each score
// exactly as maskedScore does (bit for bit), with and without a keep
// mask, for biases (including zeros, -0 and -inf), a finite mask fill,
// and contiguous or scattered keys.
func TestKeyMaskRowMatchesMaskedScore(t *testing.T) {
	rng := rand.New(rand.NewPCG(77, 78))
	const B, H, S = 2, 3, 10
	full := [4]int{B, H, S, S}
	p := &attentionProblem{B: B, Hq: H, Hkv: H, Sq: S, Skv: S}
	p.bias = make([]float32, B*H*S*S)
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(-1)), -1e4}
	for i := range p.bias {
		if rng.IntN(2) == 0 {
			p.bias[i] = specials[rng.IntN(len(specials))]
		} else {
			p.bias[i] = float32(rng.NormFloat64())
		}
	}
	p.biasStrides, _ = maskStrides("bias", []int{B, H, S, S}, full)
	p.keep = make([]bool, B*S*S)
	for i := range p.keep {
		p.keep[i] = rng.IntN(3) != 0
	}
	p.keepStrides, _ = maskStrides("keep", []int{B, 1, S, S}, full)
	par := tfcAttentionParams{scale: 1, maskFill: -3.5}
	// Key sets: all keys, a contiguous run from key 3 (the plain-scan
	// path when there is no keep mask), any subset in any order.
	type keySet struct {
		keys     []int32
		first, n int
	}
	sets := []keySet{{nil, 0, S}, {nil, 3, 5}, {[]int32{9, 0, 4, 5, 7}, 0, 5}}
	keep := p.keep
	var row keyMaskRow
	for _, withKeep := range []bool{true, false} {
		p.keep = nil
		if withKeep {
			p.keep = keep
		}
		for b := 0; b < B; b++ {
			for h := 0; h < H; h++ {
				for i := 0; i < S; i++ {
					for _, ks := range sets {
						scores := randFloats(rng, ks.n)
						got := append([]float32(nil), scores...)
						p.readKeyRow(par, b, h, i, ks.keys, ks.first, ks.n, &row)
						row.apply(got, 0)
						for u := range scores {
							j := ks.first + u
							if ks.keys != nil {
								j = int(ks.keys[u])
							}
							want := p.maskedScore(par, scores[u], b, h, i, j)
							if math.Float32bits(got[u]) != math.Float32bits(want) && !(got[u] == 0 && want == 0) {
								t.Fatalf("keep=%v b=%d h=%d i=%d key %d: %v, maskedScore %v", withKeep, b, h, i, j, got[u], want)
							}
						}
					}
				}
			}
		}
	}
}

// TestRunDynamic: every item runs exactly once for any thread count
// (including more threads than items and none), each goroutine builds
// one worker, and a panic in an item reaches the caller.
func TestRunDynamic(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100, 1001} {
		for _, threads := range []int{0, 1, 2, 3, 8, 2000} {
			counts := make([]atomic.Int32, n)
			var workers atomic.Int32
			runDynamic(threads, n, func() func(int) {
				workers.Add(1)
				return func(it int) { counts[it].Add(1) }
			})
			for it := range counts {
				if c := counts[it].Load(); c != 1 {
					t.Fatalf("n=%d threads=%d: item %d ran %d times", n, threads, it, c)
				}
			}
			if w := int(workers.Load()); n > 0 && (w < 1 || w > max(1, min(threads, n))) {
				t.Fatalf("n=%d threads=%d: %d workers", n, threads, w)
			}
		}
	}
	// Items are claimed in increasing order: with one thread, exactly.
	var order []int
	runDynamic(1, 5, func() func(int) { return func(it int) { order = append(order, it) } })
	if fmt.Sprint(order) != "[0 1 2 3 4]" {
		t.Fatalf("one thread ran items in order %v", order)
	}
	for _, threads := range []int{1, 4} {
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Fatalf("threads=%d: recovered %v, want the item's panic", threads, p)
				}
			}()
			runDynamic(threads, 50, func() func(int) {
				return func(it int) {
					if it == 17 {
						panic("boom")
					}
				}
			})
			t.Fatalf("threads=%d: no panic", threads)
		}()
	}
}

// TestTransposeInto compares transposeInto with the plain double loop on
// awkward sizes, leading dimensions wider than a row on both sides, and
// NaN guards around the destination.
func TestTransposeInto(t *testing.T) {
	rng := rand.New(rand.NewPCG(79, 80))
	for _, rows := range []int{0, 1, 7, 8, 9, 63, 64, 65} {
		for _, cols := range []int{1, 7, 32, 33} {
			ld := cols + rng.IntN(3)
			ldd := rows + rng.IntN(3)
			src := guardedFloats(rng, max(0, (rows-1)*ld+cols))
			if rows == 0 {
				src = nil
			}
			n := max(0, (cols-1)*ldd+rows)
			buf := make([]float32, n+2*fastGuard)
			for i := range buf {
				buf[i] = nan32
			}
			dst := buf[fastGuard : fastGuard+n]
			transposeInto(dst, ldd, src, rows, cols, ld)
			for i := 0; i < fastGuard; i++ {
				if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[len(buf)-1-i])) {
					t.Fatalf("%dx%d: wrote outside the destination", rows, cols)
				}
			}
			for r := 0; r < rows; r++ {
				for c := 0; c < cols; c++ {
					if dst[c*ldd+r] != src[r*ld+c] {
						t.Fatalf("%dx%d ld %d ldd %d: dst[%d][%d] = %v, want %v", rows, cols, ld, ldd, c, r, dst[c*ldd+r], src[r*ld+c])
					}
				}
			}
		}
	}
}

// TestAttentionBlockedCausalKeyRanges: under causal and sliding masks the
// dense kernel computes each query block over only the keys its rows can
// see, so the masks are applied to rows that start past key 0. Several
// blocks per head, more or fewer keys than queries, masks prepared once
// (head-invariant) or read per head, against attentionReference.
func TestAttentionBlockedCausalKeyRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	type cfg struct {
		Sq, Skv  int
		kind     string
		headBias bool
	}
	for _, c := range []cfg{
		{300, 310, "sliding:37", false},
		{300, 310, "sliding:37", true},
		{257, 200, "causal", false},
		{129, 140, "sliding:1", true},
		{200, 200, "causal", true},
	} {
		const B, Hq, Hkv, D, Dv = 2, 2, 1, 8, 5
		p := &attentionProblem{B: B, Hq: Hq, Hkv: Hkv, Sq: c.Sq, Skv: c.Skv, D: D, Dv: Dv,
			q: guardedFloats(rng, B*Hq*c.Sq*D), k: guardedFloats(rng, B*Hkv*c.Skv*D), v: guardedFloats(rng, B*Hkv*c.Skv*Dv)}
		full := [4]int{B, Hq, c.Sq, c.Skv}
		biasShape := []int{B, 1, c.Sq, c.Skv}
		if c.headBias {
			biasShape = []int{1, Hq, c.Sq, c.Skv}
		}
		p.bias = guardedFloats(rng, shapeSize(biasShape))
		p.biasStrides, _ = maskStrides("bias", biasShape, full)
		p.keep = make([]bool, B*c.Skv)
		for j := range p.keep {
			p.keep[j] = rng.IntN(5) != 0
		}
		p.keepStrides, _ = maskStrides("keep", []int{B, 1, 1, c.Skv}, full)
		n := &ir.Node{Attrs: []*ir.Attr{ir.FloatAttr("scale", 0.3), ir.StringAttr("mask_kind", c.kind+"+additive+boolean"), ir.FloatAttr("mask_fill", -1e4)}}
		par, err := parseTfcAttention(n)
		if err != nil {
			t.Fatal(err)
		}
		want := attentionReference(par, p)
		for _, threads := range []int{1, 3} {
			r := testState(threads)
			size := B * Hq * c.Sq * Dv
			check := guardedOutput(r, size)
			y := r.mustAlloc(ir.Float, []int{size})
			for i := range f32(y) {
				f32(y)[i] = nan32
			}
			if err := attentionBlocked(r, par, p, f32(y)); err != nil {
				t.Fatal(err)
			}
			if err := check(); err != nil {
				t.Fatal(err)
			}
			for i, w := range want {
				g := f32(y)[i]
				if math.Abs(float64(g-w)) > 1e-5+1e-4*math.Abs(float64(w)) || math.IsNaN(float64(g)) {
					t.Fatalf("%+v threads=%d: element %d = %g, reference %g", c, threads, i, g, w)
				}
			}
		}
	}
}
