package cpu

import "math"

// reduceKind names a reducer's fold so that the fast path can inline it.
type reduceKind uint8

const (
	reduceOther     reduceKind = iota // no inlined fold: the reference runs
	reduceAdd                         // acc + x
	reduceAddSquare                   // acc + x*x
	reduceAddAbs                      // acc + |x|
	reduceAddExp                      // acc + exp(x)
	reduceMul                         // acc * x
	reduceMax                         // fmax(acc, x)
	reduceMin                         // fmin(acc, x)
)

// reduceFast is reduceAxesRef for float32 and float64 data without
// per-element index arithmetic. The input is walked as a broadcast loop
// whose one operand is the accumulator array (the output with reduced
// axes of size 1, so stride 0 along them): after collapsing, each inner
// run either folds into one accumulator (the innermost axis is reduced)
// or into a run of accumulators (it is kept). Every accumulator still
// sees its elements in row-major order, in float64, so the results
// equal the reference's (up to the compiler's freedom to fuse a*b+c).
// Threads split the outermost axis when it is kept, else the inner run
// when it is kept; other layouts run on one thread.
func reduceFast(r *runState, x *Tensor, reduce []bool, keep bool, red reducer) (*Tensor, error) {
	shape, keptShape, count, acc := reduceSetup(x.Shape, reduce, keep, red)
	switch d := x.Data.(type) {
	case []float32:
		reduceInto(r, red.kind, acc, d, x.Shape, keptShape)
	case []float64:
		reduceInto(r, red.kind, acc, d, x.Shape, keptShape)
	}
	if red.finish != nil {
		for i := range acc {
			acc[i] = red.finish(acc[i], count)
		}
	}
	out, err := r.alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	storeFloats(out, acc)
	return out, nil
}

// reduceInto folds x (shape xs) into acc (shape ks: xs with reduced
// axes set to 1).
func reduceInto[T float32 | float64](r *runState, kind reduceKind, acc []float64, x []T, xs, ks []int) {
	l := newBcastLoop(xs, ks)
	if l.n == 0 {
		return
	}
	kept := l.step[0] == 1 // the inner run is a kept axis
	seg := func(o int, off [bcastMaxOperands]int, m int) {
		if kept {
			foldRun(kind, acc[off[0]:off[0]+m], x[o:o+m])
		} else {
			acc[off[0]] = foldInto(kind, acc[off[0]], x[o:o+m])
		}
	}
	switch {
	case threadsOf(r) <= 1 || l.n < bcastParallelMin:
		l.walk(0, l.n, seg)
	case len(l.dims) > 0 && l.st[0][0] != 0:
		// The outermost axis is kept: its slices own disjoint accumulators.
		slab := l.n / l.dims[0]
		r.parallelFor(l.dims[0], func(lo, hi int) { l.walk(lo*slab, hi*slab, seg) })
	case kept && l.inner > 1:
		// Columns of the inner run own disjoint accumulators.
		r.parallelFor(l.inner, func(lo, hi int) {
			l.walk(0, l.n, func(o int, off [bcastMaxOperands]int, m int) {
				foldRun(kind, acc[off[0]+lo:off[0]+hi], x[o+lo:o+hi])
			})
		})
	default:
		l.walk(0, l.n, seg)
	}
}

// foldRun folds x[j] into acc[j] for each j.
func foldRun[T float32 | float64](kind reduceKind, acc []float64, x []T) {
	x = x[:len(acc)]
	switch kind {
	case reduceAdd:
		for j, v := range x {
			acc[j] += float64(v)
		}
	case reduceAddSquare:
		for j, v := range x {
			f := float64(v)
			acc[j] += f * f
		}
	case reduceAddAbs:
		for j, v := range x {
			acc[j] += math.Abs(float64(v))
		}
	case reduceAddExp:
		for j, v := range x {
			acc[j] += math.Exp(float64(v))
		}
	case reduceMul:
		for j, v := range x {
			acc[j] *= float64(v)
		}
	case reduceMax:
		for j, v := range x {
			acc[j] = fmax(acc[j], float64(v))
		}
	case reduceMin:
		for j, v := range x {
			acc[j] = fmin(acc[j], float64(v))
		}
	}
}

// foldInto folds every element of x into a.
func foldInto[T float32 | float64](kind reduceKind, a float64, x []T) float64 {
	switch kind {
	case reduceAdd:
		for _, v := range x {
			a += float64(v)
		}
	case reduceAddSquare:
		for _, v := range x {
			f := float64(v)
			a += f * f
		}
	case reduceAddAbs:
		for _, v := range x {
			a += math.Abs(float64(v))
		}
	case reduceAddExp:
		for _, v := range x {
			a += math.Exp(float64(v))
		}
	case reduceMul:
		for _, v := range x {
			a *= float64(v)
		}
	case reduceMax:
		for _, v := range x {
			a = fmax(a, float64(v))
		}
	case reduceMin:
		for _, v := range x {
			a = fmin(a, float64(v))
		}
	}
	return a
}
