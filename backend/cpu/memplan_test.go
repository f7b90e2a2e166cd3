package cpu

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// planIntervals recomputes, independently of planMemory, the liveness of
// every value the plan placed: [defining step, last step reading any value
// of its slot's alias group]. Alias groups are taken from the plan's
// view flags (opDef.view) by walking producers.
func planIntervals(g *ir.Graph) (def map[*ir.Value]int, root map[*ir.Value]*ir.Value, end map[*ir.Value]int) {
	def, root, end = map[*ir.Value]int{}, map[*ir.Value]*ir.Value{}, map[*ir.Value]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != nil {
				def[o] = i
			}
		}
	}
	var rootOf func(v *ir.Value) *ir.Value
	rootOf = func(v *ir.Value) *ir.Value {
		if p, _ := v.Producer(); p != nil {
			if in := viewInput(p); in != nil {
				return rootOf(in)
			}
		}
		return v
	}
	for v := range def {
		root[v] = rootOf(v)
	}
	for v, i := range def {
		r := root[v]
		end[r] = max(end[r], i)
	}
	for i, n := range g.Nodes {
		for _, v := range nodeReads(n) {
			if r, ok := root[v]; ok {
				end[r] = max(end[r], i)
			}
		}
	}
	return def, root, end
}

// checkNoOverlap fails when two values of different alias groups whose
// lifetimes overlap share a slot, or when a graph output is planned.
func checkNoOverlap(t *testing.T, name string, p *plan) {
	t.Helper()
	def, root, end := planIntervals(p.g)
	type member struct {
		v    *ir.Value
		root *ir.Value
	}
	bySlot := map[int][]member{}
	for v, s := range p.mem.slotOf {
		bySlot[s] = append(bySlot[s], member{v, root[v]})
	}
	for _, v := range p.g.Outputs {
		if _, ok := p.mem.slotOf[v]; ok {
			t.Errorf("%s: graph output %q is planned into a slot", name, v.Name)
		}
	}
	for s, ms := range bySlot {
		for i := range ms {
			for j := range ms {
				a, b := ms[i].root, ms[j].root
				if a == b {
					continue
				}
				// a's group lives [def[a], end[a]]; it must not overlap b's.
				if def[a] <= end[b] && def[b] <= end[a] {
					t.Fatalf("%s: slot %d holds %q [%d,%d] and %q [%d,%d], whose lifetimes overlap",
						name, s, a.Name, def[a], end[a], b.Name, def[b], end[b])
				}
			}
		}
	}
}

func compileForTest(t *testing.T, m *ir.Model) *Executable {
	t.Helper()
	if _, err := ir.InferShapes(m); err != nil {
		t.Fatal(err)
	}
	exe, err := Compile(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestPlanChainUsesTwoSlots: in a chain of same-sized ops each value is
// read only by the next, so two slots serve every intermediate.
func TestPlanChainUsesTwoSlots(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Sym("seq"), ir.Known(16)))
	h := x
	for i := 0; i < 7; i++ {
		h = b.Op("Tanh", h)
	}
	b.Output(h)
	exe := compileForTest(t, b.Model())
	checkNoOverlap(t, "chain", exe.plan)
	if got := len(exe.plan.mem.slots); got != 2 {
		t.Fatalf("chain of 6 intermediates uses %d slots, want 2\n%s", got, exe.MemoryPlan())
	}
	// Planned peak: two buffers of batch×seq×16 float32.
	for _, sz := range [][2]int64{{2, 3}, {8, 128}} {
		got, err := exe.PlannedPeakBytes(map[string]int64{"batch": sz[0], "seq": sz[1]})
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 * sz[0] * sz[1] * 16 * 4; got != want {
			t.Errorf("batch %d seq %d: planned peak %d, want %d", sz[0], sz[1], got, want)
		}
	}
	if _, err := exe.PlannedPeakBytes(map[string]int64{"batch": 2}); err == nil || !strings.Contains(err.Error(), `"seq"`) {
		t.Errorf("unbound seq: error %v should name the symbol", err)
	}
	if got := exe.MemoryPlan().PeakBytesExpr(); got != "64*batch*seq + 64*batch*seq" {
		t.Errorf("peak expression %q", got)
	}
}

// TestPlanOverlapAndAlias: values alive at the same time get different
// slots, and a Reshape's output keeps its input's slot alive until the
// reshape's last reader.
func TestPlanOverlapAndAlias(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("n"), ir.Known(4)))
	a := b.Op("Exp", x)                                                      // step 0
	r := b.Op("Reshape", a, b.Const("s", ir.Int64Tensor([]int64{2}, -1, 2))) // step 1: a's last direct use
	c := b.Op("Tanh", x)                                                     // step 2
	d := b.Op("Exp", c)                                                      // step 3
	f := b.Op("Flatten", d, ir.IntAttr("axis", 1))                           // step 4
	e := b.Op("Add", b.Op("Reshape", r, b.Const("s2", ir.Int64Tensor([]int64{2}, -1, 4))), f)
	b.Output(e)
	exe := compileForTest(t, b.Model())
	p := exe.plan
	checkNoOverlap(t, "alias", p)
	slot := func(v *ir.Value) int {
		s, ok := p.mem.slotOf[v]
		if !ok {
			t.Fatalf("%q is not planned\n%s", v.Name, exe.MemoryPlan())
		}
		return s
	}
	if slot(a) != slot(r) {
		t.Errorf("Reshape output %q is not in its input's slot", r.Name)
	}
	if slot(c) == slot(a) || slot(d) == slot(a) || slot(d) == slot(c) {
		t.Errorf("values alive together share a slot:\n%s", exe.MemoryPlan())
	}
	if slot(f) != slot(d) {
		t.Errorf("Flatten output is not in its input's slot")
	}
	xs := []float32{0.1, -0.2, 0.3, 0.4, 1, 2, -1, 0.5}
	outs, err := exe.Run(context.Background(), map[string]*Tensor{"x": Float32Tensor([]int{2, 4}, xs)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := outs[e.Name].Float64s()
	for i, v := range xs {
		want := math.Exp(float64(v)) + math.Exp(math.Tanh(float64(v)))
		if math.Abs(got[i]-want) > 1e-5*math.Abs(want) {
			t.Fatalf("element %d = %g, want %g", i, got[i], want)
		}
	}
	if st := exe.Stats(); st.CopiedOutputs != 0 || st.DynamicOutputs != 0 {
		t.Errorf("stats %+v: want every planned value in its slot and no copies", st)
	}
}

// TestSafetyNetCopiesUnknownViews: with Reshape missing from the alias
// table its view lands in another value's slot; the run must still be
// right, with the copy counted.
func TestSafetyNetCopiesUnknownViews(t *testing.T) {
	def := lookupOp("", "Reshape")
	def.view = false
	defer func() { def.view = true }()
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("n")))
	a := b.Op("Exp", x)
	r := b.Op("Reshape", a, b.Const("s", ir.Int64Tensor([]int64{2}, -1, 1)))
	h := b.Op("Tanh", b.Op("Tanh", x)) // reuses a's slot once a is dead
	y := b.Op("Add", r, b.Op("Reshape", h, b.Const("s2", ir.Int64Tensor([]int64{2}, -1, 1))))
	b.Output(y)
	exe := compileForTest(t, b.Model())
	xs := []float32{0.5, -1, 2}
	outs, err := exe.Run(context.Background(), map[string]*Tensor{"x": Float32Tensor([]int{3}, xs)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := outs[y.Name].Float64s()
	for i, v := range xs {
		want := math.Exp(float64(v)) + math.Tanh(math.Tanh(float64(v)))
		if math.Abs(got[i]-want) > 1e-5*math.Abs(want) {
			t.Fatalf("element %d = %g, want %g (a view was overwritten)", i, got[i], want)
		}
	}
	if st := exe.Stats(); st.CopiedOutputs == 0 {
		t.Errorf("stats %+v: the unknown views should have been copied", st)
	}
}

func TestEvalSym(t *testing.T) {
	dims := map[string]int64{"batch": 3, "seq": 700, "past": 5}
	for expr, want := range map[string]int64{
		"batch":              3,
		"batch*seq":          3 * 700,
		"12*seq":             12 * 700,
		"batch+1":            4,
		"past+seq":           705,
		"seq-1":              699,
		"2*(batch+1)":        8,
		"min(seq,512)":       512,
		"min(batch,512)":     3,
		"max(seq,past+1)*2":  1400,
		"batch*min(seq,512)": 3 * 512,
	} {
		got, err := evalSym(expr, dims)
		if err != nil || got != want {
			t.Errorf("evalSym(%q) = %d, %v; want %d", expr, got, err, want)
		}
	}
	for expr, name := range map[string]string{"tokens": `"tokens"`, "batch*heads": `"heads"`, "?x[0]": `"?x[0]"`} {
		if _, err := evalSym(expr, dims); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("evalSym(%q): error %v should name %s", expr, err, name)
		}
	}
	// A symbol given whole wins over its parts.
	if got, _ := evalSym("batch*seq", map[string]int64{"batch*seq": 7}); got != 7 {
		t.Errorf("bound expression: got %d, want 7", got)
	}
}

// TestPlanCorpusIntervals compiles every corpus model (as decoded) and
// checks that no slot holds two values alive at once.
func TestPlanCorpusIntervals(t *testing.T) {
	checked := 0
	for _, dir := range CorpusModelDirs(t) {
		name, path := filepath.Base(dir), filepath.Join(dir, "model.onnx")
		m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		exe, err := Compile(m, Options{})
		if err == nil {
			checkNoOverlap(t, name, exe.plan)
			checked++
		}
		m.Close()
	}
	if checked == 0 {
		t.Errorf("no corpus model compiled")
	}
}

// TestUnknownDimsShared: a dimension the graph leaves unknown (as after
// padding removal) is one run-time symbol through elementwise ops, MatMul
// and Reshape, but not through a Gather, whose row count is another; the
// plan evaluated with the symbols a Run bound equals what it placed.
func TestUnknownDimsShared(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.UnknownDim(), ir.Known(8)))
	idx := b.Input("idx", ir.TensorOf(ir.Int64, ir.UnknownDim()))
	w := b.Const("w", ir.Float32Tensor([]int64{8, 16}, make([]float32, 128)...))
	h := b.Op("MatMul", b.Op("Tanh", x), w)                                                    // [?x,16]
	h = b.Op("Add", h, b.Const("bias", ir.Float32Tensor([]int64{16}, make([]float32, 16)...))) // [?x,16]
	r := b.Op("Reshape", h, b.Const("s", ir.Int64Tensor([]int64{3}, -1, 4, 4)))                // [?x,4,4]
	e := b.Op("Exp", r)
	gth := b.Op("Gather", e, idx) // [?idx,4,4]
	b.Output(b.Op("Sigmoid", gth))
	exe := compileForTest(t, b.Model())
	unk := shareUnknownDims(exe.plan.g)
	want := "?x[0]"
	for _, v := range []*ir.Value{h, r, e} {
		got, _ := elemCount(v, unk)
		if len(got.factors) != 1 || got.factors[0] != want {
			t.Errorf("%s: size %v, want a multiple of %s", v.Name, got, want)
		}
	}
	if got, _ := elemCount(gth, unk); len(got.factors) != 1 || got.factors[0] == want {
		t.Errorf("Gather output %v should have its own run-time symbol", got)
	}
	xs := make([]float32, 5*8)
	for i := range xs {
		xs[i] = float32(i%7) / 7
	}
	if _, err := exe.Run(context.Background(), map[string]*Tensor{
		"x": Float32Tensor([]int{5, 8}, xs), "idx": Int64Tensor([]int{3}, []int64{4, 0, 2}),
	}); err != nil {
		t.Fatal(err)
	}
	st := exe.Stats()
	if st.Symbols[want] != 5 {
		t.Fatalf("symbols %v: %s should be bound to 5", st.Symbols, want)
	}
	planned, err := exe.PlannedPeakBytes(st.Symbols)
	if err != nil || planned != st.PlannedBytes || st.DynamicOutputs != 0 {
		t.Fatalf("planned %d (%v), placed %d, stats %+v", planned, err, st.PlannedBytes, st)
	}
}

// TestColourNeverSharesLiveSpans: on random spans, both greedy orders
// (and the plan colourSlots keeps) give overlapping spans different slots
// and use every slot they count.
func TestColourNeverSharesLiveSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	syms := []string{"batch", "seq", "?x[0]"}
	colourings := map[string]func([]span) ([]int, int, float64){
		"by start": colourByStart, "by size": colourBySize,
		"kept": func(s []span) ([]int, int, float64) { a, n := colourSlots(s); return a, n, 0 },
	}
	for trial := 0; trial < 300; trial++ {
		spans := make([]span, 1+rng.IntN(40))
		for i := range spans {
			start := rng.IntN(30)
			need := sizeTerm{coeff: int64(1 + rng.IntN(6))}
			for k := rng.IntN(3); k > 0; k-- {
				need.factors = append(need.factors, syms[rng.IntN(len(syms))])
			}
			slices.Sort(need.factors)
			spans[i] = span{start: start, end: start + rng.IntN(8), need: need, id: i}
		}
		for name, colour := range colourings {
			assign, nslots, _ := colour(spans)
			used := make([]bool, nslots)
			for i, a := range spans {
				used[assign[i]] = true
				for j, b := range spans[:i] {
					if assign[i] == assign[j] && a.start <= b.end && b.start <= a.end {
						t.Fatalf("trial %d, %s: spans %+v and %+v overlap in slot %d", trial, name, a, b, assign[i])
					}
				}
			}
			if !slices.Contains(used, true) || slices.Contains(used, false) {
				t.Fatalf("trial %d, %s: %d slots counted, used %v", trial, name, nslots, used)
			}
		}
	}
}
