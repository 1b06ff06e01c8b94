"""Finding labelled videos: a folder per class, or a CSV manifest, and deterministic splits.

Folder layouts:  root/<label>/**/*.mp4            (split by hashing a group key)
                 root/{train,val,test}/<label>/...  (explicit splits)
CSV manifest:    path,label[,split][,group][,region] (extra columns are ignored; relative paths are relative to the
                 CSV's folder), e.g. ../shared/realvids/MANIFEST.csv; region: the part of the frames to read,
                 x0,y0,x1,y1 fractions (video/region.py).
Split files:     UCF101-style classInd.txt + trainlistNN.txt/testlistNN.txt (HMDB51 as UCF101-style lists,
                 or its own <class>_test_splitN.txt files); see splitfiles.py.
Hash splits keep every clip of one group (by default the file itself; `group_pattern` can tie e.g. the
two camera views of one take together) on one side, so no source is both trained and tested on.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from dataclasses import replace
from pathlib import Path

from ..utils.errors import UsageError
from ..video.reader import VIDEO_EXTENSIONS, VideoReadError, is_video_file, probe
from ..video.region import Region, regions_by_size
from .items import DatasetError, VideoItem
from .splitfiles import find_split_files, from_split_files

SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)


def _videos_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_video_file(p)
                  and not p.name.startswith("."))


def _from_class_folders(root: Path, split: str | None) -> list[VideoItem]:
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root}: no class folders; expected {root}/<label>/*.mp4 "
                           "(or a CSV manifest with path,label columns)")
    items = []
    for d in classes:
        vids = _videos_under(d)
        if not vids:
            raise DatasetError(f"{d}: class folder '{d.name}' has no videos "
                               f"({', '.join(VIDEO_EXTENSIONS)}); add some or remove the folder")
        items += [VideoItem(str(v), d.name, split) for v in vids]
    return items


def _from_manifest(csv_path: Path, allow_missing: bool = False, group_column: str | None = None) -> list[VideoItem]:
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = {"path", "label"} - set(cols)
        if missing:
            raise DatasetError(f"{csv_path}: missing column(s) {sorted(missing)}; found {cols}. "
                               "A manifest needs path,label and may have split,group")
        group_column = group_column or "group"
        if group_column != "group" and group_column not in cols:
            raise DatasetError(f"{csv_path}: no column '{group_column}' to group clips by; columns: {cols}")
        items = []
        for line, row in enumerate(reader, start=2):
            path, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
            if not path or not label:
                raise DatasetError(f"{csv_path}:{line}: empty path or label")
            p = Path(path) if Path(path).is_absolute() else csv_path.parent / path
            if not allow_missing and not p.exists():
                raise DatasetError(f"{csv_path}:{line}: video not found: {p}")
            split = (row.get("split") or "").strip() or None
            if split is not None and split not in SPLITS:
                raise DatasetError(f"{csv_path}:{line}: split '{split}' is not one of {SPLITS}")
            try:
                region = Region.parse(row.get("region"))
            except UsageError as e:
                raise DatasetError(f"{csv_path}:{line}: {e}") from None
            items.append(VideoItem(str(p), label, split, (row.get(group_column) or "").strip() or None,
                                   where=f"{csv_path}:{line}", region=region))
    if not items:
        raise DatasetError(f"{csv_path}: manifest has no rows")
    return items


def dedupe(items: list[VideoItem]) -> tuple[list[VideoItem], list[str]]:
    """One item per clip (by its real path), so a clip listed twice is not scored or trained on twice.
    A repeat with the same label and split is dropped with a note; a repeat with another label (or split)
    is an error naming both places: which one is right is for the user to say."""
    first: dict[str, VideoItem] = {}
    out, notes = [], []
    for it in items:
        key = os.path.realpath(it.path)
        prev = first.setdefault(key, it)
        if prev is it:
            out.append(it)
            continue
        here, there = it.where or it.path, prev.where or prev.path
        if prev.label != it.label:
            raise DatasetError(f"{here}: {it.path} is labelled '{it.label}' here but '{prev.label}' at {there}; "
                               "a clip has one label: fix or remove one of the two")
        if prev.split != it.split:
            raise DatasetError(f"{here}: {it.path} is in split '{it.split}' here but '{prev.split}' at {there}; "
                               "a clip cannot be in two splits: fix or remove one of the two")
        notes.append(f"{here}: {it.path} is listed again (first at {there}); counted once")
    return out, notes


def scan(source: str | Path | list, allow_missing: bool = False,
         group_column: str | None = None) -> tuple[list[VideoItem], list[str]]:
    """discover(), plus a note for each clip listed more than once (kept once)."""
    if isinstance(source, (list, tuple)):  # several datasets, e.g. the synthetic set and a manifest of real clips
        if not source:
            raise DatasetError("no dataset given (an empty list)")
        parts = [scan(s, allow_missing, group_column) for s in source]
        items, notes = dedupe([it for part, _ in parts for it in part])
        return items, [n for _, part_notes in parts for n in part_notes] + notes
    src = Path(source)
    if not src.exists():
        raise DatasetError(f"{src}: no such folder or manifest. For the built-in synthetic data run "
                           f"`action-rec synth --out {src}` first")
    found = find_split_files(src)
    if found is not None:
        return dedupe(from_split_files(*found, allow_missing=allow_missing))
    if src.is_file():
        if src.suffix.lower() != ".csv":
            raise DatasetError(f"{src}: a dataset is a folder of class folders, a .csv manifest, or "
                               "UCF101/HMDB51 split files (classInd.txt, trainlist01.txt, testlist01.txt)")
        return dedupe(_from_manifest(src, allow_missing, group_column))
    split_dirs = [src / s for s in SPLITS if (src / s).is_dir()]
    if split_dirs:
        return dedupe([it for d in split_dirs for it in _from_class_folders(d, d.name)])
    return dedupe(_from_class_folders(src, None))


def discover(source: str | Path | list, allow_missing: bool = False,
             group_column: str | None = None) -> list[VideoItem]:
    """All labelled videos of a dataset folder, CSV manifest or split files, or of several (a list), each clip once.
    allow_missing: a listed video that does not exist is kept (to be reported as unreadable) instead of
    being an error. group_column: a manifest column whose value ties clips of one source together (source_repo)."""
    items, notes = scan(source, allow_missing, group_column)
    for note in notes:
        log.warning(note)
    return items


def with_regions(items: list[VideoItem], regions: dict | None) -> list[VideoItem]:
    """Each clip without a region of its own (a manifest's `region` column) gets the one `regions` gives its frame
    size ({'640x240': '0.5,0,1,1'} or a checkpoint's {(640, 240): Region}: UR Fall's colour half); a clip that cannot
    be opened is left as it is (its extraction reports it)."""
    by_size = regions_by_size(regions)
    if not by_size:
        return items
    out = []
    for it in items:
        if it.region is None:
            try:
                info = probe(it.path)
                it = replace(it, region=by_size.get((info.width, info.height)))
            except (VideoReadError, OSError):
                pass
        out.append(it)
    return out


def group_of(item: VideoItem, pattern: str | None) -> str:
    if item.group:
        return item.group
    stem = Path(item.path).stem
    if pattern:
        m = re.search(pattern, stem)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return stem


def subsample_sources(items: list[VideoItem], fraction: float, seed=0, pattern: str | None = None
                      ) -> list[VideoItem]:
    """About `fraction` of each class's clips without an explicit split, as whole sources (a source's clips of
    that class), at least one source per class; clips with an explicit split are all kept. Sources are taken in
    hash order, skipping one that would overshoot the fraction by more than it fills. Per class, because a source
    hash alone dropped every fall of a fold: realtrain's 61 falls come from few sources, one of them 37."""
    by_class: dict[str, dict[str, int]] = {}
    for it in items:
        if it.split is None:
            groups, g = by_class.setdefault(it.label, {}), group_of(it, pattern)
            groups[g] = groups.get(g, 0) + 1
    keep: set[tuple[str, str]] = set()
    for label, groups in by_class.items():
        target, n = fraction * sum(groups.values()), 0
        for g in sorted(groups, key=lambda g: (unit_hash(seed, g), g)):
            if n >= target:
                break
            if n + groups[g] - target <= target - n:
                keep.add((label, g))
                n += groups[g]
        if not n:  # every source alone overshoots: the smallest
            keep.add((label, min(groups, key=lambda g: (groups[g], unit_hash(seed, g), g))))
    return [it for it in items if it.split is not None or (it.label, group_of(it, pattern)) in keep]


def unit_hash(seed, key: str) -> float:
    """A stable number in [0, 1) for a key: the same on every machine and run."""
    h = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def stratified_groups(items: list[VideoItem], fractions: dict[str, float], seed=0,
                      group_pattern: str | None = None) -> dict[str, list[VideoItem]]:
    """Whole groups (sources) into parts of about the given fractions *of every class*: a greedy pass over the
    groups, largest first (ties in hash order), puts each into the part whose classes are furthest below
    their share. So a small validation part still gets falls, walks and runs, and no source straddles parts."""
    groups: dict[str, list[VideoItem]] = {}
    for it in items:
        groups.setdefault(group_of(it, group_pattern), []).append(it)
    totals: dict[str, int] = {}
    for it in items:
        totals[it.label] = totals.get(it.label, 0) + 1
    have = {part: dict.fromkeys(totals, 0) for part in fractions}
    out: dict[str, list[VideoItem]] = {part: [] for part in fractions}
    for key in sorted(groups, key=lambda g: (-len(groups[g]), unit_hash(seed, g))):
        members = groups[key]
        counts: dict[str, int] = {}
        for it in members:
            counts[it.label] = counts.get(it.label, 0) + 1

        def need(part):  # how far below its share this part is, for the classes of this group
            return sum(n * (fractions[part] * totals[c] - have[part][c]) / totals[c] for c, n in counts.items())

        part = max((p for p in fractions if fractions[p] > 0), key=lambda p: (need(p), fractions[p]))
        out[part] += members
        for c, n in counts.items():
            have[part][c] += n
    return out


def assign_splits(items: list[VideoItem], val_fraction: float = 0.15, test_fraction: float = 0.15,
                  seed: int = 0, group_pattern: str | None = None, stratify: bool = False,
                  folds: int = 1, fold: int = 0) -> dict[str, list[VideoItem]]:
    """Explicit splits win; the rest go by a hash of their group key, stable across runs and machines.

    stratify: whole groups are placed so that val and test get their share of every class (see
    stratified_groups) instead of by their hash alone. folds > 1: cross-validation over the clips without an
    explicit split: their groups are dealt into `folds` class-balanced folds, fold `fold` is the test split and the
    rest is split into train/val as usual; clips with an explicit split keep train/val but leave the test split,
    so a fold's test score is on held-out sources only."""
    out: dict[str, list[VideoItem]] = {s: [] for s in SPLITS}
    free = [it for it in items if it.split is None]
    for it in items:
        if it.split is not None and not (folds > 1 and it.split == "test"):
            out[it.split].append(it)
    if folds > 1:
        if not 0 <= fold < folds:
            raise DatasetError(f"fold must be in 0..{folds - 1}, got {fold}")
        parts = stratified_groups(free, {f"f{i}": 1 / folds for i in range(folds)}, seed, group_pattern)
        out["test"] += parts.pop(f"f{fold}")
        free, test_fraction = [it for part in parts.values() for it in part], 0.0
    if stratify:
        fractions = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
        for split, part in stratified_groups(free, fractions, seed, group_pattern).items():
            out[split] += part
        return out
    for it in free:
        u = unit_hash(seed, group_of(it, group_pattern))
        out["test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"].append(it)
    return out


def select_classes(items: list[VideoItem], classes: list[str] | None) -> tuple[list[str], list[VideoItem]]:
    """Class names (sorted unless given) and the items of those classes; a listed class with no
    videos is an error, labels outside an explicit list are dropped (e.g. `other`)."""
    present = sorted({it.label for it in items})
    if classes is None:
        return present, items
    unknown = [c for c in classes if c not in present]
    if unknown:
        raise DatasetError(f"class(es) {unknown} have no videos; labels found: {present}")
    return list(classes), [it for it in items if it.label in classes]
