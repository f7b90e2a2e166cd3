//go:build !linux || arm

package onnx

import (
	"io"
	"os"
)

// newWritebackWriter writes to f as it is where sync_file_range is not
// available (the final fsync does all the work).
func newWritebackWriter(f *os.File) io.Writer { return f }
