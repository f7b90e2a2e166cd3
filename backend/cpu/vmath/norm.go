package vmath

import "math"

// Row kernels of LayerNorm, RMSNorm and their skip (residual) forms.
//
// Statistics: the row sum is taken in float32 lanes only to get a shift
// m0 close to the mean; the second pass sums d = s - m0 and d^2 and
// corrects the mean by sum(d)/n (the corrected two-pass algorithm). The
// differences are small where the data are (no catastrophic cancellation
// however large the mean), so the float32 sums of d and d^2 carry a
// relative error of about (n/32 + 5) 2^-24 of sum|d| and sum d^2 (the
// chain length of one lane, then the 8-lane reduction): about 1e-6 for
// n = 384, far inside the float32 outputs' own error budget. m0 enters
// only through d, so its own float32 rounding costs nothing. Rows whose
// float32 statistics overflow or are NaN are redone in float64, so huge
// but finite rows are still normalised and NaN/Inf propagate as the
// float64 formula gives (an Inf or NaN anywhere in s makes the whole row
// NaN; a NaN in gamma or beta only its own column).

// checkRowLen panics when an optional slice (nil allowed) differs from n:
// a caller bug, not bad model input.
func checkRowLen(fn, what string, s []float32, n int, optional bool) {
	if (s == nil && optional) || len(s) == n {
		return
	}
	panic("vmath." + fn + ": len(" + what + ") != len(x)")
}

// LayerNormRow sets y = (x - mean) / sqrt(var + eps) * gamma + beta over
// one row (rms: y = x / sqrt(mean(x^2) + eps) * gamma + beta); beta may
// be nil. It returns the row's mean (0 for rms) and 1/sqrt(var + eps).
// y may be x. See SkipLayerNormRow for the error bound.
func LayerNormRow(y, x, gamma, beta []float32, eps float32, rms bool) (mean, invStd float32) {
	return SkipLayerNormRow(y, nil, x, nil, nil, gamma, beta, eps, rms)
}

// SkipLayerNormRow normalises one row of s = x + skip + bias (skip and
// bias may be nil; the sum is rounded to float32 after each addition, in
// that order), storing s in sum when sum is not nil, then
//
//	y = (s - mean) / sqrt(var + eps) * gamma + beta    (beta may be nil)
//
// with mean and var = mean((s - mean)^2) of the row, or for rms mean = 0
// and var = mean(s^2). It returns mean and invStd = 1/sqrt(var + eps) (as
// float32). All slices have len(x) (gamma too); y may be x or skip, sum
// may be x or skip too but not y. Against the float64 formula applied to
// the float32 s, each output is within k (|z| + 1) |gamma| + 2u |y| +
// u |beta|, where u = 2^-24, z = (s - mean) invStd and k = (n/32 + 8) u
// is the statistics' relative error above (about 1e-6 for n = 384): the
// variance's error scales z, the mean's shifts it by at most k standard
// deviations, and the two multiply-adds round once each. The tests hold
// both implementations to this bound (the Go twins, summing in float64,
// are tighter).
func SkipLayerNormRow(y, sum, x, skip, bias, gamma, beta []float32, eps float32, rms bool) (mean, invStd float32) {
	const fn = "SkipLayerNormRow"
	n := len(x)
	checkRowLen(fn, "y", y, n, false)
	checkRowLen(fn, "gamma", gamma, n, false)
	checkRowLen(fn, "sum", sum, n, true)
	checkRowLen(fn, "skip", skip, n, true)
	checkRowLen(fn, "bias", bias, n, true)
	checkRowLen(fn, "beta", beta, n, true)
	if n == 0 {
		// 0/0, as the float64 formula gives.
		nan := float32(math.NaN())
		if rms {
			return 0, nan
		}
		return nan, nan
	}
	if skip == nil {
		skip, bias = bias, nil
	}
	// s is where the row to normalise lives: x itself, or the sum
	// written to sum (the sum output) or else to y.
	s := x
	var total float32
	if skip != nil {
		s = y
		if sum != nil {
			s = sum
		}
		total = addSum(s, x, skip, bias)
	} else {
		if sum != nil {
			copy(sum, x)
		}
		if !rms {
			total = rowSum(x)
		}
	}
	nf := float64(n)
	var m0 float32
	if !rms {
		m0 = total / float32(n)
	}
	sd, sd2 := devStats(s, m0)
	var c, variance float64 // mean = m0 + c
	if !rms {
		c = float64(sd) / nf
	}
	variance = float64(sd2)/nf - c*c
	if math.IsInf(variance, 0) || math.IsNaN(variance) || math.IsInf(float64(m0), 0) {
		m0, c, variance = statsF64(s, rms)
	}
	variance = max(variance, 0) // -c^2 may round below 0 on constant rows
	inv := 1 / math.Sqrt(variance+float64(eps))
	shift := float32(-c * inv)
	var betaP *float32
	if useAsm {
		if beta != nil {
			betaP = &beta[0]
		}
		applyAVX2(&y[0], &s[0], &gamma[0], betaP, n, m0, float32(inv), shift)
	} else {
		applyGo(y, s, gamma, beta, m0, float32(inv), shift)
	}
	return float32(float64(m0) + c), float32(inv)
}

func rowSum(x []float32) float32 {
	if useAsm {
		return sumAVX2(&x[0], len(x))
	}
	return sumGo(x)
}

func addSum(s, x, skip, bias []float32) float32 {
	if useAsm {
		var biasP *float32
		if bias != nil {
			biasP = &bias[0]
		}
		return addSumAVX2(&s[0], &x[0], &skip[0], biasP, len(x))
	}
	return addSumGo(s, x, skip, bias)
}

func devStats(s []float32, m0 float32) (sumD, sumD2 float32) {
	if useAsm {
		return devStatsAVX2(&s[0], len(s), m0)
	}
	return devStatsGo(s, m0)
}

// statsF64 is the float64 two-pass reference for rows whose float32
// statistics are not finite: m0 = float32(mean) and c = mean - m0 (so
// that the apply step subtracts mean to float64 precision), variance.
func statsF64(s []float32, rms bool) (m0 float32, c, variance float64) {
	mu := 0.0
	if !rms {
		for _, v := range s {
			mu += float64(v)
		}
		mu /= float64(len(s))
	}
	for _, v := range s {
		d := float64(v) - mu
		variance += d * d
	}
	variance /= float64(len(s))
	m0 = float32(mu)
	c = mu - float64(m0)
	if math.IsInf(float64(m0), 0) || math.IsNaN(c) {
		c = 0
	}
	return m0, c, variance
}

// The Go twins of the assembly. They accumulate in float64 (free in
// scalar code, and at least as accurate as the assembly's float32 lanes)
// and round each result once to float32.

// sumGo returns sum(x).
func sumGo(x []float32) float32 {
	var t float64
	for _, v := range x {
		t += float64(v)
	}
	return float32(t)
}

// addSumGo sets s[i] = x[i] + skip[i] (+ bias[i]), rounding after each
// addition, and returns sum(s).
func addSumGo(s, x, skip, bias []float32) float32 {
	var t float64
	for i := range s {
		v := x[i] + skip[i]
		if bias != nil {
			v += bias[i]
		}
		s[i] = v
		t += float64(v)
	}
	return float32(t)
}

// devStatsGo returns sum(d) and sum(d^2) for d = s[i] - m0 rounded to
// float32.
func devStatsGo(s []float32, m0 float32) (sumD, sumD2 float32) {
	var a, b float64
	for _, v := range s {
		d := float64(v - m0)
		a += d
		b += d * d
	}
	return float32(a), float32(b)
}

// applyGo sets y[i] = ((s[i] - m0) inv + shift) gamma[i] (+ beta[i]):
// the products of two float32 values are exact in float64, so each
// multiply-add is rounded once in float64 and once to float32, as the
// assembly's FMA but for rare double-rounding ties.
func applyGo(y, s, gamma, beta []float32, m0, inv, shift float32) {
	for i := range y {
		t := float32(float64(s[i]-m0)*float64(inv) + float64(shift))
		o := float64(t) * float64(gamma[i])
		if beta != nil {
			o += float64(beta[i])
		}
		y[i] = float32(o)
	}
}
