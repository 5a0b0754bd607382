"""Pinhole camera with the ROS distortion models, scaled to the image actually processed.

Which intrinsics: ``sensor_msgs/CameraInfo`` carries K + D (the raw, distorted image) and P
(the rectified image). The node deblurs ``image_raw``, whose pixels obey K + D, so K with D is
the default; P (left 3x3) without distortion is right only for an already rectified stream
(``rectified=True``). Using P on a raw image would misplace pixels by the distortion itself,
and using K without D ignores distortion that is largest exactly where blur streaks are longest
(the image corners).

Scaling (REP 104 / image_geometry): K, D, P always describe the full-resolution sensor image.
A region of interest shifts the principal point by its offset; binning by ``b`` maps old pixel
centre ``x`` to ``(x + 0.5) / b - 0.5`` and divides focal lengths by ``b``. (image_geometry
drops the half-pixel term, which is a quarter-pixel shift at 2x binning; pixel-centre
coordinates, as OpenCV uses, need it.) :meth:`CameraModel.resized` applies the same rule for any
resize the model input needs. Distortion coefficients act on normalised coordinates, so they do
not change under any of these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

_LOG = logging.getLogger(__name__)

DISTORTION_MODELS = ("none", "plumb_bob", "rational_polynomial", "equidistant")
_ALIASES = {"": "none", "pinhole": "none", "fisheye": "equidistant", "radtan": "plumb_bob"}
_N_COEFFS = {"none": 0, "plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


def _scale_axis(focal: float, centre: float, scale: float) -> tuple[float, float]:
    """Focal length and principal point after scaling pixel-centre coordinates by ``scale``."""
    return focal * scale, (centre + 0.5) * scale - 0.5


@dataclass(frozen=True, eq=False)
class CameraModel:
    """Intrinsics of the image that is processed (size, K, distortion model and coefficients).

    ``distortion_model`` is one of ``DISTORTION_MODELS`` (aliases "fisheye" -> "equidistant",
    "radtan" -> "plumb_bob"). ``D`` is padded with zeros to the model's length (5 for plumb_bob,
    8 for rational_polynomial, 4 for equidistant). Undistorted rays are cached per instance
    (a camera is reused for every frame), which is why the class is frozen.
    """

    width: int
    height: int
    K: np.ndarray
    distortion_model: str = "none"
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        K = np.array(self.K, dtype=np.float64).reshape(3, 3)
        if not (
            np.all(np.isfinite(K))
            and K[0, 0] > 0
            and K[1, 1] > 0
            and K[1, 0] == 0
            and K[2, 0] == 0
            and K[2, 1] == 0
            and K[2, 2] == 1
        ):
            raise ValueError(
                f"K must be an upper-triangular intrinsic matrix with fx, fy > 0, got {K.tolist()}"
            )
        model = _ALIASES.get(self.distortion_model, self.distortion_model)
        if model not in DISTORTION_MODELS:
            raise ValueError(
                f"unsupported distortion model {self.distortion_model!r}; one of {DISTORTION_MODELS}"
            )
        D = np.array(self.D, dtype=np.float64).reshape(-1)
        n = _N_COEFFS[model]
        if D.size > n and np.any(D[n:] != 0):
            raise ValueError(f"{model} takes at most {n} coefficients, got {D.size}")
        if not np.all(np.isfinite(D)):
            raise ValueError("distortion coefficients must be finite")
        D = np.concatenate([D[:n], np.zeros(max(n - D.size, 0))])
        K.setflags(write=False)
        D.setflags(write=False)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "distortion_model", model)
        object.__setattr__(self, "D", D)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return (
            (self.width, self.height, self.distortion_model)
            == (other.width, other.height, other.distortion_model)
            and np.array_equal(self.K, other.K)
            and np.array_equal(self.D, other.D)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def is_distorted(self) -> bool:
        """False for "none" and for polynomial models whose coefficients are all zero.

        Equidistant (fisheye) is never a pinhole: with zero coefficients it still maps the ray
        angle linearly to the image radius (``r = f theta``, not ``f tan theta``).
        """
        if self.distortion_model == "equidistant":
            return True
        return self.distortion_model != "none" and bool(np.any(self.D != 0))

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_camera_info(
        cls,
        width: int,
        height: int,
        k: Any,
        d: Any = (),
        distortion_model: str = "plumb_bob",
        p: Any = None,
        binning_x: int = 0,
        binning_y: int = 0,
        roi: Any = None,
        rectified: bool = False,
    ) -> CameraModel:
        """Camera of the published image from ``sensor_msgs/CameraInfo`` fields.

        ``k`` (9 numbers) with ``d`` by default; ``rectified=True`` uses ``p`` (12 numbers, left
        3x3) and no distortion. ``roi`` is ``(x_offset, y_offset, height, width)`` (the
        RegionOfInterest field order) or an object with those attributes; all-zero size = full
        image. Binning 0 or 1 = none. ``width``/``height`` are CameraInfo's (full sensor).
        """
        if rectified:
            if p is None:
                raise ValueError("rectified=True needs the projection matrix p")
            P = np.asarray(p, dtype=np.float64).reshape(3, 4)
            K = P[:, :3].copy()
            model, D = "none", np.zeros(0)
        else:
            K = np.asarray(k, dtype=np.float64).reshape(3, 3).copy()
            D = np.asarray(d, dtype=np.float64).reshape(-1)
            # an empty D means no distortion, except for a fisheye (see is_distorted)
            model = distortion_model if D.size or distortion_model in ("equidistant", "fisheye") else "none"
        if not K[0, 0] > 0:
            raise ValueError("camera_info is uncalibrated (K is zero)")
        w, h = int(width), int(height)
        if roi is not None:
            if hasattr(roi, "x_offset"):
                roi = (roi.x_offset, roi.y_offset, roi.height, roi.width)
            x0, y0, rh, rw = (int(v) for v in roi)
            if rh > 0 and rw > 0:
                K[0, 2] -= x0
                K[1, 2] -= y0
                w, h = rw, rh
        bx, by = max(int(binning_x), 1), max(int(binning_y), 1)
        if bx > 1 or by > 1:
            K[0, 0], K[0, 2] = _scale_axis(K[0, 0], K[0, 2], 1.0 / bx)
            K[0, 1] /= bx
            K[1, 1], K[1, 2] = _scale_axis(K[1, 1], K[1, 2], 1.0 / by)
            w, h = w // bx, h // by
        return cls(w, h, K, model, D)

    @classmethod
    def from_calibration_yaml(cls, path_or_dict: str | Path | dict) -> CameraModel:
        """Camera from a ROS ``camera_calibration`` YAML file (or its already-parsed dict).

        Keys: image_width, image_height, camera_matrix{rows, cols, data}, distortion_model,
        distortion_coefficients{data}, projection_matrix{data} (optional). Returns the raw-image
        model (K + D), see the module docstring. PyYAML is imported here only, because the GPU
        machines that run model code do not guarantee it.
        """
        if isinstance(path_or_dict, dict):
            doc = path_or_dict
        else:
            import yaml  # lazily: see docstring

            doc = yaml.safe_load(Path(path_or_dict).read_text())
        try:
            k = doc["camera_matrix"]["data"]
            width, height = int(doc["image_width"]), int(doc["image_height"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a camera_calibration YAML (missing {exc})") from exc
        d = (doc.get("distortion_coefficients") or {}).get("data") or ()
        p = (doc.get("projection_matrix") or {}).get("data")
        return cls.from_camera_info(
            width, height, k, d, doc.get("distortion_model", "plumb_bob") or "none", p
        )

    def resized(self, width: int, height: int) -> CameraModel:
        """The same camera for the image resized to ``width`` x ``height`` (pixel-centre rule)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.copy()
        K[0, 0], K[0, 2] = _scale_axis(K[0, 0], K[0, 2], sx)
        K[0, 1] *= sx
        K[1, 1], K[1, 2] = _scale_axis(K[1, 1], K[1, 2], sy)
        return CameraModel(int(width), int(height), K, self.distortion_model, self.D)

    # ---- geometry -----------------------------------------------------------------------------
    def _distort_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distortion on normalised coordinate arrays; keeps float32 inputs in float32."""
        if not self.is_distorted:
            return x, y
        D = [float(c) for c in self.D]  # Python floats keep float32 arrays float32 (NEP 50)
        r2 = x * x + y * y
        if self.distortion_model == "equidistant":
            r = np.sqrt(r2)
            theta = np.arctan(r)
            t2 = theta * theta
            theta_d = theta * (1 + t2 * (D[0] + t2 * (D[1] + t2 * (D[2] + t2 * D[3]))))
            scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1), 1)
            return x * scale, y * scale
        k1, k2, p1, p2, k3 = D[:5]
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        if self.distortion_model == "rational_polynomial":
            k4, k5, k6 = D[5:8]
            radial = radial / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xy2 = 2 * x * y
        xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + p2 * xy2
        return xd, yd

    def distort_normalized(self, xy: np.ndarray) -> np.ndarray:
        """Apply the distortion model to normalised coordinates (..., 2) (z = 1 plane)."""
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack(self._distort_xy(xy[..., 0], xy[..., 1]), axis=-1)

    def project_xyz(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(u, v)`` of directions given as component arrays (any shape).

        Component arrays avoid interleaving copies in the MGV hot loop; float32 stays float32.
        Rays must point in front of the camera (Z > 0) for the pinhole models; equidistant
        (fisheye) also accepts wider angles through atan2.
        """
        if self.distortion_model == "equidistant" and self.is_distorted:
            D = [float(c) for c in self.D]
            r = np.hypot(X, Y)
            theta = np.arctan2(r, Z)
            t2 = theta * theta
            theta_d = theta * (1 + t2 * (D[0] + t2 * (D[1] + t2 * (D[2] + t2 * D[3]))))
            scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1), 1 / np.maximum(Z, 1e-12))
            xd, yd = X * scale, Y * scale
        else:
            iz = 1 / Z
            xd, yd = self._distort_xy(X * iz, Y * iz)
        fx, s, cx = (float(c) for c in self.K[0])
        fy, cy = float(self.K[1, 1]), float(self.K[1, 2])
        return fx * xd + s * yd + cx, fy * yd + cy

    def project(self, rays: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of camera-frame directions ``rays`` (..., 3), with distortion."""
        rays = np.asarray(rays, dtype=np.float64)
        return np.stack(self.project_xyz(rays[..., 0], rays[..., 1], rays[..., 2]), axis=-1)

    def undistort_pixels(self, uv: np.ndarray) -> np.ndarray:
        """Normalised rays (M, 3) with z = 1 of pixel coordinates ``uv`` (M, 2) of this image.

        Uses OpenCV's iterative inversion (cv2.undistortPoints / cv2.fisheye.undistortPoints)
        with tight termination criteria (the defaults stop after 5 iterations, too early for
        strong distortion in the corners).
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        if not self.is_distorted:
            Kinv = np.linalg.inv(self.K)
            xy = uv @ Kinv[:2, :2].T + Kinv[:2, 2]
        else:
            pts = uv.reshape(-1, 1, 2)
            if self.distortion_model == "equidistant":
                xy = cv2.fisheye.undistortPoints(pts, self.K, self.D, criteria=_UNDISTORT_CRITERIA)
            else:
                xy = cv2.undistortPoints(pts, self.K, self.D, criteria=_UNDISTORT_CRITERIA)
            xy = xy.reshape(-1, 2).astype(np.float64)
        return np.concatenate([xy, np.ones((xy.shape[0], 1))], axis=1)

    def grid_geometry(self, us: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, ...]:
        """Cached float32 ``(x, y, u0, v0)`` (len(vs), len(us)) of the pixel grid ``us`` x ``vs``.

        ``x, y``: undistorted normalised coordinates (rays ``(x, y, 1)``); ``u0, v0``: their
        re-projection, used as the zero of displacements so undistortion residuals cancel.
        """
        key = ("grid", us.tobytes(), vs.tobytes())
        geo = self._cache.get(key)
        if geo is None:
            uu, vv = np.meshgrid(us, vs)
            rays = self.undistort_pixels(np.stack([uu.ravel(), vv.ravel()], 1)).reshape(len(vs), len(us), 3)
            u0, v0 = self.project_xyz(rays[..., 0], rays[..., 1], rays[..., 2])
            geo = tuple(a.astype(np.float32) for a in (rays[..., 0], rays[..., 1], u0, v0))
            for a in geo:
                a.setflags(write=False)
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = geo
        return geo
