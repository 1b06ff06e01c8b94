"""Evaluation (`action-rec evaluate`): takes a checkpoint and a labelled dataset; hands on metrics.json,
predictions.csv, PNG figures and report.md. scoring computes the metrics with label's own per-video rule, plots
draws the figures (also the training curves), report writes the markdown.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".scoring": "EvalSet checkpoint_identity class_metrics clip_rule compare evaluate fall_metrics load_eval_set",
})
