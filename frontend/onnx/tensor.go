package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// dataTypeName names an ONNX element type number for error messages.
func dataTypeName(dt int32) string {
	if name, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return fmt.Sprintf("%s (%d)", name, dt)
	}
	return fmt.Sprintf("%d", dt)
}

// tensor converts a TensorProto into an ir.Tensor whose bytes are in raw
// little-endian layout. Large raw_data and external data stay views; typed
// fields are converted into a fresh buffer.
func (d *decoder) tensor(tp *onnxpb.TensorProto) (*ir.Tensor, error) {
	dt := ir.DataType(tp.GetDataType())
	if dt == ir.Undefined || !dt.Known() {
		return nil, fmt.Errorf("unsupported or unknown data type %s", dataTypeName(tp.GetDataType()))
	}
	dims := tp.GetDims()
	n := ir.NumElements(dims)
	if n < 0 {
		return nil, fmt.Errorf("dimensions %v are negative or their product overflows", dims)
	}
	var t *ir.Tensor
	var err error
	if dt == ir.String {
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			return nil, fmt.Errorf("string tensors cannot use external data")
		}
		strs := tp.GetStringData()
		if int64(len(strs)) != n {
			return nil, fmt.Errorf("has %d strings, its shape %v needs %d", len(strs), dims, n)
		}
		t, err = ir.NewStringTensor(dims, strs)
	} else {
		want := dt.ByteSize(n)
		if want < 0 {
			return nil, fmt.Errorf("shape %v of %v is too large", dims, dt)
		}
		var data []byte
		var ext *ir.ExternalRef
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			data, ext, err = d.externalData(tp, want)
		} else {
			data, err = d.tensorBytes(tp, dt, n, want)
		}
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != want {
			return nil, fmt.Errorf("data is %d bytes, its shape %v of %v needs %d", len(data), dims, dt, want)
		}
		t, err = ir.NewTensor(dt, dims, data)
		if t != nil {
			t.External = ext
		}
	}
	if err != nil {
		return nil, err
	}
	t.Name = tp.GetName()
	t.Doc = tp.GetDocString()
	t.Meta = pairs(tp.GetMetadataProps())
	if s := tp.GetSegment(); s != nil {
		t.Segment = &[2]int64{s.GetBegin(), s.GetEnd()}
	}
	return t, nil
}

// rawData returns the tensor's raw_data, resolving a shadow marker to its
// view of the input.
func (d *decoder) rawData(tp *onnxpb.TensorProto) ([]byte, error) {
	if idx, ok := markerIndex(tp.ProtoReflect().GetUnknown()); ok {
		if idx < 0 || idx >= len(d.side) {
			return nil, fmt.Errorf("internal error: raw_data marker %d out of range", idx)
		}
		return d.side[idx], nil
	}
	return tp.GetRawData(), nil
}

// tensorBytes returns the raw layout of a non-string tensor stored in the
// model, from raw_data or from the typed field its element type uses.
func (d *decoder) tensorBytes(tp *onnxpb.TensorProto, dt ir.DataType, n, want int64) ([]byte, error) {
	raw, err := d.rawData(tp)
	if err != nil {
		return nil, err
	}
	if len(raw) > 0 || n == 0 {
		if int64(len(raw)) != want {
			return nil, fmt.Errorf("raw_data is %d bytes, its shape %v of %v needs %d", len(raw), tp.GetDims(), dt, want)
		}
		return raw, nil
	}
	// Check the typed field's length before allocating: the shape may
	// claim far more elements than the file holds.
	field, have, need := typedField(tp, dt, n, want)
	if field == "" {
		return nil, fmt.Errorf("has no data for element type %v", dt)
	}
	if have == 0 {
		return nil, fmt.Errorf("has no data (neither raw_data nor %s), its shape %v of %v needs %d values", field, tp.GetDims(), dt, need)
	}
	if int64(have) != need {
		return nil, fmt.Errorf("%s has %d values, its shape %v of %v needs %d", field, have, tp.GetDims(), dt, need)
	}
	out := make([]byte, want)
	switch dt {
	case ir.Float, ir.Complex64:
		for i, v := range tp.GetFloatData() {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case ir.Double, ir.Complex128:
		for i, v := range tp.GetDoubleData() {
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(v))
		}
	case ir.Int64:
		for i, v := range tp.GetInt64Data() {
			binary.LittleEndian.PutUint64(out[8*i:], uint64(v))
		}
	case ir.Uint64:
		for i, v := range tp.GetUint64Data() {
			binary.LittleEndian.PutUint64(out[8*i:], v)
		}
	case ir.Uint32:
		for i, v := range tp.GetUint64Data() {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
		}
	case ir.Int32:
		for i, v := range tp.GetInt32Data() {
			binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
		}
	case ir.Int16, ir.Uint16, ir.Float16, ir.BFloat16:
		for i, v := range tp.GetInt32Data() {
			binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
		}
	default:
		// 8-bit types hold one element per int32_data entry; 4- and 2-bit
		// types one packed byte (two or four elements): either way one
		// byte of the raw layout per entry.
		for i, v := range tp.GetInt32Data() {
			out[i] = byte(v)
		}
	}
	return out, nil
}

// typedField names the typed field an element type uses, how many values
// it holds, and how many the shape needs.
func typedField(tp *onnxpb.TensorProto, dt ir.DataType, n, want int64) (string, int, int64) {
	switch dt {
	case ir.Float:
		return "float_data", len(tp.GetFloatData()), n
	case ir.Complex64:
		return "float_data", len(tp.GetFloatData()), 2 * n
	case ir.Double:
		return "double_data", len(tp.GetDoubleData()), n
	case ir.Complex128:
		return "double_data", len(tp.GetDoubleData()), 2 * n
	case ir.Int64:
		return "int64_data", len(tp.GetInt64Data()), n
	case ir.Uint64, ir.Uint32:
		return "uint64_data", len(tp.GetUint64Data()), n
	case ir.Int32, ir.Int16, ir.Uint16, ir.Float16, ir.BFloat16,
		ir.Int8, ir.Uint8, ir.Bool, ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ, ir.Float8E8M0:
		return "int32_data", len(tp.GetInt32Data()), n
	case ir.Int4, ir.Uint4, ir.Float4E2M1, ir.Int2, ir.Uint2:
		return "int32_data (packed bytes)", len(tp.GetInt32Data()), want
	}
	return "", 0, 0
}

// tensorProto encodes t with raw_data (strings in string_data). name
// overrides t.Name when non-empty (initializers are named by their value).
func tensorProto(t *ir.Tensor, name string) (*onnxpb.TensorProto, error) {
	if t == nil {
		return nil, fmt.Errorf("tensor is missing")
	}
	if name == "" {
		name = t.Name
	}
	if !t.HasData() {
		return nil, fmt.Errorf("tensor %q has no data (it was parsed from IR text that printed only its digest)", name)
	}
	tp := &onnxpb.TensorProto{
		Dims:          append([]int64(nil), t.Dims...),
		DataType:      int32(t.DType),
		Name:          name,
		DocString:     t.Doc,
		MetadataProps: pairProtos(t.Meta),
	}
	if t.Segment != nil {
		tp.Segment = &onnxpb.TensorProto_Segment{Begin: t.Segment[0], End: t.Segment[1]}
	}
	if t.DType == ir.String {
		tp.StringData = t.Strings
	} else {
		tp.RawData = t.Bytes()
	}
	return tp, nil
}

func pairs(ps []*onnxpb.StringStringEntryProto) []ir.StringPair {
	if len(ps) == 0 {
		return nil
	}
	out := make([]ir.StringPair, len(ps))
	for i, p := range ps {
		out[i] = ir.StringPair{Key: p.GetKey(), Value: p.GetValue()}
	}
	return out
}

func pairProtos(ps []ir.StringPair) []*onnxpb.StringStringEntryProto {
	if len(ps) == 0 {
		return nil
	}
	out := make([]*onnxpb.StringStringEntryProto, len(ps))
	for i, p := range ps {
		out[i] = &onnxpb.StringStringEntryProto{Key: p.Key, Value: p.Value}
	}
	return out
}
