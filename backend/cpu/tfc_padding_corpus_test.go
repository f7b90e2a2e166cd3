package cpu_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/internal/refdata"
	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/passes"
)

// paddingModel is a corpus model compiled at -O2 and -O3, with what the
// -O3 graph says about packing.
type paddingModel struct {
	o2, o3   *cpu.Executable
	graph    *ir.Graph   // the -O3 graph: its inputs and outputs read the stored data sets
	inputs   []*ir.Value // non-constant graph inputs
	mask     string      // the graph input PackTokens packs by
	perToken map[string]bool
	outputs  []string
	// idValues are the values each integer input takes in the stored
	// data sets: generated batches draw from them, so ids are in range.
	idValues map[string][]int64
}

// TestRemovePaddingCorpus compiles every corpus model at -O3 and reports
// which were packed and why the others were declined. For each packed
// model it checks, at rtol 1e-3, atol 1e-4:
//   - the stored references on valid tokens (per-token outputs are zeros
//     on padded positions, pooled outputs equal in full);
//   - generated right-padded batches (all lengths 1, all S, all equal,
//     random, and B = 1) against per-sequence unpadded runs of -O2;
//   - left-padded and arbitrary masks against the padded -O2 run on
//     valid tokens (per-token outputs only: a CLS token at position 0 is
//     itself padding under left padding).
func TestRemovePaddingCorpus(t *testing.T) {
	var table []string
	for _, dir := range cpu.CorpusModelDirs(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			pm, declined, err := loadPaddingModel(dir)
			if err != nil {
				t.Fatal(err)
			}
			if pm == nil {
				table = append(table, fmt.Sprintf("| %s | declined | %s |", name, declined))
				return
			}
			checks, err := checkPaddingModel(pm, dir)
			if err != nil {
				t.Fatal(err)
			}
			table = append(table, fmt.Sprintf("| %s | packed (mask %q) | %s |", name, pm.mask, checks))
		})
	}
	sort.Strings(table)
	t.Logf("\n| model | -O3 remove-padding | checks |\n|---|---|---|\n%s", strings.Join(table, "\n"))
}

func compileLevel(path string, level int, explain *passes.Explanations) (*ir.Model, error) {
	m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	if err != nil {
		return nil, err
	}
	p, err := passes.ForLevel(level)
	if err != nil {
		return nil, err
	}
	p.VerifyEach = true
	if _, err := p.Run(&passes.Context{Explain: explain}, m); err != nil {
		return nil, err
	}
	return m, nil
}

func loadPaddingModel(dir string) (*paddingModel, string, error) {
	path := filepath.Join(dir, "model.onnx")
	ex := &passes.Explanations{}
	m3, err := compileLevel(path, 3, ex)
	if err != nil {
		return nil, "", fmt.Errorf("-O3: %w", err)
	}
	pm := &paddingModel{graph: m3.Graph, perToken: map[string]bool{}, idValues: map[string][]int64{}}
	for _, n := range m3.Graph.Nodes {
		if n.Domain == "tfc" && n.Op == "PackTokens" {
			pm.mask = n.Inputs[1].Name
		}
	}
	if pm.mask == "" {
		for _, e := range ex.Items {
			if e.Pass == "remove-padding" {
				return nil, e.Anchor + ": " + e.Reason, nil
			}
		}
		return nil, "(no reason given)", nil
	}
	for _, v := range m3.Graph.Outputs {
		pm.outputs = append(pm.outputs, v.Name)
		if p, _ := v.Producer(); p != nil && p.Op == "UnpackTokens" {
			pm.perToken[v.Name] = true
		}
	}
	for _, v := range m3.Graph.Inputs {
		if v.Const == nil {
			pm.inputs = append(pm.inputs, v)
		}
	}
	m2, err := compileLevel(path, 2, nil)
	if err != nil {
		return nil, "", fmt.Errorf("-O2: %w", err)
	}
	if pm.o3, err = cpu.Compile(m3, cpu.Options{Threads: 2}); err != nil {
		return nil, "", fmt.Errorf("-O3 compile: %w", err)
	}
	if pm.o2, err = cpu.Compile(m2, cpu.Options{Threads: 2}); err != nil {
		return nil, "", fmt.Errorf("-O2 compile: %w", err)
	}
	return pm, "", nil
}

func checkPaddingModel(pm *paddingModel, dir string) (string, error) {
	dataSets, err := refdata.LoadAll(pm.graph, dir)
	if err != nil {
		return "", err
	}
	sets := 0
	var S int
	for _, ds := range dataSets {
		set := filepath.Base(ds.Dir)
		in := ds.Inputs
		mask := in[pm.mask]
		if mask == nil {
			return "", fmt.Errorf("%s: no input %q", set, pm.mask)
		}
		S = max(S, mask.Shape[1])
		for name, t := range in {
			if iv, ok := t.Data.([]int64); ok && name != pm.mask {
				pm.idValues[name] = append(pm.idValues[name], iv...)
			}
		}
		got, err := pm.o3.Run(context.Background(), in)
		if err != nil {
			return "", fmt.Errorf("%s: -O3 run: %w", set, err)
		}
		valid := validFlags(mask)
		for k, name := range pm.outputs {
			if err := compareOutput(got[name], ds.Outputs[k], valid, pm.perToken[name], true); err != nil {
				return "", fmt.Errorf("%s: output %q vs stored reference: %w", set, name, err)
			}
		}
		sets++
	}
	if sets == 0 {
		return "", fmt.Errorf("no stored data sets")
	}
	rng := rand.New(rand.NewPCG(9, uint64(S)))
	const B = 4
	right := map[string][]int{"lengths 1": {1, 1, 1, 1}, "lengths S": {S, S, S, S}, "all equal": {S / 2, S / 2, S / 2, S / 2},
		"random": {1 + rng.IntN(S), 1 + rng.IntN(S), 1 + rng.IntN(S), S}, "B=1": {1 + rng.IntN(S)}}
	names := []string{"lengths 1", "lengths S", "all equal", "random", "B=1"}
	for _, what := range names {
		lens := right[what]
		batch, mask := pm.makeBatch(rng, len(lens), S, func(b, s int) bool { return s < lens[b] })
		got, err := pm.o3.Run(context.Background(), batch)
		if err != nil {
			return "", fmt.Errorf("%s: -O3 run: %w", what, err)
		}
		for b, L := range lens {
			one := sliceBatch(batch, b, L)
			ones := make([]int64, L)
			for i := range ones {
				ones[i] = 1
			}
			one[pm.mask] = cpu.Int64Tensor([]int{1, L}, ones)
			ref, err := pm.o2.Run(context.Background(), one)
			if err != nil {
				return "", fmt.Errorf("%s: unpadded -O2 run of sequence %d: %w", what, b, err)
			}
			for _, name := range pm.outputs {
				if err := compareSequence(got[name], ref[name], b, L, pm.perToken[name]); err != nil {
					return "", fmt.Errorf("%s: output %q, sequence %d (length %d) vs its unpadded run: %w", what, name, b, L, err)
				}
			}
		}
		_ = mask
	}
	holes := make([]bool, B*S)
	for i := range holes {
		holes[i] = i%S == 0 || rng.IntN(3) > 0
	}
	leftLens := []int{1, S, 1 + rng.IntN(S), 1 + rng.IntN(S)}
	for what, valid := range map[string]func(b, s int) bool{
		"left padding": func(b, s int) bool { return s >= S-leftLens[b] },
		"arbitrary":    func(b, s int) bool { return holes[b*S+s] },
	} {
		batch, mask := pm.makeBatch(rng, B, S, valid)
		got, err := pm.o3.Run(context.Background(), batch)
		if err != nil {
			return "", fmt.Errorf("%s: -O3 run: %w", what, err)
		}
		ref, err := pm.o2.Run(context.Background(), batch)
		if err != nil {
			return "", fmt.Errorf("%s: -O2 run: %w", what, err)
		}
		for _, name := range pm.outputs {
			if !pm.perToken[name] {
				continue
			}
			if err := compareOutput(got[name], ref[name], validFlags(mask), true, false); err != nil {
				return "", fmt.Errorf("%s: output %q vs padded -O2 run: %w", what, name, err)
			}
		}
	}
	return fmt.Sprintf("%d stored sets; right padding (%s) vs unpadded runs; left and arbitrary masks vs -O2: ok", sets, strings.Join(names, ", ")), nil
}

// makeBatch makes inputs of [B, S]: ids drawn from the stored values of
// each integer input, the mask from valid.
func (pm *paddingModel) makeBatch(rng *rand.Rand, B, S int, valid func(b, s int) bool) (map[string]*cpu.Tensor, *cpu.Tensor) {
	in := map[string]*cpu.Tensor{}
	for _, v := range pm.inputs {
		data := make([]int64, B*S)
		for i := range data {
			if v.Name == pm.mask {
				if valid(i/S, i%S) {
					data[i] = 1
				}
				continue
			}
			vals := pm.idValues[v.Name]
			if len(vals) > 0 {
				data[i] = vals[rng.IntN(len(vals))]
			}
		}
		in[v.Name] = cpu.Int64Tensor([]int{B, S}, data)
	}
	return in, in[pm.mask]
}

// sliceBatch returns row b of every [B, S] input, cut to its first L
// positions.
func sliceBatch(in map[string]*cpu.Tensor, b, L int) map[string]*cpu.Tensor {
	out := map[string]*cpu.Tensor{}
	for name, t := range in {
		S := t.Shape[1]
		d := t.Data.([]int64)
		out[name] = cpu.Int64Tensor([]int{1, L}, append([]int64(nil), d[b*S:b*S+L]...))
	}
	return out
}

func validFlags(mask *cpu.Tensor) []bool {
	f, _ := mask.Float64s()
	v := make([]bool, len(f))
	for i, x := range f {
		v[i] = x != 0
	}
	return v
}

func closeTo(g, w float64) bool {
	return math.IsNaN(g) == math.IsNaN(w) && math.Abs(g-w) <= 1e-4+1e-3*math.Abs(w)
}

// compareOutput compares got with want: per-token outputs [B, S, ...] on
// valid positions only (and, when padZero, zeros on padded ones), other
// outputs in full.
func compareOutput(got, want *cpu.Tensor, valid []bool, perToken, padZero bool) error {
	if got == nil || want == nil {
		return fmt.Errorf("missing (got %v, want %v)", got, want)
	}
	g, ok1 := got.Float64s()
	w, ok2 := want.Float64s()
	if !ok1 || !ok2 || len(g) != len(w) || fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	inner := 1
	if perToken {
		inner = len(g) / len(valid)
	}
	for i := range w {
		tokenValid := !perToken || valid[i/inner]
		switch {
		case tokenValid && !closeTo(g[i], w[i]):
			return fmt.Errorf("element %d: got %v, want %v", i, g[i], w[i])
		case !tokenValid && padZero && g[i] != 0:
			return fmt.Errorf("padded element %d is %v, want 0", i, g[i])
		}
	}
	return nil
}

// compareSequence compares sequence b of a batched output with the
// output of its unpadded run: the first L positions of a per-token
// output, row b of a pooled one.
func compareSequence(got, ref *cpu.Tensor, b, L int, perToken bool) error {
	g, _ := got.Float64s()
	r, _ := ref.Float64s()
	if got.Shape[0] <= b || ref.Shape[0] != 1 {
		return fmt.Errorf("shapes %v and %v", got.Shape, ref.Shape)
	}
	row := len(g) / got.Shape[0]
	g = g[b*row : (b+1)*row]
	if perToken {
		inner := row / got.Shape[1]
		if len(r) != L*inner {
			return fmt.Errorf("unpadded run has %d elements, want %d", len(r), L*inner)
		}
		g = g[:L*inner]
	}
	if len(g) != len(r) {
		return fmt.Errorf("%d elements vs %d", len(g), len(r))
	}
	for i := range r {
		if !closeTo(g[i], r[i]) {
			return fmt.Errorf("element %d: got %v, unpadded %v", i, g[i], r[i])
		}
	}
	return nil
}

// poolingEncoder is a one-layer encoder in the -O2 form (tfc.Attention
// with a (1-m)·-1e4 mask) whose outputs are the hidden states, the CLS
// token and the masked mean over valid tokens.
func poolingEncoder() *ir.Model {
	const H, heads, D, V = 8, 2, 4, 13
	rng := rand.New(rand.NewPCG(5, 5))
	b := ir.NewBuilder(17)
	B, S := ir.Sym("batch"), ir.Sym("seq")
	ids := b.Input("input_ids", ir.TensorOf(ir.Int64, B, S))
	mask := b.Input("attention_mask", ir.TensorOf(ir.Int64, B, S))
	w := func(name string, dims ...int64) *ir.Value {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64()) * 0.5
		}
		return b.Const(name, ir.Float32Tensor(dims, v...))
	}
	h := b.Op("tfc::LayerNorm", b.Op("Gather", w("emb", V, H), ids), w("ln_s", H), w("ln_b", H), ir.FloatAttr("epsilon", 1e-5))
	split := b.Const("split", ir.Int64Tensor([]int64{4}, 0, 0, heads, D))
	proj := func(name string) *ir.Value {
		p := b.Op("Add", b.Op("MatMul", h, w(name+"_w", H, H)), w(name+"_b", H))
		return b.Op("Transpose", b.Op("Reshape", p, split), ir.IntsAttr("perm", 0, 2, 1, 3))
	}
	mf := b.Op("Cast", mask, ir.IntAttr("to", int64(ir.Float)))
	bias := b.Op("Mul", b.Op("Sub", b.Const("one", ir.Float32Tensor([]int64{}, 1)), b.Op("Unsqueeze", mf, b.Const("axes12", ir.Int64Tensor([]int64{2}, 1, 2)))),
		b.Const("neg", ir.Float32Tensor([]int64{}, -10000)))
	a := b.Op("tfc::Attention", proj("q"), proj("k"), proj("v"), bias, ir.FloatAttr("scale", 0.5), ir.IntAttr("num_heads", heads),
		ir.IntAttr("kv_num_heads", heads), ir.StringAttr("mask_kind", "additive"))
	merged := b.Op("Reshape", b.Op("Transpose", a, ir.IntsAttr("perm", 0, 2, 1, 3)), b.Const("merge", ir.Int64Tensor([]int64{3}, 0, 0, H)))
	out := b.Op("tfc::SkipLayerNorm", b.Op("MatMul", merged, w("o_w", H, H)), h, w("ln2_s", H), w("ln2_b", H), ir.FloatAttr("epsilon", 1e-5))
	cls := b.Op("Gather", out, b.Const("cls", ir.Int64Tensor([]int64{}, 0)), ir.IntAttr("axis", 1))
	m3 := b.Op("Unsqueeze", mf, b.Const("axis2", ir.Int64Tensor([]int64{1}, 2)))
	seqAxis := b.Const("axis1", ir.Int64Tensor([]int64{1}, 1))
	mean := b.Op("Div", b.Op("ReduceSum", b.Op("Mul", out, m3), seqAxis, ir.IntAttr("keepdims", 0)),
		b.Op("ReduceSum", m3, seqAxis, ir.IntAttr("keepdims", 0)))
	b.Output(out, cls, mean)
	return b.Model()
}

// TestRemovePaddingPooling: CLS and masked mean pooling of a packed model
// equal the per-sequence unpadded runs of the unpacked one, and the
// per-token output is zero on padding.
func TestRemovePaddingPooling(t *testing.T) {
	run := func(level int) (*cpu.Executable, *ir.Model) {
		m := poolingEncoder()
		p, err := passes.ForLevel(level)
		if err != nil {
			t.Fatal(err)
		}
		p.VerifyEach = true
		if _, err := p.Run(nil, m); err != nil {
			t.Fatal(err)
		}
		exe, err := cpu.Compile(m, cpu.Options{Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		return exe, m
	}
	o3, m3 := run(3)
	o2, _ := run(2)
	count := map[string]int{}
	for _, n := range m3.Graph.Nodes {
		count[n.Op]++
	}
	if count["PackTokens"] != 1 || count["PackedAttention"] != 1 || count["UnpackTokens"] != 1 {
		t.Fatalf("-O3 did not pack the encoder with one unpack shared by the output, CLS and mean pooling: %v", count)
	}
	pm := &paddingModel{o2: o2, o3: o3, mask: "attention_mask", idValues: map[string][]int64{"input_ids": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		perToken: map[string]bool{m3.Graph.Outputs[0].Name: true}}
	for _, v := range m3.Graph.Inputs {
		pm.inputs = append(pm.inputs, v)
	}
	for _, v := range m3.Graph.Outputs {
		pm.outputs = append(pm.outputs, v.Name)
	}
	const S = 9
	lens := []int{1, S, 4, 7, 2}
	rng := rand.New(rand.NewPCG(1, 2))
	batch, mask := pm.makeBatch(rng, len(lens), S, func(b, s int) bool { return s < lens[b] })
	got, err := o3.Run(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	for b, L := range lens {
		one := sliceBatch(batch, b, L)
		ref, err := o2.Run(context.Background(), one)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range pm.outputs {
			if err := compareSequence(got[name], ref[name], b, L, pm.perToken[name]); err != nil {
				t.Fatalf("output %q, sequence %d: %v", name, b, err)
			}
		}
	}
	padded, err := o2.Run(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if err := compareOutput(got[pm.outputs[0]], padded[pm.outputs[0]], validFlags(mask), true, true); err != nil {
		t.Fatalf("per-token output vs padded -O2: %v", err)
	}
}
