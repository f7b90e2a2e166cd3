package cpu

import (
	"fmt"

	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
	"github.com/tfc-compiler/tfc/ir"
)

// fastKernels routes float32 MatMul and Gemm through the blocked SGEMM of
// backend/cpu/gemm. Tests turn it off to run the plain reference kernels
// (matmulTyped, the float64 Gemm loop), which stay the oracle.
var fastKernels = true

// constFloat32Matrix returns the data of v when v is a float32 constant
// of rank 2 (not a graph input with a default, which a caller may
// replace), else nil.
func constFloat32Matrix(v *ir.Value) (*Tensor, error) {
	if v == nil || v.Const == nil || v.IsGraphInput() || v.Const.DType != ir.Float || len(v.Const.Dims) != 2 {
		return nil, nil
	}
	t, err := viewIR(v.Const)
	if err != nil {
		return nil, err
	}
	if _, ok := t.Data.([]float32); !ok {
		return nil, nil
	}
	return t, nil
}

// packConstB packs a constant float32 B operand (k x n, stored n x k when
// transB) once at compile time, so runs skip packing the weights. It
// returns nil when B is not such a constant.
func packConstB(v *ir.Value, transB bool) (*gemm.PackedB, error) {
	if !fastKernels {
		return nil, nil
	}
	t, err := constFloat32Matrix(v)
	if err != nil || t == nil {
		return nil, err
	}
	rows, cols := t.Shape[0], t.Shape[1]
	k, n := rows, cols
	if transB {
		k, n = cols, rows
	}
	if k == 0 || n == 0 {
		return nil, nil
	}
	pb, err := gemm.PackB(transB, k, n, t.Data.([]float32), cols)
	if err != nil {
		return nil, fmt.Errorf("packing constant %q: %w", v.Name, err)
	}
	return pb, nil
}

// matmulFastF32 is float32 MatMul with numpy broadcasting through gemm.
// packed, when set, is B packed at compile time (B is then 2-D). All
// rows of A's batch axes are one tall product when B has no batch axes;
// otherwise the batch runs through SgemmBatched (strides 0 for broadcast
// operands) or, for mixed broadcasting, one Sgemm per product.
func matmulFastF32(r *runState, a, b *Tensor, packed *gemm.PackedB) (*Tensor, error) {
	batch, aB, bB, shape, m, k, n, err := matmulShapes(a.Shape, b.Shape)
	if err != nil {
		return nil, err
	}
	// With k > 0 every product overwrites its C (beta = 0), so a reused
	// buffer need not be cleared; an empty sum (k = 0) relies on zeros.
	allocate := r.alloc
	if k > 0 {
		allocate = r.allocOverwrite
	}
	out, err := allocate(ir.Float, shape)
	if err != nil {
		return nil, err
	}
	ad, bd, cd := a.Data.([]float32), b.Data.([]float32), out.Data.([]float32)
	nb := shapeSize(batch)
	if nb == 0 || m == 0 || n == 0 || k == 0 {
		return out, nil // alloc zeroed it: an empty sum is 0
	}
	threads := r.threads
	if len(bB) == 0 {
		rows := shapeSize(aB) * m
		if packed != nil && packed.K() == k && packed.N() == n {
			err = gemm.SgemmPackedParallel(threads, false, rows, 1, ad, k, packed, 0, cd, n)
		} else {
			err = gemm.SgemmParallel(threads, false, false, rows, n, k, 1, ad, k, bd, n, 0, cd, n)
		}
		return out, err
	}
	strideA, okA := batchStride(aB, batch, m*k)
	strideB, okB := batchStride(bB, batch, k*n)
	if okA && okB {
		err = gemm.SgemmBatched(threads, nb, false, false, m, n, k, 1, ad, strideA, k, bd, strideB, n, 0, cd, m*n, n)
		return out, err
	}
	ia := broadcastIndex(aB, batch)
	ib := broadcastIndex(bB, batch)
	errs := make([]error, nb)
	r.parallelFor(nb, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			errs[t] = gemm.Sgemm(false, false, m, n, k, 1, ad[ia[t]*m*k:], k, bd[ib[t]*k*n:], n, 0, cd[t*m*n:], n)
		}
	})
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	return out, nil
}

// batchStride returns the distance between consecutive matrices of an
// operand whose batch axes are opShape, broadcast to batch: the matrix
// size when it has every batch axis, 0 when it has a single matrix, and
// ok=false for partial broadcasting.
func batchStride(opShape, batch []int, matrix int) (int, bool) {
	switch {
	case shapeSize(opShape) == 1:
		return 0, true
	case shapeSize(opShape) == shapeSize(batch) && sameShape(trimOnes(opShape), trimOnes(batch)):
		return matrix, true
	}
	return 0, false
}

// trimOnes drops leading 1s, which do not change broadcasting.
func trimOnes(s []int) []int {
	for len(s) > 0 && s[0] == 1 {
		s = s[1:]
	}
	return s
}

// gemmFastF32 is float32 Gemm through gemm: Y = alpha*op(A)*op(B) + beta*C.
// C (broadcast to m x n) is written into Y first, scaled by beta, and the
// product accumulated onto it with beta=1. packed, when set, is op(B)
// packed at compile time.
func gemmFastF32(r *runState, a, b, c *Tensor, alpha, beta float32, transA, transB bool, packed *gemm.PackedB) (*Tensor, error) {
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return nil, fmt.Errorf("A and B must be matrices, got %v and %v", a.Shape, b.Shape)
	}
	m, k := a.Shape[0], a.Shape[1]
	if transA {
		m, k = k, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if transB {
		kb, n = n, kb
	}
	if k != kb {
		return nil, fmt.Errorf("inner dimensions differ: A %v (transA=%v), B %v (transB=%v)", a.Shape, transA, b.Shape, transB)
	}
	// C (beta != 0) or a non-empty product writes every element; only
	// alpha = 0 or k = 0 without C relies on zeros.
	allocate := r.alloc
	if (c != nil && beta != 0) || (alpha != 0 && k > 0) {
		allocate = r.allocOverwrite
	}
	out, err := allocate(ir.Float, []int{m, n})
	if err != nil {
		return nil, err
	}
	yd := out.Data.([]float32)
	accumulate := float32(0)
	if c != nil && beta != 0 {
		if err := fillGemmBias(yd, m, n, c, beta); err != nil {
			return nil, err
		}
		accumulate = 1
	}
	if m == 0 || n == 0 || k == 0 || alpha == 0 {
		return out, nil
	}
	ad, bd := a.Data.([]float32), b.Data.([]float32)
	lda, ldb := a.Shape[1], b.Shape[1]
	if packed != nil && packed.K() == k && packed.N() == n {
		err = gemm.SgemmPackedParallel(r.threads, transA, m, alpha, ad, lda, packed, accumulate, yd, n)
	} else {
		err = gemm.SgemmParallel(r.threads, transA, transB, m, n, k, alpha, ad, lda, bd, ldb, accumulate, yd, n)
	}
	return out, err
}

// fillGemmBias writes beta*C, unidirectionally broadcast to m x n, into y.
func fillGemmBias(y []float32, m, n int, c *Tensor, beta float32) error {
	cd, ok := c.Data.([]float32)
	if !ok {
		return fmt.Errorf("C has element type %v, A and B are float", c.DType)
	}
	cm, cn := 1, 1
	switch len(c.Shape) {
	case 0:
	case 1:
		cn = c.Shape[0]
	case 2:
		cm, cn = c.Shape[0], c.Shape[1]
	default:
		return fmt.Errorf("C %v does not broadcast to [%d %d]", c.Shape, m, n)
	}
	if (cm != 1 && cm != m) || (cn != 1 && cn != n) {
		return fmt.Errorf("C %v does not broadcast to [%d %d]", c.Shape, m, n)
	}
	for i := 0; i < m; i++ {
		row := y[i*n : i*n+n]
		src := cd[min(i, cm-1)*cn:]
		if cn == 1 {
			v := beta * src[0]
			for j := range row {
				row[j] = v
			}
			continue
		}
		for j := range row {
			row[j] = beta * src[j]
		}
	}
	return nil
}
