package gemm

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// minFlopsPerThread is the least work (2*m*n*k) worth a goroutine: below
// it, starting goroutines and packing operands twice costs more than the
// split saves.
const minFlopsPerThread = 1 << 21

// SgemmParallel is Sgemm on up to threads goroutines (threads <= 0 means
// GOMAXPROCS). It splits C into column strips (multiples of the kernel's
// 16-column tile) when n >= m, else into row strips (multiples of 6 rows),
// several per thread when that repeats no packing, which the threads
// claim in turn; every element is computed with the same operations as in
// Sgemm (the depth blocking does not depend on the split), so the result
// is bitwise identical to the single-threaded one.
func SgemmParallel(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error {
	if err := checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc); err != nil {
		return err
	}
	sgemmParallel(threads, transA, m, n, k, alpha, a, lda, bOperand{trans: transB, data: b, ld: ldb}, beta, c, ldc)
	return nil
}

// chunksPerThread is how many strips each thread gets on average when the
// strips are claimed dynamically: enough that a thread delayed by other
// load (the machine is shared, and the Go scheduler may run something
// else first) hands its remaining strips to the others, few enough that
// a strip is still a long run of the micro-kernel.
const chunksPerThread = 4

func sgemmParallel(threads int, transA bool, m, n, k int, alpha float32, a []float32, lda int, b bOperand, beta float32, c []float32, ldc int) {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	flops := 2 * float64(m) * float64(n) * float64(k)
	if flops < float64(minFlopsPerThread)*2 {
		threads = 1
	} else {
		threads = min(threads, int(flops/minFlopsPerThread))
	}
	splitN := n >= m
	unit, extent := mr, m
	if splitN {
		unit, extent = nr, n
	}
	tiles := (extent + unit - 1) / unit
	threads = min(threads, tiles)
	if threads <= 1 {
		sgemm(transA, m, n, k, alpha, a, lda, b, beta, c, ldc)
		return
	}
	// Every strip packs what it needs of the operands that are not
	// pre-packed: B when splitting rows (all of it, unless pre-packed) and
	// a transposed A (all of it when splitting columns). Where that would
	// repeat packing, keep one strip per thread; otherwise cut finer.
	chunks := threads
	if !transA && (splitN || b.packed != nil) {
		chunks = max(threads, min(tiles, threads*chunksPerThread, int(flops/minFlopsPerThread)))
	}
	perChunk := (tiles + chunks - 1) / chunks * unit
	if !splitN && perChunk > mc {
		// Whole mc-row blocks, as a one-strip-per-thread split has: each
		// block streams the B panels once.
		perChunk = (perChunk + mc - 1) / mc * mc
	}
	chunks = (extent + perChunk - 1) / perChunk
	threads = min(threads, chunks)
	var next atomic.Int32
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= chunks {
				return
			}
			lo := i * perChunk
			size := min(perChunk, extent-lo)
			if splitN {
				sgemm(transA, m, size, k, alpha, a, lda, b.subColumns(lo), beta, c[lo:], ldc)
				continue
			}
			// Rows lo... of op(A): columns of a transposed A.
			var aa []float32
			if transA {
				aa = a[lo:]
			} else {
				aa = a[lo*lda:]
			}
			sgemm(transA, size, n, k, alpha, aa, lda, b, beta, c[lo*ldc:], ldc)
		}
	}
	var wg sync.WaitGroup
	for range threads - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // the calling goroutine takes a share instead of only waiting
	wg.Wait()
}

// PackedB is a k x n B operand packed once into the micro-kernel's panel
// layout, for constant weights: SgemmPacked then skips packing B on every
// call. Layout: for each depth block starting at row p (kstep =
// depthBlock(k) rows, fewer in the last), ceil(n/16) panels of depth x 16
// floats, columns past n zero.
type PackedB struct {
	k, n int
	npad int // n rounded up to a multiple of nr
	data []float32
}

// K and N return the shape of op(B) that was packed.
func (p *PackedB) K() int { return p.k }
func (p *PackedB) N() int { return p.n }

// block returns the packed panels of depth block pc starting at column j0
// (a multiple of nr).
func (p *PackedB) block(pc, j0 int) []float32 {
	kcb := min(depthBlock(p.k), p.k-pc) // the driver cuts k the same way
	return p.data[pc*p.npad+(j0/nr)*kcb*nr : pc*p.npad+p.npad*kcb]
}

// PackB packs op(B) (k x n; B stored n x k when transB) for SgemmPacked.
// The result does not alias b.
func PackB(transB bool, k, n int, b []float32, ldb int) (*PackedB, error) {
	if k < 0 || n < 0 {
		return nil, fmt.Errorf("%w: negative dimension k=%d n=%d", ErrBadArgument, k, n)
	}
	var err error
	if transB {
		err = checkMatrix("B (transposed, n x k)", b, n, k, ldb)
	} else {
		err = checkMatrix("B (k x n)", b, k, n, ldb)
	}
	if err != nil {
		return nil, err
	}
	npad := (n + nr - 1) / nr * nr
	p := &PackedB{k: k, n: n, npad: npad, data: make([]float32, k*npad)}
	kstep := depthBlock(k)
	for pc := 0; pc < k; pc += kstep {
		kcb := min(kstep, k-pc)
		packB(p.data[pc*npad:pc*npad+kcb*npad], transB, b, ldb, pc, 0, kcb, n)
	}
	return p, nil
}

// SgemmPacked computes C = alpha*op(A)*B + beta*C with B pre-packed by
// PackB (op(A) is m x pb.K(), C is m x pb.N()). Same semantics and
// rounding as Sgemm with the B that was packed.
func SgemmPacked(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) error {
	return SgemmPackedParallel(1, transA, m, alpha, a, lda, pb, beta, c, ldc)
}

// SgemmPackedParallel is SgemmPacked on up to threads goroutines
// (threads <= 0 means GOMAXPROCS), split as in SgemmParallel.
func SgemmPackedParallel(threads int, transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) error {
	if pb == nil {
		return fmt.Errorf("%w: nil PackedB", ErrBadArgument)
	}
	if m < 0 {
		return fmt.Errorf("%w: negative dimension m=%d", ErrBadArgument, m)
	}
	if err := checkA(transA, m, pb.k, a, lda); err != nil {
		return err
	}
	if err := checkMatrix("C (m x n)", c, m, pb.n, ldc); err != nil {
		return err
	}
	sgemmParallel(threads, transA, m, pb.n, pb.k, alpha, a, lda, bOperand{packed: pb}, beta, c, ldc)
	return nil
}

// SgemmBatched computes, for each t in [0, batch), the product
// C_t = alpha*op(A_t)*op(B_t) + beta*C_t where X_t starts at element
// t*strideX of x (a stride of 0 broadcasts one matrix to every product,
// except for C, whose matrices must not overlap). Attention uses it for
// Q x K^T and P x V over batch*heads. It runs on up to threads goroutines,
// one product per goroutine when batch allows, otherwise each product is
// itself split.
func SgemmBatched(threads, batch int, transA, transB bool, m, n, k int, alpha float32, a []float32, strideA, lda int, b []float32, strideB, ldb int, beta float32, c []float32, strideC, ldc int) error {
	if batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		return fmt.Errorf("%w: negative batch %d or stride (A %d, B %d, C %d)", ErrBadArgument, batch, strideA, strideB, strideC)
	}
	if batch == 0 {
		return nil
	}
	if batch > 1 && m > 0 && n > 0 && strideC < (m-1)*ldc+n {
		return fmt.Errorf("%w: C stride %d is less than one %d x %d matrix with leading dimension %d", ErrBadArgument, strideC, m, n, ldc)
	}
	last := batch - 1
	// Checking the last matrix of each operand covers all the others (the
	// offsets grow with t); the offsets themselves must stay in range.
	for _, s := range []struct {
		name   string
		buf    []float32
		stride int
	}{{"A", a, strideA}, {"B", b, strideB}, {"C", c, strideC}} {
		if s.stride > 0 && last > len(s.buf)/s.stride {
			return fmt.Errorf("%w: %s has %d elements, too few for %d matrices %d apart", ErrBadArgument, s.name, len(s.buf), batch, s.stride)
		}
	}
	if err := checkArgs(transA, transB, m, n, k, a[last*strideA:], lda, b[last*strideB:], ldb, c[last*strideC:], ldc); err != nil {
		return fmt.Errorf("batch %d: %w", last, err)
	}
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	one := func(t, threads int) {
		sgemmParallel(threads, transA, m, n, k, alpha, a[t*strideA:], lda, bOperand{trans: transB, data: b[t*strideB:], ld: ldb}, beta, c[t*strideC:], ldc)
	}
	if batch < threads || threads == 1 {
		for t := 0; t < batch; t++ {
			one(t, threads)
		}
		return nil
	}
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for t := w; t < batch; t += threads {
				one(t, 1)
			}
		}()
	}
	wg.Wait()
	return nil
}

// KernelName says which micro-kernel this process uses, for benchmark
// reports: "avx2-fma-6x16" (assembly) or "go-6x16" (portable Go).
func KernelName() string {
	if useAsm {
		return "avx2-fma-6x16"
	}
	return "go-6x16"
}
