package cpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// awkwardSizes are the sizes fast paths get wrong: edges of blocks and
// chunks.
var awkwardSizes = []int{1, 7, 63, 64, 65}

func randFloats(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

func testState(threads int) *runState {
	return &runState{threads: threads, pool: map[poolKey][]any{}, refs: map[uintptr]int{}, owned: map[uintptr]int64{}}
}

// TestF16RoundTrip: every half-precision value survives f16 -> f32 -> f16.
func TestF16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := f16ToF32(uint16(h))
		back := f32ToF16(f)
		if f != f {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// TestF32ToF16Rounding compares the conversion with a search for the
// nearest half value (ties to even) over random and boundary inputs.
func TestF32ToF16Rounding(t *testing.T) {
	// All finite non-negative halves in increasing order of value.
	var halves []uint16
	for h := uint16(0); h < 0x7c00; h++ {
		halves = append(halves, h)
	}
	nearest := func(f float32) uint16 {
		x := math.Abs(float64(f))
		sign := uint16(0)
		if math.Signbit(float64(f)) {
			sign = 0x8000
		}
		maxHalf := float64(f16ToF32(0x7bff))
		// beyond the largest half plus half an ulp: infinity
		if x >= maxHalf+float64(f16ToF32(0x7bff)-f16ToF32(0x7bfe))/2 {
			return sign | 0x7c00
		}
		i := sort.Search(len(halves), func(i int) bool { return float64(f16ToF32(halves[i])) >= x })
		if i == len(halves) {
			return sign | 0x7bff
		}
		best := halves[i]
		if i > 0 {
			lo := halves[i-1]
			dlo := x - float64(f16ToF32(lo))
			dhi := float64(f16ToF32(best)) - x
			if dlo < dhi || (dlo == dhi && lo&1 == 0) {
				best = lo
			}
		}
		return sign | best
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []float32{0, 1, -1, 65504, 65519.99, 65520, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9, -3.3e-6}
	for i := 0; i < 20000; i++ {
		inputs = append(inputs, float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(44)-26)))
	}
	for _, f := range inputs {
		if got, want := f32ToF16(f), nearest(f); got != want {
			t.Fatalf("f32ToF16(%g) = %#04x, want %#04x", f, got, want)
		}
	}
}

// TestBF16Rounding compares with rounding to nearest even done in
// float64 on the two candidate neighbours.
func TestBF16Rounding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		f := float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(200)-100))
		trunc := uint16(math.Float32bits(f) >> 16)
		lo, hi := bf16ToF32(trunc), bf16ToF32(trunc+1)
		dlo := math.Abs(float64(f) - float64(lo))
		dhi := math.Abs(float64(hi) - float64(f))
		want := trunc
		if dhi < dlo || (dhi == dlo && trunc&1 == 1) {
			want = trunc + 1
		}
		if got := f32ToBF16(f); got != want {
			t.Fatalf("f32ToBF16(%g) = %#04x, want %#04x", f, got, want)
		}
	}
}

// refMatMul is the float64 reference: c[i,j] = sum_p a[i,p] b[p,j].
func refMatMul(a, b []float32, m, k, n int) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			c[i*n+j] = s
		}
	}
	return c
}

func closeEnough(got float64, want float64, k int) bool {
	// float32 accumulation over k terms of unit-variance products
	tol := 1e-5 + 1e-6*float64(k)*math.Max(1, math.Abs(want))
	return math.Abs(got-want) <= tol*4
}

// TestMatmulBlockGuards runs the inner kernel into a buffer with NaN guard
// cells on both sides and compares with the float64 reference.
func TestMatmulBlockGuards(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const guard = 9
	for _, m := range awkwardSizes {
		for _, k := range awkwardSizes {
			for _, n := range []int{1, 7, 65} {
				a, b := randFloats(rng, m*k), randFloats(rng, k*n)
				buf := make([]float32, m*n+2*guard)
				for i := range buf {
					buf[i] = float32(math.NaN())
				}
				c := buf[guard : guard+m*n]
				clear(c)
				matmulBlock(a, b, c, m, k, n)
				for i := 0; i < guard; i++ {
					if !math.IsNaN(float64(buf[i])) || !math.IsNaN(float64(buf[len(buf)-1-i])) {
						t.Fatalf("m=%d k=%d n=%d: guard cell overwritten", m, k, n)
					}
				}
				want := refMatMul(a, b, m, k, n)
				for i := range c {
					if !closeEnough(float64(c[i]), want[i], k) {
						t.Fatalf("m=%d k=%d n=%d: c[%d] = %g, want %g", m, k, n, i, c[i], want[i])
					}
				}
			}
		}
	}
}

// TestBroadcastIndex compares with an independent coordinate computation.
func TestBroadcastIndex(t *testing.T) {
	cases := []struct{ in, out []int }{
		{[]int{3, 1, 5}, []int{2, 3, 4, 5}},
		{[]int{1}, []int{7}},
		{[]int{}, []int{2, 3}},
		{[]int{4, 1}, []int{4, 65}},
		{[]int{1, 63}, []int{2, 1, 63}},
		{[]int{2, 3}, []int{2, 3}},
	}
	for _, c := range cases {
		got := broadcastIndex(c.in, c.out)
		off := len(c.out) - len(c.in)
		inSt := strides(c.in)
		k := 0
		forEachIndex(c.out, func(_ int, pos []int) {
			want := 0
			for i := range c.in {
				p := pos[off+i]
				if c.in[i] == 1 {
					p = 0
				}
				want += p * inSt[i]
			}
			if got[k] != want {
				t.Fatalf("in %v out %v: index %d is %d, want %d", c.in, c.out, k, got[k], want)
			}
			k++
		})
		if k != len(got) {
			t.Fatalf("in %v out %v: %d indices, want %d", c.in, c.out, len(got), k)
		}
	}
}

// TestMatMulKernelThreads runs the MatMul kernel with batch broadcasting
// on 1 and 3 threads and compares with the reference.
func TestMatMulKernelThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	k, err := buildMatMul(&ir.Node{Op: "MatMul"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 3} {
		for _, sz := range [][2][]int{
			{{2, 1, 7, 63}, {3, 63, 65}},
			{{65}, {65, 7}},
			{{4, 64, 1}, {1, 5}},
			{{7, 3}, {3}},
		} {
			as, bs := sz[0], sz[1]
			a := Float32Tensor(as, randFloats(rng, shapeSize(as)))
			b := Float32Tensor(bs, randFloats(rng, shapeSize(bs)))
			outs, err := k(testState(threads), []*Tensor{a, b})
			if err != nil {
				t.Fatal(err)
			}
			got := outs[0]
			// Reference: promote, broadcast batch, multiply each pair.
			a2, b2 := as, bs
			if len(a2) == 1 {
				a2 = []int{1, a2[0]}
			}
			if len(b2) == 1 {
				b2 = []int{b2[0], 1}
			}
			m, kk, n := a2[len(a2)-2], a2[len(a2)-1], b2[len(b2)-1]
			batch, _ := broadcastShapes(a2[:len(a2)-2], b2[:len(b2)-2])
			ia := broadcastIndex(a2[:len(a2)-2], batch)
			ib := broadcastIndex(b2[:len(b2)-2], batch)
			gv := got.Data.([]float32)
			if len(gv) != shapeSize(batch)*m*n {
				t.Fatalf("%v x %v: got shape %v", as, bs, got.Shape)
			}
			for bi := range ia {
				want := refMatMul(f32(a)[ia[bi]*m*kk:][:m*kk], f32(b)[ib[bi]*kk*n:][:kk*n], m, kk, n)
				for i, w := range want {
					if g := float64(gv[bi*m*n+i]); !closeEnough(g, w, kk) {
						t.Fatalf("threads=%d %v x %v: element %d = %g, want %g", threads, as, bs, bi*m*n+i, g, w)
					}
				}
			}
		}
	}
}

// TestTakeGuards: the data-movement reference writes only inside its
// output and fills negative indices with zero.
func TestTakeGuards(t *testing.T) {
	src := Float32Tensor([]int{5}, []float32{1, 2, 3, 4, 5})
	out := take(testState(1), src, []int{2, 3}, []int{4, -1, 0, 2, -1, 1})
	want := []float32{5, 0, 1, 3, 0, 2}
	if !slices.Equal(out.Data.([]float32), want) || !slices.Equal(out.Shape, []int{2, 3}) {
		t.Fatalf("take = %v %v, want [2 3] %v", out.Shape, out.Data, want)
	}
}

// TestBufferReuse checks the pool: a released buffer is handed out again
// and counted once in the peak.
func TestBufferReuse(t *testing.T) {
	r := testState(1)
	a := r.mustAlloc(ir.Float, []int{10})
	r.retain(a)
	f32(a)[3] = 7
	r.release(a)
	b := r.mustAlloc(ir.Float, []int{2, 5})
	if r.stats.ReusedBuffers != 1 || dataPtr(a) != dataPtr(b) {
		t.Fatalf("buffer not reused: stats %+v", r.stats)
	}
	if f32(b)[3] != 0 {
		t.Fatalf("reused buffer not cleared")
	}
	if r.stats.PeakBytes != 40 || r.stats.AllocatedBytes != 40 {
		t.Fatalf("stats %+v, want peak 40 and allocated 40", r.stats)
	}
}

// TestRawRoundTrip: encoding to ONNX raw bytes and decoding back gives
// the same values for every storage type, sub-byte ones included.
func TestRawRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, dt := range typeOrder {
		if dt == ir.String {
			continue
		}
		n := 7
		src, err := NewTensor(dt, []int{n})
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, dt.ByteSize(int64(n)))
		for i := range raw {
			raw[i] = byte(rng.IntN(256))
		}
		if dt == ir.Bool {
			for i := range raw {
				raw[i] &= 1
			}
		}
		if err := decodeRaw(src, raw); err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		back, err := encodeRaw(src)
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		if dt.Bits() < 8 { // the unused high bits of the last byte are not kept
			last := n * dt.Bits() % 8
			if last != 0 {
				raw[len(raw)-1] &= byte(1<<last - 1)
			}
		}
		if !slices.Equal(raw, back) {
			t.Fatalf("%v: raw %x came back as %x", dt, raw, back)
		}
	}
}

// TestViewIRSharesAlignedWeights: aligned float32 constants are used in
// place; misaligned bytes (a view into an mmapped file) are copied, with
// the same values either way.
func TestViewIRSharesAlignedWeights(t *testing.T) {
	vals := []float32{1.5, -2, 3.25}
	aligned := ir.Float32Tensor(nil, vals...)
	v, err := viewIR(aligned)
	if err != nil {
		t.Fatal(err)
	}
	if src, _ := aligned.Float32s(); &src[0] != &f32(v)[0] {
		t.Errorf("aligned constant was copied")
	}
	buf := make([]byte, 4*len(vals)+1)
	copy(buf[1:], aligned.Bytes())
	mis, err := ir.NewTensor(ir.Float, []int64{3}, buf[1:])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mis.Float32s(); ok {
		t.Skip("this platform aligned the test buffer unexpectedly")
	}
	c, err := viewIR(mis)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f32(c), vals) {
		t.Errorf("misaligned constant decoded as %v, want %v", f32(c), vals)
	}
}
