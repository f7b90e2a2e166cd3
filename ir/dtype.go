package ir

import "fmt"

// DataType is a tensor element type. The numbering is ONNX's
// TensorProto.DataType, so converting to and from the wire is a cast.
type DataType int32

// Element types, numbered as in onnx.proto.
const (
	Undefined      DataType = 0
	Float          DataType = 1
	Uint8          DataType = 2
	Int8           DataType = 3
	Uint16         DataType = 4
	Int16          DataType = 5
	Int32          DataType = 6
	Int64          DataType = 7
	String         DataType = 8
	Bool           DataType = 9
	Float16        DataType = 10
	Double         DataType = 11
	Uint32         DataType = 12
	Uint64         DataType = 13
	Complex64      DataType = 14
	Complex128     DataType = 15
	BFloat16       DataType = 16
	Float8E4M3FN   DataType = 17
	Float8E4M3FNUZ DataType = 18
	Float8E5M2     DataType = 19
	Float8E5M2FNUZ DataType = 20
	Uint4          DataType = 21
	Int4           DataType = 22
	Float4E2M1     DataType = 23
	Float8E8M0     DataType = 24
	Uint2          DataType = 25
	Int2           DataType = 26
)

type dtypeInfo struct {
	short string // name in the IR text form
	bits  int    // storage bits per element; 0 for String
}

var dtypeTable = map[DataType]dtypeInfo{
	Undefined:      {"undef", 0},
	Float:          {"f32", 32},
	Uint8:          {"u8", 8},
	Int8:           {"i8", 8},
	Uint16:         {"u16", 16},
	Int16:          {"i16", 16},
	Int32:          {"i32", 32},
	Int64:          {"i64", 64},
	String:         {"str", 0},
	Bool:           {"bool", 8},
	Float16:        {"f16", 16},
	Double:         {"f64", 64},
	Uint32:         {"u32", 32},
	Uint64:         {"u64", 64},
	Complex64:      {"c64", 64},
	Complex128:     {"c128", 128},
	BFloat16:       {"bf16", 16},
	Float8E4M3FN:   {"f8e4m3fn", 8},
	Float8E4M3FNUZ: {"f8e4m3fnuz", 8},
	Float8E5M2:     {"f8e5m2", 8},
	Float8E5M2FNUZ: {"f8e5m2fnuz", 8},
	Uint4:          {"u4", 4},
	Int4:           {"i4", 4},
	Float4E2M1:     {"f4e2m1", 4},
	Float8E8M0:     {"f8e8m0", 8},
	Uint2:          {"u2", 2},
	Int2:           {"i2", 2},
}

var dtypeByShort = func() map[string]DataType {
	m := make(map[string]DataType, len(dtypeTable))
	for dt, info := range dtypeTable {
		m[info.short] = dt
	}
	return m
}()

// Known reports whether dt is one of the element types this package knows.
func (dt DataType) Known() bool { _, ok := dtypeTable[dt]; return ok }

// String returns the short name used in the IR text form ("f32", "i64", ...),
// or "dtype(N)" for a number this package does not know.
func (dt DataType) String() string {
	if info, ok := dtypeTable[dt]; ok {
		return info.short
	}
	return fmt.Sprintf("dtype(%d)", int32(dt))
}

// ParseDataType is the inverse of DataType.String.
func ParseDataType(s string) (DataType, bool) {
	dt, ok := dtypeByShort[s]
	if ok {
		return dt, true
	}
	var n int32
	if _, err := fmt.Sscanf(s, "dtype(%d)", &n); err == nil {
		return DataType(n), true
	}
	return Undefined, false
}

// Bits is the storage size of one element in bits (4 for int4, 16 for
// float16, ...). It is 0 for String and for unknown types.
func (dt DataType) Bits() int { return dtypeTable[dt].bits }

// IsFloat reports whether dt is a floating-point type of any width.
func (dt DataType) IsFloat() bool {
	switch dt {
	case Float, Double, Float16, BFloat16, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float4E2M1, Float8E8M0:
		return true
	}
	return false
}

// IsInteger reports whether dt is a signed or unsigned integer type.
func (dt DataType) IsInteger() bool {
	switch dt {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64, Uint4, Int4, Uint2, Int2:
		return true
	}
	return false
}

// ByteSize returns the number of bytes that n elements of dt occupy in
// ONNX raw_data layout (sub-byte types are packed, low nibble first), or -1
// for String or unknown types, or when the size overflows.
func (dt DataType) ByteSize(n int64) int64 {
	bits := int64(dt.Bits())
	if bits == 0 || n < 0 {
		return -1
	}
	if n > (1<<62)/bits {
		return -1
	}
	return (n*bits + 7) / 8
}
