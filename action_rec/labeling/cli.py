"""`action-rec label PATH... --ckpt model.ckpt --out labels.csv`: the command around run.py, with a
progress bar, a one-screen summary and exit codes (0 all labelled, 1 some failed, 2 bad usage,
130 interrupted; whatever was labelled before an interruption is kept and skipped on the next run)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from ..utils.argtypes import add_person_args, float_between, int_at_least, parser
from ..utils.errors import UsageError

DESCRIPTION = """Label every video under PATH (files, folders searched recursively for video files, or glob
patterns) with a trained checkpoint. Writes one CSV row per video as it finishes (path, status, label,
confidence, one p_<class> column per class, duration, windows, fall events, error, size, mtime) and
optionally a per-window JSONL timeline and annotated copies. Re-running the same command skips videos
already in --out (same path, size and mtime) unless --overwrite; failed videos are retried.

Video label rule: `falling` when the fall probability stays above --threshold for k consecutive
windows (the checkpoint's fall_k unless --fall-k), otherwise the class with the highest mean
probability over the video's windows - the same rule as live mode and evaluation (decision/rule.py). A video
shorter than k windows raises no fall event.

One run at a time writes a set of outputs: a second run on the same --out, --jsonl or --annotate
stops at once with a message (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    ap = parser(prog="action-rec label", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+", metavar="PATH", help="video file, folder or glob pattern")
    ap.add_argument("--ckpt", required=True, help="checkpoint written by `action-rec fit`, or a bundle folder "
                    "written by `action-rec export` (runs without torch)")
    ap.add_argument("--out", default="labels.csv", help="CSV, one row per video (default: %(default)s)")
    ap.add_argument("--jsonl", help="also write a per-window timeline here (JSON lines)")
    ap.add_argument("--annotate", metavar="DIR", help="write annotated copies of the videos into DIR")
    ap.add_argument("--stride", type=int_at_least(1), help="window hop in sampled frames (default: half a window)")
    ap.add_argument("--threshold", type=float_between(0, 1),
                    help="fall probability threshold, 0-1 (default: the checkpoint's)")
    ap.add_argument("--fall-k", type=int_at_least(1),
                    help="consecutive windows over (under) the threshold that start (end) a fall event")
    ap.add_argument("--workers", type=int_at_least(0), default=None,
                    help="worker processes; on a CPU each decodes and embeds its own videos (default: one per "
                         "core), on a GPU they decode for it (default: half the cores); 0: a decoder thread")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    ap.add_argument("--overwrite", action="store_true", help="label again videos already in --out")
    ap.add_argument("--no-recursive", dest="recursive", action="store_false", help="don't search sub-folders")
    ap.add_argument("--batch-frames", type=int_at_least(1), default=32, help="frames per backbone call (%(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    add_person_args(ap, "label every tracked person (the default for person/both checkpoints; an error for "
                        "whole-frame ones)", "one sequence per video: the main person only (as in training)")
    g = ap.add_argument_group("scale-out (Lightning predict; used when --devices or --num-nodes is given)")
    g.add_argument("--devices", help="devices per node, e.g. 4 or auto")
    g.add_argument("--num-nodes", type=int_at_least(1), help="number of nodes (--out on a shared filesystem)")
    g.add_argument("--accelerator", default="auto", help="cpu, gpu, auto (default: %(default)s)")
    g.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp (default: %(default)s)")
    return ap


def summary(labels: Counter, errors: list[tuple[str, str]], skipped: int, video_s: float, frames: int,
            wall_s: float, out: str, passed_over: list[tuple[str, str]] = ()) -> str:
    from .discovery import _skipped_text

    n = sum(labels.values()) + len(errors) - skipped
    speed = f"{video_s / wall_s:.1f}x real time, {frames / wall_s:.0f} frames/s" if wall_s > 0 and frames else ""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(labels.items())) or "none"
    lines = [f"labelled {n} video{'s' * (n != 1)} in {wall_s:.1f} s ({video_s:.1f} s of video"
             + (f"; {speed}" if speed else "") + ")"
             + (f"; {skipped} already in {out}, skipped" if skipped else ""),
             f"labels{' (all videos under PATH)' if skipped else ''}: {counts}",
             f"errors: {len(errors)}"]
    for path, msg in errors[:10]:
        lines.append(f"  {path}: {msg.removeprefix(path + ': ')}")
    if len(errors) > 10:
        lines.append(f"  ... and {len(errors) - 10} more (status=error rows in {out})")
    if passed_over:
        lines.append(f"passed over {len(passed_over)} entr{'ies' if len(passed_over) != 1 else 'y'} named like "
                     f"videos that are not video files: {_skipped_text(list(passed_over))}")
    lines.append(f"results: {out}")
    return "\n".join(lines)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def run(a: argparse.Namespace) -> int:
    from ..export.runtime import is_bundle
    from .run import LabelRun, default_workers

    t0 = time.perf_counter()
    if is_bundle(a.ckpt):  # an export bundle: ONNX Runtime on the CPU, torch never imported
        if a.devices is not None or a.num_nodes is not None:
            raise UsageError("--devices/--num-nodes: scale-out labelling runs the checkpoint with Lightning; give "
                             "the .ckpt, or drop them to label with the bundle")
        a.device = "cpu" if a.device == "auto" else a.device  # anything else: load_bundle says it runs on the CPU
    workers = a.workers if a.workers is not None else default_workers(_device(a.device))
    kw = dict(out=a.out, jsonl=a.jsonl, annotate=a.annotate, overwrite=a.overwrite, stride=a.stride,
              threshold=a.threshold, fall_k=a.fall_k, workers=workers, recursive=a.recursive)
    labels, errors, video_s, frames = Counter(), [], 0.0, 0
    if a.devices is not None or a.num_nodes is not None:
        from .distributed import label_distributed

        got = label_distributed(a.paths, a.ckpt, accelerator=a.accelerator, devices=a.devices or "auto",
                                num_nodes=a.num_nodes or 1, strategy=a.strategy, tracks=a.tracks,
                                max_tracks=a.max_tracks, **kw)
        if got is None:
            return 0  # not global rank 0: rank 0 reports
        rows, skipped, passed_over, notes = got
        _warn(notes)
        labels.update(r["label"] for r in skipped)
        for r in rows:
            if r["status"] == "ok":
                labels[r["label"]] += 1
                video_s += float(r["duration_s"] or 0)
            else:
                errors.append((r["path"], r["error"]))
        n_skipped = len(skipped)
    else:
        from tqdm.auto import tqdm

        job = LabelRun(a.paths, a.ckpt, device=_device(a.device), batch_frames=a.batch_frames, tracks=a.tracks,
                       max_tracks=a.max_tracks, **kw)
        passed_over = job.skipped
        _warn(job.notes)
        n_skipped = len(job.done)
        for j in job.done:  # the label counts cover every video under PATH, skipped ones too
            labels[job.outputs.rows[j.path]["label"]] += 1
        start = time.perf_counter()
        bar = tqdm(total=len(job.todo), unit="video", desc="labelling", disable=a.quiet or not job.todo)
        try:
            for r in job:
                if r.ok:
                    labels[r.label] += 1
                    video_s += r.duration_s or 0.0
                    frames += r.frames
                else:
                    errors.append((r.path, r.error))
                bar.update()
                dt = max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(frames_s=f"{frames / dt:.0f}", realtime=f"{video_s / dt:.1f}x",
                                errors=len(errors), refresh=False)
        finally:
            bar.close()
    print(summary(labels, errors, n_skipped, video_s, frames, time.perf_counter() - t0, a.out, passed_over))
    return 1 if errors else 0


def _warn(notes: list[str]) -> None:
    for note in notes:
        print(f"action-rec label: warning: {note}", file=sys.stderr)


def cmd_label(argv: list[str]) -> int:
    a = build_parser().parse_args(argv)
    from ..utils.errors import BackboneWeightsError, UsageError

    try:
        return run(a)
    except (UsageError, BackboneWeightsError) as e:
        print(f"action-rec label: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: every video finished so far is in {a.out}; run the same command again to "
              "label the rest", file=sys.stderr)
        return 130
