"""scripts/bench_pose.py runs end to end: a time per runtime and thread count, and the runtimes' agreement."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from action_rec.backbones import find_fall_detection_checkpoint
from action_rec.backbones.openvino_core import openvino_available
from action_rec.backbones.pose import find_pose_model

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_pose.py"


@pytest.mark.skipif(find_fall_detection_checkpoint() is None or find_pose_model() is None,
                    reason="the offline person detector or the pose model is not installed")
def test_bench_pose_times_each_runtime_and_compares_their_rows():
    pytest.importorskip("ai_edge_litert")
    r = subprocess.run([sys.executable, str(SCRIPT), "--frames", "3", "--threads", "1"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"^3 person crops", r.stdout, re.M), r.stdout
    rows = re.findall(r"^\s*(litert|openvino), 1 thread : +([\d.]+) ms a crop read together, +([\d.]+) one at a "
                      r"time \((\d+) poses; rows apart by ([\d.e+-]+)\)$", r.stdout, re.M)
    assert [x[0] for x in rows] == ["litert"] + (["openvino"] if openvino_available() else [])
    assert all(float(together) > 0 and float(alone) > 0 for _, together, alone, _, _ in rows)
    assert all(float(apart) < 1e-5 for *_, apart in rows)  # a crop's row is the same read with others or alone
    if openvino_available():
        assert rows[0][3] == rows[1][3]  # the same number of confident poses
        d = re.search(r"largest row difference ([\d.]+), rows differing by more than 0.01: (\d+) of 3", r.stdout)
        assert d and float(d[1]) < 1e-3 and d[2] == "0", r.stdout
