package gemm

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Blocking parameters (Goto/BLIS). The micro-kernel computes an mr x nr
// tile of C from an mr-row panel of A and an nr-column panel of packed B,
// both up to kc deep (depthBlock splits k into equal blocks). Sizes
// target AMD Zen 3 (32 KiB L1d and 512 KiB L2 per core, 32 MiB shared
// L3) and are sane for any AVX2 core:
//   - a B micro-panel (up to kc x nr floats = 24 KiB) stays in L1 while
//     the kernel sweeps the A block;
//   - the A block (mc x kc = up to 216 KiB) stays in L2;
//   - the packed B block (kc x nc = up to 4.5 MiB) lives in L3.
//
// kc is 384 rather than 256 because every depth block costs a pass over
// the C tile and a kernel call, and the transformer depths (384, 768,
// 1536, 3072) are multiples of 384: on one thread it measured 2-10%
// faster at MiniLM's K = 384 and 1536 (no more 256 + 128 split), about
// the same at BERT-base's shapes.
const (
	mr = 6
	nr = 16
	kc = 384
	mc = 144
	nc = 3072
)

// depthBlock is the depth of the blocks k is split into: as few blocks of
// at most kc as possible, all of equal depth but the last, which is
// shorter by less than the number of blocks, so that no block is a
// short, overhead-bound tail.
// PackB and the driver both use it, so a PackedB matches the driver's
// blocks.
func depthBlock(k int) int {
	blocks := max(1, (k+kc-1)/kc)
	return (k + blocks - 1) / blocks
}

// ErrBadArgument is wrapped by every error about arguments (dimensions,
// leading dimensions, slice lengths, strides); test with errors.Is.
var ErrBadArgument = errors.New("gemm: bad argument")

// checkMatrix checks that buf can hold a rows x cols row-major matrix with
// leading dimension ld. name is used in the error message.
func checkMatrix(name string, buf []float32, rows, cols, ld int) error {
	if ld < max(1, cols) {
		return fmt.Errorf("%w: %s has leading dimension %d, need at least %d", ErrBadArgument, name, ld, max(1, cols))
	}
	if rows == 0 || cols == 0 {
		return nil
	}
	if rows-1 > (math.MaxInt-cols)/ld {
		return fmt.Errorf("%w: %s of %d x %d with leading dimension %d overflows int", ErrBadArgument, name, rows, cols, ld)
	}
	if need := (rows-1)*ld + cols; len(buf) < need {
		return fmt.Errorf("%w: %s has %d elements, a %d x %d matrix with leading dimension %d needs %d", ErrBadArgument, name, len(buf), rows, cols, ld, need)
	}
	return nil
}

// checkArgs validates the arguments of Sgemm.
func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) error {
	if m < 0 || n < 0 || k < 0 {
		return fmt.Errorf("%w: negative dimension m=%d n=%d k=%d", ErrBadArgument, m, n, k)
	}
	if err := checkA(transA, m, k, a, lda); err != nil {
		return err
	}
	if transB {
		if err := checkMatrix("B (transposed, n x k)", b, n, k, ldb); err != nil {
			return err
		}
	} else if err := checkMatrix("B (k x n)", b, k, n, ldb); err != nil {
		return err
	}
	return checkMatrix("C (m x n)", c, m, n, ldc)
}

func checkA(transA bool, m, k int, a []float32, lda int) error {
	if transA {
		return checkMatrix("A (transposed, k x m)", a, k, m, lda)
	}
	return checkMatrix("A (m x k)", a, m, k, lda)
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C on one goroutine, where
// op(A) is m x k and op(B) is k x n, all matrices row-major with leading
// dimensions lda, ldb, ldc. op(X) is X, or its transpose when transX is
// set (then A is stored k x m and B is stored n x k). As in BLAS, C is not
// read when beta == 0, and A and B are not read when alpha == 0 or k == 0.
// Arguments that do not describe matrices inside the given slices are
// reported as errors; nothing is written then.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) error {
	if err := checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc); err != nil {
		return err
	}
	sgemm(transA, m, n, k, alpha, a, lda, bOperand{trans: transB, data: b, ld: ldb}, beta, c, ldc)
	return nil
}

// bOperand is the B side of a product: either a row-major matrix that is
// packed block by block on the fly, or a PackedB (then col0, a multiple of
// nr, is the first column of the view, used when threads split over N).
type bOperand struct {
	packed *PackedB
	col0   int

	trans bool
	data  []float32
	ld    int
}

// subColumns returns the view of columns [j0, ...) of b; j0 is a multiple
// of nr when b is packed.
func (b bOperand) subColumns(j0 int) bOperand {
	if b.packed != nil {
		b.col0 += j0
		return b
	}
	if b.trans {
		b.data = b.data[j0*b.ld:]
	} else {
		b.data = b.data[j0:]
	}
	return b
}

// scaleC sets C = beta*C for the m x n block, writing zeros (not reading
// C) when beta == 0.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

var (
	aBufPool = sync.Pool{New: func() any { s := make([]float32, mc*kc); return &s }}
	bBufPool = sync.Pool{New: func() any { s := make([]float32, kc*nc); return &s }}
)

// sgemm is the blocked driver on valid arguments. Loop order (Goto):
// columns of C in nc blocks, then depth in depthBlock(k) blocks (pack B
// once per block), then rows in mc blocks, then the macro-kernel over nr x mr
// tiles. Non-transposed A is not packed: the micro-kernel reads whole
// 6-row panels in place (as MLAS does on AVX2), and only the last m mod 6
// rows, or all of a transposed A, are packed.
func sgemm(transA bool, m, n, k int, alpha float32, a []float32, lda int, b bOperand, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	// The first depth block overwrites C when beta == 0 (so NaN in C does
	// not leak through 0*NaN); other betas are applied up front and every
	// block accumulates.
	if beta != 0 {
		scaleC(m, n, beta, c, ldc)
	}
	var ap *[]float32
	if transA || m%mr != 0 {
		ap = aBufPool.Get().(*[]float32)
		defer aBufPool.Put(ap)
	}
	var bp *[]float32
	if b.packed == nil {
		bp = bBufPool.Get().(*[]float32)
		defer bBufPool.Put(bp)
	}
	kstep := depthBlock(k)
	for jc := 0; jc < n; jc += nc {
		ncb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kstep {
			kcb := min(kstep, k-pc)
			var bpanels []float32
			if b.packed != nil {
				bpanels = b.packed.block(pc, b.col0+jc)
			} else {
				bpanels = *bp
				packB(bpanels, b.trans, b.data, b.ld, pc, jc, kcb, ncb)
			}
			accumulate := pc > 0 || beta != 0
			for ic := 0; ic < m; ic += mc {
				mcb := min(mc, m-ic)
				var blk aBlock
				if !transA {
					blk = aBlock{rows: a[ic*lda+pc:], lda: lda, inPlace: mcb / mr * mr}
				}
				if blk.inPlace < mcb {
					blk.packed = *ap
					packA(blk.packed, transA, a, lda, ic+blk.inPlace, pc, mcb-blk.inPlace, kcb)
				}
				macroKernel(mcb, ncb, kcb, alpha, blk, bpanels, c[ic*ldc+jc:], ldc, accumulate)
			}
		}
	}
}

// aBlock is the A side of one mcb x kcb block: its first inPlace rows (a
// multiple of mr) are read in place from rows, a row-major view starting
// at the block's first row and depth with leading dimension lda; the
// remaining rows are packed panels (packA layout) in packed.
type aBlock struct {
	rows    []float32
	lda     int
	inPlace int
	packed  []float32
}

// macroKernel multiplies an mcb x kcb block of A by a packed kcb x ncb
// block of B into C. Full tiles go straight to C; edge tiles are computed
// into a scratch tile (packed panels are zero-padded; in-place panels are
// always full rows, so only their columns can be short) and only their
// valid part is added to C.
func macroKernel(mcb, ncb, kcb int, alpha float32, a aBlock, bp []float32, c []float32, ldc int, accumulate bool) {
	var tile [mr * nr]float32
	for jr := 0; jr < ncb; jr += nr {
		nrb := min(nr, ncb-jr)
		bpanel := bp[(jr/nr)*kcb*nr : (jr/nr+1)*kcb*nr]
		for ir := 0; ir < mcb; ir += mr {
			mrb := min(mr, mcb-ir)
			full := mrb == mr && nrb == nr
			dst, ldd, acc := tile[:], nr, false
			if full {
				dst, ldd, acc = c[ir*ldc+jr:(ir+mr-1)*ldc+jr+nr], ldc, accumulate
			}
			if ir < a.inPlace {
				microKernelRows(kcb, a.rows[ir*a.lda:], a.lda, bpanel, dst, ldd, alpha, acc)
			} else {
				p := (ir - a.inPlace) / mr
				microKernel(kcb, a.packed[p*kcb*mr:(p+1)*kcb*mr], bpanel, dst, ldd, alpha, acc)
			}
			if full {
				continue
			}
			for i := 0; i < mrb; i++ {
				dst := c[(ir+i)*ldc+jr : (ir+i)*ldc+jr+nrb]
				src := tile[i*nr : i*nr+nrb]
				if accumulate {
					for j, v := range src {
						dst[j] += v
					}
				} else {
					copy(dst, src)
				}
			}
		}
	}
}

// packA copies op(A)[i0:i0+mcb, p0:p0+kcb] into dst as ceil(mcb/mr)
// panels; panel r holds, for each depth l, the mr values of rows
// i0+r*mr ... contiguously (rows past mcb are zero). The driver packs
// only transposed A and the last partial panel of a non-transposed A.
func packA(dst []float32, transA bool, a []float32, lda, i0, p0, mcb, kcb int) {
	for ir := 0; ir < mcb; ir += mr {
		mrb := min(mr, mcb-ir)
		panel := dst[(ir/mr)*kcb*mr : (ir/mr+1)*kcb*mr]
		if transA {
			// op(A)(i, l) = a[l*lda+i]: each depth is a contiguous run.
			for l := 0; l < kcb; l++ {
				src := a[(p0+l)*lda+i0+ir : (p0+l)*lda+i0+ir+mrb]
				d := panel[l*mr : l*mr+mr]
				copy(d, src)
				clear(d[mrb:])
			}
			continue
		}
		if mrb < mr {
			clear(panel)
		}
		for r := 0; r < mrb; r++ {
			row := a[(i0+ir+r)*lda+p0 : (i0+ir+r)*lda+p0+kcb]
			for l, v := range row {
				panel[l*mr+r] = v
			}
		}
	}
}

// packB copies op(B)[p0:p0+kcb, j0:j0+ncb] into dst as ceil(ncb/nr)
// panels; panel j holds, for each depth l, the nr values of columns
// j0+j*nr ... contiguously (columns past ncb are zero).
func packB(dst []float32, transB bool, b []float32, ldb, p0, j0, kcb, ncb int) {
	if !transB {
		// Whole panels go in groups: each row of B is read in runs of
		// packGroup*nr floats (several cache lines of one page) rather
		// than one line per row per panel, which missed the TLB on every
		// row when B is wide.
		const packGroup = 8
		full := ncb / nr
		for g := 0; g < full; g += packGroup {
			ge := min(g+packGroup, full)
			for l := 0; l < kcb; l++ {
				row := (p0+l)*ldb + j0
				for p := g; p < ge; p++ {
					off := row + p*nr
					// Fixed-size array copy: a few vector moves.
					*(*[nr]float32)(dst[(p*kcb+l)*nr:]) = *(*[nr]float32)(b[off : off+nr])
				}
			}
		}
		if jr := full * nr; jr < ncb {
			nrb := ncb - jr
			panel := dst[full*kcb*nr : (full+1)*kcb*nr]
			for l := 0; l < kcb; l++ {
				src := b[(p0+l)*ldb+j0+jr : (p0+l)*ldb+j0+jr+nrb]
				d := panel[l*nr : l*nr+nr]
				copy(d, src)
				clear(d[nrb:])
			}
		}
		return
	}
	for jr := 0; jr < ncb; jr += nr {
		nrb := min(nr, ncb-jr)
		panel := dst[(jr/nr)*kcb*nr : (jr/nr+1)*kcb*nr]
		// op(B)(l, j) = b[j*ldb+l]: each column is a contiguous run.
		if nrb < nr {
			clear(panel)
		}
		for j := 0; j < nrb; j++ {
			col := b[(j0+jr+j)*ldb+p0 : (j0+jr+j)*ldb+p0+kcb]
			for l, v := range col {
				panel[l*nr+j] = v
			}
		}
	}
}

// microKernelGo is the portable micro-kernel on a packed A panel:
// c[i*ldc+j] (+)= alpha * sum_l a[l*mr+i]*b[l*nr+j] for the mr x nr tile.
func microKernelGo(kcb int, a, b, c []float32, ldc int, alpha float32, accumulate bool) {
	microKernelStridedGo(kcb, a[:kcb*mr], 1, mr, b, c, ldc, alpha, accumulate)
}

// microKernelRowsGo is the portable micro-kernel with A read in place
// from six rows: c[i*ldc+j] (+)= alpha * sum_l a[i*lda+l]*b[l*nr+j].
func microKernelRowsGo(kcb int, a []float32, lda int, b, c []float32, ldc int, alpha float32, accumulate bool) {
	microKernelStridedGo(kcb, a[:(mr-1)*lda+kcb], lda, 1, b, c, ldc, alpha, accumulate)
}

// microKernelStridedGo is the body of both Go micro-kernels, with
// A(i, l) = a[i*rowStride+l*depthStride]: one loop, so the packed and
// in-place paths round identically, as the two assembly kernels do.
func microKernelStridedGo(kcb int, a []float32, rowStride, depthStride int, b, c []float32, ldc int, alpha float32, accumulate bool) {
	var acc [mr][nr]float32
	b = b[:kcb*nr]
	for l := 0; l < kcb; l++ {
		bl := (*[nr]float32)(b[l*nr:])
		var al [mr]float32
		for i := range al {
			al[i] = a[i*rowStride+l*depthStride]
		}
		for i := 0; i < mr; i++ {
			ai := al[i]
			row := &acc[i]
			for j := 0; j < nr; j++ {
				row[j] += ai * bl[j]
			}
		}
	}
	for i := 0; i < mr; i++ {
		dst := c[i*ldc : i*ldc+nr]
		for j := range dst {
			// The explicit conversion forbids fusing into an FMA, so full
			// and edge tiles round identically on every architecture.
			v := float32(alpha * acc[i][j])
			if accumulate {
				dst[j] += v
			} else {
				dst[j] = v
			}
		}
	}
}
