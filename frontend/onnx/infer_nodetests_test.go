package onnx_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// minShapeAgreements guards against regressions in the shape rules: the
// number of node-test outputs whose inferred type equals the declared one
// (1,668 of 2,226 when this was written; the rest are outputs of ops
// without rules or whose shapes depend on run-time input values).
const minShapeAgreements = 1600

// inferNodeTestDir returns the ONNX backend node-test folder, skipping when
// it is absent (failing instead when TFC_REQUIRE_NODE_TESTS=1).
func inferNodeTestDir(t *testing.T) string {
	dir := os.Getenv("TFC_ONNX_NODE_TESTS")
	if dir == "" {
		// ../shared/onnx-node relative to the repository root, which is
		// two levels above frontend/onnx.
		dir = filepath.Join("..", "..", "..", "shared", "onnx-node")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if os.Getenv("TFC_REQUIRE_NODE_TESTS") == "1" {
			t.Fatalf("ONNX node tests are required (TFC_REQUIRE_NODE_TESTS=1) but %s is not a folder: %v", dir, err)
		}
		t.Skipf("ONNX node tests not found at %s (set TFC_ONNX_NODE_TESTS); skipping", dir)
	}
	return dir
}

// TestNodeTestShapes decodes every node-test model, checks that Verify
// accepts it with its declared types, then clears the types of every node
// output (nested graphs included), runs ir.InferShapes and compares the
// main graph's outputs with the types the model declared (written by ONNX's
// own shape inference). Inferred types must never contradict them.
func TestNodeTestShapes(t *testing.T) {
	dir := inferNodeTestDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name(), "model.onnx")
		if _, err := os.Stat(p); err == nil {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		t.Fatalf("no model.onnx under %s", dir)
	}
	var models, agree, partial, unknown, contradictions, verifyFailures, inferErrors int
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(p))
		m, _, err := onnx.DecodeFile(p, onnx.DecodeOptions{})
		if err != nil {
			// Decoding is TestNodeTestsRoundTrip's business.
			t.Logf("%s: not decoded: %v", name, err)
			continue
		}
		models++
		if err := ir.Verify(m); err != nil {
			verifyFailures++
			t.Errorf("%s: Verify rejects the model as declared: %v", name, err)
		}
		declared := map[*ir.Value]ir.Type{}
		for _, o := range m.Graph.Outputs {
			if p, _ := o.Producer(); p != nil {
				declared[o] = o.Type.Clone()
			}
		}
		m.Graph.Walk(func(n *ir.Node) {
			for _, o := range n.Outputs {
				if o != nil {
					o.Type = ir.Type{}
				}
			}
		})
		if _, err := ir.InferShapes(m); err != nil {
			inferErrors++
			t.Errorf("%s: InferShapes: %v", name, err)
			m.Close()
			continue
		}
		for _, o := range m.Graph.Outputs {
			want, ok := declared[o]
			if !ok {
				continue
			}
			got := o.Type
			switch {
			case want.Conflicts(got):
				contradictions++
				t.Errorf("%s: output %q declared %v, inferred %v", name, o.Name, want, got)
			case got.String() == want.String():
				agree++
			case got.Kind == ir.KindUnknown:
				unknown++
			default:
				partial++
			}
		}
		m.Close()
	}
	t.Logf("shape inference on %d node-test models: outputs agreeing %d, consistent but less specific %d, unknown %d, contradictions %d; Verify failures %d, InferShapes errors %d",
		models, agree, partial, unknown, contradictions, verifyFailures, inferErrors)
	if agree < minShapeAgreements {
		t.Errorf("only %d outputs agree with the declared types, want at least %d", agree, minShapeAgreements)
	}
}

// TestCorpusShapes runs shape inference on the exported transformer models
// of testdata/models with every node output's type cleared, and checks the
// graph outputs against the shapes the exporter declared: no
// contradictions, and every output's rank known. It logs how many outputs
// were inferred with every dimension known or symbolic.
func TestCorpusShapes(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "models", "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skip("no models under testdata/models")
	}
	var outputs, complete int
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(p))
		m, _, err := onnx.DecodeFile(p, onnx.DecodeOptions{})
		if err != nil {
			t.Logf("%s: not decoded: %v", name, err)
			continue
		}
		declared := map[*ir.Value]ir.Type{}
		for _, o := range m.Graph.Outputs {
			declared[o] = o.Type.Clone()
		}
		m.Graph.Walk(func(n *ir.Node) {
			for _, o := range n.Outputs {
				if o != nil {
					o.Type = ir.Type{}
				}
			}
		})
		if _, err := ir.InferShapes(m); err != nil {
			t.Errorf("%s: InferShapes: %v", name, err)
			m.Close()
			continue
		}
		for _, o := range m.Graph.Outputs {
			outputs++
			want, got := declared[o], o.Type
			if want.Conflicts(got) {
				t.Errorf("%s: output %q declared %v, inferred %v", name, o.Name, want, got)
			}
			if got.Rank() < 0 {
				t.Errorf("%s: output %q: rank not inferred (declared %v)", name, o.Name, want)
				continue
			}
			full := true
			for _, d := range got.Shape {
				if !d.IsKnown() && !d.IsSym() {
					full = false
				}
			}
			if full {
				complete++
			} else {
				t.Logf("%s: output %q inferred %v (declared %v)", name, o.Name, got, want)
			}
		}
		m.Close()
	}
	t.Logf("corpus: %d models, %d of %d outputs inferred with every dimension known or symbolic", len(paths), complete, outputs)
}
