package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
	"github.com/tfc-compiler/tfc/ir"
)

// matmulShapes resolves numpy matmul shapes: 1-D operands are promoted
// (and the added axis dropped from the result), batch axes broadcast.
func matmulShapes(as, bs []int) (batch, aBatch, bBatch, out []int, m, k, n int, err error) {
	if len(as) == 0 || len(bs) == 0 {
		return nil, nil, nil, nil, 0, 0, 0, fmt.Errorf("MatMul operands must have rank >= 1, got %v and %v", as, bs)
	}
	a, b := as, bs
	if len(a) == 1 {
		a = []int{1, a[0]}
	}
	if len(b) == 1 {
		b = []int{b[0], 1}
	}
	m, k = a[len(a)-2], a[len(a)-1]
	if b[len(b)-2] != k {
		return nil, nil, nil, nil, 0, 0, 0, fmt.Errorf("MatMul inner dimensions differ: %v and %v", as, bs)
	}
	n = b[len(b)-1]
	aBatch, bBatch = a[:len(a)-2], b[:len(b)-2]
	batch, err = broadcastShapes(aBatch, bBatch)
	if err != nil {
		return nil, nil, nil, nil, 0, 0, 0, err
	}
	out = slices.Clone(batch)
	if len(as) > 1 {
		out = append(out, m)
	}
	if len(bs) > 1 {
		out = append(out, n)
	}
	return batch, aBatch, bBatch, out, m, k, n, nil
}

// matmulBlock computes c[m,n] = a[m,k] x b[k,n] (row-major, c zeroed by
// the caller) with the i-k-j loop order, accumulating in T.
func matmulBlock[T number](a, b, c []T, m, k, n int) {
	for i := 0; i < m; i++ {
		ci := c[i*n : i*n+n]
		for p := 0; p < k; p++ {
			av := a[i*k+p]
			bp := b[p*n : p*n+n]
			for j, bv := range bp {
				ci[j] += av * bv
			}
		}
	}
}

func matmulTyped[T number](r *runState, a, b, c []T, batch, aBatch, bBatch []int, m, k, n int) {
	nb := shapeSize(batch)
	ia := broadcastIndex(aBatch, batch)
	ib := broadcastIndex(bBatch, batch)
	r.parallelFor(nb*m, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			bi, i := row/m, row%m
			ao := ia[bi]*m*k + i*k
			bo := ib[bi] * k * n
			matmulBlock(a[ao:ao+k], b[bo:bo+k*n], c[bi*m*n+i*n:bi*m*n+i*n+n], 1, k, n)
		}
	})
}

func buildMatMul(n *ir.Node, _ *compiler) (kernel, error) {
	var packed *gemm.PackedB
	if len(n.Inputs) == 2 {
		var err error
		if packed, err = packConstB(n.Inputs[1], false); err != nil {
			return nil, err
		}
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, b := in[0], in[1]
		if a.DType != b.DType {
			return nil, fmt.Errorf("operands have different element types %v and %v", a.DType, b.DType)
		}
		if fastKernels && a.DType == ir.Float {
			out, err := matmulFastF32(r, a, b, packed)
			if err != nil {
				return nil, err
			}
			return []*Tensor{out}, nil
		}
		batch, aB, bB, shape, m, k, nn, err := matmulShapes(a.Shape, b.Shape)
		if err != nil {
			return nil, err
		}
		out, err := r.alloc(a.DType, shape)
		if err != nil {
			return nil, err
		}
		switch ad := a.Data.(type) {
		case []float32:
			matmulTyped(r, ad, b.Data.([]float32), out.Data.([]float32), batch, aB, bB, m, k, nn)
		case []float64:
			matmulTyped(r, ad, b.Data.([]float64), out.Data.([]float64), batch, aB, bB, m, k, nn)
		case []int32:
			matmulTyped(r, ad, b.Data.([]int32), out.Data.([]int32), batch, aB, bB, m, k, nn)
		case []int64:
			matmulTyped(r, ad, b.Data.([]int64), out.Data.([]int64), batch, aB, bB, m, k, nn)
		case []uint32:
			matmulTyped(r, ad, b.Data.([]uint32), out.Data.([]uint32), batch, aB, bB, m, k, nn)
		case []uint64:
			matmulTyped(r, ad, b.Data.([]uint64), out.Data.([]uint64), batch, aB, bB, m, k, nn)
		default:
			return nil, fmt.Errorf("MatMul is not supported for %v", a.DType)
		}
		return []*Tensor{out}, nil
	}, nil
}

func buildGemm(n *ir.Node, _ *compiler) (kernel, error) {
	alpha := float64(n.AttrFloat("alpha", 1))
	beta := float64(n.AttrFloat("beta", 1))
	transA := n.AttrInt("transA", 0) != 0
	transB := n.AttrInt("transB", 0) != 0
	var packed *gemm.PackedB
	if len(n.Inputs) >= 2 {
		var err error
		if packed, err = packConstB(n.Inputs[1], transB); err != nil {
			return nil, err
		}
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, b, c := in[0], in[1], inputN(in, 2)
		if fastKernels && a.DType == ir.Float && b.DType == ir.Float && (c == nil || c.DType == ir.Float) {
			out, err := gemmFastF32(r, a, b, c, float32(alpha), float32(beta), transA, transB, packed)
			if err != nil {
				return nil, err
			}
			return []*Tensor{out}, nil
		}
		if len(a.Shape) != 2 || len(b.Shape) != 2 {
			return nil, fmt.Errorf("A and B must be matrices, got %v and %v", a.Shape, b.Shape)
		}
		m, k := a.Shape[0], a.Shape[1]
		if transA {
			m, k = k, m
		}
		kb, nn := b.Shape[0], b.Shape[1]
		if transB {
			kb, nn = nn, kb
		}
		if k != kb {
			return nil, fmt.Errorf("inner dimensions differ: A %v (transA=%v), B %v (transB=%v)", a.Shape, transA, b.Shape, transB)
		}
		av, ok1 := a.Float64s()
		bv, ok2 := b.Float64s()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("operands must be numeric")
		}
		res := make([]float64, m*nn)
		r.parallelFor(m, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				for j := 0; j < nn; j++ {
					s := 0.0
					for p := 0; p < k; p++ {
						var x, y float64
						if transA {
							x = av[p*a.Shape[1]+i]
						} else {
							x = av[i*a.Shape[1]+p]
						}
						if transB {
							y = bv[j*b.Shape[1]+p]
						} else {
							y = bv[p*b.Shape[1]+j]
						}
						s += x * y
					}
					res[i*nn+j] = alpha * s
				}
			}
		})
		if c != nil && beta != 0 {
			shape, err := broadcastShapes(c.Shape, []int{m, nn})
			if err != nil || !sameShape(shape, []int{m, nn}) {
				return nil, fmt.Errorf("C %v does not broadcast to [%d %d]", c.Shape, m, nn)
			}
			cv, _ := c.Float64s()
			ic := broadcastIndex(c.Shape, shape)
			for i := range res {
				res[i] += beta * cv[ic[i]]
			}
		}
		out, err := r.alloc(a.DType, []int{m, nn})
		if err != nil {
			return nil, err
		}
		if intTypes.has(a.DType) {
			iv := make([]int64, len(res))
			for i, v := range res {
				iv[i] = int64(v)
			}
			storeInts(out, iv)
		} else {
			storeFloats(out, res)
		}
		return []*Tensor{out}, nil
	}, nil
}

// softmaxRows is the reference softmax over rows of length d (float64
// accumulation); log selects LogSoftmax. A row of all -inf gives NaN, as
// in numpy.
func softmaxRows(x []float64, d int, log bool) {
	for o := 0; o+d <= len(x); o += d {
		row := x[o : o+d]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, v)
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		for i, v := range row {
			if log {
				row[i] = v - mx - math.Log(sum)
			} else {
				row[i] = math.Exp(v-mx) / sum
			}
		}
	}
}

// buildSoftmax covers Softmax, LogSoftmax and Hardmax. Before opset 13
// the input is coerced to 2-D at axis (default 1); from 13 the op runs
// along one axis (default -1).
func buildSoftmax(n *ir.Node, c *compiler) (kernel, error) {
	legacy := c.opset(n) < 13
	def := int64(-1)
	if legacy {
		def = 1
	}
	axis := n.AttrInt("axis", def)
	op := n.Op
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		rank := len(x.Shape)
		if rank == 0 {
			return nil, fmt.Errorf("input must have rank >= 1")
		}
		ax, err := normAxis(axis, rank)
		if err != nil {
			return nil, err
		}
		if xd, ok := x.Data.([]float32); ok && x.DType == ir.Float && fastKernels && op == "Softmax" && (legacy || ax == rank-1) {
			return softmaxRowsF32(r, x, xd, shapeSize(x.Shape[ax:]))
		}
		vals, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("input must be numeric")
		}
		// Move the axis last (a view for legacy and last-axis cases).
		var perm []int
		d := x.Shape[ax]
		if legacy {
			d = shapeSize(x.Shape[ax:])
		} else if ax != rank-1 {
			for i := 0; i < rank; i++ {
				if i != ax {
					perm = append(perm, i)
				}
			}
			perm = append(perm, ax)
			t := transpose(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: vals}, perm)
			vals = t.Data.([]float64)
		}
		if d > 0 {
			if op == "Hardmax" {
				for o := 0; o+d <= len(vals); o += d {
					row := vals[o : o+d]
					best := 0
					for i, v := range row {
						if v > row[best] {
							best = i
						}
					}
					for i := range row {
						row[i] = 0
					}
					row[best] = 1
				}
			} else {
				softmaxRows(vals, d, op == "LogSoftmax")
			}
		}
		res := &Tensor{DType: ir.Double, Shape: x.Shape, Data: vals}
		if perm != nil {
			res.Shape = make([]int, rank)
			for i, p := range perm {
				res.Shape[i] = x.Shape[p]
			}
			inv := make([]int, rank)
			for i, p := range perm {
				inv[p] = i
			}
			res = transpose(r, res, inv)
		}
		out, err := convertData(r, res, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildLayerNorm implements LayerNormalization: statistics over axes
// [axis, rank), then Scale and B broadcast against X. Outputs Mean and
// InvStdDev (shape X.shape[:axis] + ones) when requested.
func buildLayerNorm(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", -1)
	eps := float64(n.AttrFloat("epsilon", 1e-5))
	rms := n.Op == "RMSNormalization"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		if fastKernels {
			if outs, ok := layerNormF32(r, in, axis, eps, rms); ok {
				return outs, nil
			}
		}
		x, scale, bias := in[0], in[1], inputN(in, 2)
		rank := len(x.Shape)
		ax, err := normAxis(axis, rank)
		if err != nil {
			return nil, err
		}
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("X must be numeric")
		}
		rows := shapeSize(x.Shape[:ax])
		cols := shapeSize(x.Shape[ax:])
		if _, err := broadcastShapes(scale.Shape, x.Shape); err != nil {
			return nil, fmt.Errorf("Scale: %w", err)
		}
		sv, _ := scale.Float64s()
		is := broadcastIndex(scale.Shape, x.Shape)
		var bv []float64
		var ib []int
		if bias != nil {
			if _, err := broadcastShapes(bias.Shape, x.Shape); err != nil {
				return nil, fmt.Errorf("B: %w", err)
			}
			bv, _ = bias.Float64s()
			ib = broadcastIndex(bias.Shape, x.Shape)
		}
		if len(is) < len(xv) || (bias != nil && len(ib) < len(xv)) {
			return nil, fmt.Errorf("Scale %v or B does not broadcast to X %v", scale.Shape, x.Shape)
		}
		y := make([]float64, len(xv))
		mean := make([]float64, rows)
		inv := make([]float64, rows)
		for i := 0; i < rows; i++ {
			row := xv[i*cols : i*cols+cols]
			mu := 0.0
			if !rms {
				for _, v := range row {
					mu += v
				}
				mu /= float64(cols)
			}
			variance := 0.0
			for _, v := range row {
				variance += (v - mu) * (v - mu)
			}
			variance /= float64(cols)
			mean[i], inv[i] = mu, 1/math.Sqrt(variance+eps)
		}
		for e := range y {
			row := e / max(cols, 1)
			yv := (xv[e] - mean[row]) * inv[row] * sv[is[e]]
			if bias != nil {
				yv += bv[ib[e]]
			}
			y[e] = yv
		}
		out, err := convertData(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: y}, x.DType)
		if err != nil {
			return nil, err
		}
		outs := []*Tensor{out}
		if !rms {
			statShape := slices.Clone(x.Shape)
			for i := ax; i < rank; i++ {
				statShape[i] = 1
			}
			// Mean and InvStdDev use the stash type (float32 by default).
			m, err := convertData(r, &Tensor{DType: ir.Double, Shape: statShape, Data: mean}, ir.Float)
			if err != nil {
				return nil, err
			}
			s, err := convertData(r, &Tensor{DType: ir.Double, Shape: statShape, Data: inv}, ir.Float)
			if err != nil {
				return nil, err
			}
			outs = append(outs, m, s)
		}
		return outs, nil
	}, nil
}
