"""Start-up of the ``eggnet_deblur_node`` console script: clear errors + exit 1, or a clean run.

Run as real subprocesses (what a user or launch does), all started together to keep the file
short on 2 cores.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eggnet_ros.model import EggNet, EggNetConfig, save_weights

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "eggnet_deblur_node"


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    if not SCRIPT.exists():
        pytest.skip("console script not installed (pip install -e .)")
    e = dict(os.environ, ROS_DOMAIN_ID=str(random.randint(1, 200)), OMP_NUM_THREADS="1",
             RCUTILS_LOGGING_BUFFERED_STREAM="0")
    return e


def _start(env: dict[str, str], *ros_args: str) -> subprocess.Popen:
    return subprocess.Popen([str(SCRIPT), "--ros-args", *ros_args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_bad_configurations_exit_nonzero_with_reason(env, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.safetensors"
    save_weights(EggNet(EggNetConfig.lite(width=4)), corrupt, {})
    corrupt.write_bytes(b"not a safetensors file")
    cases = {
        "missing model": (["-p", f"model:={tmp_path / 'missing'}"], "not found"),
        "corrupt model": (["-p", f"model:={corrupt}"], "sha256"),
        # All bad parameters are reported together, each with its name.
        "bad parameters": (["-p", "fallback:=bogus", "-p", "exposure_time:=-0.01",
                            "-p", "rotation_cam_imu:=[1.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,2.0]"],
                           ("fallback", "exposure_time", "rotation_cam_imu")),
    }
    if not torch.cuda.is_available():
        cuda_args = ["-p", f"model:={corrupt}", "-p", "device:=cuda", "-p", "require_cuda:=true"]
        cases["cuda required"] = (cuda_args, "CUDA")
    procs = {name: _start(env, *args) for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 1, f"{name}: exit {proc.returncode}\n{out}"
        expected = cases[name][1]
        for word in (expected,) if isinstance(expected, str) else expected:
            assert "cannot start" in out and word in out, f"{name}:\n{out}"
        assert "Traceback" not in out


def test_params_file_starts_and_stops_cleanly(env, tmp_path) -> None:
    model = tmp_path / "tiny.safetensors"
    save_weights(EggNet(EggNetConfig.lite(width=4)), model, {})
    proc = _start(env, "--params-file", str(ROOT / "config" / "deblur.yaml"), "-p", f"model:={model}",
                  "-r", "image_raw:=/cam/image_raw", "-r", "__ns:=/cam")
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "started:" in line:
            break
    assert any("started:" in ln for ln in lines), "".join(lines)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, "".join(lines) + out
    assert "Traceback" not in out


def _read_until(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            break
    return lines


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (Linux /proc): Python installs none by default,
    so this tells when the node's stop handlers are in place."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def test_stop_signals_at_any_moment_exit_cleanly(env, tmp_path) -> None:
    """SIGINT during the imports and while the node is being built, SIGTERM right after start-up
    followed by more signals during teardown: always exit status 0 and no traceback (rclpy's
    default handling raised KeyboardInterrupt inside whatever code ran, e.g. Executor.__init__,
    and shut the context down under a node being built)."""
    model = tmp_path / "tiny.safetensors"
    save_weights(EggNet(EggNetConfig.lite(width=4)), model, {})
    args = ["--params-file", str(ROOT / "config" / "deblur.yaml"), "-p", f"model:={model}"]
    # the console script's entry point, run as a module: handlers installed before the imports
    entry = [sys.executable, "-m", "eggnet_ros.ros.entry", "--ros-args", *args]
    procs = {
        "during imports": subprocess.Popen(entry, env=env, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT),
        "while building the node": _start(env, *args),
        "SIGTERM after start, SIGINTs during teardown": _start(env, *args),
    }
    early = procs["during imports"]
    deadline = time.monotonic() + 60
    while not _catches_sigterm(early.pid) and early.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    early.send_signal(signal.SIGINT)
    lines = {name: [] for name in procs}
    lines["while building the node"] = _read_until(procs["while building the node"], "loaded")
    procs["while building the node"].send_signal(signal.SIGINT)
    name = "SIGTERM after start, SIGINTs during teardown"
    lines[name] = _read_until(procs[name], "started:")
    assert any("started:" in ln for ln in lines[name]), "".join(lines[name])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGINT, signal.SIGINT):
        if procs[name].poll() is None:
            procs[name].send_signal(sig)
        time.sleep(0.03)
    for name, proc in procs.items():
        out = "".join(lines[name]) + proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{out}"
        assert "Traceback" not in out and "Exception" not in out, f"{name}:\n{out}"
