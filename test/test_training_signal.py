"""SIGTERM stops `eggnet-train` with a checkpoint at the exact step, and resuming does not log twice."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eggnet_ros.training.checkpoint import read_checkpoint_state

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "width=4", "patch=32", "batch_size=2", "num_workers=0", "iterations=100000", "eval_pairs=0",
    "log_every=1", "checkpoint_every=100000", "checkpoint_every_s=100000",
]


def _command(out: Path, extra: list[str]) -> list[str]:
    args = [sys.executable, "-m", "eggnet_ros.training.train", "--config",
            str(ROOT / "config" / "train" / "eggnet_lite.json")]
    for item in [*TINY, f"out_dir={out}", f"export={out / 'm.safetensors'}", *extra]:
        args += ["--set", item]
    return args


def _iterations_logged(csv_path: Path) -> list[int]:
    with csv_path.open(newline="") as f:
        return [int(r[0]) for r in list(csv.reader(f))[1:] if r]


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_step_and_resume_continues_the_log(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    csv_path = tmp_path / "loss.csv"
    proc = subprocess.Popen(_command(tmp_path, []), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not csv_path.exists() or len(_iterations_logged(csv_path)) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    assert "stopped by signal" in stderr
    assert not (tmp_path / "m.safetensors").exists()  # interrupted: no evaluation/export
    stopped_at = read_checkpoint_state(tmp_path / "checkpoint.safetensors").iteration
    logged = _iterations_logged(csv_path)
    assert stopped_at >= 3 and logged[-1] == stopped_at  # no step lost between log and checkpoint

    # Pretend the log ran ahead of the checkpoint (a hard kill between the two writes).
    with csv_path.open("a", newline="") as f:
        csv.writer(f).writerow([stopped_at + 1, 0, 0.0, 0.1, 3e-4])
    resumed = subprocess.run(_command(tmp_path, ["max_steps_this_run=2"]), cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    logged = _iterations_logged(csv_path)
    assert logged == sorted(set(logged)) and logged[-1] == stopped_at + 2
