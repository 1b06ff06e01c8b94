"""PNG figures for evaluation and training: confusion matrix, per-class scores, training curves, and a
side-by-side comparison of checkpoints. matplotlib with the Agg backend (no display needed); every file
is written to a temp name and renamed, so a failed plot never leaves half a PNG behind.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..utils.io import atomic_write  # noqa: E402


def _save(fig, path: Path) -> Path:
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def confusion_matrix(cm, class_names: list[str], path, title: str = "") -> Path:
    """Counts in the cells; colour is the row fraction, so a small class's errors are as visible as a
    large one's."""
    cm = np.asarray(cm, dtype=float).reshape(len(class_names), len(class_names))
    rows = cm.sum(1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * n, 1.0 + 0.8 * n))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (colour: fraction of the true class)", fontsize=9)
    return _save(fig, path)


def per_class(per_class: dict[str, dict], path, title: str = "") -> Path:
    """Precision, recall and F1 per class as grouped bars; the support is in the class's tick label."""
    names = list(per_class)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(2.0 + 1.2 * len(names), 3.5))
    for k, what in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [per_class[n][what] or 0.0 for n in names], 0.27, label=what)
    ax.set_xticks(x, [f"{n}\n(n={per_class[n]['support']})" for n in names])
    ax.set_ylim(0, 1.2)
    ax.legend(loc="upper center", ncol=3, fontsize=8)
    ax.set_title(title or "per-class scores", fontsize=9)
    return _save(fig, path)


def operating_curve(points: list[dict], chosen: dict, path, title: str = "") -> Path:
    """Fall recall against false alerts per hour of non-fall video, one line per k (thresholds along it), with
    the checkpoint's operating point (chosen on validation) marked where it lands on this data."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for k in sorted({p["k"] for p in points}):
        line = sorted((p for p in points if p["k"] == k and p["recall"] is not None), key=lambda p: p["threshold"])
        if line:
            ax.plot([p["false_alerts_per_hour"] or 0.0 for p in line], [p["recall"] for p in line], marker=".",
                    lw=1.2 if k == chosen.get("k") else 0.8, alpha=1.0 if k == chosen.get("k") else 0.5,
                    label=f"k = {k}")
    if chosen.get("recall") is not None:
        ax.plot([chosen["false_alerts_per_hour"] or 0.0], [chosen["recall"]], "r*", ms=14,
                label=f"checkpoint: threshold {chosen['threshold']:.2f}, k {chosen['k']}")
    ax.set_xlabel("false fall alerts per hour of non-fall video")
    ax.set_ylabel("fall clips with an alert (recall)")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title or "fall rule: recall vs false alerts (thresholds 0.30-0.99 along each line)", fontsize=9)
    return _save(fig, path)


def comparison(rows: list[dict], path, metrics=("accuracy", "macro_f1", "fall_sensitivity",
                                                "fall_specificity")) -> Path:
    """One group of bars per checkpoint (rows need a 'name' and the metrics; None is drawn as 0)."""
    x = np.arange(len(rows))
    w = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(2.5 + 1.6 * len(rows), 3.8))
    for k, m in enumerate(metrics):
        vals = [r.get(m) for r in rows]
        bars = ax.bar(x + (k - (len(metrics) - 1) / 2) * w, [v or 0.0 for v in vals], w,
                      label=m.replace("_", " "))
        ax.bar_label(bars, ["n/a" if v is None else f"{v:.2f}" for v in vals], fontsize=7)
    ax.set_xticks(x, [r["name"] for r in rows])
    ax.set_ylim(0, 1.25)
    ax.legend(loc="upper center", ncol=len(metrics), fontsize=8)
    ax.set_title("checkpoints side by side", fontsize=9)
    return _save(fig, path)


# --- training curves ------------------------------------------------------------------------------

def read_csv_history(metrics_csv) -> dict[str, list[tuple[int, float]]]:
    """Lightning CSVLogger's metrics.csv -> {metric: [(epoch, value), ...]}, the last value per epoch."""
    last: dict[str, dict[int, float]] = defaultdict(dict)
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            if not row.get("epoch"):
                continue
            epoch = int(float(row["epoch"]))
            for k, v in row.items():
                if k not in ("epoch", "step") and v not in ("", None):
                    last[k][epoch] = float(v)
    return {k: sorted(v.items()) for k, v in last.items()}


def read_tensorboard_history(log_dir) -> dict[str, list[tuple[int, float]]]:
    """The same from TensorBoard event files (Lightning logs an 'epoch' scalar at every step it logs)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    epoch_at = {e.step: int(e.value) for e in acc.Scalars("epoch")} if "epoch" in tags else {}
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for tag in tags:
        if tag == "epoch":
            continue
        for e in acc.Scalars(tag):
            if e.step in epoch_at:
                out[tag][epoch_at[e.step]] = e.value
    return {k: sorted(v.items()) for k, v in out.items()}


def read_history(log_dir) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch metrics a Lightning logger wrote in log_dir (metrics.csv, else TensorBoard events)."""
    log_dir = Path(log_dir)
    if (log_dir / "metrics.csv").is_file():
        return read_csv_history(log_dir / "metrics.csv")
    if any(log_dir.glob("events.out.tfevents.*")):
        try:
            return read_tensorboard_history(log_dir)
        except ImportError:
            return {}  # tensorboardX wrote them but tensorboard (the reader) is not installed
    return {}


CURVES = (("loss", "loss"), ("acc", "accuracy"), ("f1", "macro-F1"))


def training_curves(history: dict[str, list[tuple[int, float]]], path) -> Path | None:
    """Loss, accuracy and macro-F1 per epoch for train and val; None when nothing was logged.
    Training scores are over random windows, validation scores over whole clips (the shared rule)."""
    panels = [(key, title) for key, title in CURVES if f"train/{key}" in history or f"val/{key}" in history]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], panels):
        for stage, style in (("train", "-o"), ("val", "-s")):
            series = history.get(f"{stage}/{key}")
            if series:
                ep, val = zip(*series)
                label = stage + (" (windows)" if stage == "train" and key != "loss" else "")
                label += " (clips)" if stage == "val" and key != "loss" else ""
                ax.plot(ep, val, style, markersize=3, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        if key != "loss":
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)
