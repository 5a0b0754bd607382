"""bench/gpu.py --smoke: the device command's code paths run end to end on CPU.

The GPU run happens rarely and in a short slot, so a typo or an API slip in the benchmark must
show up here instead: the smoke run uses the same configuration list, validation, runners,
table and JSON writers, at toy size on CPU (Triton through its interpreter when installed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu.py"
def _triton_runs_here() -> bool:
    """Triton >= 3.9 (its CPU interpreter works with numpy 2; see test_triton_deform.py)."""
    if importlib.util.find_spec("triton") is None:
        return False
    from importlib.metadata import version

    return tuple(int(v) for v in version("triton").split(".")[:2]) >= (3, 9)


HAS_TRITON = _triton_runs_here()
pytestmark = pytest.mark.slow  # one CPU smoke run of the whole benchmark (~15-25 s CPU)


def _table_rows(md: str, section: int = 0) -> list[dict[str, str]]:
    """Rows of the ``section``-th Markdown table (0 = network table, 1 = per-layer table)."""
    tables, current = [], []
    for ln in [*md.splitlines(), ""]:
        if ln.startswith("|"):
            current.append(ln)
        elif current:
            tables.append(current)
            current = []
    lines = tables[section]
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}, "second line must be the Markdown separator"
    return [dict(zip(header, (v.strip() for v in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[str, dict, str]:
    out = tmp_path_factory.mktemp("bench") / "gpu_bench.md"
    js = out.with_suffix(".json")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2", TRITON_INTERPRET="1")
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--json", str(js)],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    return out.read_text(), json.loads(js.read_text()), res.stdout


def test_table_written_to_file_and_stdout(smoke):
    md, _, stdout = smoke
    assert md.startswith("# EggNet GPU latency")
    assert md.strip() in stdout


def test_rows_for_every_variant_backend_and_mode(smoke):
    md, _, _ = smoke
    rows = _table_rows(md)
    seen = {(r["variant"], r["backend"], r["mode"]) for r in rows}
    for mode in ("fp32", "bf16", "bf16+cl", "bf16+graph", "bf16+compile"):
        assert ("plain", "-", mode) in seen
        for backend in ("triton", "torchvision", "pytorch"):
            assert ("eggnet", backend, mode) in seen
    # Each configuration appears once.
    keys = [(r["model"], r["variant"], r["size"], r["backend"], r["mode"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_timed_rows_have_numbers_and_others_say_why(smoke):
    md, _, _ = smoke
    for r in _table_rows(md):
        if r["status"].startswith("ok"):
            ms = float(r["ms/frame"])
            assert ms > 0 and float(r["p10"]) <= ms <= float(r["p90"])
        else:
            assert r["ms/frame"] == "" and r["status"].split(":")[0] in ("skipped", "error", "n/a")
    timed = {(r["variant"], r["backend"], r["mode"]) for r in _table_rows(md) if r["status"] == "ok"}
    # The pure-PyTorch path and plain convs run everywhere, in fp32 and bf16 autocast.
    assert {("plain", "-", "fp32"), ("plain", "-", "bf16"), ("eggnet", "pytorch", "fp32")} <= timed
    assert ("eggnet", "pytorch", "bf16") in timed
    if HAS_TRITON:
        assert ("eggnet", "triton", "bf16") in timed


def test_json_has_meta_and_same_rows(smoke):
    md, data, _ = smoke
    meta = data["meta"]
    for key in ("device_name", "date", "versions", "budget_s", "backend_checks", "iters"):
        assert key in meta
    assert {"torch", "triton", "torchvision"} <= set(meta["versions"])
    assert meta["backend_checks"]["pytorch"][0] is True
    assert len(data["rows"]) == len(_table_rows(md))
    assert all(set(r["config"]) == {"model", "variant", "size", "backend", "mode"} for r in data["rows"])


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[spec.name]
    return mod


def test_spent_budget_skips_instead_of_running():
    mod = _load_bench()
    s = mod.Settings("cpu", {"16×16": (16, 16)}, {"paper": 4, "lite": 2}, 1, 2, True, deadline=0.0)
    valid = {"triton": (True, ""), "torchvision": (False, "unavailable"), "pytorch": (True, "")}
    for c in mod.build_configs(["16×16"], ["paper"]):
        assert mod.run_config(c, s, valid).status == "skipped: budget"


def test_priority_puts_paper_1024_bf16_fast_backends_first():
    mod = _load_bench()
    configs = mod.build_configs(list(mod.SIZES), list(mod.MODELS))
    first = {(c.model, c.variant, c.size, c.backend, c.mode) for c in configs[:3]}
    assert first == {
        ("paper", "plain", "1024²", "-", "bf16"),
        ("paper", "eggnet", "1024²", "triton", "bf16"),
        ("paper", "eggnet", "1024²", "torchvision", "bf16"),
    }
    assert len(configs) == len(set(configs))


def test_layer_table_compares_backends_with_plain_conv(smoke):
    md, data, _ = smoke
    rows = _table_rows(md, section=1)
    impls = {r["implementation"].split(" ")[0] for r in rows if r["status"] == "ok"}
    assert {"conv2d", "pytorch"} <= impls
    if HAS_TRITON:
        assert "triton" in impls
    assert all(r["× conv"] for r in rows if r["status"] == "ok")
    assert len(data["layers"]) == len(rows)


TRAIN_SCRIPT = ROOT / "bench" / "gpu_train.py"
SESSION_SCRIPT = ROOT / "bench" / "full_gpu_session.sh"


def test_training_step_bench_times_each_backend_and_picks_the_fastest(tmp_path):
    """bench/gpu_train.py --smoke: the rows, the table and the pick the device session relies on."""
    pick, js = tmp_path / "pick.txt", tmp_path / "train_step.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2", TRITON_INTERPRET="1")
    res = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "--smoke", "--pick", str(pick), "--json", str(js)],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    rows = json.loads(js.read_text())["rows"]
    status = {(r["variant"], r["backend"]): r["status"] for r in rows}
    assert set(status) == {("plain", "–"), *(("eggnet", b) for b in ("pytorch", "torchvision", "triton"))}
    assert status[("plain", "–")] == status[("eggnet", "pytorch")] == "ok"
    if HAS_TRITON:
        assert status[("eggnet", "triton")] == "ok"
    timed = [r for r in rows if r["variant"] == "eggnet" and r["status"] == "ok"]
    fastest = min(timed, key=lambda r: r["ms_per_step"])["backend"]
    assert pick.read_text().strip() == fastest
    assert f"picked for training: **{fastest}**" in res.stdout
    table = _table_rows(res.stdout)
    assert len(table) == len(rows) and all(float(r["ms/step"]) > 0 for r in table if r["status"] == "ok")


def test_device_session_script_runs_all_three_stages_on_cpu(tmp_path):
    """SMOKE=1 bench/full_gpu_session.sh: the device command at toy size, so it cannot fail on a typo."""
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, SMOKE="1", OUT=str(out), RUN_DIR=str(tmp_path / "run"), PYTHON=sys.executable,
               OMP_NUM_THREADS="2", TRITON_INTERPRET="1")
    res = subprocess.run(["bash", str(SESSION_SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    log = (out / "logs.txt").read_text()
    assert res.returncode == 0, log[-4000:]
    assert "training exit status 0" in log, log[-4000:]
    for stage in ("1/3 training-step bench", "2/3 training", "3/3 inference bench", "done"):
        assert stage in log
    assert {"eggnet_full.safetensors", "eggnet_full.json", "loss.csv", "train_step.md", "gpu_bench.md",
            "gpu_bench.json", "logs.txt"} <= {p.name for p in out.iterdir()}
    card = json.loads((out / "eggnet_full.json").read_text())
    assert card["metrics"]["test_set"]["n"] == 2 and "psnr" in card["metrics"]
    assert card["config"]["offset_init"] == "motion"  # the GPU config's start (docs/experiments.md)
    assert len(list(out.iterdir())) <= 8  # the device returns at most 8 files


def test_device_session_script_trains_another_config_without_the_benches(tmp_path):
    """CONFIG=... SKIP_BENCH=1: the next session's BaseDeform run (docs/gpu.md), exported by its name."""
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, SMOKE="1", SKIP_BENCH="1", OUT=str(out), RUN_DIR=str(tmp_path / "run"),
               CONFIG="config/train/base_deform_full_gpu.json", PYTHON=sys.executable, OMP_NUM_THREADS="2")
    res = subprocess.run(["bash", str(SESSION_SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    log = (out / "logs.txt").read_text()
    assert res.returncode == 0 and "training exit status 0" in log, log[-4000:]
    assert {p.name for p in out.iterdir()} == {"base_deform_full.safetensors", "base_deform_full.json",
                                               "loss.csv", "logs.txt"}
    assert json.loads((out / "base_deform_full.json").read_text())["config"]["variant"] == "base_deform"
