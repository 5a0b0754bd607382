"""The blur-direction probe's pairs: horizontal/vertical twins with the intended streaks.

The twins must differ only in direction (same content transposed, same streak length), or a
gain difference would measure the scene rather than the model; the streak is checked against
the pinhole projection by hand (2 f tan(omega T / 2) through the centre).
"""

from __future__ import annotations

import numpy as np

from eggnet_ros.training.direction_probe import pan_pairs
from eggnet_ros.training.metrics import psnr


def test_pan_twins_are_transposed_scenes_with_straight_streaks_of_the_requested_length() -> None:
    size, blur = 64, 12.0
    pairs = pan_pairs(n=2, size=size, blur_px=blur)
    assert [len(v) for v in pairs.values()] == [2, 2]
    c = size // 2
    for h, v in zip(pairs["horizontal"], pairs["vertical"], strict=True):
        # same content: the targets are exact transposes; the blurred twins agree up to noise
        np.testing.assert_array_equal(v.sharp, h.sharp.transpose(1, 0, 2))
        assert psnr(v.blurred, h.blurred.transpose(1, 0, 2)) > 28.0
        # straight, centred streak along x (horizontal) / y (vertical): pre = -pro, |pre| = blur / 2
        pre_h, pro_h = h.mgv[0:2, c, c], h.mgv[2:4, c, c]
        pre_v, pro_v = v.mgv[0:2, c, c], v.mgv[2:4, c, c]
        # the pan turns by 2 atan(blur / 2f) in the exposure: the centre pixel moves f tan(.) each way
        half = 0.5 * blur
        np.testing.assert_allclose(np.abs(pre_h), [half, 0.0], atol=0.05)
        np.testing.assert_allclose(np.abs(pre_v), [0.0, half], atol=0.05)
        np.testing.assert_allclose(pre_h, -pro_h, atol=0.05)
        np.testing.assert_allclose(pre_v, -pro_v, atol=0.05)
    # deterministic
    again = pan_pairs(n=1, size=size, blur_px=blur)
    np.testing.assert_array_equal(again["vertical"][0].blurred, pairs["vertical"][0].blurred)
