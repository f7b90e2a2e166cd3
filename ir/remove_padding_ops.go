package ir

import "fmt"

// tfc.PackedAttention, the variable-length attention of padding removal
// (docs/fusion.md, "Padding removal"). It sits here rather than in
// ops_table.go because the op belongs to the remove-padding work.
func init() {
	reg("tfc", "PackedAttention", arity{6, 8}, out1, false, true, inferPackedAttention,
		"Q [T,Hq,D], K [T,Hkv,D], V [T,Hkv,Dv], offsets [B+1], index [T], token mask [B,S], optional additive bias and boolean keep mask over [B,Hq,S,S]; Y [T,Hq,Dv]")
}

// inferPackedAttention: Y [T, Hq, Dv] with Q's element type.
func inferPackedAttention(c *InferContext) (InferResult, error) {
	q, k, v := c.Type(0), c.Type(1), c.Type(2)
	elem := c.Elem(0)
	if q.Rank() < 0 || k.Rank() < 0 || v.Rank() < 0 {
		return one(unranked(elem))
	}
	if q.Rank() != 3 || k.Rank() != 3 || v.Rank() != 3 {
		return InferResult{}, fmt.Errorf("packed Q, K and V must be 3-D [tokens, heads, head_size], have ranks %d, %d, %d", q.Rank(), k.Rank(), v.Rank())
	}
	if q.Shape[2].Conflicts(k.Shape[2]) {
		return InferResult{}, fmt.Errorf("Q head size %v differs from K's %v", q.Shape[2], k.Shape[2])
	}
	if k.Shape[1].Conflicts(v.Shape[1]) {
		return InferResult{}, fmt.Errorf("K %v and V %v disagree on heads", k, v)
	}
	hq, hkv := q.Shape[1], k.Shape[1]
	if hq.IsKnown() && hkv.IsKnown() && (hkv.Size == 0 || hq.Size%hkv.Size != 0) {
		return InferResult{}, fmt.Errorf("%d query heads are not a multiple of %d key/value heads", hq.Size, hkv.Size)
	}
	if m := c.Type(5); m.Rank() >= 0 && m.Rank() != 2 {
		return InferResult{}, fmt.Errorf("the token mask must be 2-D [batch, seq], has rank %d", m.Rank())
	}
	return one(shaped(elem, []Dim{q.Shape[0], hq, v.Shape[2]}))
}
