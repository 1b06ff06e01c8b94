"""Annotated copies of labelled videos: each frame with the current window's label, per-class bars, the
time, and a red banner during a fall event (drawn by overlay.draw_overlay, as in live mode).

Copies keep the source's frame rate and size, are written to a temporary file and renamed, so a copy
that exists is complete. They are written in a background thread (OpenCV releases the GIL) so the
labelling does not wait for them.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..utils.io import atomic_write, remove_stale_temps
from ..video.overlay import draw_overlay, draw_people
from ..video.region import cut

log = logging.getLogger(__name__)


def copy_path(folder: str | os.PathLike, rel: str) -> Path:
    return Path(folder) / Path(rel).with_suffix(".mp4")


def annotate_video(src: str, dst: str | os.PathLike, result, class_names: list[str], regions=None) -> Path:
    """Write `dst` (mp4): `src` with the prediction of the window centred nearest each frame's time. regions: the
    checkpoint's part of the frames to read (video/region.py): the copy shows that part, where its boxes are."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise OSError(f"{src}: cannot open it again to annotate")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else 25.0
    tracks = getattr(result, "tracks", None)
    if tracks is None:
        centres = (np.asarray(result.window_starts_s) + np.asarray(result.window_ends_s)) / 2
        probs = np.asarray(result.window_probs)
    else:
        from ..inference.tracks import people_at

    def write(tmp: str) -> None:  # atomic_write keeps the .mp4 suffix (OpenCV picks the container from it)
        writer = None
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                if regions:
                    frame = cut(frame, regions)
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {tmp}")
                t = i / fps
                alert = any(a <= t <= b for a, b in result.events)
                if tracks is not None:  # several people: a box, id and label per person, the banner on any fall
                    draw_people(frame, [(tid, box, class_names[k], c, a) for tid, box, k, c, a in people_at(tracks, t)])
                    draw_overlay(frame, class_names, None, result.label, result.confidence, time_s=t, alert=alert)
                else:
                    p = probs[int(np.abs(centres - t).argmin())]
                    top = int(p.argmax())
                    draw_overlay(frame, class_names, p, class_names[top], float(p[top]), time_s=t, alert=alert)
                writer.write(frame)
                i += 1
            if writer is None:
                raise OSError(f"{src}: no frames to annotate")
        finally:
            if writer is not None:
                writer.release()

    try:
        atomic_write(dst, write)
    finally:
        cap.release()
    return dst


def clean_stale_copies(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary copies a killed run left in `folder` (hidden `.NAME.mp4.XXXXXXXX.mp4` files).
    Only while holding the outputs' lock: a running writer's temp file looks the same."""
    folder = Path(folder)
    return remove_stale_temps(folder=folder, suffix=".mp4") if folder.is_dir() else []


class Annotator:
    """Writes annotated copies under `folder`, mirroring the input tree, one background thread."""

    def __init__(self, folder: str | os.PathLike, class_names: list[str], rule=None, regions=None):
        self.folder, self.class_names, self.rule, self.regions = Path(folder), list(class_names), rule, regions
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotate")
        self._futures: list[Future] = []
        self.failed: dict[str, str] = {}
        self.written = 0

    def clean(self) -> list[Path]:
        return clean_stale_copies(self.folder)

    def exists(self, job) -> bool:
        return copy_path(self.folder, job.rel or Path(job.path).name).is_file()

    def submit(self, result) -> None:
        dst = copy_path(self.folder, result.rel or Path(result.path).name)
        self._futures.append(self._pool.submit(annotate_video, result.path, dst, result, self.class_names,
                                               self.regions))
        self._reap()

    def _reap(self, wait: bool = False) -> None:
        keep = []
        for f in self._futures:
            if not (wait or f.done()):
                keep.append(f)
                continue
            try:
                f.result()
                self.written += 1
            except Exception as e:  # noqa: BLE001 - a failed copy is reported, the labels stand
                self.failed[str(e).split(":")[0]] = str(e)
                log.warning("annotated copy failed: %s", e)
        self._futures = keep

    def close(self) -> None:
        self._reap(wait=True)
        self._pool.shutdown(wait=True)
