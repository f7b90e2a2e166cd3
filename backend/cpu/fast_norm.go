package cpu

import (
	"math"

	"github.com/tfc-compiler/tfc/backend/cpu/vmath"
	"github.com/tfc-compiler/tfc/ir"
)

// Float32 fast paths of the tfc norm and GELU ops for the shapes the
// fusions produce (X [..., N] with per-channel vectors of length N, Skip
// shaped like X). They are tried first and decline (ok=false) for
// anything else, which then runs the float64 reference in
// table_tfc_norm.go. The norm rows run vmath.SkipLayerNormRow (float32
// corrected two-pass statistics, within about 1e-6 of float64).

// channelVector returns t's data when t is float32 and holds one value
// per channel of the last axis (shape [N] or [1,...,1,N]); nil, true for
// a nil t; ok=false otherwise.
func channelVector(t *Tensor, n int) ([]float32, bool) {
	return axesVector(t, []int{n}, math.MaxInt)
}

// skipLayerNormF32 is the float32 path of tfc.SkipLayerNorm and
// tfc.SkipRMSNorm: sum = X + Skip + Bias, Y = norm(sum)*Scale + B per row
// of the last axis. in follows the op's input order; betaIdx and biasIdx
// say where B and Bias are (-1 for none).
func skipLayerNormF32(r *runState, in []*Tensor, eps float64, rms, wantSum bool, betaIdx, biasIdx int) ([]*Tensor, bool) {
	x, skip := in[0], in[1]
	xd, ok1 := x.Data.([]float32)
	sd, ok2 := skip.Data.([]float32)
	// Skip has X's shape, or is broadcast over X's leading axes (the
	// position embeddings [1, S, N] or [S, N] added to [B, S, N]).
	if !ok1 || !ok2 || len(x.Shape) == 0 || len(skip.Shape) == 0 || !isSuffixShape(skip.Shape, x.Shape) || skip.Shape[len(skip.Shape)-1] != x.Shape[len(x.Shape)-1] {
		return nil, false
	}
	cols := x.Shape[len(x.Shape)-1]
	scale, ok := channelVector(in[2], cols)
	if !ok || scale == nil {
		return nil, false
	}
	var beta, bias []float32
	if betaIdx >= 0 {
		if beta, ok = channelVector(inputN(in, betaIdx), cols); !ok {
			return nil, false
		}
	}
	if biasIdx >= 0 {
		if bias, ok = channelVector(inputN(in, biasIdx), cols); !ok {
			return nil, false
		}
	}
	// Every row is written (sum, then normalised values): no zeroing.
	y := r.mustAllocOverwrite(ir.Float, x.Shape)
	yd := f32(y)
	var sumOut []float32
	outs := []*Tensor{y}
	if wantSum {
		s := r.mustAllocOverwrite(ir.Float, x.Shape)
		sumOut = f32(s)
		outs = append(outs, s)
	}
	if cols == 0 {
		return outs, true
	}
	rows := len(xd) / cols
	eps32 := float32(eps)
	r.parallelFor(rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			// Skip broadcast over the leading axes repeats every len(sd).
			so := (i * cols) % max(len(sd), 1)
			row := i * cols
			var sumRow []float32
			if sumOut != nil {
				sumRow = sumOut[row : row+cols]
			}
			vmath.SkipLayerNormRow(yd[row:row+cols], sumRow, xd[row:row+cols], sd[so:so+cols], bias, scale, beta, eps32, rms)
		}
	})
	return outs, true
}

// biasGeluF32 is the float32 path of tfc.Gelu and tfc.BiasGelu
// (approximate none or tanh): Y = Gelu(X + Bias), Bias per channel of
// the last axis.
func biasGeluF32(r *runState, x, bias *Tensor, tanhForm bool) (*Tensor, bool) {
	xd, ok := x.Data.([]float32)
	if !ok || len(x.Shape) == 0 {
		return nil, false
	}
	cols := x.Shape[len(x.Shape)-1]
	var bd []float32
	if bias != nil {
		if bd, ok = channelVector(bias, cols); !ok {
			return nil, false
		}
	}
	y := r.mustAllocOverwrite(ir.Float, x.Shape) // every row is written
	yd := f32(y)
	if cols == 0 {
		return y, true
	}
	// One vmath call per row: bias add and GELU fused, each element
	// loaded once.
	r.parallelFor(len(xd)/cols, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, yr := xd[i*cols:(i+1)*cols], yd[i*cols:(i+1)*cols]
			switch {
			case bd != nil && tanhForm:
				vmath.BiasGeluTanh(yr, xr, bd)
			case bd != nil:
				vmath.BiasGelu(yr, xr, bd)
			case tanhForm:
				vmath.GeluTanh(yr, xr)
			default:
				vmath.Gelu(yr, xr)
			}
		}
	})
	return y, true
}

// isSuffixShape reports whether small (leading 1s ignored) equals the
// trailing axes of full.
func isSuffixShape(small, full []int) bool {
	small = trimOnes(small)
	if len(small) > len(full) {
		return false
	}
	return sameShape(small, full[len(full)-len(small):])
}
