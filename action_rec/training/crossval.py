"""`action-rec cv`: cross-validation over sources, so a real-footage figure is a spread, not one lucky split.

The clips without an explicit split (e.g. the real clips of a manifest grouped by `source_repo`) are dealt into
K class-balanced folds of whole sources (datasets.assign_splits); each fold trains the config's model on
everything else (synthetic clips keep their own train/val split) and is scored on its held-out sources with the
shared clip rule. K = the number of sources is leave-one-source-out. Features come from the cache, so each fold
costs one LSTM training (seconds to a minute on 2 cores).

    action-rec cv --config configs/real.yaml --folds 5 --out reports/real-cv
    action-rec cv --config configs/real.yaml --folds 5 --subsample 0.25,0.5,1   # a learning curve
    action-rec cv --config configs/real.yaml --folds 5 --ensemble runs/real/best.ckpt
    action-rec cv --config configs/real_pose.yaml --folds 5 --seeds 0,1,2 --ensemble runs/real/best.ckpt

--ensemble packs the K fold models into one checkpoint that averages their probabilities (ensemble.py): every real
source trains K-1 of them, and the fall rule's operating point is chosen on all folds' held-out clips pooled, real
clips only, instead of one small validation split diluted by easy synthetic clips. One model trained on one split
swung between catching no fall and 462 false alerts/h with the seed; the average of K is steadier. For person
models the held-out clips are scored per tracked person (track_clips), as label, live and evaluate count alerts,
and their sequences are kept in cv.json (`held_out_tracks`). --seeds trains each fold once per seed: on ~100 real
clips one training swings with its seed (held-out pooled accuracy 0.55 vs 0.35 for seeds 0 and 1 of one recipe),
their average much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..utils.io import atomic_write, atomic_write_text

METRICS = (("accuracy", "accuracy"), ("macro_f1", "macro-F1"), ("fall_recall", "fall recall"),
           ("specificity", "specificity"), ("false_alerts_per_hour", "false alerts/h"))


def run_fold(config: str, folds: int, fold: int, subsample: float, root: Path, extra: list[str]
             ) -> tuple[dict, list, list]:
    """The fold's scores, its held-out clips' fall-probability sequences of the main person
    (operating_point.Clip), and those clips (data.items.VideoItem)."""
    from .cli import ActionCLI

    args = ["fit", "--config", config, "--data.folds", str(folds), "--data.fold", str(fold),
            "--data.subsample_train", str(subsample), "--trainer.default_root_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--data.progress", "false", *extra]
    cli = ActionCLI(args=args)
    r = cli.model.results.get("test")
    if r is None:
        raise RuntimeError(f"fold {fold}: no test result (is the fold empty?)")
    fall = r.get("fall") or {}
    row = {"fold": fold, "subsample": subsample, "clips": r["clips"], "accuracy": r["accuracy"],
            "macro_f1": r["macro_f1"], "fall_recall": fall.get("recall"), "specificity": fall.get("specificity"),
            "false_alerts_per_hour": fall.get("false_alerts_per_hour"),
            "confusion_matrix": r["confusion_matrix"], "class_names": r["class_names"],
            "operating_point": r.get("operating_point"),
            "train_clips": len(cli.datamodule.splits["train"]),
            "checkpoint": cli.trainer.checkpoint_callback.best_model_path,
            "cache_dir": cli.datamodule.hparams.cache_dir}
    return row, cli.model.fall_clips.get("test", []), list(cli.datamodule.clip_items["test"])


def prepare(config: str, folds: int, extra: list[str]) -> None:
    """Extract every clip's features into the cache once, here, with every core, before trainings run in parallel
    (each of them would otherwise extract the same clips at the same time)."""
    from .cli import ActionCLI

    cli = ActionCLI(args=["--config", config, "--data.folds", str(folds), "--data.fold", "0", *extra], run=False)
    cli.datamodule.prepare_data()


@contextlib.contextmanager
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_fold_alone(job: tuple) -> tuple[dict, list, list]:
    with one_thread():
        return run_fold(*job)


def train_all(jobs: list[tuple], workers: int) -> list[tuple[dict, list, list]]:
    """run_fold of each job, in order. Each training runs on one thread, `workers` of them at once in processes of
    their own: the small LSTM uses a second thread poorly, so on 2 cores two trainings of one thread each beat one of
    two (configs/real_pose.yaml, 5 folds: 72 s against 84 s one at a time on two threads, 104 s on one). One thread
    each also makes the models independent of the number of cores and of workers: torch splits a sum over threads
    differently, and on ~100 real clips a difference in the last bit moves a model's figures as much as a seed."""
    if workers <= 1 or len(jobs) == 1:
        return [_run_fold_alone(job) for job in jobs]
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch or OpenVINO threads forked mid-use
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
        return list(pool.map(_run_fold_alone, jobs))


def track_clips(rows: list[dict], held_out: list[list], progress: bool = True) -> tuple[list, list[dict]] | None:
    """The folds' held-out clips scored per tracked person, each by its fold's model: label, live and evaluate
    raise every track's events as alerts, so the fall rule is chosen on that, not on the main person's one
    sequence the models train on (a rule chosen there fired 249-1174 false alerts/h over all tracks of
    realvids). Returns (operating_point.Clip per clip, their sequences for cv.json), or None for whole-frame
    models. Extracting the tracks' features is one more pass over the clips (cached)."""
    from ..decision.operating_point import Clip
    from ..evaluation.scoring import fall_sequences, score_clip
    from ..features.cache import extract
    from ..inference.predictor import Predictor
    from ..inference.tracks import per_track_features, surest_person

    first = Predictor(rows[0]["checkpoint"])
    embed = per_track_features(first)
    if embed is None or first.rule.fall_class not in first.class_names:
        return None
    preds = [first] + [Predictor(r["checkpoint"]) for r in rows[1:]]
    cache, _ = extract([it.path for items in held_out for it in items], embed, preds[0].fps, rows[0]["cache_dir"],
                       progress=progress, regions={it.path: it.region for items in held_out for it in items})
    clips, seqs = [], []
    for fold, (pred, items) in enumerate(zip(preds, held_out)):
        fall = pred.class_names.index(pred.rule.fall_class)
        for it in items:
            if not cache.has(it.path, it.region):
                continue  # unreadable: reported by the extraction
            r, duration = score_clip(pred, it.path, cache.load(it.path, it.region)[0])
            p_fall = fall_sequences(r, fall)
            clips.append(Clip(p_fall, duration, it.label == pred.rule.fall_class))
            surest = surest_person(r.tracks or [])  # the label without events, for tracked_scores' rule
            seqs.append({"path": str(it.path), "label": it.label, "surest": surest.label if surest else r.label,
                         "fold": fold,
                         "duration_s": round(duration, 3), "p_fall": [np.round(p, 4).tolist() for p in p_fall]})
    return clips, seqs


def tracked_scores(seqs: list[dict], names: list[str], point: dict | None, checkpoint: str) -> dict:
    """The held-out clips' labels as label and evaluate give them with the ensemble's fall rule (`point`; None:
    the fold checkpoint's own rule): `falling` if any track's sequence has a fall event, else the label of the
    person seen most surely (track_clips keeps both). Pooled: what a user's clips get, where the fold table
    scores the main person the models train on."""
    from ..decision.operating_point import rule_at
    from ..decision.rule import fall_events
    from ..inference.predictor import Predictor

    rule = Predictor(checkpoint).rule
    if point is not None:
        rule = rule_at(point, rule.fall_class)
    cm = np.zeros((len(names), len(names)))
    for s in seqs:
        fell = any(fall_events(np.asarray(p), rule) for p in s["p_fall"])
        s["predicted"] = rule.fall_class if fell else s["surest"]
        if s["label"] in names and s["predicted"] in names:
            cm[names.index(s["label"]), names.index(s["predicted"])] += 1
    return scores(cm, names)


def packed(rows: list[dict]):
    """(ActionClassifier averaging the rows' best models, its hyper-parameters)."""
    from ..inference.predictor import load_classifier
    from ..model.classifier import ActionClassifier
    from ..model.ensemble import pack

    models = [load_classifier(r["checkpoint"]) for r in rows]
    net = pack([m.net for m in models])  # a config's own model.members K: each fold model adds its K
    hp = {**models[0].hparams, "members": net.members}
    model = ActionClassifier(**hp)
    model.net.load_state_dict(net.state_dict())
    return model, hp


def fold_ensembles(rows: list[dict], folds: int, root: Path) -> list[dict]:
    """With several seeds per fold: one checkpoint per fold averaging its seeds' models (root/fold<i>/seeds.ckpt),
    which scores the fold's held-out clips as the shipped ensemble's members that never saw them would."""
    import torch

    out = []
    for fold in range(folds):
        mine = [r for r in rows if r["fold"] == fold]
        if len(mine) == 1:
            out.append(mine[0])
            continue
        model, hp = packed(mine)
        path = root / f"fold{fold}" / "seeds.ckpt"
        atomic_write(path, lambda tmp: torch.save({"hyper_parameters": hp, "state_dict": model.state_dict()}, tmp))
        out.append({**mine[0], "checkpoint": str(path)})
    return out


def write_ensemble(rows: list[dict], clips: list, path: Path, unit: str = "the main person") -> dict:
    """Pack the folds' best models into one checkpoint at `path`, its fall rule chosen on the pooled held-out
    clips (scored per `unit`) for the config's false-alert target. Returns the operating point (None without
    falls or a target)."""
    import torch

    from ..decision.operating_point import choose, sweep
    from ..inference.predictor import load_classifier

    model, hp = packed(rows)
    target, point = hp.get("target_false_alerts_per_hour"), None
    if target is not None and any(c.is_fall for c in clips):
        chosen = choose(sweep(clips, m=hp.get("fall_m")), target, prefer_k=hp["fall_k"])
        point = {**chosen.as_dict(), "target_false_alerts_per_hour": float(target),
                 "chosen_on": f"the held-out clips of {len(rows)} folds ({len(clips)} clips, each scored by the "
                              f"member that never trained on its source; {unit})"}
    model.apply_operating_point(point)
    ckpt = {"hyper_parameters": hp, "state_dict": model.state_dict(),
            "ensemble": {"members": [r["checkpoint"] for r in rows], "folds": len(rows)}}
    if point:
        ckpt["operating_point"] = point
    atomic_write(path, lambda tmp: torch.save(ckpt, tmp))
    load_classifier(path)  # what label, live and evaluate will do: fails here, not later, if anything is off
    return point


def pooled(rows: list[dict]) -> dict:
    """Every fold's held-out clips scored together (the folds' confusion matrices summed): steadier than a mean over
    folds of a few dozen clips, some without a class."""
    return scores(sum(np.asarray(r["confusion_matrix"], dtype=float) for r in rows), rows[0]["class_names"])


def scores(cm: np.ndarray, names: list[str]) -> dict:
    """Accuracy, macro-F1 and recall per class of a (true x predicted) confusion matrix."""
    cm = np.asarray(cm, dtype=float)
    recall = np.divide(cm.diagonal(), cm.sum(1), out=np.zeros(len(names)), where=cm.sum(1) > 0)
    precision = np.divide(cm.diagonal(), cm.sum(0), out=np.zeros(len(names)), where=cm.sum(0) > 0)
    f1 = np.divide(2 * recall * precision, recall + precision, out=np.zeros(len(names)),
                   where=recall + precision > 0)
    return {"clips": int(cm.sum()), "accuracy": float(cm.trace() / max(cm.sum(), 1)), "macro_f1": float(f1.mean()),
            "recall": dict(zip(names, recall.round(3).tolist())), "confusion_matrix": cm.astype(int).tolist()}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for key, _ in METRICS:
        vals = [r[key] for r in rows if r[key] is not None]
        out[key] = ({"mean": statistics.fmean(vals), "std": statistics.pstdev(vals), "min": min(vals),
                     "max": max(vals), "folds": len(vals)} if vals else None)
    return out


def table(results: dict[float, dict]) -> str:
    lines = ["| real training sources kept | folds | " + " | ".join(name for _, name in METRICS) + " |",
             "| --- | --- |" + " --- |" * len(METRICS)]
    for sub, res in results.items():
        s = res["summary"]
        cells = [("n/a" if s[k] is None else
                  f"{s[k]['mean']:.{1 if k == 'false_alerts_per_hour' else 3}f} ± "
                  f"{s[k]['std']:.{1 if k == 'false_alerts_per_hour' else 3}f}") for k, _ in METRICS]
        lines.append(f"| {sub:.0%} | {len(res['folds'])} | " + " | ".join(cells) + " |")
    lines += ["", "All folds' held-out clips pooled:", "",
              "| real training sources kept | training clips per fold | clips | accuracy | macro-F1 | recall per class |",
              "| --- | --- | --- | --- | --- | --- |"]
    for sub, res in results.items():
        p = res["pooled"]
        per_class = ", ".join(f"{k} {v:.2f}" for k, v in p["recall"].items())
        train = statistics.fmean(f.get("train_clips", 0) for f in res["folds"])
        lines.append(f"| {sub:.0%} | {train:.0f} | {p['clips']} | {p['accuracy']:.3f} | {p['macro_f1']:.3f} | "
                     f"{per_class} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="action-rec cv", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="a training config, e.g. configs/real.yaml")
    ap.add_argument("--folds", type=int, default=5, help="folds of whole sources (default: %(default)s)")
    ap.add_argument("--subsample", default="1", help="comma-separated fractions of the training sources to keep "
                    "(a learning curve), e.g. 0.25,0.5,1 (default: %(default)s)")
    ap.add_argument("--out", default="reports/cv", help="cv.json and cv.md go here (default: %(default)s)")
    ap.add_argument("--runs", default="runs/cv", help="each fold's checkpoints (default: %(default)s)")
    ap.add_argument("--seeds", help="comma-separated seeds: each fold trains once per seed (--seed_everything) and "
                    "its held-out clips are scored by the average of its seeds' models; --ensemble packs them all. "
                    "A model trained on ~100 real clips swings with the seed; the average does not as much "
                    "(default: the config's seed, once)")
    ap.add_argument("--ensemble", metavar="CKPT", help="also pack the fold models into this one checkpoint, which "
                    "averages them, its fall rule chosen on all folds' held-out clips (e.g. runs/real/best.ckpt)")
    ap.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 4),
                    help="trainings run at once, one thread each (default: the cores, at most 4: %(default)s); the "
                    "models do not depend on it")
    a, extra = ap.parse_known_args(argv)
    if a.workers < 1:
        ap.error(f"--workers must be >= 1, got {a.workers}")
    if a.folds < 2:
        ap.error(f"--folds must be >= 2, got {a.folds}")
    try:
        subs = [float(x) for x in a.subsample.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--subsample takes comma-separated fractions, got {a.subsample!r}")
    if not subs or not all(0 < s <= 1 for s in subs):
        ap.error(f"--subsample fractions must be in (0, 1], got {a.subsample!r}")
    if any(not x.startswith("--") for x in extra[::2]):
        ap.error(f"unrecognised arguments: {' '.join(extra)}")
    seeds: list[int | None] = [None]
    if a.seeds:
        try:
            seeds = sorted({int(x) for x in a.seeds.split(",") if x.strip()})
        except ValueError:
            ap.error(f"--seeds takes comma-separated integers, got {a.seeds!r}")
        if not seeds:
            ap.error(f"--seeds takes comma-separated integers, got {a.seeds!r}")
        if any(x.split("=")[0] == "--seed_everything" for x in extra):
            ap.error("give the seeds with --seeds or --seed_everything, not both")
    if a.ensemble:
        if subs != [1.0]:
            ap.error("--ensemble packs models trained on every source: leave out --subsample")
        from ..utils.pathcheck import check_folder_target

        if Path(a.ensemble).is_dir():
            ap.error(f"--ensemble {a.ensemble}: is a folder; give the checkpoint file to write, "
                     "e.g. runs/real/best.ckpt")
        check_folder_target(str(Path(a.ensemble).parent), "--ensemble")
    results: dict[float, dict] = {}
    prepare(a.config, a.folds, extra)
    for sub in subs:
        root = Path(a.runs) / f"sub{sub:g}"
        runs = train_all([(a.config, a.folds, i, sub, root / f"fold{i}" / ("" if seed is None else f"seed{seed}"),
                           extra + ([] if seed is None else ["--seed_everything", str(seed)]))
                          for i in range(a.folds) for seed in seeds], a.workers)
        rows = [{**row, "seed": seed} for (row, _, _), seed in zip(runs, seeds * a.folds)]
        results[sub] = {"folds": rows, "summary": summarise(rows), "pooled": pooled(rows)}
    out = Path(a.out)
    clips, unit, held_out = [c for _, fold_clips, _ in runs for c in fold_clips], "the main person", None
    held = [items for _, _, items in runs[::len(seeds)]]  # each fold's held-out clips (the same for every seed)
    if a.ensemble and (tracked := track_clips(fold_ensembles(rows, a.folds, root), held)) is not None:
        clips, held_out = tracked
        unit = "every tracked person's alerts counted, as label, live and evaluate count them"
    point, per_track = None, None
    if a.ensemble:
        point = write_ensemble(rows, clips, Path(a.ensemble), unit)
    if held_out:
        per_track = tracked_scores(held_out, rows[0]["class_names"], point, rows[0]["checkpoint"])
    atomic_write_text(out / "cv.json", json.dumps({"config": a.config, "folds": a.folds,
                                                   **({"seeds": seeds} if seeds != [None] else {}),
                                                   "results": {str(k): v for k, v in results.items()},
                                                   **({"held_out_tracks": held_out, "tracked": per_track}
                                                      if held_out else {})},
                                                  indent=2))
    text = (f"# Cross-validation of {a.config}: {a.folds} folds of whole sources\n\n"
            "Each fold is scored on sources it never trained on (mean ± std over folds"
            + (f" and the seeds {', '.join(map(str, seeds))}; pooled: each clip once per seed" if len(seeds) > 1 else "")
            + ").\n\n" + table(results) + "\n")
    if per_track:
        text += ("\nThe same held-out clips labelled as `label` and `evaluate` label them with the ensemble's fall rule "
                 "(every tracked person; the fall event of any, else the person seen most surely"
                 + (", each fold's seeds averaged" if len(seeds) > 1 else "") + "):\n\n| clips | accuracy | macro-F1 | "
                 "recall per class |\n| --- | --- | --- | --- |\n"
                 f"| {per_track['clips']} | {per_track['accuracy']:.3f} | {per_track['macro_f1']:.3f} | "
                 + ", ".join(f"{k} {v:.2f}" for k, v in per_track["recall"].items()) + " |\n")
    atomic_write_text(out / "cv.md", text)
    print("\n" + text + f"\nwritten to {out / 'cv.md'} and {out / 'cv.json'}")
    if a.ensemble:
        rule = ("no fall rule chosen (no falls held out, or no false-alert target)" if point is None else
                f"fall rule chosen on the pooled held-out clips: threshold {point['threshold']:.2f}, k {point['k']} "
                f"(there: recall {point['recall']:.3f}, {point['false_alerts_per_hour'] or 0:.1f} false alerts/h)")
        print(f"ensemble of {len(rows)} fold models written to {a.ensemble}\n{rule}")
    return 0
