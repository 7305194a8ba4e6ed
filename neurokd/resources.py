"""Memory guard: refuse work that cannot fit before it starts, with the estimate in the message."""

from __future__ import annotations

import os

from neurokd.errors import NeurokdError

#: Fraction of the currently available memory one allocation may take.
HEADROOM = 0.8


def available_bytes() -> int:
    """Memory available to this process now (``MemAvailable`` on Linux, else physical pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not block


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def ensure_fits(bytes_needed: int | float, what: str, hint: str = "") -> None:
    """Raise NeurokdError if ``bytes_needed`` exceeds :data:`HEADROOM` of the available memory.

    ``what`` names the work (e.g. ``"CIFAR-10 train split as float32"``); ``hint`` says what to do.
    The limit can be lowered for tests with the environment variable ``NEUROKD_MEMORY_LIMIT`` (bytes).
    """
    limit = available_bytes()
    env = os.environ.get("NEUROKD_MEMORY_LIMIT")
    if env:
        limit = min(limit, int(env))
    allowed = HEADROOM * limit
    if bytes_needed > allowed:
        tail = f"; {hint}" if hint else ""
        raise NeurokdError(
            f"{what} needs about {_human(bytes_needed)} but only {_human(allowed)} of memory is available "
            f"({_human(limit)} free, {int(HEADROOM * 100)} % usable){tail}"
        )
