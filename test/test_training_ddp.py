"""`torchrun` runs the same training module as DistributedDataParallel (gloo on CPU, NCCL on GPU)
without code changes: two real ranks over a real process group, on tiny sizes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eggnet_ros.training.checkpoint import read_checkpoint_state

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")

TINY = [
    "width=4",
    "patch=32",
    "batch_size=2",
    "num_workers=0",
    "eval_pairs=2",
    "eval_size=64",
    "log_every=2",
    "checkpoint_every=1000",
]


def _torchrun(out: Path, extra: list[str]) -> subprocess.CompletedProcess:
    args = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "eggnet_ros.training.train"]
    for item in [*TINY, f"out_dir={out}", f"export={out / 'ddp.safetensors'}", *extra]:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed next to this python")
def test_torchrun_two_ranks_train_log_and_export_once(tmp_path):
    out = tmp_path / "ddp"
    proc = _torchrun(out, ["iterations=6"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Rank 0 alone prints the summary, writes the loss CSV and exports.
    assert proc.stdout.count('"iterations"') == 1, proc.stdout
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["iterations"] == 6
    assert summary["samples_seen"] == 6 * 2 * 2  # iterations x batch x ranks
    with (out / "loss.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["iteration", "samples", "elapsed_s", "loss", "lr"]
    assert [int(r[0]) for r in rows[1:]] == [2, 4, 6]
    assert [int(r[1]) for r in rows[1:]] == [8, 16, 24]
    assert (out / "ddp.safetensors").is_file() and (out / "ddp.json").is_file()
    assert read_checkpoint_state(out / "checkpoint.safetensors").iteration == 6


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed next to this python")
def test_torchrun_ranks_agree_on_the_wall_clock_budget(tmp_path):
    """Each rank has its own clock: without agreement one rank leaves the loop a step early and
    the other hangs in its next gradient all-reduce (the timeout below would fire)."""
    out = tmp_path / "budget"
    proc = _torchrun(out, ["iterations=100000", "budget_s=4", "eval_pairs=0"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert 0 < summary["iterations"] < 100000
    assert "wall-clock budget" in proc.stderr
    assert read_checkpoint_state(out / "checkpoint.safetensors").iteration == summary["iterations"]
