"""Measurement helpers shared by the CPU suite and the GPU script: repeated timings, medians with
spread, paired ratios of variants measured side by side, and process memory.

Nothing here asserts a speed: the suite reports numbers and ratios, the reader judges them.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Samples",
    "current_rss_bytes",
    "interleaved",
    "paired_ratio",
    "peak_rss_bytes",
    "percentile",
    "timed",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside 0..100.
    """
    if not values:
        msg = "percentile() needs at least one value."
        raise ValueError(msg)
    if not 0 <= q <= 100:
        msg = f"q must be within 0..100, got {q}."
        raise ValueError(msg)
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Samples:
    """Repeated measurements of one quantity (seconds unless said otherwise)."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        """Record one measurement."""
        self.values.append(float(value))

    @property
    def median(self) -> float:
        """Median of the measurements."""
        return statistics.median(self.values)

    def summary(self, scale: float = 1.0) -> dict[str, float | int]:
        """Median, p5/p95, min, max and count, each multiplied by ``scale`` (e.g. 1000 for ms)."""
        return {
            "median": self.median * scale,
            "p5": percentile(self.values, 5) * scale,
            "p95": percentile(self.values, 95) * scale,
            "min": min(self.values) * scale,
            "max": max(self.values) * scale,
            "n": len(self.values),
        }


def timed(function: Callable[[], Any], synchronize: Callable[[], None] | None = None) -> tuple[float, Any]:
    """Run ``function`` once; return ``(seconds, result)`` (``synchronize`` runs before both clocks,
    e.g. ``torch.cuda.synchronize``)."""
    if synchronize is not None:
        synchronize()
    start = time.perf_counter()
    result = function()
    if synchronize is not None:
        synchronize()
    return time.perf_counter() - start, result


def interleaved(
    variants: dict[str, Callable[[int], Any]],
    repeats: int,
    *,
    check: Callable[[str, Any], None] | None = None,
    synchronize: Callable[[], None] | None = None,
) -> dict[str, Samples]:
    """Time each variant ``repeats`` times, interleaved: repeat ``r`` runs every variant once,
    starting at variant ``r mod len(variants)`` (A B C, B C A, ...), so slow drifts of a shared
    machine hit all variants alike and no variant always runs first.

    Args:
        variants: name -> callable taking the repeat index.
        repeats: measurements per variant.
        check: called with ``(name, result)`` after each run (e.g. to verify an edit was applied).
        synchronize: see :func:`timed`.

    Returns:
        name -> :class:`Samples` (seconds).
    """
    names = list(variants)
    samples = {name: Samples() for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, result = timed(lambda name=name: variants[name](repeat), synchronize)
            samples[name].add(seconds)
            if check is not None:
                check(name, result)
    return samples


def paired_ratio(numerator: Samples, denominator: Samples) -> dict[str, float | int]:
    """Ratio of two variants measured side by side: the median over repeats of the per-repeat
    ratio (each pair ran back to back), with its min and max, and the ratio of the medians."""
    ratios = [a / b for a, b in zip(numerator.values, denominator.values)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "ratio_of_medians": numerator.median / denominator.median,
        "n": len(ratios),
    }


def _proc_status(field_name: str) -> int | None:
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def current_rss_bytes() -> int | None:
    """Resident set size of this process now, in bytes (Linux ``/proc``; ``None`` elsewhere)."""
    return _proc_status("VmRSS")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes (``VmHWM`` on Linux, else
    ``getrusage``)."""
    peak = _proc_status("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024
