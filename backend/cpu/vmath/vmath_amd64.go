//go:build amd64 && !purego

package vmath

import (
	"math"

	"github.com/tfc-compiler/tfc/backend/cpu/gemm"
)

// useAsm is true when the AVX2+FMA assembly can run (gemm's CPUID probe).
// Tests flip it to exercise the Go functions too.
var useAsm = gemm.HasAVX2FMA()

// The assembly kernels. Each processes n >= 1 elements, 8 per iteration,
// and the last n%8 with masked loads and stores (VMASKMOVPS), so nothing
// outside the slices is touched. The exported wrappers check lengths.

//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func erfAVX2(dst, src *float32, n int)

//go:noescape
func tanhAVX2(dst, src *float32, n int)

//go:noescape
func geluAVX2(dst, src *float32, n int)

//go:noescape
func geluTanhAVX2(dst, src *float32, n int)

//go:noescape
func biasGeluAVX2(dst, x, bias *float32, n int)

//go:noescape
func biasGeluTanhAVX2(dst, x, bias *float32, n int)

// maxScaledAVX2 is maxScaledGo; expSumAVX2 is expSumGo for arguments
// scale*v - m <= ~0 (softmax's, so 2^n needs one factor), with the sum in
// 8 lanes; scaleAVX2 is scaleGo.
//
//go:noescape
func maxScaledAVX2(p *float32, n int, scale float32) float32

//go:noescape
func expSumAVX2(p *float32, n int, scale, m float32) float32

//go:noescape
func scaleAVX2(p *float32, n int, s float32)

// asmConst is one constant of the assembly, broadcast to 8 lanes in
// vconst so that instructions can take it as a 256-bit memory operand.
// The .s file addresses row i as 32*i(R8) through its "#define C_<name>"
// lines; TestAsmConstOffsets checks that they agree with this table.
type asmConst struct {
	name string
	bits uint32
}

func f32bits(x float32) uint32 { return math.Float32bits(x) }

var asmConsts = [...]asmConst{
	{"ONE", f32bits(1)},
	{"HALF", f32bits(0.5)},
	{"ABSMASK", 0x7fffffff},
	{"INF", f32bits(float32(math.Inf(1)))},
	{"NEGINF", f32bits(float32(math.Inf(-1)))},
	{"EXPBIAS", 127},
	{"LOG2E", f32bits(expLog2e)},
	{"LN2HI", f32bits(expLn2Hi)},
	{"LN2LO", f32bits(expLn2Lo)},
	{"EXP_A0", f32bits(expA0)},
	{"EXP_A1", f32bits(expA1)},
	{"EXP_B0", f32bits(expB0)},
	{"EXP_B1", f32bits(expB1)},
	{"EXP_C0", f32bits(expC0)},
	{"EXP_C1", f32bits(expC1)},
	{"EXP_LO", f32bits(expLo)},
	{"EXP_HI", f32bits(expHi)},
	{"ERF_CLAMP", f32bits(erfClamp)},
	{"ERF_NCLAMP", f32bits(-erfClamp)},
	{"ERF_P0", f32bits(erfP0)},
	{"ERF_P1", f32bits(erfP1)},
	{"ERF_P2", f32bits(erfP2)},
	{"ERF_P3", f32bits(erfP3)},
	{"ERF_P4", f32bits(erfP4)},
	{"ERF_P5", f32bits(erfP5)},
	{"ERF_P6", f32bits(erfP6)},
	{"ERF_Q0", f32bits(erfQ0)},
	{"ERF_Q1", f32bits(erfQ1)},
	{"ERF_Q2", f32bits(erfQ2)},
	{"ERF_Q3", f32bits(erfQ3)},
	{"ERF_Q4", f32bits(erfQ4)},
	{"TANH_CLAMP", f32bits(tanhClamp)},
	{"TANH_NCLAMP", f32bits(-tanhClamp)},
	{"TANH_TINY", f32bits(tanhTiny)},
	{"TANH_A13", f32bits(tanhA13)},
	{"TANH_A11", f32bits(tanhA11)},
	{"TANH_A9", f32bits(tanhA9)},
	{"TANH_A7", f32bits(tanhA7)},
	{"TANH_A5", f32bits(tanhA5)},
	{"TANH_A3", f32bits(tanhA3)},
	{"TANH_A1", f32bits(tanhA1)},
	{"TANH_B6", f32bits(tanhB6)},
	{"TANH_B4", f32bits(tanhB4)},
	{"TANH_B2", f32bits(tanhB2)},
	{"TANH_B0", f32bits(tanhB0)},
	{"INV_SQRT2", f32bits(invSqrt2)},
	{"GT_K0", f32bits(geluTanhK0)},
	{"GT_K1", f32bits(geluTanhK1)},
	{"NEGONE", f32bits(-1)},
}

// vconst is asmConsts broadcast to 8 lanes (read by the assembly as
// ·vconst(SB)). The linker aligns data of this size to 32 bytes, so no
// row straddles a cache line; alignment only affects speed.
var vconst [len(asmConsts)][8]uint32

// tailMask is 8 all-ones lanes then 8 zero lanes: the 8 words starting at
// index 8-k mask the first k lanes, for the masked tail of a slice.
var tailMask = [16]int32{-1, -1, -1, -1, -1, -1, -1, -1}

func init() {
	for i, c := range asmConsts {
		for j := range vconst[i] {
			vconst[i][j] = c.bits
		}
	}
}
