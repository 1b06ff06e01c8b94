import numpy as np
import pytest

from action_rec.video import VideoReadError, iter_sampled, probe, read_sampled


@pytest.mark.parametrize("native", [5, 10, 24, 30, 120])
def test_sampling_by_timestamp_gives_same_spacing(tmp_path, make_video, native):
    p = make_video(tmp_path / f"v{native}.mp4", n_frames=native * 2, fps=native)
    frames, times = read_sampled(p, fps=8)
    assert len(frames) == 16  # 2 s at 8 fps, whatever the source rate
    np.testing.assert_allclose(np.diff(times), 1 / 8)
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8


def test_each_sample_is_the_frame_on_screen_at_that_time(tmp_path):
    import cv2
    p = tmp_path / "ramp.avi"
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    for i in range(20):  # frame i shows brightness 10*i
        vw.write(np.full((32, 32, 3), 10 * i, np.uint8))
    vw.release()
    frames, times = read_sampled(p, fps=4)
    shown = [int(round(f.mean() / 10)) for f in frames]
    assert shown == [int(np.floor(t * 10 + 1e-9)) for t in times]  # frame index = floor(t * native fps)


def test_portrait_video_keeps_orientation(tmp_path, make_video):
    p = make_video(tmp_path / "portrait.mp4", n_frames=10, size=(48, 80))
    frames, _ = read_sampled(p, fps=5)
    assert frames[0].shape == (80, 48, 3)
    info = probe(p)
    assert (info.width, info.height) == (48, 80) and info.fps == pytest.approx(10)


@pytest.mark.parametrize("content", [b"", b"definitely not a video" * 50])
def test_unreadable_files_raise_named_errors(tmp_path, content):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(VideoReadError, match="bad.mp4"):
        read_sampled(p, fps=8)


def test_missing_file(tmp_path):
    with pytest.raises(VideoReadError, match="no such file"):
        next(iter_sampled(tmp_path / "nope.mp4", 8))


def test_truncated_video_yields_what_decodes_or_a_clear_error(tmp_path, make_video):
    p = make_video(tmp_path / "full.mp4", n_frames=40)
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    try:
        frames, _ = read_sampled(cut, fps=8)
        assert len(frames) < 32
    except VideoReadError as e:
        assert "cut.mp4" in str(e)


def test_a_symlink_loop_or_a_broken_link_is_not_called_missing(tmp_path):
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    (tmp_path / "dangling.mp4").symlink_to("nowhere.mp4")
    with pytest.raises(VideoReadError, match=r"loop.mp4: symlink loop \(too many levels of symbolic links\)"):
        next(iter_sampled(tmp_path / "loop.mp4", 8))
    with pytest.raises(VideoReadError, match=r"dangling.mp4: broken symlink \(to nowhere.mp4"):
        probe(tmp_path / "dangling.mp4")


def test_clip_duration_is_the_containers_then_the_samples(tmp_path, make_video):
    from action_rec.video import VideoInfo, clip_duration_s

    info = probe(make_video(tmp_path / "v.mp4", n_frames=51, fps=8.0))
    assert clip_duration_s(info, 26, 4.0) == pytest.approx(6.375)  # not 26 / 4 = 6.5
    assert clip_duration_s(VideoInfo("x", 0.0, 0, 1, 1), 26, 4.0) == 6.5  # a container that does not say
    assert clip_duration_s(None, 26, 4.0) == 6.5
