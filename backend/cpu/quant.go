package cpu

import (
	"fmt"
	"math"

	"github.com/tfc-compiler/tfc/ir"
)

// quantParamIndex maps each element of x to the element of a scale or
// zero-point tensor: one value for the tensor, one per index of axis
// (1-D), or one per block of block_size along axis (same rank as x).
func quantParamIndex(xShape []int, p *Tensor, axis int64, blockSize int) ([]int, error) {
	n := shapeSize(xShape)
	idx := make([]int, n)
	switch {
	case p.NumElements() == 1 && len(p.Shape) <= 1:
		return idx, nil
	case len(p.Shape) == 1 && blockSize == 0:
		ax, err := normAxis(axis, len(xShape))
		if err != nil {
			return nil, err
		}
		if p.Shape[0] != xShape[ax] {
			return nil, fmt.Errorf("per-axis parameter has %d values, axis %d has %d", p.Shape[0], ax, xShape[ax])
		}
		inner := shapeSize(xShape[ax+1:])
		for k := range idx {
			idx[k] = (k / max(inner, 1)) % xShape[ax]
		}
		return idx, nil
	case len(p.Shape) == len(xShape) && blockSize > 0:
		ax, err := normAxis(axis, len(xShape))
		if err != nil {
			return nil, err
		}
		for i := range xShape {
			want := xShape[i]
			if i == ax {
				want = (xShape[i] + blockSize - 1) / blockSize
			}
			if p.Shape[i] != want {
				return nil, fmt.Errorf("blocked parameter shape %v does not fit input %v with block_size %d on axis %d", p.Shape, xShape, blockSize, ax)
			}
		}
		st := strides(p.Shape)
		forEachIndex(xShape, func(k int, pos []int) {
			off := 0
			for i, q := range pos {
				if i == ax {
					q /= blockSize
				}
				off += q * st[i]
			}
			idx[k] = off
		})
		return idx, nil
	}
	return nil, fmt.Errorf("parameter shape %v does not fit input %v (axis %d, block_size %d)", p.Shape, xShape, axis, blockSize)
}

// quantRange is the integer range of each integer quantized type.
var quantRange = map[ir.DataType][2]int64{
	ir.Uint8: {0, 255}, ir.Int8: {-128, 127}, ir.Uint16: {0, 65535}, ir.Int16: {-32768, 32767},
	ir.Uint4: {0, 15}, ir.Int4: {-8, 7}, ir.Uint2: {0, 3}, ir.Int2: {-2, 1},
}

// buildQuantizeLinear: y = saturate(round_half_even(x / scale) + zero_point)
// for integer targets; float8 targets cast x / scale (saturating unless
// saturate=0); float4 casts x / scale + zero_point.
func buildQuantizeLinear(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 1)
	blockSize := int(n.AttrInt("block_size", 0))
	saturate := n.AttrInt("saturate", 1) != 0
	outAttr := ir.DataType(n.AttrInt("output_dtype", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, scale, zp := in[0], in[1], inputN(in, 2)
		dt := ir.Uint8
		if outAttr != ir.Undefined {
			dt = outAttr
		}
		if zp != nil {
			if outAttr != ir.Undefined && outAttr != zp.DType {
				return nil, fmt.Errorf("output_dtype %v differs from the zero point's %v", outAttr, zp.DType)
			}
			dt = zp.DType
		}
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("x must be numeric")
		}
		sv, _ := scale.Float64s()
		is, err := quantParamIndex(x.Shape, scale, axis, blockSize)
		if err != nil {
			return nil, fmt.Errorf("y_scale: %w", err)
		}
		var zv []float64
		var iz []int
		if zp != nil {
			zv, _ = zp.Float64s()
			if iz, err = quantParamIndex(x.Shape, zp, axis, blockSize); err != nil {
				return nil, fmt.Errorf("y_zero_point: %w", err)
			}
		}
		q := make([]float64, len(xv))
		for k, v := range xv {
			q[k] = float64(float32(v) / float32(sv[is[k]])) // the reference divides in the input precision
		}
		out, err := r.alloc(dt, x.Shape)
		if err != nil {
			return nil, err
		}
		if rg, ok := quantRange[dt]; ok {
			iv := make([]int64, len(q))
			for k, v := range q {
				y := int64(math.RoundToEven(v))
				if zv != nil {
					y += int64(zv[iz[k]])
				}
				iv[k] = min(max(y, rg[0]), rg[1])
			}
			if lowIntTypes.has(dt) {
				storeLowPrec(out, nil, iv, true, "")
			} else {
				storeInts(out, iv)
			}
			return []*Tensor{out}, nil
		}
		switch dt {
		case ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ:
			storeLowPrec(out, q, nil, saturate, "")
		case ir.Float4E2M1:
			if zv != nil {
				for k := range q {
					q[k] += zv[iz[k]]
				}
			}
			storeLowPrec(out, q, nil, true, "")
		default:
			return nil, fmt.Errorf("%v is not a quantized type", dt)
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildDequantizeLinear: y = (x - zero_point) * scale, in the scale's
// type (or output_dtype).
func buildDequantizeLinear(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 1)
	blockSize := int(n.AttrInt("block_size", 0))
	outAttr := ir.DataType(n.AttrInt("output_dtype", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, scale, zp := in[0], in[1], inputN(in, 2)
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("x must be numeric")
		}
		sv, _ := scale.Float64s()
		is, err := quantParamIndex(x.Shape, scale, axis, blockSize)
		if err != nil {
			return nil, fmt.Errorf("x_scale: %w", err)
		}
		var zv []float64
		var iz []int
		if zp != nil && !miniFloatTypes.has(x.DType) {
			zv, _ = zp.Float64s()
			if iz, err = quantParamIndex(x.Shape, zp, axis, blockSize); err != nil {
				return nil, fmt.Errorf("x_zero_point: %w", err)
			}
		}
		y := make([]float64, len(xv))
		for k, v := range xv {
			if zv != nil {
				v -= zv[iz[k]]
			}
			// float32 arithmetic, as the reference computes it
			y[k] = float64(float32(v) * float32(sv[is[k]]))
		}
		dt := scale.DType
		if outAttr != ir.Undefined {
			dt = outAttr
		}
		out, err := f64Result(r, y, x.Shape, dt)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
