package tfc

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/ir"
)

// MaxKnownOpset is the newest ai.onnx opset whose operators tfc knows
// (ONNX 1.23 defines opsets up to this one). A model importing a newer one
// gets a warning from Inspect.
const MaxKnownOpset = 28

// Summary is what `tfc inspect` reports about a model. Its JSON form is a
// stable contract: the keys below are documented in docs/cli.md.
type Summary struct {
	Path            string              `json:"path"`
	FileBytes       int64               `json:"file_bytes"`
	IRVersion       int64               `json:"ir_version"`
	Producer        string              `json:"producer"`
	ProducerVersion string              `json:"producer_version"`
	Opsets          map[string]int64    `json:"opsets"`
	Inputs          []ValueSummary      `json:"inputs"`
	Outputs         []ValueSummary      `json:"outputs"`
	NodeCount       int                 `json:"node_count"`
	SubgraphNodes   int                 `json:"subgraph_node_count"`
	OpCounts        map[string]int      `json:"op_counts"`
	Functions       []string            `json:"functions"`
	Parameters      int64               `json:"parameters"`
	ParameterBytes  int64               `json:"parameter_bytes"`
	ByType          map[string]Params   `json:"parameters_by_type"`
	ExternalFiles   []onnx.ExternalFile `json:"external_files"`
	Warnings        []string            `json:"warnings"`
}

// ValueSummary is one graph input or output.
type ValueSummary struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Params counts constants of one element type.
type Params struct {
	Count int64 `json:"count"`
	Bytes int64 `json:"bytes"`
}

// Inspect summarizes a model decoded with functions kept (so that node and
// op counts are those of the file as stored).
func Inspect(m *ir.Model, info *onnx.Info) *Summary {
	s := &Summary{
		IRVersion:       m.IRVersion,
		Producer:        m.ProducerName,
		ProducerVersion: m.ProducerVersion,
		Opsets:          map[string]int64{},
		Inputs:          []ValueSummary{},
		Outputs:         []ValueSummary{},
		OpCounts:        map[string]int{},
		Functions:       []string{},
		ByType:          map[string]Params{},
		ExternalFiles:   []onnx.ExternalFile{},
		Warnings:        []string{},
	}
	if info != nil {
		s.Path, s.FileBytes = info.Path, info.FileBytes
		s.ExternalFiles = append(s.ExternalFiles, info.ExternalFiles...)
		s.Warnings = append(s.Warnings, info.Warnings...)
	}
	for _, o := range m.Opsets {
		s.Opsets[o.Domain] = o.Version
	}
	g := m.Graph
	initializer := map[*ir.Value]bool{}
	for _, c := range g.Constants {
		initializer[c] = true
	}
	for _, in := range g.Inputs {
		if !initializer[in] { // inputs with defaults are parameters, not model inputs
			s.Inputs = append(s.Inputs, ValueSummary{in.Name, in.Type.String()})
		}
	}
	for _, out := range g.Outputs {
		s.Outputs = append(s.Outputs, ValueSummary{out.Name, out.Type.String()})
	}
	s.NodeCount = len(g.Nodes)
	local := map[string]bool{}
	for _, f := range m.Functions {
		local[f.Domain+"::"+f.Name] = true
		s.Functions = append(s.Functions, f.Domain+"::"+f.Name)
	}
	unknown := map[string]bool{}
	for _, n := range g.Nodes {
		s.OpCounts[n.QualifiedOp()]++
	}
	g.Walk(func(n *ir.Node) {
		if n.Graph() != g {
			s.SubgraphNodes++
		}
		if ir.LookupOp(n.Domain, n.Op) == nil && !local[n.QualifiedOp()] {
			unknown[n.QualifiedOp()] = true
		}
	})
	for _, op := range sortedKeys(unknown) {
		s.Warnings = append(s.Warnings, fmt.Sprintf("op %s is not known to tfc: passes and backends will leave it alone or refuse it", op))
	}
	if v := m.OpsetVersion(""); v > MaxKnownOpset {
		s.Warnings = append(s.Warnings, fmt.Sprintf("the model imports ai.onnx opset %d; tfc knows opsets up to %d", v, MaxKnownOpset))
	}
	for _, c := range g.Constants {
		var dt ir.DataType
		var count, bytes int64
		switch {
		case c.Const != nil:
			dt, count = c.Const.DType, c.Const.NumElements()
			bytes = int64(len(c.Const.Bytes()))
			for _, str := range c.Const.Strings {
				bytes += int64(len(str))
			}
		case c.SparseConst != nil && c.SparseConst.Values != nil:
			dt, count = c.SparseConst.Values.DType, c.SparseConst.Values.NumElements()
			bytes = int64(len(c.SparseConst.Values.Bytes()))
		}
		p := s.ByType[dt.String()]
		p.Count += count
		p.Bytes += bytes
		s.ByType[dt.String()] = p
		s.Parameters += count
		s.ParameterBytes += bytes
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// WriteText prints the summary for people.
func (s *Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "model      %s (%s)\n", s.Path, humanBytes(s.FileBytes))
	fmt.Fprintf(w, "producer   %s %s\n", orDash(s.Producer), s.ProducerVersion)
	fmt.Fprintf(w, "ir version %d\n", s.IRVersion)
	var ops []string
	for _, d := range sortedKeys(s.Opsets) {
		name := d
		if name == "" {
			name = "ai.onnx"
		}
		ops = append(ops, fmt.Sprintf("%s %d", name, s.Opsets[d]))
	}
	fmt.Fprintf(w, "opsets     %s\n", strings.Join(ops, ", "))
	fmt.Fprintln(w, "inputs")
	for _, v := range s.Inputs {
		fmt.Fprintf(w, "  %-30s %s\n", v.Name, v.Type)
	}
	fmt.Fprintln(w, "outputs")
	for _, v := range s.Outputs {
		fmt.Fprintf(w, "  %-30s %s\n", v.Name, v.Type)
	}
	fmt.Fprintf(w, "nodes      %d in the main graph", s.NodeCount)
	if s.SubgraphNodes > 0 {
		fmt.Fprintf(w, ", %d in nested graphs", s.SubgraphNodes)
	}
	fmt.Fprintln(w)
	// Histogram grouped by domain, most frequent first.
	byDomain := map[string][]string{}
	for k := range s.OpCounts {
		d, _, _ := strings.Cut(k, "::")
		byDomain[d] = append(byDomain[d], k)
	}
	for _, d := range sortedKeys(byDomain) {
		keys := byDomain[d]
		sort.Slice(keys, func(i, j int) bool {
			if s.OpCounts[keys[i]] != s.OpCounts[keys[j]] {
				return s.OpCounts[keys[i]] > s.OpCounts[keys[j]]
			}
			return keys[i] < keys[j]
		})
		name := d
		if name == "" {
			name = "ai.onnx"
		}
		fmt.Fprintf(w, "  %s\n", name)
		for _, k := range keys {
			_, op, _ := strings.Cut(k, "::")
			fmt.Fprintf(w, "    %-28s %d\n", op, s.OpCounts[k])
		}
	}
	if len(s.Functions) > 0 {
		fmt.Fprintf(w, "functions  %s\n", strings.Join(s.Functions, ", "))
	}
	fmt.Fprintf(w, "parameters %d (%s)\n", s.Parameters, humanBytes(s.ParameterBytes))
	for _, dt := range sortedKeys(s.ByType) {
		p := s.ByType[dt]
		fmt.Fprintf(w, "  %-8s %12d  %s\n", dt, p.Count, humanBytes(p.Bytes))
	}
	if len(s.ExternalFiles) > 0 {
		fmt.Fprintln(w, "external data")
		for _, f := range s.ExternalFiles {
			fmt.Fprintf(w, "  %s  %s, %d tensors\n", f.Path, humanBytes(f.Bytes), f.Tensors)
		}
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
