package ir

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docPath is docs/shape-inference.md, generated from the op table.
var docPath = filepath.Join("..", "docs", "shape-inference.md")

const docIntro = `# Shape inference

<!-- Generated from the op table (ir/ops_table.go) by
     go test ./ir -run TestShapeInferenceDoc -update   (or TFC_UPDATE=1 go test ./ir -run TestShapeInferenceDoc)
     Do not edit by hand: the test fails when this file is out of date. -->

tfc infers element types and **symbolic** shapes for every op in the table
below (` + "`ir.InferShapes`" + `, the ` + "`infer-shapes`" + ` pass), and ` + "`ir.Verify`" + ` runs the
same rules on every node to reject declared types that provably contradict
them, and input/output counts that no opset version of the op allows.

## Dimensions

A dimension (` + "`ir.Dim`" + `) is a known size, a named symbol, or unknown (` + "`?`" + `).
Symbols come from the model (ONNX ` + "`dim_param`" + `, e.g. ` + "`batch`" + `, ` + "`seq`" + `) or are
derived by the rules. A derived symbol is named by its expression in a
canonical form, so the same computation reached two ways gets the same
name and ` + "`Dim.SameAs`" + ` can prove equalities:

| expression | name |
|---|---|
| product (Reshape -1, Flatten, Mul of shape values, Tile, Size) | factors sorted and joined by ` + "`*`" + `, numeric coefficient first: ` + "`batch*seq`" + `, ` + "`12*seq`" + ` |
| sum (Concat along an axis, Add/Sub of shape values, Pad) | terms sorted, constant last: ` + "`past_seq+seq`" + `, ` + "`seq-1`" + `, ` + "`2*seq`" + ` |
| a sum inside a product | parenthesized: ` + "`2*(seq+1)`" + ` |
| exact division of products (Reshape -1, Div of shape values, DepthToSpace) | the quotient: ` + "`768*batch*seq / 768 = batch*seq`" + ` |

Anything else (inexact division, Max/Min of different symbols, a
broadcast of two different symbols) becomes unknown. Model symbols are
parsed by the same grammar (` + "`a*b`" + `, ` + "`a+b`" + `, ` + "`a - 1`" + `), so a model that
declares ` + "`past_sequence_length + 1`" + ` interoperates with derived names.

## Shape tensors

Transformer exports compute shapes at run time (Shape → Gather →
Unsqueeze → Concat → Reshape, Shape → Slice, ConstantOfShape, Range,
Expand, Where(Equal(shape, -1), ones, shape)). Inference therefore also
tracks the **contents** of small (at most 64 elements) 0-D/1-D integer
tensors as ` + "`ir.SymInt`" + ` values: a known number (which may be negative,
like Reshape's -1), a symbol, or unknown. Constants, initializers and
Constant nodes seed them; Shape, Size and the ops marked "contents" below
propagate them; Reshape, Expand, Tile, Pad, ConstantOfShape, Range,
Resize, TopK, OneHot and Split consume them.

Reshape resolves 0 (copy the input dimension, unless ` + "`allowzero`" + `) and -1:
the input's product divided by the product of the other target
dimensions, symbolically (` + "`[batch,seq,768]`" + ` reshaped to
` + "`[batch, seq, -1]`" + ` gives ` + "`768`" + `; to ` + "`[-1, 768]`" + ` gives ` + "`batch*seq`" + `).

## Merging and contradictions

Inferred types are merged with declared ones (graph outputs, value_info):
a known element type beats an undefined one, a known rank beats an unknown
one, and per dimension a known size beats a symbol beats unknown (a
declared symbol is kept over a different inferred one). Nothing known is
ever replaced by something unknown. A provable contradiction — two known
sizes that must be equal and are not, a rank mismatch, different element
types — is an error naming the node and the value. Rules are conservative:
whatever they cannot prove stays unknown.

## Opset versions

Rules look at the node's opset where the op changed: axes as attribute or
input (Squeeze/Unsqueeze/ReduceSum 13, other Reduce* 18), Split's ` + "`split`" + `
input (13) and ` + "`num_outputs`" + ` (18), Slice inputs (10), Pad inputs (11) and
axes (18), Resize's inputs (10 vs 11+), Upsample's scales (9), TopK's K
(10), Dropout's bool mask (10), Shape's start/end (15), legacy broadcasting
of binary ops before 7 (output takes A's shape), Scan's layout (9).
Arity in the table is the union over all versions.

## Measured

` + "`go test ./frontend/onnx -run 'TestNodeTestShapes|TestCorpusShapes' -v`" + `:

- ONNX backend node tests (1,802 models, 2,226 graph outputs): Verify accepts
  every model with its declared types; after clearing the type of every
  node output and re-inferring, 1,668 outputs equal the declared type,
  362 are consistent but less specific (mostly shapes that depend on
  run-time input values: Reshape/Resize/Split/Slice/ReduceSum with
  non-constant shape, axes or sizes inputs), 196 stay unknown (ops with no
  rule: newer or rarely used ops, training and string ops), and 0
  contradict.
- The exported transformer corpus in testdata/models (46 models when
  written): every graph output is inferred with every dimension known or
  symbolic, e.g. BERT's ` + "`[batch,sequence,64]`" + ` and the decoders' present
  K/V ` + "`[batch,4,past_sequence+sequence,16]`" + `.

## Ops

"symbolic" says whether the rule's arithmetic works with named symbols
("yes") or computes new sizes only from known ones ("known sizes").
Ops with no rule keep unknown outputs; Verify still checks their arity.
`

func generateShapeDoc() string {
	var b strings.Builder
	b.WriteString(docIntro)
	domains := map[string][]*OpSchema{}
	var order []string
	for _, s := range Ops() {
		if _, ok := domains[s.Domain]; !ok {
			order = append(order, s.Domain)
		}
		domains[s.Domain] = append(domains[s.Domain], s)
	}
	arity := func(lo, hi int) string {
		switch {
		case hi < 0:
			return fmt.Sprintf("%d+", lo)
		case lo == hi:
			return fmt.Sprint(lo)
		}
		return fmt.Sprintf("%d–%d", lo, hi)
	}
	for _, d := range order {
		name := d
		if name == "" {
			name = "ai.onnx"
		}
		fmt.Fprintf(&b, "\n### %s\n\n| op | inputs | outputs | commutative | symbolic | rule |\n|---|---|---|---|---|---|\n", name)
		var arityOnly []string
		for _, s := range domains[d] {
			if s.Infer == nil {
				arityOnly = append(arityOnly, s.Op)
				continue
			}
			comm := ""
			if s.Commutative {
				comm = "yes"
			}
			sym := "known sizes"
			if s.Symbolic {
				sym = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", s.Op, arity(s.MinInputs, s.MaxInputs), arity(s.MinOutputs, s.MaxOutputs), comm, sym, s.Doc)
		}
		if len(arityOnly) > 0 {
			fmt.Fprintf(&b, "\nArity only (outputs unknown): %s.\n", strings.Join(arityOnly, ", "))
		}
	}
	return b.String()
}

// TestShapeInferenceDoc checks that docs/shape-inference.md matches the op
// table, and rewrites it with -update (when the package's tests define that
// flag) or TFC_UPDATE=1.
func TestShapeInferenceDoc(t *testing.T) {
	want := generateShapeDoc()
	update := os.Getenv("TFC_UPDATE") == "1"
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		update = true
	}
	if update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v (regenerate with TFC_UPDATE=1 go test ./ir -run TestShapeInferenceDoc)", err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with the op table; regenerate with TFC_UPDATE=1 go test ./ir -run TestShapeInferenceDoc", docPath)
	}
}
