import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from action_rec.labeling.outputs import OutputError, Outputs, columns, repair

NAMES = ["falling", "walking"]


def job(path, size=10, mtime=5):
    return SimpleNamespace(path=path, size=size, mtime_ns=mtime, rel=path)


def result(path, status="ok", windows=2, size=10, mtime=5):
    ok = status == "ok"
    wp = np.tile([0.25, 0.75], (windows, 1)) if ok else None
    return SimpleNamespace(path=path, status=status, label="walking" if ok else None,
                           confidence=0.75 if ok else None, probs={"falling": 0.25, "walking": 0.75} if ok else {},
                           duration_s=2.0 if ok else None, windows=windows if ok else 0,
                           window_starts_s=[0.5 * i for i in range(windows)],
                           window_ends_s=[0.5 * i + 1 for i in range(windows)], window_probs=wp,
                           events=[(0.5, 1.5)] if ok else [], error="" if ok else "bad, \"really\"\nbad",
                           size=size, mtime_ns=mtime)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_repair_cuts_only_a_partial_last_line(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"h\n1\n2,partial")
    repair(p)
    assert p.read_bytes() == b"h\n1\n"
    repair(p)
    assert p.read_bytes() == b"h\n1\n"
    p.write_bytes(b"no newline at all")
    repair(p)
    assert p.read_bytes() == b""


def test_append_plan_and_resume(tmp_path):
    out, tl = tmp_path / "l.csv", tmp_path / "l.jsonl"
    o = Outputs(out, NAMES, tl)
    todo, done = o.plan([job("a"), job("b"), job("c")])
    assert [j.path for j in todo] == ["a", "b", "c"] and done == []
    o.append(result("a"))
    o.append(result("b", status="error"))
    o.close()
    got = rows(out)
    assert list(got[0]) == columns(NAMES)
    assert got[0]["p_walking"] == "0.750000" and got[0]["fall_events"] == "1" and got[0]["first_fall_s"] == "0.500"
    assert got[1]["status"] == "error" and got[1]["error"] == 'bad, "really" bad'  # one line, quoted
    lines = [json.loads(x) for x in tl.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["label"] == "walking" and lines[1]["start_s"] == 0.5
    # a: done; b: failed -> retried and its row dropped; c: new; a changed on disk -> redone
    o = Outputs(out, NAMES, tl)
    todo, done = o.plan([job("a"), job("b"), job("c")])
    assert [j.path for j in todo] == ["b", "c"] and [j.path for j in done] == ["a"]
    assert [r["path"] for r in rows(out)] == ["a"]
    o.close()
    todo, _ = Outputs(out, NAMES, tl).plan([job("a", mtime=6)])
    assert [j.path for j in todo] == ["a"] and rows(out) == [] and tl.read_text() == ""


def test_orphan_timeline_lines_and_partial_lines_are_dropped(tmp_path):
    out, tl = tmp_path / "l.csv", tmp_path / "l.jsonl"
    o = Outputs(out, NAMES, tl)
    o.plan([job("a"), job("b")])
    o.append(result("a"))
    o.close()
    # a killed run: b's timeline written, its CSV row not; then half a line in each file
    with open(tl, "a") as f:
        f.write(json.dumps({"path": "b", "start_s": 0}) + "\n" + '{"path": "b", "sta')
    with open(out, "a") as f:
        f.write("b,ok,walk")
    o = Outputs(out, NAMES, tl)
    todo, done = o.plan([job("a"), job("b")])
    assert [j.path for j in todo] == ["b"] and [j.path for j in done] == ["a"]
    assert [r["path"] for r in rows(out)] == ["a"]
    assert {json.loads(x)["path"] for x in tl.read_text().splitlines()} == {"a"}
    # a requested timeline that is missing makes a done video redo
    todo, _ = Outputs(out, NAMES, tmp_path / "other.jsonl").plan([job("a")])
    assert [j.path for j in todo] == ["a"]


def test_other_columns_are_refused_unless_overwrite(tmp_path):
    out = tmp_path / "l.csv"
    out.write_text("path,label\nx,y\n")
    with pytest.raises(OutputError, match="other columns"):
        Outputs(out, NAMES).plan([job("a")])
    assert out.read_text() == "path,label\nx,y\n"
    o = Outputs(out, NAMES)
    o.plan([job("a")], overwrite=True)
    o.close()
    assert out.read_text().splitlines() == [",".join(columns(NAMES))]


def test_absorb_parts_without_duplicates(tmp_path):
    main = Outputs(tmp_path / "l.csv", NAMES, tmp_path / "l.jsonl")
    for rank, paths in ((0, ["a", "b"]), (1, ["b", "c"])):  # b done by both ranks
        part = main.part(rank)
        part.plan([])
        for p in paths:
            part.append(result(p))
        part.close()
    assert len(main.leftover_parts()) == 2
    assert main.merge_leftovers() == 3
    assert [r["path"] for r in rows(tmp_path / "l.csv")] == ["a", "b", "c"]
    assert len((tmp_path / "l.jsonl").read_text().splitlines()) == 6
    assert main.leftover_parts() == [] and sorted(p.name for p in tmp_path.iterdir()) == ["l.csv", "l.jsonl"]


def test_rows_and_windows_written_twice_are_repaired_on_resume(tmp_path):
    """What two runs appending to one output at once left behind (before the lock): every row and window
    twice, interleaved. The next start keeps one of each, says so, and skips the videos as done."""
    out, tl = tmp_path / "l.csv", tmp_path / "l.jsonl"
    o = Outputs(out, NAMES, tl)
    o.plan([job("a"), job("b")])
    for p in ("a", "b"):
        o.append(result(p, windows=3))
    o.close()
    head, *body = out.read_text().splitlines(keepends=True)
    out.write_text(head + "".join(x for line in body for x in (line, line)))
    lines = tl.read_text().splitlines(keepends=True)
    tl.write_text("".join(lines[:4] + lines + lines[4:]))
    assert len(rows(out)) == 4 and len(tl.read_text().splitlines()) == 12
    o = Outputs(out, NAMES, tl)
    todo, done = o.plan([job("a"), job("b")])
    o.close()
    assert todo == [] and [j.path for j in done] == ["a", "b"]
    assert [r["path"] for r in rows(out)] == ["a", "b"]
    keys = [(d["path"], d["start_s"]) for d in map(json.loads, tl.read_text().splitlines())]
    assert len(keys) == len(set(keys)) == 6
    assert any("2 duplicate row" in n for n in o.notes) and any("6 duplicate window" in n for n in o.notes)
    # a video whose timeline does not match its row (a window missing) is labelled again, not trusted
    tl.write_text("".join(tl.read_text().splitlines(keepends=True)[1:]))
    todo, _ = Outputs(out, NAMES, tl).plan([job("a"), job("b")])
    assert [j.path for j in todo] == ["a"]


def test_temp_files_of_a_killed_rewrite_are_removed(tmp_path):
    out, tl = tmp_path / "l.csv", tmp_path / "l.jsonl"
    stale = [tmp_path / ".l.csv.q_ubuvge.csv", tmp_path / ".l.jsonl.a1b2c3d4.jsonl"]
    keep = [tmp_path / ".other.csv.q_ubuvge.csv", tmp_path / "l.csv.bak", tmp_path / ".l.csv.lock"]
    for p in stale + keep:
        p.write_text("x\n")
    Outputs(out, NAMES, tl).plan([job("a")])
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
