"""Atomic file writes shared by every stage that writes results: caches, CSVs, plots, ONNX files, checkpoints.

A file is written to a hidden temporary name next to its target and renamed onto it, so a reader never sees half
a file and a killed writer leaves at most a temporary file, which remove_stale_temps recognises and deletes.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
from pathlib import Path


def _create_temp(path: Path, suffix: str) -> str:
    """A new empty hidden file `.NAME.<8 random chars>SUFFIX` next to `path`. Created with mode 0666 so the
    umask decides, as for any file a tool writes (tempfile.mkstemp's 0600 would make labels.csv or an
    annotated copy unreadable to the other users of a shared folder)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


# Our temp names (and tempfile.mkstemp's, used before): "." + target name + "." + 8 of [a-z0-9_] + the
# target's suffix. Only files left by a killed writer match; removed by remove_stale_temps.
_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]+)?")


def is_temp_of(name: str, target: str | None = None) -> bool:
    """Whether file `name` is one of atomic_write's temporary files (of file `target`, if given)."""
    m = _TEMP.fullmatch(name)
    if not m or Path(m["name"]).suffix != (m["suffix"] or ""):
        return False
    return target is None or m["name"] == target


def remove_stale_temps(target: Path | None = None, folder: Path | None = None, suffix: str = "") -> list[Path]:
    """Delete the temporary files a killed atomic_write left: those of file `target` (next to it), or
    every one whose target ends with `suffix` under `folder` (recursively). Only call this while holding
    the outputs' lock: a running writer's temp file looks the same. Returns what was removed."""
    if target is not None:
        candidates = target.parent.glob(f".{glob.escape(target.name)}.*") if target.parent.is_dir() else []
        found = [p for p in candidates if is_temp_of(p.name, target.name)]
    else:
        found = [p for p in folder.rglob(f".*{suffix}") if is_temp_of(p.name) and p.name.endswith(suffix)]
    removed = []
    for p in found:
        try:
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
        except OSError:
            pass  # not ours to fight over: it stays, and nothing reads it
    return removed


def atomic_write(path: Path, write_fn, suffix: str = "") -> None:
    """Write via write_fn(temp_path) then rename onto `path` (atomic on POSIX, same folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path, suffix or path.suffix)
    try:
        write_fn(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
