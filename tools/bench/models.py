#!/usr/bin/env python3
"""Whole models: tfc's CPU backend against ONNX Runtime, same run.

For each MODEL and each --batch, with sequence length --seq, it runs
--rounds interleaved rounds on the same (shared, noisy) machine:

  tfc  `tfc bench MODEL --batch B --seq L --threads T --json
        --warmup W --iters I` (a fresh process each round: compile at -O2,
        W untimed runs, I timed runs; its median_ms is the round's value);
  ORT  one InferenceSession per (model, batch), made before the first
       round, graph_optimization_level ORT_ENABLE_ALL,
       intra_op_num_threads T, inter_op_num_threads 1, sequential; each
       round W untimed then I timed sess.run calls, median of those.

The table shows, per (model, batch), the median over rounds of each
side's round medians, and tfc / ORT. Because the machine may be shared,
it also shows CPU milliseconds per run, which depend much less on other
people's load: for ORT the process CPU time over the timed calls (its
worker threads spin while waiting, which counts); for tfc the CPU time of
each bench process minus that of one process that only loads, compiles
and runs once, divided by the runs left (warmup + iters - 1).

Inputs follow `tfc bench`'s rules (token ids uniform in the vocabulary
read from the embedding table the ids index, masks of ones,
token_type_ids zeros, position ids 0..L-1, other floats small normals),
with the same shapes; the token values are not bit-identical to tfc's
(encoder latency does not depend on them).

  .venv/bin/python tools/bench/models.py \\
      ~/.cache/tfc/models/all-minilm-l6-v2/model.onnx \\
      ~/.cache/tfc/models/bert-base-random/model.onnx \\
      --batch 1 8 --seq 128 --threads 2 --rounds 5 --iters 10 [--markdown] [--json]

--tfc names a built tfc binary; without it the script runs
`go build -o <tmp>/tfc ./cmd/tfc` in the repository first.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[2]


def build_tfc(tmp):
    exe = os.path.join(tmp, "tfc")
    subprocess.run(["go", "build", "-o", exe, "./cmd/tfc"], cwd=REPO, check=True)
    return exe


def vocab_sizes(model_path):
    """Maps each graph input to the first dimension of a constant table a
    Gather indexes with it (the vocabulary), as tfc bench does."""
    model = onnx.load(model_path, load_external_data=False)
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[0] in inits:
            dims = inits[node.input[0]]
            if dims:
                out.setdefault(node.input[1], dims[0])
    return out


def synthesize(sess, vocab, batch, seq, rng):
    feeds = {}
    for inp in sess.get_inputs():
        name = inp.name.lower()
        shape = []
        for i, d in enumerate(inp.shape):
            if isinstance(d, int):
                shape.append(d)
            elif (isinstance(d, str) and "batch" in d.lower()) or i == 0:
                shape.append(batch)
            else:
                shape.append(seq)
        if "int64" in inp.type or "int32" in inp.type:
            dtype = np.int64 if "int64" in inp.type else np.int32
            if "mask" in name:
                v = np.ones(shape, dtype)
            elif "token_type" in name:
                v = np.zeros(shape, dtype)
            elif "position" in name:
                v = np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
            else:
                v = rng.integers(0, vocab.get(inp.name, 100), size=shape, dtype=dtype)
        elif "float" in inp.type:
            v = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        elif "bool" in inp.type:
            v = np.ones(shape, bool)
        else:
            raise SystemExit(f"{inp.name}: cannot make {inp.type} inputs")
        feeds[inp.name] = v
    return feeds


def ort_session(model_path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])


def ort_round(sess, feeds, warmup, iters):
    """Median wall ms of the timed calls, and CPU ms per call (this
    process, all threads, including ORT's spinning workers)."""
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    c0 = time.process_time()
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), (time.process_time() - c0) * 1000 / iters


def children_cpu_ms():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (ru.ru_utime + ru.ru_stime) * 1000


def tfc_round(exe, model_path, batch, seq, threads, warmup, iters):
    """Runs one tfc bench process: its median_ms, peak_bytes and the CPU
    ms the whole process used (load and compile included)."""
    c0 = children_cpu_ms()
    out = subprocess.run(
        [exe, "bench", model_path, "--batch", str(batch), "--seq", str(seq), "--threads", str(threads),
         "--warmup", str(warmup), "--iters", str(iters), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    res = json.loads(out)
    return res["median_ms"], res.get("peak_bytes"), children_cpu_ms() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="ONNX model files")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--tfc", help="tfc binary (default: build one)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = args.tfc or build_tfc(tmp)
        for model_path in args.models:
            model_path = os.path.expanduser(model_path)
            vocab = vocab_sizes(model_path)
            for batch in args.batch:
                sess = ort_session(model_path, args.threads)
                feeds = synthesize(sess, vocab, batch, args.seq, np.random.default_rng(1))
                # CPU time of a tfc bench process that only loads, compiles
                # and runs once: subtracted from each round's process CPU
                # time to get tfc's CPU per run.
                _, _, fixed_cpu = tfc_round(exe, model_path, batch, args.seq, args.threads, 0, 1)
                tfc_ms, ort_ms, tfc_cpu, ort_cpu, loads, peak = [], [], [], [], [], None
                for r in range(args.rounds):
                    t, peak, cpu = tfc_round(exe, model_path, batch, args.seq, args.threads, args.warmup, args.iters)
                    o, ocpu = ort_round(sess, feeds, args.warmup, args.iters)
                    tfc_ms.append(t)
                    ort_ms.append(o)
                    tfc_cpu.append(max(0.0, cpu - fixed_cpu) / max(1, args.warmup + args.iters - 1))
                    ort_cpu.append(ocpu)
                    loads.append(os.getloadavg()[0])
                    print(f"# {Path(model_path).parent.name} batch {batch} round {r + 1}/{args.rounds}: "
                          f"tfc {t:.1f} ms ({tfc_cpu[-1]:.0f} CPU ms/run), ORT {o:.1f} ms ({ocpu:.0f} CPU ms/run), "
                          f"load {loads[-1]:.1f}", file=sys.stderr, flush=True)
                del sess
                t, o = statistics.median(tfc_ms), statistics.median(ort_ms)
                tc, oc = statistics.median(tfc_cpu), statistics.median(ort_cpu)
                rows.append({
                    "model": Path(model_path).parent.name or model_path, "path": model_path,
                    "batch": batch, "seq": args.seq, "threads": args.threads,
                    "tfc_median_ms": t, "ort_median_ms": o, "ratio": t / o,
                    "tfc_cpu_ms": tc, "ort_cpu_ms": oc, "cpu_ratio": tc / oc,
                    "tfc_rounds_ms": tfc_ms, "ort_rounds_ms": ort_ms,
                    "tfc_rounds_cpu_ms": tfc_cpu, "ort_rounds_cpu_ms": ort_cpu,
                    "load_avg": loads, "tfc_peak_bytes": peak,
                })
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return
    if args.markdown:
        print("| model | batch | seq | tfc median ms | ORT median ms | tfc / ORT | tfc CPU ms/run | ORT CPU ms/run | CPU tfc / ORT | load avg |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            print(f"| {r['model']} | {r['batch']} | {r['seq']} | {r['tfc_median_ms']:.1f} | "
                  f"{r['ort_median_ms']:.1f} | {r['ratio']:.2f} | {r['tfc_cpu_ms']:.0f} | {r['ort_cpu_ms']:.0f} | "
                  f"{r['cpu_ratio']:.2f} | {min(r['load_avg']):.1f}-{max(r['load_avg']):.1f} |")
        return
    print(f"{'model':<24} {'batch':>5} {'seq':>5} {'tfc ms':>9} {'ORT ms':>9} {'tfc/ORT':>8} {'tfc CPU':>8} {'ORT CPU':>8} {'CPU t/O':>8}")
    for r in rows:
        print(f"{r['model']:<24} {r['batch']:>5} {r['seq']:>5} {r['tfc_median_ms']:>9.1f} "
              f"{r['ort_median_ms']:>9.1f} {r['ratio']:>8.2f} {r['tfc_cpu_ms']:>8.0f} {r['ort_cpu_ms']:>8.0f} {r['cpu_ratio']:>8.2f}")


if __name__ == "__main__":
    main()
