"""The model a training keeps: the lowest validation loss after the learning-rate warm-up, never one from it."""

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from action_rec.model.classifier import WARMUP_FRACTION
from action_rec.training.checkpoint import AfterWarmupCheckpoint, first_candidate_epoch


class LossFallsThenRises(BoringModel):
    """Logs a validation loss that is lowest at epoch 0 (the pattern of a tiny validation split: a near-uniform
    model's ln 4 beats every trained epoch's), and second lowest at `dip`."""

    def __init__(self, dip: int):
        super().__init__()
        self.dip = dip

    def validation_step(self, batch, batch_idx):
        e = self.current_epoch
        self.log("val/loss", torch.tensor(0.5 if e == 0 else 0.8 if e == self.dip else 1.0 + e))


@pytest.mark.parametrize("max_epochs, first", [(30, 5), (10, 2), (2, 1), (1, 0)])
def test_first_candidate_epoch_follows_the_warmup(max_epochs, first):
    assert first_candidate_epoch(max_epochs) == first
    assert first >= min(WARMUP_FRACTION * max_epochs, max_epochs - 1)


@pytest.mark.parametrize("callback, kept_epoch", [(AfterWarmupCheckpoint, 7),
                                                   (L.pytorch.callbacks.ModelCheckpoint, 0)])
def test_a_warmup_epoch_is_never_kept(tmp_path, callback, kept_epoch):
    """The plain callback keeps epoch 0's model; ours the best epoch after the warm-up (of 10 epochs, epoch 2 on:
    the dip at epoch 7)."""
    cb = callback(monitor="val/loss", mode="min", filename="best", save_last=True)
    trainer = L.Trainer(max_epochs=10, limit_train_batches=2, limit_val_batches=1, callbacks=[cb], logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(LossFallsThenRises(dip=7))
    kept = torch.load(cb.best_model_path, map_location="cpu", weights_only=False)
    assert kept["epoch"] == kept_epoch
