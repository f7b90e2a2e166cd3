package cpu

import (
	"fmt"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// buildAffineGrid makes the sampling grid of an affine transform: for
// each output position the normalized base coordinate (x, y[, z]),
// multiplied by theta [N, 2, 3] (2-D) or [N, 3, 4] (3-D).
func buildAffineGrid(n *ir.Node, _ *compiler) (kernel, error) {
	align := n.AttrInt("align_corners", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		theta := in[0]
		size, err := intValues(in[1])
		if err != nil {
			return nil, fmt.Errorf("size: %w", err)
		}
		k := len(size) - 2
		if (k != 2 && k != 3) || !sameShape(theta.Shape, []int{int(size[0]), k, k + 1}) {
			return nil, fmt.Errorf("theta %v and size %v must be [N,2,3] with [N,C,H,W] or [N,3,4] with [N,C,D,H,W]", theta.Shape, size)
		}
		N := int(size[0])
		dims, err := toShape(size[2:])
		if err != nil {
			return nil, err
		}
		base := func(i, d int) float64 {
			if align {
				if d == 1 {
					return -1
				}
				return -1 + float64(i)*2/float64(d-1)
			}
			return -1 + (2*float64(i)+1)/float64(d)
		}
		tv, _ := theta.Float64s()
		npos := shapeSize(dims)
		res := make([]float64, N*npos*k)
		for nn := 0; nn < N; nn++ {
			th := tv[nn*k*(k+1):][:k*(k+1)]
			forEachIndex(dims, func(p int, pos []int) {
				// homogeneous base coordinate in (x, y[, z], 1) order: x is
				// the last spatial axis
				h := make([]float64, k+1)
				for a := 0; a < k; a++ {
					h[a] = base(pos[k-1-a], dims[k-1-a])
				}
				h[k] = 1
				for row := 0; row < k; row++ {
					s := 0.0
					for c := 0; c <= k; c++ {
						s += th[row*(k+1)+c] * h[c]
					}
					res[(nn*npos+p)*k+row] = s
				}
			})
		}
		out, err := f64Result(r, res, append(append([]int{N}, dims...), k), theta.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildCol2Im sums the columns of input [N, C*prod(block), L] back into
// images [N, C, image...] (the inverse of im2col).
func buildCol2Im(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		x := in[0]
		img64, err1 := intValues(in[1])
		blk64, err2 := intValues(in[2])
		if err1 != nil || err2 != nil || len(img64) != len(blk64) || len(x.Shape) != 3 {
			return nil, fmt.Errorf("input %v, image_shape and block_shape do not fit", x.Shape)
		}
		img, err := toShape(img64)
		if err != nil {
			return nil, err
		}
		blk, err := toShape(blk64)
		if err != nil {
			return nil, err
		}
		k := len(img)
		spec := windowSpec{kernel: blk}
		attr := func(name string, def int) []int {
			out := make([]int, k)
			for i := range out {
				out[i] = def
			}
			if v, ok := n.AttrInts(name); ok && len(v) == k {
				for i := range out {
					out[i] = int(v[i])
				}
			}
			return out
		}
		spec.strides, spec.dilations = attr("strides", 1), attr("dilations", 1)
		spec.padBegin, spec.padEnd = make([]int, k), make([]int, k)
		if pads, ok := n.AttrInts("pads"); ok && len(pads) == 2*k {
			for i := 0; i < k; i++ {
				spec.padBegin[i], spec.padEnd[i] = int(pads[i]), int(pads[i+k])
			}
		}
		blocks, err := spec.outSizes(img)
		if err != nil {
			return nil, err
		}
		N, CB, L := x.Shape[0], x.Shape[1], x.Shape[2]
		bsz := shapeSize(blk)
		if bsz == 0 || CB%bsz != 0 || L != shapeSize(blocks) {
			return nil, fmt.Errorf("input %v does not hold C*%d rows and %d columns", x.Shape, bsz, shapeSize(blocks))
		}
		C := CB / bsz
		xv, _ := x.Float64s()
		plane := shapeSize(img)
		ist := strides(img)
		res := make([]float64, N*C*plane)
		for nn := 0; nn < N; nn++ {
			for c := 0; c < C; c++ {
				forEachIndex(blk, func(kb int, kpos []int) {
					forEachIndex(blocks, func(l int, bpos []int) {
						off := 0
						for a := 0; a < k; a++ {
							p := bpos[a]*spec.strides[a] - spec.padBegin[a] + kpos[a]*spec.dilations[a]
							if p < 0 || p >= img[a] {
								return
							}
							off += p * ist[a]
						}
						res[(nn*C+c)*plane+off] += xv[(nn*CB+c*bsz+kb)*L+l]
					})
				})
			}
		}
		out, err := f64Result(r, res, append([]int{N, C}, img...), x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildMaxUnpool scatters X into zeros at the flat indices MaxPool
// returned, in an output of the default or given shape.
func buildMaxUnpool(n *ir.Node, _ *compiler) (kernel, error) {
	ks64, ok := n.AttrInts("kernel_shape")
	if !ok {
		return nil, fmt.Errorf("kernel_shape is required")
	}
	ks := toInts(ks64)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, idx := in[0], in[1]
		if len(x.Shape) != len(ks)+2 || !sameShape(idx.Shape, x.Shape) {
			return nil, fmt.Errorf("X %v and I %v must be [N, C, spatial...] of one shape", x.Shape, idx.Shape)
		}
		spec, err := windowAttrs(n, ks, x.Shape[2:])
		if err != nil {
			return nil, err
		}
		shape := slices.Clone(x.Shape)
		for i := range ks {
			shape[i+2] = (x.Shape[i+2]-1)*spec.strides[i] + ks[i] - spec.padBegin[i] - spec.padEnd[i]
		}
		iv, err := intValues(idx)
		if err != nil {
			return nil, fmt.Errorf("I: %w", err)
		}
		total := shapeSize(shape)
		// take() with the inverse map: output element o takes X element k
		// when I[k] == o.
		src := make([]int, total)
		for i := range src {
			src[i] = -1
		}
		for k, o := range iv {
			if o < 0 || o >= int64(total) {
				return nil, fmt.Errorf("index %d is outside the output of %d elements", o, total)
			}
			src[o] = k
		}
		y := take(r, x, shape, src)
		t := inputN(in, 2)
		if t == nil {
			return []*Tensor{y}, nil
		}
		// A given output_shape places the unpooled tensor in its corner,
		// as the reference does.
		v, err := intValues(t)
		if err != nil {
			return nil, fmt.Errorf("output_shape: %w", err)
		}
		outShape, err := toShape(v)
		if err != nil || len(outShape) != len(shape) {
			return nil, fmt.Errorf("output_shape %v must have rank %d", v, len(shape))
		}
		yst := strides(shape)
		corner := make([]int, shapeSize(outShape))
		forEachIndex(outShape, func(k int, pos []int) {
			off := 0
			for a, p := range pos {
				if p >= shape[a] {
					corner[k] = -1
					return
				}
				off += p * yst[a]
			}
			corner[k] = off
		})
		return []*Tensor{take(r, y, outShape, corner)}, nil
	}, nil
}
