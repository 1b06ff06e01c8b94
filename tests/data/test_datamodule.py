import numpy as np
import pytest
import torch

from action_rec.data import ActionDataModule, ClipWindows, TrainWindows, collate_clips, take, window_starts
from action_rec.data.items import DatasetError
from action_rec.utils.errors import UsageError


@pytest.mark.parametrize("n,window,stride,expected", [
    (5, 8, 4, [0]), (8, 8, 4, [0]), (20, 8, 4, [0, 4, 8, 12]), (21, 8, 4, [0, 4, 8, 12, 13])])
def test_window_starts_cover_the_clip(n, window, stride, expected):
    assert window_starts(n, window, stride) == expected


def test_short_clips_repeat_their_last_frame():
    feats = np.arange(3, dtype=np.float32)[:, None]
    assert take(feats, np.arange(6)).ravel().tolist() == [0, 1, 2, 2, 2, 2]


def test_train_windows_are_contiguous_without_augmentation():
    feats = np.arange(40, dtype=np.float32)[:, None].repeat(2, 1)
    ds = TrainWindows([(feats, 1)], window=8, per_clip=5, augment=False)
    assert len(ds) == 5
    for i in range(5):
        x, y = ds[i]
        assert x.shape == (8, 2) and y == 1
        assert torch.equal(x[1:, 0] - x[:-1, 0], torch.ones(7))


def test_train_windows_augmentation_changes_but_keeps_shape():
    torch.manual_seed(0)
    feats = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    ds = TrainWindows([(feats, 0)], window=8, per_clip=20, augment=True, feature_std=feats.std(0))
    xs = [ds[i][0] for i in range(20)]
    assert all(x.shape == (8, 4) for x in xs)
    # with noise, no window equals any exact slice of the clip
    slices = [torch.from_numpy(feats[s:s + 8]) for s in range(23)]
    assert not any(torch.equal(x, s) for x in xs for s in slices)


def test_mirroring_shows_about_half_the_windows_through_the_mirror_map():
    """data.mirror: with augmentation, a training window is either as extracted or row[perm] * sign, about half and
    half; without augmentation (or without a map) never mirrored."""
    torch.manual_seed(0)
    row = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    perm, sign = np.array([0, 2, 1, 3]), np.array([1, -1, -1, 1], np.float32)
    clip = [(np.tile(row, (20, 1)), 0)]  # every frame the same: speed jitter and dropped frames change nothing
    ds = TrainWindows(clip, window=8, per_clip=200, augment=True, mirror=(perm, sign))
    seen = [ds[i][0] for i in range(200)]
    flipped = [bool(torch.equal(x, torch.from_numpy(np.tile(row[perm] * sign, (8, 1))))) for x in seen]
    assert all(f or torch.equal(x, torch.from_numpy(clip[0][0][:8])) for x, f in zip(seen, flipped))
    assert 60 < sum(flipped) < 140
    plain = TrainWindows(clip, window=8, per_clip=20, augment=False, mirror=(perm, sign))
    assert all(torch.equal(plain[i][0], torch.from_numpy(clip[0][0][:8])) for i in range(20))


def test_clip_windows_and_collate():
    clips = [(np.zeros((20, 3), np.float32), 0), (np.ones((5, 3), np.float32), 2)]
    ds = ClipWindows(clips, window=8, stride=4)
    x, y, clip, frames = collate_clips([ds[0], ds[1]])
    assert x.shape == (5, 8, 3)  # 4 windows + 1 padded window
    assert y.tolist() == [0, 0, 0, 0, 2] and clip.tolist() == [0, 0, 0, 0, 1]
    assert frames.tolist() == [20, 20, 20, 20, 5]  # each window knows its clip's length (for alerts per hour)


def make_dm(root, tmp_path, **kw):
    args = dict(data=str(root), backbone="efficientnet_lite0", weights="random", image_size=32, fps=5,
                window=6, cache_dir=str(tmp_path / "cache"), val_fraction=0.25, test_fraction=0.25,
                batch_size=8, windows_per_clip=2, progress=False)
    args.update(kw)
    return ActionDataModule(**args)


def test_datamodule_end_to_end(tiny_dataset, tmp_path):
    bad = tiny_dataset / "walking" / "broken.mp4"
    bad.write_text("not a video")
    dm = make_dm(tiny_dataset, tmp_path, split_seed=3)
    assert dm.class_names == ["falling", "running", "walking"]
    assert dm.feature_dim == dm.backbone.feature_dim
    spec = dm.data_spec
    assert spec["fps"] == 5 and spec["window"] == 6 and spec["backbone"]["backbone"] == "efficientnet_lite0"
    assert spec["backbone"]["preprocess"]["size"] == 32
    dm.prepare_data()
    assert str(bad) in dm.report.failed
    dm.setup("fit")
    n = sum(len(v) for v in dm.clips.values())
    assert n == 12  # 13 files, the broken one dropped
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (6, dm.feature_dim) and x.dtype == torch.float32
    if dm.clips["val"]:
        xv, yv, cv, _ = next(iter(dm.val_dataloader()))
        assert xv.shape[1:] == (6, dm.feature_dim) and len(yv) == len(cv)


def test_data_regions_cut_the_frames_of_that_size_for_training(tiny_dataset, tmp_path, make_video):
    """data.regions: the clips of the named frame size train on that part of their frames (UR Fall's colour half);
    the rest on whole frames. What training loads is the backbone's embedding of the cut frames."""
    from action_rec.video import read_sampled

    wide = make_video(tiny_dataset / "walking" / "depth_and_colour.mp4", n_frames=20, fps=10, size=(128, 48))
    dm = make_dm(tiny_dataset, tmp_path, regions={"128x48": "0.5,0,1,1"}, val_fraction=0.0, test_fraction=0.0)
    cut = {it.path: it.region.text for it in dm.items if it.region}
    assert cut == {str(wide): "0.5,0,1,1"}
    assert dm.data_spec["regions"] == {"128x48": "0.5,0,1,1"}  # the checkpoint carries it to label and live
    assert "regions" not in make_dm(tiny_dataset, tmp_path).data_spec
    dm.prepare_data()
    dm.setup("fit")
    frames, _ = read_sampled(wide, 5)
    index = [it.path for it in dm.clip_items["train"]].index(str(wide))
    np.testing.assert_allclose(dm.clips["train"][index][0], dm.backbone.embed([f[:, 64:] for f in frames]),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(UsageError, match="WIDTHxHEIGHT"):
        make_dm(tiny_dataset, tmp_path, regions={"wide": "0.5,0,1,1"})


def test_datamodule_unknown_class_and_empty_split(tiny_dataset, tmp_path):
    with pytest.raises(DatasetError, match="sitting"):
        make_dm(tiny_dataset, tmp_path, classes=["sitting"])
    dm = make_dm(tiny_dataset, tmp_path, val_fraction=0.0, test_fraction=0.0)
    dm.prepare_data()
    dm.setup("fit")
    with pytest.raises(DatasetError, match="val split is empty"):
        dm.val_dataloader()


def test_source_weights_level_sources_within_each_class():
    from action_rec.data import source_weights
    from action_rec.data.items import VideoItem

    # falling: one source with 4 clips and one with 1; walking: 2 synthetic clips (no group, one folder)
    items = ([VideoItem(f"r/falling/a{i}.mp4", "falling", group="big") for i in range(4)]
             + [VideoItem("r/falling/b.mp4", "falling", group="small")]
             + [VideoItem(f"synth/train/walking/{i}.mp4", "walking") for i in range(2)])
    assert np.allclose(source_weights(items, 0.0), 1.0)
    w = source_weights(items, 1.0)
    # each falling source draws the same mass; the class keeps its total of 5 clips
    assert np.isclose(w[:4].sum(), w[4]) and np.isclose(w[:5].sum(), 5)
    assert np.allclose(w[5:], 1.0)   # one source: nothing to level
    half = source_weights(items, 0.5)
    assert w[4] > half[4] > 1.0      # in between


def test_source_balance_drives_the_training_sampler(tiny_dataset, tmp_path):
    from torch.utils.data import WeightedRandomSampler

    with pytest.raises(UsageError, match="source_balance must be in"):
        make_dm(tiny_dataset, tmp_path, source_balance=1.5)
    dm = make_dm(tiny_dataset, tmp_path, source_balance=1.0)
    dm.prepare_data()
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, WeightedRandomSampler)
    assert loader.sampler.num_samples == len(loader.dataset)
    plain = make_dm(tiny_dataset, tmp_path)
    plain.prepare_data()
    plain.setup("fit")
    assert not isinstance(plain.train_dataloader().sampler, WeightedRandomSampler)
