"""The flat module paths of action_rec before the stage packages (ea1556f and earlier), kept importable.

`import action_rec.errors` gives the module `action_rec.utils.errors` itself (the same object, so a monkeypatch on
either name patches both); `action_rec.synth_body`, split in three, is a module that looks its names up in them.
Old names that became packages of the same name (`action_rec.inference`, `action_rec.labeling`, ...) need nothing
here: those packages export the old module's names. New code imports from the new homes.
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.machinery import ModuleSpec

# old module (under action_rec) -> new module
MOVED = {
    "annotate": "labeling.annotate",
    "argtypes": "utils.argtypes",
    "capture": "video.capture",
    "classifier": "model.classifier",
    "crossval": "training.crossval",
    "datasets": "data.datasets",
    "decoding": "video.decoding",
    "distributed": "labeling.distributed",
    "errors": "utils.errors",
    "label_cli": "labeling.cli",
    "live_tracks": "live.tracks",
    "locking": "labeling.locking",
    "onnx_runtime": "backbones.onnx_runtime",
    "operating_point": "decision.operating_point",
    "outputs": "labeling.outputs",
    "overlay": "video.overlay",
    "pathcheck": "utils.pathcheck",
    "person": "features.person",
    "plots": "evaluation.plots",
    "preprocess": "backbones.preprocess",
    "report": "evaluation.report",
    "runtime": "export.runtime",
    "sinks": "live.sinks",
    "splitfiles": "data.splitfiles",
    "stream": "inference.stream",
    "synth_actions": "synth.actions",
    "synth_props": "synth.props",
    "tracks": "inference.tracks",
    "windows": "decision.windows",
}
# old module split over several new ones -> {new module: "its names"}
SPLIT = {
    "synth_body": {
        "synth.body": "A ANGLES ARMS CORE D FEET P POINTS TAU TRUNK Shape skeleton _dir _rotate",
        "synth.motion": "Motion _ik _rot _smooth",
        "synth.figure": "HAIR SKIN Look draw_body random_look _ARCS _RING _capsule _capsules _circles_hull _disc "
                        "_draw_head _fill _hsv _shaded_hull",
    },
}
PREFIX = __package__ + "."


class _OldPath:
    """Finder and loader (importlib protocols) for the old paths; answers for nothing else."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        old = fullname[len(PREFIX):] if fullname.startswith(PREFIX) else None
        return ModuleSpec(fullname, _OldPath) if old in MOVED or old in SPLIT else None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        old = module.__name__[len(PREFIX):]
        if old in MOVED:  # the import system hands out what sys.modules holds after this: the new module itself
            sys.modules[module.__name__] = import_module(PREFIX + MOVED[old])
        else:
            from .utils.lazy import lazy_exports

            table = {PREFIX + new: names for new, names in SPLIT[old].items()}
            module.__getattr__, module.__dir__ = lazy_exports(module.__name__, table)


def install() -> None:
    """First on sys.meta_path: an editable install's finder would otherwise look for the old file in its tree."""
    if _OldPath not in sys.meta_path:
        sys.meta_path.insert(0, _OldPath)
