package cpu

// The fast Transpose. The reference (transposeRef in movement.go) builds
// an index per element and gathers on one thread; in BERT's head
// split/merge ([B,S,H,D] <-> [B,H,S,D]) that was 11% of the run. Here
// the permutation is first simplified, then run as plain copies:
//
//   - size-1 axes are dropped and input axes that stay adjacent and in
//     order in the output are merged (perm [0,2,3,1] on [B,S,H,D] becomes
//     [0,2,1] on [B,S,H*D]);
//   - when the input's innermost axis stays innermost, the output is a
//     sequence of contiguous runs of the input, each moved with copy;
//   - otherwise the two innermost axes (the input's, which moves, and the
//     output's) form a 2-D transpose done in square tiles, so that both
//     the reads and the writes touch a few cache lines at a time.
//
// Work is split over r.parallelFor by runs or by tile bands.

// transposeTile is the side of the square tiles of the 2-D case: 16
// elements of 4 bytes are one 64-byte cache line.
const transposeTile = 16

// transposeParallelMin is the least number of elements worth splitting
// over goroutines; below it, starting them costs more than the copy.
const transposeParallelMin = 1 << 15

// transposePlan is a permutation simplified for copying: output axis i is
// input axis perm[i] of the input viewed with shape dims (row-major).
type transposePlan struct {
	dims []int
	perm []int
}

// simplifyTranspose drops size-1 axes of shape and merges runs of input
// axes that appear consecutively and in order in perm. The result has the
// same row-major layout on both sides as the original permutation.
func simplifyTranspose(shape, perm []int) transposePlan {
	// Renumber the axes of size > 1.
	newAxis := make([]int, len(shape))
	var dims []int
	for a, d := range shape {
		newAxis[a] = -1
		if d != 1 {
			newAxis[a] = len(dims)
			dims = append(dims, d)
		}
	}
	var p []int
	for _, a := range perm {
		if newAxis[a] >= 0 {
			p = append(p, newAxis[a])
		}
	}
	// Group output-consecutive axes that are input-consecutive.
	type group struct{ first, last int } // input axes first..last
	var groups []group
	for _, a := range p {
		if n := len(groups); n > 0 && groups[n-1].last+1 == a {
			groups[n-1].last = a
			continue
		}
		groups = append(groups, group{a, a})
	}
	// Groups in input order become the new input axes.
	byInput := make([]int, len(dims)) // input axis -> group index, for group starts
	for g, gr := range groups {
		byInput[gr.first] = g
	}
	plan := transposePlan{perm: make([]int, len(groups))}
	groupAxis := make([]int, len(groups))
	for a := 0; a < len(dims); a++ {
		g := byInput[a]
		if groups[g].first != a {
			continue
		}
		size := 1
		for b := groups[g].first; b <= groups[g].last; b++ {
			size *= dims[b]
		}
		groupAxis[g] = len(plan.dims)
		plan.dims = append(plan.dims, size)
	}
	for g := range groups {
		plan.perm[g] = groupAxis[g]
	}
	return plan
}

// transposeFast is Transpose for every element type the CPU backend
// stores; it returns nil (and allocates nothing) for data it does not
// know, or with fastKernels off, which then takes the reference path.
func transposeFast(r *runState, x *Tensor, perm []int) *Tensor {
	if !fastKernels {
		return nil
	}
	switch x.Data.(type) {
	case []float32, []float64, []uint16, []int8, []int16, []int32, []int64,
		[]uint8, []uint32, []uint64, []bool, []string:
	default:
		return nil
	}
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	out := r.mustAlloc(x.DType, shape)
	if shapeSize(shape) == 0 {
		return out
	}
	plan := simplifyTranspose(x.Shape, perm)
	switch d := x.Data.(type) {
	case []float32:
		permuteCopy(r, out.Data.([]float32), d, plan)
	case []float64:
		permuteCopy(r, out.Data.([]float64), d, plan)
	case []uint16:
		permuteCopy(r, out.Data.([]uint16), d, plan)
	case []int8:
		permuteCopy(r, out.Data.([]int8), d, plan)
	case []int16:
		permuteCopy(r, out.Data.([]int16), d, plan)
	case []int32:
		permuteCopy(r, out.Data.([]int32), d, plan)
	case []int64:
		permuteCopy(r, out.Data.([]int64), d, plan)
	case []uint8:
		permuteCopy(r, out.Data.([]uint8), d, plan)
	case []uint32:
		permuteCopy(r, out.Data.([]uint32), d, plan)
	case []uint64:
		permuteCopy(r, out.Data.([]uint64), d, plan)
	case []bool:
		permuteCopy(r, out.Data.([]bool), d, plan)
	case []string:
		permuteCopy(r, out.Data.([]string), d, plan)
	}
	return out
}

// permuteCopy writes the permutation of src described by plan into dst
// (both hold shapeSize(plan.dims) > 0 elements).
func permuteCopy[T any](r *runState, dst, src []T, plan transposePlan) {
	dims, perm := plan.dims, plan.perm
	total := shapeSize(dims)
	dst, src = dst[:total], src[:total]
	rank := len(dims)
	if rank <= 1 {
		copy(dst, src) // the identity, after simplification
		return
	}
	inStride := strides(dims)
	outShape := make([]int, rank)
	for i, a := range perm {
		outShape[i] = dims[a]
	}
	outStride := strides(outShape)
	split := func(n int, body func(lo, hi int)) {
		if total < transposeParallelMin {
			body(0, n)
			return
		}
		r.parallelFor(n, body)
	}

	if perm[rank-1] == rank-1 {
		// Contiguous runs: output axes 0..rank-2 walk the runs in order.
		run := dims[rank-1]
		outer := outShape[:rank-1]
		runStride := make([]int, rank-1)
		for i := range runStride {
			runStride[i] = inStride[perm[i]]
		}
		split(total/run, func(lo, hi int) {
			pos := make([]int, len(outer))
			off := 0
			for i, t := len(outer)-1, lo; i >= 0; i-- {
				pos[i] = t % outer[i]
				t /= outer[i]
				off += pos[i] * runStride[i]
			}
			for t := lo; t < hi; t++ {
				copy(dst[t*run:(t+1)*run], src[off:off+run])
				for i := len(outer) - 1; i >= 0; i-- {
					pos[i]++
					off += runStride[i]
					if pos[i] < outer[i] {
						break
					}
					off -= pos[i] * runStride[i]
					pos[i] = 0
				}
			}
		})
		return
	}

	// 2-D case: input axis a becomes the output's innermost axis, and the
	// input's innermost axis b lands at output position jb. For every
	// combination of the other axes, out[.. ib@jb .., ia] = in[.. ia .., ib].
	a, b := perm[rank-1], rank-1
	jb := 0
	for i, p := range perm {
		if p == b {
			jb = i
		}
	}
	na, nb := dims[a], dims[b]
	sa, ob := inStride[a], outStride[jb]
	var outerShape, outerIn, outerOut []int
	for i, p := range perm {
		if i != rank-1 && i != jb {
			outerShape = append(outerShape, outShape[i])
			outerIn = append(outerIn, inStride[p])
			outerOut = append(outerOut, outStride[i])
		}
	}
	bands := (na + transposeTile - 1) / transposeTile
	units := shapeSize(outerShape) * bands
	split(units, func(lo, hi int) {
		for u := lo; u < hi; u++ {
			t, band := u/bands, u%bands
			inBase, outBase := 0, 0
			for i := len(outerShape) - 1; i >= 0; i-- {
				q := t % outerShape[i]
				t /= outerShape[i]
				inBase += q * outerIn[i]
				outBase += q * outerOut[i]
			}
			a0 := band * transposeTile
			a1 := min(a0+transposeTile, na)
			for b0 := 0; b0 < nb; b0 += transposeTile {
				b1 := min(b0+transposeTile, nb)
				for ia := a0; ia < a1; ia++ {
					row := src[inBase+ia*sa+b0 : inBase+ia*sa+b1]
					o := outBase + b0*ob + ia
					for _, v := range row {
						dst[o] = v
						o += ob
					}
				}
			}
		}
	})
}
