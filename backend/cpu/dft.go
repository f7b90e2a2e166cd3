package cpu

import (
	"fmt"
	"math"
	"math/cmplx"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// dftRow is the reference discrete Fourier transform of x, zero-padded or
// truncated to n points; inverse divides by n. It returns all n bins.
func dftRow(x []complex128, n int, inverse bool) []complex128 {
	sign := -1.0
	if inverse {
		sign = 1
	}
	out := make([]complex128, n)
	for k := 0; k < n; k++ {
		var s complex128
		for j := 0; j < min(n, len(x)); j++ {
			s += x[j] * cmplx.Exp(complex(0, sign*2*math.Pi*float64(k*j%n)/float64(n)))
		}
		if inverse {
			s /= complex(float64(n), 0)
		}
		out[k] = s
	}
	return out
}

// buildDFT implements DFT (opset 17: axis attribute; opset 20: axis
// input): x [..., 1 or 2] holds real or (real, imaginary) signals;
// onesided keeps n/2+1 bins (forward) or reconstructs a real signal from
// them (inverse).
func buildDFT(n *ir.Node, c *compiler) (kernel, error) {
	inverse := n.AttrInt("inverse", 0) != 0
	onesided := n.AttrInt("onesided", 0) != 0
	legacy := c.opset(n) < 20
	axisAttr := n.AttrInt("axis", 1)
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		rank := len(x.Shape)
		if rank < 2 || (x.Shape[rank-1] != 1 && x.Shape[rank-1] != 2) {
			return nil, fmt.Errorf("input must end in a dimension of 1 or 2, has shape %v", x.Shape)
		}
		axis := axisAttr
		if !legacy {
			axis = -2
			if t := inputN(in, 2); t != nil {
				v, err := intValues(t)
				if err != nil || len(v) != 1 {
					return nil, fmt.Errorf("axis must be one integer")
				}
				axis = v[0]
			}
		}
		ax, err := normAxis(axis, rank)
		if err != nil || ax == rank-1 {
			return nil, fmt.Errorf("axis %d is not a signal axis of %v", axis, x.Shape)
		}
		inLen := x.Shape[ax]
		length := inLen
		if inverse && onesided {
			length = 2 * (inLen - 1)
		}
		if t := inputN(in, 1); t != nil && t.NumElements() > 0 {
			v, err := intValues(t)
			if err != nil || len(v) != 1 || v[0] < 1 {
				return nil, fmt.Errorf("dft_length must be one positive integer")
			}
			length = int(v[0])
		}
		xv, _ := x.Float64s()
		complexIn := x.Shape[rank-1] == 2
		outer := shapeSize(x.Shape[:ax])
		inner := shapeSize(x.Shape[ax+1 : rank-1])
		outLen, outLast := length, 2
		switch {
		case inverse && onesided:
			outLast = 1
		case onesided:
			outLen = length/2 + 1
		}
		shape := slices.Clone(x.Shape)
		shape[ax], shape[rank-1] = outLen, outLast
		res := make([]float64, shapeSize(shape))
		row := make([]complex128, inLen)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				for j := 0; j < inLen; j++ {
					e := ((o*inLen+j)*inner + i) * x.Shape[rank-1]
					if complexIn {
						row[j] = complex(xv[e], xv[e+1])
					} else {
						row[j] = complex(xv[e], 0)
					}
				}
				var spec []complex128
				if inverse && onesided { // Hermitian extension, then a real inverse
					full := make([]complex128, length)
					for k := 0; k <= length/2 && k < inLen; k++ {
						full[k] = row[k]
						if k > 0 && length-k != k {
							full[length-k] = cmplx.Conj(row[k])
						}
					}
					spec = dftRow(full, length, true)
				} else {
					spec = dftRow(row, length, inverse)
				}
				for k := 0; k < outLen; k++ {
					e := ((o*outLen+k)*inner + i) * outLast
					res[e] = real(spec[k])
					if outLast == 2 {
						res[e+1] = imag(spec[k])
					}
				}
			}
		}
		out, err := f64Result(r, res, shape, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}

// buildSTFT: frames of frame_length every frame_step samples, weighted by
// the window, each transformed (onesided keeps length/2+1 bins).
func buildSTFT(n *ir.Node, _ *compiler) (kernel, error) {
	onesided := n.AttrInt("onesided", 1) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x := in[0]
		if len(x.Shape) != 3 || (x.Shape[2] != 1 && x.Shape[2] != 2) {
			return nil, fmt.Errorf("signal must be [batch, length, 1 or 2], has shape %v", x.Shape)
		}
		stepV, err := intValues(in[1])
		if err != nil || len(stepV) != 1 || stepV[0] < 1 {
			return nil, fmt.Errorf("frame_step must be one positive integer")
		}
		step := int(stepV[0])
		var window []float64
		if t := inputN(in, 2); t != nil {
			window, _ = t.Float64s()
		}
		frameLen := len(window)
		if t := inputN(in, 3); t != nil {
			v, err := intValues(t)
			if err != nil || len(v) != 1 || v[0] < 1 {
				return nil, fmt.Errorf("frame_length must be one positive integer")
			}
			frameLen = int(v[0])
		}
		if frameLen == 0 {
			return nil, fmt.Errorf("one of window and frame_length is required")
		}
		if window == nil {
			window = make([]float64, frameLen)
			for i := range window {
				window[i] = 1
			}
		}
		if len(window) != frameLen {
			return nil, fmt.Errorf("window of %d does not match frame_length %d", len(window), frameLen)
		}
		B, L, C := x.Shape[0], x.Shape[1], x.Shape[2]
		if L < frameLen {
			return nil, fmt.Errorf("signal of %d samples is shorter than a frame of %d", L, frameLen)
		}
		frames := (L-frameLen)/step + 1
		bins := frameLen
		if onesided {
			bins = frameLen/2 + 1
		}
		xv, _ := x.Float64s()
		res := make([]float64, B*frames*bins*2)
		row := make([]complex128, frameLen)
		for b := 0; b < B; b++ {
			for f := 0; f < frames; f++ {
				for j := 0; j < frameLen; j++ {
					e := (b*L + f*step + j) * C
					v := complex(xv[e], 0)
					if C == 2 {
						v = complex(xv[e], xv[e+1])
					}
					row[j] = v * complex(window[j], 0)
				}
				spec := dftRow(row, frameLen, false)
				for k := 0; k < bins; k++ {
					e := ((b*frames+f)*bins + k) * 2
					res[e], res[e+1] = real(spec[k]), imag(spec[k])
				}
			}
		}
		out, err := f64Result(r, res, []int{B, frames, bins, 2}, x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
