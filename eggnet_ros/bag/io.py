"""Read and write real rosbag2 files (mcap or sqlite3) without a ROS installation.

Everything goes through the ``rosbags`` library: bags written here open in ``ros2 bag`` (Humble and
newer) and bags recorded by ``ros2 bag record`` open here. No rclpy is imported, so the offline
evaluation runs on any machine with the Python wheels.

Timestamps: every message has two times. The *log time* (``stamp`` of the bag record) is when the
recorder received it - one host clock for all topics, and what replay timing follows. The
*header stamp* is the sensor's own clock (camera clock for images, IMU clock for gyro samples);
the processing core needs the header stamps, related by the camera-IMU time offset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from eggnet_ros.motion import CameraModel, ImuReport, ImuSamples, validate_imu

_LOG = logging.getLogger(__name__)

Storage = Literal["mcap", "sqlite3"]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
IMU_TYPE = "sensor_msgs/msg/Imu"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
#: Written beside a synthetic bag's data file: the truth about its timing, read by ``eggnet-bag eval``.
SIDECAR = "eggnet_synth.json"

#: Encodings whose pixel layout we write ourselves (what cameras deliver and the core accepts).
_RAW_LAYOUT: dict[str, tuple[np.dtype, int]] = {
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    **{f"bayer_{p}8": (np.dtype(np.uint8), 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
    **{f"bayer_{p}16": (np.dtype(np.uint16), 1) for p in ("rggb", "bggr", "gbrg", "grbg")},
}


class BagError(ValueError):
    """The bag cannot be used as asked (missing topic, wrong type...); the message says why."""


class ImageDecodeError(ValueError):
    """One image message cannot be turned into an array (unknown encoding, truncated data)."""


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The message definitions used to (de)serialise: ROS 2 Jazzy's (identical to Humble's for
    every sensor_msgs / std_msgs type we touch)."""
    return get_typestore(Stores.ROS2_JAZZY)


def ns_to_s(ns: int) -> float:
    return ns * 1e-9


def s_to_ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _header(stamp_ns: int, frame_id: str) -> Any:
    ts = typestore()
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def header_stamp_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def storage_of(path: str | Path) -> Storage:
    """Storage plugin of an existing bag, from its metadata (for writing a sibling bag alike)."""
    meta = Path(path) / "metadata.yaml"
    text = meta.read_text() if meta.exists() else ""
    return "sqlite3" if "storage_identifier: sqlite3" in text else "mcap"


class BagWriter:
    """Write a rosbag2 directory; topics are registered on their first message.

    ``log_time_ns`` defaults to the header stamp (a recorder with zero latency); pass the
    receive time to model transport latency.
    """

    def __init__(self, path: str | Path, storage: Storage = "mcap") -> None:
        if storage not in ("mcap", "sqlite3"):
            raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"bag {self.path} already exists; remove it or choose another path")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        # Metadata version 8 is what Jazzy writes; Humble and newer read it.
        self._writer = Writer(self.path, version=8, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self.storage = storage

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Any:
        topic = _normalise(topic)
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = conn
        elif conn.msgtype != msgtype:
            raise BagError(f"topic {topic} already has type {conn.msgtype}, cannot write {msgtype}")
        return conn

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Register a topic now. Registration builds the type's definition (tens of ms): a recorder
        does it before subscribing, so the first messages are not lost while it runs."""
        self._connection(topic, msgtype)

    def write_raw(self, topic: str, msgtype: str, log_time_ns: int, data: bytes | memoryview) -> None:
        """Write an already CDR-serialised message (copying bags, recording from DDS)."""
        self._writer.write(self._connection(topic, msgtype), int(log_time_ns), data)

    def write_message(self, topic: str, msg: Any, log_time_ns: int) -> None:
        raw = typestore().serialize_cdr(msg, msg.__msgtype__)
        self.write_raw(topic, msg.__msgtype__, log_time_ns, raw)

    def write_image(self, topic: str, stamp_ns: int, frame_id: str, array: np.ndarray, encoding: str,
                    log_time_ns: int | None = None) -> None:
        """sensor_msgs/Image from an (H, W) or (H, W, C) array in ``encoding``'s layout."""
        if encoding not in _RAW_LAYOUT:
            raise ValueError(f"cannot write encoding {encoding!r}; known: {', '.join(_RAW_LAYOUT)}")
        dtype, channels = _RAW_LAYOUT[encoding]
        arr = np.ascontiguousarray(array)
        want_ndim = 2 if channels == 1 else 3
        if arr.dtype != dtype or arr.ndim != want_ndim or (channels > 1 and arr.shape[2] != channels):
            raise ValueError(f"{encoding} needs a {dtype} array with {channels} channel(s), "
                             f"got {arr.dtype} {arr.shape}")
        arr = arr.astype(dtype.newbyteorder("<"), copy=False)
        height, width = arr.shape[:2]
        Image = typestore().types[IMAGE_TYPE]
        msg = Image(header=_header(stamp_ns, frame_id), height=height, width=width, encoding=encoding,
                    is_bigendian=0, step=width * channels * dtype.itemsize,
                    data=np.frombuffer(arr.tobytes(), dtype=np.uint8))
        self.write_message(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)

    def write_compressed_image(self, topic: str, stamp_ns: int, frame_id: str, data: bytes,
                               format: str = "jpeg", log_time_ns: int | None = None) -> None:
        """sensor_msgs/CompressedImage with already-encoded bytes (e.g. ``cv2.imencode``)."""
        Msg = typestore().types[COMPRESSED_TYPE]
        msg = Msg(header=_header(stamp_ns, frame_id), format=format, data=np.frombuffer(data, dtype=np.uint8))
        self.write_message(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)

    def write_camera_info(self, topic: str, stamp_ns: int, frame_id: str, camera: CameraModel,
                          log_time_ns: int | None = None) -> None:
        """sensor_msgs/CameraInfo: K, D and model from ``camera``, R = I, P = [K | 0]."""
        K = np.asarray(camera.K, dtype=np.float64).reshape(3, 3)
        D = np.asarray(camera.D, dtype=np.float64).reshape(-1)
        model = camera.distortion_model
        if model in ("none", ""):
            model, D = "plumb_bob", np.zeros(5)
        P = np.zeros((3, 4))
        P[:, :3] = K
        ts = typestore()
        Msg = ts.types[CAMERA_INFO_TYPE]
        Roi = ts.types["sensor_msgs/msg/RegionOfInterest"]
        msg = Msg(header=_header(stamp_ns, frame_id), height=int(camera.height), width=int(camera.width),
                  distortion_model=model, d=D, k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P.reshape(-1),
                  binning_x=0, binning_y=0,
                  roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        self.write_message(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)

    def write_imu(self, topic: str, stamp_ns: int, frame_id: str, omega_xyz: Iterable[float],
                  accel_xyz: Iterable[float] | None = None, log_time_ns: int | None = None) -> None:
        """sensor_msgs/Imu; orientation is marked "not provided" (covariance[0] = -1, REP 145)."""
        ts = typestore()
        Vec = ts.types["geometry_msgs/msg/Vector3"]
        Quat = ts.types["geometry_msgs/msg/Quaternion"]
        w = [float(v) for v in omega_xyz]
        orient_cov = np.zeros(9)
        orient_cov[0] = -1.0
        if accel_xyz is None:
            a, accel_cov = [0.0, 0.0, 0.0], orient_cov.copy()
        else:
            a, accel_cov = [float(v) for v in accel_xyz], np.zeros(9)
        msg = ts.types[IMU_TYPE](
            header=_header(stamp_ns, frame_id),
            orientation=Quat(x=0.0, y=0.0, z=0.0, w=1.0), orientation_covariance=orient_cov,
            angular_velocity=Vec(x=w[0], y=w[1], z=w[2]), angular_velocity_covariance=np.zeros(9),
            linear_acceleration=Vec(x=a[0], y=a[1], z=a[2]), linear_acceleration_covariance=accel_cov)
        self.write_message(topic, msg, stamp_ns if log_time_ns is None else log_time_ns)


# -- decoding ------------------------------------------------------------------------------------
def decode_image(msg: Any) -> tuple[np.ndarray, str]:
    """Image or CompressedImage message -> (array, encoding).

    Raw images keep their encoding (row padding in ``step`` and big-endian data are handled);
    ``rgba8``/``bgra8`` lose their alpha (-> ``rgb8``/``bgr8``) since no camera pipeline deblurs
    alpha. Compressed images decode to ``bgr8`` or ``mono8`` (OpenCV's convention, as
    image_transport's compressed plugin). Anything else raises :class:`ImageDecodeError`.
    """
    from rosbags.image import compressed_image_to_cvimage

    if hasattr(msg, "format"):  # CompressedImage
        try:
            img = compressed_image_to_cvimage(msg)
        except Exception as exc:  # cv2 returns None / asserts on garbage
            raise ImageDecodeError(f"cannot decode compressed image (format {msg.format!r}): {exc}") from None
        if img is None:
            raise ImageDecodeError(f"cannot decode compressed image (format {msg.format!r})")
        if img.ndim == 2:
            return img, "mono8" if img.dtype == np.uint8 else "mono16"
        if img.shape[2] == 4:
            img = img[..., :3]
        return np.ascontiguousarray(img), "bgr8"
    enc = str(msg.encoding)
    if enc not in _RAW_LAYOUT:
        raise ImageDecodeError(
            f"unsupported image encoding {enc!r}; supported: {', '.join(k for k in _RAW_LAYOUT)}")
    dtype, channels = _RAW_LAYOUT[enc]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < row_bytes or data.size < step * (height - 1) + row_bytes:
        raise ImageDecodeError(f"{enc} image {width}x{height}: step {step} / {data.size} bytes is too small")
    rows = np.lib.stride_tricks.as_strided(data, shape=(height, row_bytes), strides=(step, 1))
    arr = np.array(rows).view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))  # own, writable copy
    shape = (height, width) if channels == 1 else (height, width, channels)
    arr = arr.astype(dtype, copy=False).reshape(shape)
    if channels == 4:
        return np.ascontiguousarray(arr[..., :3]), enc[:3] + "8"
    return arr, enc


def camera_from_info(msg: Any) -> CameraModel:
    roi = msg.roi
    roi_t = None
    if int(roi.width) and int(roi.height):
        roi_t = (int(roi.x_offset), int(roi.y_offset), int(roi.height), int(roi.width))
    return CameraModel.from_camera_info(
        int(msg.width), int(msg.height), np.asarray(msg.k, dtype=np.float64),
        d=np.asarray(msg.d, dtype=np.float64),
        distortion_model=str(msg.distortion_model) or "plumb_bob", p=np.asarray(msg.p, dtype=np.float64),
        binning_x=int(msg.binning_x), binning_y=int(msg.binning_y), roi=roi_t)


# -- reading -------------------------------------------------------------------------------------
@dataclass
class FrameRecord:
    """One image of a bag with everything the processing core needs for it.

    ``image`` is None when the message could not be decoded; ``problems`` then (or when the
    camera or IMU is missing) says why, so callers can fall back per frame instead of stopping.
    ``imu`` holds the gyro samples (IMU frame, IMU clock) around the frame, None when there are
    none at all; whether they *cover* the exposure is for the processor to decide, because only it
    knows the exposure window.
    """

    index: int
    stamp: float
    stamp_ns: int
    log_time_ns: int
    frame_id: str
    msgtype: str
    image: np.ndarray | None
    encoding: str
    camera: CameraModel | None
    imu: ImuSamples | None
    sharp: np.ndarray | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    msgtype: str
    count: int


class BagReader:
    """Read a rosbag2 directory (mcap or sqlite3, detected from its metadata)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "metadata.yaml").exists():
            raise BagError(f"{self.path} is not a rosbag2 directory (no metadata.yaml)")
        self._reader = Reader(self.path)
        self._reader.open()
        self.storage = storage_of(self.path)

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()

    @property
    def topics(self) -> dict[str, TopicInfo]:
        out: dict[str, TopicInfo] = {}
        for conn in self._reader.connections:
            prev = out.get(conn.topic)
            count = conn.msgcount + (prev.count if prev else 0)
            out[conn.topic] = TopicInfo(conn.topic, conn.msgtype, count)
        return out

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time)

    def require(self, topic: str, msgtypes: tuple[str, ...], role: str) -> TopicInfo:
        """The topic's info; :class:`BagError` naming the bag's topics if absent or mistyped."""
        info = self.topics.get(topic) or self.topics.get(_normalise(topic))
        if info is None:
            listing = ", ".join(f"{t.topic} [{t.msgtype}]" for t in self.topics.values()) or "none"
            raise BagError(f"{role} topic {topic!r} is not in {self.path}; topics: {listing}")
        if info.msgtype not in msgtypes:
            expected = " or ".join(msgtypes)
            raise BagError(f"{role} topic {info.topic!r} has type {info.msgtype}, expected {expected}")
        return info

    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None,
                 ) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, msgtype, log_time_ns, raw CDR) in log-time order."""
        wanted = None if topics is None else {_normalise(t) for t in topics}
        conns = [c for c in self._reader.connections if wanted is None or _normalise(c.topic) in wanted]
        if not conns:
            return
        for conn, log_ns, raw in self._reader.messages(connections=conns, start=start_ns):
            yield conn.topic, conn.msgtype, int(log_ns), raw

    def decoded(self, topic: str) -> Iterator[tuple[int, Any]]:
        """(log_time_ns, deserialised rosbags message) for one topic."""
        ts = typestore()
        for _, msgtype, log_ns, raw in self.messages([topic]):
            yield log_ns, ts.deserialize_cdr(raw, msgtype)

    def imu_samples(self, topic: str, max_gap: float = 0.05) -> tuple[ImuSamples, ImuReport]:
        """All gyro samples of ``topic`` (header stamps, IMU frame), validated."""
        self.require(topic, (IMU_TYPE,), "IMU")
        t, w = [], []
        for _, msg in self.decoded(topic):
            t.append(header_stamp_ns(msg) * 1e-9)
            av = msg.angular_velocity
            w.append((av.x, av.y, av.z))
        return validate_imu(np.asarray(t), np.asarray(w, dtype=np.float64).reshape(-1, 3), max_gap=max_gap)

    def frames(self, image_topic: str, camera_info_topic: str | None, imu_topic: str | None,
               sharp_topic: str | None = None, imu_margin: float = 0.2, time_offset: float = 0.0,
               ) -> Iterator[FrameRecord]:
        """Frames of ``image_topic`` with their camera model, gyro window and ground truth.

        The gyro window is ``[stamp + time_offset - imu_margin, stamp + time_offset + imu_margin]``
        in the IMU clock, wide enough for any exposure convention; camera_info and ground truth are
        matched by header stamp (camera_info: the latest one not after the frame, else the first).
        A missing camera_info / IMU / ground-truth topic is logged once and reported per frame.
        """
        info = self.require(image_topic, IMAGE_TYPES, "image")
        ts = typestore()

        cameras: list[tuple[int, CameraModel]] = []
        camera_problem = ""
        if camera_info_topic:
            try:
                self.require(camera_info_topic, (CAMERA_INFO_TYPE,), "camera_info")
                for _, msg in self.decoded(camera_info_topic):
                    try:
                        cameras.append((header_stamp_ns(msg), camera_from_info(msg)))
                    except ValueError as exc:
                        camera_problem = f"invalid camera_info: {exc}"
                cameras.sort(key=lambda c: c[0])
            except BagError as exc:
                camera_problem = str(exc)
                _LOG.warning("%s", exc)
        if not cameras and not camera_problem:
            camera_problem = "camera_info topic is empty" if camera_info_topic else "no camera_info topic"

        imu: ImuSamples | None = None
        imu_problem = ""
        if imu_topic:
            try:
                imu, report = self.imu_samples(imu_topic)
                if not report.clean:
                    _LOG.warning("IMU %s: %d non-finite, %d duplicate, %d out-of-order samples, %d gaps",
                                 imu_topic, report.n_nonfinite, report.n_duplicates, report.n_out_of_order,
                                 len(report.gaps))
            except BagError as exc:
                imu_problem = str(exc)
                _LOG.warning("%s", exc)
        else:
            imu_problem = "no IMU topic given"

        sharp_raw: dict[int, tuple[str, bytes]] = {}
        if sharp_topic:
            try:
                self.require(sharp_topic, IMAGE_TYPES, "ground-truth")
                for _, msgtype, _, raw in self.messages([sharp_topic]):
                    msg = ts.deserialize_cdr(raw, msgtype)
                    sharp_raw[header_stamp_ns(msg)] = (msgtype, raw)
            except BagError as exc:
                _LOG.warning("%s (no PSNR/SSIM)", exc)

        cam_stamps = np.array([c[0] for c in cameras], dtype=np.int64)
        for index, (_, msgtype, log_ns, raw) in enumerate(self.messages([info.topic])):
            msg = ts.deserialize_cdr(raw, msgtype)
            stamp_ns = header_stamp_ns(msg)
            problems: list[str] = []
            image, encoding = None, getattr(msg, "encoding", "") or getattr(msg, "format", "")
            try:
                image, encoding = decode_image(msg)
            except ImageDecodeError as exc:
                problems.append(str(exc))
            camera = None
            if cameras:
                k = max(int(np.searchsorted(cam_stamps, stamp_ns, side="right")) - 1, 0)
                camera = cameras[k][1]
            else:
                problems.append(camera_problem)
            window = None
            if imu is not None and len(imu):
                t_imu = stamp_ns * 1e-9 + time_offset
                window = imu.window(t_imu - imu_margin, t_imu + imu_margin)
                if len(window) < 2:
                    problems.append(f"no IMU samples within {imu_margin * 1e3:.0f} ms of the frame")
            elif imu_problem:
                problems.append(imu_problem)
            sharp = None
            if stamp_ns in sharp_raw:
                s_type, s_raw = sharp_raw[stamp_ns]
                try:
                    sharp, _ = decode_image(ts.deserialize_cdr(s_raw, s_type))
                except ImageDecodeError as exc:
                    _LOG.warning("ground truth at %d: %s", stamp_ns, exc)
            yield FrameRecord(index=index, stamp=stamp_ns * 1e-9, stamp_ns=stamp_ns, log_time_ns=log_ns,
                              frame_id=str(msg.header.frame_id), msgtype=msgtype, image=image,
                              encoding=encoding, camera=camera, imu=window, sharp=sharp, problems=problems)


def _normalise(topic: str) -> str:
    """Compare topics with and without the leading slash (``camera/image_raw`` == ``/camera/image_raw``)."""
    return topic if topic.startswith("/") else "/" + topic

