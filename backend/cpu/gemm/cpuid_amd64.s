//go:build amd64 && !purego

#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv() (eax, edx uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	// XGETBV, spelled as bytes for older assemblers.
	BYTE $0x0f; BYTE $0x01; BYTE $0xd0
	MOVL AX, eax+0(FP)
	MOVL DX, edx+4(FP)
	RET

// func fmaThroughputLoop(n int)
//
// n iterations of 12 independent 8-wide FMAs: the core's FMA throughput,
// when the pipes are the only bottleneck (12 chains > 2 pipes x latency).
TEXT ·fmaThroughputLoop(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	TESTQ CX, CX
	JLE tdone
tloop:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ CX
	JNZ tloop
tdone:
	VZEROUPPER
	RET

// func fmaLatencyLoop(n int)
//
// n iterations of 8 dependent FMAs on one register: each waits for the
// previous, so the loop takes 8*n*latency cycles.
TEXT ·fmaLatencyLoop(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	TESTQ CX, CX
	JLE ldone
lloop:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y0
	DECQ CX
	JNZ lloop
ldone:
	VZEROUPPER
	RET
