#!/usr/bin/env python3
"""tfc's Go GEMM against ONNX Runtime's MatMul at the BERT shapes, same run.

Builds the benchmark binary of backend/cpu/gemm once, then for each of
--rounds rounds runs (1) BenchmarkFMAPeak, BenchmarkSgemmPacked and
BenchmarkSgemm with -benchtime=<iters>x and (2) tools/bench/matmul.py's
ONNX Runtime measurement with the same number of timed calls, so both
sides see the same (shared, noisy) machine over the same minutes. Each
round gives one GFLOP/s per shape and side (total flops / total time of
its timed calls, after one untimed warm-up call); the table shows the
median over rounds, for 1 and 2 threads:

  tfc     = SgemmPacked (B packed once, as for weights; ORT pre-packs a
            MatMul's constant B too), tfc unpacked = Sgemm;
  % peak  = tfc / (threads x 32 flop/cycle x measured clock), see
            docs/benchmarks.md for the derivation;
  cpu     = GFLOP per CPU-second of the process (user+system time of all
            its threads): robust to other people's load on this machine.

  .venv/bin/python tools/bench/matmul_compare.py [--rounds 5] [--iters 3] [--markdown]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import matmul  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
GEMM_PKG = "./backend/cpu/gemm/"
LINE = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def build_test_binary(tmp):
    exe = os.path.join(tmp, "gemm.test")
    subprocess.run(["go", "test", "-c", "-o", exe, GEMM_PKG], cwd=REPO, check=True)
    return exe


def run_go(exe, bench, benchtime):
    """Runs the test binary's benchmarks; returns {name: {unit: value}}."""
    out = subprocess.run(
        [exe, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime],
        cwd=REPO / GEMM_PKG, check=True, capture_output=True, text=True,
    ).stdout
    results = {}
    for line in out.splitlines():
        m = LINE.match(line.strip())
        if not m:
            continue
        fields = m.group(3).split()
        metrics = {fields[i + 1]: float(fields[i]) for i in range(0, len(fields) - 1, 2)}
        results[m.group(1)] = metrics
    return results


def shape_key(m, k, n, t):
    return f"M={m}/K={k}/N={n}/T={t}"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved Go/ORT rounds (median reported)")
    ap.add_argument("--iters", type=int, default=3, help="timed calls per shape per round, both sides")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args()

    go_runs = defaultdict(list)   # (variant, key) -> [metrics]
    ort_runs = defaultdict(list)  # key -> [result]
    peak_runs = []
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_test_binary(tmp)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds} ({time.time() - started:.0f}s)", file=sys.stderr, flush=True)
            peak = run_go(exe, "^BenchmarkFMAPeak$", "20x")
            peak_runs.append(peak["BenchmarkFMAPeak"])
            for name, metrics in run_go(exe, "^Benchmark(SgemmPacked|Sgemm)$", f"{args.iters}x").items():
                variant, key = name.split("/", 1)
                go_runs[(variant, key)].append(metrics)
            for res in matmul.run_all(args.iters, 1):
                # Same statistic as Go's: total flops over total time of
                # the timed calls, i.e. the mean rate, per round.
                ort_runs[shape_key(res["m"], res["k"], res["n"], res["threads"])].append(res)

    ghz = median([p.get("GHz") for p in peak_runs])
    fma_cpu = median([p.get("cpuGFLOP/s") for p in peak_runs])
    peak1 = 32 * ghz
    print(f"# clock (dependent-FMA chain, 4-cycle latency): {ghz:.2f} GHz; "
          f"theoretical peak 8 lanes x 2 flops x 2 FMA pipes x {ghz:.2f} GHz = {peak1:.1f} GFLOP/s per core; "
          f"FMA throughput loop measured {fma_cpu:.1f} GFLOP per CPU-second")
    print(f"# medians over {args.rounds} rounds of {args.iters} timed calls; ORT {matmul.ort.__version__}")
    head = ["M", "K", "N", "T", "tfc GFLOP/s", "ORT GFLOP/s", "tfc/ORT", "tfc % peak",
            "tfc cpu", "ORT cpu", "cpu tfc/ORT", "cpu % peak", "tfc unpacked"]
    rows = []
    for m in matmul.M_VALUES:
        for k, n in matmul.KN_VALUES:
            for t in matmul.THREADS:
                key = shape_key(m, k, n, t)
                tfc = median([x.get("GFLOP/s") for x in go_runs[("BenchmarkSgemmPacked", key)]])
                tfc_cpu = median([x.get("cpuGFLOP/s") for x in go_runs[("BenchmarkSgemmPacked", key)]])
                unpacked = median([x.get("GFLOP/s") for x in go_runs[("BenchmarkSgemm", key)]])
                ort = median([x["gflops"] for x in ort_runs[key]])
                ort_cpu = median([x["cpu_gflops"] for x in ort_runs[key]])
                ratio = tfc / ort if tfc and ort else None
                cpu_ratio = tfc_cpu / ort_cpu if tfc_cpu and ort_cpu else None
                pct = 100 * tfc / (t * peak1) if tfc else None
                # Per CPU-second the ceiling is one core's peak, whatever T.
                cpu_pct = 100 * tfc_cpu / peak1 if tfc_cpu else None
                rows.append([str(m), str(k), str(n), str(t), fmt(tfc), fmt(ort), fmt(ratio, 2), fmt(pct, 0),
                             fmt(tfc_cpu), fmt(ort_cpu), fmt(cpu_ratio, 2), fmt(cpu_pct, 0), fmt(unpacked)])
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    print(f"# took {time.time() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
