package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// tinyModel writes a small two-node model (MatMul then Softmax, with one
// weight) to dir and returns its path.
func tinyModel(t *testing.T, dir string) string {
	t.Helper()
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Known(3)))
	w := b.Const("w", ir.Float32Tensor([]int64{3, 2}, 1, 2, 3, 4, 5, 6))
	y := b.Op("MatMul", x, w)
	y.Type = ir.TensorOf(ir.Float, ir.Sym("batch"), ir.Known(2))
	z := b.Op("Softmax", y, ir.IntAttr("axis", -1))
	z.Type = y.Type
	b.Output(z)
	path := filepath.Join(dir, "tiny.onnx")
	require.NoError(t, onnx.EncodeFile(b.Model(), path, onnx.EncodeOptions{}))
	return path
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInspectJSON(t *testing.T) {
	path := tinyModel(t, t.TempDir())
	code, out, errOut := runCLI("inspect", path, "--json")
	require.Equal(t, 0, code, errOut)
	var s map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	for _, key := range []string{"ir_version", "opsets", "inputs", "outputs", "node_count", "op_counts", "parameters", "parameter_bytes"} {
		require.Contains(t, s, key)
	}
	require.EqualValues(t, 2, s["node_count"])
	require.EqualValues(t, 6, s["parameters"])
	require.EqualValues(t, 24, s["parameter_bytes"])
	require.Equal(t, map[string]any{"::MatMul": 1.0, "::Softmax": 1.0}, s["op_counts"])
	inputs := s["inputs"].([]any)
	require.Len(t, inputs, 1)
	require.Equal(t, "f32[batch,3]", inputs[0].(map[string]any)["type"])
}

func TestInspectText(t *testing.T) {
	path := tinyModel(t, t.TempDir())
	code, out, errOut := runCLI("inspect", path)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "f32[batch,3]")
	require.Contains(t, out, "MatMul")
	require.Contains(t, out, "parameters 6")
}

func TestCompileO0RoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := tinyModel(t, dir)
	out := filepath.Join(dir, "out.onnx")
	report := filepath.Join(dir, "report.json")
	code, _, errOut := runCLI("compile", path, "-o", out, "-O0", "--report", report)
	require.Equal(t, 0, code, errOut)

	a, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	require.NoError(t, err)
	defer a.Close()
	b, _, err := onnx.DecodeFile(out, onnx.DecodeOptions{})
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, ir.Print(a), ir.Print(b))

	var rep map[string]any
	data, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rep))
	require.EqualValues(t, 0, rep["level"])
	require.EqualValues(t, 2, rep["nodes_before"])
}

func TestBadInputExitsTwoWithoutOutput(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(tinyModel(t, dir))
	require.NoError(t, err)
	truncated := filepath.Join(dir, "truncated.onnx")
	require.NoError(t, os.WriteFile(truncated, good[:len(good)-7], 0o644))
	out := filepath.Join(dir, "out.onnx")

	cases := []struct {
		name string
		args []string
		want string // a fragment the one-line error must contain
	}{
		{"no args", []string{"compile"}, "expects one model file"},
		{"missing output flag", []string{"compile", truncated}, "-o OUT"},
		{"unknown flag", []string{"inspect", "--frobnicate", truncated}, "frobnicate"},
		{"bad level", []string{"compile", truncated, "-o", out, "-O7"}, "-O7"},
		{"missing file", []string{"inspect", filepath.Join(dir, "nope.onnx")}, "nope.onnx"},
		{"truncated model", []string{"compile", truncated, "-o", out, "-O0"}, "truncated"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runCLI(c.args...)
			require.Equal(t, 2, code, "stderr: %s", errOut)
			require.Contains(t, errOut, c.want)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "error should be one line: %q", errOut)
			require.NotContains(t, errOut, "panic")
			_, statErr := os.Stat(out)
			require.True(t, os.IsNotExist(statErr), "no output file may be left behind")
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				require.False(t, strings.Contains(e.Name(), ".tmp"), "temporary file left behind: %s", e.Name())
			}
		})
	}
}

func TestVersionAndCompletion(t *testing.T) {
	code, out, _ := runCLI("version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "tfc "))
	code, out, _ = runCLI("completion", "bash")
	require.Equal(t, 0, code)
	require.Contains(t, out, "bash completion")
}

func TestCompilePassesFlags(t *testing.T) {
	dir := t.TempDir()
	path := tinyModel(t, dir)
	out := filepath.Join(dir, "out.onnx")

	code, stdout, errOut := runCLI("compile", path, "-o", out, "--passes", "canonicalize,infer-shapes", "--print-ir-after", "infer-shapes", "--explain")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, stdout, "# IR after pass 2: infer-shapes")
	require.Contains(t, stdout, "Softmax(")
	require.Contains(t, stdout, "explain:")

	code, _, errOut = runCLI("compile", path, "-o", out, "--passes", "no-such-pass")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "no-such-pass")

	code, _, errOut = runCLI("compile", path, "-o", out, "-O1", "--passes", "canonicalize")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "exclude each other")

	code, stdout, errOut = runCLI("passes")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, stdout, "canonicalize")
	require.Contains(t, stdout, "-O1  canonicalize, infer-shapes")
}

// corpusModel is the tiny BERT every README command uses.
const corpusModel = "../../testdata/models/bert-ts-eager-op17/model.onnx"

func TestRunCheckAgainstReferences(t *testing.T) {
	code, out, errOut := runCLI("run", corpusModel, "--check")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, 3, strings.Count(out, ": ok"), out)

	// A reference that is wrong must be caught: copy data set 1 and
	// replace its first reference output by the computed one plus 0.01.
	dir := t.TempDir()
	src := filepath.Join(filepath.Dir(corpusModel), "test_data_set_1")
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644))
	}
	ref, err := onnx.ReadTensorFile(filepath.Join(dir, "output_0.pb"))
	require.NoError(t, err)
	vals, ok := ref.Float32s()
	require.True(t, ok)
	shifted := make([]float32, len(vals))
	for i, v := range vals {
		shifted[i] = v + 0.01
	}
	require.NoError(t, onnx.WriteTensorFile(filepath.Join(dir, "output_0.pb"), ir.Float32Tensor(ref.Dims, shifted...), ref.Name))
	code, out, errOut = runCLI("run", corpusModel, "--data", dir, "--check")
	require.Equal(t, 1, code, "stdout: %s stderr: %s", out, errOut)
	require.Contains(t, out, "MISMATCH")
	require.Contains(t, out, "worst at flat index")

	// --out writes outputs that then check against themselves at zero tolerance.
	outDir := t.TempDir()
	code, _, errOut = runCLI("run", corpusModel, "--data", src, "--out", outDir)
	require.Equal(t, 0, code, errOut)
	written, err := onnx.ReadTensorFile(filepath.Join(outDir, "test_data_set_0", "output_0.pb"))
	require.NoError(t, err)
	require.Equal(t, ref.Dims, written.Dims)
}

func TestBenchJSON(t *testing.T) {
	code, out, errOut := runCLI("bench", corpusModel, "--batch", "2", "--seq", "16", "--lengths", "uniform:4-16", "--warmup", "1", "--iters", "3", "--json")
	require.Equal(t, 0, code, errOut)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	for _, key := range []string{"median_ms", "p90_ms", "tokens_per_s", "peak_bytes"} {
		require.Contains(t, res, key)
	}
	require.Greater(t, res["median_ms"].(float64), 0.0)
	require.Greater(t, res["peak_bytes"].(float64), 0.0)
	// The memory plan at the benchmarked sizes: never smaller than what the
	// run placed in it, and the safety net never had to copy.
	require.NotContains(t, res, "planned_peak_error")
	require.GreaterOrEqual(t, res["planned_peak_bytes"].(float64), res["placed_bytes"].(float64))
	require.Greater(t, res["placed_bytes"].(float64), 0.0)
	require.Equal(t, 0.0, res["copied_outputs"].(float64))
	valid := res["valid_tokens"].(float64)
	require.True(t, valid >= 8 && valid <= 32, "valid tokens %v outside [8,32]", valid)

	code, _, errOut = runCLI("bench", corpusModel, "--lengths", "uniform:9-3")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "uniform:A-B")
}

func TestCompileTargetOrtAndHTMLReport(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bert.ort.onnx")
	pagePath := filepath.Join(dir, "report.html")
	code, _, errOut := runCLI("compile", corpusModel, "-o", out, "--target", "ort", "--report", pagePath)
	require.Equal(t, 0, code, errOut)

	m, _, err := onnx.DecodeFile(out, onnx.DecodeOptions{})
	require.NoError(t, err)
	defer m.Close()
	m.Graph.Walk(func(n *ir.Node) {
		require.NotEqual(t, "tfc", n.Domain, "--target ort left a tfc op: %s", n.Describe())
	})
	require.Zero(t, m.OpsetVersion("tfc"))

	html, err := os.ReadFile(pagePath)
	require.NoError(t, err)
	page := string(html)
	require.True(t, strings.Contains(page, "<html") && strings.Contains(page, "fuse-attention"), "the page lacks its sections")
	// The page must open offline: nothing it loads may come from a network
	// (the SVG namespace URI is a name, not a fetch).
	fetch := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?https?:|@import`)
	require.Empty(t, fetch.FindString(page), "the page fetches from the network")

	code, _, errOut = runCLI("compile", corpusModel, "-o", out, "--target", "cuda")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "CUDA backend is not built yet")
	code, _, errOut = runCLI("compile", corpusModel, "-o", out, "--target", "tpu")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "tpu")
}

func TestBenchLengthList(t *testing.T) {
	code, out, errOut := runCLI("bench", corpusModel, "--batch", "3", "--seq", "16", "--lengths", "list:5,16,1", "--warmup", "0", "--iters", "1", "--json")
	require.Equal(t, 0, code, errOut)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.EqualValues(t, 22, res["valid_tokens"])

	code, _, errOut = runCLI("bench", corpusModel, "--batch", "3", "--seq", "16", "--lengths", "list:5,17,1")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `"17"`)
	code, _, errOut = runCLI("bench", corpusModel, "--batch", "2", "--seq", "16", "--lengths", "list:5,6,7")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "3 lengths for --batch 2")
}

func TestRunValidOnlyAfterPaddingRemoval(t *testing.T) {
	// -O3 writes zeros at padded positions; data set 2 of the corpus BERT
	// has padding, so a plain --check must flag it and --valid-only must
	// pass (the valid tokens are compared at the usual tolerance).
	code, out, _ := runCLI("run", corpusModel, "-O3", "--check")
	require.Equal(t, 1, code, out)
	code, out, errOut := runCLI("run", corpusModel, "-O3", "--check", "--valid-only")
	require.Equal(t, 0, code, "stdout %s stderr %s", out, errOut)
}
