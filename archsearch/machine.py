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
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_build"] = getattr(torch.version, "git_version", None)
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover
        pass
    return info
