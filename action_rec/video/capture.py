"""Live frame sources (camera index, video file, RTSP/HTTP URL) read by a thread into a one-slot buffer.

The capture thread overwrites the slot with each new frame, so whoever reads it always gets the newest
frame: the display never lags behind the camera and memory never grows, however slow the model is.
For deterministic runs over a file (`lossless`), the thread instead waits until every reader has taken
the frame before it reads the next, so no frame is ever dropped.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .reader import _MAX_SANE_FPS, VideoReadError, _open
from .region import cut


class SourceError(RuntimeError):
    """A source that cannot be opened; the message says which and why."""


@dataclass
class Frame:
    bgr: np.ndarray
    seq: int            # 0, 1, 2, ... in reading order
    t: float            # stream time (s): video time for files, since the first frame for live sources
    t_end: float        # this frame is what the source shows until t_end (sampling: see LiveModel.due)
    captured: float     # time.perf_counter() when it was decoded
    decode_s: float     # how long read() took


class Source:
    """A cv2.VideoCapture-like object plus what kind of source it is. `cap` may be any object with
    read() / get() / release() (tests pass a fake)."""

    def __init__(self, cap, name: str, is_file: bool, fps: float):
        self.cap, self.name, self.is_file = cap, name, is_file
        self.fps = fps if 0 < fps < _MAX_SANE_FPS else 0.0

    def release(self) -> None:
        self.cap.release()


def open_source(spec: str, open_timeout_s: float = 10.0) -> Source:
    """'0' (camera index), a video file path, or a URL such as rtsp://... / http://...; SourceError if not."""
    spec = str(spec)
    if spec.isdigit():
        with _quiet_opencv():  # a missing camera makes every OpenCV backend log its own complaint
            cap = cv2.VideoCapture(int(spec))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"camera {spec} not found (no such device, or it is in use by another program)")
        return Source(cap, f"camera {spec}", False, cap.get(cv2.CAP_PROP_FPS))
    if "://" in spec:
        ms = int(open_timeout_s * 1000)
        cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"{spec}: cannot open the stream (unreachable, wrong URL or unsupported format)")
        # A file served over HTTP has a length: play it like a file (paced, ends); a live stream has none.
        finite = cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
        return Source(cap, spec, finite, cap.get(cv2.CAP_PROP_FPS))
    try:
        cap = _open(spec)
    except VideoReadError as e:
        hint = "" if os.path.lexists(spec) else " (for a camera give its index, e.g. --source 0)"
        raise SourceError(f"{e}{hint}") from e
    return Source(cap, spec, True, cap.get(cv2.CAP_PROP_FPS))


@contextlib.contextmanager
def _quiet_opencv():
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


class LatestSlot:
    """One frame, read by `readers` consumers; put() overwrites it (or, lossless, waits until all took it)."""

    def __init__(self, readers: int = 1, lossless: bool = False):
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._taken = [-1] * readers
        self.lossless = lossless
        self.closed: str | None = None   # why the stream ended, once it has
        self.error = False               # ended by a failure rather than the end of a file

    def put(self, frame: Frame) -> bool:
        """False if the slot was closed meanwhile (stop reading)."""
        with self._cond:
            if self.lossless and self._frame is not None:
                self._cond.wait_for(lambda: self.closed or min(self._taken) >= self._frame.seq)
            if self.closed:
                return False
            self._frame = frame
            self._cond.notify_all()
            return True

    def get(self, reader: int, timeout: float | None = None) -> Frame | None:
        """The newest frame this reader has not seen yet; None once closed (see .closed) or on timeout."""
        with self._cond:
            fresh = lambda: self._frame is not None and self._frame.seq > self._taken[reader]  # noqa: E731
            self._cond.wait_for(lambda: fresh() or self.closed, timeout)
            if not fresh():
                return None
            self._taken[reader] = self._frame.seq
            self._cond.notify_all()
            return self._frame

    def close(self, reason: str, error: bool = False) -> None:
        with self._cond:
            if not self.closed:
                self.closed, self.error = reason, error
            self._cond.notify_all()


class CaptureThread(threading.Thread):
    """Reads `source` into `slot` until the end, a failure, or stop().

    realtime: pace a file at its native rate, like a camera (otherwise as fast as the readers take it).
    stall_s: a live source that delivers nothing for this long is given up on.
    """

    def __init__(self, source: Source, slot: LatestSlot, realtime: bool = True, stall_s: float = 5.0,
                 regions=None):
        super().__init__(name="capture", daemon=True)  # daemon: a driver stuck in read() cannot hang exit
        self.source, self.slot, self.realtime, self.stall_s = source, slot, realtime, stall_s
        self.regions = regions  # the checkpoint's part of the frames to read (video/region.py): cut here, once
        self._halt = threading.Event()
        self.decode_s: deque[float] = deque(maxlen=20_000)  # bounded: cameras run for days

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - a driver error ends the stream with a message, not a traceback
            self.slot.close(f"{self.source.name}: capture failed: {e}", error=True)

    def _run(self) -> None:
        src, seq, t0, last_ok = self.source, 0, None, time.monotonic()
        period = 1.0 / src.fps if src.fps else 0.0
        while not self._halt.is_set():
            start = time.perf_counter()
            ok, bgr = src.cap.read()
            now = time.perf_counter()
            if not ok or bgr is None:
                if src.is_file:
                    if seq == 0:
                        self.slot.close(f"{src.name}: no frames could be decoded", error=True)
                    else:
                        self.slot.close(f"{src.name}: end of file")
                    return
                if time.monotonic() - last_ok > self.stall_s:
                    self.slot.close(f"{src.name}: no frames for {self.stall_s:g} s (camera unplugged, or the "
                                    "stream stopped or ended)", error=True)
                    return
                time.sleep(0.01)
                continue
            last_ok = time.monotonic()
            self.decode_s.append(now - start)
            if src.is_file:
                if period:
                    t, t_end = seq * period, (seq + 1) * period
                else:  # no usable rate: the container's timestamps (as video.iter_sampled does)
                    t = t_end = src.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 + 1e-6
                if self.realtime:
                    t0 = now - t if t0 is None else t0
                    if (wait := t0 + t - time.perf_counter()) > 0 and self._halt.wait(wait):
                        return
                    now = time.perf_counter()
            else:
                t0 = now if t0 is None else t0
                t = t_end = now - t0  # a camera frame is what it shows at the moment it arrived
            if self.regions:
                bgr = cut(bgr, self.regions)
            if not self.slot.put(Frame(bgr, seq, t, t_end, now, self.decode_s[-1])):
                return
            seq += 1
        self.slot.close("stopped")
