#!/usr/bin/env python3
"""Checks that tfc's -O0 round trip is invisible to ONNX Runtime.

For every ONNX backend node test (a folder with model.onnx and
test_data_set_N/input_K.pb), this runs `tfc compile model.onnx -o
reencoded.onnx -O0`, then runs both the original and the re-encoded model in
ONNX Runtime on the stored inputs and requires bit-identical outputs (NaN
payloads compared as bits too).

    go build -o /tmp/tfc ./cmd/tfc
    .venv/bin/python tools/roundtrip/ort_roundtrip.py --tfc /tmp/tfc ../shared/onnx-node

Models ONNX Runtime itself cannot load or run are counted as "ort-skips"
(they say nothing about tfc); a tfc failure or any output difference is a
failure. The last line is "N passed, M failed".
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def load_inputs(test_dir, sess_inputs):
    feeds_per_set = []
    for ds in sorted(glob.glob(os.path.join(test_dir, "test_data_set_*"))):
        files = sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                       key=lambda p: int(p.rsplit("_", 1)[1].split(".")[0]))
        feeds = {}
        for i, f in enumerate(files):
            t = onnx.TensorProto()
            with open(f, "rb") as fh:
                t.ParseFromString(fh.read())
            if i < len(sess_inputs):
                feeds[sess_inputs[i].name] = numpy_helper.to_array(t)
        feeds_per_set.append(feeds)
    return feeds_per_set


def run(model_path, feeds_per_set):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    # No graph optimizations: compare what the two files say, not what
    # ORT's optimizer makes of them.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    return [sess.run(None, feeds) for feeds in feeds_per_set]


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if a is None:
        return b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return a.tolist() == b.tolist()
    return a.tobytes() == b.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tfc", required=True, help="path to the tfc binary")
    ap.add_argument("root", help="folder of node tests (e.g. ../shared/onnx-node)")
    ap.add_argument("--only", default="", help="substring filter on test names")
    args = ap.parse_args()

    tests = sorted(d for d in glob.glob(os.path.join(args.root, "*")) if os.path.isfile(os.path.join(d, "model.onnx")))
    if args.only:
        tests = [t for t in tests if args.only in os.path.basename(t)]
    passed = failed = ort_skips = 0
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in tests:
            name = os.path.basename(t)
            src = os.path.join(t, "model.onnx")
            try:
                sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
                feeds = load_inputs(t, sess.get_inputs())
                want = run(src, feeds)
            except Exception as e:  # ORT cannot run the original: not tfc's business
                ort_skips += 1
                continue
            out = os.path.join(tmp, name + ".onnx")
            p = subprocess.run([args.tfc, "compile", src, "-o", out, "-O0"], capture_output=True, text=True)
            if p.returncode != 0:
                failed += 1
                failures.append(f"{name}: tfc exit {p.returncode}: {p.stderr.strip()}")
                continue
            try:
                got = run(out, feeds)
            except Exception as e:
                failed += 1
                failures.append(f"{name}: ORT cannot run the re-encoded model: {e}")
                continue
            if same(want, got):
                passed += 1
            else:
                failed += 1
                failures.append(f"{name}: outputs differ")
            os.remove(out)
    for f in failures:
        print("FAIL", f)
    print(f"node tests: {len(tests)}, ONNX Runtime cannot run the original: {ort_skips}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
