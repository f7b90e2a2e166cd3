package cpu_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/ir"
)

// attnCase is one tfc.Attention configuration.
type attnCase struct {
	B, Hq, Hkv, Sq, Skv, D, Dv int
	bias                       []int // additive bias shape, nil for none
	keep                       bool  // boolean keep mask [B,1,Sq,Skv]
	fill                       float32
	kind                       string // causal, sliding:W or ""
}

func (c attnCase) String() string {
	return fmt.Sprintf("B%d_H%d-%d_S%d-%d_D%d-%d_bias%v_keep%v_%s", c.B, c.Hq, c.Hkv, c.Sq, c.Skv, c.D, c.Dv, c.bias, c.keep, c.kind)
}

func (c attnCase) maskKind() string {
	var parts []string
	if c.kind != "" {
		parts = append(parts, c.kind)
	}
	if c.keep {
		parts = append(parts, "boolean")
	}
	if c.bias != nil {
		parts = append(parts, "additive")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// frontier returns the causal/sliding additive mask [Sq,Skv] (0 or -inf),
// aligned bottom-right.
func (c attnCase) frontier() []float32 {
	w := 0
	if strings.HasPrefix(c.kind, "sliding:") {
		fmt.Sscanf(c.kind, "sliding:%d", &w)
	}
	out := make([]float32, c.Sq*c.Skv)
	for i := 0; i < c.Sq; i++ {
		pos := i + c.Skv - c.Sq
		for j := 0; j < c.Skv; j++ {
			if j > pos || w > 0 && pos-j >= w {
				out[i*c.Skv+j] = float32(math.Inf(-1))
			}
		}
	}
	return out
}

func ints64(xs ...int) []int64 {
	out := make([]int64, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

// buildAttentionGraphs returns the fused model (one tfc.Attention) and
// the unfused standard-op graph it replaces: K/V repeated for GQA with
// Unsqueeze/Expand/Reshape, MatMul with K^T, Mul by the scale, Where for
// the keep mask, Add for the bias and for the causal/sliding frontier,
// Softmax, MatMul with V.
func buildAttentionGraphs(c attnCase, scale float32) (fused, unfused *ir.Model) {
	inputs := func(b *ir.Builder) (q, k, v, bias, keep *ir.Value) {
		q = b.Input("q", ir.TensorOfSizes(ir.Float, ints64(c.B, c.Hq, c.Sq, c.D)...))
		k = b.Input("k", ir.TensorOfSizes(ir.Float, ints64(c.B, c.Hkv, c.Skv, c.D)...))
		v = b.Input("v", ir.TensorOfSizes(ir.Float, ints64(c.B, c.Hkv, c.Skv, c.Dv)...))
		if c.bias != nil {
			bias = b.Input("bias", ir.TensorOfSizes(ir.Float, ints64(c.bias...)...))
		}
		if c.keep {
			keep = b.Input("keep", ir.TensorOfSizes(ir.Bool, ints64(c.B, 1, c.Sq, c.Skv)...))
		}
		return
	}
	fb := ir.NewBuilder(17)
	q, k, v, bias, keep := inputs(fb)
	args := []any{q, k, v}
	if bias != nil || keep != nil {
		args = append(args, bias) // nil: an omitted input before the keep mask
	}
	if keep != nil {
		args = append(args, keep)
	}
	args = append(args, ir.FloatAttr("scale", scale), ir.StringAttr("mask_kind", c.maskKind()))
	if c.keep {
		args = append(args, ir.FloatAttr("mask_fill", c.fill))
	}
	fb.Output(fb.Op("tfc::Attention", args...))

	ub := ir.NewBuilder(17)
	q, k, v, bias, keep = inputs(ub)
	repeat := func(x *ir.Value, d int) *ir.Value {
		n := c.Hq / c.Hkv
		if n == 1 {
			return x
		}
		u := ub.Op("Unsqueeze", x, ub.Const("axes_"+x.Name, ir.Int64Tensor([]int64{1}, 2)))
		e := ub.Op("Expand", u, ub.Const("expand_"+x.Name, ir.Int64Tensor([]int64{5}, ints64(c.B, c.Hkv, n, c.Skv, d)...)))
		return ub.Op("Reshape", e, ub.Const("shape_"+x.Name, ir.Int64Tensor([]int64{4}, ints64(c.B, c.Hq, c.Skv, d)...)))
	}
	kT := ub.Op("Transpose", repeat(k, c.D), ir.IntsAttr("perm", 0, 1, 3, 2))
	s := ub.Op("MatMul", q, kT)
	s = ub.Op("Mul", s, ub.Const("scale", ir.Float32Tensor([]int64{}, scale)))
	if keep != nil {
		s = ub.Op("Where", keep, s, ub.Const("fill", ir.Float32Tensor([]int64{}, c.fill)))
	}
	if bias != nil {
		s = ub.Op("Add", s, bias)
	}
	if c.kind != "" {
		s = ub.Op("Add", s, ub.Const("frontier", ir.Float32Tensor(ints64(c.Sq, c.Skv), c.frontier()...)))
	}
	p := ub.Op("Softmax", s, ir.IntAttr("axis", -1))
	ub.Output(ub.Op("MatMul", p, repeat(v, c.Dv)))
	return fb.Model(), ub.Model()
}

func attentionCases() []attnCase {
	var cases []attnCase
	heads := [][2]int{{2, 2}, {4, 2}, {3, 1}}
	for _, S := range []int{1, 7, 65} {
		for _, D := range []int{8, 64} {
			for hi, h := range heads {
				c := attnCase{B: 2, Hq: h[0], Hkv: h[1], Sq: S, Skv: S, D: D, Dv: D}
				cases = append(cases, c)
				// Vary the mask with the head layout so that every
				// mask kind meets every size without a cross product.
				switch hi {
				case 0:
					c.bias = []int{c.B, 1, S, S}
					c.kind = "causal"
				case 1:
					c.keep, c.fill = true, -3.4028235e38
					c.bias = []int{1, 1, 1, S}
				case 2:
					c.keep, c.fill = true, float32(math.Inf(-1))
					c.kind = "sliding:3"
				}
				cases = append(cases, c)
			}
		}
	}
	// Decoding with a cache: fewer queries than keys, frontier aligned
	// bottom-right, Dv != D.
	cases = append(cases,
		attnCase{B: 1, Hq: 4, Hkv: 2, Sq: 1, Skv: 65, D: 8, Dv: 16, kind: "causal", bias: []int{1, 1, 1, 65}},
		attnCase{B: 3, Hq: 4, Hkv: 1, Sq: 7, Skv: 12, D: 8, Dv: 8, kind: "sliding:4"},
	)
	return cases
}

// TestTfcAttentionMatchesUnfusedGraph runs tfc.Attention (the fast
// kernel) and the standard-op graph it replaces on the same random inputs.
func TestTfcAttentionMatchesUnfusedGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	for _, c := range attentionCases() {
		t.Run(c.String(), func(t *testing.T) {
			scale := float32(1 / math.Sqrt(float64(c.D)))
			fused, unfused := buildAttentionGraphs(c, scale)
			for _, m := range []*ir.Model{fused, unfused} {
				if err := ir.Verify(m); err != nil {
					t.Fatal(err)
				}
			}
			in := map[string]*cpu.Tensor{
				"q": randTensor(rng, c.B, c.Hq, c.Sq, c.D),
				"k": randTensor(rng, c.B, c.Hkv, c.Skv, c.D),
				"v": randTensor(rng, c.B, c.Hkv, c.Skv, c.Dv),
			}
			if c.bias != nil {
				in["bias"] = randTensor(rng, c.bias...)
			}
			if c.keep {
				keep := make([]bool, c.B*c.Sq*c.Skv)
				for i := range keep {
					row, j := i/c.Skv%c.Sq, i%c.Skv
					// Keep each query's own position so no row is fully
					// masked (the unfused graph gives NaN there).
					keep[i] = rng.IntN(3) != 0 || j == row+c.Skv-c.Sq
				}
				in["keep"] = &cpu.Tensor{DType: ir.Bool, Shape: []int{c.B, 1, c.Sq, c.Skv}, Data: keep}
			}
			run := func(m *ir.Model) []float64 {
				exe, err := cpu.Compile(m, cpu.Options{Threads: 3})
				if err != nil {
					t.Fatal(err)
				}
				outs, err := exe.Run(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				return floats(outs[m.Graph.Outputs[0].Name])
			}
			got, want := run(fused), run(unfused)
			assertClose(t, "tfc.Attention vs unfused graph", got, want, 1e-4, 1e-5)
		})
	}
}

func TestTfcAttentionRejectsBadInputs(t *testing.T) {
	// Inputs of unknown shape, so that the kernel, not the graph input
	// check, meets the bad shapes.
	fb := ir.NewBuilder(17)
	var vals []any
	for _, name := range []string{"q", "k", "v", "bias"} {
		vals = append(vals, fb.Input(name, ir.TensorOfUnknownRank(ir.Float)))
	}
	fb.Output(fb.Op("tfc::Attention", append(vals, ir.FloatAttr("scale", 0.5), ir.StringAttr("mask_kind", "additive"))...))
	exe, err := cpu.Compile(fb.Model(), cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	in := map[string]*cpu.Tensor{
		"q": randTensor(rng, 2, 2, 3, 4), "k": randTensor(rng, 2, 2, 3, 4), "v": randTensor(rng, 2, 2, 3, 4),
		// A bias that would widen the scores (5 queries for 3).
		"bias": randTensor(rng, 2, 1, 5, 3),
	}
	if _, err := exe.Run(context.Background(), in); err == nil || !strings.Contains(err.Error(), "does not broadcast") {
		t.Fatalf("widening bias: error %v, want one saying it does not broadcast", err)
	}
	in["bias"] = randTensor(rng, 2, 1, 3, 3)
	in["k"] = randTensor(rng, 2, 3, 3, 4) // 2 query heads over 3 kv heads
	if _, err := exe.Run(context.Background(), in); err == nil {
		t.Fatal("mismatched heads ran")
	}
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOfSizes(ir.Float, 1, 1, 2, 2))
	b.Output(b.Op("tfc::Attention", x, x, x, ir.FloatAttr("scale", 1), ir.StringAttr("mask_kind", "diagonal")))
	if _, err := cpu.Compile(b.Model(), cpu.Options{}); err == nil || !strings.Contains(err.Error(), "diagonal") {
		t.Fatalf("unknown mask kind: error %v", err)
	}
}
