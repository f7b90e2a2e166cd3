//go:build amd64 && !purego

#include "textflag.h"
#include "tile_amd64.h"

// The AVX2+FMA micro-kernels compute one 6x16 tile of C (row stride ldc
// floats): c (+)= alpha * sum_l A(i, l) * b[l*16+j] over k >= 1 depth
// steps of a packed B panel. Accumulators: row i in Y(2i) (columns 0-7)
// and Y(2i+1) (8-15): 12 independent FMA chains cover the 2 FMA pipes x
// 4-cycle latency of Zen 3 with room to spare. Per depth step: 2 loads of
// B, 6 broadcasts of A, 12 FMAs. The depth loop is unrolled 4 times. The
// two kernels differ only in where A(i, l) is read from; every element
// sees the same FMAs in the same order, so they give identical bits.

// PACKED_STEP is depth step l of a packed A panel at AX: A(i, l) = a[l*6+i].
#define PACKED_STEP(boff, l) FMA_STEP(boff, (24*l)(AX), (24*l+4)(AX), (24*l+8)(AX), (24*l+12)(AX), (24*l+16)(AX), (24*l+20)(AX))

// func sgemmKernel6x16(k int, a, b, c *float32, ldc int, alpha float32, accumulate bool)
//
// A is a packed panel: A(i, l) = a[l*6+i].
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-45
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ b+16(FP), BX
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX

	ZERO_ACCUMULATORS
	PREFETCH_C_TILE

	MOVQ CX, R9
	SHRQ $2, R9
	ANDQ $3, CX
	TESTQ R9, R9
	JZ tail

loop4:
	PACKED_STEP(0, 0)
	PACKED_STEP(64, 1)
	PACKED_STEP(128, 2)
	PACKED_STEP(192, 3)
	ADDQ $96, AX
	ADDQ $256, BX
	DECQ R9
	JNZ loop4

tail:
	TESTQ CX, CX
	JZ done

loop1:
	PACKED_STEP(0, 0)
	ADDQ $24, AX
	ADDQ $64, BX
	DECQ CX
	JNZ loop1

done:
	VBROADCASTSS alpha+40(FP), Y12
	SCALE_ACCUMULATORS
	MOVBQZX accumulate+44(FP), R8
	TESTQ R8, R8
	JZ store
	ADD_STORE_TILE
	VZEROUPPER
	RET

store:
	STORE_TILE
	VZEROUPPER
	RET

// ROWS_STEP is depth step l with A(i, l) read in place from six rows of a row-major matrix:
// row 0 at AX, rows 1 and 2 at AX + R10 and AX + 2*R10, rows 3-5 the same
// from R12 = AX + 3*R10 (R10 = lda in bytes).
#define ROWS_STEP(boff, l) FMA_STEP(boff, (4*l)(AX), (4*l)(AX)(R10*1), (4*l)(AX)(R10*2), (4*l)(R12), (4*l)(R12)(R10*1), (4*l)(R12)(R10*2))

// func sgemmKernel6x16Rows(k int, a *float32, lda int, b, c *float32, ldc int, alpha float32, accumulate bool)
//
// A is read in place from six rows of a row-major matrix with leading
// dimension lda: A(i, l) = a[i*lda+l]. This saves packing A (as MLAS's
// AVX2 kernels do); the rows are read sequentially, six streams that the
// hardware prefetcher follows.
TEXT ·sgemmKernel6x16Rows(SB), NOSPLIT, $0-53
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), AX
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	LEAQ (R10)(R10*2), R12
	ADDQ AX, R12
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DI
	MOVQ ldc+40(FP), DX
	SHLQ $2, DX

	ZERO_ACCUMULATORS
	PREFETCH_C_TILE

	MOVQ CX, R9
	SHRQ $2, R9
	ANDQ $3, CX
	TESTQ R9, R9
	JZ tail

loop4:
	ROWS_STEP(0, 0)
	ROWS_STEP(64, 1)
	ROWS_STEP(128, 2)
	ROWS_STEP(192, 3)
	ADDQ $16, AX
	ADDQ $16, R12
	ADDQ $256, BX
	DECQ R9
	JNZ loop4

tail:
	TESTQ CX, CX
	JZ done

loop1:
	ROWS_STEP(0, 0)
	ADDQ $4, AX
	ADDQ $4, R12
	ADDQ $64, BX
	DECQ CX
	JNZ loop1

done:
	VBROADCASTSS alpha+48(FP), Y12
	SCALE_ACCUMULATORS
	MOVBQZX accumulate+52(FP), R8
	TESTQ R8, R8
	JZ store
	ADD_STORE_TILE
	VZEROUPPER
	RET

store:
	STORE_TILE
	VZEROUPPER
	RET
