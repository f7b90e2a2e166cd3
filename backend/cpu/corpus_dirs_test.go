package cpu

import (
	"os"
	"path/filepath"
	"testing"
)

// CorpusModelDirs returns the folders of testdata/models that hold a
// model.onnx, in name order. It skips the test under -short (the corpus
// is slow) and when the corpus is absent. Exported so that the external
// tests of package cpu_test share it.
func CorpusModelDirs(t testing.TB) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("corpus models are slow; skipped with -short")
	}
	root := filepath.Join("..", "..", "testdata", "models")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Skipf("no corpus at %s: %v", root, err)
	}
	var dirs []string
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}
