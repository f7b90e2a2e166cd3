package passes

import (
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// runPasses runs a pipeline given as a spec with verification on, failing
// the test on any error. It checks the input verifies first.
func runPasses(t *testing.T, spec string, m *ir.Model) *Report {
	t.Helper()
	if err := ir.Verify(m); err != nil {
		t.Fatalf("test model does not verify: %v", err)
	}
	p, err := ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	p.ReproDir = t.TempDir()
	r, err := p.Run(nil, m)
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	return r
}

// ops lists the graph's node ops in order.
func ops(g *ir.Graph) []string {
	out := make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		out[i] = n.Op
	}
	return out
}

func wantOps(t *testing.T, g *ir.Graph, want ...string) {
	t.Helper()
	if got := ops(g); !slices.Equal(got, want) {
		t.Fatalf("ops = %v, want %v\n%s", got, want, ir.PrintGraph(g))
	}
}

// constOf returns the int64 values of a constant, failing if v is not one.
func constInts(t *testing.T, v *ir.Value) []int64 {
	t.Helper()
	if v == nil || v.Const == nil {
		t.Fatalf("value %v is not a constant", v)
	}
	xs, ok := v.Const.AsInt64s()
	if !ok {
		t.Fatalf("constant %q of type %v is not integer", v.Name, v.Const.DType)
	}
	return xs
}

func wantConst(t *testing.T, v *ir.Value, dt ir.DataType, dims []int64, vals ...int64) {
	t.Helper()
	got := constInts(t, v)
	if v.Const.DType != dt || !slices.Equal(v.Const.Dims, dims) && !(len(dims) == 0 && len(v.Const.Dims) == 0) || !slices.Equal(got, vals) {
		t.Fatalf("constant %q = %v%v %v, want %v%v %v", v.Name, v.Const.DType, v.Const.Dims, got, dt, dims, vals)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func i64(dims []int64, vals ...int64) *ir.Tensor { return ir.Int64Tensor(dims, vals...) }

func f32(dims ...ir.Dim) ir.Type { return ir.TensorOf(ir.Float, dims...) }
