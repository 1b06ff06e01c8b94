"""Live mode with several people in view: one StreamingClassifier and one FallAlert per tracked person.

Every sampled frame goes once through the detector, tracker and backbone (tracks.TrackFeatures: a row per
confirmed track); each track's row advances that person's own LiveModel (LSTM lanes by `step()`, the k-on /
m-off alert) on the same sampling clock. A person's model is created when the tracker confirms them and
dropped when the tracker forgets them; its last window (batch's end-of-sequence window) and the end of an open
alert are given out then. So one person falling raises one alert naming their track, two raise two, and the
windows and events are those of batch labelling (`action-rec label`, per track) on the same file.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np

from ..inference.stream import LiveModel, Timings, Update, push_people
from ..inference.tracks import META


class TrackLiveModel:
    """LiveModel's interface (feed, finish, reset, snapshot, due...) over one LiveModel per tracked person."""

    def __init__(self, predictor, features, stride: int | None = None):
        self.predictor, self.backbone = predictor, features
        self.fps, self.window = float(predictor.fps), int(predictor.window)
        self.class_names, self.rule = list(predictor.class_names), predictor.rule
        self.stride = int(stride or max(1, self.window // 2))
        # one person's model: the checkpoint's LSTM and rule, no backbone of its own
        self._person_pred = SimpleNamespace(backbone=None, fps=predictor.fps, window=predictor.window,
                                            class_names=predictor.class_names, rule=predictor.rule,
                                            model=predictor.model)
        self.timings = Timings()
        self._lock = threading.Lock()
        self.samples = self.fresh = 0
        self.people_models: dict[int, LiveModel] = {}
        self.boxes: dict[int, np.ndarray] = {}  # last box seen of each person
        self.visible: set[int] = set()           # people seen in the last frame (lost ones are still tracked)
        self.latest: Update | None = None
        self._events: list[dict] = []
        self.reset()

    def reset(self) -> list[dict]:
        """Forget every person (a new tracker); returns the end events of their open alerts."""
        with self._lock:
            events = [self._tag(tid, ev) for tid, m in self.people_models.items() if (ev := m.reset())]
            self.people_models.clear()
            self.boxes.clear()
            self._embedder = self.backbone.video_embedder()
            self.latest = None
            return events

    def due(self, t_end: float) -> int:
        return max(0, int(np.ceil(t_end * self.fps - 1e-9)) - self.samples)

    @staticmethod
    def _tag(tid: int, ev: dict) -> dict:
        return {**ev, "track": tid}

    def _person(self, tid: int) -> LiveModel:
        m = LiveModel(self._person_pred, self.stride)
        m.samples = m.base = self.samples  # its windows in stream time, from the sample it was confirmed at
        return m

    def _own(self, tid: int, ups: list[Update]) -> list[Update]:
        for u in ups:
            u.track = tid
            b = self.boxes.get(tid)
            u.box = None if b is None else [float(v) for v in b]
            if u.event:
                u.event = self._tag(tid, u.event)
        return ups

    def feed(self, frame_rgb: np.ndarray, repeat: int, captured: float | None = None) -> list[Update]:
        if repeat <= 0:
            return []
        t0 = time.perf_counter()
        slots = self._embedder.embed([frame_rgb])[0]
        t1 = time.perf_counter()
        rows = {int(s[0]): s for s in slots if s[0] > 0}
        out = []
        with self._lock:
            for tid in [t for t in self.people_models if t not in rows]:  # forgotten by the tracker
                ups, ev = self.people_models.pop(tid).finish(final_window=True)
                out += self._own(tid, ups)
                if ev:
                    self._events.append(self._tag(tid, ev))
                self.boxes.pop(tid, None)
            for tid, s in rows.items():
                if tid not in self.people_models:
                    self.people_models[tid] = self._person(tid)
                if s[1:5].any():
                    self.boxes[tid] = s[1:5].copy()
            self.visible = {tid for tid, s in rows.items() if s[1:5].any()}
            self.samples += repeat
            self.fresh += 1
        if rows:  # every person's lanes in one LSTM step (stream.push_people)
            tids = sorted(rows)
            ups = push_people([self.people_models[t] for t in tids], [rows[t][META:] for t in tids], repeat,
                              captured, t1)
            for tid, u in zip(tids, ups):
                out += self._own(tid, u)
        with self._lock:
            self.timings.backbone.append(t1 - t0)
            self.timings.lstm.append(time.perf_counter() - t1)
            if captured is not None:
                self.timings.latency.append(time.perf_counter() - captured)
            self.timings.updates += len(out)
            if out:
                self.latest = out[-1]
        return out

    def drain_events(self) -> list[dict]:
        with self._lock:
            ev, self._events = self._events, []
            return ev

    def finish(self, final_window: bool = True) -> tuple[list[Update], list[dict]]:
        ups, events = [], self.drain_events()
        for tid, m in sorted(self.people_models.items()):
            u, ev = m.finish(final_window)
            ups += self._own(tid, u)
            if ev:
                events.append(self._tag(tid, ev))
        return ups, events

    def progress(self) -> str:
        n = max((m.clf.n for m in self.people_models.values()), default=0)
        return f"starting {min(n, self.window)}/{self.window}" if self.people_models else "nobody tracked"

    def snapshot(self) -> tuple[Update | None, bool]:
        with self._lock:
            return self.latest, any(m.alert_active for m in self.people_models.values())

    def people(self) -> list[tuple]:
        """(id, box, label, confidence, alert) of each person in view, for the overlay."""
        with self._lock:
            out = []
            for tid, m in sorted(self.people_models.items()):
                box = self.boxes.get(tid)
                if tid not in self.visible or box is None:
                    continue
                up, alert = m.snapshot()
                out.append((tid, box, "..." if up is None else up.label, None if up is None else up.confidence,
                            alert))
            return out
