"""report.md for an evaluation and for a comparison of checkpoints: the metrics, the figures and the
identities of the checkpoint and the dataset on one page."""

from __future__ import annotations

from pathlib import Path

MAX_LISTED = 50  # misclassified clips listed in the report; predictions.csv has them all


def fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _duration(hours: float) -> str:
    s = hours * 3600
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{hours:.1f} h"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header),
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows)]


def _rel(path: str, root: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve().parent))
    except ValueError:
        return path


def evaluation_report(r: dict, rows: list[dict]) -> str:
    c, d, n, fall = r["checkpoint"], r["dataset"], r["clips"], r["fall"]
    names = r["class_names"]
    rule = c["rule"]
    split = d["split"] if d["split"] == "all" else f"{d['split']} (split from {d['split_from']})"
    if d.get("split_settings"):
        s = d["split_settings"]
        split += (f": config {d['config']}, val_fraction {s['val_fraction']}, test_fraction "
                  f"{s['test_fraction']}, split_seed {s['seed']}, group_pattern {s['group_pattern']}")
    unknown = ", ".join(r["unknown_classes"]) or "none"
    out = [f"# Evaluation of `{Path(c['path']).name}` on `{d['source']}`", "",
           "## Checkpoint", "",
           *_table(["", ""], [
               ["path", f"`{c['path']}`"], ["sha256 (first 16)", c["sha256"]],
               ["backbone", f"{c['backbone']} (weights `{c['weights']}`, {c['image_size']} px, "
                            f"{c['feature_dim']}-d features)"],
               ["sampling", f"{c['fps']:g} frames/s, window {c['window']} frames ({c['window_s']:.2f} s)"],
               ["classes", ", ".join(names)],
               ["fall rule", f"`{rule['fall_class']}` above {rule['threshold']} for {rule['k']} windows "
                             f"in a row (ends after {rule['m']} below)"],
               ["clip label", (r.get("clip_rule") or {}).get("text", "–")],
               ["trained on", f"`{c['trained_on']}`" if c["trained_on"] else "–"]]),
           "", "## Dataset", "",
           *_table(["", ""], [
               ["source", f"`{d['source']}` ({d['kind']})"], ["clips evaluated", split],
               ["clips", f"{n['listed']} listed: {n['scored']} scored, {n['unreadable']} unreadable; "
                         f"{n['known_class']} of the checkpoint's classes, {n['unknown_class']} of others "
                         f"({unknown})"
                         + (f"; {n['duplicates_dropped']} listed again, counted once" if n.get("duplicates_dropped")
                            else "")],
               ["labels", ", ".join(f"{k} {v}" for k, v in d["labels"].items())],
               ["fingerprint", f"{d['fingerprint']} (relative paths, labels and sizes)"]]),
           "", "## Summary", "",
           *_table(["accuracy", "macro-F1", "fall sensitivity", "fall specificity",
                    "false fall alerts / hour"],
                   [[fmt(r["accuracy"]), fmt(r["macro_f1"]), fmt(fall and fall["sensitivity"]),
                     fmt(fall and fall["specificity"]), fmt(fall and fall["false_alerts_per_hour"], 1)]]),
           *([] if r.get("macro_f1_without_other") is None else
             ["", f"Macro-F1 over the classes but `other`: {fmt(r['macro_f1_without_other'])} (the mean of their F1s "
                  "below; what a checkpoint without `other` gets with its `other` clips scored apart)."]),
           "", f"Accuracy, macro-F1, the confusion matrix and the per-class scores cover the "
               f"{n['known_class']} scored clips of the checkpoint's classes. "
               f"Clips of other classes ({unknown}) are listed apart below and count as clips that "
               "should not trigger a fall. Unreadable clips are in no denominator; they are listed below.",
           "", "## Confusion matrix", "", "![confusion matrix](confusion_matrix.png)", "",
           *_table(["true \\ predicted", *names],
                   [[names[i], *row] for i, row in enumerate(r["confusion_matrix"])]),
           "", "## Per class", "", "![per-class scores](per_class.png)", "",
           *_table(["class", "precision", "recall", "F1", "support"],
                   [[k, fmt(v["precision"]), fmt(v["recall"]), fmt(v["f1"]), v["support"]]
                    for k, v in r["per_class"].items()]),
           "", "## Fall detection", ""]
    if fall is None:
        out.append(f"The checkpoint has no `{rule['fall_class']}` class: no fall metrics.")
    else:
        out += [f"- sensitivity: {fall['detected']} of {fall['fall_clips']} `{fall['fall_class']}` clips "
                f"labelled `{fall['fall_class']}` ({fmt(fall['sensitivity'])}); {fall.get('alerted', 0)} of them "
                f"with a fall alert, i.e. a fall event of the rule ({fmt(fall.get('alert_recall'))}: the clip label "
                "also falls back to the highest mean probability, an alert does not)",
                f"- specificity: {fall['non_fall_clips'] - fall['false_positive_clips']} of "
                f"{fall['non_fall_clips']} other clips (unknown classes included) not labelled "
                f"`{fall['fall_class']}` ({fmt(fall['specificity'])})",
                f"- false alerts: {fall['false_alerts']} fall event(s) in {_duration(fall['non_fall_hours'])} "
                f"of non-fall video = {fmt(fall['false_alerts_per_hour'], 1)} per hour (events of the shared "
                "rule in decision/rule.py, as the batch and live modes raise them)"]
        curve = r.get("operating_curve")
        if curve:
            val = curve.get("chosen_on_validation")
            out += ["", "![fall recall vs false alerts](operating_curve.png)", "",
                    "The fall rule's operating point " + (
                        f"was chosen on {_chosen_on(val)} for at most {val['target_false_alerts_per_hour']:g} "
                        f"false alerts per hour (there: recall {fmt(val['recall'])}, "
                        f"{fmt(val['false_alerts_per_hour'], 1)} alerts/h)" if val else "was set by hand") +
                    "; the star is where it lands on this data, the lines what other thresholds and k would give."]
    out += ["", "## Classes the checkpoint does not know", ""]
    if r["unknown_classes"]:
        out += _table(["label", "clips", "predicted as", "fall alerts"],
                      [[k, v["clips"], ", ".join(f"{p} {m}" for p, m in sorted(v["predicted"].items())),
                        v["fall_alerts"]] for k, v in r["unknown_classes"].items()])
    else:
        out.append("None.")
    out += ["", f"## Unreadable clips ({len(r['unreadable'])})", ""]
    out += [f"- `{u['path']}` ({u['label']}): {u['reason'].removeprefix(u['path'] + ': ')}"
            for u in r["unreadable"]] or ["None."]
    wrong = [x for x in rows if x["known"] and x["predicted"] != x["true"]]
    out += ["", f"## Misclassified clips ({len(wrong)})", ""]
    if wrong:
        out += _table(["clip", "true", "predicted", "confidence"],
                      [[f"`{_rel(x['path'], d['source'])}`", x["true"], x["predicted"], fmt(x["confidence"], 2)]
                       for x in wrong[:MAX_LISTED]])
        if len(wrong) > MAX_LISTED:
            out.append(f"\n… and {len(wrong) - MAX_LISTED} more in predictions.csv.")
    else:
        out.append("None.")
    out += ["", "Every clip, with its probabilities and fall events: [predictions.csv](predictions.csv); "
            "all figures: [metrics.json](metrics.json).", ""]
    return "\n".join(out)


def comparison_report(rows: list[dict], data) -> str:
    return "\n".join([
        f"# Checkpoints compared on `{data}`", "", "![comparison](comparison.png)", "",
        *_table(["name", "backbone", "weights", "fps", "window", "clips", "unreadable", "accuracy", "macro-F1",
                 "fall sens.", "fall spec.", "false alerts / h", "report"],
                [[r["name"], r["backbone"], f"`{r['weights']}`", f"{r['fps']:g}", r["window"], r["clips"],
                  r["unreadable"], fmt(r["accuracy"]), fmt(r["macro_f1"]), fmt(r["fall_sensitivity"]),
                  fmt(r["fall_specificity"]), fmt(r["false_alerts_per_hour"], 1), f"[report]({r['report']})"]
                 for r in rows]), ""])


def _chosen_on(point: dict) -> str:
    where = point.get("chosen_on", "validation")
    return "the validation split" if where == "validation" else where
