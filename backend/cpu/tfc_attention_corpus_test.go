package cpu_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/internal/refdata"
	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/passes"
)

// attentionFusionSpec is the pipeline under test: what -O2 runs up to and
// including fuse-attention, and the cleanup after it.
const attentionFusionSpec = "canonicalize,infer-shapes,fuse-attention,canonicalize"

// denseAttentionKinds are the manifest's attention_kind parts that fuse
// into tfc.Attention; a model whose kind has any other part (block-sparse,
// low-rank, kernel, ...) is not required to fuse.
var denseAttentionKinds = map[string]bool{"bidirectional": true, "causal": true, "cross": true, "relative-bias": true, "windowed": true}

// knownUnfused are dense-attention corpus models that fuse-attention does
// not fuse yet, with why (the --explain reason, shortened). The test fails
// if one of them starts fusing, so that this list stays true.
var knownUnfused = map[string]string{}

type manifestRow struct {
	kind   string
	layers int
}

func readManifest(t *testing.T, path string) map[string]manifestRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	defer f.Close()
	rows := map[string]manifestRow{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var col map[string]int
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if col == nil {
			col = map[string]int{}
			for i, h := range fields {
				col[h] = i
			}
			if _, ok := col["attention_layers"]; !ok {
				t.Fatalf("%s has no attention_layers column", path)
			}
			continue
		}
		n, _ := strconv.Atoi(fields[col["attention_layers"]])
		rows[fields[col["name"]]] = manifestRow{kind: fields[col["attention_kind"]], layers: n}
	}
	return rows
}

func isDense(kind string) bool {
	for _, part := range strings.Split(kind, "+") {
		if !denseAttentionKinds[part] {
			return false
		}
	}
	return kind != ""
}

// TestAttentionFusionCorpus runs canonicalize, infer-shapes and
// fuse-attention on every corpus model, counts tfc.Attention against the
// manifest's attention_layers for dense kinds, and checks that the fused
// model's outputs match the stored reference outputs (rtol 1e-3, atol
// 1e-4) for every model whose unfused graph the CPU backend runs.
func TestAttentionFusionCorpus(t *testing.T) {
	dirs := cpu.CorpusModelDirs(t)
	manifest := readManifest(t, filepath.Join("..", "..", "testdata", "models", "MANIFEST.tsv"))
	var table []string
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			row, inManifest := manifest[name]
			m, _, err := onnx.DecodeFile(filepath.Join(dir, "model.onnx"), onnx.DecodeOptions{})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			defer m.Close()
			runs := len(unclaimed(m)) == 0
			p, err := passes.ParseSpec(attentionFusionSpec)
			if err != nil {
				t.Fatal(err)
			}
			p.VerifyEach = true
			p.ReproDir = t.TempDir()
			ctx := &passes.Context{Explain: &passes.Explanations{}}
			if _, err := p.Run(ctx, m); err != nil {
				t.Fatalf("%s: %v", attentionFusionSpec, err)
			}
			// Idempotence: the pipeline on its own output changes nothing.
			before := passes.Fingerprint(m.Graph)
			if _, err := p.Run(&passes.Context{}, m); err != nil {
				t.Fatalf("second run: %v", err)
			}
			if passes.Fingerprint(m.Graph) != before {
				t.Errorf("running %s on its own output changed the graph", attentionFusionSpec)
			}
			fused := 0
			m.Graph.Walk(func(n *ir.Node) {
				if n.Domain == "tfc" && n.Op == "Attention" {
					fused++
				}
			})
			var reasons []string
			for _, x := range ctx.Explain.Items {
				if x.Pass == "fuse-attention" {
					reasons = append(reasons, x.String())
				}
			}
			for _, r := range reasons {
				t.Logf("explain: %s", r)
			}
			countOK := "-"
			if inManifest && isDense(row.kind) {
				_, known := knownUnfused[name]
				switch {
				case fused == row.layers && known:
					t.Errorf("fused all %d layers but knownUnfused lists it: update the list", fused)
				case fused == row.layers:
					countOK = "yes"
				case known:
					countOK = "no (known)"
				default:
					countOK = "no"
					t.Errorf("fused %d attention layers, manifest says %d (%s)", fused, row.layers, row.kind)
				}
				if fused != row.layers && len(reasons) == 0 {
					t.Errorf("attention left unfused without an --explain reason")
				}
			}
			parity := "not run (unclaimed ops)"
			if runs {
				if err := runWithTolerance(m, dir, 1e-3, 1e-4); err != nil {
					parity = "FAIL"
					t.Errorf("parity after fusion: %v", err)
				} else {
					parity = "ok"
				}
			}
			// The whole -O2 pipeline, on a fresh decode: the other fusions
			// must leave the attention fusions as they are.
			o2 := "not run (unclaimed ops)"
			if runs {
				o2 = "ok"
				if err := checkLevel2(dir, fused); err != nil {
					o2 = "FAIL"
					t.Errorf("-O2: %v", err)
				}
			}
			table = append(table, fmt.Sprintf("| %s | %s | %d | %d | %s | %s | %s |", name, row.kind, row.layers, fused, countOK, parity, o2))
		})
	}
	sort.Strings(table)
	t.Logf("\n| model | attention kind | manifest layers | fused | count ok | parity (%s) | -O2 fused same + parity |\n|---|---|---|---|---|---|---|\n%s", attentionFusionSpec, strings.Join(table, "\n"))
}

// runWithTolerance runs every data set of dir through m on the CPU backend
// and compares each output with the stored one (refdata.Compare at rtol,
// atol: NaN only where the reference has NaN).
func runWithTolerance(m *ir.Model, dir string, rtol, atol float64) error {
	exe, err := cpu.Compile(m, cpu.Options{Threads: 2})
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	return refdata.Check(context.Background(), exe, m.Graph, dir, func(got, want *cpu.Tensor) error {
		return refdata.Compare(got, want, rtol, atol).Err()
	})
}

// checkLevel2 runs -O2 on a fresh decode of dir's model, checks that it
// fuses the same number of attention layers as fuse-attention alone, and
// checks parity against the stored outputs.
func checkLevel2(dir string, wantFused int) error {
	m, _, err := onnx.DecodeFile(filepath.Join(dir, "model.onnx"), onnx.DecodeOptions{})
	if err != nil {
		return err
	}
	defer m.Close()
	p, err := passes.ForLevel(2)
	if err != nil {
		return err
	}
	p.VerifyEach = true
	p.ReproDir = os.TempDir()
	if _, err := p.Run(nil, m); err != nil {
		return err
	}
	fused := 0
	m.Graph.Walk(func(n *ir.Node) {
		if n.Domain == "tfc" && n.Op == "Attention" {
			fused++
		}
	})
	if fused != wantFused {
		return fmt.Errorf("fused %d attention layers, fuse-attention alone %d", fused, wantFused)
	}
	return runWithTolerance(m, dir, 1e-3, 1e-4)
}
