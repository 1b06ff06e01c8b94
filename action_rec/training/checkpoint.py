"""Which epoch's model a training keeps: the lowest validation loss, but never one from the learning-rate warm-up.

The optimiser's one-cycle schedule (model/classifier.py) spends its first WARMUP_FRACTION of the steps raising the
learning rate; a model from those epochs is unfinished by design. On a large validation split the lowest loss seldom
falls there. On the real recipe's (about 13 clips of small sources per fold) it did: the loss of a near-uniform model
(ln 4 = 1.39 for 4 classes) beat every later epoch's, whose clip accuracy rose from 0.23 to 0.77 while a few confident
mistakes raised the loss. So that fold kept its untrained epoch-0 model for all three of `make real`'s seeds, and as
3 of the ensemble's 15 members they held every probability below about 0.85 (README "Body pose").

configs/real_pose.yaml names this callback; it then replaces the default ModelCheckpoint (training/cli.py).
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import ModelCheckpoint

from ..model.classifier import WARMUP_FRACTION


def first_candidate_epoch(max_epochs: int | None) -> int:
    """The first epoch after the warm-up (0-based), or the last epoch where training is shorter than that."""
    if not max_epochs or max_epochs < 1:
        return 0
    return min(math.ceil(WARMUP_FRACTION * max_epochs), max_epochs - 1)


class AfterWarmupCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that saves nothing (so keeps no candidate) before first_candidate_epoch: from then on it is
    the plain callback, e.g. the lowest `val/loss` of the epochs after the warm-up."""

    def _in_warmup(self, trainer) -> bool:
        return trainer.current_epoch < first_candidate_epoch(trainer.max_epochs)

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._in_warmup(trainer):
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module):
        if not self._in_warmup(trainer):
            super().on_validation_end(trainer, pl_module)
