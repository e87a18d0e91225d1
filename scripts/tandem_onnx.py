"""Tandem models in ONNX Runtime: read `.tandem` artifacts, rebuild the network in PyTorch, export it to
ONNX and quantize it statically to int8 (QDQ) with onnxruntime.quantization.

Imported by scripts/bench-ort.py and scripts/bench-edge (not run on its own). Needs numpy, torch, onnx
and onnxruntime.

A *document* is what `tandem bench int8 --export` writes and what ``document_from_artifact`` returns:
`{"window", "channels", "classes", "layers": [...]}`, each layer `{"type", ...}` with float weights
`{"shape", "values"}` (Tandem's layout: conv `[filters, kernel, channels]`, dense `[units, inputs]`) and a
`bias` list. Batch norm is folded into the layer before it, so only conv1d, dense, relu, pooling and
global average pooling appear.
"""
import hashlib
import json
import struct

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

# docs/ARTIFACT.md: element type code -> numpy dtype.
_ELEMENT_TYPES = {1: np.dtype("<f4"), 2: np.dtype("i1"), 3: np.dtype("<i4")}
_MAGIC = b"\x89TNDM\r\n\x1a"


def read_artifact(path):
    """The manifest (dict) and tensors (name -> numpy array) of a `.tandem` file, checksum verified.

    Follows docs/ARTIFACT.md, format version 1. The signature block, if any, is not verified.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 48 or data[:8] != _MAGIC:
        raise ValueError(f"{path}: not a .tandem artifact")
    version, _flags, manifest_length, count, _table_length, _reserved, data_offset, data_length = struct.unpack_from(
        "<6I2Q", data, 8)
    if version != 1:
        raise ValueError(f"{path}: artifact format version {version}, this reader knows 1")
    end = data_offset + data_length
    if len(data) < end + 32 or hashlib.sha256(data[:end]).digest() != data[end : end + 32]:
        raise ValueError(f"{path}: checksum mismatch or truncated file")
    manifest = json.loads(data[48 : 48 + manifest_length])
    tensors = {}
    position = 48 + manifest_length
    for _ in range(count + 2):
        name_length, element_type, rank = struct.unpack_from("<HBB", data, position)
        position += 4
        name = data[position : position + name_length].decode()
        position += name_length
        shape = struct.unpack_from(f"<{rank}Q", data, position)
        position += 8 * rank
        offset, length = struct.unpack_from("<2Q", data, position)
        position += 16
        dtype = _ELEMENT_TYPES[element_type]
        tensors[name] = np.frombuffer(data, dtype=dtype, count=length // dtype.itemsize, offset=offset).reshape(shape)
    return manifest, tensors


def document_from_artifact(manifest, tensors):
    """The float network of a float32 or int8 artifact as a document (see the module docstring).

    float32: batch norm is folded into the conv/dense layer before it. int8: weights and biases are
    dequantized (`w = q · weightScale[o]`, `b = q · inputScale · weightScale[o]`, docs/INT8.md), so ONNX
    Runtime quantizing the result per channel recovers the same int8 weights.
    """
    numerics = manifest["numerics"]
    if numerics not in ("float32", "int8"):
        raise ValueError(f"model numerics {numerics} is not float32 or int8")
    spec = manifest["input"]
    layers = []
    input_scale = float(tensors["input.scale"][0]) if numerics == "int8" else None
    for i, layer in enumerate(manifest["architecture"]):
        kind = layer["type"]
        entry = {key: value for key, value in layer.items() if key in ("type", "kernel", "stride", "dilation", "padding")}
        if kind in ("conv1d", "dense"):
            if numerics == "int8":
                scales = tensors[f"{i}.weight_scale"].astype(np.float64)
                q = tensors[f"{i}.weight"].astype(np.float64)
                weight = q * scales.reshape((-1,) + (1,) * (q.ndim - 1))
                bias = tensors[f"{i}.bias"].astype(np.float64) * input_scale * scales
                if f"{i}.output_scale" in tensors:
                    input_scale = float(tensors[f"{i}.output_scale"][0])
            else:
                weight = tensors[f"{i}.weight"].astype(np.float64)
                bias = tensors[f"{i}.bias"].astype(np.float64) if f"{i}.bias" in tensors else np.zeros(weight.shape[0])
            entry["weight"] = {"shape": list(weight.shape), "values": weight.astype(np.float32).ravel()}
            entry["bias"] = bias.astype(np.float32)
            layers.append(entry)
        elif kind == "batchnorm1d":
            previous = layers[-1] if layers else None
            if previous is None or previous["type"] not in ("conv1d", "dense"):
                raise ValueError(f"layer {i}: batchnorm1d must follow conv1d or dense to be folded")
            epsilon = layer.get("epsilon", 1e-5)
            scale = tensors[f"{i}.gamma"] / np.sqrt(tensors[f"{i}.variance"] + epsilon)
            w = np.asarray(previous["weight"]["values"]).reshape(previous["weight"]["shape"])
            w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
            previous["weight"]["values"] = w.astype(np.float32).ravel()
            previous["bias"] = ((previous["bias"] - tensors[f"{i}.mean"]) * scale + tensors[f"{i}.beta"]).astype(
                np.float32)
        elif kind == "globalavgpool1d":
            layers.append(entry)
            if numerics == "int8" and f"{i}.output_scale" in tensors:
                input_scale = float(tensors[f"{i}.output_scale"][0])
        elif kind in ("dropout", "flatten"):
            continue
        else:
            layers.append(entry)
    return {"window": spec["window"], "channels": spec["channels"], "classes": len(manifest["classNames"]),
            "layers": layers}


class ChannelsLast(nn.Module):
    """[N, L, C] -> [N, C, L], the layout torch's Conv1d wants."""

    def forward(self, x):
        return x.permute(0, 2, 1)


def conv_padding(length, kernel, stride, dilation, padding):
    """Tandem's conv1d padding: (the zero-padding module or None, the output length). `same` pads
    ceil(length / stride) outputs' worth, the odd sample on the right, as the Swift kernels do."""
    if padding == "same":
        out = -(-length // stride)
        total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - length)
        return nn.ConstantPad1d((total // 2, total - total // 2), 0.0), out
    return None, (length - (kernel - 1) * dilation - 1) // stride + 1


def build(document):
    """The document's network as a PyTorch module taking `[N, window, channels]` windows, in eval mode."""
    length = document["window"]
    layers = [ChannelsLast()]
    flat = False
    for layer in document["layers"]:
        kind = layer["type"]
        if kind == "conv1d":
            w = np.array(layer["weight"]["values"], dtype=np.float32).reshape(layer["weight"]["shape"])
            filters, k, c = w.shape
            s, d = layer.get("stride", 1), layer.get("dilation", 1)
            pad, length = conv_padding(length, k, s, d, layer.get("padding", "valid"))
            if pad is not None:
                layers.append(pad)
            conv = nn.Conv1d(c, filters, k, stride=s, dilation=d, bias="bias" in layer)
            conv.weight.data = torch.from_numpy(w.transpose(0, 2, 1).copy())
            if "bias" in layer:
                conv.bias.data = torch.tensor(np.asarray(layer["bias"]), dtype=torch.float32)
            layers.append(conv)
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "globalavgpool1d":
            layers.append(nn.AdaptiveAvgPool1d(1))
            layers.append(nn.Flatten())
            flat = True
        elif kind == "dense":
            w = np.array(layer["weight"]["values"], dtype=np.float32).reshape(layer["weight"]["shape"])
            if not flat:
                layers.append(nn.Flatten())
                flat = True
            dense = nn.Linear(w.shape[1], w.shape[0], bias="bias" in layer)
            dense.weight.data = torch.from_numpy(w)
            if "bias" in layer:
                dense.bias.data = torch.tensor(np.asarray(layer["bias"]), dtype=torch.float32)
            layers.append(dense)
        elif kind in ("maxpool1d", "avgpool1d"):
            k = layer["kernel"]
            s = layer.get("stride", k)
            pool = nn.MaxPool1d if kind == "maxpool1d" else nn.AvgPool1d
            layers.append(pool(k, stride=s))
            length = (length - k) // s + 1
        else:
            raise SystemExit(f"layer type {kind} is not supported by this script")
    return nn.Sequential(*layers).eval()


def tensor(entry):
    """A `{"shape", "values"}` entry as a float32 array."""
    return np.array(entry["values"], dtype=np.float32).reshape(entry["shape"])


class Reader(CalibrationDataReader):
    """Calibration windows for quantize_static, in batches, under the input name `x`."""

    def __init__(self, windows, batch=16):
        self.batches = iter([windows[i : i + batch] for i in range(0, len(windows), batch)])

    def get_next(self):
        b = next(self.batches, None)
        return None if b is None else {"x": b}


def export_onnx(model, example, path):
    """Exports `model` with input `x` `[n, window, channels]` (dynamic n) and output `logits`."""
    torch.onnx.export(
        model, torch.from_numpy(example[:1]), path, input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)


def quantize_int8(fp32_path, int8_path, calibration):
    """Static int8 QDQ: int8 weights per channel, int8 activations calibrated on `calibration` windows."""
    quantize_static(
        fp32_path, int8_path, Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def session(path, threads):
    """A CPU InferenceSession with `threads` intra-op threads, one inter-op thread, sequential execution."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
