"""Video: the first stage. Takes video files, cameras and stream URLs; hands on RGB frames sampled at the model's
rate by timestamp (reader), decoded and fitted to the backbone's input in worker processes for batch labelling
(decoding), read live by a capture thread (capture), and draws predictions back onto frames (overlay).

OpenCV and numpy only: nothing here imports torch.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".reader": "VIDEO_EXTENSIONS VideoInfo VideoReadError clip_duration_s is_video_file iter_sampled num_samples "
               "prefetch probe read_sampled",
})
