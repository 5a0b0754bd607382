"""eggnet-eval and the classical gyro baseline on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eggnet_ros.data import fixed_test_set
from eggnet_ros.model import EggNet, EggNetConfig, save_weights
from eggnet_ros.training.baselines import deblur_pair_rl
from eggnet_ros.training.evaluate import main as eval_main
from eggnet_ros.training.metrics import psnr


def test_gyro_richardson_lucy_sharpens_a_blurred_pair():
    """With the true motion, RL must beat the blurred input on a clearly blurred pair."""
    pairs = fixed_test_set(n=6, size=128, preset="strong")
    pair = max(pairs, key=lambda p: p.blur_px)
    assert pair.blur_px > 3.0
    restored = deblur_pair_rl(pair, iterations=15)
    assert restored.shape == pair.sharp.shape
    assert psnr(restored, pair.sharp) > psnr(pair.blurred, pair.sharp) + 0.5


@pytest.mark.slow
def test_eval_cli_prints_paper_tables(tmp_path, capsys):
    paths = []
    for variant in ("eggnet", "base_deform", "base_gtm"):
        path = tmp_path / f"{variant}.safetensors"
        save_weights(EggNet(EggNetConfig(variant=variant, width=4)), path, {"metrics": {}})
        paths.append(str(path))
    out = tmp_path / "eval"
    code = eval_main(
        [
            *paths,
            "--n",
            "2",
            "--size",
            "48",
            "--rl-iterations",
            "2",
            "--sweeps",
            "--sweep-n",
            "1",
            "--direction-n",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    for label in (
        "Blurred input",
        "Richardson-Lucy",
        "BaseDeform",
        "BaseGTM",
        "EggNet",
        "MGV noise",
        "Gyro delay",
    ):
        assert label in text
    # Table 2 order: BaseDeform before BaseGTM before EggNet.
    assert text.index("BaseDeform") < text.index("BaseGTM") < text.index("EggNet (w4")
    payload = json.loads((out / "eval.json").read_text())
    assert len(payload["main"]) == 5
    assert len(payload["noise"]["blurred"]) == 4 and len(payload["delay"]["blurred"]) == 6
    assert "BaseDeform" not in " ".join(payload["noise"])  # the no-gyro net is not swept over gyro errors
    # RL reads the delayed gyro, so it belongs in the delay sweep; MGV noise never reaches it.
    assert any("Richardson" in k for k in payload["delay"])
    assert not any("Richardson" in k for k in payload["noise"])
    assert (out / "sweeps.png").stat().st_size > 1000
    ablation = payload["mgv_ablation"]
    assert ablation.pop("columns") == ["true MGVs", "zero MGVs", "another pair's MGVs"]
    assert sorted(k.split(" (")[0] for k in ablation) == ["BaseGTM", "EggNet"]
    assert all(len(v) == 3 and np.isfinite(v).all() for v in ablation.values())
    assert "MGV ablation at test time" in text
    # Blur-direction probe: every model, gains and MGV worth per direction; the no-gyro net's
    # output cannot depend on MGVs, so its "MGVs worth" is exactly zero.
    assert "Blur direction" in text
    direction = payload["direction"]
    assert sorted(k.split(" (")[0] for k in direction) == ["BaseDeform", "BaseGTM", "EggNet"]
    assert all(len(v) == 4 and np.isfinite(v).all() for v in direction.values())
    base_deform = next(v for k, v in direction.items() if k.startswith("BaseDeform"))
    assert base_deform[2] == 0.0 and base_deform[3] == 0.0
    # A network that did not learn anything leaves the input almost unchanged.
    main = {row["name"]: row for row in payload["main"]}
    assert np.isfinite([row["psnr"] for row in main.values()]).all()
    # Table 2's raw case: the same images, so the input scores the same; each pair's own
    # imperfect gyro, so the gyro baseline does not.
    assert "Raw case PSNR" in text
    assert np.isfinite([row["raw_psnr"] for row in main.values()]).all()
    assert main["Blurred input"]["raw_psnr"] == main["Blurred input"]["psnr"]
    rl = next(row for name, row in main.items() if "Richardson" in name)
    assert rl["raw_psnr"] != rl["psnr"]


def test_eval_reuses_scores_only_for_identical_weights(tmp_path, caplog, monkeypatch):
    import logging

    import torch

    path = tmp_path / "eggnet.safetensors"
    save_weights(EggNet(EggNetConfig(variant="eggnet", width=4)), path, {"metrics": {}})
    out = tmp_path / "eval"
    args = [str(path), "--n", "2", "--size", "32", "--rl-iterations", "2", "--out", str(out)]
    caplog.set_level(logging.INFO, logger="eggnet_ros.eval")
    assert eval_main(args) == 0
    first = json.loads((out / "eval.json").read_text())["main"]
    assert "reused" not in caplog.text
    # blurred, RL, model, each on the controlled and the raw case
    assert len(json.loads((out / "score_cache.json").read_text())) == 6

    caplog.clear()
    assert eval_main(args) == 0
    assert "6 main-table score(s) reused" in caplog.text
    assert json.loads((out / "eval.json").read_text())["main"] == first

    # Other weights under the same file name: the sha256 differs, so the model is measured again.
    torch.manual_seed(1)
    save_weights(EggNet(EggNetConfig(variant="eggnet", width=4)), path, {"metrics": {}})
    caplog.clear()
    assert eval_main(args) == 0
    assert "4 main-table score(s) reused" in caplog.text
    assert len(json.loads((out / "score_cache.json").read_text())) == 8
    caplog.clear()
    assert eval_main([*args, "--no-cache"]) == 0
    assert "reused" not in caplog.text

    # Edited scoring code (metrics, baseline, model code) must not reuse the old numbers either.
    from eggnet_ros.training.evaluate import ScoreCache

    assert len(ScoreCache.code_fingerprint()) == 12
    monkeypatch.setattr(ScoreCache, "code_fingerprint", classmethod(lambda cls: "edited-code"))
    caplog.clear()
    assert eval_main(args) == 0
    assert "reused" not in caplog.text
