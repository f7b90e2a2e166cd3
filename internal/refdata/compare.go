package refdata

import (
	"fmt"
	"math"
	"slices"

	"github.com/tfc-compiler/tfc/backend/cpu"
)

// Element is one element of a comparison, by flat index.
type Element struct {
	Index     int
	Got, Want float64
}

// Mismatch is the result of Compare.
type Mismatch struct {
	// Problem says why the tensors could not be compared element by
	// element (no output, shapes differ, not numeric), or for string
	// tensors that elements differ; "" otherwise.
	Problem string
	// Count of Total elements are out of tolerance.
	Count, Total int
	// First is the first element out of tolerance, Worst the one furthest
	// beyond it (the first of those on a tie); valid when Count > 0.
	First, Worst Element
	// MaxAbsErr is the largest |got - want| over all elements (NaN
	// against NaN left out); +Inf where one side is NaN or infinite and
	// the other is not.
	MaxAbsErr float64
}

// OK reports whether every element is within tolerance.
func (m Mismatch) OK() bool { return m.Problem == "" && m.Count == 0 }

// Err is nil when m is OK, else an error that describes the mismatch.
func (m Mismatch) Err() error {
	switch {
	case m.Problem != "":
		return fmt.Errorf("%s", m.Problem)
	case m.Count > 0:
		return fmt.Errorf("%d of %d elements out of tolerance; first at flat index %d: got %g, want %g; worst at flat index %d: got %g, want %g; max |err| %g",
			m.Count, m.Total, m.First.Index, m.First.Got, m.First.Want, m.Worst.Index, m.Worst.Got, m.Worst.Want, m.MaxAbsErr)
	}
	return nil
}

// Compare compares got with the reference want. An element passes when
// it equals the reference, when both are NaN, or when both are finite and
// |got - want| <= atol + rtol*|want|; an infinite reference needs the
// same infinity. Shapes must be equal. String tensors must be equal
// element by element. Numeric tensors of different element types are
// compared by value (callers that care check DType themselves).
func Compare(got, want *cpu.Tensor, rtol, atol float64) Mismatch {
	var m Mismatch
	switch {
	case got == nil:
		m.Problem = "no output computed"
		return m
	case want == nil:
		m.Problem = "no reference"
		return m
	case !slices.Equal(got.Shape, want.Shape):
		m.Problem = fmt.Sprintf("shape %v, reference %v", got.Shape, want.Shape)
		return m
	}
	g, ok1 := got.Float64s()
	w, ok2 := want.Float64s()
	if !ok1 || !ok2 {
		gs, ok1 := got.Data.([]string)
		ws, ok2 := want.Data.([]string)
		if !ok1 || !ok2 || len(gs) != len(ws) {
			// Sequences, optionals, strings against numbers: only their
			// printed forms can be compared here.
			if got.String() != want.String() {
				m.Problem = "non-numeric output differs"
			}
			return m
		}
		m.Total = len(ws)
		for i := range ws {
			if gs[i] != ws[i] {
				if m.Count == 0 {
					m.First = Element{Index: i}
					m.Worst = m.First
				}
				m.Count++
			}
		}
		if m.Count > 0 {
			m.Problem = "non-numeric output differs"
		}
		return m
	}
	if len(g) != len(w) {
		m.Problem = fmt.Sprintf("%d elements, reference %d", len(g), len(w))
		return m
	}
	m.Total = len(w)
	worst := math.Inf(-1)
	for i := range w {
		a, b := g[i], w[i]
		if a == b || (math.IsNaN(a) && math.IsNaN(b)) {
			continue
		}
		diff := math.Abs(a - b)
		if math.IsNaN(diff) { // one NaN, or opposite infinities
			diff = math.Inf(1)
		}
		m.MaxAbsErr = max(m.MaxAbsErr, diff)
		excess := diff - (atol + rtol*math.Abs(b))
		if math.IsInf(diff, 1) {
			// An infinity or NaN on one side only is as far off as it gets,
			// even where an infinite reference makes the tolerance infinite.
			excess = math.Inf(1)
		}
		if excess <= 0 {
			continue
		}
		e := Element{Index: i, Got: a, Want: b}
		if m.Count == 0 {
			m.First = e
		}
		if excess > worst {
			worst, m.Worst = excess, e
		}
		m.Count++
	}
	return m
}
