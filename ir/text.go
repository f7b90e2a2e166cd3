package ir

// The IR text form: a deterministic, human-reviewable printing of a whole
// model that Parse reads back. The grammar is documented in parse.go and in
// docs/ir-text.md; the printer and the parser must change together.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// PrintOptions controls how much constant data the text form shows.
type PrintOptions struct {
	// InlineLimit: constants (and attribute tensors) with at most this many
	// elements print their values inline; larger ones print as a digest
	// (Tensor.Hash()). Default (0) means 16.
	InlineLimit int
	// FullData prints every constant's data in full (values, or hex bytes
	// for types without a readable form), for exact round trips of small
	// models.
	FullData bool
}

const defaultInlineLimit = 16

// Print returns the text form of m with default options.
func Print(m *Model) string { return PrintWith(m, PrintOptions{}) }

// PrintWith returns the text form of m.
func PrintWith(m *Model, o PrintOptions) string {
	p := newPrinter(o)
	p.model(m)
	return p.b.String()
}

// PrintGraph returns the text form of one graph (the `graph "name" (...)
// {...}` block) with default options.
func PrintGraph(g *Graph) string { return PrintGraphWith(g, PrintOptions{}) }

// PrintGraphWith returns the text form of one graph.
func PrintGraphWith(g *Graph, o PrintOptions) string {
	p := newPrinter(o)
	p.graph(g, "")
	p.b.WriteByte('\n')
	return p.b.String()
}

type printer struct {
	b   strings.Builder
	opt PrintOptions
}

func newPrinter(o PrintOptions) *printer {
	if o.InlineLimit <= 0 {
		o.InlineLimit = defaultInlineLimit
	}
	return &printer{opt: o}
}

func (p *printer) str(s string) { p.b.WriteString(s) }

func (p *printer) model(m *Model) {
	if m == nil {
		return
	}
	fmt.Fprintf(&p.b, "model ir=%d", m.IRVersion)
	if m.ProducerName != "" || m.ProducerVersion != "" {
		fmt.Fprintf(&p.b, " producer=%s %s", quote(m.ProducerName), quote(m.ProducerVersion))
	}
	if m.Domain != "" {
		p.str(" domain=" + quote(m.Domain))
	}
	if m.ModelVersion != 0 {
		fmt.Fprintf(&p.b, " version=%d", m.ModelVersion)
	}
	p.str(" ")
	p.opsets(m.Opsets)
	p.str("\n")
	if m.Doc != "" {
		p.str("doc=" + quote(m.Doc) + "\n")
	}
	if len(m.Meta) > 0 {
		p.meta(m.Meta)
		p.str("\n")
	}
	for _, t := range m.TrainingInfo {
		p.str("training_info " + blob(t) + "\n")
	}
	for _, c := range m.Configurations {
		p.str("configuration " + blob(c) + "\n")
	}
	for _, f := range m.Functions {
		p.function(f)
	}
	if m.Graph != nil {
		p.graph(m.Graph, "")
		p.str("\n")
	}
}

func (p *printer) opsets(ops []OpsetID) {
	p.str("opset(")
	for i, o := range ops {
		if i > 0 {
			p.str(", ")
		}
		fmt.Fprintf(&p.b, "%s=%d", quote(o.Domain), o.Version)
	}
	p.str(")")
}

func (p *printer) function(f *Function) {
	if f == nil {
		return
	}
	p.str("function " + qualifiedName(f.Domain, f.Name))
	if f.Overload != "" {
		p.str(" overload=" + quote(f.Overload))
	}
	if len(f.AttrNames) > 0 {
		p.str(" attrs(")
		for i, a := range f.AttrNames {
			if i > 0 {
				p.str(", ")
			}
			p.str(identOrQuote(a))
		}
		p.str(")")
	}
	if len(f.AttrDefaults) > 0 {
		p.str(" defaults")
		p.attrs(f.AttrDefaults, "")
	}
	p.str(" ")
	p.opsets(f.Opsets)
	if f.Doc != "" {
		p.str(" doc=" + quote(f.Doc))
	}
	if len(f.Meta) > 0 {
		p.str(" ")
		p.meta(f.Meta)
	}
	p.str(" ")
	p.graph(f.Body, "")
	p.str("\n")
}

// graph prints a graph block. ind is the indentation of the line the block
// starts on; statements are indented one step more.
func (p *printer) graph(g *Graph, ind string) {
	if g == nil {
		p.str("graph none")
		return
	}
	body := ind + "  "
	p.str("graph " + quote(g.Name) + " (")
	for i, in := range g.Inputs {
		if i > 0 {
			p.str(", ")
		}
		p.valueDecl(in)
		if in != nil && (in.Const != nil || in.SparseConst != nil) {
			p.str(" = ")
			p.constBody(in, body)
		}
	}
	p.str(") {\n")
	if g.Doc != "" {
		p.str(body + "doc=" + quote(g.Doc) + "\n")
	}
	if len(g.Meta) > 0 {
		p.str(body)
		p.meta(g.Meta)
		p.str("\n")
	}
	for _, x := range g.Extras {
		fmt.Fprintf(&p.b, "%sextra %d %s\n", body, x.Number, blob(x.Bytes))
	}
	for _, c := range g.Constants {
		if c == nil {
			continue
		}
		p.str(body + "const ")
		if c.IsGraphInput() && c.graph == g {
			p.str(valueName(c.Name) + " = input\n")
			continue
		}
		p.valueDecl(c)
		p.str(" = ")
		p.constBody(c, body)
		p.str("\n")
	}
	for _, n := range g.Nodes {
		p.str(body)
		p.node(n, body)
		p.str("\n")
	}
	p.str(body + "return")
	for i, o := range g.Outputs {
		if i > 0 {
			p.str(",")
		}
		p.str(" ")
		if o == nil {
			p.str("_")
		} else {
			p.str(valueName(o.Name))
		}
	}
	p.str("\n" + ind + "}")
}

// valueDecl prints "%name: type" and the value's own properties.
func (p *printer) valueDecl(v *Value) {
	if v == nil {
		p.str("_")
		return
	}
	p.str(valueName(v.Name) + ": ")
	writeTypeText(&p.b, v.Type)
	if v.HasInfo {
		p.str(" info")
	}
	if v.Doc != "" {
		p.str(" doc=" + quote(v.Doc))
	}
	if len(v.Meta) > 0 {
		p.str(" ")
		p.meta(v.Meta)
	}
}

// constBody prints a constant's data: the short form (data only) when the
// value's type is exactly the tensor's, else a full tensor literal.
func (p *printer) constBody(v *Value, ind string) {
	if v.SparseConst != nil {
		p.sparse(v.SparseConst)
		return
	}
	t := v.Const
	if t == nil {
		p.tensor(nil)
		return
	}
	if v.Type.Equal(t.Type()) && t.NumElements() >= 0 {
		p.tensorData(t)
		p.tensorProps(t)
		return
	}
	p.tensor(t)
}

func (p *printer) node(n *Node, ind string) {
	if len(n.Outputs) == 0 {
		p.str("()")
	}
	for i, o := range n.Outputs {
		if i > 0 {
			p.str(", ")
		}
		p.valueDecl(o)
	}
	p.str(" = " + qualifiedName(n.Domain, n.Op) + "(")
	for i, in := range n.Inputs {
		if i > 0 {
			p.str(", ")
		}
		if in == nil {
			p.str("_")
		} else {
			p.str(valueName(in.Name))
		}
	}
	p.str(")")
	if len(n.Attrs) > 0 {
		p.str(" ")
		p.attrs(n.Attrs, ind)
	}
	if n.Name != "" {
		p.str(" name=" + quote(n.Name))
	}
	if n.Overload != "" {
		p.str(" overload=" + quote(n.Overload))
	}
	if n.Doc != "" {
		p.str(" doc=" + quote(n.Doc))
	}
	if len(n.Meta) > 0 {
		p.str(" ")
		p.meta(n.Meta)
	}
}

func (p *printer) attrs(as []*Attr, ind string) {
	p.str("{")
	first := true
	for _, a := range as {
		if a == nil {
			continue
		}
		if !first {
			p.str(", ")
		}
		first = false
		p.attr(a, ind)
	}
	p.str("}")
}

func (p *printer) attr(a *Attr, ind string) {
	p.str(identOrQuote(a.Name) + "=")
	sub := ind + "  "
	switch a.Type {
	case AttrFloat:
		p.str(formatFloat32(a.F))
	case AttrInt:
		p.str(strconv.FormatInt(a.I, 10))
	case AttrString:
		p.str(quoteBytes(a.S))
	case AttrTensor:
		p.tensor(a.T)
	case AttrGraph:
		p.graph(a.G, sub)
	case AttrSparseTensor:
		p.sparse(a.Sparse)
	case AttrTypeProto:
		p.str("type ")
		if a.TypeP == nil {
			p.str("none")
		} else {
			writeTypeText(&p.b, *a.TypeP)
		}
	case AttrFloats:
		p.list("floats", len(a.Floats), func(i int) { p.str(formatFloat32(a.Floats[i])) })
	case AttrInts:
		p.list("ints", len(a.Ints), func(i int) { p.str(strconv.FormatInt(a.Ints[i], 10)) })
	case AttrStrings:
		p.list("strings", len(a.Strings), func(i int) { p.str(quoteBytes(a.Strings[i])) })
	case AttrTensors:
		p.list("tensors", len(a.Tensors), func(i int) { p.tensor(a.Tensors[i]) })
	case AttrGraphs:
		p.list("graphs", len(a.Graphs), func(i int) { p.graph(a.Graphs[i], sub) })
	case AttrSparseTensors:
		p.list("sparse_tensors", len(a.Sparses), func(i int) { p.sparse(a.Sparses[i]) })
	case AttrTypeProtos:
		p.list("types", len(a.TypePs), func(i int) {
			p.str("type ")
			if a.TypePs[i] == nil {
				p.str("none")
			} else {
				writeTypeText(&p.b, *a.TypePs[i])
			}
		})
	case AttrUndefined:
		p.str("undefined")
	default:
		fmt.Fprintf(&p.b, "attrtype(%d)", int32(a.Type))
	}
	if a.RefAttrName != "" {
		p.str(" ref=" + quote(a.RefAttrName))
	}
	if a.Doc != "" {
		p.str(" doc=" + quote(a.Doc))
	}
}

// list prints "[e0, e1, ...]", or "kind[]" when empty so that the parser
// knows the attribute's type.
func (p *printer) list(kind string, n int, elem func(int)) {
	if n == 0 {
		p.str(kind + "[]")
		return
	}
	p.str("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			p.str(", ")
		}
		elem(i)
	}
	p.str("]")
}

// tensor prints a full tensor literal: "tensor f32[2,3] DATA {props}".
func (p *printer) tensor(t *Tensor) {
	if t == nil {
		p.str("tensor none")
		return
	}
	p.str("tensor " + t.DType.String() + "[")
	for i, d := range t.Dims {
		if i > 0 {
			p.str(",")
		}
		p.str(strconv.FormatInt(d, 10))
	}
	p.str("] ")
	p.tensorData(t)
	p.tensorProps(t)
}

func (p *printer) sparse(s *SparseTensor) {
	if s == nil {
		p.str("sparse none")
		return
	}
	p.str("sparse([")
	for i, d := range s.Dims {
		if i > 0 {
			p.str(",")
		}
		p.str(strconv.FormatInt(d, 10))
	}
	p.str("]")
	if s.Values != nil {
		p.str(", values=")
		p.tensor(s.Values)
	}
	if s.Indices != nil {
		p.str(", indices=")
		p.tensor(s.Indices)
	}
	p.str(")")
}

// tensorData prints "#digest", "[v, ...]" or hex"..." for t's data.
func (p *printer) tensorData(t *Tensor) {
	n := t.NumElements()
	if !t.HasData() || (!p.opt.FullData && n > int64(p.opt.InlineLimit)) || n < 0 {
		p.str("#" + t.Hash())
		return
	}
	if t.DType == String {
		p.list("", len(t.Strings), func(i int) { p.str(quoteBytes(t.Strings[i])) })
		return
	}
	if int64(len(t.data)) != t.DType.ByteSize(n) || !hasReadableElems(t.DType) {
		p.str("hex" + strconv.Quote(hex.EncodeToString(t.data)))
		return
	}
	p.str("[")
	for i := int64(0); i < n; i++ {
		if i > 0 {
			p.str(", ")
		}
		p.str(formatElem(t.DType, t.data, i))
	}
	p.str("]")
}

func (p *printer) tensorProps(t *Tensor) {
	if t.Name == "" && t.Doc == "" && len(t.Meta) == 0 && t.Segment == nil && t.External == nil {
		return
	}
	var parts []string
	if t.Name != "" {
		parts = append(parts, "name="+quote(t.Name))
	}
	if t.Doc != "" {
		parts = append(parts, "doc="+quote(t.Doc))
	}
	if len(t.Meta) > 0 {
		parts = append(parts, metaText(t.Meta))
	}
	if t.Segment != nil {
		parts = append(parts, fmt.Sprintf("segment=[%d,%d]", t.Segment[0], t.Segment[1]))
	}
	if e := t.External; e != nil {
		s := fmt.Sprintf("external{location=%s offset=%d length=%d", quote(e.Location), e.Offset, e.Length)
		if len(e.Extra) > 0 {
			s += " extra" + strings.TrimPrefix(metaText(e.Extra), "meta")
		}
		parts = append(parts, s+"}")
	}
	p.str(" {" + strings.Join(parts, " ") + "}")
}

func (p *printer) meta(kv []StringPair) { p.str(metaText(kv)) }

func metaText(kv []StringPair) string {
	var b strings.Builder
	b.WriteString("meta{")
	for i, e := range kv {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(e.Key) + ": " + quote(e.Value))
	}
	b.WriteString("}")
	return b.String()
}

// hasReadableElems reports whether the printer writes dt's elements as
// numbers; other types (float16, bfloat16, float8, sub-byte and complex
// types) print their stored bytes in hex, which round-trips exactly.
func hasReadableElems(dt DataType) bool {
	switch dt {
	case Float, Double, Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64, Bool:
		return true
	}
	return false
}

func formatElem(dt DataType, b []byte, i int64) string {
	le := binary.LittleEndian
	switch dt {
	case Float:
		return formatFloat32(math.Float32frombits(le.Uint32(b[4*i:])))
	case Double:
		return formatFloat64(math.Float64frombits(le.Uint64(b[8*i:])))
	case Int8:
		return strconv.FormatInt(int64(int8(b[i])), 10)
	case Int16:
		return strconv.FormatInt(int64(int16(le.Uint16(b[2*i:]))), 10)
	case Int32:
		return strconv.FormatInt(int64(int32(le.Uint32(b[4*i:]))), 10)
	case Int64:
		return strconv.FormatInt(int64(le.Uint64(b[8*i:])), 10)
	case Uint8:
		return strconv.FormatUint(uint64(b[i]), 10)
	case Uint16:
		return strconv.FormatUint(uint64(le.Uint16(b[2*i:])), 10)
	case Uint32:
		return strconv.FormatUint(uint64(le.Uint32(b[4*i:])), 10)
	case Uint64:
		return strconv.FormatUint(le.Uint64(b[8*i:]), 10)
	case Bool:
		switch b[i] {
		case 0:
			return "false"
		case 1:
			return "true"
		}
		return strconv.FormatUint(uint64(b[i]), 10)
	}
	return "?"
}

// Canonical quiet NaNs print as "nan"; any other NaN prints its bits so
// that payloads survive a round trip.
const (
	canonicalNaN32 = 0x7fc00000
	canonicalNaN64 = 0x7ff8000000000000
)

// formatFloat32 prints the shortest text that parses back to exactly f,
// always marked as a float (a '.', an exponent, inf or nan) so that float
// and int attributes stay distinct.
func formatFloat32(f float32) string {
	if f != f {
		bits := math.Float32bits(f)
		if bits == canonicalNaN32 {
			return "nan"
		}
		return fmt.Sprintf("nan(0x%08x)", bits)
	}
	return markFloat(strconv.FormatFloat(float64(f), 'g', -1, 32))
}

func formatFloat64(f float64) string {
	if f != f {
		bits := math.Float64bits(f)
		if bits == canonicalNaN64 {
			return "nan"
		}
		return fmt.Sprintf("nan(0x%016x)", bits)
	}
	return markFloat(strconv.FormatFloat(f, 'g', -1, 64))
}

func markFloat(s string) string {
	switch s {
	case "+Inf":
		return "inf"
	case "-Inf":
		return "-inf"
	}
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// writeTypeText writes t in the IR text form (see writeType).
func writeTypeText(b *strings.Builder, t Type) { writeType(b, t, true) }

// isIdent reports whether s prints bare where the grammar has an
// identifier (op types, domains, attribute names, dimension symbols):
// [A-Za-z_][A-Za-z0-9_.]*.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || c == '_' || (i > 0 && (isDigit(c) || c == '.'))) {
			return false
		}
	}
	return true
}

// isSimpleValueName reports whether a value name prints bare after '%':
// characters from [A-Za-z0-9_./:-], not ending in ':' (so "%x: f32[]"
// stays unambiguous while PyTorch's "onnx::Gather_12" needs no quotes).
func isSimpleValueName(s string) bool {
	if s == "" || s[len(s)-1] == ':' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isValueNameChar(s[i]) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isValueNameChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '_' || c == '.' || c == '/' || c == ':' || c == '-'
}

func valueName(s string) string {
	if isSimpleValueName(s) {
		return "%" + s
	}
	return "%" + quote(s)
}

func identOrQuote(s string) string {
	if isIdent(s) {
		return s
	}
	return quote(s)
}

// qualifiedName prints "Op" for the default domain and "domain::Op"
// otherwise.
func qualifiedName(domain, name string) string {
	if domain == "" {
		return identOrQuote(name)
	}
	return identOrQuote(domain) + "::" + identOrQuote(name)
}

// quote writes a Go-syntax string literal; invalid UTF-8 bytes become \x
// escapes, which strconv.Unquote restores byte for byte.
func quote(s string) string { return strconv.Quote(s) }

func quoteBytes(b []byte) string { return strconv.Quote(string(b)) }

func blob(b []byte) string { return "b64" + strconv.Quote(base64.StdEncoding.EncodeToString(b)) }
