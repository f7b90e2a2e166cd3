package onnx

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// maxProtoBytes is the largest message protobuf implementations accept
// (2 GiB - 1); bigger models must store weights as external data. A
// variable so that tests can exercise the limit without writing 2 GiB.
var maxProtoBytes = 1<<31 - 1

// EncodeOptions control EncodeFile.
type EncodeOptions struct {
	// ExternalData says which initializers are written to an external
	// data file: "auto" or "" (only if the model would exceed 2 GiB
	// otherwise), "always" (every initializer of at least
	// ExternalThreshold bytes), "never" (fail if the model exceeds 2 GiB).
	ExternalData string
	// ExternalThreshold is the smallest initializer, in bytes, written
	// externally; 0 means 1024.
	ExternalThreshold int64
	// ExternalFile is the data file's path relative to the model's folder;
	// "" means the model file's name plus ".data".
	ExternalFile string
}

// Encode encodes m as an ONNX ModelProto in memory (no external data). It
// fails if the encoding would exceed 2 GiB.
func Encode(m *ir.Model) (out []byte, err error) {
	defer recoverInternal("encoding", &err)
	e := &encoder{}
	mp, err := e.model(m)
	if err != nil {
		return nil, err
	}
	if size := proto.Size(mp); size > maxProtoBytes {
		return nil, fmt.Errorf("the encoded model would be %d bytes, over protobuf's 2 GiB limit; write it with EncodeFile and external data", size)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(mp)
}

func recoverInternal(what string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("internal error while %s (please report): %v\n%s", what, r, debug.Stack())
	}
}

// EncodeFile writes m to path, with weights in an external data file as
// opts say. Files are written to temporary names in the same folder,
// synced and renamed into place, so a failure never leaves a half-written
// model or data file behind.
func EncodeFile(m *ir.Model, path string, opts EncodeOptions) (err error) {
	defer recoverInternal("encoding", &err)
	switch opts.ExternalData {
	case "", "auto", "always", "never":
	default:
		return fmt.Errorf("external data mode %q is not one of auto, always, never", opts.ExternalData)
	}
	e := &encoder{}
	mp, err := e.model(m)
	if err != nil {
		return err
	}
	threshold := opts.ExternalThreshold
	if threshold <= 0 {
		threshold = 1024
	}
	external := false
	switch opts.ExternalData {
	case "", "auto":
		external = proto.Size(mp) > maxProtoBytes
	case "always":
		external = true
	}
	dir := filepath.Dir(path)
	// Files written to temporary names, renamed into place at the end.
	var pending []pendingFile
	cleanup := func() {
		for _, p := range pending {
			os.Remove(p.tmp)
		}
	}
	// In auto mode, tensors that came from external data go back where
	// they were (same file names and offsets), so that -O0 keeps the
	// layout and the IR's external references unchanged.
	if (opts.ExternalData == "" || opts.ExternalData == "auto") && len(e.stored) > 0 && e.layoutKeepable() {
		pending, err = e.writeStoredLayout(dir)
		if err != nil {
			cleanup()
			return err
		}
		if external {
			external = proto.Size(mp) > maxProtoBytes
		}
	}
	if external {
		external = false
		for _, tp := range e.initializers {
			if int64(len(tp.RawData)) >= threshold {
				external = true
			}
		}
	}
	if external {
		location := opts.ExternalFile
		if location == "" {
			location = filepath.Base(path) + ".data"
		}
		if filepath.IsAbs(location) || strings.HasPrefix(filepath.Clean(location), "..") {
			cleanup()
			return fmt.Errorf("external data file %q must be a path inside the model's folder", location)
		}
		for _, st := range e.stored {
			if st.tp.DataLocation == onnxpb.TensorProto_EXTERNAL && filepath.Clean(st.ref.Location) == filepath.Clean(location) {
				cleanup()
				return fmt.Errorf("external data file %q is already used by the model's existing external data; choose another ExternalFile", location)
			}
		}
		dataPath := filepath.Join(dir, location)
		tmp, err := e.writeExternal(dataPath, filepath.ToSlash(location), threshold)
		if err != nil {
			cleanup()
			return err
		}
		pending = append(pending, pendingFile{tmp, dataPath})
	}
	if size := proto.Size(mp); size > maxProtoBytes {
		cleanup()
		return fmt.Errorf("the encoded model would be %d bytes, over protobuf's 2 GiB limit; use external data", size)
	}
	tmpModel, err := writeTemp(path, func(f *os.File) error {
		if !streamEncoding {
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
			if err != nil {
				return err
			}
			_, err = f.Write(data)
			return err
		}
		_, err := writeModelStreamed(newWritebackWriter(f), mp, e.tensors)
		return err
	})
	if err != nil {
		cleanup()
		return err
	}
	for i, p := range pending {
		if err := os.Rename(p.tmp, p.final); err != nil {
			for _, q := range pending[i:] {
				os.Remove(q.tmp)
			}
			os.Remove(tmpModel)
			return err
		}
	}
	if err := os.Rename(tmpModel, path); err != nil {
		os.Remove(tmpModel)
		return err
	}
	syncDir(dir)
	return nil
}

// streamEncoding says whether EncodeFile streams large raw_data from the
// tensors' views (see stream.go) instead of marshaling the model into one
// buffer; tests turn it off to compare against the plain encoding.
var streamEncoding = true

// pendingFile is a finished temporary file and the name it gets.
type pendingFile struct{ tmp, final string }

// layoutKeepable reports whether the recorded external-data layout can be
// written again: safe relative locations, tensors that fit their recorded
// lengths, and no two tensors overlapping in one file.
func (e *encoder) layoutKeepable() bool {
	type span struct{ start, end int64 }
	byFile := map[string][]span{}
	for _, st := range e.stored {
		loc := st.ref.Location
		clean := filepath.Clean(filepath.FromSlash(loc))
		if loc == "" || filepath.IsAbs(loc) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) || strings.ContainsRune(loc, 0) {
			return false
		}
		n := int64(len(st.tp.RawData))
		if st.ref.Offset < 0 || (st.ref.Length != 0 && st.ref.Length != n) || st.ref.Offset > math.MaxInt64-n {
			return false
		}
		byFile[clean] = append(byFile[clean], span{st.ref.Offset, st.ref.Offset + n})
	}
	for _, spans := range byFile {
		slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				return false
			}
		}
	}
	return true
}

// writeStoredLayout writes the tensors that came from external data into
// temporary files for their recorded locations, at their recorded offsets,
// and points their TensorProtos there.
func (e *encoder) writeStoredLayout(dir string) ([]pendingFile, error) {
	byFile := map[string][]storedTensor{}
	var order []string
	for _, st := range e.stored {
		loc := filepath.Clean(filepath.FromSlash(st.ref.Location))
		if _, ok := byFile[loc]; !ok {
			order = append(order, loc)
		}
		byFile[loc] = append(byFile[loc], st)
	}
	var pending []pendingFile
	for _, loc := range order {
		final := filepath.Join(dir, loc)
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return nil, err
		}
		tmp, err := writeTemp(final, func(f *os.File) error {
			for _, st := range byFile[loc] {
				if _, err := f.WriteAt(st.tp.RawData, st.ref.Offset); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			for _, p := range pending {
				os.Remove(p.tmp)
			}
			return nil, err
		}
		pending = append(pending, pendingFile{tmp, final})
		for _, st := range byFile[loc] {
			tp, ref := st.tp, st.ref
			tp.ExternalData = []*onnxpb.StringStringEntryProto{
				{Key: "location", Value: ref.Location},
				{Key: "offset", Value: strconv.FormatInt(ref.Offset, 10)},
			}
			if ref.Length != 0 {
				tp.ExternalData = append(tp.ExternalData, &onnxpb.StringStringEntryProto{Key: "length", Value: strconv.FormatInt(ref.Length, 10)})
			}
			tp.ExternalData = append(tp.ExternalData, pairProtos(ref.Extra)...)
			tp.DataLocation = onnxpb.TensorProto_EXTERNAL
			tp.RawData = nil
		}
	}
	return pending, nil
}

// writeTemp writes a temporary file next to path with fill, syncs and
// closes it, and returns its name. On failure it removes the file.
func writeTemp(path string, fill func(*os.File) error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, 0o644)
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return name, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// externalAlign aligns tensors in the data file so that memory-mapped
// views are aligned for any element type.
const externalAlign = 64

// writeExternal moves every initializer of at least threshold bytes into a
// temporary data file for dataPath and points the TensorProtos at
// location. It returns the temporary file's name.
func (e *encoder) writeExternal(dataPath, location string, threshold int64) (string, error) {
	return writeTemp(dataPath, func(file *os.File) error {
		f := newWritebackWriter(file)
		var offset int64
		pad := make([]byte, externalAlign)
		for _, tp := range e.initializers {
			if int64(len(tp.RawData)) < threshold || tp.GetDataType() == int32(ir.String) || tp.DataLocation == onnxpb.TensorProto_EXTERNAL {
				continue
			}
			if rem := offset % externalAlign; rem != 0 {
				if _, err := f.Write(pad[:externalAlign-rem]); err != nil {
					return err
				}
				offset += externalAlign - rem
			}
			if _, err := f.Write(tp.RawData); err != nil {
				return err
			}
			tp.ExternalData = []*onnxpb.StringStringEntryProto{
				{Key: "location", Value: location},
				{Key: "offset", Value: strconv.FormatInt(offset, 10)},
				{Key: "length", Value: strconv.Itoa(len(tp.RawData))},
			}
			tp.DataLocation = onnxpb.TensorProto_EXTERNAL
			offset += int64(len(tp.RawData))
			tp.RawData = nil
		}
		return nil
	})
}

// encoder converts IR to protobuf messages.
type encoder struct {
	// initializers are the dense initializers of all graphs, candidates
	// for external data.
	initializers []*onnxpb.TensorProto
	// stored are the tensors that were read from external data, with
	// where they were: EncodeFile can write them back the same way.
	stored []storedTensor
	// tensors are all TensorProtos made from IR tensors (initializers,
	// attribute tensors, sparse tensors' parts): the ones whose raw_data
	// EncodeFile may stream.
	tensors []*onnxpb.TensorProto
}

type storedTensor struct {
	tp  *onnxpb.TensorProto
	ref *ir.ExternalRef
}

// tensor encodes t and records it (in tensors, and in stored if it came
// from external data).
func (e *encoder) tensor(t *ir.Tensor, name string) (*onnxpb.TensorProto, error) {
	tp, err := tensorProto(t, name)
	if err != nil {
		return nil, err
	}
	if t.External != nil && t.DType != ir.String {
		e.stored = append(e.stored, storedTensor{tp, t.External})
	}
	e.tensors = append(e.tensors, tp)
	return tp, nil
}

func (e *encoder) model(m *ir.Model) (*onnxpb.ModelProto, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("model has no graph")
	}
	mp := &onnxpb.ModelProto{
		IrVersion:       m.IRVersion,
		ProducerName:    m.ProducerName,
		ProducerVersion: m.ProducerVersion,
		Domain:          m.Domain,
		ModelVersion:    m.ModelVersion,
		DocString:       m.Doc,
		MetadataProps:   pairProtos(m.Meta),
		OpsetImport:     opsetProtos(m.Opsets),
	}
	g, err := e.graph(m.Graph)
	if err != nil {
		return nil, err
	}
	mp.Graph = g
	for _, f := range m.Functions {
		fp, err := e.function(f)
		if err != nil {
			return nil, fmt.Errorf("function %q: %w", f.Name, err)
		}
		mp.Functions = append(mp.Functions, fp)
	}
	for i, b := range m.TrainingInfo {
		ti := &onnxpb.TrainingInfoProto{}
		if err := proto.Unmarshal(b, ti); err != nil {
			return nil, fmt.Errorf("training_info %d: %w", i, err)
		}
		mp.TrainingInfo = append(mp.TrainingInfo, ti)
	}
	for i, b := range m.Configurations {
		c := &onnxpb.DeviceConfigurationProto{}
		if err := proto.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("configuration %d: %w", i, err)
		}
		mp.Configuration = append(mp.Configuration, c)
	}
	return mp, nil
}

func opsetProtos(ops []ir.OpsetID) []*onnxpb.OperatorSetIdProto {
	var out []*onnxpb.OperatorSetIdProto
	for _, o := range ops {
		out = append(out, &onnxpb.OperatorSetIdProto{Domain: o.Domain, Version: o.Version})
	}
	return out
}

func valueName(v *ir.Value) string {
	if v == nil {
		return ""
	}
	return v.Name
}

func valueInfo(v *ir.Value) *onnxpb.ValueInfoProto {
	return &onnxpb.ValueInfoProto{Name: v.Name, Type: typeProto(v.Type), DocString: v.Doc, MetadataProps: pairProtos(v.Meta)}
}

func (e *encoder) graph(g *ir.Graph) (*onnxpb.GraphProto, error) {
	gp := &onnxpb.GraphProto{Name: g.Name, DocString: g.Doc, MetadataProps: pairProtos(g.Meta)}
	for i, v := range g.Inputs {
		if v == nil {
			return nil, fmt.Errorf("graph %q: input %d is missing", g.Name, i)
		}
		gp.Input = append(gp.Input, valueInfo(v))
	}
	for _, v := range g.Constants {
		switch {
		case v == nil:
			return nil, fmt.Errorf("graph %q: a constant is missing", g.Name)
		case v.Const != nil:
			tp, err := e.tensor(v.Const, v.Name)
			if err != nil {
				return nil, fmt.Errorf("graph %q: constant %q: %w", g.Name, v.Name, err)
			}
			gp.Initializer = append(gp.Initializer, tp)
			e.initializers = append(e.initializers, tp)
		case v.SparseConst != nil:
			sp, err := e.sparse(v.SparseConst, v.Name)
			if err != nil {
				return nil, fmt.Errorf("graph %q: sparse constant %q: %w", g.Name, v.Name, err)
			}
			gp.SparseInitializer = append(gp.SparseInitializer, sp)
		default:
			return nil, fmt.Errorf("graph %q: constant %q has no data", g.Name, v.Name)
		}
	}
	for _, n := range g.Nodes {
		np, err := e.node(n)
		if err != nil {
			return nil, fmt.Errorf("graph %q: %s: %w", g.Name, n.Describe(), err)
		}
		gp.Node = append(gp.Node, np)
	}
	for i, v := range g.Outputs {
		if v == nil {
			return nil, fmt.Errorf("graph %q: output %d is missing", g.Name, i)
		}
		gp.Output = append(gp.Output, valueInfo(v))
	}
	g.ForEachValue(func(v *ir.Value) {
		if v.HasInfo {
			gp.ValueInfo = append(gp.ValueInfo, valueInfo(v))
		}
	})
	if len(g.Extras) > 0 {
		var unknown []byte
		for _, x := range g.Extras {
			unknown = protowire.AppendTag(unknown, protowire.Number(x.Number), protowire.BytesType)
			unknown = protowire.AppendBytes(unknown, x.Bytes)
		}
		// Re-parse so that known fields (quantization_annotation) land in
		// their place and unknown ones stay unknown.
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(unknown, gp); err != nil {
			return nil, fmt.Errorf("graph %q: kept extra fields are invalid: %w", g.Name, err)
		}
	}
	return gp, nil
}

func (e *encoder) node(n *ir.Node) (*onnxpb.NodeProto, error) {
	np := &onnxpb.NodeProto{
		Name: n.Name, OpType: n.Op, Domain: n.Domain, Overload: n.Overload,
		DocString: n.Doc, MetadataProps: pairProtos(n.Meta),
	}
	for _, v := range n.Inputs {
		np.Input = append(np.Input, valueName(v))
	}
	for _, v := range n.Outputs {
		np.Output = append(np.Output, valueName(v))
	}
	for _, a := range n.Attrs {
		ap, err := e.attr(a)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", a.Name, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func (e *encoder) attr(a *ir.Attr) (*onnxpb.AttributeProto, error) {
	if a == nil {
		return nil, fmt.Errorf("attribute is missing")
	}
	ap := &onnxpb.AttributeProto{Name: a.Name, Type: onnxpb.AttributeProto_AttributeType(a.Type), RefAttrName: a.RefAttrName, DocString: a.Doc}
	if a.RefAttrName != "" {
		return ap, nil
	}
	var err error
	switch a.Type {
	case ir.AttrFloat:
		ap.F = a.F
	case ir.AttrInt:
		ap.I = a.I
	case ir.AttrString:
		ap.S = a.S
	case ir.AttrTensor:
		ap.T, err = e.tensor(a.T, "")
	case ir.AttrGraph:
		if a.G == nil {
			return nil, fmt.Errorf("graph attribute has no graph")
		}
		ap.G, err = e.graph(a.G)
	case ir.AttrSparseTensor:
		ap.SparseTensor, err = e.sparse(a.Sparse, "")
	case ir.AttrTypeProto:
		if a.TypeP == nil {
			return nil, fmt.Errorf("type attribute has no type")
		}
		ap.Tp = typeProto(*a.TypeP)
		if ap.Tp == nil {
			ap.Tp = &onnxpb.TypeProto{}
		}
	case ir.AttrFloats:
		ap.Floats = a.Floats
	case ir.AttrInts:
		ap.Ints = a.Ints
	case ir.AttrStrings:
		ap.Strings = a.Strings
	case ir.AttrTensors:
		for _, t := range a.Tensors {
			tp, err := e.tensor(t, "")
			if err != nil {
				return nil, err
			}
			ap.Tensors = append(ap.Tensors, tp)
		}
	case ir.AttrGraphs:
		for _, g := range a.Graphs {
			gp, err := e.graph(g)
			if err != nil {
				return nil, err
			}
			ap.Graphs = append(ap.Graphs, gp)
		}
	case ir.AttrSparseTensors:
		for _, s := range a.Sparses {
			sp, err := e.sparse(s, "")
			if err != nil {
				return nil, err
			}
			ap.SparseTensors = append(ap.SparseTensors, sp)
		}
	case ir.AttrTypeProtos:
		for _, t := range a.TypePs {
			tp := &onnxpb.TypeProto{}
			if t != nil {
				if p := typeProto(*t); p != nil {
					tp = p
				}
			}
			ap.TypeProtos = append(ap.TypeProtos, tp)
		}
	default:
		return nil, fmt.Errorf("unknown attribute type %d", int32(a.Type))
	}
	return ap, err
}

func (e *encoder) sparse(s *ir.SparseTensor, name string) (*onnxpb.SparseTensorProto, error) {
	if s == nil || s.Values == nil {
		return nil, fmt.Errorf("sparse tensor has no values")
	}
	vals, err := tensorProto(s.Values, name)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	e.tensors = append(e.tensors, vals)
	sp := &onnxpb.SparseTensorProto{Values: vals, Dims: append([]int64(nil), s.Dims...)}
	if s.Indices != nil {
		if sp.Indices, err = tensorProto(s.Indices, ""); err != nil {
			return nil, fmt.Errorf("indices: %w", err)
		}
		e.tensors = append(e.tensors, sp.Indices)
	}
	return sp, nil
}

// typeProto converts a type; the unknown type without a denotation
// becomes nil (no type field).
func typeProto(t ir.Type) *onnxpb.TypeProto {
	tp := &onnxpb.TypeProto{Denotation: t.Denotation}
	inner := func() *onnxpb.TypeProto {
		if t.Inner == nil {
			return nil
		}
		if p := typeProto(*t.Inner); p != nil {
			return p
		}
		return &onnxpb.TypeProto{}
	}
	switch t.Kind {
	case ir.KindUnknown:
		if t.Denotation == "" {
			return nil
		}
	case ir.KindTensor:
		tp.Value = &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(t.Elem), Shape: shapeProto(t)}}
	case ir.KindSparseTensor:
		tp.Value = &onnxpb.TypeProto_SparseTensorType{SparseTensorType: &onnxpb.TypeProto_SparseTensor{ElemType: int32(t.Elem), Shape: shapeProto(t)}}
	case ir.KindSequence:
		tp.Value = &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{ElemType: inner()}}
	case ir.KindOptional:
		tp.Value = &onnxpb.TypeProto_OptionalType{OptionalType: &onnxpb.TypeProto_Optional{ElemType: inner()}}
	case ir.KindMap:
		tp.Value = &onnxpb.TypeProto_MapType{MapType: &onnxpb.TypeProto_Map{KeyType: int32(t.Elem), ValueType: inner()}}
	}
	return tp
}

func shapeProto(t ir.Type) *onnxpb.TensorShapeProto {
	if !t.HasShape {
		return nil
	}
	sp := &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, len(t.Shape))}
	for i, d := range t.Shape {
		dp := &onnxpb.TensorShapeProto_Dimension{Denotation: d.Denotation}
		switch {
		case d.Sym != "":
			dp.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Sym}
		case d.Size >= 0:
			dp.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
		}
		sp.Dim[i] = dp
	}
	return sp
}

func (e *encoder) function(f *ir.Function) (*onnxpb.FunctionProto, error) {
	if f.Body == nil {
		return nil, fmt.Errorf("function has no body")
	}
	fp := &onnxpb.FunctionProto{
		Name: f.Name, Domain: f.Domain, Overload: f.Overload, Attribute: f.AttrNames,
		DocString: f.Doc, OpsetImport: opsetProtos(f.Opsets), MetadataProps: pairProtos(f.Meta),
	}
	for _, v := range f.Body.Inputs {
		fp.Input = append(fp.Input, valueName(v))
	}
	for _, v := range f.Body.Outputs {
		fp.Output = append(fp.Output, valueName(v))
	}
	for _, a := range f.AttrDefaults {
		ap, err := e.attr(a)
		if err != nil {
			return nil, fmt.Errorf("attribute default %q: %w", a.Name, err)
		}
		fp.AttributeProto = append(fp.AttributeProto, ap)
	}
	for _, n := range f.Body.Nodes {
		np, err := e.node(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Describe(), err)
		}
		fp.Node = append(fp.Node, np)
	}
	f.Body.ForEachValue(func(v *ir.Value) {
		if v.HasInfo {
			fp.ValueInfo = append(fp.ValueInfo, valueInfo(v))
		}
	})
	return fp, nil
}
