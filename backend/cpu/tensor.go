package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// Tensor is a runtime tensor: an element type, a shape and typed data.
//
// Data holds one slice whose Go type follows DType:
//
//	Float []float32, Double []float64, Float16 and BFloat16 []uint16 (bit
//	patterns; kernels compute them in float32), Int8 []int8, Int16 []int16,
//	Int32 []int32, Int64 []int64, Uint8 []uint8, Uint16 []uint16,
//	Uint32 []uint32, Uint64 []uint64, Bool []bool, String []string.
//
// A sequence (ONNX seq(tensor)) is a Tensor with DType Undefined, no
// shape and Data []*Tensor; see NewSequence.
//
// A Tensor given to Run or returned by it is not retained or modified by
// the backend after the call returns.
type Tensor struct {
	DType ir.DataType
	Shape []int
	Data  any
}

// NewSequence returns a sequence holding elems (not copied).
func NewSequence(elems []*Tensor) *Tensor {
	if elems == nil {
		elems = []*Tensor{}
	}
	return &Tensor{DType: ir.Undefined, Data: elems}
}

// optionalData is the payload of an optional value (ONNX optional(T));
// a nil Value is an empty optional.
type optionalData struct{ Value *Tensor }

// NewOptional returns an optional holding v (a tensor or a sequence), or
// an empty optional when v is nil.
func NewOptional(v *Tensor) *Tensor { return &Tensor{DType: ir.Undefined, Data: optionalData{v}} }

// IsOptional reports whether t is an optional value.
func (t *Tensor) IsOptional() bool {
	_, ok := t.Data.(optionalData)
	return ok
}

// OptionalValue returns the value of an optional and whether it has one.
func (t *Tensor) OptionalValue() (*Tensor, bool) {
	o, ok := t.Data.(optionalData)
	return o.Value, ok && o.Value != nil
}

// IsSequence reports whether t is a sequence of tensors.
func (t *Tensor) IsSequence() bool {
	_, ok := t.Data.([]*Tensor)
	return ok && t.DType == ir.Undefined
}

// Elements returns the tensors of a sequence (nil for a tensor).
func (t *Tensor) Elements() []*Tensor {
	if !t.IsSequence() {
		return nil
	}
	return t.Data.([]*Tensor)
}

// NumElements is the product of the shape.
func (t *Tensor) NumElements() int { return shapeSize(t.Shape) }

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// String describes the tensor's type, e.g. "f32[2,3]".
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	if t.IsSequence() {
		return fmt.Sprintf("seq(%d tensors)", len(t.Elements()))
	}
	if t.IsOptional() {
		if v, ok := t.OptionalValue(); ok {
			return "opt(" + v.String() + ")"
		}
		return "opt(empty)"
	}
	return fmt.Sprintf("%v%v", t.DType, t.Shape)
}

// NewTensor allocates a zeroed tensor.
func NewTensor(dt ir.DataType, shape []int) (*Tensor, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d != 0 && n > math.MaxInt32*64/d {
			return nil, fmt.Errorf("shape %v is too large", shape)
		}
		n *= d
	}
	data, err := makeData(dt, n)
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: dt, Shape: slices.Clone(shape), Data: data}, nil
}

// makeData allocates a zeroed slice of n elements of the Go type that
// holds dt.
func makeData(dt ir.DataType, n int) (any, error) {
	switch dt {
	case ir.Float:
		return make([]float32, n), nil
	case ir.Double:
		return make([]float64, n), nil
	case ir.Float16, ir.BFloat16, ir.Uint16:
		return make([]uint16, n), nil
	case ir.Int8, ir.Int4, ir.Int2:
		return make([]int8, n), nil
	case ir.Int16:
		return make([]int16, n), nil
	case ir.Int32:
		return make([]int32, n), nil
	case ir.Int64:
		return make([]int64, n), nil
	case ir.Uint8, ir.Uint4, ir.Uint2, ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ, ir.Float4E2M1, ir.Float8E8M0:
		return make([]uint8, n), nil
	case ir.Uint32:
		return make([]uint32, n), nil
	case ir.Uint64:
		return make([]uint64, n), nil
	case ir.Bool:
		return make([]bool, n), nil
	case ir.String:
		return make([]string, n), nil
	}
	return nil, fmt.Errorf("element type %v is not supported by the CPU backend", dt)
}

// dataLen returns the length of the tensor's data slice, or -1 if Data
// does not hold the slice type DType needs.
func dataLen(t *Tensor) int {
	switch d := t.Data.(type) {
	case []float32:
		if t.DType == ir.Float {
			return len(d)
		}
	case []float64:
		if t.DType == ir.Double {
			return len(d)
		}
	case []uint16:
		if t.DType == ir.Float16 || t.DType == ir.BFloat16 || t.DType == ir.Uint16 {
			return len(d)
		}
	case []int8:
		if t.DType == ir.Int8 || t.DType == ir.Int4 || t.DType == ir.Int2 {
			return len(d)
		}
	case []int16:
		if t.DType == ir.Int16 {
			return len(d)
		}
	case []int32:
		if t.DType == ir.Int32 {
			return len(d)
		}
	case []int64:
		if t.DType == ir.Int64 {
			return len(d)
		}
	case []uint8:
		if t.DType == ir.Uint8 || (lowPrecTypes.has(t.DType) && t.DType != ir.Int4 && t.DType != ir.Int2) {
			return len(d)
		}
	case []uint32:
		if t.DType == ir.Uint32 {
			return len(d)
		}
	case []uint64:
		if t.DType == ir.Uint64 {
			return len(d)
		}
	case []bool:
		if t.DType == ir.Bool {
			return len(d)
		}
	case []string:
		if t.DType == ir.String {
			return len(d)
		}
	}
	return -1
}

// check reports whether the tensor is well formed: data of the right Go
// type and length for its shape.
func (t *Tensor) check() error {
	if t == nil {
		return fmt.Errorf("tensor is nil")
	}
	if t.IsOptional() {
		if v, ok := t.OptionalValue(); ok {
			if v.IsOptional() {
				return fmt.Errorf("an optional must hold a tensor or a sequence")
			}
			return v.check()
		}
		return nil
	}
	if t.IsSequence() {
		for i, e := range t.Elements() {
			if e == nil || e.IsSequence() {
				return fmt.Errorf("sequence element %d must be a tensor", i)
			}
			if err := e.check(); err != nil {
				return fmt.Errorf("sequence element %d: %w", i, err)
			}
		}
		return nil
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	n := dataLen(t)
	if n < 0 {
		return fmt.Errorf("data of Go type %T does not match element type %v", t.Data, t.DType)
	}
	if n != t.NumElements() {
		return fmt.Errorf("data has %d elements, shape %v needs %d", n, t.Shape, t.NumElements())
	}
	if bits := t.DType.Bits(); bits < 8 && lowPrecTypes.has(t.DType) {
		// codes and values of sub-byte types must fit their width
		switch d := t.Data.(type) {
		case []uint8:
			for i, v := range d {
				if v>>bits != 0 {
					return fmt.Errorf("element %d (%d) does not fit %v", i, v, t.DType)
				}
			}
		case []int8:
			for i, v := range d {
				if v < -(1<<(bits-1)) || v >= 1<<(bits-1) {
					return fmt.Errorf("element %d (%d) does not fit %v", i, v, t.DType)
				}
			}
		}
	}
	return nil
}

// FromIR converts a constant to a runtime tensor. The data is copied: an
// ir.Tensor's bytes are a read-only view that may be misaligned (an
// mmapped file), and kernels may write into their pooled buffers.
func FromIR(c *ir.Tensor) (*Tensor, error) {
	if c == nil {
		return nil, fmt.Errorf("constant is nil")
	}
	if !c.HasData() {
		return nil, fmt.Errorf("constant %q has no data (printed as a digest)", c.Name)
	}
	shape := make([]int, len(c.Dims))
	for i, d := range c.Dims {
		if d < 0 || d > math.MaxInt32*64 {
			return nil, fmt.Errorf("constant %q has invalid dimension %d", c.Name, d)
		}
		shape[i] = int(d)
	}
	if c.DType == ir.String {
		s := make([]string, len(c.Strings))
		for i, b := range c.Strings {
			s[i] = string(b)
		}
		return &Tensor{DType: ir.String, Shape: shape, Data: s}, nil
	}
	t, err := NewTensor(c.DType, shape)
	if err != nil {
		return nil, fmt.Errorf("constant %q: %w", c.Name, err)
	}
	if err := decodeRaw(t, c.Bytes()); err != nil {
		return nil, fmt.Errorf("constant %q: %w", c.Name, err)
	}
	return t, nil
}

// decodeRaw fills t's data from little-endian ONNX raw_data bytes.
func decodeRaw(t *Tensor, b []byte) error {
	n := t.NumElements()
	want := t.DType.ByteSize(int64(n))
	if int64(len(b)) != want {
		return fmt.Errorf("raw data is %d bytes, %v%v needs %d", len(b), t.DType, t.Shape, want)
	}
	if lowPrecTypes.has(t.DType) && t.DType.Bits() < 8 {
		decodeLowPrecRaw(t, b)
		return nil
	}
	le := binary.LittleEndian
	switch d := t.Data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case []uint16:
		for i := range d {
			d[i] = le.Uint16(b[2*i:])
		}
	case []int8:
		for i := range d {
			d[i] = int8(b[i])
		}
	case []int16:
		for i := range d {
			d[i] = int16(le.Uint16(b[2*i:]))
		}
	case []int32:
		for i := range d {
			d[i] = int32(le.Uint32(b[4*i:]))
		}
	case []int64:
		for i := range d {
			d[i] = int64(le.Uint64(b[8*i:]))
		}
	case []uint8:
		copy(d, b)
	case []uint32:
		for i := range d {
			d[i] = le.Uint32(b[4*i:])
		}
	case []uint64:
		for i := range d {
			d[i] = le.Uint64(b[8*i:])
		}
	case []bool:
		for i := range d {
			d[i] = b[i] != 0
		}
	default:
		return fmt.Errorf("cannot decode raw data of %v", t.DType)
	}
	return nil
}

// viewIR returns a runtime tensor sharing the bytes of a float32, int64
// or int32 constant when they are aligned (no copy: weights of a large
// model are not duplicated), and a copy otherwise. The runtime never
// writes into buffers it did not allocate, so sharing a read-only
// mapping is safe while the model stays open.
func viewIR(c *ir.Tensor) (*Tensor, error) {
	if c == nil || !c.HasData() {
		return FromIR(c)
	}
	shape := make([]int, len(c.Dims))
	for i, d := range c.Dims {
		if d < 0 || d > math.MaxInt32*64 {
			return nil, fmt.Errorf("constant %q has invalid dimension %d", c.Name, d)
		}
		shape[i] = int(d)
	}
	var data any
	switch c.DType {
	case ir.Float:
		if v, ok := c.Float32s(); ok {
			data = v
		}
	case ir.Int64:
		if v, ok := c.Int64s(); ok {
			data = v
		}
	case ir.Int32:
		if v, ok := c.Int32s(); ok {
			data = v
		}
	}
	if data == nil {
		return FromIR(c)
	}
	t := &Tensor{DType: c.DType, Shape: shape, Data: data}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("constant %q: %w", c.Name, err)
	}
	return t, nil
}

// FromRaw builds a tensor from ONNX raw_data bytes (copied).
func FromRaw(dt ir.DataType, shape []int, raw []byte) (*Tensor, error) {
	t, err := NewTensor(dt, shape)
	if err != nil {
		return nil, err
	}
	if err := decodeRaw(t, raw); err != nil {
		return nil, err
	}
	return t, nil
}

// Float32s returns the tensor's values as float32 (converting any numeric
// element type), for comparisons in tests and tools.
func (t *Tensor) Float64s() ([]float64, bool) {
	n := dataLen(t)
	if n < 0 {
		return nil, false
	}
	if lowPrecTypes.has(t.DType) {
		return lowPrecFloats(t), true
	}
	out := make([]float64, n)
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	case []uint16:
		for i, v := range d {
			switch t.DType {
			case ir.Float16:
				out[i] = float64(f16ToF32(v))
			case ir.BFloat16:
				out[i] = float64(bf16ToF32(v))
			default:
				out[i] = float64(v)
			}
		}
	case []int8:
		convertInto(out, d)
	case []int16:
		convertInto(out, d)
	case []int32:
		convertInto(out, d)
	case []int64:
		convertInto(out, d)
	case []uint8:
		convertInto(out, d)
	case []uint32:
		convertInto(out, d)
	case []uint64:
		convertInto(out, d)
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		return nil, false
	}
	return out, true
}

func convertInto[D, S number](dst []D, src []S) {
	for i, v := range src {
		dst[i] = D(v)
	}
}

// Float32Tensor builds a float32 tensor (the data is not copied).
func Float32Tensor(shape []int, data []float32) *Tensor {
	return &Tensor{DType: ir.Float, Shape: slices.Clone(shape), Data: data}
}

// Int64Tensor builds an int64 tensor (the data is not copied).
func Int64Tensor(shape []int, data []int64) *Tensor {
	return &Tensor{DType: ir.Int64, Shape: slices.Clone(shape), Data: data}
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: slices.Clone(t.Shape)}
	switch d := t.Data.(type) {
	case optionalData:
		if d.Value != nil {
			c.Data = optionalData{d.Value.Clone()}
		} else {
			c.Data = d
		}
	case []*Tensor:
		elems := make([]*Tensor, len(d))
		for i, e := range d {
			elems[i] = e.Clone()
		}
		c.Data = elems
	case []float32:
		c.Data = slices.Clone(d)
	case []float64:
		c.Data = slices.Clone(d)
	case []uint16:
		c.Data = slices.Clone(d)
	case []int8:
		c.Data = slices.Clone(d)
	case []int16:
		c.Data = slices.Clone(d)
	case []int32:
		c.Data = slices.Clone(d)
	case []int64:
		c.Data = slices.Clone(d)
	case []uint8:
		c.Data = slices.Clone(d)
	case []uint32:
		c.Data = slices.Clone(d)
	case []uint64:
		c.Data = slices.Clone(d)
	case []bool:
		c.Data = slices.Clone(d)
	case []string:
		c.Data = slices.Clone(d)
	}
	return c
}

// f16ToF32 converts IEEE half-precision bits to float32.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// f32ToF16 converts float32 to IEEE half-precision bits, rounding to
// nearest even.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rest := mant & (1<<shift - 1)
		m := mant >> shift
		if rest > half || (rest == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	m := mant >> 13
	rest := mant & 0x1fff
	out := uint32(sign) | uint32(e)<<10 | m
	if rest > 0x1000 || (rest == 0x1000 && m&1 == 1) {
		out++ // may carry into the exponent, which is the correct rounding
	}
	return uint16(out)
}

// bf16ToF32 converts bfloat16 bits to float32.
func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// f32ToBF16 converts float32 to bfloat16 bits, rounding to nearest even.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// encodeRaw returns t's data as ONNX raw_data bytes (little-endian); the
// sub-byte types are packed low bits first.
func encodeRaw(t *Tensor) ([]byte, error) {
	n := t.NumElements()
	size := t.DType.ByteSize(int64(n))
	if size < 0 || t.IsSequence() || t.DType == ir.String {
		return nil, fmt.Errorf("%v has no raw byte form", t)
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	if bits := t.DType.Bits(); bits < 8 {
		per := 8 / bits
		mask := byte(1<<bits - 1)
		put := func(i int, v byte) { b[i/per] |= (v & mask) << (uint(i%per) * uint(bits)) }
		switch d := t.Data.(type) {
		case []int8:
			for i, v := range d {
				put(i, byte(v))
			}
		case []uint8:
			for i, v := range d {
				put(i, v)
			}
		}
		return b, nil
	}
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			le.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case []uint16:
		for i, v := range d {
			le.PutUint16(b[2*i:], v)
		}
	case []int8:
		for i, v := range d {
			b[i] = byte(v)
		}
	case []int16:
		for i, v := range d {
			le.PutUint16(b[2*i:], uint16(v))
		}
	case []int32:
		for i, v := range d {
			le.PutUint32(b[4*i:], uint32(v))
		}
	case []int64:
		for i, v := range d {
			le.PutUint64(b[8*i:], uint64(v))
		}
	case []uint8:
		copy(b, d)
	case []uint32:
		for i, v := range d {
			le.PutUint32(b[4*i:], v)
		}
	case []uint64:
		for i, v := range d {
			le.PutUint64(b[8*i:], v)
		}
	case []bool:
		for i, v := range d {
			if v {
				b[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("%v has no raw byte form", t)
	}
	return b, nil
}

// ToIR converts a runtime tensor to an ir.Tensor with freshly encoded
// bytes (for constant folding and tools that write models).
func ToIR(t *Tensor) (*ir.Tensor, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = int64(d)
	}
	if t.DType == ir.String {
		s := t.Data.([]string)
		vals := make([][]byte, len(s))
		for i, v := range s {
			vals[i] = []byte(v)
		}
		return ir.NewStringTensor(dims, vals)
	}
	b, err := encodeRaw(t)
	if err != nil {
		return nil, err
	}
	return ir.NewTensor(t.DType, dims, b)
}
