"""Where live results go: JSON lines on stdout, alert hooks (a command, a file), an annotated recording."""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from ..inference.stream import Update
from ..utils.errors import UsageError


class SinkError(UsageError):
    """A bad --alert-cmd / --alert-file / --save setting, found before the stream starts."""


class LiveOutputs:
    """Fans model updates and fall events out to the sinks the user asked for. Thread-safe."""

    def __init__(self, class_names: list[str], json_out=None, alert_cmd: str | None = None,
                 alert_file: str | os.PathLike | None = None, log=sys.stderr):
        self.class_names, self.json_out, self.log = class_names, json_out, log
        self._lock = threading.Lock()
        self._children: list[subprocess.Popen] = []
        self.n_events = 0
        self.cmd = None
        if alert_cmd:
            # shlex + shell=False: the command is run as given, never evaluated by a shell.
            self.cmd = shlex.split(alert_cmd)
            if not self.cmd or not shutil.which(self.cmd[0]):
                raise SinkError(f"--alert-cmd: {self.cmd[0] if self.cmd else '(empty)'}: command not found")
        self.alert_file = Path(alert_file) if alert_file else None
        if self.alert_file:
            try:  # fail now, not at the first fall
                os.close(os.open(self.alert_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
            except OSError as e:
                raise SinkError(f"--alert-file: cannot write {self.alert_file}: {e.strerror}") from e

    def _line(self, record: dict) -> None:
        if self.json_out is not None:
            with self._lock:
                self.json_out.write(json.dumps(record) + "\n")
                self.json_out.flush()

    def update(self, u: Update) -> None:
        rec = {"type": "update", "t": round(u.end_s, 3), "time": round(time.time(), 3),
               "window_s": [round(u.start_s, 3), round(u.end_s, 3)], "label": u.label,
               "confidence": round(u.confidence, 6),
               "probs": dict(zip(self.class_names, np.round(u.probs.astype(float), 6).tolist())),
               "latency_ms": None if u.latency_s is None else round(u.latency_s * 1000, 1)}
        if u.track is not None:  # several people: whose window, and where they are (x1, y1, x2, y2)
            rec.update(track=u.track, box=None if u.box is None else [round(float(v), 1) for v in u.box])
        self._line(rec)
        if u.event:
            self.event(u.event)

    def event(self, ev: dict) -> None:
        rec = {"type": "event", **{k: round(v, 3) if isinstance(v, float) else v for k, v in ev.items()},
               "time": round(time.time(), 3)}
        self.n_events += 1
        self._line(rec)
        what = "FALL ALERT" if rec["event"] == "fall_start" else "fall alert over"
        print(f"[t={rec['t']:.1f}s] {what} " + json.dumps({k: v for k, v in rec.items() if k not in
                                                           ("type", "event", "t", "time")}), file=self.log)
        line = (json.dumps(rec) + "\n").encode()
        if self.alert_file:
            # One write() of a whole line to an O_APPEND file: lines never interleave or tear.
            fd = os.open(self.alert_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        if self.cmd:
            self._spawn(line)

    def _spawn(self, line: bytes) -> None:
        self._children = [c for c in self._children if c.poll() is None]
        env = {**os.environ, "ACTION_REC_EVENT": line.decode().strip()}
        try:  # its stdout must not mix into our JSON lines: send it to our stderr
            out = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            out = subprocess.DEVNULL
        try:  # never blocks the stream: the command runs on its own
            child = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=out, env=env, start_new_session=True)
        except OSError as e:
            print(f"--alert-cmd failed to start: {e}", file=self.log)
            return
        try:
            child.stdin.write(line)  # one small line: fits the pipe buffer, does not wait for the reader
            child.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        self._children.append(child)

    def close(self, wait_s: float = 2.0) -> None:
        """Give alert commands still running a moment to finish (they are not killed)."""
        deadline = time.monotonic() + wait_s
        for c in self._children:
            try:
                c.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"--alert-cmd still running (pid {c.pid}); left to finish on its own", file=self.log)


_FOURCC = {".avi": "MJPG"}  # everything else (.mp4, .mov, .m4v, .mkv): MPEG-4 part 2, in every OpenCV build


class Recorder:
    """The annotated video. Frames go to a hidden temp file next to `path`, renamed onto it when closed,
    so `path` is always a complete, playable file (or absent). Everything that can be checked about the
    target is checked on construction, before the stream starts; if the final rename still fails, close()
    raises SinkError saying where the recording is."""

    def __init__(self, path: str | os.PathLike, fps: float):
        from ..utils.pathcheck import check_file_target, os_reason

        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".mov", ".m4v", ".mkv", ".avi"):
            raise SinkError(f"--save {self.path}: use a .mp4, .avi, .mov, .m4v or .mkv file name")
        if not self.path.parent.is_dir() and not os.path.lexists(self.path.parent):
            raise SinkError(f"--save {self.path}: folder {self.path.parent} does not exist")
        try:
            check_file_target(self.path, "--save")
        except UsageError as e:
            raise SinkError(str(e)) from None
        self.fps = fps if fps > 0 else 30.0
        # Created now: the file system's own answer (read-only, /proc, quota) instead of OpenCV's "cannot
        # write this format" after the stream started. A partial file of an earlier run that could not be
        # renamed is someone's recording: kept, this one takes the next name.
        for i in range(1, 1000):
            self.tmp = self.path.with_name(f".{self.path.stem}.partial{i if i > 1 else ''}{self.path.suffix}")
            try:
                os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
            except OSError as e:
                why = "it accepts no new files" if e.errno == errno.ENOENT else os_reason(e)
                raise SinkError(f"--save {self.path}: cannot write in {self.path.parent} ({why})") from None
        else:
            raise SinkError(f"--save {self.path}: too many partial recordings next to it; remove them")
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        if self.writer is None:
            h, w = bgr.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC.get(self.path.suffix.lower(), "mp4v"))
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise SinkError(f"--save {self.path}: OpenCV cannot write this format here")
        self.writer.write(bgr)
        self.frames += 1

    def discard(self) -> None:
        """Nothing was recorded (the stream never started): remove the empty temp file."""
        if self.writer is None:
            self.tmp.unlink(missing_ok=True)

    def close(self) -> Path | None:
        if self.writer is None:
            self.tmp.unlink(missing_ok=True)
            return None
        self.writer.release()
        self.writer = None
        if self.frames:
            try:
                os.replace(self.tmp, self.path)
            except OSError as e:
                raise SinkError(f"--save {self.path}: the recording could not be renamed into place "
                                f"({e.strerror or e}); it is complete in {self.tmp}") from e
            return self.path
        self.tmp.unlink(missing_ok=True)
        return None
