package vmath

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// oldSkipLayerNormRow is the scalar loop the CPU backend ran before
// SkipLayerNormRow (statistics in float64), kept as the benchmark's
// baseline.
func oldSkipLayerNormRow(y, x, skip, bias, gamma, beta []float32, eps float64) {
	var total float64
	for j := range y {
		v := x[j] + skip[j] + bias[j]
		y[j] = v
		total += float64(v)
	}
	mu := total / float64(len(y))
	var ss float64
	for _, v := range y {
		d := float64(v) - mu
		ss += d * d
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(y))+eps))
	m32 := float32(mu)
	for j, v := range y {
		y[j] = (v-m32)*inv*gamma[j] + beta[j]
	}
}

// BenchmarkSkipLayerNormRow: one transformer-width row (MiniLM's 384 and
// BERT-base's 768) with skip, bias and beta, as tfc.SkipLayerNorm runs it.
func BenchmarkSkipLayerNormRow(b *testing.B) {
	for _, n := range []int{384, 768} {
		rng := rand.New(rand.NewPCG(1, 3))
		x, skip, bias := randRow(rng, n, 0, 1), randRow(rng, n, 0, 1), randRow(rng, n, 0, 1)
		gamma, beta, y := randRow(rng, n, 1, 0.5), randRow(rng, n, 0, 1), make([]float32, n)
		name := fmt.Sprintf("n=%d", n)
		b.Run(name, func(b *testing.B) {
			benchImpls(b, func(b *testing.B) {
				for b.Loop() {
					SkipLayerNormRow(y, nil, x, skip, bias, gamma, beta, 1e-5, false)
				}
				reportPerElement(b, n)
			})
			b.Run("impl=old", func(b *testing.B) {
				for b.Loop() {
					oldSkipLayerNormRow(y, x, skip, bias, gamma, beta, 1e-5)
				}
				reportPerElement(b, n)
			})
		})
	}
}
