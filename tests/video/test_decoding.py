import os
import time

import numpy as np
import pytest
import torch

from action_rec.backbones import Preprocess
from action_rec.video import read_sampled
from action_rec.video.decoding import ProcessDecoders, ThreadDecoder, decode_job, iter_fitted


@pytest.mark.parametrize("resize", ["letterbox", "stretch", "center_crop"])
def test_fitted_frames_give_the_backbone_exactly_its_own_input(make_video, tmp_path, resize):
    v = make_video(tmp_path / "v.mp4", n_frames=20, fps=10, size=(160, 90))
    pre = Preprocess(64, resize=resize, mean=(127.0,) * 3, std=(128.0,) * 3)
    fitted = [f for _, f in iter_fitted(v, 4, pre)]
    frames, _ = read_sampled(v, 4)
    assert len(fitted) == len(frames) == 8 and fitted[0].shape == (64, 64, 3)
    assert torch.equal(pre(fitted), pre(frames))


def test_decode_job_messages(make_video, tmp_path):
    pre = Preprocess(32)
    v = make_video(tmp_path / "v.mp4", n_frames=30, fps=10)
    msgs = list(decode_job(7, str(v), 4.0, pre, chunk=5))
    assert [m[0] for m in msgs] == ["frames", "frames", "frames", "done"]
    assert all(m[1] == 7 for m in msgs) and sum(len(m[2]) for m in msgs[:-1]) == 12
    assert msgs[-1][2]["duration_s"] == pytest.approx(3.0) and msgs[-1][2]["frames"] == 12
    (tmp_path / "e.mp4").write_bytes(b"")
    (tmp_path / "t.mp4").write_text("not a video\n" * 50)
    for name, why in (("e.mp4", "empty file"), ("t.mp4", "cannot open"), ("gone.mp4", "no such file")):
        (kind, vid, msg), = decode_job(1, str(tmp_path / name), 4.0, pre)
        assert kind == "error" and why in msg and name in msg
    # a corrupt middle: the container promises 6 s, only the first second decodes
    good = make_video(tmp_path / "long.mp4", n_frames=60, fps=10)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    data[2000:-2000:50] = rng.integers(0, 256, len(data[2000:-2000:50]), dtype=np.uint8).tobytes()
    (tmp_path / "corrupt.mp4").write_bytes(bytes(data))
    kinds = [m[0] for m in decode_job(2, str(tmp_path / "corrupt.mp4"), 4.0, pre)]
    assert kinds[-1] == "error"


class CrashingFit(Preprocess):
    """Kills its decoder process on a bright frame, as a decoder segfault would."""

    def _fit(self, frame, dst):
        if frame.mean() > 200:
            os._exit(3)
        super()._fit(frame, dst)


def drain(src, timeout=60):
    out, t0 = [], time.monotonic()
    while not src.exhausted:
        assert time.monotonic() - t0 < timeout, "decoders hang"
        m = src.poll(0.1)
        if m is not None:
            out.append(m)
    src.close()
    return out


def test_a_dying_decoder_costs_only_its_video(make_video, tmp_path):
    import cv2

    paths = [str(make_video(tmp_path / f"v{i}.mp4", n_frames=12, fps=10, seed=i)) for i in range(4)]
    bright = tmp_path / "bright.mp4"
    vw = cv2.VideoWriter(str(bright), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(12):
        vw.write(np.full((48, 64, 3), 250, np.uint8))
    vw.release()
    jobs = list(enumerate(paths[:2] + [str(bright)] + paths[2:]))
    msgs = drain(ProcessDecoders(jobs, 4.0, CrashingFit(32), workers=1, chunk=4))
    ends = {m[1]: m for m in msgs if m[0] in ("done", "error")}
    assert sorted(ends) == [0, 1, 2, 3, 4]
    assert ends[2][0] == "error" and "decoder process died" in ends[2][2]
    assert all(ends[i][0] == "done" for i in (0, 1, 3, 4))
    # the thread decoder yields the same messages for good videos
    t = drain(ThreadDecoder(list(enumerate(paths)), 4.0, Preprocess(32), chunk=4))
    assert [m[0] for m in t].count("done") == 4


def test_cpu_workers_decode_and_embed_without_torch(make_video, tmp_path):
    """On a CPU, worker processes run decode -> backbone themselves and send features: the same features
    as Backbone.embed on the same fitted frames, and the worker never imports torch (the ONNX Runtime path)."""
    import pickle
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    from action_rec.backbones import build_backbone

    bb = build_backbone("efficientnet_lite0", "random", image_size=32, runtime="onnx")
    assert bb.runtime == "onnx"
    embedder = bb.worker_embedder(threads=1)
    paths = [str(make_video(tmp_path / f"v{i}.mp4", n_frames=10 + 3 * i, fps=10, seed=i)) for i in range(3)]
    msgs = drain(ProcessDecoders(list(enumerate(paths)), 4.0, bb.preprocess, workers=2, chunk=4, backbone=embedder))
    assert {m[0] for m in msgs} == {"features", "done"}
    for vid, path in enumerate(paths):
        got = np.concatenate([m[2] for m in msgs if m[0] == "features" and m[1] == vid])
        frames = np.stack([f for _, f in iter_fitted(path, 4.0, bb.preprocess)])
        np.testing.assert_allclose(got, bb.embed(frames), rtol=1e-5, atol=1e-6 * float(np.abs(got).max()))
    # what a spawned worker imports to unpickle and run the embedder: no torch
    (tmp_path / "emb.pkl").write_bytes(pickle.dumps(embedder))
    code = ("import pickle, sys; from action_rec.video.decoding import decode_job; "
            f"e = pickle.load(open({str(tmp_path / 'emb.pkl')!r}, 'rb')); "
            f"kinds = [m[0] for m in decode_job(0, {paths[0]!r}, 4.0, e.preprocess, 4, e)]; "
            "print(kinds[-1], 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["done", "False"], run.stderr[-2000:]
    # the torch runtime has nothing lighter to send: the backbone itself goes to the workers
    assert build_backbone("efficientnet_lite0", "random", image_size=32, runtime="torch").worker_embedder().__class__ \
        .__name__ == "Backbone"
