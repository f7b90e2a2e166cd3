package cpu_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
)

// TestCorpusModels runs every corpus model (testdata/models) whose ops are
// all claimed against the reference outputs stored with it (from ONNX
// Runtime at generation time), at the conformance tolerances.
func TestCorpusModels(t *testing.T) {
	ran := 0
	for _, dir := range cpu.CorpusModelDirs(t) {
		name := filepath.Base(dir)
		m, _, err := onnx.DecodeFile(filepath.Join(dir, "model.onnx"), onnx.DecodeOptions{})
		if err != nil {
			t.Errorf("%s: decode: %v", name, err)
			continue
		}
		if missing := unclaimed(m); len(missing) > 0 {
			t.Logf("%s: skipped, unclaimed ops %v", name, missing)
			m.Close()
			continue
		}
		start := time.Now()
		if err := runNodeTest(m, dir); err != nil {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: ok (%v)", name, time.Since(start).Round(time.Millisecond))
		}
		ran++
		m.Close()
	}
	if ran == 0 {
		t.Errorf("no corpus model ran")
	}
}
