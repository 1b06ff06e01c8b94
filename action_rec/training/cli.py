"""LightningCLI wiring: YAML -> data module -> model, with the data's facts linked into the model.

The data module knows the class names, the backbone's feature width and identity; linking them into the
model at instantiation puts them in the checkpoint's hyper-parameters, so inference needs no config.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from ..data.datamodule import ActionDataModule
from ..decision.rule import decide
from ..model.classifier import ActionClassifier
from ..utils.io import atomic_write, atomic_write_text

TRAINER_DEFAULTS = {
    "max_epochs": 30,
    "accelerator": "auto",
    "devices": 1,
    "default_root_dir": "runs/default",
    "log_every_n_steps": 5,
}


def trainer_defaults() -> dict:
    """A fresh checkpoint callback per run: one shared instance kept the best score and path of an earlier run in
    the same process, so `action-rec cv` scored folds 1..K-1 with fold 0's model (trained on their test sources).
    A config's own ModelCheckpoint replaces it (configs/real_pose.yaml: training/checkpoint.py)."""
    return {**TRAINER_DEFAULTS,
            "callbacks": [ModelCheckpoint(monitor="val/loss", mode="min", filename="best", save_last=True)]}


def format_results(r: dict) -> str:
    names = r["class_names"]
    w = max(8, *(len(n) for n in names))
    lines = [f"clips: {r['clips']}   accuracy: {r['accuracy']:.4f}   macro-F1: {r['macro_f1']:.4f}",
             "confusion matrix (rows = true, columns = predicted):",
             " " * (w + 2) + " ".join(f"{n:>{w}}" for n in names)]
    for n, row in zip(names, r["confusion_matrix"]):
        lines.append(f"{n:>{w}}  " + " ".join(f"{v:>{w}}" for v in row))
    fall, op = r.get("fall"), r.get("operating_point")
    if op:
        lines.append(f"fall rule chosen on validation: threshold {op['threshold']:.2f}, k {op['k']} (validation: "
                     f"recall {_fmt(op['recall'])}, {_fmt(op['false_alerts_per_hour'], 1)} false alerts/h; "
                     f"target <= {op['target_false_alerts_per_hour']:g}/h)")
        if op.get("recall") == 0:
            lines.append("warning: within that false-alert target no rule caught a validation fall, so this alarm will "
                         "rarely fire; raise model.target_false_alerts_per_hour or add validation falls")
    if fall:
        lines.append(f"falls: recall {_fmt(fall['recall'])}, specificity {_fmt(fall.get('specificity'))}, "
                     f"{_fmt(fall['false_alerts_per_hour'], 1)} false alerts per hour of non-fall video")
    return "\n".join(lines)


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


class ActionCLI(LightningCLI):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("trainer_defaults", trainer_defaults())
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        # Whole keys only (--data.resiz is an error, not --data.resize), and parse errors raised for the
        # CLI to print as one line instead of a usage dump of every Trainer option.
        kwargs.setdefault("parser_kwargs", {"allow_abbrev": False, "exit_on_error": False})
        super().__init__(ActionClassifier, ActionDataModule, *args, **kwargs)

    def parse_arguments(self, parser, args):
        """Parsed, then the settings Lightning would only trip over later, with a traceback, are checked
        (before Lightning itself reads --ckpt_path for its hyper-parameters)."""
        super().parse_arguments(parser, args)
        from ..utils.pathcheck import check_folder_target

        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config
        check_folder_target(cfg.get("trainer.default_root_dir"), "--trainer.default_root_dir")
        ckpt = cfg.get("ckpt_path")
        if ckpt and str(ckpt) not in ("best", "last", "hpc", "registry") and not str(ckpt).startswith("registry:") \
                and "://" not in str(ckpt):
            from ..inference.predictor import load_classifier

            from ..inference.predictor import CheckpointError

            # Our own reader: weights only, and a one-line CheckpointError for a missing, foreign or pickled
            # file (Lightning's is a traceback around "Weights only load failed").
            load_classifier(ckpt)
            if "pytorch-lightning_version" not in torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True):
                raise CheckpointError(f"{ckpt}: holds the model but not Lightning's trainer state, which "
                                      f"`{sub or 'this command'}` restores; use a checkpoint written by "
                                      "`action-rec fit` (this one works with label, live and evaluate)")

    def _instantiate_trainer(self, config, callbacks):
        """A ModelCheckpoint among the config's callbacks (e.g. configs/real_pose.yaml's) replaces the default one
        instead of running beside it: the first decides best.ckpt, so the second would only write files nobody uses."""
        own = config.get("callbacks") or []
        if any(isinstance(c, ModelCheckpoint) for c in (own if isinstance(own, list) else [own])):
            self.trainer_defaults = {k: v for k, v in self.trainer_defaults.items() if k != "callbacks"}
        return super()._instantiate_trainer(config, callbacks)

    def add_arguments_to_parser(self, parser):
        for key in ("class_names", "feature_dim", "data_spec"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")

    def _ckpt_callback(self) -> ModelCheckpoint | None:
        return self.trainer.checkpoint_callback

    def after_fit(self):
        cb = self._ckpt_callback()
        best = cb.best_model_path if cb else ""
        self._plot_curves(Path(best).parent if best else None)
        if self.datamodule.clips.get("test"):
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)
            self._report("test", Path(best).parent if best else Path(self.trainer.log_dir))
        if best:
            # A stable path for the newest run's best model, next to the versioned one.
            stable = Path(self.trainer.default_root_dir) / "best.ckpt"
            atomic_write(stable, lambda tmp: shutil.copyfile(best, tmp))
            print(f"\nbest checkpoint: {best}\n      copied to: {stable}")

    def _plot_curves(self, ckpt_dir: Path | None):
        """training_curves.png from the logger's own files, next to the checkpoint (and a copy next to
        the stable best.ckpt); a plotting problem never fails a finished training run."""
        log_dir = getattr(self.trainer.logger, "log_dir", None)
        if not log_dir:
            return
        try:
            from ..evaluation.plots import read_history, training_curves

            path = training_curves(read_history(log_dir), (ckpt_dir or Path(log_dir)) / "training_curves.png")
            if path is None:
                return
            if ckpt_dir:
                stable = Path(self.trainer.default_root_dir) / path.name
                atomic_write(stable, lambda tmp: shutil.copyfile(path, tmp))
            print(f"training curves: {path}")
        except Exception as e:  # noqa: BLE001
            print(f"training curves not plotted: {e}")

    def after_test(self):
        self._report("test", Path(self.trainer.log_dir))

    def after_validate(self):
        self._report("val", Path(self.trainer.log_dir))

    def _report(self, stage: str, out_dir: Path):
        r = self.model.results.get(stage)
        if not r or getattr(self, "_reported", None) == id(r):
            return
        self._reported = id(r)
        print(f"\n{stage} split, clip level:\n{format_results(r)}")
        path = out_dir / f"{stage}_metrics.json"
        atomic_write_text(path, json.dumps(r, indent=2))
        print(f"metrics written to {path}")

    def after_predict(self):
        """One CSV row per clip: path, true label, predicted label, confidence, per-class probability."""
        outputs = self.trainer.predict_loop.predictions or []
        probs = torch.cat([o["probs"] for o in outputs])
        clip = torch.cat([o["clip"] for o in outputs])
        items = self.datamodule.clip_items["test"]
        names = self.model.class_names
        out = Path(self.trainer.log_dir) / "predictions.csv"

        def write(tmp):
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["path", "true", "predicted", "confidence", *names])
                for c, item in enumerate(items):
                    p = probs[clip == c].numpy()
                    idx, conf, _ = decide(p, names, self.model.rule)
                    w.writerow([item.path, item.label, names[idx], f"{conf:.4f}",
                                *(f"{v:.4f}" for v in p.mean(0))])
        atomic_write(out, write)
        print(f"predictions for {len(items)} clips written to {out}")
