"""Several people in view: person/both checkpoints applied per track.

A person/both checkpoint is trained on one person's rows (their crop embedding + GEOMETRY of their box against
their own past). At inference every confirmed track of the ultralytics tracker gets such a row of its own, with
the same definition (person.box_row), so the model trained on main-person rows applies to each person:

- a track gets a state (and a new id, counted from 1 per video) when the tracker confirms it, keeps one row per
  frame while the tracker keeps it (a frame where it is lost: the no-person row, zeros), and is dropped when the
  tracker removes it. At most `max_tracks` are kept (the largest boxes first; a dropped track that comes back gets
  a new id), so ids are never reused within a video and each id is one contiguous sequence of rows.
- re-link: a fall changes the box faster than the tracker's motion model expects, so the standing box's track is
  often lost right then and the lying person comes back as a new tracker track. A new track whose box is within
  one body size of where a track lost in the last `relink` samples (~1 s) was last seen (and of a similar size)
  continues that track: same id, same history, same windows/LSTM state, so the person's sequence is not cut
  exactly when it matters. A new track far from any recently lost one, or after a longer gap, is a new person.
- batch: `TrackFeatures.video_embedder().embed(frames)` gives (frames, max_tracks, 5 + D) arrays: per slot the
  track id (0: empty), its box (x1, y1, x2, y2; zeros while lost) and its feature row. They travel through the
  decoders like whole-video features; `track_results` windows each track's sequence and applies decide().
- live: stream.py keeps a StreamingClassifier and a FallAlert per id (live/tracks.py).

The single-main-person path (person.PersonFeatures) is unchanged: training, caches and `--main-person` use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..features.detector import tracker_frame
from ..features.person import GEOMETRY, BoxHistory, PersonFeatures, box_row
from ..utils.errors import UsageError

MAX_TRACKS = 8
META = 5  # id + box columns in front of each slot's feature row
RELINK_S = 1.0  # a new track may continue a track lost at most this long ago (seconds)
RELINK_SIZE = 2.0  # ... if its box's longer side is within this factor of the lost box's (a fall keeps it)


class _Track(BoxHistory):
    def __init__(self, tid: int):
        super().__init__()
        self.id = tid
        self.last: np.ndarray | None = None  # box (x1, y1, x2, y2) where it was last seen
        self.missing = 0                     # samples since then


def _centre(b) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], np.float64)


def _side(b) -> float:
    return float(max(b[2] - b[0], b[3] - b[1], 1.0))


def relink_pairs(new: dict[int, np.ndarray], lost: dict[int, tuple[np.ndarray, int]], within: int
                 ) -> list[tuple[int, int]]:
    """(new key, lost key) pairs: a new box continues a lost track when it was lost `within` samples ago at most,
    the new box's centre is within one body size (the lost box's longer side) of where it was last seen and its
    longer side is within RELINK_SIZE of that one. Nearest pairs first, each key used once."""
    cands = []
    for k, box in new.items():
        for j, (last, missing) in lost.items():
            side = _side(last)
            d = float(np.linalg.norm(_centre(box) - _centre(last)))
            if missing <= within and d <= side and 1 / RELINK_SIZE <= _side(box) / side <= RELINK_SIZE:
                cands.append((d, k, j))
    pairs, used_new, used_lost = [], set(), set()
    for _, k, j in sorted(cands):
        if k not in used_new and j not in used_lost:
            pairs.append((k, j))
            used_new.add(k)
            used_lost.add(j)
    return pairs


class MultiTrackState:
    """One video's tracker and per-track histories; `step` -> [(id, crop or None, GEOMETRY row, box or None)].
    relink: samples a lost track may be continued by a new one (0: never; see the module docstring)."""

    def __init__(self, detector, max_tracks: int = MAX_TRACKS, relink: int = 8):
        self.detector, self.tracker, self.max_tracks = detector, detector.new_tracker(), max_tracks
        self.relink = relink
        self.tracks: dict[int, _Track] = {}  # tracker's id -> state (its own id)
        self.next_id = 1

    def step(self, frame_rgb: np.ndarray, boxes) -> list[tuple[int, np.ndarray | None, np.ndarray, np.ndarray | None]]:
        out = self.tracker.update(boxes, tracker_frame(self.tracker, frame_rgb))
        # The detection's own box, as for the main person (the Kalman box lags a fall).
        seen = {int(t[4]): (boxes.xyxy[int(t[7])][:4], float(t[5]), int(t[6])) for t in out}
        for k, tr in self.tracks.items():
            tr.missing = 0 if k in seen else tr.missing + 1
        if self.relink > 0:
            new = {k: v[0] for k, v in seen.items() if k not in self.tracks}
            gone = {k: (tr.last, tr.missing) for k, tr in self.tracks.items()
                    if k not in seen and tr.last is not None}
            for k, j in relink_pairs(new, gone, self.relink) if new and gone else []:
                self.tracks[k] = self.tracks.pop(j)  # the tracker's old track stays lost: it is no one's now
        lost = [t.track_id for t in self.tracker.lost_stracks if t.track_id in self.tracks]
        area = lambda b: float((b[2] - b[0]) * (b[3] - b[1]))  # noqa: E731
        keep = sorted(seen, key=lambda k: -area(seen[k][0])) + sorted(lost, key=lambda k: self.tracks[k].id)
        keep = keep[:self.max_tracks]
        for k in [k for k in self.tracks if k not in keep]:
            del self.tracks[k]  # removed by the tracker, or over the bound: its id is never used again
        for k in keep:
            if k not in self.tracks:
                self.tracks[k], self.next_id = _Track(self.next_id), self.next_id + 1
        rows = []
        for k in sorted(keep, key=lambda k: self.tracks[k].id):
            tr = self.tracks[k]
            if k in seen:
                xyxy, score, cls = seen[k]
                tr.last = np.asarray(xyxy, np.float32)
                crop, geo = box_row(tr, frame_rgb, xyxy, score, self.detector.names.get(cls, ""), len(seen))
                rows.append((tr.id, crop, geo, np.asarray(xyxy, np.float32)))
            else:  # lost for now: the no-person row, and no velocity across the gap
                tr.prev = None
                rows.append((tr.id, None, np.zeros(len(GEOMETRY), np.float32), None))
        return rows


class TrackEmbedder:
    """`embed(frames)` for one video's frames in order -> (n, max_tracks, META + feature_dim)."""

    def __init__(self, owner: TrackFeatures, boxes=None, crops=None):
        self.owner = owner
        self.state = MultiTrackState(owner.person.detector, owner.max_tracks, owner.relink)
        self.detect = owner.person.detector.detect if boxes is None else boxes.detect  # stored boxes: cache.BoxLog
        self.embed_crops = owner.person.backbone.embed if crops is None else crops.embed  # known rows: cache.CropLog

    def embed(self, frames) -> np.ndarray:
        pf, k = self.owner.person, self.owner.max_tracks
        frames = list(frames)
        out = np.zeros((len(frames), k, META + pf.feature_dim), np.float32)
        if not frames:
            return out
        crops, where = [], []
        for i, (frame, boxes) in enumerate(zip(frames, self.detect(frames))):
            for j, (tid, crop, geo, box) in enumerate(self.state.step(frame, boxes)):
                out[i, j, 0] = tid
                if box is not None:
                    out[i, j, 1:5] = box
                out[i, j, -len(GEOMETRY):] = geo
                if crop is not None and crop.shape[0] > 1 and crop.shape[1] > 1:
                    crops.append(np.ascontiguousarray(crop))
                    where.append((i, j))
        d = pf.backbone.feature_dim
        if pf.mode == "both":
            whole = pf.backbone.embed(frames)
            used = out[:, :, 0] > 0
            out[:, :, META:META + d] = np.where(used[..., None], whole[:, None, :], 0.0)
        if crops:
            at = META + (d if pf.mode == "both" else 0)
            i, j = np.asarray(where).T
            out[i, j, at:at + d] = self.embed_crops(crops)
        return out


class TrackFeatures:
    """PersonFeatures applied to every track; used where a backbone is in batch labelling (decoders).
    relink: samples a lost track may be continued by a new one (per_track_features: RELINK_S at the checkpoint's
    rate; 0: never)."""

    def __init__(self, person, max_tracks: int = MAX_TRACKS, relink: int = 8):
        if max_tracks < 1:
            raise UsageError(f"--max-tracks must be >= 1, got {max_tracks}")
        self.person, self.max_tracks, self.relink = person, max_tracks, relink
        self.name, self.preprocess, self.feature_dim = person.name, person.preprocess, person.feature_dim
        self.fits_frames = False

    def identity(self) -> dict:
        return {**self.person.identity(), "tracks": self.max_tracks, "relink": self.relink}

    def video_embedder(self, boxes=None, crops=None) -> TrackEmbedder:
        return TrackEmbedder(self, boxes, crops)

    def embed(self, frames, **_) -> np.ndarray:
        return self.video_embedder().embed(frames)

    def worker_embedder(self, threads: int = 1) -> TrackFeatures:
        return TrackFeatures(self.person.worker_embedder(threads), self.max_tracks, self.relink)

    def parameters(self):
        return self.person.parameters()


def per_track_features(pred, tracks: bool | None = None, max_tracks: int = MAX_TRACKS) -> TrackFeatures | None:
    """TrackFeatures for a person/both checkpoint unless tracks=False (--main-person); None: one sequence per
    video (whole-frame checkpoints, or asked for). tracks=True with a whole-frame checkpoint is a UsageError."""
    person = isinstance(pred.backbone, PersonFeatures)
    if tracks and not person:
        raise UsageError("per-person tracks need a checkpoint trained with `features: person` or `both`; this one "
                         "describes whole frames (drop --tracks)")
    if tracks is False or not person:
        return None
    return TrackFeatures(pred.backbone, max_tracks, max(1, round(RELINK_S * pred.fps)))


@dataclass
class TrackSeq:
    id: int
    first: int            # sample index of its first row in the video
    feats: np.ndarray     # (n, D)
    boxes: np.ndarray     # (n, 4) xyxy, zeros while lost


def split_tracks(arr: np.ndarray) -> list[TrackSeq]:
    """Per-track sequences of a video's (n, max_tracks, META + D) array, by id."""
    ids = arr[:, :, 0].astype(np.int64)
    out = []
    for tid in np.unique(ids[ids > 0]):
        frames, slots = np.nonzero(ids == tid)  # one slot per frame, frames ascending, contiguous
        rows = arr[frames, slots]
        out.append(TrackSeq(int(tid), int(frames[0]), rows[:, META:], rows[:, 1:5]))
    return out


@dataclass
class TrackResult:
    id: int
    label: str
    confidence: float
    probs: dict[str, float]
    start_s: float
    end_s: float
    rows: int
    window_starts_s: list[float] = field(default_factory=list)
    window_ends_s: list[float] = field(default_factory=list)
    window_probs: np.ndarray | None = None
    window_boxes: np.ndarray | None = None   # (W, 4): the box at each window's last sample (last one seen)
    boxes: np.ndarray | None = None          # (rows, 4): its box at each sample from start_s (zeros while lost)
    fps: float = 0.0                         # samples per second (the checkpoint's rate)
    events: list[tuple[float, float]] = field(default_factory=list)
    evidence: float = 0.0                    # the detector's confidence summed over its samples (video_decision)


def _window_boxes(boxes: np.ndarray, ends: list[int]) -> np.ndarray:
    seen = np.nonzero(boxes.any(1))[0]
    out = np.zeros((len(ends), 4), np.float32)
    for w, e in enumerate(ends):
        before = seen[seen <= e]
        if len(before):
            out[w] = boxes[before[-1]]
    return out


def track_results(pred, arr: np.ndarray, duration: float, stride: int | None = None) -> list[TrackResult]:
    """Each track's windows (the checkpoint's window and stride over its own rows) and decide() on them; times
    are the video's (a track's first window starts when it was first confirmed)."""
    out = []
    win = pred.window / pred.fps
    for seq in split_tracks(arr):
        vp = pred.predict_features(str(seq.id), seq.feats, stride)
        off = seq.first / pred.fps
        starts = [round(off + s, 6) for s in vp.window_starts_s]
        end = (seq.first + len(seq.feats)) / pred.fps
        clip = lambda a, b: round(min(b, max(end, a)), 6)  # noqa: E731 - windows padded past the track's end
        ends_idx = [min(round(s * pred.fps) + pred.window, len(seq.feats)) - 1 for s in vp.window_starts_s]
        out.append(TrackResult(
            id=seq.id, label=vp.label, confidence=vp.confidence, probs=vp.probs, start_s=round(off, 6),
            end_s=round(min(end, duration) if duration > off else end, 6), rows=len(seq.feats),
            window_starts_s=starts, window_ends_s=[clip(s, s + win) for s in starts], window_probs=vp.window_probs,
            window_boxes=_window_boxes(seq.boxes, ends_idx), boxes=seq.boxes, fps=pred.fps,
            events=[(round(a + off, 6), clip(a + off, b + off)) for a, b in vp.events],
            evidence=person_evidence(seq.feats)))
    return out


def person_evidence(feats: np.ndarray) -> float:
    """How surely and how long a track was a person: the detector's confidence (GEOMETRY's fall_score +
    normal_score, one of them non-zero) summed over its rows; a lost sample's no-person row adds nothing."""
    g = feats[:, feats.shape[1] - len(GEOMETRY):]
    return float(g[:, GEOMETRY.index("fall_score")].sum() + g[:, GEOMETRY.index("normal_score")].sum())


def video_decision(tracks: list[TrackResult]) -> TrackResult | None:
    """The track that decides the video's label: among tracks with a fall event the most confident one; else the
    person seen most surely (person_evidence; ties: the more confident). Not the track followed longest: on real
    clips that was often a low-confidence box on a bed, a bench or a shadow, tracked all through the clip, or a
    lost track's run of no-person rows (held-out real sources, scored per track: accuracy 0.44 -> 0.51, README
    "Body pose"). None: nobody was tracked."""
    falling = [t for t in tracks if t.events]
    if falling:
        return max(falling, key=lambda t: t.confidence)
    return surest_person(tracks)


def surest_person(tracks: list[TrackResult]) -> TrackResult | None:
    """The track with the most person_evidence (ties: the more confident); None for no track."""
    return max(tracks, key=lambda t: (t.evidence, t.confidence), default=None)


def events_text(tracks: list[TrackResult]) -> str:
    """CSV `fall_events` of a per-track result: 'ID:START-END' per event, by start time, ';'-separated."""
    ev = sorted((a, t.id, b) for t in tracks for a, b in t.events)
    return ";".join(f"{tid}:{a:.2f}-{b:.2f}" for a, tid, b in ev)


def tracks_video_result(pred, job, arr: np.ndarray, info: dict, stride: int | None = None):
    """labeling.VideoResult of a per-track array: `tracks` holds each person's windows and events; the video is
    the fall class if any track has a fall event (all tracks' events, by start), else the label of the person
    seen most surely (video_decision); nobody tracked at all: the no-person rows, as for the main person. The
    video-level window fields stay empty (the timeline is per track); `windows` counts all tracks' windows."""
    from .results import VideoResult

    duration = float(info.get("duration_s") or len(arr) / pred.fps)
    tracks = track_results(pred, arr, duration, stride)
    chosen = video_decision(tracks)
    if chosen is None:
        chosen = pred.predict_features(job.path, np.zeros((len(arr), arr.shape[2] - META), np.float32), stride)
    return VideoResult(
        path=job.path, status="ok", label=chosen.label, confidence=chosen.confidence, probs=chosen.probs,
        duration_s=duration, windows=sum(len(t.window_starts_s) for t in tracks),
        events=sorted(e for t in tracks for e in t.events), size=job.size, mtime_ns=job.mtime_ns,
        frames=len(arr), rel=job.rel, tracks=tracks)


def people_at(tracks: list[TrackResult], t: float) -> list[tuple]:
    """(id, box, label, confidence, alert) of each track seen at time t (annotated copies): its box at the sample
    nearest t, the prediction of its window centred nearest t, alert while t is inside one of its events."""
    out = []
    for tr in tracks:
        i = int(round((t - tr.start_s) * tr.fps))
        if not 0 <= i < tr.rows or not tr.boxes[i].any():
            continue
        centres = (np.asarray(tr.window_starts_s) + np.asarray(tr.window_ends_s)) / 2
        p = tr.window_probs[int(np.abs(centres - t).argmin())]
        out.append((tr.id, tr.boxes[i], int(p.argmax()), float(p.max()), any(a <= t <= b for a, b in tr.events)))
    return out
