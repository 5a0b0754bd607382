"""`make demo` end to end at toy size: synth -> live node over DDS -> recorder -> report.

Uses a randomly initialised lite model saved to a temporary safetensors file, so the test runs
before (and independently of) the shipped weights; what it checks is the plumbing, not quality.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from eggnet_ros.bag.io import BagReader
from eggnet_ros.demo import find_model, main


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    import torch

    from eggnet_ros.model import EggNet, EggNetConfig, save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "toy.safetensors"
    save_weights(EggNet(EggNetConfig.lite()), path, {"note": "random init, test only"})
    return path


def test_demo_runs_the_live_node_and_reports(tmp_path: Path, random_weights: Path, monkeypatch,
                                             capsys) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", str(random.SystemRandom().randint(120, 230)))
    code = main(["--out", str(tmp_path), "--model", str(random_weights), "--frames", "3", "--width", "64",
                 "--height", "48", "--rate", "1.0", "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0
    assert "EggNet demo (dds" in out, out
    assert "PSNR  blurred" in out and "wall time" in out
    with BagReader(tmp_path / "recorded_bag") as r:
        assert r.topics["/camera/image_deblurred"].count == 3
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert results["summary"]["frames"] == 3 and results["summary"]["dropped"] == 0
    assert (tmp_path / "report" / "report.md").exists()


def test_missing_model_is_a_clear_message(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("eggnet_ros.demo.REPO_MODELS", tmp_path)  # an empty models/ directory
    with pytest.raises(FileNotFoundError, match=r"no model weights: expected .*eggnet_lite\.safetensors"):
        find_model("eggnet_lite_missing")


def test_cli_synth_then_eval_writes_report_and_output_bag(tmp_path: Path, random_weights: Path,
                                                          capsys) -> None:
    from eggnet_ros.bag.cli import main as bag_main

    bag = tmp_path / "bag"
    assert bag_main(["synth", str(bag), "--storage", "sqlite3", "--frames", "3", "--width", "64",
                     "--height", "48", "--readout-time", "0.01", "--stamp-convention", "start",
                     "--time-offset", "0.003"]) == 0
    assert bag_main(["eval", str(bag), "--out", str(tmp_path / "eval"), "--model", str(random_weights),
                     "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "PSNR" in out and "VO blurred" in out
    with BagReader(tmp_path / "eval" / "deblurred_bag") as r:
        assert r.storage == "sqlite3"
        assert r.topics["/camera/image_deblurred"].count == 3
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "stamp_convention=start taken from the bag" in report  # timing came from the sidecar


def test_auto_model_is_the_gyro_model_the_cpu_node_runs() -> None:
    # `model: auto` once matched no file here and the fallback picked base_deform_lite (no gyro)
    assert find_model("auto").name == "eggnet_lite.safetensors"


def test_fallback_prefers_eggnet_weights_over_ablations(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("eggnet_ros.demo.REPO_MODELS", tmp_path)
    for name in ("base_deform_lite", "base_gtm_lite", "eggnet_full", "eggnet_lite_mine"):
        (tmp_path / f"{name}.safetensors").touch()
    assert find_model("eggnet_lite_missing").name == "eggnet_lite_mine.safetensors"
