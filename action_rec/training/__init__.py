"""Training: takes a YAML config; hands on a checkpoint. LightningCLI wiring (cli: `action-rec fit/validate/test/
predict`, the data module's facts linked into the model's hyper-parameters, the stable best.ckpt, curves), which
epoch's model a training keeps (checkpoint: the lowest validation loss after the learning-rate warm-up) and
cross-validation over held-out sources (crossval: `action-rec cv`; `--ensemble` packs its fold models into one
checkpoint). Nothing outside training/ and action_rec.cli imports it.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".cli": "ActionCLI TRAINER_DEFAULTS format_results trainer_defaults",
})
