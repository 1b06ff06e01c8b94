"""Finding the videos to label: files, folders (recursively) and glob patterns, and what was passed over."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..inference.results import Job
from ..utils.errors import UsageError
from ..utils.pathcheck import describe_missing
from ..video.reader import is_video_file


class InputError(UsageError):
    """Nothing to label: a PATH that does not exist, or no videos under it."""


def _job(path: str, rel: str) -> Job:
    job = Job(os.path.abspath(path), rel)
    try:
        st = os.stat(path)
        job.size, job.mtime_ns = st.st_size, st.st_mtime_ns
    except OSError as e:
        job.error = f"{path}: cannot read it ({e.strerror or e})"
    return job


@dataclass
class Found:
    jobs: list[Job]
    skipped: list[tuple[str, str]]  # (path, why) of entries under a folder that look like videos but are not files


def _not_a_file(p: Path) -> str | None:
    """Why a folder entry named like a video is not labelled (None: it is a regular file)."""
    if p.is_file():
        return None
    if p.is_dir():
        return "folder named like a video"
    if p.is_symlink() or os.path.lexists(p):
        why = describe_missing(p)
        return why if why != "exists" else "not a regular file"
    return "not a regular file"


def discover_videos(paths: Iterable[str | os.PathLike], recursive: bool = True) -> Found:
    """find_videos, plus the entries under the folders that were passed over and why (a folder named
    *.mp4, a symlink loop, a broken symlink, a device or pipe), so the summary can say so."""
    jobs, seen, skipped = [], set(), []

    def add(path: str, rel: str):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            jobs.append(_job(path, rel))

    def walk(folder: Path):
        found = folder.rglob("*") if recursive else folder.glob("*")
        for p in sorted(found):
            rel = p.relative_to(folder)
            if any(part.startswith(".") for part in rel.parts) or not is_video_file(p):
                continue
            why = _not_a_file(p)
            if why is None:
                add(str(p), str(rel))
            else:  # (a folder's own videos are still found by the recursive search)
                skipped.append((str(p), why))

    for raw in paths:
        s = str(raw)
        p = Path(s)
        if p.is_dir():
            walk(p)
        elif p.is_file():
            add(s, p.name)
        elif glob.has_magic(s):
            for m in sorted(glob.glob(s, recursive=True)):
                if Path(m).is_dir():
                    walk(Path(m))
                elif is_video_file(m):
                    if (why := _not_a_file(Path(m))) is None:
                        add(m, Path(m).name)
                    else:
                        skipped.append((m, why))
        elif os.path.lexists(s):
            raise InputError(f"{s}: {describe_missing(s)}")
        else:
            raise InputError(f"{s}: no such file or folder")
    return Found(jobs, skipped)


def find_videos(paths: Iterable[str | os.PathLike], recursive: bool = True) -> list[Job]:
    """Files as given (whatever their extension), folders searched for video extensions (recursively by
    default, hidden files skipped), glob patterns expanded. Order kept, duplicates dropped."""
    return discover_videos(paths, recursive).jobs


def _skipped_text(skipped: list[tuple[str, str]], show: int = 3) -> str:
    """'folder named like a video (2): a.mp4, b.mp4; symlink loop (1): x.mp4'"""
    by: dict[str, list[str]] = {}
    for path, why in skipped:
        by.setdefault(why.split(" (")[0], []).append(path)
    parts = []
    for why, ps in by.items():
        names = ", ".join(ps[:show]) + (f", and {len(ps) - show} more" if len(ps) > show else "")
        parts.append(f"{why} ({len(ps)}): {names}")
    return "; ".join(parts)
