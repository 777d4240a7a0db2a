"""Measurement helpers shared by the CPU suite and the GPU script.

Repeated timings, medians with spread, paired ratios of variants measured side by side, and process
memory.

Nothing here asserts a speed: the suite reports numbers and ratios, the reader judges them.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import statistics
import subprocess
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
    "run_json_row",
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
    """Repeated measurements of one quantity: wall-clock seconds, and optionally CPU seconds.

    The CPU seconds are what this process used meanwhile (``time.process_time``, all its threads).

    On a CPU shared with other busy processes, wall time includes the time spent waiting for a
    core; the process's CPU time counts only its own work, so it is the steadier basis for
    comparing variants there (cache and memory-bandwidth contention still leak into it).
    """

    values: list[float] = field(default_factory=list)
    cpu_values: list[float] = field(default_factory=list)

    def add(self, value: float, cpu: float | None = None) -> None:
        """Record one measurement (wall seconds, and CPU seconds when known)."""
        self.values.append(float(value))
        if cpu is not None:
            self.cpu_values.append(float(cpu))

    def _values(self, cpu: bool) -> list[float]:
        if cpu and not self.cpu_values:
            msg = "No CPU times were recorded for these samples."
            raise ValueError(msg)
        return self.cpu_values if cpu else self.values

    @property
    def median(self) -> float:
        """Median wall-clock measurement."""
        return statistics.median(self.values)

    @property
    def cpu_median(self) -> float:
        """Median CPU-time measurement."""
        return statistics.median(self._values(cpu=True))

    def summary(self, scale: float = 1.0, *, cpu: bool = False) -> dict[str, float | int]:
        """Median, p5/p95, min, max and count of the wall (or ``cpu``) times, times ``scale`` (1000 for ms)."""
        values = self._values(cpu)
        return {
            "median": statistics.median(values) * scale,
            "p5": percentile(values, 5) * scale,
            "p95": percentile(values, 95) * scale,
            "min": min(values) * scale,
            "max": max(values) * scale,
            "n": len(values),
        }


def timed(function: Callable[[], Any], synchronize: Callable[[], None] | None = None) -> tuple[float, Any, float]:
    """Run ``function`` once; return ``(wall_seconds, result, cpu_seconds)``.

    ``synchronize`` (e.g. ``torch.cuda.synchronize``) runs before both clocks.
    """
    if synchronize is not None:
        synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function()
    if synchronize is not None:
        synchronize()
    return time.perf_counter() - start, result, time.process_time() - cpu_start


def interleaved(
    variants: dict[str, Callable[[int], Any]],
    repeats: int,
    *,
    check: Callable[[str, Any], None] | None = None,
    synchronize: Callable[[], None] | None = None,
) -> dict[str, Samples]:
    """Time each variant ``repeats`` times, interleaved.

    Repeat ``r`` runs every variant once, starting at variant ``r mod len(variants)`` (A B C, B C A,
    ...), so slow drifts of a shared machine hit all variants alike and no variant always runs
    first.

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
            seconds, result, cpu_seconds = timed(functools.partial(variants[name], repeat), synchronize)
            samples[name].add(seconds, cpu_seconds)
            if check is not None:
                check(name, result)
    return samples


def paired_ratio(numerator: Samples, denominator: Samples, *, cpu: bool = False) -> dict[str, float | int]:
    """Ratio of two variants measured side by side.

    The median over repeats of the per-repeat ratio (each pair ran back to back), with its min and
    max, and the ratio of the medians; of wall times, or of CPU times with ``cpu``.
    """
    top, bottom = numerator._values(cpu), denominator._values(cpu)
    ratios = [a / b for a, b in zip(top, bottom, strict=True)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "ratio_of_medians": statistics.median(top) / statistics.median(bottom),
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
    """Peak resident set size of this process so far, in bytes.

    ``VmHWM`` on Linux, else ``getrusage``.
    """
    peak = _proc_status("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def run_json_row(command: Sequence[str], labels: dict[str, Any], *, error_lines: int = 1) -> dict[str, Any]:
    """Run one measurement in a fresh subprocess and read the JSON object it prints.

    A fresh process per measurement keeps one store's memory apart from the next one's.

    Args:
        command: the command line; it must print one JSON object on stdout.
        labels: what the row measures (e.g. ``{"engine": "edge", "edits": 1000}``), kept on a
            failed run's row.
        error_lines: how many of stderr's last lines a failed run's row keeps.

    Returns:
        The printed object, or ``{**labels, "error": [last stderr lines]}`` if the command failed.
    """
    run = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if run.returncode == 0:
        return json.loads(run.stdout)
    return {**labels, "error": run.stderr.strip().splitlines()[-error_lines:]}
