package refdata_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/internal/refdata"
	"github.com/tfc-compiler/tfc/ir"
)

func f64(shape []int, v ...float64) *cpu.Tensor {
	return &cpu.Tensor{DType: ir.Double, Shape: shape, Data: v}
}

// TestCompareToleranceEdge puts one element exactly on the tolerance and
// one a single ulp beyond it: the first passes, the second is flagged.
func TestCompareToleranceEdge(t *testing.T) {
	const rtol, atol = 0.5, 0.25 // binary fractions: atol + rtol*|1| = 0.75 exactly
	want := f64([]int{2}, 1, 1)
	onEdge := 1.75
	beyond := math.Nextafter(onEdge, math.Inf(1))
	m := refdata.Compare(f64([]int{2}, onEdge, 1), want, rtol, atol)
	if !m.OK() {
		t.Fatalf("difference equal to the tolerance flagged: %+v", m)
	}
	m = refdata.Compare(f64([]int{2}, 1, beyond), want, rtol, atol)
	if m.OK() || m.Count != 1 || m.First.Index != 1 || m.Worst.Index != 1 || m.First.Got != beyond {
		t.Fatalf("1 ulp beyond the tolerance: got %+v, want one mismatch at index 1", m)
	}
	if m.Err() == nil || !strings.Contains(m.Err().Error(), "1 of 2") {
		t.Fatalf("Err() = %v, want it to count 1 of 2", m.Err())
	}
	// The same edge in float32 at rtol 0 (what integer/exact checks use).
	m = refdata.Compare(cpu.Float32Tensor([]int{1}, []float32{math.Nextafter32(3, 4)}), cpu.Float32Tensor([]int{1}, []float32{3}), 0, 0)
	if m.OK() {
		t.Fatalf("1 float32 ulp at zero tolerance passed")
	}
}

func TestCompareSpecialValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name      string
		got, want float64
		ok        bool
	}{
		{"NaN equals NaN", nan, nan, true},
		{"Inf equals Inf", inf, inf, true},
		{"NaN against a number", nan, 1, false},
		{"number against NaN", 1, nan, false},
		{"finite against Inf", 1e30, inf, false},
		{"-Inf against Inf", -inf, inf, false},
		{"Inf against a number", inf, 1, false},
	}
	for _, c := range cases {
		m := refdata.Compare(f64([]int{1}, c.got), f64([]int{1}, c.want), 1e-3, 1e-4)
		if m.OK() != c.ok {
			t.Errorf("%s: OK() = %v, want %v (%+v)", c.name, m.OK(), c.ok, m)
		}
		if !c.ok && !math.IsInf(m.MaxAbsErr, 1) {
			t.Errorf("%s: MaxAbsErr %g, want +Inf", c.name, m.MaxAbsErr)
		}
	}
}

// TestCompareWorst checks count, first and worst against a plain loop.
func TestCompareWorst(t *testing.T) {
	want := []float64{0, 1, 2, 3, 4, 5, 100}
	got := []float64{0, 1.5, 2, 3.9, 4.01, 5, 100.2}
	const rtol, atol = 1e-3, 1e-2
	count, first, worstIdx, worstExcess, maxErr := 0, -1, -1, 0.0, 0.0
	for i := range want {
		d := math.Abs(got[i] - want[i])
		maxErr = max(maxErr, d)
		if ex := d - (atol + rtol*math.Abs(want[i])); ex > 0 {
			count++
			if first < 0 {
				first = i
			}
			if ex > worstExcess {
				worstIdx, worstExcess = i, ex
			}
		}
	}
	m := refdata.Compare(f64([]int{7}, got...), f64([]int{7}, want...), rtol, atol)
	if m.Count != count || m.Total != 7 || m.First.Index != first || m.Worst.Index != worstIdx || m.MaxAbsErr != maxErr {
		t.Fatalf("got %+v, want count %d first %d worst %d max %g", m, count, first, worstIdx, maxErr)
	}
}

func TestCompareProblems(t *testing.T) {
	a := f64([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	b := f64([]int{3, 2}, 1, 2, 3, 4, 5, 6)
	if m := refdata.Compare(a, b, 1, 1); m.OK() || !strings.Contains(m.Problem, "shape") {
		t.Errorf("shape [2 3] vs [3 2]: %+v", m)
	}
	if m := refdata.Compare(nil, b, 1, 1); m.OK() || m.Problem == "" {
		t.Errorf("nil output: %+v", m)
	}
	s1 := &cpu.Tensor{DType: ir.String, Shape: []int{2}, Data: []string{"a", "b"}}
	s2 := &cpu.Tensor{DType: ir.String, Shape: []int{2}, Data: []string{"a", "c"}}
	if m := refdata.Compare(s1, s1, 0, 0); !m.OK() {
		t.Errorf("equal strings: %+v", m)
	}
	if m := refdata.Compare(s1, s2, 0, 0); m.OK() || m.First.Index != 1 {
		t.Errorf("different strings: %+v", m)
	}
	if m := refdata.Compare(s1, f64([]int{2}, 1, 2), 1, 1); m.OK() {
		t.Errorf("strings against numbers passed")
	}
}

// addModel is y = x + s.
func addModel(t *testing.T) *ir.Model {
	t.Helper()
	bld := ir.NewBuilder(17)
	x := bld.Input("x", ir.TensorOfSizes(ir.Float, 3))
	s := bld.Input("s", ir.TensorOfSizes(ir.Float, 3))
	bld.Output(bld.Op("Add", x, s))
	m := bld.Model()
	if err := ir.Verify(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeTensor(t *testing.T, path, name string, v ...float32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onnx.WriteTensorFile(path, ir.Float32Tensor([]int64{int64(len(v))}, v...), name); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAllAndCheck(t *testing.T) {
	m := addModel(t)
	root := t.TempDir()
	x := []float32{1, 2, 3}
	s := []float32{0.5, -1, 4}
	sum := make([]float32, 3)
	for i := range x {
		sum[i] = float32(float64(x[i]) + float64(s[i]))
	}
	// Set 10 names its inputs in reverse file order; set 2 gives no
	// names, so position decides.
	writeTensor(t, filepath.Join(root, "test_data_set_10", "input_0.pb"), "s", s...)
	writeTensor(t, filepath.Join(root, "test_data_set_10", "input_1.pb"), "x", x...)
	writeTensor(t, filepath.Join(root, "test_data_set_10", "output_0.pb"), "", sum...)
	writeTensor(t, filepath.Join(root, "test_data_set_2", "input_0.pb"), "", x...)
	writeTensor(t, filepath.Join(root, "test_data_set_2", "input_1.pb"), "", s...)
	writeTensor(t, filepath.Join(root, "test_data_set_2", "output_0.pb"), "", sum...)
	if err := os.MkdirAll(filepath.Join(root, "test_data_set_x"), 0o755); err != nil {
		t.Fatal(err)
	}

	sets, err := refdata.LoadAll(m.Graph, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || filepath.Base(sets[0].Dir) != "test_data_set_2" || filepath.Base(sets[1].Dir) != "test_data_set_10" {
		t.Fatalf("data sets %v, want test_data_set_2 then test_data_set_10", []string{sets[0].Dir, sets[len(sets)-1].Dir})
	}
	for _, ds := range sets {
		for name, wantVals := range map[string][]float32{"x": x, "s": s} {
			m := refdata.Compare(ds.Inputs[name], cpu.Float32Tensor([]int{3}, wantVals), 0, 0)
			if !m.OK() {
				t.Errorf("%s: input %q: %v", ds.Dir, name, m.Err())
			}
		}
	}

	exe, err := cpu.Compile(m, cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	compare := func(got, want *cpu.Tensor) error { return refdata.Compare(got, want, 0, 0).Err() }
	if err := refdata.Check(context.Background(), exe, m.Graph, root, compare); err != nil {
		t.Fatalf("Check on correct references: %v", err)
	}
	// A reference off by 1e-3 in one element must fail Check, naming the set.
	sum[1] += 1e-3
	writeTensor(t, filepath.Join(root, "test_data_set_10", "output_0.pb"), "", sum...)
	err = refdata.Check(context.Background(), exe, m.Graph, root, compare)
	if err == nil || !strings.Contains(err.Error(), "test_data_set_10") {
		t.Fatalf("Check on a wrong reference: %v, want an error naming test_data_set_10", err)
	}
}

func TestLoadErrors(t *testing.T) {
	m := addModel(t)
	dir := t.TempDir()
	for i := range 3 {
		writeTensor(t, filepath.Join(dir, "input_"+string(rune('0'+i))+".pb"), "", 1, 2, 3)
	}
	if _, err := refdata.Load(m.Graph, dir); err == nil || !strings.Contains(err.Error(), "input_2.pb") {
		t.Errorf("three inputs for a two-input model: %v, want an error naming input_2.pb", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "input_0.pb"), []byte{0xff, 0xff, 0xff}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := refdata.Load(m.Graph, bad); err == nil || !strings.Contains(err.Error(), "input_0.pb") {
		t.Errorf("garbage input file: %v, want an error naming input_0.pb", err)
	}
	if _, err := refdata.LoadAll(m.Graph, t.TempDir()); err == nil {
		t.Errorf("LoadAll on a folder without data sets: no error")
	}
}
