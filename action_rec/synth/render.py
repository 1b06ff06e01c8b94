"""Built-in procedurally rendered dataset: a person walking, running or falling, as mp4 clips.

An optional fourth class, `other` (see `actions`), holds what a fall alarm must ignore: standing
still, sitting or lying down on purpose, picking something up, leaving the view, empty scenes, sprints.

Each clip is one person (see `body`, `motion`, `figure`) placed in a 3D world and filmed by a pinhole camera, so
distance, oblique headings, approaching/receding and lying bodies are foreshortened consistently.
Everything a real camera varies is randomised per clip from its seed: background (rooms with
perspective floors and furniture, outdoor grounds, real photos as a far backdrop or window view,
always above a floor the person stands on), lighting, lens, framing, panning, shake, blur, sensor
noise, compression, occluders, frame rate and length.

Every clip is learnable: the framing is checked on the exact projection that gets rendered, so the
whole body is in view (every frame of a tracking shot, treadmill or fall; >= 92% of a static shot of
someone walking/running through it, whose clip is cut short rather than losing the person) and the
person is 27..87% of the frame height (see SIZE_RANGE; plan_clip(...).camera has the per-frame boxes).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from .actions import OtherMotion, other_action
from .body import P, Shape
from .camera import MARGIN, _plan_camera
from .figure import _circles_hull, draw_body, random_look
from .motion import Motion
from .props import NB, draw_props
from .scene import _background, _color

CLASSES = ("walking", "running", "falling")  # the default dataset
ALL_CLASSES = CLASSES + ("other",)  # appended: the seeds of the first three stay what they were
SPLITS = ("train", "val", "test")
FPS_CHOICES = (10, 12, 15, 18, 24, 25, 30)
SIZES = ((320, 240), (426, 240), (480, 360), (400, 300), (480, 270), (360, 480), (240, 320), (270, 480))


# ------------------------------------------------------------------------------------------ effects
def _effects(rng, W, H):
    """Per-clip camera response: tone curve, vignette, noise, blur, compression."""
    u = rng.uniform
    x = np.arange(256, dtype=np.float32) / 255
    gain, gamma, bias = u(0.7, 1.3), u(0.7, 1.4), u(-20, 20)  # dim rooms .. bright daylight
    cast = u(0.85, 1.15, 3) if rng.random() < 0.6 else np.ones(3)
    lut = np.stack([255 * gain * cast[k] * x ** gamma + bias for k in range(3)], 1)
    lut = np.clip(lut, 0, 255).astype(np.uint8).reshape(1, 256, 3)
    fx = dict(lut=lut, flicker=(u(0.02, 0.08), u(0.5, 4), u(0, 6.3)) if rng.random() < 0.2 else None,
              defocus=u(0.6, 1.6) if rng.random() < 0.25 else 0.0,
              exposure=u(0.2, 0.9) if rng.random() < 0.6 else 0.0,
              jpeg=int(u(15, 75)) if rng.random() < 0.25 else 0, vignette=None, noise=None)
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
        fx["vignette"] = np.repeat((255 * (1 - u(0.15, 0.5) * r2 / 2))[..., None], 3, 2).astype(np.uint8)
    if rng.random() < 0.75:
        n = rng.normal(0, u(1.5, 9), (H + 16, W + 16, 3))
        fx["noise"] = (np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8))
    return fx


def _tone(color, lut):
    return tuple(float(lut[0, int(np.clip(v, 0, 255)), k]) for k, v in enumerate(color))


def _apply_effects(rng, img, fx, t):
    if fx["defocus"]:
        img = cv2.GaussianBlur(img, (0, 0), fx["defocus"])
    if fx["flicker"]:  # mains flicker / auto-exposure hunting
        a, fr, ph = fx["flicker"]
        img = cv2.convertScaleAbs(img, alpha=1 + a * math.sin(2 * math.pi * fr * t + ph))
    if fx["vignette"] is not None:
        img = cv2.multiply(img, fx["vignette"], scale=1 / 255)
    if fx["noise"] is not None:
        h, w = img.shape[:2]
        y, x = rng.integers(0, 16, 2)
        img = cv2.subtract(cv2.add(img, fx["noise"][0][y:y + h, x:x + w]), fx["noise"][1][y:y + h, x:x + w])
    if fx["jpeg"]:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, fx["jpeg"]])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img
    return img


def _motion_blur(img, before, box, vel):
    """Blur the moving person along its image velocity (the static background stays sharp)."""
    n = int(min(np.hypot(*vel), 40))
    if n < 2:
        return
    x0, y0, x1, y1 = box
    k = np.zeros((2 * n + 1, 2 * n + 1), np.float32)
    d = np.asarray(vel) / np.hypot(*vel) * n / 2
    cv2.line(k, (int(n - d[0]), int(n - d[1])), (int(n + d[0]), int(n + d[1])), 1.0, 1)
    k /= k.sum()
    diff = img[y0:y1, x0:x1].astype(np.float32) - before
    img[y0:y1, x0:x1] = np.clip(before + cv2.filter2D(diff, -1, k), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------- clips
class ClipPlan(NamedTuple):
    """What a seed decides before any pixel is drawn (exposed for tests and inspection)."""
    fps: float
    size: tuple[int, int]  # (width, height)
    times: np.ndarray  # frame timestamps in seconds
    motion: Motion
    rng: np.random.Generator  # continues into the rendering
    camera: dict  # see _plan_camera: projection, per-frame body boxes ("box"), "inside", "size", mode


def plan_clip(action: str, seed: int) -> ClipPlan:
    """What `seed` renders; for "other", actions.other_action(seed) says which sub-action."""
    if action not in ALL_CLASSES:
        raise ValueError(f"unknown action {action!r}; valid actions are {', '.join(ALL_CLASSES)}")
    rng = np.random.default_rng(seed)
    fps = float(rng.choice(FPS_CHOICES))
    size = SIZES[rng.integers(len(SIZES))]
    duration = rng.uniform(3.0, 5.0)
    if action == "other":
        motion = OtherMotion(other_action(seed), rng, Shape.random(rng), duration)
        duration = motion.duration
    else:
        motion = Motion(action, rng, Shape.random(rng), duration)
    if action == "falling":  # short pre-fall, then >= 1.5 s lying: every 2 s window shows fall or lying
        duration = min(5.0, max(duration, motion.t0 + motion.tf + rng.uniform(1.6, 2.2)))
    times = np.arange(int(round(duration * fps))) / fps
    cam = _plan_camera(rng, action, motion, *size, times)
    return ClipPlan(fps, size, times[:cam["n"]], motion, rng, cam)


def render_clip(action: str, seed: int) -> tuple[list[np.ndarray], float]:
    """Render one clip deterministically from `seed`: returns (frames as HxWx3 uint8 BGR, fps)."""
    fps, (W, H), times, motion, rng, cam = plan_clip(action, seed)
    u = rng.uniform
    off, dy = cam["off"], cam["dy"]
    bg_w = W + int(off.max() - off.min()) + 2 * MARGIN
    cx = W / 2 - off.min() + MARGIN  # principal point in background coordinates
    bg, floor, v_b = _background(rng, cam, bg_w, cx)
    if cam["pan_speed"] > 1 and rng.random() < 0.7:  # panning smears the background horizontally
        k = int(min(30, cam["pan_speed"] * u(0.2, 0.8)))
        bg = cv2.blur(bg, (max(1, k), 1))
    fx = _effects(rng, W, H)
    # the tone curve is applied once to the background and to every drawn colour, not per frame
    lut = fx["lut"]
    bg = cv2.LUT(np.clip(bg, 0, 255).astype(np.uint8), lut)
    dolly = cam["dolly"] if floor is not None else None
    if dolly is not None:
        floor_strip = _dolly_floor(floor, cam, v_b, lut)
    look = random_look(rng, tuple(float(v) for v in bg.reshape(-1, 3).mean(0)))
    look = dataclasses.replace(look, **{k: _tone(getattr(look, k), lut) for k in ("skin", "hair", "shirt",
                                                                                  "trousers", "shoes")})
    us, vs, rads = cam["us"], cam["vs"], cam["rads"]  # image position and size of each body point
    shadow = (u(0.15, 0.5), u(-0.6, 0.6), u(-0.4, 0.4)) if rng.random() < 0.7 else None
    light = np.array([u(-0.8, 0.8), -1.0])
    light /= np.linalg.norm(light)
    occ = _occluder(rng, action, cam, us, vs, lut)
    props = getattr(motion, "props", ())
    prop_colors = [_tone(_color(rng, 40, 230, (0, 110)), lut) for _ in props]
    visible = getattr(motion, "visible", True)  # False: an empty scene, framed as if someone stood there
    frames = []
    for i, t in enumerate(times):
        x0 = off[i] - off.min() + MARGIN
        img = bg[MARGIN + dy[i]:MARGIN + dy[i] + H, x0:x0 + W].copy()
        if dolly is not None:
            strip, v0, x0 = floor_strip
            r0 = max(v0 - dy[i], 0)
            for r in range(r0, H):  # row r of the frame is strip row k, from column x0[i, k]
                k = r + dy[i] - v0
                img[r] = strip[k, x0[i, k]:x0[i, k] + W]
        uv = np.stack([us[i], vs[i]], 1)
        pad = rads[i].max() + 4
        box = (int(np.clip(uv[:, 0].min() - pad, 0, W)), int(np.clip(uv[:, 1].min() - pad, 0, H)),
               int(np.clip(uv[:, 0].max() + pad, 0, W)), int(np.clip(uv[:, 1].max() + pad, 0, H)))
        if box[2] - box[0] > 1 and box[3] - box[1] > 1:
            if shadow is not None and visible:
                _shadow(img, cam, i, cam["shift"][i], dy[i], rads[i], shadow)
            if props:
                draw_props(img, uv, cam["Z"][i], prop_colors)
            blur = fx["exposure"] and i > 0 and visible
            before = img[box[1]:box[3], box[0]:box[2]].astype(np.float32) if blur else None
            if visible:
                draw_body(img, uv[:NB], rads[i][:NB], cam["Z"][i][:NB], look, light)
            if blur:
                vel = (uv[P["pelvis"]] - np.array([us[i - 1][P["pelvis"]], vs[i - 1][P["pelvis"]]])) * fx["exposure"]
                _motion_blur(img, before, box, vel)
        if occ is not None:
            occ(img, off[i], dy[i])
        frames.append(_apply_effects(rng, img, fx, t))
    return frames, fps


def _dolly_floor(floor, cam, v_b, lut):
    """Floor seen from a travelling camera: each row slides by its own parallax f*dolly/Z.

    Renders one wide strip and returns (strip, first camera row, per-frame per-row column offsets);
    a frame's floor is then a per-row gather from the strip.
    """
    f, c, y_h, W, H = cam["f"], cam["c"], cam["y_h"], cam["W"], cam["H"]
    v0 = max(int(math.ceil(v_b)), int(y_h) + 1, -MARGIN)
    rows = np.arange(v0, H + MARGIN) + 0.5
    Z = f * c / (rows - y_h)
    cx = W / 2 - cam["shift"] - cam["yaw_px"]  # per-frame optical axis (rotation and shake)
    x0 = -cx[:, None] + f * cam["dolly"][:, None] / Z[None, :]
    lo = math.floor(x0.min())
    strip = np.zeros((len(rows), math.ceil(x0.max()) - lo + W + 2, 3), np.float32)
    floor(strip, v0, -lo, 0.0, -v0)
    strip = cv2.LUT(np.clip(strip, 0, 255).astype(np.uint8), lut)
    return strip, v0, np.round(x0 - lo).astype(int)


def _shadow(img, cam, i, shift, dy, rad, params):
    """Soft contact shadow: the body projected onto the floor along a slanted light direction."""
    alpha, lx, lz = params
    f, c, y_h, H, W = cam["f"], cam["c"], cam["y_h"], cam["H"], cam["W"]
    X, Y, Z = cam["X"][i] + lx * cam["Y"][i], 0.0, cam["Z"][i] + lz * cam["Y"][i]
    Z = np.maximum(Z, 0.05)
    uv = np.stack([W / 2 + f * X / Z - shift, y_h + f * (c - Y) / Z - dy], 1)
    hull = _circles_hull(uv, rad * 0.8)
    x0, y0 = np.floor(hull.min(0)).astype(int) - 6
    x1, y1 = np.ceil(hull.max(0)).astype(int) + 6
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.float32)
    cv2.fillConvexPoly(m, np.round((hull - [x0, y0]) * 16).astype(np.int32), 1.0, cv2.LINE_AA, 4)
    m = cv2.GaussianBlur(m, (0, 0), 1.5 + 0.02 * (y1 - y0))
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi * (1 - alpha * m)[..., None]).astype(np.uint8)


def _occluder(rng, action, cam, us, vs, lut):
    """Sometimes something in the foreground (pole, desk edge, box) hides part of the person."""
    if rng.random() > 0.2:
        return None
    W, H = cam["W"], cam["H"]
    col = _tone(_color(rng, 20, 230), lut)
    dark = tuple(v * 0.7 for v in col)
    j = len(us) // 2
    x = us[j, P["pelvis"]] + cam["off"][j] + rng.uniform(-0.3, 0.3) * W  # fixed in the scene, scrolls with a pan
    person = cam["frac"] * H
    # a desk/box in front hides the feet of someone upright; it would hide all of someone down low
    kind = "pole" if action in ("falling", "other") else rng.choice(["pole", "desk", "box"])
    if kind == "pole":
        w = person * rng.uniform(0.04, 0.12)
        bottom = H if rng.random() < 0.5 else int(vs.max() + rng.uniform(0.05, 0.2) * H)

        def draw(img, o, dy):
            x0 = int(x - o)
            cv2.rectangle(img, (x0, 0), (int(x0 + w), bottom - dy), col, -1)
            cv2.rectangle(img, (x0, 0), (int(x0 + w * 0.3), bottom - dy), dark, -1)
    else:
        # hides feet/shins, never the whole gait: in no frame more than that (the person may
        # approach or recede, so take the frame where the feet are highest in the image)
        feet = vs[:, [P["heel_r"], P["heel_l"], P["toe_r"], P["toe_l"]]].max(1)
        top = int(np.max((feet - rng.uniform(0.03, 0.25) * cam["size"] * H)[cam["inside"]]))
        x0 = x - rng.uniform(0.2, 1.0) * W if kind == "desk" else x - rng.uniform(0.1, 0.25) * W
        x1 = x + rng.uniform(0.2, 1.0) * W if kind == "desk" else x + rng.uniform(0.1, 0.25) * W

        def draw(img, o, dy):
            cv2.rectangle(img, (int(x0 - o), top - dy), (int(x1 - o), H), col, -1)
            cv2.rectangle(img, (int(x0 - o), top - dy), (int(x1 - o), top - dy + 2), dark, -1)
    return draw


def write_clip(path: str | Path, frames, fps: float) -> None:
    """Write frames to an mp4 atomically (temp file in the same folder, then os.replace)."""
    path = Path(path)
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    h, w = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    # keeps the .mp4 suffix (OpenCV picks the container from it); pid: concurrent writers don't collide
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    try:
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot open a video writer for {tmp}")
        for fr in frames:
            if fr.shape[:2] != (h, w):
                raise ValueError(f"frame size {fr.shape[:2]} differs from the first frame {(h, w)}")
            writer.write(np.ascontiguousarray(fr if fr.ndim == 3 else cv2.cvtColor(fr, cv2.COLOR_GRAY2BGR)))
        writer.release()
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError(f"OpenCV wrote nothing to {tmp}")
        os.replace(tmp, path)
    finally:
        writer.release()
        tmp.unlink(missing_ok=True)
