package vmath

import "math"

// Constants shared by the Go functions below and, through the table in
// vmath_amd64.go, by the assembly.
const (
	// exp (Cephes expf).
	expLog2e = 1.44269504088896341
	expLn2Hi = 0.693359375 // few mantissa bits: n*ln2Hi is exact
	expLn2Lo = -2.12194440e-4
	expA0    = 5.0000001201e-1
	expA1    = 1.6666665459e-1
	expB0    = 4.1665795894e-2
	expB1    = 8.3334519073e-3
	expC0    = 1.3981999507e-3
	expC1    = 1.9875691500e-4
	// expLo and expHi bound the arguments whose result is a normal float.
	expLo = -87.33654
	expHi = 88.72283

	// erf (Eigen's generic_fast_erf_float): erf(x) = x P(x^2) / Q(x^2) on
	// [-4, 4], where erf is +-1 to float32 precision.
	erfClamp = 4
	erfP0    = -2.72614225801306e-10
	erfP1    = 2.77068142495902e-08
	erfP2    = -2.10102402082508e-06
	erfP3    = -5.69250639462346e-05
	erfP4    = -7.34990630326855e-04
	erfP5    = -2.95459980854025e-03
	erfP6    = -1.60960333262415e-02
	erfQ0    = -1.45660718464996e-05
	erfQ1    = -2.13374055278905e-04
	erfQ2    = -1.68282697438203e-03
	erfQ3    = -7.37332916720468e-03
	erfQ4    = -1.42647390514189e-02

	// tanh (Eigen's generic_fast_tanh_float coefficients): tanh(x) =
	// x P(x^2) / Q(x^2) on [-tanhClamp, tanhClamp], capped to [-1, 1];
	// tanh(x) = x below tanhTiny (relative error x^2/3 < 6e-8 there).
	// Eigen clamps at 7.9053, where P/Q is 4 ulps below 1 (tanh(7.9) is
	// 1 - 2.7e-7): GELU's 1 + tanh would then leave about 1.3e-7 |x| for
	// large negative x instead of 0. At 9, P/Q (multiply-adds rounded
	// once) is exactly 1 and tanh is within 3e-8 of 1; P/Q exceeds 1 by an
	// ulp or two on parts of [8.9, 9], hence the cap.
	tanhClamp = 9
	tanhTiny  = 0.0004
	tanhA13   = -2.76076847742355e-16
	tanhA11   = 2.00018790482477e-13
	tanhA9    = -8.60467152213735e-11
	tanhA7    = 5.12229709037114e-08
	tanhA5    = 1.48572235717979e-05
	tanhA3    = 6.37261928875436e-04
	tanhA1    = 4.89352455891786e-03
	tanhB6    = 1.19825839466702e-06
	tanhB4    = 1.18534705686654e-04
	tanhB2    = 2.26843463243900e-03
	tanhB0    = 4.89352518554385e-03

	// GELU.
	invSqrt2   = 0.7071067811865476 // 1/sqrt(2), erf form
	geluTanhK0 = 0.7978845608028654 // sqrt(2/pi), tanh form
	geluTanhK1 = 0.7978845608028654 * 0.044715
)

// ScalarExp is exp(x) in float32 (Cephes expf: x = n ln2 + r with |r| <=
// ln2/2, a degree-6 polynomial for e^r evaluated in Estrin's form to
// shorten the dependency chain, then scaling by 2^n), within 3e-7
// relative error of math.Exp for x in [-87.33654, 88.72283] (so n >= -126
// and 2^n is a normal float); below that range it returns 0 (no
// subnormals), above it +Inf, and NaN stays NaN. Exp is its slice form;
// this one is for code that needs one value at a time.
func ScalarExp(x float32) float32 {
	const round = 12582912 // 1.5 * 2^23: adding and subtracting it rounds to an integer
	if x < expLo {
		return 0
	}
	if x > expHi {
		return float32(math.Inf(1))
	}
	fn := (x*expLog2e + round) - round
	r := (x - fn*expLn2Hi) - fn*expLn2Lo
	z := r * r
	a := expA0 + expA1*r
	b := expB0 + expB1*r
	c := expC0 + expC1*r
	e := ((a+z*b+(z*z)*c)*z + r) + 1
	n := int32(fn)
	if n > 127 { // x near the top of the range: 2^n overflows alone
		return e * math.Float32frombits(uint32(127+127)<<23) * 2
	}
	return e * math.Float32frombits(uint32(n+127)<<23)
}

// ScalarErf is erf(x) in float32 (Eigen's rational approximation, x
// clamped to [-4, 4], each multiply-add rounded once as in the assembly); absolute error below 4e-7 (worst near |x| = 3.5)
// against math.Erf, odd (erf(-x) = -erf(x) exactly, erf(-0) = -0), NaN
// stays NaN. Erf is its slice form.
func ScalarErf(x float32) float32 {
	// Plain comparisons, not min/max (which order NaN and -0 and are
	// branchy); NaN passes through both and gives NaN.
	if x > erfClamp {
		x = erfClamp
	} else if x < -erfClamp {
		x = -erfClamp
	}
	x2 := x * x
	p := fma32(x2, erfP0, erfP1)
	p = fma32(x2, p, erfP2)
	p = fma32(x2, p, erfP3)
	p = fma32(x2, p, erfP4)
	p = fma32(x2, p, erfP5)
	p = fma32(x2, p, erfP6)
	p *= x
	q := fma32(x2, erfQ0, erfQ1)
	q = fma32(x2, q, erfQ2)
	q = fma32(x2, q, erfQ3)
	q = fma32(x2, q, erfQ4)
	return p / q
}

// fma32 is a*b + c rounded once to float32, as the assembly's FMA: the
// float64 product of two float32 values is exact, and rounding the
// float64 sum again to float32 differs from a fused result only in rare
// double-rounding ties. The erf and tanh polynomials need it: with
// separately rounded products the worst erf error grows from 3.5e-7 to
// 4.3e-7, past the 4e-7 bound.
func fma32(a, b, c float32) float32 {
	return float32(float64(a)*float64(b) + float64(c))
}

// tanhRational is the rational part of scalarTanh, without the tiny-x
// shortcut (GELU's 1 + tanh does not need it).
func tanhRational(x float32) float32 {
	if x > tanhClamp {
		x = tanhClamp
	} else if x < -tanhClamp {
		x = -tanhClamp
	}
	x2 := x * x
	p := fma32(x2, tanhA13, tanhA11)
	p = fma32(x2, p, tanhA9)
	p = fma32(x2, p, tanhA7)
	p = fma32(x2, p, tanhA5)
	p = fma32(x2, p, tanhA3)
	p = fma32(x2, p, tanhA1)
	p *= x
	q := fma32(x2, tanhB6, tanhB4)
	q = fma32(x2, q, tanhB2)
	q = fma32(x2, q, tanhB0)
	t := p / q
	if t > 1 { // NaN passes through both comparisons
		t = 1
	} else if t < -1 {
		t = -1
	}
	return t
}

// scalarTanh is tanh(x) in float32 (see Tanh for its accuracy).
func scalarTanh(x float32) float32 {
	if x < tanhTiny && x > -tanhTiny {
		return x
	}
	return tanhRational(x)
}

// scalarGelu is 0.5 x (1 + erf(x/sqrt2)), computed as h*erf + h with
// h = x/2 and one rounding, as the assembly.
func scalarGelu(x float32) float32 {
	h := 0.5 * x
	return fma32(h, ScalarErf(x*invSqrt2), h)
}

// scalarGeluTanh is 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the
// tanh argument computed as x (k0 + k1 x^2); roundings as the assembly.
func scalarGeluTanh(x float32) float32 {
	h := 0.5 * x
	return fma32(h, tanhRational(x*fma32(x*x, geluTanhK1, geluTanhK0)), h)
}

// The Go versions of the slice functions: plain loops over the scalar
// functions above, the oracle the assembly is tested against.

func expGo(dst, src []float32) {
	for i, v := range src {
		dst[i] = ScalarExp(v)
	}
}

func erfGo(dst, src []float32) {
	for i, v := range src {
		dst[i] = ScalarErf(v)
	}
}

func tanhGo(dst, src []float32) {
	for i, v := range src {
		dst[i] = scalarTanh(v)
	}
}

func geluGo(dst, src []float32) {
	for i, v := range src {
		dst[i] = scalarGelu(v)
	}
}

func geluTanhGo(dst, src []float32) {
	for i, v := range src {
		dst[i] = scalarGeluTanh(v)
	}
}

func biasGeluGo(dst, x, bias []float32) {
	for i, v := range x {
		dst[i] = scalarGelu(v + bias[i])
	}
}

func biasGeluTanhGo(dst, x, bias []float32) {
	for i, v := range x {
		dst[i] = scalarGeluTanh(v + bias[i])
	}
}

// maxScaledGo is the largest scale*v over row, NaN entries skipped; -Inf
// when there is none.
func maxScaledGo(row []float32, scale float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range row {
		if p := v * scale; p > m {
			m = p
		}
	}
	return m
}

// expSumGo replaces each v of row by exp(scale*v - m) and returns their
// sum (in row order).
func expSumGo(row []float32, scale, m float32) float32 {
	var sum float32
	for i, v := range row {
		e := ScalarExp(v*scale - m)
		row[i] = e
		sum += e
	}
	return sum
}

func scaleGo(row []float32, s float32) {
	for i := range row {
		row[i] *= s
	}
}
