"""Blur-direction probe: does a gyro model use the horizontal *and* the vertical MGV components?

Why it exists: the 8,000-iteration EggNet lite shipped until session 6 (near-plain
``offset_init="small"``) turned out to use only the vertical MGV components: on this probe it
gains 1.84 dB on vertical streaks (MGVs worth 1.66 dB) but 0.57 dB on the very same images
transposed (MGVs worth 0.04 dB), and therefore did not sharpen the SHIELD recording, whose blur
is a horizontal yaw streak. The test set's hand shake mixes directions, so its PSNR hides such
a bias. This probe shows it directly.

The pairs: constant-rate pans (a straight, uniform streak of ``blur_px`` at the centre), global
shutter, stamped at the exposure centre, the perfect gyro, and the evaluation's sensor noise.
Each horizontal (yaw) pair has a vertical (pitch) twin rendered from the *transposed* source
image with the same camera (square, centred principal point) and seed, so both directions see
the same content and noise level; a direction-neutral model scores them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Directions of the probe and the camera-frame rotation axis that makes each (REP 103 optical
#: frame: yaw about y streaks along x, pitch about x along y).
DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "horizontal": (0.0, 1.0, 0.0),
    "vertical": (1.0, 0.0, 0.0),
}
#: Streak length of the probe's pans (px), within the training range (median 5-25 px).
PROBE_BLUR_PX = 16.0
#: Probe columns per model: gain over the input and MGVs worth (true - zero MGVs), per direction.
COLUMNS: tuple[str, ...] = (
    "horizontal gain",
    "vertical gain",
    "horizontal MGVs worth",
    "vertical MGVs worth",
)


def pan_pairs(
    n: int = 6,
    size: int = 256,
    blur_px: float = PROBE_BLUR_PX,
    exposure: float = 0.02,
    fov_deg: float = 60.0,
    seed: int = 20261126,
) -> dict[str, list[Any]]:
    """``{"horizontal": [n pairs], "vertical": [n twins]}``, deterministic for a seed.

    Sharp content comes from the test split of the built-in sources (never trained on).
    """
    from eggnet_ros.data.sources import image_sources
    from eggnet_ros.data.synth import render_pair, scene_from_motion
    from eggnet_ros.data.testset import condition_config
    from eggnet_ros.motion import CameraModel, ImuSamples
    from eggnet_ros.motion.exposure import ExposureTiming

    f = 0.5 * size / np.tan(np.radians(fov_deg) / 2)
    c = (size - 1) / 2
    camera = CameraModel(size, size, np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]]))
    timing = ExposureTiming(exposure_time=exposure)  # "middle": the stamp is the exposure centre
    cfg = condition_config()
    source = image_sources("builtin", "test")
    rate = 2.0 * np.arctan(0.5 * blur_px / f) / exposure  # streak of blur_px through the centre
    t = np.arange(-0.1, 0.1 + 1e-9, 0.001)
    scenes = {
        name: scene_from_motion(
            camera, timing, 0.0, ImuSamples(t, np.tile(np.multiply(axis, rate), (t.size, 1)))
        )
        for name, axis in DIRECTIONS.items()
    }
    margin = max(s.margin for s in scenes.values())
    out: dict[str, list[Any]] = {name: [] for name in DIRECTIONS}
    for i in range(n):
        sharp = source.sample(np.random.default_rng([seed, i]), size + 2 * margin, size + 2 * margin)
        for name, scene in scenes.items():
            image = sharp if name == "horizontal" else np.ascontiguousarray(sharp.transpose(1, 0, 2))
            rng = np.random.default_rng([seed, i, 1])  # same noise draws for both twins
            out[name].append(render_pair(scene, image, rng, cfg, (margin, margin)))
    return out


def direction_probe(pairs: dict[str, Sequence[Any]], models: Sequence[Any], device) -> dict[str, list[float]]:
    """Per model (a ``LoadedModel``): mean PSNR gain per direction and what its MGVs are worth."""
    from eggnet_ros.training.evaluate import model_restorer, score, without_mgv

    blurred = {name: score(ps, None)[0] for name, ps in pairs.items()}
    zero = {name: without_mgv(ps) for name, ps in pairs.items()}
    results: dict[str, list[float]] = {}
    for m in models:
        restore = model_restorer(m.net, device)
        true = {name: score(ps, restore)[0] for name, ps in pairs.items()}
        without = {name: score(ps, restore)[0] for name, ps in zero.items()}
        results[m.label] = [
            true["horizontal"] - blurred["horizontal"],
            true["vertical"] - blurred["vertical"],
            true["horizontal"] - without["horizontal"],
            true["vertical"] - without["vertical"],
        ]
    return results


def format_direction(results: dict[str, list[float]], n: int, blur_px: float = PROBE_BLUR_PX) -> str:
    lines = [
        f"### Blur direction: {n} constant-rate pans per direction, {blur_px:g} px streak (dB)",
        "",
        "| Method | " + " | ".join(COLUMNS) + " | direction bias (v - h gain) |",
        "| --- | " + " | ".join("---:" for _ in COLUMNS) + " | ---: |",
    ]
    for label, v in results.items():
        lines.append(f"| {label} | " + " | ".join(f"{x:+.2f}" for x in v) + f" | {v[1] - v[0]:+.2f} |")
    return "\n".join(lines)
