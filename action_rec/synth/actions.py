"""The synthetic `other` class: things people do on camera that a fall alarm must stay quiet on.

Real footage fooled a model trained on walking/running/falling alone: still people, people sitting
or lying down on purpose, bending to pick something up, leaving the view, empty scenes and sprint
starts all came out as "falling", because the rendered set never showed them. Each sub-action here
drives the same body (`body`, `figure`) through the same camera, background and effects (`render`).

Poses are keyframed joint angles eased with smoothstep between keys: every phase starts and ends at
rest, the way a controlled, muscle-driven movement does, never the accelerating topple of
`Motion.fall_angles`. The body rests on whatever is lowest (feet, knees, seat, pelvis, back), and a
named contact (feet, knees, pelvis) keeps its place along x during each phase, so nothing skates.
Props (a seat, a picked-up object) are cuboids whose 8 corners follow the body points, so that the
camera planner frames them and the renderer projects them exactly like the body.
"""

from __future__ import annotations

import math

import numpy as np

from .body import ANGLES, ARMS, CORE, FEET, TAU, A, D, P, Shape, skeleton
from .motion import Motion, _ik, _smooth
from .props import NB, Held, Prop, cuboid

OTHER_ACTIONS = ("idle", "sit", "lie_down", "pick_up", "walk_out", "empty", "sprint")
TRACK = 0.42  # odds of a tracking shot where the action allows a static one: as for the other classes


def other_action(seed: int) -> str:
    """The sub-action a seed renders; synth.clip_seed makes consecutive clips take turns."""
    return OTHER_ACTIONS[int(seed) % len(OTHER_ACTIONS)]


def _pose(rng, **deg):
    """Joint angles from degrees; a name without a side sets both, with a little asymmetry.

    `arm` is the upper arm's angle in the ground frame (skeleton() takes it relative to the trunk),
    so a pose can say "hands on the floor" whatever the lean; feet are flat unless `ankle` is given.
    """
    u = rng.uniform
    a = np.zeros(len(ANGLES))
    for k, v in deg.items():
        if k in A:
            a[A[k]] = v * D
        elif k != "arm":
            for s in "rl":
                a[A[f"{k}_{s}"]] = (v + u(-6, 6)) * D
    for s in "rl":
        if "arm" in deg:
            a[A["sh_" + s]] = (deg["arm"] + u(-8, 8)) * D - a[A["lean"]]
        if "ankle" not in deg:  # sole parallel to the floor
            a[A["ankle_" + s]] = a[A["knee_" + s]] - a[A["hip_" + s]]
    return a


def _legs_to(a, shape, pelvis_y, ankle_x, ankle_max=25.0):
    """Set both legs by IK so the feet rest on the floor `ankle_x` ahead of a pelvis at `pelvis_y`."""
    r, y = shape.radii(), shape.ankle_h
    for _ in range(3):  # the heel or toe, whichever is lower, touches the floor
        th, kn = _ik((0.0, pelvis_y), (ankle_x, y), shape.thigh, shape.shin)
        for s in "rl":
            a[A["hip_" + s]], a[A["knee_" + s]] = th, kn
            a[A["ankle_" + s]] = min(max(kn - th, -30 * D), ankle_max * D)  # straight legs: heels down, toes up
        pts = skeleton(shape, a)
        y += -pelvis_y - np.min(pts[FEET, 1] - r[FEET])
    return a


def _kneeling(rng, a):
    """Knees on the floor, toes tucked under: the shins rise a little towards the ankles so that the
    toes (pointing down) touch as well; the heels lift as the knees go down, the feet never flip over."""
    for s in "rl":
        a[A["knee_" + s]] = a[A["hip_" + s]] + rng.uniform(110, 118) * D
        a[A["ankle_" + s]] = a[A["knee_" + s]] - a[A["hip_" + s]] - 75 * D
    return a


class OtherMotion:
    """One sub-action of `other`, with the interface render.py uses of `motion.Motion`.

    kind: one of OTHER_ACTIONS; variant says which way it was done (chair/floor, back/front, ...).
    framing tells the camera planner what to keep in view: "event" (every frame, whole body),
    "path" (a runner crossing a static view), "leave" (walks out of a static view and back in) or
    "track" (the camera follows). `visible` is False for the empty scene (planned, never drawn).
    """
    action = "other"
    walk_pre = False

    def __init__(self, kind: str, rng: np.random.Generator, shape: Shape, duration: float):
        if kind not in OTHER_ACTIONS:
            raise ValueError(f"unknown sub-action {kind!r}; valid: {', '.join(OTHER_ACTIONS)}")
        self.kind, self.shape, self.duration = kind, shape, float(duration)
        self.body_radii = shape.radii()
        self.visible, self.framing, self.variant = kind != "empty", "event", kind
        self.keys, self.props, self.seat, self.gait = [], [], None, None
        u = rng.uniform
        self.sway = (u(0, TAU), u(0.15, 0.4), u(0.008, 0.025))  # phase, Hz, rad: standing is never still
        self.stand = _pose(rng, lean=u(0, 4), neck=u(-3, 3), hip=u(-2, 3), knee=u(2, 8), arm=u(-2, 6),
                           el=u(8, 20), sabd=u(3, 8), habd=u(1, 4))
        getattr(self, "_plan_" + ("idle" if kind == "empty" else kind))(rng)
        if self.keys:
            self._anchor_keys()
        if self.gait is not None and self.gait[0] in ("start", "stop"):
            self._ramp()
        if self.gait is not None and self.gait[0] == "stop":  # the stand continues where the run ended
            tb, self._x_stop = self.gait[3] + 0.45, 0.0
            self._x_stop = self._gaited(tb - 1e-6)[P["pelvis"], 0] - self._posed(tb)[P["pelvis"], 0]
        if self.framing in ("event", "path") and rng.random() < TRACK:
            self.framing = "track"
        for extra in self.props:  # a held object is put where the finished keyframes bring the hand
            extra.setup(self)
        self.radii = np.concatenate([self.body_radii, np.zeros(8 * len(self.props))])

    # -- keyframes -------------------------------------------------------------------------------
    def _key(self, dt, a, anchor="feet"):
        """Reach pose `a` in `dt` seconds after the previous key; `anchor` stays put until the next."""
        t = (self.keys[-1][0] if self.keys else 0.0) + dt
        self.keys.append((t, a, anchor))
        return t

    def _hold_until_end(self, rng, a, anchor="feet", amp=(4, 10)):
        """Settled: small shifts of trunk, head and arms (looking around, adjusting) until the clip ends."""
        u = rng.uniform
        while self.keys[-1][0] < self.duration:
            b = a.copy()
            for k, r in (("lean", amp[0]), ("neck", amp[1]), ("el_r", amp[1]), ("el_l", amp[1])):
                b[A[k]] += u(-r, r) * D
            self._key(u(0.6, 1.4), b, anchor)

    def _settle(self, rng, t_done, after=(0.7, 1.4)):
        """Lengthen the clip (up to 5 s) so that the movement ends `after` seconds before it does."""
        self.duration = min(5.0, max(self.duration, t_done + rng.uniform(*after)))

    def _angles(self, t):
        ts = self._kt
        k = min(max(int(np.searchsorted(ts, t, "right")) - 1, 0), len(ts) - 1)
        a = self.keys[k][1] if k == len(ts) - 1 or t <= ts[0] else \
            self.keys[k][1] + (self.keys[k + 1][1] - self.keys[k][1]) * _smooth(t, ts[k], ts[k + 1])
        ph, fr, amp = self.sway
        a = a.copy()
        a[A["lean"]] += amp * math.sin(TAU * fr * t + ph)
        a[A["neck"]] += 0.6 * amp * math.sin(TAU * 0.63 * fr * t + 2 * ph)
        return a, k

    @staticmethod
    def _anchor_x(pts, name):
        idx = {"feet": ("ankle_r", "ankle_l"), "knees": ("knee_r", "knee_l"), "pelvis": ("pelvis",)}[name]
        return float(np.mean([pts[P[n], 0] for n in idx]))

    def _anchor_keys(self):
        """World x of each phase's anchor: where the previous phase left it (pelvis starts at x=0)."""
        self._kt = np.array([k[0] for k in self.keys])
        self._ax = []
        for k, (t, _, name) in enumerate(self.keys):
            pts = skeleton(self.shape, self._angles(t)[0])
            if k == 0:
                self._ax.append(self._anchor_x(pts, name))
            else:
                off = self._ax[-1] - self._anchor_x(pts, self.keys[k - 1][2])
                self._ax.append(off + self._anchor_x(pts, name))

    def _posed(self, t):
        """Keyframed body at time t: contact with the floor (or seat) and the phase's anchor in place."""
        a, k = self._angles(t)
        pts = skeleton(self.shape, a)
        pts[:, 0] += self._ax[k] - self._anchor_x(pts, self.keys[k][2])
        return self._rest(pts)

    def _rest(self, pts):
        r = self.body_radii
        lift = -np.min(pts[CORE, 1] - r[CORE])
        if self.seat is not None and self.seat[0] <= pts[P["pelvis"], 0] <= self.seat[1]:
            lift = max(lift, self.seat[2] + 0.85 * r[P["pelvis"]] - pts[P["pelvis"], 1])
        pts[:, 1] += lift
        pts[:, 1] = np.maximum(pts[:, 1], r)
        pts[ARMS, 1] = np.maximum(pts[ARMS, 1], r[ARMS])
        return pts

    # -- sub-actions -----------------------------------------------------------------------------
    def _plan_idle(self, rng):
        """Standing: sway, weight shifts, a hand to the face or phone, hands in front, looking around."""
        u = rng.uniform
        self.variant = "empty" if self.kind == "empty" else "idle"
        self._key(0.0, self.stand)
        while self.keys[-1][0] < self.duration:
            b = self.stand.copy()
            side = str(rng.choice(["r", "l"]))
            g = rng.integers(5)
            if g == 1:  # phone / face
                b[A["sh_" + side]], b[A["el_" + side]] = u(20, 45) * D - b[A["lean"]], u(95, 135) * D
                b[A["neck"]] += u(5, 20) * D
            elif g == 2:  # hands together in front
                for s in "rl":
                    b[A["sh_" + s]], b[A["el_" + s]] = u(5, 20) * D, u(55, 85) * D
            elif g == 3:  # weight on one leg, the other relaxed
                b[A["knee_" + side]] += u(8, 18) * D
                b[A["hip_" + side]] += u(3, 8) * D
            b[A["neck"]] += u(-10, 10) * D
            self._key(u(0.4, 0.9), b)
            self._key(u(0.4, 1.5), b)

    def _plan_sit(self, rng):
        """Sit down (1.2-2.2 s, controlled) on a chair/stool/box or on the floor, and stay seated."""
        u = rng.uniform
        sh = self.shape
        self._key(0.0, self.stand)
        self._key(u(0.2, 1.0), self.stand)
        if rng.random() < 0.55:
            self.variant = "chair"
            mid = _pose(rng, lean=u(25, 45), neck=u(-25, -10), hip=u(40, 60), knee=u(55, 80), arm=u(10, 40),
                        el=u(10, 40), sabd=u(5, 12), habd=u(2, 6))
            seated = _pose(rng, lean=u(0, 12), neck=u(-8, 8), hip=u(78, 95), knee=u(75, 100), arm=u(15, 35),
                           el=u(40, 75), sabd=u(4, 10), habd=u(4, 10))
            self._key(u(0.6, 1.0), mid)
            t = self._key(u(0.6, 1.2), seated)
            self._settle(rng, t)
            self._anchor_keys()
            pts = self._posed(t)
            px, py = pts[P["pelvis"], 0], pts[P["pelvis"], 1]
            knee = max(pts[P["knee_r"], 0], pts[P["knee_l"], 0])
            top = py - 0.85 * self.body_radii[P["pelvis"]]
            x0, x1 = px - u(0.12, 0.2), knee - u(0.04, 0.08)
            w = sh.hip_w + sh.thigh_r + u(0.02, 0.1)
            self.seat = (x0, x1, top)
            self.props.append(Prop(cuboid(x0, x1, 0.0, top, -w, w)))
            if rng.random() < 0.5:  # a chair's backrest
                self.props.append(Prop(cuboid(x0 - 0.035, x0, top, top + u(0.18, 0.3), -w, w)))
            self._hold_until_end(rng, seated)
        else:
            self.variant = "floor"
            squat = _pose(rng, lean=u(30, 50), neck=u(-30, -10), hip=u(90, 110), knee=u(115, 135), arm=u(0, 25),
                          el=u(5, 30), sabd=u(8, 20), habd=u(5, 12))
            seated = _pose(rng, lean=u(-20, 5), neck=u(-5, 10), arm=u(-50, -25), el=u(0, 20), sabd=u(10, 25),
                           habd=u(3, 10))
            _legs_to(seated, sh, self.body_radii[P["pelvis"]], u(0.22, 0.45))
            self._key(u(0.8, 1.2), squat)  # hands go to the floor first
            self._settle(rng, self._key(u(0.6, 1.0), seated))
            self._hold_until_end(rng, seated)

    def _plan_lie_down(self, rng):
        """Lie down on purpose: 2.5-4.4 s of controlled descent, knees or hands down first.

        "back": squat, sit on the floor with the hands behind, then lie back. "front": kneel (knees
        first), hands to the floor (all fours), then lower onto the front.
        """
        u = rng.uniform
        sh = self.shape
        self._key(0.0, self.stand)
        self._key(u(0.1, 0.5), self.stand)
        pr = self.body_radii[P["pelvis"]]
        if rng.random() < 0.5:
            self.variant = "back"
            squat = _pose(rng, lean=u(30, 45), neck=u(-30, -10), hip=u(95, 110), knee=u(120, 135), arm=u(-5, 20),
                          el=u(5, 25), sabd=u(8, 20), habd=u(5, 12))
            seated = _pose(rng, lean=u(-25, -10), neck=u(0, 15), arm=u(-55, -35), el=u(0, 15), sabd=u(10, 25),
                           habd=u(3, 10))
            _legs_to(seated, sh, pr, u(0.25, 0.4))
            arms_up = rng.random() < 0.5  # hands behind the head, or arms out on the floor
            lying = _pose(rng, lean=u(-92, -88), neck=u(-5, 10), arm=u(-100, -80) if arms_up else u(-20, 10),
                          el=u(100, 130) if arms_up else u(0, 20), sabd=u(5, 15) if arms_up else u(30, 60),
                          habd=u(3, 12))
            _legs_to(lying, sh, pr, u(0.3, 0.48))
            self._key(u(0.9, 1.3), squat)
            self._key(u(0.6, 0.9), seated)
            self._settle(rng, self._key(u(1.0, 1.5), lying, "pelvis"))
            self._hold_until_end(rng, lying, "pelvis", amp=(1, 6))
        else:
            self.variant = "front"
            crouch = _pose(rng, lean=u(15, 30), neck=u(-20, -5), hip=u(40, 60), knee=u(80, 100), arm=u(10, 35),
                           el=u(10, 30), sabd=u(8, 15), habd=u(3, 8))
            kneel = _kneeling(rng, _pose(rng, lean=u(0, 15), neck=u(-10, 5), hip=u(-5, 8), arm=u(15, 40),
                                         el=u(10, 30), sabd=u(8, 15), habd=u(3, 8)))
            fours = _kneeling(rng, _pose(rng, lean=u(60, 70), neck=u(-40, -20), hip=u(0, 12), arm=u(-5, 8),
                                         el=u(0, 10), sabd=u(5, 12), habd=u(3, 8)))
            ahead = rng.random() < 0.5  # arms forward beside the head, or along the body
            prone = _pose(rng, lean=u(88, 92), neck=u(-15, 5), hip=u(-92, -85), knee=u(0, 25), ankle=-75,
                          arm=u(95, 120) if ahead else u(-95, -80), el=u(0, 30), sabd=u(10, 30), habd=u(3, 12))
            self._key(u(0.7, 1.0), crouch)
            self._key(u(0.6, 0.9), kneel, "knees")
            self._key(u(0.8, 1.1), fours, "knees")
            self._settle(rng, self._key(u(1.0, 1.4), prone, "pelvis"), (0.4, 1.0))
            self._hold_until_end(rng, prone, "pelvis", amp=(1, 5))

    def _plan_pick_up(self, rng):
        """Bend (stoop or squat) to the floor, take an object, stand back up with it."""
        u = rng.uniform
        self._key(0.0, self.stand)
        self._key(u(0.2, 1.0), self.stand)
        if rng.random() < 0.5:
            self.variant = "stoop"
            down = _pose(rng, lean=u(70, 95), neck=u(-40, -15), hip=u(-12, 0), knee=u(8, 30), arm=u(-5, 20),
                         el=u(5, 20), sabd=u(5, 12), habd=u(3, 8))
        else:
            self.variant = "squat"
            down = _pose(rng, lean=u(30, 50), neck=u(-30, -10), hip=u(90, 110), knee=u(115, 135), arm=u(0, 25),
                         el=u(5, 25), sabd=u(5, 12), habd=u(5, 12))
        self._key(u(0.7, 1.2), down)
        t_grab = self._key(u(0.3, 0.7), down)
        self._settle(rng, self._key(u(0.8, 1.3), self.stand), (0.3, 0.8))
        self._hold_until_end(rng, self.stand, amp=(2, 8))
        self.props.append(Held(u(0.05, 0.11), t_grab, str(rng.choice(["r", "l"]))))

    def _plan_walk_out(self, rng):
        """Stand, walk out of a static view, turn round out of sight, walk back in (empty scene meanwhile)."""
        u = rng.uniform
        walk = Motion("walking", rng, self.shape, self.duration)
        self.framing = "leave"
        self.duration = u(4.4, 5.0)
        t_w = u(0.2, 0.7)
        t_turn = t_w + min(u(1.5, 2.0), (self.duration - t_w) / 2 - 0.15)
        self.gait = ("walk", walk, t_w, t_turn)
        self._key(0.0, self.stand)

    def _plan_sprint(self, rng):
        """"start": get set in a crouch and accelerate into a run; "stop": run, brake, stand catching breath."""
        u = rng.uniform
        run = Motion("running", rng, self.shape, self.duration)
        if rng.random() < 0.5:
            self.variant = "start"
            self.framing = "path"
            crouch = _pose(rng, lean=u(35, 55), neck=u(-35, -15), hip=u(55, 80), knee=u(75, 105), arm=u(-15, 25),
                           el=u(40, 80), sabd=u(5, 12), habd=u(2, 6))
            self._key(0.0, self.stand)
            self._key(u(0.1, 0.4), self.stand)
            self._key(u(0.5, 0.8), crouch)
            t_go = self._key(u(0.2, 0.6), crouch)
            self.gait = ("start", run, t_go, u(1.0, 1.6))
        else:
            self.variant = "stop"
            self.framing = "track"  # a static shot would be cut short and keep only the running
            t_brake = u(0.6, 1.4)
            t_end = t_brake + u(0.7, 1.1)
            rest = _pose(rng, lean=u(20, 45), neck=u(-30, -10), hip=u(10, 25), knee=u(15, 30), arm=u(5, 20),
                         el=u(10, 30), sabd=u(5, 12), habd=u(3, 8)) if rng.random() < 0.5 else self.stand
            self.gait = ("stop", run, t_brake, t_end)
            self._key(t_end + 0.45, self.stand)
            self._key(u(0.4, 0.8), rest)
            self._hold_until_end(rng, rest, amp=(3, 8))

    # -- gait-driven parts -----------------------------------------------------------------------
    def _ramp(self):
        """Gait time of a sprint on a grid: the cadence (so the speed) ramps up or down, never jumps."""
        kind, run, ta, tb = self.gait
        ts = np.arange(0.0, max(self.duration, tb + 1.0) + 0.01, 0.005)
        if kind == "start":
            v = np.where(ts < ta, 0.0, 0.3 + 0.7 * np.clip((ts - ta) / tb, 0, 1) ** 0.7)
        else:
            v = 1.0 - 0.6 * np.clip((ts - ta) / (tb - ta), 0, 1) ** 2 * (3 - 2 * np.clip((ts - ta) / (tb - ta), 0, 1))
            v[ts > tb + 0.45] = 0.0
        self._grid = (ts, np.concatenate([[0.0], np.cumsum((v[1:] + v[:-1]) / 2 * np.diff(ts))]), v)

    def _tau(self, t):
        ts, tau, v = self._grid
        return float(np.interp(t, ts, tau)), float(np.interp(t, ts, v))

    def _gaited(self, t):
        kind, m, ta, tb = self.gait
        if kind == "walk":
            if t < ta:
                return self._posed(t)
            a, px, py = m.gait(t - ta)
            b = _smooth(t, ta, ta + 0.35)  # from standing into the stride
            pts = skeleton(self.shape, self.stand + (a - self.stand) * b)
            pts[:, 0] += px
            pts[:, 1] += py
            if t > tb:  # out of view: turn round, come back the same way
                pts[:, 0] = 2 * m.travel(tb - ta) - pts[:, 0]
            return self._rest(pts) if b < 1 else pts
        tau, v = self._tau(t)
        if kind == "start":
            if t < ta:
                return self._posed(t)
            a, px, py = m.gait(tau)
            a[A["lean"]] += 25 * D * (1 - v)  # drive phase: low and leaning, rising with speed
            b = _smooth(t, ta, ta + 0.3)
            pts = skeleton(self.shape, self.keys[-1][1] + (a - self.keys[-1][1]) * b)
            x0 = self._posed(ta)[P["pelvis"], 0]
            pts[:, 0] += x0 + px
            y = self._rest(pts.copy())[P["pelvis"], 1]
            pts[:, 1] += (1 - b) * y + b * py
            return pts
        if t > tb + 0.45:
            pts = self._posed(t)
            pts[:, 0] += self._x_stop
            return pts
        a, px, py = m.gait(tau)
        b = _smooth(t, tb, tb + 0.45)  # braked: settle into a stand
        pts = skeleton(self.shape, a + (self.stand - a) * b)
        pts[:, 0] += px
        y = self._rest(pts.copy())[P["pelvis"], 1]
        pts[:, 1] += (1 - b) * py + b * y
        return pts

    # -- public ----------------------------------------------------------------------------------
    def points(self, t: float) -> np.ndarray:
        """Body points (then 8 corners per prop) at time t in the ground frame."""
        body = self._gaited(t) if self.gait is not None else self._posed(t)
        return np.concatenate([body] + [p.corners(body, t) for p in self.props]) if self.props else body

    def travel(self, t: float) -> float:
        return float(self.points(t)[P["pelvis"], 0] - self.points(0.0)[P["pelvis"], 0])
