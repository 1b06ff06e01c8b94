"""The feature cache: every sampled frame of every video goes through the frozen backbone once.

Layout: <cache_root>/<backbone>-<key>/ where key hashes the backbone identity (weights, preprocessing)
and the sampling rate, so features from different settings never mix. Inside, one .npz per video named
by a fingerprint of its bytes (content_key): an edited or replaced video is extracted again, while the
same clip copied, moved or re-provisioned with a new mtime is not. Every file is written to a temp name
and renamed, so an interrupted run leaves complete entries or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..utils.io import atomic_write, atomic_write_text
from ..video.reader import VideoReadError, iter_sampled, prefetch

log = logging.getLogger(__name__)


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# Files up to this size are hashed whole (a 64 MiB clip: ~0.1 s); bigger ones by their size plus
# _SAMPLES evenly spaced 1 MiB blocks, first and last included: any re-encode or trim changes those.
_WHOLE_FILE = 64 << 20
_BLOCK = 1 << 20
_SAMPLES = 16


def content_key(path: str | os.PathLike) -> str:
    """A fingerprint of a file's bytes (sha1, 20 hex digits), independent of its name and mtime."""
    size = os.stat(path).st_size
    h = hashlib.sha1(f"{size}:".encode())
    with open(path, "rb") as f:
        if size <= _WHOLE_FILE:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
        else:
            for i in range(_SAMPLES):
                f.seek((size - _BLOCK) * i // (_SAMPLES - 1))
                h.update(f.read(_BLOCK))
    return h.hexdigest()[:20]


# A stored file that cannot be read back (e.g. truncated by a full disk or a copy): computed again, never fatal.
_DAMAGED = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile)


class FeatureCache:
    def __init__(self, root: str | os.PathLike, identity: dict, fps: float):
        self.spec = {"identity": identity, "fps": float(fps)}
        self.dir = Path(root) / f"{identity['backbone']}-{_digest(self.spec)[:12]}"
        self._keys: dict[tuple, str] = {}  # (path, size, mtime, inode) -> content_key: hash each file once

    def entry(self, video: str | os.PathLike, region=None) -> Path:
        """The video's file, by its content; a region (video/region.py) of its frames is another entry."""
        p = Path(video).resolve()
        st = p.stat()
        stamp = (str(p), st.st_size, st.st_mtime_ns, st.st_ino)
        if stamp not in self._keys:
            self._keys[stamp] = content_key(p)
        cut = "" if region is None else "-" + _digest(region.text)[:8]
        return self.dir / f"{self._keys[stamp]}{cut}.npz"

    def has(self, video, region=None) -> bool:
        """An entry that opens: one cut short (a full disk, a half copy) is not there, so `extract` writes it again.
        Opening an .npz reads only its directory at the end, not the arrays."""
        try:
            with np.load(self.entry(video, region)) as z:
                return "features" in z.files
        except _DAMAGED:
            return False

    def load(self, video, region=None) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, D) float32, timestamps (N,) seconds) for a video already extracted."""
        with np.load(self.entry(video, region)) as z:
            return z["features"], z["times"]

    def save(self, video, features: np.ndarray, times: np.ndarray, region=None) -> None:
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, features=features.astype(np.float32), times=times.astype(np.float64),
                         source=str(Path(video).resolve()), region="" if region is None else region.text)
        atomic_write(self.entry(video, region), write)

    def write_meta(self) -> None:
        meta = self.dir / "meta.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps(self.spec, indent=2))


@dataclass
class ExtractReport:
    extracted: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason
    frames: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        fps = self.frames / self.seconds if self.seconds > 0 else 0.0
        s = (f"features: {len(self.extracted)} extracted, {len(self.cached)} already cached, "
             f"{len(self.failed)} failed ({self.frames} frames, {fps:.1f} frames/s)")
        for path, why in self.failed.items():
            s += f"\n  skipped {path}: {why}"
        return s


class BoxStore:
    """The person detector's boxes of each clip, beside the features (<cache_root>/detections-<key>/, the key hashing
    the detector's weights, input size and confidence, and the sampling rate). The detector is most of a person
    mode's cost, and the same clip goes through it more than once: the main-person features a model trains on, then
    every tracked person's for cv's held-out scoring, or another backbone or tracker over the same boxes."""

    def __init__(self, root: str | os.PathLike, detector, fps: float):
        ident = {k: v for k, v in detector.identity().items() if k != "tracker"}
        self.detector = detector
        self.files = FeatureCache(root, {"backbone": "detections", **ident}, fps)

    def log(self, video, region=None) -> BoxLog:
        try:
            with np.load(self.files.entry(video, region)) as z:
                counts, rows = z["counts"], z["boxes"]
            known = np.split(rows, np.cumsum(counts)[:-1]) if len(counts) else []
        except _DAMAGED:
            known = None
        return BoxLog(self.detector, known)

    def save(self, video, log: BoxLog, region=None) -> None:
        if log.known is not None and len(log.known) == len(log.seen):
            return  # stored already
        rows = np.concatenate(log.seen) if log.seen else np.zeros((0, 6), np.float32)

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, boxes=rows.astype(np.float32), counts=np.asarray([len(b) for b in log.seen], np.int64))
        atomic_write(self.files.entry(video, region), write)


class BoxLog:
    """`detect(frames)` for one video's frames in order: its stored boxes while they last, else the detector's; what
    it gave is kept (`seen`) for BoxStore.save."""

    def __init__(self, detector, known: list[np.ndarray] | None):
        self.detector, self.known, self.seen = detector, known, []

    def detect(self, frames_rgb) -> list:
        from ultralytics.engine.results import Boxes

        i = len(self.seen)
        if self.known is not None and i + len(frames_rgb) <= len(self.known):
            out = [Boxes(d, f.shape[:2]).numpy() for d, f in zip(self.known[i:i + len(frames_rgb)], frames_rgb)]
        else:  # no boxes stored, or fewer frames than now decoded: the detector, and store these instead
            self.known = None
            out = self.detector.detect(frames_rgb)
        self.seen += [np.asarray(b.data, np.float32).reshape(-1, 6) for b in out]
        return out


class CropStore:
    """The crop backbone's row of every person crop of each clip, keyed by the crop's pixels (<cache_root>/<backbone>-
    crops-<key>/, the key hashing the backbone's identity). Passes over the same clip cut the same crops from the same
    boxes: the per-track pass after the main-person pass in `cv` finds 57 % of realtrain's crops there (the main
    person's), so it runs the pose network on the others only. Same pixels, same network: the same row."""

    def __init__(self, root: str | os.PathLike, backbone):
        self.backbone = backbone
        self.files = FeatureCache(root, {**backbone.identity(), "backbone": f"{backbone.name}-crops"}, 0.0)

    def log(self, video, region=None) -> CropLog:
        try:
            with np.load(self.files.entry(video, region)) as z:
                known = dict(zip(map(bytes, z["keys"]), z["rows"]))
        except _DAMAGED:
            known = {}
        return CropLog(self.backbone, known)

    def save(self, video, log: CropLog, region=None) -> None:
        if not log.added:
            return
        keys = np.array([np.frombuffer(k, np.uint8) for k in log.known], np.uint8)
        rows = np.stack(list(log.known.values())).astype(np.float32)

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, keys=keys, rows=rows)
        atomic_write(self.files.entry(video, region), write)


class CropLog:
    """`embed(crops)` for one clip's crops: known rows by the crop's pixels, the backbone for the others."""

    def __init__(self, backbone, known: dict[bytes, np.ndarray]):
        self.backbone, self.known, self.added = backbone, known, False

    @staticmethod
    def key(crop: np.ndarray) -> bytes:
        h = hashlib.blake2b(np.ascontiguousarray(crop).data, digest_size=16)
        h.update(repr((crop.shape, crop.dtype.str)).encode())
        return h.digest()

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        keys = [self.key(c) for c in crops]
        todo = [i for i, k in enumerate(keys) if k not in self.known]
        if todo:
            for i, row in zip(todo, self.backbone.embed([crops[i] for i in todo])):
                self.known[keys[i]] = row
            self.added = True
        if not keys:
            return np.zeros((0, self.backbone.feature_dim), np.float32)
        return np.stack([self.known[k] for k in keys])


def detector_of(backbone):
    """The person detector of person features (main person or every track); None for whole-frame backbones."""
    return getattr(backbone, "detector", None) or getattr(getattr(backbone, "person", None), "detector", None)


def crop_backbone_of(backbone):
    """The backbone that embeds person crops (main person or every track); None for whole-frame backbones."""
    person = getattr(backbone, "person", backbone)
    return person.backbone if detector_of(backbone) is not None else None


def extract_video(backbone, video, fps: float, batch_size: int | None = None, chunk: int = 32,
                  boxes: BoxLog | None = None, crops: CropLog | None = None, region=None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Features of every sampled frame of one video, through the backbone `chunk` frames at a time while
    a background thread decodes the next ones. batch_size=None: the backbone's own best batch size
    (small batches keep activations in the CPU's cache: 3x faster than 32 at 224 px here). boxes: the person
    detector's boxes of this video (BoxStore.log) and crops its known crop rows (CropStore.log), for person
    features. region: only that part of each frame (video/region.py)."""
    kw = {} if batch_size is None else {"batch_size": batch_size}
    # person features carry a tracker from frame to frame
    embedder = backbone.video_embedder(boxes, crops) if boxes or crops else backbone.video_embedder()
    if not backbone.fits_frames:
        kw = {}
    feats, times, frames = [], [], []
    for t, frame in prefetch(iter_sampled(video, fps, region=region), size=2 * chunk):
        frames.append(frame)
        times.append(t)
        if len(frames) == chunk:
            feats.append(embedder.embed(frames, **kw))
            frames = []
    if frames:
        feats.append(embedder.embed(frames, **kw))
    return np.concatenate(feats), np.asarray(times)


def extract(videos: Sequence[str | os.PathLike], backbone, fps: float, cache_root: str | os.PathLike,
            batch_size: int | None = None, progress: bool = True, regions: Mapping[str, object] | None = None
            ) -> tuple[FeatureCache, ExtractReport]:
    """Extract every video not yet in the cache. A bad video is reported and skipped, never fatal. regions: the
    Region (video/region.py) of a video's frames to use, by its path as given; the whole frame if not there."""
    regions = {str(k): r for k, r in (regions or {}).items() if r is not None}
    cache = FeatureCache(cache_root, backbone.identity(), fps)
    cache.write_meta()
    report = ExtractReport()
    todo = []
    for v in videos:
        (report.cached if cache.has(v, regions.get(str(v))) else todo).append(str(v))
    start = time.perf_counter()
    detector = detector_of(backbone)
    store = BoxStore(cache_root, detector, fps) if detector is not None and todo else None
    crop_store = CropStore(cache_root, crop_backbone_of(backbone)) if store else None
    bar = tqdm(todo, desc=f"extract [{backbone.name}]", unit="video", disable=not progress or not todo)
    for v in bar:
        region = regions.get(v)
        try:
            boxes, crops = (store.log(v, region), crop_store.log(v, region)) if store else (None, None)
            feats, times = extract_video(backbone, v, fps, batch_size, boxes=boxes, crops=crops, region=region)
            if store:
                store.save(v, boxes, region)
                crop_store.save(v, crops, region)
            cache.save(v, feats, times, region)
        except (VideoReadError, OSError, ValueError) as e:
            report.failed[v] = str(e)
            log.warning("skipping %s: %s", v, e)
            continue
        report.extracted.append(v)
        report.frames += len(feats)
        bar.set_postfix(frames_per_s=f"{report.frames / (time.perf_counter() - start):.1f}")
    report.seconds = time.perf_counter() - start
    record = {"spec": cache.spec, "failed": report.failed, "extracted": len(report.extracted),
              "cached": len(report.cached), "frames": report.frames, "seconds": report.seconds}
    atomic_write_text(cache.dir / "extract_report.json", json.dumps(record, indent=2))
    return cache, report
