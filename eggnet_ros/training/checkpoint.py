"""Resumable training checkpoints stored as safetensors (never pickle).

A checkpoint holds the model tensors, Adam's moment buffers and a JSON metadata blob (iteration,
samples seen, elapsed wall time, the training config). torch.save would be shorter, but loading a
pickle executes code; checkpoints travel between machines (CPU box <-> GPU machine), so they use
the same safe format as shipped weights.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

LOGGER = logging.getLogger(__name__)

_META_KEY = "eggnet_checkpoint"


@dataclass
class TrainState:
    """Progress counters that must survive a restart for the schedule and the data stream."""

    iteration: int = 0
    samples_seen: int = 0
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: dict[str, Any],
) -> None:
    """Write atomically (tmp file + rename) so a session killed mid-write leaves the old one intact."""
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v.detach().contiguous().cpu() for k, v in _unwrap(model).state_dict().items()
    }
    steps: dict[str, float] = {}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, param in enumerate(params):
        slot = optimizer.state.get(param, {})
        for name, value in slot.items():
            if name == "step":
                steps[str(index)] = float(value)
            elif isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value.detach().contiguous().cpu()
    metadata = {
        "iteration": state.iteration,
        "samples_seen": state.samples_seen,
        "elapsed_s": state.elapsed_s,
        "extra": state.extra,
        "config": config,
        "adam_steps": steps,
        "lrs": [group["lr"] for group in optimizer.param_groups],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(metadata)})
    os.replace(tmp, path)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> tuple[TrainState, dict[str, Any]]:
    """Restore model (and optimizer) in place; returns the progress state and the saved config."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads((handle.metadata() or {}).get(_META_KEY, "{}"))
        if not metadata:
            raise ValueError(f"{path} is not an eggnet_ros training checkpoint (no metadata)")
        keys = set(handle.keys())  # safe_open handles are not iterable
        model_state = {k[len("model.") :]: handle.get_tensor(k) for k in keys if k.startswith("model.")}
        _unwrap(model).load_state_dict(model_state)
        if optimizer is not None:
            device = next(_unwrap(model).parameters()).device
            params = [p for group in optimizer.param_groups for p in group["params"]]
            for index, param in enumerate(params):
                slot: dict[str, Any] = {}
                for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                    key = f"optim.{index}.{name}"
                    if key in keys:
                        slot[name] = handle.get_tensor(key).to(device)
                if slot:
                    slot["step"] = torch.tensor(metadata["adam_steps"].get(str(index), 0.0))
                    optimizer.state[param] = slot
            for group, lr in zip(optimizer.param_groups, metadata.get("lrs", []), strict=False):
                group["lr"] = lr
    state = _state_from_metadata(metadata)
    LOGGER.info("resumed %s at iteration %d (%d samples)", path, state.iteration, state.samples_seen)
    return state, dict(metadata.get("config", {}))


def _state_from_metadata(metadata: dict[str, Any]) -> TrainState:
    return TrainState(
        iteration=int(metadata["iteration"]),
        samples_seen=int(metadata["samples_seen"]),
        elapsed_s=float(metadata["elapsed_s"]),
        extra=dict(metadata.get("extra", {})),
    )


def read_checkpoint_state(path: str | os.PathLike[str]) -> TrainState:
    """Progress counters of a checkpoint without building a model (for tools and status checks)."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = json.loads((handle.metadata() or {}).get(_META_KEY, "{}"))
    if not metadata:
        raise ValueError(f"{path} is not an eggnet_ros training checkpoint (no metadata)")
    return _state_from_metadata(metadata)
