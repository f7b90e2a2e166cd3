package gemm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tolerance. Every test compares against a float64 evaluation of the
// same formula and allows, per element,
//
//	2 * (k + 4) * u * (|alpha| * sum_l |opA(i,l)| |opB(l,j)| + |beta * c_ij|),   u = 2^-24,
//
// which is twice the classical worst-case bound for a float32 dot product
// of length k (gamma_k ~ k*u, whatever the summation order: blocked,
// FMA-contracted or plain) plus the roundings of the alpha and beta
// products and the final add. It is per element, so a missing or doubled
// term (of size ~|a||b|, far above k*u*sum|a||b| for these inputs) fails.
const unitRoundoff = 1.0 / (1 << 24)

type testCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra leading-dimension elements
	padC           int
}

func (tc testCase) String() string {
	return fmt.Sprintf("tA=%v/tB=%v/m=%d/n=%d/k=%d/alpha=%g/beta=%g/pad=%d,%d,%d",
		tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, tc.beta, tc.padA, tc.padB, tc.padC)
}

// operands holds one case's buffers: A and B fully random (padding too),
// C with NaN guard cells before, after, and in every row's padding.
type operands struct {
	a, b          []float32
	c             []float32 // guard cells, then m rows of ldc, then guard cells
	lda, ldb, ldc int
	guard         int
	aOrig, bOrig  []float32
	c0            []float32 // c before the call, for reset and for beta*C
}

func randNonZero(rng *rand.Rand) float32 {
	// Uniform in [-1, -1/8] u [1/8, 1]: never zero, mixed signs.
	v := float32(0.125 + 0.875*rng.Float64())
	if rng.IntN(2) == 0 {
		return -v
	}
	return v
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = randNonZero(rng)
	}
	return s
}

func storedShape(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}

const guardCells = 17

func newOperands(rng *rand.Rand, tc testCase) *operands {
	o := &operands{guard: guardCells}
	ar, ac := storedShape(tc.transA, tc.m, tc.k)
	br, bc := storedShape(tc.transB, tc.k, tc.n)
	o.lda, o.ldb, o.ldc = max(1, ac)+tc.padA, max(1, bc)+tc.padB, max(1, tc.n)+tc.padC
	o.a = randSlice(rng, ar*o.lda)
	o.b = randSlice(rng, br*o.ldb)
	// o.c is the whole buffer, guards included; cView is what Sgemm gets.
	o.c = make([]float32, 2*o.guard+tc.m*o.ldc)
	nan := float32(math.NaN())
	for i := range o.c {
		o.c[i] = nan
	}
	if tc.beta != 0 {
		// With beta == 0 the NaNs stay: BLAS does not read C then, so
		// they must not leak into the result.
		view := o.cView(tc.m)
		for i := 0; i < tc.m; i++ {
			for j := 0; j < tc.n; j++ {
				view[i*o.ldc+j] = randNonZero(rng)
			}
		}
	}
	o.aOrig = append([]float32(nil), o.a...)
	o.bOrig = append([]float32(nil), o.b...)
	o.c0 = append([]float32(nil), o.c...)
	return o
}

// cView is the slice handed to Sgemm: exactly m rows of ldc, guards
// outside it.
func (o *operands) cView(m int) []float32 {
	return o.c[o.guard : o.guard+m*o.ldc : o.guard+m*o.ldc]
}

func (o *operands) reset() { copy(o.c, o.c0) }

func opAt(x []float32, ld int, trans bool, r, c int) float32 {
	if trans {
		return x[c*ld+r]
	}
	return x[r*ld+c]
}

// checkResult verifies C against a float64 evaluation within the bound
// above, the guards and padding of C still NaN, and A, B untouched.
func checkResult(t *testing.T, tc testCase, o *operands) {
	t.Helper()
	for i := range o.a {
		if math.Float32bits(o.a[i]) != math.Float32bits(o.aOrig[i]) {
			t.Fatalf("%v: A[%d] changed", tc, i)
		}
	}
	for i := range o.b {
		if math.Float32bits(o.b[i]) != math.Float32bits(o.bOrig[i]) {
			t.Fatalf("%v: B[%d] changed", tc, i)
		}
	}
	inside := func(idx int) (int, int, bool) {
		idx -= o.guard
		if idx < 0 || idx >= tc.m*o.ldc {
			return 0, 0, false
		}
		i, j := idx/o.ldc, idx%o.ldc
		return i, j, j < tc.n
	}
	bad := 0
	for idx, got := range o.c {
		i, j, in := inside(idx)
		if !in {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%v: guard/padding cell %d of C overwritten with %g", tc, idx, got)
			}
			continue
		}
		var sum, abs float64
		for l := 0; l < tc.k; l++ {
			p := float64(opAt(o.aOrig, o.lda, tc.transA, i, l)) * float64(opAt(o.bOrig, o.ldb, tc.transB, l, j))
			sum += p
			abs += math.Abs(p)
		}
		want := float64(tc.alpha) * sum
		scale := math.Abs(float64(tc.alpha)) * abs
		if tc.beta != 0 {
			bc := float64(tc.beta) * float64(o.c0[idx])
			want += bc
			scale += math.Abs(bc)
		}
		tol := 2 * float64(tc.k+4) * unitRoundoff * scale
		if diff := math.Abs(float64(got) - want); !(diff <= tol) {
			if bad++; bad <= 3 {
				t.Errorf("%v: C[%d,%d] = %g, want %g (|diff| %g > tol %g)", tc, i, j, got, want, diff, tol)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%v: %d elements out of tolerance", tc, bad)
	}
}

var awkward = []int{1, 7, 63, 64, 65}

func allCases() []testCase {
	var cases []testCase
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {0.75, -1.25}}
	n := 0
	for _, m := range awkward {
		for _, nn := range awkward {
			for _, k := range awkward {
				for tr := 0; tr < 4; tr++ {
					s := scalars[n%len(scalars)]
					cases = append(cases, testCase{transA: tr&1 != 0, transB: tr&2 != 0, m: m, n: nn, k: k,
						alpha: s[0], beta: s[1], padA: n % 3, padB: (n + 1) % 4, padC: (n + 2) % 5})
					n++
				}
			}
		}
	}
	// Larger shapes crossing every blocking boundary: k > kc (and not a
	// multiple of it: 385 and 769 make a last depth block of a different
	// size), m > mc with rows left over after the 6-row panels read in
	// place (m mod 6 != 0), n > nc, and the 1000 of the awkward list.
	big := [][3]int{{1000, 7, 65}, {7, 1000, 63}, {65, 63, 1000}, {150, 100, 513}, {13, 3100, 300}, {145, 33, 257}, {1000, 1, 1}, {1, 1, 1000},
		{293, 37, 385}, {149, 20, 769}}
	for i, s := range big {
		for tr := 0; tr < 4; tr++ {
			sc := scalars[(i+tr)%len(scalars)]
			cases = append(cases, testCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s[0], n: s[1], k: s[2],
				alpha: sc[0], beta: sc[1], padA: 3, padB: 1, padC: 2})
		}
	}
	// Degenerate: empty dimensions, alpha == 0 (A and B not read).
	cases = append(cases,
		testCase{m: 5, n: 9, k: 0, alpha: 1, beta: 0.5, padC: 1},
		testCase{m: 5, n: 9, k: 0, alpha: 1, beta: 0},
		testCase{m: 0, n: 9, k: 3, alpha: 1, beta: 1},
		testCase{m: 4, n: 0, k: 3, alpha: 1, beta: 1},
		testCase{m: 7, n: 20, k: 9, alpha: 0, beta: -2},
		testCase{m: 7, n: 20, k: 9, alpha: 0, beta: 0},
	)
	return cases
}

// kernels returns the micro-kernels to test: always the Go one, and the
// assembly one where this CPU runs it.
func kernels(t *testing.T) []string {
	if useAsm {
		return []string{"asm", "go"}
	}
	t.Log("assembly micro-kernel not available on this CPU/build: testing the Go kernel only")
	return []string{"go"}
}

func withKernel(name string, f func()) {
	saved := useAsm
	useAsm = name == "asm"
	defer func() { useAsm = saved }()
	f()
}

func TestSgemmMatchesFloat64(t *testing.T) {
	cases := allCases()
	if testing.Short() {
		cases = cases[:len(cases)/4]
	}
	for _, kern := range kernels(t) {
		withKernel(kern, func() {
			rng := rand.New(rand.NewPCG(1, 2))
			for _, tc := range cases {
				o := newOperands(rng, tc)
				if err := Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.cView(tc.m), o.ldc); err != nil {
					t.Fatalf("%s %v: %v", kern, tc, err)
				}
				checkResult(t, tc, o)
			}
		})
	}
}

func TestSgemmRefMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i, tc := range allCases() {
		if i%5 != 0 && tc.m*tc.n*tc.k > 1e6 {
			continue // the reference is slow; a sample of the big shapes is enough
		}
		o := newOperands(rng, tc)
		sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.cView(tc.m), o.ldc)
		checkResult(t, tc, o)
	}
}

// TestSgemmVsRef compares the fast path with sgemmRef directly, the
// oracle the issue asks for, on random shapes.
func TestSgemmVsRef(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for it := 0; it < 60; it++ {
		tc := testCase{transA: rng.IntN(2) == 0, transB: rng.IntN(2) == 0,
			m: 1 + rng.IntN(80), n: 1 + rng.IntN(80), k: 1 + rng.IntN(600),
			alpha: randNonZero(rng), beta: []float32{0, 1, randNonZero(rng)}[it%3],
			padA: rng.IntN(3), padB: rng.IntN(3), padC: rng.IntN(3)}
		o := newOperands(rng, tc)
		want := append([]float32(nil), o.c...)
		sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, want[o.guard:o.guard+tc.m*o.ldc], o.ldc)
		if err := Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.cView(tc.m), o.ldc); err != nil {
			t.Fatal(err)
		}
		for idx := range want {
			g, w := float64(o.c[idx]), float64(want[idx])
			if math.IsNaN(w) {
				if !math.IsNaN(g) {
					t.Fatalf("%v: guard cell %d overwritten", tc, idx)
				}
				continue
			}
			// Two float32 evaluations, each within the bound of
			// checkResult of the exact value, and |values| <= 1, |beta*c| <= 1.
			tol := 4 * float64(tc.k+4) * unitRoundoff * (math.Abs(float64(tc.alpha))*float64(tc.k) + 1)
			if math.Abs(g-w) > tol {
				t.Fatalf("%v: C cell %d = %g, reference %g (tol %g)", tc, idx, g, w, tol)
			}
		}
	}
}

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %g, single-threaded unpacked Sgemm gives %g", what, i, got[i], want[i])
		}
	}
}

// TestParallelAndPackedBitwise: the parallel, packed and batched entries
// must give exactly the bits of Sgemm (same operations per element).
func TestParallelAndPackedBitwise(t *testing.T) {
	// The last shapes are big enough to be split into several strips per
	// thread (claimed dynamically; the last one into strips of whole
	// mc-row blocks): rows not a multiple of 6, depth over kc and not a
	// multiple of it, columns not a multiple of 16.
	shapes := [][3]int{{1, 1, 1}, {7, 65, 63}, {300, 40, 70}, {40, 300, 270}, {64, 3100, 40}, {130, 131, 513}, {5, 2000, 9},
		{1001, 47, 400}, {97, 1000, 389}, {1301, 20, 300}}
	for _, kern := range kernels(t) {
		withKernel(kern, func() {
			rng := rand.New(rand.NewPCG(7, 8))
			for si, s := range shapes {
				for tr := 0; tr < 4; tr++ {
					tc := testCase{transA: tr&1 != 0, transB: tr&2 != 0, m: s[0], n: s[1], k: s[2],
						alpha: 0.5, beta: []float32{0, 1, -0.75}[si%3], padA: 1, padB: 2, padC: 3}
					o := newOperands(rng, tc)
					if err := Sgemm(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.cView(tc.m), o.ldc); err != nil {
						t.Fatal(err)
					}
					checkResult(t, tc, o)
					want := append([]float32(nil), o.c...)

					for _, threads := range []int{2, 3, 8} {
						o.reset()
						if err := SgemmParallel(threads, tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, o.a, o.lda, o.b, o.ldb, tc.beta, o.cView(tc.m), o.ldc); err != nil {
							t.Fatal(err)
						}
						sameBits(t, fmt.Sprintf("%s %v SgemmParallel(%d)", kern, tc, threads), o.c, want)
					}
					pb, err := PackB(tc.transB, tc.k, tc.n, o.b, o.ldb)
					if err != nil {
						t.Fatal(err)
					}
					for _, threads := range []int{1, 2, 3} {
						o.reset()
						if err := SgemmPackedParallel(threads, tc.transA, tc.m, tc.alpha, o.a, o.lda, pb, tc.beta, o.cView(tc.m), o.ldc); err != nil {
							t.Fatal(err)
						}
						sameBits(t, fmt.Sprintf("%s %v SgemmPackedParallel(%d)", kern, tc, threads), o.c, want)
					}
				}
			}
		})
	}
}

func TestSgemmBatched(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const batch, m, n, k = 5, 33, 47, 70
	for _, shareB := range []bool{false, true} {
		for _, threads := range []int{1, 2, 8} {
			lda, ldb, ldc := k+1, k+2, n+3 // B transposed (n x k), as in Q x K^T
			strideA, strideB, strideC := m*lda+5, n*ldb+3, m*ldc+7
			if shareB {
				strideB = 0
			}
			a := randSlice(rng, (batch-1)*strideA+m*lda)
			b := randSlice(rng, (batch-1)*strideB+n*ldb)
			c := randSlice(rng, (batch-1)*strideC+m*ldc)
			want := append([]float32(nil), c...)
			for t0 := 0; t0 < batch; t0++ {
				if err := Sgemm(false, true, m, n, k, 0.125, a[t0*strideA:], lda, b[t0*strideB:], ldb, 1, want[t0*strideC:], ldc); err != nil {
					t.Fatal(err)
				}
			}
			if err := SgemmBatched(threads, batch, false, true, m, n, k, 0.125, a, strideA, lda, b, strideB, ldb, 1, c, strideC, ldc); err != nil {
				t.Fatal(err)
			}
			sameBits(t, fmt.Sprintf("SgemmBatched(threads=%d, shareB=%v)", threads, shareB), c, want)
		}
	}
}

func TestBadArgumentsReturnErrors(t *testing.T) {
	a := make([]float32, 12)
	b := make([]float32, 12)
	c := make([]float32, 12)
	for i := range c {
		c[i] = 42
	}
	cases := []struct {
		name string
		call func() error
	}{
		{"negative m", func() error { return Sgemm(false, false, -1, 3, 4, 1, a, 4, b, 3, 0, c, 3) }},
		{"lda too small", func() error { return Sgemm(false, false, 3, 3, 4, 1, a, 3, b, 3, 0, c, 3) }},
		{"A too short", func() error { return Sgemm(false, false, 4, 3, 4, 1, a, 4, b, 3, 0, c, 3) }},
		{"B too short (trans)", func() error { return Sgemm(false, true, 3, 4, 4, 1, a, 4, b, 4, 0, c, 4) }},
		{"C too short", func() error { return Sgemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c[:8], 3) }},
		{"ldc too small", func() error { return Sgemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 2) }},
		{"huge ld overflows", func() error { return Sgemm(false, false, 3, 3, 4, 1, a, math.MaxInt/2, b, 3, 0, c, 3) }},
		{"parallel bad ldb", func() error { return SgemmParallel(2, false, false, 3, 3, 4, 1, a, 4, b, 2, 0, c, 3) }},
		{"pack B too short", func() error { _, err := PackB(false, 5, 3, b, 3); return err }},
		{"nil packed B", func() error { return SgemmPacked(false, 3, 1, a, 4, nil, 0, c, 3) }},
		{"batched C overlap", func() error {
			return SgemmBatched(1, 2, false, false, 2, 3, 2, 1, a, 4, 2, b, 6, 3, 0, c, 3, 3)
		}},
		{"batched A too short", func() error {
			return SgemmBatched(1, 3, false, false, 2, 3, 2, 1, a, 5, 2, b, 0, 3, 0, c, 4, 3)
		}},
	}
	for _, tc := range cases {
		err := tc.call()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !errors.Is(err, ErrBadArgument) {
			t.Errorf("%s: error %v does not wrap ErrBadArgument", tc.name, err)
		}
	}
	for i, v := range c {
		if v != 42 {
			t.Fatalf("C[%d] written by a rejected call", i)
		}
	}
}

// TestInPlaceKernelMatchesPacked: the micro-kernel that reads A in place
// from six rows (leading dimension lda > k) gives exactly the bits of the
// packed-panel kernel, for each kernel implementation, at depths around
// the 4-step unrolling, with and without accumulation; it writes only the
// tile (NaN guards around and between the rows of C).
func TestInPlaceKernelMatchesPacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const ldc = nr + 3
	for _, kern := range kernels(t) {
		withKernel(kern, func() {
			for _, kcb := range []int{1, 2, 3, 4, 5, 7, 8, 63, 255, 384} {
				for _, accumulate := range []bool{false, true} {
					lda := kcb + 1 + rng.IntN(9)
					a := randSlice(rng, (mr-1)*lda+kcb)
					packed := make([]float32, kcb*mr)
					packA(packed, false, a, lda, 0, 0, mr, kcb)
					b := randSlice(rng, kcb*nr)
					c0 := make([]float32, 2*guardCells+(mr-1)*ldc+nr)
					for i := range c0 {
						c0[i] = float32(math.NaN())
					}
					for i := 0; i < mr; i++ {
						for j := 0; j < nr; j++ {
							c0[guardCells+i*ldc+j] = randNonZero(rng)
						}
					}
					cPacked := append([]float32(nil), c0...)
					cRows := append([]float32(nil), c0...)
					tile := func(c []float32) []float32 { return c[guardCells : guardCells+(mr-1)*ldc+nr] }
					microKernel(kcb, packed, b, tile(cPacked), ldc, 0.75, accumulate)
					microKernelRows(kcb, a, lda, b, tile(cRows), ldc, 0.75, accumulate)
					for idx := range c0 {
						i, j := (idx-guardCells)/ldc, (idx-guardCells)%ldc
						inTile := idx >= guardCells && i < mr && j < nr
						if !inTile {
							if !math.IsNaN(float64(cRows[idx])) {
								t.Fatalf("%s kcb=%d: guard cell %d of C overwritten", kern, kcb, idx)
							}
							continue
						}
						if math.Float32bits(cRows[idx]) != math.Float32bits(cPacked[idx]) {
							t.Fatalf("%s kcb=%d accumulate=%v: C[%d,%d] = %g in place, %g packed", kern, kcb, accumulate, i, j, cRows[idx], cPacked[idx])
						}
						// And both are right (guards against a shared error).
						var want, abs float64
						for l := 0; l < kcb; l++ {
							p := float64(a[i*lda+l]) * float64(b[l*nr+j])
							want += p
							abs += math.Abs(p)
						}
						want *= 0.75
						if accumulate {
							want += float64(c0[idx])
						}
						if tol := 2 * float64(kcb+4) * unitRoundoff * (abs + 1); math.Abs(float64(cRows[idx])-want) > tol {
							t.Fatalf("%s kcb=%d: C[%d,%d] = %g, want %g", kern, kcb, i, j, cRows[idx], want)
						}
					}
				}
			}
		})
	}
}

// TestDepthBlock: the depth blocks tile k exactly, none is deeper than
// kc, and they are as few as kc allows.
func TestDepthBlock(t *testing.T) {
	for k := 1; k <= 5*kc+7; k++ {
		step := depthBlock(k)
		blocks := (k + step - 1) / step
		if step > kc || step < 1 {
			t.Fatalf("k=%d: block depth %d outside [1, %d]", k, step, kc)
		}
		if want := (k + kc - 1) / kc; blocks != want {
			t.Fatalf("k=%d: %d blocks of %d, want %d blocks", k, blocks, step, want)
		}
		if last := k - (blocks-1)*step; last < 1 || last > step {
			t.Fatalf("k=%d: last block of %d with step %d", k, last, step)
		}
	}
}
