"""Model: takes windows of T feature rows; hands on class logits. ActionLSTM (lstm: projection, LayerNorm, 2-layer
LSTM, with step() for streaming) inside the LightningModule that owns the loss, metrics, optimiser and the fall
rule's operating point (classifier); ensemble packs several trained nets into one ActionLSTM that averages
them. Checkpoints are this LightningModule's; inference rebuilds it from one.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".lstm": "ActionLSTM State",
    ".ensemble": "pack",
})
