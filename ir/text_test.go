package ir

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// richModel builds, without the parser, a model that uses every construct
// the text form must carry.
func richModel(t testing.TB) *Model {
	t.Helper()
	m := NewModel(8, OpsetID{"", 17}, OpsetID{"com.microsoft", 1}, OpsetID{"com.example", 1})
	m.ProducerName, m.ProducerVersion = "pytorch", "2.1.0"
	m.Domain, m.ModelVersion = "org.example", 7
	m.Doc = "line one\nline \"two\"\t\x00 end"
	m.Meta = []StringPair{{"author", "me"}, {"", "empty key"}}
	m.TrainingInfo = [][]byte{{0x0a, 0x00, 0xff}, {}}
	m.Configurations = [][]byte{[]byte("cfg")}

	// A kept function whose body refers to the caller's attributes.
	fb := NewGraph("MyFn_body")
	fx := fb.AddInput("X", Type{})
	fy := fb.Append(NodeSpec{Op: "Mul", Inputs: []*Value{fx, fx}, Outputs: []string{"Y"},
		Attrs: []*Attr{{Name: "alpha", Type: AttrFloat, RefAttrName: "alpha", Doc: "from caller"}}}).Outputs[0]
	fb.AddOutput(fy)
	m.Functions = []*Function{{
		Name: "MyFn", Domain: "com.example", Overload: "o1", Body: fb,
		AttrNames: []string{"beta", "odd name"}, AttrDefaults: []*Attr{FloatAttr("alpha", 0.5)},
		Opsets: []OpsetID{{"", 17}}, Doc: "fn doc", Meta: []StringPair{{"k", "v"}},
	}}

	g := m.Graph
	g.Name, g.Doc = "main_graph", "the graph"
	g.Meta = []StringPair{{"gk", "gv"}}
	g.Extras = []RawField{{Number: 14, Bytes: []byte{1, 2, 3}}}

	ids := g.AddInput("input_ids", TensorOf(Int64, Sym("batch"), Sym("seq")))
	ids.HasInfo = true
	ids.Doc = "token ids"
	ids.Meta = []StringPair{{"role", "ids"}}
	g.AddInput("attention mask", Type{Kind: KindTensor, Elem: Int64, HasShape: true,
		Shape: []Dim{{Size: UnknownSize, Sym: "batch", Denotation: "DATA_BATCH"}, UnknownDim(), {Size: 7, Denotation: "D"}}, Denotation: "TENSOR"})
	g.AddInput("onnx::anyrank", TensorOfUnknownRank(Float))
	g.AddInput("seq_in", Type{Kind: KindSequence, Inner: &Type{Kind: KindTensor, Elem: Float, HasShape: true}})
	g.AddInput("map_in", Type{Kind: KindMap, Elem: Int64, Inner: &Type{Kind: KindTensor, Elem: Float}})
	g.AddInput("opt_in", Type{Kind: KindOptional})
	g.AddInput("opt_unknown", Type{Kind: KindOptional, Inner: &Type{}, Denotation: "OPT"})
	g.AddInput("unknown_in", Type{})
	g.AddInput("weird", TensorOf(Float, Sym("batch * 2"), Sym("3"), Sym("?"), Sym("_")))
	g.AddInput("sparse_in", Type{Kind: KindSparseTensor, Elem: Float, HasShape: true, Shape: []Dim{Known(4), Known(4)}})
	cond := g.AddInput("cond", TensorOf(Bool))
	scale := g.AddInput("scale", TensorOf(Float, Sym("n")))
	scale.Const = Float32Tensor(nil, 0.5, 2) // a default whose type differs from the input's
	bias := g.AddInput("bias", TensorOfSizes(Float, 2))
	bias.Const = Float32Tensor(nil, 1, -1)

	w := g.AddConstant("w", Float32Tensor([]int64{2, 2}, 1, 2.5, float32(math.Copysign(0, -1)), math.Float32frombits(1)))
	g.Constants = append(g.Constants, bias) // an input that is also an initializer
	big := make([]float32, 32)
	for i := range big {
		big[i] = float32(i) / 3
	}
	g.AddConstant("big", Float32Tensor([]int64{4, 8}, big...))
	axes := g.AddConstant("axes", Int64Tensor([]int64{}, -1))
	strs, err := NewStringTensor([]int64{3}, [][]byte{[]byte("a"), {0xff, 0xfe}, []byte("quote\" and \\")})
	if err != nil {
		t.Fatal(err)
	}
	g.AddConstant("strs", strs)
	g.AddConstant("half", MustTensor(Float16, []int64{2}, []byte{0x00, 0x3c, 0x00, 0xc0}))
	dbl := make([]byte, 24)
	for i, f := range []float64{math.Float64frombits(0x7ff8000000000abc), math.Inf(-1), 1e300} {
		putU64(dbl[8*i:], math.Float64bits(f))
	}
	g.AddConstant("dbl", MustTensor(Double, []int64{3}, dbl))
	g.AddConstant("flags", MustTensor(Bool, []int64{3}, []byte{0, 1, 2}))
	g.AddConstant("i8", MustTensor(Int8, []int64{2}, []byte{0x80, 0x7f}))
	g.AddConstant("u8", MustTensor(Uint8, []int64{2}, []byte{0, 255}))
	g.AddConstant("i16", MustTensor(Int16, []int64{1}, []byte{0x00, 0x80}))
	g.AddConstant("u16", MustTensor(Uint16, []int64{1}, []byte{0xff, 0xff}))
	g.AddConstant("i32", MustTensor(Int32, []int64{1}, []byte{0, 0, 0, 0x80}))
	g.AddConstant("u32", MustTensor(Uint32, []int64{1}, []byte{0xff, 0xff, 0xff, 0xff}))
	g.AddConstant("u64", MustTensor(Uint64, []int64{1}, bytes.Repeat([]byte{0xff}, 8)))
	g.AddConstant("i4", MustTensor(Int4, []int64{3}, []byte{0x21, 0x03}))
	g.AddConstant("empty", Float32Tensor([]int64{0, 3}))
	g.AddConstant("odd_dtype", NewDigestTensor(DataType(99), []int64{2}, "abc123"))
	ext := Float32Tensor(nil, 1, 2, 3)
	ext.Name, ext.Doc = "ext_tensor", "stored outside"
	ext.Meta = []StringPair{{"m", "1"}}
	ext.Segment = &[2]int64{0, 3}
	ext.External = &ExternalRef{Location: "weights/w.bin", Offset: 16, Length: 12, Extra: []StringPair{{"checksum", "abc"}}}
	g.AddConstant("ext", ext)
	typed := g.AddConstant("typed", Float32Tensor(nil, 1))
	typed.Type = Type{Kind: KindTensor, Elem: Float, HasShape: true, Shape: []Dim{Known(1)}, Denotation: "X"}
	typed.HasInfo, typed.Doc = true, "typed const"
	typed.Meta = []StringPair{{"a", "b"}}
	sp := g.AddSparseConstant("sp", &SparseTensor{Values: Float32Tensor(nil, 5, 6), Indices: Int64Tensor(nil, 1, 7), Dims: []int64{2, 4}})

	attrT := Int64Tensor(nil, 3, 4)
	attrT.Name = "attr_tensor"
	spAttr := &SparseTensor{Values: Float32Tensor(nil, 1), Indices: Int64Tensor([]int64{1, 2}, 0, 1), Dims: []int64{2, 2}}
	tp := TensorOf(Float, Sym("b"))
	emb := g.Append(NodeSpec{
		Name: "/Embed", Domain: "com.example", Op: "Embed",
		Inputs:  []*Value{ids, nil, w},
		Outputs: []string{"emb"},
		Types:   []Type{TensorOf(Float, Sym("batch"), Sym("seq"), Known(8))},
		Attrs: []*Attr{
			FloatAttr("alpha", 0.1),
			IntAttr("axis", -1),
			{Name: "mode", Type: AttrString, S: []byte{'o', 0xff, '\n'}},
			TensorAttr("value", attrT),
			FloatsAttr("scales", 1, float32(math.NaN()), float32(math.Inf(1)), -0.25),
			IntsAttr("perm", 0, 2, 1),
			{Name: "names", Type: AttrStrings, Strings: [][]byte{[]byte("x"), {}}},
			{Name: "ts", Type: AttrTensors, Tensors: []*Tensor{Float32Tensor(nil, 1), nil, NewDigestTensor(Float, []int64{100}, "00ff")}},
			{Name: "sp", Type: AttrSparseTensor, Sparse: spAttr},
			{Name: "sps", Type: AttrSparseTensors, Sparses: []*SparseTensor{spAttr, nil, {Dims: []int64{3}}}},
			{Name: "tp", Type: AttrTypeProto, TypeP: &tp},
			{Name: "tps", Type: AttrTypeProtos, TypePs: []*Type{&tp, nil, {}}},
			{Name: "nothing", Type: AttrUndefined},
			{Name: "future", Type: AttrType(99)},
			{Name: "no_tensor", Type: AttrTensor},
			{Name: "no_graph", Type: AttrGraph},
			{Name: "no_sparse", Type: AttrSparseTensor},
			{Name: "no_type", Type: AttrTypeProto},
			{Name: "e_floats", Type: AttrFloats}, {Name: "e_ints", Type: AttrInts},
			{Name: "e_strings", Type: AttrStrings}, {Name: "e_tensors", Type: AttrTensors},
			{Name: "e_graphs", Type: AttrGraphs}, {Name: "e_sparses", Type: AttrSparseTensors},
			{Name: "e_types", Type: AttrTypeProtos},
			{Name: "ref", Type: AttrInt, RefAttrName: "outer attr", Doc: "attr doc"},
			{Name: "odd name!", Type: AttrInt, I: 1},
		},
	})
	emb.Overload, emb.Doc = "v2", "node doc"
	emb.Meta = []StringPair{{"source", "layer0"}}
	embV := emb.Outputs[0]
	embV.HasInfo, embV.Doc = true, "embedding"
	embV.Meta = []StringPair{{"x", "y"}}

	split := g.Append(NodeSpec{Domain: "com.example", Op: "Split3", Inputs: []*Value{embV, axes, sp},
		Outputs: []string{"a", "", "c"}, Types: []Type{{}, {}, TensorOfUnknownRank(Float)}})
	a, c := split.Outputs[0], split.Outputs[2]
	g.Append(NodeSpec{Domain: "com.example", Op: "Print", Inputs: []*Value{a}})
	g.Append(NodeSpec{Domain: "com.example", Op: "MyFn", Inputs: []*Value{a}, Outputs: []string{"fn_out"}}).Overload = "o1"

	// If whose branches use outer values; the then branch holds a Loop
	// whose body uses a value two levels up.
	ifNode := g.NewNode(NodeSpec{Op: "If", Inputs: []*Value{cond}, Outputs: []string{"if_out"}})
	thenG := NewSubgraph("then", g, ifNode)
	tc := thenG.AddConstant("tc", Float32Tensor(nil, 2))
	tmp := thenG.Append(NodeSpec{Op: "Mul", Inputs: []*Value{a, tc}, Outputs: []string{"tmp"}}).Outputs[0]
	loop := thenG.NewNode(NodeSpec{Op: "Loop", Inputs: []*Value{nil, nil, tmp}, Outputs: []string{"loop_out"}})
	body := NewSubgraph("loop_body", thenG, loop)
	iter := body.AddInput("iter", TensorOf(Int64))
	bc := body.AddInput("body_cond", TensorOf(Bool))
	carried := body.AddInput("carried", Type{})
	_ = iter
	sum := body.Append(NodeSpec{Op: "Add", Inputs: []*Value{carried, w}, Outputs: []string{"sum"}}).Outputs[0]
	body.AddOutput(bc)
	body.AddOutput(sum)
	loop.Attrs = []*Attr{GraphAttr("body", body)}
	thenG.Nodes = append(thenG.Nodes, loop)
	thenG.AddOutput(loop.Outputs[0])
	elseG := NewSubgraph("else", g, ifNode)
	elseG.AddOutput(a) // a branch output that is an outer value
	ifNode.Attrs = []*Attr{GraphAttr("then_branch", thenG), GraphAttr("else_branch", elseG)}
	g.Nodes = append(g.Nodes, ifNode)

	// A GRAPHS attribute; one body defines "late", a name the outer graph
	// defines again after this node (legal: not visible here yet).
	multi := g.NewNode(NodeSpec{Domain: "com.example", Op: "Multi", Inputs: []*Value{c}, Outputs: []string{"multi_out"}})
	g1 := NewSubgraph("g1", g, multi)
	in1 := g1.AddInput("in1", Type{})
	late := g1.Append(NodeSpec{Op: "Neg", Inputs: []*Value{in1}, Outputs: []string{"late"}}).Outputs[0]
	g1.AddOutput(late)
	g2 := NewSubgraph("g2", g, multi)
	g2.AddOutput(c)
	multi.Attrs = []*Attr{{Name: "bodies", Type: AttrGraphs, Graphs: []*Graph{g1, g2}}}
	g.Nodes = append(g.Nodes, multi)
	lateOuter := g.Append(NodeSpec{Op: "Relu", Inputs: []*Value{multi.Outputs[0]}, Outputs: []string{"late"}}).Outputs[0]

	g.AddOutput(embV)
	g.AddOutput(c)
	g.AddOutput(ifNode.Outputs[0])
	g.AddOutput(lateOuter)
	g.AddOutput(scale)
	return m
}

func putU64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

// smallModel is what the builder makes for a typical test.
func smallModel() *Model {
	b := NewBuilder(17)
	x := b.Input("x", TensorOf(Float, Sym("batch"), Known(8)))
	w := b.Const("w", Float32Tensor([]int64{8, 8}, make([]float32, 64)...))
	y := b.Op("MatMul", x, w)
	z := b.Op("Softmax", y, IntAttr("axis", -1))
	b.Output(z)
	return b.Model()
}

func testModels(t testing.TB) map[string]*Model {
	return map[string]*Model{
		"rich":  richModel(t),
		"small": smallModel(),
		"empty": NewModel(0),
	}
}

var printOptionSets = map[string]PrintOptions{
	"default":  {},
	"fulldata": {FullData: true},
	"limit1":   {InlineLimit: 1},
}

func TestRichModelIsValid(t *testing.T) {
	if err := Verify(richModel(t)); err != nil {
		t.Fatalf("the test model itself does not verify: %v", err)
	}
}

func TestPrintParseRoundTrip(t *testing.T) {
	for name, m := range testModels(t) {
		for oname, o := range printOptionSets {
			t.Run(name+"/"+oname, func(t *testing.T) {
				text := PrintWith(m, o)
				m2, err := Parse(text)
				if err != nil {
					t.Fatalf("Parse: %v\ntext:\n%s", err, text)
				}
				if err := Verify(m2); err != nil {
					t.Errorf("Verify on the parsed model: %v", err)
				}
				if text2 := PrintWith(m2, o); text2 != text {
					t.Errorf("print(parse(print(m))) differs:\n%s", lineDiff(text, text2))
				}
				c := newComparer()
				c.model(m, m2)
				for _, e := range c.errs {
					t.Error(e)
				}
				if o.FullData {
					// With all data present, the parsed model prints like
					// the original under any options.
					if a, b := Print(m), Print(m2); a != b {
						t.Errorf("after a full-data round trip, default printing differs:\n%s", lineDiff(a, b))
					}
				}
			})
		}
	}
}

func TestPrintGraphMatchesModelPrint(t *testing.T) {
	m := smallModel()
	g := PrintGraph(m.Graph)
	if !strings.HasPrefix(g, `graph "main" (`) || !strings.HasSuffix(Print(m), g) {
		t.Errorf("PrintGraph is not the graph block of Print:\n%s\n---\n%s", g, Print(m))
	}
}

// TestTypeTextMatchesTypeString checks that for types without the extras
// (denotations, odd symbols, missing inner types) the text form is exactly
// Type.String.
func TestTypeTextMatchesTypeString(t *testing.T) {
	f := TensorOf(Float, Sym("batch"), Known(3))
	types := []Type{
		{}, f, TensorOf(Int64), TensorOfUnknownRank(Float),
		{Kind: KindSequence, Inner: &f}, {Kind: KindOptional, Inner: &f},
		{Kind: KindMap, Elem: Int64, Inner: &f},
		{Kind: KindSparseTensor, Elem: Float, HasShape: true, Shape: []Dim{Known(4), UnknownDim()}},
		TensorOfSizes(DataType(77), 2),
	}
	for _, ty := range types {
		var b strings.Builder
		writeTypeText(&b, ty)
		if b.String() != ty.String() {
			t.Errorf("text form %q, Type.String %q", b.String(), ty.String())
		}
	}
}

// TestParseHandWritten parses text written by hand and compares it with
// the same model made by the builder.
func TestParseHandWritten(t *testing.T) {
	text := `
// a comment
model ir=8 producer="pytorch" "2.1.0" opset(""=17, "com.microsoft"=1)
graph "main_graph" (%input_ids: i64[batch,seq], %mask: i64[batch,seq]) {
  const %w: f32[2,2] = [1, 2.5, -0.0, 1e-3]
  const %axes: i64[1] = [0]
  %x: f32[batch,seq,2] = Gather(%w, %input_ids) name="/Gather"
  %y: f32[batch,seq,2], _ = com.microsoft::Foo(%x, _, %axes) {axis=-1, alpha=0.5, perm=[0,2,1], body=graph "b" (%i: ?) {
      %z: ? = Add(%i, %x)
      return %z
    }}
  return %y
}
`
	got, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	want := NewModel(8, OpsetID{"", 17}, OpsetID{"com.microsoft", 1})
	want.ProducerName, want.ProducerVersion = "pytorch", "2.1.0"
	g := want.Graph
	g.Name = "main_graph"
	ids := g.AddInput("input_ids", TensorOf(Int64, Sym("batch"), Sym("seq")))
	g.AddInput("mask", TensorOf(Int64, Sym("batch"), Sym("seq")))
	w := g.AddConstant("w", Float32Tensor([]int64{2, 2}, 1, 2.5, float32(math.Copysign(0, -1)), 1e-3))
	axes := g.AddConstant("axes", Int64Tensor(nil, 0))
	x := g.Append(NodeSpec{Name: "/Gather", Op: "Gather", Inputs: []*Value{w, ids}, Outputs: []string{"x"},
		Types: []Type{TensorOf(Float, Sym("batch"), Sym("seq"), Known(2))}}).Outputs[0]
	foo := g.NewNode(NodeSpec{Domain: "com.microsoft", Op: "Foo", Inputs: []*Value{x, nil, axes}, Outputs: []string{"y", ""},
		Types: []Type{TensorOf(Float, Sym("batch"), Sym("seq"), Known(2))}})
	body := NewSubgraph("b", g, foo)
	i := body.AddInput("i", Type{})
	body.AddOutput(body.Append(NodeSpec{Op: "Add", Inputs: []*Value{i, x}, Outputs: []string{"z"}}).Outputs[0])
	foo.Attrs = []*Attr{IntAttr("axis", -1), FloatAttr("alpha", 0.5), IntsAttr("perm", 0, 2, 1), GraphAttr("body", body)}
	g.Nodes = append(g.Nodes, foo)
	g.AddOutput(foo.Outputs[0])

	c := newComparer()
	c.model(want, got)
	for _, e := range c.errs {
		t.Error(e)
	}
	if err := Verify(got); err != nil {
		t.Error(err)
	}
}

// TestDocExampleParses keeps the example in docs/ir-text.md honest.
func TestDocExampleParses(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "ir-text.md"))
	if err != nil {
		t.Skipf("docs/ir-text.md not found: %v", err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Example\n\n```\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/ir-text.md has no example block after \"## Example\"")
	}
	m, err := Parse(example)
	if err != nil {
		t.Fatalf("the documented example does not parse: %v", err)
	}
	if err := Verify(m); err != nil {
		t.Errorf("the documented example does not verify: %v", err)
	}
	if got := Print(m); got != example {
		t.Errorf("the documented example is not in printed form:\n%s", lineDiff(example, got))
	}
}

// TestFloatsRoundTripExactly checks awkward float values bit for bit
// against the values put in.
func TestFloatsRoundTripExactly(t *testing.T) {
	f32s := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.1, 1e-45, math.SmallestNonzeroFloat32,
		math.MaxFloat32, -math.MaxFloat32, float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(canonicalNaN32), math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00000),
		math.Float32frombits(0x7f800001), 16777217, 3.4028235e38, 1.17549435e-38, 123456.789}
	f64s := []float64{0, math.Copysign(0, -1), 0.1, math.SmallestNonzeroFloat64, math.MaxFloat64,
		math.Inf(1), math.Inf(-1), math.Float64frombits(canonicalNaN64), math.NaN(),
		math.Float64frombits(0xfff0000000000001), 1 / 3.0}
	b := NewBuilder(17)
	x := b.Input("x", TensorOf(Float))
	raw := make([]byte, 8*len(f64s))
	for i, f := range f64s {
		putU64(raw[8*i:], math.Float64bits(f))
	}
	d := b.Const("d", MustTensor(Double, []int64{int64(len(f64s))}, raw))
	c := b.Const("f", Float32Tensor(nil, f32s...))
	y := b.Op("com.example::F", x, d, c, FloatsAttr("fs", f32s...), FloatAttr("f", math.Float32frombits(0x7fc00001)))
	b.Output(y)
	m2, err := Parse(PrintWith(b.Model(), PrintOptions{FullData: true}))
	if err != nil {
		t.Fatal(err)
	}
	node := m2.Graph.Nodes[0]
	gotFs := node.Attr("fs").Floats
	if len(gotFs) != len(f32s) {
		t.Fatalf("got %d floats, want %d", len(gotFs), len(f32s))
	}
	for i := range f32s {
		if math.Float32bits(gotFs[i]) != math.Float32bits(f32s[i]) {
			t.Errorf("floats[%d]: got bits %#08x, want %#08x", i, math.Float32bits(gotFs[i]), math.Float32bits(f32s[i]))
		}
	}
	if got := math.Float32bits(node.Attr("f").F); got != 0x7fc00001 {
		t.Errorf("float attr: got bits %#08x, want 0x7fc00001", got)
	}
	gotF, ok := node.Inputs[2].Const.Float32s()
	if !ok || len(gotF) != len(f32s) {
		t.Fatalf("f32 constant did not come back: %v", gotF)
	}
	for i := range f32s {
		if math.Float32bits(gotF[i]) != math.Float32bits(f32s[i]) {
			t.Errorf("f32 const [%d]: got bits %#08x, want %#08x", i, math.Float32bits(gotF[i]), math.Float32bits(f32s[i]))
		}
	}
	if !bytes.Equal(node.Inputs[1].Const.Bytes(), raw) {
		t.Errorf("f64 constant bytes differ:\n got %x\nwant %x", node.Inputs[1].Const.Bytes(), raw)
	}
}

func TestParseResolvesNearestScope(t *testing.T) {
	text := `model ir=8 opset(""=17)
graph "g" (%x: f32[], %c: bool[]) {
  %y: f32[] = If(%c) {then_branch=graph "t" () {
      %u: f32[] = Neg(%x)
      return %u
    }, else_branch=graph "e" () {
      %x: f32[] = Abs(%y_unused_guard)
      return %x
    }}
  return %y
}
`
	if _, err := Parse(text); err == nil || !strings.Contains(err.Error(), "%y_unused_guard") {
		t.Fatalf("want an error naming %%y_unused_guard, got %v", err)
	}
	// The else branch defines its own %x and then uses it: the use must
	// resolve to the inner %x, the then branch's use to the outer one.
	text = strings.Replace(text, "%x: f32[] = Abs(%y_unused_guard)\n      return %x", "%x: f32[] = Abs(%c)\n      %v: f32[] = Neg(%x)\n      return %v", 1)
	m, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	outerX := g.Inputs[0]
	ifn := g.Nodes[0]
	thenNeg := ifn.Attr("then_branch").G.Nodes[0]
	elseG := ifn.Attr("else_branch").G
	if thenNeg.Inputs[0] != outerX {
		t.Errorf("then branch Neg uses %v of graph %q, want the outer input", thenNeg.Inputs[0], thenNeg.Inputs[0].Graph().Name)
	}
	if elseG.Nodes[1].Inputs[0] != elseG.Nodes[0].Outputs[0] {
		t.Errorf("else branch Neg should use the inner %%x")
	}
	if uses := outerX.Uses(); len(uses) != 1 || uses[0].Node != thenNeg {
		t.Errorf("outer %%x should have exactly the then-branch use, has %v", uses)
	}
	if ifn.Attr("then_branch").G.Parent != g || ifn.Attr("then_branch").G.ParentNode != ifn {
		t.Errorf("subgraph parent links are not set")
	}
}

func TestParseErrors(t *testing.T) {
	const hdr = "model ir=8 opset(\"\"=17)\n"
	tests := []struct {
		name, text, pos, want string
	}{
		{"empty", "", "1:1", `expected "model"`},
		{"no ir", "model opset()", "1:7", `expected "ir="`},
		{"bad int", "model ir=x opset()", "1:10", "expected an integer"},
		{"unterminated string", "model ir=8 producer=\"abc", "1:21", "not terminated"},
		{"bad char", hdr + "graph \"g\" () {\n  $\n}", "3:3", "unexpected character"},
		{"forward reference", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%z)\n  %z: ? = Neg(%x)\n  return %y\n}", "3:15", "%z is used before it is defined (at 4:3)"},
		{"undefined value", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%q)\n  return %y\n}", "3:15", "%q is not defined"},
		{"duplicate value", hdr + "graph \"g\" (%x: f32[]) {\n  %x: ? = Neg(%x)\n  return %x\n}", "3:3", "defined twice"},
		{"missing return", hdr + "graph \"g\" () {\n}", "3:1", `expected a node`},
		{"eof in graph", hdr + "graph \"g\" () {\n", "3:1", `expected "return"`},
		{"bad type", hdr + "graph \"g\" (%x: f33[2]) {\n return\n}", "2:16", "unknown element type"},
		{"negative dim", hdr + "graph \"g\" (%x: f32[-2]) {\n return\n}", "2:20", "dimension size"},
		{"type needs colon", hdr + "graph \"g\" (%x f32[2]) {\n return\n}", "2:15", `expected ":"`},
		{"too few values", hdr + "graph \"g\" () {\n  const %w: f32[3] = [1.0, 2.0]\n  return\n}", "3:22", "needs 3 values, found 2"},
		{"bad hex", hdr + "graph \"g\" () {\n  const %w: f16[1] = hex\"zz\"\n  return\n}", "3:25", "bad hex"},
		{"hex wrong size", hdr + "graph \"g\" () {\n  const %w: f16[2] = hex\"0011\"\n  return\n}", "3:25", "needs 4"},
		{"short form needs static type", hdr + "graph \"g\" () {\n  const %w: f32[n] = [1.0]\n  return\n}", "3:22", "short constant data"},
		{"empty list", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%x) {a=[]}\n  return %y\n}", "3:23", "empty list"},
		{"mixed list", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%x) {a=[1, 2.5]}\n  return %y\n}", "3:26", "expected an integer"},
		{"bad attr value", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%x) {a=}\n  return %y\n}", "3:22", `in attribute "a": expected an attribute value`},
		{"nested graph error", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = If(%x) {b=graph \"b\" () {\n    %q: ? = Neg(%nope)\n    return %q\n  }}\n  return %y\n}", "4:17", `in attribute "b": value %nope is not defined`},
		{"trailing text", hdr + "graph \"g\" () {\n  return\n}\ngraph", "5:1", "end of input"},
		{"float overflow", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%x) {a=1e99}\n  return %y\n}", "3:22", "expected a number"},
		{"deep type", hdr + "graph \"g\" (%x: " + strings.Repeat("seq(", 300) + ") {\n return\n}", "2:", "nesting deeper"},
		{"const input unknown", hdr + "graph \"g\" () {\n  const %x = input\n  return\n}", "3:9", "has no input"},
		{"digest bad dims", hdr + "graph \"g\" () {\n  const %w: ? = tensor f32[-1] #ab\n  return\n}", "3:32", "negative"},
		{"int out of range", hdr + "graph \"g\" () {\n  const %w: i8[1] = [300]\n  return\n}", "3:22", "expected a i8 value"},
		{"bad base64", "model ir=8 opset()\ntraining_info b64\"!!\"", "2:18", "base64"},
		{"none in graphs", hdr + "graph \"g\" (%x: f32[]) {\n  %y: ? = Neg(%x) {a=[graph none]}\n  return %y\n}", "3:23", "cannot hold"},
		{"empty value name", hdr + "graph \"g\" (%\"\": f32[]) {\n return\n}", "2:12", "cannot be empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.text)
			if err == nil {
				t.Fatalf("no error; parsed:\n%s", Print(m))
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			pos := fmt.Sprintf("%d:%d", pe.Line, pe.Col)
			if !strings.HasPrefix(pos, tc.pos) {
				t.Errorf("error at %s, want %s: %v", pos, tc.pos, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range testModels(f) {
		for _, o := range printOptionSets {
			f.Add(PrintWith(m, o))
		}
	}
	f.Add("model ir=1 opset()\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse(text)
		if err != nil {
			return
		}
		_ = Verify(m)
		// Whatever parses must print to text that parses to the same text.
		p1 := PrintWith(m, PrintOptions{FullData: true})
		m2, err := Parse(p1)
		if err != nil {
			t.Fatalf("printed text does not parse: %v\n%s", err, p1)
		}
		if p2 := PrintWith(m2, PrintOptions{FullData: true}); p2 != p1 {
			t.Fatalf("print is not stable:\n%s", lineDiff(p1, p2))
		}
	})
}

// lineDiff shows the first differing line of two texts.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y)
		}
	}
	return "(no difference)"
}

// comparer checks that two models are structurally the same: every field,
// values and nodes matched by position, use lists and parent links
// included. Value and node IDs are not compared (the parser numbers values
// in Renumber's order, the builder in creation order).
type comparer struct {
	vals   map[*Value]*Value
	nodes  map[*Node]*Node
	graphs map[*Graph]*Graph
	errs   []string
}

func newComparer() *comparer {
	return &comparer{vals: map[*Value]*Value{}, nodes: map[*Node]*Node{}, graphs: map[*Graph]*Graph{}}
}

func (c *comparer) errf(path, format string, args ...any) {
	if len(c.errs) < 30 {
		c.errs = append(c.errs, path+": "+fmt.Sprintf(format, args...))
	}
}

func (c *comparer) eq(path string, a, b any) {
	if fmt.Sprint(a) != fmt.Sprint(b) {
		c.errf(path, "got %q, want %q", fmt.Sprint(b), fmt.Sprint(a))
	}
}

func (c *comparer) pairs(path string, a, b []StringPair) {
	if len(a) != len(b) || (len(a) > 0 && !slices.Equal(a, b)) {
		c.errf(path, "got %v, want %v", b, a)
	}
}

func (c *comparer) bytesList(path string, a, b [][]byte) {
	if len(a) != len(b) {
		c.errf(path, "got %d entries, want %d", len(b), len(a))
		return
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			c.errf(fmt.Sprintf("%s[%d]", path, i), "got %q, want %q", b[i], a[i])
		}
	}
}

func (c *comparer) model(a, b *Model) {
	c.eq("ir_version", a.IRVersion, b.IRVersion)
	c.eq("opsets", a.Opsets, b.Opsets)
	c.eq("producer", a.ProducerName+"|"+a.ProducerVersion, b.ProducerName+"|"+b.ProducerVersion)
	c.eq("domain", a.Domain, b.Domain)
	c.eq("model_version", a.ModelVersion, b.ModelVersion)
	c.eq("doc", a.Doc, b.Doc)
	c.pairs("meta", a.Meta, b.Meta)
	c.bytesList("training_info", a.TrainingInfo, b.TrainingInfo)
	c.bytesList("configurations", a.Configurations, b.Configurations)
	if len(a.Functions) != len(b.Functions) {
		c.errf("functions", "got %d, want %d", len(b.Functions), len(a.Functions))
	} else {
		for i, fa := range a.Functions {
			fb := b.Functions[i]
			p := "function " + fa.Name
			c.eq(p+" name", fa.Domain+"::"+fa.Name+"|"+fa.Overload, fb.Domain+"::"+fb.Name+"|"+fb.Overload)
			c.eq(p+" attr names", fa.AttrNames, fb.AttrNames)
			c.attrs(p+" defaults", fa.AttrDefaults, fb.AttrDefaults)
			c.eq(p+" opsets", fa.Opsets, fb.Opsets)
			c.eq(p+" doc", fa.Doc, fb.Doc)
			c.pairs(p+" meta", fa.Meta, fb.Meta)
			c.graph(p, fa.Body, fb.Body)
		}
	}
	c.graph("main", a.Graph, b.Graph)
	c.uses()
}

func (c *comparer) graph(path string, a, b *Graph) {
	if (a == nil) != (b == nil) {
		c.errf(path, "graph nil-ness differs")
		return
	}
	if a == nil {
		return
	}
	path += "/" + a.Name
	c.graphs[a] = b
	c.eq(path+" name", a.Name, b.Name)
	c.eq(path+" doc", a.Doc, b.Doc)
	c.pairs(path+" meta", a.Meta, b.Meta)
	c.eq(path+" extras", fmt.Sprintf("%x", a.Extras), fmt.Sprintf("%x", b.Extras))
	if c.graphs[a.Parent] != b.Parent {
		c.errf(path, "parent graph differs")
	}
	if c.nodes[a.ParentNode] != b.ParentNode {
		c.errf(path, "parent node differs")
	}
	if len(a.Inputs) != len(b.Inputs) {
		c.errf(path, "got %d inputs, want %d", len(b.Inputs), len(a.Inputs))
		return
	}
	for i := range a.Inputs {
		c.valueDef(path+" input", a.Inputs[i], b.Inputs[i], b)
	}
	if len(a.Constants) != len(b.Constants) {
		c.errf(path, "got %d constants, want %d", len(b.Constants), len(a.Constants))
		return
	}
	for i, ca := range a.Constants {
		if ca.IsGraphInput() {
			if c.vals[ca] != b.Constants[i] {
				c.errf(path, "constant %d should be input %q", i, ca.Name)
			}
			continue
		}
		c.valueDef(path+" const", ca, b.Constants[i], b)
	}
	if len(a.Nodes) != len(b.Nodes) {
		c.errf(path, "got %d nodes, want %d", len(b.Nodes), len(a.Nodes))
		return
	}
	for i, na := range a.Nodes {
		nb := b.Nodes[i]
		np := fmt.Sprintf("%s node %d (%s)", path, i, na.Op)
		c.nodes[na] = nb
		if nb.Graph() != b {
			c.errf(np, "node belongs to another graph")
		}
		c.eq(np+" op", na.Domain+"::"+na.Op, nb.Domain+"::"+nb.Op)
		c.eq(np+" name", na.Name, nb.Name)
		c.eq(np+" overload", na.Overload, nb.Overload)
		c.eq(np+" doc", na.Doc, nb.Doc)
		c.pairs(np+" meta", na.Meta, nb.Meta)
		if len(na.Inputs) != len(nb.Inputs) {
			c.errf(np, "got %d inputs, want %d", len(nb.Inputs), len(na.Inputs))
		} else {
			for k, in := range na.Inputs {
				if (in == nil) != (nb.Inputs[k] == nil) || (in != nil && c.vals[in] != nb.Inputs[k]) {
					c.errf(np, "input %d: got %v, want %v", k, nb.Inputs[k], in)
				}
			}
		}
		c.attrs(np, na.Attrs, nb.Attrs)
		if len(na.Outputs) != len(nb.Outputs) {
			c.errf(np, "got %d outputs, want %d", len(nb.Outputs), len(na.Outputs))
			continue
		}
		for k, o := range na.Outputs {
			if (o == nil) != (nb.Outputs[k] == nil) {
				c.errf(np, "output %d nil-ness differs", k)
				continue
			}
			if o != nil {
				c.valueDef(np+" output", o, nb.Outputs[k], b)
				if pn, pi := nb.Outputs[k].Producer(); pn != nb || pi != k {
					c.errf(np, "output %d records the wrong producer", k)
				}
			}
		}
	}
	if len(a.Outputs) != len(b.Outputs) {
		c.errf(path, "got %d outputs, want %d", len(b.Outputs), len(a.Outputs))
		return
	}
	for i, o := range a.Outputs {
		if (o == nil && b.Outputs[i] != nil) || (o != nil && c.vals[o] != b.Outputs[i]) {
			c.errf(path, "output %d: got %v, want %v", i, b.Outputs[i], o)
		}
	}
}

func (c *comparer) valueDef(path string, a, b *Value, g *Graph) {
	if (a == nil) != (b == nil) {
		c.errf(path, "nil-ness differs")
		return
	}
	if a == nil {
		return
	}
	path += " " + a.Name
	c.vals[a] = b
	if b.Graph() != g {
		c.errf(path, "value belongs to another graph")
	}
	c.eq(path+" name", a.Name, b.Name)
	if !a.Type.Equal(b.Type) {
		c.errf(path, "type: got %v, want %v", b.Type, a.Type)
	}
	c.eq(path+" info", a.HasInfo, b.HasInfo)
	c.eq(path+" doc", a.Doc, b.Doc)
	c.pairs(path+" meta", a.Meta, b.Meta)
	c.tensor(path+" const", a.Const, b.Const)
	c.sparse(path+" sparse", a.SparseConst, b.SparseConst)
}

// tensor compares data exactly when both carry it, else by digest.
func (c *comparer) tensor(path string, a, b *Tensor) {
	if (a == nil) != (b == nil) {
		c.errf(path, "nil-ness differs")
		return
	}
	if a == nil {
		return
	}
	c.eq(path+" dtype", a.DType, b.DType)
	c.eq(path+" dims", a.Dims, b.Dims)
	if a.HasData() && b.HasData() {
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			c.errf(path, "data: got %x, want %x", b.Bytes(), a.Bytes())
		}
		c.bytesList(path+" strings", a.Strings, b.Strings)
	} else if a.Hash() != b.Hash() {
		c.errf(path, "digest: got %s, want %s", b.Hash(), a.Hash())
	}
	c.eq(path+" name", a.Name, b.Name)
	c.eq(path+" doc", a.Doc, b.Doc)
	c.pairs(path+" meta", a.Meta, b.Meta)
	c.eq(path+" segment", fmt.Sprint(a.Segment), fmt.Sprint(b.Segment))
	if (a.External == nil) != (b.External == nil) {
		c.errf(path, "external nil-ness differs")
	} else if a.External != nil {
		ea, eb := a.External, b.External
		c.eq(path+" external", fmt.Sprint(ea.Location, ea.Offset, ea.Length), fmt.Sprint(eb.Location, eb.Offset, eb.Length))
		c.pairs(path+" external extra", ea.Extra, eb.Extra)
	}
}

func (c *comparer) sparse(path string, a, b *SparseTensor) {
	if (a == nil) != (b == nil) {
		c.errf(path, "nil-ness differs")
		return
	}
	if a == nil {
		return
	}
	c.eq(path+" dims", a.Dims, b.Dims)
	c.tensor(path+" values", a.Values, b.Values)
	c.tensor(path+" indices", a.Indices, b.Indices)
}

func (c *comparer) typePtr(path string, a, b *Type) {
	if (a == nil) != (b == nil) {
		c.errf(path, "nil-ness differs")
	} else if a != nil && !a.Equal(*b) {
		c.errf(path, "got %v, want %v", *b, *a)
	}
}

func (c *comparer) attrs(path string, a, b []*Attr) {
	if len(a) != len(b) {
		c.errf(path, "got %d attributes, want %d", len(b), len(a))
		return
	}
	for i, x := range a {
		y := b[i]
		p := path + " attr " + x.Name
		c.eq(p+" name", x.Name, y.Name)
		c.eq(p+" type", x.Type, y.Type)
		c.eq(p+" ref", x.RefAttrName, y.RefAttrName)
		c.eq(p+" doc", x.Doc, y.Doc)
		if x.Type != y.Type {
			continue
		}
		switch x.Type {
		case AttrFloat:
			c.eq(p, math.Float32bits(x.F), math.Float32bits(y.F))
		case AttrInt:
			c.eq(p, x.I, y.I)
		case AttrString:
			c.eq(p, string(x.S), string(y.S))
		case AttrTensor:
			c.tensor(p, x.T, y.T)
		case AttrGraph:
			c.graph(p, x.G, y.G)
		case AttrSparseTensor:
			c.sparse(p, x.Sparse, y.Sparse)
		case AttrTypeProto:
			c.typePtr(p, x.TypeP, y.TypeP)
		case AttrFloats:
			xb, yb := make([]uint32, len(x.Floats)), make([]uint32, len(y.Floats))
			for k := range x.Floats {
				xb[k] = math.Float32bits(x.Floats[k])
			}
			for k := range y.Floats {
				yb[k] = math.Float32bits(y.Floats[k])
			}
			c.eq(p, xb, yb)
		case AttrInts:
			c.eq(p, x.Ints, y.Ints)
		case AttrStrings:
			c.bytesList(p, x.Strings, y.Strings)
		case AttrTensors:
			if c.eqLen(p, len(x.Tensors), len(y.Tensors)) {
				for k := range x.Tensors {
					c.tensor(fmt.Sprintf("%s[%d]", p, k), x.Tensors[k], y.Tensors[k])
				}
			}
		case AttrGraphs:
			if c.eqLen(p, len(x.Graphs), len(y.Graphs)) {
				for k := range x.Graphs {
					c.graph(fmt.Sprintf("%s[%d]", p, k), x.Graphs[k], y.Graphs[k])
				}
			}
		case AttrSparseTensors:
			if c.eqLen(p, len(x.Sparses), len(y.Sparses)) {
				for k := range x.Sparses {
					c.sparse(fmt.Sprintf("%s[%d]", p, k), x.Sparses[k], y.Sparses[k])
				}
			}
		case AttrTypeProtos:
			if c.eqLen(p, len(x.TypePs), len(y.TypePs)) {
				for k := range x.TypePs {
					c.typePtr(fmt.Sprintf("%s[%d]", p, k), x.TypePs[k], y.TypePs[k])
				}
			}
		}
	}
}

func (c *comparer) eqLen(path string, a, b int) bool {
	if a != b {
		c.errf(path, "got %d elements, want %d", b, a)
	}
	return a == b
}

// uses checks that every matched value has matching use lists and output
// counts.
func (c *comparer) uses() {
	for a, b := range c.vals {
		if a.NumUses() != b.NumUses() {
			c.errf("value "+a.Name, "got %d uses, want %d", b.NumUses(), a.NumUses())
			continue
		}
		want := map[string]int{}
		for _, u := range a.Uses() {
			want[fmt.Sprintf("%p/%d", c.nodes[u.Node], u.Index)]++
		}
		for _, u := range b.Uses() {
			k := fmt.Sprintf("%p/%d", u.Node, u.Index)
			if want[k] == 0 {
				c.errf("value "+a.Name, "unexpected use by %s input %d", u.Node.Describe(), u.Index)
			}
			want[k]--
		}
	}
}

func TestHashSeparatesRankFromData(t *testing.T) {
	empty := MustTensor(Int64, []int64{0}, nil)
	scalar := Int64Tensor([]int64{}, 0)
	if empty.Hash() == scalar.Hash() {
		t.Fatalf("an empty i64[0] and the scalar 0 hash alike: %s", empty.Hash())
	}
}
