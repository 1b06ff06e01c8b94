"""`action-rec live`: label a camera, a video file or a stream as it plays, and raise fall alerts.

Three threads: capture (video/capture.py: newest frame in a one-slot buffer), model (inference/stream.py: one
backbone call per sampled frame + LSTM steps, on the checkpoint's sampling clock) and this loop (overlay, window, keys,
recording). The display shows every captured frame with the latest model output, so a slow model delays
labels, never the picture. When the backbone cannot keep up with the sampling rate, the newest frame's
features stand in for the sample times it missed (the LSTM still sees `fps` frames a second, as in
training, where dropped frames are simulated the same way) and the benchmark reports the share.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

import cv2
import numpy as np

from ..inference.stream import LiveModel, recent
from ..utils.argtypes import add_person_args, float_between, int_at_least, parser, positive_float
from ..utils.errors import UsageError
from ..video.capture import CaptureThread, LatestSlot, SourceError, open_source
from ..video.overlay import draw_overlay, draw_people
from .sinks import LiveOutputs, Recorder, SinkError

WINDOW_TITLE = "action-rec live (q: quit, r: reset)"


class ModelWorker(threading.Thread):
    """Takes the newest frame whenever the model is free and feeds the sample times it covers."""

    def __init__(self, model: LiveModel, slot: LatestSlot, reader: int, outputs: LiveOutputs):
        super().__init__(name="model", daemon=True)
        self.model, self.slot, self.reader, self.outputs = model, slot, reader, outputs
        self.done = threading.Condition()
        self.done_seq = -1
        self.reset_requested = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                f = self.slot.get(self.reader, timeout=0.2)
                if f is None:
                    if self.slot.closed:
                        break
                    continue
                if self.reset_requested.is_set():
                    self.reset_requested.clear()
                    for ev in as_events(self.model.reset()):
                        self.outputs.event(ev)
                if n := self.model.due(f.t_end):
                    for u in self.model.feed(cv2.cvtColor(f.bgr, cv2.COLOR_BGR2RGB), n, f.captured):
                        self.outputs.update(u)
                    for ev in self.model.drain_events() if hasattr(self.model, "drain_events") else ():
                        self.outputs.event(ev)  # a tracked person forgotten during an alert: its end
                with self.done:
                    self.done_seq = f.seq
                    self.done.notify_all()
        except BaseException as e:  # noqa: BLE001 - reported by the loop, which then shuts down cleanly
            self.error = e
            self.slot.close(f"model failed: {type(e).__name__}: {e}", error=True)
        finally:
            with self.done:
                self.done_seq = 1 << 62
                self.done.notify_all()

    def wait_done(self, seq: int) -> None:
        with self.done:
            self.done.wait_for(lambda: self.done_seq >= seq)


def as_events(ev) -> list[dict]:
    """The end event(s) a reset or the end of a stream gives: one (LiveModel), a list (one per person), none."""
    return ev if isinstance(ev, list) else [ev] if ev else []


def display_problem() -> str | None:
    """Why a window cannot be shown here, or None."""
    if "GUI:                           NONE" in cv2.getBuildInformation():
        return "this OpenCV build has no GUI support (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display available (DISPLAY is not set)"
    return None


def slow_backbone_warning(model: LiveModel, log) -> bool:
    """Say once if the backbone is slower than the sampling rate; True once checked."""
    per_frame = float(np.median(list(model.timings.backbone)[-10:]))
    if per_frame > 0.9 / model.fps:
        print(f"live: warning: the backbone takes {per_frame * 1000:.0f} ms a frame, more than the "
              f"{1000 / model.fps:.0f} ms between samples ({model.fps:g}/s): sample times it misses reuse the "
              "newest frame's features, which costs accuracy. A checkpoint trained with a lower --data.fps "
              "(and window) or --data.image_size, or a lighter backbone, keeps up.", file=log)
    return True


def check_outputs(a: argparse.Namespace) -> None:
    """--save can be written, --save and --alert-file are two different files, and neither is the --source
    video: checked before the checkpoint loads (Recorder checks the rest before the stream starts)."""
    from ..utils.pathcheck import check_distinct, check_file_target, check_not_input

    named = {"--save": a.save, "--alert-file": a.alert_file}
    try:
        check_file_target(a.save, "--save")
        check_distinct(named)
        if a.source and os.path.isfile(a.source):
            check_not_input(named, [a.source])
    except UsageError as e:
        raise SinkError(str(e)) from None


def _pct(values, q) -> float | None:
    return float(np.percentile(values, q) * 1000) if len(values) else None


def _mean_ms(values) -> float | None:
    return float(np.mean(values) * 1000) if len(values) else None


def run(a: argparse.Namespace, out=sys.stdout, log=sys.stderr, source=None, predictor=None) -> int:
    """The live loop. `source` (a capture.Source) and `predictor` (an inference.Predictor) replace
    --source and --ckpt: tests use them to run a fake camera or a stand-in backbone."""
    from ..decision.rule import FallRule
    from ..export.runtime import is_bundle, load_bundle

    if not a.headless and (why := display_problem()):
        print(f"action-rec live: {why}; run with --headless (JSON lines on stdout), optionally with "
              "--save out.mp4 for an annotated recording", file=log)
        return 2
    bundle = predictor is None and is_bundle(a.ckpt)  # an export bundle: ONNX Runtime, torch never imported
    if a.threads and not bundle:
        import torch

        torch.set_num_threads(a.threads)
    check_outputs(a)
    if predictor is None and bundle:
        if a.weights:
            raise UsageError("--weights: a bundle carries its backbone (backbone.onnx); drop --weights")
        predictor = load_bundle(a.ckpt, a.device, a.threads)
    elif predictor is None:
        from ..inference.predictor import Predictor

        predictor = Predictor(a.ckpt, a.device, a.weights)
    r = predictor.rule
    predictor.rule = FallRule(r.fall_class, a.fall_threshold if a.fall_threshold is not None else r.threshold,
                              a.fall_k or r.k, a.fall_m or r.m)
    from ..inference.tracks import per_track_features

    features = per_track_features(predictor, a.tracks, a.max_tracks)
    if features is None:
        model = LiveModel(predictor, a.stride)
    else:
        from .tracks import TrackLiveModel

        model = TrackLiveModel(predictor, features, a.stride)
    outputs = LiveOutputs(model.class_names, out if a.headless else None, a.alert_cmd, a.alert_file, log=log)
    recorder = Recorder(a.save, 0) if a.save else None
    try:
        # Warm the backbone up (first calls allocate and pick kernels) so start-up does not read as latency.
        for _ in range(2):
            model.backbone.embed([np.zeros((480, 640, 3), np.uint8)])
        source = source or open_source(a.source)
    except BaseException:
        if recorder:
            recorder.discard()
        raise
    realtime = True if a.realtime is None else a.realtime
    if recorder:
        recorder.fps = source.fps or 30.0

    slot = LatestSlot(readers=2, lossless=source.is_file and not realtime)
    capture = CaptureThread(source, slot, realtime=realtime, stall_s=a.stall_timeout,
                            regions=getattr(predictor, "regions", None))
    worker = ModelWorker(model, slot, 1, outputs)
    draw = not a.headless or recorder is not None or a.benchmark
    stop, why_stop = threading.Event(), []

    def on_signal(signum, _frame):
        why_stop.append(f"interrupted ({signal.Signals(signum).name})")
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    print(f"live: {source.name} ({'realtime' if realtime else 'every frame'}), {model.fps:g} samples/s, "
          f"window {model.window}, update every {model.stride} samples; "
          f"{'JSON lines on stdout' if a.headless else 'q/Esc quits, r resets'}", file=log)
    overlay_s, show_s, frame_times = recent(), recent(), recent()
    shown, ema_dt, last, warned = 0, None, None, False
    rc = 0
    capture.start()
    worker.start()
    last_frame_at = time.monotonic()
    try:
        while not stop.is_set():
            f = slot.get(0, timeout=0.25)  # short waits: Ctrl-C is seen at once even with no frames
            if f is None:
                if slot.closed:
                    break
                if not source.is_file and time.monotonic() - last_frame_at > a.stall_timeout:
                    # read() itself hangs (a dead stream): the capture thread cannot say so
                    slot.close(f"{source.name}: no frames for {a.stall_timeout:g} s (camera unplugged, or the "
                               "stream stopped or ended)", error=True)
                continue
            last_frame_at = time.monotonic()
            if slot.lossless:
                worker.wait_done(f.seq)
            now = time.perf_counter()
            if last is not None:
                dt = now - last
                frame_times.append(dt)
                ema_dt = dt if ema_dt is None else 0.9 * ema_dt + 0.1 * dt
            last = now
            if a.duration and f.t >= a.duration:
                why_stop.append("duration reached")
                break
            if draw:
                t0 = time.perf_counter()
                up, alert = model.snapshot()
                lat = model.timings.latency[-1] * 1000 if model.timings.latency else None
                img = f.bgr.copy()
                if hasattr(model, "people"):  # several people: a box, id, label and confidence each
                    draw_people(img, model.people())
                img = draw_overlay(img, model.class_names, None if up is None else up.probs,
                                   model.progress() if up is None else up.label,
                                   None if up is None else up.confidence, time_s=f.t,
                                   fps=1.0 / ema_dt if ema_dt else None, latency_ms=lat, alert=alert)
                t1 = time.perf_counter()
                overlay_s.append(t1 - t0)
                if recorder:
                    recorder.write(img)
                if not a.headless:
                    cv2.imshow(WINDOW_TITLE, img)
                    key = cv2.waitKey(1) & 0xFF
                    if key in (ord("q"), 27) or cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) < 1:
                        why_stop.append("quit")
                        break
                    if key == ord("r"):
                        worker.reset_requested.set()
                show_s.append(time.perf_counter() - t1)
            shown += 1
            if not warned and len(model.timings.backbone) >= 10:
                warned = slow_backbone_warning(model, log)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        capture.stop()
        slot.close(why_stop[0] if why_stop else "stopped")
        worker.join(timeout=30)
        ended = slot.closed
        if slot.error or worker.error:
            print(f"action-rec live: {ended if slot.error else f'model failed: {worker.error!r}'}", file=log)
            rc = 1
        elif why_stop and why_stop[0].startswith("interrupted"):
            rc = 128 + (signal.SIGTERM if "SIGTERM" in why_stop[0] else signal.SIGINT)
        if not worker.is_alive():
            # A file that played to its end gets batch's last window too; any open alert is closed.
            ups, ev = model.finish(final_window=ended.endswith("end of file"))
            for u in ups:
                outputs.update(u)
            for e in as_events(ev):
                outputs.event(e)
        saved = None
        if recorder:
            try:
                saved = recorder.close()
            except SinkError as e:
                print(f"action-rec live: error: {e}", file=log)
                rc = rc or 1
        if not a.headless:
            cv2.destroyAllWindows()
        if capture.is_alive():
            capture.join(timeout=2)
        if not capture.is_alive():
            source.release()
        outputs.close()
        print(f"live: stopped ({ended}); {shown} frames shown, {model.samples} samples, "
              f"{outputs.n_events} alert events" + (f"; saved {saved}" if saved else ""), file=log)
        if a.benchmark:
            report = benchmark_report(model, source, realtime, capture, shown, frame_times, overlay_s, show_s)
            print(format_benchmark(report), file=log)
            if a.headless:
                out.write(json.dumps({"type": "benchmark", **report}) + "\n")
                out.flush()
    return rc


def benchmark_report(model: LiveModel, source, realtime, capture, shown, frame_times, overlay_s, show_s) -> dict:
    tm = model.timings
    wall = float(np.sum(frame_times)) if frame_times else 0.0
    period = 1.0 / source.fps if source.fps else None
    per_sample_lstm = float(np.sum(tm.lstm)) / max(model.samples, 1)
    lstm_overlay = per_sample_lstm * model.fps * (period or 0) + (np.mean(overlay_s) if overlay_s else 0.0)
    ident = model.backbone.identity()
    return {
        "source": source.name, "realtime": realtime, "backbone": ident["backbone"],
        "runtime": getattr(model.backbone, "runtime", "torch"),
        "image_size": ident["preprocess"]["size"], "threads": _threads(model.backbone),
        "sampling_fps": model.fps, "window": model.window, "stride": model.stride,
        "seconds": round(wall, 2), "frames_shown": shown,
        "display_fps": round((len(frame_times)) / wall, 1) if wall else None,
        "samples": model.samples, "backbone_calls": model.fresh,
        "fresh_sample_share": round(model.fresh / model.samples, 3) if model.samples else None,
        "backbone_fps": round(model.fresh / wall, 1) if wall else None,
        "updates_per_s": round(tm.updates / wall, 2) if wall else None,
        "latency_p50_ms": _pct(tm.latency, 50), "latency_p95_ms": _pct(tm.latency, 95),
        "decode_ms": _mean_ms(capture.decode_s), "backbone_ms": _mean_ms(tm.backbone),
        "lstm_ms": _mean_ms(tm.lstm), "overlay_ms": _mean_ms(overlay_s), "show_write_ms": _mean_ms(show_s),
        "lstm_overlay_share_of_frame": round(lstm_overlay / period, 4) if period else None,
    }


def _threads(backbone) -> int:
    """Threads of the backbone: a bundle's ONNX Runtime session's, else torch's."""
    threads = getattr(backbone, "threads", None)
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return int(threads)


def format_benchmark(r: dict) -> str:
    def f(v, spec=".1f"):
        return "-" if v is None else format(v, spec)
    return "\n".join([
        f"benchmark: {r['source']} ({'realtime' if r['realtime'] else 'as fast as possible'}), "
        f"{r['backbone']} @{r['image_size']} ({r['runtime']}), {r['threads']} threads",
        f"  display           {f(r['display_fps'])} frames/s over {r['seconds']} s ({r['frames_shown']} frames)",
        f"  model             {f(r['backbone_fps'])} backbone calls/s for {r['sampling_fps']:g} samples/s; "
        f"fresh features for {f(r['fresh_sample_share'] and 100 * r['fresh_sample_share'], '.0f')}% of samples",
        f"  updates           {f(r['updates_per_s'], '.2f')}/s (one per {r['stride']} samples = "
        f"{r['sampling_fps'] / r['stride']:.2f}/s expected)",
        f"  latency           p50 {f(r['latency_p50_ms'])} ms, p95 {f(r['latency_p95_ms'])} ms "
        "(frame capture -> model output)",
        f"  time per call     decode {f(r['decode_ms'], '.2f')} ms, backbone {f(r['backbone_ms'])} ms, "
        f"LSTM step {f(r['lstm_ms'], '.2f')} ms, overlay {f(r['overlay_ms'], '.2f')} ms, "
        f"show/write {f(r['show_write_ms'], '.2f')} ms",
        f"  LSTM + overlay    {f(r['lstm_overlay_share_of_frame'] and 100 * r['lstm_overlay_share_of_frame'])}% "
        "of the source frame time",
    ])


def build_parser() -> argparse.ArgumentParser:
    ap = parser(prog="action-rec live", description=(
        "Label a camera, a video file or an RTSP/HTTP stream as it plays; raise an alert when a fall is "
        "confirmed. Window keys: q/Esc quit, r reset."))
    ap.add_argument("--ckpt", required=True, help="a checkpoint written by `action-rec fit`, or a bundle folder "
                    "written by `action-rec export` (runs without torch)")
    ap.add_argument("--source", default="0", help="camera index, video file or rtsp:// / http:// URL "
                    "(default: camera 0)")
    ap.add_argument("--headless", action="store_true", help="no window: one JSON line per model update and "
                    "per alert start/end on stdout")
    ap.add_argument("--save", metavar="OUT.mp4", help="record the annotated video")
    ap.add_argument("--alert-cmd", metavar="CMD", help="run CMD (no shell) when an alert starts or ends; the "
                    "event is JSON on its stdin and in $ACTION_REC_EVENT")
    ap.add_argument("--alert-file", metavar="PATH", help="append one JSON line per alert start/end")
    ap.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    ap.add_argument("--benchmark", action="store_true", help="report display fps, model rate, latency "
                    "percentiles and the time per stage at the end")
    ap.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None, help="play a file at "
                    "its own frame rate like a camera (default); --no-realtime: every frame, as fast as "
                    "possible, same results as batch mode")
    ap.add_argument("--stride", type=int_at_least(1), help="model update every N sampled frames "
                    "(default: window/2, as batch mode); the alert's k/m count updates")
    ap.add_argument("--fall-threshold", type=float_between(0, 1), help="override the checkpoint's fall threshold (0-1)")
    ap.add_argument("--fall-k", type=int_at_least(1), help="updates above the threshold that start an alert")
    ap.add_argument("--fall-m", type=int_at_least(1), help="updates below the threshold that end it")
    ap.add_argument("--weights", help="backbone weights, if not those the checkpoint names")
    add_person_args(ap, "label every tracked person, one alert per person (default for checkpoints trained with "
                        "features: person/both)", "person/both checkpoints: the main person only (one label, one alert)")
    ap.add_argument("--threads", type=int_at_least(1), help="torch threads, or a bundle's ONNX Runtime threads "
                    "(default: torch's choice / one per core)")
    ap.add_argument("--duration", type=positive_float, help="stop after this many seconds of video")
    ap.add_argument("--stall-timeout", type=positive_float, default=5.0, help="give up on a camera/stream that "
                    "delivers no frame for this many seconds (default: %(default)s)")
    return ap


def main(argv: list[str] | None = None) -> int:
    from ..utils.errors import BackboneWeightsError

    a = build_parser().parse_args(argv)
    try:
        return run(a)
    except (SourceError, UsageError, BackboneWeightsError) as e:
        print(f"action-rec live: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the stream started (loading the model)
        print("action-rec live: interrupted", file=sys.stderr)
        return 130
