"""The motion-guided initialisation puts the deformable taps on the blur path.

Checked against independent references: the image sampled at the hand-computed trajectory
points (numpy slicing for integer displacements, OpenCV ``remap`` for fractional ones), not
against the deformable conv itself.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import torch

from eggnet_ros.model import EggNet, EggNetConfig
from eggnet_ros.model.blocks import GTM, IGTM, PATH_TAPS

MGV_SCALE = 0.1


def _constant_mgv(pre: tuple[float, float], pro: tuple[float, float], h: int, w: int) -> torch.Tensor:
    """(1, 6, H, W) field: pre_dx, pre_dy, pro_dx, pro_dy, centroid_dx, centroid_dy."""
    values = [pre[0], pre[1], pro[0], pro[1], 0.5 * (pre[0] + pro[0]), 0.5 * (pre[1] + pro[1])]
    return torch.tensor(values, dtype=torch.float32).view(1, 6, 1, 1).expand(1, 6, h, w).clone()


def _tap_only_gtm(tap: int, init: str = "motion") -> GTM:
    """A 1-channel GTM whose deformable conv outputs exactly its tap ``tap``'s sample."""
    gtm = GTM(1, backend="pytorch", offset_init_std=0.0, offset_init=init, mgv_scale=MGV_SCALE)
    with torch.no_grad():
        gtm.deform.weight.zero_()
        gtm.deform.weight[0, 0, tap // 3, tap % 3] = 1.0
        if gtm.deform.bias is not None:
            gtm.deform.bias.zero_()
    return gtm


def _reference_sample(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img sampled at (x + dx, y + dy), bilinear, with zeros outside (OpenCV)."""
    h, w = img.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def test_path_taps_run_from_exposure_start_to_end() -> None:
    assert PATH_TAPS[0] == -1.0 and PATH_TAPS[4] == 0.0 and PATH_TAPS[8] == 1.0
    assert all(b > a for a, b in itertools.pairwise(PATH_TAPS))


@pytest.mark.parametrize(
    ("tap", "expected_shift"),
    [
        (8, (4.0, 2.0)),  # t = +1: the end of the exposure, p + pro
        (6, (2.0, 1.0)),  # t = +0.5
        (5, (1.0, 0.5)),  # t = +0.25: fractional, bilinear
        (4, (0.0, 0.0)),  # t = 0: the pixel itself
        (0, (-6.0, 0.0)),  # t = -1: the start, p + pre
        (2, (-3.0, 0.0)),  # t = -0.5
    ],
)
def test_fresh_gtm_samples_the_image_on_the_blur_path(tap: int, expected_shift: tuple[float, float]) -> None:
    rng = np.random.default_rng(tap)
    h, w = 24, 32
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0)
    mgv = _constant_mgv(pre=(-6.0, 0.0), pro=(4.0, 2.0), h=h, w=w) * MGV_SCALE
    with torch.no_grad():
        out, _ = _tap_only_gtm(tap)(torch.from_numpy(img)[None, None], mgv)
    reference = _reference_sample(img, *expected_shift)
    # Away from the border, where OpenCV's and the deform conv's zero padding agree exactly.
    np.testing.assert_allclose(out[0, 0, 8:-8, 8:-8].numpy(), reference[8:-8, 8:-8], atol=1e-5)


@pytest.mark.parametrize(
    ("tap", "path_shift"), [(8, (4.0, 2.0)), (5, (1.0, 0.5)), (4, (0.0, 0.0)), (0, (-6.0, 0.0))]
)
def test_motion_grid_gtm_samples_its_grid_tap_shifted_along_the_path(
    tap: int, path_shift: tuple[float, float]
) -> None:
    """ "motion_grid": tap k = its regular 3×3 position + the path point (OpenCV reference)."""
    rng = np.random.default_rng(tap)
    h, w = 24, 32
    img = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0)
    mgv = _constant_mgv(pre=(-6.0, 0.0), pro=(4.0, 2.0), h=h, w=w) * MGV_SCALE
    with torch.no_grad():
        out, _ = _tap_only_gtm(tap, "motion_grid")(torch.from_numpy(img)[None, None], mgv)
    gy, gx = tap // 3 - 1, tap % 3 - 1
    reference = _reference_sample(img, path_shift[0] + gx, path_shift[1] + gy)
    np.testing.assert_allclose(out[0, 0, 8:-8, 8:-8].numpy(), reference[8:-8, 8:-8], atol=1e-5)


def test_motion_grid_without_blur_is_a_plain_conv() -> None:
    """No motion: the module equals an ordinary 3×3 conv (it keeps its spatial support)."""
    torch.manual_seed(0)
    gtm = GTM(3, backend="pytorch", offset_init_std=0.0, offset_init="motion_grid", mgv_scale=MGV_SCALE)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        out, mgo = gtm(x, torch.zeros(1, 6, 20, 20))
        plain = torch.nn.functional.conv2d(x, gtm.deform.weight, gtm.deform.bias, padding=1)
    assert mgo.abs().max().item() == 0.0
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("init", ["motion", "motion_grid"])
def test_fresh_igtm_passes_on_the_path_at_half_scale(init: str) -> None:
    """Level 2 sees the same trajectory in half-resolution pixels: displacement / 2."""
    h, w = 32, 32
    gtm = GTM(4, backend="pytorch", offset_init_std=0.0, offset_init=init, mgv_scale=MGV_SCALE)
    igtm = IGTM(8, backend="pytorch", offset_init=init)
    pre, pro = (-6.0, 2.0), (4.0, -8.0)
    with torch.no_grad():
        _, mgo1 = gtm(torch.zeros(1, 4, h, w), _constant_mgv(pre, pro, h, w) * MGV_SCALE)
        _, mgo2 = igtm(torch.zeros(1, 8, h // 2, w // 2), mgo1)
    for k, t in enumerate(PATH_TAPS):
        gy, gx = k // 3 - 1, k % 3 - 1
        disp = pro if t > 0 else pre
        dx, dy = abs(t) * disp[0] / 2, abs(t) * disp[1] / 2
        centre = mgo2[0, :, 4:-4, 4:-4]
        keep = init == "motion_grid"  # the MGO holds the displacement only; the grid stays
        np.testing.assert_allclose(centre[2 * k].numpy(), dy - (0 if keep else gy), atol=0.02)
        np.testing.assert_allclose(centre[2 * k + 1].numpy(), dx - (0 if keep else gx), atol=0.02)


def test_small_init_starts_as_a_near_plain_conv() -> None:
    torch.manual_seed(0)
    gtm = GTM(4, backend="pytorch", offset_init="small")
    with torch.no_grad():
        _, mgo = gtm(torch.zeros(1, 4, 16, 16), _constant_mgv((-6.0, 0.0), (4.0, 2.0), 16, 16) * MGV_SCALE)
    assert mgo.abs().max().item() < 0.05


def test_offset_init_is_validated_and_does_not_change_the_architecture() -> None:
    with pytest.raises(ValueError, match="offset_init"):
        EggNetConfig.lite(offset_init="zeros")
    small = EggNet(EggNetConfig.lite(offset_init="small"))
    for init in ("motion", "motion_grid"):
        motion = EggNet(EggNetConfig.lite(offset_init=init))
        assert motion.num_parameters() == small.num_parameters()
        assert motion.state_dict().keys() == small.state_dict().keys()
