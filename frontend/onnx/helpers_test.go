package onnx

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// Helpers that build ONNX protobuf messages directly, so tests control
// exactly what is on the wire.

func tensorType(elem onnxpb.TensorProto_DataType, dims ...any) *onnxpb.TypeProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		}
	}
	return &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}
}

func vi(name string, t *onnxpb.TypeProto) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{Name: name, Type: t}
}

func f32Type(dims ...any) *onnxpb.TypeProto { return tensorType(onnxpb.TensorProto_FLOAT, dims...) }

func node(op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: op, Input: inputs, Output: outputs, Attribute: attrs, Name: op + "_" + strings.Join(outputs, "_")}
}

func floatBytes(vals ...float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func rawTensor(name string, dt onnxpb.TensorProto_DataType, dims []int64, raw []byte) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: name, DataType: int32(dt), Dims: dims, RawData: raw}
}

func model(g *onnxpb.GraphProto, funcs ...*onnxpb.FunctionProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:   10,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 17}},
		Graph:       g,
		Functions:   funcs,
	}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addGraph builds y = x + w with w a [n] float initializer.
func addGraph(n int) *onnxpb.GraphProto {
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i) + 0.5
	}
	return &onnxpb.GraphProto{
		Name:        "add",
		Input:       []*onnxpb.ValueInfoProto{vi("x", f32Type(n))},
		Output:      []*onnxpb.ValueInfoProto{vi("y", f32Type(n))},
		Initializer: []*onnxpb.TensorProto{rawTensor("w", onnxpb.TensorProto_FLOAT, []int64{int64(n)}, floatBytes(vals...))},
		Node:        []*onnxpb.NodeProto{node("Add", []string{"x", "w"}, []string{"y"})},
	}
}

// mustDecode decodes and verifies.
func mustDecode(t testing.TB, data []byte, opts DecodeOptions) (*ir.Model, *Info) {
	t.Helper()
	m, info, err := Decode(data, opts)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := ir.Verify(m); err != nil {
		t.Fatalf("verify: %v", err)
	}
	return m, info
}

// wantErr checks that err is non-nil and mentions every fragment.
func wantErr(t testing.TB, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one mentioning %q", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
	if strings.Contains(err.Error(), "internal error") {
		t.Fatalf("error is an internal error (a recovered panic): %v", err)
	}
}

func findNode(g *ir.Graph, op string) *ir.Node {
	for _, n := range g.Nodes {
		if n.Op == op {
			return n
		}
	}
	return nil
}
