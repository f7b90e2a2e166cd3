// Package onnx owns the ONNX wire format: it decodes ONNX model files (and
// their external data) into tfc's IR and encodes IR models back into ONNX
// files. Nothing downstream of this package sees protobuf types; the
// generated bindings live in onnxpb and are used only here.
//
// Decoding is zero-copy for weights: the model file is memory-mapped and
// every large TensorProto.raw_data becomes an ir.Tensor viewing the mapping
// (see shadow.go for how protobuf's copying unmarshal is avoided).
// Model-local functions are inlined unless DecodeOptions.KeepFunctions is set.
package onnx
