package cpu_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tfc-compiler/tfc/frontend/onnx"
)

// TestCorpusModels runs every corpus model (testdata/models) whose ops are
// all claimed against the reference outputs stored with it (from ONNX
// Runtime at generation time), at the conformance tolerances.
func TestCorpusModels(t *testing.T) {
	if testing.Short() {
		t.Skip("corpus models are slow; skipped with -short")
	}
	root := filepath.Join("..", "..", "testdata", "models")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Skipf("no corpus at %s: %v", root, err)
	}
	ran := 0
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
			continue
		}
		m, _, err := onnx.DecodeFile(filepath.Join(dir, "model.onnx"), onnx.DecodeOptions{})
		if err != nil {
			t.Errorf("%s: decode: %v", e.Name(), err)
			continue
		}
		if missing := unclaimed(m); len(missing) > 0 {
			t.Logf("%s: skipped, unclaimed ops %v", e.Name(), missing)
			m.Close()
			continue
		}
		start := time.Now()
		if err := runNodeTest(m, dir); err != nil {
			t.Errorf("%s: %v", e.Name(), err)
		} else {
			t.Logf("%s: ok (%v)", e.Name(), time.Since(start).Round(time.Millisecond))
		}
		ran++
		m.Close()
	}
	if ran == 0 {
		t.Errorf("no corpus model ran")
	}
}
