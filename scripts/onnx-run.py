#!/usr/bin/env python3
"""Run an ONNX model in ONNX Runtime on raw float32 input: the independent peer of Tests/TandemONNXTests.

Usage: scripts/onnx-run.py MODEL.onnx INPUT.f32 OUTPUT.f32 D1,D2,...

INPUT.f32 holds little-endian float32 values of the model's one input with shape D1,D2,...; OUTPUT.f32 gets the
model's first output, also float32. The output's shape is printed on stdout. Needs numpy and onnxruntime.
"""
import sys

import numpy as np
import onnxruntime as ort

model, source, target, shape = sys.argv[1:5]
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
x = np.fromfile(source, dtype="<f4").reshape([int(d) for d in shape.split(",")])
y = session.run(None, {session.get_inputs()[0].name: x})[0].astype("<f4")
y.tofile(target)
print(",".join(str(d) for d in y.shape))
