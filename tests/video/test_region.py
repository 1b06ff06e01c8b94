import cv2
import numpy as np
import pytest

from action_rec.utils.errors import UsageError
from action_rec.video import iter_sampled
from action_rec.video.region import Region, regions_by_size


@pytest.mark.parametrize("text", ["0.5,0,1,1", "0.5 0 1 1", " 0.5, 0, 1, 1 ", [0.5, 0, 1, 1]])
def test_a_region_reads_from_commas_spaces_or_a_list(text):
    assert Region.parse(text) == Region(0.5, 0.0, 1.0, 1.0)
    assert Region.parse(text).text == "0.5,0,1,1"


@pytest.mark.parametrize("text", [None, "", "full", "0,0,1,1", [0, 0, 1, 1]])
def test_the_whole_frame_is_no_region(text):
    assert Region.parse(text) is None


@pytest.mark.parametrize("text,match", [
    ("0.5,0,1", "four numbers"), ("a,b,c,d", "four numbers"), ("0.5,0,0.5,1", "x0 < x1"),
    ("0,0,1.5,1", "<= 1"), ("-0.1,0,1,1", "0 <="), ("0,0.8,1,0.2", "y0 < y1")])
def test_a_bad_region_says_what_a_region_is(text, match):
    with pytest.raises(UsageError, match=match) as e:
        Region.parse(text)
    assert "0.5,0,1,1" in str(e.value)  # an example to copy


def test_crop_takes_the_named_pixels_and_is_never_empty():
    frame = np.arange(240 * 640 * 3, dtype=np.uint32).reshape(240, 640, 3)
    right = Region(0.5, 0, 1, 1).crop(frame)
    assert right.shape == (240, 320, 3) and right.flags.c_contiguous
    np.testing.assert_array_equal(right, frame[:, 320:])
    np.testing.assert_array_equal(Region(0, 0.25, 0.5, 0.75).crop(frame), frame[60:180, :320])
    assert Region(0.5, 0.5, 0.5001, 0.5001).crop(frame).shape == (1, 1, 3)


def test_regions_by_frame_size():
    assert regions_by_size({"640x240": "0.5,0,1,1", "320X240": "full"}) == {(640, 240): Region(0.5, 0, 1, 1)}
    assert regions_by_size(None) == {}
    with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
        regions_by_size({"640": "0.5,0,1,1"})


def test_sampled_frames_are_cut_to_the_region(tmp_path):
    """A depth|colour clip read with the colour half's region gives exactly the colour half of every sampled frame:
    the same decoded pixels, so features of a region equal features of a clip cut beforehand."""
    path = tmp_path / "side_by_side.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 24))
    rng = np.random.default_rng(0)
    for i in range(12):
        f = np.zeros((24, 64, 3), np.uint8)
        f[:, :32] = 40 + 10 * i                                  # the grey "depth map"
        f[:, 32:] = rng.integers(0, 255, (24, 32, 3), np.uint8)  # the colour view
        vw.write(f)
    vw.release()
    whole = list(iter_sampled(path, 5.0))
    cut = list(iter_sampled(path, 5.0, region=Region.parse("0.5,0,1,1")))
    assert [t for t, _ in cut] == [t for t, _ in whole] and len(cut) == 6
    for (_, a), (_, b) in zip(whole, cut):
        assert b.shape == (24, 32, 3)
        np.testing.assert_array_equal(b, a[:, 32:])
