"""Scoring a checkpoint on a labelled dataset: metrics.json, predictions.csv, two PNGs and report.md.

Nothing here decodes, windows or decides on its own: features come from the feature cache (extracted
once per backbone identity, so evaluating again is instant), clip labels and fall events from
labeling.make_result, i.e. decision.decide — the very function and rule `label` gives a video's label with.

Person/both checkpoints are scored per tracked person by default (inference/tracks.py), as `label` and `live` run
them: a clip is `falling` if any track raises a fall event, else it takes the label of the person seen most
surely (the detector's confidence summed over their samples); every track's fall events are alerts. `tracks=False` (--main-person) scores the main person's single sequence, as
before. The rule used is in metrics.json (`clip_rule`) and report.md.

Clips whose label the checkpoint does not know (e.g. `other`) are kept apart: they are not in accuracy,
F1 or the confusion matrix (those need a true class the model could answer), they get a table of their
own, and as clips that should not trigger a fall they count for fall specificity and false alerts/hour.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from torchmetrics.functional.classification import (multiclass_accuracy, multiclass_confusion_matrix,
                                                    multiclass_f1_score, multiclass_precision,
                                                    multiclass_recall)

from ..data.datasets import SPLITS, assign_splits, scan, with_regions
from ..data.items import DatasetError, VideoItem
from ..decision import operating_point as op
from ..features import cache as features
from ..utils.io import atomic_write, atomic_write_text
from ..video.reader import VideoReadError, clip_duration_s, probe

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    items: list[VideoItem]
    identity: dict
    cache_dir: str | None = None  # a config's data.cache_dir
    duplicates: list[str] = field(default_factory=list)  # clips listed again, each counted once


def _fingerprint(items: list[VideoItem]) -> str:
    """Stable across machines: paths relative to the dataset's common folder, labels and sizes."""
    root = os.path.commonpath([os.path.dirname(os.path.abspath(it.path)) for it in items])
    h = hashlib.sha1()
    for it in sorted(items, key=lambda i: i.path):
        p = Path(it.path)
        size = p.stat().st_size if p.exists() else -1
        h.update(f"{os.path.relpath(os.path.abspath(it.path), root)}\t{it.label}\t{size}\n".encode())
    return h.hexdigest()[:16]


def load_eval_set(data: str | os.PathLike, split: str | None = None) -> EvalSet:
    """The clips to score. `data`: folder, CSV manifest, split files, or a training config (.yaml).
    split=None: a config's test split, a dataset's explicit test split when it marks splits, else every
    clip; "all" forces every clip."""
    src = Path(data)
    if split not in (None, "all", *SPLITS):
        raise ValueError(f"split must be one of all, {', '.join(SPLITS)}; got {split!r}")
    kw, cache_dir = {}, None
    if src.suffix.lower() in (".yaml", ".yml"):
        if not src.is_file():
            raise DatasetError(f"{src}: config not found")
        cfg = (yaml.safe_load(src.read_text()) or {}).get("data") or {}
        cfg = cfg.get("init_args", cfg)
        if "data" not in cfg:
            raise DatasetError(f"{src}: no data.data (the dataset) in this config")
        # The same arguments ActionDataModule hands to assign_splits, so this is its very test split.
        kw = {"val_fraction": cfg.get("val_fraction", 0.15), "test_fraction": cfg.get("test_fraction", 0.15),
              "seed": cfg.get("split_seed", 0), "group_pattern": cfg.get("group_pattern"),
              "stratify": bool(cfg.get("stratify", False)), "folds": int(cfg.get("folds", 1)),
              "fold": int(cfg.get("fold", 0))}
        group_column = cfg.get("group_column")
        cache_dir, config, src = cfg.get("cache_dir"), str(data), cfg["data"]
        split = split or "test"
    else:
        group_column = None
    # A listed clip that is missing is scored as unreadable, like a corrupt one: the run goes on.
    items, duplicates = scan(src, allow_missing=True, group_column=group_column)
    if kw:  # a training config's regions, as its datamodule read the clips
        items = with_regions(items, cfg.get("regions"))
    explicit = any(it.split for it in items)
    split = split or ("test" if explicit else "all")
    if split != "all":
        items = assign_splits(items, **kw)[split]
        if not items:
            raise DatasetError(f"{data}: the {split} split is empty (use --split all to score every clip)")
    sources = src if isinstance(src, list) else [src]
    ident = {"source": ", ".join(map(str, sources)), "kind": " + ".join(_kind(Path(x)) for x in sources),
             "split": split,
             "split_from": ("config" if kw else "explicit" if explicit else None) if split != "all" else None,
             "clips": len(items), "labels": dict(sorted(Counter(it.label for it in items).items())),
             "duplicates_dropped": len(duplicates), "fingerprint": _fingerprint(items)}
    if kw:
        ident["config"] = config
        ident["split_settings"] = kw
    return EvalSet(items, ident, cache_dir, duplicates)


def _kind(src: Path) -> str:
    from ..data.splitfiles import find_split_files

    found = find_split_files(src)
    if found:
        return f"{'UCF101' if found[0] == 'ucf' else 'HMDB51'}-style split files (split {found[2]})"
    return "CSV manifest" if src.is_file() else "folder per class"


def checkpoint_identity(path: str | os.PathLike, predictor) -> dict:
    spec = predictor.model.hparams.data_spec
    ident = spec["backbone"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    # Lightning also stores the data module's arguments: what the model was trained on.
    raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    trained_on = (raw.get("datamodule_hyper_parameters") or {}).get("data")
    rule = predictor.rule
    return {"path": str(path), "sha256": h.hexdigest()[:16], "class_names": list(predictor.class_names),
            "backbone": ident["backbone"], "weights": ident["weights"], "features": ident.get("features", "frame"),
            "image_size": ident["preprocess"]["size"],
            "feature_dim": ident["feature_dim"], "fps": spec["fps"], "window": spec["window"],
            "window_s": spec["window"] / spec["fps"], "trained_on": trained_on,
            "rule": {"fall_class": rule.fall_class, "threshold": rule.threshold, "k": rule.k, "m": rule.m}}


OTHER = "other"  # the class of clips that must not raise an alarm (sitting, lying down on purpose, ...)


def class_metrics(true: list[int], pred: list[int], class_names: list[str]) -> dict:
    """torchmetrics over the clips of known classes. Macro-F1 averages the classes present in the
    data or the predictions (torchmetrics leaves out classes with neither). For a checkpoint with an `other`
    class, macro_f1_without_other averages the action classes' F1 alone (the same per-class F1s): the figure a
    checkpoint without `other` gets when its `other` clips are scored apart, e.g. over walking/running/falling."""
    n = len(class_names)
    if not true:
        return {"accuracy": None, "macro_f1": None, "macro_f1_without_other": None,
                "confusion_matrix": [[0] * n for _ in range(n)],
                "per_class": {c: {"precision": None, "recall": None, "f1": None, "support": 0}
                              for c in class_names}}
    t, p = torch.tensor(true), torch.tensor(pred)
    prec, rec, f1 = (fn(p, t, n, average="none").tolist()
                     for fn in (multiclass_precision, multiclass_recall, multiclass_f1_score))
    support = torch.bincount(t, minlength=n).tolist()
    seen = torch.bincount(p, minlength=n) + torch.bincount(t, minlength=n) > 0
    actions = [i for i, c in enumerate(class_names) if c != OTHER and seen[i]]
    without = (sum(f1[i] for i in actions) / len(actions)) if OTHER in class_names and actions else None
    return {"accuracy": multiclass_accuracy(p, t, n, average="micro").item(),
            "macro_f1": multiclass_f1_score(p, t, n, average="macro").item(), "macro_f1_without_other": without,
            "confusion_matrix": multiclass_confusion_matrix(p, t, n).tolist(),
            "per_class": {c: {"precision": prec[i], "recall": rec[i], "f1": f1[i], "support": support[i]}
                          for i, c in enumerate(class_names)}}


def fall_metrics(rows: list[dict], fall_class: str, class_names: list[str]) -> dict | None:
    """Sensitivity over the fall clips, specificity and false alerts (fall events of the shared rule)
    per hour over every other clip, unknown classes included."""
    if fall_class not in class_names:
        return None
    fall = [r for r in rows if r["true"] == fall_class]
    other = [r for r in rows if r["true"] != fall_class]
    detected = sum(r["predicted"] == fall_class for r in fall)
    alerted = sum(bool(r["fall_events"]) for r in fall)  # what live mode would have alarmed on
    false_pos = sum(r["predicted"] == fall_class for r in other)
    alerts = sum(len(r["fall_events"]) for r in other)
    seconds = sum(r["duration_s"] for r in other)
    return {"fall_class": fall_class, "fall_clips": len(fall), "detected": detected,
            "sensitivity": detected / len(fall) if fall else None,
            "alerted": alerted, "alert_recall": alerted / len(fall) if fall else None,
            "non_fall_clips": len(other), "false_positive_clips": false_pos,
            "specificity": (len(other) - false_pos) / len(other) if other else None,
            "false_alerts": alerts, "non_fall_hours": seconds / 3600,
            "false_alerts_per_hour": alerts / (seconds / 3600) if seconds > 0 else None}


def _unknown_check(items: list[VideoItem], names: list[str], source: str, strict: bool) -> list[str]:
    unknown = sorted({it.label for it in items} - set(names))
    if unknown and strict:
        it = next(i for i in items if i.label not in names)
        raise DatasetError(f"{it.where or it.path}: label '{it.label}' is not a class of the checkpoint "
                           f"({', '.join(names)}); "
                           "without --strict-labels such clips are scored apart as non-fall clips")
    return unknown


def clip_rule(features, pred) -> dict:
    """How a clip's label and alerts were decided (metrics.json `clip_rule`, report.md)."""
    from ..features.person import PersonFeatures
    from ..inference.tracks import TrackFeatures

    if isinstance(features, TrackFeatures):
        return {"mode": "tracks", "max_tracks": features.max_tracks, "relink_samples": features.relink,
                "text": "per tracked person (any-track rule): `falling` if any track has a fall event, else the "
                        "label of the person seen most surely (detector confidence summed over time); each track's "
                        f"events are alerts (at most "
                        f"{features.max_tracks} people followed; --main-person: the main person only)"}
    if isinstance(pred.backbone, PersonFeatures):
        return {"mode": "main person", "text": "the main person's single sequence per clip (--main-person)"}
    return {"mode": "whole frame", "text": "one sequence of whole-frame features per clip"}


def score_clip(pred, path: str, feats):
    """label's own per-video result for a clip's cached features (the same label, events and, per track, the
    any-track rule), and the clip's duration in seconds."""
    from ..inference.results import Job
    from ..labeling.run import make_result

    try:
        info = probe(path)
    except VideoReadError:
        info = None
    duration = clip_duration_s(info, len(feats), pred.fps)
    return make_result(pred, Job(path, Path(path).name), feats, {"duration_s": duration}, None), duration


def fall_sequences(result, fall: int):
    """The window probabilities of class `fall`: one array, or a tuple of them (one per track)."""
    if result.tracks is not None:
        return tuple(t.window_probs[:, fall] for t in result.tracks)
    return result.window_probs[:, fall]


def evaluate(ckpt: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
             cache_dir: str | None = None, split: str | None = None, device: str = "cpu",
             weights: str | None = None, strict_labels: bool = False, progress: bool = True,
             tracks: bool | None = None, max_tracks: int = 8) -> dict:
    """Score `ckpt` on `data`, write metrics.json, predictions.csv, the PNGs and report.md into `out`;
    returns the metrics. tracks/max_tracks: as for `label` (person/both checkpoints: None/True = per tracked
    person, the any-track rule; False = the main person; True with a whole-frame checkpoint: UsageError)."""
    from ..inference.predictor import Predictor
    from ..inference.tracks import events_text, per_track_features
    from ..utils.pathcheck import check_folder_target
    from . import plots, report

    check_folder_target(out, "--out")  # before any work, not at the end of it
    eval_set = load_eval_set(data, split)
    pred = Predictor(ckpt, device=device, weights=weights)
    names = pred.class_names
    unknown = _unknown_check(eval_set.items, names, eval_set.identity["source"], strict_labels)
    embed = per_track_features(pred, tracks, max_tracks) or pred.backbone
    cache_root = cache_dir or eval_set.cache_dir or "cache/features"
    # a clip without a region of its own gets the checkpoint's for its frame size, as label would read it
    items = with_regions(eval_set.items, pred.regions)
    regions = {it.path: it.region for it in items}
    cache, ext = features.extract([it.path for it in eval_set.items], embed, pred.fps, cache_root,
                                  progress=progress, regions=regions)
    rows, unreadable, curve_clips = [], [], []
    for it in eval_set.items:
        if it.path in ext.failed or not cache.has(it.path, regions[it.path]):
            unreadable.append({"path": it.path, "label": it.label,
                               "reason": ext.failed.get(it.path, "no features in the cache")})
            continue
        r, duration = score_clip(pred, it.path, cache.load(it.path, regions[it.path])[0])
        if pred.rule.fall_class in names:
            curve_clips.append(op.Clip(fall_sequences(r, names.index(pred.rule.fall_class)), duration,
                                       it.label == pred.rule.fall_class))
        rows.append({"path": it.path, "true": it.label, "predicted": r.label, "confidence": r.confidence,
                     "known": it.label in names, "duration_s": duration,
                     "fall_events": [list(e) for e in r.events], "probs": r.probs,
                     **({"tracks": len(r.tracks), "track_events": events_text(r.tracks)}
                        if r.tracks is not None else {})})
    known = [r for r in rows if r["known"]]
    result = {"checkpoint": checkpoint_identity(ckpt, pred), "dataset": eval_set.identity,
              "clip_rule": clip_rule(embed, pred), "class_names": names,
              "clips": {"listed": len(eval_set.items), "scored": len(rows), "unreadable": len(unreadable),
                        "known_class": len(known), "unknown_class": len(rows) - len(known),
                        "duplicates_dropped": len(eval_set.duplicates)},
              "duplicates": eval_set.duplicates,
              **class_metrics([names.index(r["true"]) for r in known],
                              [names.index(r["predicted"]) for r in known], names),
              "fall": fall_metrics(rows, pred.rule.fall_class, names),
              "unknown_classes": {u: _unknown_summary([r for r in rows if r["true"] == u]) for u in unknown},
              "unreadable": unreadable}
    # the curve with the checkpoint's hold (model.fall_m; None: m = k), as its point was chosen
    curve = op.sweep(curve_clips, m=pred.model.hparams.get("fall_m")) if any(c.is_fall for c in curve_clips) else []
    if curve:
        here = op.score(curve_clips, pred.rule.threshold, pred.rule.k, pred.rule.m).as_dict()
        result["operating_curve"] = {"points": [p.as_dict() for p in curve], "checkpoint_point": here,
                                     "chosen_on_validation": pred.model.operating_point}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_predictions(out / "predictions.csv", rows, unreadable, names)
    plots.confusion_matrix(result["confusion_matrix"], names, out / "confusion_matrix.png",
                           f"{Path(ckpt).name} on {Path(eval_set.identity['source']).name} "
                           f"({len(known)} clips of known classes)")
    plots.per_class(result["per_class"], out / "per_class.png")
    if curve:
        plots.operating_curve(result["operating_curve"]["points"], result["operating_curve"]["checkpoint_point"],
                              out / "operating_curve.png")
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=2))
    atomic_write_text(out / "report.md", report.evaluation_report(result, rows))
    return result


def _unknown_summary(rows: list[dict]) -> dict:
    return {"clips": len(rows), "predicted": dict(Counter(r["predicted"] for r in rows)),
            "fall_alerts": sum(len(r["fall_events"]) for r in rows)}


def _write_predictions(path: Path, rows: list[dict], unreadable: list[dict], names: list[str]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "true", "predicted", "confidence", "known_class", "duration_s",
                        "fall_events", *(f"p_{n}" for n in names), "error"])
            for r in rows:  # per track: 'ID:START-END', as label's CSV
                events = r.get("track_events", ";".join(f"{a:.2f}-{b:.2f}" for a, b in r["fall_events"]))
                w.writerow([r["path"], r["true"], r["predicted"], f"{r['confidence']:.4f}", int(r["known"]),
                            f"{r['duration_s']:.3f}", events, *(f"{r['probs'][n]:.4f}" for n in names), ""])
            for u in unreadable:  # every listed clip has a row; these were not scored
                w.writerow([u["path"], u["label"], "", "", "", "", "", *([""] * len(names)), u["reason"]])
    atomic_write(path, write)


def _name(ckpt: str, used: set[str]) -> str:
    p = Path(ckpt)
    parts = [x for x in p.parent.parts if x not in ("checkpoints", ".", "..")]
    name = p.stem if p.stem not in ("best", "last") or not parts else parts[-1]
    name = re.sub(r"[^\w.-]+", "_", name) or "ckpt"
    base, i = name, 2
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def compare(ckpts: list[str], data: str | os.PathLike, out: str | os.PathLike, **kw) -> list[dict]:
    """Evaluate each checkpoint into out/<name>/, then one table (md, csv, json) and one plot."""
    from ..inference.predictor import load_classifier
    from . import plots, report

    from ..utils.pathcheck import check_folder_target

    check_folder_target(out, "--out")
    for ckpt in ckpts:  # a bad checkpoint fails before any work, not after the first evaluations
        load_classifier(ckpt)
    out, used, rows = Path(out), set(), []
    for ckpt in ckpts:
        name = _name(ckpt, used)
        r = evaluate(ckpt, data, out / name, **kw)
        c, fall = r["checkpoint"], r["fall"] or {}
        rows.append({"name": name, "checkpoint": str(ckpt), "backbone": c["backbone"], "weights": c["weights"],
                     "fps": c["fps"], "window": c["window"], "clips": r["clips"]["known_class"],
                     "unreadable": r["clips"]["unreadable"], "accuracy": r["accuracy"],
                     "macro_f1": r["macro_f1"], "fall_sensitivity": fall.get("sensitivity"),
                     "fall_specificity": fall.get("specificity"),
                     "false_alerts_per_hour": fall.get("false_alerts_per_hour"), "report": f"{name}/report.md"})

    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    atomic_write(out / "comparison.csv", write_csv)
    atomic_write_text(out / "comparison.json", json.dumps(rows, indent=2))
    plots.comparison(rows, out / "comparison.png")
    atomic_write_text(out / "comparison.md", report.comparison_report(rows, data))
    return rows
