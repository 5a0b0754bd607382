"""Parameter table vs config.py, config/deblur.yaml, README and the launch file (no DDS needed)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rcl_interfaces")

from rcl_interfaces.msg import ParameterType

from eggnet_ros.config import NodeConfig
from eggnet_ros.ros.params import BY_NAME, NODE_NAME, PARAMETERS, ParameterError, build_config

ROOT = Path(__file__).resolve().parents[1]


def test_yaml_defaults_equal_the_config_dataclasses() -> None:
    doc = yaml.safe_load((ROOT / "config" / "deblur.yaml").read_text())
    values = doc[NODE_NAME]["ros__parameters"]
    assert set(values) == set(BY_NAME)
    assert build_config(values) == NodeConfig()


def test_every_parameter_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Parameters"):]
    section = section[:section.index("\n## ", 5)]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert documented == set(BY_NAME)


def test_descriptors_carry_descriptions_and_ranges() -> None:
    for spec in PARAMETERS:
        d = spec.descriptor()
        assert d.name == spec.name and len(d.description) > 20
        if spec.lo is not None and d.type == ParameterType.PARAMETER_DOUBLE:
            assert d.floating_point_range[0].from_value == spec.lo
        if spec.lo is not None and d.type == ParameterType.PARAMETER_INTEGER:
            assert d.integer_range[0].to_value == spec.hi
    assert BY_NAME["model"].descriptor().read_only and not BY_NAME["fallback"].descriptor().read_only


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"exposure_time": 0.0}, ["exposure_time", ">="]),
        ({"fallback": "ignore"}, ["fallback", "passthrough"]),
        ({"device": "tpu"}, ["device"]),
        ({"n_samples": 12}, ["n_samples", "odd"]),
        ({"queue_size": 0}, ["queue_size"]),
        ({"max_wait": float("nan")}, ["max_wait", "finite"]),
        ({"rotation_cam_imu": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0]}, ["rotation", "det"]),
        ({"rotation_cam_imu": [1.0, 0.0, 0.0]}, ["9 elements"]),
        ({"min_blur_px": "big"}, ["min_blur_px", "float"]),
        ({"imu_buffer_seconds": 0.1, "exposure_time": 0.2}, ["imu_buffer_seconds"]),
        ({"fallback": "x", "queue_size": 0}, ["fallback", "queue_size"]),  # all reported at once
    ],
)
def test_invalid_values_are_rejected_with_reason(values: dict, words: list[str]) -> None:
    with pytest.raises(ParameterError) as err:
        build_config(values)
    for w in words:
        assert w in str(err.value)


def test_integers_are_accepted_for_doubles() -> None:
    cfg = build_config({"max_wait": 1, "rotation_cam_imu": [0, -1, 0, 1, 0, 0, 0, 0, 1]})
    assert cfg.max_wait == 1.0 and isinstance(cfg.max_wait, float)
    assert cfg.processor.motion.rotation_cam_imu == (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


def test_launch_file_parses_and_exposes_the_arguments() -> None:
    src = (ROOT / "launch" / "deblur.launch.py").read_text()
    tree = ast.parse(src)
    compile(tree, "deblur.launch.py", "exec")
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert {"namespace", "params_file", "image", "camera_info", "imu", "device"} <= declared
    assert '"eggnet_deblur_node"' in src and f'name="{NODE_NAME}"' in src
