"""The architecture's import rules, checked on the source (not by convention).

Geometry must run without torch or ROS; model/data/training must run on GPU machines without
ROS. A stray import breaks those machines, so it is a test failure here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "eggnet_ros"

FORBIDDEN = {
    "motion": {"torch", "rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "torchvision"},
    "model": {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs"},
    "data": {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs"},
    "training": {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs"},
    "core": {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs"},
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("subpackage", sorted(FORBIDDEN))
def test_subpackage_respects_import_rules(subpackage: str) -> None:
    folder = PKG / subpackage
    if not folder.exists():
        pytest.skip(f"eggnet_ros.{subpackage} not present yet")
    offenders = {
        str(path.relative_to(PKG)): sorted(_imported_roots(path) & FORBIDDEN[subpackage])
        for path in folder.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"forbidden imports in eggnet_ros.{subpackage}: {offenders}"


def test_config_is_dependency_free() -> None:
    assert _imported_roots(PKG / "config.py") <= {"__future__", "dataclasses", "typing"}
