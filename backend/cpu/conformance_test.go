package cpu_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tfc-compiler/tfc/backend/cpu"
	"github.com/tfc-compiler/tfc/frontend/onnx"
	"github.com/tfc-compiler/tfc/internal/refdata"
	"github.com/tfc-compiler/tfc/ir"
)

// Conformance tolerances from issue 4.
const (
	confRTol = 1e-3
	confATol = 1e-5
)

// nodeTestExceptions are node tests of claimed ops that are known to fail,
// each with the reason. Keep it short; fix the kernel instead when you can.
var nodeTestExceptions = map[string]string{
	// Training-mode Dropout draws a random mask from numpy's RandomState;
	// the expected outputs cannot be reproduced without that generator, and
	// inference never needs it. The backend rejects it with an error.
	"test_training_dropout":              "random mask from numpy RandomState",
	"test_training_dropout_default":      "random mask from numpy RandomState",
	"test_training_dropout_default_mask": "random mask from numpy RandomState",
	"test_training_dropout_mask":         "random mask from numpy RandomState",
}

// nodeTestsDir finds the ONNX node tests: $TFC_ONNX_NODE_TESTS, else
// ../shared/onnx-node next to the repository root. It skips the test when
// they are absent, unless TFC_REQUIRE_NODE_TESTS=1.
func nodeTestsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TFC_ONNX_NODE_TESTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "onnx-node") // backend/cpu -> repo root -> ..
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if os.Getenv("TFC_REQUIRE_NODE_TESTS") == "1" {
			t.Fatalf("ONNX node tests not found at %s (TFC_REQUIRE_NODE_TESTS=1)", dir)
		}
		t.Skipf("ONNX node tests not found at %s; set TFC_ONNX_NODE_TESTS", dir)
	}
	return dir
}

// compareTensors reports the first mismatch between got and want.
func compareTensors(got, want *cpu.Tensor) error {
	if got.IsOptional() || want.IsOptional() {
		g, gok := got.OptionalValue()
		w, wok := want.OptionalValue()
		if !got.IsOptional() || !want.IsOptional() || gok != wok {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		if !gok {
			return nil
		}
		return compareTensors(g, w)
	}
	if got.IsSequence() || want.IsSequence() {
		g, w := got.Elements(), want.Elements()
		if !got.IsSequence() || !want.IsSequence() || len(g) != len(w) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		for i := range g {
			if err := compareTensors(g[i], w[i]); err != nil {
				return fmt.Errorf("sequence element %d: %w", i, err)
			}
		}
		return nil
	}
	if got.DType != want.DType {
		return fmt.Errorf("element type %v, want %v", got.DType, want.DType)
	}
	rtol, atol := confRTol, confATol
	if !want.DType.IsFloat() {
		rtol, atol = 0, 0 // integers, booleans and strings must be exact
	}
	m := refdata.Compare(got, want, rtol, atol)
	switch {
	case m.OK():
		return nil
	case m.Problem != "" && m.Count > 0: // strings
		i := m.First.Index
		return fmt.Errorf("element %d is %q, want %q", i, got.Data.([]string)[i], want.Data.([]string)[i])
	case m.Problem != "":
		return fmt.Errorf("%s", m.Problem)
	}
	return fmt.Errorf("%d of %d elements differ; first at %d: got %g, want %g; largest difference %g", m.Count, m.Total, m.First.Index, m.First.Got, m.First.Want, m.MaxAbsErr)
}

// modelOps lists the qualified ops of a model, nested graphs included.
func modelOps(m *ir.Model) []string {
	set := map[string]bool{}
	m.Graph.Walk(func(n *ir.Node) {
		d := n.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == "" {
			set[n.Op] = true
		} else {
			set[d+"::"+n.Op] = true
		}
	})
	out := make([]string, 0, len(set))
	for op := range set {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// unclaimed lists the ops of m (as modelOps names them) that the backend
// does not claim.
func unclaimed(m *ir.Model) []string {
	var missing []string
	for _, op := range modelOps(m) {
		d, name, ok := strings.Cut(op, "::")
		if !ok {
			d, name = "", op
		}
		if !cpu.Claims(d, name) {
			missing = append(missing, op)
		}
	}
	return missing
}

// unsupportedType names a value or Cast target of m whose type the
// backend does not support, or returns "".
func unsupportedType(m *ir.Model) string {
	bad := ""
	check := func(what string, t ir.Type) {
		if bad == "" && !cpu.SupportsType(t) {
			bad = fmt.Sprintf("%s has type %v", what, t)
		}
	}
	for _, v := range m.Graph.Inputs {
		check("input "+v.Name, v.Type)
	}
	for _, v := range m.Graph.Outputs {
		check("output "+v.Name, v.Type)
	}
	m.Graph.Walk(func(n *ir.Node) {
		for _, o := range n.Outputs {
			if o != nil {
				check("value "+o.Name, o.Type)
			}
		}
		if n.Op == "Cast" {
			check("Cast target", ir.TensorOfUnknownRank(ir.DataType(n.AttrInt("to", 0))))
		}
	})
	return bad
}

// runNodeTest runs every data set of one node test.
func runNodeTest(m *ir.Model, dir string) error {
	exe, err := cpu.Compile(m, cpu.Options{Threads: 2})
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	return refdata.Check(context.Background(), exe, m.Graph, dir, compareTensors)
}

// primaryOp is the op a node test is about: the single node of the
// non-expanded model of the same name.
func primaryOp(root, name string, models map[string]*ir.Model) string {
	base := name
	if i := strings.Index(base, "_expanded"); i >= 0 {
		base = base[:i]
	}
	m := models[base]
	if m == nil {
		m = models[name]
	}
	if m == nil || len(m.Graph.Nodes) == 0 {
		return "?"
	}
	return m.Graph.Nodes[0].Op
}

// TestNodeConformance runs the ONNX backend node tests whose ops are all
// claimed by the backend and compares at rtol 1e-3 / atol 1e-5.
func TestNodeConformance(t *testing.T) {
	root := nodeTestsDir(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	filter := os.Getenv("TFC_NODE_TEST_FILTER") // substring, for debugging
	models := map[string]*ir.Model{}
	var names []string
	decodeFailed := map[string]error{}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "test_") {
			continue
		}
		names = append(names, e.Name())
		m, _, err := onnx.DecodeFile(filepath.Join(root, e.Name(), "model.onnx"), onnx.DecodeOptions{NoMmap: true})
		if err != nil {
			decodeFailed[e.Name()] = err
			continue
		}
		models[e.Name()] = m
	}
	type tally struct{ pass, claimed, total int }
	perOp := map[string]*tally{}
	var pass, claimed, failed, excepted, unsupportedTypes int
	unclaimedOps := map[string]int{}
	for _, name := range names {
		op := primaryOp(root, name, models)
		tl := perOp[op]
		if tl == nil {
			tl = &tally{}
			perOp[op] = tl
		}
		tl.total++
		m := models[name]
		if m == nil {
			continue
		}
		if missing := unclaimed(m); len(missing) > 0 {
			for _, o := range missing {
				unclaimedOps[o]++
			}
			continue
		}
		if bad := unsupportedType(m); bad != "" {
			unsupportedTypes++
			t.Logf("%s: not claimed: %s", name, bad)
			continue
		}
		if filter != "" && !strings.Contains(name, filter) {
			continue
		}
		claimed++
		tl.claimed++
		err := runNodeTest(m, filepath.Join(root, name))
		if err == nil {
			pass++
			tl.pass++
			if reason, ok := nodeTestExceptions[name]; ok {
				t.Errorf("%s passes but is listed as an exception (%s): remove it from nodeTestExceptions", name, reason)
			}
			continue
		}
		if _, ok := nodeTestExceptions[name]; ok {
			excepted++
			t.Logf("%s: known failure: %v", name, err)
			continue
		}
		failed++
		t.Errorf("%s: %v", name, err)
	}
	ops := make([]string, 0, len(perOp))
	for op := range perOp {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var b strings.Builder
	for _, op := range ops {
		tl := perOp[op]
		if tl.claimed > 0 {
			fmt.Fprintf(&b, "  %-28s %3d / %3d passed (%d node tests in total)\n", op, tl.pass, tl.claimed, tl.total)
		}
	}
	t.Logf("per op (tests whose ops are all claimed):\n%s", b.String())
	var uo []string
	for op, n := range unclaimedOps {
		uo = append(uo, fmt.Sprintf("%s:%d", op, n))
	}
	sort.Slice(uo, func(i, j int) bool { return uo[i] < uo[j] })
	t.Logf("unclaimed ops (tests using them): %s", strings.Join(uo, " "))
	t.Logf("TOTAL: %d / %d claimed node tests passed (%d failed, %d known exceptions); %d node tests in all, %d not decodable, %d with all ops claimed but unsupported element types",
		pass, claimed, failed, excepted, len(names), len(decodeFailed), unsupportedTypes)
	if claimed == 0 && filter == "" {
		t.Errorf("no node test ran")
	}
}
