"""End-to-end: the real `action-rec` command on a tiny generated dataset."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

BIN = Path(sys.executable).with_name("action-rec")
CMD = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "action_rec.cli"]


def run(*args, cwd, check=True):
    p = subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"action-rec {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


CONFIG = {
    "seed_everything": 0,
    "data": {"data": "data/synth", "backbone": "efficientnet_lite0", "weights": "random", "image_size": 64,
             "fps": 4.0, "window": 6, "cache_dir": "cache", "windows_per_clip": 2, "progress": False},
    "model": {"hidden": 32},
    "trainer": {"max_epochs": 2, "default_root_dir": "runs/e2e", "enable_progress_bar": False},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder with a tiny synthetic dataset and a model trained on it by `action-rec fit`."""
    d = tmp_path_factory.mktemp("proj")
    run("synth", "--out", "data/synth", "--train", "2", "--val", "1", "--test", "1", "--workers", "2", cwd=d)
    (d / "cfg.yaml").write_text(yaml.safe_dump(CONFIG))
    fit = run("fit", "--config", "cfg.yaml", cwd=d)
    return d, fit


def test_synth_writes_folder_per_class(project):
    d, _ = project
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        for c in ("walking", "running", "falling"):
            assert len(list((d / "data/synth" / split / c).glob("*.mp4"))) == n


def test_fit_trains_tests_and_reports(project):
    d, fit = project
    assert "test split, clip level" in fit.stdout and "confusion matrix" in fit.stdout
    stable = d / "runs/e2e/best.ckpt"
    assert stable.is_file()
    metrics = json.loads(next(d.glob("runs/e2e/**/test_metrics.json")).read_text())
    assert metrics["clips"] == 3 and metrics["class_names"] == ["falling", "running", "walking"]
    assert sum(map(sum, metrics["confusion_matrix"])) == 3
    # extraction happened once, into the keyed cache
    assert len(list((d / "cache").glob("efficientnet_lite0-*/*.npz"))) == 12


def test_checkpoint_carries_everything_inference_needs(project):
    d, _ = project
    ckpt = torch.load(d / "runs/e2e/best.ckpt", map_location="cpu", weights_only=True)
    hp = ckpt["hyper_parameters"]
    spec = hp["data_spec"]
    assert hp["class_names"] == ["falling", "running", "walking"]
    assert spec["fps"] == 4.0 and spec["window"] == 6 and spec["backbone"]["backbone"] == "efficientnet_lite0"
    assert spec["backbone"]["weights"] == "random" and spec["backbone"]["preprocess"]["size"] == 64
    assert hp["feature_dim"] == spec["backbone"]["feature_dim"] == 1280

    from action_rec.inference import Predictor
    video = next((d / "data/synth/test/running").glob("*.mp4"))
    pred = Predictor(d / "runs/e2e/best.ckpt").predict_video(video)  # no config needed
    assert pred.label in hp["class_names"] and abs(sum(pred.probs.values()) - 1) < 1e-4
    assert pred.window_probs.shape[1] == 3


def test_fall_rule_is_chosen_on_validation_stored_and_used_everywhere(project, tmp_path):
    """fit picks (threshold, k) on the validation clips and stores it; label, live and evaluate all use it."""
    from action_rec.decision.operating_point import KS, THRESHOLDS

    d, fit = project
    ckpt = torch.load(d / "runs/e2e/best.ckpt", map_location="cpu", weights_only=True)
    op = ckpt["operating_point"]
    assert op["chosen_on"] == "validation" and op["target_false_alerts_per_hour"] == 20.0
    assert op["threshold"] in THRESHOLDS and op["k"] in KS
    assert "fall rule chosen on validation" in fit.stdout

    from action_rec.evaluation import evaluate
    from action_rec.inference import Predictor
    from action_rec.inference.stream import LiveModel
    from action_rec.labeling import load_predictor

    pred = Predictor(d / "runs/e2e/best.ckpt")
    assert (pred.rule.threshold, pred.rule.k, pred.rule.m) == (op["threshold"], op["k"], op["k"])
    assert load_predictor(d / "runs/e2e/best.ckpt").rule == pred.rule  # batch labelling
    assert LiveModel(pred).rule == pred.rule  # live mode
    r = evaluate(d / "runs/e2e/best.ckpt", d / "data/synth/test", tmp_path / "rep", progress=False)
    assert r["checkpoint"]["rule"]["threshold"] == op["threshold"] and r["checkpoint"]["rule"]["k"] == op["k"]
    # an explicit override still wins (label --threshold / --fall-k)
    assert load_predictor(d / "runs/e2e/best.ckpt", threshold=0.9, fall_k=3).rule.threshold == 0.9


def test_test_and_predict_commands(project):
    d, _ = project
    t = run("test", "--config", "cfg.yaml", "--ckpt_path", "runs/e2e/best.ckpt", cwd=d)
    assert "accuracy" in t.stdout
    p = run("predict", "--config", "cfg.yaml", "--ckpt_path", "runs/e2e/best.ckpt", cwd=d)
    out = Path(p.stdout.strip().split("written to ")[-1])
    rows = list(csv.DictReader(open(d / out)))
    assert len(rows) == 3 and {r["true"] for r in rows} == {"falling", "running", "walking"}
    assert all(r["predicted"] in ("falling", "running", "walking") for r in rows)


def test_extract_skips_cached_videos(project):
    d, _ = project
    e = run("extract", "--config", "cfg.yaml", cwd=d)
    assert "0 extracted, 12 already cached, 0 failed" in e.stdout


def test_unknown_config_key_gets_a_suggestion(project, tmp_path):
    d, _ = project
    bad = dict(CONFIG, data=dict(CONFIG["data"], windw=8))
    (d / "bad.yaml").write_text(yaml.safe_dump(bad))
    p = run("fit", "--config", "bad.yaml", cwd=d, check=False)
    assert p.returncode != 0 and "windw" in p.stderr and "did you mean 'window'" in p.stderr
    p = run("fit", "--config", "cfg.yaml", "--trainer.max_epocs", "1", cwd=d, check=False)
    assert p.returncode != 0 and "max_epocs" in p.stderr


def test_missing_dataset_and_foreign_checkpoint(project, tmp_path):
    d, _ = project
    p = run("fit", "--config", "cfg.yaml", "--data.data", "nowhere", cwd=d, check=False)
    assert p.returncode == 2 and "action-rec synth" in p.stderr
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "other.ckpt")
    from action_rec.inference import CheckpointError, load_classifier
    with pytest.raises(CheckpointError, match="not an action_rec checkpoint"):
        load_classifier(tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_classifier(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("content", [b"hello\n", b"", b'{"a": 1}', bytes(range(256)) * 20, b"PK\x03\x04" + b"\0" * 40])
def test_a_file_that_is_no_checkpoint_gets_a_clear_error(tmp_path, content):
    from action_rec.inference import CheckpointError, load_classifier

    (tmp_path / "x.ckpt").write_bytes(content)
    with pytest.raises(CheckpointError, match="x.ckpt: not a"):
        load_classifier(tmp_path / "x.ckpt")


def test_a_truncated_checkpoint_gets_a_clear_error(tmp_path):
    from tests.conftest import write_checkpoint

    from action_rec.inference import CheckpointError, load_classifier

    data = write_checkpoint(tmp_path / "good.ckpt").read_bytes()
    load_classifier(tmp_path / "good.ckpt")
    (tmp_path / "cut.ckpt").write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt: not a readable PyTorch checkpoint"):
        load_classifier(tmp_path / "cut.ckpt")


def test_help_lists_every_command():
    p = subprocess.run([*CMD, "--help"], capture_output=True, text=True)
    for c in ("synth", "extract", "fit", "validate", "test", "predict", "backbones"):
        assert c in p.stdout


def test_every_shipped_config_parses():
    from action_rec.cli import check_config
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 4
    for cfg in configs:
        check_config(str(cfg))
        text = subprocess.run([*CMD, "fit", "--config", str(cfg), "--print_config"], capture_output=True,
                              text=True)
        assert text.returncode == 0, f"{cfg.name}: {text.stderr}"
        from action_rec.backbones import list_backbones

        assert yaml.safe_load(text.stdout)["data"]["backbone"] in list_backbones()


def test_cv_scores_each_fold_on_held_out_sources(project, tmp_path):
    """`action-rec cv`: K trainings, each tested on whole sources it never saw; a table of mean ± std."""
    d, _ = project
    clips = sorted((d / "data/synth").glob("*/*/*.mp4"))
    lines = ["path,label,source_repo"] + [f"{c},{c.parent.name},src{i % 6}" for i, c in enumerate(clips)]
    (d / "real.csv").write_text("\n".join(lines) + "\n")
    p = run("cv", "--config", "cfg.yaml", "--folds", "2", "--out", str(tmp_path / "cv"), "--runs",
            str(tmp_path / "runs"), "--data.data", "real.csv", "--data.group_column", "source_repo",
            "--data.stratify", "true", "--data.val_fraction", "0.3", "--trainer.max_epochs", "1",
            "--model.fall_m", "5", "--model.members", "2", "--ensemble", str(tmp_path / "ens" / "best.ckpt"), cwd=d)
    res = json.loads((tmp_path / "cv" / "cv.json").read_text())["results"]["1.0"]
    assert [f["fold"] for f in res["folds"]] == [0, 1]
    for f in res["folds"]:  # each fold tested with its own model, not an earlier fold's (trained on its test set)
        assert Path(f["checkpoint"]).is_relative_to(tmp_path / "runs" / "sub1" / f"fold{f['fold']}"), f["checkpoint"]
    assert sum(f["clips"] for f in res["folds"]) == len(clips)  # every clip tested exactly once
    assert res["summary"]["accuracy"]["folds"] == 2 and 0 <= res["summary"]["accuracy"]["mean"] <= 1
    assert "| 100% | 2 |" in (tmp_path / "cv" / "cv.md").read_text() and "cv.md" in p.stdout
    pooled = res["pooled"]  # the folds' confusion matrices summed: every clip once
    assert pooled["clips"] == len(clips) and np.asarray(pooled["confusion_matrix"]).sum() == len(clips)
    assert np.isclose(pooled["accuracy"], sum(f["accuracy"] * f["clips"] for f in res["folds"]) / len(clips))
    bad = run("cv", "--config", "cfg.yaml", "--folds", "1", cwd=d, check=False)
    assert bad.returncode == 2 and "--folds must be >= 2" in bad.stderr

    # --ensemble: the fold models (here each two LSTMs trained side by side, model.members 2) packed into one
    # checkpoint that gives their mean probabilities, every member once
    from action_rec.inference import load_classifier

    ens = load_classifier(tmp_path / "ens" / "best.ckpt")
    folds = [load_classifier(f["checkpoint"]) for f in res["folds"]]
    assert [f.hparams.members for f in folds] == [2, 2] and ens.hparams.members == 4
    assert ens.class_names == folds[0].class_names
    x = torch.randn(3, 8, ens.hparams.feature_dim)
    with torch.no_grad():
        torch.testing.assert_close(ens(x).softmax(-1), torch.stack([m(x).softmax(-1) for m in folds]).mean(0),
                                   rtol=1e-4, atol=1e-5)
    point = ens.operating_point  # chosen on every held-out clip pooled, not on one fold's validation split
    assert point and "held-out clips of 2 folds" in point["chosen_on"] and f"{len(clips)} clips" in point["chosen_on"]
    assert ens.rule.threshold == point["threshold"] and ens.rule.k == point["k"]
    assert ens.rule.m == point["m"] == 5  # the alert's hold (model.fall_m) is part of the stored rule
    assert "ensemble of 2 fold models written to" in p.stdout
    again = run("fit", "--config", "cfg.yaml", "--ckpt_path", str(tmp_path / "ens" / "best.ckpt"), cwd=d, check=False)
    assert again.returncode == 2 and "Lightning's trainer state" in again.stderr
    sub = run("cv", "--config", "cfg.yaml", "--subsample", "0.5", "--ensemble", "e.ckpt", cwd=d, check=False)
    assert sub.returncode == 2 and "leave out --subsample" in sub.stderr


def test_cv_seeds_train_each_fold_per_seed_and_average_them(project, tmp_path):
    """`cv --seeds 0,1`: every fold trains once per seed; its held-out clips are scored by the average of its seeds'
    models (fold<i>/seeds.ckpt) and --ensemble packs all folds x seeds."""
    from action_rec.inference import load_classifier

    d, _ = project
    clips = sorted((d / "data/synth").glob("*/*/*.mp4"))
    lines = ["path,label,source_repo"] + [f"{c},{c.parent.name},src{i % 6}" for i, c in enumerate(clips)]
    (d / "real.csv").write_text("\n".join(lines) + "\n")
    args = ["cv", "--config", "cfg.yaml", "--folds", "2", "--out", str(tmp_path / "cv"), "--runs", str(tmp_path / "r"),
            "--data.data", "real.csv", "--data.group_column", "source_repo", "--data.stratify", "true",
            "--data.val_fraction", "0.3", "--trainer.max_epochs", "1"]
    p = run(*args, "--seeds", "1,0", "--workers", "2", "--ensemble", str(tmp_path / "ens.ckpt"), cwd=d)
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    rows = cv["results"]["1.0"]["folds"]
    assert cv["seeds"] == [0, 1] and [(r["fold"], r["seed"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in rows:
        assert Path(r["checkpoint"]).is_relative_to(tmp_path / "r" / "sub1" / f"fold{r['fold']}" / f"seed{r['seed']}")
    assert "ensemble of 4 fold models" in p.stdout and load_classifier(tmp_path / "ens.ckpt").hparams.members == 4
    assert "and the seeds 0, 1; pooled: each clip once per seed" in (tmp_path / "cv" / "cv.md").read_text()
    assert cv["results"]["1.0"]["pooled"]["clips"] == 2 * len(clips)
    fold0 = load_classifier(tmp_path / "r" / "sub1" / "fold0" / "seeds.ckpt")
    seeds = [load_classifier(r["checkpoint"]) for r in rows[:2]]
    x = torch.randn(2, 8, fold0.hparams.feature_dim)
    with torch.no_grad():
        torch.testing.assert_close(fold0(x).softmax(-1), torch.stack([m(x).softmax(-1) for m in seeds]).mean(0),
                                   rtol=1e-4, atol=1e-5)
    # The trainings ran two at once, in processes of one thread each; one at a time they give the very same models.
    alone = args[:args.index("--runs")] + ["--runs", str(tmp_path / "alone"), *args[args.index("--runs") + 2:]]
    run(*alone, "--seeds", "1,0", "--workers", "1", cwd=d)
    for r in rows:
        fold = Path("sub1") / f"fold{r['fold']}" / f"seed{r['seed']}" / "best.ckpt"
        a, b = (load_classifier(root / fold).state_dict() for root in (tmp_path / "r", tmp_path / "alone"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    both = run(*args, "--seeds", "0", "--seed_everything", "3", cwd=d, check=False)
    assert both.returncode == 2 and "--seeds or --seed_everything, not both" in both.stderr
    bad = run(*args, "--seeds", "a", cwd=d, check=False)
    assert bad.returncode == 2 and "--seeds takes comma-separated integers" in bad.stderr
    bad = run(*args, "--workers", "0", cwd=d, check=False)
    assert bad.returncode == 2 and "--workers must be >= 1" in bad.stderr


# --------------------------------------------------------------------------- bad settings: one line, exit 2
@pytest.fixture
def config(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["action-rec"])  # main() gets the args; LightningCLI warns if argv has others
    # seed_everything off: Lightning's "Seed set to" log line would go to a stream an earlier test captured
    cfg = dict(CONFIG, data=dict(CONFIG["data"], data=str(tiny_dataset), cache_dir=str(tmp_path / "cache")),
               trainer=dict(CONFIG["trainer"], default_root_dir=str(tmp_path / "runs")), seed_everything=False)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "cfg.yaml"


def one_line_error(capsys, cmd):
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("action-rec")]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(f"action-rec {cmd}: error: "), err
    return lines[0].removeprefix(f"action-rec {cmd}: error: ")


@pytest.mark.parametrize("args, msg", [
    (["--data.window", "0"], "data.window must be >= 2 frames (the LSTM's sequence length), got 0"),
    (["--data.window", "-1"], "data.window must be >= 2 frames (the LSTM's sequence length), got -1"),
    (["--data.fps", "0"], "data.fps must be > 0 (frames sampled per second of video), got 0.0"),
    (["--model.fall_k", "0"], "fall_k must be an integer >= 1 (windows), got 0"),
    (["--model.fall_m", "0"], "fall_m must be an integer >= 1 (windows), got 0"),
    (["--data.resiz", "letterbox"], "unrecognized arguments: --data.resiz letterbox — did you mean '--data.resize'?"),
    (["--trainer.max_epoch", "1"], "did you mean '--trainer.max_epochs'?"),
    (["--data.window", "two"], "Parser key \"data.window\": Expected a <class 'int'>. Got value: two"),
    (["--data.features", "persons"], "Expected a typing.Literal['frame', 'person', 'both']. Got value: persons"),
    (["--data.features", "person", "--data.detector", "/nope.pt"], "person detector weights not found: /nope.pt"),
    (["--data.features", "person", "--data.detector_size", "250"], "detector_size must be a multiple of 32"),
    (["--model.members", "0"], "members must be an integer >= 1 (LSTMs trained side by side), got 0"),
])
def test_bad_fit_settings_are_one_line_errors(config, capsys, args, msg):
    from action_rec.cli import main

    assert main(["fit", "--config", str(config), *args]) == 2
    assert msg in one_line_error(capsys, "fit")


@pytest.mark.parametrize("content, msg", [
    (b"\x90\xffdata: {}\n", "not a text file (a config is UTF-8 YAML, e.g. configs/quickstart.yaml)"),
    (b"data:\n  fps: [8\nmodel: {}\n", "not valid YAML at line 3, column 6: expected ',' or ']', but got ':'"),
])
def test_a_corrupt_config_is_a_one_line_error(tmp_path, capsys, content, msg):
    from action_rec.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    for cmd in ("fit", "cv"):
        assert main([cmd, "--config", str(bad)]) == 2
        assert one_line_error(capsys, cmd) == f"{bad}: {msg}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # nothing written


def test_one_class_a_file_as_root_dir_and_a_pickled_checkpoint(config, tmp_path, tiny_dataset, capsys):
    from action_rec.cli import main

    import shutil
    one = tmp_path / "one"
    shutil.copytree(tiny_dataset / "walking", one / "walking")
    assert main(["fit", "--config", str(config), "--data.data", str(one)]) == 2
    assert one_line_error(capsys, "fit") == (f"{one}: a classifier needs at least two classes, found only 'walking'; "
                                             "add a folder (or manifest rows) of another class, e.g. the clips it "
                                             "should not confuse with this one")
    (tmp_path / "afile").write_text("keep me")
    assert main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "afile")]) == 2
    assert one_line_error(capsys, "fit") == (f"--trainer.default_root_dir {tmp_path}/afile: is a file; give a folder "
                                             "(it is created if missing)")
    assert (tmp_path / "afile").read_text() == "keep me"

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"state_dict": Evil()}, tmp_path / "evil.ckpt")
    assert main(["test", "--config", str(config), "--ckpt_path", str(tmp_path / "evil.ckpt")]) == 2
    assert "evil.ckpt: not an action_rec checkpoint" in one_line_error(capsys, "test")
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_callback_in_the_config_replaces_the_default(config):
    """configs/real_pose.yaml's AfterWarmupCheckpoint is the run's only ModelCheckpoint: it decides best.ckpt and no
    default callback writes a second `best` picked by another rule beside it."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from action_rec.training.checkpoint import AfterWarmupCheckpoint, first_candidate_epoch
    from action_rec.training.cli import ActionCLI

    cfg = yaml.safe_load(config.read_text())
    cfg["trainer"]["max_epochs"] = 3
    cfg["trainer"]["callbacks"] = [{"class_path": "action_rec.training.checkpoint.AfterWarmupCheckpoint",
                                    "init_args": {"monitor": "val/loss", "mode": "min", "filename": "kept"}}]
    config.write_text(yaml.safe_dump(cfg))
    cli = ActionCLI(args=["fit", "--config", str(config)])
    checkpoints = [c for c in cli.trainer.callbacks if isinstance(c, ModelCheckpoint)]
    assert len(checkpoints) == 1 and isinstance(checkpoints[0], AfterWarmupCheckpoint)
    kept = Path(cli.trainer.checkpoint_callback.best_model_path)
    assert sorted(p.name for p in kept.parent.glob("*.ckpt")) == ["kept.ckpt"]
    assert torch.load(kept, map_location="cpu", weights_only=False)["epoch"] >= first_candidate_epoch(3) == 1
    stable = Path(cfg["trainer"]["default_root_dir"]) / "best.ckpt"  # the stable copy is of that model
    assert stable.read_bytes() == kept.read_bytes()


def test_version_and_whole_option_names_everywhere(capsys):
    from action_rec import __version__
    from action_rec.cli import main

    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"action-rec {__version__}"
    p = subprocess.run([*CMD, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("action-rec ")
    for argv in (["synth", "--tra", "1"], ["evaluate", "--ckpt", "x", "--data", "d", "--out", "o", "--cache", "c"],
                 ["synth", "--workers", "0"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --tra 1 — did you mean '--train'?" in err
    assert "unrecognized arguments: --cache c — did you mean '--cache-dir'?" in err
    assert "argument --workers: must be >= 1, got 0" in err


def test_synth_classes_option_is_checked(capsys, tmp_path):
    from action_rec.cli import main

    for classes, bad in (("walking,jumping", "unknown class 'jumping'"), (",", "no classes given")):
        assert main(["synth", "--out", str(tmp_path / "s"), "--classes", classes]) == 2
        assert one_line_error(capsys, "synth") == f"{bad}; valid classes: walking, running, falling, other"
    assert not (tmp_path / "s").exists()
    assert main(["synth", "--out", str(tmp_path / "s"), "--classes", "other", "--train", "1", "--val", "0",
                 "--test", "0", "--workers", "1"]) == 0
    assert [p.name for p in (tmp_path / "s").rglob("*.mp4")] == ["other_train_0000.mp4"]
    with pytest.raises(SystemExit):
        main(["synth", "--help"])
    assert "--classes" in capsys.readouterr().out
