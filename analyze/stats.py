"""Percentiles and small statistics shared by every analysis.

Percentiles are nearest-rank: P(q) is the smallest sample such that at
least q of all samples are <= it, so every reported percentile is a value
that really occurred (no interpolation between two delays).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np
import polars as pl

# (JSON key suffix, quantile)
PERCENTILES = (("p50", 0.50), ("p99", 0.99), ("p99_9", 0.999), ("p99_99", 0.9999), ("p99_999", 0.99999))


def nearest_rank_index(n: int, q: float) -> int:
    """0-based index of the nearest-rank q-quantile among n sorted samples."""
    return max(0, min(n - 1, math.ceil(q * n - 1e-9) - 1))


def percentile_expr(col: str, q: float) -> pl.Expr:
    """Nearest-rank percentile of COL as an expression (works in group_by/agg)."""
    c = pl.col(col).drop_nulls().sort()
    idx = ((pl.len().cast(pl.Float64) * q - 1e-9).ceil().cast(pl.Int64) - 1).clip(0, None)
    return c.gather(idx.clip(0, c.len() - 1)).first()


def percentiles(values, suffix: str = "_ns") -> Dict[str, Optional[int]]:
    """P50..P99.999 and max of a 1-D array of ints; None when empty."""
    v = np.asarray(values)
    out: Dict[str, Optional[int]] = {}
    if v.size == 0:
        for name, _ in PERCENTILES:
            out[name + suffix] = None
        out["max" + suffix] = None
        return out
    s = np.sort(v)
    for name, q in PERCENTILES:
        out[name + suffix] = int(s[nearest_rank_index(s.size, q)])
    out["max" + suffix] = int(s[-1])
    return out


def tail_samples_behind(n: int, q: float) -> float:
    """How many samples lie beyond the q-quantile: < 1 means the figure is the max."""
    return n * (1.0 - q)


def fmt_ns(ns: Optional[float]) -> str:
    """Human units for a duration in ns."""
    if ns is None:
        return "—"
    ns = float(ns)
    if ns < 1e3:
        return f"{ns:.0f} ns"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs"
    if ns < 1e9:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e9:.2f} s"


def is_empty(values: Sequence) -> bool:
    return len(values) == 0
