"""The shipped gyro models use both MGV axes: a regression test for the defect of session 6.

The lite EggNet shipped until session 6 had learned to read only the *vertical* MGV components
(from ``offset_init="small"`` the horizontal gyro path never formed in its CPU budget), so it
did not sharpen horizontal streaks, e.g. a robot's yaw (docs/experiments.md). Its numbers on
this probe (128², 2 pans per direction): MGVs worth 0.08 dB horizontally, 1.48 dB vertically;
the model shipped since session 7: 3.36 / 3.48 dB. The probe's pans are deterministic, so
the thresholds below are far from both.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eggnet_ros.training.direction_probe import direction_probe, pan_pairs
from eggnet_ros.training.evaluate import load_models

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def pans():
    return pan_pairs(n=2, size=128)


@pytest.mark.parametrize("name", ["eggnet_lite", "eggnet_full"])
def test_shipped_gyro_model_uses_horizontal_and_vertical_mgvs_alike(pans, name: str) -> None:
    (gain_h, gain_v, worth_h, worth_v), = direction_probe(
        pans, load_models([str(MODELS / f"{name}.safetensors")], "cpu"), "cpu"
    ).values()
    assert worth_h > 1.5 and worth_v > 1.5, (name, worth_h, worth_v)
    assert abs(gain_h - gain_v) < 0.5, (name, gain_h, gain_v)
