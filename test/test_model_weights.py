"""Weights + model card: round trip, and every kind of bad file is rejected with WeightsError."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
import torch

from eggnet_ros.model import EggNet, EggNetConfig, WeightsError, load_model, read_card, save_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _net(variant: str = "eggnet", mode: str = "rgb") -> EggNet:
    torch.manual_seed(0)
    return EggNet(EggNetConfig.paper(variant=variant, input_mode=mode, width=4))


def _inputs(c: int = 3):
    g = torch.Generator().manual_seed(3)
    return torch.rand(1, c, 12, 20, generator=g), torch.randn(1, 6, 12, 20, generator=g)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "net.safetensors"
    save_weights(_net(), path, {"training_data": "synthetic test", "metrics": {"psnr": 30.5}, "note": "x"})
    return path


def _edit_card(path: Path, **changes) -> None:
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    for key, value in changes.items():
        if key.startswith("config."):
            card["config"][key.split(".", 1)[1]] = value
        else:
            card[key] = value
    card_path.write_text(json.dumps(card))


@pytest.mark.parametrize("half", [False, True])
def test_round_trip_and_card_contents(tmp_path: Path, half: bool) -> None:
    net = _net().eval()
    path = tmp_path / "w.safetensors"
    save_weights(net, path, {"training_data": {"set": "synthetic"}, "metrics": {"psnr": 31.0}}, half=half)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert card["param_count"] == sum(p.numel() for p in net.parameters())
    assert card["dtype"] == ("float16" if half else "float32")
    assert card["input_mode"] == "rgb" and card["config"]["width"] == 4
    assert card["training_data"] == {"set": "synthetic"} and card["metrics"] == {"psnr": 31.0}
    # safetensors layout (8-byte little-endian header length + JSON header), not a pickle
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert header["enc1_conv.0.weight"]["dtype"] == ("F16" if half else "F32")

    loaded, lcard = load_model(path, expected_input_mode="rgb")
    assert not loaded.training and lcard.config == net.config
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    image, mgv = _inputs()
    with torch.no_grad():
        want, got = net(image, mgv), loaded(image, mgv)
    torch.testing.assert_close(got, want, atol=5e-3 if half else 0, rtol=5e-3 if half else 0)


def test_card_path_or_json_path_both_load(saved: Path) -> None:
    model_a, _ = load_model(saved)
    model_b, card = load_model(saved.with_suffix(".json"))
    assert card.extra == {"note": "x"}
    assert read_card(saved).sha256 == card.sha256
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_missing_weights_file(saved: Path) -> None:
    saved.unlink()
    with pytest.raises(WeightsError, match="not found"):
        load_model(saved)


def test_missing_card(saved: Path) -> None:
    saved.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match=r"card .* not found"):
        load_model(saved)


def test_invalid_json_card(saved: Path) -> None:
    saved.with_suffix(".json").write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        load_model(saved)


def test_truncated_file_fails_sha(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="sha256"):
        load_model(saved)


def test_truncated_file_with_matching_sha_fails_parse(saved: Path) -> None:
    blob = saved.read_bytes()[:-100]
    saved.write_bytes(blob)
    _edit_card(saved, sha256=hashlib.sha256(blob).hexdigest())
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_model(saved)


def test_corrupt_header_with_matching_sha_fails_parse(saved: Path) -> None:
    blob = bytearray(saved.read_bytes())
    blob[8:16] = b"garbage!"
    saved.write_bytes(bytes(blob))
    _edit_card(saved, sha256=hashlib.sha256(bytes(blob)).hexdigest())
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_model(saved)


def test_flipped_byte_fails_sha(saved: Path) -> None:
    blob = bytearray(saved.read_bytes())
    blob[-5] ^= 0xFF
    saved.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="sha256"):
        load_model(saved)


def test_shape_mismatch(saved: Path) -> None:
    _edit_card(saved, **{"config.width": 8})
    with pytest.raises(WeightsError, match="shape"):
        load_model(saved)


def test_config_variant_mismatch(saved: Path) -> None:
    _edit_card(saved, **{"config.variant": "base_deform"})
    with pytest.raises(WeightsError, match="do not match the card's architecture"):
        load_model(saved)


def test_unknown_config_key(saved: Path) -> None:
    _edit_card(saved, **{"config.depth": 3})
    with pytest.raises(WeightsError, match="invalid config"):
        load_model(saved)


def test_param_count_and_dtype_mismatch(saved: Path) -> None:
    _edit_card(saved, param_count=123)
    with pytest.raises(WeightsError, match="param_count"):
        load_model(saved)
    _edit_card(saved, param_count=_net().num_parameters(), dtype="float32")
    with pytest.raises(WeightsError, match="the card says float32"):
        load_model(saved)


def test_wrong_input_mode(tmp_path: Path) -> None:
    path = tmp_path / "bayer.safetensors"
    save_weights(_net(mode="bayer"), path, {})
    with pytest.raises(WeightsError, match="'bayer' input, not 'rgb'"):
        load_model(path, expected_input_mode="rgb")
    model, card = load_model(path, expected_input_mode="bayer")
    assert card.input_mode == "bayer" and model.config.in_channels == 4
    _edit_card(path, input_mode="mono")
    with pytest.raises(WeightsError, match="contradicts"):
        load_model(path)


def test_unknown_model_name() -> None:
    with pytest.raises(WeightsError, match="no model named"):
        load_model("definitely_not_a_shipped_model")


def test_fp16_overflow_refused(tmp_path: Path) -> None:
    net = _net()
    with torch.no_grad():
        net.out_conv.bias.fill_(1e6)
    with pytest.raises(ValueError, match="overflows float16"):
        save_weights(net, tmp_path / "big.safetensors", {}, half=True)


def test_nan_weights_rejected(tmp_path: Path) -> None:
    net = _net()
    with torch.no_grad():
        net.enc1_res.conv1.weight[0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save_weights(net, path, {}, half=False)
    with pytest.raises(WeightsError, match="NaN"):
        load_model(path)


def test_wrapped_model_saves_unwrapped_names(tmp_path: Path) -> None:
    class Wrapper(torch.nn.Module):  # what DistributedDataParallel looks like to save_weights
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.module = inner

    path = tmp_path / "wrapped.safetensors"
    save_weights(Wrapper(_net()), path, {})
    model, _ = load_model(path)
    assert isinstance(model, EggNet)
    with pytest.raises(TypeError, match="expects an EggNet"):
        save_weights(torch.nn.Linear(2, 2), tmp_path / "lin.safetensors", {})


def test_card_records_auto_backend_whatever_the_training_machine_used(tmp_path: Path) -> None:
    """A GPU run trains with backend 'pytorch'; a CPU or another GPU must not inherit that choice."""
    net = EggNet(EggNetConfig.lite(width=4, deform_backend="pytorch"))
    save_weights(net, tmp_path / "m.safetensors", {})
    card = read_card(tmp_path / "m.safetensors")
    assert card.config.deform_backend == "auto"
    assert net.config.deform_backend == "pytorch"  # the live model keeps its own setting
    model, _ = load_model(tmp_path / "m.safetensors", backend="pytorch")
    assert model.config.deform_backend == "pytorch"
