"""Inference: takes a checkpoint and videos (or their features); hands on per-window probabilities, a label and
fall events per video. Predictor rebuilds the backbone and the LSTM from the checkpoint alone (predictor); the
streaming classifier advances the LSTM frame by frame for live mode (stream); person checkpoints run per tracked
person (tracks); results holds a labelled video's record. Never imports training code.

    from action_rec.inference import Predictor
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".predictor": "CheckpointError Predictor load_classifier",
    "action_rec.decision.windows": "VideoPrediction video_prediction windows",
})
