package ir

// The op table. Arity is the union over all opset versions of an op (an
// input that was an attribute in old versions widens the range), so that
// Verify rejects only counts that no version allows. Rules look at the
// opset version themselves where semantics changed.

// arity is [min, max]; max -1 is variadic.
type arity [2]int

var (
	in0   = arity{0, 0}
	in1   = arity{1, 1}
	in2   = arity{2, 2}
	in3   = arity{3, 3}
	out1  = arity{1, 1}
	anyN  = arity{0, -1}
	oneUp = arity{1, -1}
)

func reg(domain, op string, in, out arity, comm, symbolic bool, f InferFunc, doc string) {
	register(&OpSchema{Domain: domain, Op: op, MinInputs: in[0], MaxInputs: in[1], MinOutputs: out[0], MaxOutputs: out[1],
		Commutative: comm, Infer: f, Symbolic: symbolic && f != nil, Doc: doc})
}

// onnx registers an ai.onnx op.
func onnx(op string, in, out arity, f InferFunc, doc string) {
	reg("", op, in, out, false, true, f, doc)
}

// onnxComm registers a commutative ai.onnx op.
func onnxComm(op string, in, out arity, f InferFunc, doc string) {
	reg("", op, in, out, true, true, f, doc)
}

// legacyBroadcast wraps a broadcasting rule: before opset 7, binary ops
// used the "broadcast"/"axis" attributes and the output had A's shape.
func legacyBroadcast(f InferFunc) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		if !c.AtLeast(7) {
			t := tensorType(c.Type(0))
			if o, err := f(c); err == nil && len(o.Types) > 0 {
				t.Elem = o.Types[0].Elem
			}
			return one(t)
		}
		return f(c)
	}
}

func elemFromAttrOr(name string, def DataType, from int) func(*InferContext) DataType {
	return func(c *InferContext) DataType {
		if a := c.Node.Attr(name); a != nil && a.Type == AttrInt {
			return DataType(a.I)
		}
		if from >= 0 {
			return c.Elem(from)
		}
		return def
	}
}

func elemOfInput(i int) func(*InferContext) DataType {
	return func(c *InferContext) DataType { return c.Elem(i) }
}

// inferLikeInput0 gives output 0 input 0's shape with an element type from
// an attribute (or input 0's).
func inferLikeInput0(elem func(*InferContext) DataType) InferFunc {
	return func(c *InferContext) (InferResult, error) { return one(withElem(c.Type(0), elem(c))) }
}

// inferFromShapeAttr: a tensor whose shape is the "shape" attribute.
func inferFromShapeAttr(elem func(*InferContext) DataType) InferFunc {
	return func(c *InferContext) (InferResult, error) {
		s, ok := c.AttrInts("shape")
		if !ok {
			return one(unranked(elem(c)))
		}
		return one(TensorOfSizes(elem(c), s...))
	}
}

// inferFixed returns a rule whose single output always has type t.
func inferFixed(t Type) InferFunc {
	return func(*InferContext) (InferResult, error) { return one(t.Clone()) }
}

// inferWindow: a 1-D window of the input's (scalar) length.
func inferWindow(c *InferContext) (InferResult, error) {
	elem := DataType(c.AttrInt("output_datatype", int64(Float)))
	return one(shaped(elem, []Dim{scalarSym(c, 0).Dim()}))
}

func init() {
	same := inferSameAsInput0
	unary := func(op, doc string) { onnx(op, in1, out1, same, doc) }
	for _, op := range []string{"Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh",
		"Erf", "Exp", "Floor", "Log", "Reciprocal", "Relu", "Round", "Sigmoid", "Sign", "Sin", "Sinh",
		"Softplus", "Softsign", "Sqrt", "Tan", "Tanh", "Elu", "Selu", "Celu", "LeakyRelu", "ThresholdedRelu",
		"HardSigmoid", "HardSwish", "Mish", "Shrink", "Gelu", "Swish", "BitwiseNot", "Hardmax", "Softmax",
		"LogSoftmax", "LpNormalization", "MeanVarianceNormalization", "LRN"} {
		unary(op, "elementwise (or along an axis); output has the input's type")
	}
	onnx("Neg", in1, out1, inferNegAbs, "output has the input's type; negates integer contents")
	onnx("Abs", in1, out1, inferNegAbs, "output has the input's type; absolute value of integer contents")
	onnx("Identity", in1, out1, same, "output has the input's type (tensors, sequences, optionals); keeps shape-tensor contents")
	onnx("IsNaN", in1, out1, inferUnaryTo(Bool), "bool of the input's shape")
	onnx("IsInf", in1, out1, inferUnaryTo(Bool), "bool of the input's shape")
	onnx("Not", in1, out1, inferNot, "bool of the input's shape; negates known contents")
	onnx("CumSum", in2, out1, same, "output has the input's type")
	onnx("Trilu", arity{1, 2}, out1, same, "output has the input's type")
	onnx("ReverseSequence", in2, out1, same, "output has the input's type")
	onnx("Clip", arity{1, 3}, out1, inferClip, "output has the input's type")
	onnx("Cast", in1, out1, inferCast, "input's shape, element type from `to`; keeps integer contents")
	onnx("CastLike", in2, out1, inferCastLike, "input's shape, element type of input 1")
	onnx("Dropout", arity{1, 3}, arity{1, 2}, inferDropout, "output is the input; mask is bool (opset 10+) of the same shape")
	onnx("EyeLike", in1, out1, inferEyeLike, "input's shape, element type from dtype")
	onnx("Bernoulli", in1, out1, inferLikeInput0(elemFromAttrOr("dtype", Undefined, 0)), "input's shape, element type from dtype")
	onnx("RandomNormalLike", in1, out1, inferLikeInput0(elemFromAttrOr("dtype", Undefined, 0)), "input's shape, element type from dtype")
	onnx("RandomUniformLike", in1, out1, inferLikeInput0(elemFromAttrOr("dtype", Undefined, 0)), "input's shape, element type from dtype")
	onnx("RandomNormal", in0, out1, inferFromShapeAttr(elemFromAttrOr("dtype", Float, -1)), "shape from the shape attribute")
	onnx("RandomUniform", in0, out1, inferFromShapeAttr(elemFromAttrOr("dtype", Float, -1)), "shape from the shape attribute")
	onnx("Multinomial", in1, out1, nil, "")
	for _, op := range []string{"HannWindow", "HammingWindow", "BlackmanWindow"} {
		onnx(op, in1, out1, inferWindow, "1-D of the (scalar) size input")
	}

	bcast := inferBroadcast(Undefined)
	cmp := inferBroadcast(Bool)
	for _, op := range []string{"Add", "Mul", "BitwiseAnd", "BitwiseOr", "BitwiseXor"} {
		onnxComm(op, in2, out1, legacyBroadcast(bcast), "numpy broadcasting; shape-tensor arithmetic on contents")
	}
	for _, op := range []string{"Sub", "Div", "Mod", "BitShift"} {
		onnx(op, in2, out1, legacyBroadcast(bcast), "numpy broadcasting; shape-tensor arithmetic on contents")
	}
	for _, op := range []string{"And", "Or", "Xor", "Equal"} {
		onnxComm(op, in2, out1, legacyBroadcast(cmp), "numpy broadcasting, bool output")
	}
	for _, op := range []string{"Less", "Greater", "LessOrEqual", "GreaterOrEqual"} {
		onnx(op, in2, out1, legacyBroadcast(cmp), "numpy broadcasting, bool output")
	}
	onnx("Pow", in2, out1, legacyBroadcast(inferPow), "numpy broadcasting; the base's element type")
	onnx("PRelu", in2, out1, inferPRelu, "slope broadcasts to X; output has X's type")
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		onnxComm(op, oneUp, out1, bcast, "variadic numpy broadcasting; Max/Min/Sum on contents")
	}
	onnx("Where", in3, out1, inferWhere, "broadcasts condition, X, Y; picks contents by a known condition")

	onnx("MatMul", in2, out1, inferMatMul(0, 1, 0, Undefined), "batch broadcasting, 1-D promotion; checks the inner dimension")
	onnx("MatMulInteger", arity{2, 4}, out1, inferMatMul(0, 1, -1, Int32), "MatMul shape, int32")
	onnx("QLinearMatMul", arity{8, 8}, out1, inferMatMul(0, 3, 7, Undefined), "MatMul shape, the output zero point's type")
	onnx("Gemm", arity{2, 3}, out1, inferGemm, "[M, N] with transA/transB; checks the inner dimension")
	onnx("Einsum", oneUp, out1, inferEinsum, "parses the equation (explicit, implicit, ellipsis)")

	onnx("LayerNormalization", arity{2, 3}, arity{1, 3}, inferLayerNorm, "Y is X; Mean/InvStdDev [dims before axis, 1...]")
	onnx("RMSNormalization", in2, out1, same, "Y is X")
	onnx("GroupNormalization", in3, out1, same, "Y is X")
	onnx("InstanceNormalization", in3, out1, same, "Y is X")
	onnx("BatchNormalization", arity{5, 5}, arity{1, 5}, inferBatchNorm, "Y is X; training outputs like mean/var")
	onnx("Attention", arity{3, 7}, arity{1, 4}, inferAttention("q_num_heads", "kv_num_heads"), "3-D or 4-D Q/K/V; Y, present K/V (past+kv length), QK output")
	onnx("RotaryEmbedding", arity{3, 4}, out1, same, "output has the input's type")

	onnx("Reshape", arity{1, 2}, out1, inferReshape, "0 copies, -1 resolves symbolically (input product / other dims); shape from contents")
	onnx("Transpose", in1, out1, inferTranspose, "permutes dims by perm (reversed by default)")
	onnx("Flatten", in1, out1, inferFlatten, "2-D, products of dims before/after axis (symbolic products)")
	onnx("Squeeze", arity{1, 2}, out1, inferSqueeze, "axes attribute (<13) or input; keeps contents")
	onnx("Unsqueeze", arity{1, 2}, out1, inferUnsqueeze, "axes attribute (<13) or input; keeps contents")
	onnx("Concat", oneUp, out1, inferConcat, "sums the axis (symbolically), unifies the rest; concatenates contents")
	onnx("Split", arity{1, 2}, oneUp, inferSplit, "split sizes (attribute <13, input), num_outputs (18), or even")
	onnx("Slice", arity{1, 5}, out1, inferSlice, "known bounds (attributes <10, inputs); slices contents")
	onnx("Gather", in2, out1, inferGather, "data[:axis] + indices + data[axis+1:]; picks contents")
	onnx("GatherElements", in2, out1, inferGatherElements, "indices' shape")
	onnx("GatherND", in2, out1, inferGatherND, "indices[:-1] + data[batch_dims+k:]")
	onnx("ScatterND", arity{3, 3}, out1, same, "output has the data's type")
	onnx("ScatterElements", arity{3, 3}, out1, same, "output has the data's type")
	onnx("Scatter", arity{3, 3}, out1, same, "output has the data's type")
	onnx("TensorScatter", arity{2, 3}, out1, same, "output has the cache's type")
	onnx("Expand", in2, out1, inferExpand, "broadcasts with the target shape's contents")
	onnx("Tile", arity{2, 3}, out1, inferTile, "dims times repeats (symbolic)")
	onnx("Pad", arity{1, 4}, out1, inferPad, "dims plus pads (attribute <11, input; axes 18+)")
	onnx("Shape", in1, out1, inferShape, "int64 [end-start]; contents are the dims")
	onnx("Size", in1, out1, inferSize, "int64 scalar; contents are the dims' product")
	onnx("ConstantOfShape", in1, out1, inferConstantOfShape, "shape from the input's contents; type from value")
	onnx("Constant", in0, out1, inferConstant, "type from value/value_*; contents of small integer tensors")
	onnx("Range", in3, out1, inferRange, "known count, or limit-start for delta 1 (symbolic)")
	reduceOps := []string{"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare"}
	for _, op := range reduceOps {
		onnx(op, arity{1, 2}, out1, inferReduce(18), "axes (attribute <18, input), keepdims, noop_with_empty_axes")
	}
	onnx("ReduceSum", arity{1, 2}, out1, inferReduce(13), "axes (attribute <13, input), keepdims, noop_with_empty_axes")
	onnx("ArgMax", in1, out1, inferArgReduce, "int64, axis reduced or kept as 1")
	onnx("ArgMin", in1, out1, inferArgReduce, "int64, axis reduced or kept as 1")
	onnx("TopK", arity{1, 2}, arity{2, 2}, inferTopK, "axis replaced by K (symbolic when K is); int64 indices")
	onnx("NonZero", in1, out1, inferNonZero, "int64 [rank, unknown count]")
	onnx("OneHot", in3, out1, inferOneHot, "inserts depth at axis")
	onnx("DepthToSpace", in1, out1, inferDepthToSpace, "[N, C/b², H·b, W·b]")
	onnx("SpaceToDepth", in1, out1, inferSpaceToDepth, "[N, C·b², H/b, W/b]")
	onnx("Compress", in2, out1, inferCompress, "the compressed axis has an unknown length")
	onnx("Resize", arity{1, 4}, out1, inferResize, "dims from sizes contents or known scales")
	onnx("Upsample", arity{1, 2}, out1, inferResize, "dims from known scales")
	onnx("Unique", in1, arity{1, 4}, inferUnique, "1-D (or the axis) of unknown length; int64 indices")
	onnx("Det", in1, out1, inferDet, "drops the two matrix dimensions")
	onnx("CumProd", in2, out1, same, "output has the input's type")
	for _, op := range []string{"RNN", "GRU", "LSTM"} {
		onnx(op, arity{3, 8}, arity{0, 3}, inferRNN, "Y [seq, dirs, batch, hidden] (layout 0), Y_h/Y_c [dirs, batch, hidden]")
	}
	onnx("QuantizeLinear", arity{2, 3}, out1, inferQuantizeLinear, "input's shape, zero point's type")
	onnx("DequantizeLinear", arity{2, 3}, out1, inferDequantizeLinear, "input's shape, scale's type")
	onnx("DynamicQuantizeLinear", in1, arity{3, 3}, inferDynamicQuantizeLinear, "uint8 of the input's shape, scalar scale and zero point")

	onnx("If", in1, oneUp, inferIf, "what both branches' outputs agree on")
	onnx("Loop", arity{2, -1}, anyN, inferLoop, "carried values: what the initial value and the body agree on; scan outputs get a leading unknown dim")
	onnx("Scan", oneUp, anyN, inferScan, "states like Loop; scan outputs insert the sequence length (opset 9+)")

	convElem := func(c *InferContext) DataType { return c.Elem(0) }
	onnx("Conv", arity{2, 3}, out1, inferConvLike(1, convElem, false), "[N, M, spatial] with kernel, strides, pads, dilations, auto_pad")
	onnx("ConvInteger", arity{2, 4}, out1, inferConvLike(1, func(*InferContext) DataType { return Int32 }, false), "Conv shape, int32")
	onnx("QLinearConv", arity{8, 9}, out1, inferConvLike(3, elemOfInput(7), false), "Conv shape, output zero point's type")
	onnx("ConvTranspose", arity{2, 3}, out1, inferConvTranspose, "[N, W[1]·group, spatial] or output_shape")
	onnx("MaxPool", in1, arity{1, 2}, inferConvLike(-1, convElem, true), "window formula; int64 indices")
	onnx("AveragePool", in1, out1, inferConvLike(-1, convElem, true), "window formula")
	onnx("LpPool", in1, out1, inferConvLike(-1, convElem, true), "window formula")
	onnx("GlobalAveragePool", in1, out1, inferGlobalPool, "[N, C, 1, ...]")
	onnx("GlobalMaxPool", in1, out1, inferGlobalPool, "[N, C, 1, ...]")
	onnx("GlobalLpPool", in1, out1, inferGlobalPool, "[N, C, 1, ...]")

	// Ops registered for their arity only.
	for _, a := range []struct {
		op      string
		in, out arity
	}{
		{"MaxRoiPool", in2, out1}, {"MaxUnpool", arity{2, 3}, out1},
		{"AffineGrid", in2, out1},
		{"Col2Im", in3, out1}, {"CenterCropPad", in2, out1}, {"DFT", arity{1, 3}, out1}, {"STFT", arity{2, 4}, out1},
		{"MelWeightMatrix", arity{5, 5}, out1}, {"SequenceMap", oneUp, oneUp}, {"StringNormalizer", in1, out1}, {"StringConcat", in2, out1},
		{"StringSplit", in1, arity{2, 2}}, {"RegexFullMatch", in1, out1}, {"TfIdfVectorizer", in1, out1},
		{"ImageDecoder", in1, out1}, {"DeformConv", arity{3, 5}, out1},
	} {
		onnx(a.op, a.in, a.out, nil, "")
	}

	onnx("SequenceConstruct", oneUp, out1, inferSequenceConstruct, "a sequence of what the inputs' types share")
	onnx("SequenceEmpty", in0, out1, inferSequenceEmpty, "a sequence of dtype tensors")
	onnx("SequenceAt", in2, out1, inferSequenceAt, "the sequence's element type")
	onnx("SequenceInsert", arity{2, 3}, out1, inferSequenceInsert, "the sequence, element type shared with the tensor")
	onnx("SequenceErase", arity{1, 2}, out1, inferSequenceErase, "the sequence's type")
	onnx("SequenceLength", in1, out1, inferFixed(TensorOf(Int64)), "int64 scalar")
	onnx("SplitToSequence", arity{1, 2}, out1, inferSplitToSequence, "a sequence of the input's element type")
	onnx("ConcatFromSequence", in1, out1, inferConcatFromSequence, "the element type; rank +1 with new_axis")
	onnx("Optional", arity{0, 1}, out1, inferOptional, "an optional of the input's type or the type attribute")
	onnx("OptionalGetElement", in1, out1, inferOptionalGetElement, "the optional's element type")
	onnx("OptionalHasElement", arity{0, 1}, out1, inferFixed(TensorOf(Bool)), "bool scalar")
	onnx("NegativeLogLikelihoodLoss", arity{2, 3}, out1, inferLoss, "scalar for mean/sum, the target's shape for none")
	onnx("SoftmaxCrossEntropyLoss", arity{2, 3}, arity{1, 2}, inferLoss, "loss like NLL; log_prob has the scores' shape")
	onnx("GridSample", in2, out1, inferGridSample, "[N, C] + the grid's spatial dims")
	onnx("RoiAlign", in3, out1, inferRoiAlign, "[num_rois, C, output_height, output_width]")
	onnx("NonMaxSuppression", arity{2, 5}, out1, inferNonMaxSuppression, "int64 [selected, 3]")

	// These rules compute output sizes only from known sizes (window
	// arithmetic with floors, float scales); symbols pass through the
	// batch and channel dimensions but do not enter the arithmetic.
	for _, op := range []string{"Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "Resize", "Upsample"} {
		opTable[opKey("", op)].Symbolic = false
	}

	// com.microsoft ops that transformer exports carry.
	reg("com.microsoft", "SkipLayerNormalization", arity{3, 5}, arity{1, 4}, false, true, inferSkipLayerNorm(3), "output 0 and the sum (output 3) have X's type")
	reg("com.microsoft", "SkipSimplifiedLayerNormalization", arity{3, 4}, arity{1, 4}, false, true, inferSkipLayerNorm(3), "output 0 and the sum (output 3) have X's type")
	reg("com.microsoft", "BiasGelu", in2, out1, false, true, inferBroadcast(Undefined), "broadcasts X and bias")
	reg("com.microsoft", "FastGelu", arity{1, 2}, out1, false, true, inferBroadcast(Undefined), "broadcasts X and bias")
	reg("com.microsoft", "Gelu", in1, out1, false, true, same, "output has the input's type")

	// tfc's own ops (DESIGN.md, "Ops tfc adds"). Placeholder rules that
	// the fusion passes refine.
	reg("tfc", "Attention", arity{3, 5}, out1, false, true, inferTfcAttention, "Q [B,Hq,Sq,D], K [B,Hkv,Skv,D], V [B,Hkv,Skv,Dv], optional additive bias and boolean keep mask; Y [B,Hq,Sq,Dv]")
	reg("tfc", "LayerNorm", arity{1, 3}, out1, false, true, same, "X, optional Scale and B (any float type, broadcast over the normalized axes); attributes axis (default -1), epsilon; Y has X's type and shape")
	reg("tfc", "SkipLayerNorm", arity{3, 5}, arity{1, 2}, false, true, inferSkipLayerNorm(1), "X, Skip, Scale, optional B and Bias; sum = X+Skip(+Bias) broadcast to X, Y = LayerNorm(sum) over the last axis (epsilon); Y and the optional sum (output 1) have X's type")
	reg("tfc", "RMSNorm", arity{1, 2}, out1, false, true, same, "X, optional Scale; attributes axis (default -1), epsilon; Y = X / sqrt(mean(X^2) + epsilon) * Scale has X's type and shape")
	reg("tfc", "SkipRMSNorm", arity{3, 4}, arity{1, 2}, false, true, inferSkipLayerNorm(1), "X, Skip, Scale, optional Bias; sum = X+Skip(+Bias) broadcast to X, Y = RMSNorm(sum) over the last axis (epsilon); Y and the optional sum (output 1) have X's type")
	reg("tfc", "Gelu", in1, out1, false, true, same, "attribute approximate none (erf) or tanh; output has the input's type")
	reg("tfc", "BiasGelu", in2, out1, false, true, inferBroadcast(Undefined), "Gelu(X + Bias), attribute approximate none or tanh; broadcasts X and the 1-D Bias")
	reg("tfc", "PackTokens", in2, arity{3, 3}, false, true, inferPackTokens, "packed [T, ...] (T unknown), offsets [B+1], index [T]")
	reg("tfc", "UnpackTokens", arity{3, 4}, out1, false, true, inferUnpackTokens, "[B, S, ...]: B from offsets, B and S from the optional padded input")
}
