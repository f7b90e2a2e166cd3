//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA kernels of package vmath: 8 floats per iteration, the last
// n%8 with VMASKMOVPS (masked loads do not fault on masked-out lanes, so
// nothing outside the slices is read or written). Each kernel evaluates
// the formula of its Go twin in scalar.go with the same constants.
//
// Registers: R8 = &vconst (the constants, one 8-lane row each, named by
// the C_ defines below), SI/DX sources, DI destination, CX count, Y15
// the tail mask; Y0 holds the input of a body macro, Y1 its result, Y2-Y8
// are scratch. Y9-Y14 hold per-kernel constants that must be registers
// (the first operand of a NaN-keeping clamp; see ERF), loaded before the
// loop: exp range Y13/Y14, erf clamp Y13/Y14, tanh clamp Y11/Y12 and cap
// Y9/Y10; the softmax kernels use Y8-Y13 for their own values.

// Row offsets in vconst; TestAsmConstOffsets checks them against
// asmConsts in vmath_amd64.go.
#define C_ONE 0(R8)
#define C_HALF 32(R8)
#define C_ABSMASK 64(R8)
#define C_INF 96(R8)
#define C_NEGINF 128(R8)
#define C_EXPBIAS 160(R8)
#define C_LOG2E 192(R8)
#define C_LN2HI 224(R8)
#define C_LN2LO 256(R8)
#define C_EXP_A0 288(R8)
#define C_EXP_A1 320(R8)
#define C_EXP_B0 352(R8)
#define C_EXP_B1 384(R8)
#define C_EXP_C0 416(R8)
#define C_EXP_C1 448(R8)
#define C_EXP_LO 480(R8)
#define C_EXP_HI 512(R8)
#define C_ERF_CLAMP 544(R8)
#define C_ERF_NCLAMP 576(R8)
#define C_ERF_P0 608(R8)
#define C_ERF_P1 640(R8)
#define C_ERF_P2 672(R8)
#define C_ERF_P3 704(R8)
#define C_ERF_P4 736(R8)
#define C_ERF_P5 768(R8)
#define C_ERF_P6 800(R8)
#define C_ERF_Q0 832(R8)
#define C_ERF_Q1 864(R8)
#define C_ERF_Q2 896(R8)
#define C_ERF_Q3 928(R8)
#define C_ERF_Q4 960(R8)
#define C_TANH_CLAMP 992(R8)
#define C_TANH_NCLAMP 1024(R8)
#define C_TANH_TINY 1056(R8)
#define C_TANH_A13 1088(R8)
#define C_TANH_A11 1120(R8)
#define C_TANH_A9 1152(R8)
#define C_TANH_A7 1184(R8)
#define C_TANH_A5 1216(R8)
#define C_TANH_A3 1248(R8)
#define C_TANH_A1 1280(R8)
#define C_TANH_B6 1312(R8)
#define C_TANH_B4 1344(R8)
#define C_TANH_B2 1376(R8)
#define C_TANH_B0 1408(R8)
#define C_INV_SQRT2 1440(R8)
#define C_GT_K0 1472(R8)
#define C_GT_K1 1504(R8)
#define C_NEGONE 1536(R8)

// TAILMASK sets Y15 to CX all-ones lanes then zeros (1 <= CX <= 7),
// from the 8 words of tailMask at index 8-CX. Clobbers CX and R9.
#define TAILMASK \
	LEAQ    ·tailMask+32(SB), R9 \
	SHLQ    $2, CX              \
	SUBQ    CX, R9              \
	VMOVDQU (R9), Y15

// EXP_POLY(X): for x in X, Y4 = e^r and Y1 = n (int32 lanes) with
// x = n ln2 + r (Cephes expf, as ScalarExp). Clobbers Y2, Y3, Y5-Y7.
#define EXP_POLY(X) \
	VMULPS       C_LOG2E, X, Y1  \
	VROUNDPS     $0, Y1, Y1      \ // n = round-to-even(x log2e)
	VMOVAPS      X, Y2           \
	VFNMADD231PS C_LN2HI, Y1, Y2 \ // r = x - n ln2Hi
	VFNMADD231PS C_LN2LO, Y1, Y2 \ //     - n ln2Lo
	VMULPS       Y2, Y2, Y3      \ // z = r^2
	VMOVUPS      C_EXP_A1, Y4    \
	VFMADD213PS  C_EXP_A0, Y2, Y4 \ // a = A0 + A1 r
	VMOVUPS      C_EXP_B1, Y5    \
	VFMADD213PS  C_EXP_B0, Y2, Y5 \ // b = B0 + B1 r
	VMOVUPS      C_EXP_C1, Y6    \
	VFMADD213PS  C_EXP_C0, Y2, Y6 \ // c = C0 + C1 r
	VFMADD231PS  Y5, Y3, Y4      \ // a + z b
	VMULPS       Y3, Y3, Y7      \
	VFMADD231PS  Y6, Y7, Y4      \ // a + z b + z^2 c
	VFMADD213PS  Y2, Y3, Y4      \ // (...) z + r
	VADDPS       C_ONE, Y4, Y4   \ // + 1
	VCVTPS2DQ    Y1, Y1

// EXP: Y1 = exp(Y0) with ScalarExp's range rules, with Y13 = expLo and
// Y14 = expHi. The polynomial runs on x clamped to [expLo, expHi] (NaN
// kept: VMAXPS/VMINPS return their second Intel-order source, x, when an
// operand is NaN), so out-of-range lanes never make subnormal or garbage
// intermediates (subnormal operands cost microcode assists); the two
// selects then give 0 below expLo and +Inf above expHi, and NaN compares
// false and stays NaN. 2^n is applied as two factors 2^(n>>1) and
// 2^(n-(n>>1)) because n spans [-126, 128] and 2^128 is not a float.
// Clobbers Y2-Y8.
#define EXP \
	VMAXPS    Y0, Y13, Y8      \
	VMINPS    Y8, Y14, Y8      \
	EXP_POLY(Y8)               \
	VPSRAD    $1, Y1, Y2       \
	VPSUBD    Y2, Y1, Y1       \
	VPADDD    C_EXPBIAS, Y2, Y2 \
	VPADDD    C_EXPBIAS, Y1, Y1 \
	VPSLLD    $23, Y2, Y2      \
	VPSLLD    $23, Y1, Y1      \
	VMULPS    Y2, Y4, Y4       \
	VMULPS    Y1, Y4, Y4       \
	VCMPPS    $1, C_EXP_LO, Y0, Y2 \ // x < expLo
	VANDNPS   Y4, Y2, Y4       \
	VCMPPS    $14, C_EXP_HI, Y0, Y2 \ // x > expHi
	VBLENDVPS Y2, C_INF, Y4, Y1

// EXP_NONPOS: EXP for x in Y0 <= 0 (softmax's arguments), with Y13 =
// expLo: n <= 0, so 2^n is one normal factor and only the low end needs
// the clamp and the select. Clobbers Y2-Y8.
#define EXP_NONPOS \
	VMAXPS    Y0, Y13, Y8      \
	EXP_POLY(Y8)               \
	VPADDD    C_EXPBIAS, Y1, Y1 \
	VPSLLD    $23, Y1, Y1      \
	VMULPS    Y1, Y4, Y4       \
	VCMPPS    $1, C_EXP_LO, Y0, Y2 \ // x < expLo
	VANDNPS   Y4, Y2, Y1

// ERF(X): Y1 = erf(X) as ScalarErf, with Y14 = 4 and Y13 = -4. The clamp
// keeps NaN: VMINPS/VMAXPS return their second source (Intel order), X,
// when an operand is NaN. Clobbers Y2-Y4.
#define ERF(X) \
	VMINPS      X, Y14, Y2       \
	VMAXPS      Y2, Y13, Y2      \
	VMULPS      Y2, Y2, Y3       \ // x^2
	VMOVUPS     C_ERF_P0, Y1     \
	VFMADD213PS C_ERF_P1, Y3, Y1 \
	VFMADD213PS C_ERF_P2, Y3, Y1 \
	VFMADD213PS C_ERF_P3, Y3, Y1 \
	VFMADD213PS C_ERF_P4, Y3, Y1 \
	VFMADD213PS C_ERF_P5, Y3, Y1 \
	VFMADD213PS C_ERF_P6, Y3, Y1 \
	VMULPS      Y2, Y1, Y1       \ // p = x P(x^2)
	VMOVUPS     C_ERF_Q0, Y4     \
	VFMADD213PS C_ERF_Q1, Y3, Y4 \
	VFMADD213PS C_ERF_Q2, Y3, Y4 \
	VFMADD213PS C_ERF_Q3, Y3, Y4 \
	VFMADD213PS C_ERF_Q4, Y3, Y4 \ // q = Q(x^2)
	VDIVPS      Y4, Y1, Y1

// TANH_RATIONAL(X): Y1 = tanhRational(X), with Y12 = tanhClamp,
// Y11 = -tanhClamp, Y10 = 1 and Y9 = -1 (the cap; NaN kept as in the
// clamp). Clobbers Y2-Y4.
#define TANH_RATIONAL(X) \
	VMINPS      X, Y12, Y2         \
	VMAXPS      Y2, Y11, Y2        \
	VMULPS      Y2, Y2, Y3         \
	VMOVUPS     C_TANH_A13, Y1     \
	VFMADD213PS C_TANH_A11, Y3, Y1 \
	VFMADD213PS C_TANH_A9, Y3, Y1  \
	VFMADD213PS C_TANH_A7, Y3, Y1  \
	VFMADD213PS C_TANH_A5, Y3, Y1  \
	VFMADD213PS C_TANH_A3, Y3, Y1  \
	VFMADD213PS C_TANH_A1, Y3, Y1  \
	VMULPS      Y2, Y1, Y1         \
	VMOVUPS     C_TANH_B6, Y4      \
	VFMADD213PS C_TANH_B4, Y3, Y4  \
	VFMADD213PS C_TANH_B2, Y3, Y4  \
	VFMADD213PS C_TANH_B0, Y3, Y4  \
	VDIVPS      Y4, Y1, Y1         \
	VMINPS      Y1, Y10, Y1        \
	VMAXPS      Y1, Y9, Y1

// TANH: Y1 = tanh(Y0) as scalarTanh (x itself where |x| < tanhTiny).
#define TANH \
	TANH_RATIONAL(Y0)             \
	VANDPS    C_ABSMASK, Y0, Y2   \
	VCMPPS    $1, C_TANH_TINY, Y2, Y2 \
	VBLENDVPS Y2, Y0, Y1, Y1

// GELU: Y1 = h + h erf(x/sqrt2), h = x/2, as scalarGelu. Clobbers Y2-Y6.
#define GELU \
	VMULPS      C_INV_SQRT2, Y0, Y5 \
	ERF(Y5)                         \
	VMULPS      C_HALF, Y0, Y6      \
	VFMADD213PS Y6, Y6, Y1

// GELU_TANH: Y1 = h + h tanh(x (k0 + k1 x^2)), as scalarGeluTanh.
// Clobbers Y2-Y6.
#define GELU_TANH \
	VMULPS      Y0, Y0, Y5        \
	VMOVUPS     C_GT_K1, Y6       \
	VFMADD213PS C_GT_K0, Y5, Y6   \
	VMULPS      Y6, Y0, Y5        \
	TANH_RATIONAL(Y5)             \
	VMULPS      C_HALF, Y0, Y6    \
	VFMADD213PS Y6, Y6, Y1

// UNARY_LOOP(BODY) is the loop of a (dst, src, n) kernel: DI, SI, CX set.
#define UNARY_LOOP(BODY) \
	CMPQ       CX, $8       \
	JB         tail         \
loop:                       \
	VMOVUPS    (SI), Y0     \
	BODY                    \
	VMOVUPS    Y1, (DI)     \
	ADDQ       $32, SI      \
	ADDQ       $32, DI      \
	SUBQ       $8, CX       \
	CMPQ       CX, $8       \
	JAE        loop         \
tail:                       \
	TESTQ      CX, CX       \
	JZ         done         \
	TAILMASK                \
	VMASKMOVPS (SI), Y15, Y0 \
	BODY                    \
	VMASKMOVPS Y1, Y15, (DI) \
done:                       \
	VZEROUPPER              \
	RET

// BIAS_LOOP(BODY) is the loop of a (dst, x, bias, n) kernel: the body
// sees x + bias in Y0. DI, SI (x), DX (bias), CX set.
#define BIAS_LOOP(BODY) \
	CMPQ       CX, $8       \
	JB         tail         \
loop:                       \
	VMOVUPS    (SI), Y0     \
	VADDPS     (DX), Y0, Y0 \
	BODY                    \
	VMOVUPS    Y1, (DI)     \
	ADDQ       $32, SI      \
	ADDQ       $32, DX      \
	ADDQ       $32, DI      \
	SUBQ       $8, CX       \
	CMPQ       CX, $8       \
	JAE        loop         \
tail:                       \
	TESTQ      CX, CX       \
	JZ         done         \
	TAILMASK                \
	VMASKMOVPS (SI), Y15, Y0 \
	VMASKMOVPS (DX), Y15, Y2 \
	VADDPS     Y2, Y0, Y0   \
	BODY                    \
	VMASKMOVPS Y1, Y15, (DI) \
done:                       \
	VZEROUPPER              \
	RET

#define UNARY_ARGS \
	MOVQ dst+0(FP), DI \
	MOVQ src+8(FP), SI \
	MOVQ n+16(FP), CX  \
	LEAQ ·vconst(SB), R8

#define BIAS_ARGS \
	MOVQ dst+0(FP), DI  \
	MOVQ x+8(FP), SI    \
	MOVQ bias+16(FP), DX \
	MOVQ n+24(FP), CX   \
	LEAQ ·vconst(SB), R8

// func expAVX2(dst, src *float32, n int)
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	UNARY_ARGS
	VMOVUPS C_EXP_LO, Y13
	VMOVUPS C_EXP_HI, Y14
	UNARY_LOOP(EXP)

// func erfAVX2(dst, src *float32, n int)
TEXT ·erfAVX2(SB), NOSPLIT, $0-24
	UNARY_ARGS
	VMOVUPS C_ERF_CLAMP, Y14
	VMOVUPS C_ERF_NCLAMP, Y13
	UNARY_LOOP(ERF(Y0))

// func tanhAVX2(dst, src *float32, n int)
TEXT ·tanhAVX2(SB), NOSPLIT, $0-24
	UNARY_ARGS
	VMOVUPS C_TANH_CLAMP, Y12
	VMOVUPS C_TANH_NCLAMP, Y11
	VMOVUPS C_ONE, Y10
	VMOVUPS C_NEGONE, Y9
	UNARY_LOOP(TANH)

// func geluAVX2(dst, src *float32, n int)
TEXT ·geluAVX2(SB), NOSPLIT, $0-24
	UNARY_ARGS
	VMOVUPS C_ERF_CLAMP, Y14
	VMOVUPS C_ERF_NCLAMP, Y13
	UNARY_LOOP(GELU)

// func geluTanhAVX2(dst, src *float32, n int)
TEXT ·geluTanhAVX2(SB), NOSPLIT, $0-24
	UNARY_ARGS
	VMOVUPS C_TANH_CLAMP, Y12
	VMOVUPS C_TANH_NCLAMP, Y11
	VMOVUPS C_ONE, Y10
	VMOVUPS C_NEGONE, Y9
	UNARY_LOOP(GELU_TANH)

// func biasGeluAVX2(dst, x, bias *float32, n int)
TEXT ·biasGeluAVX2(SB), NOSPLIT, $0-32
	BIAS_ARGS
	VMOVUPS C_ERF_CLAMP, Y14
	VMOVUPS C_ERF_NCLAMP, Y13
	BIAS_LOOP(GELU)

// func biasGeluTanhAVX2(dst, x, bias *float32, n int)
TEXT ·biasGeluTanhAVX2(SB), NOSPLIT, $0-32
	BIAS_ARGS
	VMOVUPS C_TANH_CLAMP, Y12
	VMOVUPS C_TANH_NCLAMP, Y11
	VMOVUPS C_ONE, Y10
	VMOVUPS C_NEGONE, Y9
	BIAS_LOOP(GELU_TANH)

// func maxScaledAVX2(p *float32, n int, scale float32) float32
//
// Y9 accumulates max(scale*v) per lane starting from -Inf; VMAXPS with
// the accumulator as second source (Intel order) keeps it when v is NaN.
// Masked-out tail lanes load 0 and are replaced by -Inf.
TEXT ·maxScaledAVX2(SB), NOSPLIT, $0-28
	MOVQ         p+0(FP), SI
	MOVQ         n+8(FP), CX
	LEAQ         ·vconst(SB), R8
	VBROADCASTSS scale+16(FP), Y8
	VMOVUPS      C_NEGINF, Y10
	VMOVAPS      Y10, Y9
	CMPQ         CX, $8
	JB           tail

loop:
	VMULPS (SI), Y8, Y0
	VMAXPS Y9, Y0, Y9
	ADDQ   $32, SI
	SUBQ   $8, CX
	CMPQ   CX, $8
	JAE    loop

tail:
	TESTQ      CX, CX
	JZ         reduce
	TAILMASK
	VMASKMOVPS (SI), Y15, Y0
	VMULPS     Y8, Y0, Y0
	VBLENDVPS  Y15, Y0, Y10, Y0
	VMAXPS     Y9, Y0, Y9

reduce:
	VEXTRACTF128 $1, Y9, X0
	VMAXPS       X0, X9, X9
	VPERMILPS    $0x4E, X9, X0
	VMAXPS       X0, X9, X9
	VPERMILPS    $0xB1, X9, X0
	VMAXPS       X0, X9, X9
	VMOVSS       X9, ret+24(FP)
	VZEROUPPER
	RET

// func expSumAVX2(p *float32, n int, scale, m float32) float32
//
// p[i] = exp(min(scale*p[i] - m, 0)) with one rounding (VFMSUB), summed
// in the 8 lanes of Y10. The min only trims the rounding excess of m =
// round(max scale*v) (at most half an ulp of m) and keeps NaN.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ         p+0(FP), DI
	MOVQ         n+8(FP), CX
	LEAQ         ·vconst(SB), R8
	VBROADCASTSS scale+16(FP), Y12
	VBROADCASTSS m+20(FP), Y9
	VXORPS       Y10, Y10, Y10
	VXORPS       Y11, Y11, Y11
	VMOVUPS      C_EXP_LO, Y13
	CMPQ         CX, $8
	JB           tail

loop:
	VMOVUPS     (DI), Y0
	VFMSUB213PS Y9, Y12, Y0
	VMINPS      Y0, Y11, Y0
	EXP_NONPOS
	VMOVUPS     Y1, (DI)
	VADDPS      Y1, Y10, Y10
	ADDQ        $32, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JAE         loop

tail:
	TESTQ       CX, CX
	JZ          reduce
	TAILMASK
	VMASKMOVPS  (DI), Y15, Y0
	VFMSUB213PS Y9, Y12, Y0
	VMINPS      Y0, Y11, Y0
	EXP_NONPOS
	VANDPS      Y15, Y1, Y1
	VMASKMOVPS  Y1, Y15, (DI)
	VADDPS      Y1, Y10, Y10

reduce:
	VEXTRACTF128 $1, Y10, X0
	VADDPS       X0, X10, X10
	VPERMILPS    $0x4E, X10, X0
	VADDPS       X0, X10, X10
	VPERMILPS    $0xB1, X10, X0
	VADDPS       X0, X10, X10
	VMOVSS       X10, ret+24(FP)
	VZEROUPPER
	RET

// func scaleAVX2(p *float32, n int, s float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         p+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y8
	CMPQ         CX, $8
	JB           tail

loop:
	VMULPS  (DI), Y8, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	CMPQ    CX, $8
	JAE     loop

tail:
	TESTQ      CX, CX
	JZ         done
	TAILMASK
	VMASKMOVPS (DI), Y15, Y0
	VMULPS     Y8, Y0, Y0
	VMASKMOVPS Y0, Y15, (DI)

done:
	VZEROUPPER
	RET
