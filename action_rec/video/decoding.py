"""Decoding videos into model-ready frames, in worker processes, for batch labelling.

Workers decode only the frames the model needs (iter_sampled: the checkpoint's rate, grab() for the rest)
and already resize them to the backbone's input, so the main process spends its time in the backbone and
each frame crosses the process boundary at e.g. 224x192 instead of full size. The resize is the backbone's
own (`Preprocess._fit`): the backbone re-fitting an already fitted input is a plain copy, so the features
are exactly those of `Backbone.embed` on the original frames.

Messages a source yields, per video in order: ("frames", vid, uint8 (n,H,W,3), times (n,)) ...,
then ("done", vid, info) or ("error", vid, message). Given a CPU `backbone`, worker processes also embed
what they decode and send ("features", vid, float32 (n,D), times) instead: on a CPU every core then runs
its own decode -> backbone pipeline (one thread each) and only features cross the process boundary.
Measured on the 2-core dev CPU (int8 efficientnet_lite0, 640x480 30-fps mp4v): per video second a worker
spends ~14 ms decoding (one FFmpeg thread) and ~34 ms in the backbone (8 frames, 1 thread); two workers
label 35-38x real time (scripts/bench_label.py). A decoder process that dies (a decoder crash, the
OOM killer) costs only the video it was on: it is reported as an error and a fresh process takes over.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator

import cv2
import numpy as np

from .reader import VideoReadError, clip_duration_s, iter_sampled, probe

# A video whose container promises this much more than could be decoded is corrupt, not just short.
_MIN_DECODED_FRACTION = 0.5


def iter_fitted(path, fps: float, preprocess, threads: int = 0, regions=None) -> Iterator[tuple[float, np.ndarray]]:
    """(t_seconds, HxWx3 uint8 frame already resized/padded for the backbone); threads: decoder threads; regions:
    the part of the frames to read (video/region.py)."""
    for t, frame in iter_sampled(path, fps, threads, region=regions):
        slot = np.full((*preprocess.input_shape(*frame.shape[:2]), 3), preprocess.pad_value, dtype=np.uint8)
        preprocess._fit(frame, slot)
        yield t, slot


def join_frames(chunks) -> np.ndarray | list[np.ndarray]:
    """The frames of several "frames" messages (or videos) as one array, or as a list when their shapes differ
    (videos of different aspect ratios with resize "rect"): Backbone.embed batches a list per input shape."""
    if all(isinstance(f, np.ndarray) for f in chunks) and len({f.shape[1:] for f in chunks}) == 1:
        return np.concatenate(chunks)
    return [x for f in chunks for x in f]


def decode_job(vid, path: str, fps: float, preprocess, chunk: int = 16, backbone=None,
               threads: int = 0, fit: bool = True, regions=None) -> Iterator[tuple]:
    """Messages for one video (see the module docstring); fit=False: whole frames, not fitted to the backbone's
    input (person features: the detector and the crops need them); regions: the part of the frames to read, per
    frame size (a checkpoint's data.regions, video/region.py). Never raises for a bad file."""

    # person features (backbone.fits_frames False) need whole frames in order: one embedder per video
    embedder = None if backbone is None else backbone.video_embedder()

    def message(frames, times):
        # a stream that changes size midway gives frames of two shapes: a list then, not one array
        batch = np.stack(frames) if len({f.shape for f in frames}) == 1 else frames
        if embedder is None:
            return "frames", vid, batch, np.asarray(times)
        return "features", vid, embedder.embed(batch), np.asarray(times)

    try:
        if os.path.isfile(path) and not os.access(path, os.R_OK):
            raise VideoReadError(f"{path}: permission denied")
        info = probe(path)
        frames, times, n = [], [], 0
        fitted = fit and (backbone is None or backbone.fits_frames)
        frames_of = (iter_fitted(path, fps, preprocess, threads, regions) if fitted
                     else iter_sampled(path, fps, threads, region=regions))
        for t, f in frames_of:
            frames.append(f)
            times.append(t)
            n += 1
            if len(frames) == chunk:
                yield message(frames, times)
                frames, times = [], []
        if frames:
            yield message(frames, times)
        decoded_s, promised_s = n / fps, info.duration_s
        if promised_s - decoded_s >= 1.0 and decoded_s < _MIN_DECODED_FRACTION * promised_s:
            raise VideoReadError(f"{path}: corrupt or truncated: only {decoded_s:.1f} s of its "
                                 f"{promised_s:.1f} s could be decoded")
        yield "done", vid, {"frames": n, "duration_s": clip_duration_s(info, n, fps),
                            "width": info.width, "height": info.height, "native_fps": info.fps}
    except (VideoReadError, OSError, ValueError, cv2.error, MemoryError) as e:
        yield "error", vid, " ".join(str(e).split()) or type(e).__name__


def _worker(tasks, results, fps: float, preprocess, chunk: int, backbone=None, regions=None) -> None:
    cv2.setNumThreads(1)  # one video per process already keeps a core busy
    if "torch" in sys.modules:  # imported to unpickle a torch backbone: keep its pools from competing
        sys.modules["torch"].set_num_threads(1)
    parent = mp.parent_process()

    def orphaned() -> bool:  # the main process was killed (SIGKILL cannot take its workers along)
        if parent is not None and not parent.is_alive():
            # Exit at once: a normal exit would wait forever to flush queued frames to a dead reader.
            os._exit(0)
        return False

    try:
        while True:
            try:
                job = tasks.get(timeout=1.0)
            except queue.Empty:
                if orphaned():
                    return
                continue
            if job is None:
                return
            for msg in decode_job(*job, fps, preprocess, chunk, backbone, threads=1,  # a process per core
                                  regions=regions):
                while True:
                    try:
                        results.put(msg, timeout=1.0)
                        break
                    except queue.Full:
                        if orphaned():
                            return
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main process reports it
        pass


class ProcessDecoders:
    """`workers` decoder processes; jobs are (vid, path). `poll(timeout)` -> message or None."""

    PER_WORKER = 2  # jobs queued per worker, so it never waits for the main process between videos

    def __init__(self, jobs, fps: float, preprocess, workers: int, chunk: int = 16, backbone=None, regions=None):
        # spawn, not fork: the parent holds torch/OpenMP threads whose locks a fork would copy
        self._ctx = mp.get_context("spawn")
        self._args = (fps, preprocess, chunk, backbone, regions)
        self._results = self._ctx.Queue(maxsize=4 * workers)  # backpressure: decoders never run far ahead
        self._paths = dict(jobs)        # vid -> path
        self._todo = deque(self._paths)  # vids not yet handed to a worker
        self._owner: dict = {}          # vid -> worker id
        self._assigned: dict[int, deque] = {}
        self._procs: dict[int, tuple] = {}
        self._crashed: deque = deque()  # error messages for videos whose decoder died
        self._dead_since: dict[int, float] = {}
        self._next_id = 0
        self._last_check = time.monotonic()
        for _ in range(min(workers, len(self._todo)) or 0):
            self._spawn()

    def _spawn(self) -> None:
        wid, self._next_id = self._next_id, self._next_id + 1
        tasks = self._ctx.Queue()
        p = self._ctx.Process(target=_worker, args=(tasks, self._results, *self._args), daemon=True)
        p.start()
        self._procs[wid], self._assigned[wid] = (p, tasks), deque()
        self._feed(wid)

    def _feed(self, wid: int) -> None:
        while self._todo and len(self._assigned[wid]) < self.PER_WORKER:
            vid = self._todo.popleft()
            self._assigned[wid].append(vid)
            self._owner[vid] = wid
            self._procs[wid][1].put((vid, self._paths[vid]))

    @property
    def exhausted(self) -> bool:
        return not self._todo and not self._crashed and not any(self._assigned.values())

    def _check_dead(self, queue_empty: bool) -> None:
        for wid, (p, _) in list(self._procs.items()):
            if p.exitcode is None or not self._assigned[wid]:
                continue
            # Its last messages may still be in the pipe: blame the video only once the queue ran dry.
            self._dead_since.setdefault(wid, time.monotonic())
            if not queue_empty:
                continue
            vid = self._assigned[wid].popleft()
            self._crashed.append(("error", vid, f"the decoder process died while reading it "
                                                f"(exit code {p.exitcode})"))
            self._todo.extendleft(reversed(self._assigned[wid]))
            del self._procs[wid], self._assigned[wid], self._dead_since[wid]
            if self._todo:
                self._spawn()

    def poll(self, timeout: float) -> tuple | None:
        if self._crashed:
            return self._crashed.popleft()
        try:
            msg = self._results.get(timeout=timeout) if timeout > 0 else self._results.get_nowait()
        except queue.Empty:
            self._check_dead(queue_empty=True)
            return self._crashed.popleft() if self._crashed else None
        if time.monotonic() - self._last_check > 0.5:
            self._last_check = time.monotonic()
            self._check_dead(queue_empty=False)
        if msg[0] in ("done", "error"):
            wid = self._owner.pop(msg[1], None)
            if wid in self._assigned and self._assigned[wid] and self._assigned[wid][0] == msg[1]:
                self._assigned[wid].popleft()
                if self._procs[wid][0].exitcode is None:
                    self._feed(wid)
        return msg

    def close(self) -> None:
        for p, tasks in self._procs.values():
            if p.exitcode is None:
                tasks.put(None)
        deadline = time.monotonic() + 2.0
        while any(p.is_alive() for p, _ in self._procs.values()) and time.monotonic() < deadline:
            try:  # a worker blocked on a full results queue can only exit once it is drained
                self._results.get(timeout=0.05)
            except queue.Empty:
                pass
        for p, _ in self._procs.values():
            if p.is_alive():
                p.terminate()
            p.join(timeout=1.0)
        self._results.cancel_join_thread()
        self._procs.clear()


class ThreadDecoder:
    """workers=0: decode in a background thread of this process (OpenCV releases the GIL); given a `backbone`
    (person features: they follow each video in order), the thread embeds too."""

    def __init__(self, jobs, fps: float, preprocess, chunk: int = 16, backbone=None, regions=None):
        self._q: queue.Queue = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._left = len(jobs)

        def work():
            for vid, path in jobs:
                for msg in decode_job(vid, path, fps, preprocess, chunk, backbone, regions=regions):
                    while not self._stop.is_set():
                        try:
                            self._q.put(msg, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if self._stop.is_set():
                        return

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    @property
    def exhausted(self) -> bool:
        return self._left == 0

    def poll(self, timeout: float) -> tuple | None:
        try:
            msg = self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
        except queue.Empty:
            return None
        if msg[0] in ("done", "error"):
            self._left -= 1
        return msg

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def decoders(jobs, fps: float, preprocess, workers: int, chunk: int = 16, backbone=None, regions=None):
    """workers > 0: decoder processes (that also embed, given a `backbone`); 0: a thread, frames only (except for
    person features, which only a per-video embedder can compute). regions: see decode_job."""
    if workers > 0:
        return ProcessDecoders(jobs, fps, preprocess, workers, chunk, backbone, regions)
    return ThreadDecoder(jobs, fps, preprocess, chunk, None if backbone is None or backbone.fits_frames else backbone,
                         regions)
