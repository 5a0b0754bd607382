"""Adapters: the two public phone recordings of shared/realdata -> the capture layout.

Each adapter turns a source's own conventions into the layout's (seconds, Kalibr offset,
``omega_cam = R @ omega_imu`` with a *proper* rotation, whole-frame stamp convention). The
derivations are spelled out here and in docs/captures.md because each one has a sign that is
easy to get wrong and invisible in a single blurred frame.

SHIELD tablet (jannemus/DeepGyro)
    * Time: the source states "camera-clock time = gyro stamp + 17.552017 ms", i.e.
      ``t_cam = t_imu + 0.017552017`` -> Kalibr ``t_imu = t_cam + offset`` with
      ``offset = -0.017552017``. (DeepGyro's own code shifts both clocks to their first sample
      and adds ``td = 22 ms``: ``t_cam - 767700.989 ms = t_gyro - 767705.437 ms + 22 ms``, the
      same 17.552017 ms.) Check: with this sign frames 0001 and 0007 run past the gyro log, as
      the source says; with the opposite sign 0001 would be covered.
    * Stamp: start of row 0's exposure -> ``stamp_convention: start``; readout 0.0244944 s.
    * Axes: DeepGyro multiplies ``omega_imu @ Ri`` with Ri = swap(x, y) (det -1) and integrates
      ``dq/dt = q (x) omega / 2`` but builds its homographies as ``K R2 R1^T K^-1``, the inverse
      of the camera-motion homography: its rate vector is the *scene's* rotation, i.e. minus the
      camera's. The camera rate in REP 103 is therefore ``-swap(x, y)``, which is also the only
      proper rotation of the two signs.
Galaxy Nexus (vladiant/ImageDeblurring)
    * Stamp: end of the frame (``T_cap = row-0 start + exposure + readout``) ->
      ``stamp_convention: end``; readout 0.03283 s.
    * Time: "gyro time = camera time + offset" with offset -5.684 ms is Kalibr's convention
      already: ``time_offset = -0.005684``.
    * Exposure: EXIF says 0.06 s, the source program hard-codes 0.04999 s. We use the EXIF value
      (the camera's own record of this shot; the program's constant is shared by all its demo
      images). ``--exposure`` overrides it.
    * Axes: the source's ``Versor(a, b, c, d)`` constructor is (w, x, y, z) (Versor.h), so the
      quaternion (-0.0470602, 0.698666, 0.71093, -0.0650423) has w = -0.047; read as
      (x, y, z, w) it would map the phone's screen normal onto the camera's y axis, which no
      rear camera does. The gyro z is negated first; R(q) diag(1, 1, -1) has det -1, and as for
      the SHIELD the source rotates image points with the scene convention, so the camera rate
      is ``-R(q) diag(1, 1, -1)`` (proper, and ~ -swap(x, y) like the SHIELD).
    * Intrinsics: fx = fy = 2090 px (+-15 %), principal point at the image centre.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np

from .layout import CameraCalibration, FrameEntry, LayoutError, RigParams, write_capture

_LOG = logging.getLogger(__name__)

SHIELD_SIZE = (1920, 1080)
SHIELD_K = np.array([[1558.6899, 0.0, 939.6533], [0.0, 1558.6899, 518.4131], [0.0, 0.0, 1.0]])
SHIELD_READOUT = 0.0244944
#: camera clock = gyro clock + 17.552017 ms  ->  t_imu = t_cam - 0.017552017 (Kalibr offset).
SHIELD_TIME_OFFSET = -0.017552017
#: DeepGyro's Ri (row-vector convention omega_cam = omega_imu @ Ri), scene-motion sign.
SHIELD_RI_SOURCE = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
ANDROID_GYRO_TYPE = 4

GALAXY_SIZE = (2048, 1536)
GALAXY_FOCAL = 2090.0
GALAXY_READOUT = 0.03283
GALAXY_TIME_OFFSET = -0.005684
GALAXY_EXPOSURE_EXIF = 0.06
GALAXY_EXPOSURE_SOURCE = 0.04999
#: The four numbers as written in the source (Versor constructor order).
GALAXY_QUATERNION_SOURCE = (-0.0470602, 0.698666, 0.71093, -0.0650423)


def quaternion_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """Rotation matrix of the (normalised) Hamilton quaternion w + xi + yj + zk (active rotation)."""
    q = np.array([w, x, y, z], dtype=np.float64)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
        ]
    )


def shield_rotation() -> np.ndarray:
    """omega_cam = R @ omega_imu for the SHIELD tablet (see module docstring: -swap(x, y))."""
    # omega_imu @ Ri == Ri.T @ omega_imu; the minus converts the scene-motion sign to the camera's.
    return -SHIELD_RI_SOURCE.T


def galaxy_rotation(order: str = "wxyz") -> np.ndarray:
    """omega_cam = R @ omega_imu for the Galaxy Nexus: -R(q) diag(1, 1, -1).

    ``order`` says how to read GALAXY_QUATERNION_SOURCE: "wxyz" (the source's Versor
    constructor, used) or "xyzw" (the README's reading, kept for the axis-check diagnostic).
    """
    a, b, c, d = GALAXY_QUATERNION_SOURCE
    if order == "wxyz":
        rq = quaternion_matrix(a, b, c, d)
    elif order == "xyzw":
        rq = quaternion_matrix(d, a, b, c)
    else:
        raise ValueError(f"order must be 'wxyz' or 'xyzw', got {order!r}")
    return -(rq @ np.diag([1.0, 1.0, -1.0]))


def _flat(m: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) + 0.0 for v in np.asarray(m).ravel())  # + 0.0: no '-0.0' in YAML


def read_android_gyro(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Gyroscope rows (type 4) of an Android sensor log ``type stamp_ns v0 v1 v2`` -> (t s, omega)."""
    ts, om = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise LayoutError(f"{path}:{lineno}: expected 'type stamp_ns v0 v1 v2', got {line!r}")
        if int(parts[0]) == ANDROID_GYRO_TYPE:
            ts.append(int(parts[1]))
            om.append([float(v) for v in parts[2:]])
    if len(ts) < 2:
        raise LayoutError(f"{path}: fewer than 2 gyroscope (type 4) samples")
    return np.asarray(ts, dtype=np.int64) * 1e-9, np.asarray(om, dtype=np.float64)


def from_shield(src: str | Path, out: str | Path, copy_images: bool = True) -> Path:
    """Write the capture layout of the SHIELD recording ``src`` (shield_tablet/) into ``out``."""
    src, out = Path(src), Path(out)
    images = sorted(src.glob("*.jpg"))
    lines = [ln.split() for ln in (src / "images.txt").read_text().splitlines() if ln.strip()]
    if len(lines) != len(images):
        raise LayoutError(f"{src}: {len(images)} JPEGs but {len(lines)} lines in images.txt")
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for img, (stamp_ns, exp_ns) in zip(images, lines, strict=True):
        frames.append(FrameEntry(img.name, int(stamp_ns) * 1e-9, int(exp_ns) * 1e-9))
        if copy_images:
            shutil.copy2(img, out / img.name)
    t, omega = read_android_gyro(src / "imu.txt")
    camera = CameraCalibration(
        SHIELD_SIZE[0], SHIELD_SIZE[1], SHIELD_K, np.zeros(5), "plumb_bob", "shield_tablet"
    )
    rig = RigParams(_flat(shield_rotation()), SHIELD_TIME_OFFSET, SHIELD_READOUT, "start")
    comments = {
        "rig.yaml": (
            "SHIELD tablet (jannemus/DeepGyro). rotation = -swap(x,y): DeepGyro's Ri with the sign of\n"
            "the camera's (not the scene's) rotation. time_offset: camera clock = gyro + 17.552017 ms,\n"
            "so t_imu = t_cam - 0.017552017 (Kalibr). Stamp = start of row 0's exposure."
        ),
        "camera.yaml": "SHIELD tablet intrinsics at 1920x1080 (DeepGyro; no distortion given).",
    }
    write_capture(out, frames, t, omega, camera, rig, comments)
    _LOG.info("SHIELD capture with %d frames, %d gyro samples -> %s", len(frames), t.size, out)
    return out


def read_galaxy_gyro(path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """giro_data.txt -> (capture stamp s, t s, omega rad/s); count line checked, comments ignored."""
    lines = path.read_text().splitlines()
    try:
        count = int(lines[0].split()[0])
        capture_ns = int(lines[1].split()[0])
    except (IndexError, ValueError) as e:
        raise LayoutError(f"{path}: first two lines must be the sample count and capture stamp") from e
    rows = []
    for line in lines[2:]:
        parts = line.split()
        if len(parts) != 4:
            continue  # blank or comment lines at the end
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            continue
    data = np.asarray(rows, dtype=np.float64)
    if data.shape[0] != count:
        raise LayoutError(f"{path}: header says {count} samples, found {data.shape[0]}")
    return capture_ns * 1e-9, data[:, 0] * 1e-9, data[:, 1:4]


def from_galaxy(
    src: str | Path, out: str | Path, exposure: float = GALAXY_EXPOSURE_EXIF, copy_images: bool = True
) -> Path:
    """Write the capture layout of the Galaxy Nexus photo ``src`` (galaxy_nexus/) into ``out``."""
    src, out = Path(src), Path(out)
    if not (exposure > 0 and math.isfinite(exposure)):
        raise ValueError(f"exposure must be positive, got {exposure}")
    stamp, t, omega = read_galaxy_gyro(src / "giro_data.txt")
    image = src / "giro_data_image.jpg"
    out.mkdir(parents=True, exist_ok=True)
    if copy_images:
        shutil.copy2(image, out / image.name)
    w, h = GALAXY_SIZE
    K = np.array([[GALAXY_FOCAL, 0.0, (w - 1) / 2.0], [0.0, GALAXY_FOCAL, (h - 1) / 2.0], [0.0, 0.0, 1.0]])
    camera = CameraCalibration(w, h, K, np.zeros(5), "plumb_bob", "galaxy_nexus")
    rig = RigParams(_flat(galaxy_rotation("wxyz")), GALAXY_TIME_OFFSET, GALAXY_READOUT, "end")
    comments = {
        "rig.yaml": (
            "Galaxy Nexus (vladiant/ImageDeblurring). rotation = -R(q) diag(1,1,-1), q = (w,x,y,z) =\n"
            "(-0.0470602, 0.698666, 0.71093, -0.0650423) (the source's Versor order). time_offset:\n"
            "gyro time = camera time - 5.684 ms (Kalibr). Stamp = end of the frame."
        ),
        "camera.yaml": "Galaxy Nexus: fx = fy ~ 2090 px (uncertain, +-15 %), principal point at the centre.",
    }
    frames = [FrameEntry(image.name, stamp, float(exposure))]
    write_capture(out, frames, t, omega, camera, rig, comments)
    _LOG.info("Galaxy Nexus capture (exposure %.5f s, %d gyro samples) -> %s", exposure, t.size, out)
    return out
