package passes

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite generated files (docs/passes.md)")

func TestDocsUpToDate(t *testing.T) {
	path := filepath.Join("..", "docs", "passes.md")
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./passes -update)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date with the registry; run: go test ./passes -update", path)
	}
}
