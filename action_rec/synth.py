"""Built-in procedurally rendered dataset: a person walking, running or falling, as mp4 clips.

Each clip is one person (see `synth_body`) placed in a 3D world and filmed by a pinhole camera, so
distance, oblique headings, approaching/receding and lying bodies are foreshortened consistently.
Everything a real camera varies is randomised per clip from its seed: background (rooms with
perspective floors and furniture, outdoor grounds, blurred real photos), lighting, framing, panning,
shake, blur, sensor noise, compression, occluders, frame rate and length.
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

from action_rec.synth_body import P, Motion, Shape, _circles_hull, draw_body, random_look

CLASSES = ("walking", "running", "falling")
SPLITS = ("train", "val", "test")
FPS_CHOICES = (10, 12, 15, 18, 24, 25, 30)
SIZES = ((320, 240), (426, 240), (480, 360), (400, 300), (480, 270), (360, 480), (240, 320), (270, 480))
MARGIN = 6  # background border (px) that camera shake may reveal
TAU = 2 * math.pi


# ------------------------------------------------------------------------------------------ camera
def _plan_camera(rng, action, motion, W, H, times):
    """Place the person's ground frame in the world and choose the camera; returns a dict.

    Camera modes are drawn with similar odds for every class (as far as the action allows), so
    that neither a scrolling background nor the person's size gives the class away: tracking shot
    (dolly or tripod pan), static camera (the path is framed to cross the view), treadmill (static
    camera, the person moves in place) and, on top of any of them, hand-held drift and shake.
    """
    u = rng.uniform
    n = len(times)
    ground = np.stack([motion.points(t) for t in times])  # (n, points, 3) in the ground frame
    track = (action != "falling" or motion.walk_pre) and rng.random() < (0.5 if action == "falling" else 0.35)
    treadmill = action != "falling" and not track and rng.random() < 0.15
    if treadmill:  # the belt carries the feet back; the pelvis stays put
        ground[..., 0] -= np.array([motion.travel(t) for t in times])[:, None]
    cam = _place_path(rng, action, motion, ground, W, H, times, track, treadmill)
    f, X, Z = cam["f"], cam["X"], cam["Z"]
    # the far edge of the floor (wall or skyline) lies somewhere behind the person
    cam["indoor"] = indoor = rng.random() < 0.6
    cam["z_b"] = z_b = cam["zmax"] * (u(1.1, 2.5) if indoor else u(2.5, 12))
    cam["belt"] = None
    if treadmill:  # belt outline on the floor under the person (world x, z of its corners)
        h, lat = cam["heading"]
        x0, z0 = X[0, P["pelvis"]], Z[0, P["pelvis"]]
        cam["belt"] = np.array([(x0 + a * h[0] + b * lat[0], z0 + a * h[1] + b * lat[1])
                                for a, b in ((-0.55, -0.22), (0.6, -0.22), (0.6, 0.22), (-0.55, 0.22))])
    yaw, dolly = np.zeros(n), np.zeros(n)
    if cam["track"]:  # follow the person, who drifts slowly across the view; the background scrolls
        Xp, Zp = X.mean(1), Z.mean(1)
        screen = cam["u_ref"] + u(-0.3, 0.3) * W * (times - times[cam["i_ref"]]) / (times[-1] + 1e-6)
        if rng.random() < 0.6:  # dolly/tracking vehicle: the camera travels along (size stays put)
            dolly = Xp - (screen - W / 2) * Zp / f
            X = X - dolly[:, None]
        else:  # tripod pan: the camera turns (the person shrinks as they move away)
            yaw = np.arctan2(Xp, Zp) - np.arctan((screen - W / 2) / f)
    if rng.random() < 0.3:  # hand-held: slow wandering of the view direction
        yaw += u(0.01, 0.06) * np.sin(2 * np.pi * u(0.1, 0.5) * times + u(0, 6.3))
    if yaw.any():
        cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        X, Z = X * cy - Z * sy, X * sy + Z * cy
    shake = np.zeros((n, 2))
    if rng.random() < 0.5:  # small camera shake: two sines per axis
        a = u(0.5, 3.0)
        for k in range(2):
            fr, ph = u(0.5, 3, 2), u(0, 6.3, 2)
            shake[:, k] = a * (np.sin(TAU * fr[0] * times + ph[0]) + 0.5 * np.sin(TAU * fr[1] * times + ph[1]))
    # The background is a strip that scrolls by f*yaw (plus shake, plus the dolly's parallax at the
    # backdrop's distance); `off` is its integer crop offset, `shift` what the person moves with it.
    # Under a dolly the floor needs per-row parallax (see _dolly_floor).
    scroll = f * yaw + f * dolly / z_b
    off = np.round(scroll + shake[:, 0]).astype(int)
    cam.update(X=X, Z=Z, Y=ground[..., 1], off=off, dy=np.round(shake[:, 1]).astype(int), shift=off - scroll,
               yaw_px=f * yaw, dolly=dolly if dolly.any() else None,
               pan_speed=float(np.abs(np.diff(scroll)).mean()) if n > 1 else 0.0)
    return cam


def _place_path(rng, action, motion, ground, W, H, times, track, treadmill):
    """Choose lens, distance, camera height and heading so the action is framed sensibly."""
    u = rng.uniform
    n = len(times)
    f = (max(W, H) / 2) / math.tan(math.radians(u(55, 80)) / 2)  # field of view on the long side
    frac = frac_drawn = u(0.35, 0.8)  # person height / frame height at the reference time
    c = u(0.45, 1.5)  # camera height in person heights
    ground_row = u(0.76, 0.97) * H  # where the feet are at the reference time
    psi = math.radians(u(-15, 15) if rng.random() < 0.5 else rng.choice([-1, 1]) * u(15, 60))
    sgn = rng.choice([-1.0, 1.0])
    if action == "falling":  # frame the whole event: where it starts and where the body ends up
        i_ref, u_ref = n - 1, u(0.4, 0.6) * W
        anchor = (ground[0].mean(0) + ground[-1].mean(0)) / 2
    else:  # a static camera sees the person cross the middle of the view mid-clip
        i_ref = int(u(0.25, 0.75) * (n - 1)) if track or treadmill else int(u(0.4, 0.6) * (n - 1))
        u_ref = u(0.25, 0.75) * W if track or treadmill else u(0.4, 0.6) * W
        anchor = ground[i_ref, P["pelvis"]] * np.array([1.0, 0.0, 0.0])
    vis = 0.5 if action == "running" else 0.6  # a static camera must see the person this often
    if action != "falling" and not (track or treadmill):
        # a static camera only sees part of the path: stay roughly side-on and step back far enough
        lim = math.radians(20 if action == "running" else 30)
        psi = min(max(psi, -lim), lim)
        path = motion.speed * times[-1] * math.cos(psi)
        frac = max(0.18, min(frac, 0.95 * W / (H * vis * max(path, 1e-3))))
    psi0 = psi
    for attempt in range(24):
        if attempt == 12 and not track and action != "falling":  # no good static framing: follow instead
            track, frac, psi = True, frac_drawn, psi0
        z_ref = f / (frac * H)
        y_h = ground_row - c * frac * H  # horizon row (often above the frame: the camera looks down)
        h = np.array([sgn * math.cos(psi), math.sin(psi)])
        lat = np.array([-math.sin(psi), sgn * math.cos(psi)])
        x_ref = (u_ref - W / 2) * z_ref / f
        X = x_ref + (ground[..., 0] - anchor[0]) * h[0] + (ground[..., 2] - anchor[2]) * lat[0]
        Z = z_ref + (ground[..., 0] - anchor[0]) * h[1] + (ground[..., 2] - anchor[2]) * lat[1]
        zmin, zmax = Z.min(), Z.max()
        head_row, feet_row = y_h + f * (c - 1) / zmin, y_h + f * c / zmin  # when closest
        too_close = zmin < f / (0.95 * H) or feet_row > 1.1 * H or head_row < -0.06 * H
        if too_close or zmax > f / (0.15 * H):
            if abs(psi) > math.radians(3):
                psi *= 0.7  # walks too far towards/away from the camera
            else:
                frac *= 0.9 if too_close else 1.1
            continue
        if action == "falling":  # the fall and the lying body must be fully in view
            uv = [(W / 2 + f * X[i] / Z[i], y_h + f * (c - ground[i, :, 1]) / Z[i]) for i in (0, -1)]
            if all(uu.min() > 0.02 * W and uu.max() < 0.98 * W and vv.max() < 0.98 * H for uu, vv in uv) \
                    and uv[0][1].min() > -0.02 * H:
                break
            psi *= 0.7
            frac *= 0.9
        elif not track:  # static camera: the person must be in view most of the time
            mid = W / 2 + f * X[:, P["pelvis"]] / Z[:, P["pelvis"]]
            if np.mean((mid > 0) & (mid < W)) >= vis:
                break
            frac = max(0.2, frac * 0.85)  # step back, and let the path run more obliquely
            psi = math.copysign(min(abs(psi) + math.radians(10), math.radians(65)), psi or 1.0)
        else:
            break
    return dict(f=f, c=c, y_h=y_h, X=X, Z=Z, zmin=float(zmin), zmax=float(zmax), frac=frac, psi=psi,
                heading=(h, lat), track=track, i_ref=i_ref, u_ref=u_ref, W=W, H=H)


# -------------------------------------------------------------------------------------- background
def _noise(rng, h, w, cell, ch=1):
    """Smooth value noise in about [-1, 1] with blobs of ~cell px."""
    g = rng.uniform(-1, 1, (max(2, int(h / cell) + 2), max(2, int(w / cell) + 2), ch)).astype(np.float32)
    n = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return n.reshape(h, w, ch)


def _color(rng, lo=40, hi=230, sat=(0, 120)):
    c = cv2.cvtColor(np.uint8([[[rng.uniform(0, 180), rng.uniform(*sat), rng.uniform(lo, hi)]]]), cv2.COLOR_HSV2BGR)
    return c[0, 0].astype(np.float32)


@functools.lru_cache(maxsize=1)
def _photos():
    """Real photos shipped inside installed packages (optional; missing ones are skipped)."""
    paths = []
    for pkg, sub in (("ultralytics", ("assets",)), ("matplotlib", ("mpl-data", "sample_data"))):
        spec = importlib.util.find_spec(pkg)
        if spec and spec.origin:
            d = Path(spec.origin).parent.joinpath(*sub)
            paths += sorted(d.glob("*.jpg")) if d.is_dir() else []
    imgs = []
    for p in paths:
        im = cv2.imread(str(p))
        if im is not None:
            s = 480 / max(im.shape[:2])
            imgs.append(cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else im)
    return imgs


def _photo(rng, h, w):
    """A crop of a real photo, mirrored/tinted/blurred so repeats are not recognisable."""
    imgs = _photos()
    if not imgs:
        return None
    im = imgs[rng.integers(len(imgs))]
    parts, width = [], 0
    while width < w:
        ih, iw = im.shape[:2]
        ch = int(ih * rng.uniform(0.15, 0.5))  # small crops read as texture, not as a recognisable scene
        cw = int(min(iw, ch * rng.uniform(0.8, 1.8) * w / max(h, 1) if width == 0 else ch * rng.uniform(0.8, 1.6)))
        y, x = rng.integers(0, ih - ch + 1), rng.integers(0, iw - cw + 1)
        crop = im[y:y + ch, x:x + cw]
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        crop = cv2.resize(crop, (max(1, int(cw * h / ch)), h))
        parts.append(crop)
        width += crop.shape[1]
    out = np.concatenate(parts, 1)[:, :w].astype(np.float32)
    out = cv2.GaussianBlur(out, (0, 0), rng.uniform(3.0, 7.0))  # out of focus: shapes and colours only
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
    kind = rng.choice(["scene", "photo_wall", "photo_full", "plain"], p=[0.65, 0.17, 0.06, 0.12])
    photo = _photo(rng, h, bg_w) if kind in ("photo_wall", "photo_full") else None
    if kind == "photo_full" and photo is not None:
        return photo, None, v_b
    if kind == "plain":
        c1, c2 = _color(rng, 20, 240), _color(rng, 20, 240)
        a = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img[:] = c1 * (1 - a) + c2 * a + _noise(rng, h, bg_w, rng.uniform(8, 60), 3) * rng.uniform(3, 20)
    elif photo is not None:
        img[:] = photo
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


def plan_clip(action: str, seed: int) -> ClipPlan:
    if action not in CLASSES:
        raise ValueError(f"unknown action {action!r}; valid actions are {', '.join(CLASSES)}")
    rng = np.random.default_rng(seed)
    fps = float(rng.choice(FPS_CHOICES))
    size = SIZES[rng.integers(len(SIZES))]
    duration = rng.uniform(3.0, 5.0)
    motion = Motion(action, rng, Shape.random(rng), duration)
    if action == "falling":  # short pre-fall, then >= 1.5 s lying: every 2 s window shows fall or lying
        duration = min(5.0, max(duration, motion.t0 + motion.tf + rng.uniform(1.6, 2.2)))
    return ClipPlan(fps, size, np.arange(int(round(duration * fps))) / fps, motion, rng)


def render_clip(action: str, seed: int) -> tuple[list[np.ndarray], float]:
    """Render one clip deterministically from `seed`: returns (frames as HxWx3 uint8 BGR, fps)."""
    fps, (W, H), times, motion, rng = plan_clip(action, seed)
    u = rng.uniform
    cam = _plan_camera(rng, action, motion, W, H, times)
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
    f, c, y_h = cam["f"], cam["c"], cam["y_h"]
    # image position and size of each body point, per frame
    us = W / 2 + f * cam["X"] / cam["Z"] - cam["shift"][:, None]
    vs = y_h + f * (c - cam["Y"]) / cam["Z"] - dy[:, None]
    rads = motion.radii[None] * f / cam["Z"]
    shadow = (u(0.15, 0.5), u(-0.6, 0.6), u(-0.4, 0.4)) if rng.random() < 0.7 else None
    light = np.array([u(-0.8, 0.8), -1.0])
    light /= np.linalg.norm(light)
    occ = _occluder(rng, action, cam, us, vs, lut)
    frames = []
    for i, t in enumerate(times):
        x0 = off[i] - off.min() + MARGIN
        img = bg[MARGIN + dy[i]:MARGIN + dy[i] + H, x0:x0 + W].copy()
        if dolly is not None:
            strip, v0, x0 = floor_strip
            r0 = max(v0 - dy[i], 0)
            if r0 < H:
                k = np.arange(r0, H) + dy[i] - v0  # strip rows
                img[r0:] = strip[k[:, None], x0[i, k][:, None] + np.arange(W)[None, :]]
        uv = np.stack([us[i], vs[i]], 1)
        pad = rads[i].max() + 4
        box = (int(np.clip(uv[:, 0].min() - pad, 0, W)), int(np.clip(uv[:, 1].min() - pad, 0, H)),
               int(np.clip(uv[:, 0].max() + pad, 0, W)), int(np.clip(uv[:, 1].max() + pad, 0, H)))
        if box[2] - box[0] > 1 and box[3] - box[1] > 1:
            if shadow is not None:
                _shadow(img, cam, i, cam["shift"][i], dy[i], rads[i], shadow)
            before = img[box[1]:box[3], box[0]:box[2]].astype(np.float32)
            draw_body(img, uv, rads[i], cam["Z"][i], look, light)
            if fx["exposure"] and i > 0:
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
    kind = "pole" if action == "falling" else rng.choice(["pole", "desk", "box"])
    if kind == "pole":
        w = person * rng.uniform(0.04, 0.12)
        bottom = H if rng.random() < 0.5 else int(vs.max() + rng.uniform(0.05, 0.2) * H)

        def draw(img, o, dy):
            x0 = int(x - o)
            cv2.rectangle(img, (x0, 0), (int(x0 + w), bottom - dy), col, -1)
            cv2.rectangle(img, (x0, 0), (int(x0 + w * 0.3), bottom - dy), dark, -1)
    else:
        feet = float(np.median(vs[:, P["heel_r"]]))
        top = int(feet - person * rng.uniform(0.03, 0.25))  # hides feet/shins, never the whole gait
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
    """Independent per-clip seed: each split and class gets its own stream derived from `seed`."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=(SPLITS.index(split), CLASSES.index(action), int(idx)))
    return int(ss.generate_state(1, np.uint64)[0])


def _make_clip(job):
    path, action, seed = job
    frames, fps = render_clip(action, seed)
    write_clip(path, frames, fps)
    return path


def _init_worker():
    cv2.setNumThreads(1)  # one clip per process already keeps every core busy


def synthesize(out_dir: str | Path, n_train: int = 60, n_val: int = 15, n_test: int = 30,
               seed: int = 0, workers: int = 2, progress: bool = True) -> dict[str, int]:
    """Write out_dir/{train,val,test}/{class}/<class>_<split>_<idx:04d>.mp4 (n_* clips per class).

    Deterministic for a given seed; existing files are kept, so a re-run only fills in what is
    missing. Returns the number of clips per split.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    out_dir = Path(out_dir)
    jobs, counts = [], {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        counts[split] = 3 * n
        for action in CLASSES:
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
