package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// nodeTestDir returns the folder of the ONNX backend node tests, skipping
// the test when it is absent (failing instead when TFC_REQUIRE_NODE_TESTS=1).
func nodeTestDir(t testing.TB) string {
	dir := os.Getenv("TFC_ONNX_NODE_TESTS")
	if dir == "" {
		// The repository root is two levels up from frontend/onnx.
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

// nodeTestModels lists the model.onnx files under dir, sorted.
func nodeTestModels(t testing.TB, dir string) []string {
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
	return paths
}

// refusedNodeTests lists node-test models tfc refuses on purpose, with the
// reason. Empty: every model must round-trip.
var refusedNodeTests = map[string]string{}

// TestNodeTestsRoundTrip decodes every node-test model, verifies it,
// encodes it, decodes the result and checks that the IR text is identical
// and that encoding again reproduces the same bytes.
func TestNodeTestsRoundTrip(t *testing.T) {
	dir := nodeTestDir(t)
	paths := nodeTestModels(t, dir)
	if len(paths) == 0 {
		t.Fatalf("no model.onnx under %s", dir)
	}
	var ok, refused, failed int
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(p))
		if reason, isRefused := refusedNodeTests[name]; isRefused {
			if _, _, err := DecodeFile(p, DecodeOptions{}); err == nil {
				t.Errorf("%s is listed as refused (%s) but decodes", name, reason)
			}
			refused++
			continue
		}
		if err := roundTrip(p); err != nil {
			failed++
			t.Errorf("%s: %v", name, err)
			continue
		}
		ok++
	}
	t.Logf("node tests: %d models, %d round-trip identically, %d refused on purpose, %d failed", len(paths), ok, refused, failed)
}

type roundTripError struct{ msg string }

func (e *roundTripError) Error() string { return e.msg }

func roundTrip(path string) error { return roundTripWith(path, DecodeOptions{}) }

func roundTripWith(path string, opts DecodeOptions) error {
	m1, _, err := DecodeFile(path, opts)
	if err != nil {
		return err
	}
	defer m1.Close()
	if err := ir.Verify(m1); err != nil {
		return &roundTripError{"verify after decode: " + err.Error()}
	}
	text1 := ir.Print(m1)
	enc1, err := Encode(m1)
	if err != nil {
		return &roundTripError{"encode: " + err.Error()}
	}
	m2, _, err := Decode(enc1, opts)
	if err != nil {
		return &roundTripError{"decode of re-encoded model: " + err.Error()}
	}
	if err := ir.Verify(m2); err != nil {
		return &roundTripError{"verify after re-decode: " + err.Error()}
	}
	if text2 := ir.Print(m2); text2 != text1 {
		return &roundTripError{"IR text differs after round trip:\n" + firstDiff(text1, text2)}
	}
	enc2, err := Encode(m2)
	if err != nil {
		return &roundTripError{"second encode: " + err.Error()}
	}
	if !bytes.Equal(enc1, enc2) {
		return &roundTripError{"encoding is not stable: re-encoding the re-decoded model gives different bytes"}
	}
	return nil
}

// firstDiff shows the first differing line of two texts.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  before: " + x + "\n  after:  " + y
		}
	}
	return "(no line differs)"
}

// TestCorpusRoundTrip round-trips the real exported models shipped in
// testdata/models, with functions inlined and kept.
func TestCorpusRoundTrip(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "models", "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skip("no models under testdata/models yet")
	}
	for _, p := range paths {
		for _, keep := range []bool{false, true} {
			if err := roundTripWith(p, DecodeOptions{KeepFunctions: keep}); err != nil {
				t.Errorf("%s (KeepFunctions=%v): %v", p, keep, err)
			}
		}
	}
}
