"""One video's result: the job (which file, its size and mtime) and what the model made of it (label,
confidence, windows, fall events, per-person tracks). Shared by batch labelling, evaluation and per-track inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Job:
    path: str          # absolute; the key of a result in labels.csv
    rel: str           # relative name under the PATH it was found in (for annotated copies)
    size: int = -1
    mtime_ns: int = -1
    error: str = ""    # set when the file could not even be stat()ed


@dataclass
class VideoResult:
    path: str
    status: str                                   # "ok" | "error"
    label: str | None = None
    confidence: float | None = None
    probs: dict[str, float] = field(default_factory=dict)  # mean over windows
    duration_s: float | None = None
    windows: int = 0
    window_starts_s: list[float] = field(default_factory=list)
    window_ends_s: list[float] = field(default_factory=list)
    window_probs: np.ndarray | None = None        # (windows, classes)
    events: list[tuple[float, float]] = field(default_factory=list)  # fall events (start_s, end_s)
    error: str = ""
    size: int = -1
    mtime_ns: int = -1
    frames: int = 0                               # frames sampled and embedded
    rel: str = ""
    tracks: list | None = None                    # per-person results (tracks.TrackResult) of a per-track run

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def first_fall_s(self) -> float | None:
        return self.events[0][0] if self.events else None
