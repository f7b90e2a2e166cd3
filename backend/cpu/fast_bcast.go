package cpu

import "fmt"

// The broadcasting engine of the elementwise kernels. An elementwise
// loop over an output shape reads each operand through numpy broadcast
// strides (0 on broadcast axes). bcastLoop collapses those strides into
// as few axes as possible, so that the work becomes an odometer over a
// few outer axes and a tight inner run in which every operand advances
// by 0 or 1. The references (broadcastIndex, take) build a per-element
// index array instead; they stay as the oracle behind fastKernels.

// bcastMaxOperands is the most operands one loop reads (Where: 3).
const bcastMaxOperands = 3

// bcastParallelMin is the output size from which a loop is split
// across threads: below it the goroutine handoff costs more than it
// saves.
const bcastParallelMin = 1 << 16

// bcastLoop is a collapsed elementwise loop over a row-major output of
// n elements.
type bcastLoop struct {
	dims  []int                   // outer axes, outermost first (inner run excluded)
	st    [bcastMaxOperands][]int // each operand's stride along each outer axis
	inner int                     // length of the innermost run
	step  [bcastMaxOperands]int   // each operand's stride along the inner run: 0 or 1
	n     int                     // output elements
}

// newBcastLoop plans the loop for output shape out and operand shapes
// ins (each broadcastable to out: the caller checked).
func newBcastLoop(out []int, ins ...[]int) bcastLoop {
	type axis struct {
		d  int
		st [bcastMaxOperands]int
	}
	rank := len(out)
	var inSt [bcastMaxOperands][]int
	for k, s := range ins {
		inSt[k] = strides(s)
	}
	axes := make([]axis, 0, rank)
	for i, d := range out {
		if d == 1 {
			continue // size-1 axes move no operand
		}
		a := axis{d: d}
		for k, s := range ins {
			if j := i - (rank - len(s)); j >= 0 && s[j] != 1 {
				a.st[k] = inSt[k][j]
			}
		}
		// Merge into the previous (outer) axis when every operand walks
		// both as one: outer stride = inner stride × inner size.
		if m := len(axes); m > 0 {
			p := &axes[m-1]
			merge := true
			for k := range ins {
				if p.st[k] != a.st[k]*a.d {
					merge = false
					break
				}
			}
			if merge {
				p.d *= a.d
				p.st = a.st
				continue
			}
		}
		axes = append(axes, a)
	}
	l := bcastLoop{n: shapeSize(out), inner: 1}
	if len(axes) == 0 {
		return l // a single element (or rank 0): every stride 0
	}
	last := axes[len(axes)-1]
	l.inner, l.step = last.d, last.st
	axes = axes[:len(axes)-1]
	l.dims = make([]int, len(axes))
	for k := range ins {
		l.st[k] = make([]int, len(axes))
	}
	for i, a := range axes {
		l.dims[i] = a.d
		for k := range ins {
			l.st[k][i] = a.st[k]
		}
	}
	return l
}

// run calls seg for consecutive runs of the output, in parallel over
// disjoint output ranges when the output is large. seg(o, off, m)
// handles output elements [o, o+m); operand k's elements are
// off[k] + j*l.step[k] for j in [0, m).
func (l *bcastLoop) run(r *runState, seg func(o int, off [bcastMaxOperands]int, m int)) {
	if l.n == 0 {
		return
	}
	if l.n < bcastParallelMin {
		l.walk(0, l.n, seg)
		return
	}
	r.parallelFor(l.n, func(lo, hi int) { l.walk(lo, hi, seg) })
}

// walk runs seg over output elements [lo, hi).
func (l *bcastLoop) walk(lo, hi int, seg func(o int, off [bcastMaxOperands]int, m int)) {
	if lo >= hi {
		return
	}
	var posBuf [8]int
	pos := posBuf[:0]
	if len(l.dims) > len(posBuf) {
		pos = make([]int, 0, len(l.dims))
	}
	pos = pos[:len(l.dims)]
	row, j := lo/l.inner, lo%l.inner
	var base [bcastMaxOperands]int // operands' offsets at the start of the row
	for a := len(l.dims) - 1; a >= 0; a-- {
		pos[a] = row % l.dims[a]
		row /= l.dims[a]
		for k := range base {
			if l.st[k] != nil {
				base[k] += pos[a] * l.st[k][a]
			}
		}
	}
	for o := lo; o < hi; {
		m := min(l.inner-j, hi-o)
		var off [bcastMaxOperands]int
		for k := range off {
			off[k] = base[k] + j*l.step[k]
		}
		seg(o, off, m)
		o += m
		j = 0
		for a := len(l.dims) - 1; a >= 0; a-- {
			pos[a]++
			for k := range base {
				if l.st[k] != nil {
					base[k] += l.st[k][a]
				}
			}
			if pos[a] < l.dims[a] {
				break
			}
			for k := range base {
				if l.st[k] != nil {
					base[k] -= l.st[k][a] * l.dims[a]
				}
			}
			pos[a] = 0
		}
	}
}

// bcastBinary is broadcastBinary without index arrays: out = f(a, b)
// with numpy broadcasting, f called through a function value.
func bcastBinary[A, B, O any](r *runState, a []A, as []int, b []B, bs []int, out []O, os []int, f func(A, B) O) {
	l := newBcastLoop(os, as, bs)
	sa, sb := l.step[0], l.step[1]
	l.run(r, func(o int, off [bcastMaxOperands]int, m int) {
		y := out[o : o+m]
		switch {
		case sa == 1 && sb == 1:
			x, z := a[off[0]:off[0]+m], b[off[1]:off[1]+m]
			for i := range y {
				y[i] = f(x[i], z[i])
			}
		case sa == 1:
			x, zv := a[off[0]:off[0]+m], b[off[1]]
			for i := range y {
				y[i] = f(x[i], zv)
			}
		case sb == 1:
			xv, z := a[off[0]], b[off[1]:off[1]+m]
			for i := range y {
				y[i] = f(xv, z[i])
			}
		default:
			v := f(a[off[0]], b[off[1]])
			for i := range y {
				y[i] = v
			}
		}
	})
}

// arithOp names the arithmetic ops that have inlined inner loops.
type arithOp uint8

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
)

// arithOps maps op names to the ops with inlined loops; Sum is Add.
var arithOps = map[string]arithOp{"Add": opAdd, "Sum": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv}

// bcastArith is bcastBinary for Add, Sub, Mul and Div with the operator
// inlined in the loop (no call per element). Integer Div must have been
// checked for zero divisors by the caller.
func bcastArith[T number](r *runState, op arithOp, a []T, as []int, b []T, bs []int, out []T, os []int) {
	l := newBcastLoop(os, as, bs)
	sa, sb := l.step[0], l.step[1]
	l.run(r, func(o int, off [bcastMaxOperands]int, m int) {
		y := out[o : o+m]
		switch {
		case sa == 1 && sb == 1:
			arithRow(op, y, a[off[0]:off[0]+m], b[off[1]:off[1]+m])
		case sa == 1:
			arithRowScalarRight(op, y, a[off[0]:off[0]+m], b[off[1]])
		case sb == 1:
			arithRowScalarLeft(op, y, a[off[0]], b[off[1]:off[1]+m])
		default:
			v := a[off[0] : off[0]+1]
			arithRowScalarRight(op, y[:1], v, b[off[1]])
			for i := 1; i < len(y); i++ {
				y[i] = y[0]
			}
		}
	})
}

func arithRow[T number](op arithOp, y, a, b []T) {
	a, b = a[:len(y)], b[:len(y)]
	switch op {
	case opAdd:
		for i := range y {
			y[i] = a[i] + b[i]
		}
	case opSub:
		for i := range y {
			y[i] = a[i] - b[i]
		}
	case opMul:
		for i := range y {
			y[i] = a[i] * b[i]
		}
	case opDiv:
		for i := range y {
			y[i] = a[i] / b[i]
		}
	}
}

func arithRowScalarRight[T number](op arithOp, y, a []T, b T) {
	a = a[:len(y)]
	switch op {
	case opAdd:
		for i := range y {
			y[i] = a[i] + b
		}
	case opSub:
		for i := range y {
			y[i] = a[i] - b
		}
	case opMul:
		for i := range y {
			y[i] = a[i] * b
		}
	case opDiv:
		for i := range y {
			y[i] = a[i] / b
		}
	}
}

func arithRowScalarLeft[T number](op arithOp, y []T, a T, b []T) {
	b = b[:len(y)]
	switch op {
	case opAdd:
		for i := range y {
			y[i] = a + b[i]
		}
	case opSub:
		for i := range y {
			y[i] = a - b[i]
		}
	case opMul:
		for i := range y {
			y[i] = a * b[i]
		}
	case opDiv:
		for i := range y {
			y[i] = a / b[i]
		}
	}
}

// compareOp names the comparisons that have inlined inner loops.
type compareOp uint8

const (
	cmpEqual compareOp = iota
	cmpLess
	cmpGreater
	cmpLessOrEqual
	cmpGreaterOrEqual
)

// compareOpsFast maps op names to the comparisons with inlined loops.
var compareOpsFast = map[string]compareOp{"Equal": cmpEqual, "Less": cmpLess, "Greater": cmpGreater, "LessOrEqual": cmpLessOrEqual, "GreaterOrEqual": cmpGreaterOrEqual}

// bcastCompare is bcastBinary for the comparisons (op as in
// compareOpsFast) with the comparison inlined; operands are compared in
// their own type, which for float32 and the integers gives the same
// answer as the reference's float64 and int64 views.
func bcastCompare[T number](r *runState, op compareOp, a []T, as []int, b []T, bs []int, out []bool, os []int) {
	l := newBcastLoop(os, as, bs)
	sa, sb := l.step[0], l.step[1]
	l.run(r, func(o int, off [bcastMaxOperands]int, m int) {
		y := out[o : o+m]
		x, z := a[off[0]:], b[off[1]:]
		// Index i*s with s in {0, 1} reads element i or the broadcast one.
		switch op {
		case cmpEqual:
			for i := range y {
				y[i] = x[i*sa] == z[i*sb]
			}
		case cmpLess:
			for i := range y {
				y[i] = x[i*sa] < z[i*sb]
			}
		case cmpGreater:
			for i := range y {
				y[i] = x[i*sa] > z[i*sb]
			}
		case cmpLessOrEqual:
			for i := range y {
				y[i] = x[i*sa] <= z[i*sb]
			}
		default: // cmpGreaterOrEqual
			for i := range y {
				y[i] = x[i*sa] >= z[i*sb]
			}
		}
	})
}

// bcastLogic is bcastBinary for And, Or and Xor on bools.
func bcastLogic(r *runState, op string, a []bool, as []int, b []bool, bs []int, out []bool, os []int) {
	l := newBcastLoop(os, as, bs)
	sa, sb := l.step[0], l.step[1]
	isAnd, isOr := op == "And", op == "Or" // compared once, not once per run
	l.run(r, func(o int, off [bcastMaxOperands]int, m int) {
		y := out[o : o+m]
		x, z := a[off[0]:], b[off[1]:]
		switch {
		case isAnd:
			for i := range y {
				y[i] = x[i*sa] && z[i*sb]
			}
		case isOr:
			for i := range y {
				y[i] = x[i*sa] || z[i*sb]
			}
		default: // Xor
			for i := range y {
				y[i] = x[i*sa] != z[i*sb]
			}
		}
	})
}

// bcastWhere sets out = cond ? x : y with three-way broadcasting.
func bcastWhere[T any](r *runState, c []bool, cs []int, x []T, xs []int, y []T, ys []int, out []T, os []int) {
	l := newBcastLoop(os, cs, xs, ys)
	sc, sx, sy := l.step[0], l.step[1], l.step[2]
	l.run(r, func(o int, off [bcastMaxOperands]int, m int) {
		dst := out[o : o+m]
		cc, xx, yy := c[off[0]:], x[off[1]:], y[off[2]:]
		if sc == 0 { // one condition for the whole run: a copy or a fill
			src, s := yy, sy
			if cc[0] {
				src, s = xx, sx
			}
			if s == 1 {
				copy(dst, src[:m])
			} else {
				v := src[0]
				for i := range dst {
					dst[i] = v
				}
			}
			return
		}
		for i := range dst {
			if cc[i] {
				dst[i] = xx[i*sx]
			} else {
				dst[i] = yy[i*sy]
			}
		}
	})
}

// bcastCopy sets out to src broadcast to shape os (Expand).
func bcastCopy[T any](r *runState, src []T, ss []int, out []T, os []int) {
	l := newBcastLoop(os, ss)
	s := l.step[0]
	l.run(r, func(o int, off [bcastMaxOperands]int, m int) {
		dst := out[o : o+m]
		if s == 1 {
			copy(dst, src[off[0]:off[0]+m])
			return
		}
		v := src[off[0]]
		for i := range dst {
			dst[i] = v
		}
	})
}

// whereFast is the fast path of Where on any element type; out has the
// broadcast shape and x's type.
func whereFast(r *runState, c, x, y, out *Tensor) error {
	cd := c.Data.([]bool)
	switch xd := x.Data.(type) {
	case []float32:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]float32), y.Shape, out.Data.([]float32), out.Shape)
	case []float64:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]float64), y.Shape, out.Data.([]float64), out.Shape)
	case []uint16:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]uint16), y.Shape, out.Data.([]uint16), out.Shape)
	case []int8:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]int8), y.Shape, out.Data.([]int8), out.Shape)
	case []int16:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]int16), y.Shape, out.Data.([]int16), out.Shape)
	case []int32:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]int32), y.Shape, out.Data.([]int32), out.Shape)
	case []int64:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]int64), y.Shape, out.Data.([]int64), out.Shape)
	case []uint8:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]uint8), y.Shape, out.Data.([]uint8), out.Shape)
	case []uint32:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]uint32), y.Shape, out.Data.([]uint32), out.Shape)
	case []uint64:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]uint64), y.Shape, out.Data.([]uint64), out.Shape)
	case []bool:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]bool), y.Shape, out.Data.([]bool), out.Shape)
	case []string:
		bcastWhere(r, cd, c.Shape, xd, x.Shape, y.Data.([]string), y.Shape, out.Data.([]string), out.Shape)
	default:
		return fmt.Errorf("Where on %T data is not supported", x.Data)
	}
	return nil
}

// expandFast is the fast path of Expand on any element type: out has
// the broadcast shape and src's type.
func expandFast(r *runState, src, out *Tensor) error {
	switch d := src.Data.(type) {
	case []float32:
		bcastCopy(r, d, src.Shape, out.Data.([]float32), out.Shape)
	case []float64:
		bcastCopy(r, d, src.Shape, out.Data.([]float64), out.Shape)
	case []uint16:
		bcastCopy(r, d, src.Shape, out.Data.([]uint16), out.Shape)
	case []int8:
		bcastCopy(r, d, src.Shape, out.Data.([]int8), out.Shape)
	case []int16:
		bcastCopy(r, d, src.Shape, out.Data.([]int16), out.Shape)
	case []int32:
		bcastCopy(r, d, src.Shape, out.Data.([]int32), out.Shape)
	case []int64:
		bcastCopy(r, d, src.Shape, out.Data.([]int64), out.Shape)
	case []uint8:
		bcastCopy(r, d, src.Shape, out.Data.([]uint8), out.Shape)
	case []uint32:
		bcastCopy(r, d, src.Shape, out.Data.([]uint32), out.Shape)
	case []uint64:
		bcastCopy(r, d, src.Shape, out.Data.([]uint64), out.Shape)
	case []bool:
		bcastCopy(r, d, src.Shape, out.Data.([]bool), out.Shape)
	case []string:
		bcastCopy(r, d, src.Shape, out.Data.([]string), out.Shape)
	default:
		return fmt.Errorf("Expand on %T data is not supported", src.Data)
	}
	return nil
}
