import cv2
import pytest
import yaml

from action_rec.evaluation import plots


def decodes(path):
    img = cv2.imread(str(path))
    return img is not None and img.shape[0] > 100 and img.shape[1] > 100


# What Lightning's CSVLogger writes: train and val metrics of one epoch on separate rows, blanks elsewhere
METRICS_CSV = """epoch,step,train/acc,train/f1,train/loss,val/acc,val/f1,val/loss,test/acc
0,4,,,,0.5,0.4,1.1,
0,4,0.45,0.40,1.2,,,,
1,9,,,,0.75,0.7,0.8,
1,9,0.7,0.65,0.9,,,,
1,9,,,,,,,0.8
"""


def test_csv_history_is_per_epoch(tmp_path):
    (tmp_path / "metrics.csv").write_text(METRICS_CSV)
    h = plots.read_history(tmp_path)
    assert h["train/loss"] == [(0, 1.2), (1, 0.9)]
    assert h["val/acc"] == [(0, 0.5), (1, 0.75)]
    assert h["test/acc"] == [(1, 0.8)]
    assert plots.read_history(tmp_path / "nothing") == {}


def test_figures_decode(tmp_path):
    h = plots.read_csv_history(_write(tmp_path / "m.csv", METRICS_CSV))
    assert decodes(plots.training_curves(h, tmp_path / "curves.png"))
    assert plots.training_curves({}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    names = ["falling", "running", "walking"]
    # a class with no clips: an empty row must not divide by zero
    assert decodes(plots.confusion_matrix([[2, 0, 1], [0, 0, 0], [1, 0, 3]], names, tmp_path / "cm.png"))
    pc = {n: {"precision": 0.5, "recall": None, "f1": 0.25, "support": 1} for n in names}
    assert decodes(plots.per_class(pc, tmp_path / "pc.png"))
    rows = [{"name": "a", "accuracy": 0.9, "macro_f1": 0.8, "fall_sensitivity": 1.0, "fall_specificity": None},
            {"name": "b", "accuracy": 0.7, "macro_f1": 0.6, "fall_sensitivity": 0.5, "fall_specificity": 0.9}]
    assert decodes(plots.comparison(rows, tmp_path / "cmp.png"))
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.slow
def test_fit_writes_training_curves_next_to_the_checkpoint(tmp_path, make_video, monkeypatch):
    from action_rec.cli import main

    for split, n in (("train", 2), ("val", 1)):
        for c, label in enumerate(["falling", "walking"]):
            for i in range(n):
                make_video(tmp_path / "data" / split / label / f"{split}{i}.mp4", n_frames=12, fps=8,
                           seed=10 * c + i, moving=label == "walking")
    cfg = {"seed_everything": 0,
           "data": {"data": "data", "weights": "random", "image_size": 64, "fps": 4.0, "window": 4,
                    "cache_dir": "cache", "windows_per_clip": 2, "progress": False},
           "model": {"hidden": 16, "proj_dim": 32},
           "trainer": {"max_epochs": 3, "default_root_dir": "runs/t", "enable_progress_bar": False,
                       "enable_model_summary": False}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "cfg.yaml"]) == 0
    ckpt = next(tmp_path.glob("runs/t/**/checkpoints/best.ckpt"))
    assert decodes(ckpt.parent / "training_curves.png")
    assert decodes(tmp_path / "runs/t/training_curves.png")  # beside the stable best.ckpt
    h = plots.read_history(ckpt.parent.parent)
    for key in ("train/loss", "train/acc", "train/f1", "val/loss", "val/acc", "val/f1"):
        assert [e for e, _ in h[key]] == [0, 1, 2], key


def test_tensorboard_history(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    for step, epoch, loss in ((4, 0, 1.2), (9, 1, 0.9)):  # Lightning logs `epoch` beside each metric
        w.add_scalar("epoch", epoch, step)
        w.add_scalar("train/loss", loss, step)
    w.close()
    h = plots.read_history(tmp_path)
    assert h["train/loss"] == [(0, pytest.approx(1.2)), (1, pytest.approx(0.9))]
