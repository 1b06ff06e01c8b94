"""Atomic writes: the umask decides the mode, and the temporary files a killed writer leaves are recognised."""

import os

from action_rec.utils import io


def test_atomic_write_follows_the_umask_and_stale_temps_are_recognised(tmp_path):
    old = os.umask(0o027)
    try:
        io.atomic_write_text(tmp_path / "a.json", "{}")
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640  # 0666 & ~umask (mkstemp made it 0600)
    finally:
        os.umask(old)
    assert io.is_temp_of(".a.mp4.q_ubuvge.mp4") and io.is_temp_of(".l.csv.1a2b3c4d.csv", "l.csv")
    assert not io.is_temp_of(".l.csv.1a2b3c4d.csv", "m.csv")
    for name in (".x.partial.mp4", ".a.mp4.q_ubuvge.avi", "a.mp4.q_ubuvge.mp4", ".a.mp4.short.mp4"):
        assert not io.is_temp_of(name), name
    (tmp_path / ".a.json.abcdefgh.json").write_text("left by a kill")
    assert io.remove_stale_temps(tmp_path / "a.json") == [tmp_path / ".a.json.abcdefgh.json"]
