"""Decision: takes per-window class probabilities; hands on a clip's label, its fall events and live alerts.
The fall rule (rule: the fall probability above a threshold for k consecutive windows), windows over a feature
sequence and the video decision made from them (windows), and the rule's operating point chosen on validation clips
for a target false-alert rate (operating_point). Numpy only: shared by training, batch, live, evaluation and the
torch-free runtime.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".rule": "FallAlert FallRule decide fall_events",
})
