"""Resolve `--device auto|cpu|cuda` to a torch.device."""

from __future__ import annotations

import torch

from satm_cl.errors import SatmError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when available, else CPU; asking for CUDA without it is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SatmError("--device cuda requested but CUDA is not available; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise SatmError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device(name)


def kernels(device: torch.device) -> str:
    """Which compute kernels `device` runs: `cpu:AVX512`, `cpu:AVX2`, ... (the ISA torch dispatches to) or
    `cuda:<GPU name>`. Float results differ between kernels, so same seed gives same bytes only on the same
    kind; artifacts, expert stores and checkpoints record it (provenance, not identity)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{torch.backends.cpu.get_cpu_capability()}"
    return device.type


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 convolutions and matmuls at speed rather than emulating them.

    CUDA: the GPU's own answer. CPU: oneDNN's check (AVX512-core or newer on x86); without it autocast
    bf16 was measured about 7x *slower* than fp32 (docs/performance.md). Unknown devices count as native."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return _cpu_bf16()
    return True


def _cpu_bf16() -> bool:
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return True if check is None else bool(check())


def precision_warning(precision: str, device: torch.device, what: str) -> str | None:
    """A one-line warning when `what` (e.g. "expert training") asks for bf16 on a device that would
    emulate it; None when the setting suits the device. The setting is never switched silently."""
    if precision != "bf16" or native_bf16(device):
        return None
    capability = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else device.type
    return (
        f"warning: {what} runs bf16 forward passes, but this {device.type} has no native bf16 "
        f"({capability}): they are emulated, about 7x slower than fp32 on such a CPU; "
        "--precision fp32 runs in fp32 instead (its own expert store and artifact)"
    )
