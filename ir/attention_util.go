package ir

import "fmt"

// inferTfcAttention is the type rule of tfc.Attention (see
// docs/fusion.md, "Attention fusion"): Q [B, Hq, Sq, D], K [B, Hkv, Skv,
// D], V [B, Hkv, Skv, Dv], an optional additive bias and an optional
// boolean keep mask that broadcast to [B, Hq, Sq, Skv]; Y is [B, Hq, Sq, Dv] with Q's element type.
func inferTfcAttention(c *InferContext) (InferResult, error) {
	q, k, v := c.Type(0), c.Type(1), c.Type(2)
	elem := c.Elem(0)
	if q.Rank() < 0 || k.Rank() < 0 || v.Rank() < 0 {
		return one(unranked(elem))
	}
	if q.Rank() != 4 || k.Rank() != 4 || v.Rank() != 4 {
		return InferResult{}, fmt.Errorf("Q, K and V must be 4-D [batch, heads, seq, head_size], have ranks %d, %d, %d", q.Rank(), k.Rank(), v.Rank())
	}
	if q.Shape[3].Conflicts(k.Shape[3]) {
		return InferResult{}, fmt.Errorf("Q head size %v differs from K's %v", q.Shape[3], k.Shape[3])
	}
	if k.Shape[2].Conflicts(v.Shape[2]) || k.Shape[1].Conflicts(v.Shape[1]) {
		return InferResult{}, fmt.Errorf("K %v and V %v disagree on heads or sequence", k, v)
	}
	hq, hkv := q.Shape[1], k.Shape[1]
	if hq.IsKnown() && hkv.IsKnown() && (hkv.Size == 0 || hq.Size%hkv.Size != 0) {
		return InferResult{}, fmt.Errorf("%d query heads are not a multiple of %d key/value heads", hq.Size, hkv.Size)
	}
	if n := c.AttrInt("num_heads", 0); n > 0 && hq.IsKnown() && hq.Size != n {
		return InferResult{}, fmt.Errorf("num_heads is %d but Q has %d heads", n, hq.Size)
	}
	if n := c.AttrInt("kv_num_heads", 0); n > 0 && hkv.IsKnown() && hkv.Size != n {
		return InferResult{}, fmt.Errorf("kv_num_heads is %d but K has %d heads", n, hkv.Size)
	}
	for i, what := range []string{3: "additive bias", 4: "keep mask"} {
		if i >= 3 && c.Has(i) && c.Type(i).Rank() > 4 {
			return InferResult{}, fmt.Errorf("the %s has rank %d, more than 4", what, c.Type(i).Rank())
		}
	}
	return one(shaped(elem, []Dim{q.Shape[0], hq, q.Shape[2], v.Shape[3]}))
}
