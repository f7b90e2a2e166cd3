package passes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/tfc-compiler/tfc/ir"
)

// Semantics says how a pass relates the model it returns to the one it got.
type Semantics int

const (
	// Exact passes return a model that computes bit-identical outputs.
	Exact Semantics = iota
	// WithinRounding passes reorder or fuse floating-point arithmetic:
	// outputs agree within float rounding.
	WithinRounding
	// ChangesModel passes compute something else on purpose (dropping
	// layers, a bounded cache); they run only when asked for by name.
	ChangesModel
)

func (s Semantics) String() string {
	switch s {
	case Exact:
		return "exact"
	case WithinRounding:
		return "within rounding"
	case ChangesModel:
		return "changes the model"
	}
	return "semantics(" + strconv.Itoa(int(s)) + ")"
}

// OptionKind is the type of a pass option's value.
type OptionKind int

// Option kinds.
const (
	IntOption OptionKind = iota
	FloatOption
	BoolOption
	StringOption
)

func (k OptionKind) String() string {
	switch k {
	case IntOption:
		return "int"
	case FloatOption:
		return "float"
	case BoolOption:
		return "bool"
	case StringOption:
		return "string"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Option declares one typed option of a pass. Default must hold a value of
// the kind's Go type: int64, float64, bool or string.
type Option struct {
	Name    string
	Kind    OptionKind
	Default any
	Help    string
}

// parse converts the text of a --passes spec to the option's Go type.
func (o Option) parse(text string) (any, error) {
	switch o.Kind {
	case IntOption:
		return strconv.ParseInt(text, 10, 64)
	case FloatOption:
		return strconv.ParseFloat(text, 64)
	case BoolOption:
		return strconv.ParseBool(text)
	case StringOption:
		return text, nil
	}
	return nil, fmt.Errorf("option %q has unknown kind %v", o.Name, o.Kind)
}

// checkDefault reports whether Default has the Go type Kind calls for.
func (o Option) checkDefault() error {
	ok := false
	switch o.Kind {
	case IntOption:
		_, ok = o.Default.(int64)
	case FloatOption:
		_, ok = o.Default.(float64)
	case BoolOption:
		_, ok = o.Default.(bool)
	case StringOption:
		_, ok = o.Default.(string)
	}
	if !ok {
		return fmt.Errorf("option %q: default %#v is not a %v", o.Name, o.Default, o.Kind)
	}
	return nil
}

// format prints a value of the option the way the spec parser reads it.
func formatOptionValue(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// Values holds the option values one run of a pass gets: every declared
// option, with its default unless the spec set it.
type Values struct {
	pass string
	vals map[string]any
}

func (v Values) get(name string) any {
	x, ok := v.vals[name]
	if !ok {
		// Asking for an option the pass did not declare is a bug in the
		// pass, not bad input; the pipeline turns the panic into an
		// error with a reproducer.
		panic(fmt.Sprintf("pass %q reads undeclared option %q", v.pass, name))
	}
	return x
}

// Int returns an int option.
func (v Values) Int(name string) int64 { return v.get(name).(int64) }

// Float returns a float option.
func (v Values) Float(name string) float64 { return v.get(name).(float64) }

// Bool returns a bool option.
func (v Values) Bool(name string) bool { return v.get(name).(bool) }

// String returns a string option.
func (v Values) String(name string) string { return v.get(name).(string) }

// Stats is what one run of a pass did.
type Stats struct {
	// Rewrites counts applied rewrites by rule name.
	Rewrites map[string]int
	// Fused counts fused ops created, keyed by the categories in
	// FusedKinds.
	Fused map[string]int
}

// Count adds n to the count of rule.
func (s *Stats) Count(rule string, n int) {
	if n == 0 {
		return
	}
	if s.Rewrites == nil {
		s.Rewrites = map[string]int{}
	}
	s.Rewrites[rule] += n
}

// CountFused adds n to a fused-op category.
func (s *Stats) CountFused(kind string, n int) {
	if n == 0 {
		return
	}
	if s.Fused == nil {
		s.Fused = map[string]int{}
	}
	s.Fused[kind] += n
}

// Merge adds the counts of o to s.
func (s *Stats) Merge(o Stats) {
	for k, n := range o.Rewrites {
		s.Count(k, n)
	}
	for k, n := range o.Fused {
		s.CountFused(k, n)
	}
}

// TotalRewrites sums the rewrite counts.
func (s Stats) TotalRewrites() int {
	t := 0
	for _, n := range s.Rewrites {
		t += n
	}
	return t
}

// FusedKinds are the categories of fused ops a report counts: the same as
// ONNX Runtime's transformer optimizer's fusion statistics, so the two can
// be compared.
var FusedKinds = []string{"Attention", "LayerNorm", "SkipLayerNorm", "RMSNorm", "Gelu", "BiasGelu"}

// Context is what a pass gets besides the model and its options.
type Context struct {
	// Ctx cancels long passes; nil means context.Background().
	Ctx context.Context
	// Explain, when non-nil, collects why patterns did not match at
	// their anchors (--explain).
	Explain *Explanations

	pass string // the pass running now, for explanations
}

func (c *Context) context() context.Context {
	if c == nil || c.Ctx == nil {
		return context.Background()
	}
	return c.Ctx
}

// Pass is one registered transformation.
type Pass struct {
	Name      string
	Summary   string
	Semantics Semantics
	Options   []Option
	Run       func(ctx *Context, m *ir.Model, opts Values) (Stats, error)
}

// option returns the declared option with the given name.
func (p *Pass) option(name string) (Option, bool) {
	i := slices.IndexFunc(p.Options, func(o Option) bool { return o.Name == name })
	if i < 0 {
		return Option{}, false
	}
	return p.Options[i], true
}

// defaults returns the option values with nothing overridden.
func (p *Pass) defaults() Values {
	v := Values{pass: p.Name, vals: map[string]any{}}
	for _, o := range p.Options {
		v.vals[o.Name] = o.Default
	}
	return v
}

// optionNames lists the declared options, for error messages.
func (p *Pass) optionNames() []string {
	names := make([]string, len(p.Options))
	for i, o := range p.Options {
		names[i] = o.Name
	}
	return names
}

func cloneValues(v Values) Values {
	return Values{pass: v.pass, vals: maps.Clone(v.vals)}
}
