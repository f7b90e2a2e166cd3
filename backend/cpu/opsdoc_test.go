package cpu_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
)

var update = flag.Bool("update", false, "rewrite generated files (docs/ops.md)")

// TestOpsDoc checks that docs/ops.md is the rendering of the claimed-op
// table; run with -update to regenerate it.
func TestOpsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "ops.md")
	want := cpu.OpsDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with: go test ./backend/cpu -run TestOpsDoc -update)", err)
	}
	if string(got) != want {
		t.Errorf("%s is stale: regenerate with go test ./backend/cpu -run TestOpsDoc -update", path)
	}
}
