"""Features: every sampled frame through the frozen backbone, once. Takes videos and a backbone; hands on a
(frames, D) float32 array per video, kept in an on-disk cache keyed by the backbone identity and the sampling rate
(cache). For `features: person/both` the row describes the main person instead: detector, tracker, crop embedding
and box geometry (person).
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".cache": "ExtractReport FeatureCache extract extract_video",
    "action_rec.utils.io": "atomic_write atomic_write_text is_temp_of remove_stale_temps",
})
