"""Articulated human figure for the synthetic dataset: proportions, motion, kinematics, drawing.

Everything here is in units of the person's standing height (1.0 = head top above the floor) in a
"ground frame": x = direction of travel, y = up (floor at y=0), z = the body's lateral axis.
`synth.py` places that frame in the world and projects it through a camera.

Joint angles are segment angles measured from straight down, positive = forward, so gait curves
read like the textbook ones (hip flexion/extension, knee flexion, ankle dorsiflexion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

TAU = 2.0 * math.pi
D = math.pi / 180.0  # degrees -> radians

ANGLES = ("lean", "neck", "hip_r", "knee_r", "ankle_r", "habd_r", "hip_l", "knee_l", "ankle_l", "habd_l",
          "sh_r", "el_r", "sabd_r", "sh_l", "el_l", "sabd_l")
A = {n: i for i, n in enumerate(ANGLES)}

POINTS = ("pelvis", "hip_r", "knee_r", "ankle_r", "heel_r", "toe_r", "hip_l", "knee_l", "ankle_l", "heel_l",
          "toe_l", "chest", "sh_r", "el_r", "wr_r", "hand_r", "sh_l", "el_l", "wr_l", "hand_l", "neck_top",
          "head", "waist", "hair", "tail")
P = {n: i for i, n in enumerate(POINTS)}
FEET = [P[n] for n in ("heel_r", "toe_r", "heel_l", "toe_l")]
# Points that bear weight; arms are instead flattened onto the floor (see Motion.points) so that an
# outstretched arm never props a lying body up in mid-air.
CORE = [P[n] for n in ("pelvis", "hip_r", "knee_r", "ankle_r", "heel_r", "toe_r", "hip_l", "knee_l", "ankle_l",
                       "heel_l", "toe_l", "chest", "sh_r", "sh_l", "head", "waist")]
ARMS = [P[n] for n in ("el_r", "wr_r", "hand_r", "el_l", "wr_l", "hand_l")]
TRUNK = [P[n] for n in ("pelvis", "chest", "sh_r", "sh_l", "head", "waist")]


# ----------------------------------------------------------------------------------------------- body
@dataclass
class Shape:
    """Segment lengths and thicknesses (person height = 1)."""
    ankle_h: float = 0.042
    shin: float = 0.245
    thigh: float = 0.245
    trunk: float = 0.29
    neck: float = 0.05
    head_r: float = 0.062
    foot: float = 0.15
    upper_arm: float = 0.175
    forearm: float = 0.15
    hand: float = 0.075
    shoulder_w: float = 0.095  # half widths
    hip_w: float = 0.075
    chest_r: float = 0.072
    waist_r: float = 0.062
    pelvis_r: float = 0.07
    thigh_r: float = 0.052
    knee_r: float = 0.036
    ankle_r: float = 0.025
    arm_r: float = 0.031
    wrist_r: float = 0.021
    foot_r: float = 0.022
    neck_r: float = 0.03

    @staticmethod
    def random(rng: np.random.Generator) -> "Shape":
        s = Shape()
        leg = rng.uniform(0.94, 1.06)
        s.shin *= leg
        s.thigh *= leg
        s.trunk *= rng.uniform(0.95, 1.05)
        s.head_r *= rng.uniform(0.92, 1.08)
        arms = rng.uniform(0.95, 1.05)
        s.upper_arm *= arms
        s.forearm *= arms
        # rescale lengths so the standing height stays exactly 1
        h = s.ankle_h + s.shin + s.thigh + s.trunk + s.neck + 1.85 * s.head_r
        for k in ("ankle_h", "shin", "thigh", "trunk", "neck", "head_r", "upper_arm", "forearm", "hand", "foot"):
            setattr(s, k, getattr(s, k) / h)
        build = rng.uniform(0.82, 1.3)  # slim .. heavy
        for k in ("chest_r", "waist_r", "pelvis_r", "thigh_r", "knee_r", "arm_r", "wrist_r", "neck_r"):
            setattr(s, k, getattr(s, k) * build)
        s.waist_r *= rng.uniform(0.9, 1.15)
        s.shoulder_w *= rng.uniform(0.88, 1.12)
        s.hip_w *= rng.uniform(0.92, 1.15)
        return s

    def radii(self) -> np.ndarray:
        r = dict(pelvis=self.pelvis_r, hip_r=self.thigh_r, knee_r=self.knee_r, ankle_r=self.ankle_r,
                 heel_r=self.foot_r, toe_r=self.foot_r, chest=self.chest_r, sh_r=0.042, el_r=self.arm_r * 0.9,
                 wr_r=self.wrist_r, hand_r=self.wrist_r * 1.05, neck_top=self.neck_r, head=self.head_r,
                 waist=self.waist_r, hair=self.head_r * 1.04, tail=self.head_r * 0.55)
        for k in list(r):
            if k.endswith("_r"):
                r[k[:-1] + "l"] = r[k]
        return np.array([r[n] for n in POINTS])


def _dir(theta, abd=0.0, side=1.0):
    """Unit vector of a segment `theta` from straight down (forward +), tilted `abd` sideways."""
    ca = math.cos(abd)
    return np.array([math.sin(theta) * ca, -math.cos(theta) * ca, side * math.sin(abd)])


def skeleton(s: Shape, a: np.ndarray) -> np.ndarray:
    """Forward kinematics: joint angles -> (len(POINTS), 3) points, pelvis at the origin."""
    out = np.zeros((len(POINTS), 3))
    lean = a[A["lean"]]
    up = np.array([math.sin(lean), math.cos(lean), 0.0])
    fwd = np.array([math.cos(lean), -math.sin(lean), 0.0])
    lat = np.array([0.0, 0.0, 1.0])
    out[P["chest"]] = chest = s.trunk * up
    out[P["waist"]] = 0.5 * s.trunk * up + 0.01 * fwd
    for side, sg in (("r", 1.0), ("l", -1.0)):
        hip = sg * s.hip_w * lat
        th, kn, an, ab = (a[A[f"{j}_{side}"]] for j in ("hip", "knee", "ankle", "habd"))
        knee = hip + s.thigh * _dir(th, ab, sg)
        ankle = knee + s.shin * _dir(th - kn, ab, sg)
        foot_dir = _dir(th - kn + math.pi / 2 + an, ab, sg)
        sole = _dir(th - kn + an, ab, sg) * (s.ankle_h - s.foot_r)  # ankle -> sole line
        out[P["hip_" + side]], out[P["knee_" + side]], out[P["ankle_" + side]] = hip, knee, ankle
        out[P["heel_" + side]] = ankle + sole - 0.22 * s.foot * foot_dir
        out[P["toe_" + side]] = ankle + sole + 0.78 * s.foot * foot_dir
        # arm angles are relative to the trunk so a leaning runner keeps a natural arm carriage
        sh_a, el_a, sab = lean + a[A["sh_" + side]], a[A["el_" + side]], a[A["sabd_" + side]]
        sh = chest + sg * s.shoulder_w * lat - 0.02 * up
        el = sh + s.upper_arm * _dir(sh_a, sab, sg)
        wr = el + s.forearm * _dir(sh_a + el_a, sab, sg)
        out[P["sh_" + side]], out[P["el_" + side]], out[P["wr_" + side]] = sh, el, wr
        out[P["hand_" + side]] = wr + s.hand * _dir(sh_a + el_a + 0.2, sab, sg)
    n = lean + a[A["neck"]]
    un = np.array([math.sin(n), math.cos(n), 0.0])
    fn = np.array([math.cos(n), -math.sin(n), 0.0])
    out[P["neck_top"]] = neck = chest + s.neck * un
    out[P["head"]] = head = neck + 0.85 * s.head_r * un + 0.15 * s.head_r * fn
    out[P["hair"]] = head + s.head_r * (-0.16 * fn + 0.12 * un)
    out[P["tail"]] = head + s.head_r * (-0.75 * fn - 1.9 * un)
    return out


def _rotate(pts: np.ndarray, pivot: np.ndarray, pitch: float, roll: float) -> np.ndarray:
    """Topple the body about a floor pivot: pitch tips 'up' towards +x, roll towards +z."""
    q = pts - pivot
    cp, sp, cr, sr = math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    x = q[:, 0] * cp + q[:, 1] * sp
    y = -q[:, 0] * sp + q[:, 1] * cp
    y, z = y * cr - q[:, 2] * sr, y * sr + q[:, 2] * cr
    return np.stack([x, y, z], axis=1) + pivot


# ------------------------------------------------------------------------------------------- motion
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


# ------------------------------------------------------------------------------------------ drawing
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
