#!/usr/bin/env python3
"""Compile time: tfc -O2 against ONNX Runtime's transformer optimizer, on
the same model, same machine, same run (rounds interleaved so both see the
same noise).

    go build -o /tmp/tfc ./cmd/tfc
    .venv/bin/python tools/peer/compile_time.py --tfc /tmp/tfc MODEL.onnx --model-type bert --num-heads 12 --hidden 768

Per round it measures:
  tfc end to end: `tfc compile MODEL -o OUT -O2` wall time (decode, passes,
      verify, encode, fsync, rename);
  tfc pipeline: the pass pipeline alone, from the --report JSON;
  ORT optimize: optimize_model(..., opt_level=0) wall time (load, the Python
      transformer fusions; no save; opt_level 0 because higher levels first run
      an ONNX Runtime session and import torch);
  ORT end to end: optimize_model + save_model_to_file.
Prints medians and the ratios.
"""
import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import tempfile
import time

from onnxruntime.transformers import optimizer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tfc", required=True)
    ap.add_argument("--model-type", default="bert")
    ap.add_argument("--num-heads", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    res = {"tfc_e2e": [], "tfc_pipeline": [], "ort_opt": [], "ort_e2e": []}
    with tempfile.TemporaryDirectory() as tmp:
        out, rep = os.path.join(tmp, "tfc.onnx"), os.path.join(tmp, "rep.json")
        ort_out = os.path.join(tmp, "ort.onnx")
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run([args.tfc, "compile", args.model, "-o", out, "-O2", "--report", rep], check=True)
            res["tfc_e2e"].append(time.perf_counter() - t0)
            with open(rep) as f:
                res["tfc_pipeline"].append(json.load(f)["total_ms"] / 1000)
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                m = optimizer.optimize_model(args.model, model_type=args.model_type, num_heads=args.num_heads, hidden_size=args.hidden, opt_level=0)
            t1 = time.perf_counter()
            m.save_model_to_file(ort_out)
            t2 = time.perf_counter()
            res["ort_opt"].append(t1 - t0)
            res["ort_e2e"].append(t2 - t0)
            fused = m.get_fused_operator_statistics()
    med = {k: statistics.median(v) for k, v in res.items()}
    for k, v in res.items():
        print(f"{k:14s} median {med[k]*1000:9.1f} ms   runs: {', '.join(f'{x*1000:.0f}' for x in v)}")
    print(f"ORT optimize / tfc end-to-end: {med['ort_opt']/med['tfc_e2e']:.1f}x")
    print(f"ORT end-to-end / tfc end-to-end: {med['ort_e2e']/med['tfc_e2e']:.1f}x")
    print(f"ORT fused: { {k: v for k, v in fused.items() if v} }")


if __name__ == "__main__":
    main()
