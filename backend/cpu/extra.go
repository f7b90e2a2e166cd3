package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// buildCenterCropPad crops (centred) or zero-pads (centred) each listed
// axis to the requested size.
func buildCenterCropPad(n *ir.Node, _ *compiler) (kernel, error) {
	axesAttr, hasAxes := n.AttrInts("axes")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		target, err := intValues(in[1])
		if err != nil {
			return nil, fmt.Errorf("shape: %w", err)
		}
		rank := len(x.Shape)
		axes := make([]int, 0, rank)
		if hasAxes {
			for _, a := range axesAttr {
				ax, err := normAxis(a, rank)
				if err != nil {
					return nil, err
				}
				axes = append(axes, ax)
			}
		} else {
			for i := 0; i < rank; i++ {
				axes = append(axes, i)
			}
		}
		if len(target) != len(axes) {
			return nil, fmt.Errorf("shape %v must hold one size per axis %v", target, axes)
		}
		shape := slices.Clone(x.Shape)
		shift := make([]int, rank) // input index = output index + shift
		for i, a := range axes {
			if target[i] < 0 {
				return nil, fmt.Errorf("negative size %d", target[i])
			}
			t := int(target[i])
			if t < x.Shape[a] {
				shift[a] = (x.Shape[a] - t) / 2
			} else {
				shift[a] = -((t - x.Shape[a]) / 2)
			}
			shape[a] = t
		}
		st := strides(x.Shape)
		idx := make([]int, shapeSize(shape))
		forEachIndex(shape, func(k int, pos []int) {
			off := 0
			for a, p := range pos {
				q := p + shift[a]
				if q < 0 || q >= x.Shape[a] {
					idx[k] = -1
					return
				}
				off += q * st[a]
			}
			idx[k] = off
		})
		return []*Tensor{take(r, x, shape, idx)}, nil
	}, nil
}

// buildDynamicQuantizeLinear quantizes to uint8 with a scale and zero
// point computed from the data range (which always includes 0).
func buildDynamicQuantizeLinear(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		xv, _ := in[0].Float64s()
		lo, hi := 0.0, 0.0
		for _, v := range xv {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		scale := float32((hi - lo) / 255)
		zp := 0.0
		if scale != 0 {
			zp = math.Min(255, math.Max(0, math.RoundToEven(float64(0-float32(lo)/scale))))
		}
		y := r.mustAlloc(ir.Uint8, in[0].Shape)
		yv := y.Data.([]uint8)
		for i, v := range xv {
			q := zp
			if scale != 0 {
				q = math.RoundToEven(float64(float32(v)/scale)) + zp
			}
			yv[i] = uint8(math.Min(255, math.Max(0, q)))
		}
		s := r.mustAlloc(ir.Float, nil)
		s.Data.([]float32)[0] = scale
		z := r.mustAlloc(ir.Uint8, nil)
		z.Data.([]uint8)[0] = uint8(zp)
		return []*Tensor{y, s, z}, nil
	}, nil
}

// zeroPointed returns x - zp as int64s, with zp scalar or per index of
// axis (counted from the end: -2 rows of A, -1 columns of B).
func zeroPointed(x, zp *Tensor, axisFromEnd int) ([]int64, error) {
	xv, err := intValues(x)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(xv)
	if zp == nil {
		return out, nil
	}
	zv, err := intValues(zp)
	if err != nil {
		return nil, err
	}
	if len(zv) == 1 {
		for i := range out {
			out[i] -= zv[0]
		}
		return out, nil
	}
	rank := len(x.Shape)
	if rank < -axisFromEnd {
		return nil, fmt.Errorf("zero point %v does not fit %v", zp.Shape, x.Shape)
	}
	ax := rank + axisFromEnd
	if len(zv) != x.Shape[ax] {
		return nil, fmt.Errorf("zero point has %d values, axis %d has %d", len(zv), ax, x.Shape[ax])
	}
	inner := shapeSize(x.Shape[ax+1:])
	for i := range out {
		out[i] -= zv[(i/max(inner, 1))%x.Shape[ax]]
	}
	return out, nil
}

// intMatMul multiplies integer operands (already zero-point corrected)
// with numpy matmul broadcasting.
func intMatMul(a []int64, as []int, b []int64, bs []int) ([]int64, []int, error) {
	batch, aB, bB, shape, m, k, nn, err := matmulShapes(as, bs)
	if err != nil {
		return nil, nil, err
	}
	out := make([]int64, shapeSize(shape))
	ia, ib := broadcastIndex(aB, batch), broadcastIndex(bB, batch)
	for bi := range ia {
		matmulBlock(a[ia[bi]*m*k:][:m*k], b[ib[bi]*k*nn:][:k*nn], out[bi*m*nn:][:m*nn], m, k, nn)
	}
	return out, shape, nil
}

func buildMatMulInteger(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, err := zeroPointed(in[0], inputN(in, 2), -2)
		if err != nil {
			return nil, fmt.Errorf("A: %w", err)
		}
		b, err := zeroPointed(in[1], inputN(in, 3), -1)
		if err != nil {
			return nil, fmt.Errorf("B: %w", err)
		}
		res, shape, err := intMatMul(a, in[0].Shape, b, in[1].Shape)
		if err != nil {
			return nil, err
		}
		out := r.mustAlloc(ir.Int32, shape)
		storeInts(out, res)
		return []*Tensor{out}, nil
	}, nil
}

// buildQLinearMatMul: y = saturate(round((A-azp)(B-bzp) * as*bs/ys) + yzp).
func buildQLinearMatMul(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 8); err != nil {
			return nil, err
		}
		a, err := zeroPointed(in[0], in[2], -2)
		if err != nil {
			return nil, fmt.Errorf("a: %w", err)
		}
		b, err := zeroPointed(in[3], in[5], -1)
		if err != nil {
			return nil, fmt.Errorf("b: %w", err)
		}
		res, shape, err := intMatMul(a, in[0].Shape, b, in[3].Shape)
		if err != nil {
			return nil, err
		}
		as, err1 := scalarFloat(in[1])
		bs, err2 := scalarFloat(in[4])
		ys, err3 := scalarFloat(in[6])
		yz, err4 := scalarFloat(in[7])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("scales and the output zero point must be scalars")
		}
		mult := float64(float32(float32(as) * float32(bs) / float32(ys)))
		dt := in[7].DType
		rg, ok := quantRange[dt]
		if !ok {
			return nil, fmt.Errorf("y_zero_point type %v is not a quantized integer type", dt)
		}
		q := make([]int64, len(res))
		for i, v := range res {
			y := math.RoundToEven(float64(float32(float64(v)*mult)) + yz)
			q[i] = int64(math.Min(float64(rg[1]), math.Max(float64(rg[0]), y)))
		}
		out, err := r.alloc(dt, shape)
		if err != nil {
			return nil, err
		}
		storeInts(out, q)
		return []*Tensor{out}, nil
	}, nil
}

// buildConvInteger runs the reference convolution on zero-point
// corrected integers (exact in float64 for 8-bit inputs) into int32.
func buildConvInteger(n *ir.Node, c *compiler) (kernel, error) {
	conv, err := buildConv(n, c)
	if err != nil {
		return nil, err
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		toF32 := func(t, zp *Tensor) (*Tensor, error) {
			v, err := zeroPointed(t, nil, 0)
			if err != nil {
				return nil, err
			}
			// a scalar zero point, or one per first-axis index (output
			// channel of W)
			zv := []int64{0}
			if zp != nil {
				if zv, err = intValues(zp); err != nil {
					return nil, err
				}
				if len(zv) != 1 && (len(t.Shape) == 0 || len(zv) != t.Shape[0]) {
					return nil, fmt.Errorf("zero point %v must be a scalar or hold one value per index of axis 0", zp.Shape)
				}
			}
			per := max(len(v)/max(len(zv), 1), 1)
			f := make([]float32, len(v))
			for i, x := range v {
				z := zv[0]
				if len(zv) > 1 {
					z = zv[i/per]
				}
				f[i] = float32(x - z)
			}
			return Float32Tensor(t.Shape, f), nil
		}
		x, err := toF32(in[0], inputN(in, 2))
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		w, err := toF32(in[1], inputN(in, 3))
		if err != nil {
			return nil, fmt.Errorf("w: %w", err)
		}
		outs, err := conv(r, []*Tensor{x, w})
		if err != nil {
			return nil, err
		}
		res, err := convertData(r, outs[0], ir.Int32)
		if err != nil {
			return nil, err
		}
		return []*Tensor{res}, nil
	}, nil
}

// buildLRN: y = x / (bias + alpha/size * sum of squares over the channel
// window)^beta.
func buildLRN(n *ir.Node, _ *compiler) (kernel, error) {
	alpha := float64(n.AttrFloat("alpha", 1e-4))
	beta := float64(n.AttrFloat("beta", 0.75))
	bias := float64(n.AttrFloat("bias", 1))
	size := int(n.AttrInt("size", 0))
	if size <= 0 {
		return nil, fmt.Errorf("size must be positive")
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("X must be [N, C, ...], has shape %v", x.Shape)
		}
		N, C := x.Shape[0], x.Shape[1]
		sp := shapeSize(x.Shape[2:])
		xv, _ := x.Float64s()
		y := make([]float64, len(xv))
		lo, hi := (size-1)/2, (size-1+1)/2
		for nn := 0; nn < N; nn++ {
			for c := 0; c < C; c++ {
				for s := 0; s < sp; s++ {
					sum := 0.0
					for j := max(0, c-lo); j <= min(C-1, c+hi); j++ {
						v := xv[(nn*C+j)*sp+s]
						sum += v * v
					}
					e := (nn*C+c)*sp + s
					y[e] = xv[e] / math.Pow(bias+alpha/float64(size)*sum, beta)
				}
			}
		}
		out, err := f64Result(r, y, x.Shape, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildConvTranspose is the reference transposed convolution: every input
// element scatters x*w into the output at i*stride + k*dilation - pad.
func buildConvTranspose(n *ir.Node, _ *compiler) (kernel, error) {
	group := int(n.AttrInt("group", 1))
	autoPad := n.AttrString("auto_pad", "NOTSET")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, w, b := in[0], in[1], inputN(in, 2)
		if len(x.Shape) < 3 || len(w.Shape) != len(x.Shape) {
			return nil, fmt.Errorf("X %v and W %v must be [N,C,spatial...] and [C,M/group,kernel...]", x.Shape, w.Shape)
		}
		N, C := x.Shape[0], x.Shape[1]
		if group < 1 || C%group != 0 || w.Shape[0] != C {
			return nil, fmt.Errorf("W %v does not fit %d channels in %d groups", w.Shape, C, group)
		}
		mg := w.Shape[1]
		M := mg * group
		sp, ks := x.Shape[2:], w.Shape[2:]
		k := len(sp)
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
		strd, dil, outPad := attr("strides", 1), attr("dilations", 1), attr("output_padding", 0)
		padB, padE := make([]int, k), make([]int, k)
		pads, hasPads := n.AttrInts("pads")
		outShapeAttr, hasOutShape := n.AttrInts("output_shape")
		osz := make([]int, k)
		if hasPads && len(pads) == 2*k {
			for i := 0; i < k; i++ {
				padB[i], padE[i] = int(pads[i]), int(pads[i+k])
			}
		}
		for i := 0; i < k; i++ {
			full := strd[i]*(sp[i]-1) + outPad[i] + (ks[i]-1)*dil[i] + 1
			switch {
			case !hasPads && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER"):
				o := sp[i] * strd[i]
				if hasOutShape {
					o = int(outShapeAttr[len(outShapeAttr)-k+i])
				}
				total := full - o
				if autoPad == "SAME_UPPER" {
					padB[i], padE[i] = total/2, total-total/2
				} else {
					padB[i], padE[i] = total-total/2, total/2
				}
				osz[i] = o
			case hasOutShape:
				osz[i] = int(outShapeAttr[len(outShapeAttr)-k+i])
			default:
				osz[i] = full - padB[i] - padE[i]
			}
			if osz[i] < 0 {
				return nil, fmt.Errorf("output size %d on spatial axis %d is negative", osz[i], i)
			}
		}
		xv, _ := x.Float64s()
		wv, _ := w.Float64s()
		outPlane, inPlane, kPlane := shapeSize(osz), shapeSize(sp), shapeSize(ks)
		ost := strides(osz)
		res := make([]float64, N*M*outPlane)
		// target offset of (input position, kernel tap), -1 when outside
		taps := make([]int, inPlane*kPlane)
		forEachIndex(sp, func(ip int, ipos []int) {
			forEachIndex(ks, func(kk int, kpos []int) {
				off := 0
				for a := range ipos {
					o := ipos[a]*strd[a] + kpos[a]*dil[a] - padB[a]
					if o < 0 || o >= osz[a] {
						off = -1
						break
					}
					off += o * ost[a]
				}
				taps[ip*kPlane+kk] = off
			})
		})
		cg := C / group
		for nn := 0; nn < N; nn++ {
			for c := 0; c < C; c++ {
				g := c / cg
				for m := 0; m < mg; m++ {
					dst := res[(nn*M+g*mg+m)*outPlane:][:outPlane]
					wk := wv[(c*mg+m)*kPlane:][:kPlane]
					src := xv[(nn*C+c)*inPlane:][:inPlane]
					for ip, xval := range src {
						for kk, off := range taps[ip*kPlane : (ip+1)*kPlane] {
							if off >= 0 {
								dst[off] += xval * wk[kk]
							}
						}
					}
				}
			}
		}
		if b != nil {
			bv, _ := b.Float64s()
			if len(bv) != M {
				return nil, fmt.Errorf("B must hold %d values", M)
			}
			for i := range res {
				res[i] += bv[(i/max(outPlane, 1))%M]
			}
		}
		out, err := f64Result(r, res, append([]int{N, M}, osz...), x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildUnique finds the unique elements (or slices along axis): Y, the
// index of each one's first occurrence, the inverse map and the counts;
// sorted=1 orders them lexicographically, sorted=0 by first occurrence.
func buildUnique(n *ir.Node, _ *compiler) (kernel, error) {
	axisAttr := n.Attr("axis")
	axis := n.AttrInt("axis", 0)
	sortedOut := n.AttrInt("sorted", 1) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		shape := x.Shape
		if axisAttr == nil {
			shape = []int{x.NumElements()}
		}
		ax := 0
		if axisAttr != nil {
			var err error
			if ax, err = normAxis(axis, len(shape)); err != nil {
				return nil, err
			}
		}
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("input must be numeric")
		}
		dim := shape[ax]
		outer, inner := shapeSize(shape[:ax]), shapeSize(shape[ax+1:])
		slice := func(j int) []float64 {
			s := make([]float64, 0, outer*inner)
			for o := 0; o < outer; o++ {
				s = append(s, xv[(o*dim+j)*inner:][:inner]...)
			}
			return s
		}
		keys := make([][]float64, dim)
		for j := range keys {
			keys[j] = slice(j)
		}
		// first occurrences, in order of appearance
		var firsts []int
		inverse := make([]int64, dim)
		for j := 0; j < dim; j++ {
			found := -1
			for u, f := range firsts {
				if slices.Equal(keys[f], keys[j]) {
					found = u
					break
				}
			}
			if found < 0 {
				found = len(firsts)
				firsts = append(firsts, j)
			}
			inverse[j] = int64(found)
		}
		order := make([]int, len(firsts)) // position in the output of each unique
		perm := make([]int, len(firsts))  // unique at each output position
		for i := range perm {
			perm[i] = i
		}
		if sortedOut {
			slices.SortStableFunc(perm, func(a, b int) int {
				ka, kb := keys[firsts[a]], keys[firsts[b]]
				for i := range ka {
					if ka[i] < kb[i] {
						return -1
					}
					if ka[i] > kb[i] {
						return 1
					}
				}
				return 0
			})
		}
		for pos, u := range perm {
			order[u] = pos
		}
		counts := make([]int64, len(firsts))
		for j := range inverse {
			counts[inverse[j]]++
		}
		idxOut := make([]int64, len(perm))
		cntOut := make([]int64, len(perm))
		src := make([]int, 0, len(perm)*outer*inner)
		yShape := slices.Clone(shape)
		yShape[ax] = len(perm)
		for o := 0; o < outer; o++ {
			for _, u := range perm {
				for i := 0; i < inner; i++ {
					src = append(src, (o*dim+firsts[u])*inner+i)
				}
			}
		}
		for pos, u := range perm {
			idxOut[pos], cntOut[pos] = int64(firsts[u]), counts[u]
		}
		for j := range inverse {
			inverse[j] = int64(order[inverse[j]])
		}
		flat := view(x, shape)
		y := take(r, flat, yShape, src)
		mk := func(v []int64) *Tensor {
			t := r.mustAlloc(ir.Int64, []int{len(v)})
			copy(t.Data.([]int64), v)
			return t
		}
		return []*Tensor{y, mk(idxOut), mk(inverse), mk(cntOut)}, nil
	}, nil
}
