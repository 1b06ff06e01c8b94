"""Backgrounds of the synthetic clips: textured grounds, rooms with perspective floors and furniture, and real
photos shipped in installed packages as a far backdrop or a window view.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

from .camera import MARGIN


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
