package passes

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/tfc-compiler/tfc/ir"
)

// Step is one pass of a pipeline with its option values.
type Step struct {
	Pass    *Pass
	Options Values
	// set lists the options the spec gave explicitly, so that String
	// prints only those.
	set []string
}

// Pipeline is an ordered list of passes and how to run them.
type Pipeline struct {
	Steps []Step
	// VerifyEach runs ir.Verify on the input and after every pass. Tests
	// always set it; the CLI sets it for --verify-each.
	VerifyEach bool
	// PrintIRAfter is "", "all", or the name of a pass: the IR text after
	// that pass (every occurrence) is written to PrintIRTo.
	PrintIRAfter string
	PrintIRTo    io.Writer
	// ReproDir is where crash reproducers go; "" means os.TempDir().
	ReproDir string
}

// NewPipeline builds a pipeline of registered passes with default options,
// checking the ordering constraints.
func NewPipeline(names ...string) (*Pipeline, error) {
	p := &Pipeline{}
	for _, name := range names {
		pass, ok := registry[name]
		if !ok {
			return nil, unknownPassError(name)
		}
		p.Steps = append(p.Steps, Step{Pass: pass, Options: pass.defaults()})
	}
	if err := checkOrder(p.Names()); err != nil {
		return nil, err
	}
	return p, nil
}

// ForLevel returns the pipeline of -O<level>.
func ForLevel(level int) (*Pipeline, error) {
	names, err := LevelPasses(level)
	if err != nil {
		return nil, err
	}
	return NewPipeline(names...)
}

func unknownPassError(name string) error {
	known := make([]string, 0, len(registry))
	for _, p := range All() {
		known = append(known, p.Name)
	}
	return fmt.Errorf("unknown pass %q (registered: %s)", name, strings.Join(known, ", "))
}

// Names returns the pass names in order.
func (p *Pipeline) Names() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.Pass.Name
	}
	return out
}

// ParseSpec parses a --passes spec: pass names separated by commas, each
// optionally followed by options in braces,
//
//	canonicalize{fold-limit=64,cse=false},infer-shapes
//
// Option values are parsed by the option's kind (int, float, bool as
// strconv.ParseBool reads it, string); a string value cannot contain ',',
// '{' or '}'. Spaces around names and values are ignored. The ordering
// constraints are checked.
func ParseSpec(spec string) (*Pipeline, error) {
	p := &Pipeline{}
	rest := strings.TrimSpace(spec)
	for rest != "" {
		end := strings.IndexAny(rest, ",{")
		if end < 0 {
			end = len(rest)
		}
		name := strings.TrimSpace(rest[:end])
		if name == "" {
			return nil, fmt.Errorf("pass spec %q: empty pass name", spec)
		}
		pass, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("pass spec %q: %w", spec, unknownPassError(name))
		}
		step := Step{Pass: pass, Options: pass.defaults()}
		rest = rest[end:]
		if strings.HasPrefix(rest, "{") {
			closeAt := strings.IndexByte(rest, '}')
			if closeAt < 0 {
				return nil, fmt.Errorf("pass spec %q: options of %q have no closing '}'", spec, name)
			}
			if err := step.parseOptions(rest[1:closeAt]); err != nil {
				return nil, fmt.Errorf("pass spec %q: %w", spec, err)
			}
			rest = rest[closeAt+1:]
		}
		rest = strings.TrimSpace(rest)
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("pass spec %q: expected ',' after %q, found %q", spec, name, rest)
			}
			rest = strings.TrimSpace(rest[1:])
			if rest == "" {
				return nil, fmt.Errorf("pass spec %q: trailing ','", spec)
			}
		}
		p.Steps = append(p.Steps, step)
	}
	if err := checkOrder(p.Names()); err != nil {
		return nil, fmt.Errorf("pass spec %q: %w", spec, err)
	}
	return p, nil
}

func (s *Step) parseOptions(text string) error {
	for _, item := range strings.Split(text, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, ok := strings.Cut(item, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok {
			return fmt.Errorf("pass %q: option %q has no value (write %s=VALUE)", s.Pass.Name, key, key)
		}
		opt, found := s.Pass.option(key)
		if !found {
			return fmt.Errorf("pass %q has no option %q (options: %s)", s.Pass.Name, key, strings.Join(s.Pass.optionNames(), ", "))
		}
		v, err := opt.parse(val)
		if err != nil {
			return fmt.Errorf("pass %q: option %q wants a %v, got %q", s.Pass.Name, key, opt.Kind, val)
		}
		s.Options.vals[key] = v
		if !slices.Contains(s.set, key) {
			s.set = append(s.set, key)
		}
	}
	return nil
}

// String returns the spec ParseSpec reads back into this pipeline.
func (p *Pipeline) String() string {
	var b strings.Builder
	for i, s := range p.Steps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Pass.Name)
		if len(s.set) > 0 {
			b.WriteByte('{')
			for j, k := range s.set {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(k + "=" + formatOptionValue(s.Options.vals[k]))
			}
			b.WriteByte('}')
		}
	}
	return b.String()
}

// Report is what a pipeline run did, written by --report FILE.json.
type Report struct {
	Pipeline string         `json:"pipeline"`
	TotalMs  float64        `json:"total_ms"`
	Passes   []PassReport   `json:"passes"`
	Fused    map[string]int `json:"fused"`
	Explain  []Explanation  `json:"explain,omitempty"`
}

// PassReport is one pass's line of a report.
type PassReport struct {
	Name        string         `json:"name"`
	Ms          float64        `json:"ms"`
	NodesBefore int            `json:"nodes_before"`
	NodesAfter  int            `json:"nodes_after"`
	Rewrites    map[string]int `json:"rewrites"`
}

func newReport(spec string) *Report {
	r := &Report{Pipeline: spec, Passes: []PassReport{}, Fused: map[string]int{}}
	for _, k := range FusedKinds {
		r.Fused[k] = 0
	}
	return r
}

// countNodes counts the nodes of the main graph and its nested graphs.
func countNodes(m *ir.Model) int {
	n := 0
	if m.Graph != nil {
		m.Graph.Walk(func(*ir.Node) { n++ })
	}
	return n
}

// Run runs the passes in order on m, in place. On an error or a panic in a
// pass it writes a reproducer (the pipeline up to that pass and the input
// IR text) and returns an error naming the pass and the file; the report
// then covers the passes that finished.
func (p *Pipeline) Run(ctx *Context, m *ir.Model) (*Report, error) {
	if ctx == nil {
		ctx = &Context{}
	}
	if m == nil || m.Graph == nil {
		return nil, errors.New("pipeline: model has no graph")
	}
	if p.PrintIRAfter != "" && p.PrintIRAfter != "all" && !slices.Contains(p.Names(), p.PrintIRAfter) {
		return nil, fmt.Errorf("--print-ir-after %q: the pipeline (%s) has no such pass", p.PrintIRAfter, p.String())
	}
	if p.PrintIRAfter != "" && p.PrintIRTo == nil {
		return nil, errors.New("pipeline: PrintIRAfter is set but PrintIRTo is nil")
	}
	report := newReport(p.String())
	if p.VerifyEach {
		if err := ir.Verify(m); err != nil {
			return report, fmt.Errorf("input model fails verification: %w", err)
		}
	}
	// The reproducer holds the pipeline's input: replaying the steps up to
	// the failing one on it reproduces the failure. The snapshot shares
	// the weights and costs time per node; it is printed (which hashes
	// every large weight) only when a pass fails.
	var input *ir.Model
	if len(p.Steps) > 0 {
		input = m.CloneStructure()
	}
	start := time.Now()
	var explainFrom int
	if ctx.Explain != nil {
		explainFrom = len(ctx.Explain.Items)
	}
	for i, step := range p.Steps {
		if err := ctx.context().Err(); err != nil {
			return report, fmt.Errorf("pipeline stopped before pass %q: %w", step.Pass.Name, err)
		}
		before := countNodes(m)
		t0 := time.Now()
		stats, err := runStep(ctx, step, m)
		elapsed := time.Since(t0)
		if err == nil && p.VerifyEach {
			if verr := ir.Verify(m); verr != nil {
				err = fmt.Errorf("left invalid IR: %w", verr)
			}
		}
		if err != nil {
			path, rerr := p.writeReproducer(i, err, input)
			if rerr != nil {
				return report, fmt.Errorf("pass %q: %w (writing the reproducer failed too: %v)", step.Pass.Name, err, rerr)
			}
			return report, fmt.Errorf("pass %q: %w (reproducer: %s)", step.Pass.Name, err, path)
		}
		pr := PassReport{Name: step.Pass.Name, Ms: float64(elapsed.Microseconds()) / 1000, NodesBefore: before, NodesAfter: countNodes(m), Rewrites: map[string]int{}}
		for k, n := range stats.Rewrites {
			pr.Rewrites[k] = n
		}
		for k, n := range stats.Fused {
			report.Fused[k] += n
		}
		report.Passes = append(report.Passes, pr)
		if p.PrintIRTo != nil && (p.PrintIRAfter == "all" || p.PrintIRAfter == step.Pass.Name) {
			fmt.Fprintf(p.PrintIRTo, "# IR after pass %d: %s\n%s", i+1, step.Pass.Name, printIR(m))
		}
	}
	report.TotalMs = float64(time.Since(start).Microseconds()) / 1000
	if ctx.Explain != nil {
		report.Explain = slices.Clone(ctx.Explain.Items[explainFrom:])
	}
	return report, nil
}

// runStep runs one pass, turning a panic into an error that carries the
// stack.
func runStep(ctx *Context, step Step, m *ir.Model) (stats Stats, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	ctx.pass = step.Pass.Name
	defer func() { ctx.pass = "" }()
	return step.Pass.Run(ctx, m, cloneValues(step.Options))
}

// reproducerPassesPrefix starts the line of a reproducer that holds the
// pipeline spec.
const reproducerPassesPrefix = "passes: "

// reproducerSeparator ends a reproducer's header; the IR text follows.
const reproducerSeparator = "---"

// writeReproducer writes the header (failed pass, error, pipeline up to and
// including the failed step) and the pipeline's input IR text.
func (p *Pipeline) writeReproducer(failed int, runErr error, input *ir.Model) (string, error) {
	dir := p.ReproDir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "tfc-repro-"+p.Steps[failed].Pass.Name+"-*.txt")
	if err != nil {
		return "", err
	}
	prefix := &Pipeline{Steps: p.Steps[:failed+1]}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "# tfc pass reproducer: pass %q (step %d of %d) failed.\n", p.Steps[failed].Pass.Name, failed+1, len(p.Steps))
	fmt.Fprintf(w, "# Running these passes on the IR below reproduces it; the full pipeline was %s\n", p.String())
	for _, line := range strings.Split(strings.TrimRight(runErr.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "# %s\n", line)
	}
	fmt.Fprintf(w, "%s%s\n%s\n%s", reproducerPassesPrefix, prefix.String(), reproducerSeparator, printIR(input))
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// ReadReproducer splits a reproducer written by a failed pipeline run into
// its pass spec and its IR text.
func ReadReproducer(r io.Reader) (spec, irText string, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return "", "", err
	}
	text := string(data)
	foundSpec := false
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, reproducerPassesPrefix):
			spec, foundSpec = strings.TrimPrefix(line, reproducerPassesPrefix), true
		case line == reproducerSeparator:
			if !foundSpec {
				return "", "", errors.New("reproducer has no 'passes:' line before '---'")
			}
			return spec, text, nil
		default:
			return "", "", fmt.Errorf("reproducer: unexpected header line %q", line)
		}
	}
	return "", "", errors.New("reproducer has no '---' line before the IR text")
}

// CheckIdempotent runs p on m and then again on its own output, and
// returns an error showing the first difference between the two IR texts.
// Golden tests call it: a pipeline run on its own output changes nothing.
func CheckIdempotent(ctx *Context, p *Pipeline, m *ir.Model) error {
	if _, err := p.Run(ctx, m); err != nil {
		return fmt.Errorf("first run: %w", err)
	}
	once := printIR(m)
	if _, err := p.Run(ctx, m); err != nil {
		return fmt.Errorf("second run: %w", err)
	}
	twice := printIR(m)
	if once == twice {
		return nil
	}
	a, b := strings.Split(once, "\n"), strings.Split(twice, "\n")
	for i := 0; i < max(len(a), len(b)); i++ {
		var la, lb string
		if i < len(a) {
			la = a[i]
		}
		if i < len(b) {
			lb = b[i]
		}
		if la != lb {
			return fmt.Errorf("pipeline %s is not idempotent: line %d after one run is %q, after two runs %q", p.String(), i+1, la, lb)
		}
	}
	return fmt.Errorf("pipeline %s is not idempotent", p.String())
}

// printIR is the text form used by --print-ir-after, reproducers and the
// idempotence check.
func printIR(m *ir.Model) string { return ir.Print(m) }
