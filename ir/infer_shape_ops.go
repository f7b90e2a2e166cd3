package ir

import (
	"fmt"
	"math"
)

// Rules for ops that move data around or compute shapes: Reshape,
// Transpose, Squeeze/Unsqueeze, Concat, Split, Slice, Gather, Expand, Tile,
// Pad, Shape, Size, ConstantOfShape, Constant, Range, and the like. Most of
// them also carry the symbolic contents of shape tensors.

// inferShape: a 1-D int64 tensor of the input's dims from start to end.
func inferShape(c *InferContext) (InferResult, error) {
	r := c.Rank(0)
	if r < 0 {
		return one(shaped(Int64, []Dim{UnknownDim()}))
	}
	start, end := int64(0), int64(r)
	if c.AtLeast(15) {
		start = c.AttrInt("start", 0)
		end = c.AttrInt("end", int64(r))
	}
	clamp := func(x int64) int64 {
		if x < 0 {
			x += int64(r)
		}
		return min(max(x, 0), int64(r))
	}
	start, end = clamp(start), clamp(end)
	if end < start {
		end = start
	}
	dims := c.Type(0).Shape[start:end]
	return oneSym(TensorOfSizes(Int64, end-start), dimsSym(dims))
}

// inferSize: an int64 scalar holding the element count.
func inferSize(c *InferContext) (InferResult, error) {
	var sym []SymInt
	if c.Rank(0) >= 0 {
		if p, ok := dimProduct(c.Type(0).Shape); ok {
			sym = []SymInt{p.symInt()}
		}
	}
	return oneSym(TensorOf(Int64), sym)
}

// inferReshape resolves 0 (copy the input's dimension, unless allowzero)
// and -1 (the remaining size, also symbolically: the input's product
// divided by the other dimensions' product).
func inferReshape(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	var target []SymInt
	if !c.AtLeast(5) {
		s, ok := c.AttrInts("shape")
		if !ok {
			return one(unranked(c.Elem(0)))
		}
		for _, v := range s {
			target = append(target, KnownInt(v))
		}
	} else {
		target = c.Sym(1)
		if target == nil {
			if n, ok := shapeLen(c, 1); ok {
				target = make([]SymInt, n)
			} else {
				return one(unranked(c.Elem(0)))
			}
		}
	}
	allowZero := c.AttrInt("allowzero", 0) != 0
	out := make([]Dim, len(target))
	infer := -1
	for i, e := range target {
		switch {
		case e.Known && e.Val == 0 && !allowZero:
			if x.Rank() > i {
				out[i] = x.Shape[i]
			} else if x.Rank() >= 0 {
				return InferResult{}, fmt.Errorf("shape element %d is 0 (copy) but the input has rank %d", i, x.Rank())
			} else {
				out[i] = UnknownDim()
			}
		case e.Known && e.Val == -1:
			if infer >= 0 {
				return InferResult{}, fmt.Errorf("shape has more than one -1")
			}
			infer = i
			out[i] = UnknownDim()
		case e.Known && e.Val < -1:
			return InferResult{}, fmt.Errorf("shape element %d is %d", i, e.Val)
		default:
			out[i] = e.Dim()
		}
	}
	if x.Rank() >= 0 {
		total, okIn := dimProduct(x.Shape)
		var others []Dim
		for i, d := range out {
			if i != infer {
				others = append(others, d)
			}
		}
		rest, okOut := dimProduct(others)
		if okIn && okOut {
			if infer >= 0 {
				q, exact := total.div(rest)
				switch {
				case exact:
					out[infer] = q.symInt().Dim()
				case len(total.factors) == 0 && len(rest.factors) == 0 && rest.coeff != 0:
					return InferResult{}, fmt.Errorf("cannot reshape %v (%d elements) to %v: not a multiple of %d", x, total.coeff, symDims(target), rest.coeff)
				}
			} else if len(total.factors) == 0 && len(rest.factors) == 0 && total.coeff != rest.coeff {
				return InferResult{}, fmt.Errorf("cannot reshape %v (%d elements) to %v (%d elements)", x, total.coeff, out, rest.coeff)
			}
		}
	}
	var sym []SymInt
	if s := c.Sym(0); s != nil && len(out) <= 1 {
		sym = s
	}
	return oneSym(shaped(c.Elem(0), out), sym)
}

// inferTranspose permutes dimensions by perm (reversed when absent).
func inferTranspose(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	perm, ok := c.AttrInts("perm")
	if r < 0 {
		if ok {
			return one(shaped(c.Elem(0), unknownDims(len(perm))))
		}
		return one(unranked(c.Elem(0)))
	}
	if !ok {
		perm = make([]int64, r)
		for i := range perm {
			perm[i] = int64(r - 1 - i)
		}
	}
	if len(perm) != r {
		return InferResult{}, fmt.Errorf("perm %v has %d entries for an input of rank %d", perm, len(perm), r)
	}
	out := make([]Dim, r)
	seen := make([]bool, r)
	for i, p := range perm {
		a, ok := normAxis(p, r)
		if !ok || seen[a] {
			return InferResult{}, fmt.Errorf("perm %v is not a permutation of 0..%d", perm, r-1)
		}
		seen[a] = true
		out[i] = x.Shape[a]
	}
	return one(shaped(c.Elem(0), out))
}

// inferFlatten: [prod(dims[:axis]), prod(dims[axis:])], symbolically.
func inferFlatten(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	if r < 0 {
		return one(shaped(c.Elem(0), unknownDims(2)))
	}
	axis := c.AttrInt("axis", 1)
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis > int64(r) {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", 1), r)
	}
	prod := func(ds []Dim) Dim {
		if p, ok := dimProduct(ds); ok {
			return p.symInt().Dim()
		}
		return UnknownDim()
	}
	return one(shaped(c.Elem(0), []Dim{prod(x.Shape[:axis]), prod(x.Shape[axis:])}))
}

// inferSqueeze removes the listed axes (or every dimension known to be 1
// when none are listed: then any non-known dimension makes the rank
// unknown).
func inferSqueeze(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	axes, present, known := axesArg(c, "axes", 13, 1)
	var sym []SymInt
	if s := c.Sym(0); s != nil && len(s) == 1 {
		sym = s
	}
	if r >= 0 && present && !known {
		if n, ok := shapeLen(c, 1); ok && n <= r {
			return oneSym(shaped(c.Elem(0), unknownDims(r-n)), sym)
		}
	}
	if r < 0 || !known {
		return oneSym(unranked(c.Elem(0)), sym)
	}
	drop := make([]bool, r)
	if !present || len(axes) == 0 {
		for i, d := range x.Shape {
			if !d.IsKnown() {
				return oneSym(unranked(c.Elem(0)), sym)
			}
			drop[i] = d.Size == 1
		}
	}
	for _, a := range axes {
		i, ok := normAxis(a, r)
		if !ok {
			return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", a, r)
		}
		if x.Shape[i].IsKnown() && x.Shape[i].Size != 1 {
			return InferResult{}, fmt.Errorf("cannot squeeze axis %d of size %d", a, x.Shape[i].Size)
		}
		drop[i] = true
	}
	var out []Dim
	for i, d := range x.Shape {
		if !drop[i] {
			out = append(out, d)
		}
	}
	return oneSym(shaped(c.Elem(0), out), sym)
}

// inferUnsqueeze inserts dimensions of size 1 at the listed axes (counted in
// the output's rank).
func inferUnsqueeze(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	axes, present, known := axesArg(c, "axes", 13, 1)
	var sym []SymInt
	if s := c.Sym(0); s != nil && len(s) == 1 {
		sym = s
	}
	if r >= 0 && present && !known {
		if n, ok := shapeLen(c, 1); ok {
			// Where the ones go is unknown, so every dimension is.
			return oneSym(shaped(c.Elem(0), unknownDims(r+n)), sym)
		}
	}
	if r < 0 || !known {
		return oneSym(unranked(c.Elem(0)), sym)
	}
	outRank := r + len(axes)
	ones := make([]bool, outRank)
	for _, a := range axes {
		i, ok := normAxis(a, outRank)
		if !ok || ones[i] {
			return InferResult{}, fmt.Errorf("axes %v are out of range or repeated for output rank %d", axes, outRank)
		}
		ones[i] = true
	}
	out := make([]Dim, 0, outRank)
	k := 0
	for i := 0; i < outRank; i++ {
		if ones[i] {
			out = append(out, Known(1))
		} else {
			out = append(out, x.Shape[k])
			k++
		}
	}
	return oneSym(shaped(c.Elem(0), out), sym)
}

// inferConcat sums the axis dimension (symbolically) and unifies the others.
func inferConcat(c *InferContext) (InferResult, error) {
	elem := Undefined
	rank := -1
	for i := range c.Node.Inputs {
		if e := c.Elem(i); e != Undefined && elem == Undefined {
			elem = e
		}
		if r := c.Rank(i); r >= 0 {
			if rank >= 0 && r != rank {
				return InferResult{}, fmt.Errorf("inputs have ranks %d and %d", rank, r)
			}
			rank = r
		}
	}
	// Contents: concatenation of 1-D shape tensors.
	var sym []SymInt
	for i := range c.Node.Inputs {
		s := c.Sym(i)
		if s == nil || !c.Has(i) {
			sym = nil
			break
		}
		sym = append(sym, s...)
	}
	if rank < 0 {
		return oneSym(unranked(elem), sym)
	}
	axis, ok := normAxis(c.AttrInt("axis", 0), rank)
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", 0), rank)
	}
	out := unknownDims(rank)
	sum := KnownInt(0)
	first := true
	for i := range c.Node.Inputs {
		if !c.Has(i) {
			continue
		}
		t := c.Type(i)
		if t.Rank() < 0 {
			sum = SymInt{}
			continue
		}
		for d := range rank {
			if d == axis {
				continue
			}
			if first {
				out[d] = t.Shape[d]
				continue
			}
			m, err := moreSpecific(out[d], t.Shape[d])
			if err != nil {
				return InferResult{}, fmt.Errorf("dimension %d: %w", d, err)
			}
			out[d] = m
		}
		first = false
		sum = symAdd(sum, SymIntOf(t.Shape[axis]), 1)
	}
	out[axis] = sum.Dim()
	return oneSym(shaped(elem, out), sym)
}

// inferSplit divides the axis by the split sizes (an attribute before
// opset 13, an input from 13), by num_outputs (opset 18), or evenly.
func inferSplit(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	n := c.NumOutputs()
	types := make([]Type, n)
	for i := range types {
		types[i] = unranked(c.Elem(0))
	}
	res := InferResult{Types: types}
	if r < 0 {
		return res, nil
	}
	axis, ok := normAxis(c.AttrInt("axis", 0), r)
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", 0), r)
	}
	var sizes []Dim
	split, present, known := axesArg(c, "split", 13, 1)
	d := x.Shape[axis]
	switch {
	case present && known:
		if len(split) != n {
			return InferResult{}, fmt.Errorf("split has %d sizes for %d outputs", len(split), n)
		}
		var sum int64
		for _, s := range split {
			sizes = append(sizes, Known(s))
			sum += s
		}
		if d.IsKnown() && d.Size != sum {
			return InferResult{}, fmt.Errorf("split sizes %v add up to %d, the axis has %d", split, sum, d.Size)
		}
	case present:
		sizes = unknownDims(n)
	case d.IsKnown() && n > 0:
		chunk := d.Size / int64(n)
		if d.Size%int64(n) != 0 {
			if !c.AtLeast(18) || c.Node.Attr("num_outputs") == nil {
				sizes = unknownDims(n)
				break
			}
			chunk = (d.Size + int64(n) - 1) / int64(n)
		}
		left := d.Size
		for i := 0; i < n; i++ {
			s := min(chunk, left)
			sizes = append(sizes, Known(s))
			left -= s
		}
	case d.IsSym() && n > 0:
		q := symDiv(SymIntOf(d), KnownInt(int64(n))).Dim()
		for i := 0; i < n; i++ {
			sizes = append(sizes, q)
		}
	default:
		sizes = unknownDims(n)
	}
	for i := range types {
		dims := append([]Dim(nil), x.Shape...)
		dims[axis] = sizes[i]
		types[i] = shaped(c.Elem(0), dims)
	}
	return res, nil
}

// sliceLen returns the length of a slice of a dimension of known size, by
// ONNX Slice's clamping rules.
func sliceLen(dim, start, end, step int64) int64 {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	if step > 0 {
		start = min(max(start, 0), dim)
		end = min(max(end, 0), dim)
		if end <= start {
			return 0
		}
		return (end - start + step - 1) / step
	}
	start = min(max(start, 0), dim-1)
	end = min(max(end, -1), dim-1)
	if start <= end {
		return 0
	}
	return (start - end + (-step) - 1) / (-step)
}

// sliceParams reads starts, ends, axes and steps (attributes before opset
// 10, inputs from 10). Starts and ends may be symbolic; axes and steps must
// be known. ok is false when they cannot be read.
func sliceParams(c *InferContext) (starts, ends []SymInt, axes, steps []int64, ok bool) {
	known := func(v []int64) []SymInt {
		out := make([]SymInt, len(v))
		for i, x := range v {
			out[i] = KnownInt(x)
		}
		return out
	}
	if !c.AtLeast(10) {
		s, ok1 := c.AttrInts("starts")
		e, ok2 := c.AttrInts("ends")
		if !ok1 || !ok2 {
			return nil, nil, nil, nil, false
		}
		starts, ends = known(s), known(e)
		axes, _ = c.AttrInts("axes")
	} else {
		starts, ends = c.Sym(1), c.Sym(2)
		if s, ok := c.Ints(1); ok {
			starts = known(s)
		}
		if e, ok := c.Ints(2); ok {
			ends = known(e)
		}
		if starts == nil || ends == nil {
			return nil, nil, nil, nil, false
		}
		if c.Has(3) {
			var ok3 bool
			if axes, ok3 = c.Ints(3); !ok3 {
				return nil, nil, nil, nil, false
			}
		}
		if c.Has(4) {
			var ok4 bool
			if steps, ok4 = c.Ints(4); !ok4 {
				return nil, nil, nil, nil, false
			}
		}
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		for range starts {
			steps = append(steps, 1)
		}
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, nil, nil, nil, false
	}
	return starts, ends, axes, steps, true
}

// nonNegative reports whether a symbolic value is provably >= 0: a sum of
// symbols (dimensions) with non-negative coefficients and constant.
func nonNegative(s SymInt) bool {
	if s.Known {
		return s.Val >= 0
	}
	if s.Sym == "" {
		return false
	}
	l := parseLinear(s.Sym)
	if l.c < 0 {
		return false
	}
	for _, k := range l.terms {
		if k < 0 {
			return false
		}
	}
	return true
}

// minSym names min(e, k) for a non-negative symbolic e and a known k >= 1,
// as Slice [0:e] of a dimension of size k gives. broadcastDim knows that
// such a dimension broadcast against e is e.
func minSym(e SymInt, k int64) Dim { return Sym(fmt.Sprintf("min(%s,%d)", e.Sym, k)) }

// sliceDim is the length of one sliced dimension.
func sliceDim(d Dim, start, end SymInt, step int64) Dim {
	switch {
	case d.IsKnown() && start.Known && end.Known:
		return Known(sliceLen(d.Size, start.Val, end.Val, step))
	case start.Known && start.Val == 0 && step == 1 && end.Known && end.Val >= math.MaxInt32:
		return d // the whole dimension
	case start.Known && end.Known && start.Val >= 0 && end.Val >= 0 && step > 0 && end.Val <= start.Val:
		return Known(0)
	case start.Known && start.Val == 0 && step == 1 && end.Sym != "" && nonNegative(end):
		// [0:e] has min(e, d) elements.
		if d.IsSym() && d.Sym == end.Sym {
			return d
		}
		if d.IsKnown() && d.Size >= 1 {
			return minSym(end, d.Size)
		}
	}
	return UnknownDim()
}

// inferSlice computes sliced dimensions where the bounds are known: known
// dimensions exactly, symbolic ones when the slice provably keeps all of
// them ([0:INT_MAX:1]) or ends at a symbol ([0:seq] gives seq or
// min(seq,k)).
func inferSlice(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	if r < 0 {
		return one(unranked(c.Elem(0)))
	}
	starts, ends, axes, steps, ok := sliceParams(c)
	if !ok {
		// Which axes are sliced may still be known: the rest survive.
		out := unknownDims(r)
		if c.AtLeast(10) {
			var axes []int64
			known := false
			if c.Has(3) {
				axes, known = c.Ints(3)
			} else if n, ok := shapeLen(c, 1); ok {
				// Without axes, the first len(starts) axes are sliced.
				for i := 0; i < n; i++ {
					axes = append(axes, int64(i))
				}
				known = true
			}
			if known {
				out = append([]Dim(nil), x.Shape...)
				for _, a := range axes {
					if i, ok := normAxis(a, r); ok {
						out[i] = UnknownDim()
					}
				}
			}
		}
		return one(shaped(c.Elem(0), out))
	}
	out := append([]Dim(nil), x.Shape...)
	for k, a := range axes {
		i, ok := normAxis(a, r)
		if !ok {
			return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", a, r)
		}
		if steps[k] == 0 {
			return InferResult{}, fmt.Errorf("step is 0 on axis %d", a)
		}
		out[i] = sliceDim(x.Shape[i], starts[k], ends[k], steps[k])
	}
	var sym []SymInt
	if s := c.Sym(0); s != nil && r == 1 && starts[0].Known && ends[0].Known {
		n := int64(len(s))
		start, end, step := starts[0].Val, ends[0].Val, steps[0]
		if start < 0 {
			start += n
		}
		if end < 0 {
			end += n
		}
		if step > 0 {
			start, end = min(max(start, 0), n), min(max(end, 0), n)
			for j := start; j < end; j += step {
				sym = append(sym, s[j])
			}
		} else {
			start, end = min(max(start, 0), n-1), min(max(end, -1), n-1)
			for j := start; j > end; j += step {
				sym = append(sym, s[j])
			}
		}
		if sym == nil {
			sym = []SymInt{}
		}
	}
	return oneSym(shaped(c.Elem(0), out), sym)
}

// inferGather: data[:axis] + indices.shape + data[axis+1:]; contents of a
// 1-D shape tensor picked by known indices.
func inferGather(c *InferContext) (InferResult, error) {
	data, idx := c.Type(0), c.Type(1)
	r := data.Rank()
	var sym []SymInt
	if s := c.Sym(0); s != nil && r == 1 && idx.Rank() <= 1 {
		if ii, ok := c.Ints(1); ok {
			n := int64(len(s))
			sym = make([]SymInt, len(ii))
			for k, i := range ii {
				if i < 0 {
					i += n
				}
				if i < 0 || i >= n {
					return InferResult{}, fmt.Errorf("index %d is out of range for %d elements", ii[k], n)
				}
				sym[k] = s[i]
			}
		}
	}
	if r < 0 || idx.Rank() < 0 {
		return oneSym(unranked(c.Elem(0)), sym)
	}
	axis, ok := normAxis(c.AttrInt("axis", 0), r)
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", 0), r)
	}
	out := append([]Dim(nil), data.Shape[:axis]...)
	out = append(out, idx.Shape...)
	out = append(out, data.Shape[axis+1:]...)
	return oneSym(shaped(c.Elem(0), out), sym)
}

// inferGatherElements: the indices' shape with data's element type.
func inferGatherElements(c *InferContext) (InferResult, error) {
	return one(withElem(c.Type(1), c.Elem(0)))
}

// inferGatherND: indices.shape[:-1] + data.shape[batch_dims+k:].
func inferGatherND(c *InferContext) (InferResult, error) {
	data, idx := c.Type(0), c.Type(1)
	if data.Rank() < 0 || idx.Rank() < 1 || !idx.Shape[idx.Rank()-1].IsKnown() {
		return one(unranked(c.Elem(0)))
	}
	b := int(c.AttrInt("batch_dims", 0))
	k := int(idx.Shape[idx.Rank()-1].Size)
	if b < 0 || b+k > data.Rank() {
		return InferResult{}, fmt.Errorf("indices address %d dimensions after %d batch dimensions of a rank-%d input", k, b, data.Rank())
	}
	out := append([]Dim(nil), idx.Shape[:idx.Rank()-1]...)
	out = append(out, data.Shape[b+k:]...)
	return one(shaped(c.Elem(0), out))
}

// inferExpand broadcasts the input's shape with the target shape.
func inferExpand(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	target := c.Sym(1)
	if target == nil {
		n, ok := shapeLen(c, 1)
		if !ok {
			return one(unranked(c.Elem(0)))
		}
		target = make([]SymInt, n)
	}
	if x.Rank() < 0 {
		// The input may have a higher rank than the target.
		return one(unranked(c.Elem(0)))
	}
	s, err := broadcastShapes(x.Shape, symDims(target))
	if err != nil {
		return InferResult{}, err
	}
	return one(shaped(c.Elem(0), s))
}

// inferTile multiplies each dimension by its repeat count.
func inferTile(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	if x.Rank() < 0 {
		return one(unranked(c.Elem(0)))
	}
	reps := c.Sym(1)
	if reps == nil || len(reps) != x.Rank() {
		return one(shaped(c.Elem(0), unknownDims(x.Rank())))
	}
	out := make([]Dim, x.Rank())
	for i, d := range x.Shape {
		out[i] = symMul(SymIntOf(d), reps[i]).Dim()
	}
	return one(shaped(c.Elem(0), out))
}

// inferPad adds the pads (an attribute before opset 11, an input from 11,
// restricted to axes from 18) to each dimension.
func inferPad(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	if r < 0 {
		return one(unranked(c.Elem(0)))
	}
	var pads []SymInt
	if !c.AtLeast(11) {
		p, ok := c.AttrInts("pads")
		if !ok {
			p, ok = c.AttrInts("paddings")
		}
		if ok {
			for _, v := range p {
				pads = append(pads, KnownInt(v))
			}
		}
	} else {
		pads = c.Sym(1)
	}
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(i)
	}
	if c.AtLeast(18) && c.Has(3) {
		a, ok := c.Ints(3)
		if !ok {
			return one(shaped(c.Elem(0), unknownDims(r)))
		}
		axes = a
	}
	if pads == nil || len(pads) != 2*len(axes) {
		out := append([]Dim(nil), x.Shape...)
		for _, a := range axes {
			if i, ok := normAxis(a, r); ok {
				out[i] = UnknownDim()
			}
		}
		return one(shaped(c.Elem(0), out))
	}
	out := append([]Dim(nil), x.Shape...)
	for k, a := range axes {
		i, ok := normAxis(a, r)
		if !ok {
			return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", a, r)
		}
		s := symAdd(symAdd(SymIntOf(x.Shape[i]), pads[k], 1), pads[k+len(axes)], 1)
		out[i] = s.Dim()
	}
	return one(shaped(c.Elem(0), out))
}

// inferConstantOfShape: the shape is the input's contents, the element type
// the value attribute's (float32 when absent).
func inferConstantOfShape(c *InferContext) (InferResult, error) {
	elem := Float
	var fill *Tensor
	if a := c.Node.Attr("value"); a != nil && a.Type == AttrTensor && a.T != nil {
		elem = a.T.DType
		fill = a.T
	}
	dims := c.Sym(0)
	if dims == nil {
		n, ok := shapeLen(c, 0)
		if !ok {
			return one(unranked(elem))
		}
		return one(shaped(elem, unknownDims(n)))
	}
	out := symDims(dims)
	var sym []SymInt
	if len(out) <= 1 && (elem.IsInteger() || elem == Bool) {
		v := int64(0)
		if fill != nil {
			if vals, ok := fill.AsInt64s(); ok && len(vals) == 1 {
				v = vals[0]
			} else {
				v = math.MinInt64
			}
		}
		n := int64(1)
		if len(out) == 1 {
			n = out[0].Size
			if !out[0].IsKnown() {
				n = -1
			}
		}
		if v != math.MinInt64 && n >= 0 && n <= maxSymElems {
			sym = make([]SymInt, n)
			for i := range sym {
				sym[i] = KnownInt(v)
			}
		}
	}
	return oneSym(shaped(elem, out), sym)
}

// inferConstant reads whichever value_* attribute the node has.
func inferConstant(c *InferContext) (InferResult, error) {
	for _, a := range c.Node.Attrs {
		switch a.Name {
		case "value":
			if a.Type == AttrTensor && a.T != nil {
				var sym []SymInt
				if a.T.HasData() {
					sym = symOfTensor(a.T)
				}
				return oneSym(a.T.Type(), sym)
			}
		case "sparse_value":
			if a.Type == AttrSparseTensor && a.Sparse != nil {
				elem := Undefined
				if a.Sparse.Values != nil {
					elem = a.Sparse.Values.DType
				}
				return one(TensorOfSizes(elem, a.Sparse.Dims...))
			}
		case "value_float":
			return one(TensorOf(Float))
		case "value_floats":
			return one(TensorOfSizes(Float, int64(len(a.Floats))))
		case "value_int":
			return oneSym(TensorOf(Int64), []SymInt{KnownInt(a.I)})
		case "value_ints":
			sym := make([]SymInt, len(a.Ints))
			for i, v := range a.Ints {
				sym[i] = KnownInt(v)
			}
			return oneSym(TensorOfSizes(Int64, int64(len(a.Ints))), sym)
		case "value_string":
			return one(TensorOf(String))
		case "value_strings":
			return one(TensorOfSizes(String, int64(len(a.Strings))))
		}
	}
	return unknownResult()
}

// inferRange: a 1-D tensor of ceil((limit-start)/delta) elements; symbolic
// for Range(0, n, 1).
func inferRange(c *InferContext) (InferResult, error) {
	elem := elemOf(c, 0, 1, 2)
	start, limit, delta := scalarSym(c, 0), scalarSym(c, 1), scalarSym(c, 2)
	n := UnknownDim()
	var sym []SymInt
	switch {
	case start.Known && limit.Known && delta.Known:
		if delta.Val == 0 {
			return InferResult{}, fmt.Errorf("delta is 0")
		}
		diff := limit.Val - start.Val
		cnt := diff / delta.Val
		if diff%delta.Val != 0 && (diff < 0) == (delta.Val < 0) {
			cnt++
		}
		cnt = max(cnt, 0)
		n = Known(cnt)
		if cnt <= maxSymElems && elem.IsInteger() {
			sym = make([]SymInt, cnt)
			for i := range sym {
				sym[i] = KnownInt(start.Val + int64(i)*delta.Val)
			}
		}
	case delta.Known && delta.Val == 1:
		if l := symAdd(limit, start, -1); l.Sym != "" {
			n = l.Dim()
		}
	}
	if !elem.IsInteger() {
		// Floating-point ranges round differently; only known integer
		// bounds and delta give a size.
		if _, ok := c.Floats(0); !ok || !n.IsKnown() {
			n = UnknownDim()
		}
	}
	return oneSym(shaped(elem, []Dim{n}), sym)
}

// scalarSym returns the single element of a scalar (or one-element) input.
func scalarSym(c *InferContext, i int) SymInt {
	if s := c.Sym(i); len(s) == 1 {
		return s[0]
	}
	return SymInt{}
}

// inferReduce handles the Reduce* family: axes as an attribute or (from
// axesInput on) an input, keepdims, and noop_with_empty_axes.
func inferReduce(axesInput int64) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		x := c.Type(0)
		r := x.Rank()
		keep := c.AttrInt("keepdims", 1) != 0
		axes, present, known := axesArg(c, "axes", axesInput, 1)
		if r < 0 {
			return one(unranked(c.Elem(0)))
		}
		if !known {
			if keep {
				out := make([]Dim, r)
				for i, d := range x.Shape {
					if d.IsKnown() && d.Size == 1 {
						out[i] = d
					} else {
						out[i] = UnknownDim()
					}
				}
				return one(shaped(c.Elem(0), out))
			}
			if n, ok := shapeLen(c, 1); ok && n > 0 && n <= r {
				return one(shaped(c.Elem(0), unknownDims(r-n)))
			}
			return one(unranked(c.Elem(0)))
		}
		if !present || len(axes) == 0 {
			if c.AttrInt("noop_with_empty_axes", 0) != 0 {
				return one(tensorType(x))
			}
			axes = make([]int64, r)
			for i := range axes {
				axes[i] = int64(i)
			}
		}
		red := make([]bool, r)
		for _, a := range axes {
			i, ok := normAxis(a, r)
			if !ok {
				return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", a, r)
			}
			red[i] = true
		}
		var out []Dim
		for i, d := range x.Shape {
			switch {
			case !red[i]:
				out = append(out, d)
			case keep:
				out = append(out, Known(1))
			}
		}
		if out == nil {
			out = []Dim{}
		}
		return one(shaped(c.Elem(0), out))
	}
}

// inferArgReduce: ArgMax/ArgMin give int64 with the axis reduced.
func inferArgReduce(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	if r < 0 {
		return one(unranked(Int64))
	}
	axis, ok := normAxis(c.AttrInt("axis", 0), r)
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", 0), r)
	}
	out := append([]Dim(nil), x.Shape...)
	if c.AttrInt("keepdims", 1) != 0 {
		out[axis] = Known(1)
	} else {
		out = append(out[:axis], out[axis+1:]...)
	}
	return one(shaped(Int64, out))
}

// inferTopK: values and int64 indices with the axis replaced by K.
func inferTopK(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	if r < 0 {
		return InferResult{Types: []Type{unranked(c.Elem(0)), unranked(Int64)}}, nil
	}
	axis, ok := normAxis(c.AttrInt("axis", -1), r)
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", c.AttrInt("axis", -1), r)
	}
	k := UnknownDim()
	if !c.AtLeast(10) {
		k = Known(c.AttrInt("k", -1))
	} else if s := scalarSym(c, 1); !s.IsUnknown() {
		k = s.Dim()
	}
	if k.IsKnown() && x.Shape[axis].IsKnown() && k.Size > x.Shape[axis].Size {
		return InferResult{}, fmt.Errorf("k=%d exceeds the axis size %d", k.Size, x.Shape[axis].Size)
	}
	out := append([]Dim(nil), x.Shape...)
	out[axis] = k
	return InferResult{Types: []Type{shaped(c.Elem(0), out), shaped(Int64, append([]Dim(nil), out...))}}, nil
}

// inferNonZero: int64 [rank, unknown count].
func inferNonZero(c *InferContext) (InferResult, error) {
	r := UnknownDim()
	if c.Rank(0) >= 0 {
		r = Known(int64(c.Rank(0)))
	}
	return one(shaped(Int64, []Dim{r, UnknownDim()}))
}

// inferOneHot inserts the depth dimension at axis.
func inferOneHot(c *InferContext) (InferResult, error) {
	idx := c.Type(0)
	elem := c.Elem(2)
	if idx.Rank() < 0 {
		return one(unranked(elem))
	}
	outRank := idx.Rank() + 1
	axis, ok := normAxis(c.AttrInt("axis", -1), outRank)
	if !ok {
		return InferResult{}, fmt.Errorf("axis %d is out of range for output rank %d", c.AttrInt("axis", -1), outRank)
	}
	depth := UnknownDim()
	if s := scalarSym(c, 1); s.Known && s.Val >= 0 {
		depth = Known(s.Val)
	} else if f, ok := c.Floats(1); ok && len(f) == 1 && f[0] >= 0 && f[0] < 1<<53 {
		depth = Known(int64(f[0]))
	}
	out := append([]Dim(nil), idx.Shape[:axis]...)
	out = append(out, depth)
	out = append(out, idx.Shape[axis:]...)
	return one(shaped(elem, out))
}

// inferDepthToSpace: [N, C/(b*b), H*b, W*b].
func inferDepthToSpace(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	b := c.AttrInt("blocksize", 0)
	if x.Rank() != 4 || b <= 0 {
		return one(withElem(shaped(Undefined, unknownDims(4)), c.Elem(0)))
	}
	s := x.Shape
	ch := symDiv(SymIntOf(s[1]), KnownInt(b*b))
	if s[1].IsKnown() && s[1].Size%(b*b) != 0 {
		return InferResult{}, fmt.Errorf("channels %d are not a multiple of blocksize² %d", s[1].Size, b*b)
	}
	return one(shaped(c.Elem(0), []Dim{s[0], ch.Dim(), dimMul(s[2], Known(b)), dimMul(s[3], Known(b))}))
}

// inferSpaceToDepth: [N, C*b*b, H/b, W/b].
func inferSpaceToDepth(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	b := c.AttrInt("blocksize", 0)
	if x.Rank() != 4 || b <= 0 {
		return one(withElem(shaped(Undefined, unknownDims(4)), c.Elem(0)))
	}
	s := x.Shape
	for _, d := range s[2:] {
		if d.IsKnown() && d.Size%b != 0 {
			return InferResult{}, fmt.Errorf("spatial size %d is not a multiple of blocksize %d", d.Size, b)
		}
	}
	h := symDiv(SymIntOf(s[2]), KnownInt(b)).Dim()
	w := symDiv(SymIntOf(s[3]), KnownInt(b)).Dim()
	return one(shaped(c.Elem(0), []Dim{s[0], dimMul(s[1], Known(b*b)), h, w}))
}

// inferCompress: the selected axis (or the flattened input) has an unknown
// length.
func inferCompress(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	if a := c.Node.Attr("axis"); a != nil && a.Type == AttrInt {
		if x.Rank() < 0 {
			return one(unranked(c.Elem(0)))
		}
		i, ok := normAxis(a.I, x.Rank())
		if !ok {
			return InferResult{}, fmt.Errorf("axis %d is out of range for rank %d", a.I, x.Rank())
		}
		out := append([]Dim(nil), x.Shape...)
		out[i] = UnknownDim()
		return one(shaped(c.Elem(0), out))
	}
	return one(shaped(c.Elem(0), []Dim{UnknownDim()}))
}

// inferResize scales the dimensions by the known sizes or scales (roi,
// scales, sizes from opset 11; scales only in opset 10 and Upsample).
func inferResize(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	r := x.Rank()
	if r < 0 {
		return one(unranked(c.Elem(0)))
	}
	scalesIdx, sizesIdx := 2, 3
	if c.Node.Op == "Upsample" || !c.AtLeast(11) {
		scalesIdx, sizesIdx = 1, -1
	}
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(i)
	}
	if a, ok := c.AttrInts("axes"); ok && c.AtLeast(18) {
		axes = a
	}
	out := append([]Dim(nil), x.Shape...)
	unknownAxes := func() (InferResult, error) {
		for _, a := range axes {
			if i, ok := normAxis(a, r); ok {
				out[i] = UnknownDim()
			}
		}
		return one(shaped(c.Elem(0), out))
	}
	if policy := c.AttrString("keep_aspect_ratio_policy", "stretch"); policy != "stretch" {
		return unknownAxes()
	}
	if sizesIdx >= 0 && c.Has(sizesIdx) && c.Rank(sizesIdx) == 1 && !(c.Type(sizesIdx).Shape[0].IsKnown() && c.Type(sizesIdx).Shape[0].Size == 0) {
		sizes := c.Sym(sizesIdx)
		if sizes == nil || len(sizes) != len(axes) {
			return unknownAxes()
		}
		for k, a := range axes {
			i, ok := normAxis(a, r)
			if !ok {
				return unknownAxes()
			}
			out[i] = sizes[k].Dim()
		}
		return one(shaped(c.Elem(0), out))
	}
	var scales []float64
	if c.Node.Op == "Upsample" && !c.AtLeast(9) {
		if a := c.Node.Attr("scales"); a != nil && a.Type == AttrFloats {
			for _, f := range a.Floats {
				scales = append(scales, float64(f))
			}
		}
	} else if c.Has(scalesIdx) {
		scales, _ = c.Floats(scalesIdx)
	}
	if len(scales) != len(axes) {
		return unknownAxes()
	}
	for k, a := range axes {
		i, ok := normAxis(a, r)
		if !ok {
			return unknownAxes()
		}
		d := x.Shape[i]
		switch {
		case scales[k] == 1:
		case d.IsKnown():
			out[i] = Known(int64(math.Floor(float64(d.Size) * scales[k])))
		default:
			out[i] = UnknownDim()
		}
	}
	return one(shaped(c.Elem(0), out))
}
