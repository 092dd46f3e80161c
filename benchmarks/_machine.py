"""Memory and machine readings shared by the benchmark scripts (Linux /proc, with portable fallbacks)."""

from __future__ import annotations

import contextlib
import platform
import resource
from pathlib import Path


def status_mib(field: str) -> float | None:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in MiB, None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux `clear_refs` 5) so the next reading covers only what follows."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def maxrss_mib() -> float:
    """Peak RSS of this process since it started (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mib() -> float:
    """Peak RSS since the last `reset_peak_rss` (VmHWM), else since the process started."""
    peak = status_mib("VmHWM")
    return peak if peak is not None else maxrss_mib()


def cpu_name() -> str:
    """The CPU model, for the machine line of every benchmark table."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
