//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA row kernels of the norms (norm.go): 32 floats per iteration
// in four independent accumulators where a sum is kept (so the add
// latency is not the bound and each lane's chain is n/32 long), then 8
// per iteration, then the last n%8 with VMASKMOVPS as in vmath_amd64.s
// (masked loads read nothing outside the slices and load 0 in masked-out
// lanes; masked stores write nothing there).
//
// Registers: SI/DX/BX sources, DI destination, CX count, Y15 the tail
// mask, Y0-Y3 accumulators, Y4-Y7 accumulators or loaded values, Y8-Y10
// broadcast scalars, Y11-Y14 scratch.

// NORM_TAILMASK sets Y15 to CX all-ones lanes then zeros (1 <= CX <= 7),
// from the 8 words of tailMask (vmath_amd64.go) at index 8-CX. Clobbers
// CX and R9.
#define NORM_TAILMASK \
	LEAQ    ·tailMask+32(SB), R9 \
	SHLQ    $2, CX              \
	SUBQ    CX, R9              \
	VMOVDQU (R9), Y15

// HSUM(Y, X) leaves the sum of Y's 8 lanes in the low lane of X (X is
// Y's low half). Clobbers X11.
#define HSUM(Y, X) \
	VEXTRACTF128 $1, Y, X11 \
	VADDPS       X11, X, X  \
	VPERMILPS    $0x4E, X, X11 \
	VADDPS       X11, X, X  \
	VPERMILPS    $0xB1, X, X11 \
	VADDPS       X11, X, X

// func sumAVX2(p *float32, n int) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-20
	MOVQ   p+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $32
	JB     check8

loop32:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	VADDPS 64(SI), Y2, Y2
	VADDPS 96(SI), Y3, Y3
	ADDQ   $128, SI
	SUBQ   $32, CX
	CMPQ   CX, $32
	JAE    loop32

check8:
	CMPQ CX, $8
	JB   tail

loop8:
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	SUBQ   $8, CX
	CMPQ   CX, $8
	JAE    loop8

tail:
	TESTQ      CX, CX
	JZ         reduce
	NORM_TAILMASK
	VMASKMOVPS (SI), Y15, Y4
	VADDPS     Y4, Y1, Y1

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM(Y0, X0)
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// ADD_SKIP(off, T, ACC): T = x + skip at byte offset off, stored to s
// and added into ACC. ADD_SKIP_BIAS adds bias after skip (the same order
// of roundings as the Go twin).
#define ADD_SKIP(off, T, ACC) \
	VMOVUPS off(SI), T      \
	VADDPS  off(DX), T, T   \
	VMOVUPS T, off(DI)      \
	VADDPS  T, ACC, ACC

#define ADD_SKIP_BIAS(off, T, ACC) \
	VMOVUPS off(SI), T      \
	VADDPS  off(DX), T, T   \
	VADDPS  off(BX), T, T   \
	VMOVUPS T, off(DI)      \
	VADDPS  T, ACC, ACC

// func addSumAVX2(s, x, skip, bias *float32, n int) float32
//
// s[i] = x[i] + skip[i] (+ bias[i] when bias is not nil); returns the sum
// of s. s may be x or skip.
TEXT ·addSumAVX2(SB), NOSPLIT, $0-44
	MOVQ   s+0(FP), DI
	MOVQ   x+8(FP), SI
	MOVQ   skip+16(FP), DX
	MOVQ   bias+24(FP), BX
	MOVQ   n+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	TESTQ  BX, BX
	JZ     nb_check32

	CMPQ CX, $32
	JB   b_check8

b_loop32:
	ADD_SKIP_BIAS(0, Y4, Y0)
	ADD_SKIP_BIAS(32, Y5, Y1)
	ADD_SKIP_BIAS(64, Y6, Y2)
	ADD_SKIP_BIAS(96, Y7, Y3)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, BX
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JAE  b_loop32

b_check8:
	CMPQ CX, $8
	JB   b_tail

b_loop8:
	ADD_SKIP_BIAS(0, Y4, Y0)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  b_loop8

b_tail:
	TESTQ      CX, CX
	JZ         reduce
	NORM_TAILMASK
	VMASKMOVPS (SI), Y15, Y4
	VMASKMOVPS (DX), Y15, Y5
	VMASKMOVPS (BX), Y15, Y6
	VADDPS     Y5, Y4, Y4
	VADDPS     Y6, Y4, Y4
	VMASKMOVPS Y4, Y15, (DI)
	VADDPS     Y4, Y1, Y1
	JMP        reduce

nb_check32:
	CMPQ CX, $32
	JB   nb_check8

nb_loop32:
	ADD_SKIP(0, Y4, Y0)
	ADD_SKIP(32, Y5, Y1)
	ADD_SKIP(64, Y6, Y2)
	ADD_SKIP(96, Y7, Y3)
	ADDQ $128, SI
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JAE  nb_loop32

nb_check8:
	CMPQ CX, $8
	JB   nb_tail

nb_loop8:
	ADD_SKIP(0, Y4, Y0)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  nb_loop8

nb_tail:
	TESTQ      CX, CX
	JZ         reduce
	NORM_TAILMASK
	VMASKMOVPS (SI), Y15, Y4
	VMASKMOVPS (DX), Y15, Y5
	VADDPS     Y5, Y4, Y4
	VMASKMOVPS Y4, Y15, (DI)
	VADDPS     Y4, Y1, Y1

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM(Y0, X0)
	VMOVSS X0, ret+40(FP)
	VZEROUPPER
	RET

// DEV(off, T, A, B): T = s - m0 at byte offset off; A += T, B += T*T.
#define DEV(off, T, A, B) \
	VMOVUPS     off(SI), T \
	VSUBPS      Y8, T, T   \
	VADDPS      T, A, A    \
	VFMADD231PS T, T, B

// func devStatsAVX2(s *float32, n int, m0 float32) (sumD, sumD2 float32)
//
// sumD = sum(s[i] - m0), sumD2 = sum((s[i] - m0)^2), each difference
// rounded once to float32 and each square fused into its sum.
TEXT ·devStatsAVX2(SB), NOSPLIT, $0-32
	MOVQ         s+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m0+16(FP), Y8
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1
	VXORPS       Y2, Y2, Y2
	VXORPS       Y3, Y3, Y3
	VXORPS       Y4, Y4, Y4
	VXORPS       Y5, Y5, Y5
	VXORPS       Y6, Y6, Y6
	VXORPS       Y7, Y7, Y7
	CMPQ         CX, $32
	JB           check8

loop32:
	DEV(0, Y11, Y0, Y4)
	DEV(32, Y12, Y1, Y5)
	DEV(64, Y13, Y2, Y6)
	DEV(96, Y14, Y3, Y7)
	ADDQ $128, SI
	SUBQ $32, CX
	CMPQ CX, $32
	JAE  loop32

check8:
	CMPQ CX, $8
	JB   tail

loop8:
	DEV(0, Y11, Y0, Y4)
	ADDQ $32, SI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  loop8

tail:
	TESTQ       CX, CX
	JZ          reduce
	NORM_TAILMASK
	VMASKMOVPS  (SI), Y15, Y11
	VSUBPS      Y8, Y11, Y11
	VANDPS      Y15, Y11, Y11 // masked-out lanes hold -m0: zero them
	VADDPS      Y11, Y1, Y1
	VFMADD231PS Y11, Y11, Y5

reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VADDPS Y5, Y4, Y4
	VADDPS Y7, Y6, Y6
	VADDPS Y6, Y4, Y4
	HSUM(Y0, X0)
	HSUM(Y4, X4)
	VMOVSS X0, sumD+24(FP)
	VMOVSS X4, sumD2+28(FP)
	VZEROUPPER
	RET

// APPLY_B(off): y = ((s - m0) inv + shift) gamma + beta at byte offset
// off; APPLY without beta.
#define APPLY_B(off, T, U) \
	VMOVUPS     off(SI), T    \
	VSUBPS      Y8, T, T      \
	VFMADD213PS Y10, Y9, T    \
	VMOVUPS     off(BX), U    \
	VFMADD231PS off(DX), T, U \
	VMOVUPS     U, off(DI)

#define APPLY(off, T) \
	VMOVUPS     off(SI), T \
	VSUBPS      Y8, T, T   \
	VFMADD213PS Y10, Y9, T \
	VMULPS      off(DX), T, T \
	VMOVUPS     T, off(DI)

// func applyAVX2(y, s, gamma, beta *float32, n int, m0, inv, shift float32)
//
// y[i] = ((s[i] - m0) inv + shift) gamma[i] (+ beta[i] when beta is not
// nil), the inner and outer multiply-adds each rounded once. y may be s.
TEXT ·applyAVX2(SB), NOSPLIT, $0-52
	MOVQ         y+0(FP), DI
	MOVQ         s+8(FP), SI
	MOVQ         gamma+16(FP), DX
	MOVQ         beta+24(FP), BX
	MOVQ         n+32(FP), CX
	VBROADCASTSS m0+40(FP), Y8
	VBROADCASTSS inv+44(FP), Y9
	VBROADCASTSS shift+48(FP), Y10
	TESTQ        BX, BX
	JZ           nb_check16

	CMPQ CX, $16
	JB   b_check8

b_loop16:
	APPLY_B(0, Y0, Y1)
	APPLY_B(32, Y2, Y3)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, BX
	ADDQ $64, DI
	SUBQ $16, CX
	CMPQ CX, $16
	JAE  b_loop16

b_check8:
	CMPQ CX, $8
	JB   b_tail
	APPLY_B(0, Y0, Y1)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, DI
	SUBQ $8, CX

b_tail:
	TESTQ       CX, CX
	JZ          done
	NORM_TAILMASK
	VMASKMOVPS  (SI), Y15, Y0
	VMASKMOVPS  (DX), Y15, Y2
	VMASKMOVPS  (BX), Y15, Y1
	VSUBPS      Y8, Y0, Y0
	VFMADD213PS Y10, Y9, Y0
	VFMADD231PS Y2, Y0, Y1
	VMASKMOVPS  Y1, Y15, (DI)
	JMP         done

nb_check16:
	CMPQ CX, $16
	JB   nb_check8

nb_loop16:
	APPLY(0, Y0)
	APPLY(32, Y2)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	CMPQ CX, $16
	JAE  nb_loop16

nb_check8:
	CMPQ CX, $8
	JB   nb_tail
	APPLY(0, Y0)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX

nb_tail:
	TESTQ       CX, CX
	JZ          done
	NORM_TAILMASK
	VMASKMOVPS  (SI), Y15, Y0
	VMASKMOVPS  (DX), Y15, Y2
	VSUBPS      Y8, Y0, Y0
	VFMADD213PS Y10, Y9, Y0
	VMULPS      Y2, Y0, Y0
	VMASKMOVPS  Y0, Y15, (DI)

done:
	VZEROUPPER
	RET
