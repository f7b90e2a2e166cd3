package passes

import (
	"fmt"
	"strings"

	"github.com/tfc-compiler/tfc/ir"
)

// explainNonSoftmaxAttention covers the attention kinds fuse-attention has
// no op for. Kernel (Performer/FAVOR+), linear and LSH (Reformer)
// attention never reach a Softmax, so explainSoftmaxes has no anchor for
// them. When a graph has no Softmax and kept no fused attention at all but
// still multiplies
// two computed tensors (a MatMul or two-input Einsum with no constant
// operand: the QK^T or PV product of attention), --explain says so once
// for that graph and names the products. Graphs where some attention fused
// are left alone, because there such products are usually position-bias
// terms, not unfused attention.
func explainNonSoftmaxAttention(pass string, g *ir.Graph) []Explanation {
	fused := false
	var products []string
	g.Walk(func(n *ir.Node) {
		if (n.Domain == "tfc" && (n.Op == "Attention" || n.Op == "PackedAttention")) || (n.Domain == "" && n.Op == "Softmax") {
			fused = true // fused, or explained at its Softmax by explainSoftmaxes
		}
		if n.Domain != "" || (n.Op != "MatMul" && n.Op != "Einsum") || len(n.Inputs) != 2 {
			return
		}
		if computed(n.Inputs[0]) && computed(n.Inputs[1]) {
			products = append(products, n.Op+" "+nodeLabel(n))
		}
	})
	if fused || len(products) == 0 {
		return nil
	}
	const show = 6
	more := ""
	if len(products) > show {
		more = fmt.Sprintf(" and %d more", len(products)-show)
		products = products[:show]
	}
	return []Explanation{{
		Pass:   pass,
		Rule:   ruleAttention,
		Anchor: "graph " + g.Name,
		Reason: fmt.Sprintf("no Softmax attention was found, but products of two computed tensors were: %s%s; attention normalized without Softmax (kernel/linear feature maps, LSH buckets with logsumexp) has no fused tfc op, so it is left as is", strings.Join(products, ", "), more),
		Nodes:  products,
	}}
}

// computed reports whether v is produced by a node (not a constant or a
// graph input).
func computed(v *ir.Value) bool {
	if v == nil || v.IsConst() {
		return false
	}
	p, _ := v.Producer()
	return p != nil && p.Op != "Constant"
}
