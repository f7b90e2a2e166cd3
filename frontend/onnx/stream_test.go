package onnx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/ir"
)

// streamEverything lowers the streaming threshold so that every non-empty
// raw_data is written from its view, for the duration of the test.
func streamEverything(t testing.TB) {
	old := streamRawThreshold
	streamRawThreshold = 1
	t.Cleanup(func() { streamRawThreshold = old })
}

// streamedBytes encodes m the streaming way into memory.
func streamedBytes(t testing.TB, m *ir.Model) []byte {
	t.Helper()
	e := &encoder{}
	mp, err := e.model(m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var buf bytes.Buffer
	n, err := writeModelStreamed(&buf, mp, e.tensors)
	if err != nil {
		t.Fatalf("streamed encode: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("streamed encode reports %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// sameAsMarshal checks that the streamed encoding of m is byte-identical to
// Encode's (proto.Marshal, deterministic) and decodes to the same IR.
func sameAsMarshal(t testing.TB, label string, m *ir.Model, opts DecodeOptions) {
	t.Helper()
	got := sameBytesAsMarshal(t, label, m)
	back, _, err := Decode(got, opts)
	if err != nil {
		t.Fatalf("%s: decoding the streamed encoding: %v", label, err)
	}
	if a, b := ir.Print(m), ir.Print(back); a != b {
		t.Fatalf("%s: streamed encoding decodes to different IR:\n%s", label, firstDiff(a, b))
	}
}

// sameBytesAsMarshal checks that the streamed encoding of m is
// byte-identical to Encode's and returns it. (Encode's output decoding to
// the same IR is what the round-trip tests check.)
func sameBytesAsMarshal(t testing.TB, label string, m *ir.Model) []byte {
	t.Helper()
	want, err := Encode(m)
	if err != nil {
		t.Fatalf("%s: encode: %v", label, err)
	}
	got := streamedBytes(t, m)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: streamed encoding (%d bytes) differs from proto.Marshal (%d bytes) first at byte %d", label, len(got), len(want), firstByteDiff(got, want))
	}
	return got
}

func firstByteDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// functionWithTensorDefault is functionModel with a tensor-valued attribute
// default in a kept function (FunctionProto.attribute_proto).
func functionWithTensorDefault() *onnxpb.ModelProto {
	mp := functionModel()
	mp.Functions[1].AttributeProto = append(mp.Functions[1].AttributeProto, &onnxpb.AttributeProto{
		Name: "table", Type: onnxpb.AttributeProto_TENSOR,
		T: rawTensor("table", onnxpb.TensorProto_FLOAT, []int64{3}, floatBytes(1, 2, 3)),
	})
	return mp
}

func TestStreamedEncodingMatchesMarshal(t *testing.T) {
	for _, threshold := range []int{1, 100, 4096} {
		old := streamRawThreshold
		streamRawThreshold = threshold
		everything, _ := mustDecode(t, marshal(t, everythingModel()), DecodeOptions{})
		sameAsMarshal(t, "everything", everything, DecodeOptions{})
		kept, _ := mustDecode(t, marshal(t, functionWithTensorDefault()), DecodeOptions{KeepFunctions: true})
		sameAsMarshal(t, "kept functions", kept, DecodeOptions{KeepFunctions: true})
		// Weights of 4 KiB, 8 KiB and 16 bytes: at the default threshold
		// some stream and some stay in the skeleton.
		three, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
		sameAsMarshal(t, "three weights", three, DecodeOptions{})
		streamRawThreshold = old
	}
}

func TestStreamedEncodingKeepsForeignMarkerFields(t *testing.T) {
	streamEverything(t)
	m, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	// A graph field kept from elsewhere (an extra initializer) holds a
	// tensor with an unknown field numbered like the stream marker, with
	// and without a plausible index: it must be written as it is, not
	// taken for a detached raw_data.
	for _, value := range [][]byte{{0}, append(make([]byte, 16), 0), []byte("not a marker")} {
		tensor := protowire.AppendTag(nil, 8, protowire.BytesType)
		tensor = protowire.AppendString(tensor, "foreign")
		tensor = protowire.AppendTag(tensor, streamMarkerField, protowire.BytesType)
		tensor = protowire.AppendBytes(tensor, value)
		m.Graph.Extras = []ir.RawField{{Number: 5, Bytes: tensor}}
		want, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := streamedBytes(t, m); !bytes.Equal(got, want) {
			t.Fatalf("marker-like field %x: streamed encoding differs from proto.Marshal at byte %d", value, firstByteDiff(got, want))
		}
	}
}

// TestStreamedEncodingDoesNotCopyWeights checks the point of streaming: a
// model with a 32 MiB weight is written with a few MiB of allocation, not a
// buffer the size of the model.
func TestStreamedEncodingDoesNotCopyWeights(t *testing.T) {
	const n = 8 << 20 // floats
	g := addGraph(4)
	g.Initializer[0] = rawTensor("w", onnxpb.TensorProto_FLOAT, []int64{n}, make([]byte, 4*n))
	g.Input[0] = vi("x", f32Type(n))
	g.Output[0] = vi("y", f32Type(n))
	m, _ := mustDecode(t, marshal(t, model(g)), DecodeOptions{})
	e := &encoder{}
	mp, err := e.model(m)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	written, err := writeModelStreamed(&discardCounter{}, mp, e.tensors)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if written < 4*n {
		t.Fatalf("wrote %d bytes, the weight alone is %d", written, 4*n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("streaming a %d-byte model allocated %d bytes", written, alloc)
	}
}

type discardCounter struct{ n int64 }

func (d *discardCounter) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// failingWriter fails after limit bytes.
type failingWriter struct{ limit int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errors.New("disk full")
	}
	f.limit -= len(p)
	return len(p), nil
}

func TestStreamedEncodingReportsWriteErrors(t *testing.T) {
	streamEverything(t)
	m, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	for _, limit := range []int{0, 10, 5000} {
		e := &encoder{}
		mp, err := e.model(m)
		if err != nil {
			t.Fatal(err)
		}
		_, err = writeModelStreamed(&failingWriter{limit: limit}, mp, e.tensors)
		wantErr(t, err, "disk full")
	}
}

// encodeFileBothWays writes m with EncodeFile streaming and not, into two
// fresh folders, and checks that both folders hold the same files with the
// same bytes.
func encodeFileBothWays(t *testing.T, m *ir.Model, opts EncodeOptions) string {
	t.Helper()
	var dirs [2]string
	for i, streaming := range []bool{false, true} {
		dirs[i] = t.TempDir()
		old := streamEncoding
		streamEncoding = streaming
		err := EncodeFile(m, filepath.Join(dirs[i], "model.onnx"), opts)
		streamEncoding = old
		if err != nil {
			t.Fatalf("EncodeFile (streaming %v): %v", streaming, err)
		}
	}
	plain, streamed := dirNames(t, dirs[0]), dirNames(t, dirs[1])
	if !slices.Equal(plain, streamed) {
		t.Fatalf("plain encoding wrote %v, streaming wrote %v", plain, streamed)
	}
	for _, name := range plain {
		a, err := os.ReadFile(filepath.Join(dirs[0], name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs between plain and streamed encoding, first at byte %d", name, firstByteDiff(a, b))
		}
	}
	return filepath.Join(dirs[1], "model.onnx")
}

func TestEncodeFileStreamsLikeMarshal(t *testing.T) {
	streamEverything(t)
	everything, _ := mustDecode(t, marshal(t, everythingModel()), DecodeOptions{})
	encodeFileBothWays(t, everything, EncodeOptions{})
	encodeFileBothWays(t, everything, EncodeOptions{ExternalData: "always", ExternalThreshold: 64})

	three, _ := mustDecode(t, marshal(t, threeWeights()), DecodeOptions{})
	for _, opts := range []EncodeOptions{{}, {ExternalData: "never"}, {ExternalData: "always", ExternalThreshold: 1024}} {
		path := encodeFileBothWays(t, three, opts)
		back, _, err := DecodeFile(path, DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sameWeights(t, three, back)
		back.Close()
	}

	// Tensors read from external data go back to their recorded layout;
	// the model file around them streams the same.
	_, path := externalModel(t, "weights.bin", "8", "16")
	stored, _, err := DecodeFile(path, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stored.Close()
	out := encodeFileBothWays(t, stored, EncodeOptions{})
	if names := dirNames(t, filepath.Dir(out)); !slices.Equal(names, []string{"model.onnx", "weights.bin"}) {
		t.Fatalf("folder holds %v", names)
	}
	encodeFileBothWays(t, stored, EncodeOptions{ExternalData: "never"})
}

func TestCorpusStreamsLikeMarshal(t *testing.T) {
	streamEverything(t)
	// Collect garbage often while tensors are advised (madvise): handing
	// the kernel a page start as a pointer into another heap object once
	// made the collector abort with "found pointer to free object".
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "models", "*", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skip("no models under testdata/models yet")
	}
	for _, p := range paths {
		for _, keep := range []bool{false, true} {
			opts := DecodeOptions{KeepFunctions: keep}
			m, _, err := DecodeFile(p, opts)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			sameBytesAsMarshal(t, p, m)
			m.Close()
		}
	}
}

func TestNodeTestsStreamLikeMarshal(t *testing.T) {
	streamEverything(t)
	dir := nodeTestDir(t)
	paths := nodeTestModels(t, dir)
	if len(paths) == 0 {
		t.Fatalf("no model.onnx under %s", dir)
	}
	compared := 0
	for _, p := range paths {
		if _, refused := refusedNodeTests[filepath.Base(filepath.Dir(p))]; refused {
			continue
		}
		m, _, err := DecodeFile(p, DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		sameBytesAsMarshal(t, p, m)
		m.Close()
		compared++
	}
	t.Logf("%d node-test models stream byte-identically to proto.Marshal", compared)
}
