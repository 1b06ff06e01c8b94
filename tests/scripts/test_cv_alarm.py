"""scripts/cv_alarm.py on a generated cv.json: the AUC, the chosen rule per target, and the clips behind false alerts."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cv_alarm.py"


def test_cv_alarm_reports_auc_rules_and_the_clips_that_raise_false_alerts(tmp_path):
    rng = np.random.default_rng(0)
    seqs = []
    for i in range(10):  # falls: a run of high windows in one of two tracks
        p = np.full(12, 0.1)
        p[4:8] = 0.9
        seqs.append({"path": f"fall{i}.mp4", "label": "falling", "duration_s": 10.0,
                     "p_fall": [rng.uniform(0, 0.2, 12).round(3).tolist(), p.tolist()]})
    for i in range(10):  # walkers: low throughout, but one clip with two bursts
        p = rng.uniform(0, 0.3, 12)
        if i == 3:
            p[2:4] = p[7:9] = 0.85
        seqs.append({"path": f"walk{i}.mp4", "label": "walking", "duration_s": 36.0, "p_fall": [p.round(3).tolist()]})
    (tmp_path / "cv.json").write_text(json.dumps({"held_out_tracks": seqs}))
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cv.json"), "--targets", "5,500", "--boot", "20",
                        "--rule", "0.80,2"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "20 held-out clips: 10 falls, 10 others (6.0 min; one false alert = 10.0 /h)" in out
    assert float(re.search(r"per-track fall AUC ([\d.]+)", out)[1]) == 1.0  # 0.9 beats every walker's top window
    # <= 5 /h allows no false alert: a rule above the walker's 0.85 bursts; <= 500 /h: any rule catching all falls
    chosen = dict(re.findall(r"target <= (\d+) /h: chosen .*: recall ([\d.]+)", out))
    assert chosen == {"5": "1.000", "500": "1.000"}
    strict = re.search(r"target <= 5 /h: chosen ([\d.]+) / k \d: recall 1\.000 at 0\.0 /h", out)
    assert strict and 0.85 <= float(strict[1]) < 0.9  # not below the bursts' 0.85, below the falls' 0.9
    assert re.search(r"2 alert\(s\) in 36 s, walking: walk3\.mp4", out) and "walk0.mp4" not in out
    assert "picked in" in out
    # the alert's hold: walk3's two bursts, 3 windows apart, are one alert with --fall-m 4
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "cv.json"), "--targets", "5", "--boot", "0",
                        "--rule", "0.80,2", "--fall-m", "4"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and re.search(r"1 alert\(s\) in 36 s, walking: walk3\.mp4", r.stdout), r.stderr[-2000:]


def test_cv_alarm_names_a_missing_or_broken_cv_json(tmp_path):
    (tmp_path / "broken.json").write_text('{"held_out_tracks": [')
    for path in (tmp_path / "nope.json", tmp_path / "broken.json"):
        r = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"{path}: not a readable cv.json" in r.stderr and "action-rec cv ... --ensemble" in r.stderr

    (tmp_path / "empty.json").write_text(json.dumps({"results": {}}))
    bad = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "empty.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "no held_out_tracks" in bad.stderr
