package ir

// Parse reads the IR text form written by Print. It is a small
// recursive-descent parser over a tokenizer; errors name line:col and what
// was expected. The grammar (docs/ir-text.md has examples):
//
//	model     = "model" "ir" "=" INT ["producer" "=" STRING STRING] ["domain" "=" STRING]
//	            ["version" "=" INT] opsets
//	            { "doc" "=" STRING | meta | "training_info" BLOB | "configuration" BLOB | function }
//	            [graph] EOF
//	opsets    = "opset" "(" [STRING "=" INT {"," STRING "=" INT}] ")"
//	function  = "function" qname ["overload" "=" STRING] ["attrs" "(" name {"," name} ")"]
//	            ["defaults" attrs] opsets ["doc" "=" STRING] [meta] graph
//	graph     = "graph" ( "none" | STRING "(" [input {"," input}] ")" "{" {stmt} return "}" )
//	input     = decl ["=" constdata]
//	decl      = VALUE ":" type { "info" | "doc" "=" STRING | meta }
//	stmt      = "doc" "=" STRING | meta | "extra" INT BLOB
//	          | "const" VALUE "=" "input"            (a graph input that is also an initializer)
//	          | "const" decl "=" constdata
//	          | node
//	node      = ("(" ")" | out {"," out}) "=" qname "(" [in {"," in}] ")" [attrs]
//	            { "name" "=" STRING | "overload" "=" STRING | "doc" "=" STRING | meta }
//	out       = "_" | decl
//	in        = "_" | VALUE
//	return    = "return" [in {"," in}]
//	constdata = tensor | sparse | data [tprops]   (short form: dtype and dims from the declared type)
//	tensor    = "tensor" ( "none" | DTYPE "[" [INT {"," INT}] "]" data [tprops] )
//	data      = DIGEST | "hex" STRING | "[" [elem {"," elem}] "]"
//	tprops    = "{" { "name" "=" STRING | "doc" "=" STRING | meta | "segment" "=" "[" INT "," INT "]"
//	            | "external" "{" "location" "=" STRING "offset" "=" INT "length" "=" INT ["extra" kvs] "}" } "}"
//	sparse    = "sparse" ( "none" | "(" "[" [INT {"," INT}] "]" ["," "values" "=" tensor] ["," "indices" "=" tensor] ")" )
//	attrs     = "{" [attr {"," attr}] "}"
//	attr      = name "=" avalue ["ref" "=" STRING] ["doc" "=" STRING]
//	avalue    = FLOAT | INT | STRING | tensor | graph | sparse | "type" ("none" | type)
//	          | "[" elem {"," elem} "]" | KIND "[" [elem {"," elem}] "]" | "undefined" | "attrtype" "(" INT ")"
//	KIND      = "floats" | "ints" | "strings" | "tensors" | "graphs" | "sparse_tensors" | "types"
//	type      = ( "?" | DTYPE shape | "sparse" "(" DTYPE shape ")" | "seq" "(" [type] ")"
//	          | "opt" "(" [type] ")" | "map" "(" DTYPE "," [type] ")" ) ["@" STRING]
//	shape     = "[" "*" "]" | "[" [dim {"," dim}] "]"
//	dim       = (INT | IDENT | STRING | "?") ["@" STRING]
//	meta      = "meta" kvs
//	kvs       = "{" [STRING ":" STRING {"," STRING ":" STRING}] "}"
//	qname     = [name "::"] name                       (domain::Op; no domain is ai.onnx)
//	name      = IDENT | STRING
//	DTYPE     = IDENT (f32, i64, ...) | "dtype" "(" INT ")"
//	BLOB      = "b64" STRING                           (base64)
//
// Tokens: IDENT is [A-Za-z_][A-Za-z0-9_.]*; VALUE is % followed by a name
// of [A-Za-z0-9_./:-] not ending in ':' or by a STRING; STRING is a Go
// string literal (\x escapes carry arbitrary bytes); DIGEST is # and hex
// digits; numbers are Go-style decimal ints and floats, with inf, -inf,
// nan and nan(0xBITS) for NaNs with payloads. FLOAT is told from INT by a
// '.', an exponent, inf or nan. "//" starts a comment to the end of the
// line.
//
// Names resolve through enclosing scopes: a value used in a nested graph
// that is not defined there refers to the nearest enclosing definition made
// before the node holding the nested graph. A use before the definition is
// an error.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseError is a syntax or name error in IR text, at a 1-based line and
// byte column.
type ParseError struct {
	Line, Col int
	Msg       string
}

func (e *ParseError) Error() string { return fmt.Sprintf("ir text %d:%d: %s", e.Line, e.Col, e.Msg) }

// maxParseDepth bounds the nesting of types and graphs so that hostile
// input cannot exhaust the stack.
const maxParseDepth = 200

// Parse reads a model from its text form (see Print). Constants printed as
// digests come back as NewDigestTensor tensors, which carry no data.
func Parse(text string) (*Model, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	return p.model()
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tValue  // %name; text is the name, unquoted
	tNumber // text as written
	tString // text is the unquoted string
	tDigest // text is the hex digits
	tPunct
)

type token struct {
	kind      tokKind
	text      string
	line, col int
}

func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tValue:
		return "value " + valueName(t.text)
	case tString:
		return "string " + quote(t.text)
	case tDigest:
		return "digest #" + t.text
	}
	return strconv.Quote(t.text)
}

func lex(src string) ([]token, error) {
	var toks []token
	line, lineStart := 1, 0
	i := 0
	errAt := func(pos int, format string, args ...any) error {
		return &ParseError{Line: line, Col: pos - lineStart + 1, Msg: fmt.Sprintf(format, args...)}
	}
	for i < len(src) {
		c := src[i]
		start := i
		emit := func(k tokKind, text string) {
			toks = append(toks, token{kind: k, text: text, line: line, col: start - lineStart + 1})
		}
		switch {
		case c == '\n':
			i++
			line, lineStart = line+1, i
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case isLetter(c) || c == '_':
			for i < len(src) && (isLetter(src[i]) || isDigit(src[i]) || src[i] == '_' || src[i] == '.') {
				i++
			}
			emit(tIdent, src[start:i])
		case isDigit(c) || (c == '-' && i+1 < len(src) && (isDigit(src[i+1]) || isLetter(src[i+1]))):
			i++
			for i < len(src) {
				d := src[i]
				if isLetter(d) || isDigit(d) || d == '.' || d == '_' ||
					((d == '+' || d == '-') && (src[i-1] == 'e' || src[i-1] == 'E')) {
					i++
					continue
				}
				break
			}
			emit(tNumber, src[start:i])
		case c == '"':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, errAt(start, "%v", err)
			}
			i += n
			emit(tString, s)
		case c == '%':
			i++
			if i < len(src) && src[i] == '"' {
				s, n, err := lexString(src[i:])
				if err != nil {
					return nil, errAt(start, "%v", err)
				}
				i += n
				emit(tValue, s)
				break
			}
			for i < len(src) && isValueNameChar(src[i]) {
				// A ':' belongs to the name only when more name follows,
				// so "%x: f32[]" ends the name before the colon.
				if src[i] == ':' && (i+1 >= len(src) || !isValueNameChar(src[i+1])) {
					break
				}
				i++
			}
			if i == start+1 {
				return nil, errAt(start, "expected a value name after %%")
			}
			emit(tValue, src[start+1:i])
		case c == '#':
			i++
			for i < len(src) && (isDigit(src[i]) || (src[i] >= 'a' && src[i] <= 'f') || (src[i] >= 'A' && src[i] <= 'F')) {
				i++
			}
			if i == start+1 {
				return nil, errAt(start, "expected hex digits of a digest after #")
			}
			emit(tDigest, src[start+1:i])
		case c == ':' && i+1 < len(src) && src[i+1] == ':':
			i += 2
			emit(tPunct, "::")
		case strings.IndexByte("()[]{},=:@?*", c) >= 0:
			i++
			emit(tPunct, string(c))
		default:
			return nil, errAt(start, "unexpected character %q", rune(c))
		}
	}
	toks = append(toks, token{kind: tEOF, line: line, col: i - lineStart + 1})
	return toks, nil
}

// lexString reads a Go string literal at the start of s and returns its
// value and length in bytes.
func lexString(s string) (string, int, error) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\n':
			return "", 0, fmt.Errorf("string literal not terminated before the end of the line")
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", 0, fmt.Errorf("bad string literal %s: %v", s[:i+1], err)
			}
			return v, i + 1, nil
		}
	}
	return "", 0, fmt.Errorf("string literal not terminated")
}

type parser struct {
	toks  []token
	pos   int
	depth int
}

// nameScope maps names to the values defined so far in one graph, chained to
// the enclosing graph's scope.
type nameScope struct {
	g      *Graph
	names  map[string]*Value
	parent *nameScope
}

func (s *nameScope) lookup(name string) *Value {
	for ; s != nil; s = s.parent {
		if v, ok := s.names[name]; ok {
			return v
		}
	}
	return nil
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(k int) token {
	if p.pos+k < len(p.toks) {
		return p.toks[p.pos+k]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &ParseError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) expected(what string) error {
	t := p.peek()
	return p.errAt(t, "expected %s, found %s", what, t.describe())
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) isWord(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.text == s
}

// isKey reports whether the next tokens are `word =`.
func (p *parser) isKey(word string) bool {
	t := p.peekAt(1)
	return p.isWord(word) && t.kind == tPunct && t.text == "="
}

func (p *parser) punct(s string) error {
	if !p.isPunct(s) {
		return p.expected(strconv.Quote(s))
	}
	p.next()
	return nil
}

func (p *parser) word(s string) error {
	if !p.isWord(s) {
		return p.expected(strconv.Quote(s))
	}
	p.next()
	return nil
}

func (p *parser) str() (string, error) {
	if p.peek().kind != tString {
		return "", p.expected("a string")
	}
	return p.next().text, nil
}

// keyStr reads `word = STRING`; the caller has checked isKey(word).
func (p *parser) keyStr() (string, error) {
	p.next()
	p.next()
	return p.str()
}

func (p *parser) int64() (int64, error) {
	t := p.peek()
	if t.kind != tNumber {
		return 0, p.expected("an integer")
	}
	v, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		return 0, p.errAt(t, "expected an integer, found %s", t.describe())
	}
	p.next()
	return v, nil
}

func (p *parser) int32() (int32, error) {
	t := p.peek()
	v, err := p.int64()
	if err != nil {
		return 0, err
	}
	if v != int64(int32(v)) {
		return 0, p.errAt(t, "%d does not fit in 32 bits", v)
	}
	return int32(v), nil
}

// name reads an identifier or a quoted name.
func (p *parser) name(what string) (string, error) {
	t := p.peek()
	if t.kind == tIdent || t.kind == tString {
		p.next()
		return t.text, nil
	}
	return "", p.expected(what)
}

func (p *parser) blob() ([]byte, error) {
	if err := p.word("b64"); err != nil {
		return nil, err
	}
	t := p.peek()
	s, err := p.str()
	if err != nil {
		return nil, err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, p.errAt(t, "bad base64 data: %v", err)
	}
	return b, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxParseDepth {
		return p.errAt(p.peek(), "nesting deeper than %d levels", maxParseDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) model() (*Model, error) {
	m := &Model{}
	if err := p.word("model"); err != nil {
		return nil, err
	}
	if !p.isKey("ir") {
		return nil, p.expected(`"ir="`)
	}
	p.next()
	p.next()
	var err error
	if m.IRVersion, err = p.int64(); err != nil {
		return nil, err
	}
	if p.isKey("producer") {
		if m.ProducerName, err = p.keyStr(); err != nil {
			return nil, err
		}
		if m.ProducerVersion, err = p.str(); err != nil {
			return nil, err
		}
	}
	if p.isKey("domain") {
		if m.Domain, err = p.keyStr(); err != nil {
			return nil, err
		}
	}
	if p.isKey("version") {
		p.next()
		p.next()
		if m.ModelVersion, err = p.int64(); err != nil {
			return nil, err
		}
	}
	if m.Opsets, err = p.opsets(); err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == tEOF:
			return m, nil
		case p.isKey("doc"):
			if m.Doc, err = p.keyStr(); err != nil {
				return nil, err
			}
		case p.isWord("meta"):
			if m.Meta, err = p.meta(); err != nil {
				return nil, err
			}
		case p.isWord("training_info"):
			p.next()
			b, err := p.blob()
			if err != nil {
				return nil, err
			}
			m.TrainingInfo = append(m.TrainingInfo, b)
		case p.isWord("configuration"):
			p.next()
			b, err := p.blob()
			if err != nil {
				return nil, err
			}
			m.Configurations = append(m.Configurations, b)
		case p.isWord("function"):
			f, err := p.function()
			if err != nil {
				return nil, err
			}
			m.Functions = append(m.Functions, f)
		case p.isWord("graph") && m.Graph == nil:
			if m.Graph, err = p.graph(nil, nil); err != nil {
				return nil, err
			}
			if m.Graph == nil {
				return nil, p.errAt(t, "the main graph cannot be none")
			}
		default:
			if m.Graph != nil {
				return nil, p.expected("end of input after the main graph")
			}
			return nil, p.expected(`"doc=", "meta", "training_info", "configuration", "function" or "graph"`)
		}
	}
}

func (p *parser) opsets() ([]OpsetID, error) {
	if err := p.word("opset"); err != nil {
		return nil, err
	}
	if err := p.punct("("); err != nil {
		return nil, err
	}
	var out []OpsetID
	for !p.isPunct(")") {
		if len(out) > 0 {
			if err := p.punct(","); err != nil {
				return nil, err
			}
		}
		d, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.punct("="); err != nil {
			return nil, err
		}
		v, err := p.int64()
		if err != nil {
			return nil, err
		}
		out = append(out, OpsetID{Domain: d, Version: v})
	}
	p.next()
	return out, nil
}

func (p *parser) meta() ([]StringPair, error) {
	if err := p.word("meta"); err != nil {
		return nil, err
	}
	return p.kvs()
}

func (p *parser) kvs() ([]StringPair, error) {
	if err := p.punct("{"); err != nil {
		return nil, err
	}
	var out []StringPair
	for !p.isPunct("}") {
		if len(out) > 0 {
			if err := p.punct(","); err != nil {
				return nil, err
			}
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.punct(":"); err != nil {
			return nil, err
		}
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		out = append(out, StringPair{Key: k, Value: v})
	}
	p.next()
	return out, nil
}

// qname reads "name" or "domain::name".
func (p *parser) qname(what string) (domain, name string, err error) {
	first, err := p.name(what)
	if err != nil {
		return "", "", err
	}
	if !p.isPunct("::") {
		return "", first, nil
	}
	p.next()
	name, err = p.name(what)
	return first, name, err
}

func (p *parser) function() (*Function, error) {
	p.next() // "function"
	f := &Function{}
	var err error
	if f.Domain, f.Name, err = p.qname("a function name"); err != nil {
		return nil, err
	}
	if p.isKey("overload") {
		if f.Overload, err = p.keyStr(); err != nil {
			return nil, err
		}
	}
	if p.isWord("attrs") {
		p.next()
		if err := p.punct("("); err != nil {
			return nil, err
		}
		for !p.isPunct(")") {
			if len(f.AttrNames) > 0 {
				if err := p.punct(","); err != nil {
					return nil, err
				}
			}
			n, err := p.name("an attribute name")
			if err != nil {
				return nil, err
			}
			f.AttrNames = append(f.AttrNames, n)
		}
		p.next()
	}
	if p.isWord("defaults") {
		p.next()
		if f.AttrDefaults, err = p.attrs(nil, nil); err != nil {
			return nil, err
		}
	}
	if f.Opsets, err = p.opsets(); err != nil {
		return nil, err
	}
	if p.isKey("doc") {
		if f.Doc, err = p.keyStr(); err != nil {
			return nil, err
		}
	}
	if p.isWord("meta") {
		if f.Meta, err = p.meta(); err != nil {
			return nil, err
		}
	}
	if f.Body, err = p.graph(nil, nil); err != nil {
		return nil, err
	}
	return f, nil
}

// graph reads a graph block. parent is the enclosing graph (nil for a
// top-level graph) and outer the scope visible at the node holding it.
func (p *parser) graph(parent *Graph, outer *nameScope) (*Graph, error) {
	if err := p.word("graph"); err != nil {
		return nil, err
	}
	if p.isWord("none") {
		p.next()
		return nil, nil
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	name, err := p.str()
	if err != nil {
		return nil, err
	}
	var g *Graph
	if parent == nil {
		g = NewGraph(name)
	} else {
		g = NewSubgraph(name, parent, nil)
	}
	sc := &nameScope{g: g, names: map[string]*Value{}, parent: outer}
	if err := p.punct("("); err != nil {
		return nil, err
	}
	for !p.isPunct(")") {
		if len(g.Inputs) > 0 {
			if err := p.punct(","); err != nil {
				return nil, err
			}
		}
		if err := p.input(g, sc); err != nil {
			return nil, err
		}
	}
	p.next()
	if err := p.punct("{"); err != nil {
		return nil, err
	}
	for !p.isWord("return") {
		if err := p.stmt(g, sc); err != nil {
			return nil, err
		}
	}
	p.next()
	if !p.isPunct("}") {
		for {
			if p.isWord("_") {
				p.next()
				g.Outputs = append(g.Outputs, nil)
			} else {
				v, err := p.use(sc)
				if err != nil {
					return nil, err
				}
				g.AddOutput(v)
			}
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
	}
	if err := p.punct("}"); err != nil {
		return nil, err
	}
	return g, nil
}

// valueDecl is a parsed "%name: type props" before its value exists.
type valueDecl struct {
	tok     token
	name    string
	typ     Type
	hasInfo bool
	doc     string
	meta    []StringPair
}

func (d *valueDecl) apply(v *Value) {
	v.Type, v.HasInfo, v.Doc, v.Meta = d.typ, d.hasInfo, d.doc, d.meta
}

func (p *parser) decl(sc *nameScope) (*valueDecl, error) {
	t := p.peek()
	if t.kind != tValue {
		return nil, p.expected("a value (%name)")
	}
	if t.text == "" {
		return nil, p.errAt(t, "a value's name cannot be empty")
	}
	if _, dup := sc.names[t.text]; dup {
		return nil, p.errAt(t, "value %s is defined twice in graph %q", valueName(t.text), sc.g.Name)
	}
	p.next()
	if err := p.punct(":"); err != nil {
		return nil, err
	}
	d := &valueDecl{tok: t, name: t.text}
	var err error
	if d.typ, err = p.typ(); err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isWord("info"):
			p.next()
			d.hasInfo = true
		case p.isKey("doc"):
			if d.doc, err = p.keyStr(); err != nil {
				return nil, err
			}
		case p.isWord("meta"):
			if d.meta, err = p.meta(); err != nil {
				return nil, err
			}
		default:
			return d, nil
		}
	}
}

func (p *parser) input(g *Graph, sc *nameScope) error {
	d, err := p.decl(sc)
	if err != nil {
		return err
	}
	v := g.AddInput(d.name, d.typ)
	d.apply(v)
	sc.names[d.name] = v
	if p.isPunct("=") {
		p.next()
		if v.Const, v.SparseConst, err = p.constData(d.typ); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) use(sc *nameScope) (*Value, error) {
	t := p.peek()
	if t.kind != tValue {
		return nil, p.expected("a value (%name) or _")
	}
	v := sc.lookup(t.text)
	if v == nil {
		if def, ok := p.laterDefinition(t.text); ok {
			return nil, p.errAt(t, "value %s is used before it is defined (at %d:%d); nodes must come after the producers of their inputs", valueName(t.text), def.line, def.col)
		}
		return nil, p.errAt(t, "value %s is not defined here (values must be defined before they are used, in this graph or an enclosing one)", valueName(t.text))
	}
	p.next()
	return v, nil
}

// laterDefinition finds a definition ("%name:") of name further on, to
// tell a forward reference from a name that does not exist.
func (p *parser) laterDefinition(name string) (token, bool) {
	for i := p.pos + 1; i+1 < len(p.toks); i++ {
		t, next := p.toks[i], p.toks[i+1]
		if t.kind == tValue && t.text == name && next.kind == tPunct && next.text == ":" {
			return t, true
		}
	}
	return token{}, false
}

func (p *parser) stmt(g *Graph, sc *nameScope) error {
	t := p.peek()
	var err error
	switch {
	case t.kind == tEOF:
		return p.expected(`"return" to end graph ` + quote(g.Name))
	case p.isKey("doc"):
		g.Doc, err = p.keyStr()
		return err
	case p.isWord("meta"):
		g.Meta, err = p.meta()
		return err
	case p.isWord("extra"):
		p.next()
		num, err := p.int32()
		if err != nil {
			return err
		}
		b, err := p.blob()
		if err != nil {
			return err
		}
		g.Extras = append(g.Extras, RawField{Number: num, Bytes: b})
		return nil
	case p.isWord("const"):
		p.next()
		return p.constant(g, sc)
	case t.kind == tValue || p.isWord("_") || p.isPunct("("):
		return p.node(g, sc)
	}
	return p.expected("a node, \"const\", \"doc=\", \"meta\", \"extra\" or \"return\"")
}

func (p *parser) constant(g *Graph, sc *nameScope) error {
	t := p.peek()
	if t.kind == tValue && p.peekAt(1).kind == tPunct && p.peekAt(1).text == "=" {
		// const %x = input
		p.next()
		p.next()
		if err := p.word("input"); err != nil {
			return err
		}
		v := sc.names[t.text]
		if v == nil || !v.IsGraphInput() {
			return p.errAt(t, "const %s = input: graph %q has no input of that name", valueName(t.text), g.Name)
		}
		g.Constants = append(g.Constants, v)
		return nil
	}
	d, err := p.decl(sc)
	if err != nil {
		return err
	}
	if err := p.punct("="); err != nil {
		return err
	}
	dense, sparse, err := p.constData(d.typ)
	if err != nil {
		return err
	}
	var v *Value
	if sparse != nil {
		v = g.AddSparseConstant(d.name, sparse)
	} else if dense != nil {
		v = g.AddConstant(d.name, dense)
	} else {
		return p.errAt(d.tok, "constant %s has no data", valueName(d.name))
	}
	d.apply(v)
	sc.names[d.name] = v
	return nil
}

// constData reads a constant's data: a full tensor literal, a sparse
// literal, or the short form whose dtype and dims come from declared.
func (p *parser) constData(declared Type) (*Tensor, *SparseTensor, error) {
	switch {
	case p.isWord("tensor"):
		t, err := p.tensor()
		return t, nil, err
	case p.isWord("sparse"):
		s, err := p.sparse()
		return nil, s, err
	}
	at := p.peek()
	dims, ok := shortFormDims(declared)
	if !ok {
		return nil, nil, p.errAt(at, "short constant data needs a declared tensor type with known dimensions (write \"tensor DTYPE[dims] ...\" instead), not %s", declared)
	}
	t, err := p.tensorData(declared.Elem, dims)
	if err != nil {
		return nil, nil, err
	}
	return t, nil, p.tensorProps(t)
}

// shortFormDims returns the dims of a type the printer writes constant data
// for in short form: exactly Tensor.Type() of some tensor.
func shortFormDims(t Type) ([]int64, bool) {
	if t.Kind != KindTensor || !t.HasShape || t.Denotation != "" {
		return nil, false
	}
	dims := make([]int64, len(t.Shape))
	for i, d := range t.Shape {
		if !d.IsKnown() || d.Denotation != "" {
			return nil, false
		}
		dims[i] = d.Size
	}
	return dims, true
}

func (p *parser) tensor() (*Tensor, error) {
	if err := p.word("tensor"); err != nil {
		return nil, err
	}
	if p.isWord("none") {
		p.next()
		return nil, nil
	}
	dt, err := p.dtype()
	if err != nil {
		return nil, err
	}
	dims, err := p.intList()
	if err != nil {
		return nil, err
	}
	t, err := p.tensorData(dt, dims)
	if err != nil {
		return nil, err
	}
	return t, p.tensorProps(t)
}

func (p *parser) intList() ([]int64, error) {
	if err := p.punct("["); err != nil {
		return nil, err
	}
	out := []int64{}
	for !p.isPunct("]") {
		if len(out) > 0 {
			if err := p.punct(","); err != nil {
				return nil, err
			}
		}
		v, err := p.int64()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	p.next()
	return out, nil
}

func (p *parser) tensorData(dt DataType, dims []int64) (*Tensor, error) {
	at := p.peek()
	n := NumElements(dims)
	if n < 0 {
		return nil, p.errAt(at, "tensor dimensions %v are negative or their product overflows", dims)
	}
	switch {
	case at.kind == tDigest:
		p.next()
		return NewDigestTensor(dt, dims, at.text), nil
	case p.isWord("hex"):
		p.next()
		st := p.peek()
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, p.errAt(st, "bad hex data: %v", err)
		}
		if dt == String {
			return nil, p.errAt(st, "string tensors cannot be written in hex")
		}
		t, err := NewTensor(dt, dims, b)
		if err != nil {
			return nil, p.errAt(st, "%v", err)
		}
		return t, nil
	case p.isPunct("["):
	default:
		return nil, p.expected("tensor data: #digest, hex\"...\" or [values]")
	}
	p.next()
	if dt == String {
		var vals [][]byte
		for !p.isPunct("]") {
			if len(vals) > 0 {
				if err := p.punct(","); err != nil {
					return nil, err
				}
			}
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			vals = append(vals, []byte(s))
		}
		p.next()
		t, err := NewStringTensor(dims, vals)
		if err != nil {
			return nil, p.errAt(at, "%v", err)
		}
		return t, nil
	}
	if !hasReadableElems(dt) {
		return nil, p.errAt(at, "%v data must be written as hex\"...\"", dt)
	}
	var buf []byte
	count := int64(0)
	for !p.isPunct("]") {
		if count > 0 {
			if err := p.punct(","); err != nil {
				return nil, err
			}
		}
		var err error
		if buf, err = p.elem(dt, buf); err != nil {
			return nil, err
		}
		count++
	}
	p.next()
	if count != n {
		return nil, p.errAt(at, "tensor of shape %v needs %d values, found %d", dims, n, count)
	}
	if buf == nil {
		buf = []byte{}
	}
	t, err := NewTensor(dt, dims, buf)
	if err != nil {
		return nil, p.errAt(at, "%v", err)
	}
	return t, nil
}

// elem appends one element of type dt, little-endian, to buf.
func (p *parser) elem(dt DataType, buf []byte) ([]byte, error) {
	le := binary.LittleEndian
	t := p.peek()
	switch dt {
	case Float:
		f, err := p.float32()
		return le.AppendUint32(buf, math.Float32bits(f)), err
	case Double:
		f, err := p.float64()
		return le.AppendUint64(buf, math.Float64bits(f)), err
	case Bool:
		if p.isWord("true") || p.isWord("false") {
			p.next()
			if t.text == "true" {
				return append(buf, 1), nil
			}
			return append(buf, 0), nil
		}
	}
	if t.kind != tNumber {
		return nil, p.expected(fmt.Sprintf("a %v value", dt))
	}
	bits := dt.Bits()
	var u uint64
	var err error
	switch dt {
	case Int8, Int16, Int32, Int64:
		var v int64
		v, err = strconv.ParseInt(t.text, 10, bits)
		u = uint64(v)
	default: // Uint8..Uint64, Bool
		u, err = strconv.ParseUint(t.text, 10, bits)
	}
	if err != nil {
		return nil, p.errAt(t, "expected a %v value, found %s", dt, t.describe())
	}
	p.next()
	for i := 0; i < bits/8; i++ {
		buf = append(buf, byte(u>>(8*i)))
	}
	return buf, nil
}

// isFloatText reports whether a number token is written as a float.
func isFloatText(s string) bool {
	return strings.ContainsAny(s, ".eE") || strings.HasSuffix(s, "inf")
}

func (p *parser) isFloatLiteral() bool {
	t := p.peek()
	return (t.kind == tNumber && isFloatText(t.text)) || p.isWord("inf") || p.isWord("nan")
}

// floatText reads a float token and returns it parsed at the given bit
// size; a nan(0xBITS) returns its bits in payload.
func (p *parser) floatText(bitSize int) (f float64, payload uint64, isPayload bool, err error) {
	t := p.peek()
	if p.isWord("nan") && p.peekAt(1).kind == tPunct && p.peekAt(1).text == "(" {
		p.next()
		p.next()
		bt := p.peek()
		if bt.kind != tNumber {
			return 0, 0, false, p.expected("NaN bits (0x...)")
		}
		u, perr := strconv.ParseUint(bt.text, 0, bitSize)
		if perr != nil {
			return 0, 0, false, p.errAt(bt, "bad NaN bits %s", bt.text)
		}
		p.next()
		if err := p.punct(")"); err != nil {
			return 0, 0, false, err
		}
		return 0, u, true, nil
	}
	if t.kind != tNumber && !p.isWord("inf") && !p.isWord("nan") {
		return 0, 0, false, p.expected("a number")
	}
	v, perr := strconv.ParseFloat(t.text, bitSize)
	if perr != nil || (t.kind == tNumber && strings.HasPrefix(strings.TrimPrefix(t.text, "-"), "0x")) {
		return 0, 0, false, p.errAt(t, "expected a number, found %s", t.describe())
	}
	p.next()
	return v, 0, false, nil
}

func (p *parser) float32() (float32, error) {
	f, bits, isBits, err := p.floatText(32)
	switch {
	case err != nil:
		return 0, err
	case isBits:
		return math.Float32frombits(uint32(bits)), nil
	case f != f:
		return math.Float32frombits(canonicalNaN32), nil
	}
	return float32(f), nil
}

func (p *parser) float64() (float64, error) {
	f, bits, isBits, err := p.floatText(64)
	switch {
	case err != nil:
		return 0, err
	case isBits:
		return math.Float64frombits(bits), nil
	case f != f:
		return math.Float64frombits(canonicalNaN64), nil
	}
	return f, nil
}

func (p *parser) tensorProps(t *Tensor) error {
	if t == nil || !p.isPunct("{") {
		return nil
	}
	p.next()
	var err error
	for !p.isPunct("}") {
		switch {
		case p.isKey("name"):
			t.Name, err = p.keyStr()
		case p.isKey("doc"):
			t.Doc, err = p.keyStr()
		case p.isWord("meta"):
			t.Meta, err = p.meta()
		case p.isKey("segment"):
			p.next()
			p.next()
			var seg []int64
			at := p.peek()
			if seg, err = p.intList(); err == nil && len(seg) != 2 {
				err = p.errAt(at, "segment needs [begin,end], found %d numbers", len(seg))
			}
			if err == nil {
				t.Segment = &[2]int64{seg[0], seg[1]}
			}
		case p.isWord("external"):
			p.next()
			t.External, err = p.external()
		default:
			return p.expected(`a tensor property ("name=", "doc=", "meta", "segment=", "external") or "}"`)
		}
		if err != nil {
			return err
		}
	}
	p.next()
	return nil
}

func (p *parser) external() (*ExternalRef, error) {
	e := &ExternalRef{}
	if err := p.punct("{"); err != nil {
		return nil, err
	}
	var err error
	if !p.isKey("location") {
		return nil, p.expected(`"location="`)
	}
	if e.Location, err = p.keyStr(); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{"offset", &e.Offset}, {"length", &e.Length}} {
		if !p.isKey(f.key) {
			return nil, p.expected(strconv.Quote(f.key + "="))
		}
		p.next()
		p.next()
		if *f.dst, err = p.int64(); err != nil {
			return nil, err
		}
	}
	if p.isWord("extra") {
		p.next()
		if e.Extra, err = p.kvs(); err != nil {
			return nil, err
		}
	}
	return e, p.punct("}")
}

func (p *parser) sparse() (*SparseTensor, error) {
	if err := p.word("sparse"); err != nil {
		return nil, err
	}
	if p.isWord("none") {
		p.next()
		return nil, nil
	}
	if err := p.punct("("); err != nil {
		return nil, err
	}
	s := &SparseTensor{}
	var err error
	if s.Dims, err = p.intList(); err != nil {
		return nil, err
	}
	for p.isPunct(",") {
		p.next()
		switch {
		case p.isKey("values") && s.Values == nil:
			p.next()
			p.next()
			s.Values, err = p.tensor()
		case p.isKey("indices") && s.Indices == nil:
			p.next()
			p.next()
			s.Indices, err = p.tensor()
		default:
			return nil, p.expected(`"values=" or "indices="`)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, p.punct(")")
}

func (p *parser) dtype() (DataType, error) {
	t := p.peek()
	if t.kind != tIdent {
		return Undefined, p.expected("an element type (f32, i64, ...)")
	}
	if t.text == "dtype" && p.peekAt(1).kind == tPunct && p.peekAt(1).text == "(" {
		p.next()
		p.next()
		n, err := p.int32()
		if err != nil {
			return Undefined, err
		}
		return DataType(n), p.punct(")")
	}
	dt, ok := dtypeByShort[t.text]
	if !ok {
		return Undefined, p.errAt(t, "unknown element type %q", t.text)
	}
	p.next()
	return dt, nil
}

func (p *parser) typ() (Type, error) {
	if err := p.enter(); err != nil {
		return Type{}, err
	}
	defer p.leave()
	var t Type
	var err error
	inner := func() error {
		if p.isPunct(")") {
			return nil
		}
		in, err := p.typ()
		if err != nil {
			return err
		}
		t.Inner = &in
		return nil
	}
	switch {
	case p.isPunct("?"):
		p.next()
	case p.isWord("sparse") || p.isWord("seq") || p.isWord("opt") || p.isWord("map"):
		kw := p.next().text
		if err := p.punct("("); err != nil {
			return t, err
		}
		switch kw {
		case "sparse":
			t.Kind = KindSparseTensor
			if t.Elem, err = p.dtype(); err == nil {
				err = p.shape(&t)
			}
		case "seq", "opt":
			t.Kind = KindSequence
			if kw == "opt" {
				t.Kind = KindOptional
			}
			err = inner()
		case "map":
			t.Kind = KindMap
			if t.Elem, err = p.dtype(); err == nil {
				if err = p.punct(","); err == nil {
					err = inner()
				}
			}
		}
		if err != nil {
			return t, err
		}
		if err := p.punct(")"); err != nil {
			return t, err
		}
	case p.peek().kind == tIdent:
		t.Kind = KindTensor
		if t.Elem, err = p.dtype(); err != nil {
			return t, err
		}
		if err := p.shape(&t); err != nil {
			return t, err
		}
	default:
		return t, p.expected("a type")
	}
	if p.isPunct("@") {
		p.next()
		if t.Denotation, err = p.str(); err != nil {
			return t, err
		}
	}
	return t, nil
}

func (p *parser) shape(t *Type) error {
	if err := p.punct("["); err != nil {
		return err
	}
	if p.isPunct("*") {
		p.next()
		return p.punct("]")
	}
	t.HasShape = true
	for !p.isPunct("]") {
		if len(t.Shape) > 0 {
			if err := p.punct(","); err != nil {
				return err
			}
		}
		tok := p.peek()
		var d Dim
		switch {
		case p.isPunct("?"):
			d = UnknownDim()
		case tok.kind == tIdent || (tok.kind == tString && tok.text != ""):
			d = Sym(tok.text)
		case tok.kind == tNumber:
			n, err := strconv.ParseInt(tok.text, 10, 64)
			if err != nil || n < 0 {
				return p.errAt(tok, "expected a dimension size >= 0, found %s", tok.describe())
			}
			d = Known(n)
		default:
			return p.expected("a dimension (size, symbol or ?)")
		}
		p.next()
		if p.isPunct("@") {
			p.next()
			var err error
			if d.Denotation, err = p.str(); err != nil {
				return err
			}
		}
		t.Shape = append(t.Shape, d)
	}
	p.next()
	return nil
}

func (p *parser) node(g *Graph, sc *nameScope) error {
	var outs []*valueDecl // nil entries are omitted outputs
	if p.isPunct("(") {
		p.next()
		if err := p.punct(")"); err != nil {
			return err
		}
	} else {
		for {
			if p.isWord("_") {
				p.next()
				outs = append(outs, nil)
			} else {
				d, err := p.decl(sc)
				if err != nil {
					return err
				}
				for _, o := range outs {
					if o != nil && o.name == d.name {
						return p.errAt(d.tok, "value %s is defined twice in graph %q", valueName(d.name), g.Name)
					}
				}
				outs = append(outs, d)
			}
			if !p.isPunct(",") {
				break
			}
			p.next()
		}
	}
	if err := p.punct("="); err != nil {
		return err
	}
	spec := NodeSpec{}
	var err error
	if spec.Domain, spec.Op, err = p.qname("an op type"); err != nil {
		return err
	}
	if err := p.punct("("); err != nil {
		return err
	}
	for !p.isPunct(")") {
		if len(spec.Inputs) > 0 {
			if err := p.punct(","); err != nil {
				return err
			}
		}
		if p.isWord("_") {
			p.next()
			spec.Inputs = append(spec.Inputs, nil)
			continue
		}
		v, err := p.use(sc)
		if err != nil {
			return err
		}
		spec.Inputs = append(spec.Inputs, v)
	}
	p.next()
	if p.isPunct("{") {
		if spec.Attrs, err = p.attrs(g, sc); err != nil {
			return err
		}
	}
	var overload, doc string
	var meta []StringPair
	for done := false; !done; {
		switch {
		case p.isKey("name"):
			spec.Name, err = p.keyStr()
		case p.isKey("overload"):
			overload, err = p.keyStr()
		case p.isKey("doc"):
			doc, err = p.keyStr()
		case p.isWord("meta"):
			meta, err = p.meta()
		default:
			done = true
		}
		if err != nil {
			return err
		}
	}
	for _, d := range outs {
		if d == nil {
			spec.Outputs = append(spec.Outputs, "")
			spec.Types = append(spec.Types, Type{})
			continue
		}
		spec.Outputs = append(spec.Outputs, d.name)
		spec.Types = append(spec.Types, d.typ)
	}
	n := g.NewNode(spec)
	n.Overload, n.Doc, n.Meta = overload, doc, meta
	for i, d := range outs {
		if d != nil {
			d.apply(n.Outputs[i])
			sc.names[d.name] = n.Outputs[i]
		}
	}
	for _, a := range n.Attrs {
		for _, sg := range a.Subgraphs() {
			sg.ParentNode = n
		}
	}
	g.Nodes = append(g.Nodes, n)
	return nil
}

// attrs reads "{a=..., b=...}". g and sc are the graph and scope that
// nested graphs see (nil for function attribute defaults).
func (p *parser) attrs(g *Graph, sc *nameScope) ([]*Attr, error) {
	if err := p.punct("{"); err != nil {
		return nil, err
	}
	var out []*Attr
	for !p.isPunct("}") {
		if len(out) > 0 {
			if err := p.punct(","); err != nil {
				return nil, err
			}
		}
		a, err := p.attr(g, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	p.next()
	return out, nil
}

var listKinds = map[string]AttrType{
	"floats": AttrFloats, "ints": AttrInts, "strings": AttrStrings, "tensors": AttrTensors,
	"graphs": AttrGraphs, "sparse_tensors": AttrSparseTensors, "types": AttrTypeProtos,
}

func (p *parser) attr(g *Graph, sc *nameScope) (*Attr, error) {
	name, err := p.name("an attribute name")
	if err != nil {
		return nil, err
	}
	a := &Attr{Name: name}
	if err := p.punct("="); err != nil {
		return nil, err
	}
	if err := p.attrValue(a, g, sc); err != nil {
		// Say which attribute (of which enclosing attributes, for nested
		// graphs) the problem is in; the position stays first.
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Msg = fmt.Sprintf("in attribute %q: %s", name, pe.Msg)
		}
		return nil, err
	}
	if p.isKey("ref") {
		if a.RefAttrName, err = p.keyStr(); err != nil {
			return nil, err
		}
	}
	if p.isKey("doc") {
		if a.Doc, err = p.keyStr(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (p *parser) attrValue(a *Attr, g *Graph, sc *nameScope) error {
	t := p.peek()
	var err error
	switch {
	case p.isFloatLiteral():
		a.Type = AttrFloat
		a.F, err = p.float32()
	case t.kind == tNumber:
		a.Type = AttrInt
		a.I, err = p.int64()
	case t.kind == tString:
		a.Type = AttrString
		a.S = []byte(p.next().text)
	case p.isWord("tensor"):
		a.Type = AttrTensor
		a.T, err = p.tensor()
	case p.isWord("graph"):
		a.Type = AttrGraph
		a.G, err = p.graph(g, sc)
	case p.isWord("sparse"):
		a.Type = AttrSparseTensor
		a.Sparse, err = p.sparse()
	case p.isWord("type"):
		p.next()
		a.Type = AttrTypeProto
		if p.isWord("none") {
			p.next()
			return nil
		}
		var tp Type
		tp, err = p.typ()
		a.TypeP = &tp
	case p.isWord("undefined"):
		p.next()
		a.Type = AttrUndefined
	case p.isWord("attrtype"):
		p.next()
		if err := p.punct("("); err != nil {
			return err
		}
		var n int32
		if n, err = p.int32(); err != nil {
			return err
		}
		a.Type = AttrType(n)
		err = p.punct(")")
	case t.kind == tIdent && listKinds[t.text] != 0:
		p.next()
		return p.list(a, listKinds[t.text], g, sc)
	case p.isPunct("["):
		return p.list(a, AttrUndefined, g, sc)
	default:
		return p.expected("an attribute value")
	}
	return err
}

// list reads "[e, ...]" into a; kind is the list's type when a prefix
// named it, else the first element decides.
func (p *parser) list(a *Attr, kind AttrType, g *Graph, sc *nameScope) error {
	if err := p.punct("["); err != nil {
		return err
	}
	if kind == AttrUndefined {
		t := p.peek()
		switch {
		case p.isFloatLiteral():
			kind = AttrFloats
		case t.kind == tNumber:
			kind = AttrInts
		case t.kind == tString:
			kind = AttrStrings
		case p.isWord("tensor"):
			kind = AttrTensors
		case p.isWord("graph"):
			kind = AttrGraphs
		case p.isWord("sparse"):
			kind = AttrSparseTensors
		case p.isWord("type"):
			kind = AttrTypeProtos
		case p.isPunct("]"):
			return p.errAt(t, "an empty list needs its kind written before it (ints[], floats[], strings[], ...)")
		default:
			return p.expected("a list element")
		}
	}
	a.Type = kind
	for i := 0; !p.isPunct("]"); i++ {
		if i > 0 {
			if err := p.punct(","); err != nil {
				return err
			}
		}
		var err error
		switch kind {
		case AttrFloats:
			var f float32
			f, err = p.float32()
			a.Floats = append(a.Floats, f)
		case AttrInts:
			var v int64
			v, err = p.int64()
			a.Ints = append(a.Ints, v)
		case AttrStrings:
			var s string
			s, err = p.str()
			a.Strings = append(a.Strings, []byte(s))
		case AttrTensors:
			var t *Tensor
			t, err = p.tensor()
			a.Tensors = append(a.Tensors, t)
		case AttrGraphs:
			var sg *Graph
			at := p.peek()
			sg, err = p.graph(g, sc)
			if err == nil && sg == nil {
				// Code walking nested graphs (Walk, Verify) assumes every
				// entry is a graph, as it always is in ONNX.
				return p.errAt(at, "a graphs list cannot hold \"graph none\"")
			}
			a.Graphs = append(a.Graphs, sg)
		case AttrSparseTensors:
			var s *SparseTensor
			s, err = p.sparse()
			a.Sparses = append(a.Sparses, s)
		case AttrTypeProtos:
			if err = p.word("type"); err != nil {
				return err
			}
			if p.isWord("none") {
				p.next()
				a.TypePs = append(a.TypePs, nil)
				continue
			}
			var tp Type
			tp, err = p.typ()
			a.TypePs = append(a.TypePs, &tp)
		}
		if err != nil {
			return err
		}
	}
	p.next()
	return nil
}
