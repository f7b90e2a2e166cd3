package ir

// AttrType is an attribute's type; the numbering is ONNX's
// AttributeProto.AttributeType.
type AttrType int32

// Attribute types, numbered as in onnx.proto.
const (
	AttrUndefined     AttrType = 0
	AttrFloat         AttrType = 1
	AttrInt           AttrType = 2
	AttrString        AttrType = 3
	AttrTensor        AttrType = 4
	AttrGraph         AttrType = 5
	AttrFloats        AttrType = 6
	AttrInts          AttrType = 7
	AttrStrings       AttrType = 8
	AttrTensors       AttrType = 9
	AttrGraphs        AttrType = 10
	AttrSparseTensor  AttrType = 11
	AttrSparseTensors AttrType = 12
	AttrTypeProto     AttrType = 13
	AttrTypeProtos    AttrType = 14
)

var attrTypeNames = map[AttrType]string{
	AttrUndefined: "undefined", AttrFloat: "float", AttrInt: "int", AttrString: "string",
	AttrTensor: "tensor", AttrGraph: "graph", AttrFloats: "floats", AttrInts: "ints",
	AttrStrings: "strings", AttrTensors: "tensors", AttrGraphs: "graphs",
	AttrSparseTensor: "sparse_tensor", AttrSparseTensors: "sparse_tensors",
	AttrTypeProto: "type", AttrTypeProtos: "types",
}

func (t AttrType) String() string {
	if s, ok := attrTypeNames[t]; ok {
		return s
	}
	return "attrtype?"
}

// Attr is a node attribute. Exactly the field that matches Type is
// meaningful. Inside a kept function body an attribute may instead refer to
// an attribute of the calling node (RefAttrName).
type Attr struct {
	Name string
	Type AttrType

	F           float32
	I           int64
	S           []byte
	T           *Tensor
	G           *Graph
	Sparse      *SparseTensor
	TypeP       *Type
	Floats      []float32
	Ints        []int64
	Strings     [][]byte
	Tensors     []*Tensor
	Graphs      []*Graph
	Sparses     []*SparseTensor
	TypePs      []*Type
	RefAttrName string
	Doc         string
}

// Subgraphs returns the non-nil graphs an attribute holds (GRAPH or GRAPHS).
func (a *Attr) Subgraphs() []*Graph {
	switch a.Type {
	case AttrGraph:
		if a.G != nil {
			return []*Graph{a.G}
		}
	case AttrGraphs:
		out := make([]*Graph, 0, len(a.Graphs))
		for _, g := range a.Graphs {
			if g != nil {
				out = append(out, g)
			}
		}
		return out
	}
	return nil
}

// IntAttr, FloatAttr, StringAttr, IntsAttr and FloatsAttr build attributes.
func IntAttr(name string, v int64) *Attr { return &Attr{Name: name, Type: AttrInt, I: v} }

// FloatAttr builds a FLOAT attribute.
func FloatAttr(name string, v float32) *Attr { return &Attr{Name: name, Type: AttrFloat, F: v} }

// StringAttr builds a STRING attribute.
func StringAttr(name, v string) *Attr { return &Attr{Name: name, Type: AttrString, S: []byte(v)} }

// IntsAttr builds an INTS attribute.
func IntsAttr(name string, v ...int64) *Attr { return &Attr{Name: name, Type: AttrInts, Ints: v} }

// FloatsAttr builds a FLOATS attribute.
func FloatsAttr(name string, v ...float32) *Attr {
	return &Attr{Name: name, Type: AttrFloats, Floats: v}
}

// TensorAttr builds a TENSOR attribute.
func TensorAttr(name string, t *Tensor) *Attr { return &Attr{Name: name, Type: AttrTensor, T: t} }

// GraphAttr builds a GRAPH attribute.
func GraphAttr(name string, g *Graph) *Attr { return &Attr{Name: name, Type: AttrGraph, G: g} }
