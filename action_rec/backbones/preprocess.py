"""Preprocess: frames of any size -> the normalised input a backbone network takes.

"letterbox" (the default) keeps the frame's aspect ratio and pads it to the ``size`` square. "rect" keeps the aspect
ratio with the longer side at ``size`` and pads the shorter one only up to a multiple of 32 (ultralytics'
rectangular letterbox): a 640x480 frame becomes 224x192, a 16:9 one 224x128, so the network does 14 % / 43 % less
work (INT8 efficientnet_lite0, one core: 3.4 / 2.3 ms a frame instead of 3.9). It is not the default because the
synthetic test accuracy was 2 points lower with it (0.893 vs 0.913, mean of 4 seeds on 300 clips).

Kept free of torch at import time, so a worker process that only decodes and runs ONNX Runtime never
pays for importing torch (~2 s of CPU and ~300 MB per process).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch


RESIZES = ("rect", "letterbox", "stretch", "center_crop")
STRIDE = 32  # "rect" input sides are multiples of this: every stride-2 stage of the networks sees an even size


@dataclass(frozen=True)
class Preprocess:
    size: int  # model input side in pixels (the longer side for "rect", else the square's)
    resize: str = "letterbox"  # "letterbox" (keep aspect, pad to the square) | "rect" (keep aspect, pad to a multiple
    # of 32) | "stretch" | "center_crop"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # 0..255 scale, RGB
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    pad_value: int = 114

    def __post_init__(self):
        # JSON round trips give lists and ints; normalise so equal settings compare (and cache-key) equal.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.resize not in RESIZES:
            raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {self.resize!r}")
        if int(self.size) <= 0 or len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"bad Preprocess settings: {self}")
        if self.resize == "rect" and int(self.size) % STRIDE:
            raise ValueError(f"resize 'rect' needs an input size that is a multiple of {STRIDE}, got {self.size} "
                             f"(try {max(STRIDE, round(int(self.size) / STRIDE) * STRIDE)}, or resize 'letterbox')")

    def input_shape(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) of the model input for an h x w frame."""
        s = int(self.size)
        if self.resize != "rect":
            return s, s
        r = s / max(h, w)
        return (-(-max(1, round(h * r)) // STRIDE) * STRIDE, -(-max(1, round(w * r)) // STRIDE) * STRIDE)

    def chunks(self, frames, batch_size: int):
        """(indices, frames) batches of at most ``batch_size`` frames that share one input shape, every frame once.
        Frames of one video share a shape, so this only splits batches that mix videos of different sizes."""
        n = len(frames)
        if self.resize == "rect" and n and not isinstance(frames, np.ndarray):
            groups: dict[tuple[int, int], list[int]] = {}
            for i, f in enumerate(frames):
                groups.setdefault(self.input_shape(*np.shape(f)[:2]), []).append(i)
            if len(groups) > 1:
                for idx in groups.values():
                    for start in range(0, len(idx), batch_size):
                        part = idx[start:start + batch_size]
                        yield np.asarray(part), [frames[i] for i in part]
                return
        for start in range(0, n, batch_size):  # one shape: plain slices (an ndarray batch is one shape)
            yield np.arange(start, min(n, start + batch_size)), frames[start:start + batch_size]

    def to_dict(self) -> dict:
        return {"size": int(self.size), "resize": self.resize, "mean": list(self.mean), "std": list(self.std),
                "pad_value": int(self.pad_value)}

    def _fit(self, frame: np.ndarray, dst: np.ndarray) -> None:
        """Resize one HxWx3 frame into the uint8 slot ``dst`` of shape input_shape(H, W) + (3,), pre-filled with
        pad_value."""
        s, (h, w), (dh, dw) = self.size, frame.shape[:2], dst.shape[:2]
        if self.resize == "center_crop":  # crop the central square first: same result as resize-then-crop, cheaper
            m = min(h, w)
            frame, h, w = frame[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m], m, m
        if self.resize in ("letterbox", "rect"):
            r = s / max(h, w)
            nw, nh = max(1, round(w * r)), max(1, round(h * r))
        else:
            nw = nh = s
        top, left = (dh - nh) // 2, (dw - nw) // 2
        k = min(h // nh, w // nw)
        if k >= 2:  # shrink by an integer factor k with a box filter first: antialiased (plain bilinear aliases
            # badly at 1080p->224) and cv2's fast INTER_AREA path (~0.1 ms vs 1.5 ms for a non-integer factor)
            h0, w0 = (h % k) // 2, (w % k) // 2
            frame = cv2.resize(np.ascontiguousarray(frame[h0:h0 + h - h % k, w0:w0 + w - w % k]), (w // k, h // k),
                               interpolation=cv2.INTER_AREA)
        if frame.shape[:2] != (nh, nw):
            frame = cv2.resize(np.ascontiguousarray(frame), (nw, nh), interpolation=cv2.INTER_LINEAR)
        dst[top:top + nh, left:left + nw] = frame

    def fitted(self, frames: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """(N, H, W, 3) uint8: every frame resized/padded into the model's input (frames of one input shape; see
        :meth:`chunks` for mixed ones)."""
        frames = [np.asarray(f) for f in frames] if not isinstance(frames, np.ndarray) else frames
        for i, frame in enumerate(frames):
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8 or 0 in frame.shape:
                raise ValueError(f"frame {i}: expected an RGB uint8 HxWx3 array, got {frame.dtype} {frame.shape}")
        shapes = {self.input_shape(*f.shape[:2]) for f in frames[:1 if isinstance(frames, np.ndarray) else None]}
        if len(shapes) > 1:
            raise ValueError(f"frames of different aspect ratios give different input shapes {sorted(shapes)}: "
                             "batch them with Preprocess.chunks()")
        (h, w), = shapes or {(self.size, self.size)}
        batch = np.full((len(frames), h, w, 3), self.pad_value, dtype=np.uint8)
        for i, frame in enumerate(frames):
            self._fit(frame, batch[i])
        return batch

    def numpy(self, frames: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """The model input as a contiguous (N, 3, H, W) float32 array, without torch (for ONNX Runtime)."""
        batch = self.fitted(frames)
        out = np.empty((len(batch), 3, *batch.shape[1:3]), dtype=np.float32)
        # One pass per channel straight into NCHW: 14x faster than astype + normalise + transpose (0.09 vs 1.3 ms
        # a frame at 224 px), identical values.
        for c in range(3):
            np.subtract(batch[..., c], np.float32(self.mean[c]), out=out[:, c], dtype=np.float32)
            out[:, c] *= np.float32(1.0 / self.std[c])
        return out

    def __call__(self, frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        import torch

        batch = self.fitted(frames)
        # NHWC -> NCHW as a view is exactly the channels_last layout the models run fastest in: no copy needed.
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        inv_std = 1.0 / torch.tensor(self.std).view(1, 3, 1, 1)
        return x.sub_(mean).mul_(inv_std)
