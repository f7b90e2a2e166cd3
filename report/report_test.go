package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/passes"
)

// element is one parsed XML element with its attributes and text.
type element struct {
	name  string
	attrs map[string]string
	text  string
	path  []string // enclosing element ids, outermost first
}

// parsePage checks that the page is well-formed (it is written as XHTML
// after the doctype, so a strict XML parser must accept it) and returns
// its elements.
func parsePage(t *testing.T, page string) []*element {
	t.Helper()
	const doctype = "<!DOCTYPE html>\n"
	if !strings.HasPrefix(page, doctype) {
		t.Fatalf("page does not start with %q", doctype)
	}
	d := xml.NewDecoder(strings.NewReader(page[len(doctype):]))
	d.Strict = true
	var out []*element
	var stack []*element
	var ids []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			e := &element{name: tok.Name.Local, attrs: map[string]string{}, path: append([]string(nil), ids...)}
			for _, a := range tok.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			out = append(out, e)
			stack = append(stack, e)
			ids = append(ids, e.attrs["id"])
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			ids = ids[:len(ids)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tok)
			}
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%d elements left open", len(stack))
	}
	return out
}

func within(e *element, id string) bool {
	for _, p := range e.path {
		if p == id {
			return true
		}
	}
	return false
}

func byID(els []*element, id string) *element {
	for _, e := range els {
		if e.attrs["id"] == id {
			return e
		}
	}
	return nil
}

// svgNodes returns the node groups of one graph view: name (second line
// of the tooltip) to region ("" when not fused).
func svgNodes(els []*element, view string) map[string]string {
	out := map[string]string{}
	for i, e := range els {
		if e.name != "g" || !strings.HasPrefix(e.attrs["class"], "node") || !within(e, "graph-"+view) {
			continue
		}
		// The <title> is the group's first child.
		title := els[i+1]
		if title.name != "title" {
			continue
		}
		lines := strings.Split(title.text, "\n")
		out[lines[1]] = e.attrs["data-r"]
	}
	return out
}

func compile(t *testing.T, m *ir.Model, spec string) *passes.Report {
	t.Helper()
	p, err := passes.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.VerifyEach = true
	p.ReproDir = t.TempDir()
	rep, err := p.Run(&passes.Context{Explain: &passes.Explanations{}}, m)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func scalar(b *ir.Builder, name string, v float32) *ir.Value {
	return b.Const(name, ir.Float32Tensor([]int64{}, v))
}

// TestRegionsOfErfGelu builds x*0.5*(1+erf(x/sqrt2)) between two named
// survivors, fuses it, and checks that exactly the five GELU nodes are
// the highlighted region before, and the tfc.Gelu after.
func TestRegionsOfErfGelu(t *testing.T) {
	b := ir.NewBuilder(17)
	x := b.Input("x", ir.TensorOfSizes(ir.Float, 2, 8))
	w := b.Const("w", ir.Float32Tensor([]int64{8, 8}, make([]float32, 64)...))
	h := b.Op("MatMul", x, w)
	g := b.Op("Mul", b.Op("Mul", h, scalar(b, "half", 0.5)),
		b.Op("Add", scalar(b, "one", 1), b.Op("Erf", b.Op("Div", h, scalar(b, "sqrt2", float32(math.Sqrt2))))))
	b.Output(b.Op("Relu", g))
	m := b.Model()
	before := m.CloneStructure()
	rep := compile(t, m, "canonicalize,infer-shapes,fuse-gelu")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, before, m, rep); err != nil {
		t.Fatal(err)
	}
	els := parsePage(t, buf.String())
	bn, an := svgNodes(els, "before"), svgNodes(els, "after")
	var fusedBefore []string
	for name, r := range bn {
		if r != "" {
			fusedBefore = append(fusedBefore, name)
		}
	}
	want := map[string]bool{"Mul_0": true, "Mul_1": true, "Add_0": true, "Erf_0": true, "Div_0": true}
	if len(fusedBefore) != len(want) {
		t.Fatalf("highlighted before: %v, want the five GELU nodes %v", fusedBefore, want)
	}
	for _, n := range fusedBefore {
		if !want[n] {
			t.Fatalf("highlighted before: %v, want the five GELU nodes", fusedBefore)
		}
	}
	if bn["MatMul_0"] != "" || bn["Relu_0"] != "" {
		t.Fatalf("a surviving node is highlighted: %v", bn)
	}
	fusedAfter := 0
	for _, r := range an {
		if r != "" {
			fusedAfter++
			if r != bn["Erf_0"] {
				t.Fatalf("after region %q differs from before region %q", r, bn["Erf_0"])
			}
		}
	}
	if fusedAfter != 1 {
		t.Fatalf("after: %d fused nodes highlighted, want 1 (%v)", fusedAfter, an)
	}
}

// TestReportOfCorpusModel renders the -O2 report of a BERT corpus model
// and checks the sections, the pass table, and the highlighting against
// the models themselves. With TFC_REPORT_OUT set it also writes the page
// there (for a look in a browser).
func TestReportOfCorpusModel(t *testing.T) {
	path := filepath.Join("..", "testdata", "models", "bert-ts-eager-op17", "model.onnx")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("corpus model missing: %v", err)
	}
	m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	before := m.CloneStructure()
	pipe, err := passes.ForLevel(2)
	if err != nil {
		t.Fatal(err)
	}
	rep := compile(t, m, pipe.String())
	var buf bytes.Buffer
	if err := WriteHTML(&buf, before, m, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if out := os.Getenv("TFC_REPORT_OUT"); out != "" {
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	els := parsePage(t, page)
	for _, id := range []string{"summary", "fused", "passes", "explain", "graphs", "graph-before", "graph-after"} {
		if byID(els, id) == nil {
			t.Errorf("no element with id %q", id)
		}
	}
	// Self-contained: nothing is fetched.
	if regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:)?//`).MatchString(page) || strings.Contains(page, "@import") {
		t.Error("the page refers to an outside resource")
	}
	// One pass-table row per pass, in order.
	var rows []string
	for i, e := range els {
		if e.name == "tr" && within(e, "passes") && els[i+1].name == "td" {
			rows = append(rows, strings.TrimSpace(els[i+3].text)) // tr, td #, td, code
		}
	}
	if len(rows) != len(rep.Passes) {
		t.Fatalf("pass table has %d rows, report %d passes", len(rows), len(rep.Passes))
	}
	for i, pr := range rep.Passes {
		if rows[i] != pr.Name {
			t.Errorf("pass row %d is %q, want %q", i, rows[i], pr.Name)
		}
	}
	// After: the highlighted nodes are exactly the tfc nodes.
	an := svgNodes(els, "after")
	tfcNodes, afterNames := 0, map[string]bool{}
	m.Graph.Walk(func(n *ir.Node) {
		afterNames[n.Name] = true
		if n.Domain == "tfc" {
			tfcNodes++
			if an[n.Name] == "" {
				t.Errorf("tfc node %q is not highlighted", n.Name)
			}
		}
	})
	if tfcNodes == 0 {
		t.Fatal("-O2 fused nothing in the BERT model; the test needs fused ops")
	}
	if len(an) != len(m.Graph.Nodes) {
		t.Errorf("after view draws %d nodes, the graph has %d", len(an), len(m.Graph.Nodes))
	}
	// Before: every highlighted node is one the pipeline removed, and
	// every fused region has nodes before.
	bn := svgNodes(els, "before")
	if len(bn) != len(before.Graph.Nodes) {
		t.Errorf("before view draws %d nodes, the graph has %d", len(bn), len(before.Graph.Nodes))
	}
	regionsBefore := map[string]int{}
	for name, r := range bn {
		if r == "" {
			continue
		}
		if afterNames[name] {
			t.Errorf("before node %q is highlighted but survives the pipeline", name)
		}
		regionsBefore[r]++
	}
	for name, r := range an {
		if r != "" && regionsBefore[r] == 0 {
			t.Errorf("fused node %q (region %s) has no highlighted nodes before", name, r)
		}
	}
	// The fused counts row shows the report's numbers.
	fused := byID(els, "fused")
	if fused == nil {
		t.Fatal("no fused section")
	}
	var cells []string
	for _, e := range els {
		if e.name == "td" && within(e, "fused") {
			cells = append(cells, e.text)
		}
	}
	if len(cells) != len(passes.FusedKinds) {
		t.Fatalf("fused row has %d cells, want %d", len(cells), len(passes.FusedKinds))
	}
	for i, k := range passes.FusedKinds {
		if want := strconv.Itoa(rep.Fused[k]); cells[i] != want {
			t.Errorf("fused %s shows %q, want %s", k, cells[i], want)
		}
	}
}

// TestWriteHTMLRejectsMissingGraph checks bad input is an error.
func TestWriteHTMLRejectsMissingGraph(t *testing.T) {
	if err := WriteHTML(io.Discard, nil, &ir.Model{}, nil); err == nil {
		t.Fatal("want an error for a model without a graph")
	}
}

// TestReportOfOrtExport renders the report of -O2 plus --target ort: the
// highlighted nodes after are the ONNX Runtime ops the fused tfc ops
// became, each with a region before, and no tfc op is left.
func TestReportOfOrtExport(t *testing.T) {
	path := filepath.Join("..", "testdata", "models", "gpt2-ts-eager-op17", "model.onnx")
	m, _, err := onnx.DecodeFile(path, onnx.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	before := m.CloneStructure()
	pipe, err := passes.ForLevel(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := passes.AppendTarget(pipe, "ort"); err != nil {
		t.Fatal(err)
	}
	rep := compile(t, m, pipe.String())
	var buf bytes.Buffer
	if err := WriteHTML(&buf, before, m, rep); err != nil {
		t.Fatal(err)
	}
	els := parsePage(t, buf.String())
	an, bn := svgNodes(els, "after"), svgNodes(els, "before")
	beforeNames := map[string]bool{}
	for _, n := range before.Graph.Nodes {
		beforeNames[n.Name] = true
	}
	want := 0
	for _, n := range m.Graph.Nodes {
		if n.Domain == "tfc" {
			t.Fatalf("tfc op %s left after export-ort", n.Op)
		}
		if ortKindOf(n) != "" && !beforeNames[n.Name] {
			want++
			if an[n.Name] == "" {
				t.Errorf("%s %q is not highlighted", n.Op, n.Name)
			}
		}
	}
	if want == 0 {
		t.Fatal("the export has no ONNX Runtime fused ops; the test needs some")
	}
	regionsBefore := map[string]int{}
	for _, r := range bn {
		if r != "" {
			regionsBefore[r]++
		}
	}
	got := 0
	for name, r := range an {
		if r == "" {
			continue
		}
		got++
		if regionsBefore[r] == 0 {
			t.Errorf("fused node %q (region %s) has no highlighted nodes before", name, r)
		}
	}
	if got != want {
		t.Errorf("%d nodes highlighted after, want %d", got, want)
	}
}
