//go:build !unix

package onnx

import "errors"

type mapping struct{ data []byte }

func (m *mapping) Close() error { m.data = nil; return nil }

func mapFile(path string) (*mapping, error) {
	return nil, errors.New("memory mapping is not supported on this platform")
}

const canMmap = false

func (m *mapping) advise(a access) {}
