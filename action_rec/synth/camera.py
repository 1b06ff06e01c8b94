"""Camera and placement of the synthetic clips: lens, framing, path, pans and the checks that keep the person in
view.
"""

from __future__ import annotations

import math

import numpy as np

from .body import P


MARGIN = 6  # background border (px) that camera shake may reveal


TAU = 2 * math.pi


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
    # view, "leave" someone walking out of it and back in (see actions.OtherMotion.framing)
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
