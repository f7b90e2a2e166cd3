//go:build linux && !arm

package onnx

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestWritebackWriterWritesEverything(t *testing.T) {
	old := writebackChunk
	writebackChunk = 4096
	defer func() { writebackChunk = old }()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	want := make([]byte, 100_003)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	w := newWritebackWriter(f)
	for rest := want; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(9000))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("wrote %d of %d: %v", m, n, err)
		}
		rest = rest[n:]
	}
	if wb := w.(*writebackWriter); wb.synced == 0 || wb.synced > wb.written {
		t.Fatalf("writeback requested up to %d of %d bytes", wb.synced, wb.written)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("file content differs from what was written")
	}
}
