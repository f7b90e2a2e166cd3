#!/usr/bin/env python3
"""Re-run ONNX Runtime on every stored input of testdata/models/ and verify
that the stored outputs reproduce.

    python tools/corpus/check.py [--root DIR] [--rtol 1e-4] [--atol 1e-5] [NAME ...]

Each (model, test_data_set) pair counts once. Prints one line per failure and
a closing summary line `N passed, M failed`. Exits non-zero on any failure.
The ORT session uses the same settings as generate.py (CPU, one thread,
graph optimisations disabled); --opt-level all checks with ORT's full
optimisations instead.
"""

import argparse
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def session(path, level):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = {
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("--root", default=os.path.join(REPO, "testdata", "models"))
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--opt-level", choices=["none", "basic", "all"], default="none")
    a = ap.parse_args()

    models = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(a.root, "*", "model.onnx")))
    if a.names:
        models = [m for m in models if os.path.basename(m) in a.names]
    passed = failed = 0
    for mdir in models:
        name = os.path.basename(mdir)
        try:
            sess = session(os.path.join(mdir, "model.onnx"), a.opt_level)
        except Exception as e:
            n = len(glob.glob(os.path.join(mdir, "test_data_set_*"))) or 1
            failed += n
            print(f"FAIL {name}: cannot load: {e}")
            continue
        in_names = [i.name for i in sess.get_inputs()]
        out_names = [o.name for o in sess.get_outputs()]
        for sd in sorted(glob.glob(os.path.join(mdir, "test_data_set_*"))):
            tag = f"{name}/{os.path.basename(sd)}"
            try:
                feeds = dict(load_pb(p) for p in sorted(glob.glob(os.path.join(sd, "input_*.pb"))))
                if sorted(feeds) != sorted(in_names):
                    raise ValueError(f"stored inputs {sorted(feeds)} != graph inputs {sorted(in_names)}")
                expected = {}
                for p in glob.glob(os.path.join(sd, "output_*.pb")):
                    n, arr = load_pb(p)
                    expected[n] = arr
                if sorted(expected) != sorted(out_names):
                    raise ValueError(f"stored outputs {sorted(expected)} != graph outputs {sorted(out_names)}")
                got = dict(zip(out_names, sess.run(None, feeds)))
                for n in out_names:
                    e, g = expected[n], got[n]
                    if e.shape != g.shape or e.dtype != g.dtype:
                        raise ValueError(f"{n}: got {g.dtype}{g.shape}, stored {e.dtype}{e.shape}")
                    if not np.allclose(g, e, rtol=a.rtol, atol=a.atol):
                        d = float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64))))
                        raise ValueError(f"{n}: max abs diff {d:.3g}")
                passed += 1
            except Exception as e:
                failed += 1
                print(f"FAIL {tag}: {e}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
