"""The alpha flamegraph: what latency cost, in money, by cause.

Input is a cost table with columns ``module, cause, who, detail, cost`` (one
row per delay or per already-aggregated group; ``cost`` in money, e.g. from
:func:`alpha_cost`).  Outputs:

* folded stacks, ``module;cause;who;detail WEIGHT`` — the input format of
  flamegraph.pl, inferno and speedscope.  Those tools want integer weights,
  so WEIGHT is the cost in micro-units of money (``scale=1_000_000``:
  ``1.25`` money -> ``1250000``);
* a Perfetto trace of the same hierarchy on one track, each node a slice
  whose width is its cost (1 ns of timeline = 1 micro-unit), children laid
  side by side inside their parent.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import polars as pl

from latencyscope.analyze.perfetto import (TYPE_SLICE_BEGIN, TYPE_SLICE_END, Rows, TraceWriter,
                                           te_packet, te_rows)

__all__ = ["LEVELS", "MICRO", "alpha_cost", "folded_stacks", "write_folded", "write_cost_trace"]

LEVELS = ("module", "cause", "who", "detail")
MICRO = 1_000_000  # integer weights are micro-units of money
COST_TRACK_UUID = 1


def alpha_cost(delay_ns: Union[str, pl.Expr], notional: float, bps_per_us: float) -> pl.Expr:
    """Cost in money of a delay: delay_µs × bps_per_µs × notional / 10,000.

    ``delay_ns``: a column name or expression in nanoseconds; ``bps_per_us``:
    basis points of the notional lost per microsecond of delay.  Returns a
    Float64 expression named ``cost``; a null delay gives a null cost.
    """
    d = pl.col(delay_ns) if isinstance(delay_ns, str) else delay_ns
    return (d.cast(pl.Float64) / 1_000.0 * float(bps_per_us) * float(notional) / 10_000.0).alias("cost")


def _frame(col: str) -> pl.Expr:
    # ';' separates frames and a line ends the record; neither may be in a name
    return (pl.col(col).cast(pl.String).str.replace_all(";", ":", literal=True)
            .str.replace_all(r"[\r\n]+", " ").str.strip_chars())


def _stacks(costs: Union[pl.DataFrame, pl.LazyFrame], scale: int) -> pl.LazyFrame:
    """(stack, weight) per distinct stack, weight = round(sum(cost) × scale) > 0."""
    lf = costs.lazy()
    frames = [_frame(c).alias(c) for c in LEVELS]
    # a null or empty level ends the stack there (e.g. no detail)
    parts = pl.concat_list([pl.col(c) for c in LEVELS]).list.eval(
        pl.element().filter(pl.element().is_not_null() & (pl.element() != "")))
    return (lf.with_columns(frames)
            .with_columns(stack=parts.list.join(";"))
            .group_by("stack")
            .agg(weight=(pl.col("cost").sum() * scale).round(0).cast(pl.Int64))
            .filter((pl.col("weight") > 0) & (pl.col("stack") != ""))
            .sort("stack"))


def folded_stacks(costs: Union[pl.DataFrame, pl.LazyFrame], *, scale: int = MICRO) -> pl.DataFrame:
    """The folded-stack lines, one per distinct stack, sorted: column ``line``.

    Costs of rows with the same (module, cause, who, detail) are summed before
    scaling; stacks whose weight rounds to zero or below are dropped.
    """
    return (_stacks(costs, scale)
            .select(line=pl.format("{} {}", "stack", "weight"))
            .collect())


def write_folded(costs: Union[pl.DataFrame, pl.LazyFrame], out_path, *, scale: int = MICRO) -> dict:
    """Write folded stacks to OUT_PATH; returns {stacks, total_weight, scale}."""
    st = _stacks(costs, scale).collect()
    with open(out_path, "w") as f:
        if st.height:
            lines = st.select(line=pl.format("{} {}", "stack", "weight")).get_column("line")
            f.write("\n".join(lines.to_list()) + "\n")
    return {"path": str(out_path), "stacks": st.height, "total_weight": int(st.get_column("weight").sum()),
            "scale": scale}


def cost_slices(costs: Union[pl.DataFrame, pl.LazyFrame], *, scale: int = MICRO) -> pl.DataFrame:
    """Every node of the hierarchy as a slice: depth, name, start, width (micro-units).

    Leaves (distinct full stacks) are laid end to end in sorted order; a node
    spans its leaves, so siblings sit side by side inside their parent.
    """
    lf = costs.lazy().with_columns([_frame(c).fill_null("").alias(c) for c in LEVELS])
    leaves = (lf.group_by(list(LEVELS))
              .agg(width=(pl.col("cost").sum() * scale).round(0).cast(pl.Int64))
              .filter(pl.col("width") > 0)
              .sort(list(LEVELS))
              .with_columns(start=pl.col("width").cum_sum() - pl.col("width"))
              .collect())
    nodes = []
    for depth in range(len(LEVELS)):
        keys = list(LEVELS[: depth + 1])
        nodes.append(leaves.filter(pl.col(LEVELS[depth]) != "")
                     .group_by(keys)
                     .agg(start=pl.col("start").min(), width=pl.col("width").sum())
                     .select("start", "width", depth=pl.lit(depth, pl.Int64), name=pl.col(LEVELS[depth])))
    return pl.concat(nodes).sort("start", "depth")


def write_cost_trace(costs: Union[pl.DataFrame, pl.LazyFrame], out_path, *, scale: int = MICRO,
                     track_name: str = "alpha cost (1 ns = 1 micro-unit of money)") -> dict:
    """Write the cost hierarchy as a Perfetto trace: one track, slice width = cost.

    Timestamps start at 0; 1 ns of timeline is 1/scale of the money unit.
    """
    sl = cost_slices(costs, scale=scale)
    names = sl.get_column("name").unique().sort().to_list()
    iids = {n: i + 1 for i, n in enumerate(names)}
    # BEGINs at a node's start (outer first), ENDs at its end (inner first,
    # before any BEGIN at the same time): a valid nesting in file order.
    ev = pl.concat([
        sl.select(ts="start", end=pl.lit(False), order=pl.col("depth"), name="name"),
        sl.select(ts=pl.col("start") + pl.col("width"), end=pl.lit(True), order=-pl.col("depth"),
                  name="name"),
    ]).sort("ts", pl.col("end").not_(), "order")
    with open(out_path, "wb") as f:
        w = TraceWriter(f)
        w.clock_snapshot(0, None)
        w.start_sequence(iids)
        w.track(COST_TRACK_UUID, track_name)
        n = ev.height
        if n:
            is_end = ev.get_column("end").to_numpy()
            uuid = np.full(n, COST_TRACK_UUID, np.uint64)
            iid = ev.get_column("name").replace_strict(iids, return_dtype=pl.UInt64).to_numpy()
            ts = ev.get_column("ts").to_numpy()
            rows = te_packet(n, ts, te_rows(n, TYPE_SLICE_BEGIN, uuid, iid), where=~is_end)
            rows.extend(te_packet(n, ts, te_rows(n, TYPE_SLICE_END, uuid), where=is_end))
            w.rows(rows, n, n)
    return {"path": str(out_path), "slices": sl.height, "total_width": int(
        sl.filter(pl.col("depth") == 0).get_column("width").sum()), "scale": scale}
