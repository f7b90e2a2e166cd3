package cpu

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/tfc-compiler/tfc/ir"
)

func stringsOf(t *Tensor) ([]string, error) {
	s, ok := t.Data.([]string)
	if !ok || t.DType != ir.String {
		return nil, fmt.Errorf("expected a string tensor, got %v", t)
	}
	return s, nil
}

func buildStringConcat(n *ir.Node, _ *compiler) (kernel, error) {
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 2); err != nil {
			return nil, err
		}
		a, err := stringsOf(in[0])
		if err != nil {
			return nil, err
		}
		b, err := stringsOf(in[1])
		if err != nil {
			return nil, err
		}
		shape, err := broadcastShapes(in[0].Shape, in[1].Shape)
		if err != nil {
			return nil, err
		}
		out := r.mustAlloc(ir.String, shape)
		broadcastBinary(r, a, in[0].Shape, b, in[1].Shape, out.Data.([]string), shape, func(x, y string) string { return x + y })
		return []*Tensor{out}, nil
	}, nil
}

func buildRegexFullMatch(n *ir.Node, _ *compiler) (kernel, error) {
	pattern := n.AttrString("pattern", "")
	re, err := regexp.Compile(`^(?:` + pattern + `)$`) // RE2 syntax, as the op specifies
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		s, err := stringsOf(in[0])
		if err != nil {
			return nil, err
		}
		out := r.mustAlloc(ir.Bool, in[0].Shape)
		for i, v := range s {
			out.Data.([]bool)[i] = re.MatchString(v)
		}
		return []*Tensor{out}, nil
	}, nil
}

// splitWhitespace is Python's str.split(None, maxsplit): runs of white
// space separate fields, leading white space is dropped, and after
// maxsplit splits the rest (left-trimmed) is the last field.
func splitWhitespace(s string, maxsplit int) []string {
	var out []string
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	for s != "" {
		if maxsplit >= 0 && len(out) == maxsplit {
			out = append(out, s)
			break
		}
		i := strings.IndexFunc(s, unicode.IsSpace)
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i])
		s = strings.TrimLeftFunc(s[i:], unicode.IsSpace)
	}
	return out
}

// buildStringSplit splits each string (on the delimiter, or on white
// space when it is empty) into at most maxsplit+1 parts; Y pads the rows
// with "" to the longest, Z counts the parts.
func buildStringSplit(n *ir.Node, _ *compiler) (kernel, error) {
	delim := n.AttrString("delimiter", "")
	maxsplit := -1
	if n.Attr("maxsplit") != nil {
		maxsplit = int(n.AttrInt("maxsplit", -1))
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		s, err := stringsOf(in[0])
		if err != nil {
			return nil, err
		}
		parts := make([][]string, len(s))
		width := 0
		for i, v := range s {
			if delim == "" {
				parts[i] = splitWhitespace(v, maxsplit)
			} else {
				lim := -1
				if maxsplit >= 0 {
					lim = maxsplit + 1
				}
				parts[i] = strings.SplitN(v, delim, lim)
			}
			width = max(width, len(parts[i]))
		}
		y := r.mustAlloc(ir.String, append(slices.Clone(in[0].Shape), width))
		z := r.mustAlloc(ir.Int64, in[0].Shape)
		yv, zv := y.Data.([]string), z.Data.([]int64)
		for i, p := range parts {
			copy(yv[i*width:], p)
			zv[i] = int64(len(p))
		}
		return []*Tensor{y, z}, nil
	}, nil
}

// buildStringNormalizer removes stop words (whole elements) and changes
// case, on a 1-D tensor or a [1, C] matrix, as the ONNX reference does.
// The reference also strips accents (Unicode NFKD) from non-ASCII
// strings; that is not implemented: such strings are kept as they are.
func buildStringNormalizer(n *ir.Node, _ *compiler) (kernel, error) {
	action := n.AttrString("case_change_action", "NONE")
	if action != "NONE" && action != "LOWER" && action != "UPPER" {
		return nil, fmt.Errorf("case_change_action %q must be NONE, LOWER or UPPER", action)
	}
	sensitive := n.AttrInt("is_case_sensitive", 0) != 0
	var stops []string
	if a := n.Attr("stopwords"); a != nil {
		for _, s := range a.Strings {
			stops = append(stops, string(s))
		}
	}
	change := func(s string) string {
		switch action {
		case "LOWER":
			return strings.ToLower(s)
		case "UPPER":
			return strings.ToUpper(s)
		}
		return s
	}
	changedStops := make([]string, len(stops))
	for i, s := range stops {
		changedStops[i] = change(s)
	}
	return func(r *runState, in []*Tensor) ([]*Tensor, error) {
		if err := needInputs(in, 1); err != nil {
			return nil, err
		}
		s, err := stringsOf(in[0])
		if err != nil {
			return nil, err
		}
		sh := in[0].Shape
		if !(len(sh) == 1 || (len(sh) == 2 && sh[0] == 1)) {
			return nil, fmt.Errorf("input must be [C] or [1, C], has shape %v", sh)
		}
		var kept []string
		for _, v := range s {
			if sensitive && slices.Contains(stops, v) {
				continue
			}
			v = change(v)
			if !sensitive && slices.Contains(changedStops, v) {
				continue
			}
			kept = append(kept, v)
		}
		if len(kept) == 0 {
			kept = []string{""}
		}
		shape := []int{len(kept)}
		if len(sh) == 2 {
			shape = []int{1, len(kept)}
		}
		out := r.mustAlloc(ir.String, shape)
		copy(out.Data.([]string), kept)
		return []*Tensor{out}, nil
	}, nil
}
