package cpu

import (
	"fmt"
	"slices"

	"github.com/tfc-compiler/tfc/ir"
)

// graphAttr returns the GRAPH attribute name of n.
func graphAttr(n *ir.Node, name string) (*ir.Graph, error) {
	a := n.Attr(name)
	if a == nil || a.Type != ir.AttrGraph || a.G == nil {
		return nil, fmt.Errorf("graph attribute %q is missing", name)
	}
	return a.G, nil
}

// buildIf compiles both branches; at run time the chosen branch runs in a
// frame nested in the node's frame, so it reads enclosing values.
func buildIf(n *ir.Node, c *compiler) (kernel, error) {
	thenG, thenP, err := compileSubgraph(n, c, "then_branch")
	if err != nil {
		return nil, err
	}
	elseG, elseP, err := compileSubgraph(n, c, "else_branch")
	if err != nil {
		return nil, err
	}
	if len(thenG.Outputs) != len(n.Outputs) || len(elseG.Outputs) != len(n.Outputs) {
		return nil, fmt.Errorf("branches have %d and %d outputs, the node %d", len(thenG.Outputs), len(elseG.Outputs), len(n.Outputs))
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		cond, ok := in[0].Data.([]bool)
		if !ok || len(cond) != 1 {
			return nil, fmt.Errorf("cond must be one bool, got %v", in[0])
		}
		p, name := elseP, "else_branch"
		if cond[0] {
			p, name = thenP, "then_branch"
		}
		outer := r.curFrame
		outs, err := r.runPlan(p, &frame{vals: map[*ir.Value]*Tensor{}, parent: outer})
		r.curFrame = outer
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return outs, nil
	}, nil
}

// buildLoop runs the body while the trip count and condition allow,
// carrying values and stacking scan outputs along a new first axis.
func buildLoop(n *ir.Node, c *compiler) (kernel, error) {
	body, p, err := compileSubgraph(n, c, "body")
	if err != nil {
		return nil, err
	}
	nCarried := len(n.Inputs) - 2
	if nCarried < 0 || len(body.Inputs) != nCarried+2 || len(body.Outputs) < nCarried+1 {
		return nil, fmt.Errorf("body has %d inputs and %d outputs for %d loop-carried values", len(body.Inputs), len(body.Outputs), nCarried)
	}
	nScan := len(body.Outputs) - 1 - nCarried
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		maxTrip := int64(-1)
		if t := inputN(in, 0); t != nil {
			v, err := intValues(t)
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("M must be one integer")
			}
			maxTrip = v[0]
		}
		cond := true
		if t := inputN(in, 1); t != nil {
			b, ok := t.Data.([]bool)
			if !ok || len(b) != 1 {
				return nil, fmt.Errorf("cond must be one bool")
			}
			cond = b[0]
		}
		carried := slices.Clone(in[2:])
		for i, t := range carried {
			if t == nil {
				return nil, fmt.Errorf("loop-carried input %d is missing", i)
			}
		}
		scans := make([][]*Tensor, nScan)
		outer := r.curFrame
		defer func() { r.curFrame = outer }()
		for it := int64(0); (maxTrip < 0 || it < maxTrip) && cond; it++ {
			if err := r.ctx.Err(); err != nil {
				return nil, err
			}
			fr := &frame{vals: map[*ir.Value]*Tensor{}, parent: outer}
			fr.vals[body.Inputs[0]] = &Tensor{DType: ir.Int64, Data: []int64{it}}
			fr.vals[body.Inputs[1]] = &Tensor{DType: ir.Bool, Data: []bool{cond}}
			for i, t := range carried {
				fr.vals[body.Inputs[2+i]] = t
			}
			outs, err := r.runPlan(p, fr)
			if err != nil {
				return nil, fmt.Errorf("iteration %d: %w", it, err)
			}
			b, ok := outs[0].Data.([]bool)
			if !ok || len(b) != 1 {
				return nil, fmt.Errorf("iteration %d: body condition must be one bool", it)
			}
			cond = b[0]
			copy(carried, outs[1:1+nCarried])
			for i := range scans {
				scans[i] = append(scans[i], outs[1+nCarried+i])
			}
		}
		result := slices.Clone(carried)
		for i, parts := range scans {
			if len(parts) == 0 {
				// No iteration ran: an empty stack of the declared type.
				dt := body.Outputs[1+nCarried+i].Type.Elem
				if dt == ir.Undefined {
					dt = ir.Float
				}
				t, err := r.alloc(dt, []int{0})
				if err != nil {
					return nil, err
				}
				result = append(result, t)
				continue
			}
			stacked := make([]*Tensor, len(parts))
			for j, t := range parts {
				stacked[j] = view(t, append([]int{1}, t.Shape...))
			}
			t, err := concat(r, stacked, 0)
			if err != nil {
				return nil, fmt.Errorf("scan output %d: %w", i, err)
			}
			result = append(result, t)
		}
		return result, nil
	}, nil
}

// sliceAxis returns x with axis fixed at index i (the axis removed).
func sliceAxis(r *runState, x *Tensor, axis, i int) *Tensor {
	shape := append(slices.Clone(x.Shape[:axis]), x.Shape[axis+1:]...)
	inner := shapeSize(x.Shape[axis+1:])
	outer := shapeSize(x.Shape[:axis])
	dim := x.Shape[axis]
	idx := make([]int, 0, outer*inner)
	for o := 0; o < outer; o++ {
		for k := 0; k < inner; k++ {
			idx = append(idx, (o*dim+i)*inner+k)
		}
	}
	return take(r, x, shape, idx)
}

// stackAxis stacks same-shaped tensors along a new axis.
func stackAxis(r *runState, parts []*Tensor, axis int) (*Tensor, error) {
	views := make([]*Tensor, len(parts))
	for i, p := range parts {
		views[i] = view(p, slices.Insert(slices.Clone(p.Shape), axis, 1))
	}
	return concat(r, views, int64(axis))
}

// buildScan runs the body once per position of the scan inputs, carrying
// state and stacking per-iteration scan outputs (opset 9 and later; the
// opset-8 form with a batch axis runs the same loop per batch entry).
func buildScan(n *ir.Node, c *compiler) (kernel, error) {
	body, p, err := compileSubgraph(n, c, "body")
	if err != nil {
		return nil, err
	}
	legacy := c.opset(n) < 9
	m := int(n.AttrInt("num_scan_inputs", 0))
	nIn := len(n.Inputs)
	if legacy {
		nIn-- // sequence_lens
	}
	nState := nIn - m
	if m <= 0 || nState < 0 || len(body.Inputs) != nState+m || len(body.Outputs) < nState {
		return nil, fmt.Errorf("num_scan_inputs %d does not fit %d inputs and a body of %d inputs", m, nIn, len(body.Inputs))
	}
	kOut := len(body.Outputs) - nState
	ints := func(name string, count int) ([]int, error) {
		v, ok := n.AttrInts(name)
		out := make([]int, count)
		if !ok {
			return out, nil
		}
		if len(v) != count {
			return nil, fmt.Errorf("%s has %d values, want %d", name, len(v), count)
		}
		for i, x := range v {
			out[i] = int(x)
		}
		return out, nil
	}
	dirName := "scan_input_directions"
	if legacy {
		dirName = "directions"
	}
	inAxes, err := ints("scan_input_axes", m)
	if err != nil {
		return nil, err
	}
	inDirs, err := ints(dirName, m)
	if err != nil {
		return nil, err
	}
	outAxes, err := ints("scan_output_axes", kOut)
	if err != nil {
		return nil, err
	}
	outDirs, err := ints("scan_output_directions", kOut)
	if err != nil {
		return nil, err
	}
	// run is one scan over unbatched states and scan inputs.
	run := func(r *runState, states, scans []*Tensor) ([]*Tensor, error) {
		L := -1
		axes := make([]int, m)
		for i, s := range scans {
			ax, err := normAxis(int64(inAxes[i]), len(s.Shape))
			if err != nil {
				return nil, fmt.Errorf("scan input %d: %w", i, err)
			}
			axes[i] = ax
			if L >= 0 && s.Shape[ax] != L {
				return nil, fmt.Errorf("scan inputs have different lengths %d and %d", L, s.Shape[ax])
			}
			L = s.Shape[ax]
		}
		collected := make([][]*Tensor, kOut)
		outer := r.curFrame
		defer func() { r.curFrame = outer }()
		for t := 0; t < L; t++ {
			fr := &frame{vals: map[*ir.Value]*Tensor{}, parent: outer}
			for i, s := range states {
				fr.vals[body.Inputs[i]] = s
			}
			for i, s := range scans {
				pos := t
				if inDirs[i] == 1 {
					pos = L - 1 - t
				}
				fr.vals[body.Inputs[nState+i]] = sliceAxis(r, s, axes[i], pos)
			}
			outs, err := r.runPlan(p, fr)
			if err != nil {
				return nil, fmt.Errorf("iteration %d: %w", t, err)
			}
			states = outs[:nState]
			for k := range collected {
				collected[k] = append(collected[k], outs[nState+k])
			}
		}
		result := slices.Clone(states)
		for k, parts := range collected {
			if len(parts) == 0 {
				return nil, fmt.Errorf("scan of length 0 leaves scan output %d without a shape", k)
			}
			if outDirs[k] == 1 {
				parts = slices.Clone(parts)
				slices.Reverse(parts)
			}
			ax, err := normAxis(int64(outAxes[k]), len(parts[0].Shape)+1)
			if err != nil {
				return nil, fmt.Errorf("scan output %d: %w", k, err)
			}
			st, err := stackAxis(r, parts, ax)
			if err != nil {
				return nil, fmt.Errorf("scan output %d: %w", k, err)
			}
			result = append(result, st)
		}
		return result, nil
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if !legacy {
			if err := needInputs(in, nIn); err != nil {
				return nil, err
			}
			return run(r, in[:nState], in[nState:])
		}
		if inputN(in, 0) != nil {
			return nil, fmt.Errorf("sequence_lens is not supported")
		}
		rest := in[1:]
		if err := needInputs(rest, nIn); err != nil {
			return nil, err
		}
		if len(rest[0].Shape) == 0 {
			return nil, fmt.Errorf("opset-8 Scan inputs need a batch axis")
		}
		batch := rest[0].Shape[0]
		perBatch := make([][]*Tensor, nState+kOut)
		for b := 0; b < batch; b++ {
			sub := make([]*Tensor, len(rest))
			for i, t := range rest {
				if len(t.Shape) == 0 || t.Shape[0] != batch {
					return nil, fmt.Errorf("input %d has no batch axis of %d", i+1, batch)
				}
				sub[i] = sliceAxis(r, t, 0, b)
			}
			outs, err := run(r, sub[:nState], sub[nState:])
			if err != nil {
				return nil, fmt.Errorf("batch %d: %w", b, err)
			}
			for i, o := range outs {
				perBatch[i] = append(perBatch[i], o)
			}
		}
		result := make([]*Tensor, len(perBatch))
		for i, parts := range perBatch {
			st, err := stackAxis(r, parts, 0)
			if err != nil {
				return nil, err
			}
			result[i] = st
		}
		return result, nil
	}, nil
}

// buildSequenceMap applies the body to each position of the sequence
// inputs (tensor inputs are passed whole) and collects each output into
// a sequence.
func buildSequenceMap(n *ir.Node, c *compiler) (kernel, error) {
	body, p, err := compileSubgraph(n, c, "body")
	if err != nil {
		return nil, err
	}
	if len(body.Inputs) != len(n.Inputs) || len(body.Outputs) != len(n.Outputs) {
		return nil, fmt.Errorf("body has %d inputs and %d outputs, the node %d and %d", len(body.Inputs), len(body.Outputs), len(n.Inputs), len(n.Outputs))
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, len(in)); err != nil {
			return nil, err
		}
		if !in[0].IsSequence() {
			return nil, fmt.Errorf("input 0 must be a sequence")
		}
		count := len(in[0].Elements())
		for i, t := range in {
			if t.IsSequence() && len(t.Elements()) != count {
				return nil, fmt.Errorf("sequence input %d has %d elements, input 0 has %d", i, len(t.Elements()), count)
			}
		}
		results := make([][]*Tensor, len(body.Outputs))
		outer := r.curFrame
		defer func() { r.curFrame = outer }()
		for j := 0; j < count; j++ {
			fr := &frame{vals: map[*ir.Value]*Tensor{}, parent: outer}
			for i, t := range in {
				if t.IsSequence() {
					fr.vals[body.Inputs[i]] = t.Elements()[j]
				} else {
					fr.vals[body.Inputs[i]] = t
				}
			}
			outs, err := r.runPlan(p, fr)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", j, err)
			}
			for k, o := range outs {
				results[k] = append(results[k], o)
			}
		}
		seqs := make([]*Tensor, len(results))
		for k, elems := range results {
			seqs[k] = NewSequence(elems)
		}
		return seqs, nil
	}, nil
}

// compileSubgraph compiles the graph held by attribute attr of n (a Loop,
// Scan or SequenceMap body, an If branch).
func compileSubgraph(n *ir.Node, c *compiler, attr string) (*ir.Graph, *plan, error) {
	g, err := graphAttr(n, attr)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.compileGraph(g)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", attr, err)
	}
	return g, p, nil
}
