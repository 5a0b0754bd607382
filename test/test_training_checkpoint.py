"""Training plumbing: config overrides, the scaled paper schedule, safetensors checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from eggnet_ros.model import EggNet, EggNetConfig
from eggnet_ros.training.checkpoint import TrainState, load_checkpoint, save_checkpoint
from eggnet_ros.training.train import TrainConfig, learning_rate, load_config


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"width": 8, "variant": "base_gtm", "budget_s": 30}))
    config = load_config(str(path), ["lr=0.001", "num_workers=0", "resume=false", "budget_s=none"])
    assert (config.width, config.variant, config.lr, config.num_workers) == (8, "base_gtm", 0.001, 0)
    assert config.resume is False and config.budget_s is None
    with pytest.raises(ValueError, match="unknown training option"):
        load_config(None, ["widht=3"])
    path.write_text(json.dumps({"bogus": 1}))
    with pytest.raises(ValueError, match="unknown training options"):
        load_config(str(path), [])


def test_schedule_halves_at_midpoint_of_iterations_or_budget():
    config = TrainConfig(lr=1e-3, iterations=1000)
    assert learning_rate(config, 0, 0.0) == pytest.approx(1e-3)
    assert learning_rate(config, 499, 0.0) == pytest.approx(1e-3)
    assert learning_rate(config, 501, 0.0) == pytest.approx(5e-4)
    assert learning_rate(config, 1000, 0.0) == pytest.approx(5e-5)  # cosine tail ends at 10 %
    timed = TrainConfig(lr=1e-3, iterations=10**9, budget_s=100.0)
    assert learning_rate(timed, 10, 49.0) == pytest.approx(1e-3)
    assert learning_rate(timed, 10, 51.0) == pytest.approx(5e-4)


def _tiny_net() -> EggNet:
    return EggNet(EggNetConfig(width=4))


def test_checkpoint_round_trip_restores_model_and_adam(tmp_path):
    torch.manual_seed(0)
    net = _tiny_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, mgv = torch.rand(1, 3, 16, 16), torch.randn(1, 6, 16, 16)
    for _ in range(3):
        opt.zero_grad()
        net(x, mgv).abs().mean().backward()
        opt.step()
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, net, opt, TrainState(iteration=3, samples_seen=12, elapsed_s=1.5), {"width": 4})

    clone = _tiny_net()
    clone_opt = torch.optim.Adam(clone.parameters(), lr=1.0)
    state, config = load_checkpoint(path, clone, clone_opt)
    assert (state.iteration, state.samples_seen, config) == (3, 12, {"width": 4})
    for a, b in zip(net.state_dict().values(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert clone_opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    # One more identical step from both must give identical weights (Adam moments restored).
    for model, optim in ((net, opt), (clone, clone_opt)):
        optim.zero_grad()
        model(x, mgv).abs().mean().backward()
        optim.step()
    for a, b in zip(net.parameters(), clone.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7)


def test_checkpoint_rejects_foreign_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not an eggnet_ros training checkpoint"):
        load_checkpoint(path, _tiny_net())


def test_mgv_corruption_share_reaches_the_training_stream():
    from eggnet_ros.data import SynthConfig
    from eggnet_ros.training.train import DistInfo, build_loader

    default = build_loader(TrainConfig(patch=32, num_workers=0), 0, DistInfo()).dataset
    assert default.synth.corrupt_prob == SynthConfig().corrupt_prob == 0.5
    clean = build_loader(TrainConfig(patch=32, num_workers=0, mgv_corrupt_prob=0.0), 0, DistInfo()).dataset
    always = build_loader(TrainConfig(patch=32, num_workers=0, mgv_corrupt_prob=1.0), 0, DistInfo()).dataset
    assert not any(clean.pair(i).info["corrupted"] for i in range(4))
    assert all(always.pair(i).info["corrupted"] for i in range(4))
    assert load_config(None, ["mgv_corrupt_prob=0.25"]).mgv_corrupt_prob == 0.25
