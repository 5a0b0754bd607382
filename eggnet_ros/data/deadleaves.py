"""Procedural "dead leaves" images with texture: sharp training content that needs no download.

Dead-leaves images (occluding shapes with a power-law size distribution) reproduce the
scale-invariant edge statistics of natural images, which is why they are a standard stand-in for
photos when training restoration networks. Plain flat shapes, however, only have edges; blur must
also be seen destroying *texture*, so each shape is filled with its colour plus a gradient and one
of a few texture layers (oriented stripes up to 0.3 cycles/px, band-pass noise, checkers).

The image is built from a label map (shape index per pixel, drawn back to front with OpenCV),
then coloured with vectorised look-ups: cost is a few ms for a 320x320 image on one core and it
needs only numpy + OpenCV (runs on the bare GPU machine).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from eggnet_ros.data.seeding import fast_normal


def _texture_bank(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(4, H, W) zero-mean textures in about [-1, 1]."""
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    bank = np.empty((4, h, w), dtype=np.float32)
    for k in range(2):  # two stripe layers at different orientation and frequency
        theta = rng.uniform(0, math.pi)
        freq = rng.uniform(0.04, 0.3)  # cycles / px (below Nyquist with margin)
        phase = rng.uniform(0, 2 * math.pi)
        # sin(a x + b y + p) = sin(a x) cos(b y + p) + cos(a x) sin(b y + p): outer products only
        ax = 2 * math.pi * freq * math.cos(theta) * x
        by = 2 * math.pi * freq * math.sin(theta) * y + phase
        bank[k] = np.sin(ax) * np.cos(by) + np.cos(ax) * np.sin(by)
    noise = fast_normal(rng, (h, w))
    noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.6, 2.0))
    bank[2] = noise / (noise.std() + 1e-6)
    cell = int(rng.integers(3, 12))
    bank[3] = ((np.arange(w)[None, :] // cell + np.arange(h)[:, None] // cell) % 2) * 2 - 1
    return bank


def dead_leaves(
    rng: np.random.Generator,
    height: int,
    width: int,
    density: float = 1.0 / 200.0,
    radius_range: tuple[float, float] = (2.0, 0.4),
) -> np.ndarray:
    """A textured dead-leaves image (H, W, 3) float32 sRGB in [0, 1].

    ``density`` shapes per pixel are drawn; radii follow the scale-invariant density
    ``p(r) ~ r^-3`` between ``radius_range[0]`` px and ``radius_range[1]`` x the image's larger
    side. Shapes (disks, rotated rectangles, triangles) are stacked in random order over a
    textured background, and each gets a colour, a linear gradient and a random texture layer.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    h, w = int(height), int(width)
    n_shapes = max(int(density * h * w), 8)
    rmin, rmax = radius_range[0], max(radius_range[1] * max(h, w), radius_range[0] + 1.0)
    # inverse-CDF sampling of p(r) ~ r^-3 on [rmin, rmax]
    u = rng.uniform(size=n_shapes)
    radii = 1.0 / np.sqrt(1.0 / rmin**2 - u * (1.0 / rmin**2 - 1.0 / rmax**2))
    # a few large shapes first so that the background rarely shows through
    n_big = 6
    radii[:n_big] = rng.uniform(0.3, 0.7, size=n_big) * max(h, w)
    centres = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h], size=(n_shapes, 2))
    kinds = rng.integers(0, 3, size=n_shapes)
    angles = rng.uniform(0, 180.0, size=n_shapes)
    aspects = rng.uniform(0.3, 1.0, size=n_shapes)
    tri_jitter = rng.uniform(-0.4, 0.4, size=(n_shapes, 3))
    # polygon vertices for all shapes at once (the drawing loop only calls OpenCV)
    theta = np.deg2rad(angles)[:, None]
    box_local = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    bx = box_local[None, :, 0] * radii[:, None]
    by = box_local[None, :, 1] * (radii * aspects)[:, None]
    cos, sin = np.cos(theta), np.sin(theta)
    boxes = np.stack([centres[:, :1] + bx * cos - by * sin, centres[:, 1:] + bx * sin + by * cos], -1)
    tri_angles = theta + np.array([0.0, 2.1, 4.2])[None, :] + tri_jitter
    tris = np.stack(
        [
            centres[:, :1] + radii[:, None] * np.cos(tri_angles),
            centres[:, 1:] + radii[:, None] * np.sin(tri_angles),
        ],
        -1,
    )
    boxes = np.round(boxes).astype(np.int32)
    tris = np.round(tris).astype(np.int32)
    disk_centres = centres.astype(np.int32)
    disk_radii = np.maximum(radii.astype(np.int32), 1)
    labels = np.zeros((h, w), dtype=np.uint16)  # label 0 = background
    for i in range(n_shapes):
        label = i + 1
        if kinds[i] == 0:
            cv2.circle(
                labels, (int(disk_centres[i, 0]), int(disk_centres[i, 1])), int(disk_radii[i]), label, -1
            )
        elif kinds[i] == 1:
            cv2.fillConvexPoly(labels, boxes[i], label)
        else:
            cv2.fillConvexPoly(labels, tris[i], label)

    # per-label parameters: colour, linear gradient (gx, gy, offset), texture layer and amplitude
    n = n_shapes + 1
    colours = rng.uniform(0.0, 1.0, size=(n, 3))
    grey = rng.uniform(size=n) < 0.3  # near-grey shapes keep colour statistics natural
    colours[grey] = colours[grey].mean(axis=1, keepdims=True)
    sizes = np.maximum(np.r_[max(h, w), radii], 8.0)
    grad = rng.uniform(-1, 1, size=(n, 2)) * 0.4 / sizes[:, None]
    centre_all = np.concatenate([[[w / 2, h / 2]], centres])
    offset = 1.0 - np.sum(grad * centre_all, axis=1)
    kind = rng.integers(0, 4, size=n)
    amp = rng.uniform(0, 0.25, size=n) * (rng.uniform(size=n) < 0.7)

    bank = _texture_bank(rng, h, w)
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    f32 = np.float32
    texture = np.take_along_axis(bank, kind.astype(np.intp)[labels][None], axis=0)[0]
    gain = grad[:, 0].astype(f32)[labels] * x
    gain += grad[:, 1].astype(f32)[labels] * y
    gain += offset.astype(f32)[labels]
    gain += amp.astype(f32)[labels] * texture
    image = colours.astype(f32)[labels]
    image *= gain[..., None]
    return np.clip(image, 0.0, 1.0, out=image)
