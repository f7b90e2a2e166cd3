package cpu

import "math"

// Scalar float32 math used by the fast kernels (softmax, GELU). Each
// function states its reference and its error bound; the tests compare
// them with the float64 functions of package math.

// softmaxRowF32 replaces row by softmax(row) in float32; a row whose
// entries are all -inf becomes zeros (attentionReference's convention).
func softmaxRowF32(row []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range row {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), -1) {
		clear(row)
		return
	}
	var sum float32
	for j, v := range row {
		e := expF32(v - mx)
		row[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := range row {
		row[j] *= inv
	}
}

// expF32 is exp(x) in float32 (Cephes expf: x = n ln2 + r with |r| <=
// ln2/2, a degree-6 polynomial for e^r evaluated in Estrin's form to
// shorten the dependency chain, then scaling by 2^n), within 3e-7
// relative error of math.Exp for x in [-87.3, 88.7] (so n >= -126 and
// 2^n is a normal float); below it returns 0 (no subnormals), above it
// +Inf, NaN stays NaN. Its reference is math.Exp.
func expF32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693359375
		ln2Lo = -2.12194440e-4
		round = 12582912 // 1.5 * 2^23: adding and subtracting it rounds to an integer
	)
	if x < -87.33654 {
		return 0
	}
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	fn := (x*log2e + round) - round
	r := (x - fn*ln2Hi) - fn*ln2Lo
	z := r * r
	a := 5.0000001201e-1 + 1.6666665459e-1*r
	b := 4.1665795894e-2 + 8.3334519073e-3*r
	c := 1.3981999507e-3 + 1.9875691500e-4*r
	e := ((a+z*b+(z*z)*c)*z + r) + 1
	n := int32(fn)
	if n > 127 { // x near the top of the range: 2^n overflows alone
		return e * math.Float32frombits(uint32(127+127)<<23) * 2
	}
	return e * math.Float32frombits(uint32(n+127)<<23)
}

// geluTanhF32 is 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with
// tanh(u) = 1 - 2/(exp(2u)+1) through expF32.
func geluTanhF32(x float32) float32 {
	const c = 0.7978845608028654 // sqrt(2/pi)
	u := c * (x + 0.044715*x*x*x)
	var t float32
	switch {
	case u > 20:
		t = 1
	case u < -20:
		t = -1
	default:
		t = 1 - 2/(expF32(2*u)+1)
	}
	return 0.5 * x * (1 + t)
}

// erfF32 is erf(x) in float32: Eigen's rational approximation
// (generic_fast_erf_float), x clamped to [-4, 4] where erf is 1 to float32
// precision; absolute error below 4e-7 (worst near |x| = 3.5). Its reference is math.Erf.
func erfF32(x float32) float32 {
	// Plain comparisons, not min/max (which order NaN and -0 and are
	// branchy); NaN passes through both and gives NaN.
	if x > 4 {
		x = 4
	} else if x < -4 {
		x = -4
	}
	x2 := x * x
	p := x2*-2.72614225801306e-10 + 2.77068142495902e-08
	p = x2*p + -2.10102402082508e-06
	p = x2*p + -5.69250639462346e-05
	p = x2*p + -7.34990630326855e-04
	p = x2*p + -2.95459980854025e-03
	p = x2*p + -1.60960333262415e-02
	p *= x
	q := x2*-1.45660718464996e-05 + -2.13374055278905e-04
	q = x2*q + -1.68282697438203e-03
	q = x2*q + -7.37332916720468e-03
	q = x2*q + -1.42647390514189e-02
	return p / q
}
