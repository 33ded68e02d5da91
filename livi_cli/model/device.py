"""Device and precision choice: auto picks CUDA, then Apple MPS, then CPU.

CUDA runs fp16 autocast; CPU offers fp32 and bf16 and picks bf16 only where the CPU has native
bf16 instructions (AVX512-BF16 / AMX on x86, FEAT_BF16 on Arm), since emulated bf16 is slower than fp32.
"""
from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
from functools import lru_cache

from livi_cli.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICE_TYPES = ("auto", "cpu", "cuda", "mps")


def check_names(device: str, precision: str) -> None:
    """Validate the spelling of --device/--precision without importing torch (fast fail)."""
    if (device or "auto").lower().split(":")[0] not in DEVICE_TYPES:
        raise ConfigError(f"--device: unknown device '{device}' (use auto, cpu, cuda, cuda:N or mps)")
    if (precision or "auto").lower() not in PRECISIONS:
        raise ConfigError(f"--precision: unknown value '{precision}' (use {', '.join(PRECISIONS)})")


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith(("flags", "Features")):
                        flags = set(line.split(":", 1)[1].split())
                        return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
        except OSError:
            return False
    if sys.platform == "darwin" and platform.machine() == "arm64":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True, timeout=2)
            return out.stdout.strip() == "1"
        except (OSError, subprocess.SubprocessError):
            return False
    return False


def resolve_device(name: str = "auto"):
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device: unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        # Caught here: torch would only fail at the first .to(device), in the middle of a scan.
        n = torch.cuda.device_count()
        plural = "s" if n != 1 else ""
        raise ConfigError(f"--device {name}: this machine has {n} CUDA device{plural} (cuda:0 to cuda:{n - 1})")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"--device {name}: Apple MPS is not available on this machine")
    return device


def resolve_precision(precision: str, device) -> str:
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: unknown value '{precision}' (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        if device.type in ("cuda", "mps"):
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if device.type == "cpu" and precision == "fp16":
        raise ConfigError("--precision fp16 needs a GPU; on CPU use fp32 or bf16")
    return precision


def autocast(device, precision: str):
    """Mixed-precision context for the encoder (weights stay fp32; matmuls run in the low dtype)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)
