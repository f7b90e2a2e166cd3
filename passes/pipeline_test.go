package passes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

func TestRegistryTables(t *testing.T) {
	if err := checkConstraintNames(); err != nil {
		t.Fatal(err)
	}
	for level := range levels {
		names, err := LevelPasses(level)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if _, ok := Lookup(name); !ok {
				t.Errorf("-O%d lists %q, which is not registered", level, name)
			}
		}
		if err := checkOrder(names); err != nil {
			t.Errorf("-O%d breaks an ordering constraint: %v", level, err)
		}
	}
	if names, _ := LevelPasses(0); len(names) != 0 {
		t.Errorf("-O0 = %v, want no passes", names)
	}
	if names, _ := LevelPasses(1); !slices.Equal(names, []string{"canonicalize", "infer-shapes"}) {
		t.Errorf("-O1 = %v", names)
	}
	if _, err := LevelPasses(4); err == nil {
		t.Error("-O4 exists")
	}
	for _, p := range All() {
		if p.Summary == "" || p.Run == nil {
			t.Errorf("pass %q lacks a summary or a Run", p.Name)
		}
		for _, o := range p.Options {
			if o.Help == "" {
				t.Errorf("pass %q option %q has no help", p.Name, o.Name)
			}
		}
	}
	for _, pl := range Planned {
		if _, ok := Lookup(pl.Name); ok {
			t.Errorf("%q is registered but still listed as planned", pl.Name)
		}
	}
}

func TestParseSpec(t *testing.T) {
	p, err := ParseSpec(" canonicalize{fold-limit=64, cse=false} , infer-shapes ")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Names(); !slices.Equal(got, []string{"canonicalize", "infer-shapes"}) {
		t.Fatalf("names = %v", got)
	}
	o := p.Steps[0].Options
	if o.Int("fold-limit") != 64 || o.Bool("cse") || !o.Bool("dce") {
		t.Fatalf("options = %v", o.vals)
	}
	if s := p.String(); s != "canonicalize{fold-limit=64,cse=false},infer-shapes" {
		t.Fatalf("String() = %q", s)
	}
	again, err := ParseSpec(p.String())
	if err != nil || again.String() != p.String() {
		t.Fatalf("round trip: %v, %v", again, err)
	}
	if p, err := ParseSpec(""); err != nil || len(p.Steps) != 0 {
		t.Fatalf("empty spec: %v, %v", p, err)
	}

	bad := map[string]string{
		"canonicalise":                   `unknown pass "canonicalise"`,
		"canonicalize{nope=1}":           `has no option "nope"`,
		"canonicalize{fold-limit=many}":  `option "fold-limit" wants a int, got "many"`,
		"canonicalize{cse}":              `option "cse" has no value`,
		"canonicalize{cse=true":          "no closing '}'",
		"canonicalize,":                  "trailing ','",
		"canonicalize,,infer-shapes":     "empty pass name",
		"canonicalize{cse=true}x":        "expected ','",
		"infer-shapes,canonicalize{}, x": `unknown pass "x"`,
	}
	// No two registered passes are constrained yet; check the rule on
	// planned names.
	if err := checkOrder([]string{"canonicalize", "fuse-skip-layernorm", "infer-shapes", "fuse-layernorm"}); err == nil ||
		!strings.Contains(err.Error(), `pass "fuse-layernorm" must run before "fuse-skip-layernorm": SkipLayerNorm is built`) {
		t.Errorf("checkOrder: err = %v", err)
	}
	if err := checkOrder([]string{"infer-shapes", "fuse-layernorm", "canonicalize", "fuse-skip-layernorm", "fuse-layernorm"}); err != nil {
		t.Errorf("checkOrder of a valid order: %v", err)
	}
	for spec, want := range bad {
		if _, err := ParseSpec(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSpec(%q): err = %v, want one containing %q", spec, err, want)
		}
	}
}

func TestPipelineReport(t *testing.T) {
	m := reshapeByShapeModel(ir.Known(2), ir.Known(3), ir.Known(4))
	p, err := ForLevel(1)
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	var printed bytes.Buffer
	p.PrintIRAfter, p.PrintIRTo = "canonicalize", &printed
	r, err := p.Run(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Passes) != 2 || r.Passes[0].Name != "canonicalize" || r.Passes[1].Name != "infer-shapes" {
		t.Fatalf("report passes = %+v", r.Passes)
	}
	if r.Passes[0].NodesBefore != 5 || r.Passes[0].NodesAfter != 1 || r.Passes[1].NodesBefore != 1 {
		t.Fatalf("node counts = %+v", r.Passes)
	}
	if !strings.HasPrefix(printed.String(), "# IR after pass 1: canonicalize\n") || strings.Contains(printed.String(), "infer-shapes") {
		t.Fatalf("printed IR:\n%s", printed.String())
	}
	if !strings.Contains(printed.String(), ir.Print(m)[:20]) {
		t.Fatalf("printed IR does not look like ir.Print output:\n%s", printed.String())
	}
	// infer-shapes typed the Reshape output.
	if got := m.Graph.Outputs[0].Type.String(); got != "f32[8,3]" {
		t.Fatalf("output type after -O1 = %s, want f32[8,3]", got)
	}

	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	passes := back["passes"].([]any)
	first := passes[0].(map[string]any)
	for _, key := range []string{"name", "ms", "nodes_before", "nodes_after", "rewrites"} {
		if _, ok := first[key]; !ok {
			t.Errorf("report JSON pass entry lacks %q: %s", key, data)
		}
	}
	fused := back["fused"].(map[string]any)
	for _, k := range []string{"Attention", "LayerNorm", "SkipLayerNorm", "RMSNorm", "Gelu", "BiasGelu"} {
		if v, ok := fused[k]; !ok || v.(float64) != 0 {
			t.Errorf("fused[%s] = %v, want 0", k, v)
		}
	}

	p.PrintIRAfter = "fuse-gelu"
	if _, err := p.Run(nil, m); err == nil || !strings.Contains(err.Error(), "no such pass") {
		t.Fatalf("print-ir-after of a pass not in the pipeline: err = %v", err)
	}
}

// testPipeline builds a pipeline of unregistered test passes after a
// canonicalize, so the registry (and docs/passes.md) do not see them.
func testPipeline(t *testing.T, extra *Pass) *Pipeline {
	p, err := NewPipeline("canonicalize")
	if err != nil {
		t.Fatal(err)
	}
	p.Steps = append(p.Steps, Step{Pass: extra, Options: extra.defaults()})
	p.VerifyEach = true
	p.ReproDir = t.TempDir()
	return p
}

func TestPipelineReproducers(t *testing.T) {
	cases := []struct {
		name string
		run  func(*Context, *ir.Model, Values) (Stats, error)
		want string
	}{
		{"panics", func(*Context, *ir.Model, Values) (Stats, error) {
			var n *ir.Node
			_ = n.Op // nil dereference
			return Stats{}, nil
		}, "panic: runtime error"},
		{"fails", func(*Context, *ir.Model, Values) (Stats, error) {
			return Stats{}, errors.New("node \"x\": cannot do it")
		}, "cannot do it"},
		{"breaks-ir", func(_ *Context, m *ir.Model, _ Values) (Stats, error) {
			g := m.Graph
			// Use a value before it is produced.
			n := g.NewNode(ir.NodeSpec{Op: "Neg", Inputs: []*ir.Value{g.Outputs[0]}, Outputs: []string{"early"}})
			g.Nodes = append([]*ir.Node{n}, g.Nodes...)
			return Stats{}, nil
		}, "left invalid IR"},
		{"reads-undeclared-option", func(_ *Context, _ *ir.Model, o Values) (Stats, error) {
			o.Int("missing")
			return Stats{}, nil
		}, `reads undeclared option "missing"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := reshapeByShapeModel(ir.Sym("batch"), ir.Known(3), ir.Known(4))
			input := ir.Print(m)
			p := testPipeline(t, &Pass{Name: "test-" + c.name, Summary: "test", Run: c.run})
			_, err := p.Run(nil, m)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `pass "test-`+c.name+`"`) || !strings.Contains(msg, c.want) {
				t.Fatalf("error = %v", err)
			}
			_, path, ok := strings.Cut(msg, "(reproducer: ")
			if !ok {
				t.Fatalf("error names no reproducer: %v", err)
			}
			path = strings.TrimSuffix(path, ")")
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			spec, text, err := ReadReproducer(f)
			if err != nil {
				t.Fatal(err)
			}
			if spec != "canonicalize,test-"+c.name {
				t.Errorf("reproducer spec = %q", spec)
			}
			if text != input {
				t.Errorf("reproducer IR differs from the pipeline input:\n%s\nwant:\n%s", text, input)
			}
		})
	}
}

func TestCheckIdempotent(t *testing.T) {
	m := reshapeByShapeModel(ir.Sym("batch"), ir.Known(3), ir.Known(4))
	p, err := ForLevel(1)
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	if err := CheckIdempotent(nil, p, m); err != nil {
		t.Fatal(err)
	}
	// A pass that adds a node every run is caught.
	grow := testPipeline(t, &Pass{Name: "test-grow", Summary: "test", Run: func(_ *Context, m *ir.Model, _ Values) (Stats, error) {
		g := m.Graph
		g.SetOutput(0, g.Append(ir.NodeSpec{Op: "Neg", Inputs: []*ir.Value{g.Outputs[0]}, Outputs: []string{g.NewValueName("neg")}}).Outputs[0])
		return Stats{}, nil
	}})
	err = CheckIdempotent(nil, grow, reshapeByShapeModel(ir.Known(2), ir.Known(3), ir.Known(4)))
	if err == nil || !strings.Contains(err.Error(), "not idempotent") {
		t.Fatalf("err = %v, want not idempotent", err)
	}
}

func TestExplainInReport(t *testing.T) {
	// Explanations from a rule pass reach the report.
	m, _ := mulAddModel("user")
	rules := MustRuleSet(fuseMulAdd)
	p := testPipeline(t, &Pass{Name: "test-fuse", Summary: "test", Run: func(ctx *Context, m *ir.Model, _ Values) (Stats, error) {
		var st Stats
		err := rules.Apply(ctx, m.Graph, &st)
		return st, err
	}})
	r, err := p.Run(&Context{Explain: &Explanations{}}, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Explain) != 1 || r.Explain[0].Pass != "test-fuse" || r.Explain[0].Rule != "mul-add" {
		t.Fatalf("explain = %+v", r.Explain)
	}
}

func TestPipelinePrintAllAndCancel(t *testing.T) {
	m := reshapeByShapeModel(ir.Known(2), ir.Known(3), ir.Known(4))
	p, err := ForLevel(1)
	if err != nil {
		t.Fatal(err)
	}
	var printed bytes.Buffer
	p.PrintIRAfter, p.PrintIRTo = "all", &printed
	if _, err := p.Run(nil, m); err != nil {
		t.Fatal(err)
	}
	out := printed.String()
	if strings.Count(out, "# IR after pass ") != 2 || !strings.Contains(out, "# IR after pass 2: infer-shapes\n") {
		t.Fatalf("printed:\n%s", out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.PrintIRAfter = ""
	_, err = p.Run(&Context{Ctx: ctx}, m)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `before pass "canonicalize"`) {
		t.Fatalf("err = %v, want cancellation before the first pass", err)
	}
}

func TestOptionKinds(t *testing.T) {
	pass := &Pass{Name: "test-opts", Options: []Option{
		{Name: "i", Kind: IntOption, Default: int64(1), Help: "i"},
		{Name: "f", Kind: FloatOption, Default: 0.5, Help: "f"},
		{Name: "b", Kind: BoolOption, Default: false, Help: "b"},
		{Name: "s", Kind: StringOption, Default: "x", Help: "s"},
	}}
	for _, o := range pass.Options {
		if err := o.checkDefault(); err != nil {
			t.Fatal(err)
		}
	}
	if err := (Option{Name: "bad", Kind: IntOption, Default: 3}).checkDefault(); err == nil {
		t.Fatal("an int (not int64) default for an int option passed")
	}
	step := Step{Pass: pass, Options: pass.defaults()}
	if err := step.parseOptions("i=-3, f=1e-5, b=true, s=mean"); err != nil {
		t.Fatal(err)
	}
	o := step.Options
	if o.Int("i") != -3 || o.Float("f") != 1e-5 || !o.Bool("b") || o.String("s") != "mean" {
		t.Fatalf("values = %v", o.vals)
	}
	p := &Pipeline{Steps: []Step{step}}
	if got := p.String(); got != "test-opts{i=-3,f=1e-05,b=true,s=mean}" {
		t.Fatalf("String() = %q", got)
	}
	if err := step.parseOptions("f=fast"); err == nil || !strings.Contains(err.Error(), `option "f" wants a float`) {
		t.Fatalf("err = %v", err)
	}
}

func TestStatsMerge(t *testing.T) {
	var a, b Stats
	a.Count("x", 2)
	a.CountFused("Gelu", 1)
	b.Count("x", 1)
	b.Count("y", 0) // zero counts are not recorded
	b.CountFused("Gelu", 2)
	a.Merge(b)
	if a.Rewrites["x"] != 3 || len(a.Rewrites) != 1 || a.Fused["Gelu"] != 3 || a.TotalRewrites() != 3 {
		t.Fatalf("merged = %+v", a)
	}
}
