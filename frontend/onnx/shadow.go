package onnx

import (
	"fmt"
	"io"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
)

// Why a shadow copy: protobuf-go copies every bytes field on Unmarshal, so
// unmarshaling a 1.3 GB model directly would hold the weights twice. We
// walk the wire format first and build a compact copy of the message in
// which every large TensorProto.raw_data is replaced by an unknown field
// (markerField) holding an index into a side table of views into the
// original buffer. proto.Unmarshal then only copies the small remainder, and
// the decoder resolves the markers back to views (decoder.rawData).

const (
	// markerField is the field number of the stand-in for raw_data: the
	// largest legal field number, unused by onnx.proto.
	markerField protowire.Number = 1<<29 - 1
	// inlineRawLimit is the largest raw_data kept inline in the shadow
	// (copied by protobuf); anything larger becomes a view.
	inlineRawLimit = 64
	// maxMessageDepth bounds the nesting of messages the walker descends
	// into (graphs in attributes in nodes in graphs ...).
	maxMessageDepth = 100
)

// msgKind names the ONNX messages the walker descends into.
type msgKind uint8

const (
	kindModel msgKind = iota
	kindGraph
	kindNode
	kindAttribute
	kindTensor
	kindSparseTensor
	kindFunction
)

// childField is a message-typed field that may (transitively) hold tensors.
type childField struct {
	name string
	kind msgKind
}

// children lists, per message, the fields that lead to tensors. Field
// numbers are those of onnx-ml.proto3 (ONNX 1.23.2).
var children = map[msgKind]map[protowire.Number]childField{
	kindModel: {
		7:  {"graph", kindGraph},
		25: {"functions", kindFunction},
	},
	kindGraph: {
		1:  {"node", kindNode},
		5:  {"initializer", kindTensor},
		15: {"sparse_initializer", kindSparseTensor},
	},
	kindNode: {
		5: {"attribute", kindAttribute},
	},
	kindAttribute: {
		5:  {"t", kindTensor},
		6:  {"g", kindGraph},
		10: {"tensors", kindTensor},
		11: {"graphs", kindGraph},
		22: {"sparse_tensor", kindSparseTensor},
		23: {"sparse_tensors", kindSparseTensor},
	},
	kindSparseTensor: {
		1: {"values", kindTensor},
		2: {"indices", kindTensor},
	},
	kindFunction: {
		7: {"node", kindNode},
	},
}

const rawDataField protowire.Number = 9

// Wire types a known field may use, as a bit set. Repeated scalars may be
// packed (bytes) or not.
const (
	wVarint  = 1 << protowire.VarintType
	wFixed32 = 1 << protowire.Fixed32Type
	wFixed64 = 1 << protowire.Fixed64Type
	wBytes   = 1 << protowire.BytesType
)

// fieldWireTypes lists, for the messages the walker descends into, the wire
// types each known field may have (onnx-ml.proto3, ONNX 1.23.2), so that a
// field of the wrong type is an error instead of being silently ignored.
var fieldWireTypes = map[msgKind]map[protowire.Number]uint8{
	kindModel: {1: wVarint, 2: wBytes, 3: wBytes, 4: wBytes, 5: wVarint, 6: wBytes, 7: wBytes, 8: wBytes,
		14: wBytes, 20: wBytes, 25: wBytes, 26: wBytes},
	kindGraph: {1: wBytes, 2: wBytes, 5: wBytes, 10: wBytes, 11: wBytes, 12: wBytes, 13: wBytes, 14: wBytes,
		15: wBytes, 16: wBytes},
	kindNode: {1: wBytes, 2: wBytes, 3: wBytes, 4: wBytes, 5: wBytes, 6: wBytes, 7: wBytes, 8: wBytes,
		9: wBytes, 10: wBytes},
	kindAttribute: {1: wBytes, 2: wFixed32, 3: wVarint, 4: wBytes, 5: wBytes, 6: wBytes, 7: wFixed32 | wBytes,
		8: wVarint | wBytes, 9: wBytes, 10: wBytes, 11: wBytes, 13: wBytes, 14: wBytes, 15: wBytes,
		20: wVarint, 21: wBytes, 22: wBytes, 23: wBytes},
	kindTensor: {1: wVarint | wBytes, 2: wVarint, 3: wBytes, 4: wFixed32 | wBytes, 5: wVarint | wBytes,
		6: wBytes, 7: wVarint | wBytes, 8: wBytes, 9: wBytes, 10: wFixed64 | wBytes, 11: wVarint | wBytes,
		12: wBytes, 13: wBytes, 14: wVarint, 16: wBytes},
	kindSparseTensor: {1: wBytes, 2: wBytes, 3: wVarint | wBytes},
	kindFunction: {1: wBytes, 4: wBytes, 5: wBytes, 6: wBytes, 7: wBytes, 8: wBytes, 9: wBytes, 10: wBytes,
		11: wBytes, 12: wBytes, 13: wBytes, 14: wBytes},
}

var kindMessages = map[msgKind]protoreflect.MessageDescriptor{
	kindModel:        (&onnxpb.ModelProto{}).ProtoReflect().Descriptor(),
	kindGraph:        (&onnxpb.GraphProto{}).ProtoReflect().Descriptor(),
	kindNode:         (&onnxpb.NodeProto{}).ProtoReflect().Descriptor(),
	kindAttribute:    (&onnxpb.AttributeProto{}).ProtoReflect().Descriptor(),
	kindTensor:       (&onnxpb.TensorProto{}).ProtoReflect().Descriptor(),
	kindSparseTensor: (&onnxpb.SparseTensorProto{}).ProtoReflect().Descriptor(),
	kindFunction:     (&onnxpb.FunctionProto{}).ProtoReflect().Descriptor(),
}

// fieldLabel names a field for errors: "field 7 (graph) of ModelProto".
func fieldLabel(kind msgKind, num protowire.Number) string {
	md := kindMessages[kind]
	if fd := md.Fields().ByNumber(num); fd != nil {
		return fmt.Sprintf("field %d (%s) of %s", num, fd.Name(), md.Name())
	}
	return fmt.Sprintf("field %d of %s", num, md.Name())
}

// shadowWalker builds the shadow message.
type shadowWalker struct {
	data []byte   // the whole encoded model
	side [][]byte // views of large raw_data, indexed by marker value
}

// protowireTruncated is protowire's error code for running out of input.
var protowireTruncated = func() int {
	_, n := protowire.ConsumeBytes([]byte{5})
	return n
}()

// wireError describes a malformed encoding at an absolute byte offset.
func wireError(code int, at int, path string) error {
	err := protowire.ParseError(code)
	if err == io.ErrUnexpectedEOF {
		return fmt.Errorf("file is truncated at byte %d inside %s", at, path)
	}
	return fmt.Errorf("malformed protobuf at byte %d inside %s: %v", at, path, err)
}

// buildShadow returns the shadow encoding of the ModelProto in data and the
// side table of raw_data views.
func buildShadow(data []byte) ([]byte, [][]byte, error) {
	w := &shadowWalker{data: data}
	out, err := w.walk(kindModel, data, 0, "model", 0, make([]byte, 0, 4096))
	if err != nil {
		return nil, nil, err
	}
	return out, w.side, nil
}

// walk appends the shadow encoding of the message buf (starting at absolute
// offset base) to out.
func (w *shadowWalker) walk(kind msgKind, buf []byte, base int, path string, depth int, out []byte) ([]byte, error) {
	if depth > maxMessageDepth {
		return nil, fmt.Errorf("messages nest deeper than %d levels at byte %d inside %s", maxMessageDepth, base, path)
	}
	lastRaw := -1
	if kind == kindTensor {
		// proto3: the last raw_data occurrence wins; emit only that one.
		for i := 0; i < len(buf); {
			num, typ, n := protowire.ConsumeTag(buf[i:])
			if n < 0 {
				return nil, wireError(n, base+i, path)
			}
			m := protowire.ConsumeFieldValue(num, typ, buf[i+n:])
			if m < 0 {
				return nil, wireError(m, base+i+n, path)
			}
			if num == rawDataField && typ == protowire.BytesType {
				lastRaw = i
			}
			i += n + m
		}
	}
	counts := map[protowire.Number]int{}
	kids := children[kind]
	for i := 0; i < len(buf); {
		start := i
		num, typ, n := protowire.ConsumeTag(buf[i:])
		if n < 0 {
			return nil, wireError(n, base+i, path)
		}
		if allowed, known := fieldWireTypes[kind][num]; known && allowed&(1<<typ) == 0 {
			return nil, fmt.Errorf("%s has wire type %d, which that field cannot have, at byte %d inside %s", fieldLabel(kind, num), typ, base+start, path)
		}
		i += n
		if kind == kindTensor && num == markerField {
			// A marker in the input would be trusted as an index: drop it.
			m := protowire.ConsumeFieldValue(num, typ, buf[i:])
			if m < 0 {
				return nil, wireError(m, base+i, path)
			}
			i += m
			continue
		}
		if kind == kindTensor && num == rawDataField && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(buf[i:])
			if m < 0 {
				return nil, wireError(m, base+i, path+".raw_data")
			}
			i += m
			if start != lastRaw {
				continue
			}
			if len(v) <= inlineRawLimit {
				out = append(out, buf[start:i]...)
				continue
			}
			out = protowire.AppendTag(out, markerField, protowire.VarintType)
			out = protowire.AppendVarint(out, uint64(len(w.side)))
			w.side = append(w.side, v)
			continue
		}
		if child, ok := kids[num]; ok {
			idx := counts[num]
			counts[num]++
			childPath := path + "." + child.name
			if isRepeatedChild(kind, num) {
				childPath += "[" + strconv.Itoa(idx) + "]"
			}
			v, m := protowire.ConsumeBytes(buf[i:])
			if m < 0 {
				return nil, w.truncatedChild(child.kind, buf[i:], base+i, childPath, depth+1, m)
			}
			contentStart := i + m - len(v)
			i += m
			sub, err := w.walk(child.kind, v, base+contentStart, childPath, depth+1, nil)
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, num, protowire.BytesType)
			out = protowire.AppendBytes(out, sub)
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[i:])
		if m < 0 {
			return nil, wireError(m, base+i, path)
		}
		i += m
		out = append(out, buf[start:i]...)
	}
	return out, nil
}

// isRepeatedChild reports whether a child field is repeated (so paths get
// an index).
func isRepeatedChild(kind msgKind, num protowire.Number) bool {
	switch kind {
	case kindModel:
		return num == 25
	case kindAttribute:
		return num == 10 || num == 11 || num == 23
	case kindSparseTensor:
		return false
	}
	return true
}

// markerIndex finds the raw_data marker among a message's unknown fields.
func markerIndex(unknown []byte) (int, bool) {
	found, idx := false, 0
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeTag(unknown)
		if n < 0 {
			return 0, false
		}
		unknown = unknown[n:]
		if num == markerField && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(unknown)
			if m < 0 {
				return 0, false
			}
			unknown = unknown[m:]
			if v > 1<<40 {
				return 0, false
			}
			found, idx = true, int(v)
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, unknown)
		if m < 0 {
			return 0, false
		}
		unknown = unknown[m:]
	}
	return idx, found
}

// truncatedChild explains a child message whose length runs past the end
// of its parent: it walks the bytes that are there, so the error names the
// innermost message the data ends in.
func (w *shadowWalker) truncatedChild(kind msgKind, buf []byte, at int, path string, depth int, code int) error {
	length, n := protowire.ConsumeVarint(buf)
	if n < 0 || code != int(protowireTruncated) {
		return wireError(code, at, path)
	}
	if _, err := w.walk(kind, buf[n:], at+n, path, depth, nil); err != nil {
		return err
	}
	return fmt.Errorf("file is truncated at byte %d inside %s (%d of %d bytes present)", at+len(buf), path, len(buf)-n, length)
}
