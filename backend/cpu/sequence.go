package cpu

import (
	"fmt"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// Sequence kernels. A sequence shares its element tensors with the values
// it was built from; the runtime counts references per element, so this
// is safe without copying.

func seqInput(in []*Tensor, i int) (*Tensor, error) {
	t := inputN(in, i)
	if t == nil || !t.IsSequence() {
		return nil, fmt.Errorf("input %d must be a sequence, got %v", i, t)
	}
	return t, nil
}

// seqPosition reads an optional position operand (default def) for a
// sequence of length n; allowEnd admits n itself (insertion point).
func seqPosition(t *Tensor, def, n int, allowEnd bool) (int, error) {
	if t == nil {
		return def, nil
	}
	v, err := intValues(t)
	if err != nil || len(v) != 1 {
		return 0, fmt.Errorf("position must be one integer")
	}
	p := v[0]
	if p < 0 {
		p += int64(n)
	}
	limit := int64(n)
	if allowEnd {
		limit++
	}
	if p < 0 || p >= limit {
		return 0, fmt.Errorf("position %d is out of range for a sequence of %d", v[0], n)
	}
	return int(p), nil
}

func buildSequenceConstruct(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, len(in)); err != nil {
			return nil, err
		}
		for i, t := range in {
			if t.IsSequence() || t.DType != in[0].DType {
				return nil, fmt.Errorf("input %d is %v; all inputs must be tensors of one type", i, t)
			}
		}
		return []*Tensor{NewSequence(slices.Clone(in))}, nil
	}, nil
}

func buildSequenceEmpty(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		return []*Tensor{NewSequence(nil)}, nil
	}, nil
}

func buildSequenceAt(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		s, err := seqInput(in, 0)
		if err != nil {
			return nil, err
		}
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		p, err := seqPosition(in[1], 0, len(s.Elements()), false)
		if err != nil {
			return nil, err
		}
		e := s.Elements()[p]
		return []*Tensor{view(e, slices.Clone(e.Shape))}, nil
	}, nil
}

func buildSequenceLength(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		s, err := seqInput(in, 0)
		if err != nil {
			return nil, err
		}
		out := r.mustAlloc(ir.Int64, nil)
		out.Data.([]int64)[0] = int64(len(s.Elements()))
		return []*Tensor{out}, nil
	}, nil
}

func buildSequenceInsert(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		s, err := seqInput(in, 0)
		if err != nil {
			return nil, err
		}
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		elems := s.Elements()
		if len(elems) > 0 && elems[0].DType != in[1].DType {
			return nil, fmt.Errorf("cannot insert %v into a sequence of %v", in[1].DType, elems[0].DType)
		}
		p, err := seqPosition(inputN(in, 2), len(elems), len(elems), true)
		if err != nil {
			return nil, err
		}
		return []*Tensor{NewSequence(slices.Insert(slices.Clone(elems), p, in[1]))}, nil
	}, nil
}

func buildSequenceErase(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		s, err := seqInput(in, 0)
		if err != nil {
			return nil, err
		}
		elems := s.Elements()
		p, err := seqPosition(inputN(in, 1), len(elems)-1, len(elems), false)
		if err != nil {
			return nil, err
		}
		return []*Tensor{NewSequence(slices.Delete(slices.Clone(elems), p, p+1))}, nil
	}, nil
}

func buildSplitToSequence(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	keepDims := n.AttrInt("keepdims", 1) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		dim := x.Shape[ax]
		var sizes []int
		squeeze := false
		if t := inputN(in, 1); t != nil {
			v, err := intValues(t)
			if err != nil {
				return nil, fmt.Errorf("split: %w", err)
			}
			if len(t.Shape) == 0 { // a scalar: chunks of that size, the last may be smaller
				if v[0] <= 0 {
					return nil, fmt.Errorf("split size %d must be positive", v[0])
				}
				for left := dim; left > 0; left -= int(v[0]) {
					sizes = append(sizes, min(int(v[0]), left))
				}
			} else {
				total := 0
				for _, s := range v {
					if s < 0 {
						return nil, fmt.Errorf("negative split size in %v", v)
					}
					sizes = append(sizes, int(s))
					total += int(s)
				}
				if total != dim {
					return nil, fmt.Errorf("split sizes %v do not add up to %d", v, dim)
				}
			}
		} else {
			for i := 0; i < dim; i++ {
				sizes = append(sizes, 1)
			}
			squeeze = !keepDims
		}
		outer := shapeSize(x.Shape[:ax])
		inner := shapeSize(x.Shape[ax+1:])
		elems := make([]*Tensor, len(sizes))
		off := 0
		for i, s := range sizes {
			shape := slices.Clone(x.Shape)
			shape[ax] = s
			e, err := r.alloc(x.DType, shape)
			if err != nil {
				return nil, err
			}
			for o := 0; o < outer; o++ {
				copyElems(e.Data, x.Data, o*s*inner, o*dim*inner+off, s*inner)
			}
			off += s * inner
			if squeeze {
				e.Shape = slices.Delete(e.Shape, ax, ax+1)
			}
			elems[i] = e
		}
		return []*Tensor{NewSequence(elems)}, nil
	}, nil
}

func buildConcatFromSequence(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", 0)
	newAxis := n.AttrInt("new_axis", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		s, err := seqInput(in, 0)
		if err != nil {
			return nil, err
		}
		elems := s.Elements()
		if len(elems) == 0 {
			return nil, fmt.Errorf("cannot concatenate an empty sequence")
		}
		parts := elems
		a := axis
		if newAxis {
			rank := len(elems[0].Shape) + 1
			ax, err := normAxis(axis, rank)
			if err != nil {
				return nil, err
			}
			parts = make([]*Tensor, len(elems))
			for i, e := range elems {
				parts[i] = view(e, slices.Insert(slices.Clone(e.Shape), ax, 1))
			}
			a = int64(ax)
		}
		out, err := concat(r, parts, a)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildOptional wraps its input in an optional, or makes an empty one.
func buildOptional(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		v := inputN(in, 0)
		if v != nil && v.IsOptional() {
			return nil, fmt.Errorf("an optional cannot hold an optional")
		}
		return []*Tensor{NewOptional(v)}, nil
	}, nil
}

// buildOptionalHasElement is true for a non-empty optional or a plain
// tensor or sequence, false for an empty optional or an omitted input.
func buildOptionalHasElement(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		has := false
		if v := inputN(in, 0); v != nil {
			has = true
			if v.IsOptional() {
				_, has = v.OptionalValue()
			}
		}
		out := r.mustAlloc(ir.Bool, nil)
		out.Data.([]bool)[0] = has
		return []*Tensor{out}, nil
	}, nil
}

// buildOptionalGetElement unwraps an optional (an error when empty); a
// plain tensor or sequence passes through.
func buildOptionalGetElement(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		v := in[0]
		if v.IsOptional() {
			inner, ok := v.OptionalValue()
			if !ok {
				return nil, fmt.Errorf("the optional input is empty")
			}
			v = inner
		}
		if v.IsSequence() {
			return []*Tensor{NewSequence(slices.Clone(v.Elements()))}, nil
		}
		return []*Tensor{view(v, slices.Clone(v.Shape))}, nil
	}, nil
}
