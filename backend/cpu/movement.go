package cpu

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/tfc-compiler/tfc/ir"
)

// forEachIndex calls f for every position of shape in row-major order with
// its linear index k. pos must not be retained.
func forEachIndex(shape []int, f func(k int, pos []int)) {
	n := shapeSize(shape)
	if n == 0 {
		return
	}
	pos := make([]int, len(shape))
	for k := 0; k < n; k++ {
		f(k, pos)
		for a := len(shape) - 1; a >= 0; a-- {
			pos[a]++
			if pos[a] < shape[a] {
				break
			}
			pos[a] = 0
		}
	}
}

func buildIdentity(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		if in[0].IsSequence() {
			return []*Tensor{NewSequence(slices.Clone(in[0].Elements()))}, nil
		}
		if in[0].IsOptional() {
			v, _ := in[0].OptionalValue()
			return []*Tensor{NewOptional(v)}, nil
		}
		return []*Tensor{view(in[0], slices.Clone(in[0].Shape))}, nil
	}, nil
}

// reshapeTarget resolves a Reshape shape operand against the input shape
// (0 copies the input dimension unless allowzero, -1 is inferred).
func reshapeTarget(in []int, target []int64, allowZero bool) ([]int, error) {
	out := make([]int, len(target))
	infer := -1
	known := 1
	for i, d := range target {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", target)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v copies dimension %d of a rank-%d input", target, i, len(in))
			}
			out[i] = in[i]
		case d < 0:
			return nil, fmt.Errorf("shape %v has invalid dimension %d", target, d)
		default:
			out[i] = int(d)
		}
		known *= out[i]
	}
	total := shapeSize(in)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("cannot reshape %v to %v", in, target)
		}
		out[infer] = total / known
	} else if known != total {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", in, total, target)
	}
	return out, nil
}

func buildReshape(n *ir.Node, c *compiler) (kernel, error) {
	allowZero := n.AttrInt("allowzero", 0) != 0
	attrShape, hasAttr := n.AttrInts("shape") // opset < 5
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		target := attrShape
		if !hasAttr || inputN(in, 1) != nil {
			var err error
			if target, err = intValues(inputN(in, 1)); err != nil {
				return nil, fmt.Errorf("shape: %w", err)
			}
		}
		shape, err := reshapeTarget(in[0].Shape, target, allowZero)
		if err != nil {
			return nil, err
		}
		return []*Tensor{view(in[0], shape)}, nil
	}, nil
}

func buildFlatten(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 1)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		a := axis
		if a < 0 {
			a += int64(len(x.Shape))
		}
		if a < 0 || a > int64(len(x.Shape)) {
			return nil, fmt.Errorf("axis %d is out of range for rank %d", axis, len(x.Shape))
		}
		return []*Tensor{view(x, []int{shapeSize(x.Shape[:a]), shapeSize(x.Shape[a:])})}, nil
	}, nil
}

// axesOperand reads axes from input i (newer opsets) or the "axes"
// attribute (older ones); ok is false when neither is given.
func axesOperand(n *ir.Node, in []*Tensor, i int) ([]int64, bool, error) {
	if t := inputN(in, i); t != nil {
		v, err := intValues(t)
		return v, true, err
	}
	if v, ok := n.AttrInts("axes"); ok {
		return v, true, nil
	}
	return nil, false, nil
}

func buildSqueeze(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, given, err := axesOperand(n, in, 1)
		if err != nil {
			return nil, err
		}
		drop := make([]bool, len(x.Shape))
		if !given {
			for i, d := range x.Shape {
				drop[i] = d == 1
			}
		}
		for _, a := range axes {
			ax, err := normAxis(a, len(x.Shape))
			if err != nil {
				return nil, err
			}
			if x.Shape[ax] != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d of size %d", a, x.Shape[ax])
			}
			drop[ax] = true
		}
		var shape []int
		for i, d := range x.Shape {
			if !drop[i] {
				shape = append(shape, d)
			}
		}
		return []*Tensor{view(x, shape)}, nil
	}, nil
}

func buildUnsqueeze(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, given, err := axesOperand(n, in, 1)
		if err != nil {
			return nil, err
		}
		if !given {
			return nil, fmt.Errorf("axes are required")
		}
		rank := len(x.Shape) + len(axes)
		insert := make([]bool, rank)
		for _, a := range axes {
			ax, err := normAxis(a, rank)
			if err != nil {
				return nil, err
			}
			if insert[ax] {
				return nil, fmt.Errorf("axis %d repeated", a)
			}
			insert[ax] = true
		}
		shape := make([]int, rank)
		j := 0
		for i := range shape {
			if insert[i] {
				shape[i] = 1
			} else {
				shape[i] = x.Shape[j]
				j++
			}
		}
		return []*Tensor{view(x, shape)}, nil
	}, nil
}

func buildTranspose(n *ir.Node, _ *compiler) (kernel, error) {
	permAttr, hasPerm := n.AttrInts("perm")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		rank := len(x.Shape)
		perm := make([]int, rank)
		if hasPerm {
			if len(permAttr) != rank {
				return nil, fmt.Errorf("perm %v does not match rank %d", permAttr, rank)
			}
			seen := make([]bool, rank)
			for i, p := range permAttr {
				ax, err := normAxis(p, rank)
				if err != nil || seen[ax] {
					return nil, fmt.Errorf("perm %v is not a permutation", permAttr)
				}
				seen[ax] = true
				perm[i] = ax
			}
		} else {
			for i := range perm {
				perm[i] = rank - 1 - i
			}
		}
		return []*Tensor{transpose(r, x, perm)}, nil
	}, nil
}

// transpose permutes x: out axis i is input axis perm[i]. It runs the
// copy-based fast path (fast_transpose.go) and falls back to the
// reference for data the fast path does not know.
func transpose(r *runState, x *Tensor, perm []int) *Tensor {
	if out := transposeFast(r, x, perm); out != nil {
		return out
	}
	return transposeRef(r, x, perm)
}

// transposeRef is the reference permutation, one gathered index per
// element: the oracle for transposeFast.
func transposeRef(r *runState, x *Tensor, perm []int) *Tensor {
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	st := strides(x.Shape)
	idx := make([]int, shapeSize(shape))
	forEachIndex(shape, func(k int, pos []int) {
		off := 0
		for i, p := range perm {
			off += pos[i] * st[p]
		}
		idx[k] = off
	})
	return take(r, x, shape, idx)
}

func buildConcat(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		var parts []*Tensor
		for _, t := range in {
			if t != nil {
				parts = append(parts, t)
			}
		}
		if len(parts) == 0 {
			return nil, fmt.Errorf("needs at least one input")
		}
		out, err := concat(r, parts, axis)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

func concat(r *runState, parts []*Tensor, axis int64) (*Tensor, error) {
	first := parts[0]
	rank := len(first.Shape)
	ax, err := normAxis(axis, rank)
	if err != nil {
		return nil, err
	}
	shape := slices.Clone(first.Shape)
	shape[ax] = 0
	for i, p := range parts {
		if p.DType != first.DType || len(p.Shape) != rank {
			return nil, fmt.Errorf("input %d is %v, input 0 is %v", i, p, first)
		}
		for a := range p.Shape {
			if a != ax && p.Shape[a] != first.Shape[a] {
				return nil, fmt.Errorf("input %d has shape %v, input 0 has %v (concat axis %d)", i, p.Shape, first.Shape, ax)
			}
		}
		shape[ax] += p.Shape[ax]
	}
	out, err := r.alloc(first.DType, shape)
	if err != nil {
		return nil, err
	}
	outer := shapeSize(shape[:ax])
	inner := shapeSize(shape[ax+1:])
	rowOut := shape[ax] * inner
	off := 0
	for _, p := range parts {
		row := p.Shape[ax] * inner
		for o := 0; o < outer; o++ {
			copyElems(out.Data, p.Data, o*rowOut+off, o*row, row)
		}
		off += row
	}
	return out, nil
}

func buildSplit(n *ir.Node, c *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	attrSplit, hasAttr := n.AttrInts("split")
	numOutputs := int(n.AttrInt("num_outputs", 0))
	nOut := len(n.Outputs)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		var sizes []int64
		switch {
		case inputN(in, 1) != nil:
			if sizes, err = intValues(in[1]); err != nil {
				return nil, fmt.Errorf("split: %w", err)
			}
		case hasAttr:
			sizes = attrSplit
		default:
			parts := nOut
			if numOutputs > 0 {
				parts = numOutputs
			}
			chunk := (dim + parts - 1) / parts
			for i, left := 0, dim; i < parts; i++ {
				s := min(chunk, left)
				sizes = append(sizes, int64(s))
				left -= s
			}
		}
		if len(sizes) != nOut {
			return nil, fmt.Errorf("split sizes %v do not match %d outputs", sizes, nOut)
		}
		total := int64(0)
		for _, s := range sizes {
			if s < 0 {
				return nil, fmt.Errorf("negative split size in %v", sizes)
			}
			total += s
		}
		if total != int64(dim) {
			return nil, fmt.Errorf("split sizes %v do not add up to dimension %d", sizes, dim)
		}
		outer := shapeSize(x.Shape[:ax])
		inner := shapeSize(x.Shape[ax+1:])
		outs := make([]*Tensor, nOut)
		off := 0
		for i, s := range sizes {
			shape := slices.Clone(x.Shape)
			shape[ax] = int(s)
			o, err := r.alloc(x.DType, shape)
			if err != nil {
				return nil, err
			}
			row := int(s) * inner
			for k := 0; k < outer; k++ {
				copyElems(o.Data, x.Data, k*row, k*dim*inner+off, row)
			}
			off += row
			outs[i] = o
		}
		return outs, nil
	}, nil
}

func buildSlice(n *ir.Node, c *compiler) (kernel, error) {
	attrStarts, oldStyle := n.AttrInts("starts") // opset < 10
	attrEnds, _ := n.AttrInts("ends")
	attrAxes, _ := n.AttrInts("axes")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		var starts, ends, axes, steps []int64
		var err error
		if oldStyle {
			starts, ends, axes = attrStarts, attrEnds, attrAxes
		} else {
			if err := needInputs(in, 3); err != nil {
				return nil, err
			}
			if starts, err = intValues(in[1]); err != nil {
				return nil, fmt.Errorf("starts: %w", err)
			}
			if ends, err = intValues(in[2]); err != nil {
				return nil, fmt.Errorf("ends: %w", err)
			}
			if t := inputN(in, 3); t != nil {
				if axes, err = intValues(t); err != nil {
					return nil, fmt.Errorf("axes: %w", err)
				}
			}
			if t := inputN(in, 4); t != nil {
				if steps, err = intValues(t); err != nil {
					return nil, fmt.Errorf("steps: %w", err)
				}
			}
		}
		rank := len(x.Shape)
		if axes == nil {
			for i := range starts {
				axes = append(axes, int64(i))
			}
		}
		if len(starts) != len(ends) || len(axes) != len(starts) || (steps != nil && len(steps) != len(starts)) {
			return nil, fmt.Errorf("starts %v, ends %v, axes %v and steps %v differ in length", starts, ends, axes, steps)
		}
		begin := make([]int, rank)
		step := make([]int, rank)
		shape := slices.Clone(x.Shape)
		for i := range step {
			step[i] = 1
		}
		for i, a := range axes {
			ax, err := normAxis(a, rank)
			if err != nil {
				return nil, err
			}
			st := int64(1)
			if steps != nil {
				st = steps[i]
			}
			if st == 0 {
				return nil, fmt.Errorf("step 0 on axis %d", a)
			}
			b, cnt := sliceRange(starts[i], ends[i], st, int64(x.Shape[ax]))
			begin[ax], step[ax], shape[ax] = int(b), int(st), int(cnt)
		}
		if out := sliceFast(r, x, shape, begin, step); out != nil {
			return []*Tensor{out}, nil
		}
		st := strides(x.Shape)
		idx := make([]int, shapeSize(shape))
		forEachIndex(shape, func(k int, pos []int) {
			off := 0
			for a := range pos {
				off += (begin[a] + pos[a]*step[a]) * st[a]
			}
			idx[k] = off
		})
		return []*Tensor{take(r, x, shape, idx)}, nil
	}, nil
}

// sliceRange clamps start and end as ONNX Slice does and returns the first
// index and the number of elements.
func sliceRange(start, end, step, dim int64) (int64, int64) {
	clampIdx := func(v, lo, hi int64) int64 {
		if v < 0 {
			v += dim
		}
		return max(lo, min(hi, v))
	}
	if step > 0 {
		s := clampIdx(start, 0, dim)
		e := clampIdx(end, 0, dim)
		if e <= s {
			return s, 0
		}
		return s, (e - s + step - 1) / step
	}
	s := clampIdx(start, -1, dim-1)
	e := clampIdx(end, -1, dim-1)
	if start == math.MinInt64 {
		s = -1
	}
	if end < -dim {
		e = -1
	}
	if e >= s {
		return s, 0
	}
	return s, (s - e + (-step) - 1) / (-step)
}

func buildPad(n *ir.Node, c *compiler) (kernel, error) {
	mode := n.AttrString("mode", "constant")
	switch mode {
	case "constant", "reflect", "edge", "wrap":
	default:
		return nil, fmt.Errorf("Pad mode %q is not supported", mode)
	}
	attrPads, oldStyle := n.AttrInts("pads") // opset < 11
	attrValue := float64(n.AttrFloat("value", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		rank := len(x.Shape)
		pads := attrPads
		value := attrValue
		var err error
		if !oldStyle {
			if pads, err = intValues(inputN(in, 1)); err != nil {
				return nil, fmt.Errorf("pads: %w", err)
			}
			if t := inputN(in, 2); t != nil && t.NumElements() > 0 {
				if value, err = scalarFloat(t); err != nil {
					return nil, fmt.Errorf("constant_value: %w", err)
				}
			}
		}
		axes := make([]int, 0, rank)
		if t := inputN(in, 3); t != nil {
			av, err := intValues(t)
			if err != nil {
				return nil, fmt.Errorf("axes: %w", err)
			}
			for _, a := range av {
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
		if len(pads) != 2*len(axes) {
			return nil, fmt.Errorf("pads %v need %d values", pads, 2*len(axes))
		}
		before := make([]int, rank)
		shape := slices.Clone(x.Shape)
		for i, ax := range axes {
			b, e := int(pads[i]), int(pads[i+len(axes)])
			before[ax] = b
			shape[ax] += b + e
			if shape[ax] < 0 {
				return nil, fmt.Errorf("pads %v make axis %d negative", pads, ax)
			}
		}
		st := strides(x.Shape)
		idx := make([]int, shapeSize(shape))
		forEachIndex(shape, func(k int, pos []int) {
			off := 0
			for a := range pos {
				p := pos[a] - before[a]
				d := x.Shape[a]
				if p < 0 || p >= d {
					switch mode {
					case "constant":
						idx[k] = -1
						return
					case "edge":
						p = max(0, min(d-1, p))
					case "wrap":
						p = ((p % d) + d) % d
					case "reflect":
						if d == 1 {
							p = 0
						} else {
							period := 2 * (d - 1)
							p = ((p % period) + period) % period
							if p >= d {
								p = period - p
							}
						}
					}
				}
				off += p * st[a]
			}
			idx[k] = off
		})
		if mode != "constant" && x.NumElements() == 0 && len(idx) > 0 {
			return nil, fmt.Errorf("cannot pad an empty tensor in mode %q", mode)
		}
		out := take(r, x, shape, idx)
		if mode == "constant" && value != 0 {
			fill := &Tensor{DType: ir.Double, Shape: []int{1}, Data: []float64{value}}
			fv, err := convertData(r, fill, x.DType)
			if err != nil {
				return nil, err
			}
			for k, i := range idx {
				if i < 0 {
					copyElems(out.Data, fv.Data, k, 0, 1)
				}
			}
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildTile(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		reps, err := intValues(in[1])
		if err != nil {
			return nil, err
		}
		if len(reps) != len(x.Shape) {
			return nil, fmt.Errorf("repeats %v do not match rank %d", reps, len(x.Shape))
		}
		shape := make([]int, len(reps))
		for i, rep := range reps {
			if rep < 0 {
				return nil, fmt.Errorf("negative repeat %d", rep)
			}
			shape[i] = x.Shape[i] * int(rep)
		}
		st := strides(x.Shape)
		idx := make([]int, shapeSize(shape))
		forEachIndex(shape, func(k int, pos []int) {
			off := 0
			for a, p := range pos {
				off += (p % x.Shape[a]) * st[a]
			}
			idx[k] = off
		})
		return []*Tensor{take(r, x, shape, idx)}, nil
	}, nil
}

func buildExpand(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		dims, err := intValues(in[1])
		if err != nil {
			return nil, err
		}
		target, err := toShape(dims)
		if err != nil {
			return nil, err
		}
		shape, err := broadcastShapes(in[0].Shape, target)
		if err != nil {
			return nil, err
		}
		if !fastKernels {
			return []*Tensor{take(r, in[0], shape, broadcastIndex(in[0].Shape, shape))}, nil
		}
		out, err := r.alloc(in[0].DType, shape)
		if err != nil {
			return nil, err
		}
		if err := expandFast(r, in[0], out); err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildShape(n *ir.Node, _ *compiler) (kernel, error) {
	start := n.AttrInt("start", 0)
	end, hasEnd := int64(0), n.Attr("end") != nil
	if hasEnd {
		end = n.AttrInt("end", 0)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		rank := int64(len(in[0].Shape))
		clampDim := func(v int64) int64 {
			if v < 0 {
				v += rank
			}
			return max(0, min(rank, v))
		}
		s, e := clampDim(start), rank
		if hasEnd {
			e = clampDim(end)
		}
		var dims []int64
		for i := s; i < e; i++ {
			dims = append(dims, int64(in[0].Shape[i]))
		}
		out := r.mustAlloc(ir.Int64, []int{len(dims)})
		copy(out.Data.([]int64), dims)
		return []*Tensor{out}, nil
	}, nil
}

func buildSize(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		out := r.mustAlloc(ir.Int64, nil)
		out.Data.([]int64)[0] = int64(in[0].NumElements())
		return []*Tensor{out}, nil
	}, nil
}

func buildConstantOfShape(n *ir.Node, _ *compiler) (kernel, error) {
	value := &Tensor{DType: ir.Float, Shape: []int{1}, Data: []float32{0}}
	if a := n.Attr("value"); a != nil {
		if a.Type != ir.AttrTensor || a.T == nil {
			return nil, fmt.Errorf("attribute value must be a tensor")
		}
		v, err := FromIR(a.T)
		if err != nil {
			return nil, fmt.Errorf("attribute value: %w", err)
		}
		if v.NumElements() != 1 {
			return nil, fmt.Errorf("attribute value must have one element, has %d", v.NumElements())
		}
		value = v
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		dims, err := intValues(in[0])
		if err != nil {
			return nil, err
		}
		shape, err := toShape(dims)
		if err != nil {
			return nil, err
		}
		idx := make([]int, shapeSize(shape)) // all zeros: element 0 of value
		return []*Tensor{take(r, value, shape, idx)}, nil
	}, nil
}

func buildConstant(n *ir.Node, _ *compiler) (kernel, error) {
	var t *Tensor
	var err error
	for _, a := range n.Attrs {
		switch a.Name {
		case "value":
			t, err = FromIR(a.T)
		case "value_float":
			t = &Tensor{DType: ir.Float, Data: []float32{a.F}}
		case "value_floats":
			t = &Tensor{DType: ir.Float, Shape: []int{len(a.Floats)}, Data: slices.Clone(a.Floats)}
		case "value_int":
			t = &Tensor{DType: ir.Int64, Data: []int64{a.I}}
		case "value_ints":
			t = &Tensor{DType: ir.Int64, Shape: []int{len(a.Ints)}, Data: slices.Clone(a.Ints)}
		case "value_string":
			t = &Tensor{DType: ir.String, Data: []string{string(a.S)}}
		case "value_strings":
			s := make([]string, len(a.Strings))
			for i, b := range a.Strings {
				s[i] = string(b)
			}
			t = &Tensor{DType: ir.String, Shape: []int{len(s)}, Data: s}
		default:
			return nil, fmt.Errorf("Constant attribute %q is not supported", a.Name)
		}
	}
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("Constant has no value attribute")
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		return []*Tensor{t}, nil // never pooled: the runtime only pools what it allocated
	}, nil
}

func buildRange(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		dt := in[0].DType
		for _, t := range in[:3] {
			if t.NumElements() != 1 || t.DType != dt {
				return nil, fmt.Errorf("start, limit and delta must be scalars of one type, got %v, %v, %v", in[0], in[1], in[2])
			}
		}
		if intTypes.has(dt) {
			s, _ := intValues(in[0])
			l, _ := intValues(in[1])
			d, _ := intValues(in[2])
			if d[0] == 0 {
				return nil, fmt.Errorf("delta is zero")
			}
			cnt := max(0, int64(math.Ceil(float64(l[0]-s[0])/float64(d[0]))))
			vals := make([]int64, cnt)
			for i := range vals {
				vals[i] = s[0] + int64(i)*d[0]
			}
			out, err := r.alloc(dt, []int{int(cnt)})
			if err != nil {
				return nil, err
			}
			storeInts(out, vals)
			return []*Tensor{out}, nil
		}
		s, _ := scalarFloat(in[0])
		l, _ := scalarFloat(in[1])
		d, _ := scalarFloat(in[2])
		if d == 0 {
			return nil, fmt.Errorf("delta is zero")
		}
		if dt == ir.Float { // the count is computed in the operands' precision
			s32, l32, d32 := float32(s), float32(l), float32(d)
			s, l, d = float64(s32), float64(l32), float64(d32)
		}
		cnt := int(max(0, math.Ceil((l-s)/d)))
		if cnt > 1<<31 {
			return nil, fmt.Errorf("range of %d elements is too large", cnt)
		}
		vals := make([]float64, cnt)
		for i := range vals {
			vals[i] = s + float64(i)*d
		}
		out, err := r.alloc(dt, []int{cnt})
		if err != nil {
			return nil, err
		}
		if dt == ir.Float {
			o := out.Data.([]float32)
			for i := range o { // start + i*delta in float32, as the reference computes it
				o[i] = float32(s) + float32(i)*float32(d)
			}
		} else {
			storeFloats(out, vals)
		}
		return []*Tensor{out}, nil
	}, nil
}

// indexAt normalizes index v into [0, dim) (negative counts from the end).
func indexAt(v int64, dim int) (int, error) {
	if v < -int64(dim) || v >= int64(dim) {
		return 0, fmt.Errorf("index %d is out of range for dimension %d", v, dim)
	}
	if v < 0 {
		v += int64(dim)
	}
	return int(v), nil
}

func buildGather(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		x, indices, err := indexOperands(in, 2)
		if err != nil {
			return nil, err
		}
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		shape := append(append(slices.Clone(x.Shape[:ax]), in[1].Shape...), x.Shape[ax+1:]...)
		outer := shapeSize(x.Shape[:ax])
		inner := shapeSize(x.Shape[ax+1:])
		dim := x.Shape[ax]
		idx := make([]int, 0, shapeSize(shape))
		for o := 0; o < outer; o++ {
			for _, iv := range indices {
				j, err := indexAt(iv, dim)
				if err != nil {
					return nil, err
				}
				base := (o*dim + j) * inner
				for i := 0; i < inner; i++ {
					idx = append(idx, base+i)
				}
			}
		}
		return []*Tensor{take(r, x, shape, idx)}, nil
	}, nil
}

func buildGatherElements(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		x, indices, err := indexOperands(in, 2)
		if err != nil {
			return nil, err
		}
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		shape := in[1].Shape
		if len(shape) != len(x.Shape) {
			return nil, fmt.Errorf("indices rank %d differs from data rank %d", len(shape), len(x.Shape))
		}
		st := strides(x.Shape)
		idx := make([]int, len(indices))
		var bad error
		forEachIndex(shape, func(k int, pos []int) {
			off := 0
			for a, p := range pos {
				if a == ax {
					j, err := indexAt(indices[k], x.Shape[a])
					if err != nil && bad == nil {
						bad = err
					}
					p = j
				} else if p >= x.Shape[a] {
					if bad == nil {
						bad = fmt.Errorf("indices shape %v exceeds data shape %v", shape, x.Shape)
					}
					p = 0
				}
				off += p * st[a]
			}
			idx[k] = off
		})
		if bad != nil {
			return nil, bad
		}
		return []*Tensor{take(r, x, shape, idx)}, nil
	}, nil
}

// gatherNDOffsets returns, for each index tuple of a GatherND/ScatterND
// indices tensor, the flat offset of the addressed slice in data, with the
// slice size.
func gatherNDOffsets(data []int, indices []int64, ishape []int, batchDims int) (offs []int, slice int, err error) {
	q := ishape[len(ishape)-1]
	if batchDims+q > len(data) {
		return nil, 0, fmt.Errorf("index tuples of length %d address more axes than data %v has", q, data)
	}
	st := strides(data)
	slice = shapeSize(data[batchDims+q:])
	batch := shapeSize(ishape[:batchDims])
	tuples := shapeSize(ishape[:len(ishape)-1])
	perBatch := 0
	if batch > 0 {
		perBatch = tuples / batch
	}
	batchStride := shapeSize(data[batchDims:])
	offs = make([]int, tuples)
	for t := 0; t < tuples; t++ {
		b := 0
		if perBatch > 0 {
			b = t / perBatch
		}
		off := b * batchStride
		for j := 0; j < q; j++ {
			ax := batchDims + j
			v, err := indexAt(indices[t*q+j], data[ax])
			if err != nil {
				return nil, 0, err
			}
			off += v * st[ax]
		}
		offs[t] = off
	}
	return offs, slice, nil
}

func buildGatherND(n *ir.Node, _ *compiler) (kernel, error) {
	batchDims := int(n.AttrInt("batch_dims", 0))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		x, indices, err := indexOperands(in, 2)
		if err != nil {
			return nil, err
		}
		ish := in[1].Shape
		if len(ish) == 0 || batchDims < 0 || batchDims >= len(ish) {
			return nil, fmt.Errorf("indices shape %v does not fit batch_dims %d", ish, batchDims)
		}
		offs, slice, err := gatherNDOffsets(x.Shape, indices, ish, batchDims)
		if err != nil {
			return nil, err
		}
		q := ish[len(ish)-1]
		shape := append(slices.Clone(ish[:len(ish)-1]), x.Shape[batchDims+q:]...)
		idx := make([]int, 0, len(offs)*slice)
		for _, o := range offs {
			for i := 0; i < slice; i++ {
				idx = append(idx, o+i)
			}
		}
		return []*Tensor{take(r, x, shape, idx)}, nil
	}, nil
}

// scatterReduce combines an existing value with an update.
func scatterReduce(reduction string) (func(a, b float64) float64, error) {
	switch reduction {
	case "none", "":
		return func(_, b float64) float64 { return b }, nil
	case "add":
		return func(a, b float64) float64 { return a + b }, nil
	case "mul":
		return func(a, b float64) float64 { return a * b }, nil
	case "max":
		return math.Max, nil
	case "min":
		return math.Min, nil
	}
	return nil, fmt.Errorf("reduction %q is not supported", reduction)
}

// scatterApply copies data and applies updates at the given element
// offsets (updates element i goes to offs[i]). Computation goes through
// float64 (ints through int64 when there is no reduction).
func scatterApply(r *runState, data, updates *Tensor, offs []int, reduction string) (*Tensor, error) {
	f, err := scatterReduce(reduction)
	if err != nil {
		return nil, err
	}
	out, err := convertData(r, data, data.DType)
	if err != nil {
		return nil, err
	}
	if updates.DType != data.DType {
		return nil, fmt.Errorf("updates are %v, data is %v", updates.DType, data.DType)
	}
	if reduction == "none" || reduction == "" {
		for i, o := range offs {
			copyElems(out.Data, updates.Data, o, i, 1)
		}
		return out, nil
	}
	dv, ok1 := out.Float64s()
	uv, ok2 := updates.Float64s()
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("reduction %q needs numeric data", reduction)
	}
	for i, o := range offs {
		dv[o] = f(dv[o], uv[i])
	}
	if intTypes.has(out.DType) {
		iv := make([]int64, len(dv))
		for i, v := range dv {
			iv[i] = int64(v)
		}
		storeInts(out, iv)
	} else {
		storeFloats(out, dv)
	}
	return out, nil
}

func buildScatterND(n *ir.Node, _ *compiler) (kernel, error) {
	reduction := n.AttrString("reduction", "none")
	if _, err := scatterReduce(reduction); err != nil {
		return nil, err
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		x, indices, err := indexOperands(in, 3)
		if err != nil {
			return nil, err
		}
		upd := in[2]
		ish := in[1].Shape
		if len(ish) == 0 {
			return nil, fmt.Errorf("indices must have rank >= 1")
		}
		offs, slice, err := gatherNDOffsets(x.Shape, indices, ish, 0)
		if err != nil {
			return nil, err
		}
		if upd.NumElements() != len(offs)*slice {
			return nil, fmt.Errorf("updates %v do not match %d slices of %d elements", upd.Shape, len(offs), slice)
		}
		elem := make([]int, 0, len(offs)*slice)
		for _, o := range offs {
			for i := 0; i < slice; i++ {
				elem = append(elem, o+i)
			}
		}
		out, err := scatterApply(r, x, upd, elem, reduction)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildScatterElements(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	reduction := n.AttrString("reduction", "none")
	if _, err := scatterReduce(reduction); err != nil {
		return nil, err
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		x, indices, err := indexOperands(in, 3)
		if err != nil {
			return nil, err
		}
		upd := in[2]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		if !sameShape(in[1].Shape, upd.Shape) || len(upd.Shape) != len(x.Shape) {
			return nil, fmt.Errorf("indices %v and updates %v must have one shape of data's rank", in[1].Shape, upd.Shape)
		}
		st := strides(x.Shape)
		offs := make([]int, len(indices))
		var bad error
		forEachIndex(upd.Shape, func(k int, pos []int) {
			off := 0
			for a, p := range pos {
				if a == ax {
					j, err := indexAt(indices[k], x.Shape[a])
					if err != nil && bad == nil {
						bad = err
					}
					p = j
				}
				off += p * st[a]
			}
			offs[k] = off
		})
		if bad != nil {
			return nil, bad
		}
		out, err := scatterApply(r, x, upd, offs, reduction)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildTrilu(n *ir.Node, _ *compiler) (kernel, error) {
	upper := n.AttrInt("upper", 1) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) < 2 {
			return nil, fmt.Errorf("input must have rank >= 2, has shape %v", x.Shape)
		}
		k := int64(0)
		if t := inputN(in, 1); t != nil {
			kv, err := intValues(t)
			if err != nil || len(kv) != 1 {
				return nil, fmt.Errorf("k must be one integer")
			}
			k = kv[0]
		}
		rows, cols := x.Shape[len(x.Shape)-2], x.Shape[len(x.Shape)-1]
		idx := make([]int, x.NumElements())
		for e := range idx {
			i := int64((e / cols) % rows)
			j := int64(e % cols)
			keep := (upper && j-i >= k) || (!upper && j-i <= k)
			if keep {
				idx[e] = e
			} else {
				idx[e] = -1
			}
		}
		return []*Tensor{take(r, x, x.Shape, idx)}, nil
	}, nil
}

// buildCumSum covers CumSum and CumProd.
func buildCumSum(n *ir.Node, _ *compiler) (kernel, error) {
	prod := n.Op == "CumProd"
	exclusive := n.AttrInt("exclusive", 0) != 0
	reverse := n.AttrInt("reverse", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		av, err := intValues(in[1])
		if err != nil || len(av) != 1 {
			return nil, fmt.Errorf("axis must be one integer")
		}
		ax, err := normAxis(av[0], len(x.Shape))
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		inner := shapeSize(x.Shape[ax+1:])
		outer := shapeSize(x.Shape[:ax])
		out, err := r.alloc(x.DType, x.Shape)
		if err != nil {
			return nil, err
		}
		scan := func(get func(int) float64, set func(int, float64)) {
			for o := 0; o < outer; o++ {
				for i := 0; i < inner; i++ {
					acc := 0.0
					if prod {
						acc = 1
					}
					for s := 0; s < dim; s++ {
						j := s
						if reverse {
							j = dim - 1 - s
						}
						e := (o*dim+j)*inner + i
						v := get(e)
						if exclusive {
							set(e, acc)
						}
						if prod {
							acc *= v
						} else {
							acc += v
						}
						if !exclusive {
							set(e, acc)
						}
					}
				}
			}
		}
		switch d := x.Data.(type) {
		case []float32:
			o := out.Data.([]float32)
			scan(func(e int) float64 { return float64(d[e]) }, func(e int, v float64) { o[e] = float32(v) })
		case []float64:
			o := out.Data.([]float64)
			scan(func(e int) float64 { return d[e] }, func(e int, v float64) { o[e] = v })
		default:
			iv, err := intValues(x)
			if err != nil {
				return nil, err
			}
			res := make([]int64, len(iv))
			for o := 0; o < outer; o++ {
				for i := 0; i < inner; i++ {
					acc := int64(0)
					if prod {
						acc = 1
					}
					for s := 0; s < dim; s++ {
						j := s
						if reverse {
							j = dim - 1 - s
						}
						e := (o*dim+j)*inner + i
						if exclusive {
							res[e] = acc
						}
						if prod {
							acc *= iv[e]
						} else {
							acc += iv[e]
						}
						if !exclusive {
							res[e] = acc
						}
					}
				}
			}
			storeInts(out, res)
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildTopK returns values and int64 indices of the k largest (or
// smallest) elements along an axis; ties keep the lower index first.
func buildTopK(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", -1)
	largest := n.AttrInt("largest", 1) != 0
	attrK, hasAttrK := int64(0), n.Attr("k") != nil // opset 1
	if hasAttrK {
		attrK = n.AttrInt("k", 0)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		k := attrK
		if !hasAttrK {
			kv, err := intValues(inputN(in, 1))
			if err != nil || len(kv) != 1 {
				return nil, fmt.Errorf("K must be one integer")
			}
			k = kv[0]
		}
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		if k < 0 || k > int64(dim) {
			return nil, fmt.Errorf("K=%d is out of range for axis of size %d", k, dim)
		}
		vals, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("input must be numeric")
		}
		shape := slices.Clone(x.Shape)
		shape[ax] = int(k)
		inner := shapeSize(x.Shape[ax+1:])
		outer := shapeSize(x.Shape[:ax])
		idxOut := r.mustAlloc(ir.Int64, shape)
		iv := idxOut.Data.([]int64)
		src := make([]int, shapeSize(shape))
		order := make([]int, dim)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				for j := range order {
					order[j] = j
				}
				at := func(j int) float64 { return vals[(o*dim+j)*inner+i] }
				sort.SliceStable(order, func(a, b int) bool {
					va, vb := at(order[a]), at(order[b])
					if largest {
						return va > vb
					}
					return va < vb
				})
				for j := 0; j < int(k); j++ {
					e := (o*int(k)+j)*inner + i
					iv[e] = int64(order[j])
					src[e] = (o*dim+order[j])*inner + i
				}
			}
		}
		return []*Tensor{take(r, x, shape, src), idxOut}, nil
	}, nil
}

// buildArgMinMax returns int64 indices of the extreme element along axis;
// ties go to the first (or last, with select_last_index) occurrence.
func buildArgMinMax(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	keep := n.AttrInt("keepdims", 1) != 0
	last := n.AttrInt("select_last_index", 0) != 0
	isMax := n.Op == "ArgMax"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		vals, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("input must be numeric")
		}
		dim := x.Shape[ax]
		inner := shapeSize(x.Shape[ax+1:])
		outer := shapeSize(x.Shape[:ax])
		shape := slices.Clone(x.Shape)
		if keep {
			shape[ax] = 1
		} else {
			shape = slices.Delete(shape, ax, ax+1)
		}
		out := r.mustAlloc(ir.Int64, shape)
		o := out.Data.([]int64)
		for a := 0; a < outer; a++ {
			for i := 0; i < inner; i++ {
				best := 0
				for j := 1; j < dim; j++ {
					v, b := vals[(a*dim+j)*inner+i], vals[(a*dim+best)*inner+i]
					c := cmp.Compare(v, b)
					if !isMax {
						c = -c
					}
					if c > 0 || (c == 0 && last) {
						best = j
					}
				}
				o[a*inner+i] = int64(best)
			}
		}
		return []*Tensor{out}, nil
	}, nil
}

// indexOperands checks that a gather/scatter node has n inputs and reads
// its data (input 0) and its integer indices (input 1).
func indexOperands(in []*Tensor, n int) (*Tensor, []int64, error) {
	if err := needInputs(in, n); err != nil {
		return nil, nil, err
	}
	indices, err := intValues(in[1])
	if err != nil {
		return nil, nil, fmt.Errorf("indices: %w", err)
	}
	return in[0], indices, nil
}
