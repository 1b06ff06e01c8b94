import numpy as np
import pytest

from action_rec.video.overlay import draw_overlay

NAMES = ["falling", "running", "walking"]


def test_draws_in_place_and_returns_same_frame():
    f = np.zeros((240, 320, 3), np.uint8)
    out = draw_overlay(f, NAMES, [0.1, 0.7, 0.2], "running", 0.7, time_s=12.5, fps=8.0, latency_ms=40)
    assert out is f and f.shape == (240, 320, 3) and f.dtype == np.uint8
    assert f.any()


def test_bars_grow_with_probability():
    # The bar area (right of the names) holds more green/amber pixels for a larger probability.
    def bar_pixels(p):
        f = np.zeros((240, 320, 3), np.uint8)
        draw_overlay(f, NAMES, p, None, None)
        return int((f[:, 60:160, 1] > 150).sum())
    assert bar_pixels([0.9, 0.05, 0.05]) > bar_pixels([0.1, 0.05, 0.05])


def test_alert_draws_red_banner_and_nothing_without_inputs():
    f = np.zeros((120, 160, 3), np.uint8)
    draw_overlay(f, NAMES, None, None, None)
    assert not f.any()                                  # nothing asked, nothing drawn
    draw_overlay(f, NAMES, None, "falling", 0.9, alert=True)
    red = (f[..., 2] > 200) & (f[..., 0] < 50) & (f[..., 1] < 50)
    assert red[60].mean() > 0.3                         # a banner across the middle row


def test_tiny_frame_and_bad_inputs():
    draw_overlay(np.zeros((48, 64, 3), np.uint8), NAMES, [0.3, 0.3, 0.4], "walking", 0.4, alert=True)
    with pytest.raises(ValueError):
        draw_overlay(np.zeros((48, 64, 3), np.uint8), NAMES, [0.5, 0.5], "x", 0.5)
    with pytest.raises(ValueError):
        draw_overlay(np.zeros((48, 64), np.uint8), NAMES, None, None, None)
