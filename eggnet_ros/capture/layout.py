"""The capture layout: a plain folder that any phone/robot recording can be turned into.

Why a folder of CSV/YAML rather than a bag: recordings from phones and papers come in ad-hoc
formats (Android sensor logs, gyro blocks appended to JPEGs...). Converting each one to a small,
documented, human-readable folder first means one importer (folder -> rosbag2), one overlay and
one offset sweep serve them all, and the calibration lives in files a user can read and fix.

Layout (see docs/captures.md)::

    FOLDER/
      <frames>            images (any format OpenCV reads)
      frames.csv          file,stamp,exposure      (stamp: camera clock, s; exposure: s)
      imu.csv             t,wx,wy,wz               (IMU clock, s; rad/s in the IMU frame)
      camera.yaml         ROS camera_calibration format
      rig.yaml            rotation_cam_imu (3x3 row-major, omega_cam = R @ omega_imu),
                          time_offset (Kalibr: t_imu = t_cam + time_offset), readout_time,
                          stamp_convention (start | middle | end)

This module reads and writes those files only (numpy + yaml); turning them into motion-library
objects is :mod:`eggnet_ros.capture.sync`.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from eggnet_ros.config import IDENTITY_3X3, ExposureTiming, MotionConfig, StampConvention

_LOG = logging.getLogger(__name__)

FRAMES_CSV = "frames.csv"
IMU_CSV = "imu.csv"
CAMERA_YAML = "camera.yaml"
RIG_YAML = "rig.yaml"
STAMP_CONVENTIONS: tuple[str, ...] = ("start", "middle", "end")


class LayoutError(ValueError):
    """A capture folder is missing a file or holds values that cannot be right."""


@dataclass(frozen=True)
class FrameEntry:
    """One row of ``frames.csv``: image file (relative to the folder), stamp and exposure (s)."""

    file: str
    stamp: float
    exposure: float


@dataclass(frozen=True)
class RigParams:
    """Camera<->IMU calibration of ``rig.yaml`` (the node's motion parameters, per rig).

    ``rotation_cam_imu`` maps IMU-frame angular velocity into the camera optical frame (REP 103:
    x right, y down, z forward): ``omega_cam = R @ omega_imu``. It must be a proper rotation
    (det +1): a reflection usually means a matrix was copied from a pipeline that integrates the
    *scene's* motion (opposite sign); negate it. ``time_offset`` follows Kalibr
    (``t_imu = t_cam + time_offset``).
    """

    rotation_cam_imu: tuple[float, ...] = IDENTITY_3X3
    time_offset: float = 0.0
    readout_time: float = 0.0
    stamp_convention: StampConvention = "middle"

    def __post_init__(self) -> None:
        r = np.asarray(self.rotation_cam_imu, dtype=np.float64)
        if r.shape != (9,) or not np.all(np.isfinite(r)):
            raise LayoutError(f"rotation_cam_imu must be 9 finite numbers (3x3 row-major), got {r.tolist()}")
        m = r.reshape(3, 3)
        if not np.allclose(m @ m.T, np.eye(3), atol=1e-3):
            raise LayoutError(f"rotation_cam_imu is not orthonormal: {m.tolist()}")
        if np.linalg.det(m) < 0:
            raise LayoutError(
                "rotation_cam_imu has det -1 (a reflection, not a rotation). Pipelines that integrate "
                "the scene's motion instead of the camera's use the opposite sign: negate the matrix."
            )
        if self.stamp_convention not in STAMP_CONVENTIONS:
            raise LayoutError(
                f"stamp_convention must be one of {STAMP_CONVENTIONS}, got {self.stamp_convention!r}"
            )
        if (
            not (math.isfinite(self.time_offset) and math.isfinite(self.readout_time))
            or self.readout_time < 0
        ):
            raise LayoutError(f"bad time_offset/readout_time: {self.time_offset}, {self.readout_time}")

    @property
    def rotation_matrix(self) -> np.ndarray:
        return np.asarray(self.rotation_cam_imu, dtype=np.float64).reshape(3, 3)

    def timing(self, exposure: float, time_offset: float | None = None) -> ExposureTiming:
        """Exposure timing of one frame (frames may differ in exposure; the rig does not)."""
        return ExposureTiming(
            exposure_time=float(exposure),
            stamp_convention=self.stamp_convention,
            time_offset=self.time_offset if time_offset is None else float(time_offset),
            readout_time=self.readout_time,
        )

    def motion_config(
        self, exposure: float, n_samples: int = 13, time_offset: float | None = None
    ) -> MotionConfig:
        return MotionConfig(
            timing=self.timing(exposure, time_offset),
            rotation_cam_imu=tuple(float(v) for v in self.rotation_cam_imu),
            n_samples=n_samples,
        )

    def to_dict(self) -> dict:
        return {
            "rotation_cam_imu": [float(v) for v in self.rotation_cam_imu],
            "time_offset": float(self.time_offset),
            "readout_time": float(self.readout_time),
            "stamp_convention": self.stamp_convention,
        }


@dataclass(frozen=True)
class CameraCalibration:
    """The fields of a ROS ``camera_calibration`` YAML (what ``camera_info`` carries)."""

    width: int
    height: int
    K: np.ndarray
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distortion_model: str = "plumb_bob"
    name: str = "camera"
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    P: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = np.asarray(self.K, dtype=np.float64)
        if k.shape != (3, 3) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise LayoutError(f"camera_matrix must be 3x3 with positive focal lengths, got {k.tolist()}")
        if self.width <= 0 or self.height <= 0:
            raise LayoutError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def projection(self) -> np.ndarray:
        if self.P is not None:
            return np.asarray(self.P, dtype=np.float64).reshape(3, 4)
        return np.hstack([np.asarray(self.K, dtype=np.float64), np.zeros((3, 1))])

    def scaled(self, scale: float) -> CameraCalibration:
        """The calibration of the image resized by ``scale`` (pixel centres kept aligned)."""
        w, h = round(self.width * scale), round(self.height * scale)
        sx, sy = w / self.width, h / self.height

        def _scale(m: np.ndarray) -> np.ndarray:
            m = np.array(m, dtype=np.float64)
            m[0] *= sx
            m[1] *= sy
            # Pixel centres: u' + 0.5 = s (u + 0.5).
            m[0, 2] += 0.5 * sx - 0.5
            m[1, 2] += 0.5 * sy - 0.5
            return m

        p = None if self.P is None else _scale(np.asarray(self.P).reshape(3, 4))
        return CameraCalibration(
            w, h, _scale(self.K), np.array(self.D), self.distortion_model, self.name, np.array(self.R), p
        )

    def to_dict(self) -> dict:
        def mat(m: np.ndarray, rows: int, cols: int) -> dict:
            return {"rows": rows, "cols": cols, "data": [float(v) for v in np.asarray(m).ravel()]}

        d = np.asarray(self.D, dtype=np.float64).ravel()
        return {
            "image_width": int(self.width),
            "image_height": int(self.height),
            "camera_name": self.name,
            "camera_matrix": mat(self.K, 3, 3),
            "distortion_model": self.distortion_model,
            "distortion_coefficients": mat(d, 1, d.size),
            "rectification_matrix": mat(self.R, 3, 3),
            "projection_matrix": mat(self.projection, 3, 4),
        }

    @classmethod
    def from_dict(cls, d: dict) -> CameraCalibration:
        def mat(key: str, shape: tuple[int, int] | None) -> np.ndarray | None:
            if key not in d:
                return None
            entry = d[key]
            data = np.asarray(entry["data"], dtype=np.float64)
            if shape is None:
                return data.ravel()
            if data.size != shape[0] * shape[1]:
                raise LayoutError(f"{key} must have {shape[0] * shape[1]} values, got {data.size}")
            return data.reshape(shape)

        missing = [k for k in ("image_width", "image_height", "camera_matrix") if k not in d]
        if missing:
            raise LayoutError(f"camera.yaml lacks {missing}")
        k = mat("camera_matrix", (3, 3))
        dist = mat("distortion_coefficients", None)
        r = mat("rectification_matrix", (3, 3))
        p = mat("projection_matrix", (3, 4))
        return cls(
            width=int(d["image_width"]),
            height=int(d["image_height"]),
            K=k,
            D=np.zeros(0) if dist is None else dist,
            distortion_model=str(d.get("distortion_model", "plumb_bob")),
            name=str(d.get("camera_name", "camera")),
            R=np.eye(3) if r is None else r,
            P=p,
        )


@dataclass(frozen=True)
class Capture:
    """A capture folder in memory (images stay on disk: ``path_of(i)``)."""

    folder: Path
    frames: tuple[FrameEntry, ...]
    imu_t: np.ndarray
    imu_omega: np.ndarray
    camera: CameraCalibration
    rig: RigParams

    def path_of(self, index: int) -> Path:
        return self.folder / self.frames[index].file

    def __len__(self) -> int:
        return len(self.frames)


def read_capture(folder: str | Path) -> Capture:
    """Read and validate a capture folder; raises :class:`LayoutError` naming the bad file."""
    folder = Path(folder)
    for name in (FRAMES_CSV, IMU_CSV, CAMERA_YAML, RIG_YAML):
        if not (folder / name).is_file():
            raise LayoutError(f"{folder} is not a capture folder: {name} is missing (see docs/captures.md)")
    frames = _read_frames(folder / FRAMES_CSV)
    for f in frames:
        if not (folder / f.file).is_file():
            raise LayoutError(f"{FRAMES_CSV} lists {f.file!r}, which is not in {folder}")
    imu_t, imu_omega = _read_imu(folder / IMU_CSV)
    camera = CameraCalibration.from_dict(_read_yaml(folder / CAMERA_YAML))
    rig_d = _read_yaml(folder / RIG_YAML)
    try:
        rig = RigParams(
            rotation_cam_imu=tuple(float(v) for v in np.asarray(rig_d["rotation_cam_imu"]).ravel()),
            time_offset=float(rig_d.get("time_offset", 0.0)),
            readout_time=float(rig_d.get("readout_time", 0.0)),
            stamp_convention=str(rig_d.get("stamp_convention", "middle")),  # type: ignore[arg-type]
        )
    except KeyError as e:
        raise LayoutError(f"{RIG_YAML} lacks {e}") from e
    return Capture(folder, tuple(frames), imu_t, imu_omega, camera, rig)


def write_capture(
    folder: str | Path,
    frames: list[FrameEntry],
    imu_t: np.ndarray,
    imu_omega: np.ndarray,
    camera: CameraCalibration,
    rig: RigParams,
    comments: dict[str, str] | None = None,
) -> Path:
    """Write the four metadata files (the caller puts the images in the folder).

    ``comments`` (file name -> text) are written as ``#`` lines at the top of the YAML files so
    adapters can record where each constant came from.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    comments = comments or {}
    with (folder / FRAMES_CSV).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "stamp", "exposure"])
        for f in frames:
            w.writerow([f.file, f"{f.stamp:.9f}", f"{f.exposure:.9f}"])
    t = np.asarray(imu_t, dtype=np.float64)
    om = np.asarray(imu_omega, dtype=np.float64)
    if t.ndim != 1 or om.shape != (t.size, 3):
        raise LayoutError(f"imu_t (N,) and imu_omega (N,3) expected, got {t.shape}, {om.shape}")
    with (folder / IMU_CSV).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", "wx", "wy", "wz"])
        for ti, o in zip(t, om, strict=True):
            w.writerow([f"{ti:.9f}", f"{o[0]:.9g}", f"{o[1]:.9g}", f"{o[2]:.9g}"])
    _write_yaml(folder / CAMERA_YAML, camera.to_dict(), comments.get(CAMERA_YAML))
    _write_yaml(folder / RIG_YAML, rig.to_dict(), comments.get(RIG_YAML))
    return folder


def _read_frames(path: Path) -> list[FrameEntry]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise LayoutError(f"{path} has no frames")
    missing = {"file", "stamp", "exposure"} - set(rows[0])
    if missing:
        raise LayoutError(f"{path} lacks columns {sorted(missing)} (header must be file,stamp,exposure)")
    frames = []
    for i, r in enumerate(rows):
        try:
            f = FrameEntry(r["file"], float(r["stamp"]), float(r["exposure"]))
        except ValueError as e:
            raise LayoutError(f"{path} row {i + 2}: {e}") from e
        if not (math.isfinite(f.stamp) and math.isfinite(f.exposure)) or f.exposure <= 0:
            raise LayoutError(f"{path} row {i + 2}: stamp must be finite and exposure > 0, got {r}")
        frames.append(f)
    return frames


def _read_imu(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as fh:
        header = next(csv.reader(fh), None)
    if header is None or [h.strip() for h in header[:4]] != ["t", "wx", "wy", "wz"]:
        raise LayoutError(f"{path}: header must be t,wx,wy,wz, got {header}")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    if data.shape[0] < 2 or data.shape[1] < 4:
        raise LayoutError(f"{path}: need at least 2 samples of t,wx,wy,wz, got shape {data.shape}")
    return data[:, 0].copy(), data[:, 1:4].copy()


def _read_yaml(path: Path) -> dict:
    try:
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise LayoutError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(d, dict):
        raise LayoutError(f"{path}: expected a mapping at top level")
    return d


def _write_yaml(path: Path, data: dict, comment: str | None) -> None:
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
    if comment:
        text = "".join(f"# {line}\n" for line in comment.strip().splitlines()) + text
    path.write_text(text)
