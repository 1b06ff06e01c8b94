"""Scale-out of batch labelling: the same labelling under Lightning's predict loop, so `--devices N` and
`--num-nodes M` use Lightning's distributed strategies (DDP on GPUs or CPU processes, SLURM, torchrun).

Each rank labels its share of the videos (DataLoader workers decode; one backbone call per batch of
videos; make_result as in single-process mode) and a BasePredictionWriter appends each result to the
rank's own part files (labels.csv.rank<k>.part, same append-safe format). At the end global rank 0
merges the parts into the real outputs, dropping duplicates (a distributed sampler may hand a video to
two ranks); part files left by a killed run are merged on the next start. Only global rank 0 reads or
rewrites the real outputs, and it decides what is left to do, so ranks never disagree about it.
Multi-node: --out must be on a filesystem every node sees.
"""

from __future__ import annotations

import functools
import os

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from ..inference.results import Job
from ..video.decoding import decode_job, join_frames
from .discovery import InputError, _skipped_text, discover_videos
from .outputs import Outputs
from .run import check_request, error_result, load_predictor, safe_result


class _Videos(Dataset):
    """One item per video: all its model-ready frames (decoded in a DataLoader worker), or its error."""

    def __init__(self, jobs: list[Job], fps: float, preprocess, fit: bool = True, regions=None):
        # fit=False: whole frames (person features crop them themselves); regions: the checkpoint's (region.py)
        self.jobs, self.fps, self.preprocess, self.fit, self.regions = jobs, fps, preprocess, fit, regions

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> dict:
        job, frames, info, error = self.jobs[i], [], None, None
        if job.error:
            return {"index": i, "frames": None, "info": None, "error": job.error}
        for kind, _, *rest in decode_job(i, job.path, self.fps, self.preprocess, chunk=64, fit=self.fit,
                                         regions=self.regions):
            if kind == "frames":
                frames.append(rest[0])
            elif kind == "done":
                info = rest[0]
            else:
                error = rest[0]
        ok = error is None
        return {"index": i, "frames": join_frames(frames) if ok else None, "info": info, "error": error}


class _LabelModule(L.LightningModule):
    def __init__(self, pred, jobs: list[Job], stride: int | None, features=None):
        super().__init__()
        self.pred, self.jobs, self.stride = pred, jobs, stride
        self.backbone, self.classifier = pred.backbone, pred.model  # registered: Lightning moves them
        self.features = features or pred.backbone  # tracks.TrackFeatures: one result per tracked person

    def on_predict_start(self) -> None:
        self.pred.device = self.device

    def predict_step(self, batch: list[dict], batch_idx: int) -> list:
        good = [b for b in batch if b["frames"] is not None]
        kw = {"batch_size": 64} if self.device.type == "cuda" else {}
        if not self.features.fits_frames:  # person features follow each video on its own (a tracker each)
            feats = np.concatenate([self.features.video_embedder().embed(b["frames"]) for b in good]) if good else None
        else:  # one backbone call for the frames of every video in the batch
            feats = self.backbone.embed(join_frames([b["frames"] for b in good]), **kw) if good else None
        out, at = [], 0
        for b in batch:
            job = self.jobs[b["index"]]
            if b["frames"] is None:
                out.append(error_result(job, b["error"]))
                continue
            n = len(b["frames"])
            out.append(safe_result(self.pred, job, feats[at:at + n], b["info"], self.stride))
            at += n
        return out


class _Data(L.LightningDataModule):
    def __init__(self, jobs, outputs: Outputs, overwrite: bool, complete, pred, videos_per_batch: int,
                 workers: int):
        super().__init__()
        self.jobs, self.outputs, self.overwrite, self.complete = jobs, outputs, overwrite, complete
        self.pred, self.videos_per_batch, self.workers = pred, videos_per_batch, workers
        self.todo: list[Job] = []
        self.done: list[Job] = []
        self.notes: list[str] = []

    def setup(self, stage: str) -> None:
        plan = None
        if self.trainer.global_rank == 0:
            self.outputs.merge_leftovers()
            todo, done = self.outputs.plan(self.jobs, self.overwrite, self.complete)
            self.outputs.close()
            self.notes = self.outputs.notes
            index = {j.path: i for i, j in enumerate(self.jobs)}
            plan = ([index[j.path] for j in todo], [index[j.path] for j in done])
        # Every rank labels rank 0's plan (a collective call: no rank writes before rank 0 has planned).
        todo, done = self.trainer.strategy.broadcast(plan, src=0)
        self.todo, self.done = [self.jobs[i] for i in todo], [self.jobs[i] for i in done]
        self.trainer.lightning_module.jobs = self.todo

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(_Videos(self.todo, self.pred.fps, self.pred.backbone.preprocess,
                                  self.pred.backbone.fits_frames, getattr(self.pred, "regions", None)),
                          batch_size=self.videos_per_batch, num_workers=self.workers, collate_fn=list,
                          persistent_workers=False, multiprocessing_context="spawn" if self.workers else None)


class _Writer(BasePredictionWriter):
    def __init__(self, outputs: Outputs, annotate, regions=None):
        super().__init__(write_interval="batch")
        self.outputs, self.annotate, self.regions = outputs, annotate, regions
        self.part = self.annotator = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.part = self.outputs.part(trainer.global_rank)
        self.part.plan([])
        if self.annotate:
            from .annotate import Annotator

            self.annotator = Annotator(self.annotate, self.outputs.class_names, regions=self.regions)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        for r in prediction:
            if self.annotator and r.ok:
                self.annotator.submit(r)
            self.part.append(r)

    def on_predict_end(self, trainer, pl_module) -> None:
        self.part.close()
        if self.annotator:
            self.annotator.close()
        trainer.strategy.barrier("action_rec_label_merge")
        if trainer.global_rank == 0:
            self.outputs.merge_leftovers()


def _has_copy(folder, job: Job) -> bool:
    from .annotate import copy_path

    return copy_path(folder, job.rel).is_file()


def label_distributed(paths, ckpt, *, out, jsonl=None, annotate=None, overwrite: bool = False,
                      stride: int | None = None, threshold: float | None = None, fall_k: int | None = None,
                      workers: int = 1, recursive: bool = True, accelerator: str = "auto",
                      devices="auto", num_nodes: int = 1, strategy: str = "auto", videos_per_batch: int = 4,
                      tracks: bool | None = None, max_tracks: int = 8
                      ) -> tuple[list[dict], list[dict], list[tuple[str, str]], list[str]] | None:
    """Label with Lightning (see the module docstring). On global rank 0 returns the CSV rows (as dicts)
    of (the videos labelled now, the videos skipped as already done), the folder entries passed over
    (path, why) and notes on repairs made; None on other ranks. tracks/max_tracks: as for LabelRun (person/both
    checkpoints: one result per tracked person unless tracks=False)."""
    from lightning.pytorch.utilities import rank_zero_only

    from ..inference.tracks import per_track_features
    from .locking import OutputLock

    found = discover_videos(paths, recursive)
    jobs = found.jobs
    if not jobs:
        raise InputError(f"no videos found under {', '.join(map(str, paths))}"
                         + (f"; passed over: {_skipped_text(found.skipped)}" if found.skipped else ""))
    named = check_request(jobs, out=out, jsonl=jsonl, annotate=annotate, stride=stride, workers=workers,
                          threshold=threshold, fall_k=fall_k)
    # Only the process that will be global rank 0 owns the real outputs and takes their lock; the other ranks
    # (Lightning's re-launched copies of this command, torchrun/SLURM ranks, the commands started by hand on
    # the other nodes with NODE_RANK) write part files only.
    node_rank = int(os.environ.get("NODE_RANK") or os.environ.get("GROUP_RANK") or 0)
    lock = OutputLock(named, "action-rec label").acquire() if rank_zero_only.rank == 0 and node_rank == 0 else None
    try:
        pred = load_predictor(ckpt, "cpu", threshold, fall_k)
        features = per_track_features(pred, tracks, max_tracks)
        outputs = Outputs(out, pred.class_names, jsonl)
        complete = functools.partial(_has_copy, annotate) if annotate else None  # picklable for ddp_spawn
        notes = []
        if lock is not None and annotate:
            from .annotate import clean_stale_copies

            if removed := clean_stale_copies(annotate):
                notes.append(f"removed {len(removed)} temporary file(s) an interrupted run left in {annotate}")
        # What rank 0 will find done (read-only here; rank 0 plans for real once the processes are up).
        outputs.load(overwrite)
        done = [j for j in jobs if not overwrite and outputs.is_done(j) and (complete is None or complete(j))]
        data = _Data(jobs, outputs, overwrite, complete, pred, videos_per_batch, workers)
        trainer = L.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                            callbacks=[_Writer(outputs, annotate, getattr(pred, "regions", None))],
                            logger=False, enable_checkpointing=False,
                            enable_model_summary=False, use_distributed_sampler=True)
        trainer.predict(_LabelModule(pred, jobs, stride, features), datamodule=data, return_predictions=False)
        if trainer.global_rank != 0:
            return None
        notes += data.notes
        outputs.load()
        skipped = {j.path for j in done}
        todo = [j for j in jobs if j.path not in skipped]
        return ([outputs.rows[j.path] for j in todo if j.path in outputs.rows],
                [outputs.rows[j.path] for j in done if j.path in outputs.rows], found.skipped, notes)
    finally:
        if lock is not None:
            lock.release()
