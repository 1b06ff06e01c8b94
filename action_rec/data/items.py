"""What a dataset is made of: a labelled video (VideoItem) and the error for a dataset that cannot be used.

Shared by datasets.py (folders, manifests, splits) and splitfiles.py (UCF101/HMDB51 lists), so neither imports
the other's module to get them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..utils.errors import UsageError
from ..video.region import Region


class DatasetError(UsageError):
    """A dataset that cannot be used as given; the message says what and where."""


@dataclass(frozen=True)
class VideoItem:
    path: str
    label: str
    split: str | None = None
    group: str | None = None
    where: str | None = field(default=None, compare=False)  # "MANIFEST.csv:12": where it is listed, for messages
    region: Region | None = None  # the part of its frames to read (video/region.py); None: the whole frame
