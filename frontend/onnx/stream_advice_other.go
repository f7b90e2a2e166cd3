//go:build !linux

package onnx

// adviseRange is a no-op where tfc does not issue madvise (the syscall
// package offers it on Linux only).
func adviseRange(b []byte, a access) {}
