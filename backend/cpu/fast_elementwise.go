package cpu

// binaryRowsF32 is the float32 fast path of Add, Sub, Mul and Div when
// one operand has the output's shape and the other is a suffix of it (a
// bias over the last axes, or a scalar): it walks the output in rows of
// the small operand's size instead of building broadcast index arrays.
// It declines (false) for other ops or shapes; the caller then runs
// broadcastBinary, its reference.
func binaryRowsF32(r *runState, name string, a []float32, as []int, b []float32, bs []int, out []float32, os []int) bool {
	switch name {
	case "Add", "Sub", "Mul", "Div":
	default:
		return false
	}
	if len(out) == 0 {
		return false
	}
	var inner int
	bigA := sameShape(as, os)
	switch {
	case bigA && isSuffixShape(bs, os):
		inner = len(b)
	case sameShape(bs, os) && isSuffixShape(as, os):
		inner = len(a)
	default:
		return false
	}
	if inner == 0 || len(out)%inner != 0 {
		return false
	}
	if bigA && len(b) == len(out) && sameShape(as, bs) {
		inner = len(out) // both full: one row
	}
	// Threads take whole rows when there are several, else split the row.
	rows := len(out) / inner
	step := inner
	if rows == 1 {
		step = max(1, min(inner, 1<<14))
	}
	r.parallelFor((len(out)+step-1)/step, func(lo, hi int) {
		for o := lo * step; o < min(hi*step, len(out)); o += step {
			end := min(o+step, len(out))
			y := out[o:end]
			var x, s []float32 // x: the full operand's row, s: the small one's
			bo := o % inner
			if bigA {
				x, s = a[o:end], b[bo:bo+len(y)]
			} else {
				x, s = b[o:end], a[bo:bo+len(y)]
			}
			applyRowF32(name, y, x, s, bigA)
		}
	})
	return true
}

// applyRowF32 sets y = x op s when the full operand x is the left one
// (xLeft), else y = s op x.
func applyRowF32(name string, y, x, s []float32, xLeft bool) {
	x, s = x[:len(y)], s[:len(y)]
	switch {
	case name == "Add":
		for j := range y {
			y[j] = x[j] + s[j]
		}
	case name == "Mul":
		for j := range y {
			y[j] = x[j] * s[j]
		}
	case name == "Sub" && xLeft:
		for j := range y {
			y[j] = x[j] - s[j]
		}
	case name == "Sub":
		for j := range y {
			y[j] = s[j] - x[j]
		}
	case name == "Div" && xLeft:
		for j := range y {
			y[j] = x[j] / s[j]
		}
	default: // Div, small operand on the left
		for j := range y {
			y[j] = s[j] / x[j]
		}
	}
}

// isSuffixShape reports whether small (leading 1s ignored) equals the
// trailing axes of full.
func isSuffixShape(small, full []int) bool {
	small = trimOnes(small)
	if len(small) > len(full) {
		return false
	}
	return sameShape(small, full[len(full)-len(small):])
}
