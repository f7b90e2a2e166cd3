package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// reducer defines a Reduce* op: the accumulator's start, how an element
// is folded in, and how the accumulator becomes the result (n is the
// number of reduced elements). kind names the fold for the fast path
// (reduceFast), which inlines it; reduceOther has none.
type reducer struct {
	init   float64
	fold   func(acc, x float64) float64
	finish func(acc float64, n int) float64
	kind   reduceKind
}

var reducers = map[string]reducer{
	"ReduceSum":       {0, func(a, x float64) float64 { return a + x }, nil, reduceAdd},
	"ReduceMean":      {0, func(a, x float64) float64 { return a + x }, func(a float64, n int) float64 { return a / float64(n) }, reduceAdd},
	"ReduceMax":       {math.Inf(-1), fmax, nil, reduceMax},
	"ReduceMin":       {math.Inf(1), fmin, nil, reduceMin},
	"ReduceProd":      {1, func(a, x float64) float64 { return a * x }, nil, reduceMul},
	"ReduceL1":        {0, func(a, x float64) float64 { return a + math.Abs(x) }, nil, reduceAddAbs},
	"ReduceL2":        {0, func(a, x float64) float64 { return a + x*x }, func(a float64, _ int) float64 { return math.Sqrt(a) }, reduceAddSquare},
	"ReduceSumSquare": {0, func(a, x float64) float64 { return a + x*x }, nil, reduceAddSquare},
	"ReduceLogSum":    {0, func(a, x float64) float64 { return a + x }, func(a float64, _ int) float64 { return math.Log(a) }, reduceAdd},
	// LogSumExp folds exp directly: float64 has the range float32 inputs need.
	"ReduceLogSumExp": {0, func(a, x float64) float64 { return a + math.Exp(x) }, func(a float64, _ int) float64 { return math.Log(a) }, reduceAddExp},
}

func buildReduce(n *ir.Node, _ *compiler) (kernel, error) {
	red, ok := reducers[n.Op]
	if !ok {
		return nil, fmt.Errorf("no reduction %s", n.Op)
	}
	keep := n.AttrInt("keepdims", 1) != 0
	noopEmpty := n.AttrInt("noop_with_empty_axes", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axes, _, err := axesOperand(n, in, 1)
		if err != nil {
			return nil, fmt.Errorf("axes: %w", err)
		}
		rank := len(x.Shape)
		reduce := make([]bool, rank)
		if len(axes) == 0 {
			if noopEmpty {
				out, err := convertData(r, x, x.DType)
				if err != nil {
					return nil, err
				}
				return []*Tensor{out}, nil
			}
			for i := range reduce {
				reduce[i] = true
			}
		}
		for _, a := range axes {
			ax, err := normAxis(a, rank)
			if err != nil {
				return nil, err
			}
			reduce[ax] = true
		}
		out, err := reduceAxes(r, x, reduce, keep, red)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// reduceAxes reduces x over the marked axes, accumulating in float64:
// reduceFast for float32 and float64 data, or with fastKernels off (and
// for other types) its reference reduceAxesRef.
func reduceAxes(r *runState, x *Tensor, reduce []bool, keep bool, red reducer) (*Tensor, error) {
	if fastKernels && red.kind != reduceOther && (x.DType == ir.Float || x.DType == ir.Double) {
		return reduceFast(r, x, reduce, keep, red)
	}
	return reduceAxesRef(r, x, reduce, keep, red)
}

// reduceAxesRef is the reference reduction over the marked axes, in
// float64: each output folds its elements in row-major order.
func reduceAxesRef(r *runState, x *Tensor, reduce []bool, keep bool, red reducer) (*Tensor, error) {
	vals, ok := x.Float64s()
	if !ok {
		return nil, fmt.Errorf("input must be numeric, is %v", x.DType)
	}
	shape, keptShape, count, acc := reduceSetup(x.Shape, reduce, keep, red)
	ost := strides(keptShape)
	forEachIndex(x.Shape, func(k int, pos []int) {
		o := 0
		for a, p := range pos {
			if !reduce[a] {
				o += p * ost[a]
			}
		}
		acc[o] = red.fold(acc[o], vals[k])
	})
	if red.finish != nil {
		for i := range acc {
			acc[i] = red.finish(acc[i], count)
		}
	}
	out, err := r.alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	if intTypes.has(x.DType) {
		iv := make([]int64, len(acc))
		for i, v := range acc {
			iv[i] = int64(v)
		}
		storeInts(out, iv)
	} else {
		storeFloats(out, acc)
	}
	return out, nil
}

// reduceSetup returns the output shape of reducing inShape over the axes
// marked in reduce (kept as 1 when keep), the shape with reduced axes as 1,
// the number of elements reduced into each output, and the accumulators
// set to the reducer's initial value.
func reduceSetup(inShape []int, reduce []bool, keep bool, red reducer) (shape, keptShape []int, count int, acc []float64) {
	keptShape = slices.Clone(inShape)
	count = 1
	for i, d := range inShape {
		if reduce[i] {
			keptShape[i] = 1
			count *= d
			if keep {
				shape = append(shape, 1)
			}
		} else {
			shape = append(shape, d)
		}
	}
	acc = make([]float64, shapeSize(keptShape))
	for i := range acc {
		acc[i] = red.init
	}
	return shape, keptShape, count, acc
}
