package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// DecodeOptions control decoding.
type DecodeOptions struct {
	// KeepFunctions keeps model-local functions as ir.Function instead of
	// inlining their calls.
	KeepFunctions bool
	// BaseDir is the folder external data is read from when decoding from
	// bytes ("" refuses external data). DecodeFile uses the model's folder.
	BaseDir string
	// NoMmap reads files into memory instead of memory-mapping them.
	NoMmap bool
	// NoVerify skips ir.Verify on the decoded model. By default a model
	// that decodes but breaks the IR's invariants (for instance a declared
	// type its op contradicts) is refused, so every decoded model is valid.
	NoVerify bool
}

// Info holds facts about the file as stored, for `tfc inspect`.
type Info struct {
	Path      string
	FileBytes int64
	// StoredNodeCount is the number of nodes in the file's main graph as
	// stored, before inlining.
	StoredNodeCount int
	LocalFunctions  int
	InlinedCalls    int
	ExternalFiles   []ExternalFile
	// Warnings are problems that did not stop decoding (an unsupported IR
	// version, a domain with no opset import, parts tfc drops).
	Warnings []string
}

// ExternalFile is one external-data file a model uses.
type ExternalFile struct {
	Path    string // relative to the model's folder, as stored
	Bytes   int64  // file size
	Tensors int    // tensors stored in it
}

// maxIRVersion is the newest IR version of the pinned onnx.proto (1.23.2).
const maxIRVersion = int64(onnxpb.Version_IR_VERSION)

// DecodeFile decodes the ONNX model at path. Weights are views of the
// memory-mapped file (and of its external-data files); call Model.Close
// when done with the model.
func DecodeFile(path string, opts DecodeOptions) (m *ir.Model, info *Info, err error) {
	info = &Info{Path: path}
	var data []byte
	var closer io.Closer
	if opts.NoMmap || !canMmap {
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
	} else {
		mp, err := mapFile(path)
		if err != nil {
			return nil, nil, err
		}
		data, closer = mp.data, mp
		// Decoding reads only field headers: no readahead into the
		// weights while it runs (see stream_advice.go).
		mp.advise(accessRandom)
		defer mp.advise(accessNormal)
	}
	info.FileBytes = int64(len(data))
	opts.BaseDir = filepath.Dir(path)
	m, err = decode(data, opts, info)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if closer != nil {
		m.AddCloser(closer)
	}
	return m, info, nil
}

// Decode decodes an encoded ModelProto. The model's tensors alias data:
// the caller keeps it alive and unmodified while the model is in use.
func Decode(data []byte, opts DecodeOptions) (*ir.Model, *Info, error) {
	info := &Info{FileBytes: int64(len(data))}
	m, err := decode(data, opts, info)
	if err != nil {
		return nil, nil, err
	}
	return m, info, nil
}

// decoder holds the state of one decode.
type decoder struct {
	opts     DecodeOptions
	info     *Info
	baseDir  string
	side     [][]byte
	external map[string]*externalFile
	closers  []io.Closer
	// domains records, per node domain, a node using it (for warnings
	// about domains without an opset import).
	domains map[string]string
}

func decode(data []byte, opts DecodeOptions, info *Info) (m *ir.Model, err error) {
	d := &decoder{opts: opts, info: info, baseDir: opts.BaseDir, external: map[string]*externalFile{}, domains: map[string]string{}}
	defer func() {
		// Last-resort net: a panic here is a bug, but bad input must
		// still come back as an error.
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("internal error while decoding (please report): %v\n%s", r, debug.Stack())
		}
		if err != nil {
			for _, c := range d.closers {
				c.Close()
			}
		}
	}()
	shadow, side, err := buildShadow(data)
	if err != nil {
		return nil, err
	}
	d.side = side
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(shadow, &mp); err != nil {
		return nil, fmt.Errorf("not a valid ONNX model: %v", err)
	}
	m, err = d.model(&mp)
	if err != nil {
		return nil, err
	}
	if !opts.NoVerify {
		if err := ir.Verify(m); err != nil {
			return nil, fmt.Errorf("model is invalid: %w", err)
		}
	}
	for _, c := range d.closers {
		m.AddCloser(c)
	}
	return m, nil
}

func (d *decoder) warnf(format string, args ...any) {
	d.info.Warnings = append(d.info.Warnings, fmt.Sprintf(format, args...))
}

func (d *decoder) model(mp *onnxpb.ModelProto) (*ir.Model, error) {
	gp := mp.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("model has no graph")
	}
	d.info.StoredNodeCount = len(gp.GetNode())
	d.info.LocalFunctions = len(mp.GetFunctions())
	m := &ir.Model{
		IRVersion:       mp.GetIrVersion(),
		ProducerName:    mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		Domain:          mp.GetDomain(),
		ModelVersion:    mp.GetModelVersion(),
		Doc:             mp.GetDocString(),
		Meta:            pairs(mp.GetMetadataProps()),
	}
	switch {
	case m.IRVersion <= 0:
		d.warnf("model has no IR version")
	case m.IRVersion > maxIRVersion:
		d.warnf("IR version %d is newer than the newest tfc knows (%d)", m.IRVersion, maxIRVersion)
	case m.IRVersion < 3:
		d.warnf("IR version %d predates opset imports and is not supported", m.IRVersion)
	}
	m.Opsets = opsetsFrom(mp.GetOpsetImport())
	if len(mp.GetFunctions()) > 0 && !d.opts.KeepFunctions {
		opsets, err := d.inlineFunctions(mp, m.Opsets)
		if err != nil {
			return nil, err
		}
		m.Opsets = opsets
	}
	g := ir.NewGraph(gp.GetName())
	if err := d.graph(gp, g, nil, 0); err != nil {
		return nil, err
	}
	m.Graph = g
	d.checkDomains(m.Opsets, "the model")
	if d.opts.KeepFunctions {
		for i, fp := range mp.GetFunctions() {
			f, err := d.function(fp)
			if err != nil {
				return nil, fmt.Errorf("function %d %q: %w", i, fp.GetName(), err)
			}
			m.Functions = append(m.Functions, f)
		}
	}
	for _, ti := range mp.GetTrainingInfo() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(ti)
		if err != nil {
			return nil, fmt.Errorf("training_info: %w", err)
		}
		m.TrainingInfo = append(m.TrainingInfo, b)
	}
	for _, c := range mp.GetConfiguration() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
		m.Configurations = append(m.Configurations, b)
	}
	return m, nil
}

func opsetsFrom(ops []*onnxpb.OperatorSetIdProto) []ir.OpsetID {
	var out []ir.OpsetID
	for _, o := range ops {
		out = append(out, ir.OpsetID{Domain: o.GetDomain(), Version: o.GetVersion()})
	}
	return out
}

// checkDomains warns about node domains that the given opsets do not
// import, then forgets them.
func (d *decoder) checkDomains(opsets []ir.OpsetID, owner string) {
	have := map[string]bool{}
	for _, o := range opsets {
		have[normDomain(o.Domain)] = true
	}
	var missing []string
	for dom := range d.domains {
		if !have[dom] {
			missing = append(missing, dom)
		}
	}
	slices.Sort(missing)
	for _, dom := range missing {
		name := dom
		if name == "" {
			name = "ai.onnx"
		}
		d.warnf("domain %q (used by %s) has no opset import in %s", name, d.domains[dom], owner)
	}
	clear(d.domains)
}

func normDomain(dom string) string {
	if dom == "ai.onnx" {
		return ""
	}
	return dom
}

// scope maps names to the values visible in one graph, chained to the
// enclosing graph's scope.
type scope struct {
	g      *ir.Graph
	names  map[string]*ir.Value
	parent *scope
}

func (s *scope) lookup(name string) *ir.Value {
	for ; s != nil; s = s.parent {
		if v, ok := s.names[name]; ok {
			return v
		}
	}
	return nil
}

// define adds a value to the scope, refusing duplicates in this graph and
// shadowing of enclosing graphs' values.
func (s *scope) define(name, role string) error {
	if name == "" {
		return fmt.Errorf("graph %q: %s has an empty name", s.g.Name, role)
	}
	if _, ok := s.names[name]; ok {
		return fmt.Errorf("graph %q: value %q is defined twice (again as %s)", s.g.Name, name, role)
	}
	if s.parent != nil && s.parent.lookup(name) != nil {
		return fmt.Errorf("graph %q: %s %q shadows a value of an enclosing graph", s.g.Name, role, name)
	}
	return nil
}

// describeNode names a NodeProto for error messages.
func describeNode(np *onnxpb.NodeProto) string {
	if np.GetName() != "" {
		return fmt.Sprintf("node %q (%s)", np.GetName(), np.GetOpType())
	}
	for _, o := range np.GetOutput() {
		if o != "" {
			return fmt.Sprintf("%s node producing %q", np.GetOpType(), o)
		}
	}
	return fmt.Sprintf("unnamed %s node", np.GetOpType())
}

// graph fills g from gp. parent is the scope of the enclosing graph at
// the node holding gp (nil for a top-level graph).
func (d *decoder) graph(gp *onnxpb.GraphProto, g *ir.Graph, parent *scope, depth int) error {
	if depth > maxMessageDepth {
		return fmt.Errorf("graph %q: graphs nest deeper than %d levels", gp.GetName(), maxMessageDepth)
	}
	g.Doc = gp.GetDocString()
	g.Meta = pairs(gp.GetMetadataProps())
	sc := &scope{g: g, names: map[string]*ir.Value{}, parent: parent}
	for _, vi := range gp.GetInput() {
		if err := sc.define(vi.GetName(), "input"); err != nil {
			return err
		}
		t, err := d.typeFrom(vi.GetType(), 0)
		if err != nil {
			return fmt.Errorf("graph %q: input %q: %w", g.Name, vi.GetName(), err)
		}
		v := g.AddInput(vi.GetName(), t)
		v.Doc, v.Meta = vi.GetDocString(), pairs(vi.GetMetadataProps())
		sc.names[v.Name] = v
	}
	seenInit := map[string]bool{}
	addInit := func(name string, role string) (*ir.Value, error) {
		if name == "" {
			return nil, fmt.Errorf("graph %q: an %s has no name", g.Name, role)
		}
		if seenInit[name] {
			return nil, fmt.Errorf("graph %q: %s %q is defined twice", g.Name, role, name)
		}
		seenInit[name] = true
		if v := sc.names[name]; v != nil {
			return v, nil // an input with a default value
		}
		return nil, sc.define(name, role)
	}
	for i, tp := range gp.GetInitializer() {
		in, err := addInit(tp.GetName(), "initializer")
		if err != nil {
			return err
		}
		t, err := d.tensor(tp)
		if err != nil {
			return fmt.Errorf("graph %q: initializer %d %q: %w", g.Name, i, tp.GetName(), err)
		}
		t.Name = ""
		if in != nil {
			in.Const = t
			g.Constants = append(g.Constants, in)
			continue
		}
		sc.names[tp.GetName()] = g.AddConstant(tp.GetName(), t)
	}
	for i, sp := range gp.GetSparseInitializer() {
		name := sp.GetValues().GetName()
		in, err := addInit(name, "sparse initializer")
		if err != nil {
			return err
		}
		s, err := d.sparse(sp)
		if err != nil {
			return fmt.Errorf("graph %q: sparse initializer %d %q: %w", g.Name, i, name, err)
		}
		s.Values.Name = ""
		if in != nil {
			in.SparseConst = s
			g.Constants = append(g.Constants, in)
			continue
		}
		sc.names[name] = g.AddSparseConstant(name, s)
	}
	if err := d.nodes(gp.GetNode(), g, sc, depth); err != nil {
		return err
	}
	for _, vi := range gp.GetValueInfo() {
		v := sc.names[vi.GetName()]
		if v == nil {
			d.warnf("graph %q: value_info %q names no value of the graph; dropped", g.Name, vi.GetName())
			continue
		}
		t, err := d.typeFrom(vi.GetType(), 0)
		if err != nil {
			return fmt.Errorf("graph %q: value_info %q: %w", g.Name, vi.GetName(), err)
		}
		v.Type, v.HasInfo = t, true
		v.Doc, v.Meta = vi.GetDocString(), pairs(vi.GetMetadataProps())
	}
	for _, vi := range gp.GetOutput() {
		v := sc.lookup(vi.GetName())
		if v == nil {
			return fmt.Errorf("graph %q: output %q is not produced by any node, input or initializer", g.Name, vi.GetName())
		}
		if v.Graph() == g {
			t, err := d.typeFrom(vi.GetType(), 0)
			if err != nil {
				return fmt.Errorf("graph %q: output %q: %w", g.Name, vi.GetName(), err)
			}
			if t.Kind != ir.KindUnknown || !v.HasInfo {
				v.Type = t
			}
			if vi.GetDocString() != "" {
				v.Doc = vi.GetDocString()
			}
			if len(vi.GetMetadataProps()) > 0 {
				v.Meta = pairs(vi.GetMetadataProps())
			}
		}
		g.AddOutput(v)
	}
	for _, qa := range gp.GetQuantizationAnnotation() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(qa)
		if err != nil {
			return fmt.Errorf("graph %q: quantization_annotation: %w", g.Name, err)
		}
		g.Extras = append(g.Extras, ir.RawField{Number: 14, Bytes: b})
	}
	return nil
}

// nodes builds a graph's nodes in dependency order.
func (d *decoder) nodes(nps []*onnxpb.NodeProto, g *ir.Graph, sc *scope, depth int) error {
	sorted, err := sortNodes(nps, g.Name, sc.names)
	if err != nil {
		return err
	}
	for _, np := range sorted {
		desc := describeNode(np)
		if np.GetOpType() == "" {
			return fmt.Errorf("graph %q: %s has no op type", g.Name, desc)
		}
		inputs := make([]*ir.Value, len(np.GetInput()))
		for i, name := range np.GetInput() {
			if name == "" {
				continue
			}
			v := sc.lookup(name)
			if v == nil {
				return fmt.Errorf("graph %q: %s: input %q is not produced by any node, input or initializer", g.Name, desc, name)
			}
			inputs[i] = v
		}
		var attrs []*ir.Attr
		seenAttr := map[string]bool{}
		for _, ap := range np.GetAttribute() {
			if seenAttr[ap.GetName()] {
				return fmt.Errorf("graph %q: %s: attribute %q is given twice", g.Name, desc, ap.GetName())
			}
			seenAttr[ap.GetName()] = true
			a, err := d.attr(ap, g, sc, depth)
			if err != nil {
				return fmt.Errorf("graph %q: %s: attribute %q: %w", g.Name, desc, ap.GetName(), err)
			}
			attrs = append(attrs, a)
		}
		outs := np.GetOutput()
		for i, o := range outs {
			if o == "" {
				continue
			}
			if slices.Contains(outs[:i], o) {
				return fmt.Errorf("graph %q: %s lists output %q twice", g.Name, desc, o)
			}
			if err := sc.define(o, "an output of "+desc); err != nil {
				return err
			}
		}
		if len(np.GetDeviceConfigurations()) > 0 {
			d.warnf("graph %q: %s: device_configurations are not kept", g.Name, desc)
		}
		dom := normDomain(np.GetDomain())
		if _, ok := d.domains[dom]; !ok {
			d.domains[dom] = desc
		}
		n := g.Append(ir.NodeSpec{
			Name: np.GetName(), Domain: dom, Op: np.GetOpType(),
			Inputs: inputs, Attrs: attrs, Outputs: slices.Clone(outs),
		})
		n.Overload, n.Doc, n.Meta = np.GetOverload(), np.GetDocString(), pairs(np.GetMetadataProps())
		for _, a := range attrs {
			for _, sg := range a.Subgraphs() {
				sg.ParentNode = n
			}
		}
		for _, v := range n.Outputs {
			if v != nil {
				sc.names[v.Name] = v
			}
		}
	}
	return nil
}

// attr converts an attribute; graphs become subgraphs of g seeing scope sc.
func (d *decoder) attr(ap *onnxpb.AttributeProto, g *ir.Graph, sc *scope, depth int) (*ir.Attr, error) {
	if ap.GetName() == "" {
		return nil, fmt.Errorf("attribute has no name")
	}
	a := &ir.Attr{Name: ap.GetName(), Type: ir.AttrType(ap.GetType()), RefAttrName: ap.GetRefAttrName(), Doc: ap.GetDocString()}
	if a.RefAttrName != "" {
		return a, nil
	}
	if a.Type == ir.AttrUndefined {
		a.Type = guessAttrType(ap)
		if a.Type == ir.AttrUndefined {
			return nil, fmt.Errorf("has no type and no value")
		}
	}
	subgraph := func(gp *onnxpb.GraphProto) (*ir.Graph, error) {
		if gp == nil {
			return nil, fmt.Errorf("of type %v has no graph", a.Type)
		}
		sg := ir.NewSubgraph(gp.GetName(), g, nil)
		if err := d.graph(gp, sg, sc, depth+1); err != nil {
			return nil, err
		}
		return sg, nil
	}
	var err error
	switch a.Type {
	case ir.AttrFloat:
		a.F = ap.GetF()
	case ir.AttrInt:
		a.I = ap.GetI()
	case ir.AttrString:
		a.S = ap.GetS()
	case ir.AttrTensor:
		if ap.GetT() == nil {
			return nil, fmt.Errorf("of type tensor has no tensor")
		}
		if a.T, err = d.tensor(ap.GetT()); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", ap.GetT().GetName(), err)
		}
	case ir.AttrGraph:
		if a.G, err = subgraph(ap.GetG()); err != nil {
			return nil, err
		}
	case ir.AttrSparseTensor:
		if ap.GetSparseTensor() == nil {
			return nil, fmt.Errorf("of type sparse_tensor has no sparse tensor")
		}
		if a.Sparse, err = d.sparse(ap.GetSparseTensor()); err != nil {
			return nil, err
		}
	case ir.AttrTypeProto:
		t, err := d.typeFrom(ap.GetTp(), 0)
		if err != nil {
			return nil, err
		}
		a.TypeP = &t
	case ir.AttrFloats:
		a.Floats = ap.GetFloats()
	case ir.AttrInts:
		a.Ints = ap.GetInts()
	case ir.AttrStrings:
		a.Strings = ap.GetStrings()
	case ir.AttrTensors:
		for i, tp := range ap.GetTensors() {
			t, err := d.tensor(tp)
			if err != nil {
				return nil, fmt.Errorf("tensor %d %q: %w", i, tp.GetName(), err)
			}
			a.Tensors = append(a.Tensors, t)
		}
	case ir.AttrGraphs:
		for _, gp := range ap.GetGraphs() {
			sg, err := subgraph(gp)
			if err != nil {
				return nil, err
			}
			a.Graphs = append(a.Graphs, sg)
		}
	case ir.AttrSparseTensors:
		for i, sp := range ap.GetSparseTensors() {
			s, err := d.sparse(sp)
			if err != nil {
				return nil, fmt.Errorf("sparse tensor %d: %w", i, err)
			}
			a.Sparses = append(a.Sparses, s)
		}
	case ir.AttrTypeProtos:
		for _, tp := range ap.GetTypeProtos() {
			t, err := d.typeFrom(tp, 0)
			if err != nil {
				return nil, err
			}
			a.TypePs = append(a.TypePs, &t)
		}
	default:
		return nil, fmt.Errorf("has unknown attribute type %d", int32(a.Type))
	}
	return a, nil
}

// guessAttrType infers the type of an attribute written without one (IR
// version 1 files) from the field that is set.
func guessAttrType(ap *onnxpb.AttributeProto) ir.AttrType {
	switch {
	case ap.GetT() != nil:
		return ir.AttrTensor
	case ap.GetG() != nil:
		return ir.AttrGraph
	case ap.GetSparseTensor() != nil:
		return ir.AttrSparseTensor
	case ap.GetTp() != nil:
		return ir.AttrTypeProto
	case len(ap.GetFloats()) > 0:
		return ir.AttrFloats
	case len(ap.GetInts()) > 0:
		return ir.AttrInts
	case len(ap.GetStrings()) > 0:
		return ir.AttrStrings
	case len(ap.GetTensors()) > 0:
		return ir.AttrTensors
	case len(ap.GetGraphs()) > 0:
		return ir.AttrGraphs
	case len(ap.GetSparseTensors()) > 0:
		return ir.AttrSparseTensors
	case len(ap.GetTypeProtos()) > 0:
		return ir.AttrTypeProtos
	case len(ap.GetS()) > 0:
		return ir.AttrString
	case ap.GetI() != 0:
		return ir.AttrInt
	case ap.GetF() != 0:
		return ir.AttrFloat
	}
	return ir.AttrUndefined
}

// sparse converts a SparseTensorProto, checking its parts agree.
func (d *decoder) sparse(sp *onnxpb.SparseTensorProto) (*ir.SparseTensor, error) {
	dims := sp.GetDims()
	if ir.NumElements(dims) < 0 {
		return nil, fmt.Errorf("dense dimensions %v are negative or their product overflows", dims)
	}
	if sp.GetValues() == nil {
		return nil, fmt.Errorf("sparse tensor has no values")
	}
	vals, err := d.tensor(sp.GetValues())
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	s := &ir.SparseTensor{Values: vals, Dims: slices.Clone(dims)}
	if len(vals.Dims) != 1 {
		return nil, fmt.Errorf("values must be 1-D, have shape %v", vals.Dims)
	}
	if sp.GetIndices() != nil {
		if s.Indices, err = d.tensor(sp.GetIndices()); err != nil {
			return nil, fmt.Errorf("indices: %w", err)
		}
		nnz := vals.Dims[0]
		id := s.Indices.Dims
		ok := s.Indices.DType == ir.Int64 && len(id) >= 1 && id[0] == nnz &&
			(len(id) == 1 || (len(id) == 2 && id[1] == int64(len(dims))))
		if !ok {
			return nil, fmt.Errorf("indices %v%v do not fit %d values of a rank-%d tensor", s.Indices.DType, id, nnz, len(dims))
		}
	} else if vals.Dims[0] != 0 {
		return nil, fmt.Errorf("sparse tensor has %d values but no indices", vals.Dims[0])
	}
	return s, nil
}

// maxTypeDepth bounds nesting of sequence/optional/map types.
const maxTypeDepth = 64

// typeFrom converts a TypeProto; nil gives the unknown type.
func (d *decoder) typeFrom(tp *onnxpb.TypeProto, depth int) (ir.Type, error) {
	if tp == nil {
		return ir.Type{}, nil
	}
	if depth > maxTypeDepth {
		return ir.Type{}, fmt.Errorf("type nests deeper than %d levels", maxTypeDepth)
	}
	t := ir.Type{Denotation: tp.GetDenotation()}
	inner := func(in *onnxpb.TypeProto) (*ir.Type, error) {
		if in == nil {
			return nil, nil
		}
		it, err := d.typeFrom(in, depth+1)
		if err != nil {
			return nil, err
		}
		return &it, nil
	}
	var err error
	switch v := tp.GetValue().(type) {
	case nil:
	case *onnxpb.TypeProto_TensorType:
		t.Kind, t.Elem = ir.KindTensor, ir.DataType(v.TensorType.GetElemType())
		t.HasShape, t.Shape, err = shapeFrom(v.TensorType.GetShape())
	case *onnxpb.TypeProto_SparseTensorType:
		t.Kind, t.Elem = ir.KindSparseTensor, ir.DataType(v.SparseTensorType.GetElemType())
		t.HasShape, t.Shape, err = shapeFrom(v.SparseTensorType.GetShape())
	case *onnxpb.TypeProto_SequenceType:
		t.Kind = ir.KindSequence
		t.Inner, err = inner(v.SequenceType.GetElemType())
	case *onnxpb.TypeProto_OptionalType:
		t.Kind = ir.KindOptional
		t.Inner, err = inner(v.OptionalType.GetElemType())
	case *onnxpb.TypeProto_MapType:
		t.Kind, t.Elem = ir.KindMap, ir.DataType(v.MapType.GetKeyType())
		t.Inner, err = inner(v.MapType.GetValueType())
	case *onnxpb.TypeProto_OpaqueType:
		// The IR has no opaque kind; such values get the unknown type.
		d.warnf("opaque type %s.%s is not kept (read as unknown)", v.OpaqueType.GetDomain(), v.OpaqueType.GetName())
		return ir.Type{Denotation: tp.GetDenotation()}, nil
	}
	return t, err
}

func shapeFrom(sp *onnxpb.TensorShapeProto) (bool, []ir.Dim, error) {
	if sp == nil {
		return false, nil, nil
	}
	dims := make([]ir.Dim, len(sp.GetDim()))
	for i, dp := range sp.GetDim() {
		var dim ir.Dim
		switch v := dp.GetValue().(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			if v.DimValue < 0 {
				return false, nil, fmt.Errorf("dimension %d is negative (%d)", i, v.DimValue)
			}
			dim = ir.Known(v.DimValue)
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			dim = ir.Sym(v.DimParam)
		default:
			dim = ir.UnknownDim()
		}
		dim.Denotation = dp.GetDenotation()
		dims[i] = dim
	}
	return true, dims, nil
}

// function converts a model-local function kept as a function.
func (d *decoder) function(fp *onnxpb.FunctionProto) (*ir.Function, error) {
	f := &ir.Function{
		Name: fp.GetName(), Domain: fp.GetDomain(), Overload: fp.GetOverload(),
		AttrNames: fp.GetAttribute(), Opsets: opsetsFrom(fp.GetOpsetImport()),
		Doc: fp.GetDocString(), Meta: pairs(fp.GetMetadataProps()),
	}
	body := ir.NewGraph(fp.GetName())
	sc := &scope{g: body, names: map[string]*ir.Value{}}
	for _, name := range fp.GetInput() {
		if err := sc.define(name, "function input"); err != nil {
			return nil, err
		}
		sc.names[name] = body.AddInput(name, ir.Type{})
	}
	if err := d.nodes(fp.GetNode(), body, sc, 0); err != nil {
		return nil, err
	}
	d.checkDomains(f.Opsets, fmt.Sprintf("function %q", f.Name))
	for _, vi := range fp.GetValueInfo() {
		v := sc.names[vi.GetName()]
		if v == nil {
			d.warnf("function %q: value_info %q names no value of the function; dropped", f.Name, vi.GetName())
			continue
		}
		t, err := d.typeFrom(vi.GetType(), 0)
		if err != nil {
			return nil, fmt.Errorf("value_info %q: %w", vi.GetName(), err)
		}
		v.Type, v.HasInfo = t, true
		v.Doc, v.Meta = vi.GetDocString(), pairs(vi.GetMetadataProps())
	}
	for _, name := range fp.GetOutput() {
		v := sc.names[name]
		if v == nil {
			return nil, fmt.Errorf("output %q is not produced by any node or input", name)
		}
		body.AddOutput(v)
	}
	for _, ap := range fp.GetAttributeProto() {
		a, err := d.attr(ap, body, sc, 0)
		if err != nil {
			return nil, fmt.Errorf("attribute default %q: %w", ap.GetName(), err)
		}
		f.AttrDefaults = append(f.AttrDefaults, a)
	}
	f.Body = body
	return f, nil
}
