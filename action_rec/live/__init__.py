"""Live mode (`action-rec live`): takes a camera, a video file or a stream and a checkpoint or bundle; hands on a
window with the label and alerts, JSON lines, alert hooks and a recording. app runs the loop (capture thread, model
worker, display), tracks keeps one streaming classifier and alert per tracked person, sinks are the outputs.
"""

from ..utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".app": "ModelWorker WINDOW_TITLE as_events benchmark_report build_parser check_outputs display_problem "
            "format_benchmark main run slow_backbone_warning",
})
