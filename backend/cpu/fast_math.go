package cpu

import (
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/backend/cpu/vmath"
	"github.com/tfc-compiler/tfc/ir"
)

// Float32 math used by the fast kernels (softmax, GELU, the unary ops).
// The vectorised slice functions and their error bounds live in package
// vmath; this file routes the kernels to them.

// softmaxRowF32 replaces row by softmax(row) in float32; a row whose
// entries are all -inf becomes zeros (attentionReference's convention).
// See vmath.Softmax for the error bound and NaN rules.
func softmaxRowF32(row []float32) { vmath.Softmax(row) }

// unaryFloatVec is unaryFloat with a vectorised float32 path: float32
// data (float16 and bfloat16 arrive widened to float32) goes through vec
// in one call per thread's chunk; float64, or fastKernels off, keeps the
// reference f.
func unaryFloatVec(f func(float64) float64, vec func(dst, src []float32)) kernel {
	ref := unaryFloat(f)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		d, ok := x.Data.([]float32)
		if !ok || x.DType != ir.Float || !fastKernels {
			return ref(r, in)
		}
		out, err := r.allocOverwrite(ir.Float, x.Shape) // vec writes every element
		if err != nil {
			return nil, err
		}
		o := f32(out)
		r.parallelFor(len(d), func(lo, hi int) { vec(o[lo:hi], d[lo:hi]) })
		return []*Tensor{out}, nil
	}
}

// vmathUnary routes the float32 path of these standard unary ops to
// package vmath (error bounds in its doc comments: far inside the
// conformance tolerance of 1e-3 relative).
var vmathUnary = map[string]func(dst, src []float32){
	"Exp":     vmath.Exp,
	"Erf":     vmath.Erf,
	"Tanh":    vmath.Tanh,
	"Sigmoid": sigmoidF32,
}

// sigmoidF32 is 1/(1+exp(-x)) through vmath.Exp (relative error within
// about 4e-7: exp's 3e-7 plus one rounding of the division). It saturates
// to 0 below -88.7 (exp gives +Inf) and to 1 above 87.3; NaN stays NaN.
// SiLU/SwiGLU MLPs (Llama, Mistral) run it on every FFN activation.
func sigmoidF32(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = -v
	}
	vmath.Exp(dst, dst)
	for i, e := range dst {
		dst[i] = 1 / (1 + e)
	}
}

// softmaxRowsF32 is the float32 (ir.Float) path of the standard Softmax over
// contiguous rows of length d (the last axis, or the coerced 2-D rows
// before opset 13): vmath.Softmax per row. A row of only -Inf gives NaN,
// as the ONNX formula and the float64 reference do, not vmath's zeros
// (the attention convention); every other row has a positive entry, so
// an all-zero output row identifies that case.
func softmaxRowsF32(r *runState, x *Tensor, xd []float32, d int) ([]*Tensor, error) {
	out, err := r.allocOverwrite(ir.Float, x.Shape) // the copy below writes every element
	if err != nil {
		return nil, err
	}
	od := f32(out)
	if d == 0 {
		return []*Tensor{out}, nil
	}
	copy(od, xd)
	nan := float32(math.NaN())
	r.parallelFor(len(od)/d, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := od[i*d : (i+1)*d]
			vmath.Softmax(row)
			if row[0] == 0 && !slices.ContainsFunc(row, func(v float32) bool { return v != 0 }) {
				for j := range row {
					row[j] = nan
				}
			}
		}
	})
	return []*Tensor{out}, nil
}
