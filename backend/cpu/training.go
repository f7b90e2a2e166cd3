package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// buildOptimizer covers the ai.onnx.preview.training optimizers Adagrad,
// Momentum and Adam: inputs R (learning rate), T (step), then groups of
// per-tensor operands (X..., G..., and the optimizer's state tensors);
// outputs the new X... and the new state tensors. Computed in float64.
func buildOptimizer(n *ir.Node, _ *compiler) (kernel, error) {
	op := n.Op
	states := map[string]int{"Adagrad": 1, "Momentum": 1, "Adam": 2}[op] // per-tensor state inputs
	norm := float64(n.AttrFloat("norm_coefficient", 0))
	decay := float64(n.AttrFloat("decay_factor", 0))
	eps := float64(n.AttrFloat("epsilon", map[string]float32{"Adagrad": 0, "Adam": 1e-6}[op]))
	alpha := float64(n.AttrFloat("alpha", map[string]float32{"Momentum": 0, "Adam": 0.9}[op]))
	beta := float64(n.AttrFloat("beta", map[string]float32{"Momentum": 0, "Adam": 0.999}[op]))
	normPost := float64(n.AttrFloat("norm_coefficient_post", 0))
	nesterov := n.AttrString("mode", "standard") == "nesterov"
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		groups := 2 + states
		if len(in) < 2+groups || (len(in)-2)%groups != 0 {
			return nil, fmt.Errorf("%s needs R, T and %d tensors per optimized tensor, got %d inputs", op, groups, len(in))
		}
		if err := needInputs(in, len(in)); err != nil {
			return nil, err
		}
		R, err := scalarFloat(in[0])
		if err != nil {
			return nil, fmt.Errorf("R: %w", err)
		}
		T, err := scalarFloat(in[1])
		if err != nil {
			return nil, fmt.Errorf("T: %w", err)
		}
		nt := (len(in) - 2) / groups
		outs := make([]*Tensor, nt*(1+states))
		for i := 0; i < nt; i++ {
			x := in[2+i]
			ops := []*Tensor{x}
			for g := 1; g < groups; g++ {
				t := in[2+g*nt+i]
				if !sameShape(t.Shape, x.Shape) {
					return nil, fmt.Errorf("operand %d has shape %v, X has %v", 2+g*nt+i, t.Shape, x.Shape)
				}
				ops = append(ops, t)
			}
			vals := make([][]float64, len(ops))
			for k, t := range ops {
				vals[k], _ = t.Float64s()
			}
			xv, gv := vals[0], vals[1]
			newX := make([]float64, len(xv))
			s1 := make([]float64, len(xv))
			var s2 []float64
			if states == 2 {
				s2 = make([]float64, len(xv))
			}
			for e := range xv {
				gr := norm*xv[e] + gv[e]
				switch op {
				case "Adagrad":
					rr := R / (1 + T*decay)
					h := vals[2][e] + gr*gr
					newX[e] = xv[e] - rr*gr/(math.Sqrt(h)+eps)
					s1[e] = h
				case "Momentum":
					b := beta
					if T <= 0 {
						b = 1
					}
					v := alpha*vals[2][e] + b*gr
					if nesterov {
						newX[e] = xv[e] - R*(gr+alpha*v)
					} else {
						newX[e] = xv[e] - R*v
					}
					s1[e] = v
				case "Adam":
					v := alpha*vals[2][e] + (1-alpha)*gr
					h := beta*vals[3][e] + (1-beta)*gr*gr
					ra := R
					if T > 0 {
						ra = R * math.Sqrt(1-math.Pow(beta, T)) / (1 - math.Pow(alpha, T))
					}
					newX[e] = (1 - normPost) * (xv[e] - ra*(v/(math.Sqrt(h)+eps)))
					s1[e], s2[e] = v, h
				}
			}
			res := [][]float64{newX, s1, s2}
			for k := 0; k <= states; k++ {
				dt := x.DType // new X; state k lives in operand k+1 (after G)
				if k > 0 {
					dt = ops[k+1].DType
				}
				t, err := f64Result(r, res[k], slices.Clone(x.Shape), dt)
				if err != nil {
					return nil, err
				}
				outs[k*nt+i] = t
			}
		}
		return outs, nil
	}, nil
}
