"""The model half of live mode: one backbone call per sampled frame, a few LSTM steps, the fall alert.

Batch inference classifies fixed windows of `window` sampled frames, each LSTM run starting from a zero
state, at starts 0, stride, 2*stride, ... (data.window_starts). Carrying one LSTM state forever would
drift away from what training saw, and re-running the LSTM over the whole window every frame costs
`window` times more. So the stream keeps one LSTM "lane" per window in progress: a lane starts every
`stride` sampled frames, all lanes advance together with one batched `step()`, and a lane that has seen
`window` frames is emitted and dropped. That is ceil(window/stride) steps of a tiny LSTM per frame —
constant work — and the emitted windows are exactly the batch windows (tests/test_live.py checks it).

torch is imported only by StreamingClassifier (a checkpoint's LSTM): LiveModel also runs a bundle's ONNX head
(runtime.py), which must not import torch.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..decision.rule import FallAlert
from ..decision.windows import take

if TYPE_CHECKING:
    import torch

    from ..model.lstm import ActionLSTM, State


@dataclass
class WindowResult:
    start: int          # index of the window's first sampled frame (since the last reset)
    probs: np.ndarray   # (C,) class probabilities


class StreamingClassifier:
    """ActionLSTM over a stream of per-frame features, giving the batch windows one at a time."""

    def __init__(self, net: ActionLSTM, window: int, stride: int):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
        self.net, self.window, self.stride = net.eval(), int(window), int(stride)
        self.reset()

    def reset(self) -> None:
        self.n = 0                                   # frames pushed since reset
        self.state = None                            # (h, c, prev) of all lanes, batched on dim 1 / 0
        self.lane_start: list[int] = []              # first frame of each lane, oldest first
        self.recent: deque[np.ndarray] = deque(maxlen=self.window)  # for the end-of-stream window only

    def push(self, feat: np.ndarray, repeat: int = 1) -> list[WindowResult]:
        """Advance by `repeat` sampled frames that all show `feat` (repeats stand in for sample times
        the backbone had no fresh frame for). Returns the windows completed, oldest first."""
        return push_together([self], [feat], repeat)[0]

    def _lanes_in(self, x: torch.Tensor) -> torch.Tensor:
        """The input rows of this frame, one per lane (a lane starts every `stride` frames)."""
        if self.n % self.stride == 0:
            self._add_lane(x)
        return x.expand(len(self.lane_start), -1)

    def _advance(self, logits: torch.Tensor | None, state: State | None, feat: np.ndarray) -> WindowResult | None:
        """Take the lanes' step result; the oldest lane's window is complete after `window` frames."""
        self.state = state
        self.recent.append(feat)
        self.n += 1
        if not self.lane_start or self.n - self.lane_start[0] != self.window:
            return None
        done = WindowResult(self.lane_start.pop(0), logits[0].softmax(-1).cpu().numpy())
        h, c, prev = self.state
        self.state = (h[:, 1:], c[:, 1:], prev[1:]) if self.lane_start else None
        return done

    def _add_lane(self, x: torch.Tensor) -> None:
        import torch

        # A new lane is a zero LSTM state whose "previous frame" is this frame: its first motion feature is
        # then zero, as for the first frame of a batch window (ActionLSTM.embed with prev=None).
        layers, hidden = self.net.lstm.num_layers, self.net.lstm.hidden_size
        zeros = x.new_zeros(layers, 1, hidden)
        if self.state is None:
            self.state = (zeros, zeros.clone(), x.clone())
        else:
            h, c, prev = self.state
            self.state = (torch.cat([h, zeros], 1), torch.cat([c, zeros], 1), torch.cat([prev, x]))
        self.lane_start.append(self.n)

    def finish(self) -> list[WindowResult]:
        """End of a finite stream: the window batch mode adds at the end (a clip shorter than `window`,
        padded by repeating its last frame, or the last window aligned to the clip's end when it is off
        the stride grid). Computed once from the last `window` features; nothing if the grid ends there."""
        n, w = self.n, self.window
        if n == 0 or (n >= w and (n - w) % self.stride == 0):
            return []
        import torch

        feats = np.stack(self.recent)
        x = take(feats, np.arange(w)) if n < w else feats
        param = next(self.net.parameters())
        with torch.inference_mode():
            probs = self.net(torch.from_numpy(x)[None].to(param.device)).softmax(-1)[0].cpu().numpy()
        return [WindowResult(max(0, n - w), probs)]


def push_together(streams: list[StreamingClassifier], feats: list[np.ndarray], repeat: int = 1
                  ) -> list[list[WindowResult]]:
    """`push` for several streams of one net (the people of live/tracks.py), every lane of every stream in one
    LSTM step per frame: a step reads all the weights whatever its batch, so N people cost little more than one
    (a 5-member ensemble reads ~60 MB per step). Rows are independent, so results equal separate pushes."""
    import torch

    net = streams[0].net
    if any(s.net is not net for s in streams):
        raise ValueError("push_together needs streams of one net")
    out: list[list[WindowResult]] = [[] for _ in streams]
    param = next(net.parameters())
    rows = [np.asarray(f, dtype=np.float32) for f in feats]
    with torch.inference_mode():
        xs = [torch.as_tensor(r, device=param.device)[None] for r in rows]
        for _ in range(repeat):
            inputs = [s._lanes_in(x) for s, x in zip(streams, xs)]
            live = [i for i, x in enumerate(inputs) if len(x)]
            if live:
                h = torch.cat([streams[i].state[0] for i in live], 1)
                c = torch.cat([streams[i].state[1] for i in live], 1)
                prev = torch.cat([streams[i].state[2] for i in live], 0)
                logits, (h, c, prev) = net.step(torch.cat([inputs[i] for i in live]), (h, c, prev))
            lo = 0
            for i, s in enumerate(streams):
                n = len(inputs[i])
                step = (logits[lo:lo + n], (h[:, lo:lo + n], c[:, lo:lo + n], prev[lo:lo + n])) if n else (None, None)
                lo += n
                if (done := s._advance(*step, rows[i])) is not None:
                    out[i].append(done)
    return out


@dataclass
class Update:
    """One model output: a completed window, and what the fall alert made of it."""
    start_s: float            # window start, stream seconds (video time for files)
    end_s: float
    probs: np.ndarray
    label: str
    confidence: float
    event: dict | None = None  # {"event": "fall_start"|"fall_end", ...} when the alert changed
    latency_s: float | None = None  # capture of the window's last frame -> this update
    final: bool = False       # the end-of-stream window
    track: int | None = None  # several people (live/tracks.py): whose window this is, and their box
    box: list[float] | None = None


def push_people(models: list[LiveModel], feats: list[np.ndarray], repeat: int, captured: float | None = None,
                t0: float | None = None) -> list[list[Update]]:
    """LiveModel.push for several models (one per tracked person): their LSTM lanes step as one batch when they
    share a checkpoint's net (push_together); a bundle's ONNX head steps each model in turn."""
    t1 = time.perf_counter()
    t0 = t1 if t0 is None else t0
    with ExitStack() as held:
        for m in models:
            held.enter_context(m._lock)
        clfs = [m.clf for m in models]
        if all(isinstance(c, StreamingClassifier) and c.net is clfs[0].net for c in clfs):
            results = push_together(clfs, feats, repeat)
        else:
            results = [c.push(f, repeat) for c, f in zip(clfs, feats)]
        return [m._took(r, repeat, captured, t0, t1) for m, r in zip(models, results)]


def recent(n: int = 20_000) -> deque:
    """A bounded record for timings: a camera left running for days must not grow memory."""
    return deque(maxlen=n)


@dataclass
class Timings:
    backbone: deque = field(default_factory=recent)  # seconds per backbone call
    lstm: deque = field(default_factory=recent)      # per feed (its `repeat` steps)
    latency: deque = field(default_factory=recent)   # frame capture -> its model output
    updates: int = 0


class LiveModel:
    """Backbone + StreamingClassifier + FallAlert, fed frames on the checkpoint's sampling clock.

    Thread-safe for one feeding thread plus `reset()` / `snapshot()` from others.
    """

    def __init__(self, predictor, stride: int | None = None):
        self.backbone, self.fps, self.window = predictor.backbone, float(predictor.fps), int(predictor.window)
        self.class_names, self.rule = list(predictor.class_names), predictor.rule
        self.stride = int(stride or max(1, self.window // 2))  # batch's default stride
        # a checkpoint's LSTM (StreamingClassifier) or a bundle's ONNX head (runtime.py), same lanes either way
        make = getattr(predictor, "streaming_classifier", None)
        self.clf = (make(self.window, self.stride) if make is not None
                    else StreamingClassifier(predictor.model.net, self.window, self.stride))
        self.fall_index = (self.class_names.index(self.rule.fall_class)
                           if self.rule.fall_class in self.class_names else None)
        self.timings = Timings()
        self._lock = threading.Lock()
        self.latest: Update | None = None
        self.samples = 0           # sample times covered (clock since start)
        self.fresh = 0             # sample times that got their own backbone call
        self.alert: FallAlert | None = None
        self._event_start_s = 0.0
        self.reset()

    def reset(self) -> dict | None:
        """Forget the windows in progress and the alert; returns the fall_end event of an open alert."""
        with self._lock:
            event = self._close_alert("reset") if self.alert is not None else None
            self.clf.reset()
            # person features: a new tracker (none for one person's model of live/tracks.py)
            self._embedder = self.backbone.video_embedder() if self.backbone is not None else None
            self.alert = FallAlert(self.rule)
            self._starts: deque[float] = deque(maxlen=self.rule.k + self.rule.m + 2)
            self.base = self.samples  # sample index of the classifier's frame 0
            self.latest = None
            return event

    @property
    def alert_active(self) -> bool:
        return self.alert.active

    def due(self, t_end: float) -> int:
        """Sample times k/fps < t_end not covered yet: iter_sampled's rule for a frame shown until t_end."""
        return max(0, math.ceil(t_end * self.fps - 1e-9) - self.samples)

    def feed(self, frame_rgb: np.ndarray, repeat: int, captured: float | None = None) -> list[Update]:
        """One backbone call on the frame, then `repeat` sampled frames' worth of LSTM steps."""
        if repeat <= 0:
            return []
        t0 = time.perf_counter()
        feat = self._embedder.embed([frame_rgb])[0]
        return self.push(feat, repeat, captured, t0)

    def push(self, feat: np.ndarray, repeat: int, captured: float | None = None, t0: float | None = None
             ) -> list[Update]:
        """`feed` for a feature row computed elsewhere (t0: when its backbone call began)."""
        return push_people([self], [feat], repeat, captured, t0)[0]

    def _took(self, results: list[WindowResult], repeat: int, captured: float | None, t0: float, t1: float
              ) -> list[Update]:
        """Book `repeat` samples whose classifier results are in (called with the lock held)."""
        self.samples += repeat
        self.fresh += 1
        t2 = time.perf_counter()
        self.timings.backbone.append(t1 - t0)
        self.timings.lstm.append(t2 - t1)
        if captured is not None:
            self.timings.latency.append(t2 - captured)
        self.timings.updates += len(results)
        return [self._update(r, captured) for r in results]

    def finish(self, final_window: bool = True) -> tuple[list[Update], dict | None]:
        """End of the stream: the fall_end event of an alert still open and, for a file played to its end
        (`final_window`), batch mode's last window first (it may start or end the alert too)."""
        with self._lock:
            ups = [self._update(r, None, final=True) for r in self.clf.finish()] if final_window else []
            return ups, self._close_alert("stream ended")

    def progress(self) -> str:
        """The overlay's text before the first window completes."""
        return f"starting {min(self.clf.n, self.window)}/{self.window}"

    def snapshot(self) -> tuple[Update | None, bool]:
        with self._lock:
            return self.latest, self.alert.active

    def _update(self, r: WindowResult, captured: float | None, final: bool = False) -> Update:
        start_s = (self.base + r.start) / self.fps
        end_s = start_s + self.window / self.fps
        i = int(r.probs.argmax())
        up = Update(start_s, end_s, r.probs, self.class_names[i], float(r.probs[i]), final=final,
                    latency_s=None if captured is None else time.perf_counter() - captured)
        if self.fall_index is not None:
            self._starts.append(start_s)
            p = float(r.probs[self.fall_index])
            change = self.alert.update(p)
            if change == "start":
                first = self._starts[-self.alert.k]  # the event began with the first of its k windows
                self._event_start_s = first
                up.event = {"event": "fall_start", "t": end_s, "fall_start_s": first, "p_fall": p}
            elif change == "end":
                up.event = self._end_event(end_s, "probability below threshold")
        self.latest = up
        return up

    def _end_event(self, t: float, reason: str) -> dict:
        first, last = self.alert.event
        # Batch reports an event as (start of its first window, end of its last window above threshold).
        last_end = self._starts[-1 - (self.alert.index - last)] + self.window / self.fps
        return {"event": "fall_end", "t": t, "fall_start_s": self._event_start_s, "fall_end_s": last_end,
                "reason": reason}

    def _close_alert(self, reason: str) -> dict | None:
        if not self.alert.active:
            return None
        self.alert.close()
        t = self._starts[-1] + self.window / self.fps if self._starts else 0.0
        return self._end_event(t, reason)
