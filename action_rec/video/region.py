"""The part of a frame that shows the scene: for recordings that put two views side by side.

Some datasets store more than one picture per frame: UR Fall Detection's clips are 640x240, a depth map on the left
and the colour camera on the right. Read whole, the detector finds the depth map's grey silhouette as a second
person, and every box number (its width and centre against the frame) means something else than in ordinary
footage. A Region names the useful part as fractions of the frame, `x0,y0,x1,y1` (UR Fall's colour half:
`0.5,0,1,1`); frames are cut to it as they are decoded, so the detector, tracker, box numbers and crops all see an
ordinary frame. Training data gives it per frame size (`data.regions`) or per clip (a manifest's `region` column).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..utils.errors import UsageError


@dataclass(frozen=True)
class Region:
    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self):
        if not (0.0 <= self.x0 < self.x1 <= 1.0 and 0.0 <= self.y0 < self.y1 <= 1.0):
            raise UsageError(f"a region is x0,y0,x1,y1 as fractions of the frame with 0 <= x0 < x1 <= 1 and "
                             f"0 <= y0 < y1 <= 1 (e.g. 0.5,0,1,1 for the right half); got {self.text}")

    @classmethod
    def parse(cls, text) -> Region | None:
        """'0.5,0,1,1' (commas or spaces), a 4-number list, or nothing (None, '', 'full' or 0,0,1,1: the whole
        frame) -> Region or None."""
        if text is None or isinstance(text, Region):
            return text
        if isinstance(text, str):
            if text.strip().lower() in ("", "full", "none"):
                return None
            parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
        else:
            parts = list(text)
        try:
            values = [float(p) for p in parts]
        except (TypeError, ValueError):
            values = []
        if len(values) != 4:
            raise UsageError(f"a region is four numbers x0,y0,x1,y1 (fractions of the frame, e.g. 0.5,0,1,1 for "
                             f"the right half); got {text!r}")
        region = cls(*values)
        return None if (region.x0, region.y0, region.x1, region.y1) == (0.0, 0.0, 1.0, 1.0) else region

    @property
    def text(self) -> str:
        return ",".join(f"{v:g}" for v in (self.x0, self.y0, self.x1, self.y1))

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in whole pixels of a width x height frame; never empty."""
        left, right = round(self.x0 * width), round(self.x1 * width)
        top, bottom = round(self.y0 * height), round(self.y1 * height)
        return left, top, max(right, left + 1), max(bottom, top + 1)

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """The region of an (H, W, C) frame, contiguous (the detector and the pose network want packed pixels)."""
        left, top, right, bottom = self.pixels(frame.shape[1], frame.shape[0])
        return np.ascontiguousarray(frame[top:bottom, left:right])


def region_of(regions, width: int, height: int) -> Region | None:
    """The region for a width x height frame: `regions` is one Region (every frame), a {(width, height): Region}
    mapping (regions_by_size: only frames of a listed size) or None (whole frames)."""
    if regions is None or isinstance(regions, Region):
        return regions
    return regions.get((width, height))


def cut(frame: np.ndarray, regions) -> np.ndarray:
    """`frame` cut to its region (region_of), or itself."""
    region = region_of(regions, frame.shape[1], frame.shape[0])
    return frame if region is None else region.crop(frame)


def regions_by_size(regions: dict | None) -> dict[tuple[int, int], Region]:
    """A config's `data.regions` ({'640x240': '0.5,0,1,1'}) -> {(640, 240): Region}, a clear error otherwise; an
    already parsed one is returned as it is."""
    out = {}
    for size, text in (regions or {}).items():
        if isinstance(size, tuple) and isinstance(text, Region):
            out[size] = text
            continue
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(size))
        if not m:
            raise UsageError(f"data.regions keys are frame sizes WIDTHxHEIGHT (e.g. '640x240'); got {size!r}")
        region = Region.parse(text)
        if region is not None:
            out[(int(m.group(1)), int(m.group(2)))] = region
    return out
