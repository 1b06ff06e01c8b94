"""`action-rec`: one command for the whole pipeline.

fit/validate/test/predict go through LightningCLI (YAML configs, typed arguments, unknown keys are
errors); synth, extract and backbones are small commands of their own.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import os
import sys
from pathlib import Path

from .utils.argtypes import add_person_args, int_at_least, parser
from .utils.errors import UsageError

USAGE = """usage: action-rec COMMAND [options]

Commands:
  synth       render the built-in synthetic walking/running/falling (and optional `other`) dataset
  extract     extract backbone features of a config's dataset into the cache (fit does this too)
  fit         train (LightningCLI): action-rec fit --config configs/quickstart.yaml
  validate    score a checkpoint on the validation split (--config ... --ckpt_path ...)
  test        score a checkpoint on the test split (--config ... --ckpt_path ...)
  predict     label the test split's videos with a checkpoint; writes predictions.csv
  backbones   list the available frozen backbones
  live        label a camera / video file / stream as it plays, with fall alerts (--ckpt ... --source 0)
  evaluate    score a checkpoint on a dataset: metrics.json, plots, predictions.csv, report.md
  label       label a folder of videos with a checkpoint: labels.csv (+ timeline, annotated copies)
  cv          cross-validate a config over folds of whole sources (real-footage spread, learning curve)
  export      write a checkpoint as a torch-free bundle (ONNX + JSON) that label/live run via --ckpt BUNDLE/

Run `action-rec COMMAND --help` for a command's options; `action-rec --version` prints the version.
"""

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
# Packages of the full install that the torch-free runtime install (requirements-runtime.txt) leaves out.
FULL_INSTALL_ONLY = ("torch", "torchvision", "lightning", "torchmetrics", "jsonargparse", "ultralytics", "yaml",
                     "matplotlib", "onnx", "efficientnet_lite_pytorch")
TOP_LEVEL_KEYS = ("seed_everything", "trainer", "model", "data", "ckpt_path")


class ConfigError(UsageError):
    pass


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def _section_keys() -> dict[str, list[str]]:
    """The keys of each config section: the typed __init__ arguments jsonargparse builds them from."""
    import lightning as L

    from .data.datamodule import ActionDataModule
    from .model.classifier import ActionClassifier

    sections = {"data": ActionDataModule, "model": ActionClassifier, "trainer": L.Trainer}
    return {k: [n for n in inspect.signature(c.__init__).parameters if n != "self"] for k, c in sections.items()}


def suggest_option(arg: str) -> str:
    """" — did you mean '--data.resize'?" for an unknown command-line key such as --data.resiz."""
    key = arg.split("=", 1)[0].removeprefix("--")
    section, _, sub = key.partition(".")
    sections = _section_keys()
    if sub and section not in sections:
        close = difflib.get_close_matches(section, list(sections), n=1, cutoff=0.6)
        return f" — did you mean '--{close[0]}.{sub}'?" if close else ""
    valid = sections[section] if sub else [*TOP_LEVEL_KEYS, "config", "print_config"]
    close = difflib.get_close_matches(sub or key, valid, n=1, cutoff=0.6)
    return f" — did you mean '--{section + '.' if sub else ''}{close[0]}'?" if close else ""


def lightning_error(e: Exception) -> str:
    """jsonargparse's parse error on one line, with a suggestion for a misspelt key."""
    msg = " ".join(str(e).split())
    if msg.startswith("unrecognized arguments:"):
        unknown = [a for a in msg.removeprefix("unrecognized arguments:").split() if a.startswith("--")]
        if unknown:
            msg += suggest_option(unknown[0])
    return msg


def check_config(path: str) -> None:
    """Friendly, early errors for misspelt keys (jsonargparse would reject them too, less kindly)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (a config is UTF-8 YAML, e.g. configs/quickstart.yaml)") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"{p}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: a config is a YAML mapping of {', '.join(TOP_LEVEL_KEYS)}")
    sections = _section_keys()
    for key, value in cfg.items():
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(f"{p}: unknown key '{key}'{_suggest(key, TOP_LEVEL_KEYS)}")
        if key in sections and isinstance(value, dict):
            valid = sections[key]
            for sub in value:
                if sub not in valid and sub not in ("class_path", "init_args"):
                    raise ConfigError(f"{p}: unknown key '{key}.{sub}'{_suggest(sub, valid)}")


def cmd_synth(argv: list[str]) -> int:
    ap = parser(prog="action-rec synth", description=(
        "Render procedurally animated videos of a person walking, running and falling (and, with "
        "--classes ...,other, the non-falls a fall alarm must ignore) into OUT/{train,val,test}/<class>/*.mp4. "
        "Deterministic for a seed; existing clips are kept."))
    ap.add_argument("--out", default="data/synth", help="output folder (default: %(default)s)")
    ap.add_argument("--train", type=int_at_least(0), default=60, help="clips per class in train (%(default)s)")
    ap.add_argument("--val", type=int_at_least(0), default=15, help="clips per class in val (%(default)s)")
    ap.add_argument("--test", type=int_at_least(0), default=30, help="clips per class in test (%(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    ap.add_argument("--workers", type=int_at_least(1), default=os.cpu_count() or 1)
    ap.add_argument("--classes", default="walking,running,falling",
                    help="comma-separated classes to render, of walking, running, falling, other (standing still, "
                         "sitting/lying down on purpose, picking up, leaving the view, empty scenes, sprints) "
                         "(default: %(default)s)")
    a = ap.parse_args(argv)
    from .synth.dataset import check_classes

    classes = check_classes(a.classes.split(","))
    from .utils.pathcheck import check_folder_target

    check_folder_target(a.out, "--out")
    from .synth.dataset import synthesize

    counts = synthesize(a.out, a.train, a.val, a.test, seed=a.seed, workers=a.workers, classes=classes)
    print(f"synthetic dataset in {a.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_backbones(argv: list[str]) -> int:
    """List the registered frozen backbones."""
    parser(prog="action-rec backbones", description=cmd_backbones.__doc__).parse_args(argv)
    from .backbones.registry import list_backbones

    for name in list_backbones():
        print(name)
    return 0


def cmd_extract(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: action-rec extract --config CONFIG.yaml [--data.KEY VALUE ...]\n\n"
              "Extracts the features of every video of the config's dataset once into data.cache_dir;\n"
              "videos already extracted (same bytes, wherever they lie) are skipped, bad ones reported.")
        return 0
    from .training.cli import ActionCLI

    cli = ActionCLI(args=argv, run=False)  # parses and checks the whole config, builds the data module
    cli.datamodule.prepare_data()
    print(cli.datamodule.report.summary())
    print(f"cache: {cli.datamodule.cache.dir}")
    return 0


def cmd_evaluate(argv: list[str]) -> int:
    ap = parser(prog="action-rec evaluate", description=(
        "Score a checkpoint on a labelled dataset and write metrics.json, predictions.csv, "
        "confusion_matrix.png, per_class.png and report.md into --out. Labels the checkpoint does not "
        "know (e.g. 'other') are reported apart, as clips that should not trigger a fall. A clip listed "
        "twice counts once; one listed with two labels is an error. Unreadable or missing clips are "
        "listed and the run goes on; the exit code is then 1."))
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--ckpt", help="checkpoint written by `action-rec fit`")
    which.add_argument("--compare", nargs="+", metavar="CKPT",
                       help="several checkpoints: each gets OUT/<name>/, plus one table and one plot")
    ap.add_argument("--data", required=True, help=(
        "a folder of class folders, a CSV manifest (path,label,...), UCF101/HMDB51 split files "
        "(the folder with classInd.txt, or testlist02.txt for split 2), or a training config (.yaml): "
        "its test split"))
    ap.add_argument("--out", required=True, help="output folder, e.g. reports/NAME/")
    ap.add_argument("--split", choices=["all", "train", "val", "test"], help=(
        "which clips (default: a config's or the dataset's own test split when it marks splits, else all)"))
    ap.add_argument("--cache-dir", help="feature cache (default: the config's, else cache/features)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--weights", help="backbone weights file, if not where the checkpoint says")
    ap.add_argument("--strict-labels", action="store_true",
                    help="fail on a label the checkpoint does not know instead of reporting it apart")
    add_person_args(ap, "score every tracked person, a clip is `falling` if any track raises a fall event (the "
                        "default for person/both checkpoints, as `label` and `live`; an error for whole-frame ones)",
                    "score the main person's single sequence per clip (as in training)")
    a = ap.parse_args(argv)
    from .evaluation.report import fmt
    from .evaluation.scoring import compare, evaluate, load_eval_set
    from .utils.pathcheck import check_folder_target

    check_folder_target(a.out, "--out")
    for note in load_eval_set(a.data, a.split).duplicates:
        print(f"action-rec evaluate: warning: {note}", file=sys.stderr)
    kw = {"cache_dir": a.cache_dir, "split": a.split, "device": a.device, "weights": a.weights,
          "strict_labels": a.strict_labels, "tracks": a.tracks, "max_tracks": a.max_tracks}
    if a.compare:
        rows = compare(a.compare, a.data, a.out, **kw)
        print(Path(a.out, "comparison.md").read_text())
        print(f"comparison of {len(rows)} checkpoints written to {a.out}")
        return 1 if any(r["unreadable"] for r in rows) else 0
    r = evaluate(a.ckpt, a.data, a.out, **kw)
    n, fall = r["clips"], r["fall"] or {}
    print(f"{n['scored']} of {n['listed']} clips scored ({n['unreadable']} unreadable); "
          f"{n['known_class']} of the checkpoint's classes, {n['unknown_class']} of others"
          + (f"; {n['duplicates_dropped']} listed again, counted once" if n["duplicates_dropped"] else ""))
    without = r.get("macro_f1_without_other")
    print(f"accuracy {fmt(r['accuracy'])}   macro-F1 {fmt(r['macro_f1'])}"
          + (f" ({fmt(without)} without `other`)" if without is not None else "") + "   fall sensitivity "
          f"{fmt(fall.get('sensitivity'))} (alerted {fmt(fall.get('alert_recall'))})   specificity {fmt(fall.get('specificity'))}   "
          f"false alerts/h {fmt(fall.get('false_alerts_per_hour'), 1)}")
    for u in r["unreadable"]:
        print(f"  unreadable: {u['path']}: {u['reason'].removeprefix(u['path'] + ': ')}")
    if n["unreadable"]:
        print(f"errors: {n['unreadable']} of {n['listed']} clips could not be read; the metrics cover the "
              f"other {n['scored']}")
    print(f"report: {Path(a.out) / 'report.md'}")
    return 1 if n["unreadable"] else 0


def cmd_live(argv: list[str]) -> int:
    from .live.app import main as live_main

    return live_main(argv)


def cmd_cv(argv: list[str]) -> int:
    from .training.crossval import main as cv_main

    return cv_main(argv)


def cmd_export(argv: list[str]) -> int:
    ap = parser(prog="action-rec export", description=(
        "Write a checkpoint as a self-contained bundle folder that runs without PyTorch (numpy, OpenCV and ONNX "
        "Runtime only): backbone.onnx (the checkpoint's own backbone graph, int8 when it is int8), head.onnx (the "
        "LSTM with its (h, c) state as explicit inputs and outputs) and bundle.json (classes, preprocessing, fps, "
        "window, fall rule, shapes, sha256 of each file). `action-rec label/live --ckpt BUNDLE/` run it. Checked "
        "against the checkpoint before it is written; whole-frame checkpoints only (person/both need the "
        "ultralytics detector)."))
    ap.add_argument("--ckpt", required=True, help="checkpoint written by `action-rec fit`")
    ap.add_argument("--out", required=True, help="bundle folder to create, e.g. model/")
    ap.add_argument("--force", action="store_true", help="replace an earlier bundle in --out")
    a = ap.parse_args(argv)
    from .export.bundle import bundle_size, export_bundle

    meta = export_bundle(a.ckpt, a.out, force=a.force)
    r, b = meta["fall_rule"], meta["backbone"]
    sizes = ", ".join(f"{name} {Path(a.out, name).stat().st_size / 1e6:.1f} MB" for name in meta["files"])
    print(f"bundle: {a.out} ({bundle_size(a.out) / 1e6:.1f} MB: {sizes}, bundle.json)\n"
          f"  {b['backbone']} {b['precision']} @{meta['preprocess']['size']} px, {meta['fps']:g} samples/s, "
          f"window {meta['window']}, classes {', '.join(meta['classes'])}\n"
          f"  fall rule: {r['fall_class']} above {r['threshold']:g} for {r['k']} windows; checked against the "
          f"checkpoint (window probabilities within 1e-4)\n"
          f"run it: action-rec label VIDEOS --ckpt {a.out}   (install: requirements-runtime.txt, no torch)")
    return 0


def cmd_label(argv: list[str]) -> int:
    from .labeling.cli import cmd_label as label_main

    return label_main(argv)


# Commands of our own (argparse); fit/validate/test/predict go to LightningCLI.
COMMANDS = {"synth": cmd_synth, "backbones": cmd_backbones, "extract": cmd_extract, "live": cmd_live,
            "evaluate": cmd_evaluate, "label": cmd_label, "cv": cmd_cv,
            "export": cmd_export}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:
        return version("action-rec")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return __version__


def main(argv: list[str] | None = None) -> int:
    explicit = argv is not None  # LightningCLI warns when given args that are also sys.argv
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("--version", "-V", "version"):
        print(f"action-rec {_version()}")
        return 0
    cmd, rest = argv[0], argv[1:]
    prog = f"action-rec {cmd}" if cmd in COMMANDS or cmd in LIGHTNING_COMMANDS else "action-rec"
    try:
        for i, a in enumerate(rest):
            if a == "--config" and i + 1 < len(rest):
                check_config(rest[i + 1])
            elif a.startswith("--config="):
                check_config(a.split("=", 1)[1])
        if cmd in COMMANDS:
            return COMMANDS[cmd](rest)
        if cmd in LIGHTNING_COMMANDS:
            from .training.cli import ActionCLI

            ActionCLI(args=argv if explicit else None)
            return 0
    except argparse.ArgumentError as e:  # jsonargparse's, raised instead of a usage dump (exit_on_error off)
        print(f"{prog}: error: {lightning_error(e)}\n(`{prog} --help` lists every option)", file=sys.stderr)
        return 2
    except (UsageError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in FULL_INSTALL_ONLY:
            raise
        # the torch-free runtime install (requirements-runtime.txt): only label/live with an export bundle
        print(f"{prog}: error: {e.name} is not installed: this is the torch-free runtime install, which runs "
              "`action-rec label/live --ckpt BUNDLE/` with a bundle written by `action-rec export`; everything else "
              "(and a .ckpt) needs the full install (`pip install action-rec`)", file=sys.stderr)
        return 2
    except Exception as e:  # friendly one-liners for the errors users cause; others keep their traceback
        from .utils.errors import BackboneWeightsError

        if isinstance(e, BackboneWeightsError):
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
        raise
    print(f"action-rec: unknown command '{cmd}'{_suggest(cmd, [*COMMANDS, *LIGHTNING_COMMANDS])}\n\n{USAGE}",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
