package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// windowSpec is the geometry shared by Conv and the pools: per spatial
// axis the kernel size, stride, dilation and padding before/after.
type windowSpec struct {
	kernel, strides, dilations, padBegin, padEnd []int
	ceil                                         bool
}

// windowAttrs reads kernel_shape (or the given kernel sizes), strides,
// dilations, pads and auto_pad, resolving SAME padding for input sizes in.
func windowAttrs(n *ir.Node, kernel []int, in []int) (windowSpec, error) {
	k := len(in)
	w := windowSpec{kernel: kernel, ceil: n.AttrInt("ceil_mode", 0) != 0}
	get := func(name string, def int) ([]int, error) {
		v, ok := n.AttrInts(name)
		out := make([]int, k)
		for i := range out {
			out[i] = def
		}
		if !ok {
			return out, nil
		}
		if len(v) != k {
			return nil, fmt.Errorf("attribute %s %v has %d values, want %d", name, v, len(v), k)
		}
		for i, x := range v {
			if x < 1 {
				return nil, fmt.Errorf("attribute %s %v must be positive", name, v)
			}
			out[i] = int(x)
		}
		return out, nil
	}
	var err error
	if w.strides, err = get("strides", 1); err != nil {
		return w, err
	}
	if w.dilations, err = get("dilations", 1); err != nil {
		return w, err
	}
	w.padBegin, w.padEnd = make([]int, k), make([]int, k)
	if pads, ok := n.AttrInts("pads"); ok {
		if len(pads) != 2*k {
			return w, fmt.Errorf("pads %v need %d values", pads, 2*k)
		}
		for i := 0; i < k; i++ {
			if pads[i] < 0 || pads[i+k] < 0 {
				return w, fmt.Errorf("negative pads %v", pads)
			}
			w.padBegin[i], w.padEnd[i] = int(pads[i]), int(pads[i+k])
		}
	}
	switch ap := n.AttrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "VALID", "":
		if ap == "VALID" {
			clear(w.padBegin)
			clear(w.padEnd)
		}
	case "SAME_UPPER", "SAME_LOWER":
		for i := 0; i < k; i++ {
			out := (in[i] + w.strides[i] - 1) / w.strides[i]
			total := max(0, (out-1)*w.strides[i]+(w.kernel[i]-1)*w.dilations[i]+1-in[i])
			small, big := total/2, total-total/2
			if ap == "SAME_UPPER" {
				w.padBegin[i], w.padEnd[i] = small, big
			} else {
				w.padBegin[i], w.padEnd[i] = big, small
			}
		}
	default:
		return w, fmt.Errorf("auto_pad %q is not supported", ap)
	}
	return w, nil
}

// outSizes returns the output spatial sizes.
func (w windowSpec) outSizes(in []int) ([]int, error) {
	out := make([]int, len(in))
	for i := range in {
		span := (w.kernel[i]-1)*w.dilations[i] + 1
		num := in[i] + w.padBegin[i] + w.padEnd[i] - span
		if num < 0 {
			return nil, fmt.Errorf("window of %d does not fit axis of %d (padded %d+%d)", span, in[i], w.padBegin[i], w.padEnd[i])
		}
		o := num/w.strides[i] + 1
		if w.ceil && num%w.strides[i] != 0 {
			o++
			// the last window must start inside the input or left padding
			if (o-1)*w.strides[i] >= in[i]+w.padBegin[i] {
				o--
			}
		}
		out[i] = o
	}
	return out, nil
}

// buildConv is the reference N-D convolution with groups.
func buildConv(n *ir.Node, _ *compiler) (kernel, error) {
	group := int(n.AttrInt("group", 1))
	if group < 1 {
		return nil, fmt.Errorf("group %d must be positive", group)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, w, b := in[0], in[1], inputN(in, 2)
		if len(x.Shape) < 3 || len(w.Shape) != len(x.Shape) {
			return nil, fmt.Errorf("X %v and W %v must be [N,C,spatial...] and [M,C/group,kernel...]", x.Shape, w.Shape)
		}
		N, C, M := x.Shape[0], x.Shape[1], w.Shape[0]
		sp := x.Shape[2:]
		ks := w.Shape[2:]
		if attrK, ok := n.AttrInts("kernel_shape"); ok && !slices.Equal(toInts(attrK), ks) {
			return nil, fmt.Errorf("kernel_shape %v does not match W %v", attrK, w.Shape)
		}
		if C%group != 0 || M%group != 0 || w.Shape[1] != C/group {
			return nil, fmt.Errorf("channels C=%d, M=%d and W %v do not fit group %d", C, M, w.Shape, group)
		}
		spec, err := windowAttrs(n, ks, sp)
		if err != nil {
			return nil, err
		}
		osz, err := spec.outSizes(sp)
		if err != nil {
			return nil, err
		}
		xv, wv := f32(x), f32(w)
		var bv []float32
		if b != nil {
			if b.NumElements() != M {
				return nil, fmt.Errorf("B has %d values, want %d", b.NumElements(), M)
			}
			bv = f32(b)
		}
		shape := append([]int{N, M}, osz...)
		out, err := r.alloc(x.DType, shape)
		if err != nil {
			return nil, err
		}
		ov := f32(out)
		cg, mg := C/group, M/group
		inSt := strides(sp)
		inPlane, kPlane, outPlane := shapeSize(sp), shapeSize(ks), shapeSize(osz)
		// For each output position, the input offset of each kernel tap
		// (or -1 when it falls in padding).
		taps := make([]int, outPlane*kPlane)
		forEachIndex(osz, func(o int, opos []int) {
			forEachIndex(ks, func(kk int, kpos []int) {
				off := 0
				for a := range opos {
					p := opos[a]*spec.strides[a] - spec.padBegin[a] + kpos[a]*spec.dilations[a]
					if p < 0 || p >= sp[a] {
						off = -1
						break
					}
					off += p * inSt[a]
				}
				taps[o*kPlane+kk] = off
			})
		})
		r.parallelFor(N*M, func(lo, hi int) {
			for nm := lo; nm < hi; nm++ {
				nn, m := nm/M, nm%M
				g := m / mg
				dst := ov[nm*outPlane:][:outPlane]
				for o := range dst {
					s := 0.0
					for c := 0; c < cg; c++ {
						xPlane := xv[(nn*C+g*cg+c)*inPlane:][:inPlane]
						wk := wv[(m*cg+c)*kPlane:][:kPlane]
						for kk, off := range taps[o*kPlane : (o+1)*kPlane] {
							if off >= 0 {
								s += float64(xPlane[off]) * float64(wk[kk])
							}
						}
					}
					if bv != nil {
						s += float64(bv[m])
					}
					dst[o] = float32(s)
				}
			}
		})
		return []*Tensor{out}, nil
	}, nil
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

// buildPool covers AveragePool, MaxPool and LpPool over the spatial axes
// of [N, C, spatial...].
func buildPool(n *ir.Node, _ *compiler) (kernel, error) {
	ks64, ok := n.AttrInts("kernel_shape")
	if !ok {
		return nil, fmt.Errorf("kernel_shape is required")
	}
	ks := toInts(ks64)
	countPad := n.AttrInt("count_include_pad", 0) != 0
	storageOrder := n.AttrInt("storage_order", 0)
	p := float64(n.AttrInt("p", 2))
	op := n.Op
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) != len(ks)+2 {
			return nil, fmt.Errorf("X %v does not match kernel_shape %v", x.Shape, ks)
		}
		sp := x.Shape[2:]
		spec, err := windowAttrs(n, ks, sp)
		if err != nil {
			return nil, err
		}
		osz, err := spec.outSizes(sp)
		if err != nil {
			return nil, err
		}
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("X must be numeric")
		}
		planes := x.Shape[0] * x.Shape[1]
		inPlane, outPlane := shapeSize(sp), shapeSize(osz)
		inSt := strides(sp)
		res := make([]float64, planes*outPlane)
		idx := make([]int64, planes*outPlane)
		for pl := 0; pl < planes; pl++ {
			src := xv[pl*inPlane:][:inPlane]
			forEachIndex(osz, func(o int, opos []int) {
				acc, cnt, padCnt := 0.0, 0, 0
				best, bestAt := math.Inf(-1), -1
				if op == "MaxPool" {
					best = math.Inf(-1)
				}
				forEachIndex(ks, func(_ int, kpos []int) {
					off, inside, inPadded := 0, true, true
					for a := range opos {
						q := opos[a]*spec.strides[a] - spec.padBegin[a] + kpos[a]*spec.dilations[a]
						if q < 0 || q >= sp[a] {
							inside = false
						}
						if q < -spec.padBegin[a] || q >= sp[a]+spec.padEnd[a] {
							inPadded = false
						}
						off += q * inSt[a]
					}
					if inPadded {
						padCnt++
					}
					if !inside {
						return
					}
					v := src[off]
					cnt++
					switch op {
					case "MaxPool":
						if v > best || bestAt < 0 {
							best, bestAt = v, off
						}
					case "LpPool":
						acc += math.Pow(math.Abs(v), p)
					default:
						acc += v
					}
				})
				k := pl*outPlane + o
				switch op {
				case "MaxPool":
					res[k] = best
					if bestAt >= 0 {
						if storageOrder == 1 { // column-major index within the plane
							pos := make([]int, len(sp))
							rem := bestAt
							for a := range sp {
								pos[a] = rem / inSt[a]
								rem %= inSt[a]
							}
							col, mul := 0, 1
							for a := range sp {
								col += pos[a] * mul
								mul *= sp[a]
							}
							idx[k] = int64(pl*inPlane + col)
						} else {
							idx[k] = int64(pl*inPlane + bestAt)
						}
					}
				case "LpPool":
					res[k] = math.Pow(acc, 1/p)
				default:
					div := cnt
					if countPad {
						div = padCnt
					}
					res[k] = acc / float64(max(div, 1))
				}
			})
		}
		shape := append(slices.Clone(x.Shape[:2]), osz...)
		out, err := r.alloc(x.DType, shape)
		if err != nil {
			return nil, err
		}
		if intTypes.has(x.DType) {
			iv := make([]int64, len(res))
			for i, v := range res {
				iv[i] = int64(v)
			}
			storeInts(out, iv)
		} else {
			storeFloats(out, res)
		}
		outs := []*Tensor{out}
		if op == "MaxPool" {
			it := r.mustAlloc(ir.Int64, shape)
			copy(it.Data.([]int64), idx)
			outs = append(outs, it)
		}
		return outs, nil
	}, nil
}

// buildGlobalPool averages (or takes the max) over all spatial axes.
func buildGlobalPool(n *ir.Node, _ *compiler) (kernel, error) {
	isMax := n.Op == "GlobalMaxPool"
	red := reducers["ReduceMean"]
	if isMax {
		red = reducers["ReduceMax"]
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("X must be [N, C, spatial...], has shape %v", x.Shape)
		}
		reduce := make([]bool, len(x.Shape))
		for i := 2; i < len(reduce); i++ {
			reduce[i] = true
		}
		out, err := reduceAxes(r, x, reduce, true, red)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildEyeLike(n *ir.Node, _ *compiler) (kernel, error) {
	k := int(n.AttrInt("k", 0))
	dtAttr := ir.DataType(n.AttrInt("dtype", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) != 2 {
			return nil, fmt.Errorf("input must be 2-D, has shape %v", x.Shape)
		}
		dt := x.DType
		if dtAttr != ir.Undefined {
			dt = dtAttr
		}
		vals := make([]float64, x.NumElements())
		rows, cols := x.Shape[0], x.Shape[1]
		for i := 0; i < rows; i++ {
			if j := i + k; j >= 0 && j < cols {
				vals[i*cols+j] = 1
			}
		}
		out, err := convertData(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: vals}, dt)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
