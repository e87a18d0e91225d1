#!/usr/bin/env python3
"""PyTorch peer for `tandem bench model`: the same network, data shape and batch sizes on the CPU.

Usage: pip install torch pyyaml; scripts/bench-torch.py [--spec cloud-config/models/full.yaml] [--threads 2]
Builds the layers of the Tandem spec file in PyTorch (channels-first Conv1d), trains with Adam on random
data and times training steps and inference (eval mode, no grad) exactly as `tandem bench model` does.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import yaml
from tandem_onnx import conv_padding


def build(spec, window, channels, classes):
    layers, c, length = [], channels, window
    for layer in spec["layers"]:
        kind = layer["type"]
        if kind == "conv1d":
            k, s, d = layer["kernel"], layer.get("stride", 1), layer.get("dilation", 1)
            pad, length = conv_padding(length, k, s, d, layer.get("padding", "valid"))
            if pad is not None:
                layers.append(pad)
            layers.append(nn.Conv1d(c, layer["filters"], k, stride=s, dilation=d, bias=layer.get("bias", True)))
            c = layer["filters"]
        elif kind == "batchnorm1d":
            layers.append(nn.BatchNorm1d(c))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "globalavgpool1d":
            layers.append(nn.AdaptiveAvgPool1d(1))
            layers.append(nn.Flatten())
        elif kind == "dense":
            units = layer.get("units", "classes")
            units = classes if units == "classes" else units
            layers.append(nn.Linear(c, units))
            c = units
        elif kind == "dropout":
            layers.append(nn.Dropout(layer.get("rate", 0.5)))
        else:
            raise SystemExit(f"bench-torch.py: layer type {kind} not mapped")
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default="cloud-config/models/full.yaml")
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--infer-batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--infer-windows", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    with open(args.spec) as f:
        spec = yaml.safe_load(f)
    model = build(spec, args.window, args.channels, args.classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    batches = [(torch.randn(args.batch, args.channels, args.window), torch.arange(args.batch) % args.classes)
               for _ in range(8)]

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    model.train()
    for i in range(args.warmup):
        step(*batches[i % 8])
    start = time.perf_counter()
    for i in range(args.steps):
        step(*batches[i % 8])
    train_rate = args.steps * args.batch / (time.perf_counter() - start)

    model.eval()
    x = torch.randn(args.infer_batch, args.channels, args.window)
    rounds = max(1, args.infer_windows // args.infer_batch)
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(rounds):
            model(x)
        infer_rate = rounds * args.infer_batch / (time.perf_counter() - start)
    print(json.dumps({"torch": torch.__version__, "threads": args.threads,
                      "train_samples_per_second": train_rate, "infer_windows_per_second": infer_rate}))


if __name__ == "__main__":
    main()
