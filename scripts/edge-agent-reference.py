#!/usr/bin/env python3
"""A reference edge agent in plain Python, written the way a user would write one: the peer that
scripts/bench-edge measures tandem-edge against.

Usage:
  pip install numpy onnxruntime paho-mqtt
  scripts/edge-agent-reference.py --model EDGE-int8.onnx --inspect EDGE.json \\
      [--broker mqtt://127.0.0.1:1883] [--fleet default] [--device python] [--threshold 0.9] < samples.jsonl

Reads JSON lines `{"ts":…,"values":[…],"stream":"…"}` (tandem-edge's format, docs/EDGE.md) from standard
input and keeps a buffer of the last `window` samples per stream. Window, hop, channels and the
standardization mean/std come from EDGE.json, the output of `tandem inspect --json` for the Tandem
model the ONNX file was made from. Every `hop` samples after the first full window, the window is
standardized and run through ONNX Runtime (one intra-op thread, batch 1); a window whose largest softmax
probability is below --threshold is escalated: published with paho-mqtt at QoS 1 to
`tandem/v1/{fleet}/{device}/escalations`. The payload is a JSON header (id, stream, window start and end,
confidence, top-3), a zero byte, then the standardized window as float16, sample-major.

Lines that are not JSON samples with `channels` values, or whose timestamp does not increase, are
counted and skipped. At end of input the agent waits until the broker has acknowledged every
escalation (at most --drain-seconds) and prints one JSON summary line: lines, rejected, windows,
escalations, acknowledged.
"""
import argparse
import collections
import json
import sys
import time
import uuid
from urllib.parse import urlparse

import numpy as np
import onnxruntime as ort
import paho.mqtt.client as mqtt


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="ONNX model (input `x` [n, window, channels], logits out)")
    parser.add_argument("--inspect", required=True, help="`tandem inspect --json` output for the same model")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--fleet", default="default")
    parser.add_argument("--device", default="python")
    parser.add_argument("--threshold", type=float, default=0.9, help="escalate below this max probability")
    parser.add_argument("--drain-seconds", type=float, default=30)
    args = parser.parse_args()

    with open(args.inspect) as f:
        spec = json.load(f)["manifest"]["input"]
    window, hop, channels = spec["window"], spec["hop"], spec["channels"]
    mean = np.array(spec.get("mean") or [0.0] * channels, dtype=np.float32)
    std = np.array(spec.get("std") or [1.0] * channels, dtype=np.float32)

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

    acknowledged = 0

    def on_publish(client, userdata, mid, reason_code, properties):
        nonlocal acknowledged
        acknowledged += 1

    broker = urlparse(args.broker)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{args.device}-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    client.on_publish = on_publish
    client.connect(broker.hostname or "127.0.0.1", broker.port or 1883)
    client.loop_start()
    topic = f"tandem/v1/{args.fleet}/{args.device}/escalations"

    samples = {}  # stream -> deque of the last `window` value lists
    times = {}  # stream -> deque of their timestamps
    until_window = {}  # stream -> samples until the next window
    lines = rejected = windows = escalations = 0
    for line in sys.stdin:
        lines += 1
        try:
            sample = json.loads(line)
            ts = float(sample["ts"])
            values = sample["values"]
            stream = sample.get("stream", "main")
        except (ValueError, KeyError, TypeError):
            rejected += 1
            continue
        if not isinstance(values, list) or len(values) != channels:
            rejected += 1
            continue
        buffer = samples.get(stream)
        if buffer is None:
            buffer = samples[stream] = collections.deque(maxlen=window)
            times[stream] = collections.deque(maxlen=window)
            until_window[stream] = window
        elif ts <= times[stream][-1]:
            rejected += 1
            continue
        buffer.append(values)
        times[stream].append(ts)
        until_window[stream] -= 1
        if until_window[stream] > 0:
            continue
        until_window[stream] = hop

        x = (np.array(buffer, dtype=np.float32) - mean) / std
        logits = session.run(None, {"x": x[None]})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        confidence = float(p.max())
        windows += 1
        if confidence < args.threshold:
            escalations += 1
            top = np.argsort(p)[::-1][:3]
            header = {
                "id": str(uuid.uuid4()), "device": args.device, "stream": stream,
                "start": times[stream][0], "end": times[stream][-1], "confidence": confidence,
                "top": [[int(i), float(p[i])] for i in top],
            }
            client.publish(topic, json.dumps(header).encode() + b"\0" + x.astype(np.float16).tobytes(), qos=1)

    deadline = time.monotonic() + args.drain_seconds
    while acknowledged < escalations and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({
        "lines": lines, "rejected": rejected, "windows": windows, "escalations": escalations,
        "acknowledged": acknowledged,
    }))


if __name__ == "__main__":
    main()
