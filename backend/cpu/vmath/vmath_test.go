package vmath

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tolerances. Each is an a-priori bound for the formula the function
// evaluates, not a fit to this implementation's output:
//
//   - exp: 3e-7 relative, ScalarExp's documented bound (Cephes expf's
//     polynomial error ~1.2e-7 plus the roundings of r and of the
//     polynomial; the scaling by 2^n is exact), exactly 0 below expLo and
//     +Inf above expHi.
//   - erf: 4e-7 absolute, the bound of Eigen's rational form in float32
//     (its worst case is near |x| = 3.5).
//   - tanh: 4.5e-7 relative. The rational form has no published float32
//     bound; over every 7th float32 in [0.0004, 12] its worst relative
//     error (clamped at 9 and capped at 1, as here) is 2.9e-7 with
//     single-rounding multiply-adds (both paths here), and 3.95e-7 with
//     separately rounded products; 4.5e-7 covers either. Below 0.0004,
//     tanh(x) = x is within x^2/3 < 6e-8.
//   - GELU: 0.5|x| times the erf or tanh error plus the roundings of the
//     erf/tanh argument (relative error up to 2u for x/sqrt2 with the
//     rounded constant, 6u for x(k0 + k1 x^2); their effect on erf/tanh is
//     at most that times max(s f'(s)) < 0.5), one more u|h| for h*f, and
//     u|y| for the final sum; see geluTol. u = 2^-24.
//   - softmax: see softmaxTol.
const (
	u        = 1.0 / (1 << 24)
	expTol   = 3e-7
	erfTol   = 4e-7
	tanhTol  = 4.5e-7
	tinyAbs  = 2 * 0x1p-149 // one subnormal rounding, twice
	guardLen = 9
)

// guardBits is a NaN payload no function produces: guard cells around
// every output must still hold it afterwards.
const guardBits = 0x7fa5a5a5

// impls returns the implementations to test: always Go, and the assembly
// where this CPU and build run it.
func impls(t testing.TB) []string {
	if useAsm {
		return []string{"asm", "go"}
	}
	t.Log("assembly not available on this CPU/build: testing the Go functions only")
	return []string{"go"}
}

func withImpl(name string, f func()) {
	saved := useAsm
	useAsm = name == "asm"
	defer func() { useAsm = saved }()
	f()
}

// guarded returns a slice of n floats with guardLen guard cells on each
// side (reachable through the backing array) and a check that they are
// unchanged.
func guarded(n int) (s []float32, check func(t *testing.T, what string)) {
	buf := make([]float32, n+2*guardLen)
	for i := range buf {
		buf[i] = math.Float32frombits(guardBits)
	}
	s = buf[guardLen : guardLen+n : guardLen+n]
	return s, func(t *testing.T, what string) {
		t.Helper()
		for i, v := range buf {
			if (i < guardLen || i >= guardLen+n) && math.Float32bits(v) != guardBits {
				t.Fatalf("%s: guard cell %d (of %d+%d+%d) overwritten with %g", what, i, guardLen, n, guardLen, v)
			}
		}
	}
}

// specials are the edge arguments every unary function is tried on,
// mixed into random inputs at random positions.
var specials = []float32{
	0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e-45, -1e-45, 1e-38, -1e-38,
	0.0004, -0.0004, 0.00039, 1, -1, 3.5, -3.5, 4, -4, 5.66, -5.66, 7.9, -7.9, 10, -10,
	87, -87, -87.3365, -87.33654, -87.33655, -87.4, 88.7, 88.72283, 88.72284, 88.8, -88.8,
	1e4, -1e4, 1e20, -1e20, math.MaxFloat32, -math.MaxFloat32,
	float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
}

// testLengths covers every tail length many times over, and a few long
// slices.
func testLengths() []int {
	var ls []int
	for n := 0; n <= 70; n++ {
		ls = append(ls, n)
	}
	return append(ls, 255, 1000, 4099)
}

func refGelu(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func refGeluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

// geluTol is the bound described at the top for a GELU whose inner
// function has absolute error fErr and argument relative error argU
// units u.
func geluTol(x, want, fErr, argU float64) float64 {
	h := 0.5 * math.Abs(x)
	return h*(fErr+0.5*argU*u+u) + u*math.Abs(want) + tinyAbs
}

// unaryCase describes one slice function for the shared checks.
type unaryCase struct {
	name string
	fn   func(dst, src []float32)
	ref  func(x float64) float64
	// tol returns the allowed |got - want| for input x; exact reports
	// that got must equal want bit for bit (ranges with defined results).
	tol  func(x float32, want float64) (tol float64, exact bool)
	rand func(rng *rand.Rand) float32 // distribution of ordinary inputs
}

func uniform(lo, hi float64) func(rng *rand.Rand) float32 {
	return func(rng *rand.Rand) float32 { return float32(lo + (hi-lo)*rng.Float64()) }
}

var unaryCases = []unaryCase{
	{
		name: "Exp", fn: Exp, ref: math.Exp,
		tol: func(x float32, want float64) (float64, bool) {
			if x < expLo || x > expHi {
				return 0, true // 0 below, +Inf above: want is replaced in checkUnary
			}
			return expTol * want, false
		},
		rand: uniform(-90, 90),
	},
	{
		name: "Erf", fn: Erf, ref: math.Erf,
		tol: func(x float32, want float64) (float64, bool) {
			if x == 0 {
				return 0, true // erf(+-0) = +-0, sign included
			}
			return erfTol, false
		},
		rand: uniform(-6, 6),
	},
	{
		name: "Tanh", fn: Tanh, ref: math.Tanh,
		tol: func(x float32, want float64) (float64, bool) {
			return tanhTol * math.Abs(want), x == 0
		},
		rand: uniform(-10, 10),
	},
	{
		name: "Gelu", fn: Gelu, ref: refGelu,
		tol: func(x float32, want float64) (float64, bool) {
			return geluTol(float64(x), want, erfTol, 2), false
		},
		rand: uniform(-10, 10),
	},
	{
		name: "GeluTanh", fn: GeluTanh, ref: refGeluTanh,
		tol: func(x float32, want float64) (float64, bool) {
			return geluTol(float64(x), want, tanhTol, 6), false
		},
		rand: uniform(-10, 10),
	},
}

// wantOf is the reference result for x, with Exp's defined ranges.
func (c unaryCase) wantOf(x float32) float64 {
	if c.name == "Exp" && x < expLo {
		return 0
	}
	if c.name == "Exp" && x > expHi {
		return math.Inf(1)
	}
	return c.ref(float64(x))
}

// check reports whether got is acceptable for x.
func (c unaryCase) check(x, got float32) error {
	want := c.wantOf(x)
	g := float64(got)
	if math.IsNaN(want) {
		if !math.IsNaN(g) {
			return fmt.Errorf("%s(%g) = %g, want NaN", c.name, x, got)
		}
		return nil
	}
	tol, exact := c.tol(x, want)
	if exact || math.IsInf(want, 0) {
		if g != want || math.Signbit(g) != math.Signbit(want) {
			return fmt.Errorf("%s(%g) = %g, want exactly %g", c.name, x, got, want)
		}
		return nil
	}
	if d := math.Abs(g - want); !(d <= tol) {
		return fmt.Errorf("%s(%g) = %.9g, float64 reference %.9g: error %.3g > tolerance %.3g", c.name, x, got, want, d, tol)
	}
	return nil
}

func randInputs(rng *rand.Rand, n int, gen func(*rand.Rand) float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		if rng.IntN(8) == 0 {
			s[i] = specials[rng.IntN(len(specials))]
		} else {
			s[i] = gen(rng)
		}
	}
	return s
}

func TestUnaryAgainstFloat64(t *testing.T) {
	for _, c := range unaryCases {
		for _, impl := range impls(t) {
			t.Run(c.name+"/"+impl, func(t *testing.T) {
				withImpl(impl, func() {
					rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
					for _, n := range testLengths() {
						in := randInputs(rng, n, c.rand)
						src, checkSrc := guarded(n)
						copy(src, in)
						dst, checkDst := guarded(n)
						c.fn(dst, src)
						checkDst(t, fmt.Sprintf("n=%d dst", n))
						checkSrc(t, fmt.Sprintf("n=%d src", n))
						for i, x := range in {
							if math.Float32bits(src[i]) != math.Float32bits(x) {
								t.Fatalf("n=%d: src[%d] changed", n, i)
							}
							if err := c.check(x, dst[i]); err != nil {
								t.Fatalf("n=%d i=%d: %v", n, i, err)
							}
						}
						// In place: the same results, bit for bit.
						c.fn(src, src)
						for i := range src {
							if math.Float32bits(src[i]) != math.Float32bits(dst[i]) {
								t.Fatalf("n=%d i=%d: in place %g, out of place %g", n, i, src[i], dst[i])
							}
						}
					}
				})
			})
		}
	}
}

// TestUnarySpecials runs every special argument through every tail
// position: each lane of the 8-wide body and of the masked tail.
func TestUnarySpecials(t *testing.T) {
	for _, c := range unaryCases {
		for _, impl := range impls(t) {
			t.Run(c.name+"/"+impl, func(t *testing.T) {
				withImpl(impl, func() {
					for n := 1; n <= 17; n++ {
						for _, x := range specials {
							src := make([]float32, n)
							for i := range src {
								src[i] = x
							}
							dst, checkDst := guarded(n)
							c.fn(dst, src)
							checkDst(t, fmt.Sprintf("n=%d", n))
							for i := range dst {
								if err := c.check(x, dst[i]); err != nil {
									t.Fatalf("n=%d lane %d: %v", n, i, err)
								}
							}
						}
					}
				})
			})
		}
	}
}

// TestUnarySweep checks each function on a dense grid of its interesting
// range (every 997th float32 in it, about 2.2 million points per function), where random inputs may miss the
// worst case of the approximation.
func TestUnarySweep(t *testing.T) {
	ranges := map[string][2]float32{
		"Exp": {-90, 90}, "Erf": {-6, 6}, "Tanh": {-12, 12}, "Gelu": {-12, 12}, "GeluTanh": {-12, 12},
	}
	step := uint32(997)
	if testing.Short() {
		step = 9973
	}
	for _, c := range unaryCases {
		r := ranges[c.name]
		var xs []float32
		// Negative side (bits count down towards -0) and positive side.
		for b := math.Float32bits(0); b <= math.Float32bits(-r[0])&0x7fffffff; b += step {
			xs = append(xs, -math.Float32frombits(b), math.Float32frombits(b))
		}
		_ = r[1]
		for _, impl := range impls(t) {
			t.Run(c.name+"/"+impl, func(t *testing.T) {
				withImpl(impl, func() {
					dst := make([]float32, len(xs))
					c.fn(dst, xs)
					worst := 0.0
					for i, x := range xs {
						if err := c.check(x, dst[i]); err != nil {
							t.Fatal(err)
						}
						want := c.wantOf(x)
						if tol, _ := c.tol(x, want); tol > 0 && !math.IsInf(want, 0) {
							worst = max(worst, math.Abs(float64(dst[i])-want)/tol)
						}
					}
					t.Logf("%d points, worst error %.2f of the tolerance", len(xs), worst)
				})
			})
		}
	}
}

func TestErfOddAndSignedZero(t *testing.T) {
	for _, impl := range impls(t) {
		withImpl(impl, func() {
			rng := rand.New(rand.NewPCG(3, 4))
			src := randInputs(rng, 333, uniform(-6, 6))
			neg := make([]float32, len(src))
			for i, v := range src {
				neg[i] = -v
			}
			a, b := make([]float32, len(src)), make([]float32, len(src))
			Erf(a, src)
			Erf(b, neg)
			for i := range a {
				if a[i] == a[i] && math.Float32bits(a[i]) != math.Float32bits(-b[i]) {
					t.Fatalf("%s: erf(%g) = %g but erf(%g) = %g", impl, src[i], a[i], neg[i], b[i])
				}
			}
		})
	}
}

func TestBiasGelu(t *testing.T) {
	cases := []struct {
		name string
		fn   func(dst, x, bias []float32)
		gelu unaryCase
	}{
		{"BiasGelu", BiasGelu, unaryCases[3]},
		{"BiasGeluTanh", BiasGeluTanh, unaryCases[4]},
	}
	for _, c := range cases {
		for _, impl := range impls(t) {
			t.Run(c.name+"/"+impl, func(t *testing.T) {
				withImpl(impl, func() {
					rng := rand.New(rand.NewPCG(5, 6))
					for _, n := range testLengths() {
						x := randInputs(rng, n, uniform(-8, 8))
						bias := randInputs(rng, n, uniform(-2, 2))
						dst, checkDst := guarded(n)
						bg, checkBias := guarded(n)
						copy(bg, bias)
						c.fn(dst, x, bg)
						checkDst(t, fmt.Sprintf("n=%d dst", n))
						checkBias(t, fmt.Sprintf("n=%d bias", n))
						for i := range dst {
							v := x[i] + bias[i] // the documented float32 sum
							if err := c.gelu.check(v, dst[i]); err != nil {
								t.Fatalf("n=%d i=%d (x=%g bias=%g): %v", n, i, x[i], bias[i], err)
							}
						}
						// dst may be x.
						xc := append([]float32(nil), x...)
						c.fn(xc, xc, bias)
						for i := range xc {
							if math.Float32bits(xc[i]) != math.Float32bits(dst[i]) {
								t.Fatalf("n=%d i=%d: in place %g, out of place %g", n, i, xc[i], dst[i])
							}
						}
					}
				})
			})
		}
	}
}

// refSoftmax is softmax(scale*row) in float64, NaN for every entry when
// the row holds NaN or +Inf (as the formula gives), zeros when all
// entries are -Inf (the documented convention).
func refSoftmax(row []float32, scale float32) []float64 {
	out := make([]float64, len(row))
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(scale)*float64(v))
	}
	if math.IsInf(mx, -1) {
		return out
	}
	sum := 0.0
	for i, v := range row {
		out[i] = math.Exp(float64(scale)*float64(v) - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// softmaxTol is the allowed error of each output (want = refSoftmax):
// relative error
//
//	expTol + argErr_i                  exp of the rounded argument a_i
//	+ sum_j want_j (expTol + argErr_j) the same errors inside the sum
//	+ (n + 2) u                        float32 summation (n terms, any order)
//	+ 2 u                              1/sum and the final product
//
// with argErr_i = u |a_i| for the rounding of a_i = scale x_i - max (one
// rounding when scale = 1, where scale x_i is exact), plus u (|scale x_i|
// + |max|) otherwise (the rounding of scale x_i in Go, or the assembly's
// trim of a_i > 0, at most half an ulp of max). Absolute slack 2e-38:
// exp flushes results below the normal range to 0.
func softmaxTol(row []float32, scale float32, want []float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(scale)*float64(v))
	}
	argErr := make([]float64, len(row))
	inSum := 0.0
	for i, v := range row {
		sx := float64(scale) * float64(v)
		a := math.Abs(sx - mx)
		e := u * a
		if scale != 1 {
			e += u * (math.Abs(sx) + math.Abs(mx))
		}
		if math.IsInf(a, 0) {
			e = 0 // exp(-Inf) = 0 exactly
		}
		argErr[i] = e
		inSum += want[i] * (expTol + e)
	}
	tol := make([]float64, len(row))
	n := float64(len(row))
	for i := range row {
		tol[i] = want[i]*(expTol+argErr[i]+inSum+(n+4)*u) + 2e-38
	}
	return tol
}

func checkSoftmax(t *testing.T, what string, in []float32, scale float32, got []float32) {
	t.Helper()
	want := refSoftmax(in, scale)
	hasNaN := false
	for _, w := range want {
		hasNaN = hasNaN || math.IsNaN(w)
	}
	if hasNaN {
		for i, g := range got {
			if g == g {
				t.Fatalf("%s: [%d] = %g, want NaN (input has NaN or +Inf)", what, i, g)
			}
		}
		return
	}
	tol := softmaxTol(in, scale, want)
	for i, g := range got {
		if d := math.Abs(float64(g) - want[i]); !(d <= tol[i]) {
			t.Fatalf("%s: [%d] (x=%g) = %.9g, float64 reference %.9g: error %.3g > tolerance %.3g", what, i, in[i], g, want[i], d, tol[i])
		}
	}
}

func TestSoftmax(t *testing.T) {
	negInf := float32(math.Inf(-1))
	for _, impl := range impls(t) {
		t.Run(impl, func(t *testing.T) {
			withImpl(impl, func() {
				rng := rand.New(rand.NewPCG(7, 8))
				for _, scale := range []float32{1, 0.125, -0.5} {
					for _, spread := range []float64{1, 10, 200} {
						for _, n := range testLengths() {
							in := make([]float32, n)
							for i := range in {
								in[i] = float32(spread * (2*rng.Float64() - 1))
								if rng.IntN(6) == 0 {
									in[i] = negInf // masked positions
								}
							}
							row, checkRow := guarded(n)
							copy(row, in)
							if scale == 1 {
								Softmax(row)
							} else {
								ScaledSoftmax(row, scale)
							}
							what := fmt.Sprintf("scale=%g spread=%g n=%d", scale, spread, n)
							checkRow(t, what)
							checkSoftmax(t, what, in, scale, row)
						}
					}
				}
			})
		})
	}
}

func TestSoftmaxSpecialRows(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, impl := range impls(t) {
		withImpl(impl, func() {
			for _, n := range []int{1, 3, 8, 9, 17} {
				fill := func(v float32) []float32 {
					s := make([]float32, n)
					for i := range s {
						s[i] = v
					}
					return s
				}
				// All -Inf: zeros.
				row := fill(-inf)
				Softmax(row)
				for i, v := range row {
					if v != 0 {
						t.Fatalf("%s n=%d: all -Inf row gave [%d] = %g, want 0", impl, n, i, v)
					}
				}
				// Constant: 1/n each, to the softmax tolerance.
				in := fill(3.5)
				row = append([]float32(nil), in...)
				Softmax(row)
				checkSoftmax(t, impl+" constant", in, 1, row)
				// NaN at each position (alone among -Inf, or among finite
				// values), and +Inf: all NaN.
				for p := 0; p < n; p++ {
					for _, base := range []float32{-inf, 1} {
						for _, odd := range []float32{nan, inf} {
							in := fill(base)
							in[p] = odd
							row := append([]float32(nil), in...)
							Softmax(row)
							for i, v := range row {
								if v == v {
									t.Fatalf("%s n=%d: %g at %d among %g gave [%d] = %g, want NaN", impl, n, odd, p, base, i, v)
								}
							}
						}
					}
				}
			}
		})
	}
}

func TestLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Exp with len(dst) != len(src) did not panic")
		}
	}()
	Exp(make([]float32, 3), make([]float32, 4))
}

// TestSaturation: beyond the clamps, tanh is exactly +-1 and the GELUs
// exactly x or 0, the float32 rounding of the true values (tanh(9) is
// within 3e-8 of 1, erf(4) within 2e-8), rather than a few ulps off,
// which GELU would scale by |x|.
func TestSaturation(t *testing.T) {
	for _, impl := range impls(t) {
		withImpl(impl, func() {
			big := []float32{9, 9.5, 12, 100, 1e6, 1e30, float32(math.Inf(1))}
			for _, x := range big {
				in := []float32{x, -x}
				th, g, gt := make([]float32, 2), make([]float32, 2), make([]float32, 2)
				Tanh(th, in)
				if th[0] != 1 || th[1] != -1 {
					t.Errorf("%s: Tanh(+-%g) = %g, %g, want exactly +-1", impl, x, th[0], th[1])
				}
				if math.IsInf(float64(x), 0) {
					continue // GELU(-Inf) is NaN, checked elsewhere
				}
				Gelu(g, in)
				GeluTanh(gt, in)
				for _, r := range [][]float32{g, gt} {
					if r[0] != x || r[1] != 0 {
						t.Errorf("%s: GELU(+-%g) = %g, %g, want exactly %g and 0", impl, x, r[0], r[1], x)
					}
				}
			}
		})
	}
}
