package cpu

import "github.com/tfc-compiler/tfc/ir"

// arithFast is the fast path of Add, Sum, Sub, Mul and Div on float32
// and float64, and of Add, Sum, Sub and Mul on int64 and int32 (which
// wrap as the reference's int64 arithmetic narrowed on store does): the
// broadcasting engine with the operator inlined. It declines (false)
// for other ops and types, or with fastKernels off; the caller then
// runs the reference.
func arithFast(r *runState, name string, a, b, out *Tensor) bool {
	op, ok := arithOps[name]
	if !ok || !fastKernels || a.DType != b.DType {
		return false
	}
	switch a.DType {
	case ir.Float:
		bcastArith(r, op, f32(a), a.Shape, f32(b), b.Shape, f32(out), out.Shape)
	case ir.Double:
		bcastArith(r, op, a.Data.([]float64), a.Shape, b.Data.([]float64), b.Shape, out.Data.([]float64), out.Shape)
	case ir.Int64:
		if op == opDiv {
			return false // the reference reports division by zero
		}
		bcastArith(r, op, a.Data.([]int64), a.Shape, b.Data.([]int64), b.Shape, out.Data.([]int64), out.Shape)
	case ir.Int32:
		if op == opDiv {
			return false
		}
		bcastArith(r, op, a.Data.([]int32), a.Shape, b.Data.([]int32), b.Shape, out.Data.([]int32), out.Shape)
	default:
		return false
	}
	return true
}

// compareFast is the fast path of the comparisons on float32, float64,
// int64 and int32 operands of one type. It declines (false) otherwise.
func compareFast(r *runState, name string, a, b, out *Tensor) bool {
	op, ok := compareOpsFast[name]
	if !ok || !fastKernels || a.DType != b.DType {
		return false
	}
	o := out.Data.([]bool)
	switch a.DType {
	case ir.Float:
		bcastCompare(r, op, f32(a), a.Shape, f32(b), b.Shape, o, out.Shape)
	case ir.Double:
		bcastCompare(r, op, a.Data.([]float64), a.Shape, b.Data.([]float64), b.Shape, o, out.Shape)
	case ir.Int64:
		bcastCompare(r, op, a.Data.([]int64), a.Shape, b.Data.([]int64), b.Shape, o, out.Shape)
	case ir.Int32:
		bcastCompare(r, op, a.Data.([]int32), a.Shape, b.Data.([]int32), b.Shape, o, out.Shape)
	default:
		return false
	}
	return true
}

// castFast is Cast among float32, float64, int32, int64 and bool without
// the reference's float64 or int64 staging arrays (castData). It
// converts as castData does: integers to floats through float64 (so an
// int64 rounds to float32 twice, as there), floats to integers by
// truncation through int64 (NaN and out-of-range values become what
// int64 conversion gives on the machine, then narrow), anything to bool
// as != 0, bool to numbers as 1 and 0. It declines (nil) for other
// types, for equal types (castData copies), or with fastKernels off.
func castFast(r *runState, src *Tensor, dt ir.DataType) (*Tensor, error) {
	if !fastKernels || src.DType == dt || !castFastTypes.has(src.DType) || !castFastTypes.has(dt) {
		return nil, nil
	}
	out, err := r.alloc(dt, src.Shape)
	if err != nil {
		return nil, err
	}
	n := src.NumElements()
	if n == 0 {
		return out, nil
	}
	step := n // one block, or 8 for the threads to share
	if n >= bcastParallelMin {
		step = (n + 7) / 8
	}
	r.parallelFor((n+step-1)/step, func(lo, hi int) {
		a, b := lo*step, min(hi*step, n)
		switch s := src.Data.(type) {
		case []float32:
			castFromNumber(out, s[a:b], a)
		case []float64:
			castFromNumber(out, s[a:b], a)
		case []int32:
			castFromNumber(out, s[a:b], a)
		case []int64:
			castFromNumber(out, s[a:b], a)
		case []bool:
			castFromBool(out, s[a:b], a)
		}
	})
	return out, nil
}

var castFastTypes = typesOf(ir.Float, ir.Double, ir.Int32, ir.Int64, ir.Bool)

// castFromNumber converts src into out's elements [at, at+len(src)).
func castFromNumber[S float32 | float64 | int32 | int64](out *Tensor, src []S, at int) {
	isFloat := false
	switch any(src).(type) {
	case []float32, []float64:
		isFloat = true
	}
	switch d := out.Data.(type) {
	case []float32:
		d = d[at : at+len(src)]
		for i, v := range src {
			d[i] = float32(float64(v))
		}
	case []float64:
		d = d[at : at+len(src)]
		for i, v := range src {
			d[i] = float64(v)
		}
	case []int32:
		d = d[at : at+len(src)]
		if isFloat {
			for i, v := range src {
				d[i] = int32(int64(float64(v)))
			}
		} else {
			for i, v := range src {
				d[i] = int32(int64(v))
			}
		}
	case []int64:
		d = d[at : at+len(src)]
		if isFloat {
			for i, v := range src {
				d[i] = int64(float64(v))
			}
		} else {
			for i, v := range src {
				d[i] = int64(v)
			}
		}
	case []bool:
		d = d[at : at+len(src)]
		for i, v := range src {
			d[i] = v != 0
		}
	}
}

// castFromBool converts bools to 1 and 0 into out's elements
// [at, at+len(src)).
func castFromBool(out *Tensor, src []bool, at int) {
	switch d := out.Data.(type) {
	case []float32:
		for i, v := range src {
			d[at+i] = float32(boolOne(v))
		}
	case []float64:
		for i, v := range src {
			d[at+i] = float64(boolOne(v))
		}
	case []int32:
		for i, v := range src {
			d[at+i] = int32(boolOne(v))
		}
	case []int64:
		for i, v := range src {
			d[at+i] = int64(boolOne(v))
		}
	}
}

func boolOne(v bool) int {
	if v {
		return 1
	}
	return 0
}
