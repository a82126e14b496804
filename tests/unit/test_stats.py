import numpy as np
import polars as pl
import pytest
from hypothesis import given, strategies as st

from latencyscope.analyze.stats import PERCENTILES, nearest_rank_index, percentile_expr, percentiles


def test_nearest_rank_known_values():
    v = list(range(1, 101))  # 1..100
    p = percentiles(v)
    assert p["p50_ns"] == 50 and p["p99_ns"] == 99 and p["p99_9_ns"] == 100 and p["max_ns"] == 100
    assert percentiles([7])["p50_ns"] == 7
    assert percentiles([])["p99_ns"] is None


def test_index_edges():
    assert nearest_rank_index(1, 0.5) == 0
    assert nearest_rank_index(2, 0.5) == 0
    assert nearest_rank_index(100_000, 0.99999) == 99_998
    assert nearest_rank_index(10, 0.99999) == 9


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=300), st.integers(1, 4))
def test_expression_matches_numpy_and_is_monotone(values, groups):
    df = pl.DataFrame({"g": [i % groups for i in range(len(values))], "v": values})
    for q_name, q in PERCENTILES:
        got = df.group_by("g").agg(percentile_expr("v", q).alias("p")).sort("g")
        lazy = df.lazy().group_by("g").agg(percentile_expr("v", q).alias("p")).sort("g").collect()
        assert got.equals(lazy)
        for g, p in got.iter_rows():
            vals = [v for i, v in enumerate(values) if i % groups == g]
            assert p == percentiles(vals)[q_name + "_ns"]
    p = percentiles(values)
    seq = [p[n + "_ns"] for n, _ in PERCENTILES] + [p["max_ns"]]
    assert seq == sorted(seq)
