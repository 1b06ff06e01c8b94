"""Props of the `other` class: a seat, a backrest, an object picked up from the floor.

A prop is a cuboid whose 8 corners are appended to the body points (OtherMotion.points), so the camera
planner frames it and the renderer projects it exactly like the body; draw_props paints it before the
person, who sits on it or holds it.
"""

from __future__ import annotations

import cv2
import numpy as np

from .body import POINTS, P
from .motion import _smooth

NB = len(POINTS)
# (x, y, z) of a cuboid's 8 corners by bit: 1 = x1, 2 = z1, 4 = y1 (top); faces with their shading
FACES = (((4, 5, 7, 6), 1.0), ((0, 2, 6, 4), 0.78), ((1, 3, 7, 5), 0.78), ((0, 1, 5, 4), 0.62),
         ((2, 3, 7, 6), 0.62))


def cuboid(x0, x1, y0, y1, z0, z1):
    return np.array([((x0, x1)[i & 1], (y0, y1)[i >> 2 & 1], (z0, z1)[i >> 1 & 1]) for i in range(8)])


class Prop:
    """A cuboid standing still in the ground frame (seat, backrest)."""

    def __init__(self, corners):
        self._c = np.asarray(corners, float)

    def setup(self, motion):
        pass

    def corners(self, body, t):
        return self._c


class Held(Prop):
    """A small box on the floor under the reaching hand; from the grasp on it is carried in that hand."""

    def __init__(self, size, t_grab, side):
        super().__init__(np.zeros((8, 3)))
        self.size, self.t_grab, self.hand = size, t_grab, P["hand_" + side]

    def setup(self, motion):
        self.at = motion._posed(self.t_grab)[self.hand].copy()
        s = self.size / 2
        self._c = cuboid(self.at[0] - s, self.at[0] + s, 0.0, self.size, self.at[2] - s, self.at[2] + s)

    def corners(self, body, t):
        if t <= self.t_grab:
            return self._c
        # the hand may stop short of the floor: the object closes that gap as it is lifted
        grip = np.array([0.0, -self.size / 2 - 0.02, 0.0]) - (self._c.mean(0) - self.at)
        return self._c + (body[self.hand] - self.at) + grip * _smooth(t, self.t_grab, self.t_grab + 0.5)


def draw_props(img, uv, depth, colors):
    """Draw each prop's cuboid (corners after the body's points in uv/depth), far faces first."""
    for k, color in enumerate(colors):
        c = uv[NB + 8 * k:NB + 8 * k + 8]
        z = depth[NB + 8 * k:NB + 8 * k + 8]
        if (z <= 0.05).any():
            continue
        for face, shade in sorted(FACES, key=lambda f: -z[list(f[0])].mean()):
            poly = np.round(c[list(face)] * 16).astype(np.int32)
            col = tuple(float(v) * shade for v in color)
            cv2.fillConvexPoly(img, poly, col, cv2.LINE_AA, 4)
            cv2.polylines(img, [poly], True, tuple(v * 0.7 for v in col), 1, cv2.LINE_AA, 4)
