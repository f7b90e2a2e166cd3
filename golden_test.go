package tfc_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tfc-compiler/tfc"
	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/passes"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// TestGoldenPipelines compiles every corpus model at -O1 and -O2 and
// compares the IR text with testdata/golden/<model>.O<level>.txt
// (regenerate with `go test ./... -update` and review the diff like code).
// It also requires that running the pipeline on its own output changes
// nothing.
func TestGoldenPipelines(t *testing.T) {
	paths, err := filepath.Glob("testdata/models/*/model.onnx")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	seen := map[string]bool{}
	for _, path := range paths {
		name := filepath.Base(filepath.Dir(path))
		for _, level := range []int{1, 2} {
			golden := filepath.Join("testdata", "golden", fmt.Sprintf("%s.O%d.txt", name, level))
			seen[golden] = true
			t.Run(fmt.Sprintf("%s/O%d", name, level), func(t *testing.T) {
				m, _, err := tfc.Load(path)
				require.NoError(t, err)
				defer m.Close()
				res, err := tfc.Compile(context.Background(), m, tfc.Options{Level: level, VerifyEach: true})
				require.NoError(t, err)
				got := ir.Print(res.Model)

				pipe, err := passes.ForLevel(level)
				require.NoError(t, err)
				pipe.VerifyEach = true
				require.NoError(t, passes.CheckIdempotent(nil, pipe, res.Model), "-O%d is not idempotent", level)

				if *update {
					require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
					require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
					return
				}
				want, err := os.ReadFile(golden)
				require.NoError(t, err, "missing golden file: run go test ./... -update")
				if string(want) != got {
					t.Errorf("%s differs from the compiled IR (run go test ./... -update and review the diff):\n%s", golden, firstDiff(string(want), got))
				}
			})
		}
	}
	// A golden file whose model is gone is stale.
	files, _ := filepath.Glob("testdata/golden/*.txt")
	for _, f := range files {
		if !seen[f] {
			if *update {
				require.NoError(t, os.Remove(f))
			} else {
				t.Errorf("%s has no corpus model: run go test ./... -update", f)
			}
		}
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d\n  want: %s\n  got:  %s", i+1, a, b)
		}
	}
	return "(no difference found)"
}
