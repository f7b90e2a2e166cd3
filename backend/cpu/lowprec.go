package cpu

import (
	"math"
	"sort"

	"github.com/tfc-compiler/tfc/ir"
)

// Low-precision element types: the float8 family, float4 e2m1 and
// float8 e8m0 are held as one code per element in []uint8; int4 and
// int2 as unpacked values in []int8, uint4 and uint2 in []uint8. They are
// storage types: Cast converts to and from them, data-movement ops move
// them, arithmetic does not accept them.

var (
	miniFloatTypes = typesOf(ir.Float8E4M3FN, ir.Float8E4M3FNUZ, ir.Float8E5M2, ir.Float8E5M2FNUZ, ir.Float4E2M1, ir.Float8E8M0)
	lowIntTypes    = typesOf(ir.Int4, ir.Uint4, ir.Int2, ir.Uint2)
	lowPrecTypes   = miniFloatTypes | lowIntTypes
)

// miniFloat describes a small float format by its codes.
type miniFloat struct {
	bits       int
	decode     []float64 // value of each code (NaN for NaN codes)
	positives  []uint8   // finite non-negative codes in increasing value
	maxFinite  float64
	hasInf     bool
	nanCode    uint8
	noNegZero  bool // the FNUZ formats: the "negative zero" code is NaN
	alwaysSat  bool // float4: no Inf or NaN codes, overflow saturates
	nanAsNegZe bool // float4: NaN becomes -0, as ml_dtypes does
}

func newMiniFloat(expBits, mantBits, bias int, kind string) *miniFloat {
	bits := 1 + expBits + mantBits
	f := &miniFloat{bits: bits}
	n := 1 << bits
	f.decode = make([]float64, n)
	expMax := 1<<expBits - 1
	for c := 0; c < n; c++ {
		sign := 1.0
		if c>>(bits-1) == 1 {
			sign = -1
		}
		e := (c >> mantBits) & expMax
		m := c & (1<<mantBits - 1)
		var v float64
		if e == 0 {
			v = float64(m) / float64(int(1)<<mantBits) * math.Ldexp(1, 1-bias)
		} else {
			v = (1 + float64(m)/float64(int(1)<<mantBits)) * math.Ldexp(1, e-bias)
		}
		v *= sign
		switch kind {
		case "fn": // all-ones exponent and mantissa is NaN
			if e == expMax && m == 1<<mantBits-1 {
				v = math.NaN()
			}
		case "fnuz": // the negative-zero code is the only NaN
			if c == 1<<(bits-1) {
				v = math.NaN()
			}
		case "ieee":
			if e == expMax {
				if m == 0 {
					v = math.Inf(int(sign))
				} else {
					v = math.NaN()
				}
			}
		}
		f.decode[c] = v
	}
	switch kind {
	case "fn":
		f.nanCode = uint8(n/2 - 1)
	case "fnuz":
		f.nanCode, f.noNegZero = uint8(n/2), true
	case "ieee":
		f.hasInf, f.nanCode = true, uint8(n/2-1)
	default: // float4: no specials
		f.alwaysSat, f.nanAsNegZe = true, true
	}
	for c := 0; c < n/2; c++ {
		if v := f.decode[c]; !math.IsNaN(v) && !math.IsInf(v, 0) {
			f.positives = append(f.positives, uint8(c))
			f.maxFinite = math.Max(f.maxFinite, v)
		}
	}
	sort.Slice(f.positives, func(i, j int) bool { return f.decode[f.positives[i]] < f.decode[f.positives[j]] })
	return f
}

var miniFloats = map[ir.DataType]*miniFloat{
	ir.Float8E4M3FN:   newMiniFloat(4, 3, 7, "fn"),
	ir.Float8E4M3FNUZ: newMiniFloat(4, 3, 8, "fnuz"),
	ir.Float8E5M2:     newMiniFloat(5, 2, 15, "ieee"),
	ir.Float8E5M2FNUZ: newMiniFloat(5, 2, 16, "fnuz"),
	ir.Float4E2M1:     newMiniFloat(2, 1, 1, "none"),
}

// encode rounds x to the nearest code (ties to the even code). Values
// beyond the largest finite one become it when saturating, else Inf (if
// the format has it) or NaN.
func (f *miniFloat) encode(x float64, saturate bool) uint8 {
	sat := saturate || f.alwaysSat
	signBit := uint8(1) << (f.bits - 1)
	neg := math.Signbit(x)
	if math.IsNaN(x) {
		if f.nanAsNegZe {
			return signBit
		}
		return f.nanCode
	}
	a := math.Abs(x)
	var mag uint8
	top := f.positives[len(f.positives)-1]
	prev := f.decode[f.positives[len(f.positives)-2]]
	half := (f.maxFinite - prev) / 2
	switch {
	case math.IsInf(a, 1) || a > f.maxFinite+half || (a == f.maxFinite+half && top&1 == 1):
		switch {
		case sat:
			mag = top
		case f.hasInf:
			mag = f.infCode()
		default:
			return f.nanCode
		}
	default:
		i := sort.Search(len(f.positives), func(i int) bool { return f.decode[f.positives[i]] >= a })
		if i == len(f.positives) {
			i--
		}
		mag = f.positives[i]
		if i > 0 {
			lo := f.positives[i-1]
			dlo, dhi := a-f.decode[lo], f.decode[mag]-a
			if dlo < dhi || (dlo == dhi && lo&1 == 0) {
				mag = lo
			}
		}
	}
	if neg && !(f.noNegZero && mag == 0) {
		return mag | signBit
	}
	return mag
}

// infCode is the +Inf code of an IEEE-like format.
func (f *miniFloat) infCode() uint8 {
	for c, v := range f.decode {
		if math.IsInf(v, 1) {
			return uint8(c)
		}
	}
	return f.nanCode
}

// e8m0Decode is 2^(code-127); 0xFF is NaN.
func e8m0Decode(c uint8) float64 {
	if c == 0xff {
		return math.NaN()
	}
	return math.Ldexp(1, int(c)-127)
}

// e8m0Encode follows onnx.numpy_helper.to_float8e8m0 on float32 bits.
func e8m0Encode(x float32, saturate bool, roundMode string) uint8 {
	b := math.Float32bits(x)
	exp := (b >> 23) & 0xff
	if exp == 0xff {
		return 0xff
	}
	up := false
	switch roundMode {
	case "nearest":
		g := b&0x400000 != 0
		r := b&0x200000 != 0
		s := b&0x1fffff != 0
		lsb := exp > 0
		up = g && (r || s || lsb)
	case "down":
	default: // "up"
		up = b&0x7fffff != 0
	}
	if up && saturate && exp == 0xfe {
		up = false
	}
	if up {
		exp++
	}
	return uint8(exp)
}

// wrapInt keeps the low bits of v as a signed or unsigned value of the
// given width (Cast to int4/int2 wraps, as ml_dtypes does).
func wrapInt(v int64, bits uint, signed bool) int64 {
	mask := int64(1)<<bits - 1
	v &= mask
	if signed && v>>(bits-1) == 1 {
		v -= 1 << bits
	}
	return v
}

func lowIntBits(dt ir.DataType) (uint, bool) {
	switch dt {
	case ir.Int4:
		return 4, true
	case ir.Uint4:
		return 4, false
	case ir.Int2:
		return 2, true
	}
	return 2, false
}

// decodeLowPrecRaw unpacks ONNX raw_data of a low-precision type into t.
func decodeLowPrecRaw(t *Tensor, b []byte) {
	bits := t.DType.Bits()
	per := 8 / bits
	get := func(i int) uint8 {
		return (b[i/per] >> (uint(i%per) * uint(bits))) & uint8(1<<bits-1)
	}
	switch d := t.Data.(type) {
	case []int8: // int4, int2
		w, _ := lowIntBits(t.DType)
		for i := range d {
			d[i] = int8(wrapInt(int64(get(i)), w, true))
		}
	case []uint8:
		for i := range d {
			d[i] = get(i)
		}
	}
}

// lowPrecFloats decodes a low-precision tensor to float64.
func lowPrecFloats(t *Tensor) []float64 {
	switch d := t.Data.(type) {
	case []int8:
		out := make([]float64, len(d))
		convertInto(out, d)
		return out
	case []uint8:
		out := make([]float64, len(d))
		switch {
		case t.DType == ir.Float8E8M0:
			for i, c := range d {
				out[i] = e8m0Decode(c)
			}
		case miniFloats[t.DType] != nil:
			f := miniFloats[t.DType]
			for i, c := range d {
				out[i] = f.decode[c]
			}
		default: // uint4, uint2
			convertInto(out, d)
		}
		return out
	}
	return nil
}

// storeLowPrec writes values into a low-precision tensor: floats are
// rounded to the format (saturating as asked), integers wrap.
func storeLowPrec(out *Tensor, fv []float64, iv []int64, saturate bool, roundMode string) {
	if lowIntTypes.has(out.DType) {
		w, signed := lowIntBits(out.DType)
		get := func(i int) int64 {
			if iv != nil {
				return iv[i]
			}
			return int64(fv[i])
		}
		switch d := out.Data.(type) {
		case []int8:
			for i := range d {
				d[i] = int8(wrapInt(get(i), w, signed))
			}
		case []uint8:
			for i := range d {
				d[i] = uint8(wrapInt(get(i), w, signed))
			}
		}
		return
	}
	d := out.Data.([]uint8)
	val := func(i int) float64 {
		if fv != nil {
			return fv[i]
		}
		return float64(iv[i])
	}
	if out.DType == ir.Float8E8M0 {
		for i := range d {
			d[i] = e8m0Encode(float32(val(i)), saturate, roundMode)
		}
		return
	}
	f := miniFloats[out.DType]
	for i := range d {
		// round through float32 first: Cast sees float32 values
		d[i] = f.encode(float64(float32(val(i))), saturate)
	}
}
