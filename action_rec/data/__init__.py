"""Data: labelled videos for training and evaluation. Takes a folder of class folders, a CSV manifest or
UCF101/HMDB51 split files (datasets, splitfiles; items: what a labelled video is); hands on deterministic
train/val/test splits that keep each source on one side, and, for training, the Lightning DataModule that extracts
features once and serves windows of T feature rows (datamodule).

Only training imports datamodule; evaluation uses the dataset discovery alone.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".datamodule": "ActionDataModule ClipWindows TrainWindows collate_clips source_of source_weights",
    "action_rec.decision.windows": "take window_starts",
})
