package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
)

// Each class of bad input gets a one-sentence error naming the problem and
// where; none may panic.

func TestTruncatedFile(t *testing.T) {
	data := marshal(t, model(addGraph(100)))
	// Cut inside the initializer's raw data, which the walker sees as a
	// length running past the end.
	for _, cut := range []int{len(data) - 1, len(data) / 2, 40, 3} {
		_, _, err := Decode(data[:cut], DecodeOptions{})
		wantErr(t, err, "truncated at byte")
	}
	_, _, err := Decode(data[:len(data)/2], DecodeOptions{})
	wantErr(t, err, "inside model.graph.initializer[0]")
}

func TestWrongWireType(t *testing.T) {
	// Model.graph (field 7) written as a varint.
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 8)
	b = protowire.AppendTag(b, 7, protowire.VarintType)
	b = protowire.AppendVarint(b, 3)
	_, _, err := Decode(b, DecodeOptions{})
	wantErr(t, err, "graph", "wire type", "byte 2")

	// A string field (Graph.name) given as a varint.
	var g []byte
	g = protowire.AppendTag(g, 2, protowire.VarintType)
	g = protowire.AppendVarint(g, 5)
	var m []byte
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	m = protowire.AppendBytes(m, g)
	_, _, err = Decode(m, DecodeOptions{})
	wantErr(t, err, "field 2 (name) of GraphProto has wire type 0", "inside model.graph")

	// Invalid UTF-8 in a proto3 string field is refused by protobuf.
	bad := addGraph(4)
	bad.Name = "ok"
	data := marshal(t, model(bad))
	idx := bytes.Index(data, []byte("ok"))
	data[idx] = 0xff
	_, _, err = Decode(data, DecodeOptions{})
	wantErr(t, err, "not a valid ONNX model")
}

func TestEmptyAndGraphlessModel(t *testing.T) {
	_, _, err := Decode(nil, DecodeOptions{})
	wantErr(t, err, "model has no graph")
}

func TestAbsurdDims(t *testing.T) {
	for _, tc := range []struct {
		dims []int64
		want string
	}{
		{[]int64{-1, 4}, "negative"},
		{[]int64{1 << 40, 1 << 40}, "overflows"},
		{[]int64{1 << 62, 4}, "overflows"},
	} {
		g := addGraph(4)
		g.Initializer[0].Dims = tc.dims
		_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
		wantErr(t, err, tc.want, `initializer 0 "w"`)
	}
	// Negative dimension in a declared type.
	g := addGraph(4)
	g.Input[0].Type = f32Type(-3)
	_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
	wantErr(t, err, `input "x"`, "negative")
}

func TestDataSizeMismatch(t *testing.T) {
	short := addGraph(4)
	short.Initializer[0].RawData = short.Initializer[0].RawData[:12]
	_, _, err := Decode(marshal(t, model(short)), DecodeOptions{})
	wantErr(t, err, `"w"`, "raw_data is 12 bytes", "needs 16")

	long := addGraph(100)
	long.Initializer[0].RawData = append(long.Initializer[0].RawData, 1, 2, 3, 4)
	_, _, err = Decode(marshal(t, model(long)), DecodeOptions{})
	wantErr(t, err, `"w"`, "raw_data is 404 bytes", "needs 400")

	typed := addGraph(4)
	typed.Initializer[0].RawData = nil
	typed.Initializer[0].FloatData = []float32{1, 2, 3}
	_, _, err = Decode(marshal(t, model(typed)), DecodeOptions{})
	wantErr(t, err, `"w"`, "float_data has 3 values", "needs 4")

	none := addGraph(4)
	none.Initializer[0].RawData = nil
	_, _, err = Decode(marshal(t, model(none)), DecodeOptions{})
	wantErr(t, err, `"w"`, "has no data")

	strs := addGraph(4)
	strs.Initializer[0].DataType = int32(onnxpb.TensorProto_STRING)
	strs.Initializer[0].RawData = nil
	strs.Initializer[0].StringData = [][]byte{[]byte("a")}
	_, _, err = Decode(marshal(t, model(strs)), DecodeOptions{})
	wantErr(t, err, `"w"`, "has 1 strings", "needs 4")
}

func TestUnknownDataType(t *testing.T) {
	for _, dt := range []int32{0, 99, 27} {
		g := addGraph(4)
		g.Initializer[0].DataType = dt
		_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
		wantErr(t, err, `"w"`, "unknown data type")
	}
}

func TestCycle(t *testing.T) {
	g := &onnxpb.GraphProto{
		Name:   "cyc",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(2))},
		Output: []*onnxpb.ValueInfoProto{vi("b", f32Type(2))},
		Node: []*onnxpb.NodeProto{
			node("Add", []string{"x", "b"}, []string{"a"}),
			node("Relu", []string{"a"}, []string{"b"}),
		},
	}
	_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
	wantErr(t, err, `graph "cyc" has a cycle through node`)

	self := &onnxpb.GraphProto{
		Name:   "self",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(2))},
		Output: []*onnxpb.ValueInfoProto{vi("a", f32Type(2))},
		Node:   []*onnxpb.NodeProto{node("Add", []string{"x", "a"}, []string{"a"})},
	}
	_, _, err = Decode(marshal(t, model(self)), DecodeOptions{})
	wantErr(t, err, "cycle", `"Add_a" (Add)`)
}

func TestOutOfOrderNodesAreSorted(t *testing.T) {
	g := &onnxpb.GraphProto{
		Name:   "unsorted",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(2))},
		Output: []*onnxpb.ValueInfoProto{vi("c", f32Type(2))},
		Node: []*onnxpb.NodeProto{
			node("Neg", []string{"b"}, []string{"c"}),
			node("Relu", []string{"a"}, []string{"b"}),
			node("Abs", []string{"x"}, []string{"a"}),
		},
	}
	m, _ := mustDecode(t, marshal(t, model(g)), DecodeOptions{})
	var ops []string
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.Op)
	}
	if got := strconv.Quote(ops[0] + ops[1] + ops[2]); got != strconv.Quote("AbsReluNeg") {
		t.Fatalf("node order %v, want Abs Relu Neg", ops)
	}
}

func TestNoProducer(t *testing.T) {
	g := addGraph(4)
	g.Node[0].Input[1] = "nowhere"
	_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
	wantErr(t, err, `graph "add"`, `node "Add_y" (Add)`, `input "nowhere" is not produced`)

	out := addGraph(4)
	out.Output[0].Name = "missing"
	_, _, err = Decode(marshal(t, model(out)), DecodeOptions{})
	wantErr(t, err, `output "missing" is not produced`)
}

func TestDuplicateNames(t *testing.T) {
	g := addGraph(4)
	g.Node = append(g.Node, node("Neg", []string{"x"}, []string{"y"}))
	_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
	wantErr(t, err, `value "y" is defined twice`, "Neg")

	inits := addGraph(4)
	inits.Initializer = append(inits.Initializer, inits.Initializer[0])
	_, _, err = Decode(marshal(t, model(inits)), DecodeOptions{})
	wantErr(t, err, `initializer "w" is defined twice`)

	inputs := addGraph(4)
	inputs.Input = append(inputs.Input, vi("x", f32Type(4)))
	_, _, err = Decode(marshal(t, model(inputs)), DecodeOptions{})
	wantErr(t, err, `value "x" is defined twice`)

	// A node output named like a graph input.
	shadow := addGraph(4)
	shadow.Node[0].Output[0] = "x"
	_, _, err = Decode(marshal(t, model(shadow)), DecodeOptions{})
	wantErr(t, err, `value "x" is defined twice`)
}

// nestedIf returns a graph whose If node nests depth levels of If bodies.
func nestedIf(depth int) *onnxpb.GraphProto {
	body := &onnxpb.GraphProto{
		Name:   "leaf",
		Output: []*onnxpb.ValueInfoProto{vi("x", f32Type(1))},
	}
	for i := 0; i < depth; i++ {
		out := "o" + strconv.Itoa(i)
		body = &onnxpb.GraphProto{
			Name:   "level" + strconv.Itoa(i),
			Output: []*onnxpb.ValueInfoProto{vi(out, f32Type(1))},
			Node: []*onnxpb.NodeProto{node("If", []string{"c"}, []string{out},
				&onnxpb.AttributeProto{Name: "then_branch", Type: onnxpb.AttributeProto_GRAPH, G: body},
				&onnxpb.AttributeProto{Name: "else_branch", Type: onnxpb.AttributeProto_GRAPH, G: &onnxpb.GraphProto{
					Name: "else" + strconv.Itoa(i), Output: []*onnxpb.ValueInfoProto{vi("x", f32Type(1))}}})},
		}
	}
	body.Input = []*onnxpb.ValueInfoProto{vi("c", tensorType(onnxpb.TensorProto_BOOL)), vi("x", f32Type(1))}
	return body
}

func TestNestingDepthBounded(t *testing.T) {
	// Moderate nesting decodes, with every level seeing the outer values.
	m, _ := mustDecode(t, marshal(t, model(nestedIf(5))), DecodeOptions{})
	if m.Graph.Nodes[0].Op != "If" {
		t.Fatalf("want an If node, got %s", m.Graph.Nodes[0].Op)
	}
	_, _, err := Decode(marshal(t, model(nestedIf(60))), DecodeOptions{})
	wantErr(t, err, "nest deeper than")
}

func TestRecursiveFunction(t *testing.T) {
	f := &onnxpb.FunctionProto{
		Name: "F", Domain: "local", Input: []string{"a"}, Output: []string{"b"},
		Node:        []*onnxpb.NodeProto{{OpType: "F", Domain: "local", Input: []string{"a"}, Output: []string{"b"}}},
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: "local", Version: 1}},
	}
	g := &onnxpb.GraphProto{
		Name:   "g",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(1))},
		Output: []*onnxpb.ValueInfoProto{vi("y", f32Type(1))},
		Node:   []*onnxpb.NodeProto{{Name: "call", OpType: "F", Domain: "local", Input: []string{"x"}, Output: []string{"y"}}},
	}
	_, _, err := Decode(marshal(t, model(g, f)), DecodeOptions{})
	wantErr(t, err, `function "F" calls itself`, `node "call" (F)`)
}

func TestExponentialInliningBounded(t *testing.T) {
	// F0 = Neg; Fi calls F(i-1) ten times in a chain: 10^8 nodes if
	// inlined blindly.
	var funcs []*onnxpb.FunctionProto
	funcs = append(funcs, &onnxpb.FunctionProto{Name: "F0", Domain: "local", Input: []string{"a"}, Output: []string{"b"},
		Node: []*onnxpb.NodeProto{node("Neg", []string{"a"}, []string{"b"})}})
	for i := 1; i <= 8; i++ {
		f := &onnxpb.FunctionProto{Name: "F" + strconv.Itoa(i), Domain: "local", Input: []string{"v0"}, Output: []string{"v10"}}
		for k := 0; k < 10; k++ {
			f.Node = append(f.Node, &onnxpb.NodeProto{OpType: "F" + strconv.Itoa(i-1), Domain: "local",
				Input: []string{"v" + strconv.Itoa(k)}, Output: []string{"v" + strconv.Itoa(k+1)}})
		}
		funcs = append(funcs, f)
	}
	g := &onnxpb.GraphProto{
		Name:   "g",
		Input:  []*onnxpb.ValueInfoProto{vi("x", f32Type(1))},
		Output: []*onnxpb.ValueInfoProto{vi("y", f32Type(1))},
		Node:   []*onnxpb.NodeProto{{OpType: "F8", Domain: "local", Input: []string{"x"}, Output: []string{"y"}}},
	}
	_, _, err := Decode(marshal(t, model(g, funcs...)), DecodeOptions{})
	wantErr(t, err, "inlining functions would create more than")
}

// externalModel writes a model whose initializer w (4 floats) lives in an
// external file with the given location/offset/length, in a fresh folder.
func externalModel(t *testing.T, location string, offset, length string) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	g := addGraph(4)
	w := g.Initializer[0]
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), append(make([]byte, 8), w.RawData...), 0o644); err != nil {
		t.Fatal(err)
	}
	w.RawData = nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: "location", Value: location}}
	if offset != "" {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: "offset", Value: offset})
	}
	if length != "" {
		w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: "length", Value: length})
	}
	w.ExternalData = append(w.ExternalData, &onnxpb.StringStringEntryProto{Key: "checksum", Value: "not-checked"})
	path = filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, marshal(t, model(g)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestExternalDataRefused(t *testing.T) {
	_, path := externalModel(t, "../weights.bin", "8", "16")
	_, _, err := DecodeFile(path, DecodeOptions{})
	wantErr(t, err, `"../weights.bin" escapes the model's folder`, `"w"`, path)

	_, path = externalModel(t, "sub/../../weights.bin", "8", "16")
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, "escapes the model's folder")

	_, path = externalModel(t, "/etc/passwd", "0", "16")
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, "absolute path")

	dir, path := externalModel(t, "link.bin", "8", "16")
	outside := filepath.Join(t.TempDir(), "secret.bin")
	if err := os.WriteFile(outside, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.bin")); err != nil {
		t.Skip("cannot create symlinks here:", err)
	}
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, "outside the model's folder", "symlink")

	_, path = externalModel(t, "weights.bin", "16", "16")
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, "past the end of the file", "24 bytes")

	_, path = externalModel(t, "weights.bin", "8", "12")
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, "length 12 does not match the 16 bytes")

	_, path = externalModel(t, "weights.bin", "-8", "16")
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, "offset", "not a non-negative integer")

	_, path = externalModel(t, "nothere.bin", "0", "16")
	_, _, err = DecodeFile(path, DecodeOptions{})
	wantErr(t, err, `"nothere.bin"`)

	// From bytes without a base folder, external data is refused.
	_, path = externalModel(t, "weights.bin", "8", "16")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Decode(data, DecodeOptions{})
	wantErr(t, err, "without a base folder")
}

func TestForgedMarkerIgnored(t *testing.T) {
	// A TensorProto carrying the shadow marker field itself must not be
	// able to point into the side table.
	g := addGraph(4)
	raw := marshal(t, g.Initializer[0])
	raw = protowire.AppendTag(raw, markerField, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 0)
	var gb []byte
	gb = protowire.AppendTag(gb, 5, protowire.BytesType)
	gb = protowire.AppendBytes(gb, raw)
	g.Initializer = nil
	graphBytes := append(marshal(t, g), gb...)
	data := marshal(t, model(nil))
	data = protowire.AppendTag(data, 7, protowire.BytesType)
	data = protowire.AppendBytes(data, graphBytes)
	mod, _ := mustDecode(t, data, DecodeOptions{})
	w := mod.Graph.Constants[0]
	if string(w.Const.Bytes()) != string(floatBytes(0.5, 1.5, 2.5, 3.5)) {
		t.Fatalf("initializer bytes changed by a forged marker")
	}
}

func TestContradictoryTypesRefused(t *testing.T) {
	// y = x + w with x, w of 4 elements cannot be declared as 5 elements.
	g := addGraph(4)
	g.Output[0].Type = f32Type(5)
	_, _, err := Decode(marshal(t, model(g)), DecodeOptions{})
	wantErr(t, err, "model is invalid", `"y"`)
	// NoVerify lets tools look at such a model anyway.
	if _, _, err := Decode(marshal(t, model(g)), DecodeOptions{NoVerify: true}); err != nil {
		t.Fatalf("NoVerify: %v", err)
	}
}
