"""ActionClassifier: the LightningModule that owns the LSTM, the loss, the metrics and the optimiser.

Validation and testing score whole clips: every window of a clip is classified and the shared rule in
decision/rule.py turns the windows into one clip label, exactly as batch and live inference do.
"""

from __future__ import annotations

import math
from collections import defaultdict

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from ..decision.operating_point import Clip, choose, rule_at, score, sweep
from ..decision.rule import FallRule, decide
from ..utils.errors import UsageError
from .lstm import ActionLSTM

WARMUP_FRACTION = 0.15  # of the training steps, spent raising the learning rate (OneCycleLR's pct_start)

FORMAT_VERSION = 1  # bump when a checkpoint's hyper-parameters change meaning


class ActionClassifier(L.LightningModule):
    def __init__(self, class_names: list[str] | None = None, feature_dim: int | None = None,
                 data_spec: dict | None = None, proj_dim: int = 512, hidden: int = 256,
                 dropout: float = 0.3, motion_features: bool = True, lr: float = 2e-3, weight_decay: float = 0.05,
                 label_smoothing: float = 0.05, class_weights: list[float] | None = None,
                 balanced_loss: bool = False, fall_class: str = "falling",
                 fall_threshold: float = 0.5, fall_k: int = 2, fall_m: int | None = None,
                 target_false_alerts_per_hour: float | None = 20.0, members: int = 1,
                 format_version: int = FORMAT_VERSION):
        """
        Args:
            class_names, feature_dim, data_spec: filled in from the data module by the CLI; they are
                saved in the checkpoint so inference needs no config.
            proj_dim: width of the learned projection feeding the LSTM.
            hidden: LSTM hidden size (2 layers).
            motion_features: also feed each frame's feature change from the previous frame.
            class_weights: per-class loss weights, in class_names order.
            balanced_loss: weight the loss by inverse training-class frequency instead.
            fall_class, fall_threshold, fall_k: the clip rule (see decision/rule.py); with
                target_false_alerts_per_hour set, threshold and k are chosen on the validation clips instead.
            fall_m: the alert's hold: windows in a row below the threshold that end a fall event (None: fall_k).
                A person who stays down, or sits near the threshold, then keeps one alert instead of raising a
                new one at every dip; the falls found are the same. Chosen points keep it.
            target_false_alerts_per_hour: after each validation, pick the rule's threshold and k that catch the
                most validation falls with at most this many fall alerts per hour of non-fall validation video
                (see decision/operating_point.py); the checkpoint keeps the chosen point and every inference path
                uses it.
                None: keep fall_threshold and fall_k as given.
            members: train this many LSTMs side by side, each from its own initialisation and on its own loss,
                and average their probabilities (a deep ensemble, model/ensemble.py): steadier across seeds and
                CPUs than one, at K times the head's cost. `action-rec cv --ensemble` packs its fold models into
                one such checkpoint too.
        """
        super().__init__()
        if class_names is None or feature_dim is None:
            raise ValueError("class_names and feature_dim come from the data module; run through "
                             "`action-rec fit --config ...` or load a checkpoint")
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise UsageError(f"members must be an integer >= 1 (LSTMs trained side by side), got {members!r}")
        self.save_hyperparameters()
        self.class_names = list(class_names)
        self.rule = FallRule(fall_class, fall_threshold, fall_k, fall_k if fall_m is None else fall_m)
        self.net = ActionLSTM(feature_dim, len(class_names), proj_dim, hidden, 2, dropout, motion_features, members)
        weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        if weights is not None and len(weights) != len(class_names):
            raise ValueError(f"class_weights has {len(weights)} values for {len(class_names)} classes")
        self.register_buffer("loss_weights", weights, persistent=False)
        n = len(class_names)
        self.metrics = torch.nn.ModuleDict({
            f"{stage}_{what}": metric
            for stage in ("train", "val", "test")
            for what, metric in (("acc", MulticlassAccuracy(n, average="micro")),
                                 ("f1", MulticlassF1Score(n, average="macro")))})
        self.clip_metrics = torch.nn.ModuleDict({
            f"{stage}_{what}": metric
            for stage in ("val", "test")
            for what, metric in (("acc", MulticlassAccuracy(n, average="micro")),
                                 ("f1", MulticlassF1Score(n, average="macro")),
                                 ("cm", MulticlassConfusionMatrix(n)))})
        self._clip_probs: dict[int, list[torch.Tensor]] = defaultdict(list)
        self._clip_label: dict[int, int] = {}
        self._clip_frames: dict[int, int] = {}
        self.results: dict[str, dict] = {}
        self.operating_point: dict | None = None  # chosen on validation; saved in the checkpoint
        self.fall_clips: dict[str, list[Clip]] = {}  # the last val/test pass's clips, for `cv --ensemble`

    def apply_operating_point(self, point: dict | None) -> None:
        """Use a stored operating point (from a checkpoint or a validation epoch) as the fall rule."""
        self.operating_point = point
        if point:
            self.rule = rule_at(point, self.hparams.fall_class)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.operating_point:
            checkpoint["operating_point"] = dict(self.operating_point)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.apply_operating_point(checkpoint.get("operating_point"))

    def setup(self, stage: str):
        if self.hparams.balanced_loss and self.trainer is not None and self.trainer.datamodule is not None:
            counts = torch.tensor(self.trainer.datamodule.class_counts, dtype=torch.float)
            self.loss_weights = counts.sum() / (len(counts) * counts.clamp(min=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss(self, logits, y):
        return F.cross_entropy(logits, y, weight=self.loss_weights,
                               label_smoothing=self.hparams.label_smoothing)

    def training_step(self, batch, _):
        x, y = batch
        z = self.net.member_logits(x)  # (B, members, C)
        # Each member learns on its own loss, as K separate trainings would: a loss on their average would let
        # them lean on each other and lose the diversity that makes an ensemble better than its members.
        loss = self._loss(z.flatten(0, 1), y.repeat_interleave(z.shape[1]))
        logits = torch.logsumexp(z.log_softmax(-1), 1) - math.log(z.shape[1])
        self.metrics["train_acc"](logits, y)
        self.metrics["train_f1"](logits, y)
        self.log_dict({"train/loss": loss, "train/acc": self.metrics["train_acc"],
                       "train/f1": self.metrics["train_f1"]}, on_step=False, on_epoch=True, prog_bar=True,
                      batch_size=len(y))
        return loss

    def _eval_step(self, batch, stage: str):
        x, y, clip, frames = batch
        logits = self(x)
        self.log(f"{stage}/loss", self._loss(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y))
        self.metrics[f"{stage}_acc"](logits, y)
        self.metrics[f"{stage}_f1"](logits, y)
        self.log_dict({f"{stage}/window_acc": self.metrics[f"{stage}_acc"],
                       f"{stage}/window_f1": self.metrics[f"{stage}_f1"]}, on_epoch=True,
                      batch_size=len(y))
        probs = logits.softmax(-1).detach().cpu()
        for p, label, c, n in zip(probs, y.tolist(), clip.tolist(), frames.tolist()):
            self._clip_probs[c].append(p)
            self._clip_label[c], self._clip_frames[c] = label, n

    def _fall_clips(self, probs: dict[int, torch.Tensor]) -> list[Clip]:
        f, fps = self.class_names.index(self.hparams.fall_class), float(self.hparams.data_spec["fps"])
        return [Clip(p[:, f].numpy(), self._clip_frames[c] / fps, self._clip_label[c] == f) for c, p in probs.items()]

    def _eval_epoch_end(self, stage: str):
        probs = {c: torch.stack(self._clip_probs[c]) for c in sorted(self._clip_probs)}
        labels = [self._clip_label[c] for c in probs]
        has_fall = self.hparams.fall_class in self.class_names and bool(probs)
        if has_fall:
            self.fall_clips[stage] = self._fall_clips(probs)
        target = self.hparams.target_false_alerts_per_hour
        if stage == "val" and has_fall and target is not None:
            point = choose(sweep(self.fall_clips[stage], m=self.hparams.get("fall_m")), target,
                           prefer_k=self.hparams.fall_k)
            if point is not None:
                self.apply_operating_point({**point.as_dict(), "target_false_alerts_per_hour": float(target),
                                            "chosen_on": "validation", "epoch": int(self.current_epoch)})
        fall = None
        if has_fall:
            rule = self.rule
            fall = score(self.fall_clips[stage], rule.threshold, rule.k, rule.m).as_dict()
        preds = [decide(p.numpy(), self.class_names, self.rule)[0] for p in probs.values()]
        self._clip_probs.clear()
        self._clip_label.clear()
        self._clip_frames.clear()
        if not preds:
            return
        if fall is not None:
            f = self.class_names.index(self.hparams.fall_class)
            others = [p for p, t in zip(preds, labels) if t != f]
            fall["specificity"] = sum(p != f for p in others) / len(others) if others else None
            self.log_dict({f"{stage}/fall_recall": float(fall["recall"] or 0.0),
                           f"{stage}/false_alerts_per_hour": float(fall["false_alerts_per_hour"] or 0.0)})
        p, t = torch.tensor(preds, device=self.device), torch.tensor(labels, device=self.device)
        acc, f1, cm = (self.clip_metrics[f"{stage}_{k}"] for k in ("acc", "f1", "cm"))
        self.log_dict({f"{stage}/acc": acc(p, t), f"{stage}/f1": f1(p, t)}, prog_bar=True)
        self.results[stage] = {"clips": len(preds), "accuracy": acc.compute().item(),
                               "macro_f1": f1.compute().item(), "class_names": self.class_names,
                               "confusion_matrix": cm(p, t).tolist(), "fall": fall,
                               "operating_point": self.operating_point}
        for m in (acc, f1, cm):
            m.reset()

    def validation_step(self, batch, _):
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self):
        self._eval_epoch_end("val")

    def test_step(self, batch, _):
        self._eval_step(batch, "test")

    def on_test_epoch_end(self):
        self._eval_epoch_end("test")

    def predict_step(self, batch, _):
        x, _, clip, _ = batch
        return {"probs": self(x).softmax(-1).cpu(), "clip": clip.cpu()}

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr,
                                weight_decay=self.hparams.weight_decay)
        steps = self.trainer.estimated_stepping_batches
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.hparams.lr, total_steps=max(steps, 1),
                                                    pct_start=WARMUP_FRACTION)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
