"""How the synthetic figure looks and is drawn: clothing and skin colours, shaded capsules, the head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .body import TAU, P


@dataclass
class Look:
    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    shoes: tuple
    short_sleeves: bool
    shorts: bool
    hair_style: str  # "short" | "long" | "bald"


SKIN = [(205, 222, 255), (170, 200, 241), (130, 170, 224), (99, 141, 198), (66, 105, 161), (45, 70, 110),
        (36, 52, 80)]


HAIR = [(20, 20, 25), (30, 40, 60), (40, 70, 110), (90, 150, 200), (160, 160, 165), (30, 60, 140)]


def _hsv(h, s, v):
    c = cv2.cvtColor(np.uint8([[[h, s, v]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(x) for x in c)


def random_look(rng: np.random.Generator, bg_color=None) -> Look:
    u = rng.uniform

    def jitter(c, a=18):
        return tuple(int(np.clip(x + u(-a, a), 0, 255)) for x in c)

    def cloth():
        k = rng.random()
        if k < 0.3:  # greys, black, white
            v = u(15, 240)
            return jitter((v, v, v), 8)
        if k < 0.45 and bg_color is not None:  # camouflage: close to the background
            return jitter(bg_color, 25)
        return _hsv(u(0, 180), u(40, 230), u(40, 235))

    jeans = [(120, 70, 40), (90, 50, 30), (40, 35, 35), (110, 110, 110), (110, 160, 180), (60, 60, 75)]
    trousers = jitter(jeans[rng.integers(len(jeans))]) if rng.random() < 0.6 else cloth()
    shoes = jitter([(25, 25, 25), (230, 230, 230), (60, 80, 110)][rng.integers(3)]) if rng.random() < 0.7 \
        else cloth()
    return Look(skin=jitter(SKIN[rng.integers(len(SKIN))], 12), hair=jitter(HAIR[rng.integers(len(HAIR))], 10),
                shirt=cloth(), trousers=trousers, shoes=shoes, short_sleeves=bool(rng.random() < 0.4),
                shorts=bool(rng.random() < 0.2),
                hair_style=str(rng.choice(["short", "long", "bald"], p=[0.6, 0.3, 0.1])))


_ARCS = {n: np.exp(1j * np.linspace(math.pi / 2, 3 * math.pi / 2, n)) for n in range(3, 10)}


_RING = np.exp(1j * np.linspace(0, TAU, 12, endpoint=False))


def _capsule(p1, p2, r1, r2):
    """Outline of a tapered capsule (two half circles joined by tangents) as (2n, 2) points."""
    d = complex(p2[0] - p1[0], p2[1] - p1[1])
    rot = d / abs(d) if abs(d) > 1e-9 else 1.0
    arc = _ARCS[int(min(9, 3 + max(r1, r2) / 2))] * rot
    z = np.concatenate([complex(p1[0], p1[1]) + r1 * arc, complex(p2[0], p2[1]) - r2 * arc])
    return np.stack([z.real, z.imag], 1)


def _circles_hull(cs, rs):
    z = ((cs[:, 0] + 1j * cs[:, 1])[:, None] + rs[:, None] * _RING[None]).ravel()
    return cv2.convexHull(np.stack([z.real, z.imag], 1).astype(np.float32))[:, 0, :]


def _fill(img, poly, color):
    cv2.fillConvexPoly(img, np.round(poly * 16).astype(np.int32), color, cv2.LINE_AA, 4)


def _capsules(p1, p2, r1, r2, n=7):
    """Vectorised `_capsule` for K segments: (K, 2n, 2) outlines."""
    d = (p2[:, 0] - p1[:, 0]) + 1j * (p2[:, 1] - p1[:, 1])
    mag = np.abs(d)
    rot = np.where(mag > 1e-9, d / np.maximum(mag, 1e-9), 1.0)
    arc = rot[:, None] * _ARCS[n][None]
    z = np.concatenate([(p1[:, 0] + 1j * p1[:, 1])[:, None] + r1[:, None] * arc,
                        (p2[:, 0] + 1j * p2[:, 1])[:, None] - r2[:, None] * arc], 1)
    return np.round(np.stack([z.real, z.imag], 2) * 16).astype(np.int32)


def _shaded_hull(img, cs, rs, color, light):
    """Dark silhouette then a smaller, light-shifted core: reads as a rounded solid with a rim."""
    _fill(img, _circles_hull(cs, rs), tuple(int(c * 0.55) for c in color))
    r = float(rs.mean())
    if r > 1.6:
        _fill(img, _circles_hull(cs + light * 0.16 * r, rs * 0.8), color)


def draw_body(img: np.ndarray, uv: np.ndarray, rad: np.ndarray, depth: np.ndarray, look: Look,
              light=(-0.6, -0.8)) -> None:
    """Draw the figure: uv (N,2) pixel positions, rad (N,) pixel radii, depth (N,) camera distance."""
    light = np.asarray(light, float)
    caps = []  # (depth, p1, p2, r1, r2, colour): limbs, neck, sleeves
    others = []  # (depth, kind, args): torso, pelvis, head

    def cap(a, b, ra, rb, color, bias=0.0):
        i, j = P[a], P[b]
        caps.append(((depth[i] + depth[j]) / 2 + bias, uv[i], uv[j], ra, rb, color))

    for s in ("r", "l"):
        rk = rad[P["knee_" + s]]
        cap("hip_" + s, "knee_" + s, rad[P["hip_" + s]], rk, look.trousers)
        cap("knee_" + s, "ankle_" + s, rk * 0.95, rad[P["ankle_" + s]], look.skin if look.shorts else look.trousers)
        cap("heel_" + s, "toe_" + s, rad[P["heel_" + s]], rad[P["toe_" + s]] * 0.9, look.shoes)
        re, rw = rad[P["el_" + s]], rad[P["wr_" + s]]
        ra = rad[P["sh_" + s]] * 0.78
        if look.short_sleeves:
            cap("sh_" + s, "el_" + s, ra * 0.85, re * 0.9, look.skin, -0.002)
            mid = (uv[P["sh_" + s]] + uv[P["el_" + s]]) / 2
            caps.append((depth[P["sh_" + s]] - 0.004, uv[P["sh_" + s]], mid, ra * 1.05, re * 1.1, look.shirt))
            cap("el_" + s, "wr_" + s, re * 0.85, rw, look.skin, -0.003)
        else:
            cap("sh_" + s, "el_" + s, ra, re, look.shirt, -0.002)
            cap("el_" + s, "wr_" + s, re, rw, look.shirt, -0.003)
        cap("wr_" + s, "hand_" + s, rw * 1.05, rad[P["hand_" + s]], look.skin, -0.004)
    cap("chest", "neck_top", rad[P["neck_top"]], rad[P["neck_top"]], look.skin, 0.006)
    hips = [P["pelvis"], P["hip_r"], P["hip_l"]]
    others.append((depth[P["pelvis"]] + 0.012, "hull", (uv[hips], rad[hips] * np.array([1, 0.95, 0.95]),
                                                         look.trousers)))
    tor = [P["sh_r"], P["sh_l"], P["chest"], P["waist"], P["pelvis"]]
    others.append((depth[P["chest"]] + 0.01, "hull", (uv[tor], rad[tor] * np.array([1, 1, 1, 1, 0.85]),
                                                       look.shirt)))
    others.append((depth[P["head"]], "head", None))

    p1, p2 = np.array([c[1] for c in caps]), np.array([c[2] for c in caps])
    r1, r2 = np.array([c[3] for c in caps]), np.array([c[4] for c in caps])
    size = np.maximum(r1, r2)
    outer = _capsules(p1, p2, r1, r2)
    shift = light[None] * (0.16 * size)[:, None]
    inner = _capsules(p1 + shift, p2 + shift, r1 * 0.8, r2 * 0.8)
    # limbs on the far side are in the body's own shadow
    far = np.array([c[0] for c in caps]) > depth[P["chest"]] + 0.4 * abs(depth[P["sh_r"]] - depth[P["sh_l"]]) + 1e-6
    order = sorted([(c[0], "cap", k) for k, c in enumerate(caps)] + others, key=lambda it: -it[0])
    for _, kind, args in order:
        if kind == "cap":
            color = np.asarray(caps[args][5], float) * (0.72 if far[args] else 1.0)
            cv2.fillConvexPoly(img, outer[args], tuple(color * 0.55), cv2.LINE_AA, 4)
            if size[args] > 1.6:
                cv2.fillConvexPoly(img, inner[args], tuple(color), cv2.LINE_AA, 4)
        elif kind == "hull":
            _shaded_hull(img, *args, light)
        else:
            _draw_head(img, uv, rad, look, light)


def _disc(img, c, r, color):
    cv2.circle(img, (int(round(c[0] * 16)), int(round(c[1] * 16))), max(1, int(round(r * 16))), color, -1,
               cv2.LINE_AA, 4)


def _draw_head(img, uv, rad, look, light):
    """Hair (cap, optional long hair behind) and a face shifted forward-down out of the cap."""
    h, rh, hair = uv[P["head"]], rad[P["head"]], uv[P["hair"]]
    if look.hair_style == "long":
        _fill(img, _capsule(hair, uv[P["tail"]], rh * 0.95, rad[P["tail"]]), look.hair)
    dark = tuple(int(c * 0.6) for c in look.skin)
    if look.hair_style != "bald":
        _disc(img, hair, rad[P["hair"]], look.hair)
    else:
        _disc(img, h, rh, dark)
    face = h + (h - hair) * 0.6
    _disc(img, face, rh * 0.86, dark)
    _disc(img, face + light * rh * 0.12, rh * 0.7, look.skin)
