"""Batch labelling (`action-rec label`): takes files, folders or globs and a checkpoint or bundle; hands on
labels.csv (a row per video), a per-window JSONL timeline and annotated copies.

discovery finds the videos, run drives decoding, embedding and the video decision (LabelRun, label_videos),
outputs appends and resumes the result files, locking keeps one run per output, annotate writes annotated copies,
distributed scales out under Lightning's predict loop, cli is the command around it.

    from action_rec.labeling import label_videos
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".discovery": "Found InputError discover_videos find_videos",
    ".run": "LabelRun check_request default_workers error_result iter_results label_videos load_predictor "
            "make_result safe_result",
    "action_rec.inference.results": "Job VideoResult",
})
