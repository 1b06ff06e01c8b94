import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from action_rec.data import ClipWindows, TrainWindows, collate_clips
from action_rec.model.classifier import ActionClassifier

NAMES = ["falling", "running", "walking"]
SPEC = {"backbone": {"backbone": "x", "weights": "random", "feature_dim": 16, "preprocess": {"size": 8}},
        "weights_arg": "random", "fps": 8.0, "window": 8, "padding": "repeat_last"}


def clips(n, seed):
    """Class c: a feature direction that drifts at a class-specific speed (a temporal cue)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        c = i % 3
        t = np.arange(24)[:, None]
        base = rng.normal(size=(1, 16))
        f = base + (c + 1) * 0.3 * t * np.eye(16)[c] + 0.05 * rng.normal(size=(24, 16))
        out.append((f.astype(np.float32), c))
    return out


def test_trains_and_scores_clips(tmp_path):
    L.seed_everything(0)
    model = ActionClassifier(NAMES, 16, SPEC, hidden=32, dropout=0.0, lr=5e-3)
    train = DataLoader(TrainWindows(clips(60, 0), 8, 4, augment=False), batch_size=32, shuffle=True)
    val = DataLoader(ClipWindows(clips(30, 1), 8, 4), batch_size=8, collate_fn=collate_clips)
    trainer = L.Trainer(max_epochs=20, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train, val)
    trainer.test(model, val)
    r = model.results["test"]
    assert r["clips"] == 30 and r["class_names"] == NAMES
    cm = np.array(r["confusion_matrix"])
    assert cm.sum() == 30 and cm.sum(1).tolist() == [10, 10, 10]
    assert r["accuracy"] > 0.9 and abs(np.trace(cm) / 30 - r["accuracy"]) < 1e-6


def test_members_train_side_by_side_each_on_its_own_loss():
    """model.members 2: the two LSTMs start as two separate models would, and a training step's gradient on each is
    the gradient of its own loss as a model alone (halved: the loss is the members' mean), not of the average."""
    import torch.nn.functional as F

    from action_rec.model.ensemble import unpack

    torch.manual_seed(0)
    model = ActionClassifier(NAMES, 16, SPEC, hidden=8, proj_dim=12, dropout=0.0, label_smoothing=0.0, members=2)
    a, b = unpack(model.net)
    x = torch.randn(5, 8, 16)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x), atol=1e-3)  # their own initialisations
        torch.testing.assert_close(model(x).softmax(-1), (a(x).softmax(-1) + b(x).softmax(-1)) / 2,
                                   rtol=1e-5, atol=1e-6)
    y = torch.tensor([0, 1, 2, 0, 1])
    loss = model.training_step((x, y), 0)
    loss.backward()
    own = F.cross_entropy(a(x), y)
    own.backward()
    torch.testing.assert_close(loss, (own + F.cross_entropy(b(x), y)) / 2)
    first = slice(0, 12)  # member 0's rows of the projection
    torch.testing.assert_close(model.net.proj.weight.grad[first], a.proj.weight.grad / 2, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(model.net.head.weight.grad[0], a.head.weight.grad / 2, rtol=1e-4, atol=1e-6)


def test_members_must_be_a_positive_integer():
    import pytest

    from action_rec.utils.errors import UsageError

    for bad in (0, -1, True, 1.5):
        with pytest.raises(UsageError, match="members must be an integer >= 1"):
            ActionClassifier(NAMES, 16, SPEC, members=bad)


def test_hyperparameters_carry_what_inference_needs():
    model = ActionClassifier(NAMES, 16, SPEC)
    hp = model.hparams
    assert hp.class_names == NAMES and hp.feature_dim == 16 and hp.data_spec["fps"] == 8.0
    assert model.net.lstm.num_layers == 2 and model.net.proj.out_features == 512


def test_balanced_class_weights_and_explicit_weights():
    model = ActionClassifier(NAMES, 16, SPEC, class_weights=[1.0, 2.0, 3.0])
    assert model.loss_weights.tolist() == [1.0, 2.0, 3.0]
    try:
        ActionClassifier(NAMES, 16, SPEC, class_weights=[1.0])
    except ValueError as e:
        assert "3 classes" in str(e)
    else:
        raise AssertionError("wrong number of class weights must be an error")


def test_optimizer_is_adamw_with_scheduler(tmp_path):
    model = ActionClassifier(NAMES, 16, SPEC)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(model, DataLoader(TrainWindows(clips(6, 0), 8, 1, augment=False), batch_size=6))
    assert isinstance(trainer.optimizers[0], torch.optim.AdamW)
    assert trainer.lr_scheduler_configs and trainer.lr_scheduler_configs[0].interval == "step"


def test_format_results_warns_when_the_operating_point_catches_no_validation_fall():
    from action_rec.training import format_results

    r = {"class_names": ["falling", "walking"], "clips": 2, "accuracy": 0.5, "macro_f1": 0.5,
         "confusion_matrix": [[1, 0], [1, 0]], "fall": None,
         "operating_point": {"threshold": 0.85, "k": 2, "recall": 0.0, "false_alerts_per_hour": 0.0,
                             "target_false_alerts_per_hour": 20.0}}
    assert "no rule caught a validation fall" in format_results(r)
    r["operating_point"]["recall"] = 0.5
    assert "warning" not in format_results(r)


def test_the_alert_hold_reaches_the_rule_and_stored_points():
    model = ActionClassifier(NAMES, 16, SPEC, fall_k=2, fall_m=8)
    assert (model.rule.k, model.rule.m) == (2, 8)
    model.apply_operating_point({"threshold": 0.9, "k": 3, "m": 8})
    assert (model.rule.threshold, model.rule.k, model.rule.m) == (0.9, 3, 8)
    model.apply_operating_point({"threshold": 0.8, "k": 3})  # a point stored before holds existed: m = k
    assert model.rule.m == 3
    assert ActionClassifier(NAMES, 16, SPEC, fall_k=2).rule.m == 2


def test_overriding_k_keeps_a_checkpoints_own_hold():
    from types import SimpleNamespace

    from action_rec.decision.rule import FallRule
    from action_rec.labeling import load_predictor

    held = SimpleNamespace(rule=FallRule("falling", 0.9, 2, 8), predict_features=None)
    rule = load_predictor(held, fall_k=3).rule
    assert (rule.k, rule.m) == (3, 8)
    plain = SimpleNamespace(rule=FallRule("falling", 0.9, 2, 2), predict_features=None)
    assert load_predictor(plain, fall_k=3).rule.m == 3  # without a hold the end follows k, as before
    assert load_predictor(held, fall_k=9).rule.m == 9  # never shorter than k
