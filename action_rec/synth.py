"""Built-in procedurally rendered dataset: a person walking, running or falling, as mp4 clips.

An optional fourth class, `other` (see `synth_actions`), holds what a fall alarm must ignore: standing
still, sitting or lying down on purpose, picking something up, leaving the view, empty scenes, sprints.

Each clip is one person (see `synth_body`) placed in a 3D world and filmed by a pinhole camera, so
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
import functools
import importlib.util
import math
import multiprocessing as mp
import os
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from action_rec.errors import UsageError
from action_rec.synth_actions import NB, OTHER_ACTIONS, OtherMotion, other_action
from action_rec.synth_props import draw_props
from action_rec.synth_body import P, Motion, Shape, _circles_hull, draw_body, random_look

CLASSES = ("walking", "running", "falling")  # the default dataset
ALL_CLASSES = CLASSES + ("other",)  # appended: the seeds of the first three stay what they were
SPLITS = ("train", "val", "test")
FPS_CHOICES = (10, 12, 15, 18, 24, 25, 30)
SIZES = ((320, 240), (426, 240), (480, 360), (400, 300), (480, 270), (360, 480), (240, 320), (270, 480))
MARGIN = 6  # background border (px) that camera shake may reveal
TAU = 2 * math.pi


# ------------------------------------------------------------------------------------------ camera
# Framing rules every clip obeys (checked on the exact projection that is rendered, see _frame_check):
VIS_STATIC = 0.92  # a static camera may see a walker/runner enter or leave at the very start/end
VIS_LEAVE = 0.3  # `other` walking out of the view and back: in view for at least this part of the clip
GONE_LEAVE = 0.08  # ... and wholly out of it for at least this part
SIZE_RANGE = (0.27, 0.87)  # standing height / frame height while the person is in view
SIZE_NEVER = 0.25  # no frame of a clip shows the person smaller than this
# Side and oblique views only (0 = side-on): nearer the camera axis a small walker and runner differ
# mostly in cadence and approach speed, and a static camera held mostly runners on such paths (the
# lateral ones cross the view too fast), so walking vs running became a question of view, not gait.
STATIC_HEADING = 60.0
MIN_STATIC_S = 2.2  # a static shot of someone crossing the view may be cut this short (>= one 2 s window)
ATTEMPTS = 40
# `other` mostly stays in place, so nothing caps its size as a path or a lying body caps the others':
# drawn a little smaller, its median size matches theirs and size does not give the class away
OTHER_SIZE = 0.8
ZOOM_STATIC = 0.5  # odds of a long lens on a static camera (any class): far-away walkers stay in view


def _person_size(rng):
    """Standing height / frame height at the reference time: mostly 0.45..0.85, sometimes farther."""
    return rng.uniform(0.45, 0.85) if rng.random() < 0.85 else rng.uniform(0.3, 0.45)


def _lens(rng, W, H, zoom=0.3):
    """Focal length (px): phone/CCTV wide angles, or (odds `zoom`) a zoomed-in, long lens."""
    fov = rng.uniform(55, 80) if rng.random() >= zoom else rng.uniform(18, 55)  # on the long side
    return (max(W, H) / 2) / math.tan(math.radians(fov) / 2)


def _heading(rng, wide=80.0):
    """Angle between the walking direction and the image plane (0 = side-on, +-90 = along the axis)."""
    if rng.random() < 0.45:
        return math.radians(rng.uniform(-20, 20))
    return math.radians(rng.choice([-1, 1]) * rng.uniform(20, wide))


def _axes(psi, sgn):
    """Camera-plane (X, Z) directions of the ground frame's travel (x) and lateral (z) axes."""
    return np.array([sgn * math.cos(psi), math.sin(psi)]), np.array([-math.sin(psi), sgn * math.cos(psi)])


def _to_camera(ground, h, lat, anchor, x0, z0):
    """Ground-frame points (..., 3) -> camera X, Z with `anchor` (ground x, z) placed at (x0, z0)."""
    dx, dz = ground[..., 0] - anchor[0], ground[..., 2] - anchor[1]
    return x0 + dx * h[0] + dz * lat[0], z0 + dx * h[1] + dz * lat[1]


def _horizon(rng, f, c, Y, Z, r, H, my, rows=None):
    """A horizon row that keeps head and feet in the frame (None if the person is too tall for it).

    The camera looks level; tilting up/down is a shift of the horizon row y_h (row = y_h + f(c-Y)/Z).
    Feet mostly land in the lower part of the frame, as in footage filmed at eye or chest height.
    """
    sel = slice(None) if rows is None else rows
    top = (f * (c - (Y[sel] + r)) / Z[sel]).min()
    bot = (f * (c - (Y[sel] - r)) / Z[sel]).max()
    lo, hi = my - top, H - my - bot
    if lo > hi:
        return None
    feet = f * c / np.median(Z[sel][:, P["pelvis"]])
    return float(np.clip(rng.uniform(0.72, 0.97) * H - feet, lo, hi))


def _chord(d, k, bw, za, zb, L):
    """Where a straight path of length L in direction d fits inside the view wedge.

    The region is {za <= z <= zb, |x| <= k z - bw} in the camera's top view: x within the image
    (half-angle atan k) with the body's half width bw to spare, z within the allowed person sizes.
    Returns (offsets o along the normal, start s_lo, end s_hi of each chord) for chords >= L, or
    else the longest chord's length.
    """
    za = max(za, bw / k * 1.0001)
    if zb <= za:
        return 0.0
    nrm = np.array([-d[1], d[0]])
    A = np.array([[0.0, -1.0], [0.0, 1.0], [1.0, -k], [-1.0, -k]])
    b = np.array([-za, zb, -bw, -bw])
    verts = np.array([[k * za - bw, za], [bw - k * za, za], [k * zb - bw, zb], [bw - k * zb, zb]])
    proj = verts @ nrm
    o = np.linspace(proj.min(), proj.max(), 66)[1:-1]
    ad, an = A @ d, A @ nrm
    rhs = b[None, :] - o[:, None] * an[None, :]
    lim = np.divide(rhs, ad[None, :], out=np.zeros_like(rhs), where=np.abs(ad[None, :]) > 1e-12)
    never = (np.abs(ad)[None, :] <= 1e-12) & (rhs < 0)
    lo = np.where(ad[None, :] < -1e-12, lim, -np.inf).max(1)
    hi = np.where(ad[None, :] > 1e-12, lim, np.inf).min(1)
    hi = np.where(never.any(1), -np.inf, hi)
    keep = hi - lo >= L
    return (o[keep], lo[keep], hi[keep]) if keep.any() else (hi - lo).max(initial=0.0)


def _frame_check(cam, radii):
    """Per-frame whole-body-in-view flags and person size (standing height / frame height)."""
    W, H, f = cam["W"], cam["H"], cam["f"]
    us, vs = W / 2 + f * cam["X"] / cam["Z"] - cam["shift"][:, None], \
        cam["y_h"] + f * (cam["c"] - cam["Y"]) / cam["Z"] - cam["dy"][:, None]
    rads = radii[None] * f / cam["Z"]
    box = np.stack([(us - rads).min(1), (vs - rads).min(1), (us + rads).max(1), (vs + rads).max(1)], 1)
    inside = (box[:, 0] >= 1) & (box[:, 1] >= 1) & (box[:, 2] <= W - 1) & (box[:, 3] <= H - 1) \
        & (cam["Z"].min(1) > 0.05)
    size = f / (np.maximum(cam["Z"][:, P["pelvis"]], 1e-3) * H)
    return us, vs, rads, box, inside, size


def _plan_camera(rng, action, motion, W, H, times):
    """Place the person's ground frame in the world and choose the camera; returns a dict.

    Camera modes are drawn with the same odds for every class (as far as the action allows), so
    that neither a scrolling background nor the person's size gives the class away: tracking shot
    (dolly or tripod pan), static camera (the path is framed to stay in view), treadmill (static
    camera, the person moves in place) and, on top of any of them, hand-held drift and shake.
    Every candidate framing is checked on the exact projection that gets rendered: the whole body
    in view (all frames; >= VIS_STATIC for someone crossing a static view) at a size in SIZE_RANGE.
    A static shot that cannot hold a fast walker/runner long enough is cut shorter (>= MIN_STATIC_S)
    or, failing that, becomes a tracking shot. cam["n"] is the number of frames to render.
    """
    u = rng.uniform
    ground = np.stack([motion.points(t) for t in times])  # (n, points, 3) in the ground frame
    # what a static camera must hold: "falling"/"event" every frame whole, "walk" a path crossing the
    # view, "leave" someone walking out of it and back in (see synth_actions.OtherMotion.framing)
    kind = "walk" if action in ("walking", "running") else action if action == "falling" else \
        {"path": "walk", "track": "event"}.get(motion.framing, motion.framing)
    if action == "falling":
        mode = "track" if motion.walk_pre and rng.random() < 0.65 else "static"
    elif action == "other":
        mode = "track" if motion.framing == "track" else "static"
    else:
        r = rng.random()
        mode = "track" if r < 0.35 else "treadmill" if r < 0.47 else "static"
    if mode == "treadmill":  # the belt carries the feet back; the pelvis stays put
        ground[..., 0] -= np.array([motion.travel(t) for t in times])[:, None]
    dolly_shot = rng.random() < 0.6  # tracking: a dolly/vehicle travels along, else a tripod pans
    indoor = rng.random() < 0.6
    back = u(1.1, 2.5) if indoor else u(2.5, 12)  # far edge of the floor (wall, skyline) / farthest body point
    # hand-held wander of the view direction (amplitude in px) and shake, drawn once
    wander = (u(0.01, 0.06) * 0.8 * max(W, H), u(0.1, 0.5), u(0, 6.3)) if rng.random() < 0.3 else None
    shake = np.zeros((len(times), 2))
    if rng.random() < 0.5:  # small camera shake: two sines per axis
        a = u(0.5, 3.0)
        for k in range(2):
            fr, ph = u(0.5, 3, 2), u(0, 6.3, 2)
            shake[:, k] = a * (np.sin(TAU * fr[0] * times + ph[0]) + 0.5 * np.sin(TAU * fr[1] * times + ph[1]))
    cam, tries, static_failed = None, 0, False
    jitter = np.abs(shake[:, 0]).max() + (wander[0] if wander else 0.0)
    if mode == "static" and kind == "walk":
        for tries in range(1, ATTEMPTS + 1):
            cam = _static_walk(rng, motion, ground, W, H, times, tries - 1, jitter)
            cam = cam and _finish(cam, rng, motion, ground, times, wander, shake, back, W, H)
            if cam is not None:
                break
        else:  # no static framing holds this walker/runner: follow them instead
            mode, static_failed = "track", True
    for attempt in range(ATTEMPTS if cam is None else 0):
        tries += 1
        cam = _finish(_place(rng, kind, mode, dolly_shot, ground, W, H, times, attempt, motion.radii, jitter), rng,
                      motion, ground, times, wander, shake, back, W, H)
        if cam is not None:
            break
    if cam is None:  # last resort: steady camera, person centred and sized to fit, a few headings
        mode = "static" if kind != "walk" and mode == "static" else "track"
        for k, psi in enumerate((0, 30, 60, 75, 85, -30, -60, -75, -85)):
            cam = _finish(_place(rng, kind, mode, True, ground, W, H, times, -1, motion.radii, jitter,
                                 math.radians(psi)), rng, motion, ground, times, None, np.zeros_like(shake), back, W,
                          H, strict=k < 8)
            if cam is not None:
                break
        cam["fallback"] = True
    # mode: "static" | "treadmill" | "track"; the rest is for inspection (how hard framing was)
    cam.update(indoor=indoor, mode=mode, belt=None, attempts=tries, static_failed=static_failed,
               cut=cam["n"] < len(times))
    if mode == "treadmill":  # belt outline on the floor under the person (world x, z of its corners)
        h, lat = cam["heading"]
        x0, z0 = cam["X0"][P["pelvis"]], cam["Z0"][P["pelvis"]]
        cam["belt"] = np.array([(x0 + a * h[0] + b * lat[0], z0 + a * h[1] + b * lat[1])
                                for a, b in ((-0.55, -0.22), (0.6, -0.22), (0.6, 0.22), (-0.55, 0.22))])
    return cam


def _static_walk(rng, motion, ground, W, H, times, attempt, jitter):
    """Static camera, person crossing: put the whole path (or >= VIS_STATIC of it) inside the view.

    Draws a size, heading and lens; if the path does not fit, zooms in (a longer lens from farther
    away holds more of a path that runs towards/away from the camera) and/or cuts the clip down to
    MIN_STATIC_S (a real static shot lasts while the person is in view). Later attempts draw smaller
    sizes. Returns a partial camera dict, or None if this size/heading cannot hold the path.
    """
    u = rng.uniform
    f0 = _lens(rng, W, H, ZOOM_STATIC)
    s = max(_person_size(rng) * 0.985 ** attempt, 0.3)
    band = (max(SIZE_RANGE[0], s / 1.35), min(SIZE_RANGE[1], s * 1.7))
    psi, sgn = _heading(rng, STATIC_HEADING), rng.choice([-1.0, 1.0])
    h, lat = _axes(psi, sgn)
    pel = ground[:, P["pelvis"]]
    rel = ground - pel[:, None]
    bw = float(np.max(np.abs(rel[..., 0] * h[0] + rel[..., 2] * lat[0]) + motion.radii[None]))
    mx = 4 + 0.02 * W + jitter  # pixels to spare at the sides
    travel = np.hypot(pel[:, 0] - pel[0, 0], pel[:, 2] - pel[0, 2])
    n, n_min = len(times), int(math.ceil(MIN_STATIC_S / (times[1] - times[0])))
    out = u(0, 1 - VIS_STATIC - 0.02) if rng.random() < 0.5 else 0.0  # enters/leaves at an end
    half = math.atan((max(W, H) / 2) / f0)
    fit = None
    # zoom in (relative half field of view) to hold the whole path; else also cut the clip short
    for zoom, may_cut in ((1.0, False), (0.6, False), (0.35, False), (1.0, True), (0.6, True), (0.35, True),
                          (0.2, True)):
        f = (max(W, H) / 2) / math.tan(max(half * zoom, math.radians(4)))
        k, za, zb = (W / 2 - mx) / f, f / (band[1] * H), f / (band[0] * H)
        fit, cut = _chord(h, k, bw, za, zb, travel[-1] * (1 - out)), n
        if may_cut and not isinstance(fit, tuple) and fit > 0:  # cut to what the longest chord holds
            cut = int(np.searchsorted(travel, fit * 0.98 / (1 - out), side="right"))
            fit = _chord(h, k, bw, za, zb, travel[cut - 1] * (1 - out)) if cut >= n_min else None
        if isinstance(fit, tuple):
            break
    if not isinstance(fit, tuple):
        return None
    L = travel[cut - 1]
    o, lo, hi = fit
    # among the placements that fit, prefer those that show the person at the drawn size mid-path
    nz, dz, z_s = h[0], h[1], f / (s * H)
    free = hi - L * (1 - out)  # the path may start anywhere in [lo, free]
    s0 = np.clip((z_s - o * nz) / dz - L / 2 if abs(dz) > 1e-6 else (lo + free) / 2, lo, free)
    dev = np.abs(o * nz + (s0 + L / 2) * dz - z_s)
    j = rng.choice(np.flatnonzero(dev <= dev.min() + 0.1 * z_s))
    s0 = s0[j] + (free[j] - lo[j]) * u(-0.15, 0.15)
    s0 = float(np.clip(s0, lo[j], free[j]))
    if rng.random() < 0.5:  # the part out of view is at the start (walks in) or at the end (leaves)
        s0 -= out * L
    start = o[j] * np.array([-h[1], h[0]]) + s0 * h
    X, Z = _to_camera(ground[:cut], h, lat, pel[0, [0, 2]], *start)
    return dict(f=f, c=u(0.45, 1.5), X=X, Z=Z, heading=(h, lat), n=cut, vis=VIS_STATIC, psi=psi)


def _place(rng, kind, mode, dolly_shot, ground, W, H, times, attempt, radii, jitter, psi_last=0.0):
    """Tracking shots, treadmill, falls and `other`: a person-centred framing at a random size and heading.

    kind: see _plan_camera ("leave": framed on where the person starts, near the side they leave by).

    The size is capped so the widest pose fits across the frame; a tracking shot keeps the person
    at a screen position that drifts slowly (within what the frame leaves to spare).
    attempt < 0: the last-resort framing (heading psi_last, medium lens, no drift). A lens is
    lengthened where needed so that approaching/receding stays within SIZE_RANGE.
    """
    u = rng.uniform
    n = len(times)
    fallback = attempt < 0
    f = _lens(rng, W, H, ZOOM_STATIC if mode != "track" else 0.3)
    s = _person_size(rng) * (OTHER_SIZE if kind in ("event", "leave") else 1.0)
    psi = _heading(rng, STATIC_HEADING if mode == "static" else 50.0)
    sgn = rng.choice([-1.0, 1.0])
    if fallback:
        f = (max(W, H) / 2) / math.tan(math.radians(65) / 2)
        psi = psi_last
    h, lat = _axes(psi, sgn)
    pel = ground[:, P["pelvis"]]
    mx = 4 + 0.02 * W + jitter
    if kind in ("falling", "event") and mode == "static":  # frame the whole event: start, fall and lying body
        i_ref = n - 1
        flat = ground.reshape(-1, 3)
        lo, hi = flat[:, [0, 2]].min(0), flat[:, [0, 2]].max(0)
        anchor = (lo + hi) / 2
        dx = (flat[:, 0] - anchor[0]) * h[0] + (flat[:, 2] - anchor[1]) * lat[0]
        bw = float(np.max(np.abs(dx) + np.tile(radii, n)))
        dz = (flat[:, 0] - anchor[0]) * h[1] + (flat[:, 2] - anchor[1]) * lat[1]
    else:
        i_ref = int(u(0.25, 0.75) * (n - 1)) if mode == "track" else int(u(0.3, 0.7) * (n - 1))
        i_ref = 0 if kind == "leave" else i_ref
        anchor = pel[i_ref, [0, 2]]
        rel = ground - pel[:, None]
        bw = float(np.max(np.abs(rel[..., 0] * h[0] + rel[..., 2] * lat[0]) + radii[None]))
        dz = (pel[:, 0] - anchor[0]) * h[1] + (pel[:, 2] - anchor[1]) * lat[1]
    s = min(s, 0.95 * (W / 2 - mx) / (bw * H))  # the widest pose fits across the frame
    if fallback:
        s = max(min(s, 0.6), SIZE_RANGE[0] + 0.03)
    # whatever comes closer / goes farther than the anchor must stay within SIZE_RANGE: if needed,
    # film from farther away with a longer lens (z_ref = f / (s H))
    lo_s, hi_s = SIZE_RANGE[0] + 0.01, SIZE_RANGE[1] - 0.02
    near = -dz.min() / (1 - s / hi_s) if dz.min() < 0 and s < hi_s else 0.0
    far = dz.max() / (s / lo_s - 1) if dz.max() > 0 and s > lo_s else (0.0 if dz.max() <= 0 else np.inf)
    f = min(max(f, 1.05 * max(near, far) * s * H), (max(W, H) / 2) / math.tan(math.radians(3)))
    slack = max(W / 2 - mx - bw * s * H, 0.0)  # how far off-centre the person may be (px)
    screen = W / 2 + slack * u(-0.9, 0.9, 2) * (0.0 if fallback else 1.0)  # at the start and the end
    if kind == "leave":  # start on the side they walk out by, so that they leave soon enough
        screen[0] = W / 2 + math.copysign(abs(screen[0] - W / 2), h[0])
    if mode == "track":  # drifts by at most 0.3 W over the clip
        screen[1] = np.clip(screen[1], screen[0] - 0.3 * W, screen[0] + 0.3 * W)
        screen = screen[0] + (screen[1] - screen[0]) * times / (times[-1] + 1e-6)
    else:
        screen = np.full(n, screen[0])
    z_ref = f / (s * H)
    X, Z = _to_camera(ground, h, lat, anchor, (screen[i_ref] - W / 2) * z_ref / f, z_ref)
    cam = dict(f=f, c=u(0.45, 1.5), X=X, Z=Z, heading=(h, lat), n=n, vis=1.0, psi=psi)
    if kind == "leave" and mode == "static":
        cam.update(vis=VIS_LEAVE, leave=True)
    if mode == "track":  # follow the person; the background scrolls
        Xp, Zp = X[:, P["pelvis"]], Z[:, P["pelvis"]]
        if dolly_shot:  # dolly/tracking vehicle: the camera travels along (size stays put)
            cam["dolly"] = Xp - (screen - W / 2) * Zp / f
            cam["X"] = X - cam["dolly"][:, None]
        else:  # tripod pan: the camera turns (the person shrinks as they move away)
            cam["yaw"] = np.arctan2(Xp, Zp) - np.arctan((screen - W / 2) / f)
    return cam


def _finish(cam, rng, motion, ground, times, wander, shake, back, W, H, strict=True):
    """Add pan/hand-held rotation, shake, horizon and background scroll; None if the framing fails."""
    n, f = cam["n"], cam["f"]
    times, shake = times[:n], shake[:n]
    yaw = cam.pop("yaw", np.zeros(n))
    dolly = cam.pop("dolly", np.zeros(n))
    if wander is not None:  # hand-held: slow wandering of the view direction
        a, fr, ph = wander
        yaw = yaw + a / f * np.sin(TAU * fr * times + ph)
    X, Z = X0, Z0 = cam["X"], cam["Z"]  # X0, Z0: in the world (before the camera turns)
    if yaw.any():
        cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        X, Z = X * cy - Z * sy, X * sy + Z * cy
    if Z.min() <= 0.05:
        return None
    Y = ground[:n, :, 1]
    my = 2 + np.abs(shake[:, 1]).max()
    cx = np.abs(cam["X"][:, P["pelvis"]] / cam["Z"][:, P["pelvis"]] * f)  # without rotation
    rows = np.flatnonzero(cx < W / 2) if cam["vis"] < 1 else None
    y_h = _horizon(rng, f, cam["c"], Y, Z, motion.radii[None], H, my, rows)
    if y_h is None:
        if strict:
            return None
        y_h = H * 0.95 - f * cam["c"] / np.median(Z[:, P["pelvis"]])
    z_b = Z.max() * back
    # The background is a strip that scrolls by f*yaw (plus shake, plus the dolly's parallax at the
    # backdrop's distance); `off` is its integer crop offset, `shift` what the person moves with it.
    # Under a dolly the floor needs per-row parallax (see _dolly_floor).
    scroll = f * yaw + f * dolly / z_b
    off = np.round(scroll + shake[:, 0]).astype(int)
    cam.update(X=X, Z=Z, Y=Y, y_h=y_h, z_b=z_b, zmax=float(Z.max()), zmin=float(Z.min()), off=off,
               dy=np.round(shake[:, 1]).astype(int), shift=off - scroll, yaw_px=f * yaw,
               dolly=dolly if dolly.any() else None, track=bool(yaw.any() or dolly.any()),
               pan_speed=float(np.abs(np.diff(scroll)).mean()) if n > 1 else 0.0, W=W, H=H,
               X0=X0[0], Z0=Z0[0])
    us, vs, rads, box, inside, size = _frame_check(cam, motion.radii)
    ok = inside.mean() >= cam["vis"] and size.min() >= SIZE_NEVER and inside.any() and \
        SIZE_RANGE[0] - 0.01 <= size[inside].min() and size[inside].max() <= SIZE_RANGE[1] + 0.03
    if cam.get("leave"):  # really gone for a while (in one stretch: the turn is unseen), back in view at the end
        gone = np.flatnonzero((box[:, 0] >= W) | (box[:, 2] <= 0))
        ok = ok and len(gone) >= GONE_LEAVE * n and gone[-1] - gone[0] + 1 == len(gone) and inside[0] and inside[-1]
    if strict and not ok:
        return None
    cam.update(us=us, vs=vs, rads=rads, box=box, inside=inside, size=size, frac=float(np.median(size)))
    return cam


# -------------------------------------------------------------------------------------- background
def _noise(rng, h, w, cell, ch=1):
    """Smooth value noise in about [-1, 1] with blobs of ~cell px."""
    g = rng.uniform(-1, 1, (max(2, int(h / cell) + 2), max(2, int(w / cell) + 2), ch)).astype(np.float32)
    n = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return n.reshape(h, w, ch)


def _color(rng, lo=40, hi=230, sat=(0, 120)):
    c = cv2.cvtColor(np.uint8([[[rng.uniform(0, 180), rng.uniform(*sat), rng.uniform(lo, hi)]]]), cv2.COLOR_HSV2BGR)
    return c[0, 0].astype(np.float32)


# Parts of the shipped photos without big faces (x0, y0, x1, y1 as fractions): street fronts, the
# blurred crowd, the flag. Photos are only ever a far backdrop, so a face there would loom over the person.
PHOTO_REGIONS = {
    "bus.jpg": ((0.0, 0.0, 1.0, 0.36),),
    "zidane.jpg": ((0.0, 0.0, 0.3, 0.45), (0.0, 0.0, 0.62, 0.24), (0.88, 0.0, 1.0, 0.5)),
    "grace_hopper.jpg": ((0.0, 0.0, 0.28, 0.55), (0.8, 0.05, 1.0, 0.5)),
}


@functools.lru_cache(maxsize=1)
def _photos():
    """Real photos shipped inside installed packages (optional; missing ones are skipped).

    Returns [(image, face-free regions)]; photos not listed in PHOTO_REGIONS are used whole.
    """
    paths = []
    for pkg, sub in (("ultralytics", ("assets",)), ("matplotlib", ("mpl-data", "sample_data"))):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.origin:
            d = Path(spec.origin).parent.joinpath(*sub)
            paths += sorted(d.glob("*.jpg")) if d.is_dir() else []
    out = []
    for p in paths:
        im = cv2.imread(str(p))
        if im is not None:
            s = 480 / max(im.shape[:2])
            im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else im
            out.append((im, PHOTO_REGIONS.get(p.name, ((0.0, 0.0, 1.0, 1.0),))))
    return out


def _photo(rng, h, w, blur=(3.0, 7.0)):
    """An h x w backdrop from face-free crops of a real photo, mirrored/tinted/blurred (None: no photos)."""
    photos = _photos()
    if not photos or h < 1 or w < 1:
        return None
    im, regions = photos[rng.integers(len(photos))]
    ih, iw = im.shape[:2]
    x0, y0, x1, y1 = regions[rng.integers(len(regions))]
    rx, ry, rw, rh = int(x0 * iw), int(y0 * ih), max(int((x1 - x0) * iw), 2), max(int((y1 - y0) * ih), 2)
    parts, width = [], 0
    while width < w:
        ch = max(2, int(rh * rng.uniform(0.5, 1.0)))
        cw = max(2, min(rw, int(ch * rng.uniform(0.8, 1.8) * (w / h if width == 0 else 1.0))))
        y, x = ry + rng.integers(0, rh - ch + 1), rx + rng.integers(0, rw - cw + 1)
        crop = im[y:y + ch, x:x + cw]
        crop = crop[:, ::-1] if len(parts) % 2 else crop  # mirrored neighbours: no hard seams
        parts.append(cv2.resize(crop, (max(1, int(round(cw * h / ch))), h), interpolation=cv2.INTER_AREA))
        width += parts[-1].shape[1]
    out = np.concatenate(parts, 1)[:, :w].astype(np.float32)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(*blur))  # out of focus: shapes and colours only
    return out * rng.uniform(0.75, 1.2, 3).astype(np.float32) + rng.uniform(-20, 20)


def _ground_tile(rng, indoor):
    """A 128 px texture of a floor/ground patch and its size in person heights."""
    T = 128
    kind = rng.choice(["tiles", "planks", "plain"] if indoor else ["grass", "asphalt", "track", "tiles", "dirt"])
    base = _color(rng, 50, 220, (0, 90))
    n = _noise(rng, T, T, 16)
    tile = base + n * rng.uniform(4, 18)
    if kind == "tiles":
        k = rng.integers(1, 4)
        tile += np.kron(rng.uniform(-12, 12, (k, k)), np.ones((T // k + 1, T // k + 1)))[:T, :T, None]
        grout = base * rng.uniform(0.6, 1.3)
        for i in range(k):
            tile[i * T // k:i * T // k + 2], tile[:, i * T // k:i * T // k + 2] = grout, grout
        size = k * rng.uniform(0.15, 0.4)
    elif kind == "planks":
        tile = _color(rng, 60, 200, (60, 160))
        grain = cv2.resize(rng.uniform(-1, 1, (32, 4)).astype(np.float32), (T, T))[..., None]
        tile = tile + grain * 14 + np.repeat(rng.uniform(-18, 18, 4), T // 4)[:, None, None]
        tile[::T // 4] *= 0.6
        size = rng.uniform(0.3, 0.6)
    elif kind == "grass":
        tile = np.float32([40, 120, 70]) * rng.uniform(0.6, 1.2) + _noise(rng, T, T, 3) * 25 + n * 15
        size = rng.uniform(0.3, 1.0)
    elif kind == "track":
        tile = np.float32([60, 70, 170]) * rng.uniform(0.7, 1.1) + _noise(rng, T, T, 2) * 12
        tile[:3] = 230
        size = 0.7
    else:
        size = rng.uniform(0.4, 1.5)
    return np.clip(tile, 0, 255).astype(np.float32), float(size)


def _floor(rng, cam, indoor):
    """A painter of the perspective-correct floor: remaps a texture through the ground homography.

    paint(img, v_from, cx, x_shift, row0): fills img rows below camera row v_from; image column cx is
    the optical axis, x_shift moves the camera sideways (dolly), image row r is camera row r - row0.
    """
    tile, size = _ground_tile(rng, indoor)
    f, c, y_h, H = cam["f"], cam["c"], cam["y_h"], cam["H"]
    T, mean = tile.shape[0], tile.mean((0, 1))
    s0, s1 = rng.uniform(0.8, 1.0), rng.uniform(1.0, 1.15)

    def paint(img, v_from, cx, x_shift=0.0, row0=0):
        h, w = img.shape[:2]
        r0 = max(int(math.ceil(v_from + row0)), int(y_h + row0) + 1, 0)
        if r0 >= h:
            return
        v = np.arange(r0, h, dtype=np.float32) - row0 + 0.5
        Z = f * c / (v - y_h)
        X = (np.arange(w, dtype=np.float32) - cx)[None, :] * (Z / f)[:, None] + x_shift
        mx = ((X / size * T) % T).astype(np.float32)
        my = np.broadcast_to(((Z / size * T) % T)[:, None], mx.shape).astype(np.float32)
        tex = cv2.remap(tile, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        # far away a texel shrinks below a pixel: fade to the mean colour instead of aliasing
        a = np.clip(1.5 / ((Z / f) / size * T) - 0.2, 0, 1)[:, None, None]
        shade = (s0 + (s1 - s0) * np.clip(v / H, 0, 1))[:, None, None]
        img[r0:] = (a * tex + (1 - a) * mean) * shade

    return paint


def _rect(img, x0, y0, x1, y1, col, edge=0.7):
    cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), tuple(float(v) for v in col), -1)
    cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), tuple(float(v) * edge for v in col), 1)


def _inset(rng, img, x0, y0, x1, y1):
    """Paste a photo crop inside a frame drawn at (x0, y0)-(x1, y1), clipped to img."""
    b = max(1, int(0.08 * min(x1 - x0, y1 - y0)))
    x0, y0, x1, y1 = int(x0) + b, int(y0) + b, int(x1) - b, int(y1) - b
    h, w = img.shape[:2]
    if x1 - x0 < 3 or y1 - y0 < 3 or x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        return
    pic = _photo(rng, y1 - y0, x1 - x0, blur=(0.5, 2.0))
    if pic is not None:
        cx0, cy0 = max(x0, 0), max(y0, 0)
        img[cy0:min(y1, h), cx0:min(x1, w)] = pic[cy0 - y0:min(y1, h) - y0, cx0 - x0:min(x1, w) - x0]


def _backdrop(rng, img, v_b, s, indoor):
    """Wall (doors, windows, furniture, stripes) or outdoor skyline above the floor line v_b."""
    h, w = img.shape[:2]
    vb = int(np.clip(v_b, 0, h))
    if vb <= 0:
        return
    top = img[:vb]
    if indoor:
        wall = _color(rng, 90, 240, (0, 70))
        top[:] = wall * np.linspace(rng.uniform(0.8, 1.1), 1.0, vb, dtype=np.float32)[:, None, None]
        top += _noise(rng, vb, w, rng.uniform(20, 80)) * rng.uniform(2, 10)
        if rng.random() < 0.3:  # wallpaper / panelling stripes
            period = max(3.0, s * rng.uniform(0.05, 0.3))
            top *= (1 + rng.uniform(0.03, 0.1) * np.sign(np.sin(np.arange(w) * 2 * np.pi / period)))[None, :, None]
        x = rng.uniform(-s, s)
        while x < w:
            kind = rng.integers(5)
            ww, hh = s * rng.uniform(*[(0.45, 0.6), (0.5, 1.2), (0.2, 0.6), (0.4, 1.2), (0.6, 1.5)][kind]), \
                s * rng.uniform(*[(1.1, 1.25), (0.5, 0.8), (0.15, 0.4), (0.3, 1.1), (0.4, 0.6)][kind])
            bottom = vb - s * [0, rng.uniform(0.45, 0.6), rng.uniform(0.8, 1.1), 0, rng.uniform(0.5, 0.8)][kind]
            col = _color(rng, 20, 250, (0, 140)) if kind != 1 else np.float32([235, 215, 190]) * rng.uniform(0.7, 1.1)
            _rect(top, x, bottom - hh, x + ww, bottom, col)
            if kind in (1, 2) and rng.random() < 0.4:  # a window view / a framed picture: a photo crop
                _inset(rng, top, x, bottom - hh, x + ww, bottom)
            if kind == 3 and hh > 6:  # cabinet doors / shelves
                cv2.line(top, (int(x + ww / 2), int(bottom - hh)), (int(x + ww / 2), int(bottom)),
                         tuple(float(v) * 0.6 for v in col), 1)
            x += ww + s * rng.uniform(0.1, 1.5)
        band = max(1, int(s * 0.04))
        top[max(0, vb - band):] = _color(rng, 30, 230)
    else:
        sky_top, sky_low = _color(rng, 150, 250, (20, 120)), _color(rng, 180, 255, (0, 40))
        a = np.linspace(0, 1, vb, dtype=np.float32)[:, None, None]
        top[:] = sky_top * (1 - a) + sky_low * a
        x = rng.uniform(-s, 0)
        while x < w:  # trees, bushes and buildings at the far edge of the ground
            hh = s * rng.uniform(0.6, 5.0)
            if rng.random() < 0.6:
                col = np.float32([40, 100, 60]) * rng.uniform(0.5, 1.2)
                for _ in range(6):
                    cx, cy = x + rng.uniform(0, s), vb - rng.uniform(0.2, 1.0) * hh
                    cv2.circle(top, (int(cx), int(cy)), max(2, int(hh * rng.uniform(0.2, 0.45))),
                               tuple(float(v) for v in col * rng.uniform(0.8, 1.2)), -1)
                x += s * rng.uniform(0.5, 1.5)
            else:
                ww = s * rng.uniform(1, 4)
                _rect(top, x, vb - hh, x + ww, vb, _color(rng, 60, 220, (0, 60)))
                x += ww + s * rng.uniform(0, 2)
        top[:] = cv2.GaussianBlur(top, (0, 0), 1.0)


def _background(rng, cam, bg_w, cx):
    """The (wide, for panning) background strip as float32, and a floor painter (or None)."""
    h = cam["H"] + 2 * MARGIN
    img = np.zeros((h, bg_w, 3), np.float32)
    indoor, z_b = cam["indoor"], cam["z_b"]
    v_b = cam["y_h"] + cam["f"] * cam["c"] / z_b  # camera row of the floor's far edge
    # a photo is only ever the far backdrop above the floor line (a window view, a distant street)
    kind = rng.choice(["scene", "photo", "plain"], p=[0.68, 0.2, 0.12])
    top = int(np.clip(math.ceil(v_b + MARGIN), 0, h))  # rows above the floor
    photo = _photo(rng, top, bg_w) if kind == "photo" else None
    if kind == "plain":
        c1, c2 = _color(rng, 20, 240), _color(rng, 20, 240)
        a = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img[:] = c1 * (1 - a) + c2 * a + _noise(rng, h, bg_w, rng.uniform(8, 60), 3) * rng.uniform(3, 20)
    elif photo is not None:
        img[:top] = photo
    else:
        _backdrop(rng, img, v_b + MARGIN, cam["f"] / z_b, indoor)
    floor = _floor(rng, cam, indoor)
    floor(img, v_b, cx, 0.0, MARGIN)
    if indoor and cam["dolly"] is None and rng.random() < 0.5:  # furniture on the floor behind the person
        for _ in range(rng.integers(1, 4)):
            z = rng.uniform(cam["zmax"] + 0.3, max(z_b, cam["zmax"] + 0.4))
            s, vz = cam["f"] / z, cam["y_h"] + cam["f"] * cam["c"] / z + MARGIN
            x = rng.uniform(0, bg_w)
            _rect(img, x, vz - s * rng.uniform(0.25, 0.6), x + s * rng.uniform(0.3, 1.2), vz, _color(rng, 20, 230))
    if rng.random() < 0.5:  # the camera focuses on the person; the background is softer
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.8))
    if cam["belt"] is not None:  # treadmill: dark belt inside a lighter frame
        bx, bz = cam["belt"][:, 0], cam["belt"][:, 1]
        pts = np.stack([cx + cam["f"] * bx / bz, cam["y_h"] + cam["f"] * cam["c"] / bz + MARGIN], 1)
        centre = pts.mean(0)
        frame_col, belt_col = _color(rng, 120, 220, (0, 30)), _color(rng, 20, 60, (0, 20))
        cv2.fillConvexPoly(img, np.round((centre + (pts - centre) * 1.12) * 16).astype(np.int32),
                           tuple(float(v) for v in frame_col), cv2.LINE_AA, 4)
        cv2.fillConvexPoly(img, np.round(pts * 16).astype(np.int32), tuple(float(v) for v in belt_col), cv2.LINE_AA, 4)
    return img, floor, v_b


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
    """What `seed` renders; for "other", synth_actions.other_action(seed) says which sub-action."""
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


# ---------------------------------------------------------------------------------------- dataset
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
