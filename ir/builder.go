package ir

import (
	"fmt"
	"strings"
)

// Builder builds small models by name for tests and tools:
//
//	b := ir.NewBuilder(17)
//	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Known(8)))
//	w := b.Const("w", ir.Float32Tensor([]int64{8, 8}, vals...))
//	y := b.Op("MatMul", x, w)
//	z := b.Op("Softmax", y, ir.IntAttr("axis", -1))
//	b.Output(z)
//	m := b.Model()
//
// Op arguments are *Value (inputs, nil for an omitted optional input) and
// *Attr (attributes), in any mix. An op name "dom::Op" sets the domain.
type Builder struct {
	m     *Model
	g     *Graph
	count map[string]int
}

// NewBuilder starts a model importing ai.onnx at the given opset (and the
// tfc domain at version 1).
func NewBuilder(opset int64) *Builder {
	m := NewModel(10, OpsetID{"", opset}, OpsetID{"tfc", 1})
	return &Builder{m: m, g: m.Graph, count: map[string]int{}}
}

// Graph returns the graph under construction.
func (b *Builder) Graph() *Graph { return b.g }

// Input adds a graph input.
func (b *Builder) Input(name string, t Type) *Value { return b.g.AddInput(name, t) }

// Const adds a constant.
func (b *Builder) Const(name string, t *Tensor) *Value { return b.g.AddConstant(name, t) }

// Output marks values as graph outputs.
func (b *Builder) Output(vs ...*Value) {
	for _, v := range vs {
		b.g.AddOutput(v)
	}
}

// Op appends a single-output node and returns its output.
func (b *Builder) Op(op string, args ...any) *Value { return b.OpN(op, 1, args...)[0] }

// OpN appends a node with n outputs and returns them. Outputs are named
// after the op: "matmul_0", "matmul_1", ...
func (b *Builder) OpN(op string, n int, args ...any) []*Value {
	spec := NodeSpec{Op: op}
	if dom, name, ok := strings.Cut(op, "::"); ok {
		spec.Domain, spec.Op = dom, name
	}
	for _, a := range args {
		switch a := a.(type) {
		case *Value:
			spec.Inputs = append(spec.Inputs, a)
		case *Attr:
			spec.Attrs = append(spec.Attrs, a)
		case nil:
			spec.Inputs = append(spec.Inputs, nil)
		default:
			panic(fmt.Sprintf("ir.Builder: argument of type %T is neither *Value nor *Attr", a))
		}
	}
	base := strings.ToLower(spec.Op)
	k := b.count[base]
	b.count[base]++
	spec.Name = fmt.Sprintf("%s_%d", spec.Op, k)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s_%d", base, k)
		if n > 1 {
			name = fmt.Sprintf("%s_%d_%d", base, k, i)
		}
		spec.Outputs = append(spec.Outputs, name)
	}
	return b.g.Append(spec).Outputs
}

// Model returns the model built so far.
func (b *Builder) Model() *Model { return b.m }
