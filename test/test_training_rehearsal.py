"""CPU rehearsal of the exact GPU training command (issue 12), so the one device run cannot
fail on a typo: same module, same config file, only the sizes shrunk by `--set` overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eggnet_ros.model import load_model

ROOT = Path(__file__).resolve().parents[1]
GPU_CONFIG = ROOT / "config" / "train" / "eggnet_full_gpu.json"

TINY = [
    "width=4",
    "patch=32",
    "batch_size=2",
    "num_workers=0",
    "iterations=20",
    "budget_s=30",
    "eval_pairs=2",
    "eval_size=64",
    "log_every=5",
    "checkpoint_every=10",
    "init_from=none",  # the config continues from the shipped width-64 model; the rehearsal is width 4
]


def _run(out: Path, extra: list[str]) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "eggnet_ros.training.train", "--config", str(GPU_CONFIG)]
    for item in [*TINY, f"out_dir={out}", f"export={out / 'eggnet_full.safetensors'}", *extra]:
        args += [item] if item.startswith("--") else ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_gpu_training_command_rehearsal_on_cpu(tmp_path):
    out = tmp_path / "OUT"
    proc = _run(out, [])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert 0 < summary["iterations"] <= 20
    assert summary["samples_seen"] == 2 * summary["iterations"]
    assert "samples/s" in proc.stderr  # throughput line printed early, so a slow setup is visible
    # Deliverables of the device run: fp16 weights + card + loss curve, each far below 16 MB.
    weights, card = out / "eggnet_full.safetensors", out / "eggnet_full.json"
    for path in (weights, card, out / "loss.csv"):
        assert path.is_file() and path.stat().st_size < 16 * 2**20
    card_data = json.loads(card.read_text())
    assert card_data["extra"]["training"]["iterations"] == summary["iterations"]
    assert "psnr" in card_data["metrics"]
    net, _ = load_model(weights)
    assert net.config.width == 4

    # A later round initialises from the exported weights ("later rounds add up").
    proc2 = _run(tmp_path / "OUT2", [f"init_from={weights}", "iterations=3"])
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert "initialised from" in proc2.stderr


@pytest.mark.slow
def test_training_resumes_from_checkpoint(tmp_path):
    out = tmp_path / "run"
    first = _run(out, ["iterations=4", "eval_pairs=0"])
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run(out, ["iterations=6", "eval_pairs=0"])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed" in second.stderr
    summary = json.loads(second.stdout[second.stdout.index("{") :])
    assert summary["iterations"] == 6 and summary["samples_seen"] == 12


@pytest.mark.slow
def test_export_checkpoint_evaluates_and_exports_a_mid_schedule_run(tmp_path):
    """`--export-checkpoint`: the current checkpoint -> weights + card, the run left resumable."""
    out = tmp_path / "run"
    stopped = _run(
        out, ["iterations=10", "max_steps_this_run=3", "eval_pairs=0", f"export={out / 'x.safetensors'}"]
    )
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert not (out / "eggnet_full.safetensors").exists()
    ckpt = (out / "checkpoint.safetensors").read_bytes()
    exported = _run(out, ["iterations=10", "--export-checkpoint"])
    assert exported.returncode == 0, exported.stderr[-3000:]
    card = json.loads((out / "eggnet_full.json").read_text())
    training = card["extra"]["training"]
    assert training["iterations"] == 3 and training["schedule_iterations"] == 10
    assert "psnr" in card["metrics"] and "gain_db" in card["metrics"]
    assert (out / "checkpoint.safetensors").read_bytes() == ckpt  # only read
    net, _ = load_model(out / "eggnet_full.safetensors")
    assert net.config.width == 4


TRAIN_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "config" / "train").glob("*.json"))


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_training_config_loads_and_builds_its_network(path: Path) -> None:
    """A typo in a config would otherwise surface minutes into a device session."""
    from eggnet_ros.training.train import build_model, load_config

    config = load_config(str(path), [])
    model, model_config = build_model(config)
    assert model_config.variant == config.variant and model.config.width == config.width
    if config.export:  # cards and files are found by name
        assert Path(config.export).stem == config.name
    if config.width == 64:  # the GPU configs continue from the shipped weights of their own name
        assert config.init_from == f"models/{config.name}.safetensors"


def test_init_from_weights_of_another_shape_is_a_clear_error(tmp_path):
    import torch

    from eggnet_ros.model import EggNet, EggNetConfig, save_weights
    from eggnet_ros.training.train import load_config, train

    released = tmp_path / "released.safetensors"
    torch.manual_seed(0)
    save_weights(EggNet(EggNetConfig.lite(width=4)), released, {})
    config = load_config(str(GPU_CONFIG), [*TINY, f"out_dir={tmp_path / 'run'}", f"init_from={released}",
                                           "width=8"])
    with pytest.raises(ValueError, match=r"does not fit this configuration \(width 4 there, 8 here\)"):
        train(config)
