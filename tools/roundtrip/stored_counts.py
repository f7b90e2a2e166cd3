#!/usr/bin/env python3
"""Records, with the official `onnx` Python package as an independent
decoder, how many nodes and initializers each corpus model stores, so that a
Go test can check tfc's decoder against it.

    .venv/bin/python tools/roundtrip/stored_counts.py testdata/models

Writes testdata/models/STORED_COUNTS.tsv: name, main-graph nodes as stored,
nodes including nested graphs, initializers, sparse initializers, local
functions, graph inputs, graph outputs.
"""
import glob
import os
import sys

import onnx


def nested_nodes(graph):
    n = 0
    for node in graph.node:
        n += 1
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                n += nested_nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                n += sum(nested_nodes(g) for g in a.graphs)
    return n


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "testdata/models"
    rows = []
    for path in sorted(glob.glob(os.path.join(root, "*", "model.onnx"))):
        m = onnx.load(path, load_external_data=False)
        g = m.graph
        rows.append([os.path.basename(os.path.dirname(path)), len(g.node), nested_nodes(g), len(g.initializer),
                     len(g.sparse_initializer), len(m.functions), len(g.input), len(g.output)])
    out = os.path.join(root, "STORED_COUNTS.tsv")
    with open(out, "w") as f:
        f.write("name\tnodes\tnodes_with_subgraphs\tinitializers\tsparse_initializers\tfunctions\tinputs\toutputs\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    print(f"wrote {out}: {len(rows)} models")


if __name__ == "__main__":
    main()
