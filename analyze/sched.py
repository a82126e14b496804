"""Scheduler building blocks shared by the analyses: who ran where, who waited.

All functions take and return Polars frames; none loops over events.
"""
from __future__ import annotations

import re
from typing import Iterable, List, Optional

import polars as pl

from latencyscope.analyze.capture import Capture

# prev_state as the sched_switch tracepoint reports it (see its print fmt):
# the low byte is the TASK_* report state (0 = R, runnable); bit 0x100
# (TASK_REPORT_MAX) marks a preemption.
STATE_MASK = 0xFF
PREEMPTED = 0x100

# Per-CPU kernel threads a user cannot move away (they are still intrusions).
KTHREAD_COMM = re.compile(r"^(kworker/|ksoftirqd/|migration/|cpuhp/|rcu|kthreadd|idle_inject/|irq/|"
                          r"watchdog/|kcompactd|khugepaged|kswapd|jbd2/|scsi_|writeback|kblockd|"
                          r"ksmd|oom_reaper|kauditd|khungtaskd|kdevtmpfs|netns|mm_percpu_wq|"
                          r"pool_workqueue|psimon|card\d|nvme|blkcg)")


def runnable_expr(state: str = "prev_state") -> pl.Expr:
    """True when a switched-out task was still runnable (preempted or yielded)."""
    return (pl.col(state) & STATE_MASK) == 0


def switches(cap: Capture) -> Optional[pl.DataFrame]:
    """sched_switch with each switch-in's on-CPU interval [ts_ns, end_ns).

    end_ns is the next switch on the same CPU; the last one on a CPU ends at
    the capture window's end (clipped, never invented beyond it).
    """
    sw = cap.table("sched_switch")
    if sw is None:
        return None
    _, end = cap.window_ns
    end = max(end, int(sw["ts_ns"].max() or 0)) if sw.height else end
    return (
        sw.lazy()
        .sort("cpu", "ts_ns")
        .with_columns(
            end_ns=pl.col("ts_ns").shift(-1).over("cpu").fill_null(pl.lit(end, pl.UInt64)),
        )
        .with_columns(on_cpu_ns=(pl.col("end_ns").cast(pl.Int64) - pl.col("ts_ns").cast(pl.Int64)))
        .collect()
    )


def task_map(cap: Capture) -> pl.DataFrame:
    """tid -> tgid, comm, kthread: from the start snapshot plus what events revealed."""
    parts = [cap.tasks.select("tid", "tgid", "comm", "kthread")]
    sw = cap.table("sched_switch")
    if sw is not None and sw.height:
        parts.append(sw.select(tid=pl.col("prev_pid"), tgid=pl.col("prev_tgid").cast(pl.Int32),
                               comm=pl.col("prev_comm"), kthread=pl.lit(None, pl.Boolean))
                     .unique("tid", keep="last"))
    for name in ("sched_wakeup", "sched_wakeup_new"):
        w = cap.table(name)
        if w is not None and w.height:
            parts.append(w.select(tid=pl.col("waker_pid").cast(pl.Int32), tgid=pl.col("waker_tgid").cast(pl.Int32),
                                  comm=pl.lit(None, pl.String), kthread=pl.lit(None, pl.Boolean))
                         .unique("tid", keep="last"))
    allt = pl.concat(parts, how="vertical_relaxed")
    return (allt.group_by("tid").agg(
        tgid=pl.col("tgid").drop_nulls().last(),
        comm=pl.col("comm").drop_nulls().last(),
        kthread=pl.col("kthread").drop_nulls().first(),
    ))


def is_kernel_thread(comm_col: str = "comm", kthread_col: str = "kthread") -> pl.Expr:
    by_comm = pl.col(comm_col).fill_null("").str.contains(KTHREAD_COMM.pattern)
    return pl.col(kthread_col).fill_null(by_comm) | by_comm


def target_tids(tmap: pl.DataFrame, tgids: Iterable[int]) -> List[int]:
    tg = [int(t) for t in tgids]
    if not tg:
        return []
    tids = tmap.filter(pl.col("tgid").is_in(tg) | pl.col("tid").is_in(tg))["tid"].to_list()
    return sorted(set(tids) | set(tg))


def runqueue_waits(cap: Capture) -> Optional[pl.DataFrame]:
    """Every wait from becoming runnable to the next switch-in, per thread.

    A wait starts at a preemption (switch-out while runnable) or, after a
    switch-out to sleep, at the first wakeup that follows it; it ends at the
    task's next switch-in.  Wakeups of a task that is still on its CPU (it
    had not slept yet) are ignored because they precede the switch-out.  A
    switch-in with no known start (the task was already waiting when the
    capture began) yields no sample rather than an invented one.

    Columns: pid, cpu (where it then ran), comm, ready_ns, run_ns,
    latency_ns, reason ("wakeup" | "preempted").
    """
    # Only the columns the waits need (no names through the sort: the comm of
    # each switch-in is gathered by row number at the end, for the waits kept).
    sw = cap.frame("sched_switch", ["ts_ns", "prev_state", "cpu", "prev_pid", "next_pid"])
    if sw is None:
        return None
    swl = sw.lazy().with_row_index("si")
    frames = [
        # O: switch-out (k=0)
        swl.filter(pl.col("prev_pid") != 0).select(
            pid=pl.col("prev_pid"), ts_ns=pl.col("ts_ns"), k=pl.lit(0, pl.Int8),
            runnable=runnable_expr(), cpu=pl.lit(None, pl.UInt32), si=pl.lit(None, pl.UInt32)),
        # S: switch-in (k=2)
        swl.filter(pl.col("next_pid") != 0).select(
            pid=pl.col("next_pid"), ts_ns=pl.col("ts_ns"), k=pl.lit(2, pl.Int8),
            runnable=pl.lit(None, pl.Boolean), cpu=pl.col("cpu"), si=pl.col("si")),
    ]
    for name in ("sched_wakeup", "sched_wakeup_new"):
        w = cap.frame(name, ["ts_ns", "pid"])
        if w is not None:
            # R: became runnable (k=1)
            frames.append(w.lazy().select(
                pid=pl.col("pid"), ts_ns=pl.col("ts_ns"), k=pl.lit(1, pl.Int8),
                runnable=pl.lit(None, pl.Boolean), cpu=pl.lit(None, pl.UInt32), si=pl.lit(None, pl.UInt32)))
    ev = (
        pl.concat(frames, how="vertical")
        .sort("pid", "ts_ns", "k")
        .with_columns(wait_id=(pl.col("k") == 0).cum_sum().over("pid"))
        # Only what happened up to the first switch-in of a wait belongs to it
        # (a wakeup after it, while the task runs, starts nothing).
        .filter(((pl.col("k") == 2).cum_sum() - (pl.col("k") == 2).cast(pl.UInt32)).over("pid", "wait_id") == 0)
    )
    g = ev.group_by("pid", "wait_id").agg(
        o_runnable=pl.col("runnable").filter(pl.col("k") == 0).first(),
        o_ts=pl.col("ts_ns").filter(pl.col("k") == 0).first(),
        r_ts=pl.col("ts_ns").filter(pl.col("k") == 1).min(),
        run_ns=pl.col("ts_ns").filter(pl.col("k") == 2).first(),
        cpu=pl.col("cpu").filter(pl.col("k") == 2).first(),
        si=pl.col("si").filter(pl.col("k") == 2).first(),
    )
    waits = (
        g.with_columns(
            ready_ns=pl.when(pl.col("o_runnable").fill_null(False)).then(pl.col("o_ts")).otherwise(pl.col("r_ts")),
            reason=pl.when(pl.col("o_runnable").fill_null(False)).then(pl.lit("preempted")).otherwise(pl.lit("wakeup")),
        )
        .filter(pl.col("ready_ns").is_not_null() & pl.col("run_ns").is_not_null())
        .with_columns(latency_ns=(pl.col("run_ns").cast(pl.Int64) - pl.col("ready_ns").cast(pl.Int64)))
        .select("pid", "cpu", "si", "ready_ns", "run_ns", "latency_ns", "reason")
        .sort("run_ns")
        .collect()
    )
    comm = cap.frame("sched_switch", ["next_comm"])["next_comm"].gather(waits["si"])
    return waits.with_columns(comm=comm).select("pid", "cpu", "comm", "ready_ns", "run_ns", "latency_ns", "reason")
