package onnx

import (
	"fmt"
	"io"
	"os"

	"github.com/tfc-compiler/tfc/frontend/onnx/onnxpb"
	"github.com/tfc-compiler/tfc/internal/atomicfile"
	"github.com/tfc-compiler/tfc/ir"
	"google.golang.org/protobuf/proto"
)

// DecodeTensor decodes one serialized TensorProto, the format of the ONNX
// test layout's input_N.pb and output_N.pb files. The tensor's name is in
// Tensor.Name. External data is refused: test data is always inline.
func DecodeTensor(data []byte) (t *ir.Tensor, err error) {
	defer recoverInternal("decoding a tensor", &err)
	tp := &onnxpb.TensorProto{}
	if err := proto.Unmarshal(data, tp); err != nil {
		return nil, fmt.Errorf("not a serialized TensorProto: %w", err)
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return nil, fmt.Errorf("tensor %q uses external data, which test data files may not", tp.GetName())
	}
	d := &decoder{external: map[string]*externalFile{}, domains: map[string]string{}}
	t, err = d.tensor(tp)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	t.Name = tp.GetName()
	return t, nil
}

// ReadTensorFile reads and decodes a .pb tensor file.
func ReadTensorFile(path string) (*ir.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTensor(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// EncodeTensor serializes a tensor as a TensorProto named name.
func EncodeTensor(t *ir.Tensor, name string) ([]byte, error) {
	tp, err := tensorProto(t, name)
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(tp)
}

// WriteTensorFile writes a tensor as a .pb file atomically (temporary file,
// then rename).
func WriteTensorFile(path string, t *ir.Tensor, name string) error {
	data, err := EncodeTensor(t, name)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
