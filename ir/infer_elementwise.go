package ir

import "math"

// Rules for elementwise ops: unary ops that keep their input's type,
// predicates that give bool, and n-ary ops with numpy broadcasting, with the
// shape-tensor arithmetic (Add/Sub/Mul/Div/Max/Min/Equal/Where on known or
// symbolic elements) that run-time shape computations need.

// inferSameAsInput0 gives output 0 the type of input 0 (any kind, so
// Identity passes sequences and optionals through) and keeps its contents.
func inferSameAsInput0(c *InferContext) (InferResult, error) {
	t := c.Type(0)
	if t.Kind == KindUnknown {
		return unknownResult()
	}
	t = t.Clone()
	t.Denotation = ""
	return oneSym(t, c.Sym(0))
}

// inferUnaryTo returns a rule for unary ops with a fixed output element type
// and the input's shape.
func inferUnaryTo(elem DataType) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		return one(withElem(c.Type(0), elem))
	}
}

// elemOf returns the first known element type among the given inputs.
func elemOf(c *InferContext, idx ...int) DataType {
	for _, i := range idx {
		if e := c.Elem(i); e != Undefined {
			return e
		}
	}
	return Undefined
}

// binaryOp is shape-tensor arithmetic on one pair of elements.
type binaryOp func(a, b SymInt) SymInt

var symOps = map[string]binaryOp{
	"Add": func(a, b SymInt) SymInt { return symAdd(a, b, 1) },
	"Sub": func(a, b SymInt) SymInt { return symAdd(a, b, -1) },
	"Mul": symMul,
	"Div": symDiv,
	"Max": func(a, b SymInt) SymInt {
		if a.Known && b.Known {
			return KnownInt(max(a.Val, b.Val))
		}
		if a.Same(b) {
			return a
		}
		return SymInt{}
	},
	"Min": func(a, b SymInt) SymInt {
		if a.Known && b.Known {
			return KnownInt(min(a.Val, b.Val))
		}
		if a.Same(b) {
			return a
		}
		return SymInt{}
	},
	"Equal": func(a, b SymInt) SymInt {
		if a.Same(b) {
			return KnownInt(1)
		}
		if a.Known && b.Known {
			return KnownInt(0)
		}
		// A dimension never equals a negative number (the -1 that
		// TorchScript's Expand pattern compares shapes with).
		if (a.Known && a.Val < 0 && nonNegative(b)) || (b.Known && b.Val < 0 && nonNegative(a)) {
			return KnownInt(0)
		}
		return SymInt{}
	},
	"Less": func(a, b SymInt) SymInt {
		if a.Known && b.Known {
			return boolInt(a.Val < b.Val)
		}
		return SymInt{}
	},
	"Greater": func(a, b SymInt) SymInt {
		if a.Known && b.Known {
			return boolInt(a.Val > b.Val)
		}
		return SymInt{}
	},
	"Mod": func(a, b SymInt) SymInt {
		if a.Known && b.Known && b.Val != 0 {
			m := a.Val % b.Val
			if m != 0 && (m < 0) != (b.Val < 0) {
				m += b.Val // ONNX Mod with fmod=0 takes the divisor's sign
			}
			return KnownInt(m)
		}
		return SymInt{}
	},
}

func boolInt(b bool) SymInt {
	if b {
		return KnownInt(1)
	}
	return KnownInt(0)
}

// elementwiseSym applies op to the contents of inputs idx with
// broadcasting (each input a scalar, a one-element vector, or a vector of
// the common length). It returns nil when some contents are unknown.
func elementwiseSym(c *InferContext, idx []int, op func(vals []SymInt) SymInt) []SymInt {
	n := 1
	vals := make([][]SymInt, len(idx))
	for k, i := range idx {
		s := c.Sym(i)
		if s == nil {
			return nil
		}
		vals[k] = s
		if len(s) != 1 {
			if n != 1 && len(s) != n {
				return nil
			}
			n = len(s)
		}
	}
	out := make([]SymInt, n)
	args := make([]SymInt, len(idx))
	for j := range out {
		for k, s := range vals {
			if len(s) == 1 {
				args[k] = s[0]
			} else {
				args[k] = s[j]
			}
		}
		out[j] = op(args)
	}
	return out
}

// inferBroadcast returns the rule for an n-ary elementwise op with numpy
// broadcasting. outElem fixes the output element type (Bool for
// comparisons); Undefined means the type of the first known input.
func inferBroadcast(outElem DataType) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		idx := make([]int, 0, len(c.Node.Inputs))
		for i := range c.Node.Inputs {
			if c.Has(i) {
				idx = append(idx, i)
			}
		}
		t, err := broadcastInputs(c, idx...)
		if err != nil {
			return InferResult{}, err
		}
		t.Elem = outElem
		if outElem == Undefined {
			t.Elem = elemOf(c, idx...)
		}
		op := symOps[c.Node.Op]
		if c.Node.Op == "Mod" && c.AttrInt("fmod", 0) != 0 {
			op = nil // the symOps entry is integer Mod with the divisor's sign
		}
		var sym []SymInt
		if op != nil && len(idx) >= 1 && t.Rank() <= 1 && (t.Elem.IsInteger() || t.Elem == Bool || outElem == Bool) {
			sym = elementwiseSym(c, idx, func(v []SymInt) SymInt {
				acc := v[0]
				for _, x := range v[1:] {
					acc = op(acc, x)
				}
				return acc
			})
		}
		return oneSym(t, sym)
	}
}

// inferPow: the output has the base's element type.
func inferPow(c *InferContext) (InferResult, error) {
	t, err := broadcastInputs(c, 0, 1)
	if err != nil {
		return InferResult{}, err
	}
	t.Elem = c.Elem(0)
	return one(t)
}

// inferPRelu: slope broadcasts to X (unidirectionally), so the output is
// X's type.
func inferPRelu(c *InferContext) (InferResult, error) {
	if c.Rank(0) >= 0 && c.Rank(1) >= 0 {
		if _, err := broadcastShapes(c.Type(0).Shape, c.Type(1).Shape); err != nil {
			return InferResult{}, err
		}
	}
	return one(tensorType(c.Type(0)))
}

// inferWhere broadcasts condition, X and Y; contents follow a known
// condition.
func inferWhere(c *InferContext) (InferResult, error) {
	t, err := broadcastInputs(c, 0, 1, 2)
	if err != nil {
		return InferResult{}, err
	}
	t.Elem = elemOf(c, 1, 2)
	var sym []SymInt
	if t.Rank() <= 1 && t.Elem.IsInteger() {
		sym = elementwiseSym(c, []int{0, 1, 2}, func(v []SymInt) SymInt {
			if !v[0].Known {
				if v[1].Same(v[2]) {
					return v[1]
				}
				return SymInt{}
			}
			if v[0].Val != 0 {
				return v[1]
			}
			return v[2]
		})
	}
	return oneSym(t, sym)
}

// inferNot negates known booleans.
func inferNot(c *InferContext) (InferResult, error) {
	var sym []SymInt
	if s := c.Sym(0); s != nil {
		sym = make([]SymInt, len(s))
		for i, e := range s {
			if e.Known {
				sym[i] = boolInt(e.Val == 0)
			}
		}
	}
	return oneSym(withElem(c.Type(0), Bool), sym)
}

// inferCast sets the element type from "to" and keeps integer contents.
func inferCast(c *InferContext) (InferResult, error) {
	a := c.Node.Attr("to")
	if a == nil || a.Type != AttrInt {
		return unknownResult()
	}
	to := DataType(a.I)
	return oneSym(withElem(c.Type(0), to), castSym(c, to))
}

// castSym returns the contents of input 0 cast to an integer type: integer
// contents carry over, and so do small float constants holding whole
// numbers (dynamo exports write Range bounds as float constants cast to
// int64).
func castSym(c *InferContext, to DataType) []SymInt {
	if !to.IsInteger() && to != Bool {
		return nil
	}
	if c.Elem(0).IsInteger() || c.Elem(0) == Bool {
		if to == Bool && c.Sym(0) != nil {
			return castBool(c.Sym(0))
		}
		return c.Sym(0)
	}
	f, ok := c.Floats(0)
	if !ok || len(f) > maxSymElems || c.Rank(0) > 1 {
		return nil
	}
	out := make([]SymInt, len(f))
	for i, x := range f {
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil
		}
		out[i] = KnownInt(int64(x))
	}
	if to == Bool {
		return castBool(out)
	}
	return out
}

func castBool(s []SymInt) []SymInt {
	out := make([]SymInt, len(s))
	for i, e := range s {
		if e.Known {
			out[i] = boolInt(e.Val != 0)
		}
	}
	return out
}

// inferCastLike takes the element type of input 1.
func inferCastLike(c *InferContext) (InferResult, error) {
	to := c.Elem(1)
	return oneSym(withElem(c.Type(0), to), castSym(c, to))
}

// inferClip: the input's type (bounds only change values).
func inferClip(c *InferContext) (InferResult, error) {
	return one(tensorType(c.Type(0)))
}

// inferDropout: output 0 is X; output 1 (the mask) is bool from opset 10
// (of X's type before) with X's shape.
func inferDropout(c *InferContext) (InferResult, error) {
	x := tensorType(c.Type(0))
	mask := withElem(c.Type(0), Bool)
	if !c.AtLeast(10) {
		mask = x
	}
	return InferResult{Types: []Type{x, mask}}, nil
}

// inferQuantizeLinear: X's shape; the element type of the zero point, or
// output_dtype, or uint8.
func inferQuantizeLinear(c *InferContext) (InferResult, error) {
	elem := Uint8
	switch {
	case c.Has(2):
		elem = c.Elem(2)
	case c.AtLeast(21) && c.AttrInt("output_dtype", 0) != 0:
		elem = DataType(c.AttrInt("output_dtype", 0))
	}
	return one(withElem(c.Type(0), elem))
}

// inferDequantizeLinear: X's shape; the scale's element type.
func inferDequantizeLinear(c *InferContext) (InferResult, error) {
	elem := Float
	if c.AtLeast(19) {
		elem = c.Elem(1)
	}
	if c.AtLeast(23) && c.AttrInt("output_dtype", 0) != 0 {
		elem = DataType(c.AttrInt("output_dtype", 0))
	}
	return one(withElem(c.Type(0), elem))
}

// inferDynamicQuantizeLinear: y is uint8 of X's shape, scale and zero
// point are scalars.
func inferDynamicQuantizeLinear(c *InferContext) (InferResult, error) {
	return InferResult{Types: []Type{withElem(c.Type(0), Uint8), TensorOf(Float), TensorOf(Uint8)}}, nil
}

// inferEyeLike: X's shape, element type from dtype or X.
func inferEyeLike(c *InferContext) (InferResult, error) {
	elem := c.Elem(0)
	if a := c.Node.Attr("dtype"); a != nil && a.Type == AttrInt {
		elem = DataType(a.I)
	}
	return one(withElem(c.Type(0), elem))
}

// inferNegAbs keeps the input's type and negates (Neg) or takes the
// absolute value (Abs) of integer contents.
func inferNegAbs(c *InferContext) (InferResult, error) {
	res, err := inferSameAsInput0(c)
	if err != nil || len(res.Sym) == 0 || res.Sym[0] == nil {
		return res, err
	}
	if !c.Elem(0).IsInteger() {
		res.Sym = nil
		return res, nil
	}
	in := res.Sym[0]
	out := make([]SymInt, len(in))
	for i, e := range in {
		switch {
		case e.Known && c.Node.Op == "Neg":
			out[i] = KnownInt(-e.Val)
		case e.Known:
			out[i] = KnownInt(abs64(e.Val))
		case e.Sym != "" && c.Node.Op == "Neg":
			out[i] = symAdd(KnownInt(0), e, -1)
		}
	}
	res.Sym[0] = out
	return res, nil
}
