"""`action-rec synth`: the synthetic dataset on disk, out_dir/{train,val,test}/<class>/*.mp4, one seed stream per
split and class, rendered in worker processes; a re-run only fills in what is missing.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import cv2
import numpy as np

from ..utils.errors import UsageError
from .actions import OTHER_ACTIONS
from .render import ALL_CLASSES, CLASSES, SPLITS, render_clip, write_clip


def clip_seed(seed: int, split: str, action: str, idx: int) -> int:
    """Independent per-clip seed: each split and class gets its own stream derived from `seed`.

    `other` seeds are nudged so that clip idx renders sub-action idx mod 7 (see other_action): every
    sub-action gets its share of even a small dataset.
    """
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(SPLITS.index(split), ALL_CLASSES.index(action),
                                                              int(idx)))
    s = int(ss.generate_state(1, np.uint64)[0])
    if action == "other":
        k = len(OTHER_ACTIONS)
        s = s - s % k + int(idx) % k
        s = s - k if s >= 2 ** 64 else s
    return s


def _make_clip(job):
    path, action, seed = job
    frames, fps = render_clip(action, seed)
    write_clip(path, frames, fps)
    return path


def _init_worker():
    cv2.setNumThreads(1)  # one clip per process already keeps every core busy


def check_classes(classes) -> tuple[str, ...]:
    """The class names as a tuple without repeats; UsageError naming the valid ones for a bad name."""
    names = tuple(dict.fromkeys(c for c in (str(x).strip() for x in classes) if c))
    bad = [c for c in names if c not in ALL_CLASSES]
    if bad or not names:
        what = f"unknown class {bad[0]!r}" if bad else "no classes given"
        raise UsageError(f"{what}; valid classes: {', '.join(ALL_CLASSES)}")
    return names


def synthesize(out_dir: str | Path, n_train: int = 60, n_val: int = 15, n_test: int = 30,
               seed: int = 0, workers: int = 2, progress: bool = True, classes=CLASSES) -> dict[str, int]:
    """Write out_dir/{train,val,test}/{class}/<class>_<split>_<idx:04d>.mp4 (n_* clips per class).

    classes: any of ALL_CLASSES (default: walking, running, falling; add "other" for the non-falls).
    Deterministic for a given seed (a clip does not depend on which other classes are rendered);
    existing files are kept, so a re-run only fills in what is missing. Returns the clips per split.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    classes = check_classes(classes)
    out_dir = Path(out_dir)
    jobs, counts = [], {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        counts[split] = len(classes) * n
        for action in classes:
            (out_dir / split / action).mkdir(parents=True, exist_ok=True)
            for idx in range(n):
                path = out_dir / split / action / f"{action}_{split}_{idx:04d}.mp4"
                if not (path.is_file() and path.stat().st_size > 0):  # writes are atomic: present = complete
                    jobs.append((str(path), action, clip_seed(seed, split, action, idx)))
    if not jobs:
        return counts
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="synthesizing clips", unit="clip", disable=not progress)
    if workers <= 1:
        for job in jobs:
            _make_clip(job)
            bar.update()
    else:
        # spawn, not fork: the caller may hold torch/OpenCV threads whose locks a fork would copy
        with mp.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
            for _ in pool.imap_unordered(_make_clip, jobs):
                bar.update()
    bar.close()
    return counts
