package ir

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// SymInt is one element of a shape tensor as shape inference knows it: a
// number (which, unlike a Dim, may be negative: Reshape's -1, a Gather index
// of -1), a named symbol, or unknown.
//
// Symbols derived by arithmetic are named by their expression in canonical
// form, so that equal expressions get equal names: products are factors
// joined by "*" with a numeric coefficient first and symbols sorted
// ("batch*seq", "12*seq"); sums are terms joined by "+"/"-", symbols sorted
// and the constant last ("past_seq+seq", "seq-1"). A factor that is itself a
// sum is parenthesized ("2*(seq+1)").
type SymInt struct {
	Known bool
	Val   int64
	Sym   string
}

// KnownInt returns a SymInt holding n.
func KnownInt(n int64) SymInt { return SymInt{Known: true, Val: n} }

// SymIntOf converts a dimension.
func SymIntOf(d Dim) SymInt {
	switch {
	case d.IsSym():
		return SymInt{Sym: d.Sym}
	case d.IsKnown():
		return KnownInt(d.Size)
	}
	return SymInt{}
}

// IsUnknown reports whether nothing is known about s.
func (s SymInt) IsUnknown() bool { return !s.Known && s.Sym == "" }

// Dim converts s to a dimension: negative numbers and unknowns become an
// unknown dimension.
func (s SymInt) Dim() Dim {
	switch {
	case s.Sym != "":
		return Sym(s.Sym)
	case s.Known && s.Val >= 0:
		return Known(s.Val)
	}
	return UnknownDim()
}

func (s SymInt) String() string {
	switch {
	case s.Sym != "":
		return s.Sym
	case s.Known:
		return strconv.FormatInt(s.Val, 10)
	}
	return "?"
}

// Same reports whether two SymInts are provably equal.
func (s SymInt) Same(o SymInt) bool {
	if s.Known && o.Known {
		return s.Val == o.Val
	}
	return s.Sym != "" && s.Sym == o.Sym
}

// linear is a sum of symbolic terms with integer coefficients plus a
// constant: the canonical form behind derived sum symbols.
type linear struct {
	terms map[string]int64 // atom -> coefficient
	c     int64
}

// monomial is coeff times a product of symbolic factors: the canonical form
// behind derived product symbols.
type monomial struct {
	coeff   int64
	factors []string // sorted
}

// splitTop splits s at top-level (outside parentheses) occurrences of any
// byte in seps, keeping each separator at the start of the following part.
func splitTop(s, seps string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && i > 0 && strings.IndexByte(seps, c) >= 0:
			parts = append(parts, s[start:i])
			start = i
		}
	}
	return append(parts, s[start:])
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// parseLinear reads a symbol name as a sum of terms. Any name parses: a
// name without top-level '+'/'-' is a single term.
func parseLinear(name string) linear {
	l := linear{terms: map[string]int64{}}
	for _, part := range splitTop(name, "+-") {
		part = strings.TrimSpace(part)
		sign := int64(1)
		if strings.HasPrefix(part, "+") {
			part = part[1:]
		} else if strings.HasPrefix(part, "-") {
			sign, part = -1, part[1:]
		}
		part = strings.TrimSpace(part)
		if n, err := strconv.ParseInt(part, 10, 64); err == nil {
			l.c += sign * n
			continue
		}
		coeff := int64(1)
		if c, rest, ok := strings.Cut(part, "*"); ok && isNumber(c) && !strings.ContainsAny(rest, "+-") {
			coeff, _ = strconv.ParseInt(c, 10, 64)
			part = rest
		}
		if part == "" {
			// A name like "a-" or "-" is not an expression; keep it whole.
			return linear{terms: map[string]int64{name: 1}}
		}
		l.terms[part] += sign * coeff
	}
	return l
}

func linearOf(s SymInt) (linear, bool) {
	switch {
	case s.Known:
		return linear{terms: map[string]int64{}, c: s.Val}, true
	case s.Sym != "":
		return parseLinear(s.Sym), true
	}
	return linear{}, false
}

func (l linear) symInt() SymInt {
	var atoms []string
	for a, k := range l.terms {
		if k != 0 {
			atoms = append(atoms, a)
		}
	}
	if len(atoms) == 0 {
		return KnownInt(l.c)
	}
	sort.Strings(atoms)
	var b strings.Builder
	for i, a := range atoms {
		k := l.terms[a]
		switch {
		case k < 0:
			b.WriteByte('-')
			k = -k
		case i > 0:
			b.WriteByte('+')
		}
		if k != 1 {
			b.WriteString(strconv.FormatInt(k, 10))
			b.WriteByte('*')
		}
		b.WriteString(a)
	}
	if l.c > 0 {
		b.WriteByte('+')
		b.WriteString(strconv.FormatInt(l.c, 10))
	} else if l.c < 0 {
		b.WriteString(strconv.FormatInt(l.c, 10))
	}
	name := b.String()
	if len(atoms) == 1 && l.terms[atoms[0]] == 1 && l.c == 0 {
		name = atoms[0]
	}
	return SymInt{Sym: name}
}

// symAdd returns a+b (sign +1) or a-b (sign -1).
func symAdd(a, b SymInt, sign int64) SymInt {
	if a.Known && b.Known {
		return KnownInt(a.Val + sign*b.Val)
	}
	la, ok1 := linearOf(a)
	lb, ok2 := linearOf(b)
	if !ok1 || !ok2 {
		return SymInt{}
	}
	out := linear{terms: map[string]int64{}, c: la.c + sign*lb.c}
	for t, k := range la.terms {
		out.terms[t] += k
	}
	for t, k := range lb.terms {
		out.terms[t] += sign * k
	}
	return out.symInt()
}

// parseMonomial reads a symbol name as a product of factors. A name that is
// a sum becomes a single (parenthesized) factor.
func parseMonomial(name string) monomial {
	m := monomial{coeff: 1}
	if len(splitTop(name, "+-")) > 1 {
		return monomial{coeff: 1, factors: []string{"(" + name + ")"}}
	}
	for _, part := range splitTop(name, "*") {
		part = strings.TrimSpace(strings.TrimPrefix(part, "*"))
		if n, err := strconv.ParseInt(part, 10, 64); err == nil {
			m.coeff *= n
			continue
		}
		m.factors = append(m.factors, part)
	}
	sort.Strings(m.factors)
	return m
}

func monomialOf(s SymInt) (monomial, bool) {
	switch {
	case s.Known:
		return monomial{coeff: s.Val}, true
	case s.Sym != "":
		return parseMonomial(s.Sym), true
	}
	return monomial{}, false
}

func monomialOfDim(d Dim) (monomial, bool) { return monomialOf(SymIntOf(d)) }

func (m monomial) mul(o monomial) (monomial, bool) {
	if m.coeff != 0 && o.coeff != 0 && (abs64(m.coeff) > math.MaxInt64/abs64(o.coeff)) {
		return monomial{}, false
	}
	out := monomial{coeff: m.coeff * o.coeff}
	if out.coeff == 0 {
		return out, true
	}
	out.factors = append(append([]string(nil), m.factors...), o.factors...)
	sort.Strings(out.factors)
	return out, true
}

// div returns m/o when the division is exact.
func (m monomial) div(o monomial) (monomial, bool) {
	if o.coeff == 0 || m.coeff%o.coeff != 0 {
		return monomial{}, false
	}
	rest := append([]string(nil), m.factors...)
	for _, f := range o.factors {
		i := sort.SearchStrings(rest, f)
		if i >= len(rest) || rest[i] != f {
			return monomial{}, false
		}
		rest = append(rest[:i], rest[i+1:]...)
	}
	return monomial{coeff: m.coeff / o.coeff, factors: rest}, true
}

func (m monomial) symInt() SymInt {
	if len(m.factors) == 0 || m.coeff == 0 {
		return KnownInt(m.coeff)
	}
	parts := m.factors
	if m.coeff != 1 {
		parts = append([]string{strconv.FormatInt(m.coeff, 10)}, parts...)
	}
	name := strings.Join(parts, "*")
	if len(parts) == 1 && strings.HasPrefix(name, "(") && strings.HasSuffix(name, ")") {
		name = name[1 : len(name)-1]
	}
	return SymInt{Sym: name}
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// symMul returns a*b; a product of symbols becomes a derived symbol.
func symMul(a, b SymInt) SymInt {
	if (a.Known && a.Val == 0) || (b.Known && b.Val == 0) {
		return KnownInt(0)
	}
	ma, ok1 := monomialOf(a)
	mb, ok2 := monomialOf(b)
	if !ok1 || !ok2 {
		return SymInt{}
	}
	if a.Known && b.Known {
		if p, ok := ma.mul(mb); ok {
			return KnownInt(p.coeff)
		}
		return SymInt{}
	}
	p, ok := ma.mul(mb)
	if !ok {
		return SymInt{}
	}
	return p.symInt()
}

// symDiv returns a/b with ONNX integer division (truncation) for numbers,
// and exact division for symbolic products; anything else is unknown.
func symDiv(a, b SymInt) SymInt {
	if b.Known && b.Val == 0 {
		return SymInt{}
	}
	if a.Known && b.Known {
		if a.Val%b.Val != 0 && (a.Val < 0) != (b.Val < 0) {
			// Runtimes disagree on rounding negative quotients
			// (truncation or floor).
			return SymInt{}
		}
		return KnownInt(a.Val / b.Val)
	}
	if b.Known && b.Val == 1 {
		return a
	}
	ma, ok1 := monomialOf(a)
	mb, ok2 := monomialOf(b)
	if !ok1 || !ok2 || mb.coeff < 0 {
		return SymInt{}
	}
	if q, ok := ma.div(mb); ok {
		return q.symInt()
	}
	return SymInt{}
}

// dimProduct returns the product of dims as a monomial, or false when a
// dimension is unknown.
func dimProduct(dims []Dim) (monomial, bool) {
	p := monomial{coeff: 1}
	for _, d := range dims {
		m, ok := monomialOfDim(d)
		if !ok {
			return monomial{}, false
		}
		if p, ok = p.mul(m); !ok {
			return monomial{}, false
		}
	}
	return p, true
}
