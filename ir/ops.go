package ir

import (
	"fmt"
	"sort"
	"strings"
)

// OpSchema is one op of the op table: its arity, whether its operands
// commute, its type and shape rule, and a one-line description. The table
// (ops_table.go) is the single source for Verify's arity checks, shape
// inference, the pattern engine's commutativity and docs/shape-inference.md.
type OpSchema struct {
	Domain, Op             string
	MinInputs, MaxInputs   int // MaxInputs -1 = variadic
	MinOutputs, MaxOutputs int // MaxOutputs -1 = variadic
	// Commutative says that the inputs may be permuted without changing
	// the result (for binary and variadic ops: Add, Mul, Max, Equal, ...).
	Commutative bool
	// Infer computes output types (and the symbolic contents of small
	// integer outputs) from the inputs; nil means outputs stay unknown.
	Infer InferFunc
	// Symbolic says that Infer works with named symbolic dimensions (not
	// only with known sizes); docs list it.
	Symbolic bool
	Doc      string
}

// InferFunc is an op's type and shape rule. It returns an error only for a
// provable contradiction among the inputs (a known dimension that cannot
// match); everything it cannot work out it leaves unknown.
type InferFunc func(*InferContext) (InferResult, error)

// InferContext is what a rule sees of one node.
type InferContext struct {
	Node *Node
	// Opset is the imported version of the node's domain (0 when the model
	// does not import it; rules then assume the newest version).
	Opset int64
	// In, InConst and InSym are parallel to Node.Inputs. In holds the
	// current input types (the zero Type for omitted inputs). InConst holds
	// constant data where it is known. InSym holds the symbolic contents of
	// 0-D/1-D integer tensors (shape tensors), nil when unknown.
	In      []Type
	InConst []*Tensor
	InSym   [][]SymInt
}

// InferResult is a rule's answer: output types parallel to Node.Outputs
// (missing trailing entries are unknown), and the symbolic contents of
// outputs that are shape tensors (nil entries when unknown).
type InferResult struct {
	Types []Type
	Sym   [][]SymInt
}

var opTable = map[string]*OpSchema{}

func opKey(domain, op string) string {
	if domain == "ai.onnx" {
		domain = ""
	}
	return domain + "::" + op
}

// LookupOp returns the schema of an op, or nil when the table does not know
// it. "" and "ai.onnx" are the same domain.
func LookupOp(domain, op string) *OpSchema { return opTable[opKey(domain, op)] }

// Ops returns every schema, sorted by domain and op name.
func Ops() []*OpSchema {
	out := make([]*OpSchema, 0, len(opTable))
	for _, s := range opTable {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Domain != out[j].Domain {
			return out[i].Domain < out[j].Domain
		}
		return out[i].Op < out[j].Op
	})
	return out
}

func register(s *OpSchema) {
	k := opKey(s.Domain, s.Op)
	if _, dup := opTable[k]; dup {
		panic("ir: op " + k + " registered twice")
	}
	opTable[k] = s
}

// checkArity reports a node whose input or output count the op does not
// allow. Omitted optional operands (nil) still count as positions.
func (s *OpSchema) checkArity(n *Node) error {
	nin, nout := len(n.Inputs), len(n.Outputs)
	if nin < s.MinInputs {
		return fmt.Errorf("%s takes at least %d inputs, node has %d", s.Op, s.MinInputs, nin)
	}
	if s.MaxInputs >= 0 && nin > s.MaxInputs {
		return fmt.Errorf("%s takes at most %d inputs, node has %d", s.Op, s.MaxInputs, nin)
	}
	if nout < s.MinOutputs {
		return fmt.Errorf("%s has at least %d outputs, node has %d", s.Op, s.MinOutputs, nout)
	}
	if s.MaxOutputs >= 0 && nout > s.MaxOutputs {
		return fmt.Errorf("%s has at most %d outputs, node has %d", s.Op, s.MaxOutputs, nout)
	}
	return nil
}

// checkNodeTypes compares a node's declared output types with what its op's
// type rule infers from its inputs' current types, and checks its arity.
// Unknown ops are not checked. It is called by Verify on every node.
func checkNodeTypes(n *Node, opsets map[string]int64) error {
	s := LookupOp(n.Domain, n.Op)
	if s == nil {
		return nil
	}
	if err := s.checkArity(n); err != nil {
		return err
	}
	if s.Infer == nil {
		return nil
	}
	ctx := newInferContext(n, opsetFor(opsets, n.Domain), nil)
	res, err := runRule(s, ctx)
	if err != nil {
		return err
	}
	var problems []string
	for i, o := range n.Outputs {
		if o == nil || i >= len(res.Types) {
			continue
		}
		if o.Type.Conflicts(res.Types[i]) {
			problems = append(problems, fmt.Sprintf("output %q is declared %v but the %s rule gives %v", o.Name, o.Type, n.Op, res.Types[i]))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

func opsetFor(opsets map[string]int64, domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	return opsets[domain]
}

// runRule calls a rule, turning a panic inside it (a bug in a rule, which
// must never take down Verify on a valid model) into an error.
func runRule(s *OpSchema, ctx *InferContext) (res InferResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = InferResult{}, fmt.Errorf("internal error in the %s shape rule: %v", s.Op, r)
		}
	}()
	return s.Infer(ctx)
}
