package cpu

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// opDef is one row of the claimed-op table: an op the backend runs, the
// element types of its first input it accepts, and the builder that turns
// a node into a kernel (parsing attributes at compile time).
type opDef struct {
	Domain string
	Op     string
	types  typeSet
	// widen runs float16/bfloat16 inputs through the float32 kernel.
	widen bool
	// view: the kernel may return a view of input 0 instead of a new
	// buffer, so the memory plan gives the output the input's buffer
	// (memplan.go). The plan's safety net copies, and counts in
	// RunStats.CopiedOutputs, any output found in a slot not its own: a
	// kernel that shows up there needs this flag.
	view  bool
	Notes string
	build func(n *ir.Node, c *compiler) (kernel, error)
}

// opTable is the single list of ops the CPU backend claims. docs/ops.md
// is generated from it and the conformance test runs every ONNX node test
// whose ops are all listed here.
var opTable []opDef

func init() {
	f, fw := floatTypes, true
	un := func(op string) opDef { return opDef{Op: op, types: f, widen: fw, build: buildUnary} }
	// Appended, not assigned: other files of the package register their
	// ops (the tfc domain) from their own init functions, in any order.
	opTable = append(opTable, []opDef{
		// Transformer ops.
		{Op: "Attention", types: f32Types, widen: true, build: buildAttention, Notes: "opset 23/24: 3-D and 4-D inputs, GQA/MQA, boolean and additive masks, causal, softcap, past K/V, nonpad_kv_seqlen, all qk_matmul_output modes; computed in float32/float64"},
		{Domain: "ai.onnx.preview", Op: "FlexAttention", types: f, widen: true, build: buildFlexAttention, Notes: "score_mod and prob_mod graphs, GQA"},
		{Op: "LinearAttention", types: f, widen: true, build: buildLinearAttention, Notes: "update rules linear, gated, delta, gated_delta; GQA; computed in float64"},
		{Op: "CausalConvWithState", types: f, widen: true, build: buildCausalConvWithState, Notes: "activation none/silu/swish"},
		{Op: "LayerNormalization", types: f, widen: true, build: buildLayerNorm, Notes: "Mean and InvStdDev outputs in float32 (stash_type 1)"},
		{Op: "RMSNormalization", types: f, widen: true, build: buildLayerNorm},
		{Op: "RotaryEmbedding", types: f32Types, widen: true, build: buildRotary, Notes: "3-D and 4-D input, interleaved, partial rotation, position_ids"},
		{Op: "Softmax", types: f, widen: true, build: buildSoftmax, Notes: "opset < 13 coerces to 2-D at axis"},
		{Op: "LogSoftmax", types: f, widen: true, build: buildSoftmax, Notes: "as Softmax"},
		{Op: "Hardmax", types: f, widen: true, build: buildSoftmax, Notes: "as Softmax"},
		{Op: "Gelu", types: f, widen: true, build: buildUnary, Notes: "approximate none and tanh"},
		{Op: "MatMul", types: f | typesOf(ir.Int32, ir.Int64, ir.Uint32, ir.Uint64), widen: true, build: buildMatMul, Notes: "numpy broadcasting of batch axes"},
		{Op: "Gemm", types: f | typesOf(ir.Int32, ir.Int64, ir.Uint32, ir.Uint64), widen: true, build: buildGemm},
		{Op: "Einsum", types: f | typesOf(ir.Int32, ir.Int64), widen: true, build: buildEinsum, Notes: "explicit and implicit output, ellipsis, repeated labels (diagonals)"},

		// Elementwise arithmetic with broadcasting.
		{Op: "Add", types: f | intTypes, widen: true, build: buildArith},
		{Op: "Sub", types: f | intTypes, widen: true, build: buildArith},
		{Op: "Mul", types: f | intTypes, widen: true, build: buildArith},
		{Op: "Div", types: f | intTypes, widen: true, build: buildArith, Notes: "integer division truncates"},
		{Op: "Pow", types: f | typesOf(ir.Int32, ir.Int64), widen: true, build: buildPow, Notes: "mixed base/exponent types, computed in float64"},
		{Op: "Mod", types: f | intTypes, widen: true, build: buildMod},
		{Op: "PRelu", types: f | intTypes, widen: true, build: buildArith},
		{Op: "Max", types: f | intTypes, widen: true, build: buildVariadic},
		{Op: "Min", types: f | intTypes, widen: true, build: buildVariadic},
		{Op: "Sum", types: f | intTypes, widen: true, build: buildVariadic},
		{Op: "Mean", types: f, widen: true, build: buildVariadic},
		{Op: "BitShift", types: intTypes, build: buildBitShift},
		{Op: "BitwiseAnd", types: intTypes, build: buildArith},
		{Op: "BitwiseOr", types: intTypes, build: buildArith},
		{Op: "BitwiseXor", types: intTypes, build: buildArith},
		{Op: "BitwiseNot", types: intTypes, build: buildBitwiseNot},
		{Op: "Clip", types: f | intTypes, widen: true, build: buildClip},

		// Elementwise unary math.
		{Op: "Abs", types: f | intTypes, widen: true, build: buildUnary},
		{Op: "Neg", types: f | signedTypes, widen: true, build: buildUnary},
		{Op: "Sign", types: f | intTypes, widen: true, build: buildUnary},
		{Op: "Relu", types: f | signedTypes, widen: true, build: buildUnary},
		un("Exp"), un("Log"), un("Sqrt"), un("Reciprocal"), un("Tanh"), un("Sigmoid"), un("Erf"),
		un("Sin"), un("Cos"), un("Tan"), un("Asin"), un("Acos"), un("Atan"),
		un("Sinh"), un("Cosh"), un("Asinh"), un("Acosh"), un("Atanh"),
		un("Floor"), un("Ceil"), un("Round"), un("Softplus"), un("Softsign"), un("Mish"), un("HardSwish"),
		un("Elu"), un("Celu"), un("Selu"), un("LeakyRelu"), un("ThresholdedRelu"), un("HardSigmoid"),
		{Op: "Shrink", types: f | intTypes, widen: true, build: buildUnary},
		{Op: "IsNaN", types: f, build: buildIsNaNInf},
		{Op: "IsInf", types: f, build: buildIsNaNInf},

		// Comparisons and logic.
		{Op: "Equal", types: numericTypes | typesOf(ir.Bool, ir.String), build: buildCompare},
		{Op: "Less", types: numericTypes, build: buildCompare},
		{Op: "Greater", types: numericTypes, build: buildCompare},
		{Op: "LessOrEqual", types: numericTypes, build: buildCompare},
		{Op: "GreaterOrEqual", types: numericTypes, build: buildCompare},
		{Op: "And", types: boolTypes, build: buildLogic},
		{Op: "Or", types: boolTypes, build: buildLogic},
		{Op: "Xor", types: boolTypes, build: buildLogic},
		{Op: "Not", types: boolTypes, build: buildLogic},
		{Op: "Where", types: boolTypes, build: buildWhere, Notes: "X and Y of any supported type"},

		// Types and shapes.
		{Op: "Cast", types: numericTypes | boolTypes | lowPrecTypes, build: buildCast, Notes: "float8 (saturate), float8e8m0 (round_mode), float4e2m1, int4/uint4/int2/uint2 (wrapping); no strings"},
		{Op: "CastLike", types: numericTypes | boolTypes | lowPrecTypes, build: buildCastLike, Notes: "as Cast"},
		{Op: "BitCast", types: allTypes, build: buildBitCast, Notes: "same bit width; no strings"},
		{Op: "Shape", types: allTypes, build: buildShape, Notes: "start/end"},
		{Op: "Size", types: allTypes, build: buildSize},
		{Op: "ConstantOfShape", types: intTypes, build: buildConstantOfShape},
		{Op: "Constant", types: allTypes, build: buildConstant, Notes: "no sparse_value"},
		{Op: "Identity", types: seqTypes, view: true, build: buildIdentity, Notes: "tensors, sequences and optionals"},
		{Op: "Range", types: numericTypes, build: buildRange},

		// Data movement.
		{Op: "Reshape", types: allTypes, view: true, build: buildReshape, Notes: "allowzero"},
		{Op: "Flatten", types: allTypes, view: true, build: buildFlatten},
		{Op: "Squeeze", types: allTypes, view: true, build: buildSqueeze},
		{Op: "Unsqueeze", types: allTypes, view: true, build: buildUnsqueeze},
		{Op: "Transpose", types: allTypes, build: buildTranspose},
		{Op: "Concat", types: allTypes, build: buildConcat},
		{Op: "Split", types: allTypes, build: buildSplit, Notes: "split input or attribute, num_outputs"},
		{Op: "Slice", types: allTypes, build: buildSlice, Notes: "negative steps"},
		{Op: "Pad", types: allTypes, build: buildPad, Notes: "constant, reflect, edge, wrap; axes"},
		{Op: "Tile", types: allTypes, build: buildTile},
		{Op: "Expand", types: allTypes, build: buildExpand},
		{Op: "Gather", types: allTypes, build: buildGather},
		{Op: "GatherElements", types: allTypes, build: buildGatherElements},
		{Op: "GatherND", types: allTypes, build: buildGatherND, Notes: "batch_dims"},
		{Op: "ScatterND", types: allTypes, build: buildScatterND, Notes: "reductions none/add/mul/max/min"},
		{Op: "ScatterElements", types: allTypes, build: buildScatterElements, Notes: "as ScatterND"},
		{Op: "TensorScatter", types: allTypes, build: buildTensorScatter, Notes: "linear and circular modes"},
		{Op: "Trilu", types: allTypes, build: buildTrilu},
		{Op: "CumSum", types: f | typesOf(ir.Int32, ir.Int64, ir.Uint32, ir.Uint64), widen: true, build: buildCumSum},
		{Op: "TopK", types: f | intTypes, build: buildTopK, Notes: "ties keep the lower index first"},
		{Op: "ArgMax", types: f | intTypes, build: buildArgMinMax},
		{Op: "ArgMin", types: f | intTypes, build: buildArgMinMax},

		// Reductions.
		{Op: "ReduceSum", types: f | intTypes, build: buildReduce, Notes: "computed in float64"},
		{Op: "ReduceMean", types: f | intTypes, build: buildReduce},
		{Op: "ReduceMax", types: f | intTypes | boolTypes, build: buildReduce},
		{Op: "ReduceMin", types: f | intTypes | boolTypes, build: buildReduce},
		{Op: "ReduceProd", types: f | intTypes, build: buildReduce},
		{Op: "ReduceL1", types: f | intTypes, build: buildReduce},
		{Op: "ReduceL2", types: f | intTypes, build: buildReduce},
		{Op: "ReduceSumSquare", types: f | intTypes, build: buildReduce},
		{Op: "ReduceLogSum", types: f, build: buildReduce},
		{Op: "ReduceLogSumExp", types: f, build: buildReduce},

		// Convolution and pooling (vision parts of the corpus).
		{Op: "Conv", types: f32Types, widen: true, build: buildConv, Notes: "N-D, groups, dilations, auto_pad"},
		{Op: "AveragePool", types: f, widen: true, build: buildPool, Notes: "count_include_pad, ceil_mode, dilations"},
		{Op: "MaxPool", types: f | typesOf(ir.Int8, ir.Uint8), widen: true, build: buildPool, Notes: "Indices output, storage_order"},
		{Op: "LpPool", types: f, widen: true, build: buildPool},
		{Op: "GlobalAveragePool", types: f, widen: true, build: buildGlobalPool},
		{Op: "GlobalMaxPool", types: f, widen: true, build: buildGlobalPool},
		{Op: "Resize", types: f | typesOf(ir.Int8, ir.Uint8, ir.Int32, ir.Int64), widen: true, build: buildResize, Notes: "nearest/linear/cubic, all coordinate modes, antialias, axes, keep_aspect_ratio_policy"},
		{Op: "Upsample", types: f | typesOf(ir.Int8, ir.Uint8, ir.Int32, ir.Int64), widen: true, build: buildResize, Notes: "deprecated; as Resize with asymmetric coordinates"},
		{Op: "EyeLike", types: numericTypes | boolTypes, build: buildEyeLike},

		// Strings.
		{Op: "StringConcat", types: typesOf(ir.String), build: buildStringConcat},
		{Op: "StringSplit", types: typesOf(ir.String), build: buildStringSplit, Notes: "delimiter or white space, maxsplit"},
		{Op: "StringNormalizer", types: typesOf(ir.String), build: buildStringNormalizer, Notes: "stop words and case change; no accent stripping"},
		{Op: "RegexFullMatch", types: typesOf(ir.String), build: buildRegexFullMatch, Notes: "RE2 syntax (Go regexp)"},

		// Sequences of tensors.
		{Op: "SequenceConstruct", types: allTypes, build: buildSequenceConstruct},
		{Op: "SequenceEmpty", types: allTypes, build: buildSequenceEmpty},
		{Op: "SequenceAt", types: seqTypes, build: buildSequenceAt},
		{Op: "SequenceLength", types: seqTypes, build: buildSequenceLength},
		{Op: "SequenceInsert", types: seqTypes, build: buildSequenceInsert},
		{Op: "SequenceErase", types: seqTypes, build: buildSequenceErase},
		{Op: "SplitToSequence", types: allTypes, build: buildSplitToSequence},
		{Op: "ConcatFromSequence", types: seqTypes, build: buildConcatFromSequence},

		// Normalization and other layers beyond the transformer core.
		{Op: "Swish", types: f, widen: true, build: buildSwish},
		{Op: "SwiGLU", types: f, widen: true, build: buildSwiGLU, Notes: "A and B of one shape"},
		{Op: "Dropout", types: f, widen: true, build: buildDropout, Notes: "inference only: training_mode with a non-zero ratio is rejected at run time"},
		{Op: "LpNormalization", types: f, widen: true, build: buildLpNormalization},
		{Op: "InstanceNormalization", types: f, widen: true, build: buildInstanceGroupNorm},
		{Op: "GroupNormalization", types: f, widen: true, build: buildInstanceGroupNorm, Notes: "scale/bias per channel (opset 21) or per group (opset 18)"},
		{Op: "BatchNormalization", types: f, widen: true, build: buildBatchNorm, Notes: "inference and training_mode (batch statistics, running mean/var outputs)"},
		{Op: "MeanVarianceNormalization", types: f, widen: true, build: buildMVN},
		{Op: "DepthToSpace", types: allTypes, build: buildDepthSpace, Notes: "DCR and CRD"},
		{Op: "SpaceToDepth", types: allTypes, build: buildDepthSpace},
		{Op: "Compress", types: allTypes, build: buildCompress},
		{Op: "ReverseSequence", types: allTypes, build: buildReverseSequence},
		{Op: "NonZero", types: numericTypes | boolTypes, build: buildNonZero},
		{Op: "OneHot", types: numericTypes, build: buildOneHot},
		{Op: "NonMaxSuppression", types: f, build: buildNMS, Notes: "corner and centre boxes"},
		{Op: "AffineGrid", types: f, widen: true, build: buildAffineGrid},
		{Op: "Col2Im", types: f, widen: true, build: buildCol2Im},
		{Op: "MaxUnpool", types: f, widen: true, build: buildMaxUnpool},
		{Domain: "ai.onnx.preview.training", Op: "Adagrad", types: f, build: buildOptimizer},
		{Domain: "ai.onnx.preview.training", Op: "Momentum", types: f, build: buildOptimizer, Notes: "standard and nesterov"},
		{Domain: "ai.onnx.preview.training", Op: "Adam", types: f, build: buildOptimizer},
		{Op: "DFT", types: f, widen: true, build: buildDFT, Notes: "forward, inverse, onesided, dft_length; reference O(n^2) transform"},
		{Op: "STFT", types: f, widen: true, build: buildSTFT, Notes: "window, frame_length, onesided"},
		{Op: "HannWindow", types: intTypes, build: buildWindow},
		{Op: "HammingWindow", types: intTypes, build: buildWindow},
		{Op: "BlackmanWindow", types: intTypes, build: buildWindow},
		{Op: "NegativeLogLikelihoodLoss", types: f, widen: true, build: buildLoss},
		{Op: "SoftmaxCrossEntropyLoss", types: f, widen: true, build: buildLoss, Notes: "optional log_prob output"},
		{Op: "Det", types: f, widen: true, build: buildDet},
		{Op: "CumProd", types: f | typesOf(ir.Int32, ir.Int64, ir.Uint32, ir.Uint64), widen: true, build: buildCumSum},
		{Op: "Scatter", types: allTypes, build: buildScatterElements, Notes: "deprecated alias of ScatterElements"},

		{Op: "RNN", types: f, widen: true, build: buildRNN, Notes: "all directions and layouts, sequence_lens, clip, activations"},
		{Op: "GRU", types: f, widen: true, build: buildRNN, Notes: "as RNN; linear_before_reset"},
		{Op: "LSTM", types: f, widen: true, build: buildRNN, Notes: "as RNN; peepholes, input_forget"},
		{Op: "GridSample", types: f, widen: true, build: buildGridSample, Notes: "N-D; nearest/linear/cubic; zeros/border/reflection"},
		{Op: "ConvTranspose", types: f, widen: true, build: buildConvTranspose, Notes: "N-D, groups, output_shape, output_padding, auto_pad"},
		{Op: "LRN", types: f, widen: true, build: buildLRN},
		{Op: "Unique", types: numericTypes, build: buildUnique, Notes: "sorted and first-occurrence order, axis"},
		{Op: "CenterCropPad", types: allTypes, build: buildCenterCropPad},

		// Quantization.
		{Op: "DynamicQuantizeLinear", types: f, build: buildDynamicQuantizeLinear},
		{Op: "MatMulInteger", types: typesOf(ir.Int8, ir.Uint8), build: buildMatMulInteger, Notes: "per-row/column zero points"},
		{Op: "QLinearMatMul", types: typesOf(ir.Int8, ir.Uint8), build: buildQLinearMatMul, Notes: "scalar scales and zero points"},
		{Op: "ConvInteger", types: typesOf(ir.Int8, ir.Uint8), build: buildConvInteger, Notes: "scalar zero points, per-channel for W"},
		{Op: "QuantizeLinear", types: f, build: buildQuantizeLinear, Notes: "per-tensor, per-axis and blocked; int8/16, int4/2 and float8/float4 targets"},
		{Op: "DequantizeLinear", types: intTypes | lowPrecTypes, build: buildDequantizeLinear, Notes: "as QuantizeLinear"},

		// Optionals.
		{Op: "Optional", types: seqTypes, build: buildOptional},
		{Op: "OptionalHasElement", types: seqTypes, build: buildOptionalHasElement},
		{Op: "OptionalGetElement", types: seqTypes, build: buildOptionalGetElement},

		// Control flow.
		{Op: "If", types: boolTypes, build: buildIf, Notes: "tensor and sequence outputs"},
		{Op: "Scan", types: allTypes, build: buildScan, Notes: "axes and directions; opset 8 form without sequence_lens"},
		{Op: "SequenceMap", types: seqTypes, build: buildSequenceMap},
		{Op: "Loop", types: allTypes, build: buildLoop, Notes: "loop-carried tensors and sequences; tensor scan outputs"},
	}...)
}

// lookupOp finds the table row for an op ("" and "ai.onnx" are one
// domain), or nil when the backend does not claim it.
func lookupOp(domain, op string) *opDef {
	if domain == "ai.onnx" {
		domain = ""
	}
	for i := range opTable {
		if opTable[i].Domain == domain && opTable[i].Op == op {
			return &opTable[i]
		}
	}
	return nil
}

// Claims reports whether the backend claims an op.
func Claims(domain, op string) bool { return lookupOp(domain, op) != nil }

// ClaimedOps lists the claimed ops as "Op" or "domain::Op", sorted.
func ClaimedOps() []string {
	out := make([]string, len(opTable))
	for i, d := range opTable {
		out[i] = qualified(d.Domain, d.Op)
	}
	slices.Sort(out)
	return out
}

// OpsDoc renders docs/ops.md from the table.
func OpsDoc() string {
	rows := slices.Clone(opTable)
	slices.SortFunc(rows, func(a, b opDef) int { return strings.Compare(qualified(a.Domain, a.Op), qualified(b.Domain, b.Op)) })
	var b strings.Builder
	b.WriteString("<!-- Code generated by `go test ./backend/cpu -run TestOpsDoc -update`; DO NOT EDIT. -->\n\n")
	b.WriteString("# Ops of the CPU backend\n\n")
	b.WriteString("Every op the CPU backend (`backend/cpu`) claims, from the table in `backend/cpu/table.go`. ")
	b.WriteString("The ONNX backend node tests of each claimed op run in `TestNodeConformance`. ")
	b.WriteString("float16 and bfloat16 marked \"via f32\" are stored as such and computed in float32.\n\n")
	fmt.Fprintf(&b, "%d ops.\n\n", len(rows))
	b.WriteString("| op | element types (input 0) | notes |\n|---|---|---|\n")
	for _, d := range rows {
		types := d.types.String()
		if d.widen && (d.types.has(ir.Float16) || d.types.has(ir.BFloat16)) {
			types = strings.NewReplacer("bf16", "bf16 (via f32)", "f16", "f16 (via f32)").Replace(types)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", qualified(d.Domain, d.Op), types, d.Notes)
	}
	return b.String()
}

// SupportsType reports whether values of type t can flow through the
// backend: tensors whose element type the runtime holds (float8, 4-bit
// and 2-bit types, complex numbers, sequences, maps and optionals are not
// supported yet). A type with unknown kind or element type is accepted;
// the kernels check at run time.
func SupportsType(t ir.Type) bool {
	switch t.Kind {
	case ir.KindUnknown:
		return true
	case ir.KindTensor:
		if t.Elem == ir.Undefined {
			return true
		}
		_, err := makeData(t.Elem, 0)
		return err == nil
	case ir.KindSequence:
		return t.Inner == nil || (t.Inner.Kind != ir.KindSequence && t.Inner.Kind != ir.KindOptional && SupportsType(*t.Inner))
	case ir.KindOptional:
		return t.Inner == nil || (t.Inner.Kind != ir.KindOptional && SupportsType(*t.Inner))
	}
	return false
}
