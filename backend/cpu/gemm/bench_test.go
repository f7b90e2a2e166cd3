package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BERT-base MatMul shapes: M = batch*seq rows, (K, N) of the QKV/output
// projections (768x768) and the feed-forward pair (768x3072, 3072x768).
var (
	benchM  = []int{128, 512, 1024, 4096}
	benchKN = [][2]int{{768, 768}, {768, 3072}, {3072, 768}}
)

func reportGFLOPs(b *testing.B, m, n, k int) {
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// minCPUTimeForMetric is the least CPU time over which cpuGFLOP/s is
// reported: over a few milliseconds the Go runtime's own threads (GC,
// sysmon) are a visible share of the process's CPU time.
const minCPUTimeForMetric = 20 * time.Millisecond

// reportCPUGFLOPs adds GFLOP per CPU-second (all threads' CPU time):
// with one thread, the kernel's speed while it holds the core.
func reportCPUGFLOPs(b *testing.B, m, n, k int, cpu0 time.Duration) {
	if cpu1, ok := processCPUTime(); ok && cpu1-cpu0 >= minCPUTimeForMetric {
		b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/(cpu1-cpu0).Seconds()/1e9, "cpuGFLOP/s")
	}
}

// benchSgemm runs C = A x B at the BERT shapes; packed selects the
// pre-packed weight path (what the executor uses for constant B, and what
// ONNX Runtime does with a B initializer).
func benchSgemm(b *testing.B, packed bool) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, m := range benchM {
		for _, kn := range benchKN {
			k, n := kn[0], kn[1]
			// Operands are made on first use: -bench filters usually
			// select a few shapes, and the big ones take a while to fill.
			var a, bm, c []float32
			var pb *PackedB
			setup := func(b *testing.B) {
				if a != nil {
					return
				}
				a, bm, c = randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
				var err error
				if pb, err = PackB(false, k, n, bm, n); err != nil {
					b.Fatal(err)
				}
			}
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("M=%d/K=%d/N=%d/T=%d", m, k, n, threads), func(b *testing.B) {
					setup(b)
					run := func() {
						var err error
						if packed {
							err = SgemmPackedParallel(threads, false, m, 1, a, k, pb, 0, c, n)
						} else {
							err = SgemmParallel(threads, false, false, m, n, k, 1, a, k, bm, n, 0, c, n)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					run() // warm-up (page faults, pools); b.Loop resets the timer
					cpu0, _ := processCPUTime()
					for b.Loop() {
						run()
					}
					reportGFLOPs(b, m, n, k)
					reportCPUGFLOPs(b, m, n, k, cpu0)
				})
			}
		}
	}
}

func BenchmarkSgemm(b *testing.B)       { benchSgemm(b, false) }
func BenchmarkSgemmPacked(b *testing.B) { benchSgemm(b, true) }

// BenchmarkSgemmRef is the naive reference at one small shape, for
// contrast with the blocked kernel at the same shape (BenchmarkSgemmSmall).
func BenchmarkSgemmRef(b *testing.B) {
	const m, n, k = 128, 256, 256
	rng := rand.New(rand.NewPCG(2, 2))
	a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	for b.Loop() {
		sgemmRef(false, false, m, n, k, 1, a, k, bm, n, 0, c, n)
	}
	reportGFLOPs(b, m, n, k)
}

func BenchmarkSgemmSmall(b *testing.B) {
	const m, n, k = 128, 256, 256
	rng := rand.New(rand.NewPCG(2, 2))
	a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	for _, kern := range []string{"asm", "go"} {
		if kern == "asm" && !useAsm {
			continue
		}
		b.Run("kernel="+kern, func(b *testing.B) {
			cpu0, _ := processCPUTime()
			withKernel(kern, func() {
				for b.Loop() {
					if err := Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n); err != nil {
						b.Fatal(err)
					}
				}
			})
			reportGFLOPs(b, m, n, k)
			reportCPUGFLOPs(b, m, n, k, cpu0)
		})
	}
}

// BenchmarkFMAPeak measures this core's float32 FMA capability for the
// peak derivation in docs/benchmarks.md:
//   - "GFLOP/s": throughput of 12 independent 8-wide FMA chains (2 flops
//     per lane), the best any kernel can reach on one core;
//   - "cpuGFLOP/s": the same per CPU-second (robust to other load);
//   - "GHz": the clock inferred from a dependent FMA chain, assuming the
//     documented 4-cycle FMA latency of Zen 3 (AMD family 19h software
//     optimization guide; Agner Fog's tables agree);
//   - "flop/cycle" = cpuGFLOP/s / GHz, to be compared with 8 lanes x 2
//     flops x 2 FMA pipes = 32, and "peakGFLOP/s" = 32 x GHz.
func BenchmarkFMAPeak(b *testing.B) {
	if !haveFMAPeakLoops() {
		b.Skip("no AVX2+FMA assembly on this CPU/build")
	}
	const iters = 1 << 20
	cpu0, _ := processCPUTime()
	for b.Loop() {
		fmaThroughputLoop(iters)
	}
	flops := float64(b.N) * iters * 12 * 8 * 2
	gflops := flops / b.Elapsed().Seconds() / 1e9
	cpuGFLOPs := 0.0
	if cpu1, ok := processCPUTime(); ok && cpu1 > cpu0 {
		cpuGFLOPs = flops / (cpu1 - cpu0).Seconds() / 1e9
		b.ReportMetric(cpuGFLOPs, "cpuGFLOP/s")
	}
	// The latency loop is timed in CPU time when available (the machine
	// is shared: wall time includes other processes' slices), best of 5.
	const latencyIters = 1 << 22
	best := time.Duration(1 << 62)
	for range 5 {
		cpuStart, haveCPU := processCPUTime()
		start := time.Now()
		fmaLatencyLoop(latencyIters)
		d := time.Since(start)
		if cpuEnd, ok := processCPUTime(); haveCPU && ok && cpuEnd > cpuStart {
			d = cpuEnd - cpuStart
		}
		best = min(best, d)
	}
	const fmaLatencyCycles = 4
	ghz := float64(latencyIters) * 8 * fmaLatencyCycles / best.Seconds() / 1e9
	b.ReportMetric(gflops, "GFLOP/s")
	b.ReportMetric(ghz, "GHz")
	if cpuGFLOPs > 0 {
		// Measured FMA throughput per cycle: 32 = 8 lanes x 2 flops x 2 pipes.
		b.ReportMetric(cpuGFLOPs/ghz, "flop/cycle")
	}
	b.ReportMetric(8*2*2*ghz, "peakGFLOP/s")
}

// BenchmarkMicroKernel runs the micro-kernel alone on L1/L2-resident
// operands (kc deep, 24 A panels against one B panel, as the
// macro-kernel does): the ceiling of the blocked path. "packed" reads
// packed A panels, "rows" reads A in place from a row-major matrix.
func BenchmarkMicroKernel(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	const panels = mc / mr
	ap := randSlice(rng, panels*kc*mr)
	bp := randSlice(rng, kc*nr)
	c := make([]float32, mc*nr)
	for _, layout := range []string{"packed", "rows"} {
		b.Run(layout, func(b *testing.B) {
			cpu0, _ := processCPUTime()
			for b.Loop() {
				for p := 0; p < panels; p++ {
					if layout == "packed" {
						microKernel(kc, ap[p*kc*mr:(p+1)*kc*mr], bp, c[p*mr*nr:(p+1)*mr*nr], nr, 1, true)
					} else {
						// ap read as a mc x kc row-major matrix.
						microKernelRows(kc, ap[p*mr*kc:], kc, bp, c[p*mr*nr:(p+1)*mr*nr], nr, 1, true)
					}
				}
			}
			reportGFLOPs(b, mc, nr, kc)
			reportCPUGFLOPs(b, mc, nr, kc, cpu0)
		})
	}
}
