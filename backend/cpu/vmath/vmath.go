package vmath

import "math"

// checkLen panics when dst and src differ in length: a caller bug, not
// bad model input.
func checkLen(fn string, dst, src []float32) {
	if len(dst) != len(src) {
		panic("vmath." + fn + ": len(dst) != len(src)")
	}
}

// Exp sets dst[i] = exp(src[i]) with ScalarExp's semantics: within 3e-7
// relative error of math.Exp on [-87.33654, 88.72283], 0 below, +Inf
// above, NaN for NaN.
func Exp(dst, src []float32) {
	checkLen("Exp", dst, src)
	if len(src) == 0 {
		return
	}
	if useAsm {
		expAVX2(&dst[0], &src[0], len(src))
		return
	}
	expGo(dst, src)
}

// Erf sets dst[i] = erf(src[i]) with ScalarErf's semantics: absolute
// error below 4e-7 against math.Erf, odd, NaN for NaN, +-1 (within
// 4e-7) for +-Inf.
func Erf(dst, src []float32) {
	checkLen("Erf", dst, src)
	if len(src) == 0 {
		return
	}
	if useAsm {
		erfAVX2(&dst[0], &src[0], len(src))
		return
	}
	erfGo(dst, src)
}

// Tanh sets dst[i] = tanh(src[i]) (a rational approximation with Eigen's
// coefficients on x clamped to +-9, capped to +-1, so exactly +-1 from
// |x| = 9 on; x itself for |x| < 0.0004): relative error below 4.5e-7
// against math.Tanh (the measured worst case is 2.9e-7), odd, NaN for
// NaN.
func Tanh(dst, src []float32) {
	checkLen("Tanh", dst, src)
	if len(src) == 0 {
		return
	}
	if useAsm {
		tanhAVX2(&dst[0], &src[0], len(src))
		return
	}
	tanhGo(dst, src)
}

// Gelu sets dst[i] = 0.5 x (1 + erf(x/sqrt2)) for x = src[i], with erf
// as in Erf: the error is at most 0.5|x| times Erf's plus float32
// rounding. Erf saturates to exactly +-1 (float32) from |x/sqrt2| = 4 on,
// so Gelu(x) is exactly x above 5.66 and 0 below -5.66. Gelu(-Inf) is
// NaN, as the float64 formula gives.
func Gelu(dst, src []float32) {
	checkLen("Gelu", dst, src)
	if len(src) == 0 {
		return
	}
	if useAsm {
		geluAVX2(&dst[0], &src[0], len(src))
		return
	}
	geluGo(dst, src)
}

// GeluTanh sets dst[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// for x = src[i], with tanh as in Tanh: the error is at most 0.5|x| times
// Tanh's absolute error plus float32 rounding; exactly x above about 4.6
// and 0 below about -4.6, where the tanh argument passes +-9.
// GeluTanh(-Inf) is NaN, as the float64 formula gives.
func GeluTanh(dst, src []float32) {
	checkLen("GeluTanh", dst, src)
	if len(src) == 0 {
		return
	}
	if useAsm {
		geluTanhAVX2(&dst[0], &src[0], len(src))
		return
	}
	geluTanhGo(dst, src)
}

// BiasGelu sets dst[i] = Gelu(x[i] + bias[i]), the sum rounded to
// float32; each element is loaded once. The three slices have equal
// length (callers pass one row and the bias vector); dst may be x.
func BiasGelu(dst, x, bias []float32) {
	checkLen("BiasGelu", dst, x)
	checkLen("BiasGelu", bias, x)
	if len(x) == 0 {
		return
	}
	if useAsm {
		biasGeluAVX2(&dst[0], &x[0], &bias[0], len(x))
		return
	}
	biasGeluGo(dst, x, bias)
}

// BiasGeluTanh sets dst[i] = GeluTanh(x[i] + bias[i]), as BiasGelu.
func BiasGeluTanh(dst, x, bias []float32) {
	checkLen("BiasGeluTanh", dst, x)
	checkLen("BiasGeluTanh", bias, x)
	if len(x) == 0 {
		return
	}
	if useAsm {
		biasGeluTanhAVX2(&dst[0], &x[0], &bias[0], len(x))
		return
	}
	biasGeluTanhGo(dst, x, bias)
}

// Softmax replaces row by softmax(row) in place: exp(v - max) / sum with
// Exp's exp, the max skipping NaN entries. A row whose entries are all
// -Inf becomes zeros (attention's convention for fully masked rows); a row
// holding a NaN, or +Inf, becomes all NaN, as the float64 formula gives.
// Relative error per output, against the float64 softmax: 3e-7 +
// |v - max| 2^-24 (exp and its rounded argument), plus the same averaged
// over the row with the outputs as weights (the errors inside the sum),
// plus (len(row) + 4) 2^-24 (float32 summation, 1/sum and the product);
// outputs below the normal float range may flush to 0.
func Softmax(row []float32) { ScaledSoftmax(row, 1) }

// ScaledSoftmax replaces row by softmax(scale*row) in place, as Softmax;
// scale must be finite and nonzero (it may be negative). The exp argument
// scale*v - max is rounded once in the assembly (fused multiply-add) and
// twice in Go, which adds (|scale v| + |max|) 2^-24 to Softmax's argument
// error. Attention can pass its 1/sqrt(d) here instead of scaling first.
func ScaledSoftmax(row []float32, scale float32) {
	if len(row) == 0 {
		return
	}
	var m float32
	if useAsm {
		m = maxScaledAVX2(&row[0], len(row), scale)
	} else {
		m = maxScaledGo(row, scale)
	}
	if math.IsInf(float64(m), -1) {
		// No entry above -Inf: fully masked (zeros) unless NaN is present.
		fill := float32(0)
		for _, v := range row {
			if v != v {
				fill = float32(math.NaN())
				break
			}
		}
		for i := range row {
			row[i] = fill
		}
		return
	}
	var sum float32
	if useAsm {
		sum = expSumAVX2(&row[0], len(row), scale, m)
	} else {
		sum = expSumGo(row, scale, m)
	}
	inv := 1 / sum
	if useAsm {
		scaleAVX2(&row[0], len(row), inv)
	} else {
		scaleGo(row, inv)
	}
}
