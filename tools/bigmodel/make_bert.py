#!/usr/bin/env python3
"""Writes a BERT-shaped ONNX model with random weights, for memory and speed
work on large files (not committed: BERT-large is about 1.3 GB).

    .venv/bin/python tools/bigmodel/make_bert.py --size large -o /tmp/bert-large.onnx

The graph is what the TorchScript exporter writes for BERT, written by hand
with onnx.helper so that no deep-learning framework is needed: embeddings
(word + position + token type, LayerNormalization), then per layer Q/K/V
MatMul+Add, Reshape/Transpose into heads, scaled QK^T with an additive
padding mask, Softmax, context MatMul, output projection, residual +
LayerNormalization, an erf-GELU feed-forward block, residual +
LayerNormalization; a tanh pooler on the first token. Opset 17. Weights are
float32 from a fixed seed, stored inline (raw_data), so the file is one
protobuf message under 2 GiB.
"""
import argparse
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = {
    # name: (layers, hidden, heads, intermediate)
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="large")
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    layers, hidden, heads, inter = SIZES[args.size]
    head_dim = hidden // heads
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name, *shape, scale=0.02):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape, dtype=np.float32) * scale), name))
        return name

    def const(name, values, dtype=np.int64):
        inits.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    counter = [0]

    def node(op, inputs, n_out=1, **attrs):
        counter[0] += 1
        outs = [f"/{op}_{counter[0]}_out{i}" for i in range(n_out)]
        nodes.append(helper.make_node(op, inputs, outs, name=f"/{op}_{counter[0]}", **attrs))
        return outs[0] if n_out == 1 else outs

    def layernorm(x, prefix):
        return node("LayerNormalization", [x, weight(prefix + ".weight", hidden, scale=1.0), weight(prefix + ".bias", hidden)], axis=-1, epsilon=1e-12)

    def linear(x, prefix, n_in, n_out):
        return node("Add", [node("MatMul", [x, weight(prefix + ".weight", n_in, n_out)]), weight(prefix + ".bias", n_out)])

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    tt = helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"])

    # Embeddings.
    shape = node("Shape", ["input_ids"])
    seq = node("Gather", [shape, const("c_one", 1)], axis=0)
    pos = node("Unsqueeze", [node("Range", [const("c_zero", 0), seq, const("c_step", 1)]), const("c_axes0", [0])])
    emb = node("Add", [node("Gather", [weight("embeddings.word", args.vocab, hidden), "input_ids"]),
                       node("Gather", [weight("embeddings.token_type", 2, hidden), "token_type_ids"])])
    emb = node("Add", [emb, node("Gather", [weight("embeddings.position", 512, hidden), pos])])
    h = layernorm(emb, "embeddings.LayerNorm")

    # Additive mask: (1 - mask) * -10000, shaped [batch, 1, 1, seq].
    m = node("Cast", [node("Unsqueeze", ["attention_mask", const("c_axes12", [1, 2])])], to=TensorProto.FLOAT)
    m = node("Mul", [node("Sub", [const("c_onef", 1.0, np.float32), m]), const("c_neg", -10000.0, np.float32)])

    heads_shape = const("c_heads_shape", [0, 0, heads, head_dim])
    merge_shape = const("c_merge_shape", [0, 0, hidden])
    scale = const("c_scale", 1.0 / math.sqrt(head_dim), np.float32)
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def split_heads(x, perm=(0, 2, 1, 3)):
            return node("Transpose", [node("Reshape", [x, heads_shape])], perm=list(perm))

        q = split_heads(linear(h, p + ".attention.self.query", hidden, hidden))
        k = split_heads(linear(h, p + ".attention.self.key", hidden, hidden), (0, 2, 3, 1))
        v = split_heads(linear(h, p + ".attention.self.value", hidden, hidden))
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), m])
        ctx = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        attn = linear(ctx, p + ".attention.output.dense", hidden, hidden)
        h = layernorm(node("Add", [attn, h]), p + ".attention.output.LayerNorm")
        f = linear(h, p + ".intermediate.dense", hidden, inter)
        f = node("Mul", [node("Mul", [f, node("Add", [node("Erf", [node("Div", [f, const(f"c_sqrt2_{i}", math.sqrt(2.0), np.float32)])]), const(f"c_one_{i}", 1.0, np.float32)])]), const(f"c_half_{i}", 0.5, np.float32)])
        f = linear(f, p + ".output.dense", inter, hidden)
        h = layernorm(node("Add", [f, h]), p + ".output.LayerNorm")

    first = node("Gather", [h, const("c_zero_idx", 0)], axis=1)
    pooled = node("Tanh", [linear(first, "pooler.dense", hidden, hidden)])
    nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"], name="/out0"))
    nodes.append(helper.make_node("Identity", [pooled], ["pooler_output"], name="/out1"))
    outs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden]),
            helper.make_tensor_value_info("pooler_output", TensorProto.FLOAT, ["batch", hidden])]
    graph = helper.make_graph(nodes, f"bert_{args.size}", [ids, mask, tt], outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tfc-tools-bigmodel")
    model.ir_version = 8
    onnx.save(model, args.output)
    n_params = sum(int(np.prod(t.dims)) for t in inits)
    print(f"wrote {args.output}: {len(nodes)} nodes, {n_params} parameters")


if __name__ == "__main__":
    main()
