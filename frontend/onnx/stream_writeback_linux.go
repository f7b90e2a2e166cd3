//go:build linux && !arm

package onnx

import (
	"io"
	"os"
	"syscall"
)

// writebackWriter writes to a file and, every writebackChunk bytes, asks
// the kernel to start writing the finished part to disk
// (sync_file_range), so that the disk works while the model is still
// being written instead of during the final fsync, and dirty pages do not
// pile up until the kernel throttles the writer.
type writebackWriter struct {
	f               *os.File
	written, synced int64
}

// writebackChunk is how much is written between writeback requests. A
// variable so that tests can request writeback on small files.
var writebackChunk int64 = 32 << 20

func newWritebackWriter(f *os.File) io.Writer { return &writebackWriter{f: f} }

func (w *writebackWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.synced >= writebackChunk {
		// A hint for speed: the fsync at the end is what makes the file
		// durable, so a failure here is ignored.
		syscall.SyncFileRange(int(w.f.Fd()), w.synced, w.written-w.synced, 2 /* SYNC_FILE_RANGE_WRITE */)
		w.synced = w.written
	}
	return n, err
}
