package cpu

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// miniLMPackedInputs builds one PackedAttention call shaped like
// all-MiniLM-L6-v2 at -O3 (12 heads of 32, right padding with lengths
// uniform in [lo, S], the model's additive [B, 1, S, S] bias of 0 and
// float32 min).
func miniLMPackedInputs(rng *rand.Rand, B, S, lo, H, D int) []*Tensor {
	mask := make([]int64, B*S)
	offsets := []int64{0}
	var idx []int64
	for b := 0; b < B; b++ {
		L := lo + rng.IntN(S-lo+1)
		for s := 0; s < L; s++ {
			mask[b*S+s] = 1
			idx = append(idx, int64(b*S+s))
		}
		offsets = append(offsets, int64(len(idx)))
	}
	bias := make([]float32, B*S*S)
	for b := 0; b < B; b++ {
		for i := 0; i < S; i++ {
			for j := 0; j < S; j++ {
				if mask[b*S+j] == 0 {
					bias[(b*S+i)*S+j] = -math.MaxFloat32
				}
			}
		}
	}
	T := len(idx)
	return []*Tensor{
		{DType: ir.Float, Shape: []int{T, H, D}, Data: randFloats(rng, T*H*D)},
		{DType: ir.Float, Shape: []int{T, H, D}, Data: randFloats(rng, T*H*D)},
		{DType: ir.Float, Shape: []int{T, H, D}, Data: randFloats(rng, T*H*D)},
		{DType: ir.Int64, Shape: []int{B + 1}, Data: offsets},
		{DType: ir.Int64, Shape: []int{T}, Data: idx},
		{DType: ir.Int64, Shape: []int{B, S}, Data: mask},
		{DType: ir.Float, Shape: []int{B, 1, S, S}, Data: bias},
	}
}

// BenchmarkPackedAttentionMiniLM times the whole tfc.PackedAttention
// kernel (checks, mask preparation, blocked attention) on one MiniLM
// layer of batch 32, seq 128, lengths uniform in [8, 128].
func BenchmarkPackedAttentionMiniLM(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 7))
	in := miniLMPackedInputs(rng, 32, 128, 8, 12, 32)
	k, err := buildPackedAttention(packedAttentionNode(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		b.Run("threads="+strconv.Itoa(threads), func(b *testing.B) {
			r := testState(threads)
			for range b.N {
				out, err := k(r, in)
				if err != nil {
					b.Fatal(err)
				}
				r.release(out[0])
			}
		})
	}
}

// BenchmarkAttentionBlockedCausal times the dense kernel on GPT-2-small
// heads (12 of 64) with a causal mask and a [B,1,1,S] padding bias.
func BenchmarkAttentionBlockedCausal(b *testing.B) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, s := range []int{128, 512} {
		const B, H, D = 2, 12, 64
		p := &attentionProblem{B: B, Hq: H, Hkv: H, Sq: s, Skv: s, D: D, Dv: D,
			q: randFloats(rng, B*H*s*D), k: randFloats(rng, B*H*s*D), v: randFloats(rng, B*H*s*D), bias: make([]float32, B*s)}
		p.biasStrides, _ = maskStrides("bias", []int{B, 1, 1, s}, [4]int{B, H, s, s})
		for j := s - 5; j < s; j++ {
			p.bias[j] = -1e4 // sequence 0 has 5 padded keys
		}
		par := tfcAttentionParams{scale: 0.125, maskFill: float32(math.Inf(-1)), causal: true}
		y := make([]float32, B*H*s*D)
		b.Run("S="+strconv.Itoa(s), func(b *testing.B) {
			r := testState(2)
			for range b.N {
				if err := attentionBlocked(r, par, p, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
