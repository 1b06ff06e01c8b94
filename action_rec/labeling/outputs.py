"""Append-safe result files of `action-rec label`: labels.csv (one row per video) and an optional JSONL
timeline (one line per window), plus reading back what an earlier run already did.

Crash safety without a database: each video is committed with one write of complete lines, flushed and
fsynced - its JSONL lines first, then its CSV row, which is the commit mark. A run killed at any instant
leaves at worst a partial last line (cut off on the next start) and JSONL lines of a video that has no
CSV row yet (dropped on the next start, and the video labelled again). Rows carry the file's size and
mtime, so a re-run skips exactly the videos that are done and unchanged.

One run at a time writes a set of outputs (locking.py). Files that two runs did write at once (before
the lock existed, or by another tool) hold a video's row or windows twice: the next start keeps one of
each and says so in `notes`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

from ..utils.errors import UsageError
from ..utils.io import atomic_write, remove_stale_temps

CSV_HEAD = ["path", "status", "label", "confidence"]
CSV_TAIL = ["duration_s", "windows", "fall_events", "first_fall_s", "error", "size", "mtime_ns"]


class OutputError(UsageError):
    """An output file that cannot be appended to (e.g. written for other classes)."""


def columns(class_names: list[str]) -> list[str]:
    return CSV_HEAD + [f"p_{c}" for c in class_names] + CSV_TAIL


def repair(path: Path) -> None:
    """Cut a partial last line (left by a writer killed mid-line, or a full disk)."""
    with open(path, "r+b") as f:
        pos = f.seek(0, os.SEEK_END)
        f.seek(max(0, pos - 1))
        if pos == 0 or f.read(1) == b"\n":
            return
        while pos > 0:
            step = min(1 << 16, pos)
            pos -= step
            f.seek(pos)
            i = f.read(step).rfind(b"\n")
            if i >= 0:
                pos += i + 1
                break
        f.truncate(pos)
        f.flush()
        os.fsync(f.fileno())


def _num(v, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def result_row(r, class_names: list[str]) -> dict:
    """CSV row (all strings) of a labelling result (labeling.VideoResult or anything with its fields)."""
    ok = r.status == "ok"
    row = {"path": r.path, "status": r.status, "label": r.label or "",
           "confidence": _num(r.confidence, ".6f")}
    row.update({f"p_{c}": _num(r.probs.get(c), ".6f") if ok else "" for c in class_names})
    row.update({"duration_s": _num(r.duration_s, ".3f"), "windows": str(r.windows) if ok else "",
                "fall_events": _events(r) if ok else "",
                "first_fall_s": _num(r.events[0][0], ".3f") if ok and r.events else "",
                "error": " ".join((r.error or "").split()), "size": str(r.size), "mtime_ns": str(r.mtime_ns)})
    return row


def _events(r) -> str:
    """The number of fall events; per-track results (several people): 'TRACK:START-END;...' instead."""
    if getattr(r, "tracks", None) is not None:
        from ..inference.tracks import events_text

        return events_text(r.tracks)
    return str(len(r.events))


def window_lines(r, class_names: list[str]) -> str:
    """JSONL lines, one per window: path, start_s, end_s, label (the window's top class), probabilities; per-track
    results: one line per track and window, with `track` (its id) and `box` (x1, y1, x2, y2 in pixels)."""
    if r.status == "ok" and getattr(r, "tracks", None) is not None:
        return "".join(_track_lines(r, t, class_names) for t in r.tracks)
    if r.status != "ok" or r.window_probs is None:
        return ""
    out = []
    for s, e, p in zip(r.window_starts_s, r.window_ends_s, r.window_probs.tolist()):
        out.append(json.dumps({"path": r.path, "start_s": round(s, 3), "end_s": round(e, 3),
                               "label": class_names[max(range(len(p)), key=p.__getitem__)],
                               "probs": {c: round(v, 6) for c, v in zip(class_names, p)}}) + "\n")
    return "".join(out)


def _track_lines(r, t, class_names: list[str]) -> str:
    out = []
    for s, e, p, b in zip(t.window_starts_s, t.window_ends_s, t.window_probs.tolist(), t.window_boxes.tolist()):
        out.append(json.dumps({"path": r.path, "track": t.id, "start_s": round(s, 3), "end_s": round(e, 3),
                               "label": class_names[max(range(len(p)), key=p.__getitem__)],
                               "probs": {c: round(v, 6) for c, v in zip(class_names, p)},
                               "box": [round(v, 1) for v in b]}) + "\n")
    return "".join(out)


class _Appender:
    """One write() of complete lines, then flush and fsync: the file never holds half a line we wrote."""

    def __init__(self, path: Path):
        self._f = open(path, "ab")

    def write(self, text: str) -> None:
        if text:
            self._f.write(text.encode("utf-8"))
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def _csv_line(cols: list[str], row: dict) -> str:
    buf = io.StringIO()
    csv.DictWriter(buf, cols, lineterminator="\n", extrasaction="ignore").writerow(row)
    return buf.getvalue()


class Outputs:
    """labels.csv (+ JSONL timeline): `plan()` what is left to do, `append()` each result as it comes."""

    def __init__(self, csv_path, class_names: list[str], jsonl_path=None):
        self.csv_path = Path(csv_path)
        self.jsonl_path = Path(jsonl_path) if jsonl_path else None
        self.class_names = list(class_names)
        self.columns = columns(self.class_names)
        self.rows: dict[str, dict] = {}        # path -> its (last) row in the CSV
        self.jsonl_count: Counter = Counter()  # path -> distinct JSONL windows
        self.notes: list[str] = []             # repairs made on loading, for the user
        self._csv_dupes = self._jsonl_dupes = 0
        self._csv = self._jsonl = None

    # ------------------------------------------------------------------------------------- reading
    def load(self, overwrite: bool = False) -> None:
        self.rows.clear()
        self.jsonl_count.clear()
        self._csv_dupes = self._jsonl_dupes = 0
        if self.csv_path.is_file() and self.csv_path.stat().st_size > 0:
            repair(self.csv_path)
            with open(self.csv_path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames != self.columns:
                    if not overwrite:
                        raise OutputError(
                            f"{self.csv_path} exists with other columns ({', '.join(reader.fieldnames or [])}): "
                            "it was written for other classes or by another tool. Choose another --out, or "
                            "pass --overwrite to replace it")
                    return  # replaced as a whole by plan()
                for row in reader:
                    if row.get("path"):
                        self._csv_dupes += row["path"] in self.rows
                        self.rows[row["path"]] = row  # the last row of a video is its latest result
        if self.jsonl_path and self.jsonl_path.is_file():
            repair(self.jsonl_path)
            seen = set()
            for key in self._jsonl_keys(self.jsonl_path):
                if key is None:
                    continue
                if key in seen:
                    self._jsonl_dupes += 1
                else:
                    seen.add(key)
                    self.jsonl_count[key[0]] += 1

    @staticmethod
    def _jsonl_key(line: str):
        """(path, start_s, end_s[, track]) of a timeline line: a window's identity; None for a garbage line."""
        try:
            d = json.loads(line)
            return (d["path"], d.get("start_s"), d.get("end_s")) + ((d["track"],) if "track" in d else ())
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    @classmethod
    def _jsonl_keys(cls, path: Path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                yield cls._jsonl_key(line)

    def is_done(self, job) -> bool:
        row = self.rows.get(job.path)
        # With a timeline, the video's windows must all be there, once each (not a partial or mixed set).
        return (row is not None and row["status"] == "ok" and row["size"] == str(job.size)
                and row["mtime_ns"] == str(job.mtime_ns)
                and (self.jsonl_path is None or str(self.jsonl_count[job.path]) == row["windows"]))

    # ------------------------------------------------------------------------------------ planning
    def plan(self, jobs, overwrite: bool = False, complete=None) -> tuple[list, list]:
        """-> (jobs to label, jobs already done). Rows of the jobs to label (stale, failed, or all with
        overwrite), duplicated rows and windows, and orphan JSONL lines are dropped first, so the files
        never hold a video twice. `complete(job)` may demand more than a row (e.g. the annotated copy
        exists). Call it while holding the outputs' lock (it removes stale temporary files)."""
        for target in (self.csv_path, self.jsonl_path):
            if target is not None:
                remove_stale_temps(target)  # of a rewrite killed midway
        self.load(overwrite)
        todo, done = [], []
        for job in jobs:
            ok = not overwrite and self.is_done(job) and (complete is None or complete(job))
            (done if ok else todo).append(job)
        drop = {j.path for j in todo if j.path in self.rows}
        for path in drop:
            del self.rows[path]
        fresh = not self.csv_path.is_file() or self.csv_path.stat().st_size == 0 or self._header_differs()
        if drop or fresh or self._csv_dupes:
            self._rewrite_csv()
        if self._csv_dupes:
            self.notes.append(f"{self.csv_path} held {self._csv_dupes} duplicate row(s) (two runs writing it at "
                              "once?): kept the last row of each video")
        if self.jsonl_path:
            keep = {p for p, r in self.rows.items() if r["status"] == "ok"}
            if self._jsonl_dupes:
                self.notes.append(f"{self.jsonl_path} held {self._jsonl_dupes} duplicate window line(s): "
                                  "kept one of each")
            if set(self.jsonl_count) - keep or self._jsonl_dupes:
                self._rewrite_jsonl(keep)
        self._csv = _Appender(self.csv_path)
        self._jsonl = _Appender(self.jsonl_path) if self.jsonl_path else None
        return todo, done

    def _header_differs(self) -> bool:
        with open(self.csv_path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), None) != self.columns

    def _rewrite_csv(self) -> None:
        def write(tmp):
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, self.columns, lineterminator="\n", extrasaction="ignore")
                w.writeheader()
                w.writerows(self.rows.values())
        atomic_write(self.csv_path, write)

    def _rewrite_jsonl(self, keep: set[str]) -> None:
        src = self.jsonl_path

        def write(tmp):
            seen = set()
            with open(src, encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
                for line in fin:
                    key = self._jsonl_key(line)
                    if key is not None and key[0] in keep and key not in seen:
                        seen.add(key)
                        fout.write(line)
        atomic_write(src, write)
        self.jsonl_count = Counter({p: n for p, n in self.jsonl_count.items() if p in keep})
        self._jsonl_dupes = 0

    # ------------------------------------------------------------------------------------- writing
    def append(self, result) -> None:
        self.append_raw(result_row(result, self.class_names), window_lines(result, self.class_names))

    def append_raw(self, row: dict, lines: str = "") -> None:
        if self._csv is None:
            raise RuntimeError("call plan() before append()")
        if self._jsonl is not None and lines:
            self._jsonl.write(lines)  # timeline first: the CSV row commits the video
            self.jsonl_count[row["path"]] += lines.count("\n")
        self._csv.write(_csv_line(self.columns, row))
        self.rows[row["path"]] = row

    def absorb(self, part: Outputs) -> int:
        """Append the results of another writer's files (a rank's part files) that are not here yet, then
        delete them. Returns the number of rows added. Duplicates (a video done by two ranks) count once."""
        part.load()
        lines: dict[str, list[str]] = {}
        if part.jsonl_path and part.jsonl_path.is_file():
            with open(part.jsonl_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        lines.setdefault(json.loads(line)["path"], []).append(line)
                    except (ValueError, KeyError, TypeError):
                        pass
        added = 0
        for path, row in part.rows.items():
            mine = self.rows.get(path)
            if mine is not None and (mine["status"] == "ok" or row["status"] != "ok"):
                continue
            self.append_raw(row, "".join(lines.get(path, [])))
            added += 1
        part.close()
        for p in (part.csv_path, part.jsonl_path):
            if p is not None:
                p.unlink(missing_ok=True)
        return added

    def part(self, rank: int) -> Outputs:
        """This output's part files for one rank of a distributed run (merged by absorb)."""
        def name(p: Path) -> Path:
            return p.with_name(f"{p.name}.rank{rank}.part")
        return Outputs(name(self.csv_path), self.class_names, self.jsonl_path and name(self.jsonl_path))

    def leftover_parts(self) -> list[Outputs]:
        ranks = sorted({int(p.name.rsplit(".rank", 1)[1].split(".")[0])
                        for p in self.csv_path.parent.glob(f"{self.csv_path.name}.rank*.part")})
        return [self.part(r) for r in ranks]

    def merge_leftovers(self) -> int:
        """Fold in part files an interrupted distributed run left behind; returns rows added."""
        parts = self.leftover_parts()
        if not parts:
            return 0
        self.plan([])
        try:
            return sum(self.absorb(p) for p in parts)
        finally:
            self.close()

    def close(self) -> None:
        for a in (self._csv, self._jsonl):
            if a is not None:
                a.close()
        self._csv = self._jsonl = None
