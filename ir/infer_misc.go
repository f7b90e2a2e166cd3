package ir

// Rules for sequences, optionals, losses and a few vision ops that
// transformer exports rarely carry but the ONNX conformance tests do.

// seqOf returns the sequence type holding elements of type t.
func seqOf(t Type) Type {
	in := t.Clone()
	return Type{Kind: KindSequence, Inner: &in}
}

// inferSequenceConstruct: a sequence of what the inputs share.
func inferSequenceConstruct(c *InferContext) (InferResult, error) {
	if len(c.In) == 0 || c.Type(0).Kind != KindTensor {
		return unknownResult()
	}
	common := c.Type(0)
	for i := 1; i < len(c.In); i++ {
		common = commonType(common, c.Type(i))
	}
	if common.Kind == KindUnknown {
		return unknownResult()
	}
	return one(seqOf(common))
}

// inferSequenceEmpty: a sequence of tensors of dtype (float by default).
func inferSequenceEmpty(c *InferContext) (InferResult, error) {
	return one(seqOf(unranked(DataType(c.AttrInt("dtype", int64(Float))))))
}

// inferSequenceAt: the sequence's element type.
func inferSequenceAt(c *InferContext) (InferResult, error) {
	t := c.Type(0)
	if t.Kind != KindSequence || t.Inner == nil {
		return unknownResult()
	}
	return one(t.Inner.Clone())
}

// inferSequenceInsert: the sequence, its element type widened to what it
// shares with the inserted tensor.
func inferSequenceInsert(c *InferContext) (InferResult, error) {
	t := c.Type(0)
	if t.Kind != KindSequence || t.Inner == nil {
		return unknownResult()
	}
	return one(seqOf(commonType(*t.Inner, c.Type(1))))
}

// inferSequenceErase: the input sequence's type.
func inferSequenceErase(c *InferContext) (InferResult, error) {
	if c.Type(0).Kind != KindSequence {
		return unknownResult()
	}
	return one(c.Type(0).Clone())
}

// inferSplitToSequence: a sequence of tensors of the input's element type;
// with keepdims=0 and no split, the rank drops by one.
func inferSplitToSequence(c *InferContext) (InferResult, error) {
	x := c.Type(0)
	if x.Kind != KindTensor {
		return unknownResult()
	}
	r := x.Rank()
	if r < 0 {
		return one(seqOf(unranked(x.Elem)))
	}
	axis, ok := normAxis(c.AttrInt("axis", 0), r)
	if !ok {
		return one(seqOf(unranked(x.Elem)))
	}
	dims := append([]Dim(nil), x.Shape...)
	if !c.Has(1) && c.AttrInt("keepdims", 1) == 0 {
		dims = append(dims[:axis], dims[axis+1:]...)
	} else {
		dims[axis] = UnknownDim()
	}
	return one(seqOf(shaped(x.Elem, dims)))
}

// inferConcatFromSequence: a tensor of the element type; the rank grows by
// one with new_axis.
func inferConcatFromSequence(c *InferContext) (InferResult, error) {
	t := c.Type(0)
	if t.Kind != KindSequence || t.Inner == nil || t.Inner.Kind != KindTensor {
		return unknownResult()
	}
	in := *t.Inner
	if in.Rank() < 0 {
		return one(unranked(in.Elem))
	}
	r := in.Rank()
	if c.AttrInt("new_axis", 0) != 0 {
		r++
	}
	return one(shaped(in.Elem, unknownDims(r)))
}

// inferOptional: an optional of the input's type, or of the type attribute.
func inferOptional(c *InferContext) (InferResult, error) {
	var in Type
	switch {
	case c.Has(0):
		in = c.Type(0).Clone()
	case c.Node.Attr("type") != nil && c.Node.Attr("type").TypeP != nil:
		in = c.Node.Attr("type").TypeP.Clone()
	default:
		return unknownResult()
	}
	if in.Kind == KindUnknown {
		return unknownResult()
	}
	return one(Type{Kind: KindOptional, Inner: &in})
}

// inferOptionalGetElement: the optional's element type (or the input's own
// type when it is not an optional, opset 18).
func inferOptionalGetElement(c *InferContext) (InferResult, error) {
	t := c.Type(0)
	switch {
	case t.Kind == KindOptional && t.Inner != nil:
		return one(t.Inner.Clone())
	case t.Kind == KindTensor || t.Kind == KindSequence:
		return one(t.Clone())
	}
	return unknownResult()
}

// inferLoss covers NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss:
// the loss is a scalar for mean/sum reduction, else the target's shape;
// SCE's second output (log probabilities) has the scores' shape.
func inferLoss(c *InferContext) (InferResult, error) {
	elem := c.Elem(0)
	loss := TensorOf(elem)
	if c.AttrString("reduction", "mean") == "none" {
		loss = withElem(c.Type(1), elem)
	}
	res := InferResult{Types: []Type{loss}}
	if c.NumOutputs() > 1 {
		res.Types = append(res.Types, tensorType(c.Type(0)))
	}
	return res, nil
}

// inferGridSample: [N, C] + the grid's spatial dimensions.
func inferGridSample(c *InferContext) (InferResult, error) {
	x, grid := c.Type(0), c.Type(1)
	if x.Rank() < 2 || grid.Rank() < 2 {
		return one(unranked(c.Elem(0)))
	}
	out := []Dim{x.Shape[0], x.Shape[1]}
	out = append(out, grid.Shape[1:grid.Rank()-1]...)
	return one(shaped(c.Elem(0), out))
}

// inferRoiAlign: [num_rois, C, output_height, output_width].
func inferRoiAlign(c *InferContext) (InferResult, error) {
	x, rois := c.Type(0), c.Type(1)
	n, ch := UnknownDim(), UnknownDim()
	if rois.Rank() == 2 {
		n = rois.Shape[0]
	}
	if x.Rank() == 4 {
		ch = x.Shape[1]
	}
	return one(shaped(c.Elem(0), []Dim{n, ch, Known(c.AttrInt("output_height", 1)), Known(c.AttrInt("output_width", 1))}))
}

// inferNonMaxSuppression: int64 [selected, 3].
func inferNonMaxSuppression(c *InferContext) (InferResult, error) {
	return one(shaped(Int64, []Dim{UnknownDim(), Known(3)}))
}
