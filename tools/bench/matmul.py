#!/usr/bin/env python3
"""ONNX Runtime's MatMul at the BERT shapes of tfc's Go GEMM benchmark.

For each shape (M x K) x (K x N) it builds a one-node ONNX model whose B is
an initializer (ONNX Runtime then pre-packs it, as tfc's SgemmPacked does
for weights), runs it with intra_op_num_threads = 1 and 2, and reports the
median over --runs timed calls of the wall-clock GFLOP/s and of the GFLOP
per CPU-second of this process (the machine is shared; the CPU-time figure
is what the kernel does while it holds a core).

  .venv/bin/python tools/bench/matmul.py --runs 15 [--json]
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

# Same shapes as BenchmarkSgemmPacked in backend/cpu/gemm/bench_test.go.
M_VALUES = [128, 512, 1024, 4096]
KN_VALUES = [(768, 768), (768, 3072), (3072, 768)]
THREADS = [1, 2]


def matmul_model(m, k, n, rng):
    b = rng.uniform(-1.0, 1.0, size=(k, n)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["Y"], name="matmul")],
        f"matmul_{m}x{k}x{n}",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def measure(m, k, n, threads, runs, warmup, rng):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(matmul_model(m, k, n, rng), opts, providers=["CPUExecutionProvider"])
    a = rng.uniform(-1.0, 1.0, size=(m, k)).astype(np.float32)
    feeds = {"A": a}
    for _ in range(warmup):
        sess.run(None, feeds)
    wall, cpu = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        sess.run(None, feeds)
        w1, c1 = time.perf_counter(), time.process_time()
        wall.append(w1 - w0)
        cpu.append(c1 - c0)
    flops = 2.0 * m * n * k
    med_wall = statistics.median(wall)
    med_cpu = statistics.median(cpu)
    return {
        "m": m, "k": k, "n": n, "threads": threads, "runs": runs,
        "gflops": flops / med_wall / 1e9,
        "best_gflops": flops / min(wall) / 1e9,
        # process_time has coarse resolution for the small shapes: None
        # when a median call took no measurable CPU time.
        "cpu_gflops": flops / med_cpu / 1e9 if med_cpu > 0 else None,
    }


def run_all(runs, warmup, m_values=M_VALUES, kn_values=KN_VALUES, threads=THREADS, progress=None):
    rng = np.random.default_rng(1)
    results = []
    for m in m_values:
        for k, n in kn_values:
            for t in threads:
                r = measure(m, k, n, t, runs, warmup, rng)
                if progress:
                    progress(r)
                results.append(r)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15, help="timed calls per shape (median reported)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args()
    print(f"onnxruntime {ort.__version__}, numpy {np.__version__}", file=sys.stderr)

    def show(r):
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            cpu = f"{r['cpu_gflops']:.1f}" if r["cpu_gflops"] else "-"
            print(f"M={r['m']:5d} K={r['k']:5d} N={r['n']:5d} T={r['threads']}  "
                  f"{r['gflops']:7.1f} GFLOP/s (median of {r['runs']})  {cpu} GFLOP/cpu-s", flush=True)

    run_all(args.runs, args.warmup, progress=show)


if __name__ == "__main__":
    main()
