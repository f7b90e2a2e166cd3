package cpu

import (
	"slices"

	"github.com/tfc-compiler/tfc/backend/cpu/vmath"
	"github.com/tfc-compiler/tfc/ir"
)

// Float32 fast path of the standard LayerNormalization and
// RMSNormalization ops (buildLayerNorm in nn.go is the float64
// reference): X float32 with Scale and B holding one value per element
// of the normalised axes [axis, rank), the shapes exporters write. One
// vmath.SkipLayerNormRow call per row; anything else declines.

// axesVector returns t's data when t is float32 and broadcasts to the
// trailing shape tail without repeating (shape tail, or tail's last
// dimensions with leading ones); nil, true for a nil t; ok=false
// otherwise. rank is X's rank: t may not have more dimensions.
func axesVector(t *Tensor, tail []int, rank int) ([]float32, bool) {
	if t == nil {
		return nil, true
	}
	d, isF32 := t.Data.([]float32)
	if !isF32 || len(t.Shape) > rank || shapeSize(t.Shape) != shapeSize(tail) {
		return nil, false
	}
	// Aligned from the right: dimensions over tail must match it, those
	// before it must be 1. Equal sizes then rule out a missing dimension.
	for i := 1; i <= len(t.Shape); i++ {
		dim := t.Shape[len(t.Shape)-i]
		if i <= len(tail) {
			if dim != tail[len(tail)-i] {
				return nil, false
			}
		} else if dim != 1 {
			return nil, false
		}
	}
	return d[:shapeSize(tail)], true
}

// layerNormF32 is the float32 path of LayerNormalization (outputs Y, Mean,
// InvStdDev, the statistics in float32 as the reference gives them) and
// RMSNormalization (Y only).
func layerNormF32(r *runState, in []*Tensor, axis int64, eps float64, rms bool) ([]*Tensor, bool) {
	x := in[0]
	xd, ok := x.Data.([]float32)
	if !ok {
		return nil, false
	}
	rank := len(x.Shape)
	ax, err := normAxis(axis, rank)
	if err != nil {
		return nil, false // the reference reports it
	}
	tail := x.Shape[ax:]
	cols := shapeSize(tail)
	if cols == 0 {
		return nil, false
	}
	scale, ok := axesVector(in[1], tail, rank)
	if !ok || scale == nil {
		return nil, false
	}
	beta, ok := axesVector(inputN(in, 2), tail, rank)
	if !ok {
		return nil, false
	}
	rows := len(xd) / cols
	y := r.mustAllocOverwrite(ir.Float, x.Shape) // every row is written
	yd := f32(y)
	outs := []*Tensor{y}
	var meanD, invD []float32
	if !rms {
		statShape := slices.Clone(x.Shape)
		for i := ax; i < rank; i++ {
			statShape[i] = 1
		}
		m := r.mustAllocOverwrite(ir.Float, statShape)
		s := r.mustAllocOverwrite(ir.Float, statShape)
		meanD, invD = f32(m), f32(s)
		outs = append(outs, m, s)
	}
	eps32 := float32(eps)
	r.parallelFor(rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := i * cols
			mean, inv := vmath.LayerNormRow(yd[row:row+cols], xd[row:row+cols], scale, beta, eps32, rms)
			if meanD != nil {
				meanD[i], invD[i] = mean, inv
			}
		}
	})
	return outs, true
}
