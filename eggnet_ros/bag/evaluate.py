"""Offline replay of a bag through the node's processing core: metrics, an output bag, a report.

``evaluate_bag`` feeds every frame of the image topic, with its camera model and gyro samples, to
the same :class:`~eggnet_ros.core.DeblurProcessor` the ROS node uses (no DDS, no timing effects),
so the numbers here are what the node produces on that recording. Per frame it records what the
processor did (deblurred / passthrough / dropped, and why), the blur extent the IMU implies, and
PSNR/SSIM against ground truth when the bag has it. Consecutive frames feed the VO metric
(:mod:`eggnet_ros.bag.vo`) for the input, the output and the ground truth.

Bad bags never end in a traceback: a missing topic is a :class:`~eggnet_ros.bag.io.BagError` with
the bag's topic list (for the image topic, which nothing can replace) or a per-frame fallback (IMU,
camera_info, ground truth); undecodable frames are skipped and listed in the report.

ROS-free: imports rosbags, never rclpy.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eggnet_ros.bag.io import (
    IMAGE_TYPES,
    SIDECAR,
    BagReader,
    BagWriter,
    FrameRecord,
    ImageDecodeError,
    decode_image,
    header_stamp_ns,
    storage_of,
    typestore,
)
from eggnet_ros.bag.vo import VoConfig, VoStats, to_gray8, track_pair
from eggnet_ros.config import ExposureTiming
from eggnet_ros.motion import MotionError, blur_extent_px, frame_motion, mgv_field
from eggnet_ros.training.metrics import psnr, ssim

_LOG = logging.getLogger(__name__)



@dataclass(frozen=True)
class EvalTopics:
    image: str = "/camera/image_raw"
    camera_info: str = "/camera/camera_info"
    imu: str = "/imu"
    #: Ground truth (same stamps as ``image``); absent topic = no PSNR/SSIM.
    sharp: str | None = "/camera/image_sharp"
    #: Topic added to the output bag.
    output: str = "/camera/image_deblurred"


@dataclass
class FrameEval:
    """One frame's outcome. Metrics are NaN when not applicable (no ground truth, dropped...)."""

    index: int
    stamp: float
    status: str  # deblurred | passthrough | dropped | skipped (undecodable)
    reason: str
    blur_px: float = math.nan
    psnr_in: float = math.nan
    psnr_out: float = math.nan
    ssim_in: float = math.nan
    ssim_out: float = math.nan
    time_ms: float = math.nan


@dataclass
class EvalResult:
    """Everything the report shows."""

    bag: str
    frames: list[FrameEval] = field(default_factory=list)
    vo: dict[str, VoStats] = field(default_factory=dict)
    #: Bag-level problems (missing topics, IMU defects) and settings taken from the bag.
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    output_bag: str | None = None
    #: A few frames' (label, blurred, deblurred, sharp-or-None) arrays for the report's crops.
    examples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]] = field(default_factory=list)
    encoding: str = ""

    def counts(self) -> dict[str, int]:
        out = {"deblurred": 0, "passthrough": 0, "dropped": 0, "skipped": 0}
        for f in self.frames:
            out[f.status] = out.get(f.status, 0) + 1
        return out

    def mean(self, name: str) -> float:
        vals = [getattr(f, name) for f in self.frames if math.isfinite(getattr(f, name))]
        return float(np.mean(vals)) if vals else math.nan

    def summary(self) -> dict[str, Any]:
        blur = np.array([f.blur_px for f in self.frames if math.isfinite(f.blur_px)])
        return {
            "bag": self.bag, "frames": len(self.frames), **self.counts(),
            "psnr_in": self.mean("psnr_in"), "psnr_out": self.mean("psnr_out"),
            "ssim_in": self.mean("ssim_in"), "ssim_out": self.mean("ssim_out"),
            "blur_px_mean": float(blur.mean()) if blur.size else math.nan,
            "blur_px_median": float(np.median(blur)) if blur.size else math.nan,
            "blur_px_p95": float(np.percentile(blur, 95)) if blur.size else math.nan,
            "blur_px_max": float(blur.max()) if blur.size else math.nan,
            "time_ms_mean": self.mean("time_ms"),
            "vo": {k: v.summary() for k, v in self.vo.items()},
        }

    def to_json(self) -> str:
        data = {"summary": self.summary(), "settings": self.settings, "notes": self.notes,
                "output_bag": self.output_bag, "frames": [dataclasses.asdict(f) for f in self.frames]}
        return json.dumps(data, indent=1, default=float, allow_nan=True)


class _VoRunner:
    """Incremental frame-to-frame VO statistics (only the previous frame is kept in memory)."""

    def __init__(self, cfg: VoConfig) -> None:
        self.cfg = cfg
        self.stats = VoStats()
        self._prev: np.ndarray | None = None

    def push(self, image: np.ndarray | None, encoding: str, K: np.ndarray | None) -> None:
        if image is None or K is None:
            self._prev = None  # a gap breaks the chain, as it would in a VO front end
            return
        gray = to_gray8(image, encoding)
        if self._prev is not None and self._prev.shape == gray.shape:
            self.stats.pairs.append(track_pair(self._prev, gray, K, self.cfg))
        self._prev = gray


def read_sidecar(bag: str | Path) -> dict[str, Any] | None:
    """The synthetic bag's recorded timing (None for real bags)."""
    path = Path(bag) / SIDECAR
    return json.loads(path.read_text()) if path.exists() else None


def _unit(image: np.ndarray) -> np.ndarray:
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / np.float32(scale)


def _blur_only(processor: Any, fr: FrameRecord) -> float:
    """Blur extent from the IMU alone, for frames the processor rejected before measuring it."""
    if fr.imu is None or fr.camera is None or len(fr.imu) < 2:
        return math.nan
    try:
        motion = frame_motion(fr.imu, fr.stamp, fr.camera.height, processor.config.motion)
        return float(blur_extent_px(mgv_field(motion, fr.camera)))
    except (MotionError, ValueError):
        return math.nan


def _frame_stream(reader: BagReader, topics: EvalTopics, time_offset: float) -> Iterator[FrameRecord]:
    return reader.frames(topics.image, topics.camera_info, topics.imu, topics.sharp, time_offset=time_offset)


def evaluate_bag(bag: str | Path, processor: Any, topics: EvalTopics | None = None,
                 output_bag: str | Path | None = None, vo_config: VoConfig | None = None,
                 progress: bool = True, n_examples: int = 3, recorded: str | Path | None = None,
                 ) -> EvalResult:
    """Replay ``bag`` through ``processor`` (a :class:`~eggnet_ros.core.DeblurProcessor`).

    ``output_bag``: write a copy of the input with ``topics.output`` added (same storage format),
    every message at its original log time; None = no output bag.

    ``recorded``: instead of running the processor, take each frame's output from this bag (what
    the live node published on ``topics.output``, matched by header stamp) - the node's results
    judged against the input bag's ground truth. ``processor`` then only supplies the timing
    configuration for the blur statistics (any object with ``.config``). A frame without output
    counts as dropped, an output equal to the input as passthrough.
    """
    from tqdm import tqdm

    topics = topics or EvalTopics()
    vo_cfg = vo_config or VoConfig()
    result = EvalResult(bag=str(bag))
    timing: ExposureTiming = processor.config.motion.timing
    result.settings = {"timing": dataclasses.asdict(timing), "topics": dataclasses.asdict(topics),
                       "rotation_cam_imu": list(processor.config.motion.rotation_cam_imu),
                       "fallback": processor.config.fallback, "min_blur_px": processor.config.min_blur_px,
                       "model": processor.model_name}

    with BagReader(bag) as frames_reader, BagReader(bag) as copy_reader:
        image_info = frames_reader.require(topics.image, IMAGE_TYPES, "image")
        have = {t.lstrip("/") for t in frames_reader.topics}
        consequence = {"camera_info": "no camera model: every frame falls back",
                       "IMU": "no gyro: every frame falls back", "ground-truth": "no PSNR/SSIM"}
        roles = (("camera_info", topics.camera_info), ("IMU", topics.imu), ("ground-truth", topics.sharp))
        for role, topic in roles:
            if topic and topic.lstrip("/") not in have:
                result.notes.append(f"{role} topic {topic} is missing from the bag ({consequence[role]})")
        has_truth = bool(topics.sharp) and topics.sharp.lstrip("/") in have

        frames = _frame_stream(frames_reader, topics, timing.time_offset)
        outputs = None if recorded is None else _load_outputs(recorded, topics.output)
        if recorded is not None:
            result.settings["recorded"] = str(recorded)
        writer = None
        if output_bag is not None:
            writer = BagWriter(output_bag, storage=storage_of(bag)).__enter__()
            result.output_bag = str(output_bag)
        runners = {"blurred": _VoRunner(vo_cfg), "deblurred": _VoRunner(vo_cfg)}
        if has_truth:
            runners["sharp"] = _VoRunner(vo_cfg)
        pick = _example_indices(image_info.count, n_examples)
        bar = tqdm(total=image_info.count, unit="frame", disable=not progress, desc="eval")
        try:
            for topic, msgtype, log_ns, raw in copy_reader.messages():
                if writer is not None:
                    writer.write_raw(topic, msgtype, log_ns, raw)
                if topic != image_info.topic:
                    continue
                fr = next(frames)
                if outputs is None:
                    fe, out = _process_frame(processor, fr)
                else:
                    fe, out = _recorded_frame(processor, fr, outputs)
                result.frames.append(fe)
                if fr.image is not None and not result.encoding:
                    result.encoding = fr.encoding
                if writer is not None and out is not None:
                    writer.write_image(topics.output, fr.stamp_ns, fr.frame_id, out, fr.encoding, log_ns)
                K = fr.camera.K if fr.camera is not None else None
                runners["blurred"].push(fr.image, fr.encoding, K)
                runners["deblurred"].push(out, fr.encoding, K)
                if "sharp" in runners:
                    runners["sharp"].push(fr.sharp, fr.encoding, K)
                if fr.index in pick and fr.image is not None and out is not None:
                    label = f"frame {fr.index}, blur {fe.blur_px:.1f} px"
                    result.examples.append((label, fr.image, out, fr.sharp))
                bar.update(1)
                bar.set_postfix_str(_postfix(result))
        finally:
            bar.close()
            if writer is not None:
                writer.close()
    result.vo = {k: r.stats for k, r in runners.items()}
    fallbacks = [f for f in result.frames if f.status != "deblurred"]
    if fallbacks:
        _LOG.info("%d of %d frames were not deblurred (see the report for reasons)", len(fallbacks),
                  len(result.frames))
    return result


def _process_frame(processor: Any, fr: FrameRecord) -> tuple[FrameEval, np.ndarray | None]:
    if fr.image is None:
        fe = FrameEval(fr.index, fr.stamp, "skipped", "; ".join(fr.problems) or "undecodable image")
        fe.blur_px = _blur_only(processor, fr)
        return fe, None
    res = processor.process(fr.image, fr.encoding, fr.stamp, fr.imu, fr.camera)
    reason = res.reason
    if res.status != "deblurred" and fr.problems:
        reason = f"{reason} ({'; '.join(fr.problems)})" if reason else "; ".join(fr.problems)
    fe = FrameEval(fr.index, fr.stamp, res.status, reason, float(res.blur_px),
                   time_ms=float(res.timings.get("total", math.nan)))
    if not math.isfinite(fe.blur_px):
        fe.blur_px = _blur_only(processor, fr)
    if fr.sharp is not None and fr.sharp.shape == fr.image.shape:
        ref = _unit(fr.sharp)
        fe.psnr_in, fe.ssim_in = psnr(_unit(fr.image), ref), ssim(_unit(fr.image), ref)
        if res.image is not None:
            fe.psnr_out, fe.ssim_out = psnr(_unit(res.image), ref), ssim(_unit(res.image), ref)
    return fe, res.image


def _load_outputs(recorded: str | Path, topic: str) -> dict[int, tuple[str, bytes]]:
    """Header stamp -> (type, raw CDR) of every message on ``topic`` of the recorded bag."""
    with BagReader(recorded) as reader:
        reader.require(topic, IMAGE_TYPES, "recorded output")
        ts = typestore()
        out = {}
        for _, msgtype, _, raw in reader.messages([topic]):
            out[header_stamp_ns(ts.deserialize_cdr(raw, msgtype))] = (msgtype, bytes(raw))
        return out


def _recorded_frame(processor: Any, fr: FrameRecord, outputs: dict[int, tuple[str, bytes]]
                    ) -> tuple[FrameEval, np.ndarray | None]:
    out = None
    if fr.stamp_ns in outputs:
        msgtype, raw = outputs[fr.stamp_ns]
        try:
            out, _ = decode_image(typestore().deserialize_cdr(raw, msgtype))
        except ImageDecodeError as exc:
            _LOG.warning("recorded output at %d: %s", fr.stamp_ns, exc)
    if out is None:
        fe = FrameEval(fr.index, fr.stamp, "dropped", "no output recorded for this stamp")
    elif fr.image is not None and out.shape == fr.image.shape and np.array_equal(out, fr.image):
        fe = FrameEval(fr.index, fr.stamp, "passthrough", "output identical to the input")
    else:
        fe = FrameEval(fr.index, fr.stamp, "deblurred", "")
    fe.blur_px = _blur_only(processor, fr)
    if fr.image is not None and fr.sharp is not None and fr.sharp.shape == fr.image.shape:
        ref = _unit(fr.sharp)
        fe.psnr_in, fe.ssim_in = psnr(_unit(fr.image), ref), ssim(_unit(fr.image), ref)
        if out is not None and out.shape == ref.shape:
            fe.psnr_out, fe.ssim_out = psnr(_unit(out), ref), ssim(_unit(out), ref)
    return fe, out


def _example_indices(n: int, k: int) -> set[int]:
    if n <= 0 or k <= 0:
        return set()
    return {(i + 1) * n // (k + 1) for i in range(k)}


def _postfix(result: EvalResult) -> str:
    last = result.frames[-1]
    text = f"{last.status}"
    if math.isfinite(result.mean("psnr_out")):
        text += f" PSNR {result.mean('psnr_in'):.2f}->{result.mean('psnr_out'):.2f}"
    return text
