"""`bench/bag_models.py` at a toy size: two real rosbag2 recordings, two models, one table.

The script's numbers in the README come from a 40-frame 640×480 run; this rehearses the exact
code path (synth, offline eval through the processing core, results.json, table) in seconds,
and checks that the blurred/sharp rows come from the recordings, not from a model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bag_models.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bag_models", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> list[str]:
    import torch

    from eggnet_ros.model import EggNet, EggNetConfig, save_weights

    paths = []
    for seed, variant in ((0, "eggnet"), (1, "base_deform")):
        torch.manual_seed(seed)
        path = tmp_path_factory.mktemp("model") / f"toy_{variant}.safetensors"
        save_weights(EggNet(EggNetConfig.lite(variant=variant)), path, {"note": "random init, test only"})
        paths.append(str(path))
    return paths


def test_two_recordings_two_models_one_table(bench, two_models: list[str], tmp_path: Path, capsys) -> None:
    argv = ["--frames", "3", "--width", "64", "--height", "48", "--out", str(tmp_path), *two_models]
    assert bench.main(argv) == 0
    table = capsys.readouterr().out
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert [line.split(" | ")[0] for line in lines] == [
        "| model", "| blurred input", "| toy_eggnet", "| toy_base_deform", "| sharp ground truth"]
    assert "shake: PSNR / SSIM" in lines[0] and "pan: VO tracked / inliers" in lines[0]
    # the blurred row is the recording's own input PSNR, whichever model was evaluated
    for case in ("shake", "pan"):
        summaries = [json.loads(p.read_text())["summary"]
                     for p in sorted((tmp_path / "eval").glob(f"{case}_*/results.json"))]
        assert len(summaries) == 2 and summaries[0]["psnr_in"] == summaries[1]["psnr_in"]
        assert f"{summaries[0]['psnr_in']:.2f}" in lines[1]
    # a second run reuses the recordings
    mtime = (tmp_path / "shake_64x48_3").stat().st_mtime_ns
    assert bench.main(argv[:-1]) == 0
    assert (tmp_path / "shake_64x48_3").stat().st_mtime_ns == mtime
