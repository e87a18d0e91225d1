#!/usr/bin/env python3
"""The escalation worker a user would write in Python: the peer `scripts/bench-cloud` measures tandem-cloud against.

It does what one tandem-cloud worker does for an escalation, with the usual Python tools: paho-mqtt on the same
shared subscription ($share/tandem-cloud/tandem/v1/+/+/escalations, QoS 1, MQTT 5), the binary escalation
decoded and its CRC-32 checked (docs/PROTOCOL.md), the full model run by ONNX Runtime (the same weights, written by
`tandem export MODEL --onnx OUT --no-standardization`, so it takes the standardized windows escalations carry),
each escalation stored in SQLite (WAL) and each verdict published as JSON to the escalation's response topic with
its correlation data, QoS 1. Batching follows tandem-cloud's rule: the model runs on what has arrived, up to
--max-batch windows, and at once on a single one when idle.

Usage: scripts/cloud-worker-reference.py --model FULL.onnx --port PORT [--host H] [--db PATH] [--max-batch 64]
                                         [--threads 2] [--client-id ID]
Needs numpy, onnxruntime and paho-mqtt (pip). Stops on SIGTERM or SIGINT; prints its counts on standard error.
"""
import argparse
import json
import os
import queue
import signal
import sqlite3
import struct
import sys
import threading
import time
import uuid
import zlib

import numpy as np
import onnxruntime as ort
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HEADER = struct.Struct("<2sBB16sddfHIBf")


def decode(payload):
    """The escalation's id, device and window (float32 [length, channels]), or None when it is not one."""
    if len(payload) < HEADER.size + 3 + 4 or zlib.crc32(payload[:-4]) != struct.unpack_from("<I", payload, len(payload) - 4)[0]:
        return None
    magic, version, flags, raw_id, start, end, rate, channels, length, k, confidence = HEADER.unpack_from(payload)
    if magic != b"TE" or version != 1 or flags != 0 or channels < 1 or length < 1 or channels * length > 1 << 20:
        return None
    offset = HEADER.size
    names = []
    for _ in range(3):
        n = payload[offset]
        names.append(payload[offset + 1:offset + 1 + n].decode("utf-8"))
        offset += 1 + n
    count = channels * length
    if offset + 2 * count + 6 * k + 4 != len(payload):
        return None
    window = np.frombuffer(payload, dtype="<f2", count=count, offset=offset).astype(np.float32)
    if not np.isfinite(window).all():
        return None
    return uuid.UUID(bytes=raw_id), names[0], window.reshape(length, channels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the full model as ONNX, exported with --no-standardization")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default="reference-worker.sqlite", help="the SQLite sample store")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--client-id", default=f"reference-worker-{os.getpid()}")
    parser.add_argument("--group", default="tandem-cloud", help="the shared subscription's group")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    _, window, channels = session.get_inputs()[0].shape
    model_version = os.path.splitext(os.path.basename(args.model))[0]

    db = sqlite3.connect(args.db, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS escalation (id TEXT PRIMARY KEY, device TEXT, received_at REAL, payload BLOB,"
        " verdict_label INTEGER, answered_at REAL)")

    work = queue.Queue()
    counts = {"received": 0, "refused": 0, "answered": 0, "batches": 0}
    stopping = threading.Event()

    def on_message(client, userdata, message):
        escalation = decode(message.payload)
        props = message.properties
        response = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        if escalation is None or escalation[2].shape != (window, channels) or response is None:
            counts["refused"] += 1
            return
        counts["received"] += 1
        work.put((escalation, bytes(message.payload), response, correlation, time.time()))

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, reason, p: c.subscribe(
        f"$share/{args.group}/tandem/v1/+/+/escalations", qos=1)
    client.connect(args.host, args.port)
    client.loop_start()

    def serve():
        while not stopping.is_set():
            try:
                batch = [work.get(timeout=0.1)]
            except queue.Empty:
                continue
            while len(batch) < args.max_batch:
                try:
                    batch.append(work.get_nowait())
                except queue.Empty:
                    break
            windows = np.stack([item[0][2] for item in batch])
            logits = session.run(None, {input_name: windows})[0]
            logits = logits - logits.max(axis=1, keepdims=True)
            probabilities = np.exp(logits)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            labels = probabilities.argmax(axis=1)
            now = time.time()
            with db:
                db.executemany(
                    "INSERT OR IGNORE INTO escalation (id, device, received_at, payload, verdict_label, answered_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(str(item[0][0]).upper(), item[0][1], item[4], item[1], int(label), now)
                     for item, label in zip(batch, labels)])
            for item, label, row in zip(batch, labels, probabilities):
                verdict = json.dumps({
                    "escalationId": str(item[0][0]).upper(), "label": int(label), "modelVersion": model_version,
                    "probabilities": [float(p) for p in row], "v": 1}, separators=(",", ":"))
                properties = None
                if item[3] is not None:
                    properties = Properties(PacketTypes.PUBLISH)
                    properties.CorrelationData = item[3]
                client.publish(item[2], verdict, qos=1, properties=properties)
            counts["answered"] += len(batch)
            counts["batches"] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    print(f"reference worker serving {args.model} ({window}x{channels}) on port {args.port}", file=sys.stderr,
          flush=True)
    while not stopping.wait(0.5):
        pass
    thread.join(timeout=5)
    client.loop_stop()
    client.disconnect()
    db.close()
    print(f"reference worker stopped: {counts}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
