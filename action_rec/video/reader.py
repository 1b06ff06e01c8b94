"""Video reading with OpenCV, sampled at a target frame rate by timestamp.

Sampling by time (not by frame index) is what makes a 10-fps phone clip and a 120-fps camera clip look
alike to the model: both become frames spaced 1/fps seconds apart.
"""

from __future__ import annotations

import math
import os
import queue
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..utils.pathcheck import describe_missing
from .region import cut

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

# Containers sometimes report nonsense rates (0, NaN, 90000); past this we fall back to timestamps.
_MAX_SANE_FPS = 1000.0


class VideoReadError(RuntimeError):
    """A video that cannot be opened or decoded. The message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    frame_count: int  # as reported by the container; may be approximate
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def clip_duration_s(info: VideoInfo | None, samples: int, fps: float) -> float:
    """A clip's duration, one definition for `label`, `evaluate` and the reports: the container's frame
    count / frame rate (a 6.389 s clip is 6.389 s), else, when the container does not say, the sampled
    frames / sampling rate (which rounds up to the next 1/fps)."""
    if info is not None and info.duration_s > 0:
        return info.duration_s
    return samples / fps


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _open(path: str | os.PathLike, threads: int = 0) -> cv2.VideoCapture:
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        raise VideoReadError(f"{p}: {describe_missing(p)}") from None  # a symlink loop is not "no such file"
    if stat.S_ISDIR(st.st_mode):
        raise VideoReadError(f"{p}: is a folder, not a video file")
    if st.st_size == 0:
        raise VideoReadError(f"{p}: empty file (0 bytes)")
    cap = cv2.VideoCapture(str(p))
    if threads:  # decoder threads (0: OpenCV's choice); 1 costs ~30 % less CPU than the default where a process per
        # core already decodes (640x480 mp4v: 10.3 vs 14.6 ms per video second). A backend that rejects it: default.
        with_threads = cv2.VideoCapture(str(p), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(threads)])
        if with_threads.isOpened():
            cap.release()
            cap = with_threads
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(f"{p}: OpenCV cannot open it (not a video, or a codec OpenCV lacks)")
    return cap


def probe(path: str | os.PathLike) -> VideoInfo:
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        return VideoInfo(
            path=str(path),
            fps=fps if 0 < fps < _MAX_SANE_FPS else 0.0,
            frame_count=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        cap.release()


def iter_sampled(path: str | os.PathLike, fps: float, threads: int = 0, region=None
                 ) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (timestamp_s, RGB uint8 frame) at `fps` sample times 0, 1/fps, 2/fps, ... ; with a region
    (video/region.py: one Region, or one per frame size), the frames cut to it.

    Each sample takes the most recent source frame at or before its time (what a camera shows at that
    instant), so a source slower than `fps` repeats frames and a faster one is skipped with grab() —
    decoded but never colour-converted or copied. Raises VideoReadError if nothing can be decoded.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    cap = _open(path, threads)
    try:
        native = cap.get(cv2.CAP_PROP_FPS)
        native = native if 0 < native < _MAX_SANE_FPS else 0.0
        k = 0  # index of the next sample time, k / fps
        index = 0
        held = None
        while cap.grab():
            if native:
                # Source frame `index` is on screen during [index, index+1) / native; the samples that fall
                # in that interval are k = ceil(index*fps/native) .. ceil((index+1)*fps/native) - 1.
                last = math.ceil((index + 1) * fps / native - 1e-9)
            else:  # no usable rate: trust the container's timestamps
                last = math.floor(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 * fps + 1e-9) + 1
            index += 1
            if last <= k:
                continue  # no sample time falls on this frame: skip it without converting it
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                break
            held = cv2.cvtColor(cut(bgr, region) if region else bgr, cv2.COLOR_BGR2RGB)
            while k < last:
                yield k / fps, held
                k += 1
        if held is None:
            raise VideoReadError(f"{path}: no frames could be decoded (corrupt or truncated video)")
    finally:
        cap.release()


def read_sampled(path: str | os.PathLike, fps: float, max_frames: int | None = None
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """All sampled frames of a (short) video in memory; see iter_sampled for the sampling rule."""
    frames, times = [], []
    for t, frame in iter_sampled(path, fps):
        frames.append(frame)
        times.append(t)
        if max_frames is not None and len(frames) >= max_frames:
            break
    return frames, np.asarray(times, dtype=np.float64)


def prefetch(iterator: Iterator, size: int = 64) -> Iterator:
    """Run `iterator` in a background thread (OpenCV decoding releases the GIL), so decoding the
    next frames overlaps the backbone working on the current batch. Exceptions are re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=size)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in iterator:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)
            return
        q.put(done)

    th = threading.Thread(target=work, daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Unblock the producer if it waits on a full queue, so it can see `stop` and exit.
        while th.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(timeout=0.05)


def num_samples(duration_s: float, fps: float) -> int:
    return max(1, math.floor(duration_s * fps + 1e-9))
