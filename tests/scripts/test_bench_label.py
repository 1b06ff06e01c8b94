"""scripts/bench_label.py runs end to end (a benchmark nobody can run is no benchmark): both designs, the ceiling."""

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_label.py"


def test_bench_label_prints_both_designs_and_the_ceiling(tmp_path):
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt", fps=4.0, window=6, image_size=64)
    r = subprocess.run([sys.executable, str(SCRIPT), "--ckpt", str(ckpt), "--data", str(tmp_path / "videos"),
                        "--videos", "2", "--seconds", "2", "--naive-videos", "1", "--workers", "0,1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    rows = {m[1].strip(): m.groups()[1:] for m in re.finditer(
        r"^(naive \(.*?\)|batched \(workers=\d\))\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)x$", out, re.M)}
    assert set(rows) == {"naive (every frame, batch 1, LSTM per frame)", "batched (workers=0)", "batched (workers=1)"}
    assert rows["naive (every frame, batch 1, LSTM per frame)"][:2] == ("1", "2.0")  # 1 video of 2 s
    for name in ("batched (workers=0)", "batched (workers=1)"):
        videos, video_s, _, rate, _, _ = rows[name]
        assert (videos, video_s) == ("2", "4.0") and float(rate) > 0
    assert "errors!" not in out
    bound = re.search(r"decoding ([\d.]+) ms .* backbone ([\d.]+) ms; .* tops out near (\d+)x real time on (\d+) cores",
                      out)
    assert bound, out
    dec, emb, ceiling, cores = float(bound[1]), float(bound[2]), int(bound[3]), int(bound[4])
    # dec and emb are printed to 0.1 ms and the ceiling to 1x: allow for both roundings
    assert dec > 0 and emb > 0
    assert cores * 1000 / (dec + emb + 0.1) - 0.5 <= ceiling <= cores * 1000 / max(dec + emb - 0.1, 0.01) + 0.5
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 2


def test_bench_label_names_a_missing_checkpoint(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--ckpt", str(tmp_path / "none.ckpt"), "--data",
                        str(tmp_path / "videos"), "--videos", "1", "--seconds", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "none.ckpt: no such checkpoint file" in r.stderr and "Traceback" not in r.stderr
