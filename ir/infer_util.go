package ir

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

func float64FromBytes(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }

// unknownResult leaves every output unknown.
func unknownResult() (InferResult, error) { return InferResult{}, nil }

// one returns a result with a single output type.
func one(t Type) (InferResult, error) { return InferResult{Types: []Type{t}}, nil }

// oneSym returns a single output type with symbolic contents.
func oneSym(t Type, sym []SymInt) (InferResult, error) {
	return InferResult{Types: []Type{t}, Sym: [][]SymInt{sym}}, nil
}

// shaped returns a tensor type of elem with shape dims (a known rank).
func shaped(elem DataType, dims []Dim) Type {
	return Type{Kind: KindTensor, Elem: elem, HasShape: true, Shape: dims}
}

// unranked is a tensor type with a (possibly undefined) element type and an
// unknown rank.
func unranked(elem DataType) Type { return Type{Kind: KindTensor, Elem: elem} }

// withElem returns t (a tensor type, or unknown rank when t says nothing)
// with its element type replaced.
func withElem(t Type, elem DataType) Type {
	if t.Kind != KindTensor {
		return unranked(elem)
	}
	c := t.Clone()
	c.Elem = elem
	c.Denotation = ""
	return c
}

// tensorType returns t as a plain tensor type (dropping denotations), or
// the unknown-rank tensor type when t is not a tensor.
func tensorType(t Type) Type {
	if t.Kind != KindTensor {
		return unranked(Undefined)
	}
	c := t.Clone()
	c.Denotation = ""
	return c
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, bool) {
	if axis < 0 {
		axis += int64(rank)
	}
	if axis < 0 || axis >= int64(rank) {
		return 0, false
	}
	return int(axis), true
}

// unknownDims returns n unknown dimensions.
func unknownDims(n int) []Dim {
	d := make([]Dim, n)
	for i := range d {
		d[i] = UnknownDim()
	}
	return d
}

// broadcastDim combines two dimensions under numpy broadcasting. Two known
// sizes that differ and are both not 1 are a contradiction.
func broadcastDim(a, b Dim) (Dim, error) {
	switch {
	case a.IsKnown() && a.Size == 1:
		return b, nil
	case b.IsKnown() && b.Size == 1:
		return a, nil
	case a.SameAs(b):
		return a, nil
	case isMinOf(a, b):
		return b, nil
	case isMinOf(b, a):
		return a, nil
	case a.IsKnown() && b.IsKnown():
		return Dim{}, fmt.Errorf("dimensions %d and %d do not broadcast", a.Size, b.Size)
	case a.IsKnown():
		// b is 1 or equal to a.
		return a, nil
	case b.IsKnown():
		return b, nil
	}
	return UnknownDim(), nil
}

// isMinOf reports whether m is the symbol min(e,k) (k a known size >= 1)
// and e the symbol e. Broadcasting them gives e in every valid case: when
// min(e,k) == e trivially, and when it is 1 the result is e as well.
func isMinOf(m, e Dim) bool {
	if !m.IsSym() || !e.IsSym() || !strings.HasPrefix(m.Sym, "min(") {
		return false
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(m.Sym, "min("), ")")
	i := strings.LastIndexByte(inner, ',')
	if i < 0 || inner[:i] != e.Sym {
		return false
	}
	k, err := strconv.ParseInt(inner[i+1:], 10, 64)
	return err == nil && k >= 1
}

// broadcastShapes applies numpy broadcasting to shapes of known rank.
func broadcastShapes(shapes ...[]Dim) ([]Dim, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]Dim, r)
	for i := range out {
		out[i] = Known(1)
	}
	for _, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			bd, err := broadcastDim(out[off+i], d)
			if err != nil {
				return nil, err
			}
			out[off+i] = bd
		}
	}
	return out, nil
}

// broadcastInputs broadcasts the shapes of the given inputs (ignoring absent
// ones); the result has an unknown rank when any rank is unknown.
func broadcastInputs(c *InferContext, idx ...int) (Type, error) {
	var shapes [][]Dim
	for _, i := range idx {
		if !c.Has(i) {
			continue
		}
		if c.Rank(i) < 0 {
			return unranked(Undefined), nil
		}
		shapes = append(shapes, c.Type(i).Shape)
	}
	s, err := broadcastShapes(shapes...)
	if err != nil {
		return Type{}, err
	}
	return shaped(Undefined, s), nil
}

// symDims converts shape-tensor contents to dimensions.
func symDims(s []SymInt) []Dim {
	out := make([]Dim, len(s))
	for i, e := range s {
		out[i] = e.Dim()
	}
	return out
}

// dimsSym converts dimensions to shape-tensor contents.
func dimsSym(d []Dim) []SymInt {
	out := make([]SymInt, len(d))
	for i, e := range d {
		out[i] = SymIntOf(e)
	}
	return out
}

// shapeLen returns the length of a 1-D shape input when its type says it.
func shapeLen(c *InferContext, i int) (int, bool) {
	if s := c.Sym(i); s != nil && c.Rank(i) != 0 {
		return len(s), true
	}
	t := c.Type(i)
	if t.Rank() == 1 && t.Shape[0].IsKnown() {
		return int(t.Shape[0].Size), true
	}
	return 0, false
}

// axesArg reads an axes list from attribute name before opset inputFrom,
// and from input index idx from then on. present is false when the node
// gives no axes; known is false when it gives them but they are not known.
func axesArg(c *InferContext, name string, inputFrom int64, idx int) (axes []int64, present, known bool) {
	if !c.AtLeast(inputFrom) {
		a, ok := c.AttrInts(name)
		return a, ok, ok
	}
	if !c.Has(idx) {
		return nil, false, true
	}
	v, ok := c.Ints(idx)
	return v, true, ok
}

// dimSum returns a+b for dimensions, symbolically.
func dimSum(a, b Dim) Dim { return symAdd(SymIntOf(a), SymIntOf(b), 1).Dim() }

// dimMul returns a*b for dimensions, symbolically.
func dimMul(a, b Dim) Dim { return symMul(SymIntOf(a), SymIntOf(b)).Dim() }

// moreSpecific picks, of two dimensions that must be equal, the one that
// says more; it fails when both are known and differ.
func moreSpecific(a, b Dim) (Dim, error) {
	switch {
	case a.Conflicts(b):
		return Dim{}, fmt.Errorf("dimensions %d and %d must be equal", a.Size, b.Size)
	case a.IsKnown():
		return a, nil
	case b.IsKnown():
		return b, nil
	case a.IsSym():
		return a, nil
	}
	return b, nil
}
