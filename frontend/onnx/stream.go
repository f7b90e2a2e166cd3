package onnx

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
)

// Why streaming: proto.Marshal builds the whole encoding in one buffer, so
// writing a 1.3 GB model held the mapped input and a 1.3 GB copy at once.
// Instead, every large raw_data is detached from its TensorProto and
// replaced by a small marker (the mirror of shadow.go's decode trick), the
// small remainder (the skeleton) is marshaled, and the skeleton is then
// walked and written out with each marker replaced by the raw_data bytes,
// written straight from the tensor's view. Enclosing messages get their
// length prefixes recomputed from the skeleton's lengths plus the raw
// lengths. The output is byte-identical to
// proto.MarshalOptions{Deterministic: true}.Marshal of the full message:
// that marshals known fields in field-number order, then unknown fields,
// so raw_data (field 9) goes before the first field numbered above 9.

// streamRawThreshold is the smallest raw_data written from its view; smaller
// ones stay in the skeleton. A variable so that tests can stream every
// tensor.
var streamRawThreshold = 4096

// streamBufferSize is the write buffer between the skeleton's pieces and the
// file; raw_data larger than it bypasses the buffer.
const streamBufferSize = 1 << 20

// streamMarkerField is the field number of the stand-in for a detached
// raw_data: the largest legal one, unused by onnx.proto.
const streamMarkerField = markerField

// rawStreamer detaches large raw_data from TensorProtos and writes the
// skeleton with the data put back.
type rawStreamer struct {
	// nonce starts every marker, so that an unknown field that happens to
	// use the marker's number (kept from a parsed model) is not taken for
	// one: it stays an unknown field and is written as it is.
	nonce [16]byte
	raws  [][]byte
	used  []bool
	// order lists the side-table indexes in the order the raw_data
	// fields are written; next is the first one not yet written and
	// prefetched the first one not yet asked for ahead.
	order            []int
	next, prefetched int
	// grown maps the offset in the skeleton of a message's content to how
	// many bytes longer the message gets when its markers are expanded.
	grown map[int]int
}

// streamChildren lists, per message, the fields that lead to tensors the
// encoder creates: the decoder's table plus FunctionProto.attribute_proto
// (function attribute defaults, which may hold tensors).
var streamChildren = func() map[msgKind]map[protowire.Number]childField {
	out := map[msgKind]map[protowire.Number]childField{}
	for k, fields := range children {
		out[k] = map[protowire.Number]childField{}
		for n, c := range fields {
			out[k][n] = c
		}
	}
	out[kindFunction][11] = childField{"attribute_proto", kindAttribute}
	return out
}()

func newRawStreamer() (*rawStreamer, error) {
	s := &rawStreamer{grown: map[int]int{}}
	if _, err := rand.Read(s.nonce[:]); err != nil {
		return nil, fmt.Errorf("making a stream marker: %w", err)
	}
	return s, nil
}

// detach moves the raw_data of every tensor of at least streamRawThreshold
// bytes into the side table and leaves a marker in its place.
func (s *rawStreamer) detach(tensors []*onnxpb.TensorProto) {
	for _, tp := range tensors {
		if len(tp.RawData) < streamRawThreshold || len(tp.RawData) == 0 {
			continue
		}
		marker := protowire.AppendTag(nil, streamMarkerField, protowire.BytesType)
		value := protowire.AppendVarint(append([]byte(nil), s.nonce[:]...), uint64(len(s.raws)))
		marker = protowire.AppendBytes(marker, value)
		refl := tp.ProtoReflect()
		refl.SetUnknown(append(append([]byte(nil), refl.GetUnknown()...), marker...))
		s.raws = append(s.raws, tp.RawData)
		tp.RawData = nil
	}
	s.used = make([]bool, len(s.raws))
}

// markerIndex returns the side-table index a marker's value names, or false
// if the value is not one of this streamer's markers.
func (s *rawStreamer) markerIndex(value []byte) (int, bool) {
	if !bytes.HasPrefix(value, s.nonce[:]) {
		return 0, false
	}
	idx, n := protowire.ConsumeVarint(value[len(s.nonce):])
	if n < 0 || n != len(value)-len(s.nonce) || idx >= uint64(len(s.raws)) {
		return 0, false
	}
	return int(idx), true
}

// rawFieldSize is the encoded size of a raw_data field holding n bytes.
func rawFieldSize(n int) int {
	return protowire.SizeTag(rawDataField) + protowire.SizeBytes(n)
}

// plan walks the skeleton message buf (content starting at offset base)
// and returns how many bytes longer it gets when its markers are expanded,
// recording the growth of every nested message that grows.
func (s *rawStreamer) plan(kind msgKind, buf []byte, base, depth int) (int, error) {
	if depth > maxMessageDepth {
		return 0, fmt.Errorf("messages nest deeper than %d levels", maxMessageDepth)
	}
	growth := 0
	kids := streamChildren[kind]
	for i := 0; i < len(buf); {
		num, typ, n := protowire.ConsumeTag(buf[i:])
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[i+n:])
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(buf[i+n:])
			contentStart := i + n + m - len(v)
			if kind == kindTensor && num == streamMarkerField {
				if idx, ok := s.markerIndex(v); ok {
					if s.used[idx] {
						return 0, fmt.Errorf("raw_data marker %d appears twice", idx)
					}
					s.used[idx] = true
					s.order = append(s.order, idx)
					growth += rawFieldSize(len(s.raws[idx])) - (n + m)
				}
			} else if child, ok := kids[num]; ok {
				g, err := s.plan(child.kind, v, base+contentStart, depth+1)
				if err != nil {
					return 0, fmt.Errorf("%s: %w", child.name, err)
				}
				if g != 0 {
					s.grown[base+contentStart] = g
					growth += g + protowire.SizeVarint(uint64(len(v)+g)) - protowire.SizeVarint(uint64(len(v)))
				}
			}
		}
		i += n + m
	}
	return growth, nil
}

// streamWriter writes the expanded skeleton; scratch holds tags and length
// prefixes on their way out.
type streamWriter struct {
	w       *bufio.Writer
	scratch []byte
}

// countingWriter counts the bytes that reach the file, to check the length
// computed up front.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *rawStreamer) emit(w *streamWriter, kind msgKind, buf []byte, base int) error {
	kids := streamChildren[kind]
	var pendingRaw []byte
	hasRaw := false
	if kind == kindTensor {
		pendingRaw, hasRaw = s.tensorRaw(buf)
	}
	for i := 0; i < len(buf); {
		num, typ, n := protowire.ConsumeTag(buf[i:])
		m := protowire.ConsumeFieldValue(num, typ, buf[i+n:])
		if n < 0 || m < 0 {
			return fmt.Errorf("the skeleton changed while it was written")
		}
		if hasRaw && num > rawDataField {
			if err := s.writeRaw(w, pendingRaw); err != nil {
				return err
			}
			hasRaw = false
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(buf[i+n:])
			contentStart := i + n + m - len(v)
			if kind == kindTensor && num == streamMarkerField {
				if _, ok := s.markerIndex(v); ok {
					i += n + m
					continue
				}
			} else if child, ok := kids[num]; ok {
				if g := s.grown[base+contentStart]; g != 0 {
					w.scratch = protowire.AppendTag(w.scratch[:0], num, protowire.BytesType)
					w.scratch = protowire.AppendVarint(w.scratch, uint64(len(v)+g))
					if _, err := w.w.Write(w.scratch); err != nil {
						return err
					}
					if err := s.emit(w, child.kind, v, base+contentStart); err != nil {
						return err
					}
					i += n + m
					continue
				}
			}
		}
		if _, err := w.w.Write(buf[i : i+n+m]); err != nil {
			return err
		}
		i += n + m
	}
	if hasRaw {
		return s.writeRaw(w, pendingRaw)
	}
	return nil
}

// prefetchAhead is how far ahead of the tensor being written the kernel is
// asked to read tensor data in (a cold input then reads while the output
// is written, in large requests).
const prefetchAhead = 64 << 20

// writeRaw writes the next raw_data field, first asking for the data of
// the tensors that follow it.
func (s *rawStreamer) writeRaw(w *streamWriter, raw []byte) error {
	ahead := 0
	for i := s.next; i < s.prefetched; i++ {
		ahead += len(s.raws[s.order[i]])
	}
	for s.prefetched < len(s.order) && (s.prefetched <= s.next || ahead < prefetchAhead) {
		r := s.raws[s.order[s.prefetched]]
		adviseRange(r, accessWillNeed)
		ahead += len(r)
		s.prefetched++
	}
	s.next++
	return w.rawField(raw)
}

// tensorRaw finds the detached raw_data of a skeleton tensor, if it has one.
func (s *rawStreamer) tensorRaw(buf []byte) ([]byte, bool) {
	for i := 0; i < len(buf); {
		num, typ, n := protowire.ConsumeTag(buf[i:])
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[i+n:])
		if m < 0 {
			return nil, false
		}
		if num == streamMarkerField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(buf[i+n:])
			if idx, ok := s.markerIndex(v); ok {
				return s.raws[idx], true
			}
		}
		i += n + m
	}
	return nil, false
}

// rawField writes a raw_data field, its bytes straight from the view.
func (w *streamWriter) rawField(raw []byte) error {
	w.scratch = protowire.AppendTag(w.scratch[:0], rawDataField, protowire.BytesType)
	w.scratch = protowire.AppendVarint(w.scratch, uint64(len(raw)))
	if _, err := w.w.Write(w.scratch); err != nil {
		return err
	}
	_, err := w.w.Write(raw)
	return err
}

// writeModelStreamed writes mp to out exactly as
// proto.MarshalOptions{Deterministic: true}.Marshal would encode it, without
// holding the encoding in memory, and returns the number of bytes written. tensors are the TensorProtos (reachable
// from mp through graphs, nodes, attributes, sparse tensors and functions)
// whose raw_data may be streamed; their RawData is nil when it returns.
func writeModelStreamed(out io.Writer, mp *onnxpb.ModelProto, tensors []*onnxpb.TensorProto) (int64, error) {
	s, err := newRawStreamer()
	if err != nil {
		return 0, err
	}
	s.detach(tensors)
	skeleton, err := proto.MarshalOptions{Deterministic: true}.Marshal(mp)
	if err != nil {
		return 0, err
	}
	growth, err := s.plan(kindModel, skeleton, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("internal error while streaming the model: %w", err)
	}
	for i, used := range s.used {
		if !used {
			return 0, fmt.Errorf("internal error while streaming the model: raw_data %d is not reachable from the model", i)
		}
	}
	total := int64(len(skeleton)) + int64(growth)
	counted := &countingWriter{w: out}
	w := &streamWriter{w: bufio.NewWriterSize(counted, int(min(streamBufferSize, max(total, 4096))))}
	if err := s.emit(w, kindModel, skeleton, 0); err != nil {
		return counted.n, err
	}
	if err := w.w.Flush(); err != nil {
		return counted.n, err
	}
	if counted.n != total {
		return counted.n, fmt.Errorf("internal error while streaming the model: wrote %d bytes, planned %d", counted.n, total)
	}
	return total, nil
}
