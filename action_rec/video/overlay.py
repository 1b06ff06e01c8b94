"""Drawing predictions onto a frame: shared by batch `--annotate` copies and the live window.

A pure function of its inputs (no state, no I/O) so both paths draw exactly the same thing.
Sizes scale with the frame height so the overlay stays readable on 64x48 test clips and on 1080p.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BAR_BG = (60, 60, 60)
_BAR_FG = (80, 200, 80)      # BGR green
_BAR_TOP = (0, 200, 255)     # BGR amber for the winning class
_RED = (0, 0, 220)
_WHITE = (255, 255, 255)


def _text(img: np.ndarray, s: str, org: tuple[int, int], scale: float, color=_WHITE, thick: int = 1) -> None:
    # Darken a box under the text so it stays legible on any background (an outline drawn with a
    # thicker stroke misaligns under OpenCV 5's font engine, so a backdrop it is).
    (tw, th), base = cv2.getTextSize(s, _FONT, scale, thick)
    x, y = org
    y0, y1 = max(0, y - th - 2), min(img.shape[0], y + base + 1)
    x0, x1 = max(0, x - 2), min(img.shape[1], x + tw + 2)
    if y1 > y0 and x1 > x0:
        img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * 0.35).astype(img.dtype)
    cv2.putText(img, s, org, _FONT, scale, color, thick, cv2.LINE_AA)


def draw_overlay(frame_bgr: np.ndarray, class_names: list[str], probs: Sequence[float] | None,
                 label: str | None, confidence: float | None, *, time_s: float | None = None,
                 fps: float | None = None, latency_ms: float | None = None, alert: bool = False) -> np.ndarray:
    """Draw label + confidence, one horizontal bar per class, optional time/fps/latency text and,
    when `alert`, a red "FALL DETECTED" banner. Draws in place on `frame_bgr` and returns it."""
    img = frame_bgr
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR frame, got shape {img.shape}")
    h, w = img.shape[:2]
    scale = max(0.25, h / 720.0)                  # font scale: 1.0 at 720p
    thick = max(1, int(round(2 * scale)))
    line = max(8, int(round(34 * scale)))         # text line height in pixels
    pad = max(2, int(round(10 * scale)))

    y = pad + line
    if label is not None:
        head = label if confidence is None else f"{label} {confidence:.0%}"
        _text(img, head, (pad, y), 1.0 * scale, _RED if alert else _WHITE, thick)
        y += line

    if probs is not None:
        p = np.asarray(probs, dtype=float).ravel()
        if len(p) != len(class_names):
            raise ValueError(f"{len(p)} probabilities for {len(class_names)} classes")
        top = int(p.argmax()) if len(p) else -1
        bar_w = max(10, int(w * 0.25))
        bar_h = max(3, int(line * 0.6))
        name_w = max(4 * pad, int(w * 0.18))
        for i, (name, v) in enumerate(zip(class_names, p)):
            v = float(np.clip(v, 0.0, 1.0))
            yt = y + i * line
            _text(img, name[:12], (pad, yt), 0.7 * scale, _WHITE, max(1, thick - 1))
            x0, y0 = pad + name_w, yt - bar_h
            cv2.rectangle(img, (x0, y0), (x0 + bar_w, yt), _BAR_BG, -1)
            cv2.rectangle(img, (x0, y0), (x0 + int(round(v * bar_w)), yt), _BAR_TOP if i == top else _BAR_FG, -1)
            _text(img, f"{v:.2f}", (x0 + bar_w + pad, yt), 0.6 * scale, _WHITE, max(1, thick - 1))
        y += len(p) * line

    info = []
    if time_s is not None:
        m, s = divmod(max(0.0, float(time_s)), 60.0)
        info.append(f"t={int(m):d}:{s:05.2f}")
    if fps is not None:
        info.append(f"{fps:.1f} fps")
    if latency_ms is not None:
        info.append(f"{latency_ms:.0f} ms")
    if info:
        _text(img, "  ".join(info), (pad, h - pad), 0.7 * scale, _WHITE, max(1, thick - 1))

    if alert:
        bh = max(line + pad, int(h * 0.12))
        y0 = max(0, h // 2 - bh // 2)
        cv2.rectangle(img, (0, y0), (w, y0 + bh), _RED, -1)
        cv2.rectangle(img, (0, 0), (w - 1, h - 1), _RED, max(2, thick * 2))
        msg = "FALL DETECTED"
        fs = 1.2 * scale
        (tw, th), _ = cv2.getTextSize(msg, _FONT, fs, thick + 1)
        if tw > w - 2 * pad:                       # shrink to fit narrow frames
            fs *= (w - 2 * pad) / tw
            (tw, th), _ = cv2.getTextSize(msg, _FONT, fs, thick + 1)
        cv2.putText(img, msg, ((w - tw) // 2, y0 + (bh + th) // 2), _FONT, fs, _WHITE, thick + 1, cv2.LINE_AA)
    return img


def draw_people(frame_bgr: np.ndarray, people) -> np.ndarray:
    """A box per person with 'id label confidence' above it, red while that person's fall alert is on; people:
    (id, (x1, y1, x2, y2), label, confidence, alert). In place; returns the frame."""
    h = frame_bgr.shape[0]
    scale = max(0.25, h / 720.0)
    thick = max(1, int(round(2 * scale)))
    for tid, box, label, conf, alert in people:
        x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
        color = _RED if alert else _BAR_FG
        cv2.rectangle(frame_bgr, (x1, y1), (x2, y2), color, thick)
        text = f"{tid} {label}" + ("" if conf is None else f" {conf:.0%}")
        _text(frame_bgr, text, (max(0, x1), max(int(12 * scale) + 2, y1 - 3)), 0.6 * scale, color, thick)
    return frame_bgr
