package ir

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"unsafe"
)

// StringPair is a key/value pair of ONNX metadata_props, kept in order.
type StringPair struct {
	Key, Value string
}

// ExternalRef records where a tensor's bytes were stored outside the model
// file. The bytes themselves are always reachable through Tensor.Bytes; this
// is kept for reporting and so that an encoder can keep the layout.
type ExternalRef struct {
	Location string // path relative to the model's folder
	Offset   int64
	Length   int64
	// Extra holds any other external_data entries (e.g. "checksum"), in order.
	Extra []StringPair
}

// Tensor is constant data: an element type, dimensions and the bytes in
// ONNX raw_data layout (little-endian, sub-byte types packed low bits
// first). The bytes are a view: they may alias a memory-mapped model file
// and must never be written through. Strings are held separately.
type Tensor struct {
	Name    string // the tensor's own name (attribute tensors); initializers are named by their Value
	DType   DataType
	Dims    []int64
	data    []byte
	Strings [][]byte // element data when DType == String
	// Digest is set, and data nil, for a tensor parsed from IR text that
	// printed only its hash: such a tensor can be printed again but has no
	// data to compute with.
	Digest   string
	External *ExternalRef
	Segment  *[2]int64 // ONNX TensorProto.segment (begin, end), rarely used
	Doc      string
	Meta     []StringPair
}

// NewTensor returns a tensor viewing data, which must hold exactly the
// bytes the element type and dimensions need. The slice is not copied.
func NewTensor(dt DataType, dims []int64, data []byte) (*Tensor, error) {
	t := &Tensor{DType: dt, Dims: append([]int64(nil), dims...), data: data}
	if err := t.checkSize(); err != nil {
		return nil, err
	}
	return t, nil
}

// MustTensor is NewTensor for tests and generated code; it panics on a size
// mismatch, which is a programming error there.
func MustTensor(dt DataType, dims []int64, data []byte) *Tensor {
	t, err := NewTensor(dt, dims, data)
	if err != nil {
		panic(err)
	}
	return t
}

// NumElements returns the product of the dimensions, or -1 if a dimension is
// negative or the product overflows int64.
func NumElements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// NumElements returns the number of elements, or -1 for invalid dimensions.
func (t *Tensor) NumElements() int64 { return NumElements(t.Dims) }

func (t *Tensor) checkSize() error {
	n := t.NumElements()
	if n < 0 {
		return fmt.Errorf("tensor dimensions %v are negative or their product overflows", t.Dims)
	}
	if t.DType == String {
		if int64(len(t.Strings)) != n {
			return fmt.Errorf("string tensor has %d elements, its shape %v needs %d", len(t.Strings), t.Dims, n)
		}
		return nil
	}
	want := t.DType.ByteSize(n)
	if want < 0 {
		return fmt.Errorf("tensor has unsupported element type %v", t.DType)
	}
	if int64(len(t.data)) != want {
		return fmt.Errorf("tensor data is %d bytes, its shape %v of %v needs %d", len(t.data), t.Dims, t.DType, want)
	}
	return nil
}

// Bytes returns the raw bytes (a view; do not modify).
func (t *Tensor) Bytes() []byte { return t.data }

// HasData reports whether the tensor carries its data (false only for
// tensors parsed from IR text that printed a digest).
func (t *Tensor) HasData() bool { return t.Digest == "" }

// Type returns the tensor's type.
func (t *Tensor) Type() Type { return TensorOfSizes(t.DType, t.Dims...) }

// Hash returns a stable hex digest of the element type, dimensions and data.
// A tensor parsed from a digest returns that digest.
func (t *Tensor) Hash() string {
	if t.Digest != "" {
		return t.Digest
	}
	h := sha256.New()
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(t.DType))
	h.Write(buf[:])
	// The rank goes in first, so that dims [0] with no data and a scalar
	// whose data is eight zero bytes do not hash alike.
	binary.LittleEndian.PutUint64(buf[:], uint64(len(t.Dims)))
	h.Write(buf[:])
	for _, d := range t.Dims {
		binary.LittleEndian.PutUint64(buf[:], uint64(d))
		h.Write(buf[:])
	}
	if t.DType == String {
		for _, s := range t.Strings {
			binary.LittleEndian.PutUint64(buf[:], uint64(len(s)))
			h.Write(buf[:])
			h.Write(s)
		}
	} else {
		h.Write(t.data)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Float32s returns the data of a float32 tensor as a []float32 view of its
// bytes (no copy). It returns false for other types or misaligned data.
func (t *Tensor) Float32s() ([]float32, bool) {
	if t.DType != Float {
		return nil, false
	}
	return viewAs[float32](t.data)
}

// Int64s returns the data of an int64 tensor as a view (no copy).
func (t *Tensor) Int64s() ([]int64, bool) {
	if t.DType != Int64 {
		return nil, false
	}
	return viewAs[int64](t.data)
}

// Int32s returns the data of an int32 tensor as a view (no copy).
func (t *Tensor) Int32s() ([]int32, bool) {
	if t.DType != Int32 {
		return nil, false
	}
	return viewAs[int32](t.data)
}

// viewAs reinterprets little-endian bytes as a slice of T without copying.
// The machines tfc targets (amd64, arm64) are little-endian; the alignment
// check keeps the view legal, and callers fall back to copying otherwise.
func viewAs[T any](b []byte) ([]T, bool) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(b)%size != 0 {
		return nil, false
	}
	if len(b) == 0 {
		return []T{}, true
	}
	if uintptr(unsafe.Pointer(&b[0]))%uintptr(unsafe.Alignof(zero)) != 0 {
		return nil, false
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/size), true
}

// AsInt64s returns the values of an integer tensor (any integer width of at
// least 8 bits, or bool) as int64s, copying. It is meant for the small
// shape-like constants passes read (Reshape targets, axes, ...).
func (t *Tensor) AsInt64s() ([]int64, bool) {
	n := t.NumElements()
	if n < 0 || !t.HasData() {
		return nil, false
	}
	out := make([]int64, n)
	b := t.data
	switch t.DType {
	case Int64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case Int32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case Int16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case Int8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case Uint8, Bool:
		for i := range out {
			out[i] = int64(b[i])
		}
	case Uint16:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case Uint32:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case Uint64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	default:
		return nil, false
	}
	return out, true
}

// Int64Tensor builds an int64 tensor holding vals with the given dims (a
// nil dims means a 1-D tensor of len(vals)). The data is a fresh buffer.
func Int64Tensor(dims []int64, vals ...int64) *Tensor {
	if dims == nil {
		dims = []int64{int64(len(vals))}
	}
	b := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return MustTensor(Int64, dims, b)
}

// Float32Tensor builds a float32 tensor holding vals with the given dims (a
// nil dims means a 1-D tensor of len(vals)). The data is a fresh buffer.
func Float32Tensor(dims []int64, vals ...float32) *Tensor {
	if dims == nil {
		dims = []int64{int64(len(vals))}
	}
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return MustTensor(Float, dims, b)
}

// SparseTensor is ONNX's SparseTensorProto: values, indices (either [NNZ]
// linear or [NNZ, rank] coordinates) and the dense shape.
type SparseTensor struct {
	Values  *Tensor
	Indices *Tensor
	Dims    []int64
}

// NewStringTensor returns a string tensor.
func NewStringTensor(dims []int64, vals [][]byte) (*Tensor, error) {
	t := &Tensor{DType: String, Dims: append([]int64(nil), dims...), Strings: vals}
	if err := t.checkSize(); err != nil {
		return nil, err
	}
	return t, nil
}

// NewDigestTensor returns a tensor that knows only its type and the digest
// of its data, as printed by the IR text form for large constants.
func NewDigestTensor(dt DataType, dims []int64, digest string) *Tensor {
	return &Tensor{DType: dt, Dims: append([]int64(nil), dims...), Digest: digest}
}
