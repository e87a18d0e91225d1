#!/usr/bin/env python3
"""ONNX Runtime peer for `tandem bench int8`: the same network and weights, float and static int8 (QDQ).

Usage:
  pip install onnx onnxruntime torch
  .build/release/tandem bench int8 --export /tmp/edge-weights.json
  scripts/bench-ort.py --weights /tmp/edge-weights.json [--batch 64] [--windows 20000] [--threads 1]

Builds the exported layers in PyTorch with Tandem's folded float weights (channels-last input, permuted
inside the graph as Tandem reads windows), checks the float outputs against Tandem's, exports ONNX,
quantizes it statically with onnxruntime.quantization (QDQ, int8 weights per channel, int8 activations,
calibrated on the exported calibration windows) and times ONNX Runtime with one thread: batch 1 latency
(p50/p99) and batch --batch throughput, for both the float and the int8 model. The network building and
quantization live in scripts/tandem_onnx.py, shared with scripts/bench-edge.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
import torch

from tandem_onnx import build, export_onnx, quantize_int8, session, tensor


def measure(sess, inputs, batch, windows):
    single = inputs[:1]
    for _ in range(200):
        sess.run(None, {"x": single})
    latencies = []
    for _ in range(windows):
        start = time.perf_counter()
        sess.run(None, {"x": single})
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    full = inputs[:batch]
    for _ in range(10):
        sess.run(None, {"x": full})
    rounds = max(1, windows // batch)
    start = time.perf_counter()
    for _ in range(rounds):
        sess.run(None, {"x": full})
    elapsed = time.perf_counter() - start
    return {
        "batch1_windows_per_second": len(latencies) / sum(latencies),
        "batch1_p50_us": latencies[len(latencies) // 2] * 1e6,
        "batch1_p99_us": latencies[int(0.99 * len(latencies))] * 1e6,
        f"batch{batch}_windows_per_second": rounds * batch / elapsed,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="JSON written by `tandem bench int8 --export`")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with open(args.weights) as f:
        document = json.load(f)
    model = build(document)
    inputs = tensor(document["inputs"])
    calibration = tensor(document["calibration"])
    while len(inputs) < args.batch:
        inputs = np.concatenate([inputs, inputs])
    with torch.no_grad():
        reference = model(torch.from_numpy(inputs)).numpy()
    if "float_logits" in document:
        tandem = tensor(document["float_logits"])
        difference = float(np.abs(reference[: len(tandem)] - tandem).max())
        if difference > 1e-3:
            raise SystemExit(f"PyTorch rebuild differs from Tandem's float model by {difference}")
    else:
        difference = None

    directory = tempfile.mkdtemp(prefix="bench-ort-")
    fp32 = os.path.join(directory, "model.onnx")
    int8 = os.path.join(directory, "model-int8.onnx")
    export_onnx(model, inputs, fp32)
    quantize_int8(fp32, int8, calibration)

    results = {"onnxruntime": ort.__version__, "threads": args.threads, "float_max_difference_to_tandem": difference}
    float_session, int8_session = session(fp32, args.threads), session(int8, args.threads)
    float_top = float_session.run(None, {"x": inputs})[0].argmax(1)
    int8_top = int8_session.run(None, {"x": inputs})[0].argmax(1)
    results["int8_top1_agreement_with_float"] = float((float_top == int8_top).mean())
    for name, sess in (("ort_float", float_session), ("ort_int8", int8_session)):
        for key, value in measure(sess, inputs, args.batch, args.windows).items():
            results[f"{name}_{key}"] = value
    if args.json:
        print(json.dumps(results, sort_keys=True))
    else:
        print(f"onnxruntime {ort.__version__}, {args.threads} thread(s); float rebuild max |Δ| vs Tandem: {difference}")
        for name in ("ort_float", "ort_int8"):
            print(
                f"{name:9s} batch 1: {results[name + '_batch1_windows_per_second']:9.0f} windows/s  "
                f"p50 {results[name + '_batch1_p50_us']:6.1f} µs  p99 {results[name + '_batch1_p99_us']:6.1f} µs   "
                f"batch {args.batch}: {results[f'{name}_batch{args.batch}_windows_per_second']:9.0f} windows/s")
        print(f"int8 vs float top-1 agreement: {results['int8_top1_agreement_with_float']:.4f}")


if __name__ == "__main__":
    main()
