"""data/synthetic_pose.py: the synthetic set's planned people as body-pose rows, and data.synthetic_pose adding them
to the training split only."""

import numpy as np
import pytest

from action_rec.backbones.pose import ROW_DIM, find_pose_model
from action_rec.data.synthetic_pose import SOURCE, pose_clip, synthetic_pose_clips
from action_rec.features.person import GEOMETRY
from action_rec.synth.actions import other_action
from action_rec.utils.errors import UsageError

COS = ROW_DIM - 2  # cos of the torso's angle from upright
PRESENT, ASPECT, FALL = (ROW_DIM + GEOMETRY.index(g) for g in ("present", "log_aspect", "fall_score"))


def _seed(kind: str, start: int = 0) -> int:
    return next(s for s in range(start, start + 100) if other_action(s) == kind)


def test_rows_of_a_walker_stand_and_rows_of_a_faller_end_lying():
    walk = pose_clip("walking", 3)
    assert walk.shape == (len(walk), ROW_DIM + len(GEOMETRY)) and walk.dtype == np.float32 and len(walk) >= 16
    assert (walk[:, PRESENT] == 1).all() and np.median(walk[:, COS]) > 0.9 and np.median(walk[:, ASPECT]) < 0
    assert (walk[:, FALL] == 0).all()  # an upright box is "normal" to the detector
    for seed in range(3):
        end = pose_clip("falling", seed)[-4:]  # >= 1.5 s lying at the end of every synthetic fall
        posed = end[end[:, 0] >= 0.5]
        assert len(posed) and np.median(np.abs(posed[:, COS])) < 0.8  # far from upright
        assert np.median(end[:, ASPECT]) > 0 and end[:, FALL].max() > 0  # a wide box, "fall" to the detector
    np.testing.assert_array_equal(pose_clip("walking", 3), walk)  # a seed is one clip


def test_an_empty_scene_and_a_person_walking_out_give_no_person_rows():
    empty = pose_clip("other", _seed("empty"))
    assert not empty.any()  # the no-person row throughout
    out = pose_clip("other", _seed("walk_out"))
    gone = out[:, PRESENT] == 0
    assert gone.any() and (~gone).any() and not out[gone].any()


def test_misses_keep_only_the_score():
    rows = np.concatenate([pose_clip("running", s) for s in range(6)])
    missed = rows[(rows[:, PRESENT] == 1) & (rows[:, 0] < 0.5)]
    assert len(missed) and not missed[:, 1:ROW_DIM].any()  # a pose network's miss: zeros but its score


def test_clips_per_class_for_the_classes_the_synthetic_set_makes_and_no_sprints(monkeypatch):
    from action_rec.data import synthetic_pose

    made = []
    real = synthetic_pose.pose_clip
    monkeypatch.setattr(synthetic_pose, "pose_clip", lambda a, s, fps: made.append((a, s)) or real(a, s, fps))
    clips = synthetic_pose_clips(["falling", "other", "sitting", "walking"], 9, 8.0)
    assert [label for _, _, label in clips] == ["falling"] * 9 + ["other"] * 9 + ["walking"] * 9  # no "sitting"
    assert {i for _, i, label in clips if label == "walking"} == {3}
    others = [rows for rows, _, label in clips if label == "other"]
    assert any(not rows.any() for rows in others)  # the sub-actions take turns: an empty scene is among them
    # a sprint start or stop is `other` in the synthetic set, but its strides are real running's: never made here
    assert not any(other_action(s) == "sprint" for a, s in made if a == "other")
    assert len({s for _, s in made}) == len(made)
    assert [label for _, _, label in synthetic_pose_clips(["falling", "walking"], {"walking": 2}, 8.0)] == ["walking"] * 2


def test_synthetic_pose_needs_the_pose_features(tmp_path):
    from action_rec.data import ActionDataModule

    with pytest.raises(UsageError, match="needs data.backbone mediapipe_pose and data.features person"):
        ActionDataModule(data=str(tmp_path), synthetic_pose=5)
    with pytest.raises(UsageError, match="must be >= 0"):
        ActionDataModule(data=str(tmp_path), backbone="mediapipe_pose", features="person", synthetic_pose=-1)


@pytest.mark.skipif(find_pose_model() is None, reason="mediapipe's pose model file is not installed")
def test_the_datamodule_adds_them_to_training_only_without_lengthening_epochs(tiny_dataset, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from torch.utils.data import WeightedRandomSampler

    from action_rec.data import ActionDataModule

    def dm(n):
        m = ActionDataModule(data=str(tiny_dataset), backbone="mediapipe_pose", features="person", fps=5, window=6,
                             cache_dir=str(tmp_path / "cache"), val_fraction=0.25, test_fraction=0.25, split_seed=3,
                             batch_size=8, windows_per_clip=2, synthetic_pose=n, progress=False)
        m.prepare_data()
        m.setup("fit")
        return m

    with pytest.raises(UsageError, match=r"names \['other'\]: the synthetic set makes \['falling', 'running', "):
        dm({"other": 3})
    assert [it.label for it in dm({"walking": 2}).clip_items["train"] if it.group == SOURCE] == ["walking"] * 2
    plain, mixed = dm(0), dm(3)
    real = len(plain.clips["train"])
    assert len(mixed.clips["train"]) == real + 3 * 3 and mixed.real_train_clips == real
    synthetic = [it for it in mixed.clip_items["train"] if it.group == SOURCE]
    assert sorted(it.label for it in synthetic) == sorted(["falling", "running", "walking"] * 3)
    for split in ("val", "test"):  # figures stay on real clips
        assert [it.path for it in mixed.clip_items[split]] == [it.path for it in plain.clip_items[split]]
    assert mixed.class_counts == [c + 3 for c in plain.class_counts]
    loader = mixed.train_dataloader()
    assert isinstance(loader.sampler, WeightedRandomSampler) and loader.sampler.num_samples == real * 2
    x, _ = next(iter(loader))
    assert x.shape[1:] == (6, mixed.feature_dim)
