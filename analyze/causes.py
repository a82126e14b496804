"""What occupied a CPU during a delay: tasks, and (when recorded) IRQs.

``occupancy(cap)`` is one table of intervals [start_ns, end_ns) per CPU with
a kind ("task", "hardirq", "softirq") and a label; modules that record more
kinds of CPU time add them here.  ``explain`` answers, for a handful of
delays (the worst N, not every event), who held the CPU and for how long.
"""
from __future__ import annotations

from typing import List, Optional

import polars as pl

from latencyscope.analyze.capture import Capture
from latencyscope.analyze.stats import fmt_ns

OCCUPANCY_SCHEMA = {"cpu": pl.UInt32, "start_ns": pl.UInt64, "end_ns": pl.UInt64,
                    "kind": pl.String, "label": pl.String, "pid": pl.Int32}


def _overlapping(df: pl.DataFrame, windows, start: str, end: str) -> pl.DataFrame:
    """Rows of DF whose [start, end) overlaps one of WINDOWS ((cpu, start_ns, end_ns), a handful)."""
    if windows is None:
        return df
    hit = pl.lit(False)
    for cpu, a, b in windows:
        hit = hit | ((pl.col("cpu") == cpu) & (pl.col(start) < b) & (pl.col(end) > a))
    return df.filter(hit)


def task_intervals(sw: Optional[pl.DataFrame], windows=None, labels: bool = True) -> pl.DataFrame:
    """On-CPU intervals of tasks; only those overlapping WINDOWS when given
    (labels are then made for a few rows, not for every switch).  LABELS=False:
    the label is the bare name (``task_label`` makes it once summed).

    An interval whose end the kernel did not report (``end_seen`` false, see
    ``sched.switches``) is labelled "... or unreported": the task held the CPU
    for part of it, something unseen for the rest."""
    if sw is None:
        return pl.DataFrame(schema=OCCUPANCY_SCHEMA)
    sw = _overlapping(sw.filter(pl.col("next_pid") != 0), windows, "ts_ns", "end_ns")
    gap = ~pl.col("end_seen") if "end_seen" in sw.columns else None
    return sw.select(
        cpu=pl.col("cpu"), start_ns=pl.col("ts_ns"), end_ns=pl.col("end_ns").cast(pl.UInt64),
        kind=pl.lit("task"),
        label=task_label(gap=gap) if labels else pl.col("next_comm"),
        pid=pl.col("next_pid"),
    )


def task_label(comm: str = "next_comm", pid: str = "next_pid", gap: Optional[pl.Expr] = None) -> pl.Expr:
    """"name (pid)"; "name (pid) or unreported" where GAP: the run's end was not reported."""
    label = pl.format("{} ({})", pl.col(comm), pl.col(pid))
    return label if gap is None else pl.when(gap).then(pl.format("{} ({}) or unreported", pl.col(comm),
                                                                 pl.col(pid))).otherwise(label)


def occupancy(cap: Capture, sw: Optional[pl.DataFrame], windows=None) -> pl.DataFrame:
    """Who occupied each CPU when; WINDOWS ((cpu, start_ns, end_ns), the few
    delays to explain) limits it to what overlaps them."""
    parts = [task_intervals(sw, windows)]
    for provider in _PROVIDERS:
        df = provider(cap)
        if df is not None and df.height:
            parts.append(_overlapping(df.select(list(OCCUPANCY_SCHEMA)).cast(OCCUPANCY_SCHEMA),
                                      windows, "start_ns", "end_ns"))
    return pl.concat(parts, how="vertical").sort("cpu", "start_ns")


# Functions cap -> occupancy-shaped DataFrame, registered by other modules (irq).
_PROVIDERS: List = []


def register(provider) -> None:
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def overlaps(occ: pl.DataFrame, cpu: int, start_ns: int, end_ns: int,
             exclude_pid: Optional[int] = None) -> pl.DataFrame:
    """(kind, label, pid, overlap_ns): how long each interval in OCC held CPU within [start_ns, end_ns)."""
    return (
        occ.filter((pl.col("cpu") == cpu) & (pl.col("start_ns") < end_ns) & (pl.col("end_ns") > start_ns))
        .filter(pl.col("pid").is_null() | (pl.col("pid") != (exclude_pid if exclude_pid is not None else -1)))
        .select("kind", "label", "pid",
                overlap_ns=(pl.min_horizontal(pl.col("end_ns"), pl.lit(end_ns, pl.UInt64)).cast(pl.Int64)
                            - pl.max_horizontal(pl.col("start_ns"), pl.lit(start_ns, pl.UInt64)).cast(pl.Int64)))
    )


def explain(occ: pl.DataFrame, cpu: int, start_ns: int, end_ns: int, exclude_pid: Optional[int] = None,
            top: int = 3) -> dict:
    """Who held CPU during [start_ns, end_ns): top occupants by overlap."""
    return describe(overlaps(occ, cpu, start_ns, end_ns, exclude_pid), cpu, start_ns, end_ns, top)


def describe(hits: pl.DataFrame, cpu: int, start_ns: int, end_ns: int, top: int = 3) -> dict:
    """The explanation of a delay on CPU in [start_ns, end_ns) from HITS
    (kind, label, overlap_ns rows, summed per occupant here: partial sums
    from several slices of a capture may be given)."""
    span = max(0, end_ns - start_ns)
    hits = (hits.group_by("kind", "label").agg(pl.col("overlap_ns").sum())  # pid, when given, is in the label
            .sort(["overlap_ns", "kind", "label"], descending=[True, False, False]))
    held = hits.head(top).to_dicts()
    busy = int(hits.filter(pl.col("kind") == "task")["overlap_ns"].sum() or 0)
    if not held:
        text = f"CPU {cpu} had nothing else running: the delay is in the wakeup path (idle exit, IPI, migration)"
    else:
        text = f"CPU {cpu} held by " + ", ".join(f"{h['label']} {h['kind']} {fmt_ns(h['overlap_ns'])}" for h in held)
        if span and busy < span * 0.5:
            text += f"; idle for {fmt_ns(span - busy)} of it"
    return {"text": text, "occupants": held}
