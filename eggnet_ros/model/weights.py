"""Model weights as safetensors + a JSON model card; loading that refuses anything inconsistent.

Why a card beside the tensors: the tensors alone do not say which architecture, input mode or
training data produced them. The card records the full ``EggNetConfig``, the input mode, the
training data description and metrics, the weights file's sha256, the parameter count and the
storage dtype, and :func:`load_model` checks every one of these against the file before a
single weight reaches a network. Never unpickles (safetensors only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import INPUT_MODE_CHANNELS, EggNetConfig
from .eggnet import EggNet

log = logging.getLogger(__name__)

CARD_FORMAT = "eggnet_ros.model_card/1"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: Folders searched for a bare model name (e.g. "eggnet_lite"): $EGGNET_MODELS_DIR, then the
#: repository's / install share's ``models/``.
_MODEL_DIRS_ENV = "EGGNET_MODELS_DIR"


class WeightsError(ValueError):
    """A weights file or its card is missing, corrupt, or does not match what was asked for."""


@dataclass
class ModelCard:
    """What :func:`save_weights` writes to ``<name>.json`` and :func:`load_model` verifies."""

    config: EggNetConfig
    input_mode: str
    sha256: str
    param_count: int
    dtype: str = "float32"
    weights_file: str = ""
    training_data: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = CARD_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "config": self.config.to_dict(),
            "input_mode": self.input_mode,
            "weights_file": self.weights_file,
            "sha256": self.sha256,
            "param_count": self.param_count,
            "dtype": self.dtype,
            "training_data": self.training_data,
            "metrics": self.metrics,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        if not isinstance(d, dict):
            raise WeightsError("model card must be a JSON object")
        if d.get("format") != CARD_FORMAT:
            raise WeightsError(f"unsupported model card format {d.get('format')!r} (expected {CARD_FORMAT})")
        missing = [k for k in ("config", "input_mode", "sha256", "param_count", "dtype") if k not in d]
        if missing:
            raise WeightsError(f"model card lacks {missing}")
        try:
            config = EggNetConfig.from_dict(d["config"])
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"model card has an invalid config: {exc}") from exc
        if d["dtype"] not in _DTYPES:
            raise WeightsError(f"model card dtype {d['dtype']!r} not one of {sorted(_DTYPES)}")
        return cls(
            config=config, input_mode=str(d["input_mode"]), sha256=str(d["sha256"]),
            param_count=int(d["param_count"]), dtype=d["dtype"], weights_file=str(d.get("weights_file", "")),
            training_data=d.get("training_data"), metrics=dict(d.get("metrics") or {}),
            extra=dict(d.get("extra") or {}),
        )


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """Strip DistributedDataParallel (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None:
            inner = getattr(model, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def card_path_for(weights_path: str | os.PathLike[str]) -> Path:
    """``x.safetensors`` -> ``x.json``."""
    return Path(weights_path).with_suffix(".json")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_weights(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    card_extra: dict[str, Any] | None = None,
    half: bool = True,
) -> ModelCard:
    """Write ``path`` (.safetensors) and its card ``path.with_suffix('.json')``.

    ``card_extra``: ``training_data`` and ``metrics`` go to their card fields, anything else to
    ``extra``. ``half=True`` stores fp16 (half the size; weights are cast back to fp32 on load);
    it refuses weights that overflow fp16 rather than storing infinities.
    """
    model = unwrap_model(model)
    if not isinstance(model, EggNet):
        raise TypeError(f"save_weights expects an EggNet (or a DDP/compiled wrapper), got {type(model)}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"weights path must end in .safetensors, got {path}")
    dtype = torch.float16 if half else torch.float32
    tensors: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        stored = t.detach().to("cpu", dtype).contiguous()
        if half and not torch.isfinite(stored).all():
            raise ValueError(f"tensor {name!r} overflows float16; save with half=False")
        tensors[name] = stored
    blob = st_save(tensors, metadata={"format": "pt", "card": CARD_FORMAT})
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, blob)
    extra = dict(card_extra or {})
    card = ModelCard(
        # The backend is a property of the machine, not of the weights (load_model picks it).
        config=replace(model.config, deform_backend="auto"), input_mode=model.config.input_mode,
        sha256=hashlib.sha256(blob).hexdigest(), param_count=model.num_parameters(),
        dtype="float16" if half else "float32", weights_file=path.name,
        training_data=extra.pop("training_data", None), metrics=dict(extra.pop("metrics", {}) or {}),
        extra=extra,
    )
    _atomic_write(card_path_for(path), (json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n").encode())
    log.info("saved %s (%d params, %s, sha256 %s)", path, card.param_count, card.dtype, card.sha256[:12])
    return card


def resolve_model_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A path to ``.safetensors`` (or its ``.json`` card), or a bare shipped model name."""
    p = Path(name_or_path)
    if p.suffix == ".json":
        p = p.with_suffix(".safetensors")
    if p.suffix == ".safetensors" or p.exists() or os.sep in str(name_or_path):
        return p
    dirs = [Path(d) for d in os.environ.get(_MODEL_DIRS_ENV, "").split(os.pathsep) if d]
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    for d in dirs:
        candidate = d / f"{p.name}.safetensors"
        if candidate.exists():
            return candidate
    raise WeightsError(f"no model named {str(name_or_path)!r} in {[str(d) for d in dirs]}")


def read_card(path: str | os.PathLike[str]) -> ModelCard:
    """Parse the card beside ``path`` (raises :class:`WeightsError`)."""
    card_path = card_path_for(resolve_model_path(path))
    if not card_path.is_file():
        raise WeightsError(f"model card {card_path} not found")
    try:
        raw = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"model card {card_path} is not valid JSON: {exc}") from exc
    return ModelCard.from_dict(raw)


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", backend: str = "auto",
    expected_input_mode: str | None = None,
) -> tuple[EggNet, ModelCard]:
    """Load weights + card, verify everything, return ``(model.eval() on device, card)``.

    Raises :class:`WeightsError` for: missing weights or card, a card for another input mode
    (``expected_input_mode``), a sha256 mismatch, an unparsable/truncated file, tensors missing,
    unexpected or of the wrong shape/dtype for the card's config, or a wrong parameter count.
    """
    weights_path = resolve_model_path(path)
    if not weights_path.is_file():
        raise WeightsError(f"weights file {weights_path} not found")
    card = read_card(weights_path)
    if expected_input_mode is not None and expected_input_mode not in INPUT_MODE_CHANNELS:
        raise ValueError(f"unknown expected_input_mode {expected_input_mode!r}")
    if card.input_mode != card.config.input_mode:
        raise WeightsError(
            f"card input_mode {card.input_mode!r} contradicts its config's {card.config.input_mode!r}"
        )
    if expected_input_mode is not None and card.input_mode != expected_input_mode:
        raise WeightsError(
            f"{weights_path.name} was trained for {card.input_mode!r} input, not {expected_input_mode!r}"
        )
    blob = weights_path.read_bytes()  # hash and parse the same bytes
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card.sha256:
        raise WeightsError(
            f"sha256 of {weights_path.name} is {digest[:16]}..., the card says {card.sha256[:16]}..."
        )
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise WeightsError(f"{weights_path.name} is not a readable safetensors file: {exc}") from exc

    config = replace(card.config, deform_backend=backend)
    model = EggNet(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"tensors do not match the card's architecture: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    want_dtype = _DTYPES[card.dtype]
    for name, ref in expected.items():
        t = tensors[name]
        if tuple(t.shape) != tuple(ref.shape):
            raise WeightsError(
                f"tensor {name!r} has shape {tuple(t.shape)}, the card's config needs {tuple(ref.shape)}"
            )
        if t.dtype != want_dtype:
            raise WeightsError(f"tensor {name!r} is {t.dtype}, the card says {card.dtype}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise WeightsError(f"tensor {name!r} holds NaN/inf (a diverged or corrupt checkpoint)")
    if model.num_parameters() != card.param_count:
        raise WeightsError(f"card param_count {card.param_count} != architecture's {model.num_parameters()}")
    model.load_state_dict({name: tensors[name].to(ref.dtype) for name, ref in expected.items()})
    model.eval().to(device)
    log.info("loaded %s (%s, %s, %d params)", weights_path.name, config.variant, card.input_mode,
             card.param_count)
    return model, card
