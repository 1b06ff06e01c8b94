"""Motion of the synthetic figure: walking, running and falling gaits as joint angles over time, and kinematics."""

from __future__ import annotations

import math

import numpy as np

from .body import ANGLES, ARMS, CORE, FEET, TAU, TRUNK, A, D, Shape, _rotate, skeleton


def _smooth(x, a, b):
    u = min(max((x - a) / (b - a), 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _ik(hip, ankle, l1, l2):
    """Two-segment leg IK in the sagittal plane, knee bending forward: (thigh angle, knee flexion)."""
    dx, dy = ankle[0] - hip[0], ankle[1] - hip[1]
    d = min(math.hypot(dx, dy), (l1 + l2) * 0.99999)
    a = math.acos(min(1.0, max(-1.0, (l1 * l1 + d * d - l2 * l2) / (2 * l1 * d))))
    b = math.acos(min(1.0, max(-1.0, (l1 * l1 + l2 * l2 - d * d) / (2 * l1 * l2))))
    return math.atan2(dx, -dy) + a, math.pi - b


def _rot(v, a):
    c, s = math.cos(a), math.sin(a)
    return v[0] * c - v[1] * s, v[0] * s + v[1] * c


class Motion:
    """One person's movement for a whole clip: joint angles, travel and floor contact over time.

    Walking and running are driven by foot placement: each foot is planted on the floor for its
    stance (rolling heel -> flat -> toe), swings along an arc to the next footfall, and the legs follow
    by inverse kinematics. Feet therefore never slide, walking always has a foot down (double support)
    and running has real flight phases.
    """

    def __init__(self, action: str, rng: np.random.Generator, shape: Shape, duration: float):
        self.action, self.shape, self.duration = action, shape, duration
        self.radii = shape.radii()
        u = rng.uniform
        self.phase0 = u(0, 1)
        self.sway = (u(0, TAU), u(0.2, 0.5))
        if action == "running":
            speed = u(1.7, 2.6)  # 2-3x walking
            kick = (0.09 + 0.08 * (speed - 1.7) / 0.9) * u(0.85, 1.15)  # faster runners kick higher
            self.g = dict(cadence=u(2.6, 3.2), stance=u(0.27, 0.35), strike=u(0, 10) * D, toeoff=u(45, 65) * D,
                          roll=(0.05, 0.6), clear=kick, arc=1.5, place=u(-0.05, -0.02),
                          height=u(0.96, 0.99), comp=u(0.025, 0.04), flight_h=u(0.012, 0.025),
                          lean=u(8, 15) * D, sh0=u(-5, 10) * D, sh_amp=u(30, 45) * D, el0=u(70, 90) * D,
                          el1=u(5, 25) * D, arm_abd=u(4, 14) * D)
        else:  # walking, and the pre-fall part of falling
            speed = u(0.7, 0.9) * (u(0.75, 1.0) if action == "falling" else 1.0)
            # quicker walkers mostly take quicker (not only longer) steps
            cad = float(np.clip(1.65 + 1.5 * (speed - 0.7) + u(-0.08, 0.08), 1.6, 2.0))
            self.g = dict(cadence=cad, stance=u(0.6, 0.64), strike=u(10, 20) * D, toeoff=u(35, 50) * D,
                          roll=(0.15, 0.55), clear=u(0.0, 0.02), arc=2.5, place=u(-0.06, -0.03),
                          height=0.0, comp=0.0, flight_h=0.0,
                          lean=u(1, 5) * D, sh0=u(-6, 2) * D, sh_amp=u(8, 20) * D, el0=u(8, 20) * D,
                          el1=u(5, 25) * D, arm_abd=u(3, 8) * D)
        self.speed = speed
        self.stride = 2.0 * speed / self.g["cadence"]
        self.hip_h = shape.ankle_h + shape.shin + shape.thigh
        if action != "running":  # pelvis: lowest at double support (legs' reach), rising a little after
            self.g["height"] = 1.0
            low = self.gait(-self.phase0 * 2 / self.g["cadence"])[2]
            self.g["height"] = (low + u(0.012, 0.025)) / self.hip_h
        if action == "falling":
            self._plan_fall(rng)

    # -- gait ------------------------------------------------------------------------------------
    def _phase(self, t):
        return self.phase0 + t * self.g["cadence"] / 2.0

    def _planted(self, ax, s):
        """Ankle (x, y) and foot pitch at stance fraction s for a footfall whose flat ankle is at ax."""
        sh, g = self.shape, self.g
        lift = sh.ankle_h - sh.foot_r
        if s < g["roll"][0]:  # heel strike: toes come down, rolling about the heel
            pitch = g["strike"] * (1 - _smooth(s, 0, g["roll"][0]))
            c, v = (ax - 0.22 * sh.foot, sh.foot_r), (-0.22 * sh.foot, -lift)
        elif s <= g["roll"][1]:
            return ax, sh.ankle_h, 0.0
        else:  # push-off: heel rises, rolling about the toes
            pitch = -g["toeoff"] * _smooth(s, g["roll"][1], 1.0)
            c, v = (ax + 0.78 * sh.foot, sh.foot_r), (0.78 * sh.foot, -lift)
        rx, ry = _rot(v, pitch)
        return c[0] - rx, c[1] - ry, pitch

    def _foot(self, p, leg_offset):
        """Ankle (x, y), foot pitch and stance flag of one leg at (its own) gait phase p."""
        g, S = self.g, self.stride
        k = math.floor(p)
        w = p - k
        st = g["stance"]
        ax = S * (k + st / 2 + g["place"] - leg_offset - self.phase0)  # footfall k, flat-ankle position
        if w < st:
            return (*self._planted(ax, w / st), True)
        x0, y0, f0 = self._planted(ax, 1.0)
        x1, y1, f1 = self._planted(ax + S, 0.0)
        uu = (w - st) / (1 - st)
        n = g["arc"]
        v = uu ** 1.3 if n < 2 else uu  # a runner's foot lingers behind (heel kick) before coming through
        e = v * v * (3 - 2 * v)  # the swing foot accelerates, then brakes before the strike
        arc = uu * (1 - uu) ** n / ((1 / (n + 1)) * (n / (n + 1)) ** n)  # 1 at its (early) peak
        y = y0 + (y1 - y0) * uu + g["clear"] * arc
        pitch = f0 + (f1 - f0) * _smooth(uu, 0, 0.7)
        # never scuff: lift the ankle until heel and toe clear the floor
        sh = self.shape
        lift = sh.ankle_h - sh.foot_r
        low = min(_rot((0.78 * sh.foot, -lift), pitch)[1], _rot((-0.22 * sh.foot, -lift), pitch)[1])
        return x0 + (x1 - x0) * e, max(y, sh.foot_r - low + 0.01 * math.sin(math.pi * uu)), pitch, False

    def gait(self, t: float):
        """(joint angles, pelvis x, pelvis y) of walking/running at time t."""
        g, sh = self.g, self.shape
        p = self._phase(t)
        px = self.stride * (p - self.phase0)
        q = p % 0.5  # phase within the current step
        st = g["stance"]
        if q < st:  # running: the stance leg compresses; walking: comp = 0
            py = self.hip_h * (g["height"] - g["comp"] * math.sin(math.pi * min(q / st, 1.0)))
        else:  # flight: a ballistic arc
            uu = (q - st) / (0.5 - st)
            py = self.hip_h * g["height"] + 4 * g["flight_h"] * uu * (1 - uu)
        feet = [self._foot(p, 0.0), self._foot(p + 0.5, 0.5)]
        reach = (sh.thigh + sh.shin) * 0.9995
        for fx, fy, _, planted in feet:  # the pelvis drops where a planted foot could not be reached
            if planted:
                py = min(py, fy + math.sqrt(max(reach ** 2 - (fx - px) ** 2, 0.0)))
        a = np.zeros(len(ANGLES))
        a[A["lean"]] = g["lean"] + 0.01 * math.sin(TAU * 2 * p)
        a[A["neck"]] = -0.6 * g["lean"]  # keep the gaze roughly level
        for side, (fx, fy, pitch, _), pp in (("r", feet[0], p), ("l", feet[1], p + 0.5)):
            th, kf = _ik((px, py), (fx, fy), sh.thigh, sh.shin)
            a[A["hip_" + side]], a[A["knee_" + side]] = th, kf
            a[A["ankle_" + side]] = pitch - (th - kf)
            c = math.cos(TAU * pp)  # each arm swings against the leg of its side
            a[A["sh_" + side]] = g["sh0"] - g["sh_amp"] * c
            a[A["el_" + side]] = g["el0"] + g["el1"] * (1 - c) / 2
            a[A["sabd_" + side]] = g["arm_abd"]
        return a, px, py

    # -- falling ---------------------------------------------------------------------------------
    def _plan_fall(self, rng):
        u = rng.uniform
        self.walk_pre = rng.random() < 0.6
        self.t0 = u(0.3, 1.2)
        self.tf = u(0.5, 1.5)
        self.k = u(2.0, 4.0)
        kind = rng.choice(["forward", "backward", "sideways"], p=[0.4, 0.3, 0.3])
        self.kind = str(kind)
        side = rng.choice([-1.0, 1.0])
        end = u(86, 94) * D
        self.end_pitch = end if kind == "forward" else -end if kind == "backward" else 0.0
        self.end_roll = side * end if kind == "sideways" else 0.0

        def pose(**kw):
            a = np.zeros(len(ANGLES))
            for k, v in kw.items():
                if k[-2:] in ("_r", "_l") or k in A:
                    a[A[k]] = v * D
                else:  # same value for both sides, with a little asymmetry
                    a[A[k + "_r"]] = (v + u(-10, 10)) * D
                    a[A[k + "_l"]] = (v + u(-10, 10)) * D
            return a

        if kind == "forward":
            self.react = pose(lean=u(10, 35), neck=u(-25, 0), hip=u(5, 40), knee=u(20, 60), ankle=u(-10, 10),
                              sh=u(60, 120), el=u(10, 40), sabd=u(10, 30), habd=u(0, 8))
            arms = rng.integers(3)
            sh, el, sab = [(u(140, 175), u(10, 60), u(5, 25)), (u(-10, 25), u(0, 30), u(10, 40)),
                           (u(70, 100), u(90, 120), u(55, 80))][arms]
            self.lie = pose(lean=u(-5, 8), neck=u(-20, 10), hip=u(-5, 15), knee=u(0, 40), ankle=u(-50, -20),
                            sh=sh, el=el, sabd=sab, habd=u(2, 12))
        elif kind == "backward":
            self.react = pose(lean=u(15, 45), neck=u(0, 25), hip=u(30, 80), knee=u(40, 100), ankle=u(0, 15),
                              sh=u(-50, 60), el=u(10, 40), sabd=u(20, 60), habd=u(0, 10))
            self.lie = pose(lean=u(-5, 10), neck=u(-10, 15), hip=u(0, 40), knee=u(0, 80), ankle=u(-20, 10),
                            sh=u(-25, 10), el=u(0, 40), sabd=u(10, 80), habd=u(3, 15))
        else:
            near, far = ("_r", "_l") if side > 0 else ("_l", "_r")
            self.react = pose(lean=u(0, 20), neck=u(-10, 10), hip=u(0, 30), knee=u(20, 70), ankle=u(-10, 10),
                              el=u(10, 40), habd=u(0, 8), **{"sabd" + near: u(40, 90), "sh" + near: u(0, 40),
                                                             "sabd" + far: u(10, 40), "sh" + far: u(20, 80)})
            self.lie = pose(lean=u(0, 15), neck=u(-10, 10), hip=u(10, 60), knee=u(10, 70), ankle=u(-20, 10),
                            el=u(10, 70), habd=u(0, 10), **{"sh" + near: u(60, 120), "sabd" + near: u(10, 40),
                                                            "sh" + far: u(0, 60), "sabd" + far: u(5, 30)})
        self.stand = pose(lean=u(0, 4), neck=0, hip=u(-2, 3), knee=u(2, 8), ankle=0, sh=u(0, 8), el=u(8, 20),
                          sabd=u(3, 8), habd=u(1, 4))
        a0 = self.gait(self.t0)[0] if self.walk_pre else self.stand
        pts = skeleton(self.shape, a0)
        feet = pts[FEET]
        self.pivot = np.array([feet[:, 0].mean(), feet[:, 1].min() - self.shape.foot_r, feet[:, 2].mean()])
        if kind == "forward":
            self.pivot[0] = feet[:, 0].max()
        elif kind == "backward":
            self.pivot[0] = feet[:, 0].min()
        else:
            self.pivot[2] = side * (np.abs(feet[:, 2]).max() + self.shape.foot_r)

    def fall_angles(self, t):
        """(angles, pitch, roll) while standing/walking, toppling, then lying."""
        tau = (t - self.t0) / self.tf
        if self.walk_pre:
            base = self.gait(min(t, self.t0))[0]
        else:
            base = self.stand.copy()
            base[A["lean"]] += 0.03 * math.sin(TAU * self.sway[1] * t + self.sway[0])
        if tau <= 0:
            return base, 0.0, 0.0
        a = base + (self.react - base) * _smooth(tau, 0.0, 0.5)
        a = a + (self.lie - a) * _smooth(tau, 0.55, 1.35)  # keeps settling a little after impact
        # toppling accelerates like an inverted pendulum released near upright
        f = (math.cosh(self.k * min(tau, 1.0)) - 1) / (math.cosh(self.k) - 1)
        if tau > 1:  # lying: slow breathing only
            a[A["lean"]] += 0.012 * math.sin(TAU * 0.28 * (t - self.t0 - self.tf))
        return a, self.end_pitch * f, self.end_roll * f

    # -- public ----------------------------------------------------------------------------------
    def travel(self, t: float) -> float:
        """Distance the pelvis has moved along +x by time t."""
        if self.action != "falling":
            return self.stride * (self._phase(t) - self.phase0)
        if not self.walk_pre:
            return 0.0
        x = self.stride * (self._phase(min(t, self.t0)) - self.phase0)
        if t > self.t0:  # momentum carries the body a little further while it topples
            x += self.speed * 0.15 * (1 - math.exp(-(t - self.t0) / 0.15))
        return x

    def points(self, t: float) -> np.ndarray:
        """Body points at time t in the ground frame (floor y=0, x = travel direction)."""
        r = self.radii
        if self.action == "falling":
            a, pitch, roll = self.fall_angles(t)
            pts = skeleton(self.shape, a)
            if pitch or roll:
                pts = _rotate(pts, self.pivot, pitch, roll)
            # whatever is lowest rests on the floor; once down, the trunk does, and limbs lie flat
            lift = -np.min(pts[CORE, 1] - r[CORE])
            w = _smooth((t - self.t0) / self.tf, 0.6, 1.0)
            if w > 0:
                lift += w * (-np.min(pts[TRUNK, 1] - r[TRUNK]) - lift)
            pts[:, 1] += lift
            pts[:, 1] = np.maximum(pts[:, 1], r)
            pts[:, 0] += self.travel(t)
        else:
            a, px, py = self.gait(t)
            pts = skeleton(self.shape, a)
            pts[:, 0] += px
            pts[:, 1] += py
        pts[ARMS, 1] = np.maximum(pts[ARMS, 1], r[ARMS])  # arms rest on the floor, never through it
        return pts
