package cpu

// transposeInto writes the transpose of the rows x cols matrix src
// (leading dimension ld) into dst as a cols x rows matrix with leading
// dimension ldd >= rows: dst[c*ldd+r] = src[r*ld+c]. Keys are read eight rows at a time so
// that every store run is eight contiguous floats; storing one float per
// destination row, as a plain double loop does, was several times slower
// (attention transposes each head's K so the score GEMM packs it with
// contiguous copies).
func transposeInto(dst []float32, ldd int, src []float32, rows, cols, ld int) {
	if rows == 0 || cols == 0 {
		return
	}
	dst = dst[:(cols-1)*ldd+rows]
	_ = src[(rows-1)*ld+cols-1]
	r := 0
	for ; r+8 <= rows; r += 8 {
		// Re-slicing to len(s0) lets the compiler drop the bounds
		// checks of s1[c] ... s7[c].
		s0 := src[r*ld : r*ld+cols]
		s1 := src[(r+1)*ld:][:len(s0)]
		s2 := src[(r+2)*ld:][:len(s0)]
		s3 := src[(r+3)*ld:][:len(s0)]
		s4 := src[(r+4)*ld:][:len(s0)]
		s5 := src[(r+5)*ld:][:len(s0)]
		s6 := src[(r+6)*ld:][:len(s0)]
		s7 := src[(r+7)*ld:][:len(s0)]
		for c := range s0 {
			d := dst[c*ldd+r : c*ldd+r+8 : c*ldd+r+8]
			d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = s0[c], s1[c], s2[c], s3[c], s4[c], s5[c], s6[c], s7[c]
		}
	}
	for ; r < rows; r++ {
		for c, v := range src[r*ld : r*ld+cols] {
			dst[c*ldd+r] = v
		}
	}
}
