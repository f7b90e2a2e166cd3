package onnx

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// le builds little-endian bytes from values of fixed-size types, as the
// reference for the raw layout.
func le(vals ...any) []byte {
	var buf bytes.Buffer
	for _, v := range vals {
		if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

func TestTypedFieldsToRawLayout(t *testing.T) {
	cases := []struct {
		name string
		tp   *onnxpb.TensorProto
		want []byte
	}{
		{"float", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{2}, FloatData: []float32{1.5, -2}}, le(float32(1.5), float32(-2))},
		{"complex64", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_COMPLEX64), Dims: []int64{2}, FloatData: []float32{1, 2, 3, 4}}, le(float32(1), float32(2), float32(3), float32(4))},
		{"double", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_DOUBLE), Dims: []int64{1}, DoubleData: []float64{math.Pi}}, le(math.Pi)},
		{"complex128", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_COMPLEX128), Dims: []int64{1}, DoubleData: []float64{1, -1}}, le(1.0, -1.0)},
		{"int64", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT64), Dims: []int64{2}, Int64Data: []int64{-1, 1 << 40}}, le(int64(-1), int64(1<<40))},
		{"uint64", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_UINT64), Dims: []int64{1}, Uint64Data: []uint64{1 << 63}}, le(uint64(1 << 63))},
		{"uint32", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_UINT32), Dims: []int64{1}, Uint64Data: []uint64{4000000000}}, le(uint32(4000000000))},
		{"int32", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT32), Dims: []int64{1}, Int32Data: []int32{-5}}, le(int32(-5))},
		{"int16", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT16), Dims: []int64{2}, Int32Data: []int32{-2, 300}}, le(int16(-2), int16(300))},
		{"uint16", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_UINT16), Dims: []int64{1}, Int32Data: []int32{65535}}, le(uint16(65535))},
		{"int8", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT8), Dims: []int64{2}, Int32Data: []int32{-1, 7}}, le(int8(-1), int8(7))},
		{"uint8", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_UINT8), Dims: []int64{1}, Int32Data: []int32{200}}, []byte{200}},
		{"bool", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_BOOL), Dims: []int64{2}, Int32Data: []int32{1, 0}}, []byte{1, 0}},
		// float16 1.0 is 0x3c00, bfloat16 1.0 is 0x3f80: bits stored in int32_data.
		{"float16", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_FLOAT16), Dims: []int64{1}, Int32Data: []int32{0x3c00}}, le(uint16(0x3c00))},
		{"bfloat16", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_BFLOAT16), Dims: []int64{1}, Int32Data: []int32{0x3f80}}, le(uint16(0x3f80))},
		{"float8e4m3fn", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_FLOAT8E4M3FN), Dims: []int64{1}, Int32Data: []int32{0x38}}, []byte{0x38}},
		// int4 [1, 2, 3]: first element in the low nibble, two per entry.
		{"int4", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_INT4), Dims: []int64{3}, Int32Data: []int32{0x21, 0x03}}, []byte{0x21, 0x03}},
		// uint2 [0,1,2,3,1]: four per entry, first in bits 0-1.
		{"uint2", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_UINT2), Dims: []int64{5}, Int32Data: []int32{0xE4, 0x01}}, []byte{0xE4, 0x01}},
		{"float4e2m1", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_FLOAT4E2M1), Dims: []int64{2}, Int32Data: []int32{0x52}}, []byte{0x52}},
		{"empty", &onnxpb.TensorProto{DataType: int32(onnxpb.TensorProto_FLOAT), Dims: []int64{0, 3}}, []byte{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.tp.Name = "c"
			g := &onnxpb.GraphProto{
				Name:        "g",
				Initializer: []*onnxpb.TensorProto{tc.tp},
				Output:      []*onnxpb.ValueInfoProto{vi("c", nil)},
			}
			m, _ := mustDecode(t, marshal(t, model(g)), DecodeOptions{})
			got := m.Graph.Constants[0].Const.Bytes()
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("raw bytes %x, want %x", got, tc.want)
			}
			// Re-encoding uses raw_data; the bytes survive.
			enc, err := Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			m2, _ := mustDecode(t, enc, DecodeOptions{})
			if got2 := m2.Graph.Constants[0].Const.Bytes(); !bytes.Equal(got2, tc.want) {
				t.Fatalf("after round trip %x, want %x", got2, tc.want)
			}
		})
	}
}

func TestZeroCopyRawData(t *testing.T) {
	data := marshal(t, model(addGraph(4096)))
	m, _ := mustDecode(t, data, DecodeOptions{})
	w := m.Graph.Constants[0].Const.Bytes()
	if len(w) != 4096*4 {
		t.Fatalf("initializer has %d bytes, want %d", len(w), 4096*4)
	}
	start := uintptr(unsafe.Pointer(&data[0]))
	p := uintptr(unsafe.Pointer(&w[0]))
	if p < start || p+uintptr(len(w)) > start+uintptr(len(data)) {
		t.Fatalf("initializer bytes at %#x are a copy, not a view of the input [%#x, %#x)", p, start, start+uintptr(len(data)))
	}
	vals, ok := m.Graph.Constants[0].Const.Float32s()
	if ok && (vals[0] != 0.5 || vals[4095] != 4095.5) {
		t.Fatalf("view holds wrong values %v ... %v", vals[0], vals[4095])
	}

	// Small raw_data is copied by protobuf (below the view threshold) but
	// still right.
	small, _ := mustDecode(t, marshal(t, model(addGraph(4))), DecodeOptions{})
	if !bytes.Equal(small.Graph.Constants[0].Const.Bytes(), floatBytes(0.5, 1.5, 2.5, 3.5)) {
		t.Fatal("small initializer has wrong bytes")
	}
}

func TestDecodeFileMmapAndReadAgree(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	data := marshal(t, model(addGraph(1000)))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, noMmap := range []bool{false, true} {
		m, info, err := DecodeFile(path, DecodeOptions{NoMmap: noMmap})
		if err != nil {
			t.Fatal(err)
		}
		if info.FileBytes != int64(len(data)) || info.StoredNodeCount != 1 || info.Path != path {
			t.Fatalf("info %+v", info)
		}
		vals, ok := m.Graph.Constants[0].Const.Float32s()
		if !ok {
			vals = nil
			b := m.Graph.Constants[0].Const.Bytes()
			for i := 0; i < len(b); i += 4 {
				vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
			}
		}
		if len(vals) != 1000 || vals[999] != 999.5 {
			t.Fatalf("NoMmap=%v: wrong data", noMmap)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// functionModel: y = Scaled(Scaled(x, alpha=3)) where Scaled(X) = Inner(X *
// alpha) (alpha defaults to 2) and Inner(A) = Neg(A).
func functionModel() *onnxpb.ModelProto {
	inner := &onnxpb.FunctionProto{
		Name: "Inner", Domain: "custom", Input: []string{"A"}, Output: []string{"B"},
		Node:        []*onnxpb.NodeProto{{Name: "neg", OpType: "Neg", Input: []string{"A"}, Output: []string{"B"}}},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 17}},
	}
	scaled := &onnxpb.FunctionProto{
		Name: "Scaled", Domain: "custom", Input: []string{"X"}, Output: []string{"Y"},
		AttributeProto: []*onnxpb.AttributeProto{{Name: "alpha", Type: onnxpb.AttributeProto_FLOAT, F: 2}},
		Node: []*onnxpb.NodeProto{
			{Name: "k", OpType: "Constant", Output: []string{"t"}, Attribute: []*onnxpb.AttributeProto{
				{Name: "value_float", Type: onnxpb.AttributeProto_FLOAT, RefAttrName: "alpha"}}},
			{Name: "mul", OpType: "Mul", Input: []string{"X", "t"}, Output: []string{"p"}},
			{Name: "call", OpType: "Inner", Domain: "custom", Input: []string{"p"}, Output: []string{"Y"}},
		},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 17}, {Domain: "custom", Version: 1}},
	}
	g := &onnxpb.GraphProto{
		Name:   "main",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(3))},
		Output: []*onnxpb.ValueInfoProto{vi("y", f32Type(3))},
		Node: []*onnxpb.NodeProto{
			{Name: "s1", OpType: "Scaled", Domain: "custom", Input: []string{"x"}, Output: []string{"t"},
				Attribute: []*onnxpb.AttributeProto{{Name: "alpha", Type: onnxpb.AttributeProto_FLOAT, F: 3}}},
			{Name: "s2", OpType: "Scaled", Domain: "custom", Input: []string{"t"}, Output: []string{"y"}},
		},
	}
	m := model(g, inner, scaled)
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: "custom", Version: 1})
	return m
}

func TestFunctionsInlined(t *testing.T) {
	m, info := mustDecode(t, marshal(t, functionModel()), DecodeOptions{})
	if info.StoredNodeCount != 2 || info.LocalFunctions != 2 || info.InlinedCalls != 4 {
		t.Fatalf("info: stored %d, functions %d, inlined %d; want 2, 2, 4", info.StoredNodeCount, info.LocalFunctions, info.InlinedCalls)
	}
	var ops []string
	var alphas []float32
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.QualifiedOp())
		if n.Op == "Constant" {
			a := n.Attr("value_float")
			if a == nil || a.RefAttrName != "" {
				t.Fatalf("Constant's attribute reference was not resolved: %+v", a)
			}
			alphas = append(alphas, a.F)
		}
	}
	want := []string{"::Constant", "::Mul", "::Neg", "::Constant", "::Mul", "::Neg"}
	if !slices.Equal(ops, want) {
		t.Fatalf("inlined ops %v, want %v", ops, want)
	}
	// The first call passes alpha=3, the second takes the default 2.
	if !slices.Equal(alphas, []float32{3, 2}) {
		t.Fatalf("alphas %v, want [3 2]", alphas)
	}
	// The call outputs keep their names: the first Neg produces "t" (the
	// caller's name), and the body's own "t" got a fresh name.
	if got := m.Graph.Nodes[2].Outputs[0].Name; got != "t" {
		t.Fatalf("first call's output is %q, want t", got)
	}
	if got := m.Graph.Nodes[0].Outputs[0].Name; got == "t" {
		t.Fatal("body value t was not renamed and collides with the caller's t")
	}
	if m.Graph.Outputs[0] != m.Graph.Nodes[5].Outputs[0] {
		t.Fatal("graph output is not the last inlined node's output")
	}
	if len(m.Functions) != 0 {
		t.Fatalf("inlined model keeps %d functions", len(m.Functions))
	}
}

func TestFunctionsKept(t *testing.T) {
	data := marshal(t, functionModel())
	m, info := mustDecode(t, data, DecodeOptions{KeepFunctions: true})
	if info.InlinedCalls != 0 || len(m.Functions) != 2 || len(m.Graph.Nodes) != 2 {
		t.Fatalf("kept: %d inlined, %d functions, %d nodes", info.InlinedCalls, len(m.Functions), len(m.Graph.Nodes))
	}
	f := m.Functions[1]
	if f.Name != "Scaled" || len(f.AttrDefaults) != 1 || f.AttrDefaults[0].F != 2 {
		t.Fatalf("function %q defaults %+v", f.Name, f.AttrDefaults)
	}
	if a := f.Body.Nodes[0].Attr("value_float"); a == nil || a.RefAttrName != "alpha" {
		t.Fatalf("attribute reference lost: %+v", a)
	}
	enc, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := mustDecode(t, enc, DecodeOptions{KeepFunctions: true})
	if ir.Print(m) != ir.Print(m2) {
		t.Fatalf("kept functions do not round-trip:\n%s", firstDiff(ir.Print(m), ir.Print(m2)))
	}
	// The re-encoded model still inlines to the same graph.
	a, _ := mustDecode(t, data, DecodeOptions{})
	b, _ := mustDecode(t, enc, DecodeOptions{})
	if ir.Print(a) != ir.Print(b) {
		t.Fatal("inlining the re-encoded model gives a different graph")
	}
}

func TestSubgraphOuterReferences(t *testing.T) {
	thenG := &onnxpb.GraphProto{
		Name:   "then",
		Output: []*onnxpb.ValueInfoProto{vi("b", f32Type(2))},
		Node:   []*onnxpb.NodeProto{node("Add", []string{"a", "x"}, []string{"b"})},
	}
	elseG := &onnxpb.GraphProto{Name: "else", Output: []*onnxpb.ValueInfoProto{vi("a", f32Type(2))}}
	g := &onnxpb.GraphProto{
		Name:   "main",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(2)), vi("c", tensorType(onnxpb.TensorProto_BOOL))},
		Output: []*onnxpb.ValueInfoProto{vi("y", f32Type(2))},
		Node: []*onnxpb.NodeProto{
			// The If comes first in the file although it uses a: the
			// decoder sorts by dependencies, subgraph uses included.
			node("If", []string{"c"}, []string{"y"},
				&onnxpb.AttributeProto{Name: "then_branch", Type: onnxpb.AttributeProto_GRAPH, G: thenG},
				&onnxpb.AttributeProto{Name: "else_branch", Type: onnxpb.AttributeProto_GRAPH, G: elseG}),
			node("Relu", []string{"x"}, []string{"a"}),
		},
	}
	m, _ := mustDecode(t, marshal(t, model(g)), DecodeOptions{})
	relu, ifn := m.Graph.Nodes[0], m.Graph.Nodes[1]
	if relu.Op != "Relu" || ifn.Op != "If" {
		t.Fatalf("order %s, %s; want Relu, If", relu.Op, ifn.Op)
	}
	a := relu.Outputs[0]
	thenBody := ifn.Attr("then_branch").G
	add := thenBody.Nodes[0]
	if add.Inputs[0] != a || add.Inputs[1] != m.Graph.Inputs[0] {
		t.Fatal("subgraph inputs are not wired to the outer values")
	}
	if thenBody.Parent != m.Graph || thenBody.ParentNode != ifn {
		t.Fatal("subgraph parent links are wrong")
	}
	found := false
	for _, u := range a.Uses() {
		found = found || u.Node == add
	}
	if !found {
		t.Fatal("outer value does not list the subgraph node among its uses")
	}
	if ifn.Attr("else_branch").G.Outputs[0] != a {
		t.Fatal("else branch output does not name the outer value")
	}
	enc, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := mustDecode(t, enc, DecodeOptions{})
	if ir.Print(m) != ir.Print(m2) {
		t.Fatal("subgraph model does not round-trip")
	}
}

// everythingModel uses every construct the decoder keeps.
func everythingModel() *onnxpb.ModelProto {
	meta := func(k, v string) []*onnxpb.StringStringEntryProto {
		return []*onnxpb.StringStringEntryProto{{Key: k, Value: v}}
	}
	seqType := &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{ElemType: f32Type("n")}}}
	mapType := &onnxpb.TypeProto{Value: &onnxpb.TypeProto_MapType{MapType: &onnxpb.TypeProto_Map{KeyType: int32(onnxpb.TensorProto_INT64), ValueType: f32Type()}}}
	optType := &onnxpb.TypeProto{Value: &onnxpb.TypeProto_OptionalType{OptionalType: &onnxpb.TypeProto_Optional{ElemType: seqType}}}
	sparseType := &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SparseTensorType{SparseTensorType: &onnxpb.TypeProto_SparseTensor{ElemType: 1, Shape: &onnxpb.TensorShapeProto{}}}}
	xType := f32Type("batch", 4)
	xType.Denotation = "TENSOR"
	xType.GetTensorType().Shape.Dim[0].Denotation = "DATA_BATCH"
	xType.GetTensorType().Shape.Dim = append(xType.GetTensorType().Shape.Dim, &onnxpb.TensorShapeProto_Dimension{})
	ti := &onnxpb.TrainingInfoProto{
		Algorithm:     &onnxpb.GraphProto{Name: "algo"},
		UpdateBinding: meta("w", "w_new"),
	}
	qa := &onnxpb.TensorAnnotation{TensorName: "w", QuantParameterTensorNames: meta("SCALE_TENSOR", "s")}
	big := make([]float32, 100)
	for i := range big {
		big[i] = float32(i) * 0.25
	}
	sub := &onnxpb.GraphProto{
		Name:        "body",
		Initializer: []*onnxpb.TensorProto{rawTensor("k", onnxpb.TensorProto_FLOAT, []int64{1}, floatBytes(2))},
		Output:      []*onnxpb.ValueInfoProto{vi("z", nil)},
		Node:        []*onnxpb.NodeProto{node("Mul", []string{"x0", "k"}, []string{"z"})},
	}
	attrs := []*onnxpb.AttributeProto{
		{Name: "f", Type: onnxpb.AttributeProto_FLOAT, F: float32(math.Inf(-1)), DocString: "a float"},
		{Name: "i", Type: onnxpb.AttributeProto_INT, I: -7},
		{Name: "s", Type: onnxpb.AttributeProto_STRING, S: []byte{0xff, 'a'}},
		{Name: "t", Type: onnxpb.AttributeProto_TENSOR, T: &onnxpb.TensorProto{Name: "tt", DataType: int32(onnxpb.TensorProto_INT64), Dims: []int64{2}, Int64Data: []int64{1, 2}}},
		{Name: "g", Type: onnxpb.AttributeProto_GRAPH, G: sub},
		{Name: "floats", Type: onnxpb.AttributeProto_FLOATS, Floats: []float32{1, float32(math.NaN())}},
		{Name: "ints", Type: onnxpb.AttributeProto_INTS, Ints: []int64{1, -1}},
		{Name: "strings", Type: onnxpb.AttributeProto_STRINGS, Strings: [][]byte{[]byte("x"), {}}},
		{Name: "tensors", Type: onnxpb.AttributeProto_TENSORS, Tensors: []*onnxpb.TensorProto{rawTensor("big", onnxpb.TensorProto_FLOAT, []int64{100}, floatBytes(big...))}},
		{Name: "graphs", Type: onnxpb.AttributeProto_GRAPHS, Graphs: []*onnxpb.GraphProto{{Name: "empty", Output: []*onnxpb.ValueInfoProto{vi("x0", nil)}}}},
		{Name: "sparse", Type: onnxpb.AttributeProto_SPARSE_TENSOR, SparseTensor: &onnxpb.SparseTensorProto{
			Dims:    []int64{3, 3},
			Values:  &onnxpb.TensorProto{DataType: 1, Dims: []int64{2}, FloatData: []float32{5, 6}},
			Indices: &onnxpb.TensorProto{DataType: 7, Dims: []int64{2}, Int64Data: []int64{0, 8}}}},
		{Name: "sparses", Type: onnxpb.AttributeProto_SPARSE_TENSORS, SparseTensors: []*onnxpb.SparseTensorProto{{
			Dims:    []int64{4},
			Values:  &onnxpb.TensorProto{DataType: 7, Dims: []int64{1}, Int64Data: []int64{9}},
			Indices: &onnxpb.TensorProto{DataType: 7, Dims: []int64{1, 1}, Int64Data: []int64{3}}}}},
		{Name: "tp", Type: onnxpb.AttributeProto_TYPE_PROTO, Tp: mapType},
		{Name: "tps", Type: onnxpb.AttributeProto_TYPE_PROTOS, TypeProtos: []*onnxpb.TypeProto{optType, sparseType}},
	}
	g := &onnxpb.GraphProto{
		Name:          "everything",
		DocString:     "graph doc",
		MetadataProps: meta("gk", "gv"),
		Input: []*onnxpb.ValueInfoProto{
			{Name: "x0", Type: xType, DocString: "input doc", MetadataProps: meta("ik", "iv")},
			vi("opt_in", f32Type(1)),
			vi("seq", seqType),
		},
		Initializer: []*onnxpb.TensorProto{
			{Name: "opt_in", DataType: 1, Dims: []int64{1}, FloatData: []float32{42}},
			{Name: "w", DataType: 1, Dims: []int64{100}, RawData: floatBytes(big...), DocString: "w doc",
				MetadataProps: meta("wk", "wv"), Segment: &onnxpb.TensorProto_Segment{Begin: 1, End: 2}},
			{Name: "names", DataType: int32(onnxpb.TensorProto_STRING), Dims: []int64{2}, StringData: [][]byte{[]byte("a"), []byte("bc")}},
			{Name: "h", DataType: int32(onnxpb.TensorProto_FLOAT16), Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xc000}},
		},
		SparseInitializer: []*onnxpb.SparseTensorProto{{
			Dims:    []int64{10},
			Values:  &onnxpb.TensorProto{Name: "sp", DataType: 1, Dims: []int64{2}, FloatData: []float32{1, 2}},
			Indices: &onnxpb.TensorProto{DataType: 7, Dims: []int64{2}, Int64Data: []int64{1, 7}},
		}},
		Node: []*onnxpb.NodeProto{
			{Name: "n0", OpType: "Custom", Domain: "ai.onnx.ml", Overload: "ov", Input: []string{"x0", "", "w"}, Output: []string{"y", "", "y2"},
				Attribute: attrs, DocString: "node doc", MetadataProps: meta("nk", "nv")},
			{Name: "n1", OpType: "Add", Domain: "ai.onnx", Input: []string{"y", "opt_in"}, Output: []string{"out"}},
		},
		Output:                 []*onnxpb.ValueInfoProto{{Name: "out", Type: f32Type("batch", 4), DocString: "output doc"}, vi("y2", nil), vi("sp", nil)},
		ValueInfo:              []*onnxpb.ValueInfoProto{{Name: "y", Type: f32Type("batch", 4), MetadataProps: meta("vk", "vv")}},
		QuantizationAnnotation: []*onnxpb.TensorAnnotation{qa},
	}
	return &onnxpb.ModelProto{
		IrVersion:       10,
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: "", Version: 21}, {Domain: "ai.onnx.ml", Version: 5}},
		ProducerName:    "tfc-test",
		ProducerVersion: "1.0",
		Domain:          "org.test",
		ModelVersion:    3,
		DocString:       "model doc",
		Graph:           g,
		MetadataProps:   meta("mk", "mv"),
		TrainingInfo:    []*onnxpb.TrainingInfoProto{ti},
		Configuration:   []*onnxpb.DeviceConfigurationProto{{Name: "cfg", NumDevices: 2, Device: []string{"a", "b"}}},
	}
}

func TestEverythingRoundTrips(t *testing.T) {
	mp := everythingModel()
	data := marshal(t, mp)
	m, info := mustDecode(t, data, DecodeOptions{})
	if len(info.Warnings) != 0 {
		t.Fatalf("warnings: %v", info.Warnings)
	}
	g := m.Graph
	// Spot checks against the proto we built.
	if m.ProducerName != "tfc-test" || m.ModelVersion != 3 || m.Doc != "model doc" || len(m.Meta) != 1 || m.Meta[0].Value != "mv" {
		t.Fatalf("model header lost: %+v", m)
	}
	if len(m.Opsets) != 2 || m.Opsets[1] != (ir.OpsetID{Domain: "ai.onnx.ml", Version: 5}) {
		t.Fatalf("opsets %v", m.Opsets)
	}
	if len(m.TrainingInfo) != 1 || len(m.Configurations) != 1 {
		t.Fatal("training_info or configuration lost")
	}
	var ti onnxpb.TrainingInfoProto
	if err := proto.Unmarshal(m.TrainingInfo[0], &ti); err != nil || !proto.Equal(&ti, mp.TrainingInfo[0]) {
		t.Fatalf("training_info changed: %v", err)
	}
	if len(g.Extras) != 1 || g.Extras[0].Number != 14 {
		t.Fatalf("quantization annotation not kept: %+v", g.Extras)
	}
	x0 := g.Inputs[0]
	if x0.Type.String() != "f32[batch,4,?]" || x0.Type.Denotation != "TENSOR" || x0.Type.Shape[0].Denotation != "DATA_BATCH" || x0.Doc != "input doc" {
		t.Fatalf("input x0: %v %+v", x0.Type, x0)
	}
	optIn := g.Inputs[1]
	if optIn.Const == nil || !slices.Contains(g.Constants, optIn) {
		t.Fatal("input with an initializer is not a constant input")
	}
	if g.Inputs[2].Type.String() != "seq(f32[n])" {
		t.Fatalf("sequence type %v", g.Inputs[2].Type)
	}
	if len(g.Constants) != 5 || g.Constants[4].SparseConst == nil || g.Constants[4].Name != "sp" {
		t.Fatalf("constants: %d, sparse last? %v", len(g.Constants), g.Constants[len(g.Constants)-1].Name)
	}
	n0 := g.Nodes[0]
	if n0.Domain != "ai.onnx.ml" || n0.Overload != "ov" || n0.Inputs[1] != nil || n0.Outputs[1] != nil || len(n0.Attrs) != len(mp.Graph.Node[0].Attribute) {
		t.Fatalf("node n0: %+v", n0)
	}
	if g.Nodes[1].Domain != "" {
		t.Fatalf("domain ai.onnx not normalized to empty: %q", g.Nodes[1].Domain)
	}
	y := n0.Outputs[0]
	if !y.HasInfo || y.Type.String() != "f32[batch,4]" || y.Meta[0].Key != "vk" {
		t.Fatalf("value_info not applied: %v %+v", y.Type, y)
	}
	if a := n0.Attr("t"); a.T == nil || a.T.Name != "tt" || !bytes.Equal(a.T.Bytes(), le(int64(1), int64(2))) {
		t.Fatal("tensor attribute wrong")
	}
	if a := n0.Attr("g"); a.G.Nodes[0].Inputs[0] != x0 {
		t.Fatal("graph attribute does not see the outer input")
	}
	if a := n0.Attr("tps"); len(a.TypePs) != 2 || a.TypePs[0].String() != "opt(seq(f32[n]))" || a.TypePs[1].String() != "sparse(f32[])" {
		t.Fatalf("type protos %v", a.TypePs)
	}

	enc, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := mustDecode(t, enc, DecodeOptions{})
	if p1, p2 := ir.Print(m), ir.Print(m2); p1 != p2 {
		t.Fatalf("IR text differs:\n%s", firstDiff(p1, p2))
	}
	enc2, err := Encode(m2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Fatal("encoding is not stable")
	}
	// The re-encoded proto carries the kept parts unchanged.
	var back onnxpb.ModelProto
	if err := proto.Unmarshal(enc, &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back.TrainingInfo[0], mp.TrainingInfo[0]) || !proto.Equal(back.Graph.QuantizationAnnotation[0], mp.Graph.QuantizationAnnotation[0]) ||
		!proto.Equal(back.Configuration[0], mp.Configuration[0]) {
		t.Fatal("training_info, configuration or quantization annotation changed in the encoding")
	}
	for _, tp := range back.Graph.Initializer {
		if tp.GetDataType() != int32(onnxpb.TensorProto_STRING) && (len(tp.FloatData) > 0 || len(tp.Int32Data) > 0) {
			t.Fatalf("initializer %q not written as raw_data", tp.Name)
		}
	}
}

// dirNames lists a folder's entries.
func dirNames(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// threeWeights has initializers of 4 KiB, 8 KiB and 16 bytes.
func threeWeights() *onnxpb.ModelProto {
	mk := func(name string, n int, scale float32) *onnxpb.TensorProto {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i) * scale
		}
		return rawTensor(name, onnxpb.TensorProto_FLOAT, []int64{int64(n)}, floatBytes(v...))
	}
	g := &onnxpb.GraphProto{
		Name:        "three",
		Input:       []*onnxpb.ValueInfoProto{vi("x", f32Type(1))},
		Initializer: []*onnxpb.TensorProto{mk("a", 1024, 1), mk("b", 2048, -1), mk("c", 4, 3)},
		Output:      []*onnxpb.ValueInfoProto{vi("y", nil)},
		Node: []*onnxpb.NodeProto{node("Concat", []string{"x", "a", "b", "c"}, []string{"y"},
			&onnxpb.AttributeProto{Name: "axis", Type: onnxpb.AttributeProto_INT, I: 0})},
	}
	return model(g)
}

// sameWeights checks two models hold identical constants.
func sameWeights(t *testing.T, a, b *ir.Model) {
	t.Helper()
	if len(a.Graph.Constants) != len(b.Graph.Constants) {
		t.Fatalf("%d constants vs %d", len(a.Graph.Constants), len(b.Graph.Constants))
	}
	for i, c := range a.Graph.Constants {
		d := b.Graph.Constants[i]
		if c.Name != d.Name || !bytes.Equal(c.Const.Bytes(), d.Const.Bytes()) {
			t.Fatalf("constant %q differs", c.Name)
		}
	}
}

func TestEncodeFileExternalData(t *testing.T) {
	orig, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := EncodeFile(orig, path, EncodeOptions{ExternalData: "always", ExternalThreshold: 1024}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.onnx", "model.onnx.data"}) {
		t.Fatalf("folder holds %v", names)
	}
	back, info, err := DecodeFile(path, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if len(info.ExternalFiles) != 1 || info.ExternalFiles[0].Path != "model.onnx.data" || info.ExternalFiles[0].Tensors != 2 {
		t.Fatalf("external files %+v", info.ExternalFiles)
	}
	sameWeights(t, orig, back)
	if ext := back.Graph.Constants[1].Const.External; ext == nil || ext.Location != "model.onnx.data" || ext.Length != 8192 || ext.Offset%externalAlign != 0 {
		t.Fatalf("external ref %+v", ext)
	}
	if back.Graph.Constants[2].Const.External != nil {
		t.Fatal("the 16-byte tensor went external below the threshold")
	}

	// Rewriting in place replaces both files atomically and leaves no
	// temporaries.
	if err := EncodeFile(back, path, EncodeOptions{ExternalData: "always", ExternalFile: "w.bin"}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.onnx", "model.onnx.data", "w.bin"}) {
		t.Fatalf("folder holds %v", names)
	}
	again, _, err := DecodeFile(path, DecodeOptions{NoMmap: true})
	if err != nil {
		t.Fatal(err)
	}
	sameWeights(t, orig, again)
}

func TestOver2GiBGoesExternal(t *testing.T) {
	// Pretend the protobuf limit is 10 KB: the 12 KB model must go
	// through external data.
	old := maxProtoBytes
	maxProtoBytes = 10_000
	defer func() { maxProtoBytes = old }()
	m, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	_, err := Encode(m)
	wantErr(t, err, "over protobuf's 2 GiB limit")

	dir := t.TempDir()
	path := filepath.Join(dir, "big.onnx")
	err = EncodeFile(m, path, EncodeOptions{ExternalData: "never"})
	wantErr(t, err, "over protobuf's 2 GiB limit")
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("a failed write left %v", names)
	}
	if err := EncodeFile(m, path, EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() > 10_000 {
		t.Fatalf("model file: %v, %v", st, err)
	}
	back, info, err := DecodeFile(path, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if len(info.ExternalFiles) != 1 || info.ExternalFiles[0].Tensors != 2 {
		t.Fatalf("external files %+v", info.ExternalFiles)
	}
	sameWeights(t, m, back)
}

func TestEncodeFileFailureLeavesNothing(t *testing.T) {
	m, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	// A constant parsed from IR text without its data cannot be written.
	m.Graph.Constants[0].Const = ir.NewDigestTensor(ir.Float, []int64{1024}, "abc")
	dir := t.TempDir()
	err := EncodeFile(m, filepath.Join(dir, "m.onnx"), EncodeOptions{ExternalData: "always"})
	wantErr(t, err, `"a"`, "has no data")
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("a failed write left %v", names)
	}
	err = EncodeFile(m, filepath.Join(dir, "m.onnx"), EncodeOptions{ExternalData: "sometimes"})
	wantErr(t, err, `"sometimes"`)
	// Writing into a missing folder fails without creating it.
	good, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	err = EncodeFile(good, filepath.Join(dir, "missing", "m.onnx"), EncodeOptions{ExternalData: "always"})
	if err == nil {
		t.Fatal("writing into a missing folder succeeded")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("a failed write left %v", names)
	}
}

func TestEncodeFileKeepsExternalLayout(t *testing.T) {
	// A model whose w sits at offset 8 of weights.bin, with a checksum key
	// tfc does not interpret.
	_, path := externalModel(t, "weights.bin", "8", "16")
	orig, info, err := DecodeFile(path, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if len(info.ExternalFiles) != 1 || info.ExternalFiles[0].Bytes != 24 || info.ExternalFiles[0].Tensors != 1 {
		t.Fatalf("external files %+v", info.ExternalFiles)
	}
	ref := orig.Graph.Constants[0].Const.External
	if ref == nil || ref.Location != "weights.bin" || ref.Offset != 8 || ref.Length != 16 ||
		len(ref.Extra) != 1 || ref.Extra[0] != (ir.StringPair{Key: "checksum", Value: "not-checked"}) {
		t.Fatalf("external ref %+v", ref)
	}
	if !bytes.Equal(orig.Graph.Constants[0].Const.Bytes(), floatBytes(0.5, 1.5, 2.5, 3.5)) {
		t.Fatal("external tensor has wrong bytes")
	}
	want := ir.Print(orig)

	// Into another folder, and in place over the files being read.
	for _, out := range []string{filepath.Join(t.TempDir(), "copy.onnx"), path} {
		if err := EncodeFile(orig, out, EncodeOptions{}); err != nil {
			t.Fatal(err)
		}
		back, _, err := DecodeFile(out, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ir.Print(back); got != want {
			t.Fatalf("external layout not kept:\n%s", firstDiff(want, got))
		}
		back.Close()
		if names := dirNames(t, filepath.Dir(out)); !slices.Equal(names, []string{filepath.Base(out), "weights.bin"}) {
			t.Fatalf("folder holds %v", names)
		}
	}
	// "never" inlines the data again.
	out := filepath.Join(t.TempDir(), "inline.onnx")
	if err := EncodeFile(orig, out, EncodeOptions{ExternalData: "never"}); err != nil {
		t.Fatal(err)
	}
	back, info, err := DecodeFile(out, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if len(info.ExternalFiles) != 0 || back.Graph.Constants[0].Const.External != nil {
		t.Fatal("never mode still wrote external data")
	}
	sameWeights(t, orig, back)
}

func TestWarnings(t *testing.T) {
	g := addGraph(4)
	g.Node = append(g.Node, &onnxpb.NodeProto{Name: "mine", OpType: "Foo", Domain: "com.example", Input: []string{"y"}, Output: []string{"z"}})
	g.Output = append(g.Output, vi("z", nil))
	g.ValueInfo = []*onnxpb.ValueInfoProto{vi("ghost", f32Type(1))}
	g.Input[0].Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_OpaqueType{OpaqueType: &onnxpb.TypeProto_Opaque{Domain: "d", Name: "n"}}}
	mp := model(g)
	mp.IrVersion = 99
	m, info := mustDecode(t, marshal(t, mp), DecodeOptions{})
	wants := []string{
		"IR version 99 is newer",
		`domain "com.example" (used by node "mine" (Foo)) has no opset import`,
		`value_info "ghost" names no value`,
		"opaque type d.n is not kept",
	}
	if len(info.Warnings) != len(wants) {
		t.Fatalf("warnings %q, want %d", info.Warnings, len(wants))
	}
	for _, w := range wants {
		found := false
		for _, got := range info.Warnings {
			found = found || bytes.Contains([]byte(got), []byte(w))
		}
		if !found {
			t.Errorf("no warning mentions %q in %q", w, info.Warnings)
		}
	}
	if m.Graph.Inputs[0].Type.Kind != ir.KindUnknown {
		t.Fatal("opaque input type not read as unknown")
	}
}
