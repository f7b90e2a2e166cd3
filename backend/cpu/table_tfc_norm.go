package cpu

import (
	"fmt"
	"math"

	"github.com/tfc-compiler/tfc/ir"
)

// Reference kernels of the tfc norm and GELU ops that the fusion passes
// create (passes/fuse_norm.go, fuse_gelu.go, fuse_skip.go, fuse_bias.go).
// Each computes in float64 from inputs of any float type and rounds once
// to X's element type; the scale, bias and skip inputs may have a
// different float type than X (fused fp16-safe exports). Float32 inputs
// of the shapes the fusions make take the float32 paths of fast_norm.go
// first; these kernels are their reference. This file's name
// sorts after table.go so that its init runs after the one that builds
// opTable.
func init() {
	opTable = append(opTable,
		opDef{Domain: "tfc", Op: "LayerNorm", types: floatTypes, build: buildTfcNorm,
			Notes: "(X - mean) / sqrt(var + epsilon) * Scale + B over [axis, rank); Scale and B optional; computed in float64"},
		opDef{Domain: "tfc", Op: "RMSNorm", types: floatTypes, build: buildTfcNorm,
			Notes: "X / sqrt(mean(X^2) + epsilon) * Scale over [axis, rank); Scale optional; computed in float64"},
		opDef{Domain: "tfc", Op: "SkipLayerNorm", types: floatTypes, build: buildTfcSkipLayerNorm,
			Notes: "LayerNorm(X + Skip + Bias) over the last axis; output 1 is the sum; float32 fast path (vmath.SkipLayerNormRow, AVX2), float64 reference"},
		opDef{Domain: "tfc", Op: "SkipRMSNorm", types: floatTypes, build: buildTfcSkipLayerNorm,
			Notes: "RMSNorm(X + Skip + Bias) over the last axis; output 1 is the sum; float32 fast path (vmath.SkipLayerNormRow, AVX2), float64 reference"},
		opDef{Domain: "tfc", Op: "Gelu", types: floatTypes, build: buildTfcGelu,
			Notes: "approximate none (erf) and tanh; float32 fast path, float64 reference"},
		opDef{Domain: "tfc", Op: "BiasGelu", types: floatTypes, build: buildTfcGelu,
			Notes: "Gelu(X + Bias), approximate none and tanh; float32 fast path, float64 reference"},
	)
}

// broadcastFloats returns t's values indexed for every element of shape
// (t must broadcast to shape without growing it), or nil for a nil t.
func broadcastFloats(t *Tensor, shape []int, what string) ([]float64, []int, error) {
	if t == nil {
		return nil, nil, nil
	}
	b, err := broadcastShapes(t.Shape, shape)
	if err != nil || !sameShape(b, shape) {
		return nil, nil, fmt.Errorf("%s %v does not broadcast to X %v", what, t.Shape, shape)
	}
	v, ok := t.Float64s()
	if !ok {
		return nil, nil, fmt.Errorf("%s must be numeric", what)
	}
	return v, broadcastIndex(t.Shape, shape), nil
}

// normalizeRows normalizes x (rows of cols values) in place: LayerNorm
// subtracts the row mean, RMSNorm does not; both divide by
// sqrt(mean of squares + eps). Then y = y*scale + bias where given. The
// reference loop, per row r: mu = sum(x)/cols (0 for rms); v =
// sum((x-mu)^2)/cols; y = (x-mu)/sqrt(v+eps).
func normalizeRows(r *runState, x []float64, cols int, eps float64, rms bool, scale []float64, is []int, bias []float64, ib []int) {
	if cols == 0 {
		return
	}
	rows := len(x) / cols
	r.parallelFor(rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := x[i*cols : (i+1)*cols]
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
			inv := 1 / math.Sqrt(variance/float64(cols)+eps)
			for j, v := range row {
				e := i*cols + j
				y := (v - mu) * inv
				if scale != nil {
					y *= scale[is[e]]
				}
				if bias != nil {
					y += bias[ib[e]]
				}
				row[j] = y
			}
		}
	})
}

// buildTfcNorm implements tfc.LayerNorm(X, Scale?, B?) and
// tfc.RMSNorm(X, Scale?).
func buildTfcNorm(n *ir.Node, _ *compiler) (kernel, error) {
	axis := n.AttrInt("axis", -1)
	eps := float64(n.AttrFloat("epsilon", 1e-5))
	rms := n.Op == "RMSNorm"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		ax, err := normAxis(axis, len(x.Shape))
		if err != nil {
			return nil, err
		}
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("X must be numeric")
		}
		sv, is, err := broadcastFloats(inputN(in, 1), x.Shape, "Scale")
		if err != nil {
			return nil, err
		}
		bv, ib, err := broadcastFloats(inputN(in, 2), x.Shape, "B")
		if err != nil {
			return nil, err
		}
		normalizeRows(r, xv, shapeSize(x.Shape[ax:]), eps, rms, sv, is, bv, ib)
		out, err := convertData(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: xv}, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildTfcSkipLayerNorm implements tfc.SkipLayerNorm(X, Skip, Scale, B?,
// Bias?) and tfc.SkipRMSNorm(X, Skip, Scale, Bias?): sum = X + Skip + Bias
// (Skip and Bias broadcast to X), Y = LayerNorm or RMSNorm of sum over the
// last axis, output 1 = sum.
func buildTfcSkipLayerNorm(n *ir.Node, _ *compiler) (kernel, error) {
	eps := float64(n.AttrFloat("epsilon", 1e-5))
	wantSum := len(n.Outputs) > 1 && n.Outputs[1] != nil
	rms := n.Op == "SkipRMSNorm"
	// Names of the inputs added into the sum, by index.
	addends := []string{"", "Skip", "", "", "Bias"}
	betaIdx := 3
	if rms {
		addends, betaIdx = []string{"", "Skip", "", "Bias"}, -1
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 3); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) == 0 {
			return nil, fmt.Errorf("X must have rank 1 or more, has shape %v", x.Shape)
		}
		if fastKernels {
			biasIdx := 4
			if rms {
				biasIdx = 3
			}
			if outs, ok := skipLayerNormF32(r, in, eps, rms, wantSum, betaIdx, biasIdx); ok {
				return outs, nil
			}
		}
		sum, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("X must be numeric")
		}
		for i, what := range addends {
			if what == "" {
				continue
			}
			v, idx, err := broadcastFloats(inputN(in, i), x.Shape, what)
			if err != nil {
				return nil, err
			}
			for e := range sum {
				if v != nil {
					sum[e] += v[idx[e]]
				}
			}
		}
		var sumOut *Tensor
		if wantSum {
			var err error
			if sumOut, err = convertData(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: append([]float64(nil), sum...)}, x.DType); err != nil {
				return nil, err
			}
		}
		sv, is, err := broadcastFloats(in[2], x.Shape, "Scale")
		if err != nil {
			return nil, err
		}
		var bv []float64
		var ib []int
		if betaIdx >= 0 {
			if bv, ib, err = broadcastFloats(inputN(in, betaIdx), x.Shape, "B"); err != nil {
				return nil, err
			}
		}
		normalizeRows(r, sum, x.Shape[len(x.Shape)-1], eps, rms, sv, is, bv, ib)
		y, err := convertData(r, &Tensor{DType: ir.Double, Shape: x.Shape, Data: sum}, x.DType)
		if err != nil {
			return nil, err
		}
		if wantSum {
			return []*Tensor{y, sumOut}, nil
		}
		return []*Tensor{y}, nil
	}, nil
}

// gelu returns GELU with the erf (approximate none) or tanh formula.
func gelu(approximate string) (func(float64) float64, error) {
	switch approximate {
	case "none":
		return func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }, nil
	case "tanh":
		c := math.Sqrt(2 / math.Pi)
		return func(x float64) float64 { return 0.5 * x * (1 + math.Tanh(c*(x+0.044715*x*x*x))) }, nil
	}
	return nil, fmt.Errorf("approximate=%q is not supported (none or tanh)", approximate)
}

// buildTfcGelu implements tfc.Gelu(X) and tfc.BiasGelu(X, Bias) =
// Gelu(X + Bias).
func buildTfcGelu(n *ir.Node, _ *compiler) (kernel, error) {
	f, err := gelu(n.AttrString("approximate", "none"))
	if err != nil {
		return nil, err
	}
	tanhForm := n.AttrString("approximate", "none") == "tanh"
	withBias := n.Op == "BiasGelu"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		need := 1
		if withBias {
			need = 2
		}
		if err := needInputs(in, need); err != nil {
			return nil, err
		}
		if fastKernels {
			var bias *Tensor
			if withBias {
				bias = in[1]
			}
			if y, ok := biasGeluF32(r, in[0], bias, tanhForm); ok {
				return []*Tensor{y}, nil
			}
		}
		x := in[0]
		shape := x.Shape
		xv, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("X must be numeric")
		}
		if withBias {
			if shape, err = broadcastShapes(x.Shape, in[1].Shape); err != nil {
				return nil, fmt.Errorf("X %v and Bias %v: %w", x.Shape, in[1].Shape, err)
			}
			bv, ok := in[1].Float64s()
			if !ok {
				return nil, fmt.Errorf("Bias must be numeric")
			}
			ix, ib := broadcastIndex(x.Shape, shape), broadcastIndex(in[1].Shape, shape)
			sum := make([]float64, shapeSize(shape))
			for e := range sum {
				sum[e] = xv[ix[e]] + bv[ib[e]]
			}
			xv = sum
		}
		r.parallelFor(len(xv), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				xv[i] = f(xv[i])
			}
		})
		out, err := convertData(r, &Tensor{DType: ir.Double, Shape: shape, Data: xv}, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
