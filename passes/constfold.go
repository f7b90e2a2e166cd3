package passes

import (
	"encoding/binary"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// intTensor is a small integer tensor being folded: values held as int64
// whatever the element type (Int64 or Int32), written back in that type.
type intTensor struct {
	dt   ir.DataType
	dims []int64
	vals []int64
}

func (t *intTensor) size() int64 { return ir.NumElements(t.dims) }

// nonNilDims keeps a scalar's empty dims from reading as "1-D" to the ir
// tensor constructors, which take nil dims to mean 1-D.
func nonNilDims(d []int64) []int64 {
	if d == nil {
		return []int64{}
	}
	return slices.Clone(d)
}

// tensor converts back to an ir.Tensor of t's element type.
func (t *intTensor) tensor() *ir.Tensor {
	switch t.dt {
	case ir.Int32:
		b := make([]byte, 4*len(t.vals))
		for i, v := range t.vals {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
		}
		return ir.MustTensor(ir.Int32, nonNilDims(t.dims), b)
	default:
		return ir.Int64Tensor(nonNilDims(t.dims), t.vals...)
	}
}

// folder evaluates ops on small integer constants. Each method returns
// false to decline: the node then stays as it is and runs at run time,
// where a real error (an index out of range) is reported with its inputs.
type folder struct {
	limit int64 // the most elements an input or output may have
}

// constInt reads a constant as an intTensor if it is an Int64 or Int32
// tensor with at most limit elements and not a graph input (whose default
// may be overridden).
func (f *folder) constInt(v *ir.Value) (*intTensor, bool) {
	if !isFixedConst(v) || v.Const == nil || !v.Const.HasData() {
		return nil, false
	}
	t := v.Const
	if t.DType != ir.Int64 && t.DType != ir.Int32 {
		return nil, false
	}
	if n := t.NumElements(); n < 0 || n > f.limit {
		return nil, false
	}
	vals, ok := t.AsInt64s()
	if !ok {
		return nil, false
	}
	return &intTensor{dt: t.DType, dims: slices.Clone(t.Dims), vals: vals}, true
}

// fold evaluates n when it is one of the folded ops with constant inputs
// and returns its output tensors.
func (f *folder) fold(n *ir.Node, opset int64) ([]*ir.Tensor, bool) {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return nil, false
	}
	if len(n.Outputs) == 0 || n.Outputs[0] == nil {
		return nil, false
	}
	var out *intTensor
	var ok bool
	switch n.Op {
	case "Constant":
		return f.constantNode(n)
	case "Shape":
		out, ok = f.shape(n)
	case "Add", "Sub", "Mul", "Div":
		out, ok = f.binary(n)
	case "Gather":
		out, ok = f.gather(n)
	case "Unsqueeze":
		out, ok = f.unsqueeze(n)
	case "Squeeze":
		out, ok = f.squeeze(n)
	case "Concat":
		out, ok = f.concat(n)
	case "Reshape":
		out, ok = f.reshape(n)
	case "Slice":
		out, ok = f.slice(n, opset)
	case "Range":
		out, ok = f.rangeOp(n)
	case "Cast":
		return f.cast(n)
	default:
		return nil, false
	}
	if !ok || len(n.Outputs) != 1 || out.size() > f.limit {
		return nil, false
	}
	return []*ir.Tensor{out.tensor()}, true
}

// constantNode turns a Constant node's attribute into a tensor.
func (f *folder) constantNode(n *ir.Node) ([]*ir.Tensor, bool) {
	if len(n.Attrs) != 1 || len(n.Inputs) != 0 {
		return nil, false
	}
	a := n.Attrs[0]
	var t *ir.Tensor
	switch {
	case a.Name == "value" && a.Type == ir.AttrTensor && a.T != nil && a.T.HasData():
		t = a.T
	case a.Name == "value_int" && a.Type == ir.AttrInt:
		t = ir.Int64Tensor([]int64{}, a.I)
	case a.Name == "value_ints" && a.Type == ir.AttrInts:
		t = ir.Int64Tensor(nil, a.Ints...)
	case a.Name == "value_float" && a.Type == ir.AttrFloat:
		t = ir.Float32Tensor([]int64{}, a.F)
	case a.Name == "value_floats" && a.Type == ir.AttrFloats:
		t = ir.Float32Tensor(nil, a.Floats...)
	default:
		// value_string(s) and sparse_value stay as nodes.
		return nil, false
	}
	return []*ir.Tensor{t}, true
}

// shape folds Shape of a value whose selected dimensions are all known.
func (f *folder) shape(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) != 1 || n.Inputs[0] == nil {
		return nil, false
	}
	t := n.Inputs[0].Type
	r := int64(t.Rank())
	if !t.IsTensor() || r < 0 {
		return nil, false
	}
	start := clampAxis(n.AttrInt("start", 0), r)
	end := clampAxis(n.AttrInt("end", r), r)
	var vals []int64
	for i := start; i < end; i++ {
		d := t.Shape[i]
		if !d.IsKnown() {
			return nil, false
		}
		vals = append(vals, d.Size)
	}
	return &intTensor{dt: ir.Int64, dims: []int64{int64(len(vals))}, vals: vals}, true
}

// clampAxis applies Shape's start/end rule: negative counts from the end,
// then clamp to [0, r].
func clampAxis(a, r int64) int64 {
	if a < 0 {
		a += r
	}
	return min(max(a, 0), r)
}

// broadcastDims returns the numpy broadcast of two shapes.
func broadcastDims(a, b []int64) ([]int64, bool) {
	r := max(len(a), len(b))
	out := make([]int64, r)
	for i := range r {
		da, db := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db, db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, false
		}
	}
	return out, true
}

// broadcastIndex maps a flat index of the output shape to one of an input
// shape broadcast to it.
func broadcastIndex(flat int64, out, in []int64) int64 {
	idx, stride := int64(0), int64(1)
	for i := len(out) - 1; i >= 0; i-- {
		c := flat % out[i]
		flat /= out[i]
		if j := i - (len(out) - len(in)); j >= 0 {
			if in[j] != 1 {
				idx += c * stride
			}
			stride *= in[j]
		}
	}
	return idx
}

func (f *folder) binary(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) != 2 {
		return nil, false
	}
	a, ok1 := f.constInt(n.Inputs[0])
	b, ok2 := f.constInt(n.Inputs[1])
	if !ok1 || !ok2 || a.dt != b.dt {
		return nil, false
	}
	dims, ok := broadcastDims(a.dims, b.dims)
	if !ok {
		return nil, false
	}
	size := ir.NumElements(dims)
	if size < 0 || size > f.limit {
		return nil, false
	}
	out := &intTensor{dt: a.dt, dims: dims, vals: make([]int64, size)}
	for i := range size {
		x, y := a.vals[broadcastIndex(i, dims, a.dims)], b.vals[broadcastIndex(i, dims, b.dims)]
		var r int64
		switch n.Op {
		case "Add":
			r = x + y
		case "Sub":
			r = x - y
		case "Mul":
			r = x * y
		case "Div":
			// Truncating and flooring division differ when the
			// quotient is negative and inexact; runtimes disagree
			// there, so leave such a Div to run.
			if y == 0 || (x%y != 0 && (x < 0) != (y < 0)) {
				return nil, false
			}
			r = x / y
		}
		if a.dt == ir.Int32 {
			r = int64(int32(r))
		}
		out.vals[i] = r
	}
	return out, true
}

// strides returns row-major strides of dims.
func strides(dims []int64) []int64 {
	s := make([]int64, len(dims))
	acc := int64(1)
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

func normAxis(axis int64, rank int) (int, bool) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, false
	}
	return int(axis), true
}

func (f *folder) gather(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) != 2 {
		return nil, false
	}
	data, ok1 := f.constInt(n.Inputs[0])
	idx, ok2 := f.constInt(n.Inputs[1])
	if !ok1 || !ok2 || len(data.dims) == 0 {
		return nil, false
	}
	axis, ok := normAxis(n.AttrInt("axis", 0), len(data.dims))
	if !ok {
		return nil, false
	}
	outer := ir.NumElements(data.dims[:axis])
	inner := ir.NumElements(data.dims[axis+1:])
	k := data.dims[axis]
	dims := slices.Concat(data.dims[:axis], idx.dims, data.dims[axis+1:])
	out := &intTensor{dt: data.dt, dims: dims}
	for o := range outer {
		for _, j := range idx.vals {
			if j < 0 {
				j += k
			}
			if j < 0 || j >= k {
				return nil, false
			}
			base := (o*k + j) * inner
			out.vals = append(out.vals, data.vals[base:base+inner]...)
		}
	}
	return out, true
}

// axesOf reads the axes of Squeeze/Unsqueeze: the second input (opset 13)
// when present, else the attribute.
func (f *folder) axesOf(n *ir.Node) ([]int64, bool, bool) {
	if len(n.Inputs) >= 2 && n.Inputs[1] != nil {
		t, ok := f.constInt(n.Inputs[1])
		if !ok {
			return nil, false, false
		}
		return t.vals, true, true
	}
	axes, has := n.AttrInts("axes")
	return axes, has, true
}

func (f *folder) unsqueeze(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) < 1 {
		return nil, false
	}
	x, ok := f.constInt(n.Inputs[0])
	axes, has, ok2 := f.axesOf(n)
	if !ok || !ok2 || !has {
		return nil, false
	}
	r := len(x.dims) + len(axes)
	insert := make([]bool, r)
	for _, a := range axes {
		i, ok := normAxis(a, r)
		if !ok || insert[i] {
			return nil, false
		}
		insert[i] = true
	}
	dims := make([]int64, 0, r)
	k := 0
	for i := range r {
		if insert[i] {
			dims = append(dims, 1)
		} else {
			dims = append(dims, x.dims[k])
			k++
		}
	}
	return &intTensor{dt: x.dt, dims: dims, vals: x.vals}, true
}

func (f *folder) squeeze(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) < 1 {
		return nil, false
	}
	x, ok := f.constInt(n.Inputs[0])
	axes, has, ok2 := f.axesOf(n)
	if !ok || !ok2 {
		return nil, false
	}
	drop := make([]bool, len(x.dims))
	if !has {
		for i, d := range x.dims {
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		i, ok := normAxis(a, len(x.dims))
		if !ok || x.dims[i] != 1 {
			return nil, false
		}
		drop[i] = true
	}
	var dims []int64
	for i, d := range x.dims {
		if !drop[i] {
			dims = append(dims, d)
		}
	}
	if dims == nil {
		dims = []int64{}
	}
	return &intTensor{dt: x.dt, dims: dims, vals: x.vals}, true
}

func (f *folder) concat(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) == 0 {
		return nil, false
	}
	parts := make([]*intTensor, len(n.Inputs))
	for i, in := range n.Inputs {
		t, ok := f.constInt(in)
		if !ok || len(t.dims) == 0 || (i > 0 && (t.dt != parts[0].dt || len(t.dims) != len(parts[0].dims))) {
			return nil, false
		}
		parts[i] = t
	}
	axis, ok := normAxis(n.AttrInt("axis", 0), len(parts[0].dims))
	if !ok {
		return nil, false
	}
	dims := slices.Clone(parts[0].dims)
	dims[axis] = 0
	for _, p := range parts {
		for i := range dims {
			if i != axis && p.dims[i] != dims[i] {
				return nil, false
			}
		}
		dims[axis] += p.dims[axis]
	}
	outer := ir.NumElements(dims[:axis])
	out := &intTensor{dt: parts[0].dt, dims: dims}
	for o := range outer {
		for _, p := range parts {
			chunk := ir.NumElements(p.dims[axis:])
			out.vals = append(out.vals, p.vals[o*chunk:(o+1)*chunk]...)
		}
	}
	return out, true
}

func (f *folder) reshape(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) != 2 {
		return nil, false
	}
	x, ok1 := f.constInt(n.Inputs[0])
	shape, ok2 := f.constInt(n.Inputs[1])
	if !ok1 || !ok2 || len(shape.dims) != 1 {
		return nil, false
	}
	allowZero := n.AttrInt("allowzero", 0) == 1
	dims := make([]int64, len(shape.vals))
	infer := -1
	known := int64(1)
	for i, d := range shape.vals {
		switch {
		case d == 0 && !allowZero:
			if i >= len(x.dims) {
				return nil, false
			}
			dims[i] = x.dims[i]
		case d == -1:
			if infer >= 0 {
				return nil, false
			}
			infer = i
			continue
		case d < 0:
			return nil, false
		default:
			dims[i] = d
		}
		known *= dims[i]
	}
	total := x.size()
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, false
		}
		dims[infer] = total / known
	} else if known != total {
		return nil, false
	}
	return &intTensor{dt: x.dt, dims: dims, vals: x.vals}, true
}

// slice folds Slice: starts/ends/axes/steps as inputs (opset 10 and
// later) or attributes (before).
func (f *folder) slice(n *ir.Node, opset int64) (*intTensor, bool) {
	if len(n.Inputs) < 1 {
		return nil, false
	}
	x, ok := f.constInt(n.Inputs[0])
	if !ok || len(x.dims) == 0 {
		return nil, false
	}
	var starts, ends, axes, steps []int64
	if opset != 0 && opset < 10 {
		var ok1, ok2 bool
		starts, ok1 = n.AttrInts("starts")
		ends, ok2 = n.AttrInts("ends")
		if !ok1 || !ok2 {
			return nil, false
		}
		axes, _ = n.AttrInts("axes")
	} else {
		read := func(i int) ([]int64, bool, bool) {
			if i >= len(n.Inputs) || n.Inputs[i] == nil {
				return nil, false, true
			}
			t, ok := f.constInt(n.Inputs[i])
			if !ok {
				return nil, false, false
			}
			return t.vals, true, true
		}
		var has, ok bool
		if starts, has, ok = read(1); !has || !ok {
			return nil, false
		}
		if ends, has, ok = read(2); !has || !ok {
			return nil, false
		}
		if axes, _, ok = read(3); !ok {
			return nil, false
		}
		if steps, _, ok = read(4); !ok {
			return nil, false
		}
	}
	r := len(x.dims)
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = make([]int64, len(starts))
		for i := range steps {
			steps[i] = 1
		}
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, false
	}
	// Per axis: first index, step, count.
	first := make([]int64, r)
	step := make([]int64, r)
	count := slices.Clone(x.dims)
	for i := range step {
		step[i] = 1
	}
	seen := make([]bool, r)
	for i, a := range axes {
		ax, ok := normAxis(a, r)
		if !ok || seen[ax] || steps[i] == 0 {
			return nil, false
		}
		seen[ax] = true
		d := x.dims[ax]
		s, e, st := starts[i], ends[i], steps[i]
		if s < 0 {
			s += d
		}
		if e < 0 {
			e += d
		}
		if st > 0 {
			s, e = min(max(s, 0), d), min(max(e, 0), d)
		} else {
			s, e = min(max(s, 0), d-1), min(max(e, -1), d-1)
		}
		var c int64
		if st > 0 && e > s {
			c = (e - s + st - 1) / st
		} else if st < 0 && s > e {
			c = (s - e + (-st) - 1) / (-st)
		}
		first[ax], step[ax], count[ax] = s, st, c
	}
	total := ir.NumElements(count)
	if total < 0 || total > f.limit {
		return nil, false
	}
	in := strides(x.dims)
	out := &intTensor{dt: x.dt, dims: count, vals: make([]int64, 0, total)}
	idx := make([]int64, r)
	for range total {
		off := int64(0)
		for i := range r {
			off += (first[i] + idx[i]*step[i]) * in[i]
		}
		out.vals = append(out.vals, x.vals[off])
		for i := r - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < count[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, true
}

func (f *folder) rangeOp(n *ir.Node) (*intTensor, bool) {
	if len(n.Inputs) != 3 {
		return nil, false
	}
	var s [3]int64
	dt := ir.Undefined
	for i, in := range n.Inputs {
		t, ok := f.constInt(in)
		if !ok || t.size() != 1 || (dt != ir.Undefined && t.dt != dt) {
			return nil, false
		}
		dt = t.dt
		s[i] = t.vals[0]
	}
	start, limit, delta := s[0], s[1], s[2]
	if delta == 0 {
		return nil, false
	}
	count := int64(0)
	if (delta > 0 && limit > start) || (delta < 0 && limit < start) {
		diff, d := limit-start, delta
		if d < 0 {
			diff, d = -diff, -d
		}
		count = (diff + d - 1) / d
	}
	if count > f.limit {
		return nil, false
	}
	out := &intTensor{dt: dt, dims: []int64{count}, vals: make([]int64, count)}
	for i := range count {
		out.vals[i] = start + i*delta
	}
	return out, true
}

// cast folds Cast of a small integer constant to Int64, Int32 or Float.
func (f *folder) cast(n *ir.Node) ([]*ir.Tensor, bool) {
	if len(n.Inputs) != 1 || len(n.Outputs) != 1 {
		return nil, false
	}
	x, ok := f.constInt(n.Inputs[0])
	if !ok {
		return nil, false
	}
	to := ir.DataType(n.AttrInt("to", 0))
	switch to {
	case ir.Int64, ir.Int32:
		out := &intTensor{dt: to, dims: x.dims, vals: slices.Clone(x.vals)}
		if to == ir.Int32 {
			for i, v := range out.vals {
				out.vals[i] = int64(int32(v))
			}
		}
		return []*ir.Tensor{out.tensor()}, true
	case ir.Float:
		vals := make([]float32, len(x.vals))
		for i, v := range x.vals {
			vals[i] = float32(v)
		}
		return []*ir.Tensor{ir.Float32Tensor(nonNilDims(x.dims), vals...)}, true
	}
	return nil, false
}
