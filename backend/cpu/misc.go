package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// f64Result stores float64 results as dt (integers truncated).
func f64Result(r *runState, vals []float64, shape []int, dt ir.DataType) (*Tensor, error) {
	src := &Tensor{DType: ir.Double, Shape: shape, Data: vals}
	if intTypes.has(dt) {
		out, err := r.alloc(dt, shape)
		if err != nil {
			return nil, err
		}
		iv := make([]int64, len(vals))
		for i, v := range vals {
			iv[i] = int64(v)
		}
		storeInts(out, iv)
		return out, nil
	}
	return convertData(r, src, dt)
}

// buildDropout is inference Dropout: Y = X and an all-true mask. With
// training_mode true and a non-zero ratio the mask is random, which this
// backend does not implement.
func buildDropout(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		if t := inputN(in, 2); t != nil {
			b, ok := t.Data.([]bool)
			if !ok || len(b) != 1 {
				return nil, fmt.Errorf("training_mode must be one bool")
			}
			ratio := 0.5
			if rt := inputN(in, 1); rt != nil {
				v, err := scalarFloat(rt)
				if err != nil {
					return nil, fmt.Errorf("ratio: %w", err)
				}
				ratio = v
			}
			if b[0] && ratio != 0 {
				return nil, fmt.Errorf("training-mode Dropout with ratio %g is not supported (random mask)", ratio)
			}
		}
		y, err := convertData(r, in[0], in[0].DType)
		if err != nil {
			return nil, err
		}
		mask := r.mustAlloc(ir.Bool, in[0].Shape)
		for i := range mask.Data.([]bool) {
			mask.Data.([]bool)[i] = true
		}
		return []*Tensor{y, mask}, nil
	}, nil
}

func buildSwish(n *ir.Node, _ *compiler) (kernel, error) {
	alpha := float64(n.AttrFloat("alpha", 1))
	return unaryFloat(func(x float64) float64 { return x * sigmoid(alpha*x) }), nil
}

// buildSwiGLU: Y = A * sigmoid(alpha*A) * B, A and B of one shape.
func buildSwiGLU(n *ir.Node, _ *compiler) (kernel, error) {
	alpha := float64(n.AttrFloat("alpha", 1))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		if !sameShape(in[0].Shape, in[1].Shape) {
			return nil, fmt.Errorf("A %v and B %v must have one shape", in[0].Shape, in[1].Shape)
		}
		return mixedFloat(r, in[0], in[1], in[0].DType, func(a, b float64) float64 { return a * sigmoid(alpha*a) * b })
	}, nil
}

func buildLpNormalization(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", -1)
	p := n.AttrInt("p", 2)
	if p != 1 && p != 2 {
		return nil, fmt.Errorf("p=%d must be 1 or 2", p)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		xv, _ := x.Float64s()
		dim, inner := x.Shape[ax], shapeSize(x.Shape[ax+1:])
		outer := shapeSize(x.Shape[:ax])
		y := make([]float64, len(xv))
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				norm := 0.0
				for j := 0; j < dim; j++ {
					v := xv[(o*dim+j)*inner+i]
					if p == 1 {
						norm += math.Abs(v)
					} else {
						norm += v * v
					}
				}
				if p == 2 {
					norm = math.Sqrt(norm)
				}
				for j := 0; j < dim; j++ {
					e := (o*dim+j)*inner + i
					if norm != 0 {
						y[e] = xv[e] / norm
					}
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

// channelStats normalizes x [N, C, ...] over the given groups of
// channels: Y = (x - mean) / sqrt(var + eps) per (n, group).
func channelStats(xv []float64, N, C, spatial, groups int, eps float64) []float64 {
	y := make([]float64, len(xv))
	cg := C / groups
	for n := 0; n < N; n++ {
		for g := 0; g < groups; g++ {
			seg := xv[(n*C+g*cg)*spatial:][:cg*spatial]
			mean := 0.0
			for _, v := range seg {
				mean += v
			}
			mean /= float64(len(seg))
			vr := 0.0
			for _, v := range seg {
				vr += (v - mean) * (v - mean)
			}
			vr /= float64(len(seg))
			inv := 1 / math.Sqrt(vr+eps)
			dst := y[(n*C+g*cg)*spatial:][:cg*spatial]
			for i, v := range seg {
				dst[i] = (v - mean) * inv
			}
		}
	}
	return y
}

// buildInstanceGroupNorm covers InstanceNormalization (one group per
// channel) and GroupNormalization (scale and bias per channel from opset
// 21, per group before).
func buildInstanceGroupNorm(n *ir.Node, c *compiler) (kernel, error) {
	eps := float64(n.AttrFloat("epsilon", 1e-5))
	groupsAttr := int(n.AttrInt("num_groups", 0))
	isGroup := n.Op == "GroupNormalization"
	if isGroup && groupsAttr <= 0 {
		return nil, fmt.Errorf("num_groups must be positive")
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		x, scale, bias := in[0], in[1], in[2]
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("X must be [N, C, ...], has shape %v", x.Shape)
		}
		N, C := x.Shape[0], x.Shape[1]
		spatial := shapeSize(x.Shape[2:])
		groups := C
		if isGroup {
			groups = groupsAttr
		}
		if groups == 0 || C%groups != 0 {
			return nil, fmt.Errorf("%d channels are not divisible into %d groups", C, groups)
		}
		perGroup := scale.NumElements() == groups && groups != C
		if !perGroup && scale.NumElements() != C || bias.NumElements() != scale.NumElements() {
			return nil, fmt.Errorf("scale %v and bias %v must have %d (or %d) values", scale.Shape, bias.Shape, C, groups)
		}
		xv, _ := x.Float64s()
		sv, _ := scale.Float64s()
		bv, _ := bias.Float64s()
		y := channelStats(xv, N, C, spatial, groups, eps)
		for e := range y {
			ch := (e / max(spatial, 1)) % C
			if perGroup {
				ch /= C / groups
			}
			y[e] = y[e]*sv[ch] + bv[ch]
		}
		out, err := f64Result(r, y, x.Shape, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildBatchNorm: inference uses the running statistics; training mode
// normalizes with the batch statistics and also returns the updated
// running mean and variance.
func buildBatchNorm(n *ir.Node, _ *compiler) (kernel, error) {
	eps := float64(n.AttrFloat("epsilon", 1e-5))
	momentum := float64(n.AttrFloat("momentum", 0.9))
	training := n.AttrInt("training_mode", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 5); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("X must be [N, C, ...], has shape %v", x.Shape)
		}
		N, C := x.Shape[0], x.Shape[1]
		spatial := shapeSize(x.Shape[2:])
		var p [4][]float64
		for i := range p {
			if in[i+1].NumElements() != C {
				return nil, fmt.Errorf("input %d has %d values, want %d", i+1, in[i+1].NumElements(), C)
			}
			p[i], _ = in[i+1].Float64s()
		}
		scale, bias, mean, variance := p[0], p[1], p[2], p[3]
		xv, _ := x.Float64s()
		useMean, useVar := mean, variance
		var runMean, runVar []float64
		if training {
			useMean, useVar = make([]float64, C), make([]float64, C)
			cnt := float64(N * spatial)
			for c := 0; c < C; c++ {
				s := 0.0
				for nn := 0; nn < N; nn++ {
					for _, v := range xv[(nn*C+c)*spatial:][:spatial] {
						s += v
					}
				}
				m := s / cnt
				vr := 0.0
				for nn := 0; nn < N; nn++ {
					for _, v := range xv[(nn*C+c)*spatial:][:spatial] {
						vr += (v - m) * (v - m)
					}
				}
				useMean[c], useVar[c] = m, vr/cnt
			}
			runMean, runVar = make([]float64, C), make([]float64, C)
			for c := 0; c < C; c++ {
				runMean[c] = mean[c]*momentum + useMean[c]*(1-momentum)
				runVar[c] = variance[c]*momentum + useVar[c]*(1-momentum)
			}
		}
		y := make([]float64, len(xv))
		for e, v := range xv {
			c := (e / max(spatial, 1)) % C
			y[e] = (v-useMean[c])/math.Sqrt(useVar[c]+eps)*scale[c] + bias[c]
		}
		out, err := f64Result(r, y, x.Shape, x.DType)
		if err != nil {
			return nil, err
		}
		outs := []*Tensor{out}
		if training {
			rm, err := f64Result(r, runMean, []int{C}, in[3].DType)
			if err != nil {
				return nil, err
			}
			rv, err := f64Result(r, runVar, []int{C}, in[4].DType)
			if err != nil {
				return nil, err
			}
			outs = append(outs, rm, rv)
		}
		return outs, nil
	}, nil
}

// buildMVN: (X - mean) / (std + 1e-9) over axes (default 0, 2, 3), as
// the op's function body computes it.
func buildMVN(n *ir.Node, _ *compiler) (kernel, error) {
	axes, ok := n.AttrInts("axes")
	if !ok {
		axes = []int64{0, 2, 3}
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		reduce := make([]bool, len(x.Shape))
		for _, a := range axes {
			ax, err := normAxis(a, len(x.Shape))
			if err != nil {
				return nil, err
			}
			reduce[ax] = true
		}
		xd := &Tensor{DType: ir.Double, Shape: x.Shape}
		xd.Data, _ = x.Float64s()
		meanT, err := reduceAxes(r, xd, reduce, true, reducers["ReduceMean"])
		if err != nil {
			return nil, err
		}
		sq := slices.Clone(xd.Data.([]float64))
		for i := range sq {
			sq[i] *= sq[i]
		}
		mean2T, err := reduceAxes(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: sq}, reduce, true, reducers["ReduceMean"])
		if err != nil {
			return nil, err
		}
		mv, m2 := meanT.Data.([]float64), mean2T.Data.([]float64)
		idx := broadcastIndex(meanT.Shape, x.Shape)
		xv := xd.Data.([]float64)
		y := make([]float64, len(xv))
		for e := range y {
			m := mv[idx[e]]
			std := math.Sqrt(m2[idx[e]] - m*m)
			y[e] = (xv[e] - m) / (std + 1e-9)
		}
		out, err := f64Result(r, y, x.Shape, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildDepthSpace covers DepthToSpace (DCR and CRD) and SpaceToDepth on
// [N, C, H, W].
func buildDepthSpace(n *ir.Node, _ *compiler) (kernel, error) {
	bs := int(n.AttrInt("blocksize", 0))
	if bs <= 0 {
		return nil, fmt.Errorf("blocksize must be positive")
	}
	mode := n.AttrString("mode", "DCR")
	if mode != "DCR" && mode != "CRD" {
		return nil, fmt.Errorf("mode %q must be DCR or CRD", mode)
	}
	toSpace := n.Op == "DepthToSpace"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) != 4 {
			return nil, fmt.Errorf("input must be 4-D, has shape %v", x.Shape)
		}
		N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		if toSpace {
			if C%(bs*bs) != 0 {
				return nil, fmt.Errorf("channels %d are not divisible by blocksize^2 %d", C, bs*bs)
			}
			c := C / (bs * bs)
			var tmp *Tensor
			if mode == "DCR" {
				tmp = transpose(r, view(x, []int{N, bs, bs, c, H, W}), []int{0, 3, 4, 1, 5, 2})
			} else {
				tmp = transpose(r, view(x, []int{N, c, bs, bs, H, W}), []int{0, 1, 4, 2, 5, 3})
			}
			return []*Tensor{view(tmp, []int{N, c, H * bs, W * bs})}, nil
		}
		if H%bs != 0 || W%bs != 0 {
			return nil, fmt.Errorf("spatial size %dx%d is not divisible by blocksize %d", H, W, bs)
		}
		tmp := transpose(r, view(x, []int{N, C, H / bs, bs, W / bs, bs}), []int{0, 3, 5, 1, 2, 4})
		return []*Tensor{view(tmp, []int{N, C * bs * bs, H / bs, W / bs})}, nil
	}, nil
}

func buildCompress(n *ir.Node, _ *compiler) (kernel, error) {
	axisAttr := n.Attr("axis")
	axis := n.AttrInt("axis", 0)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		cond, ok := in[1].Data.([]bool)
		if !ok || len(in[1].Shape) != 1 {
			return nil, fmt.Errorf("condition must be a 1-D bool tensor")
		}
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
		dim := shape[ax]
		var keep []int
		for i, c := range cond {
			if c {
				if i >= dim {
					return nil, fmt.Errorf("condition selects index %d beyond axis size %d", i, dim)
				}
				keep = append(keep, i)
			}
		}
		outShape := slices.Clone(shape)
		outShape[ax] = len(keep)
		outer, inner := shapeSize(shape[:ax]), shapeSize(shape[ax+1:])
		idx := make([]int, 0, shapeSize(outShape))
		for o := 0; o < outer; o++ {
			for _, j := range keep {
				for i := 0; i < inner; i++ {
					idx = append(idx, (o*dim+j)*inner+i)
				}
			}
		}
		return []*Tensor{take(r, x, outShape, idx)}, nil
	}, nil
}

func buildReverseSequence(n *ir.Node, _ *compiler) (kernel, error) {
	batchAxis := int(n.AttrInt("batch_axis", 1))
	timeAxis := int(n.AttrInt("time_axis", 0))
	if batchAxis+timeAxis != 1 || batchAxis < 0 || timeAxis < 0 {
		return nil, fmt.Errorf("batch_axis %d and time_axis %d must be 0 and 1", batchAxis, timeAxis)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		lens, err := intValues(in[1])
		if err != nil || len(x.Shape) < 2 || len(lens) != x.Shape[batchAxis] {
			return nil, fmt.Errorf("sequence_lens must hold one integer per batch entry")
		}
		st := strides(x.Shape)
		idx := make([]int, x.NumElements())
		var bad error
		forEachIndex(x.Shape, func(k int, pos []int) {
			b, t := pos[batchAxis], pos[timeAxis]
			l := int(lens[b])
			if l < 0 || l > x.Shape[timeAxis] {
				bad = fmt.Errorf("sequence length %d is out of range", l)
				return
			}
			src := k
			if t < l {
				src += (l - 1 - 2*t) * st[timeAxis]
			}
			idx[k] = src
		})
		if bad != nil {
			return nil, bad
		}
		return []*Tensor{take(r, x, x.Shape, idx)}, nil
	}, nil
}

func buildNonZero(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		v, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("input must be numeric or bool")
		}
		var coords [][]int
		forEachIndex(x.Shape, func(k int, pos []int) {
			if v[k] != 0 {
				coords = append(coords, slices.Clone(pos))
			}
		})
		rank := len(x.Shape)
		out := r.mustAlloc(ir.Int64, []int{rank, len(coords)})
		o := out.Data.([]int64)
		for j, c := range coords {
			for a := 0; a < rank; a++ {
				o[a*len(coords)+j] = int64(c[a])
			}
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildOneHot(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", -1)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		ind, ok := in[0].Float64s()
		if !ok {
			return nil, fmt.Errorf("indices must be numeric")
		}
		depthF, err := scalarFloat(in[1])
		if err != nil {
			return nil, fmt.Errorf("depth: %w", err)
		}
		depth := int(depthF)
		if depth <= 0 {
			return nil, fmt.Errorf("depth %d must be positive", depth)
		}
		vals := in[2]
		if vals.NumElements() != 2 {
			return nil, fmt.Errorf("values must hold [off, on]")
		}
		rank := len(in[0].Shape) + 1
		ax, err := normAxis(axis, rank)
		if err != nil {
			return nil, err
		}
		shape := slices.Insert(slices.Clone(in[0].Shape), ax, depth)
		outer, inner := shapeSize(in[0].Shape[:ax]), shapeSize(in[0].Shape[ax:])
		idx := make([]int, shapeSize(shape))
		for o := 0; o < outer; o++ {
			for d := 0; d < depth; d++ {
				for i := 0; i < inner; i++ {
					v := int(ind[o*inner+i])
					if v < 0 {
						v += depth
					}
					if v == d {
						idx[(o*depth+d)*inner+i] = 1
					}
				}
			}
		}
		return []*Tensor{take(r, vals, shape, idx)}, nil
	}, nil
}

// buildWindow covers HannWindow, HammingWindow and BlackmanWindow.
func buildWindow(n *ir.Node, _ *compiler) (kernel, error) {
	periodic := n.AttrInt("periodic", 1) != 0
	dt := ir.DataType(n.AttrInt("output_datatype", int64(ir.Float)))
	op := n.Op
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		sz, err := scalarFloat(in[0])
		if err != nil || sz < 0 {
			return nil, fmt.Errorf("size must be a non-negative scalar")
		}
		size := int(sz)
		N := float64(size)
		if !periodic {
			N--
		}
		y := make([]float64, size)
		for i := range y {
			x := 2 * math.Pi * float64(i) / N
			switch op {
			case "HannWindow":
				y[i] = 0.5 - 0.5*math.Cos(x)
			case "HammingWindow":
				y[i] = 25.0/46 - (1-25.0/46)*math.Cos(x)
			default:
				y[i] = 0.42 - 0.5*math.Cos(x) + 0.08*math.Cos(2*x)
			}
		}
		out, err := f64Result(r, y, []int{size}, dt)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildLoss covers NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
// (which takes LogSoftmax over axis 1 first and can return it).
func buildLoss(n *ir.Node, _ *compiler) (kernel, error) {
	reduction := n.AttrString("reduction", "mean")
	if reduction != "mean" && reduction != "sum" && reduction != "none" {
		return nil, fmt.Errorf("reduction %q is not supported", reduction)
	}
	ignore, hasIgnore := n.AttrInt("ignore_index", 0), n.Attr("ignore_index") != nil
	sce := n.Op == "SoftmaxCrossEntropyLoss"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, target, weight := in[0], in[1], inputN(in, 2)
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("input must be [N, C, ...], has shape %v", x.Shape)
		}
		N, C := x.Shape[0], x.Shape[1]
		D := shapeSize(x.Shape[2:])
		tv, err := intValues(target)
		if err != nil || len(tv) != N*D {
			return nil, fmt.Errorf("target must hold %d integers", N*D)
		}
		xv, _ := x.Float64s()
		if sce { // log-softmax over the class axis
			lp := make([]float64, len(xv))
			for nn := 0; nn < N; nn++ {
				for d := 0; d < D; d++ {
					mx := math.Inf(-1)
					for c := 0; c < C; c++ {
						mx = math.Max(mx, xv[(nn*C+c)*D+d])
					}
					s := 0.0
					for c := 0; c < C; c++ {
						s += math.Exp(xv[(nn*C+c)*D+d] - mx)
					}
					for c := 0; c < C; c++ {
						lp[(nn*C+c)*D+d] = xv[(nn*C+c)*D+d] - mx - math.Log(s)
					}
				}
			}
			xv = lp
		}
		var wv []float64
		if weight != nil {
			wv, _ = weight.Float64s()
			if len(wv) != C {
				return nil, fmt.Errorf("weight must hold %d values", C)
			}
		}
		loss := make([]float64, N*D)
		wsum := 0.0
		for nn := 0; nn < N; nn++ {
			for d := 0; d < D; d++ {
				t := tv[nn*D+d]
				if hasIgnore && t == ignore {
					continue
				}
				if t < 0 || t >= int64(C) {
					return nil, fmt.Errorf("target %d is out of range for %d classes", t, C)
				}
				w := 1.0
				if wv != nil {
					w = wv[t]
				}
				loss[nn*D+d] = -xv[(nn*C+int(t))*D+d] * w
				wsum += w
			}
		}
		var res []float64
		var shape []int
		switch reduction {
		case "none":
			res, shape = loss, target.Shape
		case "sum":
			s := 0.0
			for _, v := range loss {
				s += v
			}
			res = []float64{s}
		default:
			s := 0.0
			for _, v := range loss {
				s += v
			}
			if wv != nil || hasIgnore {
				res = []float64{s / wsum}
			} else {
				res = []float64{s / float64(len(loss))}
			}
		}
		out, err := f64Result(r, res, shape, x.DType)
		if err != nil {
			return nil, err
		}
		outs := []*Tensor{out}
		if sce {
			lp, err := f64Result(r, xv, x.Shape, x.DType)
			if err != nil {
				return nil, err
			}
			outs = append(outs, lp)
		}
		return outs, nil
	}, nil
}

// buildDet computes determinants of [..., M, M] by LU decomposition with
// partial pivoting in float64.
func buildDet(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		rank := len(x.Shape)
		if rank < 2 || x.Shape[rank-1] != x.Shape[rank-2] {
			return nil, fmt.Errorf("input must be [..., M, M], has shape %v", x.Shape)
		}
		m := x.Shape[rank-1]
		xv, _ := x.Float64s()
		batch := shapeSize(x.Shape[:rank-2])
		res := make([]float64, batch)
		a := make([]float64, m*m)
		for b := range res {
			copy(a, xv[b*m*m:])
			det := 1.0
			for c := 0; c < m; c++ {
				p := c
				for i := c + 1; i < m; i++ {
					if math.Abs(a[i*m+c]) > math.Abs(a[p*m+c]) {
						p = i
					}
				}
				if a[p*m+c] == 0 {
					det = 0
					break
				}
				if p != c {
					for j := 0; j < m; j++ {
						a[p*m+j], a[c*m+j] = a[c*m+j], a[p*m+j]
					}
					det = -det
				}
				det *= a[c*m+c]
				for i := c + 1; i < m; i++ {
					f := a[i*m+c] / a[c*m+c]
					for j := c; j < m; j++ {
						a[i*m+j] -= f * a[c*m+j]
					}
				}
			}
			res[b] = det
		}
		out, err := f64Result(r, res, slices.Clone(x.Shape[:rank-2]), x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildBitCast reinterprets the bits of each element as another type of
// the same width.
func buildBitCast(n *ir.Node, _ *compiler) (kernel, error) {
	to := ir.DataType(n.AttrInt("to", 0))
	if _, err := makeData(to, 0); err != nil || to == ir.String {
		return nil, fmt.Errorf("BitCast to %v is not supported", to)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.DType.Bits() != to.Bits() || x.DType == ir.String {
			return nil, fmt.Errorf("BitCast from %v (%d bits) to %v (%d bits): widths differ", x.DType, x.DType.Bits(), to, to.Bits())
		}
		raw, err := encodeRaw(x)
		if err != nil {
			return nil, err
		}
		out, err := r.alloc(to, x.Shape)
		if err != nil {
			return nil, err
		}
		if err := decodeRaw(out, raw); err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
