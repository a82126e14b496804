"""Scheduler building blocks shared by the analyses: who ran where, who waited.

All functions take and return Polars frames; none loops over events.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import polars as pl

from latencyscope.analyze.capture import PID_MAX_LIMIT, Capture

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


def complete_cpus(cap: Capture) -> Optional[List[int]]:
    """The CPUs whose every context switch was recorded: all of them (None)
    unless the recorder filtered in the kernel -- then the CPUs named with
    --cpus (a --pid filter alone keeps only the targets' switches: no CPU
    is recorded in full, [])."""
    f = cap.manifest.get("filters") or {}
    if f.get("cpus") is not None:
        return sorted(int(c) for c in f["cpus"])
    return [] if f.get("pids") else None


def on_full_cpus(full: Optional[List[int]]) -> pl.Expr:
    """True on the rows of CPUs recorded in full (FULL: ``complete_cpus``)."""
    return pl.lit(True) if full is None else pl.col("cpu").is_in(full)


def switches(cap: Capture, ordered: bool = True) -> Optional[pl.DataFrame]:
    """sched_switch with each switch-in's on-CPU interval [ts_ns, end_ns),
    sorted by cpu, ts_ns (ORDERED=False: in stored order when each CPU's
    switches already are in time order, which spares a copy of every column).

    end_ns is the next switch on the same CPU; the last one on a CPU ends at
    the capture window's end (clipped, never invented beyond it).  end_seen
    is false when, on a CPU recorded in full (``complete_cpus``), that next
    switch starts from another task than the one switched in
    (``chain_breaks``): the kernel did not report how the run ended,
    on_cpu_ns is then only an upper bound.  (Elsewhere a filter may have left
    the switches between out: the chain says nothing.)
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
            end_seen=(pl.col("prev_pid").shift(-1).over("cpu") == pl.col("next_pid")).fill_null(True)
            | ~on_full_cpus(complete_cpus(cap)),
        )
        .with_columns(on_cpu_ns=(pl.col("end_ns").cast(pl.Int64) - pl.col("ts_ns").cast(pl.Int64)))
        .collect()
    )


def chain_breaks(prev_pid: np.ndarray, next_pid: np.ndarray, order: np.ndarray,
                 same: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(rows, ends): the switches whose run's end the kernel did not report, and
    the next switch on their CPU, which starts from another task than the one
    they switched in.  ORDER: the rows by CPU, each CPU's in time order; SAME:
    where the next row in ORDER is on the same CPU.

    On a CPU recorded in full every switch names the task the previous one
    switched in, unless the tracepoint did not fire: some hosts hide a
    supervisor's threads from every tracer (perf misses them too), and what
    happens in their context -- their switch-out, the wakeups they run --
    never reaches a program."""
    i = np.flatnonzero(same & (prev_pid[order[1:]] != next_pid[order[:-1]]))
    return order[i], order[i + 1]


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


def _order_by_ids_ts(ids: np.ndarray, n_ids: int, ts: np.ndarray):
    """(order, ids in that order): rows by (ids, ts), stored order among equals;
    IDS in 0..n_ids-1.  A lexsort: a stable sort by time (each kind of event
    comes in time order: timsort merges a few runs), then by id (a radix sort
    when the ids fit 16 bits), 40 % faster than two separate argsorts."""
    ids = ids.astype(np.uint16 if n_ids <= 1 << 16 else np.int64, copy=False)
    order = np.lexsort((ts, ids))
    return order, ids[order]


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


class ThreadIds:
    """Small dense ids for thread ids, so that per-thread figures of a slice
    are numpy bincounts and sorts run over small integers.

    A table indexed by tid (up to the kernel's pid_max ceiling: 16 MiB of
    address space, of which only the pages of the tids met become resident)
    numbers the tids in the order they are met; ``local`` then renumbers the
    ones of one call 0..k-1.  Values outside [0, PID_MAX_LIMIT] (damaged
    fields, -1 sentinels) go through np.unique for that call instead.
    """

    def __init__(self):
        self._tbl = np.zeros(PID_MAX_LIMIT + 1, dtype=np.int32)   # global id + 1; 0 = not met yet
        self._tids = np.zeros(0, dtype=np.int64)
        self._n = 0

    def local(self, tid: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(ids, tids): ids 0..k-1 with tids[ids] == TID (ids of equal tids are equal)."""
        if not len(tid):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if int(tid.min()) < 0 or int(tid.max()) > PID_MAX_LIMIT:
            u, inv = np.unique(tid, return_inverse=True)
            return inv.reshape(-1), u.astype(np.int64)
        g = self._tbl[tid]
        new = g == 0
        if new.any():
            u = np.unique(tid[new])
            self._tbl[u] = np.arange(self._n + 1, self._n + 1 + len(u), dtype=np.int32)
            self._tids = np.concatenate([self._tids, u.astype(np.int64)])
            self._n += len(u)
            g = self._tbl[tid]
        g = g.astype(np.int64) - 1
        present = np.zeros(self._n, dtype=bool)
        present[g] = True
        remap = np.cumsum(present) - 1
        return remap[g], self._tids[present]


def dense(x: np.ndarray) -> Tuple[np.ndarray, int]:
    """(ids, k): ids 0..k-1 of the non-negative ints X, in value order."""
    if not len(x):
        return np.zeros(0, dtype=np.int64), 0
    m = int(x.max()) + 1
    if m <= 4 * len(x) + 65536:
        present = np.zeros(m, dtype=bool)
        present[x] = True
        remap = np.cumsum(present) - 1
        return remap[x], int(remap[-1]) + 1
    u, inv = np.unique(x, return_inverse=True)
    return inv.reshape(-1), len(u)


def group_ids(*ids: Tuple[np.ndarray, int]) -> Tuple[np.ndarray, int]:
    """(group id per row, number of groups) of rows keyed by several dense ids ((ids, k) pairs)."""
    g, n = ids[0]
    for x, k in ids[1:]:
        g = g * k + x
        n = n * k
        if n > 4 * len(g) + 65536:
            g, n = dense(g)
    return dense(g) if n > 2 * len(g) + 65536 else (g, n)


def small_ids(tid: np.ndarray, ids: Optional[ThreadIds] = None) -> Tuple[np.ndarray, int]:
    """(ids, k): equal ids for equal tids, 0 <= ids < k; the tids themselves when
    they are below 2^16 (most systems' pid_max), else ``ThreadIds.local``."""
    if not len(tid):
        return np.zeros(0, dtype=np.int64), 0
    if int(tid.min()) >= 0 and int(tid.max()) < 1 << 16:
        return tid, int(tid.max()) + 1
    lid, tids = (ids or ThreadIds()).local(tid)
    return lid, len(tids)


def group_runs(g: np.ndarray, n: int, ts: Optional[np.ndarray] = None):
    """Rows grouped by G (ids 0..n-1), each group's rows in time order (TS, stored
    order among equal times; TS None: the rows are in time order already):
    (order, starts, groups): order[starts[i]:] begins group groups[i]'s rows.
    Two stable sorts at most, the one by group a radix sort when N <= 2^16."""
    if n > 1 << 16:
        g, n = dense(g)
    t_order = None if ts is None else np.argsort(ts, kind="stable")
    gg = g if t_order is None else g[t_order]
    o = np.argsort(gg.astype(np.uint16) if n <= 1 << 16 else gg, kind="stable")
    order = o if t_order is None else t_order[o]
    gs = gg[o]
    first = np.empty(len(gs), dtype=bool)
    first[:1] = True
    first[1:] = gs[1:] != gs[:-1]
    starts = np.flatnonzero(first)
    return order, starts, gs[starts]


def _first_in_segment(pos: np.ndarray, seg: np.ndarray):
    """Of positions POS (ascending) into rows whose segment is SEG (ascending),
    the first in each segment: (positions, their segments)."""
    sp = seg[pos]
    first = np.empty(len(pos), dtype=bool)
    first[:1] = True
    first[1:] = sp[1:] != sp[:-1]
    return pos[first], sp[first]


class SlicedWaits:
    """``waits_of_events`` over consecutive time slices, in numpy: each
    ``feed`` gives the waits that ended in the slice, and keeps, per thread,
    what the next slice needs (the same carry as ``waits_of_events``)."""

    def __init__(self, ids: Optional[ThreadIds] = None):
        self.ids = ids or ThreadIds()
        self.carry = {"pid": np.zeros(0, dtype=np.int32), "ts": np.zeros(0, dtype=np.uint64),
                      "k": np.zeros(0, dtype=np.int8), "runnable": np.zeros(0, dtype=bool),
                      "done": np.zeros(0, dtype=bool)}

    def feed_parts(self, sw: Optional[Dict[str, np.ndarray]], wakeups: Sequence[Tuple[np.ndarray, np.ndarray]],
                   events: int = 250_000) -> Dict[str, np.ndarray]:
        """``feed`` over consecutive time parts of the slice of about EVENTS
        events each (when its tables are in time order): the same waits,
        with temporaries small enough to stay in cache and in reused memory
        (a slice cut by time can hold millions of events)."""
        n = len(sw["ts_ns"]) if sw is not None else 0
        total = 2 * n + sum(len(p) for _, p in wakeups)
        parts = -(-total // max(1, events))
        ts = sw["ts_ns"] if n else None
        if parts < 2 or not n or not all(bool((t[1:] >= t[:-1]).all()) for t in [ts] + [w for w, _ in wakeups]):
            return self.feed(sw, wakeups)
        bounds = np.unique(ts[(np.arange(1, parts) * n) // parts])
        lo_sw, lo_wk, out = 0, [0] * len(wakeups), []
        for i in range(len(bounds) + 1):
            hi_sw = int(np.searchsorted(ts, bounds[i])) if i < len(bounds) else n
            hi_wk = [int(np.searchsorted(w, bounds[i])) if i < len(bounds) else len(w) for w, _ in wakeups]
            out.append(self.feed({c: a[lo_sw:hi_sw] for c, a in sw.items()},
                                 [(w[a:b], p[a:b]) for (w, p), a, b in zip(wakeups, lo_wk, hi_wk)]))
            lo_sw, lo_wk = hi_sw, hi_wk
        return {c: np.concatenate([w[c] for w in out]) for c in out[0]}

    def feed(self, sw: Optional[Dict[str, np.ndarray]], wakeups: Sequence[Tuple[np.ndarray, np.ndarray]]
             ) -> Dict[str, np.ndarray]:
        """SW: ts_ns, cpu, prev_pid, prev_state, next_pid arrays of the slice's
        switches (or None); WAKEUPS: (ts_ns, pid) arrays.  Returns the waits:
        pid, cpu, ready_ns, run_ns, latency_ns, preempted."""
        c = self.carry
        n_c = len(c["pid"])
        pids, tss, runs, lens = [c["pid"]], [c["ts"]], [c["runnable"]], [n_c]
        has_sw = sw is not None and len(sw["ts_ns"]) > 0
        if has_sw:
            out = sw["prev_pid"] != 0
            pids.append(sw["prev_pid"][out])
            tss.append(sw["ts_ns"][out])
            runs.append((sw["prev_state"][out] & STATE_MASK) == 0)
            lens.append(len(pids[-1]))
        n_wk = 0
        for wts, wpid in wakeups:
            pids.append(wpid)
            tss.append(wts)
            n_wk += len(wpid)
        cpu_in = np.zeros(0, dtype=np.uint32)
        if has_sw:
            inn = sw["next_pid"] != 0
            pids.append(sw["next_pid"][inn])
            tss.append(sw["ts_ns"][inn])
            cpu_in = sw["cpu"][inn]
        pid = np.concatenate([p.astype(np.int32, copy=False) for p in pids])
        n = len(pid)
        if n == 0:
            return _no_waits()
        n_in = len(cpu_in)
        off_in = n - n_in
        ts = np.concatenate([t.astype(np.uint64, copy=False) for t in tss])
        k = np.repeat(np.array([-1, 0, 1, 2], dtype=np.int8), [0, sum(lens[1:]), n_wk, n_in])
        k = np.concatenate([c["k"], k])
        runnable = np.zeros(n, dtype=bool)
        runnable[:sum(lens)] = np.concatenate(runs)
        if int(pid.min()) >= 0 and int(pid.max()) < 1 << 16:
            ids, tids = pid.astype(np.uint16), None      # the tids themselves are small ids
            n_ids = 1 << 16
        else:
            ids, tids = self.ids.local(pid)
            n_ids = len(tids)
        del pid
        # Events come in the order carry, switch-outs, wakeups, switch-ins (k = 0,
        # 1, 2; carried events are older than the slice's, a thread's carried
        # switch-out before its wakeup): sorted stably by (thread, time), equal
        # times stay in k order, the order waits_of_events sorts them in.
        order, ids = _order_by_ids_ts(ids, n_ids, ts)
        k = k[order]
        start = k == 0
        start[0] = True
        start[1:] |= ids[1:] != ids[:-1]
        seg = np.cumsum(start, dtype=np.int64) - 1
        starts = np.flatnonzero(start)
        nseg = len(starts)
        seg_pid = ids[starts].astype(np.int64) if tids is None else tids[ids[starts]]
        has_o = k[starts] == 0
        o_row = order[starts]
        o_ts = ts[o_row]
        o_run = has_o & runnable[o_row]
        # the first switch-in of each wait (events after it start nothing)
        s_pos, s_seg = _first_in_segment(np.flatnonzero(k == 2), seg)
        has_s = np.zeros(nseg, dtype=bool)
        has_s[s_seg] = True
        s_at = np.full(nseg, len(k), dtype=np.int64)
        s_at[s_seg] = s_pos
        s_row = order[s_pos]
        run = np.zeros(nseg, dtype=np.uint64)
        run[s_seg] = ts[s_row]
        seg_done = np.zeros(nseg, dtype=bool)
        carried = s_row < n_c                               # only a carried switch-in can be done
        seg_done[s_seg[carried]] = c["done"][s_row[carried]]
        # the earliest wakeup of each wait, before its first switch-in
        r_pos, r_seg = _first_in_segment(np.flatnonzero(k == 1), seg)
        ok = r_pos < s_at[r_seg]
        r_pos, r_seg = r_pos[ok], r_seg[ok]
        has_r = np.zeros(nseg, dtype=bool)
        has_r[r_seg] = True
        r_ts = np.zeros(nseg, dtype=np.uint64)
        r_ts[r_seg] = ts[order[r_pos]]

        emit = has_s & ~seg_done & (o_run | has_r)
        ready = np.where(o_run, o_ts, r_ts)[emit]
        run_e = run[emit]
        waits = {"pid": seg_pid[emit].astype(np.int32), "cpu": cpu_in[s_row[emit[s_seg]] - off_in], "ready_ns": ready,
                 "run_ns": run_e, "latency_ns": run_e.astype(np.int64) - ready.astype(np.int64),
                 "preempted": o_run[emit]}

        last = np.ones(nseg, dtype=bool)
        last[:-1] = ids[starts][1:] != ids[starts][:-1]
        closed = last & has_s
        opened = last & ~has_s
        o_c = opened & has_o
        r_c = opened & has_r
        n_c, n_o, n_r = int(closed.sum()), int(o_c.sum()), int(r_c.sum())
        self.carry = {
            "pid": np.concatenate([seg_pid[closed], seg_pid[o_c], seg_pid[r_c]]).astype(np.int32),
            "ts": np.concatenate([run[closed], o_ts[o_c], r_ts[r_c]]),
            "k": np.repeat(np.array([2, 0, 1], dtype=np.int8), [n_c, n_o, n_r]),
            "runnable": np.concatenate([np.zeros(n_c, dtype=bool), o_run[o_c], np.zeros(n_r, dtype=bool)]),
            "done": np.repeat(np.array([True, False, False]), [n_c, n_o, n_r]),
        }
        return waits


def _no_waits() -> Dict[str, np.ndarray]:
    return {"pid": np.zeros(0, dtype=np.int32), "cpu": np.zeros(0, dtype=np.uint32),
            "ready_ns": np.zeros(0, dtype=np.uint64), "run_ns": np.zeros(0, dtype=np.uint64),
            "latency_ns": np.zeros(0, dtype=np.int64), "preempted": np.zeros(0, dtype=bool)}


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
