// Shared pieces of the 6x16 AVX2+FMA micro-kernels (gemm_amd64.s): the
// accumulators are Y0-Y11, row i of the tile in Y(2i) (columns 0-7) and
// Y(2i+1) (columns 8-15); Y12-Y15 are scratch.

// ZERO_ACCUMULATORS clears Y0-Y11.
#define ZERO_ACCUMULATORS \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7; \
	VXORPS Y8, Y8, Y8; \
	VXORPS Y9, Y9, Y9; \
	VXORPS Y10, Y10, Y10; \
	VXORPS Y11, Y11, Y11

// PREFETCH_C_TILE brings the six 64-byte rows of the C tile at DI (row
// stride DX bytes) towards L1 while the depth loop runs; clobbers R8.
#define PREFETCH_C_TILE \
	MOVQ DI, R8; \
	PREFETCHT0 (R8); \
	PREFETCHT0 60(R8); \
	ADDQ DX, R8; \
	PREFETCHT0 (R8); \
	PREFETCHT0 60(R8); \
	ADDQ DX, R8; \
	PREFETCHT0 (R8); \
	PREFETCHT0 60(R8); \
	ADDQ DX, R8; \
	PREFETCHT0 (R8); \
	PREFETCHT0 60(R8); \
	ADDQ DX, R8; \
	PREFETCHT0 (R8); \
	PREFETCHT0 60(R8); \
	ADDQ DX, R8; \
	PREFETCHT0 (R8); \
	PREFETCHT0 60(R8)

// FMA_STEP is one depth step: the 16 values of B at off(BX) times the six
// A values at the given addresses, into the accumulators.
#define FMA_STEP(boff, a0, a1, a2, a3, a4, a5) \
	VMOVUPS boff(BX), Y12; \
	VMOVUPS (boff+32)(BX), Y13; \
	VBROADCASTSS a0, Y14; \
	VFMADD231PS Y12, Y14, Y0; \
	VFMADD231PS Y13, Y14, Y1; \
	VBROADCASTSS a1, Y15; \
	VFMADD231PS Y12, Y15, Y2; \
	VFMADD231PS Y13, Y15, Y3; \
	VBROADCASTSS a2, Y14; \
	VFMADD231PS Y12, Y14, Y4; \
	VFMADD231PS Y13, Y14, Y5; \
	VBROADCASTSS a3, Y15; \
	VFMADD231PS Y12, Y15, Y6; \
	VFMADD231PS Y13, Y15, Y7; \
	VBROADCASTSS a4, Y14; \
	VFMADD231PS Y12, Y14, Y8; \
	VFMADD231PS Y13, Y14, Y9; \
	VBROADCASTSS a5, Y15; \
	VFMADD231PS Y12, Y15, Y10; \
	VFMADD231PS Y13, Y15, Y11

// SCALE_ACCUMULATORS multiplies Y0-Y11 by the broadcast alpha in Y12.
// Alpha is applied with a multiply and then added (not fused) so that the
// Go edge-tile path, which adds alpha*acc from a scratch tile, rounds
// identically.
#define SCALE_ACCUMULATORS \
	VMULPS Y12, Y0, Y0; \
	VMULPS Y12, Y1, Y1; \
	VMULPS Y12, Y2, Y2; \
	VMULPS Y12, Y3, Y3; \
	VMULPS Y12, Y4, Y4; \
	VMULPS Y12, Y5, Y5; \
	VMULPS Y12, Y6, Y6; \
	VMULPS Y12, Y7, Y7; \
	VMULPS Y12, Y8, Y8; \
	VMULPS Y12, Y9, Y9; \
	VMULPS Y12, Y10, Y10; \
	VMULPS Y12, Y11, Y11

// ADD_STORE_ROW adds row (lo, hi) of the accumulators to the C row at DI
// and stores it.
#define ADD_STORE_ROW(lo, hi) \
	VADDPS (DI), lo, lo; \
	VADDPS 32(DI), hi, hi; \
	VMOVUPS lo, (DI); \
	VMOVUPS hi, 32(DI)

// STORE_ROW overwrites the C row at DI with row (lo, hi).
#define STORE_ROW(lo, hi) \
	VMOVUPS lo, (DI); \
	VMOVUPS hi, 32(DI)

// ADD_STORE_TILE and STORE_TILE write the whole tile, rows DX bytes apart
// from DI (advanced to the last row).
#define ADD_STORE_TILE \
	ADD_STORE_ROW(Y0, Y1); \
	ADDQ DX, DI; \
	ADD_STORE_ROW(Y2, Y3); \
	ADDQ DX, DI; \
	ADD_STORE_ROW(Y4, Y5); \
	ADDQ DX, DI; \
	ADD_STORE_ROW(Y6, Y7); \
	ADDQ DX, DI; \
	ADD_STORE_ROW(Y8, Y9); \
	ADDQ DX, DI; \
	ADD_STORE_ROW(Y10, Y11)

#define STORE_TILE \
	STORE_ROW(Y0, Y1); \
	ADDQ DX, DI; \
	STORE_ROW(Y2, Y3); \
	ADDQ DX, DI; \
	STORE_ROW(Y4, Y5); \
	ADDQ DX, DI; \
	STORE_ROW(Y6, Y7); \
	ADDQ DX, DI; \
	STORE_ROW(Y8, Y9); \
	ADDQ DX, DI; \
	STORE_ROW(Y10, Y11)
