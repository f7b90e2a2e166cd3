#!/usr/bin/env python3
"""Runs the `--target ort` export of every corpus model in ONNX Runtime and
compares its outputs with the stored references (rtol 1e-3, atol 1e-4; the
synthetic variants below at rtol 1e-4, atol 1e-5).

    .venv/bin/python tools/peer/ort_parity.py [--dir DIR] [--keep]

It first writes the exported models by running the Go test
TestExportCorpusFiles (passes/export_ort_test.go) with TFC_EXPORT_DIR=DIR:
each corpus model goes decode -> -O2 -> export-ort -> encode into
DIR/<model>.ort.onnx, and each attention/norm variant of that test goes with
its inputs and tfc's reference outputs (CPU backend on the tfc op) into
DIR/variants/<name>/; so does each corpus model that remove-padding packs
at -O3 (DIR/variants/O3-<model>/, the corpus inputs with the outputs of
the -O3 model on tfc's CPU backend as reference, since -O3 writes zeros at
padded positions where the original computes values). Then every model is loaded in ONNX Runtime (CPU
execution provider, graph optimizations off, so ONNX Runtime runs exactly
the ops tfc wrote) and run on each test_data_set_*; the corpus models use
the data stored beside testdata/models/<model>/model.onnx, whose outputs
are ONNX Runtime's on the original model.

Prints one line per model (ok / FAIL with the worst element) and a closing
line `N passed, M failed`. Exits 1 if any failed.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
import onnxruntime as ort

RTOL, ATOL = 1e-3, 1e-4
# The variants are random float32 data with tfc's float64-accumulated
# reference kernels as the expected outputs; both sides are exact up to
# float32 rounding, so they get a tolerance that catches a wrong scale or
# mask, which the corpus tolerance (tiny models, small scores) may not.
VARIANT_RTOL, VARIANT_ATOL = 1e-4, 1e-5


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def ops_of(path):
    m = onnx.load(path, load_external_data=False)
    return sorted({n.domain + "::" + n.op_type for n in m.graph.node
                   if n.domain not in ("", "ai.onnx")} |
                  {n.op_type for n in m.graph.node if n.domain in ("", "ai.onnx") and n.op_type in
                   ("Attention", "RMSNormalization", "LayerNormalization", "SimplifiedLayerNormalization", "Gelu")})


def run_one(model_path, data_dirs, rtol=RTOL, atol=ATOL):
    """Returns (ok, detail)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # the model does not load: that is the failure
        return False, "load: " + str(e).splitlines()[0][:300]
    if not data_dirs:
        return False, "no test_data_set_* beside the model"
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    for d in data_dirs:
        feeds = {}
        for i, p in enumerate(sorted(glob.glob(os.path.join(d, "input_*.pb")), key=lambda s: int(s.rsplit("_", 1)[1][:-3]))):
            name, arr = read_pb(p)
            feeds[name or in_names[i]] = arr
        feeds = {k: v for k, v in feeds.items() if k in in_names}
        try:
            got = sess.run(None, feeds)
        except Exception as e:
            return False, "run %s: %s" % (os.path.basename(d), str(e).splitlines()[0][:300])
        outs = sorted(glob.glob(os.path.join(d, "output_*.pb")), key=lambda s: int(s.rsplit("_", 1)[1][:-3]))
        for i, p in enumerate(outs):
            name, want = read_pb(p)
            idx = out_names.index(name) if name in out_names else i
            g = np.asarray(got[idx])
            if g.shape != want.shape:
                return False, "%s output %s: shape %s, want %s" % (os.path.basename(d), name, g.shape, want.shape)
            if want.dtype.kind == "f":
                bad = ~np.isclose(g, want, rtol=rtol, atol=atol, equal_nan=True)
                if bad.any():
                    j = np.unravel_index(np.argmax(np.abs(g - want) * bad), g.shape)
                    return False, "%s output %s: %d of %d differ, e.g. at %s got %g want %g" % (
                        os.path.basename(d), name, int(bad.sum()), bad.size, tuple(int(x) for x in j), g[j], want[j])
                fin = np.isfinite(want) & np.isfinite(g)
                if fin.any():
                    worst = max(worst, float(np.max(np.abs(g[fin] - want[fin]))))
            elif not np.array_equal(g, want):
                return False, "%s output %s differs" % (os.path.basename(d), name)
    return True, "max|diff| %.2e over %d data sets" % (worst, len(data_dirs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", help="where the exported models go (default: a temporary folder)")
    ap.add_argument("--no-export", action="store_true", help="use the models already in --dir")
    ap.add_argument("--ops", action="store_true", help="print the ONNX Runtime-specific ops of each export")
    ap.add_argument("--tsv", help="also write the corpus rows (name, result) to this file, e.g. testdata/peers/ort_parity.tsv for docs/fusion-table.md")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = args.dir or tempfile.mkdtemp(prefix="tfc-ort-")
    os.makedirs(out, exist_ok=True)
    if not args.no_export:
        env = dict(os.environ, TFC_EXPORT_DIR=os.path.abspath(out))
        r = subprocess.run(["go", "test", "./passes/", "-run", "^TestExportCorpusFiles$", "-count=1"],
                           cwd=repo, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stdout.write(r.stdout + r.stderr)
            print("export failed")
            return 1
    rows = []
    corpus = os.path.join(repo, "testdata", "models")
    for path in sorted(glob.glob(os.path.join(out, "*.ort.onnx"))):
        name = os.path.basename(path)[: -len(".ort.onnx")]
        data = sorted(glob.glob(os.path.join(corpus, name, "test_data_set_*")))
        rows.append((name, path) + run_one(path, data))
    for path in sorted(glob.glob(os.path.join(out, "variants", "*", "model.onnx"))):
        d = os.path.dirname(path)
        rows.append(("variant/" + os.path.basename(d), path) + run_one(path, sorted(glob.glob(os.path.join(d, "test_data_set_*"))), VARIANT_RTOL, VARIANT_ATOL))
    passed = sum(1 for r in rows if r[2])
    w = max(len(r[0]) for r in rows) if rows else 10
    for name, path, ok, detail in rows:
        extra = ("  [" + ", ".join(ops_of(path)) + "]") if args.ops else ""
        print("%-*s  %-4s  %s%s" % (w, name, "ok" if ok else "FAIL", detail, extra))
    if args.tsv:
        with open(args.tsv, "w") as f:
            f.write("name\tresult\tops\n")
            for name, path, ok, detail in rows:
                if not name.startswith("variant/"):
                    f.write("%s\t%s\t%s\n" % (name, "ok" if ok else "FAIL", " ".join(ops_of(path))))
    print("%d passed, %d failed" % (passed, len(rows) - passed))
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
