package ir

import (
	"strings"
	"testing"
)

func symOf(s string) SymInt {
	if isNumber(s) {
		v := parseLinear(s)
		return KnownInt(v.c)
	}
	return SymInt{Sym: s}
}

// TestSymArithmetic checks derived symbol names against the canonical forms
// documented on SymInt.
func TestSymArithmetic(t *testing.T) {
	cases := []struct {
		op   string
		a, b string
		want string
	}{
		{"+", "seq", "1", "seq+1"},
		{"+", "seq+1", "-1", "seq"},
		{"+", "seq", "past_seq", "past_seq+seq"},
		{"+", "past_seq", "seq", "past_seq+seq"},
		{"-", "past_seq+seq", "past_seq", "seq"},
		{"-", "seq", "seq", "0"},
		{"-", "seq", "1", "seq-1"},
		{"+", "seq", "seq", "2*seq"},
		{"+", "past + 1", "seq", "past+seq+1"},
		{"*", "batch", "seq", "batch*seq"},
		{"*", "seq", "batch", "batch*seq"},
		{"*", "seq", "12", "12*seq"},
		{"*", "12*seq", "batch", "12*batch*seq"},
		{"*", "seq+1", "2", "2*(seq+1)"},
		{"*", "seq", "0", "0"},
		{"/", "12*batch*seq", "12*seq", "batch"},
		{"/", "batch*seq", "seq", "batch"},
		{"/", "768*seq", "12", "64*seq"},
		{"/", "seq", "2", "?"},
		{"/", "7", "2", "3"},
		{"/", "-7", "2", "?"},
		{"/", "-8", "2", "-4"},
		{"/", "2*(seq+1)", "seq+1", "2"},
	}
	for _, tc := range cases {
		a, b := symOf(tc.a), symOf(tc.b)
		var got SymInt
		switch tc.op {
		case "+":
			got = symAdd(a, b, 1)
		case "-":
			got = symAdd(a, b, -1)
		case "*":
			got = symMul(a, b)
		case "/":
			got = symDiv(a, b)
		}
		if got.String() != tc.want {
			t.Errorf("%s %s %s = %s, want %s", tc.a, tc.op, tc.b, got, tc.want)
		}
	}
}

func TestSymIntDim(t *testing.T) {
	if d := KnownInt(-1).Dim(); d.IsKnown() || d.IsSym() {
		t.Errorf("KnownInt(-1).Dim() = %v, want unknown", d)
	}
	if d := KnownInt(5).Dim(); !d.SameAs(Known(5)) {
		t.Errorf("KnownInt(5).Dim() = %v", d)
	}
	if s := SymIntOf(Sym("batch")); s.Sym != "batch" || s.Known {
		t.Errorf("SymIntOf(batch) = %+v", s)
	}
}

func TestOpTable(t *testing.T) {
	ops := Ops()
	if len(ops) < 150 {
		t.Errorf("only %d ops registered", len(ops))
	}
	for i, s := range ops {
		if i > 0 && opKey(ops[i-1].Domain, ops[i-1].Op) >= opKey(s.Domain, s.Op) {
			t.Errorf("Ops not sorted at %s", s.Op)
		}
		if s.MinInputs < 0 || (s.MaxInputs >= 0 && s.MaxInputs < s.MinInputs) ||
			s.MinOutputs < 0 || (s.MaxOutputs >= 0 && s.MaxOutputs < s.MinOutputs) {
			t.Errorf("%s::%s has an impossible arity", s.Domain, s.Op)
		}
	}
	if LookupOp("ai.onnx", "Add") != LookupOp("", "Add") || LookupOp("", "Add") == nil {
		t.Error(`"" and "ai.onnx" must name the same domain`)
	}
	for _, op := range []string{"Add", "Mul", "Max", "Min", "Sum", "And", "Or", "Xor", "Equal"} {
		if !LookupOp("", op).Commutative {
			t.Errorf("%s should be commutative", op)
		}
	}
	for _, op := range []string{"Sub", "Div", "MatMul", "Less", "Pow"} {
		if LookupOp("", op).Commutative {
			t.Errorf("%s must not be commutative", op)
		}
	}
	for _, op := range []string{"Attention", "LayerNorm", "SkipLayerNorm", "RMSNorm", "Gelu", "BiasGelu", "PackTokens", "UnpackTokens"} {
		if s := LookupOp("tfc", op); s == nil || s.Infer == nil {
			t.Errorf("tfc::%s is missing or has no rule", op)
		}
	}
}

// TestRulesNeverPanic runs every rule on a spread of input types (absent,
// unknown, unknown rank, scalars, symbolic and known shapes, shape-tensor
// contents) without attributes, at several opsets. A rule may return an
// error for a contradiction, but must not panic (runRule turns a panic
// into an "internal error").
func TestRulesNeverPanic(t *testing.T) {
	types := []Type{
		{},
		TensorOfUnknownRank(Float),
		TensorOf(Int64),
		TensorOf(Float, Sym("batch")),
		TensorOfSizes(Int64, 1),
		TensorOfSizes(Int64, 3),
		TensorOf(Float, Sym("batch"), Known(3), Known(4)),
		TensorOf(Float, Known(0), UnknownDim(), Sym("s"), Known(1)),
	}
	consts := []*Tensor{nil, Int64Tensor(nil, -1), Int64Tensor(nil, 0, 2, -1), Int64Tensor([]int64{}, 7), Float32Tensor(nil, 0.5, 2)}
	for _, s := range Ops() {
		if s.Infer == nil {
			continue
		}
		maxIn := s.MaxInputs
		if maxIn < 0 {
			maxIn = s.MinInputs + 3
		}
		for nin := s.MinInputs; nin <= maxIn; nin++ {
			for variant := 0; variant < len(types)*len(consts); variant++ {
				for _, opset := range []int64{1, 9, 11, 13, 18, 23} {
					g := NewGraph("g")
					spec := NodeSpec{Domain: s.Domain, Op: s.Op, Outputs: []string{"o0", "o1", "o2"}}
					for i := 0; i < nin; i++ {
						ti := types[(variant+i)%len(types)]
						if ci := consts[(variant/len(types)+i)%len(consts)]; ci != nil && i > 0 {
							spec.Inputs = append(spec.Inputs, g.AddConstant(string(rune('a'+i)), ci))
							continue
						}
						spec.Inputs = append(spec.Inputs, g.AddInput(string(rune('a'+i)), ti))
					}
					n := g.Append(spec)
					ctx := newInferContext(n, opset, nil)
					if _, err := runRule(s, ctx); err != nil && strings.Contains(err.Error(), "internal error") {
						t.Fatalf("%s::%s opset %d inputs %d variant %d: %v", s.Domain, s.Op, opset, nin, variant, err)
					}
				}
			}
		}
	}
}
