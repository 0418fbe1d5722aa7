import pytest
import torch

from mien.errors import ConfigError
from mien.train import hardware


def test_auto_precision_follows_cpu_bf16_units(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert hardware.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert hardware.resolve_precision("auto", cpu) == "fp32"
    assert hardware.resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert hardware.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ConfigError, match="fp16"):
        hardware.resolve_precision("fp16", cpu)


def test_native_bf16_needs_amx_or_avx512_bf16_flags(monkeypatch):
    hardware._cpuinfo.cache_clear()
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: ("AMD EPYC", frozenset({"avx2", "fma"})))
    assert not hardware.cpu_has_native_bf16()
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: ("Intel Xeon", frozenset({"avx2", "amx_bf16", "amx_tile"})))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert hardware.cpu_has_native_bf16()


def test_device_resolution():
    assert hardware.resolve_device("cpu").type == "cpu"
    assert hardware.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            hardware.resolve_device("cuda")


def test_describe_hardware_names_the_cpu():
    info = hardware.describe_hardware(torch.device("cpu"), "fp32")
    assert info["cpu_model"] and info["precision"] == "fp32" and info["device"] == "cpu"


def test_autocast_is_a_noop_for_fp32():
    with hardware.autocast(torch.device("cpu"), "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with hardware.autocast(torch.device("cpu"), "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
