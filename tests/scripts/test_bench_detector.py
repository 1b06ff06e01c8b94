"""scripts/bench_detector.py runs end to end: a time per runtime and thread count, and the runtimes' agreement."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from action_rec.backbones import find_fall_detection_checkpoint
from action_rec.features.detector import openvino_available

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_detector.py"


@pytest.mark.skipif(find_fall_detection_checkpoint() is None, reason="the offline person detector is not installed")
def test_bench_detector_times_each_runtime_and_compares_their_boxes():
    r = subprocess.run([sys.executable, str(SCRIPT), "--frames", "4", "--batch", "2", "--threads", "1",
                        "--size", "160"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = re.findall(r"^\s*(torch|openvino), 1 thread : +([\d.]+) ms a frame \((\d+) boxes\)$", r.stdout, re.M)
    assert [x[0] for x in rows] == ["torch"] + (["openvino"] if openvino_available() else [])
    assert all(float(ms) > 0 for _, ms, _ in rows)
    if openvino_available():
        assert rows[0][2] == rows[1][2]  # the same number of boxes
        px = re.search(r"largest box difference ([\d.]+) px, score difference ([\d.]+)", r.stdout)
        assert px and float(px[1]) < 0.05 and float(px[2]) < 1e-3, r.stdout
