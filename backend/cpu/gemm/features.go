package gemm

// HasAVX2FMA reports whether this process uses the AVX2+FMA assembly
// kernels (amd64 without the purego tag, on a CPU and OS that support
// them). Other packages with their own AVX2 assembly (backend/cpu/vmath)
// ask here so that one CPUID probe decides for all of them.
func HasAVX2FMA() bool { return useAsm }
