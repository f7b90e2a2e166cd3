//go:build unix

package onnx

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// mapping is a read-only memory map of a whole file.
type mapping struct {
	data []byte
	once sync.Once
}

func (m *mapping) Close() error {
	var err error
	m.once.Do(func() {
		if len(m.data) > 0 {
			err = syscall.Munmap(m.data)
		}
		m.data = nil
	})
	return err
}

// mapFile memory-maps path read-only. An empty file gives an empty mapping
// (mmap refuses length 0).
func mapFile(path string) (*mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if size == 0 {
		return &mapping{}, nil
	}
	if size != int64(int(size)) {
		return nil, fmt.Errorf("%s is too large to map (%d bytes)", path, size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("memory-mapping %s: %w", path, err)
	}
	return &mapping{data: data}, nil
}

const canMmap = true

// advise tells the kernel how the whole mapping is about to be read.
func (m *mapping) advise(a access) { adviseRange(m.data, a) }
