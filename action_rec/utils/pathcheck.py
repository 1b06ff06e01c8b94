"""Checks on the paths a command will write, done before any work so a run never ends (or starts
losing data) on an output it could have refused at once: a file where a folder is expected and vice
versa, two outputs on one path, or an output that is one of the inputs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import UsageError


def os_reason(e: OSError) -> str:
    """A short human reason for an OSError (a symlink loop is not 'no such file')."""
    if e.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if e.errno == errno.ENOENT:
        return "no such file"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (e.strerror or str(e)).lower()


def describe_missing(path: str | os.PathLike) -> str:
    """Why `path` cannot be opened: 'no such file', 'symlink loop ...', 'broken symlink ...', ..."""
    p = str(path)
    try:
        os.stat(p)
    except OSError as e:
        if e.errno == errno.ENOENT and os.path.islink(p):
            return f"broken symlink (to {os.readlink(p)}, which does not exist)"
        return os_reason(e)
    return "exists"


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path, flag: str) -> None:
    anc = _nearest_existing(path.parent)
    if not anc.is_dir():
        raise UsageError(f"{flag} {path}: {anc} is {'a file' if anc.exists() else describe_missing(anc)}, "
                         "not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: cannot write in {anc} (permission denied)")


def check_file_target(path: str | os.PathLike | None, flag: str) -> None:
    """`path` can be created or replaced as a file."""
    if not path:
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {p}: is a folder; give a file name, e.g. {p / _example(flag)}")
    if os.path.lexists(p) and not p.exists():
        raise UsageError(f"{flag} {p}: {describe_missing(p)}")
    if p.exists() and not p.is_file():
        raise UsageError(f"{flag} {p}: exists and is not a regular file")
    _check_parent(p, flag)


def check_folder_target(path: str | os.PathLike | None, flag: str) -> None:
    """`path` is a folder, or can be created as one."""
    if not path:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {p}: is a file; give a folder (it is created if missing)")
    if os.path.lexists(p) and not p.exists():
        raise UsageError(f"{flag} {p}: {describe_missing(p)}")
    if not p.exists():
        _check_parent(p, flag)
    elif not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {p}: cannot write in it (permission denied)")


def _example(flag: str) -> str:
    return {"--out": "labels.csv", "--jsonl": "timeline.jsonl", "--save": "out.mp4",
            "--alert-file": "alerts.jsonl"}.get(flag, "out")


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: equal once resolved (symlinks, '..'), or one inode (hard links)."""
    return Path(a).resolve() == Path(b).resolve() or _same_inode(a, b)


def check_distinct(outputs: dict[str, str | os.PathLike | None]) -> None:
    """No two outputs ({"--out": path, "--jsonl": path, ...}) resolve to the same path."""
    given = [(flag, p) for flag, p in outputs.items() if p]
    for i, (fa, a) in enumerate(given):
        for fb, b in given[i + 1:]:
            if same_path(a, b):
                raise UsageError(f"{fa} {a} and {fb} {b} are the same path; each output needs its own")


def check_not_input(outputs: dict[str, str | os.PathLike | None], inputs) -> None:
    """No output is one of the input files (it would be truncated or replaced)."""
    given = [(flag, p, Path(p).resolve(), os.path.exists(p)) for flag, p in outputs.items() if p]
    if not given:
        return
    for src in inputs:
        rs = Path(src).resolve()
        for flag, p, rp, exists in given:
            if rp == rs or (exists and _same_inode(p, src)):
                raise UsageError(f"{flag} {p} is one of the input videos ({src}); writing it would destroy "
                                 "the input")


def _same_inode(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
