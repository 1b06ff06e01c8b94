"""Tests for the procedurally rendered dataset (action_rec.synth: the renderer, the figure and the `other` class)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from action_rec import synth
from action_rec.synth import (ALL_CLASSES, CLASSES, SPLITS, clip_seed, plan_clip, render, render_clip, scene, synthesize,
                              write_clip)
from action_rec.synth import body as sb
from action_rec.synth.actions import OTHER_ACTIONS, other_action
from action_rec.synth.motion import Motion
from action_rec.utils.errors import UsageError

FEET = sb.FEET


def _motion(action: str, seed: int) -> Motion:
    rng = np.random.default_rng(seed)
    return Motion(action, rng, sb.Shape.random(rng), 4.0)


def _track(m: Motion, duration=4.0, dt=0.01) -> np.ndarray:
    return np.stack([m.points(t) for t in np.arange(0.0, duration, dt)])  # (T, points, 3)


def _foot_clearance(m: Motion, pts: np.ndarray) -> np.ndarray:
    """Height of the lowest foot surface above the floor, per frame."""
    return (pts[:, FEET, 1] - m.radii[FEET]).min(1)


# ------------------------------------------------------------------------------------ public API
def test_classes():
    assert CLASSES == ("walking", "running", "falling")
    assert ALL_CLASSES == CLASSES + ("other",)


def test_unknown_action_names_the_valid_ones():
    with pytest.raises(ValueError) as err:
        render_clip("jumping", 0)
    assert all(c in str(err.value) for c in CLASSES)


@pytest.mark.parametrize("action", CLASSES)
def test_render_clip_format(action):
    frames, fps = render_clip(action, 7)
    assert fps in synth.FPS_CHOICES
    # 3..5 s; a static shot of someone crossing the view may be cut (no shorter than MIN_STATIC_S)
    assert synth.MIN_STATIC_S - 1.0 / fps <= len(frames) / fps <= 5.0 + 1.0 / fps
    h, w = frames[0].shape[:2]
    assert (w, h) in synth.SIZES and 240 <= max(w, h) <= 480
    for f in frames:
        assert f.dtype == np.uint8 and f.shape == (h, w, 3)
    # something moves: the clip is not a still image
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0


def test_render_clip_is_deterministic():
    a, fps_a = render_clip("running", 1234)
    b, fps_b = render_clip("running", 1234)
    assert fps_a == fps_b and len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c, _ = render_clip("running", 1235)
    assert len(c) != len(a) or c[0].shape != a[0].shape or not np.array_equal(c[len(c) // 2], a[len(a) // 2])


def test_clips_vary_in_size_rate_and_length():
    plans = [plan_clip(a, s) for a in CLASSES for s in range(12)]
    assert len({p.fps for p in plans}) >= 4
    assert len({p.size for p in plans}) >= 4
    assert any(w < h for w, h in (p.size for p in plans))  # portrait clips exist
    assert np.ptp([len(p.times) / p.fps for p in plans]) > 1.0


# ----------------------------------------------------------------------------------- write_clip
def test_write_clip_roundtrip_and_no_temp_left(tmp_path):
    frames, fps = render_clip("walking", 3)
    frames = frames[:20]
    out = tmp_path / "clip.mp4"
    write_clip(out, frames, fps)
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]
    cap = cv2.VideoCapture(str(out))
    assert cap.isOpened()
    n, shape = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n, shape = n + 1, f.shape
    cap.release()
    assert n == len(frames)
    assert shape == frames[0].shape
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FPS) == pytest.approx(fps, abs=0.01)


def test_write_clip_failure_leaves_nothing(tmp_path):
    good = np.zeros((240, 320, 3), np.uint8)
    bad = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ValueError):
        write_clip(tmp_path / "broken.mp4", [good, bad], 10.0)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------- synthesize
def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_synthesize_layout_skip_and_regenerate(tmp_path):
    counts = synthesize(tmp_path, n_train=1, n_val=1, n_test=1, seed=5, workers=1, progress=False)
    assert counts == {"train": 3, "val": 3, "test": 3}
    expected = sorted(f"{s}/{c}/{c}_{s}_0000.mp4" for s in SPLITS for c in CLASSES)
    assert _tree(tmp_path) == expected
    mtimes = {p: (tmp_path / p).stat().st_mtime_ns for p in expected}

    # a re-run keeps every complete file
    assert synthesize(tmp_path, 1, 1, 1, seed=5, workers=1, progress=False) == counts
    assert {p: (tmp_path / p).stat().st_mtime_ns for p in expected} == mtimes

    # a missing clip is rebuilt (in a worker process) identically; the others stay untouched
    victim = tmp_path / "val/running/running_val_0000.mp4"
    before = cv2.VideoCapture(str(victim)).read()[1]
    victim.unlink()
    synthesize(tmp_path, 1, 1, 1, seed=5, workers=2, progress=False)
    assert _tree(tmp_path) == expected
    after = cv2.VideoCapture(str(victim)).read()[1]
    assert np.array_equal(before, after)
    assert all((tmp_path / p).stat().st_mtime_ns == m for p, m in mtimes.items() if tmp_path / p != victim)


def test_clip_seeds_are_distinct_per_split_class_and_index():
    seeds = {(s, c, i): clip_seed(0, s, c, i) for s in SPLITS for c in CLASSES for i in range(50)}
    assert len(set(seeds.values())) == len(seeds)
    assert clip_seed(0, "test", "walking", 3) == clip_seed(0, "test", "walking", 3)
    assert clip_seed(1, "test", "walking", 3) != clip_seed(0, "test", "walking", 3)


# ---------------------------------------------------------------------------------- body model
@pytest.mark.parametrize("seed", range(4))
def test_walking_always_has_a_foot_down_and_feet_do_not_slide(seed):
    m = _motion("walking", seed)
    pts = _track(m)
    clearance = _foot_clearance(m, pts)
    assert np.all(np.abs(clearance) < 1e-6)  # a foot on the floor in every frame, none below it
    assert 1.6 <= m.g["cadence"] <= 2.0
    # a planted toe stays put on the floor
    toe = sb.P["toe_r"]
    down = pts[:, toe, 1] - m.radii[toe] < 1e-6
    moving = np.abs(np.diff(pts[:, toe, 0]))[down[1:] & down[:-1]]
    assert moving.max() < 1e-3
    pelvis = pts[:, sb.P["pelvis"]]
    assert 0.005 < np.ptp(pelvis[:, 1]) < 0.06  # slight vertical bob
    assert m.g["lean"] < 6 * sb.D  # upright trunk


@pytest.mark.parametrize("seed", range(4))
def test_running_has_flight_phases_lean_and_bent_elbows(seed):
    m = _motion("running", seed)
    pts = _track(m)
    airborne = _foot_clearance(m, pts) > 0.003
    assert 0.1 < airborne.mean() < 0.6  # both feet off the ground for part of every stride
    assert np.all(_foot_clearance(m, pts) > -1e-6)
    assert 2.6 <= m.g["cadence"] <= 3.2
    assert 8 * sb.D <= m.g["lean"] <= 15 * sb.D
    angles = np.stack([m.gait(t)[0] for t in np.arange(0, 2, 0.01)])
    elbows = angles[:, [sb.A["el_r"], sb.A["el_l"]]] / sb.D
    assert 60 < elbows.mean() < 120
    # heel kick: the running knee flexes far more than a walking knee
    walk = np.stack([_motion("walking", seed).gait(t)[0] for t in np.arange(0, 2, 0.01)])
    assert angles[:, sb.A["knee_r"]].max() > walk[:, sb.A["knee_r"]].max() + 15 * sb.D


def test_running_travels_two_to_three_times_faster_than_walking():
    def speed(action, seed):
        pts = _track(_motion(action, seed), 3.0)
        return (pts[-1, sb.P["pelvis"], 0] - pts[0, sb.P["pelvis"], 0]) / 2.99

    walk = [speed("walking", s) for s in range(6)]
    run = [speed("running", s) for s in range(6)]
    assert all(0.65 <= v <= 0.95 for v in walk)  # body heights per second
    assert min(run) > max(walk)
    assert 1.8 < np.mean(run) / np.mean(walk) < 3.5


@pytest.mark.parametrize("seed", range(6))
def test_falling_ends_lying_still_on_the_floor(seed):
    plan = plan_clip("falling", seed)
    m = plan.motion
    duration = len(plan.times) / plan.fps
    assert m.t0 <= 1.2 and 0.5 <= m.tf <= 1.5
    assert duration <= 5.0 + 1e-9
    # every 2 s window overlaps the fall or the lying pose, and >= 1.5 s of lying remains
    assert m.t0 < 2.0 and duration - (m.t0 + m.tf) >= 1.5 - 1.0 / plan.fps

    start, end = m.points(0.0), m.points(duration - 0.01)
    assert np.ptp(start[:, 1]) > 0.85  # standing upright
    torso = [sb.P[n] for n in ("head", "chest", "waist", "pelvis")]
    assert end[torso, 1].max() < 0.25  # lying: head and trunk at floor level (knees may be up)
    assert max(np.ptp(end[:, 0]), np.ptp(end[:, 2])) > 2 * np.ptp(end[:, 1])  # wider than tall
    core = sb.CORE
    assert np.min(end[core, 1] - m.radii[core]) == pytest.approx(0.0, abs=1e-9)  # resting on the floor

    # the body accelerates as it topples: the head drops faster in the second half of the fall
    head = [m.points(m.t0 + f * m.tf)[sb.P["head"], 1] for f in (0.0, 0.5, 1.0)]
    assert head[0] - head[1] < head[1] - head[2]
    # then lies (almost) still
    a, b = m.points(m.t0 + m.tf + 0.5), m.points(m.t0 + m.tf + 1.0)
    assert np.abs(a - b).max() < 0.03


def test_fall_directions_and_pre_fall_modes_vary():
    ms = [plan_clip("falling", s).motion for s in range(30)]
    assert {m.kind for m in ms} == {"forward", "backward", "sideways"}
    assert {m.walk_pre for m in ms} == {True, False}


def test_runs_without_package_photos(monkeypatch):
    monkeypatch.setattr(scene, "_photos", lambda: [])
    for seed in range(6):  # several background kinds, some of which would use a photo
        frames, _ = render_clip("walking", seed)
        assert frames


# ------------------------------------------------------------------------ framing: in view, size
N_PLANS = 60


@functools.lru_cache(maxsize=None)
def _plans(action: str) -> tuple:
    return tuple(plan_clip(action, 10_000 + s) for s in range(N_PLANS))


def _boxes(plan) -> np.ndarray:
    """Per-frame image bounding box (x0, y0, x1, y1) of the body as it is drawn."""
    c = plan.camera
    us, vs, r = c["us"], c["vs"], c["rads"]
    return np.stack([(us - r).min(1), (vs - r).min(1), (us + r).max(1), (vs + r).max(1)], 1)


def _in_frame(plan) -> np.ndarray:
    W, H = plan.size
    b = _boxes(plan)
    return (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= W) & (b[:, 3] <= H)


@pytest.mark.parametrize("action", CLASSES)
def test_whole_body_in_view_for_most_of_every_clip(action):
    for plan in _plans(action):
        n = len(plan.times)
        inside = _in_frame(plan)
        assert inside[plan.camera["inside"]].all()  # the planner's own check is stricter
        if action == "falling":  # the whole fall and the lying body
            assert inside.all(), plan
        else:
            assert inside.mean() >= 0.9
            # only at the very start (walks in) or end (leaves): never out for the first half
            assert inside[int(0.1 * n):int(np.ceil(0.9 * n))].all()
        assert len(plan.camera["X"]) == n and len(plan.camera["box"]) == n


@pytest.mark.parametrize("action", CLASSES)
def test_person_size_in_range(action):
    """Standing height / frame height: never below 0.25, mostly 0.4..0.85, the body fits vertically."""
    frames, medians = [], []
    for plan in _plans(action):
        c, H = plan.camera, plan.size[1]
        size = c["size"]
        assert size.min() >= synth.SIZE_NEVER
        assert size[c["inside"]].max() <= 0.9
        if action != "falling":  # an upright body's box is about that tall
            height = (_boxes(plan)[:, 3] - _boxes(plan)[:, 1]) / H
            assert np.all(height[c["inside"]] >= 0.85 * synth.SIZE_NEVER)
        frames.append(size[c["inside"]])
        medians.append(np.median(size))
    frames = np.concatenate(frames)
    assert np.mean((frames >= 0.4) & (frames <= 0.85)) >= 0.55
    assert np.mean(frames < 0.3) <= 0.15
    assert 0.38 <= np.median(medians) <= 0.65


def test_rendered_body_is_where_the_plan_says(monkeypatch):
    """render_clip draws the body exactly at the planned (checked) image positions."""
    drawn = []
    real = render.draw_body

    def spy(img, uv, rad, depth, look, light=(-0.6, -0.8)):
        drawn.append((uv.copy(), rad.copy()))
        return real(img, uv, rad, depth, look, light)

    monkeypatch.setattr(render, "draw_body", spy)
    for action in CLASSES:
        for seed in (1, 2):
            drawn.clear()
            plan = plan_clip(action, seed)
            frames, _ = render_clip(action, seed)
            c = plan.camera
            assert len(frames) == len(plan.times)
            visible = [i for i in range(len(frames)) if _in_frame(plan)[i]]
            assert len(drawn) >= len(visible) >= 0.9 * len(frames)
            for uv, rad in drawn:  # every drawn pose is one of the planned frames
                i = int(np.argmin(np.abs(c["us"] - uv[:, 0]).max(1) + np.abs(c["vs"] - uv[:, 1]).max(1)))
                assert np.allclose(uv, np.stack([c["us"][i], c["vs"][i]], 1)) and np.allclose(rad, c["rads"][i])


def test_camera_behaviour_is_balanced_across_classes():
    """Neither the camera mode nor the person's size gives the class away (`other` included)."""
    stats = {}
    for action in ALL_CLASSES:
        plans = _plans(action)
        modes = [p.camera["mode"] for p in plans]
        moving_bg = np.mean([m == "track" for m in modes])
        size = np.median([np.median(p.camera["size"]) for p in plans])
        stats[action] = (moving_bg, size)
        assert set(modes) >= {"static", "track"}
        if action in ("walking", "running"):
            assert "treadmill" in modes
    moving, sizes = zip(*stats.values())
    assert max(moving) - min(moving) <= 0.2, stats
    assert max(sizes) - min(sizes) <= 0.1, stats
    assert all(0.25 <= m <= 0.6 for m in moving), stats


def test_static_shots_are_cut_rather_than_losing_the_person():
    plans = _plans("running")
    static = [p for p in plans if p.camera["mode"] == "static"]
    assert len(static) >= N_PLANS // 4
    for p in static:
        assert len(p.times) / p.fps >= synth.MIN_STATIC_S - 1 / p.fps
        assert _in_frame(p).mean() >= 0.9


def test_static_shots_are_side_or_oblique_views_for_every_class():
    """Walking vs running must be a question of gait, not of a view along the camera axis that only one
    class gets: static shots keep the path within STATIC_HEADING of side-on for walkers and runners."""
    mean_heading = {}
    for action in ("walking", "running"):
        psis = [abs(np.degrees(p.camera["psi"])) for p in _plans(action) if p.camera["mode"] == "static"]
        assert psis and max(psis) <= synth.STATIC_HEADING + 1e-6
        mean_heading[action] = np.mean(psis)
    assert abs(mean_heading["walking"] - mean_heading["running"]) <= 20, mean_heading


def test_plan_is_deterministic():
    a, b = plan_clip("walking", 77), plan_clip("walking", 77)
    assert np.array_equal(a.times, b.times) and np.array_equal(a.camera["box"], b.camera["box"])
    assert a.camera["mode"] == b.camera["mode"]


# ------------------------------------------------------------------------------ photo backdrops
def _saturated(img: np.ndarray) -> np.ndarray:
    """Pixels no procedural colour reaches (pure green/magenta photos in these tests)."""
    return (img.max(2) - img.min(2)) > 180


def test_photos_are_only_a_far_backdrop_above_the_floor(monkeypatch):
    pure = np.zeros((240, 320, 3), np.uint8)
    pure[:] = (0, 255, 0)
    monkeypatch.setattr(scene, "_photos", lambda: [(pure, ((0.0, 0.0, 1.0, 1.0),))])
    used = 0
    for seed in range(45):
        plan = plan_clip(CLASSES[seed % 3], seed)
        cam = plan.camera
        off = cam["off"]
        bg_w = cam["W"] + int(off.max() - off.min()) + 2 * synth.MARGIN
        bg, floor, v_b = scene._background(plan.rng, cam, bg_w, cam["W"] / 2 - off.min() + synth.MARGIN)
        assert floor is not None  # there is always a floor
        floor_top = int(np.ceil(v_b + synth.MARGIN))  # first row of the floor in the strip
        feet = cam["vs"][:, synth.P["heel_r"]].max() + synth.MARGIN
        assert floor_top < feet  # the person stands on the floor, not on the backdrop
        sat = _saturated(bg)
        assert not sat[max(floor_top, 0) + 8:].any(), seed  # the photo never covers the floor
        used += bool(sat[:max(floor_top, 0)].any())
    assert used >= 3  # photos do get used (backdrops, window views, pictures)


def test_photo_crops_avoid_the_regions_with_faces(monkeypatch):
    img = np.full((300, 400, 3), 128, np.uint8)
    img[100:, :] = (255, 0, 255)  # the "faces": everything below the top third
    monkeypatch.setattr(scene, "_photos", lambda: [(img, ((0.0, 0.0, 1.0, 0.3),))])
    for seed in range(20):
        rng = np.random.default_rng(seed)
        h, w = int(rng.integers(5, 300)), int(rng.integers(5, 900))
        out = scene._photo(rng, h, w)
        assert out.shape == (h, w, 3)
        assert not _saturated(out).any()
    assert set(synth.PHOTO_REGIONS) >= {"zidane.jpg", "grace_hopper.jpg", "bus.jpg"}


# ------------------------------------------------------------------------- the `other` class
def _other(kind: str, r: int = 0) -> int:
    """A seed that renders sub-action `kind` (other_action: seed mod 7)."""
    return 7 * r + OTHER_ACTIONS.index(kind)


def test_default_classes_and_their_seeds_are_unchanged():
    """Adding `other` changed no existing clip: same default classes, same per-clip seeds."""
    import inspect

    assert inspect.signature(synthesize).parameters["classes"].default == CLASSES
    assert [clip_seed(0, "train", c, i) for c in CLASSES for i in (0, 1)] == [
        4189226428916626942, 15298820501058499976, 2536635839775130773, 4926505301970493954,
        6817838732295428456, 5072121974714005121]


def test_other_seeds_take_turns_over_the_sub_actions():
    for split in SPLITS:
        seeds = [clip_seed(3, split, "other", i) for i in range(2 * len(OTHER_ACTIONS))]
        assert [other_action(s) for s in seeds] == list(OTHER_ACTIONS) * 2
        assert all(0 <= s < 2 ** 64 for s in seeds)
    every = {clip_seed(0, s, c, i) for s in SPLITS for c in ALL_CLASSES for i in range(30)}
    assert len(every) == len(SPLITS) * len(ALL_CLASSES) * 30


@pytest.mark.parametrize("kind", OTHER_ACTIONS)
def test_other_sub_action_renders(kind, monkeypatch):
    drawn = []
    real = render.draw_body
    monkeypatch.setattr(render, "draw_body", lambda img, uv, *a, **k: (drawn.append(len(uv)), real(img, uv, *a, **k)))
    seed = _other(kind, 1)
    plan = plan_clip("other", seed)
    assert plan.motion.kind == kind and plan.motion.action == "other"
    frames, fps = render_clip("other", seed)
    assert fps in synth.FPS_CHOICES and len(frames) == len(plan.times)
    assert synth.MIN_STATIC_S - 1.0 / fps <= len(frames) / fps <= 5.0 + 1.0 / fps
    h, w = frames[0].shape[:2]
    assert (w, h) in synth.SIZES
    assert all(f.dtype == np.uint8 and f.shape == (h, w, 3) for f in frames)
    assert set(drawn) <= {len(sb.POINTS)}  # props are drawn separately, never as body points
    if kind == "empty":
        assert not drawn  # no person pixels at all
    elif kind == "walk_out":
        assert 0 < len(drawn) < len(frames)
    else:
        assert len(drawn) == len(frames)
        assert _in_frame(plan).all()  # the whole body (and any seat or object) in view throughout
    a, _ = render_clip("other", seed)
    assert all(np.array_equal(x, y) for x, y in zip(a, frames))


def _head(plan, dt=0.01):
    ts = np.arange(0.0, len(plan.times) / plan.fps, dt)
    return ts, np.array([plan.motion.points(t)[sb.P["head"], 1] for t in ts])


def _descent(plan):
    """Image height of the body box (in standing heights): 10-90% descent time and fastest drop (/s)."""
    c, H = plan.camera, plan.size[1]
    height = (c["box"][:, 3] - c["box"][:, 1]) / (c["size"] * H)
    h0, h1 = height[0], height[-1]
    i0 = np.argmax(height < h0 - 0.1 * (h0 - h1))
    i1 = np.argmax(height <= h1 + 0.1 * (h0 - h1))
    return (i1 - i0) / plan.fps, np.max(-np.diff(height)) * plan.fps, h0 - h1


def test_lying_down_slowly_differs_from_a_fall():
    """Controlled: >= 1.5 s from standing to lying in the image, knees/hands first, no free-fall drop."""
    variants = set()
    for r in range(8):
        plan = plan_clip("other", _other("lie_down", r))
        m = plan.motion
        variants.add(m.variant)
        took, fastest, drop = _descent(plan)
        assert drop > 0.3 and took >= 1.5 and fastest < 1.0, (r, took, fastest)
        ts, head = _head(plan)
        speed = np.gradient(head, ts)
        assert head[0] > 0.9 and head[-1] < 0.3  # from standing to lying
        assert -speed.min() < 1.0  # body heights/s (a fall: 1.3-3.5)
        assert -np.gradient(speed, ts).min() < 0.8 * 9.81 / 1.7  # never near free fall (g in heights/s^2)
        down = lambda names: min(m.points(t)[[sb.P[n] for n in names], 1].min() for t in ts[:len(ts) // 2])
        first = ("knee_r", "knee_l") if m.variant == "front" else ("hand_r", "hand_l", "wr_r", "wr_l")
        assert down(first) < 0.06  # knees (kneeling) or hands (sitting back) reach the floor early on
    assert variants == {"front", "back"}
    for s in range(8):  # the same measures on falls
        fall = plan_clip("falling", s)
        took, fastest, _ = _descent(fall)
        ts, head = _head(fall)
        assert took < 1.5 or fastest > 1.0
        assert -np.gradient(head, ts).min() > 1.2


def test_sitting_down_ends_seated_on_a_seat_or_the_floor():
    kinds = set()
    for r in range(6):
        plan = plan_clip("other", _other("sit", r))
        m = plan.motion
        kinds.add(m.variant)
        end = m.points(len(plan.times) / plan.fps)
        pelvis = end[sb.P["pelvis"]]
        feet = (end[FEET, 1] - m.radii[FEET]).min()
        assert feet == pytest.approx(0.0, abs=0.02)  # feet on the floor
        if m.variant == "chair":
            seat = end[len(sb.POINTS):len(sb.POINTS) + 8]
            top = seat[:, 1].max()
            assert seat[:, 0].min() <= pelvis[0] <= seat[:, 0].max()
            assert pelvis[1] - m.radii[sb.P["pelvis"]] == pytest.approx(top, abs=0.03)  # sits on it
            assert 0.15 < top < 0.35
        else:
            assert pelvis[1] - m.radii[sb.P["pelvis"]] == pytest.approx(0.0, abs=0.01)
        ts, head = _head(plan)
        assert -np.gradient(head, ts).min() < 1.0 and 0.45 < head[-1] < 0.8
    assert kinds == {"chair", "floor"}


def test_picking_up_bends_down_and_stands_back_up_with_the_object():
    for r in range(4):
        plan = plan_clip("other", _other("pick_up", r))
        m = plan.motion
        ts, head = _head(plan)
        assert head[0] > 0.9 and head.min() < 0.75 and head[-1] > 0.9
        obj = np.stack([m.points(t)[len(sb.POINTS):].mean(0) for t in ts])
        assert obj[0, 1] < 0.07 and obj[-1, 1] > 0.25  # lifted off the floor
        assert np.ptp(obj[:len(ts) // 4], 0).max() < 1e-9  # lies still until grasped


def test_walk_out_leaves_an_empty_view_and_comes_back():
    for r in range(6):
        plan = plan_clip("other", _other("walk_out", r))
        W, H = plan.size
        box = plan.camera["box"]
        gone = (box[:, 0] >= W) | (box[:, 2] <= 0)
        assert gone.mean() >= synth.GONE_LEAVE and _in_frame(plan)[[0, -1]].all()
        first, last = np.flatnonzero(gone)[[0, -1]]
        assert gone[first:last + 1].all()  # one absence: out, then back in


def test_sprint_start_accelerates_and_sprint_stop_comes_to_rest():
    seen = set()
    for r in range(8):
        plan = plan_clip("other", _other("sprint", r))
        m = plan.motion
        seen.add(m.variant)
        dur = len(plan.times) / plan.fps
        ts = np.arange(0.0, dur, 0.05)
        x = np.array([m.points(t)[sb.P["pelvis"], 0] for t in ts])
        v = np.diff(x) / 0.05
        if m.variant == "start":
            t_go = m.gait[2]
            assert np.ptp(x[ts < t_go]) < 0.3  # getting set in place (hips back and down), no running yet
            late = v[ts[1:] > t_go + 1.0]
            assert late.size == 0 or late.mean() > v[(ts[1:] > t_go) & (ts[1:] < t_go + 0.4)].mean() + 0.3
        else:
            assert v[:5].mean() > 1.5 and np.abs(v[-5:]).max() < 0.1  # running, then standing
    assert seen == {"start", "stop"}


def test_standing_still_sways_in_place():
    for r in range(4):
        plan = plan_clip("other", _other("idle", r))
        ts, head = _head(plan)
        pts = np.stack([plan.motion.points(t) for t in ts])
        assert head.min() > 0.9 and np.ptp(pts[:, sb.P["pelvis"], 0]) < 0.06
        assert np.abs(pts - pts[0]).max() > 0.01  # not a frozen figure


def test_synthesize_classes_option(tmp_path):
    counts = synthesize(tmp_path / "a", 1, 0, 0, seed=2, workers=1, progress=False, classes=("other", "walking"))
    assert counts == {"train": 2, "val": 0, "test": 0}
    assert _tree(tmp_path / "a") == ["train/other/other_train_0000.mp4", "train/walking/walking_train_0000.mp4"]
    synthesize(tmp_path / "b", 1, 0, 0, seed=2, workers=1, progress=False)  # the default: three classes
    assert _tree(tmp_path / "b") == sorted(f"train/{c}/{c}_train_0000.mp4" for c in CLASSES)
    same = "train/walking/walking_train_0000.mp4"  # a clip does not depend on the other classes rendered
    assert (tmp_path / "a" / same).read_bytes() == (tmp_path / "b" / same).read_bytes()
    for bad in (["walking", "jumping"], [], [" "]):
        with pytest.raises(UsageError) as err:
            synthesize(tmp_path / "c", 1, 0, 0, progress=False, classes=bad)
        msg = str(err.value)
        assert "\n" not in msg and all(c in msg for c in ALL_CLASSES)
    assert not (tmp_path / "c").exists()
