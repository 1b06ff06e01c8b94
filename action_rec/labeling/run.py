"""Batch labelling: a folder of footage in, one label per video and a per-window timeline out.

    for r in label_videos(["footage/"], "runs/quickstart/best.ckpt", out="labels.csv"):
        print(r.path, r.label, r.confidence)

Video label rule (decision/rule.py, the same as live mode and evaluation): a video is `falling` when the fall
probability stays above the threshold for k consecutive windows; otherwise it is the class with the
highest mean probability over its windows.

Speed comes from doing only what the model needs: worker processes decode just the frames at the
checkpoint's sampling rate (grab() skips the rest) and resize them for the backbone; the main process
batches frames of several videos into each backbone call and runs the LSTM over all windows of a
video in one call. A bad file never stops the run: it becomes a result with status "error".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..inference.results import Job, VideoResult
from ..video.decoding import decoders, join_frames
from .discovery import InputError, _skipped_text, discover_videos


# ------------------------------------------------------------------------------------------- results
def make_result(pred, job: Job, feats: np.ndarray, info: dict, stride: int | None) -> VideoResult:
    """Windows, per-window probabilities and the video decision (Predictor + decision.decide); per-track
    features (inference/tracks.py: one array per frame and track) give per-track results."""
    if feats.ndim == 3:
        from ..inference.tracks import tracks_video_result

        return tracks_video_result(pred, job, feats, info, stride)
    vp = pred.predict_features(job.path, feats, stride)
    duration = float(info.get("duration_s") or len(feats) / pred.fps)
    win = pred.window / pred.fps

    def clip(start: float, end: float) -> float:  # windows (padded past the end) end with the video
        return round(min(end, duration) if duration > start else end, 6)

    return VideoResult(
        path=job.path, status="ok", label=vp.label, confidence=vp.confidence, probs=vp.probs,
        duration_s=duration, windows=len(vp.window_starts_s), window_starts_s=vp.window_starts_s,
        window_ends_s=[clip(s, s + win) for s in vp.window_starts_s], window_probs=vp.window_probs,
        events=[(a, clip(a, b)) for a, b in vp.events], size=job.size, mtime_ns=job.mtime_ns,
        frames=len(feats), rel=job.rel)


def safe_result(pred, job: Job, feats: np.ndarray, info: dict, stride: int | None) -> VideoResult:
    """make_result, but a video the model cannot take becomes an error row instead of ending the run."""
    try:
        return make_result(pred, job, feats, info, stride)
    except (ValueError, RuntimeError, IndexError) as e:
        return error_result(job, f"{job.path}: labelling failed: {type(e).__name__}: {e}")


def error_result(job: Job, message: str) -> VideoResult:
    return VideoResult(path=job.path, status="error", error=message, size=job.size, mtime_ns=job.mtime_ns,
                       rel=job.rel)


def iter_results(pred, jobs: list[Job], *, stride: int | None = None, workers: int = 1,
                 batch_frames: int = 32, embed_batch_size: int | None = None, chunk: int = 16, features=None
                 ) -> Iterator[VideoResult]:
    """Results in completion order. Frames of all videos in flight share each backbone call. `features`: what
    embeds instead of the checkpoint's backbone (tracks.TrackFeatures: per-track results)."""
    todo = []
    for job in jobs:
        if job.error:
            yield error_result(job, job.error)
        else:
            todo.append(job)
    if not todo:
        return
    kw = {} if embed_batch_size is None else {"batch_size": embed_batch_size}
    feats: dict[int, list] = {}     # vid -> feature chunks in order (None until embedded)
    infos: dict[int, dict] = {}     # vid -> decoder's "done" info, waiting for its last features
    pending: list[tuple[int, int, np.ndarray]] = []  # (vid, chunk index, frames) not yet embedded
    # On a CPU each worker process runs decode -> backbone itself (see video/decoding.py); on a GPU workers
    # only decode and this process batches their frames into the one device.
    # Person features follow each video in order (a tracker): always computed where the video is decoded.
    fe = features or pred.backbone
    on = getattr(fe, "device_type", None) or next(fe.parameters()).device.type  # a bundle's backbone: "cpu"
    own = on == "cpu" or not fe.fits_frames
    src = decoders([(i, j.path) for i, j in enumerate(todo)], pred.fps, fe.preprocess,
                   workers, chunk, backbone=fe.worker_embedder(threads=1) if own else None,
                   regions=getattr(pred, "regions", None))
    # With the workers busy on every core, this process only runs the LSTM; torch's own thread pool would then
    # fight them for the cores (an ensemble head, several small LSTM calls a window, lost 10 % of the
    # throughput so). Only if torch is already loaded: a bundle labels without it.
    torch = sys.modules.get("torch") if own and workers >= 1 else None
    threads = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(max(1, min(threads, (os.cpu_count() or 1) - workers)))

    def flush():
        out = pred.backbone.embed(join_frames([f for _, _, f in pending]), **kw)
        at = 0
        for vid, k, frames in pending:
            if vid in feats:
                feats[vid][k] = out[at:at + len(frames)]
            at += len(frames)
        pending.clear()

    def finished():
        for vid in [v for v in infos if all(c is not None for c in feats[v])]:
            info = infos.pop(vid)
            yield safe_result(pred, todo[vid], np.concatenate(feats.pop(vid)), info, stride)

    try:
        while not src.exhausted or pending:
            # Never idle with frames in hand: embed what we have whenever no message is ready.
            msg = src.poll(0.0 if pending else 0.2)
            if msg is None:
                if pending:
                    flush()
                    yield from finished()
                continue
            kind, vid = msg[0], msg[1]
            if kind == "features":
                feats.setdefault(vid, []).append(msg[2])
            elif kind == "frames":
                feats.setdefault(vid, []).append(None)
                pending.append((vid, len(feats[vid]) - 1, msg[2]))
                if sum(len(f) for _, _, f in pending) >= batch_frames:
                    flush()
                    yield from finished()
            elif kind == "done":
                if vid in feats:
                    infos[vid] = msg[2]
                    yield from finished()
                else:
                    yield error_result(todo[vid], f"{todo[vid].path}: no frames could be decoded")
            else:
                feats.pop(vid, None)
                pending[:] = [p for p in pending if p[0] != vid]
                yield error_result(todo[vid], msg[2])
    finally:
        src.close()
        if torch:
            torch.set_num_threads(threads)


def load_predictor(ckpt, device: str = "cpu", threshold: float | None = None, fall_k: int | None = None):
    """Predictor for a checkpoint path, a bundle folder (`action-rec export`: runtime.BundlePredictor, no torch) or
    an existing (Bundle)Predictor, with the fall rule's overrides."""
    from ..export.runtime import is_bundle, load_bundle

    if is_bundle(ckpt):
        pred = load_bundle(ckpt, device)
    elif hasattr(ckpt, "predict_features"):
        pred = ckpt
    else:
        from ..inference.predictor import Predictor

        pred = Predictor(ckpt, device=device)
    changes = {k: v for k, v in (("threshold", threshold), ("k", fall_k)) if v is not None}
    if fall_k is not None:  # the end follows k, but a checkpoint's own longer hold (model.fall_m) is kept
        changes["m"] = max(fall_k, pred.rule.m if pred.rule.m > pred.rule.k else 0)
    if changes:
        pred.rule = replace(pred.rule, **changes)
    return pred


def default_workers(device: str) -> int:
    """CPU: one decode+embed process per core (no two pipelines share a core); GPU: half the cores decode."""
    cores = os.cpu_count() or 2
    return cores if str(device) == "cpu" else max(1, cores // 2)


def check_request(jobs: list[Job], *, out=None, jsonl=None, annotate=None, stride: int | None = None,
                  workers: int | None = None, batch_frames: int = 32, threshold: float | None = None,
                  fall_k: int | None = None) -> dict[str, str]:
    """The checks every labelling run makes before any work (the CLI's parser makes the same range checks);
    returns the outputs by option name."""
    from ..utils.pathcheck import check_distinct, check_file_target, check_folder_target, check_not_input
    from .annotate import copy_path

    for name, value, low in (("stride", stride, 1), ("workers", workers, 0), ("batch_frames", batch_frames, 1),
                             ("fall_k", fall_k, 1)):
        if value is not None and value < low:
            raise InputError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if threshold is not None and not 0 <= threshold <= 1:
        raise InputError(f"--threshold must be between 0 and 1, got {threshold:g}")
    named = {"--out": out, "--jsonl": jsonl if out else None, "--annotate": annotate}
    check_file_target(out, "--out")
    check_file_target(named["--jsonl"], "--jsonl")
    check_folder_target(annotate, "--annotate")
    check_distinct(named)
    check_not_input(named, [j.path for j in jobs if not j.error])
    if annotate:  # an annotated copy must not land on a video being labelled (--annotate = the input folder)
        inputs = {os.path.realpath(j.path): j.path for j in jobs}
        for j in jobs:
            dst = copy_path(annotate, j.rel or Path(j.path).name)
            if os.path.realpath(dst) in inputs:
                raise InputError(f"--annotate {annotate}: the annotated copy of {j.path} would replace the video "
                                 f"{inputs[os.path.realpath(dst)]}; choose a folder outside the inputs")
    return {k: str(v) for k, v in named.items() if v}


class LabelRun:
    """One labelling command: inputs found, outputs checked and locked, checkpoint loaded and outputs
    planned on construction (every user error raises here, before any work), then iterate it for the
    results. The outputs stay locked until the iteration ends (or this object is collected)."""

    def __init__(self, paths, ckpt, *, out=None, jsonl=None, annotate=None, overwrite: bool = False,
                 stride: int | None = None, threshold: float | None = None, fall_k: int | None = None,
                 workers: int | None = None, device: str = "cpu", recursive: bool = True,
                 batch_frames: int = 32, tracks: bool | None = None, max_tracks: int = 8):
        from .locking import OutputLock

        paths = list(paths)
        if paths and all(isinstance(p, Job) for p in paths):
            jobs, self.skipped = paths, []
        else:
            found = discover_videos(paths, recursive)
            jobs, self.skipped = found.jobs, found.skipped
        if not jobs:
            raise InputError(f"no videos found under {', '.join(map(str, paths)) or '(no PATH given)'} "
                             "(video extensions: .mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg .wmv)"
                             + (f"; passed over: {_skipped_text(self.skipped)}" if self.skipped else ""))
        outputs = check_request(jobs, out=out, jsonl=jsonl, annotate=annotate, stride=stride, workers=workers,
                                batch_frames=batch_frames, threshold=threshold, fall_k=fall_k)
        # Locked before the checkpoint loads, so a second run on the same outputs is refused at once.
        self.lock = OutputLock(outputs, "action-rec label").acquire()
        try:
            self._setup(jobs, ckpt, out, jsonl, annotate, overwrite, stride, threshold, fall_k, workers, device,
                        batch_frames, tracks, max_tracks)
        except BaseException:
            self.lock.release()
            raise

    def _setup(self, jobs, ckpt, out, jsonl, annotate, overwrite, stride, threshold, fall_k, workers, device,
               batch_frames, tracks, max_tracks):
        from ..inference.tracks import per_track_features

        self.pred = load_predictor(ckpt, device, threshold, fall_k)
        self.features = per_track_features(self.pred, tracks, max_tracks)
        self.jobs, self.todo, self.done = jobs, jobs, []
        workers = default_workers(device) if workers is None else workers
        self.stride, self.workers, self.batch_frames = stride, workers, batch_frames
        self.embed_batch_size = 64 if str(device).startswith("cuda") else None
        self.annotator = self.outputs = None
        self.notes: list[str] = []  # repairs made on the way in, for the user
        if annotate:
            from .annotate import Annotator

            self.annotator = Annotator(annotate, self.pred.class_names, self.pred.rule,
                                       getattr(self.pred, "regions", None))
            if removed := self.annotator.clean():
                self.notes.append(f"removed {len(removed)} temporary file(s) an interrupted run left in {annotate}")
        if out:
            from .outputs import Outputs

            self.outputs = Outputs(out, self.pred.class_names, jsonl)
            self.outputs.merge_leftovers()  # results of an interrupted distributed run
            self.todo, self.done = self.outputs.plan(jobs, overwrite,
                                                     self.annotator.exists if self.annotator else None)
            self.notes += self.outputs.notes

    def __iter__(self) -> Iterator[VideoResult]:
        try:
            for r in iter_results(self.pred, self.todo, stride=self.stride, workers=self.workers,
                                  batch_frames=self.batch_frames, embed_batch_size=self.embed_batch_size,
                                  features=self.features):
                if self.annotator and r.ok:
                    self.annotator.submit(r)
                if self.outputs:
                    self.outputs.append(r)
                yield r
        finally:
            if self.annotator:
                self.annotator.close()
            if self.outputs:
                self.outputs.close()
            self.lock.release()


def label_videos(paths, ckpt, **kwargs) -> Iterator[VideoResult]:
    """Label videos (files, folders - recursively - or glob patterns) with a checkpoint (path or Predictor);
    yields a VideoResult per video as it finishes, in completion order.

    Keyword arguments (see LabelRun): out (CSV: results are appended as they come; videos already in it
    with the same path, size and mtime are skipped unless overwrite=True), jsonl (per-window timeline),
    annotate (folder for annotated copies), stride (window hop in sampled frames), threshold and fall_k
    (the fall rule), workers (worker processes: on a CPU each decodes and embeds, default one per core;
    on a GPU they decode, default half the cores; 0 = a decoder thread), device, recursive, batch_frames,
    tracks (person/both checkpoints: None/True = one result per tracked person, see inference/tracks.py; False = the
    main person only; True with a whole-frame checkpoint: UsageError) and max_tracks.
    InputError / CheckpointError / OutputError are raised by this call, before any work starts."""
    return iter(LabelRun(paths, ckpt, **kwargs))
