package cpu_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/internal/refdata"
	"github.com/tfc-compiler/tfc/ir"
)

func randTensor(rng *rand.Rand, shape ...int) *cpu.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return cpu.Float32Tensor(shape, v)
}

func floats(t *cpu.Tensor) []float64 {
	v, _ := t.Float64s()
	return v
}

func assertClose(t *testing.T, what string, got []float64, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > atol+rtol*math.Abs(want[i]) || math.IsNaN(got[i]) != math.IsNaN(want[i]) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// refLayerNormSoftmax is the float64 reference for the graph built in
// TestSymbolicShapes: y = Softmax(LayerNorm(x W + b)) over the last axis.
func refLayerNormSoftmax(x, w, bias, gamma []float64, rows, k, n int) []float64 {
	out := make([]float64, rows*n)
	for r := 0; r < rows; r++ {
		h := make([]float64, n)
		for j := 0; j < n; j++ {
			s := bias[j]
			for p := 0; p < k; p++ {
				s += x[r*k+p] * w[p*n+j]
			}
			h[j] = s
		}
		mean, vr := 0.0, 0.0
		for _, v := range h {
			mean += v
		}
		mean /= float64(n)
		for _, v := range h {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(n)
		mx := math.Inf(-1)
		for j := range h {
			h[j] = (h[j] - mean) / math.Sqrt(vr+1e-5) * gamma[j]
			mx = math.Max(mx, h[j])
		}
		sum := 0.0
		for j := range h {
			h[j] = math.Exp(h[j] - mx)
			sum += h[j]
		}
		for j := range h {
			out[r*n+j] = h[j] / sum
		}
	}
	return out
}

// TestSymbolicShapes compiles once and runs with several batch and
// sequence sizes, comparing with the float64 reference.
func TestSymbolicShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const k, n = 8, 7
	w, bias, gamma := randTensor(rng, k, n), randTensor(rng, n), randTensor(rng, n)
	toIR := func(t *cpu.Tensor) *ir.Tensor {
		dims := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = int64(d)
		}
		return ir.Float32Tensor(dims, t.Data.([]float32)...)
	}
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Sym("seq"), ir.Known(k)))
	h := b.Op("MatMul", x, b.Const("w", toIR(w)))
	h = b.Op("Add", h, b.Const("b", toIR(bias)))
	h = b.Op("LayerNormalization", h, b.Const("gamma", toIR(gamma)), ir.IntAttr("axis", -1))
	h = b.Op("Softmax", h, ir.IntAttr("axis", -1))
	b.Output(h)
	exe, err := cpu.Compile(b.Model(), cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, sz := range [][2]int{{1, 1}, {3, 7}, {2, 65}, {1, 64}} {
		in := randTensor(rng, sz[0], sz[1], k)
		outs, err := exe.Run(context.Background(), map[string]*cpu.Tensor{"x": in})
		if err != nil {
			t.Fatalf("batch %d seq %d: %v", sz[0], sz[1], err)
		}
		got := outs[h.Name]
		if got == nil || len(got.Shape) != 3 || got.Shape[0] != sz[0] || got.Shape[1] != sz[1] || got.Shape[2] != n {
			t.Fatalf("batch %d seq %d: output %v", sz[0], sz[1], got)
		}
		want := refLayerNormSoftmax(floats(in), floats(w), floats(bias), floats(gamma), sz[0]*sz[1], k, n)
		assertClose(t, "softmax(layernorm(xW+b))", floats(got), want, 1e-4, 1e-6)
		st := exe.Stats()
		if st.PeakBytes <= 0 || st.PeakBytes > st.AllocatedBytes+st.ArenaBytes {
			t.Fatalf("stats %+v: peak must be positive and at most the allocated bytes (pool and arena)", st)
		}
	}
}

// TestBufferReuseInChain: in a chain of same-sized elementwise ops,
// buffers are reused, so the peak stays below the total: with the memory
// plan two slots serve all eleven intermediates; without it the dynamic
// pool reuses released buffers.
func TestBufferReuseInChain(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("n")))
	h := x
	for i := 0; i < 6; i++ {
		h = b.Op("Tanh", b.Op("Exp", h))
	}
	b.Output(h)
	// reference: repeated tanh(exp(v)) from 0
	v := 0.0
	for i := 0; i < 6; i++ {
		v = math.Tanh(math.Exp(v))
	}
	for _, noPlan := range []bool{false, true} {
		exe, err := cpu.Compile(b.Model(), cpu.Options{Threads: 1, NoMemoryPlan: noPlan})
		if err != nil {
			t.Fatal(err)
		}
		in := cpu.Float32Tensor([]int{1000}, make([]float32, 1000))
		outs, err := exe.Run(context.Background(), map[string]*cpu.Tensor{"x": in})
		if err != nil {
			t.Fatal(err)
		}
		if got := floats(outs[h.Name]); math.Abs(got[999]-v) > 1e-6 {
			t.Fatalf("got %g, want %g", got[999], v)
		}
		st := exe.Stats()
		if st.PeakBytes > 3*4000 {
			t.Fatalf("no plan %v: stats %+v: want a peak of at most three buffers", noPlan, st)
		}
		if noPlan && st.ReusedBuffers == 0 {
			t.Fatalf("stats %+v: want the pool to reuse buffers", st)
		}
		if !noPlan && (st.PlannedBytes != 2*4000 || st.DynamicOutputs != 0 || st.AllocatedBytes != 4000) {
			t.Fatalf("stats %+v: want two planned buffers and one fresh output", st)
		}
	}
}

// refAttention is the float64 reference of ONNX Attention for 4-D inputs
// with GQA, a boolean mask and the causal flag (no past).
func refAttention(q, k, v []float64, mask []bool, B, Hq, Hk, S, L, D int, causal bool) []float64 {
	y := make([]float64, B*Hq*S*D)
	scale := 1 / math.Sqrt(float64(D))
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			kh := h / (Hq / Hk)
			for i := 0; i < S; i++ {
				s := make([]float64, L)
				mx := math.Inf(-1)
				for j := 0; j < L; j++ {
					dot := 0.0
					for d := 0; d < D; d++ {
						dot += q[((b*Hq+h)*S+i)*D+d] * k[((b*Hk+kh)*L+j)*D+d]
					}
					s[j] = dot * scale
					if !mask[i*L+j] || (causal && j > i) {
						s[j] = math.Inf(-1)
					}
					mx = math.Max(mx, s[j])
				}
				sum := 0.0
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					for d := 0; d < D; d++ {
						y[((b*Hq+h)*S+i)*D+d] += s[j] / sum * v[((b*Hk+kh)*L+j)*D+d]
					}
				}
			}
		}
	}
	return y
}

func TestAttentionGQACausalMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const B, Hq, Hk, S, D = 2, 4, 2, 7, 5
	const L = S
	for _, causal := range []bool{false, true} {
		b := ir.NewBuilder(23)
		qv := b.Input("q", ir.TensorOfSizes(ir.Float, B, Hq, S, D))
		kv := b.Input("k", ir.TensorOfSizes(ir.Float, B, Hk, L, D))
		vv := b.Input("v", ir.TensorOfSizes(ir.Float, B, Hk, L, D))
		mv := b.Input("mask", ir.TensorOfSizes(ir.Bool, S, L))
		c := int64(0)
		if causal {
			c = 1
		}
		y := b.Op("Attention", qv, kv, vv, mv, ir.IntAttr("is_causal", c))
		b.Output(y)
		exe, err := cpu.Compile(b.Model(), cpu.Options{Threads: 3})
		if err != nil {
			t.Fatal(err)
		}
		q, k, v := randTensor(rng, B, Hq, S, D), randTensor(rng, B, Hk, L, D), randTensor(rng, B, Hk, L, D)
		mask := make([]bool, S*L)
		for i := range mask {
			mask[i] = rng.IntN(4) != 0 || i%L == 0 // keep key 0 so no row is fully masked
		}
		outs, err := exe.Run(context.Background(), map[string]*cpu.Tensor{
			"q": q, "k": k, "v": v, "mask": {DType: ir.Bool, Shape: []int{S, L}, Data: mask},
		})
		if err != nil {
			t.Fatal(err)
		}
		want := refAttention(floats(q), floats(k), floats(v), mask, B, Hq, Hk, S, L, D, causal)
		assertClose(t, "attention", floats(outs[y.Name]), want, 1e-4, 1e-6)
	}
}

func TestCompileErrorsNameTheNode(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Known(2)))
	y := b.Op("NoSuchOp", x)
	b.Output(y)
	_, err := cpu.Compile(b.Model(), cpu.Options{})
	if err == nil || !strings.Contains(err.Error(), "NoSuchOp_0") || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("error %v should name node NoSuchOp_0 and say it is not supported", err)
	}

	b = ir.NewBuilder(17)
	xi := b.Input("x", ir.TensorOf(ir.Int64, ir.Known(2)))
	b.Output(b.Op("Softmax", xi))
	_, err = cpu.Compile(b.Model(), cpu.Options{})
	if err == nil || !strings.Contains(err.Error(), "Softmax_0") || !strings.Contains(err.Error(), "i64") {
		t.Fatalf("error %v should name node Softmax_0 and the element type", err)
	}
}

func TestRunErrorsNeverPanic(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("n")))
	idx := b.Input("i", ir.TensorOf(ir.Int64, ir.Sym("m")))
	shape := b.Input("s", ir.TensorOf(ir.Int64, ir.Known(2)))
	g := b.Op("Gather", x, idx)
	r := b.Op("Reshape", g, shape)
	b.Output(r)
	exe, err := cpu.Compile(b.Model(), cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]*cpu.Tensor{
		"x": cpu.Float32Tensor([]int{4}, []float32{1, 2, 3, 4}),
		"i": cpu.Int64Tensor([]int{2}, []int64{3, -4}),
		"s": cpu.Int64Tensor([]int{2}, []int64{1, 2}),
	}
	outs, err := exe.Run(context.Background(), ok)
	if err != nil {
		t.Fatal(err)
	}
	if got := floats(outs[r.Name]); len(got) != 2 || got[0] != 4 || got[1] != 1 {
		t.Fatalf("Gather/Reshape = %v, want [4 1]", got)
	}
	cases := []struct {
		name   string
		change func(map[string]*cpu.Tensor)
		want   string
	}{
		{"missing input", func(m map[string]*cpu.Tensor) { delete(m, "x") }, `"x" is missing`},
		{"wrong element type", func(m map[string]*cpu.Tensor) { m["x"] = cpu.Int64Tensor([]int{1}, []int64{1}) }, `"x"`},
		{"data shorter than shape", func(m map[string]*cpu.Tensor) { m["x"] = cpu.Float32Tensor([]int{5}, []float32{1}) }, `"x"`},
		{"nil tensor", func(m map[string]*cpu.Tensor) { m["x"] = nil }, `"x"`},
		{"index out of range", func(m map[string]*cpu.Tensor) { m["i"] = cpu.Int64Tensor([]int{1}, []int64{9}) }, "Gather_0"},
		{"bad reshape", func(m map[string]*cpu.Tensor) { m["s"] = cpu.Int64Tensor([]int{2}, []int64{3, 3}) }, "Reshape_0"},
		{"rank mismatch", func(m map[string]*cpu.Tensor) { m["s"] = cpu.Int64Tensor([]int{3}, []int64{1, 1, 2}) }, `"s"`},
	}
	for _, c := range cases {
		in := map[string]*cpu.Tensor{}
		for k, v := range ok {
			in[k] = v
		}
		c.change(in)
		_, err := exe.Run(context.Background(), in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v should mention %s", c.name, err, c.want)
		}
	}
}

// TestConcurrentRuns: one Executable used from several goroutines.
func TestConcurrentRuns(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("n")))
	y := b.Op("Mul", b.Op("Add", x, x), x)
	b.Output(y)
	exe, err := cpu.Compile(b.Model(), cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 10 + g
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(g + i)
			}
			outs, err := exe.Run(context.Background(), map[string]*cpu.Tensor{"x": cpu.Float32Tensor([]int{n}, v)})
			if err != nil {
				errs <- err.Error()
				return
			}
			for i, got := range floats(outs[y.Name]) {
				if want := 2 * float64(v[i]) * float64(v[i]); got != want {
					errs <- "wrong value"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestHalfStorage: float16 and bfloat16 inputs are computed in float32 and
// stored back in their own type.
func TestHalfStorage(t *testing.T) {
	for _, dt := range []ir.DataType{ir.Float16, ir.BFloat16} {
		b := ir.NewBuilder(17)
		x := b.Input("x", ir.TensorOf(dt, ir.Known(3)))
		y := b.Op("Softmax", b.Op("Add", x, x))
		b.Output(y)
		exe, err := cpu.Compile(b.Model(), cpu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// 0.5, 1, -2 are exact in both formats.
		bits := map[ir.DataType][]uint16{ir.Float16: {0x3800, 0x3c00, 0xc000}, ir.BFloat16: {0x3f00, 0x3f80, 0xc000}}[dt]
		outs, err := exe.Run(context.Background(), map[string]*cpu.Tensor{"x": {DType: dt, Shape: []int{3}, Data: bits}})
		if err != nil {
			t.Fatal(err)
		}
		got := outs[y.Name]
		if got.DType != dt {
			t.Fatalf("%v: output is %v", dt, got.DType)
		}
		e := []float64{math.Exp(1), math.Exp(2), math.Exp(-4)}
		s := e[0] + e[1] + e[2]
		tol := map[ir.DataType]float64{ir.Float16: 1e-3, ir.BFloat16: 8e-3}[dt]
		assertClose(t, dt.String(), floats(got), []float64{e[0] / s, e[1] / s, e[2] / s}, tol, 1e-4)
	}
}

// planTestModel is x[batch,seq,k] -> MatMul w -> Add b -> Tanh -> Reshape
// to [batch*seq, n] -> Exp -> Softmax; every intermediate is planned.
func planTestModel(t *testing.T, w, bias *cpu.Tensor, k, n int) (*ir.Model, *ir.Value) {
	t.Helper()
	toIR := func(t *cpu.Tensor) *ir.Tensor {
		dims := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			dims[i] = int64(d)
		}
		return ir.Float32Tensor(dims, t.Data.([]float32)...)
	}
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Sym("seq"), ir.Known(int64(k))))
	h := b.Op("MatMul", x, b.Const("w", toIR(w)))
	h = b.Op("Tanh", b.Op("Add", h, b.Const("b", toIR(bias))))
	h = b.Op("Reshape", h, b.Const("shape", ir.Int64Tensor([]int64{2}, -1, int64(n))))
	h = b.Op("Softmax", b.Op("Exp", h), ir.IntAttr("axis", -1))
	b.Output(h)
	m := b.Model()
	if _, err := ir.InferShapes(m); err != nil {
		t.Fatal(err)
	}
	return m, h
}

// refPlanTestModel is the float64 reference of planTestModel.
func refPlanTestModel(x, w, bias []float64, rows, k, n int) []float64 {
	out := make([]float64, rows*n)
	for r := 0; r < rows; r++ {
		e := make([]float64, n)
		mx := math.Inf(-1)
		for j := 0; j < n; j++ {
			s := bias[j]
			for p := 0; p < k; p++ {
				s += x[r*k+p] * w[p*n+j]
			}
			e[j] = math.Exp(math.Tanh(s))
			mx = math.Max(mx, e[j])
		}
		sum := 0.0
		for j := range e {
			e[j] = math.Exp(e[j] - mx)
			sum += e[j]
		}
		for j := range e {
			out[r*n+j] = e[j] / sum
		}
	}
	return out
}

// TestPlanReusedAcrossSizes runs one Executable at alternating batch and
// sequence sizes: results equal a fresh Executable's and the float64
// reference, the arena is reused, and outputs of an earlier Run are not
// overwritten by a later one.
func TestPlanReusedAcrossSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const k, n = 8, 5
	w, bias := randTensor(rng, k, n), randTensor(rng, n)
	m, y := planTestModel(t, w, bias, k, n)
	exe, err := cpu.Compile(m, cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(exe.MemoryPlan().Slots) == 0 {
		t.Fatalf("no slots planned")
	}
	type kept struct {
		out  *cpu.Tensor
		copy []float64
	}
	var held []kept
	sizes := [][2]int{{2, 5}, {3, 17}, {2, 5}, {1, 64}, {3, 17}}
	for i, sz := range sizes {
		in := randTensor(rng, sz[0], sz[1], k)
		feeds := map[string]*cpu.Tensor{"x": in}
		outs, err := exe.Run(context.Background(), feeds)
		if err != nil {
			t.Fatal(err)
		}
		st := exe.Stats()
		if st.ArenaReused != (i > 0) || st.CopiedOutputs != 0 || st.DynamicOutputs != 0 || st.PlannedBytes <= 0 {
			t.Fatalf("run %d: stats %+v", i, st)
		}
		planned, err := exe.PlannedPeakBytes(st.Symbols)
		if err != nil || planned != st.PlannedBytes {
			t.Fatalf("run %d: PlannedPeakBytes(%v) = %d, %v; the run placed %d", i, st.Symbols, planned, err, st.PlannedBytes)
		}
		got := outs[y.Name]
		want := refPlanTestModel(floats(in), floats(w), floats(bias), sz[0]*sz[1], k, n)
		assertClose(t, "plan reused", floats(got), want, 1e-4, 1e-6)
		fresh, err := cpu.Compile(m, cpu.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		fo, err := fresh.Run(context.Background(), feeds)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "fresh executable", floats(got), floats(fo[y.Name]), 0, 0)
		held = append(held, kept{got, floats(got)})
	}
	for i, h := range held {
		assertClose(t, fmt.Sprintf("output of run %d after later runs", i), floats(h.out), h.copy, 0, 0)
	}
	exe.ReleaseBuffers()
	if _, err := exe.Run(context.Background(), map[string]*cpu.Tensor{"x": randTensor(rng, 1, 3, k)}); err != nil {
		t.Fatal(err)
	}
	if st := exe.Stats(); st.ArenaReused {
		t.Errorf("after ReleaseBuffers the arena was reused: %+v", st)
	}
}

// TestPlannedPeakBytesAtTwoSizes: one Executable's plan evaluated at two
// sizes; the planned slots hold the MatMul output, its Add, its Tanh and
// the Exp, each batch×seq×n float32, and the plan needs two buffers at a
// time for that chain (the Reshape shares its input's).
func TestPlannedPeakBytesAtTwoSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const k, n = 8, 5
	m, _ := planTestModel(t, randTensor(rng, k, n), randTensor(rng, n), k, n)
	exe, err := cpu.Compile(m, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sz := range [][2]int64{{1, 7}, {8, 128}} {
		got, err := exe.PlannedPeakBytes(map[string]int64{"batch": sz[0], "seq": sz[1]})
		if err != nil {
			t.Fatal(err)
		}
		if want := 2 * sz[0] * sz[1] * n * 4; got != want {
			t.Errorf("batch %d seq %d: planned %d bytes, want %d\n%s", sz[0], sz[1], got, want, exe.MemoryPlan())
		}
	}
	if _, err := exe.PlannedPeakBytes(map[string]int64{"seq": 3}); err == nil || !strings.Contains(err.Error(), `"batch"`) {
		t.Errorf("error %v should name the unbound symbol batch", err)
	}
}

// TestConcurrentPlannedRuns: several goroutines run one Executable with
// different sizes at once (run with -race); each gets its own arena.
func TestConcurrentPlannedRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	const k, n = 8, 5
	w, bias := randTensor(rng, k, n), randTensor(rng, n)
	m, y := planTestModel(t, w, bias, k, n)
	exe, err := cpu.Compile(m, cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	inputs := make([]*cpu.Tensor, 6)
	for g := range inputs {
		inputs[g] = randTensor(rng, 1+g%3, 3+5*g, k)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(inputs))
	for g, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := refPlanTestModel(floats(in), floats(w), floats(bias), in.Shape[0]*in.Shape[1], k, n)
			for rep := 0; rep < 3; rep++ {
				outs, err := exe.Run(context.Background(), map[string]*cpu.Tensor{"x": in})
				if err != nil {
					errs <- err
					return
				}
				for i, got := range floats(outs[y.Name]) {
					if math.Abs(got-want[i]) > 1e-4*math.Abs(want[i])+1e-6 {
						errs <- fmt.Errorf("goroutine %d run %d: element %d = %g, want %g", g, rep, i, got, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMemoryPlanCorpus runs every corpus model with the memory plan, as
// decoded and after the -O2 pipeline, against the stored references, and
// after -O3 (padding removal) against the same model run without the plan;
// the safety net must never have to copy.
func TestMemoryPlanCorpus(t *testing.T) {
	ran := 0
	for _, dir := range cpu.CorpusModelDirs(t) {
		name, path := filepath.Base(dir), filepath.Join(dir, "model.onnx")
		for _, level := range []int{0, 2, 3} {
			m, err := compileLevel(path, level, nil)
			if err != nil {
				t.Errorf("%s -O%d: %v", name, level, err)
				continue
			}
			if missing := unclaimed(m); len(missing) > 0 {
				m.Close()
				continue
			}
			if err := checkPlannedRuns(m, dir, level == 3); err != nil {
				t.Errorf("%s -O%d: %v", name, level, err)
			}
			ran++
			m.Close()
		}
	}
	if ran == 0 {
		t.Errorf("no corpus model ran")
	}
}

func checkPlannedRuns(m *ir.Model, dir string, againstUnplanned bool) error {
	exe, err := cpu.Compile(m, cpu.Options{Threads: 2})
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	dataSets, err := refdata.LoadAll(m.Graph, dir)
	if err != nil {
		return err
	}
	var plain *cpu.Executable
	if againstUnplanned {
		if plain, err = cpu.Compile(m, cpu.Options{Threads: 2, NoMemoryPlan: true}); err != nil {
			return err
		}
	}
	for _, ds := range dataSets {
		set := filepath.Base(ds.Dir)
		outs, err := exe.Run(context.Background(), ds.Inputs)
		if err != nil {
			return fmt.Errorf("%s: %w", set, err)
		}
		if st := exe.Stats(); st.CopiedOutputs != 0 {
			return fmt.Errorf("%s: the safety net copied %d outputs %v (a kernel aliases in a way the planner does not know)", set, st.CopiedOutputs, st.Copied)
		}
		want := ds.Outputs
		if plain != nil {
			po, err := plain.Run(context.Background(), ds.Inputs)
			if err != nil {
				return fmt.Errorf("%s: without plan: %w", set, err)
			}
			want = make([]*cpu.Tensor, len(m.Graph.Outputs))
			for k, v := range m.Graph.Outputs {
				want[k] = po[v.Name]
			}
		}
		for k, v := range m.Graph.Outputs {
			if want[k] == nil || outs[v.Name] == nil {
				return fmt.Errorf("%s: output %q missing", set, v.Name)
			}
			if err := compareTensors(outs[v.Name], want[k]); err != nil {
				return fmt.Errorf("%s: output %q: %w", set, v.Name, err)
			}
		}
	}
	return nil
}
