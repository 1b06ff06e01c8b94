"""INT8 backbone check: how close its features are to fp32, how fast it runs, and whether another CPU computes the
same features.

    python scripts/bench_int8.py                                  # cosine to fp32 + ms a frame, this CPU
    python scripts/bench_int8.py --save /tmp/int8_here.npz        # ... and keep the int8 features
    qemu-x86_64 -cpu EPYC-Rome .venv/bin/python scripts/bench_int8.py --compare /tmp/int8_here.npz --no-speed

The last line runs the same script on an emulated AVX2-only CPU (`apt-get install qemu-user`), which makes ONNX
Runtime pick its AVX2 kernels, and prints how far its int8 features are from the ones saved on this CPU (0 means
bit-identical). Frames: 2 per clip of ../shared/realtrain (never the realvids test set) when present, else crops of
the street photos that ship with ultralytics. The first line says which SIMD flags this CPU has.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np

REALTRAIN = Path(__file__).resolve().parents[2] / "shared" / "realtrain" / "MANIFEST.csv"


def cpu_flags() -> str:
    """The SIMD features this process sees (numpy asks CPUID at run time, so an emulated CPU reports its own;
    /proc/cpuinfo would show the host's)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as seen
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as seen
    names = {"AVX2": "avx2", "AVX512F": "avx512f", "AVX512BW": "avx512bw", "AVX512VNNI": "avx512_vnni",
             "AVX_VNNI": "avx_vnni"}
    return " ".join(flag for key, flag in names.items() if seen.get(key))


def frames(manifest: Path, per_clip: int) -> list[np.ndarray]:
    if not manifest.is_file():
        from action_rec.backbones import calibration_frames

        return calibration_frames(96)[48:]  # crops the calibration did not use (same photos, other draws)
    out = []
    for row in csv.DictReader(manifest.open()):
        cap = cv2.VideoCapture(str(manifest.parent / row["path"]))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for k in range(per_clip):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(n * (k + 0.5) / per_clip))
            ok, bgr = cap.read()
            if ok:
                out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
    return out


def ms_per_frame(net, x: np.ndarray, repeats: int = 5) -> float:
    net(x)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(4):
            net(x)
        best = min(best, (time.perf_counter() - t) / (4 * len(x)) * 1000)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=REALTRAIN, help="clips to take frames from (%(default)s)")
    ap.add_argument("--per-clip", type=int, default=2)
    ap.add_argument("--save", type=Path, help="write the int8 features here (.npz)")
    ap.add_argument("--compare", type=Path, help="int8 features saved by --save on another CPU")
    ap.add_argument("--no-speed", action="store_true", help="skip the timing (pointless under emulation)")
    a = ap.parse_args()

    import onnxruntime

    from action_rec.backbones import build_backbone, onnx_runtime

    print(f"CPU flags: {cpu_flags() or 'none of avx2/avx512/vnni'}; onnxruntime {onnxruntime.__version__}; "
          f"INT8 recipe {onnx_runtime.QUANT_VERSION}")
    fp32 = build_backbone("efficientnet_lite0", "default", image_size=224, runtime="onnx")
    int8 = build_backbone("efficientnet_lite0", "default", image_size=224, precision="int8")
    imgs = frames(a.manifest, a.per_clip)
    x = int8.preprocess.numpy(imgs)
    nets = {"fp32": onnx_runtime.OnnxNet(fp32._onnx.model, 1), "int8": onnx_runtime.OnnxNet(int8._onnx.model, 1)}
    feats = {k: np.concatenate([net(x[i:i + 8]) for i in range(0, len(x), 8)]) for k, net in nets.items()}
    f, q = feats["fp32"], feats["int8"]
    cos = (f * q).sum(1) / (np.linalg.norm(f, axis=1) * np.linalg.norm(q, axis=1) + 1e-30)
    source = a.manifest.parent.name if a.manifest.is_file() else "street photos"
    print(f"{len(x)} frames ({source}): int8 vs fp32 mean cosine {cos.mean():.4f}, min {cos.min():.4f}")
    if not a.no_speed:
        for k, net in nets.items():
            print(f"{k}: {ms_per_frame(net, x[:8]):.2f} ms a frame (1 thread, batch 8, best of 5)")
    if a.save:
        np.savez(a.save, int8=q, cpu=cpu_flags())
        print(f"int8 features saved to {a.save}")
    if a.compare:
        with np.load(a.compare) as z:
            other, where = z["int8"], str(z["cpu"])
        if other.shape != q.shape:
            print(f"--compare: {other.shape} features there, {q.shape} here: use the same frames")
            return 1
        c = (other * q).sum(1) / (np.linalg.norm(other, axis=1) * np.linalg.norm(q, axis=1) + 1e-30)
        print(f"int8 here vs the CPU with [{where}]: max abs difference {np.abs(other - q).max():.3g}, "
              f"min cosine {c.min():.6f}" + ("  (bit-identical)" if np.array_equal(other, q) else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
