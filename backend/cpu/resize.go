package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// resizeCoeffs returns the interpolation weights of the neighbours of a
// source coordinate whose distance past the left neighbour is ratio
// (in (0, 1]); scale is the axis's scale factor (antialias uses it).
type resizeCoeffs func(ratio, scale float64) []float64

func nearestCoeffs(mode string) resizeCoeffs {
	return func(ratio, _ float64) []float64 {
		if ratio == 1 {
			return []float64{0, 1}
		}
		right := false
		switch mode {
		case "round_prefer_ceil":
			right = ratio >= 0.5
		case "floor":
			right = false
		case "ceil":
			right = true
		default: // round_prefer_floor
			right = ratio > 0.5
		}
		if right {
			return []float64{0, 1}
		}
		return []float64{1, 0}
	}
}

func linearCoeffs(antialias bool) resizeCoeffs {
	if !antialias {
		return func(ratio, _ float64) []float64 { return []float64{1 - ratio, ratio} }
	}
	return func(ratio, scale float64) []float64 {
		scale = math.Min(scale, 1)
		start := int(math.Floor(-1/scale) + 1)
		footprint := 2 - 2*start
		c := make([]float64, footprint)
		sum := 0.0
		for i := range c {
			x := (float64(start+i) - ratio) * scale
			c[i] = math.Max(0, math.Min(1, 1-math.Abs(x)))
			sum += c[i]
		}
		for i := range c {
			c[i] /= sum
		}
		return c
	}
}

func cubicCoeffs(a float64, antialias bool) resizeCoeffs {
	if !antialias {
		return func(r, _ float64) []float64 {
			return []float64{
				((a*(r+1)-5*a)*(r+1)+8*a)*(r+1) - 4*a,
				((a+2)*r-(a+3))*r*r + 1,
				((a+2)*(1-r)-(a+3))*(1-r)*(1-r) + 1,
				((a*((1-r)+1)-5*a)*((1-r)+1)+8*a)*((1-r)+1) - 4*a,
			}
		}
	}
	kernel := func(x float64) float64 {
		x = math.Abs(x)
		switch {
		case x <= 1:
			return (a+2)*x*x*x - (a+3)*x*x + 1
		case x < 2:
			return a*x*x*x - 5*a*x*x + 8*a*x - 4*a
		}
		return 0
	}
	return func(ratio, scale float64) []float64 {
		scale = math.Min(scale, 1)
		start := int(math.Floor(-2/scale) + 1)
		end := 2 - start
		var c []float64
		sum := 0.0
		for i := start; i < end; i++ {
			v := kernel(scale * (float64(i) - ratio))
			c = append(c, v)
			sum += v
		}
		for i := range c {
			c[i] /= sum
		}
		return c
	}
}

// resizeAxis is the reference 1-D resize of data (shape) along axis to
// outW positions, following the ONNX reference's separable algorithm.
func resizeAxis(data []float64, shape []int, axis int, scale float64, outW int, coeffs resizeCoeffs,
	roi []float64, extrap float64, ctm string, exclude bool) ([]float64, []int, error) {
	inW := shape[axis]
	outShape := slices.Clone(shape)
	outShape[axis] = outW
	out := make([]float64, shapeSize(outShape))
	if outW == 0 || len(out) == 0 {
		return out, outShape, nil
	}
	outWf := scale * float64(inW)
	outer, inner := shapeSize(shape[:axis]), shapeSize(shape[axis+1:])
	for y := 0; y < outW; y++ {
		yf := float64(y)
		var x float64
		extrapolated := false
		switch ctm {
		case "align_corners":
			if outWf != 1 {
				x = yf * float64(inW-1) / (outWf - 1)
			}
		case "asymmetric":
			x = yf / scale
		case "tf_crop_and_resize":
			if roi == nil {
				return nil, nil, fmt.Errorf("tf_crop_and_resize needs roi")
			}
			if outWf == 1 {
				x = (roi[1] - roi[0]) * float64(inW-1) / 2
			} else {
				x = yf * (roi[1] - roi[0]) * float64(inW-1) / (outWf - 1)
			}
			x += roi[0] * float64(inW-1)
			extrapolated = x < 0 || x > float64(inW-1)
		case "pytorch_half_pixel":
			if outWf == 1 {
				x = -0.5
			} else {
				x = (yf+0.5)/scale - 0.5
			}
		case "half_pixel":
			x = (yf+0.5)/scale - 0.5
		case "half_pixel_symmetric":
			adjust := float64(outW) / outWf
			center := float64(inW) / 2
			x = center*(1-adjust) + (yf+0.5)/scale - 0.5
		default:
			return nil, nil, fmt.Errorf("coordinate_transformation_mode %q is not supported", ctm)
		}
		xi := math.Floor(x)
		ratio := x - xi
		if x == xi {
			ratio = 1
		}
		c := coeffs(ratio, scale)
		n := len(c)
		pad := (n + 1) / 2
		xp := x + float64(pad)
		pp := math.Floor(xp)
		frac := xp - pp
		var off int
		if n%2 == 0 {
			off = -(n / 2) + 1
			if frac == 0 {
				off = -(n / 2)
			}
		} else {
			off = -((n - 1) / 2)
			if frac > 0.5 {
				off++
			}
		}
		start := int(pp) + off - pad
		if exclude {
			sum := 0.0
			for j := range c {
				if k := start + j; k < 0 || k >= inW {
					c[j] = 0
				}
				sum += c[j]
			}
			if sum == 0 {
				sum = 1
			}
			for j := range c {
				c[j] /= sum
			}
		}
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				dst := (o*outW+y)*inner + i
				if extrapolated {
					out[dst] = extrap
					continue
				}
				s := 0.0
				for j, w := range c {
					k := min(max(start+j, 0), inW-1)
					s += w * data[(o*inW+k)*inner+i]
				}
				out[dst] = s
			}
		}
	}
	return out, outShape, nil
}

// buildResize implements Resize (opsets 10 to 19) and Upsample: nearest,
// linear and cubic modes, every coordinate transformation, antialias,
// axes, keep_aspect_ratio_policy and exclude_outside.
func buildResize(n *ir.Node, c *compiler) (kernel, error) {
	legacy := n.Op == "Upsample" || c.opset(n) < 11
	mode := n.AttrString("mode", "nearest")
	ctm := n.AttrString("coordinate_transformation_mode", "half_pixel")
	nearestMode := n.AttrString("nearest_mode", "round_prefer_floor")
	if legacy {
		ctm, nearestMode = "asymmetric", "floor"
	}
	antialias := n.AttrInt("antialias", 0) != 0
	var coeffs resizeCoeffs
	switch mode {
	case "nearest":
		if antialias {
			return nil, fmt.Errorf("antialias is not defined for mode nearest")
		}
		coeffs = nearestCoeffs(nearestMode)
	case "linear", "bilinear", "trilinear":
		coeffs = linearCoeffs(antialias)
	case "cubic", "bicubic":
		coeffs = cubicCoeffs(float64(n.AttrFloat("cubic_coeff_a", -0.75)), antialias)
	default:
		return nil, fmt.Errorf("mode %q is not supported", mode)
	}
	exclude := n.AttrInt("exclude_outside", 0) != 0
	extrap := float64(n.AttrFloat("extrapolation_value", 0))
	policy := n.AttrString("keep_aspect_ratio_policy", "stretch")
	axesAttr, hasAxes := n.AttrInts("axes")
	attrScales := n.Attr("scales") // Upsample-7
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		rank := len(x.Shape)
		var roiT, scalesT, sizesT *Tensor
		if legacy {
			scalesT = inputN(in, 1)
		} else {
			roiT, scalesT, sizesT = inputN(in, 1), inputN(in, 2), inputN(in, 3)
		}
		present := func(t *Tensor) bool { return t != nil && t.NumElements() > 0 }
		axes := make([]int, 0, rank)
		if hasAxes {
			for _, a := range axesAttr {
				ax, err := normAxis(a, rank)
				if err != nil {
					return nil, err
				}
				axes = append(axes, ax)
			}
		} else {
			for i := 0; i < rank; i++ {
				axes = append(axes, i)
			}
		}
		scales := make([]float64, rank)
		sizes := slices.Clone(x.Shape)
		for i := range scales {
			scales[i] = 1
		}
		switch {
		case present(sizesT):
			sv, err := intValues(sizesT)
			if err != nil || len(sv) != len(axes) {
				return nil, fmt.Errorf("sizes must hold %d integers", len(axes))
			}
			for i, a := range axes {
				sizes[a] = int(sv[i])
				scales[a] = float64(sv[i]) / float64(x.Shape[a])
			}
			if policy != "stretch" {
				s := scales[axes[0]]
				for _, a := range axes {
					if policy == "not_larger" {
						s = math.Min(s, scales[a])
					} else if policy == "not_smaller" {
						s = math.Max(s, scales[a])
					} else {
						return nil, fmt.Errorf("keep_aspect_ratio_policy %q is not supported", policy)
					}
				}
				for _, a := range axes {
					scales[a] = s
					sizes[a] = int(s*float64(x.Shape[a]) + 0.5)
				}
			}
		case present(scalesT) || attrScales != nil:
			var sv []float64
			if present(scalesT) {
				sv, _ = scalesT.Float64s()
			} else {
				for _, f := range attrScales.Floats {
					sv = append(sv, float64(f))
				}
			}
			if len(sv) != len(axes) {
				return nil, fmt.Errorf("scales must hold %d values", len(axes))
			}
			for i, a := range axes {
				if sv[i] <= 0 {
					return nil, fmt.Errorf("scale %g must be positive", sv[i])
				}
				scales[a] = sv[i]
				sizes[a] = int(float32(sv[i]) * float32(x.Shape[a])) // as numpy computes it in float32
			}
		default:
			return nil, fmt.Errorf("one of scales and sizes is required")
		}
		var roi []float64
		if present(roiT) {
			rv, _ := roiT.Float64s()
			if len(rv) != 2*len(axes) {
				return nil, fmt.Errorf("roi must hold %d values", 2*len(axes))
			}
			roi = make([]float64, 2*rank)
			for i := 0; i < rank; i++ {
				roi[rank+i] = 1
			}
			for i, a := range axes {
				roi[a], roi[rank+a] = rv[i], rv[len(axes)+i]
			}
		}
		data, ok := x.Float64s()
		if !ok {
			return nil, fmt.Errorf("X must be numeric")
		}
		shape := slices.Clone(x.Shape)
		for _, a := range axes {
			identityRoi := roi == nil || (roi[a] == 0 && roi[rank+a] == 1)
			if math.Abs(scales[a]-1) < 1e-9 && sizes[a] == shape[a] && identityRoi {
				continue
			}
			var axisRoi []float64
			if roi != nil {
				axisRoi = []float64{roi[a], roi[rank+a]}
			}
			var err error
			data, shape, err = resizeAxis(data, shape, a, scales[a], sizes[a], coeffs, axisRoi, extrap, ctm, exclude)
			if err != nil {
				return nil, err
			}
		}
		out, err := r.alloc(x.DType, shape)
		if err != nil {
			return nil, err
		}
		if intTypes.has(x.DType) { // saturate_cast: round half to even, clip to the type
			rg, ok := quantRange[x.DType]
			iv := make([]int64, len(data))
			for i, v := range data {
				iv[i] = int64(math.RoundToEven(v))
				if ok {
					iv[i] = min(max(iv[i], rg[0]), rg[1])
				}
			}
			storeInts(out, iv)
		} else {
			storeFloats(out, data)
		}
		return []*Tensor{out}, nil
	}, nil
}
