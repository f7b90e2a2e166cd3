package cpu

import (
	"fmt"
	"math"

	"github.com/tfc-compiler/tfc/backend/cpu/vmath"
	"github.com/tfc-compiler/tfc/ir"
)

// unaryFloat builds a kernel applying f to every element of a float
// tensor (float16/bfloat16 arrive widened to float32). The reference
// computes in float64 and rounds once.
func unaryFloat(f func(x float64) float64) kernel {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		out, err := r.allocOverwrite(x.DType, x.Shape)
		if err != nil {
			return nil, err
		}
		switch d := x.Data.(type) {
		case []float32:
			o := out.Data.([]float32)
			r.parallelFor(len(d), func(lo, hi int) {
				for i := lo; i < hi; i++ {
					o[i] = float32(f(float64(d[i])))
				}
			})
		case []float64:
			o := out.Data.([]float64)
			for i, v := range d {
				o[i] = f(v)
			}
		default:
			return nil, fmt.Errorf("element type %v is not supported", x.DType)
		}
		return []*Tensor{out}, nil
	}
}

// unaryNumber is unaryFloat that also accepts integers, computed by fi.
func unaryNumber(f func(float64) float64, fi func(int64) int64) kernel {
	fk := unaryFloat(f)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if floatTypes.has(x.DType) {
			return fk(r, in)
		}
		iv, err := intValues(x)
		if err != nil {
			return nil, err
		}
		res := make([]int64, len(iv))
		for i, v := range iv {
			res[i] = fi(v)
		}
		out, err := r.alloc(x.DType, x.Shape)
		if err != nil {
			return nil, err
		}
		storeInts(out, res)
		return []*Tensor{out}, nil
	}
}

// unaryBuilders maps elementwise unary ops with no attributes to their
// float64 reference functions.
var unaryFuncs = map[string]func(float64) float64{
	"Exp":        math.Exp,
	"Log":        math.Log,
	"Sqrt":       math.Sqrt,
	"Reciprocal": func(x float64) float64 { return 1 / x },
	"Tanh":       math.Tanh,
	"Sigmoid":    sigmoid,
	"Erf":        math.Erf,
	"Sin":        math.Sin,
	"Cos":        math.Cos,
	"Tan":        math.Tan,
	"Asin":       math.Asin,
	"Acos":       math.Acos,
	"Atan":       math.Atan,
	"Sinh":       math.Sinh,
	"Cosh":       math.Cosh,
	"Asinh":      math.Asinh,
	"Acosh":      math.Acosh,
	"Atanh":      math.Atanh,
	"Floor":      math.Floor,
	"Ceil":       math.Ceil,
	"Round":      math.RoundToEven,
	"Softplus":   func(x float64) float64 { return math.Log1p(math.Exp(x)) },
	"Softsign":   func(x float64) float64 { return x / (1 + math.Abs(x)) },
	"Mish":       func(x float64) float64 { return x * math.Tanh(math.Log1p(math.Exp(x))) },
	"HardSwish":  func(x float64) float64 { return x * math.Max(0, math.Min(1, x/6+0.5)) },
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// Integer-capable unary ops: float and int64 reference functions.
var unaryNumberFuncs = map[string][2]any{
	"Abs":  {math.Abs, func(x int64) int64 { return max(x, -x) }},
	"Neg":  {func(x float64) float64 { return -x }, func(x int64) int64 { return -x }},
	"Sign": {signF, func(x int64) int64 { return int64(sign(float64(x))) }},
	"Relu": {func(x float64) float64 { return math.Max(x, 0) }, func(x int64) int64 { return max(x, 0) }},
}

func signF(x float64) float64 {
	if x != x {
		return x
	}
	return sign(x)
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func buildUnary(n *ir.Node, _ *compiler) (kernel, error) {
	if f, ok := unaryFuncs[n.Op]; ok {
		if vec := vmathUnary[n.Op]; vec != nil {
			return unaryFloatVec(f, vec), nil
		}
		return unaryFloat(f), nil
	}
	if fs, ok := unaryNumberFuncs[n.Op]; ok {
		return unaryNumber(fs[0].(func(float64) float64), fs[1].(func(int64) int64)), nil
	}
	switch n.Op {
	case "Elu":
		a := float64(n.AttrFloat("alpha", 1))
		return unaryFloat(func(x float64) float64 {
			if x < 0 {
				return a * (math.Exp(x) - 1)
			}
			return x
		}), nil
	case "Celu":
		a := float64(n.AttrFloat("alpha", 1))
		return unaryFloat(func(x float64) float64 { return math.Max(0, x) + math.Min(0, a*(math.Exp(x/a)-1)) }), nil
	case "Selu":
		a := float64(n.AttrFloat("alpha", 1.67326319217681884765625))
		g := float64(n.AttrFloat("gamma", 1.05070102214813232421875))
		return unaryFloat(func(x float64) float64 {
			if x <= 0 {
				return g * (a*math.Exp(x) - a)
			}
			return g * x
		}), nil
	case "LeakyRelu":
		a := float64(n.AttrFloat("alpha", 0.01))
		return unaryFloat(func(x float64) float64 {
			if x < 0 {
				return a * x
			}
			return x
		}), nil
	case "ThresholdedRelu":
		a := float64(n.AttrFloat("alpha", 1))
		return unaryFloat(func(x float64) float64 {
			if x > a {
				return x
			}
			return 0
		}), nil
	case "HardSigmoid":
		a := float64(n.AttrFloat("alpha", 0.2))
		b := float64(n.AttrFloat("beta", 0.5))
		return unaryFloat(func(x float64) float64 { return math.Max(0, math.Min(1, a*x+b)) }), nil
	case "Shrink":
		l := float64(n.AttrFloat("lambd", 0.5))
		b := float64(n.AttrFloat("bias", 0))
		return unaryNumber(func(x float64) float64 {
			switch {
			case x < -l:
				return x + b
			case x > l:
				return x - b
			}
			return 0
		}, func(x int64) int64 {
			xf := float64(x)
			switch {
			case xf < -l:
				return int64(xf + b)
			case xf > l:
				return int64(xf - b)
			}
			return 0
		}), nil
	case "Gelu":
		switch approx := n.AttrString("approximate", "none"); approx {
		case "none":
			return unaryFloatVec(func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }, vmath.Gelu), nil
		case "tanh":
			return unaryFloatVec(func(x float64) float64 {
				return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
			}, vmath.GeluTanh), nil
		default:
			return nil, fmt.Errorf("Gelu approximate=%q is not supported", approx)
		}
	}
	return nil, fmt.Errorf("no unary kernel for %s", n.Op)
}

// binaryArith describes an arithmetic op by its float64 and int64
// reference functions (fi nil: floats only).
type binaryArith struct {
	f  func(a, b float64) float64
	fi func(a, b int64) int64
}

var binaryArithOps = map[string]binaryArith{
	"Add": {func(a, b float64) float64 { return a + b }, func(a, b int64) int64 { return a + b }},
	"Sub": {func(a, b float64) float64 { return a - b }, func(a, b int64) int64 { return a - b }},
	"Mul": {func(a, b float64) float64 { return a * b }, func(a, b int64) int64 { return a * b }},
	"Div": {func(a, b float64) float64 { return a / b }, func(a, b int64) int64 { return a / b }},
	"Max": {fmax, func(a, b int64) int64 { return max(a, b) }},
	"Min": {fmin, func(a, b int64) int64 { return min(a, b) }},
	"Sum": {func(a, b float64) float64 { return a + b }, func(a, b int64) int64 { return a + b }},
	"PRelu": {func(x, s float64) float64 {
		if x < 0 {
			return s * x
		}
		return x
	}, func(x, s int64) int64 {
		if x < 0 {
			return s * x
		}
		return x
	}},
	"BitwiseAnd": {nil, func(a, b int64) int64 { return a & b }},
	"BitwiseOr":  {nil, func(a, b int64) int64 { return a | b }},
	"BitwiseXor": {nil, func(a, b int64) int64 { return a ^ b }},
}

// fmax and fmin propagate NaN, as numpy's maximum/minimum do.
func fmax(a, b float64) float64 {
	if a != a || b != b {
		return math.NaN()
	}
	return math.Max(a, b)
}

func fmin(a, b float64) float64 {
	if a != a || b != b {
		return math.NaN()
	}
	return math.Min(a, b)
}

// broadcastBinary applies f elementwise with numpy broadcasting: the
// broadcasting engine (bcastBinary), or with fastKernels off its
// reference broadcastBinaryRef.
func broadcastBinary[A, B, O any](r *runState, a []A, as []int, b []B, bs []int, out []O, os []int, f func(A, B) O) {
	if fastKernels {
		bcastBinary(r, a, as, b, bs, out, os, f)
		return
	}
	broadcastBinaryRef(r, a, as, b, bs, out, os, f)
}

// broadcastBinaryRef is the reference of broadcastBinary: per-element
// index arrays from broadcastIndex.
func broadcastBinaryRef[A, B, O any](r *runState, a []A, as []int, b []B, bs []int, out []O, os []int, f func(A, B) O) {
	if sameShape(as, os) && sameShape(bs, os) {
		r.parallelFor(len(out), func(lo, hi int) {
			for k := lo; k < hi; k++ {
				out[k] = f(a[k], b[k])
			}
		})
		return
	}
	ia := broadcastIndex(as, os)
	ib := broadcastIndex(bs, os)
	r.parallelFor(len(out), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			out[k] = f(a[ia[k]], b[ib[k]])
		}
	})
}

// arithKernel runs a binary arithmetic op (both operands of one type).
func arithKernel(op binaryArith, name string) kernel {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		return arith2(r, op, name, in[0], in[1])
	}
}

func arith2(r *runState, op binaryArith, name string, a, b *Tensor) ([]*Tensor, error) {
	if a.DType != b.DType {
		return nil, fmt.Errorf("operands have different element types %v and %v", a.DType, b.DType)
	}
	shape, err := broadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	out, err := r.allocOverwrite(a.DType, shape) // every path writes every element
	if err != nil {
		return nil, err
	}
	if arithFast(r, name, a, b, out) {
		return []*Tensor{out}, nil
	}
	switch ad := a.Data.(type) {
	case []float32:
		if op.f == nil {
			return nil, fmt.Errorf("%s is not defined for %v", name, a.DType)
		}
		f := op.f
		var g func(x, y float32) float32
		switch name { // the common ops avoid the float64 round trip
		case "Add", "Sum":
			g = func(x, y float32) float32 { return x + y }
		case "Sub":
			g = func(x, y float32) float32 { return x - y }
		case "Mul":
			g = func(x, y float32) float32 { return x * y }
		case "Div":
			g = func(x, y float32) float32 { return x / y }
		default:
			g = func(x, y float32) float32 { return float32(f(float64(x), float64(y))) }
		}
		broadcastBinary(r, ad, a.Shape, b.Data.([]float32), b.Shape, out.Data.([]float32), shape, g)
	case []float64:
		if op.f == nil {
			return nil, fmt.Errorf("%s is not defined for %v", name, a.DType)
		}
		broadcastBinary(r, ad, a.Shape, b.Data.([]float64), b.Shape, out.Data.([]float64), shape, op.f)
	default:
		if op.fi == nil || !intTypes.has(a.DType) {
			return nil, fmt.Errorf("%s is not defined for %v", name, a.DType)
		}
		av, err := intValues(a)
		if err != nil {
			return nil, err
		}
		bv, err := intValues(b)
		if err != nil {
			return nil, err
		}
		res := make([]int64, out.NumElements())
		fi := op.fi
		if name == "Div" || name == "Mod" {
			for _, v := range bv {
				if v == 0 {
					return nil, fmt.Errorf("integer division by zero")
				}
			}
		}
		broadcastBinary(r, av, a.Shape, bv, b.Shape, res, shape, fi)
		if isUnsigned(a.DType) && name == "Div" {
			// unsigned division must not see sign-extended values
			ua, ub := make([]uint64, len(av)), make([]uint64, len(bv))
			convertInto(ua, av)
			convertInto(ub, bv)
			ures := make([]uint64, len(res))
			broadcastBinary(r, ua, a.Shape, ub, b.Shape, ures, shape, func(x, y uint64) uint64 { return x / y })
			convertInto(res, ures)
		}
		storeInts(out, res)
	}
	return []*Tensor{out}, nil
}

func isUnsigned(dt ir.DataType) bool {
	return dt == ir.Uint8 || dt == ir.Uint16 || dt == ir.Uint32 || dt == ir.Uint64
}

func buildArith(n *ir.Node, _ *compiler) (kernel, error) {
	op, ok := binaryArithOps[n.Op]
	if !ok {
		return nil, fmt.Errorf("no arithmetic kernel for %s", n.Op)
	}
	return arithKernel(op, n.Op), nil
}

// buildVariadic covers Sum, Max, Min and Mean: a left fold with
// broadcasting.
func buildVariadic(n *ir.Node, _ *compiler) (kernel, error) {
	opName := n.Op
	if opName == "Mean" {
		opName = "Sum"
	}
	op := binaryArithOps[opName]
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if len(in) == 0 {
			return nil, fmt.Errorf("needs at least one input")
		}
		if err := needInputs(in, len(in)); err != nil {
			return nil, err
		}
		acc := in[0]
		if len(in) == 1 {
			c, err := convertData(r, acc, acc.DType)
			if err != nil {
				return nil, err
			}
			acc = c
		}
		for _, t := range in[1:] {
			res, err := arith2(r, op, opName, acc, t)
			if err != nil {
				return nil, err
			}
			acc = res[0]
		}
		if n.Op == "Mean" {
			cnt := float64(len(in))
			switch d := acc.Data.(type) {
			case []float32:
				for i := range d {
					d[i] = float32(float64(d[i]) / cnt)
				}
			case []float64:
				for i := range d {
					d[i] /= cnt
				}
			default:
				return nil, fmt.Errorf("Mean is not defined for %v", acc.DType)
			}
		}
		return []*Tensor{acc}, nil
	}, nil
}

// buildPow: base and exponent may have different types; the result has
// the base's type. Computed in float64 (integers exactly for small
// values).
func buildPow(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		return mixedFloat(r, in[0], in[1], in[0].DType, math.Pow)
	}, nil
}

// mixedFloat computes f over broadcast float64 views of a and b and
// stores the result as dt.
func mixedFloat(r *runState, a, b *Tensor, dt ir.DataType, f func(x, y float64) float64) ([]*Tensor, error) {
	shape, err := broadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	av, ok1 := a.Float64s()
	bv, ok2 := b.Float64s()
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("operands must be numeric, got %v and %v", a.DType, b.DType)
	}
	res := make([]float64, shapeSize(shape))
	broadcastBinary(r, av, a.Shape, bv, b.Shape, res, shape, f)
	out, err := r.alloc(dt, shape)
	if err != nil {
		return nil, err
	}
	if intTypes.has(dt) {
		iv := make([]int64, len(res))
		for i, v := range res {
			iv[i] = int64(v)
		}
		storeInts(out, iv)
	} else {
		storeFloats(out, res)
	}
	return []*Tensor{out}, nil
}

func buildMod(n *ir.Node, _ *compiler) (kernel, error) {
	fmod := n.AttrInt("fmod", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if floatTypes.has(a.DType) {
			if !fmod {
				return nil, fmt.Errorf("Mod of floating-point operands requires fmod=1")
			}
			return mixedFloat(r, a, b, a.DType, math.Mod)
		}
		var op binaryArith
		if fmod {
			op.fi = func(x, y int64) int64 { return x % y }
		} else {
			op.fi = func(x, y int64) int64 { // result takes the divisor's sign
				m := x % y
				if m != 0 && (m < 0) != (y < 0) {
					m += y
				}
				return m
			}
		}
		return arith2(r, op, "Mod", a, b)
	}, nil
}

func buildBitShift(n *ir.Node, _ *compiler) (kernel, error) {
	dir := n.AttrString("direction", "")
	if dir != "LEFT" && dir != "RIGHT" {
		return nil, fmt.Errorf("BitShift direction %q must be LEFT or RIGHT", dir)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		if !isUnsigned(in[0].DType) {
			return nil, fmt.Errorf("BitShift needs unsigned integers, got %v", in[0].DType)
		}
		bits := uint64(in[0].DType.Bits())
		mask := uint64(1)<<bits - 1
		if bits == 64 {
			mask = math.MaxUint64
		}
		op := binaryArith{fi: func(x, y int64) int64 {
			if dir == "LEFT" {
				return int64((uint64(x) << uint64(y)) & mask)
			}
			return int64((uint64(x) & mask) >> uint64(y))
		}}
		return arith2(r, op, "BitShift", in[0], in[1])
	}, nil
}

// compareOps are the comparisons, producing bool.
var compareOps = map[string]func(a, b float64) bool{
	"Equal":          func(a, b float64) bool { return a == b },
	"Less":           func(a, b float64) bool { return a < b },
	"Greater":        func(a, b float64) bool { return a > b },
	"LessOrEqual":    func(a, b float64) bool { return a <= b },
	"GreaterOrEqual": func(a, b float64) bool { return a >= b },
}

var compareIntOps = map[string]func(a, b int64) bool{
	"Equal":          func(a, b int64) bool { return a == b },
	"Less":           func(a, b int64) bool { return a < b },
	"Greater":        func(a, b int64) bool { return a > b },
	"LessOrEqual":    func(a, b int64) bool { return a <= b },
	"GreaterOrEqual": func(a, b int64) bool { return a >= b },
}

func buildCompare(n *ir.Node, _ *compiler) (kernel, error) {
	f, fi := compareOps[n.Op], compareIntOps[n.Op]
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.DType != b.DType {
			return nil, fmt.Errorf("operands have different element types %v and %v", a.DType, b.DType)
		}
		shape, err := broadcastShapes(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		out, err := r.allocOverwrite(ir.Bool, shape)
		if err != nil {
			return nil, err
		}
		o := out.Data.([]bool)
		if compareFast(r, n.Op, a, b, out) {
			return []*Tensor{out}, nil
		}
		switch {
		case a.DType == ir.String && n.Op == "Equal":
			broadcastBinary(r, a.Data.([]string), a.Shape, b.Data.([]string), b.Shape, o, shape, func(x, y string) bool { return x == y })
		case a.DType == ir.Bool && n.Op == "Equal":
			broadcastBinary(r, a.Data.([]bool), a.Shape, b.Data.([]bool), b.Shape, o, shape, func(x, y bool) bool { return x == y })
		case intTypes.has(a.DType) && a.DType != ir.Uint64:
			av, _ := intValues(a)
			bv, _ := intValues(b)
			broadcastBinary(r, av, a.Shape, bv, b.Shape, o, shape, fi)
		case floatTypes.has(a.DType) || a.DType == ir.Uint64:
			av, _ := a.Float64s()
			bv, _ := b.Float64s()
			broadcastBinary(r, av, a.Shape, bv, b.Shape, o, shape, f)
		default:
			return nil, fmt.Errorf("%s is not defined for %v", n.Op, a.DType)
		}
		return []*Tensor{out}, nil
	}, nil
}

var logicOps = map[string]func(a, b bool) bool{
	"And": func(a, b bool) bool { return a && b },
	"Or":  func(a, b bool) bool { return a || b },
	"Xor": func(a, b bool) bool { return a != b },
}

func buildLogic(n *ir.Node, _ *compiler) (kernel, error) {
	if n.Op == "Not" {
		return func(r *runState, in []*Tensor) ([]*Tensor, error) {
			if err := needInputs(in, 1); err != nil {
				return nil, err
			}
			out, err := r.alloc(ir.Bool, in[0].Shape)
			if err != nil {
				return nil, err
			}
			o := out.Data.([]bool)
			for i, v := range in[0].Data.([]bool) {
				o[i] = !v
			}
			return []*Tensor{out}, nil
		}, nil
	}
	f := logicOps[n.Op]
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.DType != ir.Bool || b.DType != ir.Bool {
			return nil, fmt.Errorf("operands must be bool, got %v and %v", a.DType, b.DType)
		}
		shape, err := broadcastShapes(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		out, err := r.allocOverwrite(ir.Bool, shape)
		if err != nil {
			return nil, err
		}
		if fastKernels {
			bcastLogic(r, n.Op, a.Data.([]bool), a.Shape, b.Data.([]bool), b.Shape, out.Data.([]bool), shape)
		} else {
			broadcastBinary(r, a.Data.([]bool), a.Shape, b.Data.([]bool), b.Shape, out.Data.([]bool), shape, f)
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildBitwiseNot(n *ir.Node, _ *compiler) (kernel, error) {
	return unaryNumber(nil, func(x int64) int64 { return ^x }), nil
}

// buildWhere: out = cond ? x : y with three-way broadcasting.
func buildWhere(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		c, x, y := in[0], in[1], in[2]
		if c.DType != ir.Bool {
			return nil, fmt.Errorf("condition must be bool, got %v", c.DType)
		}
		if x.DType != y.DType {
			return nil, fmt.Errorf("X and Y have different element types %v and %v", x.DType, y.DType)
		}
		shape, err := broadcastShapes(c.Shape, x.Shape, y.Shape)
		if err != nil {
			return nil, err
		}
		if fastKernels {
			out, err := r.allocOverwrite(x.DType, shape)
			if err != nil {
				return nil, err
			}
			if err := whereFast(r, c, x, y, out); err != nil {
				return nil, err
			}
			return []*Tensor{out}, nil
		}
		cond := c.Data.([]bool)
		ic, ix, iy := broadcastIndex(c.Shape, shape), broadcastIndex(x.Shape, shape), broadcastIndex(y.Shape, shape)
		// Select from a concatenation-free pair: take from x where true,
		// then overwrite from y where false.
		idxX := make([]int, len(ic))
		idxY := make([]int, len(ic))
		for k := range ic {
			if cond[ic[k]] {
				idxX[k], idxY[k] = ix[k], -1
			} else {
				idxX[k], idxY[k] = -1, iy[k]
			}
		}
		out := take(r, x, shape, idxX)
		switch d := y.Data.(type) {
		case []float32:
			takeInto(out.Data.([]float32), d, idxY)
		case []float64:
			takeInto(out.Data.([]float64), d, idxY)
		case []uint16:
			takeInto(out.Data.([]uint16), d, idxY)
		case []int8:
			takeInto(out.Data.([]int8), d, idxY)
		case []int16:
			takeInto(out.Data.([]int16), d, idxY)
		case []int32:
			takeInto(out.Data.([]int32), d, idxY)
		case []int64:
			takeInto(out.Data.([]int64), d, idxY)
		case []uint8:
			takeInto(out.Data.([]uint8), d, idxY)
		case []uint32:
			takeInto(out.Data.([]uint32), d, idxY)
		case []uint64:
			takeInto(out.Data.([]uint64), d, idxY)
		case []bool:
			takeInto(out.Data.([]bool), d, idxY)
		case []string:
			takeInto(out.Data.([]string), d, idxY)
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildCast(n *ir.Node, _ *compiler) (kernel, error) {
	to := ir.DataType(n.AttrInt("to", 0))
	if _, err := makeData(to, 0); err != nil {
		return nil, fmt.Errorf("Cast to %v: %w", to, err)
	}
	saturate := n.AttrInt("saturate", 1) != 0
	roundMode := n.AttrString("round_mode", "up")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		if out, err := castFast(r, in[0], to); out != nil || err != nil {
			return []*Tensor{out}, err
		}
		out, err := castData(r, in[0], to, saturate, roundMode)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildCastLike(n *ir.Node, _ *compiler) (kernel, error) {
	saturate := n.AttrInt("saturate", 1) != 0
	roundMode := n.AttrString("round_mode", "up")
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		out, err := castData(r, in[0], in[1].DType, saturate, roundMode)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildClip clamps to optional min and max inputs (opset >= 11) or
// attributes (older opsets).
func buildClip(n *ir.Node, c *compiler) (kernel, error) {
	attrMin := float64(n.AttrFloat("min", float32(math.Inf(-1))))
	attrMax := float64(n.AttrFloat("max", float32(math.Inf(1))))
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		lo, hi := attrMin, attrMax
		if t := inputN(in, 1); t != nil {
			v, err := scalarFloat(t)
			if err != nil {
				return nil, fmt.Errorf("min: %w", err)
			}
			lo = v
		}
		if t := inputN(in, 2); t != nil {
			v, err := scalarFloat(t)
			if err != nil {
				return nil, fmt.Errorf("max: %w", err)
			}
			hi = v
		}
		if intTypes.has(x.DType) {
			loI, hiI := int64(math.MinInt64), int64(math.MaxInt64)
			if !math.IsInf(lo, -1) {
				loI = int64(lo)
			}
			if !math.IsInf(hi, 1) {
				hiI = int64(hi)
			}
			return unaryNumber(nil, func(v int64) int64 { return min(max(v, loI), hiI) })(r, in[:1])
		}
		return unaryFloat(func(v float64) float64 {
			if v != v {
				return v
			}
			return math.Min(math.Max(v, lo), hi)
		})(r, in[:1])
	}, nil
}

func buildIsNaNInf(n *ir.Node, _ *compiler) (kernel, error) {
	detectPos := n.AttrInt("detect_positive", 1) != 0
	detectNeg := n.AttrInt("detect_negative", 1) != 0
	isNaN := n.Op == "IsNaN"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		v, ok := in[0].Float64s()
		if !ok {
			return nil, fmt.Errorf("input must be numeric")
		}
		out, err := r.alloc(ir.Bool, in[0].Shape)
		if err != nil {
			return nil, err
		}
		o := out.Data.([]bool)
		for i, x := range v {
			if isNaN {
				o[i] = x != x
			} else {
				o[i] = (detectPos && math.IsInf(x, 1)) || (detectNeg && math.IsInf(x, -1))
			}
		}
		return []*Tensor{out}, nil
	}, nil
}
