"""UCF101/HMDB51 split files, read as they are distributed, so those datasets need no conversion script.

UCF101 style (also used by many HMDB51 copies):
    classInd.txt      "1 ApplyEyeMakeup" lines
    trainlist01.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"  (class index, 1-based)
    testlist01.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"    (no index: the folder is the label)
HMDB51's own files: brush_hair_test_split1.txt with "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1" lines
(1 = train, 2 = test, 0 = not used in that split); the video is <root>/brush_hair/<name>.

`discover()` accepts the folder holding the lists (split 1), one list file (its split number), or a
folder with such a folder inside (the official archives unpack to UCF-101/ and ucfTrainTestlist/ side by
side). Listed paths are relative to the video root: the list folder, its parent, or a sibling folder,
whichever holds the first listed video.
"""

from __future__ import annotations

import re
from pathlib import Path

from .items import DatasetError, VideoItem

UCF_LIST = re.compile(r"^(train|test)list(\d+)\.txt$", re.IGNORECASE)
HMDB_LIST = re.compile(r"^(.+)_test_split(\d+)\.txt$", re.IGNORECASE)
HMDB_SPLIT = {"1": "train", "2": "test"}  # "0": not used in this split


def _lists_in(folder: Path) -> tuple[str, Path, int] | None:
    if (folder / "classInd.txt").is_file():
        return "ucf", folder, 1
    if any(HMDB_LIST.match(p.name) for p in folder.glob("*.txt")):
        return "hmdb", folder, 1
    return None


def find_split_files(src: Path) -> tuple[str, Path, int] | None:
    """(style, list folder, split number) when `src` is or holds split files, else None."""
    if src.is_file():
        m = UCF_LIST.match(src.name)
        if m or src.name.lower() == "classind.txt":
            if not (src.parent / "classInd.txt").is_file():
                raise DatasetError(f"{src}: UCF101-style list without classInd.txt beside it")
            return "ucf", src.parent, int(m.group(2)) if m else 1
        m = HMDB_LIST.match(src.name)
        return ("hmdb", src.parent, int(m.group(2))) if m else None
    if not src.is_dir():
        return None
    found = _lists_in(src)
    if found:
        return found
    for sub in sorted(d for d in src.iterdir() if d.is_dir() and not d.name.startswith(".")):
        found = _lists_in(sub)
        if found:
            return found
    return None


def _lines(path: Path):
    """(line number, stripped text) of the non-blank lines; tolerates Windows line ends."""
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                yield n, line.strip()


def _video_root(folder: Path, first: tuple[Path, int, str]) -> Path:
    list_file, line, rel = first
    candidates = [folder, folder.parent, *sorted(d for d in folder.parent.iterdir()
                                                 if d.is_dir() and d != folder)]
    for root in candidates:
        if (root / rel).is_file():
            return root
    raise DatasetError(f"{list_file}:{line}: video not found: {rel} "
                       f"(looked under {', '.join(map(str, candidates))})")


def _class_index(folder: Path) -> dict[int, str]:
    path = folder / "classInd.txt"
    classes = {}
    for n, text in _lines(path):
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{n}: expected '<index> <class name>', got '{text}'")
        classes[int(parts[0])] = parts[1]
    if not classes:
        raise DatasetError(f"{path}: no classes")
    return classes


def _ucf_entries(folder: Path, number: int) -> list[tuple[Path, int, str, str, str]]:
    """(list file, line, relative path, label, split) for both lists of one split."""
    classes = _class_index(folder)
    names = set(classes.values())
    entries = []
    for split in ("train", "test"):
        path = folder / f"{split}list{number:02d}.txt"
        if not path.is_file():
            raise DatasetError(f"{path}: not found (split {number} needs trainlist{number:02d}.txt and "
                         f"testlist{number:02d}.txt beside classInd.txt)")
        for n, text in _lines(path):
            parts = text.split()
            rel, folder_label = parts[0], Path(parts[0]).parts[0] if "/" in parts[0] else None
            if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
                raise DatasetError(f"{path}:{n}: expected '<class>/<video> [index]', got '{text}'")
            if len(parts) == 2:
                label = classes.get(int(parts[1]))
                if label is None:
                    raise DatasetError(f"{path}:{n}: class index {parts[1]} is not in classInd.txt")
                if folder_label is not None and folder_label != label:
                    raise DatasetError(f"{path}:{n}: class index {parts[1]} is '{label}' but the video is "
                                 f"in folder '{folder_label}'")
            else:
                if folder_label is None:
                    raise DatasetError(f"{path}:{n}: '{rel}' has neither a class folder nor a class index")
                if folder_label not in names:
                    raise DatasetError(f"{path}:{n}: label folder '{folder_label}' of '{rel}' is not a class "
                                 f"in classInd.txt")
                label = folder_label
            entries.append((path, n, rel, label, split))
    return entries


def _hmdb_entries(folder: Path, number: int) -> list[tuple[Path, int, str, str, str]]:
    entries = []
    files = sorted(p for p in folder.glob("*.txt")
                   if (m := HMDB_LIST.match(p.name)) and int(m.group(2)) == number)
    if not files:
        raise DatasetError(f"{folder}: no <class>_test_split{number}.txt files")
    for path in files:
        label = HMDB_LIST.match(path.name).group(1)
        for n, text in _lines(path):
            parts = text.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetError(f"{path}:{n}: expected '<video> 0|1|2', got '{text}'")
            if parts[1] in HMDB_SPLIT:
                entries.append((path, n, f"{label}/{parts[0]}", label, HMDB_SPLIT[parts[1]]))
    return entries


def from_split_files(style: str, folder: Path, number: int, allow_missing: bool = False) -> list[VideoItem]:
    """VideoItems with split train/test as the lists say; every listed video must exist (unless
    allow_missing: then a missing one is kept, to be reported as unreadable)."""
    entries = (_ucf_entries if style == "ucf" else _hmdb_entries)(folder, number)
    if not entries:
        raise DatasetError(f"{folder}: split {number} lists no videos")
    root = _video_root(folder, entries[0][:3])
    items = []
    for path, n, rel, label, split in entries:
        video = root / rel
        if not allow_missing and not video.is_file():
            raise DatasetError(f"{path}:{n}: video not found: {video}")
        items.append(VideoItem(str(video), label, split, where=f"{path}:{n}"))
    return items
