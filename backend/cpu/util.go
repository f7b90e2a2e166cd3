package cpu

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/tfc-compiler/tfc/ir"
)

// number is every element type kernels compute on directly.
type number interface {
	~float32 | ~float64 | ~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// typeSet is a set of element types (bit i is ir.DataType(i)).
type typeSet uint64

func typesOf(dts ...ir.DataType) typeSet {
	var s typeSet
	for _, dt := range dts {
		s |= 1 << uint(dt)
	}
	return s
}

func (s typeSet) has(dt ir.DataType) bool { return dt >= 0 && dt < 64 && s&(1<<uint(dt)) != 0 }

// typeOrder is the order element types are listed in messages and docs.
var typeOrder = []ir.DataType{ir.Float, ir.Float16, ir.BFloat16, ir.Double, ir.Int8, ir.Int16, ir.Int32, ir.Int64,
	ir.Uint8, ir.Uint16, ir.Uint32, ir.Uint64, ir.Bool, ir.String, ir.Float8E4M3FN, ir.Float8E4M3FNUZ,
	ir.Float8E5M2, ir.Float8E5M2FNUZ, ir.Float8E8M0, ir.Float4E2M1, ir.Int4, ir.Uint4, ir.Int2, ir.Uint2}

func (s typeSet) String() string {
	var names []string
	for _, dt := range typeOrder {
		if s.has(dt) {
			names = append(names, dt.String())
		}
	}
	return strings.Join(names, ", ")
}

var (
	floatTypes = typesOf(ir.Float, ir.Double, ir.Float16, ir.BFloat16)
	// f32Types are kernels written for float32 only (halves widened).
	f32Types     = typesOf(ir.Float, ir.Float16, ir.BFloat16)
	intTypes     = typesOf(ir.Int8, ir.Int16, ir.Int32, ir.Int64, ir.Uint8, ir.Uint16, ir.Uint32, ir.Uint64)
	signedTypes  = typesOf(ir.Int8, ir.Int16, ir.Int32, ir.Int64)
	numericTypes = floatTypes | intTypes
	allTypes     = numericTypes | typesOf(ir.Bool, ir.String) | lowPrecTypes
	boolTypes    = typesOf(ir.Bool)
	// seqTypes also admits a sequence (element type Undefined) as input 0.
	seqTypes = allTypes | typesOf(ir.Undefined)
)

func isHalf(dt ir.DataType) bool { return dt == ir.Float16 || dt == ir.BFloat16 }

// widenHalf wraps a float32 kernel so that it accepts float16 and
// bfloat16: those inputs are converted to float32, the kernel runs, and
// its float32 outputs are converted back to the first half input's type.
func widenHalf(k kernel) kernel {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		half := ir.Undefined
		var wide []*Tensor
		for i, t := range in {
			if t == nil || !isHalf(t.DType) {
				continue
			}
			if wide == nil {
				wide = append([]*Tensor(nil), in...)
			}
			if half == ir.Undefined {
				half = t.DType
			}
			wide[i] = toFloat32(t)
		}
		if wide == nil {
			return k(r, in)
		}
		outs, err := k(r, wide)
		if err != nil {
			return nil, err
		}
		for i, o := range outs {
			if o != nil && o.DType == ir.Float {
				outs[i] = fromFloat32(o, half)
			}
		}
		return outs, nil
	}
}

// toFloat32 converts any numeric tensor to a new float32 tensor.
func toFloat32(t *Tensor) *Tensor {
	if t.DType == ir.Float {
		return t
	}
	out := make([]float32, t.NumElements())
	switch d := t.Data.(type) {
	case []uint16:
		switch t.DType {
		case ir.Float16:
			for i, v := range d {
				out[i] = f16ToF32(v)
			}
		case ir.BFloat16:
			for i, v := range d {
				out[i] = bf16ToF32(v)
			}
		default:
			convertInto(out, d)
		}
	default:
		f, _ := t.Float64s()
		for i, v := range f {
			out[i] = float32(v)
		}
	}
	return &Tensor{DType: ir.Float, Shape: t.Shape, Data: out}
}

// fromFloat32 converts a float32 tensor to float16 or bfloat16.
func fromFloat32(t *Tensor, dt ir.DataType) *Tensor {
	src := t.Data.([]float32)
	out := make([]uint16, len(src))
	if dt == ir.Float16 {
		for i, v := range src {
			out[i] = f32ToF16(v)
		}
	} else {
		for i, v := range src {
			out[i] = f32ToBF16(v)
		}
	}
	return &Tensor{DType: dt, Shape: t.Shape, Data: out}
}

// parallelFor runs body over [0,n) split into contiguous chunks on up to
// r.threads goroutines. body must only write disjoint parts of shared
// output.
func (r *runState) parallelFor(n int, body func(lo, hi int)) {
	threads := threadsOf(r)
	if threads <= 1 || n <= 1 {
		body(0, n)
		return
	}
	threads = min(threads, n)
	chunk := (n + threads - 1) / threads
	goEach((n+chunk-1)/chunk, func(w int) {
		body(w*chunk, min((w+1)*chunk, n))
	}, nil)
}

// goEach runs f(0), ..., f(k-1) on k goroutines and waits for all. A
// panic in one is re-raised on the caller's goroutine once all have
// stopped (the executor recovers it at the node boundary and reports it
// with the node); onPanic, when set, runs in the panicking goroutine
// first, e.g. to make the others stop early.
func goEach(k int, f func(w int), onPanic func()) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var panicked any
	for w := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					mu.Lock()
					panicked = p
					mu.Unlock()
					if onPanic != nil {
						onPanic()
					}
				}
			}()
			f(w)
		}()
	}
	wg.Wait()
	if panicked != nil {
		panic(panicked)
	}
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// strides returns row-major strides of shape.
func strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// broadcastShapes returns the numpy broadcast of the given shapes.
func broadcastShapes(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			switch {
			case out[off+i] == d || d == 1:
			case out[off+i] == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
			}
		}
	}
	return out, nil
}

// broadcastIndex returns, for each element of out (row-major), the index
// of the element of a tensor of shape in that broadcasts to it.
func broadcastIndex(in, out []int) []int {
	n := shapeSize(out)
	idx := make([]int, n)
	if n == 0 {
		return idx
	}
	rank := len(out)
	off := rank - len(in)
	st := make([]int, rank) // stride in the input for each output axis, 0 if broadcast
	inSt := strides(in)
	for i := range in {
		if in[i] != 1 {
			st[off+i] = inSt[i]
		}
	}
	if sameShape(in, out) {
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	pos := make([]int, rank)
	cur := 0
	for k := 0; k < n; k++ {
		idx[k] = cur
		for a := rank - 1; a >= 0; a-- {
			pos[a]++
			cur += st[a]
			if pos[a] < out[a] {
				break
			}
			cur -= st[a] * pos[a]
			pos[a] = 0
		}
	}
	return idx
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// take builds a tensor of the given shape whose element k is src's
// element idx[k]; idx[k] < 0 means "fill" (zero, or fill when given).
// It is the reference for every data-movement op.
func take(r *runState, src *Tensor, shape []int, idx []int) *Tensor {
	out := r.mustAlloc(src.DType, shape)
	switch d := src.Data.(type) {
	case []float32:
		takeInto(out.Data.([]float32), d, idx)
	case []float64:
		takeInto(out.Data.([]float64), d, idx)
	case []uint16:
		takeInto(out.Data.([]uint16), d, idx)
	case []int8:
		takeInto(out.Data.([]int8), d, idx)
	case []int16:
		takeInto(out.Data.([]int16), d, idx)
	case []int32:
		takeInto(out.Data.([]int32), d, idx)
	case []int64:
		takeInto(out.Data.([]int64), d, idx)
	case []uint8:
		takeInto(out.Data.([]uint8), d, idx)
	case []uint32:
		takeInto(out.Data.([]uint32), d, idx)
	case []uint64:
		takeInto(out.Data.([]uint64), d, idx)
	case []bool:
		takeInto(out.Data.([]bool), d, idx)
	case []string:
		takeInto(out.Data.([]string), d, idx)
	default:
		panic(fmt.Sprintf("take: unsupported data %T", src.Data))
	}
	return out
}

func takeInto[T any](dst, src []T, idx []int) {
	for k, i := range idx {
		if i >= 0 {
			dst[k] = src[i]
		}
	}
}

// copyElems copies n elements from src[so:] to dst[do:]; both hold the same
// Go slice type.
func copyElems(dst, src any, do, so, n int) {
	switch d := dst.(type) {
	case []float32:
		copy(d[do:do+n], src.([]float32)[so:so+n])
	case []float64:
		copy(d[do:do+n], src.([]float64)[so:so+n])
	case []uint16:
		copy(d[do:do+n], src.([]uint16)[so:so+n])
	case []int8:
		copy(d[do:do+n], src.([]int8)[so:so+n])
	case []int16:
		copy(d[do:do+n], src.([]int16)[so:so+n])
	case []int32:
		copy(d[do:do+n], src.([]int32)[so:so+n])
	case []int64:
		copy(d[do:do+n], src.([]int64)[so:so+n])
	case []uint8:
		copy(d[do:do+n], src.([]uint8)[so:so+n])
	case []uint32:
		copy(d[do:do+n], src.([]uint32)[so:so+n])
	case []uint64:
		copy(d[do:do+n], src.([]uint64)[so:so+n])
	case []bool:
		copy(d[do:do+n], src.([]bool)[so:so+n])
	case []string:
		copy(d[do:do+n], src.([]string)[so:so+n])
	default:
		panic(fmt.Sprintf("copyElems: unsupported data %T", dst))
	}
}

// view returns a tensor sharing t's data with another shape (Reshape and
// friends). The runtime counts references per backing array, so sharing
// is safe.
func view(t *Tensor, shape []int) *Tensor {
	return &Tensor{DType: t.DType, Shape: shape, Data: t.Data}
}

// intValues reads an integer tensor (shape operands, axes, indices) as
// int64s.
func intValues(t *Tensor) ([]int64, error) {
	if t == nil {
		return nil, fmt.Errorf("missing integer operand")
	}
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	case []int16:
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	case []int8:
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	case []uint8:
		if miniFloatTypes.has(t.DType) {
			break // float codes are not integers
		}
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	case []uint32:
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	case []uint16:
		if t.DType != ir.Uint16 {
			break // float16/bfloat16 bits are not integers
		}
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	case []uint64:
		out := make([]int64, len(d))
		convertInto(out, d)
		return out, nil
	}
	return nil, fmt.Errorf("expected an integer tensor, got %v", t.DType)
}

// scalarFloat reads a one-element numeric tensor as float64.
func scalarFloat(t *Tensor) (float64, error) {
	if t == nil || t.NumElements() != 1 {
		return 0, fmt.Errorf("expected a one-element tensor, got %v", t)
	}
	f, ok := t.Float64s()
	if !ok {
		return 0, fmt.Errorf("expected a numeric tensor, got %v", t.DType)
	}
	return f[0], nil
}

// toShape converts int64 dimensions to ints, rejecting negative ones.
func toShape(dims []int64) ([]int, error) {
	out := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 || d > math.MaxInt32*64 {
			return nil, fmt.Errorf("invalid dimension %d in %v", d, dims)
		}
		out[i] = int(d)
	}
	return out, nil
}

// f32 returns float32 data, panicking (recovered at the node boundary and
// reported with the node) when a kernel was handed another type, which the
// element-type checks should have caught.
func f32(t *Tensor) []float32 { return t.Data.([]float32) }

// inputN returns in[i], or nil when the input is absent.
func inputN(in []*Tensor, i int) *Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// needInputs checks that the first n inputs are present.
func needInputs(in []*Tensor, n int) error {
	for i := 0; i < n; i++ {
		if i >= len(in) || in[i] == nil {
			return fmt.Errorf("input %d is required", i)
		}
	}
	return nil
}

// convertData converts the elements of src (any numeric or bool tensor)
// into a new tensor of element type dt, with ONNX Cast semantics.
func convertData(r *runState, src *Tensor, dt ir.DataType) (*Tensor, error) {
	return castData(r, src, dt, true, "up")
}

// castData is convertData with Cast's saturate and round_mode attributes,
// which matter for float8 targets.
func castData(r *runState, src *Tensor, dt ir.DataType, saturate bool, roundMode string) (*Tensor, error) {
	out, err := r.alloc(dt, src.Shape)
	if err != nil {
		return nil, err
	}
	if src.DType == dt {
		copyElems(out.Data, src.Data, 0, 0, src.NumElements())
		return out, nil
	}
	if src.DType == ir.String || dt == ir.String {
		return nil, fmt.Errorf("cast between %v and %v is not supported", src.DType, dt)
	}
	if lowPrecTypes.has(dt) {
		var iv []int64
		var fv []float64
		if (intTypes | lowIntTypes).has(src.DType) {
			iv, err = intValues(src)
		} else if v, ok := src.Float64s(); ok {
			fv = v
		} else {
			return nil, fmt.Errorf("cannot cast %v to %v", src.DType, dt)
		}
		if err != nil {
			return nil, err
		}
		storeLowPrec(out, fv, iv, saturate, roundMode)
		return out, nil
	}
	// Integers keep full precision through int64; floats go through
	// float64.
	if (intTypes | boolTypes | lowIntTypes).has(src.DType) && (intTypes | boolTypes).has(dt) {
		var iv []int64
		if b, ok := src.Data.([]bool); ok {
			iv = make([]int64, len(b))
			for i, v := range b {
				if v {
					iv[i] = 1
				}
			}
		} else {
			var err error
			if iv, err = intValues(src); err != nil {
				return nil, err
			}
		}
		storeInts(out, iv)
		return out, nil
	}
	fv, ok := src.Data.([]float64)
	if !ok {
		var ok2 bool
		if fv, ok2 = src.Float64s(); !ok2 {
			return nil, fmt.Errorf("cannot cast %v", src.DType)
		}
	}
	storeFloats(out, fv)
	return out, nil
}

func storeInts(out *Tensor, iv []int64) {
	switch d := out.Data.(type) {
	case []int8:
		convertInto(d, iv)
	case []int16:
		convertInto(d, iv)
	case []int32:
		convertInto(d, iv)
	case []int64:
		copy(d, iv)
	case []uint8:
		convertInto(d, iv)
	case []uint16:
		convertInto(d, iv)
	case []uint32:
		convertInto(d, iv)
	case []uint64:
		convertInto(d, iv)
	case []bool:
		for i, v := range iv {
			d[i] = v != 0
		}
	}
}

// storeFloats writes float64 values into out with C-like conversion for
// integers (truncation toward zero; NaN and out-of-range become the
// integer's minimum, as on x86) and rounding for floats.
func storeFloats(out *Tensor, fv []float64) {
	switch d := out.Data.(type) {
	case []float32:
		for i, v := range fv {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, fv)
	case []uint16:
		switch out.DType {
		case ir.Float16:
			for i, v := range fv {
				d[i] = f32ToF16(float32(v))
			}
		case ir.BFloat16:
			for i, v := range fv {
				d[i] = f32ToBF16(float32(v))
			}
		default:
			for i, v := range fv {
				d[i] = uint16(int64(v))
			}
		}
	case []int8:
		for i, v := range fv {
			d[i] = int8(int64(v))
		}
	case []int16:
		for i, v := range fv {
			d[i] = int16(int64(v))
		}
	case []int32:
		for i, v := range fv {
			d[i] = int32(int64(v))
		}
	case []int64:
		for i, v := range fv {
			d[i] = int64(v)
		}
	case []uint8:
		for i, v := range fv {
			d[i] = uint8(int64(v))
		}
	case []uint32:
		for i, v := range fv {
			d[i] = uint32(int64(v))
		}
	case []uint64:
		for i, v := range fv {
			d[i] = uint64(v)
		}
	case []bool:
		for i, v := range fv {
			d[i] = v != 0
		}
	}
}
