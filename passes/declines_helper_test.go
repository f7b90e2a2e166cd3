package passes

import (
	"testing"

	"github.com/tfc-compiler/tfc/ir"
)

// requireDeclines applies rs to m with --explain on and fails unless the
// graph's ops are unchanged and some explanation mentions reason: the
// shared check of the fusion passes' must-not-fuse cases.
func requireDeclines(t *testing.T, rs *RuleSet, m *ir.Model, reason string) {
	t.Helper()
	before := ops(m.Graph)
	ctx := &Context{Explain: &Explanations{}}
	if err := rs.Apply(ctx, m.Graph, &Stats{}); err != nil {
		t.Fatal(err)
	}
	wantOps(t, m.Graph, before...)
	for _, e := range ctx.Explain.Items {
		if contains(e.Reason, reason) {
			return
		}
	}
	t.Fatalf("no explanation mentions %q: %+v", reason, ctx.Explain.Items)
}
