package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// gsReflect reflects x by the nearer border until it lies in [lo, hi].
func gsReflect(x, lo, hi float64) float64 {
	rng := hi - lo
	switch {
	case x < lo:
		dx := lo - x
		n := int(dx / rng)
		r := dx - float64(n)*rng
		if n%2 == 0 {
			return lo + r
		}
		return hi - r
	case x > hi:
		dx := x - hi
		n := int(dx / rng)
		r := dx - float64(n)*rng
		if n%2 == 0 {
			return hi - r
		}
		return lo + r
	}
	return x
}

func cubicKeys(x float64) [4]float64 {
	const a = -0.75
	x = math.Abs(x)
	return [4]float64{
		((a*(x+1)-5*a)*(x+1)+8*a)*(x+1) - 4*a,
		((a+2)*x-(a+3))*x*x + 1,
		((a+2)*(1-x)-(a+3))*(1-x)*(1-x) + 1,
		((a*(2-x)-5*a)*(2-x)+8*a)*(2-x) - 4*a,
	}
}

// buildGridSample samples X [N, C, spatial...] at the normalized
// coordinates of grid [N, out spatial..., rank] (last axis x, y[, z]),
// with nearest, linear or cubic interpolation and zeros, border or
// reflection padding, following the ONNX reference.
func buildGridSample(n *ir.Node, _ *compiler) (kernel, error) {
	mode := n.AttrString("mode", "linear")
	switch mode {
	case "bilinear":
		mode = "linear"
	case "bicubic":
		mode = "cubic"
	}
	if mode != "nearest" && mode != "linear" && mode != "cubic" {
		return nil, fmt.Errorf("mode %q is not supported", mode)
	}
	padding := n.AttrString("padding_mode", "zeros")
	if padding != "zeros" && padding != "border" && padding != "reflection" {
		return nil, fmt.Errorf("padding_mode %q is not supported", padding)
	}
	align := n.AttrInt("align_corners", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		x, grid := in[0], in[1]
		k := len(x.Shape) - 2
		if k < 1 || len(grid.Shape) != k+2 || grid.Shape[0] != x.Shape[0] || grid.Shape[k+1] != k {
			return nil, fmt.Errorf("X %v and grid %v do not fit (grid must be [N, out..., %d])", x.Shape, grid.Shape, k)
		}
		N, C := x.Shape[0], x.Shape[1]
		dims := x.Shape[2:]
		osz := grid.Shape[1 : k+1]
		xv, _ := x.Float64s()
		gv, _ := grid.Float64s()
		lo, hi := make([]float64, k), make([]float64, k)
		for i, d := range dims {
			lo[i], hi[i] = -0.5, float64(d)-0.5
			if align {
				lo[i], hi[i] = 0, float64(d-1)
			}
		}
		inPlane, outPlane := shapeSize(dims), shapeSize(osz)
		ist := strides(dims)
		// pixel returns the padded input value at integer coordinates.
		pixel := func(plane []float64, idx []int) float64 {
			off := 0
			for i, p := range idx {
				d := dims[i]
				switch padding {
				case "zeros":
					if p < 0 || p >= d {
						return 0
					}
				case "border":
					p = min(max(p, 0), d-1)
				default:
					p = int(gsReflect(float64(p), lo[i], hi[i]))
				}
				off += p * ist[i]
			}
			return plane[off]
		}
		taps := 2
		if mode == "cubic" {
			taps = 4
		}
		res := make([]float64, N*C*outPlane)
		coord := make([]float64, k)
		base := make([]int, k)
		weights := make([][]float64, k)
		idx := make([]int, k)
		tapShape := make([]int, k)
		for i := range tapShape {
			tapShape[i] = taps
		}
		for nn := 0; nn < N; nn++ {
			for o := 0; o < outPlane; o++ {
				g := gv[(nn*outPlane+o)*k:][:k]
				for i := 0; i < k; i++ {
					v := float32(g[k-1-i]) // grid holds (x, y, z): reversed to axis order
					d := float32(dims[i])
					var c float32
					if align {
						c = (v + 1) / 2 * (d - 1)
					} else {
						c = ((v+1)*d - 1) / 2
					}
					cf := float64(c)
					if mode == "nearest" {
						cf = math.RoundToEven(cf)
					}
					if cf < lo[i] || cf > hi[i] {
						switch padding {
						case "border":
							cf = math.Min(math.Max(cf, 0), float64(dims[i]-1))
						case "reflection":
							cf = gsReflect(cf, lo[i], hi[i])
						}
					}
					coord[i] = cf
				}
				for c := 0; c < C; c++ {
					plane := xv[(nn*C+c)*inPlane:][:inPlane]
					dst := &res[(nn*C+c)*outPlane+o]
					if mode == "nearest" {
						for i, cf := range coord {
							idx[i] = int(cf)
						}
						*dst = pixel(plane, idx)
						continue
					}
					for i, cf := range coord {
						f := math.Floor(cf)
						base[i] = int(f)
						if mode == "linear" {
							weights[i] = []float64{1 - (cf - f), cf - f}
						} else {
							w := cubicKeys(cf - f)
							weights[i] = w[:]
							base[i]--
						}
					}
					s := 0.0
					forEachIndex(tapShape, func(_ int, t []int) {
						w := 1.0
						for i, ti := range t {
							w *= weights[i][ti]
							idx[i] = base[i] + ti
						}
						s += w * pixel(plane, idx)
					})
					*dst = s
				}
			}
		}
		out, err := f64Result(r, res, append([]int{N, C}, slices.Clone(osz)...), x.DType)
		if err != nil {
			return nil, err
		}
		return []*Tensor{out}, nil
	}, nil
}
