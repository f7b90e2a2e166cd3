// Package report renders what a compilation did as one self-contained
// HTML page (`tfc compile --report FILE.html`): the pass table, the fused
// op counts, the --explain items, and the graph before and after the
// pipeline with fused regions highlighted. Everything is inline (CSS,
// SVG, a few lines of script), so the page opens offline. It reads ir
// models and a passes.Report and changes neither.
package report

import (
	"cmp"
	"fmt"
	"github.com/tfc-compiler/tfc/internal/atomicfile"
	"html"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
	"github.com/tfc-compiler/tfc/passes"
)

// kindOf maps a tfc op to the fused category it is counted under (the
// categories of passes.FusedKinds), or "" for an op that is not fused.
func kindOf(n *ir.Node) string {
	if n.Domain != "tfc" {
		return ""
	}
	switch n.Op {
	case "Attention", "LayerNorm", "RMSNorm", "Gelu", "BiasGelu", "SkipLayerNorm":
		return n.Op
	case "SkipRMSNorm":
		return "SkipLayerNorm"
	}
	return "other"
}

// ortKindOf maps an op that `--target ort` writes for a fused tfc op to
// its category, or "".
func ortKindOf(n *ir.Node) string {
	if n.Domain != "" && n.Domain != "ai.onnx" && n.Domain != "com.microsoft" {
		return ""
	}
	switch n.Op {
	case "MultiHeadAttention", "GroupQueryAttention", "Attention":
		return "Attention"
	case "LayerNormalization":
		return "LayerNorm"
	case "SkipLayerNormalization", "SkipSimplifiedLayerNormalization":
		return "SkipLayerNorm"
	case "RMSNormalization", "SimplifiedLayerNormalization":
		return "RMSNorm"
	case "Gelu":
		return "Gelu"
	case "BiasGelu":
		return "BiasGelu"
	case "FastGelu":
		if len(n.Inputs) > 1 && n.Inputs[1] != nil {
			return "BiasGelu"
		}
		return "Gelu"
	}
	return ""
}

// kindColor is the fill of each fused category; the legend shows them.
var kindColor = map[string]string{
	"Attention":     "#f6a04d",
	"LayerNorm":     "#8fc46a",
	"SkipLayerNorm": "#4fb0a5",
	"RMSNorm":       "#e07b91",
	"Gelu":          "#a998ee",
	"BiasGelu":      "#6f8fe8",
	"other":         "#d4c25a",
}

// WriteHTML writes the report page. before is the model as it was before
// the pipeline (a CloneStructure taken before compiling) and may be nil;
// after is the compiled model; rep is the pipeline's report and may be
// nil. Fused regions of before are found by names, since passes do not
// record provenance: see regions.
func WriteHTML(w io.Writer, before, after *ir.Model, rep *passes.Report) error {
	if after == nil || after.Graph == nil {
		return fmt.Errorf("report: the compiled model has no graph")
	}
	if before != nil && before.Graph == nil {
		return fmt.Errorf("report: the model before compiling has no graph")
	}
	p := &page{}
	title := after.Graph.Name
	if title == "" {
		title = "model"
	}
	p.printf("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>tfc report: %s</title>\n<style>%s</style></head><body>\n", esc(title), css)
	p.printf("<h1>tfc compile report <span class=\"sub\">%s</span></h1>\n", esc(title))
	p.summary(before, after, rep)
	if rep != nil {
		p.fused(rep)
		p.passTable(rep)
		p.explain(rep)
	}
	var regs *regionMap
	if before != nil {
		regs = regions(before.Graph, after.Graph)
	}
	p.graphs(before, after, regs)
	p.printf("<script>%s</script>\n</body></html>\n", script)
	if p.err != nil {
		return p.err
	}
	_, err := io.WriteString(w, p.b.String())
	return err
}

type page struct {
	b   strings.Builder
	err error
}

func (p *page) printf(format string, args ...any) { fmt.Fprintf(&p.b, format, args...) }

func esc(s string) string { return html.EscapeString(s) }

func countNodes(g *ir.Graph) int {
	n := 0
	g.Walk(func(*ir.Node) { n++ })
	return n
}

func (p *page) summary(before, after *ir.Model, rep *passes.Report) {
	p.printf("<section id=\"summary\"><table class=\"kv\">")
	if rep != nil {
		p.printf("<tr><th>pipeline</th><td><code>%s</code></td></tr>", esc(rep.Pipeline))
		p.printf("<tr><th>total time</th><td>%.2f ms</td></tr>", rep.TotalMs)
	}
	if before != nil {
		p.printf("<tr><th>nodes before</th><td>%d</td></tr>", countNodes(before.Graph))
	}
	p.printf("<tr><th>nodes after</th><td>%d</td></tr>", countNodes(after.Graph))
	var opsets []string
	for _, o := range after.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		opsets = append(opsets, fmt.Sprintf("%s %d", d, o.Version))
	}
	p.printf("<tr><th>opsets after</th><td>%s</td></tr></table></section>\n", esc(strings.Join(opsets, ", ")))
}

func (p *page) fused(rep *passes.Report) {
	p.printf("<section id=\"fused\"><h2>Fused ops</h2><table class=\"grid\"><tr>")
	for _, k := range passes.FusedKinds {
		p.printf("<th><span class=\"chip\" style=\"background:%s\"></span>%s</th>", kindColor[k], esc(k))
	}
	p.printf("</tr><tr>")
	for _, k := range passes.FusedKinds {
		p.printf("<td class=\"num\">%d</td>", rep.Fused[k])
	}
	p.printf("</tr></table></section>\n")
}

func (p *page) passTable(rep *passes.Report) {
	p.printf("<section id=\"passes\"><h2>Passes</h2><table class=\"grid\"><tr><th>#</th><th>pass</th><th>ms</th><th>nodes before</th><th>nodes after</th><th>rewrites</th></tr>\n")
	for i, pr := range rep.Passes {
		var rw []string
		for _, rule := range slices.Sorted(maps.Keys(pr.Rewrites)) {
			rw = append(rw, fmt.Sprintf("%s&#160;%d", esc(rule), pr.Rewrites[rule]))
		}
		cls := ""
		if pr.NodesAfter != pr.NodesBefore || len(rw) > 0 {
			cls = " class=\"changed\""
		}
		p.printf("<tr%s><td class=\"num\">%d</td><td><code>%s</code></td><td class=\"num\">%.2f</td><td class=\"num\">%d</td><td class=\"num\">%d</td><td class=\"rw\">%s</td></tr>\n",
			cls, i+1, esc(pr.Name), pr.Ms, pr.NodesBefore, pr.NodesAfter, strings.Join(rw, "<br/>"))
	}
	p.printf("</table></section>\n")
}

func (p *page) explain(rep *passes.Report) {
	p.printf("<section id=\"explain\"><h2>Explanations <span class=\"sub\">(why a pattern did not apply)</span></h2>\n")
	if len(rep.Explain) == 0 {
		p.printf("<p class=\"muted\">None recorded (run with --explain to collect them).</p></section>\n")
		return
	}
	p.printf("<ol class=\"explain\">\n")
	for _, e := range rep.Explain {
		p.printf("<li><code>%s</code> rule <code>%s</code> at <b>%s</b>: %s", esc(e.Pass), esc(e.Rule), esc(e.Anchor), esc(e.Reason))
		if len(e.Nodes) > 0 {
			p.printf(" <span class=\"muted\">[%s]</span>", esc(strings.Join(e.Nodes, ", ")))
		}
		p.printf("</li>\n")
	}
	p.printf("</ol></section>\n")
}

// regionMap says which fused region each node belongs to: the tfc nodes
// of the compiled graph, and the nodes of the original graph they
// replaced.
type regionMap struct {
	after  map[*ir.Node]int
	before map[*ir.Node]int
	kind   []string // by region id
	label  []string // the tfc node's label, by region id
}

// regions finds, for each tfc node of after, the nodes of before it
// replaced. Passes keep no provenance, so this goes by names: the value
// the region computed is found in before (by the tfc output's name, or
// through the before-node of a consumer that kept its name), and the
// region is every node backward-reachable from it through nodes whose
// names no longer exist in after (nodes the pipeline removed). Nodes that
// survive bound the region, so a renamed input cannot pull in the whole
// graph above it: at worst a region misses nodes.
func regions(before, after *ir.Graph) *regionMap {
	rm := &regionMap{after: map[*ir.Node]int{}, before: map[*ir.Node]int{}}
	afterNodes := map[string]bool{}
	after.Walk(func(n *ir.Node) { afterNodes[n.Name] = true })
	beforeNode := map[string]*ir.Node{}
	beforeValue := map[string]*ir.Value{}
	before.ForEachValue(func(v *ir.Value) { beforeValue[v.Name] = v })
	for _, n := range before.Nodes {
		if n.Name != "" {
			beforeNode[n.Name] = n
		}
	}
	// oldValue finds the before-value that after-value v stands for.
	var oldValue func(v *ir.Value, depth int) *ir.Value
	oldValue = func(v *ir.Value, depth int) *ir.Value {
		if old, ok := beforeValue[v.Name]; ok && old.NumUses()+boolInt(old.IsOutput()) > 0 {
			if p, _ := old.Producer(); p != nil && !afterNodes[p.Name] {
				return old
			}
		}
		for _, u := range v.Uses() {
			if bn, ok := beforeNode[u.Node.Name]; ok && u.Node.Name != "" && u.Index < len(bn.Inputs) && bn.Inputs[u.Index] != nil {
				return bn.Inputs[u.Index]
			}
		}
		if depth == 0 {
			return nil
		}
		// A consumer the pipeline created (a transpose after the fused op,
		// say): look one step further down.
		for _, u := range v.Uses() {
			if kindOf(u.Node) != "" || ortKindOf(u.Node) != "" {
				// Another fused op: what lies below it is its region.
				continue
			}
			for _, o := range u.Node.Outputs {
				if o != nil {
					if old := oldValue(o, depth-1); old != nil {
						return old
					}
				}
			}
		}
		return nil
	}
	beforeNames := map[string]bool{}
	before.Walk(func(n *ir.Node) { beforeNames[n.Name] = true })
	for _, n := range after.Nodes {
		kind := kindOf(n)
		if kind == "" && (n.Name == "" || !beforeNames[n.Name]) {
			// A fused op as --target ort writes it: new, so not one the
			// model had (a LayerNormalization of the original stays plain).
			kind = ortKindOf(n)
		}
		if kind == "" {
			continue
		}
		id := len(rm.kind)
		rm.kind = append(rm.kind, kind)
		op := n.Op
		if n.Domain != "" {
			op = n.Domain + "." + n.Op
		}
		rm.label = append(rm.label, op+" "+label(n))
		rm.after[n] = id
		var stack []*ir.Node
		for _, o := range n.Outputs {
			if o == nil {
				continue
			}
			if old := oldValue(o, 3); old != nil {
				if p, _ := old.Producer(); p != nil {
					stack = append(stack, p)
				}
			}
		}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if x.Name != "" && afterNodes[x.Name] {
				continue
			}
			if x.Domain == "" && (x.Op == "Constant" || x.Op == "Identity") {
				// Canonicalize folds these into initializers everywhere;
				// they are no part of what a fusion replaced.
				continue
			}
			if _, seen := rm.before[x]; seen {
				continue
			}
			rm.before[x] = id
			for _, in := range x.Inputs {
				if in == nil {
					continue
				}
				if p, _ := in.Producer(); p != nil && p.Graph() == before {
					stack = append(stack, p)
				}
			}
		}
	}
	return rm
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func label(n *ir.Node) string {
	if n.Name != "" {
		return n.Name
	}
	for _, o := range n.Outputs {
		if o != nil {
			return "-> " + o.Name
		}
	}
	return n.Op
}

func (p *page) graphs(before, after *ir.Model, regs *regionMap) {
	p.printf("<section id=\"graphs\"><h2>Graph</h2>\n<p class=\"legend\">")
	for _, k := range append(slices.Clone(passes.FusedKinds), "other") {
		p.printf("<span class=\"chip\" style=\"background:%s\"></span>%s ", kindColor[k], esc(k))
	}
	p.printf("<span class=\"chip plain\"></span>unchanged op</p>\n")
	p.printf("<p class=\"muted\">Nodes are placed in rows by topological depth (inputs at the top). Coloured nodes after are fused ops (tfc ops, or with --target ort the ONNX Runtime ops they became); coloured nodes before are the ones each replaced. Passes record no provenance, so those regions are found by names: the nodes the pipeline removed that compute the fused op's output, bounded by nodes that survive (Constant and Identity nodes, which canonicalize folds everywhere, are left out). Hover a fused node to highlight its region in both views; click to scroll the other view to it; a link ending in <code>#r3</code> opens with region 3 shown.</p>\n")
	p.printf("<div class=\"views\">\n")
	if before != nil {
		p.view("before", "Before", before.Graph, regs.before, regs)
	}
	p.view("after", "After", after.Graph, afterRegions(regs, after.Graph), regs)
	p.printf("</div></section>\n")
}

// afterRegions numbers the fused nodes of after when there is no before
// model to map them to.
func afterRegions(regs *regionMap, g *ir.Graph) map[*ir.Node]int {
	if regs != nil {
		return regs.after
	}
	m := map[*ir.Node]int{}
	for _, n := range g.Nodes {
		if kindOf(n) != "" {
			m[n] = len(m)
		}
	}
	return m
}

// Layout constants, in SVG pixels.
const (
	boxW, boxH = 140, 34
	gapX, rowH = 14, 66
	pad        = 12
	maxPerRow  = 4
)

type placed struct {
	n      *ir.Node
	depth  int
	slot   float64 // position in its row
	x, y   int
	region int // -1: none
}

// layout places g's nodes in rows by depth (1 + the deepest producer),
// ordering each row by the mean position of its producers (two sweeps of
// the barycenter heuristic) to keep edges short.
func layout(g *ir.Graph, region map[*ir.Node]int) ([]*placed, map[*ir.Node]*placed, int, int) {
	at := map[*ir.Node]*placed{}
	var all []*placed
	var rows [][]*placed
	for i, n := range g.Nodes {
		d := 0
		for _, in := range n.Inputs {
			if in == nil {
				continue
			}
			if p, _ := in.Producer(); p != nil {
				if pp, ok := at[p]; ok {
					d = max(d, pp.depth+1)
				}
			}
		}
		r, ok := region[n]
		if !ok {
			r = -1
		}
		pl := &placed{n: n, depth: d, slot: float64(i), region: r}
		at[n] = pl
		all = append(all, pl)
	}
	// Sink nodes without producers (Constant, Identity of a weight, Shape
	// of an input) to the row just above their first consumer, instead
	// of one huge first row with edges across the whole graph.
	for _, pl := range all {
		if hasProducer(pl.n, at) {
			continue
		}
		first := -1
		for _, o := range pl.n.Outputs {
			if o == nil {
				continue
			}
			for _, u := range o.Uses() {
				if up, ok := at[u.Node]; ok && (first < 0 || up.depth < first) {
					first = up.depth
				}
			}
		}
		if first > 0 {
			pl.depth = first - 1
		}
	}
	for _, pl := range all {
		for len(rows) <= pl.depth {
			rows = append(rows, nil)
		}
		rows[pl.depth] = append(rows[pl.depth], pl)
	}
	order := func(row []*placed) {
		for i, pl := range row {
			pl.slot = float64(i)
		}
	}
	for _, row := range rows {
		order(row)
	}
	for sweep := 0; sweep < 2; sweep++ {
		for d := 1; d < len(rows); d++ {
			key := map[*placed]float64{}
			for _, pl := range rows[d] {
				sum, cnt := 0.0, 0
				for _, in := range pl.n.Inputs {
					if in == nil {
						continue
					}
					if p, _ := in.Producer(); p != nil {
						if pp, ok := at[p]; ok {
							// Normalize by row width so rows of different
							// sizes line up around the centre.
							sum += (pp.slot + 0.5) / float64(len(rows[pp.depth]))
							cnt++
						}
					}
				}
				if cnt > 0 {
					key[pl] = sum / float64(cnt)
				} else {
					key[pl] = (pl.slot + 0.5) / float64(len(rows[d]))
				}
			}
			sort.SliceStable(rows[d], func(i, j int) bool { return key[rows[d][i]] < key[rows[d][j]] })
			order(rows[d])
		}
	}
	// Rows wider than maxPerRow wrap onto further lines, so each view
	// stays about as wide as its pane and needs only vertical scrolling.
	line, widest := 0, 1
	for _, row := range rows {
		for start := 0; start < len(row); start += maxPerRow {
			chunk := row[start:min(len(row), start+maxPerRow)]
			widest = max(widest, len(chunk))
			off := (maxPerRow - len(chunk)) * (boxW + gapX) / 2
			for i, pl := range chunk {
				pl.x = pad + off + i*(boxW+gapX)
				pl.y = pad + line*rowH
			}
			line++
		}
	}
	width := 2*pad + maxPerRow*(boxW+gapX) - gapX
	height := 2*pad + max(1, line)*rowH - (rowH - boxH)
	return all, at, width, height
}

func hasProducer(n *ir.Node, at map[*ir.Node]*placed) bool {
	for _, in := range n.Inputs {
		if in == nil {
			continue
		}
		if p, _ := in.Producer(); p != nil {
			if _, ok := at[p]; ok {
				return true
			}
		}
	}
	return false
}

func (p *page) view(id, title string, g *ir.Graph, region map[*ir.Node]int, regs *regionMap) {
	all, at, width, height := layout(g, region)
	highlighted := 0
	for _, pl := range all {
		if pl.region >= 0 {
			highlighted++
		}
	}
	p.printf("<div class=\"view\" id=\"view-%s\"><h3>%s <span class=\"sub\">%d nodes, %d in fused regions</span></h3>\n", id, title, len(all), highlighted)
	p.printf("<div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" id=\"graph-%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n", id, width, height, width, height)
	p.printf("<g class=\"edges\">")
	for _, pl := range all {
		for _, in := range pl.n.Inputs {
			if in == nil {
				continue
			}
			src, _ := in.Producer()
			sp, ok := at[src]
			if !ok {
				continue
			}
			x1, y1 := sp.x+boxW/2, sp.y+boxH
			x2, y2 := pl.x+boxW/2, pl.y
			mid := (y1 + y2) / 2
			p.printf("<path d=\"M%d %d C%d %d %d %d %d %d\"/>", x1, y1, x1, mid, x2, mid, x2, y2)
		}
	}
	p.printf("</g>\n")
	for _, pl := range all {
		n := pl.n
		fill, cls, data := "#eef2f7", "node", ""
		if pl.region >= 0 {
			kind := "other"
			if regs != nil && pl.region < len(regs.kind) {
				kind = regs.kind[pl.region]
			} else if k := kindOf(n); k != "" {
				kind = k
			}
			fill = kindColor[kind]
			cls = "node fused"
			data = fmt.Sprintf(" data-r=\"r%d\"", pl.region)
		}
		op := n.Op
		if n.Domain != "" {
			op = n.Domain + "." + n.Op
		}
		tip := op + "\n" + label(n)
		if n.Domain == "com.microsoft" {
			op = "ms." + n.Op // the box is narrow; the tooltip has the domain
		}
		if _, isFused := regs.after[n]; pl.region >= 0 && regs != nil && pl.region < len(regs.label) && !isFused {
			tip += "\nreplaced by " + regs.label[pl.region]
		}
		p.printf("<g class=\"%s\"%s transform=\"translate(%d %d)\"><title>%s</title><rect width=\"%d\" height=\"%d\" rx=\"5\" fill=\"%s\"/><text x=\"%d\" y=\"14\" class=\"op\">%s</text><text x=\"%d\" y=\"27\" class=\"nm\">%s</text></g>\n",
			cls, data, pl.x, pl.y, esc(tip), boxW, boxH, fill, boxW/2, esc(shorten(op, 21)), boxW/2, esc(shortenLeft(label(n), 23)))
	}
	p.printf("</svg></div>\n")
	p.nodeList(g, region, regs)
	p.printf("</div>\n")
}

// nodeList is the collapsible text form of a view, for large graphs and
// for searching with the browser's find.
func (p *page) nodeList(g *ir.Graph, region map[*ir.Node]int, regs *regionMap) {
	p.printf("<details><summary>Node list (%d)</summary><table class=\"grid nodes\"><tr><th>#</th><th>op</th><th>name</th><th>inputs</th><th>outputs</th></tr>\n", len(g.Nodes))
	for i, n := range g.Nodes {
		style, data := "", ""
		if r, ok := region[n]; ok {
			kind := kindOf(n)
			if regs != nil && r < len(regs.kind) {
				kind = regs.kind[r]
			}
			style = fmt.Sprintf(" style=\"background:%s\"", kindColor[cmp.Or(kind, "other")])
			data = fmt.Sprintf(" data-r=\"r%d\"", r)
		}
		op := n.Op
		if n.Domain != "" {
			op = n.Domain + "." + n.Op
		}
		p.printf("<tr%s%s><td class=\"num\">%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			style, data, i, esc(op), esc(n.Name), esc(valueNames(n.Inputs)), esc(valueNames(n.Outputs)))
	}
	p.printf("</table></details>\n")
}

func valueNames(vs []*ir.Value) string {
	out := make([]string, len(vs))
	for i, v := range vs {
		if v == nil {
			out[i] = "_"
		} else {
			out[i] = v.Name
		}
	}
	return strings.Join(out, ", ")
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// shortenLeft keeps the end of a long name: node names are paths whose
// last parts say the most.
func shortenLeft(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

// css and script are inline so the page needs nothing else. The script
// avoids the characters < and & so the page also parses as XML (the test
// checks it does).
const css = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:18px 24px;color:#1d2733;background:#fff}
h1{font-size:22px;margin:0 0 10px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #d8dee6;padding-bottom:3px}
h3{font-size:15px;margin:6px 0}.sub{font-weight:normal;color:#66768a;font-size:13px}.muted{color:#66768a;font-size:13px}
table{border-collapse:collapse}table.kv th{text-align:left;padding:2px 14px 2px 0;color:#4b5a6b;font-weight:600}
table.grid th,table.grid td{border:1px solid #d8dee6;padding:3px 8px;vertical-align:top}table.grid th{background:#f3f6f9}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.rw{font-size:12px;color:#33414f}tr.changed td{background:#fbfcf3}
code{font:12px ui-monospace,Menlo,Consolas,monospace}
.chip{display:inline-block;width:11px;height:11px;border-radius:3px;margin:0 4px 0 10px;vertical-align:-1px;border:1px solid #0002}
.chip.plain{background:#eef2f7}ol.explain li{margin:3px 0}
.views{display:flex;gap:14px;align-items:flex-start}.view{flex:1 1 0;min-width:0}
.scroll{overflow:auto;max-height:78vh;border:1px solid #d8dee6;border-radius:6px;background:#fbfcfd}
svg .edges path{fill:none;stroke:#9fb0c2;stroke-width:1.1}
svg .node rect{stroke:#8a9aad;stroke-width:1}svg .node.fused rect{stroke:#3b3b3b;stroke-width:1.6}
svg text{text-anchor:middle;font-family:system-ui,sans-serif}svg text.op{font-size:12px;font-weight:600}svg text.nm{font-size:9.5px;fill:#4b5a6b}
svg .node.fused text.nm{fill:#1d2733}svg .node.hl rect{stroke:#d0021b;stroke-width:3.5}tr.hl td{outline:2px solid #d0021b}
details{margin-top:6px}table.nodes{font-size:12px}
`

const script = `
(function(){
  function all(r){return document.querySelectorAll('[data-r="'+r+'"]');}
  // A link to report.html#r3 shows region r3 in both views.
  // centre scrolls the pane holding node group x (not the window) so x
  // is in the middle of it.
  function centre(x){
    var sc=x.closest('.scroll'); var m=x.transform.baseVal.consolidate().matrix;
    sc.scrollTop=m.f-sc.clientHeight/2; sc.scrollLeft=m.e-sc.clientWidth/2;
  }
  function show(r){document.querySelectorAll('.view').forEach(function(v){
    var x=v.querySelector('g[data-r="'+r+'"]'); if(x){centre(x); all(r).forEach(function(y){y.classList.add('hl');});}
  });}
  if(location.hash.indexOf('#r')===0){show(location.hash.slice(1));}
  document.querySelectorAll('[data-r]').forEach(function(el){
    var r=el.getAttribute('data-r');
    el.addEventListener('mouseenter',function(){all(r).forEach(function(x){x.classList.add('hl');});});
    el.addEventListener('mouseleave',function(){all(r).forEach(function(x){x.classList.remove('hl');});});
    el.addEventListener('click',function(){
      var mine=el.closest('.view');
      var other=null;
      all(r).forEach(function(x){ if(other===null){ if(x.tagName==='g'){ if(x.closest('.view')!==mine){ other=x; } } } });
      if(other!==null){centre(other);}
    });
  });
})();
`

// WriteHTMLFile writes the report page to path (for `--report
// FILE.html`).
// The page is written to a temporary file and renamed into place.
func WriteHTMLFile(path string, before, after *ir.Model, rep *passes.Report) error {
	return atomicfile.Write(path, func(w io.Writer) error { return WriteHTML(w, before, after, rep) })
}
