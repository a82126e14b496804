"""Scheduler building blocks shared by the analyses: who ran where, who waited.

All functions take and return Polars frames; none loops over events.
"""
from __future__ import annotations

import re
from typing import Iterable, List, Optional

import numpy as np
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


def switches(cap: Capture, ordered: bool = True) -> Optional[pl.DataFrame]:
    """sched_switch with each switch-in's on-CPU interval [ts_ns, end_ns),
    sorted by cpu, ts_ns (ORDERED=False: in stored order when each CPU's
    switches already are in time order, which spares a copy of every column).

    end_ns is the next switch on the same CPU; the last one on a CPU ends at
    the capture window's end (clipped, never invented beyond it).
    """
    # Stored order (not cap.table: no whole-table sort by time first).  Every
    # recorded CPU is in time order as stored, so a stable sort by cpu alone
    # gives (cpu, ts_ns) order; anything else is sorted by both.
    sw = cap.frame("sched_switch")
    if sw is None:
        return None
    _, end = cap.window_ns
    end = max(end, int(sw["ts_ns"].max() or 0)) if sw.height else end
    per_cpu_sorted = bool(sw.select((pl.col("ts_ns").diff().over("cpu") >= 0).all()).item()) if sw.height else True
    swl = sw.lazy()
    if not per_cpu_sorted:
        swl = swl.sort("cpu", "ts_ns", maintain_order=True)
    elif ordered:
        swl = swl.sort("cpu", maintain_order=True)
    return (
        swl.with_columns(
            end_ns=pl.col("ts_ns").shift(-1).over("cpu").fill_null(pl.lit(end, pl.UInt64)),
        )
        .with_columns(on_cpu_ns=(pl.col("end_ns").cast(pl.Int64) - pl.col("ts_ns").cast(pl.Int64)))
        .collect()
    )


def last_by_time(df: pl.DataFrame, key: str, cols: List[str]) -> pl.DataFrame:
    """Per KEY, COLS of its latest row (the last in stored order among equal times):
    what ``unique(key, keep="last")`` gives on the table sorted by time."""
    return (df.with_row_index("_i").group_by(key)
            .agg(pl.col(cols).sort_by(["ts_ns", "_i"]).last()))


def task_map(cap: Capture) -> pl.DataFrame:
    """tid -> tgid, comm, kthread: from the start snapshot plus what events revealed."""
    parts = [cap.tasks.select("tid", "tgid", "comm", "kthread")]
    sw = cap.frame("sched_switch", ["ts_ns", "prev_pid", "prev_tgid", "prev_comm"])
    if sw is not None and sw.height:
        u = last_by_time(sw, "prev_pid", ["prev_tgid", "prev_comm"])
        parts.append(u.select(tid=pl.col("prev_pid"), tgid=pl.col("prev_tgid").cast(pl.Int32),
                              comm=pl.col("prev_comm"), kthread=pl.lit(None, pl.Boolean)))
    for name in ("sched_wakeup", "sched_wakeup_new"):
        w = cap.frame(name, ["ts_ns", "waker_pid", "waker_tgid"])
        if w is not None and w.height:
            u = last_by_time(w, "waker_pid", ["waker_tgid"])
            parts.append(u.select(tid=pl.col("waker_pid").cast(pl.Int32), tgid=pl.col("waker_tgid").cast(pl.Int32),
                                  comm=pl.lit(None, pl.String), kthread=pl.lit(None, pl.Boolean)))
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


WAIT_EVENT_SCHEMA = {"pid": pl.Int32, "ts_ns": pl.UInt64, "k": pl.Int8, "runnable": pl.Boolean,
                     "cpu": pl.UInt32, "si": pl.UInt32, "done": pl.Boolean}


def wait_events(sw: pl.DataFrame, wakeups: List[pl.DataFrame], row_offset: Optional[int] = 0) -> List[pl.LazyFrame]:
    """Switch-outs (k=0), wakeups (k=1) and switch-ins (k=2, with their row
    number ``si`` in SW plus ROW_OFFSET) of runnable threads, one frame each.
    SW needs ts_ns, cpu, prev_pid, prev_state, next_pid; wakeups ts_ns, pid."""
    none = {"runnable": pl.lit(None, pl.Boolean), "cpu": pl.lit(None, pl.UInt32), "si": pl.lit(None, pl.UInt32)}
    swl = sw.lazy()
    si = (pl.int_range(pl.len(), dtype=pl.UInt32) + row_offset) if row_offset is not None else none["si"]
    frames = [
        swl.filter(pl.col("prev_pid") != 0).select(
            pid=pl.col("prev_pid").cast(pl.Int32), ts_ns=pl.col("ts_ns"), k=pl.lit(0, pl.Int8),
            runnable=runnable_expr(), cpu=none["cpu"], si=none["si"], done=pl.lit(False)),
        swl.with_columns(_si=si).filter(pl.col("next_pid") != 0).select(
            pid=pl.col("next_pid").cast(pl.Int32), ts_ns=pl.col("ts_ns"), k=pl.lit(2, pl.Int8),
            runnable=none["runnable"], cpu=pl.col("cpu").cast(pl.UInt32), si=pl.col("_si"), done=pl.lit(False)),
    ]
    for w in wakeups:
        frames.append(w.lazy().select(
            pid=pl.col("pid").cast(pl.Int32), ts_ns=pl.col("ts_ns"), k=pl.lit(1, pl.Int8),
            runnable=none["runnable"], cpu=none["cpu"], si=none["si"], done=pl.lit(False)))
    return frames


def _order_by_pid_ts_k(pid: np.ndarray, ts: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Row order by (pid, ts, k).

    One 64-bit key (pid: 22 bits, ts since the first event: 40 bits = 18
    minutes, k: 2 bits) sorts in a third of the time of numpy's lexsort over
    three columns (Polars' multi-column sort reserves GiBs of address space);
    longer spans or out-of-range pids fall back to lexsort.  Rows with equal
    keys are identical events, so their relative order does not matter.
    """
    if len(ts):
        t0 = ts.min()
        span = int(ts.max() - t0)
        if span < (1 << 40) and int(pid.min()) >= 0 and int(pid.max()) < (1 << 22) and int(k.max()) < 4:
            key = pid.astype(np.uint64) << np.uint64(42)
            key |= (ts - t0).astype(np.uint64) << np.uint64(2)
            key |= k.astype(np.uint64)
            return np.argsort(key)
    return np.lexsort((k, ts, pid))


def waits_of_events(frames: List[pl.LazyFrame]):
    """(waits, carry) of the wait events FRAMES (``wait_events``, and a carry).

    Per thread, in time order, a wait runs from a switch-out (k=0) to the
    first switch-in (k=2) after it; events after that first switch-in and
    before the next switch-out start nothing.  Done with one sort and numpy
    (no per-group windows: those cost ~1 CPU-s and 400 MiB per million events).

    The carry holds, per thread, what a later time slice needs: its open wait
    (its switch-out and earliest wakeup so far) or, when its last wait ended,
    that switch-in marked ``done`` (reported already, and it still masks the
    wakeups that precede the next switch-out).
    """
    ev = pl.concat(frames, how="vertical").collect()
    n = ev.height
    if n == 0:
        return (pl.DataFrame(schema={"pid": pl.Int32, "cpu": pl.UInt32, "si": pl.UInt32, "ready_ns": pl.UInt64,
                                     "run_ns": pl.UInt64, "latency_ns": pl.Int64, "reason": pl.String}),
                pl.DataFrame(schema=WAIT_EVENT_SCHEMA))
    order = _order_by_pid_ts_k(ev["pid"].to_numpy(), ev["ts_ns"].to_numpy(), ev["k"].to_numpy())
    pid = ev["pid"].to_numpy()[order]
    ts = ev["ts_ns"].to_numpy()[order]
    k = ev["k"].to_numpy()[order]
    start = np.empty(n, dtype=bool)
    start[0] = True
    start[1:] = (pid[1:] != pid[:-1]) | (k[1:] == 0)
    seg = np.cumsum(start) - 1
    starts = np.flatnonzero(start)
    nseg = len(starts)
    s = k == 2
    s_before = np.cumsum(s) - s
    keep = s_before == s_before[starts][seg]          # up to the wait's first switch-in
    seg_pid = pid[starts]
    has_o = k[starts] == 0
    o_ts = ts[starts]
    o_run = has_o & ev["runnable"].fill_null(False).to_numpy()[order[starts]]
    si_idx = np.flatnonzero(keep & s)                   # at most one per wait
    has_s = np.zeros(nseg, dtype=bool)
    has_s[seg[si_idx]] = True
    run = np.zeros(nseg, dtype=np.uint64)
    run[seg[si_idx]] = ts[si_idx]
    done = np.zeros(nseg, dtype=bool)
    done[seg[si_idx]] = ev["done"].to_numpy()[order[si_idx]]
    ri = np.flatnonzero(keep & (k == 1))
    if len(ri):
        first = np.empty(len(ri), dtype=bool)
        first[0] = True
        first[1:] = seg[ri][1:] != seg[ri][:-1]
        ri = ri[first]                                 # earliest wakeup of each wait
    has_r = np.zeros(nseg, dtype=bool)
    has_r[seg[ri]] = True
    r_ts = np.zeros(nseg, dtype=np.uint64)
    r_ts[seg[ri]] = ts[ri]

    emit = has_s & ~done & (o_run | has_r)
    ready = np.where(o_run, o_ts, r_ts)[emit]
    e_rows = si_idx[emit[seg[si_idx]]]                 # the switch-in ending each reported wait
    waits = pl.DataFrame({
        "pid": seg_pid[emit],
        "cpu": ev["cpu"].gather(order[e_rows]),
        "si": ev["si"].gather(order[e_rows]),
        "ready_ns": pl.Series(ready, dtype=pl.UInt64),
        "run_ns": pl.Series(run[emit], dtype=pl.UInt64),
        "latency_ns": pl.Series(run[emit].astype(np.int64) - ready.astype(np.int64), dtype=pl.Int64),
        "preempted": pl.Series(o_run[emit], dtype=pl.Boolean),
    }).with_columns(  # in Polars: numpy strings would be converted one by one (0.17 s per 1.6 M waits)
        reason=pl.when(pl.col("preempted")).then(pl.lit("preempted")).otherwise(pl.lit("wakeup"))).drop("preempted")

    last = np.ones(nseg, dtype=bool)
    last[:-1] = seg_pid[1:] != seg_pid[:-1]
    closed = last & has_s
    opened = last & ~has_s
    o_c = opened & has_o
    r_c = opened & has_r
    cpid = np.concatenate([seg_pid[closed], seg_pid[o_c], seg_pid[r_c]])
    carry = pl.DataFrame({
        "pid": pl.Series(cpid, dtype=pl.Int32),
        "ts_ns": pl.Series(np.concatenate([run[closed], o_ts[o_c], r_ts[r_c]]), dtype=pl.UInt64),
        "k": pl.Series(np.repeat(np.array([2, 0, 1], dtype=np.int8), [closed.sum(), o_c.sum(), r_c.sum()])),
        "runnable": pl.Series(np.concatenate([np.zeros(closed.sum(), bool), o_run[o_c], np.zeros(r_c.sum(), bool)])),
        "cpu": pl.Series([None] * len(cpid), dtype=pl.UInt32),
        "si": pl.Series([None] * len(cpid), dtype=pl.UInt32),
        "done": pl.Series(np.repeat([True, False, False], [closed.sum(), o_c.sum(), r_c.sum()])),
    })
    return waits, carry


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
    wk = [w for w in (cap.frame(n, ["ts_ns", "pid"]) for n in ("sched_wakeup", "sched_wakeup_new")) if w is not None]
    waits, _ = waits_of_events(wait_events(sw, wk))
    waits = waits.sort("run_ns", maintain_order=True)
    comm = cap.frame("sched_switch", ["next_comm"])["next_comm"].gather(waits["si"])
    return waits.with_columns(comm=comm).select("pid", "cpu", "comm", "ready_ns", "run_ns", "latency_ns", "reason")
