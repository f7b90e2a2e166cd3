package refdata

import (
	"fmt"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// ReadValue decodes one input_K.pb / output_K.pb file: a serialized
// TensorProto, or a SequenceProto or OptionalProto when typ declares one.
// It returns the value and the name stored in the file ("" when none).
func ReadValue(path string, typ ir.Type) (*cpu.Tensor, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	return decodeValue(path, b, typ)
}

// decodeValue decodes one message by the declared type. SequenceProto
// and OptionalProto (onnx-data.proto) are not among the generated
// bindings, so their few fields are read with protowire: name = 1,
// tensor_values / tensor_value = 3, sequence_value = 5 (optional only).
func decodeValue(path string, b []byte, typ ir.Type) (*cpu.Tensor, string, error) {
	if typ.Kind != ir.KindSequence && typ.Kind != ir.KindOptional {
		return tensorFromProto(path, b)
	}
	bad := fmt.Errorf("%s: malformed %v message", path, typ)
	var name string
	elems := []*cpu.Tensor{}
	var inner *cpu.Tensor
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, "", bad
		}
		b = b[n:]
		if wt != protowire.BytesType || (num != 1 && num != 3 && num != 5) {
			n = protowire.ConsumeFieldValue(num, wt, b)
			if n < 0 {
				return nil, "", bad
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, "", bad
		}
		b = b[n:]
		switch {
		case num == 1:
			name = string(v)
		case typ.Kind == ir.KindSequence && num == 3:
			t, _, err := tensorFromProto(path, v)
			if err != nil {
				return nil, "", err
			}
			elems = append(elems, t)
		case typ.Kind == ir.KindOptional && (num == 3 || num == 5):
			innerType := ir.TensorOfUnknownRank(ir.Undefined)
			if num == 5 {
				innerType = ir.Type{Kind: ir.KindSequence}
			}
			t, _, err := decodeValue(path, v, innerType)
			if err != nil {
				return nil, "", err
			}
			inner = t
		}
	}
	if typ.Kind == ir.KindOptional {
		return cpu.NewOptional(inner), name, nil
	}
	return cpu.NewSequence(elems), name, nil
}

// tensorFromProto decodes a serialized TensorProto into a runtime tensor.
func tensorFromProto(path string, b []byte) (*cpu.Tensor, string, error) {
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(b, &tp); err != nil {
		return nil, "", fmt.Errorf("%s: not a serialized TensorProto: %w", path, err)
	}
	shape := make([]int, len(tp.GetDims()))
	for i, d := range tp.GetDims() {
		if d < 0 {
			return nil, "", fmt.Errorf("%s: negative dimension %d", path, d)
		}
		shape[i] = int(d)
	}
	dt := ir.DataType(tp.GetDataType())
	if raw := tp.GetRawData(); len(raw) > 0 || dt.ByteSize(int64(shapeProduct(shape))) == 0 {
		t, err := cpu.FromRaw(dt, shape, raw)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
		return t, tp.GetName(), nil
	}
	t, err := cpu.NewTensor(dt, shape)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	n := shapeProduct(shape)
	fail := func(field string, got int) error {
		return fmt.Errorf("%s: %s holds %d values, shape %v needs %d", path, field, got, shape, n)
	}
	switch d := t.Data.(type) {
	case []float32:
		if len(tp.GetFloatData()) != n {
			return nil, "", fail("float_data", len(tp.GetFloatData()))
		}
		copy(d, tp.GetFloatData())
	case []float64:
		if len(tp.GetDoubleData()) != n {
			return nil, "", fail("double_data", len(tp.GetDoubleData()))
		}
		copy(d, tp.GetDoubleData())
	case []int64:
		if len(tp.GetInt64Data()) != n {
			return nil, "", fail("int64_data", len(tp.GetInt64Data()))
		}
		copy(d, tp.GetInt64Data())
	case []uint64:
		copyInto(d, tp.GetUint64Data())
	case []uint32:
		copyInto(d, tp.GetUint64Data())
	case []string:
		for i, s := range tp.GetStringData() {
			if i < len(d) {
				d[i] = string(s)
			}
		}
	default: // int32_data carries int8/16/32, uint8/16, bool, float16/bfloat16 bits
		v := tp.GetInt32Data()
		if dt.Bits() < 8 { // sub-byte types: each entry is one byte of packed data
			raw := make([]byte, len(v))
			for i, x := range v {
				raw[i] = byte(x)
			}
			t, err := cpu.FromRaw(dt, shape, raw)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", path, err)
			}
			return t, tp.GetName(), nil
		}
		if len(v) != n {
			return nil, "", fail("int32_data", len(v))
		}
		switch d := d.(type) {
		case []int32:
			copy(d, v)
		case []int16:
			copyInto(d, v)
		case []int8:
			copyInto(d, v)
		case []uint8:
			copyInto(d, v)
		case []uint16:
			copyInto(d, v)
		case []bool:
			for i, x := range v {
				d[i] = x != 0
			}
		default:
			return nil, "", fmt.Errorf("%s: element type %v is not supported by this reader", path, dt)
		}
	}
	return t, tp.GetName(), nil
}

func copyInto[D, S int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64](dst []D, src []S) {
	for i := range dst {
		if i < len(src) {
			dst[i] = D(src[i])
		}
	}
}

func shapeProduct(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
