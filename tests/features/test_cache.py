import json
import os

import numpy as np
import pytest

from action_rec.backbones import build_backbone
from action_rec.features import cache as features


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("efficientnet_lite0", weights="random", image_size=64)


def test_extracts_every_sampled_frame_once_and_skips_on_rerun(tmp_path, make_video, backbone, monkeypatch):
    vids = [make_video(tmp_path / f"v{i}.mp4", n_frames=10 + 10 * i, fps=10, seed=i) for i in range(3)]
    cache, report = features.extract(vids, backbone, fps=5, cache_root=tmp_path / "cache", progress=False)
    assert len(report.extracted) == 3 and not report.failed
    feats, times = cache.load(vids[2])
    assert feats.shape == (15, backbone.feature_dim) and feats.dtype == np.float32  # 3 s at 5 fps
    np.testing.assert_allclose(times, np.arange(15) / 5)
    # The cached features are exactly what the backbone gives for those frames.
    from action_rec.video import read_sampled
    frames, _ = read_sampled(vids[2], 5)
    np.testing.assert_allclose(feats, backbone.embed(frames), rtol=1e-4, atol=1e-5)

    calls = []
    monkeypatch.setattr(features, "extract_video", lambda *a, **k: calls.append(a) or (feats, times))
    _, again = features.extract(vids, backbone, fps=5, cache_root=tmp_path / "cache", progress=False)
    assert calls == [] and len(again.cached) == 3 and not again.extracted

    # A new mtime, or the same clip copied elsewhere (shared folders re-provisioned each day), is still a
    # cache hit; a video whose bytes changed is extracted again, and only that one.
    os.utime(vids[0], ns=(1, 1))
    copy = tmp_path / "elsewhere" / "v1.mp4"
    copy.parent.mkdir()
    copy.write_bytes(vids[1].read_bytes())
    _, third = features.extract([*vids, copy], backbone, fps=5, cache_root=tmp_path / "cache", progress=False)
    assert calls == [] and len(third.cached) == 4
    vids[2].write_bytes(vids[0].read_bytes() + b"\0")
    _, fourth = features.extract(vids, backbone, fps=5, cache_root=tmp_path / "cache", progress=False)
    assert fourth.extracted == [str(vids[2])] and len(calls) == 1


def test_content_key_sees_every_change_of_a_big_file(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "_WHOLE_FILE", 4 << 20)  # sampled fingerprints without writing 64 MiB
    big = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 256, 6 << 20, dtype=np.uint8).tobytes())
    big.write_bytes(data)
    key = features.content_key(big)
    assert features.content_key(big) == key and len(key) == 20
    for where in (0, len(data) - 1):  # first and last bytes are always read
        edited = bytearray(data)
        edited[where] ^= 1
        big.write_bytes(edited)
        assert features.content_key(big) != key
    big.write_bytes(data + b"x")  # any change of size
    assert features.content_key(big) != key


def test_cache_is_keyed_by_fps_and_backbone_identity(tmp_path, backbone):
    a = features.FeatureCache(tmp_path, backbone.identity(), 8)
    b = features.FeatureCache(tmp_path, backbone.identity(), 4)
    other = build_backbone("efficientnet_lite0", weights="random", image_size=96)
    c = features.FeatureCache(tmp_path, other.identity(), 8)
    assert len({a.dir, b.dir, c.dir}) == 3


def test_bad_videos_are_reported_and_never_stop_the_run(tmp_path, make_video, backbone):
    good = make_video(tmp_path / "good.mp4", n_frames=10)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("hello" * 100)
    gone = tmp_path / "gone.mp4"
    cache, report = features.extract([empty, good, text, gone], backbone, fps=5,
                                     cache_root=tmp_path / "c", progress=False)
    assert report.extracted == [str(good)]
    assert set(report.failed) == {str(empty), str(text), str(gone)}
    assert "empty" in report.failed[str(empty)]
    saved = json.loads((cache.dir / "extract_report.json").read_text())
    assert set(saved["failed"]) == set(report.failed)
    assert "skipped" in report.summary() and "text.mp4" in report.summary()
    # Only complete entries in the cache: no temp files left behind.
    assert sorted(p.suffix for p in cache.dir.iterdir()) == [".json", ".json", ".npz"]


def test_interrupted_write_leaves_no_entry(tmp_path, make_video, backbone, monkeypatch):
    v = make_video(tmp_path / "v.mp4", n_frames=10)
    cache = features.FeatureCache(tmp_path / "c", backbone.identity(), 5)

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.save(v, np.zeros((2, 3)), np.zeros(2))
    assert not cache.has(v) and list(cache.dir.iterdir()) == []


def test_person_passes_over_a_clip_share_its_detector_boxes(tmp_path, backbone):
    """The main-person pass stores each clip's boxes; the per-track pass (another feature cache) reads them instead of
    running the detector, and gives exactly the features the detector's own boxes give; a clip with fewer stored
    frames than decoded goes back to the detector."""
    from tests.inference.test_tracks import BlobDetector, two_people_video

    from action_rec.features.person import PersonFeatures
    from action_rec.inference.tracks import TrackFeatures

    class Counting(BlobDetector):
        calls = 0

        def detect(self, frames_rgb):
            Counting.calls += len(frames_rgb)
            return super().detect(frames_rgb)

    video = two_people_video(tmp_path / "v" / "two.mp4")
    person = PersonFeatures(backbone, "person", Counting())
    root = tmp_path / "cache"
    _, main = features.extract([video], person, fps=4, cache_root=root, progress=False)
    sampled = main.frames
    assert Counting.calls == sampled and len(list(root.glob("detections-*/*.npz"))) == 1
    tracks = TrackFeatures(person)
    cache, rep = features.extract([video], tracks, fps=4, cache_root=root, progress=False)
    assert rep.extracted and Counting.calls == sampled  # not one frame through the detector again
    fresh = TrackFeatures(PersonFeatures(backbone, "person", Counting()))
    want, _ = features.extract_video(fresh, video, 4)  # the detector's own boxes, no store
    np.testing.assert_array_equal(cache.load(video)[0], want)
    assert Counting.calls == 2 * sampled

    store = features.BoxStore(root, person.detector, 4)
    short = store.log(video)
    short.known = short.known[:5]  # e.g. stored by a decoder that gave up early
    again, _ = features.extract_video(TrackFeatures(person), video, 4, boxes=short)
    np.testing.assert_array_equal(again, want)
    assert Counting.calls == 3 * sampled and short.known is None and len(short.seen) == sampled


def test_person_passes_over_a_clip_share_its_crop_rows(tmp_path, backbone):
    """The main-person pass stores each crop's row by its pixels; the per-track pass runs the crop backbone only on the
    crops it has not seen (the other people's) and gives exactly the features of a pass that computes every crop."""
    from tests.inference.test_tracks import BlobDetector, two_people_video

    from action_rec.features.person import GEOMETRY, PersonFeatures
    from action_rec.inference.tracks import TrackFeatures

    class Counting:
        crops = 0

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def embed(self, crops, **kw):
            Counting.crops += len(crops)
            return self.inner.embed(crops, **kw)

    video = two_people_video(tmp_path / "v" / "two.mp4")
    person = PersonFeatures(Counting(backbone), "person", BlobDetector())
    root = tmp_path / "cache"
    main_cache, _ = features.extract([video], person, fps=4, cache_root=root, progress=False)
    main_crops = Counting.crops
    assert main_crops > 0 and len(list(root.glob(f"{backbone.name}-crops-*/*.npz"))) == 1
    cache, _ = features.extract([video], TrackFeatures(person), fps=4, cache_root=root, progress=False)
    track_rows = cache.load(video)[0]
    crops = (track_rows[..., -len(GEOMETRY)] > 0).sum()  # GEOMETRY's "present": a crop in that track's slot
    assert crops > main_crops  # two people: more crops than the main person's ...
    assert Counting.crops == crops  # ... but only the other person's went through the backbone again (not 2x main)
    fresh, _ = features.extract_video(TrackFeatures(PersonFeatures(backbone, "person", BlobDetector())), video, 4)
    np.testing.assert_array_equal(track_rows, fresh)
    np.testing.assert_array_equal(main_cache.load(video)[0], features.extract_video(
        PersonFeatures(backbone, "person", BlobDetector()), video, 4)[0])

    store = features.CropStore(root, backbone)  # another backbone identity: nothing known
    other = features.CropStore(root, build_backbone("efficientnet_lite0", weights="random", image_size=96))
    assert store.log(video).known and not other.log(video).known


def test_a_damaged_cache_file_is_computed_again(tmp_path, backbone):
    """A truncated stored file (a full disk, a half copy) of features, boxes or crop rows is read as nothing stored:
    the pass runs the detector and the backbone again and gives the same features, never an error."""
    from tests.inference.test_tracks import BlobDetector, two_people_video

    from action_rec.features.person import PersonFeatures

    video = two_people_video(tmp_path / "v" / "two.mp4")
    root = tmp_path / "cache"
    cache, _ = features.extract([video], PersonFeatures(backbone, "person", BlobDetector()), fps=4, cache_root=root,
                                progress=False)
    want = cache.load(video)[0]
    stored = list(root.glob("detections-*/*.npz")) + list(root.glob(f"{backbone.name}-crops-*/*.npz"))
    assert len(stored) == 2
    for f in stored:
        f.write_bytes(f.read_bytes()[:200])  # starts as a zip, ends early
    entry = cache.entry(video)
    entry.write_bytes(entry.read_bytes()[:300])  # the features too: not there, extracted again
    assert not cache.has(video)
    again, rep = features.extract([video], PersonFeatures(backbone, "person", BlobDetector()), fps=4, cache_root=root,
                                  progress=False)
    assert rep.extracted and not rep.failed
    np.testing.assert_array_equal(again.load(video)[0], want)


def test_a_region_of_the_frames_is_its_own_cache_entry(tmp_path, make_video, backbone):
    """extract(regions=...) embeds only that part of each frame, kept beside the whole-frame features of the same
    clip (neither overwrites the other), and is found again on a rerun."""
    from action_rec.video import read_sampled
    from action_rec.video.region import Region

    vid = make_video(tmp_path / "v.mp4", n_frames=20, fps=10, size=(96, 48))
    right = Region.parse("0.5,0,1,1")
    root = tmp_path / "cache"
    cache, _ = features.extract([vid], backbone, fps=5, cache_root=root, progress=False)
    _, report = features.extract([vid], backbone, fps=5, cache_root=root, progress=False, regions={vid: right})
    assert report.extracted == [str(vid)]  # not the whole-frame entry
    assert cache.entry(vid, right) != cache.entry(vid) and cache.has(vid) and cache.has(vid, right)
    frames, _ = read_sampled(vid, 5)
    np.testing.assert_allclose(cache.load(vid, right)[0], backbone.embed([f[:, 48:] for f in frames]),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cache.load(vid)[0], backbone.embed(frames), rtol=1e-4, atol=1e-5)
    _, again = features.extract([vid], backbone, fps=5, cache_root=root, progress=False, regions={str(vid): right})
    assert again.cached == [str(vid)] and not again.extracted
