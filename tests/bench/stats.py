"""Figures shared by the benchmarks."""

from __future__ import annotations


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (0..1) of `samples`, nearest rank: p50 = percentile(s, 0.5)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
