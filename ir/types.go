package ir

import (
	"strconv"
	"strings"
)

// UnknownSize is Dim.Size for a dimension that is neither known nor named.
const UnknownSize = -1

// Dim is one dimension of a shape: a known size (Size >= 0, Sym == ""), a
// named symbol (Sym != "", e.g. "batch"), or unknown (Size < 0, Sym == "").
type Dim struct {
	Size       int64
	Sym        string
	Denotation string // ONNX dimension denotation, kept for round trips
}

// Known returns a dimension of size n.
func Known(n int64) Dim { return Dim{Size: n} }

// Sym returns a dimension named by a symbol.
func Sym(name string) Dim { return Dim{Size: UnknownSize, Sym: name} }

// UnknownDim returns a dimension that is neither known nor named.
func UnknownDim() Dim { return Dim{Size: UnknownSize} }

// IsKnown reports whether the dimension has a known size.
func (d Dim) IsKnown() bool { return d.Sym == "" && d.Size >= 0 }

// IsSym reports whether the dimension is a named symbol.
func (d Dim) IsSym() bool { return d.Sym != "" }

// String prints a known size as its number, a symbol as its name, and an
// unknown dimension as "?".
func (d Dim) String() string {
	switch {
	case d.Sym != "":
		return d.Sym
	case d.Size >= 0:
		return strconv.FormatInt(d.Size, 10)
	default:
		return "?"
	}
}

// SameAs reports whether two dimensions are provably equal: both known with
// the same size, or both the same symbol.
func (d Dim) SameAs(o Dim) bool {
	if d.Sym != "" || o.Sym != "" {
		return d.Sym == o.Sym
	}
	return d.Size >= 0 && d.Size == o.Size
}

// Conflicts reports whether two dimensions are provably different: both
// known with different sizes. Symbols never conflict with anything, because
// a symbol may take any value.
func (d Dim) Conflicts(o Dim) bool {
	return d.IsKnown() && o.IsKnown() && d.Size != o.Size
}

// TypeKind says which kind of ONNX value a Type describes.
type TypeKind uint8

// Type kinds. The zero value, KindUnknown, means no type information.
const (
	KindUnknown TypeKind = iota
	KindTensor
	KindSparseTensor
	KindSequence
	KindMap
	KindOptional
)

// Type is the type of a value: for tensors an element type and a shape;
// for sequences, optionals and maps a nested type. The zero value is an
// unknown type.
type Type struct {
	Kind TypeKind
	// Elem is the element type of a tensor or sparse tensor, or the key
	// type of a map. Undefined means unknown.
	Elem DataType
	// HasShape is false when the rank is unknown; Shape is then empty.
	HasShape bool
	Shape    []Dim
	// Inner is the element type of a sequence or optional, or the value
	// type of a map.
	Inner *Type
	// Denotation is ONNX's type denotation, kept for round trips.
	Denotation string
}

// TensorOf returns a tensor type with a known rank.
func TensorOf(elem DataType, dims ...Dim) Type {
	return Type{Kind: KindTensor, Elem: elem, HasShape: true, Shape: append([]Dim(nil), dims...)}
}

// TensorOfSizes returns a tensor type whose dimensions are all known.
func TensorOfSizes(elem DataType, sizes ...int64) Type {
	dims := make([]Dim, len(sizes))
	for i, s := range sizes {
		dims[i] = Known(s)
	}
	return Type{Kind: KindTensor, Elem: elem, HasShape: true, Shape: dims}
}

// TensorOfUnknownRank returns a tensor type whose rank is not known.
func TensorOfUnknownRank(elem DataType) Type {
	return Type{Kind: KindTensor, Elem: elem}
}

// IsTensor reports whether t describes a dense tensor.
func (t Type) IsTensor() bool { return t.Kind == KindTensor }

// Rank returns the rank, or -1 when it is unknown or t is not a tensor.
func (t Type) Rank() int {
	if (t.Kind != KindTensor && t.Kind != KindSparseTensor) || !t.HasShape {
		return -1
	}
	return len(t.Shape)
}

// StaticSizes returns the dimension sizes when all are known.
func (t Type) StaticSizes() ([]int64, bool) {
	if t.Rank() < 0 {
		return nil, false
	}
	out := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		if !d.IsKnown() {
			return nil, false
		}
		out[i] = d.Size
	}
	return out, true
}

// Clone returns a deep copy of t.
func (t Type) Clone() Type {
	c := t
	if t.Shape != nil {
		c.Shape = append([]Dim(nil), t.Shape...)
	}
	if t.Inner != nil {
		in := t.Inner.Clone()
		c.Inner = &in
	}
	return c
}

// Equal reports whether two types are identical, denotations included.
func (t Type) Equal(o Type) bool {
	if t.Kind != o.Kind || t.Elem != o.Elem || t.HasShape != o.HasShape || t.Denotation != o.Denotation || len(t.Shape) != len(o.Shape) {
		return false
	}
	for i := range t.Shape {
		if t.Shape[i] != o.Shape[i] {
			return false
		}
	}
	if (t.Inner == nil) != (o.Inner == nil) {
		return false
	}
	return t.Inner == nil || t.Inner.Equal(*o.Inner)
}

// Conflicts reports whether the two types provably disagree: different
// kinds or element types (both known), different ranks (both known), or a
// dimension known in both with different sizes. Unknown parts never
// conflict. Verify uses it to compare declared types with inferred ones.
func (t Type) Conflicts(o Type) bool {
	if t.Kind == KindUnknown || o.Kind == KindUnknown {
		return false
	}
	if t.Kind != o.Kind {
		return true
	}
	if t.Elem != Undefined && o.Elem != Undefined && t.Elem != o.Elem {
		return true
	}
	if t.HasShape && o.HasShape {
		if len(t.Shape) != len(o.Shape) {
			return true
		}
		for i := range t.Shape {
			if t.Shape[i].Conflicts(o.Shape[i]) {
				return true
			}
		}
	}
	if t.Inner != nil && o.Inner != nil {
		return t.Inner.Conflicts(*o.Inner)
	}
	return false
}

// String prints the type as in the IR text form: "f32[batch,seq,768]",
// "i64[]" for a scalar, "f32[*]" for unknown rank, "seq(f32[?])",
// "map(i64,f32[*])", "opt(...)", "sparse(f32[4,4])", "?" when unknown.
func (t Type) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t Type) write(b *strings.Builder) { writeType(b, t, false) }

// writeType is the one type printer. Plain (text false) is Type.String:
// symbols bare, a missing inner type as "?", denotations left out. The IR
// text form (text true) adds what String omits so that parsing gives the
// same type back: a type denotation as a suffix @"DENOTATION", a dimension
// denotation after its dimension (batch@"DATA_BATCH"), symbols that are
// not identifiers quoted, and "seq()" / "opt()" / "map(k,)" for a missing
// inner type.
func writeType(b *strings.Builder, t Type, text bool) {
	inner := func() {
		if t.Inner != nil {
			writeType(b, *t.Inner, text)
		} else if !text {
			b.WriteByte('?')
		}
	}
	switch t.Kind {
	case KindTensor, KindSparseTensor:
		if t.Kind == KindSparseTensor {
			b.WriteString("sparse(")
		}
		b.WriteString(t.Elem.String())
		if !t.HasShape {
			b.WriteString("[*]")
		} else {
			b.WriteByte('[')
			for i, d := range t.Shape {
				if i > 0 {
					b.WriteByte(',')
				}
				if text && d.Sym != "" {
					b.WriteString(identOrQuote(d.Sym))
				} else {
					b.WriteString(d.String())
				}
				if text && d.Denotation != "" {
					b.WriteString("@" + quote(d.Denotation))
				}
			}
			b.WriteByte(']')
		}
		if t.Kind == KindSparseTensor {
			b.WriteByte(')')
		}
	case KindSequence:
		b.WriteString("seq(")
		inner()
		b.WriteByte(')')
	case KindOptional:
		b.WriteString("opt(")
		inner()
		b.WriteByte(')')
	case KindMap:
		b.WriteString("map(" + t.Elem.String() + ",")
		inner()
		b.WriteByte(')')
	default:
		b.WriteByte('?')
	}
	if text && t.Denotation != "" {
		b.WriteString("@" + quote(t.Denotation))
	}
}
