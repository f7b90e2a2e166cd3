package cpu

// sliceFast is the fast path of Slice when every step is 1: the output is
// a sequence of contiguous runs of the input (the trailing axes that are
// kept whole, times the extent of the innermost sliced axis), copied with
// copy() and threaded over runs when large. It returns nil for other
// steps or element types; the caller then runs the index-array
// reference, which stays the oracle (fastKernels off).
func sliceFast(r *runState, x *Tensor, shape, begin, step []int) *Tensor {
	if !fastKernels {
		return nil
	}
	for _, s := range step {
		if s != 1 {
			return nil
		}
	}
	switch d := x.Data.(type) {
	case []float32:
		return sliceRuns(r, x, d, shape, begin)
	case []float64:
		return sliceRuns(r, x, d, shape, begin)
	case []int64:
		return sliceRuns(r, x, d, shape, begin)
	case []int32:
		return sliceRuns(r, x, d, shape, begin)
	case []uint16:
		return sliceRuns(r, x, d, shape, begin)
	case []bool:
		return sliceRuns(r, x, d, shape, begin)
	}
	return nil
}

// sliceParallelMin is the least number of output elements worth
// splitting over goroutines; below it, starting them costs more than the
// copies.
const sliceParallelMin = 1 << 15

func sliceRuns[T any](r *runState, x *Tensor, src []T, shape, begin []int) *Tensor {
	out := r.mustAllocOverwrite(x.DType, shape) // every run is copied
	dst := out.Data.([]T)
	if len(dst) == 0 {
		return out
	}
	rank := len(shape)
	st := strides(x.Shape)
	// k: the axes from k on are copied whole; axis k-1 (if any) is the
	// innermost sliced one and contributes shape[k-1] contiguous elements.
	k, run := rank, 1
	for k > 0 && shape[k-1] == x.Shape[k-1] {
		run *= shape[k-1]
		k--
	}
	outer := 0 // the axes before the innermost sliced one
	if k > 0 {
		run *= shape[k-1]
		outer = k - 1
	}
	base := 0
	for a := outer; a < rank; a++ {
		base += begin[a] * st[a]
	}
	runs := len(dst) / run
	copyRuns := func(lo, hi int) {
		for o := lo; o < hi; o++ {
			// Decompose o over the outer axes (row-major).
			rem, off := o, base
			for a := outer - 1; a >= 0; a-- {
				off += (begin[a] + rem%shape[a]) * st[a]
				rem /= shape[a]
			}
			copy(dst[o*run:(o+1)*run], src[off:off+run])
		}
	}
	if len(dst) < sliceParallelMin {
		copyRuns(0, runs)
	} else {
		r.parallelFor(runs, copyRuns)
	}
	return out
}
