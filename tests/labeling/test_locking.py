"""The outputs' lock: one holder at a time, named in the refusal, gone when the holder dies."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from action_rec.labeling.locking import OutputBusyError, OutputLock, lock_path


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    out = tmp_path / "labels.csv"
    first = OutputLock({"--out": out}, "action-rec label").acquire()
    with pytest.raises(OutputBusyError, match=rf"--out .*labels.csv is being written by another run "
                                              rf"\(action-rec label, pid {os.getpid()} on .*\); wait until it ends"):
        OutputLock({"--out": out}).acquire()
    # another spelling of the same file (a symlinked folder) is the same lock
    (tmp_path / "alias").symlink_to(tmp_path)
    with pytest.raises(OutputBusyError):
        OutputLock({"--out": tmp_path / "alias" / "labels.csv"}).acquire()
    first.release()
    with OutputLock({"--out": out}):
        pass


def test_all_or_nothing(tmp_path):
    held = OutputLock({"--jsonl": tmp_path / "t.jsonl"}).acquire()
    with pytest.raises(OutputBusyError, match="--jsonl"):
        OutputLock({"--out": tmp_path / "l.csv", "--jsonl": tmp_path / "t.jsonl"}).acquire()
    OutputLock({"--out": tmp_path / "l.csv"}).acquire().release()  # the --out lock was given back
    held.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "labels.csv"
    code = ("import sys, time; from action_rec.labeling.locking import OutputLock; "
            f"lock = OutputLock({{'--out': {str(out)!r}}}).acquire(); print('held', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(OutputBusyError, match=f"pid {p.pid}"):
            OutputLock({"--out": out}).acquire()
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        p.kill()
    OutputLock({"--out": out}).acquire().release()  # the kernel dropped it with the process
    assert lock_path(out) == tmp_path / ".labels.csv.lock"
