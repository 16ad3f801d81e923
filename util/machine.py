"""What machine a measurement ran on, for the benchmark reports (scripts/benchmark.py, scripts/shapes_benchmark.py)."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

__all__ = ["cpu_model_name"]


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else what ``platform`` knows, else "unknown"."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
