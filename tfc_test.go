package tfc_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tfc-compiler/tfc"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// storedCounts reads testdata/models/STORED_COUNTS.tsv, written by
// tools/roundtrip/stored_counts.py with the official Python onnx package:
// an independent decoder's view of each corpus model.
func storedCounts(t *testing.T) map[string]map[string]int {
	t.Helper()
	f, err := os.Open("testdata/models/STORED_COUNTS.tsv")
	require.NoError(t, err, "regenerate with tools/roundtrip/stored_counts.py")
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	header := strings.Split(sc.Text(), "\t")
	out := map[string]map[string]int{}
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		row := map[string]int{}
		for i := 1; i < len(cols) && i < len(header); i++ {
			n, err := strconv.Atoi(cols[i])
			require.NoError(t, err)
			row[header[i]] = n
		}
		out[cols[0]] = row
	}
	return out
}

// TestCorpusDecodeAgreesAndRoundTrips decodes every corpus model, checks
// the node and initializer counts against the Python onnx package's, runs
// Compile at -O0, re-encodes, re-decodes, and requires identical IR text.
func TestCorpusDecodeAgreesAndRoundTrips(t *testing.T) {
	paths, err := filepath.Glob("testdata/models/*/model.onnx")
	require.NoError(t, err)
	require.NotEmpty(t, paths, "the model corpus under testdata/models is missing")
	counts := storedCounts(t)
	for _, path := range paths {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			want, ok := counts[name]
			require.True(t, ok, "%s is not in STORED_COUNTS.tsv: regenerate it", name)

			stored, info, err := onnx.DecodeFile(path, onnx.DecodeOptions{KeepFunctions: true})
			require.NoError(t, err)
			defer stored.Close()
			require.Equal(t, want["nodes"], info.StoredNodeCount, "main-graph nodes as stored")
			require.Equal(t, want["nodes"], len(stored.Graph.Nodes))
			require.Equal(t, want["initializers"]+want["sparse_initializers"], len(stored.Graph.Constants))
			require.Equal(t, want["functions"], len(stored.Functions))
			require.Equal(t, want["outputs"], len(stored.Graph.Outputs))

			m, err := tfcLoad(path)
			require.NoError(t, err)
			defer m.Close()
			before := ir.Print(m)
			res, err := tfc.Compile(context.Background(), m, tfc.Options{Level: 0})
			require.NoError(t, err)
			out := filepath.Join(t.TempDir(), "out.onnx")
			require.NoError(t, tfc.Save(res.Model, out))
			again, err := tfcLoad(out)
			require.NoError(t, err)
			defer again.Close()
			require.NoError(t, ir.Verify(again))
			require.Equal(t, before, ir.Print(again))
		})
	}
}

func tfcLoad(path string) (*ir.Model, error) {
	m, _, err := tfc.Load(path)
	return m, err
}

func TestCompileRejectsBadLevel(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOfSizes(ir.Float, 2))
	b.Output(b.Op("Relu", x))
	_, err := tfc.Compile(context.Background(), b.Model(), tfc.Options{Level: 9})
	require.ErrorContains(t, err, "level 9")
}
