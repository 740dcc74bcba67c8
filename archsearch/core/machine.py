"""What a result was computed on: recorded beside every benchmark figure and experiment report.

CPU training is deterministic for a seed only on one machine and software stack (the same cell
differed by up to 3 points across two machines), so a result without its torch build and thread
count cannot be reproduced or compared.
"""
from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from typing import Any

__all__ = ["machine"]


def machine() -> dict[str, Any]:
    """Python, platform, processor, cores, date, and torch's version, build, threads and GPU."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_build"] = getattr(torch.version, "git_version", None)
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
        # the instruction set torch's CPU kernels dispatch to (AVX2, AVX512, ...): the reason two
        # machines' CPU results can differ in the last bits for the same seed and threads
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:  # pragma: no cover
        pass
    return info


def _cpu_model() -> str | None:
    """The processor's marketing name (``/proc/cpuinfo`` on Linux; ``platform`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None
