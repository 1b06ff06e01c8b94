"""Articulated human figure for the synthetic dataset: proportions, motion, kinematics, drawing.

Everything here is in units of the person's standing height (1.0 = head top above the floor) in a
"ground frame": x = direction of travel, y = up (floor at y=0), z = the body's lateral axis.
`synth/render.py` and `synth/camera.py` place that frame in the world and project it through a camera.

Joint angles are segment angles measured from straight down, positive = forward, so gait curves
read like the textbook ones (hip flexion/extension, knee flexion, ankle dorsiflexion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
