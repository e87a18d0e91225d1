#!/usr/bin/env python3
"""Build the ONNX models Tests/TandemONNXTests imports, the way users make them: networks in PyTorch, exported
with torch.onnx.export (opset 17, TorchScript exporter).

Usage: scripts/onnx-fixtures.py UCR_DIR [OUT_DIR]   (OUT_DIR default Tests/TandemONNXTests/Fixtures)

UCR_DIR is what scripts/ucr-samples extracts; ItalyPowerDemand is taken from it. Writes:

- fcn.onnx: a PyTorch FCN on [N, 3, 64] (Conv1d → BatchNorm1d → ReLU three times, with 'same' padding written
  three ways, Dropout, global average pooling, Linear); batch norm kept as BatchNormalization nodes.
- keras_style.onnx: a channels-last network on [N, 64, 3] built the way Keras exporters (tf2onnx) lay it out:
  Transpose to channels-first, Unsqueeze to 4-D for a 1×k Conv and Squeeze back, strided and dilated
  convolutions, MaxPool, Transpose back to channels-last, Reshape to [N, L·C] with a constant shape,
  MatMul + Add dense layers and a final Softmax.
- cnn_flatten.onnx: [N, 2, 32], valid convolutions, AveragePool and nn.Flatten of a channels-first sequence, so
  the dense layer's columns must be reordered into Tandem's time-major flatten.
- residual.onnx, leaky_relu.onnx, depthwise.onnx: graphs Tandem must refuse (a skip connection, an activation
  it lacks, a grouped convolution).
- italy_fcn.onnx, italy_fcn.json: an FCN trained on ItalyPowerDemand (standardization in the graph as Sub/Div),
  with its PyTorch test accuracy; ItalyPowerDemand_{TRAIN,TEST}.ts.xz: the data, compressed.
"""
import json
import lzma
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn

warnings.filterwarnings("ignore")
torch.manual_seed(19)
torch.set_num_threads(1)
np.random.seed(19)

ucr = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "Tests", "TandemONNXTests", "Fixtures")
os.makedirs(out, exist_ok=True)


def export(model, example, name, keep_batch_norm=False):
    model.eval()
    torch.onnx.export(
        model, (example,), os.path.join(out, name), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=17, dynamo=False,
        training=torch.onnx.TrainingMode.PRESERVE if keep_batch_norm else torch.onnx.TrainingMode.EVAL,
        do_constant_folding=not keep_batch_norm)


def randomize_batch_norm(model):
    """Running statistics and affine parameters far from the identity, so folding them matters."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)


class FCN(nn.Module):
    def __init__(self, channels, classes, widths=(16, 32, 16)):
        super().__init__()
        a, b, c = widths
        self.body = nn.Sequential(
            nn.Conv1d(channels, a, 7, padding=3), nn.BatchNorm1d(a), nn.ReLU(),
            nn.Conv1d(a, b, 4, padding="same"), nn.BatchNorm1d(b), nn.ReLU(), nn.Dropout(0.2),
            nn.Conv1d(b, c, 3, padding=1), nn.BatchNorm1d(c), nn.ReLU(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(c, classes))

    def forward(self, x):
        return self.body(x)


class KerasStyle(nn.Module):
    """Channels-last in and out of every block, as a Keras model exported by tf2onnx."""

    def __init__(self, channels=3, classes=5, length=64):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 8, (1, 4), stride=(1, 2), padding=(0, 1))
        self.conv2 = nn.Conv1d(8, 12, 3, dilation=2, padding=2)  # "same"; ONNX Runtime refuses auto_pad with dilation
        self.pool = nn.MaxPool1d(2)
        self.features = (length // 2 // 2) * 12
        self.w1 = nn.Parameter(torch.randn(self.features, 24) * 0.1)
        self.b1 = nn.Parameter(torch.randn(24) * 0.1)
        self.w2 = nn.Parameter(torch.randn(24, classes) * 0.3)
        self.b2 = nn.Parameter(torch.randn(classes) * 0.1)

    def forward(self, x):  # [N, L, C]
        x = x.transpose(1, 2).unsqueeze(2)  # [N, C, 1, L]
        x = torch.relu(self.conv1(x)).squeeze(2)  # [N, 8, L/2]
        x = x.transpose(1, 2)  # channels-last between blocks
        x = self.pool(torch.relu(self.conv2(x.transpose(1, 2))))
        x = x.transpose(1, 2).reshape(-1, self.features)  # Keras Flatten of [N, L, C]
        x = torch.relu(torch.matmul(x, self.w1) + self.b1)
        return torch.softmax(torch.matmul(x, self.w2) + self.b2, dim=-1)


class FlattenCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(2, 6, 3), nn.ReLU(), nn.AvgPool1d(2), nn.Conv1d(6, 8, 3, stride=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(8 * 7, 3))

    def forward(self, x):
        return self.body(x)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(2, 4, 3, padding=1)
        self.b = nn.Conv1d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = torch.relu(self.a(x))
        y = torch.relu(self.b(y)) + y
        return self.head(y.mean(dim=2))


fcn = FCN(3, 4)
randomize_batch_norm(fcn)
export(fcn, torch.randn(2, 3, 64), "fcn.onnx", keep_batch_norm=True)
export(KerasStyle(), torch.randn(2, 64, 3), "keras_style.onnx")
export(FlattenCNN(), torch.randn(2, 2, 32), "cnn_flatten.onnx")
export(Residual(), torch.randn(2, 2, 16), "residual.onnx")
export(nn.Sequential(nn.Conv1d(2, 4, 3), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 14, 2)), torch.randn(2, 2, 16),
       "leaky_relu.onnx")
export(nn.Sequential(nn.Conv1d(4, 4, 3, groups=4), nn.Flatten(), nn.Linear(4 * 14, 2)), torch.randn(2, 4, 16),
       "depthwise.onnx")


# ItalyPowerDemand: a small FCN trained in PyTorch, standardization in the graph.
def read_ts(path):
    xs, ys = [], []
    data = False
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or line.startswith("%"):
                continue
            if line.lower() == "@data":
                data = True
                continue
            if data:
                values, label = line.rsplit(":", 1)
                xs.append([float(v) for v in values.split(",")])
                ys.append(label)
    return np.array(xs, dtype=np.float32)[:, None, :], ys


directory = os.path.join(ucr, "ItalyPowerDemand")
train_x, train_labels = read_ts(os.path.join(directory, "ItalyPowerDemand_TRAIN.ts"))
test_x, test_labels = read_ts(os.path.join(directory, "ItalyPowerDemand_TEST.ts"))
classes = sorted(set(train_labels))
train_y = torch.tensor([classes.index(v) for v in train_labels])
test_y = np.array([classes.index(v) for v in test_labels])
mean, std = float(train_x.mean()), float(train_x.std())


class Standardized(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([[[mean]]]))
        self.register_buffer("std", torch.tensor([[[std]]]))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


model = Standardized(FCN(1, len(classes), widths=(16, 16, 16)))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
inputs = torch.tensor(train_x)
for epoch in range(300):
    model.train()
    for batch in torch.randperm(len(inputs)).split(16):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs[batch]), train_y[batch])
        loss.backward()
        optimizer.step()
model.eval()
with torch.no_grad():
    accuracy = float((model(torch.tensor(test_x)).argmax(1).numpy() == test_y).mean())
export(model, torch.tensor(train_x[:2]), "italy_fcn.onnx")
with open(os.path.join(out, "italy_fcn.json"), "w") as f:
    json.dump({"classes": classes, "torch_test_accuracy": accuracy, "mean": mean, "std": std}, f, indent=1)
for part in ("TRAIN", "TEST"):
    with open(os.path.join(directory, f"ItalyPowerDemand_{part}.ts"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, f"ItalyPowerDemand_{part}.ts.xz"), "wb") as f:
        f.write(lzma.compress(data, preset=9))
print(f"wrote fixtures to {out}; ItalyPowerDemand FCN test accuracy {accuracy:.4f} (PyTorch)")
