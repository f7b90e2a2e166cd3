package cpu

import (
	"fmt"
	"sort"

	"github.com/tfc-compiler/tfc/ir"
)

// nmsSuppresses reports whether two boxes overlap by more than the IoU
// threshold (corner boxes [y1, x1, y2, x2], or centre boxes
// [xc, yc, w, h] with center_point_box=1).
func nmsSuppresses(b1, b2 []float64, center bool, iouThreshold float64) bool {
	minMax := func(a, b float64) (float64, float64) {
		if a >= b {
			return b, a
		}
		return a, b
	}
	var x1min, x1max, x2min, x2max, y1min, y1max, y2min, y2max float64
	if center {
		x1min, x1max = b1[0]-b1[2]/2, b1[0]+b1[2]/2
		x2min, x2max = b2[0]-b2[2]/2, b2[0]+b2[2]/2
		y1min, y1max = b1[1]-b1[3]/2, b1[1]+b1[3]/2
		y2min, y2max = b2[1]-b2[3]/2, b2[1]+b2[3]/2
	} else {
		x1min, x1max = minMax(b1[1], b1[3])
		x2min, x2max = minMax(b2[1], b2[3])
		y1min, y1max = minMax(b1[0], b1[2])
		y2min, y2max = minMax(b2[0], b2[2])
	}
	ixmin, ixmax := max(x1min, x2min), min(x1max, x2max)
	iymin, iymax := max(y1min, y2min), min(y1max, y2max)
	if ixmax <= ixmin || iymax <= iymin {
		return false
	}
	inter := (ixmax - ixmin) * (iymax - iymin)
	a1 := (x1max - x1min) * (y1max - y1min)
	a2 := (x2max - x2min) * (y2max - y2min)
	union := a1 + a2 - inter
	if inter <= 0 || a1 <= 0 || a2 <= 0 || union <= 0 {
		return false
	}
	return inter/union > iouThreshold
}

// buildNMS implements NonMaxSuppression: per batch and class, boxes above
// the score threshold in decreasing score order (ties: lower index
// first), each kept unless it overlaps a kept one; output rows
// [batch, class, box].
func buildNMS(n *ir.Node, _ *compiler) (kernel, error) {
	center := n.AttrInt("center_point_box", 0) != 0
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		boxes, scores := in[0], in[1]
		if len(boxes.Shape) != 3 || boxes.Shape[2] != 4 || len(scores.Shape) != 3 ||
			scores.Shape[0] != boxes.Shape[0] || scores.Shape[2] != boxes.Shape[1] {
			return nil, fmt.Errorf("boxes %v and scores %v must be [B, N, 4] and [B, C, N]", boxes.Shape, scores.Shape)
		}
		maxOut := int64(0)
		if t := inputN(in, 2); t != nil && t.NumElements() > 0 {
			v, err := intValues(t)
			if err != nil {
				return nil, fmt.Errorf("max_output_boxes_per_class: %w", err)
			}
			maxOut = max(v[0], 0)
		}
		iou, scoreThr, hasScoreThr := 0.0, 0.0, false
		if t := inputN(in, 3); t != nil && t.NumElements() > 0 {
			v, _ := t.Float64s()
			iou = v[0]
		}
		if t := inputN(in, 4); t != nil && t.NumElements() > 0 {
			v, _ := t.Float64s()
			scoreThr, hasScoreThr = v[0], true
		}
		bv, _ := boxes.Float64s()
		sv, _ := scores.Float64s()
		B, N, C := boxes.Shape[0], boxes.Shape[1], scores.Shape[1]
		var rows []int64
		for b := 0; b < B; b++ {
			box := func(i int) []float64 { return bv[(b*N+i)*4:][:4] }
			for c := 0; c < C; c++ {
				cs := sv[(b*C+c)*N:][:N]
				var cand []int
				for i := 0; i < N; i++ {
					if !hasScoreThr || cs[i] > scoreThr {
						cand = append(cand, i)
					}
				}
				sort.SliceStable(cand, func(x, y int) bool { return cs[cand[x]] > cs[cand[y]] })
				var kept []int
				for _, i := range cand {
					if int64(len(kept)) >= maxOut {
						break
					}
					ok := true
					for _, j := range kept {
						if nmsSuppresses(box(i), box(j), center, iou) {
							ok = false
							break
						}
					}
					if ok {
						kept = append(kept, i)
						rows = append(rows, int64(b), int64(c), int64(i))
					}
				}
			}
		}
		out := r.mustAlloc(ir.Int64, []int{len(rows) / 3, 3})
		copy(out.Data.([]int64), rows)
		return []*Tensor{out}, nil
	}, nil
}
