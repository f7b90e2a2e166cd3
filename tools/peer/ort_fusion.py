#!/usr/bin/env python3
"""Runs ONNX Runtime's transformer optimizer on every corpus model and
records its fusion statistics, for the fusion table in docs/fusion.md.

    .venv/bin/python tools/peer/ort_fusion.py testdata/models > testdata/models/ORT_FUSION.tsv

For each model the optimizer gets the model_type that fits its architecture
(MANIFEST.tsv); architectures it has no type for get "bert" (its generic
encoder fusions), and the choice is recorded. The optimizer is first run
with num_heads=0 and hidden_size=0 (it detects them from the graph); when
that fuses no attention, it is run again with each (num_heads, hidden_size)
of the tiny corpus configurations and the best result is kept, so ONNX
Runtime gets every chance a careful user would give it. Counts are those of
`get_fused_operator_statistics()`; "Attention" sums Attention,
MultiHeadAttention, GroupQueryAttention and their packed forms, and
"LayerNorm" includes EmbedLayerNormalization.

With --time MODEL it instead times one optimize_model call (median of 5) on
MODEL, for the compile-time comparison.
"""
import argparse
import csv
import io
import logging
import os
import statistics
import sys
import time
import contextlib

from onnxruntime.transformers import optimizer

MODEL_TYPE = {
    "BERT": "bert", "RoBERTa": "bert", "ALBERT": "bert", "DistilBERT": "bert", "ELECTRA": "bert",
    "DeBERTa-v2": "bert", "BigBird": "bert", "Funnel Transformer": "bert", "Linformer": "bert",
    "Performer": "bert", "Reformer": "bert", "XLNet": "bert", "Sparse Transformer": "bert",
    "GPT-2": "gpt2", "LaMDA (stand-in)": "gpt2", "Llama": "gpt2", "Mistral": "gpt2",
    "T5": "t5", "BART": "bart", "ViT": "vit", "Swin": "swin",
    "torch.nn.Transformer (encoder-decoder)": "bart",
}
ATTENTION_OPS = ("Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention",
                 "PackedMultiHeadAttention", "DecoderMaskedMultiHeadAttention", "DecoderAttention")


HEAD_CONFIGS = [(0, 0), (2, 32), (2, 64), (4, 32), (4, 64), (8, 64)]


def optimize(path, model_type, num_heads=0, hidden_size=0):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return optimizer.optimize_model(path, model_type=model_type, num_heads=num_heads, hidden_size=hidden_size, opt_level=0)


def counts(stats):
    return {
        "Attention": sum(stats.get(k, 0) for k in ATTENTION_OPS),
        "LayerNorm": stats.get("LayerNormalization", 0) + stats.get("EmbedLayerNormalization", 0),
        "SkipLayerNorm": stats.get("SkipLayerNormalization", 0),
        "RMSNorm": stats.get("SimplifiedLayerNormalization", 0) + stats.get("SkipSimplifiedLayerNormalization", 0),
        "Gelu": stats.get("Gelu", 0) + stats.get("FastGelu", 0),
        "BiasGelu": stats.get("BiasGelu", 0),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="testdata/models")
    ap.add_argument("--time", help="time the optimizer on this model instead")
    ap.add_argument("--model-type", default="bert")
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    if args.time:
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            optimize(args.time, args.model_type)
            times.append(time.perf_counter() - t0)
        print(f"ort_optimizer_median_s\t{statistics.median(times):.3f}\tall={','.join(f'{t:.3f}' for t in times)}")
        return

    with open(os.path.join(args.root, "MANIFEST.tsv")) as f:
        manifest = list(csv.DictReader(f, delimiter="\t"))
    cols = ["name", "model_type", "heads_hidden", "Attention", "LayerNorm", "SkipLayerNorm", "RMSNorm", "Gelu", "BiasGelu", "error"]
    print("\t".join(cols))
    for row in manifest:
        path = os.path.join(args.root, row["name"], "model.onnx")
        if not os.path.exists(path):
            continue
        mt = MODEL_TYPE.get(row["architecture"], "bert")
        out = {c: 0 for c in cols}
        out["name"], out["model_type"], out["error"] = row["name"], mt, ""
        best, errors = None, []
        for nh, hs in HEAD_CONFIGS:
            try:
                c = counts(optimize(path, mt, nh, hs).get_fused_operator_statistics())
            except Exception as e:  # record, do not hide
                errors.append(f"{type(e).__name__}: {e}".replace("\t", " ").replace("\n", " ")[:160])
                continue
            if best is None or (c["Attention"], sum(c.values())) > (best[1]["Attention"], sum(best[1].values())):
                best = (f"{nh}/{hs}", c)
            if nh == 0 and c["Attention"] > 0:
                break
        if best:
            out["heads_hidden"] = best[0]
            out.update(best[1])
        if errors and not best:
            out["error"] = errors[0]
        print("\t".join(str(out[c]) for c in cols), flush=True)


if __name__ == "__main__":
    main()
