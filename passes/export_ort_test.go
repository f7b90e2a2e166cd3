package passes

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// attentionVariant is one tfc.Attention configuration the export must
// handle: every mask kind, GQA, unequal query and key lengths (past K/V),
// finite and infinite fills.
type attentionVariant struct {
	name           string
	opset          int64
	b, hq, hkv     int64
	sq, skv, d, dv int64
	kind           string
	bias, keep     bool
	biasShape      []int64
	keepShape      []int64
	fill           float32
	emptyRow       bool // the keep mask drops every key of one row
	lowestBias     bool // the bias is a padding mask of 0 and finfo.min
	noHeadAttrs    bool // no num_heads/kv_num_heads attributes
	symbolicHeads  bool // head dimensions unknown in the types
	symbolic       bool // Q/K/V shapes with named batch and sequence dims
	wantDecomposed bool // with attention=auto, expect the standard-op form
}

var attentionVariants = []attentionVariant{
	{name: "plain-op17", opset: 17, b: 2, hq: 4, hkv: 4, sq: 5, skv: 5, d: 8, dv: 8, kind: "none"},
	{name: "padding-op17", opset: 17, b: 2, hq: 4, hkv: 4, sq: 5, skv: 5, d: 8, dv: 8, kind: "additive", bias: true, biasShape: []int64{2, 1, 1, 5}},
	{name: "causal-past-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 3, skv: 7, d: 8, dv: 8, kind: "causal"},
	{name: "sliding-op17", opset: 17, b: 1, hq: 2, hkv: 2, sq: 6, skv: 6, d: 4, dv: 4, kind: "sliding:3", symbolic: true},
	{name: "boolean-inf-empty-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "boolean", keep: true, keepShape: []int64{2, 1, 4, 4}, fill: float32(math.Inf(-1)), emptyRow: true},
	{name: "boolean-finite-fill-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "boolean+causal", keep: true, keepShape: []int64{2, 1, 1, 4}, fill: -10000, emptyRow: true, wantDecomposed: true},
	{name: "gqa-causal-op17", opset: 17, b: 2, hq: 4, hkv: 2, sq: 5, skv: 5, d: 8, dv: 8, kind: "causal"},
	{name: "gqa-causal-past-op20", opset: 20, b: 1, hq: 6, hkv: 2, sq: 2, skv: 6, d: 4, dv: 4, kind: "causal", symbolic: true},
	{name: "relbias-dv-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 4, skv: 6, d: 4, dv: 6, kind: "additive", bias: true, biasShape: []int64{1, 2, 4, 6}, wantDecomposed: true},
	{name: "relbias-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 4, skv: 6, d: 4, dv: 4, kind: "additive", bias: true, biasShape: []int64{1, 2, 4, 6}},
	{name: "padding-causal-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "boolean+causal", keep: true, keepShape: []int64{2, 1, 1, 4}, fill: -3.4028234663852886e38},
	{name: "lowest-bias-causal-op23", opset: 23, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "additive+causal", bias: true, biasShape: []int64{2, 1, 1, 4}, lowestBias: true},
	{name: "lowest-bias-op17", opset: 17, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "additive+causal", bias: true, biasShape: []int64{2, 1, 1, 4}, lowestBias: true},
	{name: "relbias-dv-op23", opset: 23, b: 2, hq: 2, hkv: 2, sq: 4, skv: 6, d: 4, dv: 6, kind: "additive", bias: true, biasShape: []int64{1, 2, 4, 6}},
	{name: "gqa-heads-unknown-op17", opset: 17, b: 2, hq: 4, hkv: 2, sq: 3, skv: 3, d: 4, dv: 4, kind: "causal", noHeadAttrs: true, symbolicHeads: true, wantDecomposed: true},
	{name: "plain-op23", opset: 23, b: 2, hq: 4, hkv: 4, sq: 5, skv: 5, d: 8, dv: 8, kind: "none"},
	{name: "causal-past-op23", opset: 23, b: 2, hq: 2, hkv: 2, sq: 3, skv: 7, d: 8, dv: 8, kind: "causal", symbolic: true},
	{name: "gqa-sliding-op23", opset: 23, b: 2, hq: 4, hkv: 1, sq: 6, skv: 6, d: 4, dv: 4, kind: "sliding:2"},
	{name: "padding-causal-op23", opset: 23, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "boolean+causal", keep: true, keepShape: []int64{2, 1, 1, 4}, fill: -3.4028234663852886e38},
	{name: "boolean-inf-empty-op23", opset: 23, b: 2, hq: 2, hkv: 2, sq: 4, skv: 4, d: 4, dv: 4, kind: "boolean+additive", keep: true, bias: true, keepShape: []int64{2, 1, 4, 4}, biasShape: []int64{4, 4}, fill: float32(math.Inf(-1)), emptyRow: true},
}

func randFloats(r *rand.Rand, n int64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

func (v attentionVariant) dims(b, h, s, d int64, batch, seq string) ir.Type {
	if v.symbolicHeads {
		return ir.TensorOf(ir.Float, ir.Sym(batch), ir.Sym("heads_"+seq), ir.Sym(seq), ir.Known(d))
	}
	if !v.symbolic {
		return ir.TensorOfSizes(ir.Float, b, h, s, d)
	}
	return ir.TensorOf(ir.Float, ir.Sym(batch), ir.Known(h), ir.Sym(seq), ir.Known(d))
}

// model builds a graph with one tfc.Attention over graph inputs, and the
// input tensors to feed it.
func (v attentionVariant) model(r *rand.Rand) (*ir.Model, map[string]*cpu.Tensor) {
	b := ir.NewBuilder(v.opset)
	feeds := map[string]*cpu.Tensor{}
	addF := func(name string, t ir.Type, shape []int64) *ir.Value {
		n := int64(1)
		for _, s := range shape {
			n *= s
		}
		ct, _ := cpu.FromIR(ir.Float32Tensor(shape, randFloats(r, n)...))
		feeds[name] = ct
		return b.Input(name, t)
	}
	q := addF("q", v.dims(v.b, v.hq, v.sq, v.d, "batch", "seq"), []int64{v.b, v.hq, v.sq, v.d})
	k := addF("k", v.dims(v.b, v.hkv, v.skv, v.d, "batch", "total"), []int64{v.b, v.hkv, v.skv, v.d})
	val := addF("v", v.dims(v.b, v.hkv, v.skv, v.dv, "batch", "total"), []int64{v.b, v.hkv, v.skv, v.dv})
	args := []any{q, k, val}
	if v.bias || v.keep {
		var bias *ir.Value
		if v.bias {
			bias = addF("bias", ir.TensorOfSizes(ir.Float, v.biasShape...), v.biasShape)
			if v.lowestBias {
				// 0 or finfo.min, every key of batch 1's first position masked.
				bv := feeds["bias"].Data.([]float32)
				for i := range bv {
					bv[i] = 0
					if r.IntN(3) == 0 || i == int(v.biasShape[len(v.biasShape)-1]) {
						bv[i] = -math.MaxFloat32
					}
				}
			}
		}
		args = append(args, bias)
	}
	if v.keep {
		n := int64(1)
		for _, s := range v.keepShape {
			n *= s
		}
		keep := make([]bool, n)
		for i := range keep {
			keep[i] = r.IntN(4) != 0
		}
		keep[0] = true
		if v.emptyRow {
			// The last key dimension's first row: all false.
			last := v.keepShape[len(v.keepShape)-1]
			for j := int64(0); j < last; j++ {
				keep[j] = false
			}
		}
		ct, err := cpu.NewTensor(ir.Bool, toInts(v.keepShape))
		if err != nil {
			panic(err)
		}
		copy(ct.Data.([]bool), keep)
		feeds["keep"] = ct
		args = append(args, b.Input("keep", ir.TensorOfSizes(ir.Bool, v.keepShape...)))
	}
	if !v.noHeadAttrs {
		args = append(args, ir.IntAttr("num_heads", v.hq), ir.IntAttr("kv_num_heads", v.hkv))
	}
	args = append(args, ir.FloatAttr("scale", float32(1/math.Sqrt(float64(v.d)))), ir.StringAttr("mask_kind", v.kind))
	if v.keep {
		args = append(args, ir.FloatAttr("mask_fill", v.fill))
	}
	y := b.Op("tfc::Attention", args...)
	y.Type = v.dims(v.b, v.hq, v.sq, v.dv, "batch", "seq")
	b.Output(y)
	return b.Model(), feeds
}

func toInts(s []int64) []int {
	out := make([]int, len(s))
	for i, x := range s {
		out[i] = int(x)
	}
	return out
}

func runCPU(t *testing.T, m *ir.Model, feeds map[string]*cpu.Tensor) *cpu.Tensor {
	t.Helper()
	exe, err := cpu.Compile(m, cpu.Options{Threads: 1})
	if err != nil {
		t.Fatalf("cpu.Compile: %v\n%s", err, ir.Print(m))
	}
	outs, err := exe.Run(context.Background(), feeds)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return outs[m.Graph.Outputs[0].Name]
}

func graphOps(m *ir.Model) map[string]int {
	c := map[string]int{}
	m.Graph.Walk(func(n *ir.Node) { c[n.QualifiedOp()]++ })
	return c
}

// TestExportOrtAttentionDecomposed checks the standard-op lowering of
// every variant against the tfc.Attention reference kernel, both run on
// the CPU backend (which has no com.microsoft ops, so the fused ONNX
// Runtime forms are checked in ONNX Runtime by tools/peer/ort_parity.py).
func TestExportOrtAttentionDecomposed(t *testing.T) {
	for _, v := range attentionVariants {
		t.Run(v.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(v.name))))
			m, feeds := v.model(r)
			want := runCPU(t, m, feeds)
			rep := runPasses(t, "export-ort{attention=decompose}", m)
			if n := rep.Passes[0].Rewrites[ruleOrtAttentionDeco]; n != 1 {
				t.Fatalf("rewrites = %v, want one %s", rep.Passes[0].Rewrites, ruleOrtAttentionDeco)
			}
			for op := range graphOps(m) {
				if strings.HasPrefix(op, "tfc::") || strings.HasPrefix(op, msDomain) {
					t.Fatalf("op %s left after decompose", op)
				}
			}
			got := runCPU(t, m, feeds)
			compareTensors(t, got, want, 1e-5, 1e-5)
		})
	}
}

func compareTensors(t *testing.T, got, want *cpu.Tensor, rtol, atol float64) {
	t.Helper()
	g, ok1 := got.Float64s()
	w, ok2 := want.Float64s()
	if !ok1 || !ok2 || len(g) != len(w) {
		t.Fatalf("outputs differ in type or size: %v %v vs %v %v", got.DType, got.Shape, want.DType, want.Shape)
	}
	for i := range g {
		if math.IsNaN(g[i]) != math.IsNaN(w[i]) || math.Abs(g[i]-w[i]) > atol+rtol*math.Abs(w[i]) {
			t.Fatalf("element %d: got %g, want %g", i, g[i], w[i])
		}
	}
}

// TestExportOrtChoosesOps checks which ONNX Runtime op each variant
// becomes with attention=auto and that no tfc op or import is left.
func TestExportOrtChoosesOps(t *testing.T) {
	for _, v := range attentionVariants {
		t.Run(v.name, func(t *testing.T) {
			m, _ := v.model(rand.New(rand.NewPCG(2, 3)))
			runPasses(t, "export-ort", m)
			ops := graphOps(m)
			var want string
			switch {
			case v.wantDecomposed:
				want = "::Softmax"
			case v.opset >= 23:
				want = "::Attention"
			default:
				want = msDomain + "::MultiHeadAttention"
			}
			if ops[want] != 1 {
				t.Fatalf("want one %s, have %v", want, ops)
			}
			if m.OpsetVersion("tfc") != 0 {
				t.Fatalf("tfc import left: %v", m.Opsets)
			}
			if ms := m.OpsetVersion(msDomain); (want == msDomain+"::MultiHeadAttention") != (ms == 1) {
				t.Fatalf("com.microsoft import %d with ops %v", ms, ops)
			}
			if m.OpsetVersion("") != v.opset {
				t.Fatalf("ai.onnx opset changed to %d", m.OpsetVersion(""))
			}
		})
	}
}

// normCase is one tfc norm or GELU node to export, and the ops the
// export must produce.
type normCase struct {
	name  string
	opset int64
	build func(b *ir.Builder, x, skip, vec *ir.Value) []*ir.Value
	want  []string
}

func normCases() []normCase {
	return []normCase{
		{"layernorm-op17", 17, func(b *ir.Builder, x, _, w *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::LayerNorm", x, w, w, ir.FloatAttr("epsilon", 1e-6))}
		}, []string{"::LayerNormalization"}},
		{"layernorm-noscale-op17", 17, func(b *ir.Builder, x, _, _ *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::LayerNorm", x)}
		}, []string{"::LayerNormalization", "::ConstantOfShape"}},
		{"rmsnorm-op17", 17, func(b *ir.Builder, x, _, w *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::RMSNorm", x, w)}
		}, []string{"::SimplifiedLayerNormalization"}},
		{"rmsnorm-op23", 23, func(b *ir.Builder, x, _, w *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::RMSNorm", x, w)}
		}, []string{"::RMSNormalization"}},
		{"skiplayernorm-sum", 17, func(b *ir.Builder, x, s, w *ir.Value) []*ir.Value {
			return b.OpN("tfc::SkipLayerNorm", 2, x, s, w, w, w)
		}, []string{msDomain + "::SkipLayerNormalization"}},
		{"skiprmsnorm", 17, func(b *ir.Builder, x, s, w *ir.Value) []*ir.Value {
			return b.OpN("tfc::SkipRMSNorm", 2, x, s, w, w)
		}, []string{msDomain + "::SkipSimplifiedLayerNormalization"}},
		{"gelu-erf-op17", 17, func(b *ir.Builder, x, _, _ *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::Gelu", x, ir.StringAttr("approximate", "none"))}
		}, []string{msDomain + "::Gelu"}},
		{"gelu-tanh-op17", 17, func(b *ir.Builder, x, _, _ *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::Gelu", x, ir.StringAttr("approximate", "tanh"))}
		}, []string{msDomain + "::FastGelu"}},
		{"gelu-tanh-op20", 20, func(b *ir.Builder, x, _, _ *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::Gelu", x, ir.StringAttr("approximate", "tanh"))}
		}, []string{"::Gelu"}},
		{"biasgelu-erf", 20, func(b *ir.Builder, x, _, w *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::BiasGelu", x, w, ir.StringAttr("approximate", "none"))}
		}, []string{msDomain + "::BiasGelu"}},
		{"biasgelu-tanh", 17, func(b *ir.Builder, x, _, w *ir.Value) []*ir.Value {
			return []*ir.Value{b.Op("tfc::BiasGelu", x, w, ir.StringAttr("approximate", "tanh"))}
		}, []string{msDomain + "::FastGelu"}},
	}
}

// TestExportOrtNormsAndGelu checks the op each norm and GELU case
// becomes; the numbers are checked in ONNX Runtime by
// tools/peer/ort_parity.py, since the CPU backend has no com.microsoft
// ops.
func TestExportOrtNormsAndGelu(t *testing.T) {
	for _, c := range normCases() {
		t.Run(c.name, func(t *testing.T) {
			m, _ := exportNormModel(c)
			runPasses(t, "export-ort", m)
			ops := graphOps(m)
			for _, w := range c.want {
				if ops[w] == 0 {
					t.Fatalf("no %s in %v", w, ops)
				}
			}
			for op := range ops {
				if strings.HasPrefix(op, "tfc::") {
					t.Fatalf("%s left", op)
				}
			}
		})
	}
}

// exportNormModel builds a model for a norm case over X [2,3,8] and returns
// the input tensors.
func exportNormModel(c normCase) (*ir.Model, map[string]*cpu.Tensor) {
	r := rand.New(rand.NewPCG(5, uint64(len(c.name))))
	b := ir.NewBuilder(c.opset)
	x := b.Input("x", ir.TensorOfSizes(ir.Float, 2, 3, 8))
	skip := b.Input("skip", ir.TensorOfSizes(ir.Float, 2, 3, 8))
	vec := b.Const("w", ir.Float32Tensor([]int64{8}, randFloats(r, 8)...))
	outs := c.build(b, x, skip, vec)
	for _, o := range outs {
		o.Type = ir.TensorOfSizes(ir.Float, 2, 3, 8)
	}
	b.Output(outs...)
	feeds := map[string]*cpu.Tensor{}
	for _, name := range []string{"x", "skip"} {
		ct, _ := cpu.FromIR(ir.Float32Tensor([]int64{2, 3, 8}, randFloats(r, 48)...))
		feeds[name] = ct
	}
	m := b.Model()
	// Drop the skip input when the case does not use it.
	if skip.NumUses() == 0 {
		m.Graph.Inputs = m.Graph.Inputs[:1]
		delete(feeds, "skip")
	}
	return m, feeds
}

// TestExportOrtRejectsUnknownTfcOp checks that an op without a lowering
// is an error naming the node, not a model ONNX Runtime cannot load.
func TestExportOrtRejectsUnknownTfcOp(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOfSizes(ir.Float, 2))
	b.Output(b.Op("tfc::Mystery", x))
	p, err := ParseSpec("export-ort")
	if err != nil {
		t.Fatal(err)
	}
	p.ReproDir = t.TempDir()
	_, err = p.Run(nil, b.Model())
	if err == nil || !strings.Contains(err.Error(), "Mystery_0") || !strings.Contains(err.Error(), "no ONNX Runtime lowering") {
		t.Fatalf("err = %v, want one naming node Mystery_0", err)
	}
}

// TestExportCorpusFiles writes, when TFC_EXPORT_DIR is set, the --target
// ort form of every corpus model (decode, -O2, export-ort, encode) as
// <dir>/<model>.ort.onnx, and each attention and norm variant of this
// file with inputs and tfc's reference outputs as
// <dir>/variants/<name>/{model.onnx,test_data_set_0}, for
// tools/peer/ort_parity.py to run in ONNX Runtime.
func TestExportCorpusFiles(t *testing.T) {
	dir := os.Getenv("TFC_EXPORT_DIR")
	if dir == "" {
		t.Skip("TFC_EXPORT_DIR is not set; tools/peer/ort_parity.py sets it")
	}
	paths, err := filepath.Glob("../testdata/models/*/model.onnx")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus models under ../testdata/models (%v)", err)
	}
	for _, path := range paths {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			p, err := ForLevel(2)
			if err != nil {
				t.Fatal(err)
			}
			exp, err := NewPipeline("export-ort")
			if err != nil {
				t.Fatal(err)
			}
			p.Steps = append(p.Steps, exp.Steps...)
			p.VerifyEach = true
			p.ReproDir = t.TempDir()
			rep, err := p.Run(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			var lowered []string
			for rule, n := range rep.Passes[len(rep.Passes)-1].Rewrites {
				lowered = append(lowered, fmt.Sprintf("%s=%d", rule, n))
			}
			slices.Sort(lowered)
			t.Logf("%s: %s", name, strings.Join(lowered, " "))
			if err := onnx.EncodeFile(m, filepath.Join(dir, name+".ort.onnx"), onnx.EncodeOptions{}); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(name+"/O3", func(t *testing.T) {
			exportO3(t, path, filepath.Join(dir, "variants", "O3-"+name))
		})
	}
	for _, c := range normCases() {
		t.Run("variant/norm-"+c.name, func(t *testing.T) {
			m, feeds := exportNormModel(c)
			writeVariant(t, filepath.Join(dir, "variants", "norm-"+c.name), m, feeds, "export-ort")
		})
	}
	for _, opset := range []int64{17, 23} {
		name := fmt.Sprintf("packed-attention-op%d", opset)
		t.Run("variant/"+name, func(t *testing.T) {
			m, feeds := packedModel(opset, rand.New(rand.NewPCG(11, uint64(opset))))
			writeVariant(t, filepath.Join(dir, "variants", name), m, feeds, "export-ort")
		})
	}
	for _, v := range attentionVariants {
		t.Run("variant/attention-"+v.name, func(t *testing.T) {
			m, feeds := v.model(rand.New(rand.NewPCG(7, uint64(len(v.name)))))
			writeVariant(t, filepath.Join(dir, "variants", "attention-"+v.name), m, feeds, "export-ort")
		})
	}
}

// exportO3 writes, when remove-padding packs a corpus model at -O3, its
// --target ort form with the corpus inputs and the outputs of the -O3
// model (tfc ops) on the CPU backend as <dir>/variants/O3-<model>: the
// reference is tfc's, because remove-padding writes zeros at padded
// positions where the original model computes values. A failure of the
// -O3 pipeline itself is logged, not failed: it belongs to remove-padding
// and its own tests.
func exportO3(t *testing.T, path, dir string) {
	m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := ForLevel(3)
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	p.ReproDir = t.TempDir()
	rep, err := p.Run(nil, m)
	if err != nil {
		t.Logf("-O3 itself fails (not export-ort): %v", err)
		return
	}
	packed := 0
	for _, pr := range rep.Passes {
		packed += pr.Rewrites["pack-tokens"]
	}
	if packed == 0 {
		return
	}
	sets, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "test_data_set_*"))
	var feeds []map[string]*cpu.Tensor
	for _, set := range sets {
		f := map[string]*cpu.Tensor{}
		for i, in := range m.Graph.Inputs {
			it, err := onnx.ReadTensorFile(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
			if err != nil {
				t.Fatal(err)
			}
			if f[in.Name], err = cpu.FromIR(it); err != nil {
				t.Fatal(err)
			}
		}
		feeds = append(feeds, f)
	}
	writeVariantSets(t, dir, m, feeds, "export-ort")
}

// writeVariant computes the reference output of m (with tfc ops) on the
// CPU backend, exports m with spec and writes the model and the data.
func writeVariant(t *testing.T, dir string, m *ir.Model, feeds map[string]*cpu.Tensor, spec string) {
	t.Helper()
	writeVariantSets(t, dir, m, []map[string]*cpu.Tensor{feeds}, spec)
}

// writeVariantSets is writeVariant for several data sets.
func writeVariantSets(t *testing.T, dir string, m *ir.Model, sets []map[string]*cpu.Tensor, spec string) {
	t.Helper()
	exe, err := cpu.Compile(m, cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var wants []map[string]*cpu.Tensor
	for _, feeds := range sets {
		want, err := exe.Run(context.Background(), feeds)
		if err != nil {
			t.Fatal(err)
		}
		wants = append(wants, want)
	}
	runPasses(t, spec, m)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnx.EncodeFile(m, filepath.Join(dir, "model.onnx"), onnx.EncodeOptions{}); err != nil {
		t.Fatal(err)
	}
	for k, feeds := range sets {
		data := filepath.Join(dir, fmt.Sprintf("test_data_set_%d", k))
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(file string, ct *cpu.Tensor, name string) {
			it, err := cpu.ToIR(ct)
			if err != nil {
				t.Fatal(err)
			}
			if err := onnx.WriteTensorFile(filepath.Join(data, file), it, name); err != nil {
				t.Fatal(err)
			}
		}
		for i, in := range m.Graph.Inputs {
			write(fmt.Sprintf("input_%d.pb", i), feeds[in.Name], in.Name)
		}
		for i, out := range m.Graph.Outputs {
			write(fmt.Sprintf("output_%d.pb", i), wants[k][out.Name], out.Name)
		}
	}
}

// packedModel builds the remove-padding form of one attention layer:
// PackTokens of Q, K and V [B, S, H, D] under a token mask,
// tfc.PackedAttention with an additive padding mask, and UnpackTokens of
// the result to [B, S, H, D]. Sequence 0 is full, sequence 1 has two
// padded tokens on the right, sequence 2 one on the left.
func packedModel(opset int64, r *rand.Rand) (*ir.Model, map[string]*cpu.Tensor) {
	const B, S, H, D = 3, 5, 2, 4
	b := ir.NewBuilder(opset)
	feeds := map[string]*cpu.Tensor{}
	var qkv []*ir.Value
	for _, name := range []string{"q", "k", "v"} {
		ct, _ := cpu.FromIR(ir.Float32Tensor([]int64{B, S, H, D}, randFloats(r, B*S*H*D)...))
		feeds[name] = ct
		qkv = append(qkv, b.Input(name, ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Sym("seq"), ir.Known(H), ir.Known(D))))
	}
	maskVals := []int64{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1}
	biasVals := make([]float32, len(maskVals))
	for i, m := range maskVals {
		if m == 0 {
			biasVals[i] = -math.MaxFloat32
		}
	}
	mct, _ := cpu.FromIR(ir.Int64Tensor([]int64{B, S}, maskVals...))
	feeds["mask"] = mct
	bct, _ := cpu.FromIR(ir.Float32Tensor([]int64{B, 1, 1, S}, biasVals...))
	feeds["bias"] = bct
	mask := b.Input("mask", ir.TensorOf(ir.Int64, ir.Sym("batch"), ir.Sym("seq")))
	bias := b.Input("bias", ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Known(1), ir.Known(1), ir.Sym("seq")))
	pq := b.OpN("tfc::PackTokens", 3, qkv[0], mask)
	pk := b.OpN("tfc::PackTokens", 3, qkv[1], mask)
	pv := b.OpN("tfc::PackTokens", 3, qkv[2], mask)
	packed := ir.TensorOf(ir.Float, ir.Sym("tokens"), ir.Known(H), ir.Known(D))
	pq[0].Type, pk[0].Type, pv[0].Type = packed, packed, packed
	y := b.Op("tfc::PackedAttention", pq[0], pk[0], pv[0], pq[1], pq[2], mask, bias,
		ir.IntAttr("num_heads", H), ir.IntAttr("kv_num_heads", H), ir.FloatAttr("scale", 0.5), ir.StringAttr("mask_kind", "additive"))
	y.Type = packed
	out := b.Op("tfc::UnpackTokens", y, pq[1], pq[2], qkv[0])
	out.Type = qkv[0].Type
	b.Output(out)
	return b.Model(), feeds
}

// TestExportOrtPackedAttention checks the lowering of the remove-padding
// ops against their CPU kernels: the standard-op form on the CPU
// backend gives the packed kernels' result, zeros at padded positions
// included.
func TestExportOrtPackedAttention(t *testing.T) {
	for _, opset := range []int64{17, 23} {
		t.Run(fmt.Sprint("op", opset), func(t *testing.T) {
			m, feeds := packedModel(opset, rand.New(rand.NewPCG(9, uint64(opset))))
			want := runCPU(t, m, feeds)
			rep := runPasses(t, "export-ort{attention=decompose}", m)
			rw := rep.Passes[0].Rewrites
			if rw[ruleOrtPackTokens] != 3 || rw[ruleOrtPackedAttn] != 1 || rw[ruleOrtUnpackTokens] != 1 || rw[ruleOrtAttentionDeco] != 1 {
				t.Fatalf("rewrites = %v", rw)
			}
			for op := range graphOps(m) {
				if strings.HasPrefix(op, "tfc::") {
					t.Fatalf("%s left", op)
				}
			}
			got := runCPU(t, m, feeds)
			compareTensors(t, got, want, 1e-5, 1e-6)
		})
	}
}

// TestExportOrtUniqueNodeNames checks that nodes sharing a name (which
// the IR allows and ONNX Runtime refuses) get distinct names.
func TestExportOrtUniqueNodeNames(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOfSizes(ir.Float, 2, 8))
	y := b.Op("Relu", b.Op("Relu", x))
	b.Output(b.Op("tfc::Gelu", y, ir.StringAttr("approximate", "none")))
	m := b.Model()
	m.Graph.Nodes[0].Name, m.Graph.Nodes[1].Name = "same", "same"
	rep := runPasses(t, "export-ort", m)
	if rep.Passes[0].Rewrites["unique-node-names"] != 1 {
		t.Fatalf("rewrites = %v, want one rename", rep.Passes[0].Rewrites)
	}
	seen := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if seen[n.Name] {
			t.Fatalf("node name %q twice:\n%s", n.Name, ir.PrintGraph(m.Graph))
		}
		seen[n.Name] = true
	}
}
