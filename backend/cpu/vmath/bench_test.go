package vmath

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Benchmarks report ns/element for the assembly and the Go versions; the
// Go versions are the scalar loops the CPU kernels used before this
// package. Slices of 4096 floats stay in L1 (16 KiB each).

func benchImpls(b *testing.B, f func(b *testing.B)) {
	for _, impl := range []string{"asm", "go"} {
		if impl == "asm" && !useAsm {
			continue
		}
		b.Run("impl="+impl, func(b *testing.B) { withImpl(impl, func() { f(b) }) })
	}
}

func reportPerElement(b *testing.B, n int) {
	b.SetBytes(int64(4 * n))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
}

func BenchmarkUnary(b *testing.B) {
	const n = 4096
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range unaryCases {
		src := make([]float32, n)
		for i := range src {
			src[i] = c.rand(rng)
		}
		dst := make([]float32, n)
		b.Run(c.name, func(b *testing.B) {
			benchImpls(b, func(b *testing.B) {
				for b.Loop() {
					c.fn(dst, src)
				}
				reportPerElement(b, n)
			})
		})
	}
}

func BenchmarkBiasGelu(b *testing.B) {
	const n = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	x, bias, dst := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range x {
		x[i], bias[i] = float32(8*rng.Float64()-4), float32(rng.Float64()-0.5)
	}
	for _, f := range []struct {
		name string
		fn   func(dst, x, bias []float32)
	}{{"erf", BiasGelu}, {"tanh", BiasGeluTanh}} {
		b.Run(f.name, func(b *testing.B) {
			benchImpls(b, func(b *testing.B) {
				for b.Loop() {
					f.fn(dst, x, bias)
				}
				reportPerElement(b, n)
			})
		})
	}
}

// BenchmarkSoftmax uses attention-sized rows (sequence lengths).
func BenchmarkSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	for _, n := range []int{37, 128, 4096} {
		in := make([]float32, n)
		for i := range in {
			in[i] = float32(20*rng.Float64() - 10)
		}
		row := make([]float32, n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			benchImpls(b, func(b *testing.B) {
				for b.Loop() {
					copy(row, in)
					Softmax(row)
				}
				reportPerElement(b, n)
			})
		})
	}
}
