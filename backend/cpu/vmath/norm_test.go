package vmath

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refNormRow is the float64 formula SkipLayerNormRow documents: s = x +
// skip + bias rounded to float32 after each addition (the sum output is
// float32, so this rounding is part of the contract), then the two-pass
// mean and variance of s and y in float64.
func refNormRow(x, skip, bias, gamma, beta []float32, eps float32, rms bool) (y []float64, s []float32, mean, inv float64) {
	n := len(x)
	s = make([]float32, n)
	for i := range x {
		v := x[i]
		if skip != nil {
			v += skip[i]
		}
		if bias != nil {
			v += bias[i]
		}
		s[i] = v
	}
	if !rms {
		for _, v := range s {
			mean += float64(v)
		}
		mean /= float64(n)
	}
	variance := 0.0
	for _, v := range s {
		variance += (float64(v) - mean) * (float64(v) - mean)
	}
	variance /= float64(n)
	inv = 1 / math.Sqrt(variance+float64(eps))
	y = make([]float64, n)
	for i, v := range s {
		y[i] = (float64(v) - mean) * inv * float64(gamma[i])
		if beta != nil {
			y[i] += float64(beta[i])
		}
	}
	return y, s, mean, inv
}

// normTol is the a-priori bound of SkipLayerNormRow's doc comment with
// the statistics' relative error taken as k = (n/32 + 8) u, the chain
// length of one float32 lane plus the reduction, the mean's division and
// slack: per output k (|z| + 1) |gamma| (the variance's error scales z,
// the mean's shifts it by at most k standard deviations) plus the
// roundings of the two multiply-adds, 2u |y| and u |beta|. z is the
// normalised value (s - mean) inv.
func normTol(n int, z, gamma, beta, want float64) float64 {
	k := (float64(n)/32 + 8) * u
	return k*(math.Abs(z)+1)*math.Abs(gamma) + 2*u*math.Abs(want) + u*math.Abs(beta) + 1e-37
}

// normCase is one configuration of the optional inputs.
type normCase struct {
	skip, bias, sum, beta, rms, inPlace bool
}

func (c normCase) String() string {
	return fmt.Sprintf("skip=%v bias=%v sum=%v beta=%v rms=%v inPlace=%v", c.skip, c.bias, c.sum, c.beta, c.rms, c.inPlace)
}

func normCases() []normCase {
	var cs []normCase
	for m := range 64 {
		c := normCase{skip: m&1 != 0, bias: m&2 != 0, sum: m&4 != 0, beta: m&8 != 0, rms: m&16 != 0, inPlace: m&32 != 0}
		cs = append(cs, c)
	}
	return cs
}

func randRow(rng *rand.Rand, n int, offset, scale float64) []float32 {
	r := make([]float32, n)
	for i := range r {
		r[i] = float32(offset + scale*rng.NormFloat64())
	}
	return r
}

// runNormRow runs SkipLayerNormRow for case c with guard cells around
// the outputs; x is copied so that in-place runs do not change it. It
// returns y, the sum output (nil unless c.sum) and the statistics.
func runNormRow(t *testing.T, c normCase, x, skip, bias, gamma, beta []float32, eps float32) (y, sum []float32, mean, inv float32) {
	t.Helper()
	n := len(x)
	xc := append([]float32(nil), x...)
	y, checkY := guarded(n)
	var checkSum func(*testing.T, string)
	if c.sum {
		sum, checkSum = guarded(n)
	}
	if c.inPlace {
		copy(y, xc)
		xc = y
	}
	mean, inv = SkipLayerNormRow(y, sum, xc, skip, bias, gamma, beta, eps, c.rms)
	checkY(t, "y")
	if checkSum != nil {
		checkSum(t, "sum")
	}
	return y, sum, mean, inv
}

// TestSkipLayerNormRow compares both implementations with the float64
// formula at every tail length, transformer widths, and rows with a
// large offset and small spread (where a one-pass float32 variance
// would cancel catastrophically).
func TestSkipLayerNormRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	var lengths []int
	for n := 1; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 384, 768, 1000)
	dists := []struct{ offset, scale float64 }{{0, 1}, {1e3, 1}, {-1e3, 0.01}, {1e4, 0.1}, {3, 1e-3}}
	for _, impl := range impls(t) {
		withImpl(impl, func() {
			worst := 0.0
			for _, n := range lengths {
				for di, d := range dists {
					for _, c := range normCases() {
						x := randRow(rng, n, d.offset, d.scale)
						var skip, bias, beta []float32
						if c.skip {
							skip = randRow(rng, n, 0, d.scale)
						}
						if c.bias {
							bias = randRow(rng, n, 0, d.scale)
						}
						gamma := randRow(rng, n, 1, 0.5)
						if c.beta {
							beta = randRow(rng, n, 0, 1)
						}
						eps := float32(1e-5)
						if d.scale < 0.1 {
							eps = 1e-12 // keep the spread, not eps, in charge
						}
						want, wantS, wantMean, wantInv := refNormRow(x, skip, bias, gamma, beta, eps, c.rms)
						y, sum, mean, inv := runNormRow(t, c, x, skip, bias, gamma, beta, eps)
						where := fmt.Sprintf("%s n=%d dist %d %s", impl, n, di, c)
						for i := range want {
							z := (want[i] - 0) / float64(gamma[i])
							var b float64
							if beta != nil {
								b = float64(beta[i])
								z = (want[i] - b) / float64(gamma[i])
							}
							tol := normTol(n, z, float64(gamma[i]), b, want[i])
							e := math.Abs(float64(y[i]) - want[i])
							if !(e <= tol) {
								t.Fatalf("%s: y[%d] = %g, float64 %g (error %.3g, bound %.3g)", where, i, y[i], want[i], e, tol)
							}
							worst = max(worst, e/tol)
							if c.sum && sum[i] != wantS[i] {
								t.Fatalf("%s: sum[%d] = %g, want %g", where, i, sum[i], wantS[i])
							}
						}
						// mean within k standard deviations plus its rounding;
						// invStd within k relative plus its rounding.
						k := (float64(n)/32 + 8) * u
						if e := math.Abs(float64(mean) - wantMean); !(e <= k/wantInv+u*math.Abs(wantMean)) {
							t.Fatalf("%s: mean %g, float64 %g", where, mean, wantMean)
						}
						if e := math.Abs(float64(inv) - wantInv); !(e <= (k+u)*wantInv) {
							t.Fatalf("%s: invStd %g, float64 %g", where, inv, wantInv)
						}
					}
				}
			}
			t.Logf("%s: worst error %.3g of the bound", impl, worst)
		})
	}
}

// TestSkipLayerNormRowSpecials: NaN and Inf in s make the whole row NaN
// (as the float64 formula gives), NaN in gamma only its column; rows so
// large that float32 statistics overflow still match float64; empty and
// constant rows.
func TestSkipLayerNormRowSpecials(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, impl := range impls(t) {
		withImpl(impl, func() {
			for _, n := range []int{1, 7, 8, 9, 33, 384, 1000} {
				for _, rms := range []bool{false, true} {
					c := normCase{skip: true, rms: rms}
					where := fmt.Sprintf("%s n=%d rms=%v", impl, n, rms)
					gamma := randRow(rng, n, 1, 0.5)
					for _, special := range []float32{nan, inf, -inf} {
						x, skip := randRow(rng, n, 0, 1), randRow(rng, n, 0, 1)
						skip[rng.IntN(n)] = special
						// LayerNorm: mean is NaN or Inf, so every output is
						// NaN. RMSNorm: var = Inf, invStd = 0, so the special
						// column is NaN (Inf*0) and the others 0; NaN: all NaN.
						want, _, _, wantInv := refNormRow(x, skip, nil, gamma, nil, 1e-5, rms)
						y, _, _, invStd := runNormRow(t, c, x, skip, nil, gamma, nil, 1e-5)
						for i, v := range y {
							w := float32(want[i])
							if (v != v) != (w != w) || (w == w && v != w) {
								t.Fatalf("%s: %g in skip: y[%d] = %g, float64 %g", where, special, i, v, w)
							}
						}
						if w := float32(wantInv); (invStd != invStd) != (w != w) || (w == w && invStd != w) {
							t.Fatalf("%s: %g in skip: invStd %g, float64 %g", where, special, invStd, w)
						}
					}
					// NaN in gamma: only that column.
					x, skip := randRow(rng, n, 0, 1), randRow(rng, n, 0, 1)
					g := append([]float32(nil), gamma...)
					j := rng.IntN(n)
					g[j] = nan
					y, _, _, _ := runNormRow(t, c, x, skip, nil, g, nil, 1e-5)
					for i, v := range y {
						if (v != v) != (i == j) {
							t.Fatalf("%s: NaN in gamma[%d]: y[%d] = %g", where, j, i, v)
						}
					}
					// Huge finite rows: the float32 sums (or squares)
					// overflow; the result must still be the float64 one.
					for _, scale := range []float64{1e20, 1e36} {
						x := randRow(rng, n, 0, scale)
						want, _, _, _ := refNormRow(x, nil, nil, gamma, nil, 1e-5, rms)
						y, _, _, _ := runNormRow(t, normCase{rms: rms}, x, nil, nil, gamma, nil, 1e-5)
						for i := range want {
							if e := math.Abs(float64(y[i]) - want[i]); !(e <= 1e-6*(math.Abs(want[i])+math.Abs(float64(gamma[i])))) {
								t.Fatalf("%s scale %g: y[%d] = %g, float64 %g", where, scale, i, y[i], want[i])
							}
						}
					}
					// A constant row: variance 0, y = beta (LayerNorm) exactly
					// up to rounding; never NaN.
					x = make([]float32, n)
					for i := range x {
						x[i] = 1e3 + 0.25
					}
					beta := randRow(rng, n, 0, 1)
					want, _, _, _ := refNormRow(x, nil, nil, gamma, beta, 1e-5, rms)
					y, _, _, _ = runNormRow(t, normCase{rms: rms, beta: true}, x, nil, nil, gamma, beta, 1e-5)
					for i := range want {
						if e := math.Abs(float64(y[i]) - want[i]); !(e <= 1e-6*(math.Abs(want[i])+1)) {
							t.Fatalf("%s constant row: y[%d] = %g, float64 %g", where, i, y[i], want[i])
						}
					}
				}
			}
			// Empty rows: 0/0 statistics, nothing written.
			if m, s := LayerNormRow(nil, nil, nil, nil, 1e-5, false); m == m || s == s {
				t.Fatalf("%s: empty row: mean %g invStd %g, want NaN", impl, m, s)
			}
		})
	}
}

// TestNormAsmMatchesGo: the assembly against the Go twins, much tighter
// than against float64 (the twins sum in float64, the assembly in
// float32 lanes, so the statistics differ by the float32 error bound;
// outputs by a few ulps).
func TestNormAsmMatchesGo(t *testing.T) {
	if !useAsm {
		t.Skip("assembly not available on this CPU/build")
	}
	rng := rand.New(rand.NewPCG(75, 76))
	worst := 0.0
	for _, n := range []int{5, 64, 384, 768, 1000} {
		for range 20 {
			x, skip, bias := randRow(rng, n, 2, 1), randRow(rng, n, 0, 1), randRow(rng, n, 0, 1)
			gamma, beta := randRow(rng, n, 1, 0.5), randRow(rng, n, 0, 1)
			a, g := make([]float32, n), make([]float32, n)
			withImpl("asm", func() { SkipLayerNormRow(a, nil, x, skip, bias, gamma, beta, 1e-5, false) })
			withImpl("go", func() { SkipLayerNormRow(g, nil, x, skip, bias, gamma, beta, 1e-5, false) })
			for i := range a {
				// In units of the rounding of the terms: y = z gamma + beta
				// may cancel, so ulps of y alone would be meaningless.
				scale := u * (math.Abs(float64(g[i])) + math.Abs(float64(beta[i])) + math.Abs(float64(gamma[i])))
				d := math.Abs(float64(a[i])-float64(g[i])) / scale
				if !(d <= 16) {
					t.Fatalf("n=%d: y[%d] asm %g, Go %g (%.3g units)", n, i, a[i], g[i], d)
				}
				worst = max(worst, d)
			}
		}
	}
	t.Logf("worst %.3g units of u(|y| + |beta| + |gamma|)", worst)
}
