"""Which device a run uses, decided without importing torch where no GPU can exist.

``torch.cuda.is_available()`` costs the import of torch (about a second here), which a CPU run
on the compiled engine never needs otherwise. CUDA needs a GPU driver, and a driver shows in
the file system: on Linux, an NVIDIA driver creates ``/proc/driver/nvidia`` and
``/dev/nvidiactl``, WSL2 exposes its GPUs through ``/dev/dxg``, and ROCm (torch's ``cuda``
device on AMD GPUs) through ``/dev/kfd``. Where none of them exists, CUDA is not available and
torch is not asked; everywhere else (a driver present, another operating system, or torch
already loaded) torch decides, as before.
"""

from __future__ import annotations

import os
import sys

from stelab.errors import ConfigError

__all__ = ["DRIVER_PATHS", "cuda_available", "device_type"]

#: paths of which at least one exists on a Linux machine where torch can see a GPU
DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")


def _no_gpu_driver() -> bool:
    """True where no GPU driver can be present (Linux without any of :data:`DRIVER_PATHS`)."""
    return sys.platform.startswith("linux") and not any(map(os.path.exists, DRIVER_PATHS))


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch where no GPU driver exists."""
    if "torch" not in sys.modules and _no_gpu_driver():
        return False
    import torch

    return torch.cuda.is_available()


def device_type(name: str) -> str:
    """The device type (``"cpu"`` or ``"cuda"``) that ``run.device = name`` runs on: ``auto``
    -> cuda when available, else cpu; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        return "cuda" if cuda_available() else "cpu"
    if name == "cuda" and not cuda_available():
        raise ConfigError(
            "run.device: 'cuda' requested but no CUDA device is available; allowed: auto, cpu"
        )
    return name
