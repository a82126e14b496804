"""Isolation Verifier: intrusions on monitored CPUs, runqueue latency, switches, migrations.

Definitions (DESIGN.md):
- runqueue latency: wakeup (or preemption) to the next switch-in, per thread;
- intrusion: a switch-in, on a monitored CPU, of a task that is neither a
  target nor idle;
- involuntary switch: a target switched out while still runnable (the
  kernel's nivcsw), voluntary otherwise (nvcsw).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Deque, List, Optional, Tuple

import numpy as np

import polars as pl

from latencyscope.analyze import causes, sched
from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import FAIL, PASS, WARN, Check, Context, ModuleResult, judge
from latencyscope.analyze.stats import fmt_ns, percentiles

MODULE = "isolation"

POLICY = {
    "max_user_intrusions": (0, "switch-ins of user-space tasks (not targets, not idle) on monitored CPUs "
                               "above this count FAIL"),
    "max_kernel_thread_time_us_per_s": (2000.0, "CPU time of kernel threads on monitored CPUs (µs per second "
                                                "of capture) above this WARNs"),
    "runqueue_p99_999_warn_ns": (200_000, "P99.999 runqueue latency above this WARNs"),
    "runqueue_p99_999_fail_ns": (1_000_000, "P99.999 runqueue latency above this FAILs"),
    "max_target_migrations": (0, "migrations of target threads above this WARN"),
    "max_involuntary_switches": (1_000_000_000, "involuntary switches of targets above this WARN"),
}


def _main_occupants(on_cpu: pl.DataFrame, tmap: pl.DataFrame, notes: List[str]) -> List[int]:
    """No target named: the process that used each monitored CPU most is its
    occupant.  ON_CPU: time on CPU per (cpu, next_pid), over monitored CPUs."""
    occ = (on_cpu.join(tmap.select("tid", "tgid"), left_on="next_pid", right_on="tid", how="left")
           .with_columns(tgid=pl.col("tgid").fill_null(pl.col("next_pid")))
           .group_by("cpu", "tgid").agg(pl.col("on_cpu_ns").sum())
           .sort("on_cpu_ns", descending=True).unique("cpu", keep="first"))
    targets = sorted(set(occ["tgid"].to_list()))
    if targets:
        notes.append("no --pid given: each monitored CPU's main occupant is taken as its target "
                     f"(tgid {', '.join(map(str, targets))})")
    return targets


def _empty(cap: Capture, ctx: Context) -> ModuleResult:
    return ModuleResult(MODULE, {"message": "module not recorded in this capture "
                                             "(record with --modules isolation)"}, recorded=False)


# Ties broken by every key so that the in-memory and the sliced paths report
# the same rows in the same order.
INTRUDER_ORDER, INTRUDER_DESC = ["total_ns", "count", "pid", "cpu", "comm"], [True, True, False, False, False]
BY_PID_ORDER, BY_PID_DESC = ["involuntary_switches", "voluntary_switches", "pid"], [True, True, False]
WORST_ORDER, WORST_DESC = ["latency_ns", "run_ns", "pid"], [True, False, False]

# Captures with more scheduler events than this are analyzed slice by slice
# (``_figures_sliced``), in memory bounded by the slice size whatever their
# size: a sixteenth of the events, within [CHUNK_ROWS_MIN, CHUNK_ROWS].
# Measured on 2.7 M events (docs/benchmarks.md, seventh round): the whole-table
# path took 1.2 GiB and 1.8 s, slices of 170 k events 0.35 GiB and 1.3 s;
# on 1.56 M events (ninth round) 0.71 GiB and 2.0-2.2 s against 0.22 GiB and
# 0.9-1.2 s, the same report; the whole-table path takes ~0.45 GiB per
# million events, so it serves small captures only.
CHUNKED_ABOVE_ROWS = 200_000
# Up to this many switches, the sliced pass keeps the columns the causes need
# (~16 B each) instead of reading them a second time.
EXPLAIN_KEEP_ROWS = 2_000_000
_EXPLAIN_COLS = ["ts_ns", "cpu", "prev_pid", "next_pid"]
CHUNK_ROWS = 2_000_000
# Smaller slices cost more than they save: on 1.3 M events (2026-12-04, 10
# interleaved runs each) slices of 125 k took 0.74 s and 178 MiB, 250 k 0.71 s
# and 174 MiB, 350 k 0.69 s and 186 MiB.
CHUNK_ROWS_MIN = 250_000


def slice_rows(sched_rows: int) -> int:
    return max(CHUNK_ROWS_MIN, min(CHUNK_ROWS, sched_rows // 16))


def worst_waits(waits: pl.DataFrame, n: int) -> pl.DataFrame:
    """The N longest waits, ties by time then pid (deterministic)."""
    if not waits.height or n <= 0:
        return waits.head(0)
    kth = waits["latency_ns"].top_k(n).min()
    return waits.filter(pl.col("latency_ns") >= kth).sort(WORST_ORDER, descending=WORST_DESC).head(n)


def analyze(cap: Capture, ctx: Context) -> ModuleResult:
    if not cap.has_module(MODULE) or not cap.has_table("sched_switch"):
        return _empty(cap, ctx)
    sched_rows = sum(cap.rows(n) for n in ("sched_switch", "sched_wakeup", "sched_wakeup_new", "sched_migrate_task"))
    if sched_rows > CHUNKED_ABOVE_ROWS:
        data, notes = _figures_sliced(cap, ctx, slice_rows(sched_rows))
        return _result(cap, ctx, data, notes)
    notes: List[str] = []
    sw = sched.switches(cap, ordered=False)
    monitored = list(ctx.monitored_cpus)
    # A run whose end the kernel did not report (``sched.switches``: end_seen)
    # counts for no time; its span goes to no task.
    sw = sw.with_columns(known_ns=pl.when(pl.col("end_seen")).then(pl.col("on_cpu_ns")).otherwise(0))
    unreported = _unreported([_unreported_part(sw.filter(~pl.col("end_seen")))],
                             _scope(monitored, sched.complete_cpus(cap)))
    tmap = sched.task_map(cap)

    targets = list(ctx.targets)
    inferred = False
    if not targets and monitored:
        targets = _main_occupants(sw.filter(pl.col("cpu").is_in(monitored) & (pl.col("next_pid") != 0))
                                  .select("cpu", "next_pid", on_cpu_ns="known_ns"), tmap, notes)
        inferred = bool(targets)
    tids = sched.target_tids(tmap, targets)

    # --- switches of targets (or of everything on the monitored CPUs) ---------
    if tids:
        outs = sw.filter(pl.col("prev_pid").is_in(tids))
    elif monitored:
        outs = sw.filter(pl.col("cpu").is_in(monitored) & (pl.col("prev_pid") != 0))
    else:
        outs = sw.filter(pl.col("prev_pid") != 0)
    outs = outs.with_columns(involuntary=sched.runnable_expr())
    context_switches = outs.height
    involuntary = int(outs["involuntary"].sum() or 0)

    mig = cap.table("sched_migrate_task")
    if mig is None:
        mig = pl.DataFrame(schema={"pid": pl.Int32, "ts_ns": pl.UInt64})
    mig_sel = mig.filter(pl.col("pid").is_in(tids)) if tids else (
        mig.filter(pl.col("orig_cpu").is_in(monitored) | pl.col("dest_cpu").is_in(monitored)) if monitored else mig)
    migrations = mig_sel.height

    # --- runqueue latency --------------------------------------------------------
    waits = sched.runqueue_waits(cap)
    if tids:
        waits = waits.filter(pl.col("pid").is_in(tids))
    elif monitored:
        waits = waits.filter(pl.col("cpu").is_in(monitored))
    pct = percentiles(waits["latency_ns"].to_numpy())

    # --- intrusions --------------------------------------------------------------
    intruders_df = pl.DataFrame()
    user_intrusions = 0
    kthread_ns = 0
    if monitored:
        intr = (sw.filter(pl.col("cpu").is_in(monitored) & (pl.col("next_pid") != 0)
                          & ~pl.col("next_pid").is_in(tids))
                .join(tmap.select("tid", "kthread"), left_on="next_pid", right_on="tid", how="left")
                .with_columns(kernel_thread=sched.is_kernel_thread("next_comm", "kthread")))
        intruders_df = (intr.group_by("next_pid", "next_comm", "cpu", "kernel_thread")
                        .agg(count=pl.len(), total_ns=pl.col("known_ns").sum(), max_ns=pl.col("known_ns").max())
                        .rename({"next_pid": "pid", "next_comm": "comm"})
                        .sort(INTRUDER_ORDER, descending=INTRUDER_DESC))
        user_intrusions = int(intr.filter(~pl.col("kernel_thread")).height)
        kthread_ns = int(intr.filter(pl.col("kernel_thread"))["known_ns"].sum() or 0)

    # --- worst delays with their cause -----------------------------------------------
    top_waits = worst_waits(waits, ctx.top)
    occ = causes.occupancy(cap, sw, windows=[(int(r["cpu"]), int(r["ready_ns"]), int(r["run_ns"]))
                                             for r in top_waits.iter_rows(named=True)])
    worst = []
    for w in top_waits.iter_rows(named=True):
        why = causes.explain(occ, int(w["cpu"]), int(w["ready_ns"]), int(w["run_ns"]), exclude_pid=w["pid"])
        worst.append({
            "ts_ns": int(w["run_ns"]), "wall_time": cap.wall_time(w["run_ns"]),
            "latency_ns": int(w["latency_ns"]), "pid": int(w["pid"]), "comm": w["comm"],
            "cpu": int(w["cpu"]), "reason": w["reason"], "cause": why["text"],
            "occupants": why["occupants"],
        })

    # --- per thread ------------------------------------------------------------------
    per = (outs.group_by("prev_pid").agg(
        comm=pl.col("prev_comm").sort_by(["cpu", "ts_ns"], maintain_order=True).last(),
        voluntary_switches=(~pl.col("involuntary")).sum(),
        involuntary_switches=pl.col("involuntary").sum())
        .rename({"prev_pid": "pid"}))
    mig_per = mig_sel.group_by("pid").agg(migrations=pl.len())
    by_pid = (per.join(mig_per, on="pid", how="full", coalesce=True)
              .with_columns(pl.col("voluntary_switches", "involuntary_switches", "migrations").fill_null(0))
              .sort(BY_PID_ORDER, descending=BY_PID_DESC)
              .head(max(ctx.top, len(tids)) if tids else ctx.top))

    data = _figures(ctx, monitored, targets, inferred, tids, context_switches, involuntary, migrations,
                    waits.height, pct, intruders_df, user_intrusions, kthread_ns, worst, by_pid, unreported)
    return _result(cap, ctx, data, notes)


def _result(cap: Capture, ctx: Context, data: dict, notes: List[str]) -> ModuleResult:
    ours = cap.lost.get("sched_switch", 0) + cap.skipped.get("sched:sched_switch", 0)
    note = _unreported_note(data, ours)
    return ModuleResult(MODULE, data, _checks(cap, data, ctx.policy[MODULE], list(ctx.monitored_cpus)),
                        notes=notes + ([note] if note else []))


def _figures(ctx: Context, monitored, targets, inferred, tids, context_switches, involuntary, migrations,
             samples, pct, intruders_df, user_intrusions, kthread_ns, worst, by_pid, unreported) -> dict:
    """The isolation JSON object (docs/json-report.md), from either analysis path."""
    return {
        "monitored_cpus": monitored,
        "monitored_source": ctx.monitored_source,
        "targets": targets,
        "targets_inferred": inferred,
        "target_threads": len(tids),
        "context_switches": context_switches,
        "involuntary_switches": involuntary,
        "migrations": migrations,
        "runqueue_samples": samples,
        "p50_runqueue_ns": pct["p50_ns"],
        "p99_runqueue_ns": pct["p99_ns"],
        "p99_9_runqueue_ns": pct["p99_9_ns"],
        "p99_99_runqueue_ns": pct["p99_99_ns"],
        "p99_999_runqueue_ns": pct["p99_999_ns"],
        "max_runqueue_ns": pct["max_ns"],
        "intrusions": int(intruders_df["count"].sum()) if intruders_df.height else 0,
        "user_intrusions": user_intrusions,
        "kernel_thread_time_ns": kthread_ns,
        "intruders": [
            {"comm": r["comm"], "pid": int(r["pid"]), "cpu": int(r["cpu"]), "count": int(r["count"]),
             "total_ns": int(r["total_ns"]), "max_ns": int(r["max_ns"]), "kernel_thread": bool(r["kernel_thread"])}
            for r in intruders_df.head(max(ctx.top, 20)).iter_rows(named=True)
        ] if intruders_df.height else [],
        "worst": worst,
        "by_pid": [{"pid": int(r["pid"]), "comm": r["comm"],
                    "voluntary_switches": int(r["voluntary_switches"]),
                    "involuntary_switches": int(r["involuntary_switches"]),
                    "migrations": int(r["migrations"])} for r in by_pid.iter_rows(named=True)],
        **unreported,
    }


def _checks(cap: Capture, d: dict, pol: dict, monitored) -> List[Check]:
    scoped = bool(monitored or d["targets"])
    # System-wide (nothing named or isolated), a slow wakeup of some daemon is
    # worth a look but not a violation: only a scoped analysis FAILs.
    checks = [judge(MODULE, "runqueue_p99_999", d["p99_999_runqueue_ns"], pol["runqueue_p99_999_warn_ns"],
                    pol["runqueue_p99_999_fail_ns"] if scoped else None,
                    "runqueue latency P99.999" + ("" if scoped else " (system-wide; name --pid/--cpus to judge)"),
                    fmt_ns)]
    if d["runqueue_samples"] and d["runqueue_samples"] < 100_000:
        checks[0].message += f" (from {d['runqueue_samples']:,} samples: P99.999 is the max or near it)"
    if monitored:
        n = d["user_intrusions"]
        lim = pol["max_user_intrusions"]
        top = [i for i in d["intruders"] if not i["kernel_thread"]][:3]
        who = ", ".join(f"{i['comm']} (pid {i['pid']}) x{i['count']} on CPU {i['cpu']}" for i in top)
        if n > lim:
            checks.append(Check(MODULE, "user_intrusions", FAIL,
                                f"{n} intrusions by user tasks on monitored CPUs: {who}", n, lim))
        else:
            checks.append(Check(MODULE, "user_intrusions", PASS,
                                f"{n} intrusions by user tasks on monitored CPUs", n, lim))
        per_s = d["kernel_thread_time_ns"] / 1e3 / max(cap.duration_s, 1e-9)
        lim = pol["max_kernel_thread_time_us_per_s"]
        st = WARN if per_s > lim else PASS
        checks.append(Check(MODULE, "kernel_thread_time", st,
                            f"kernel threads ran {per_s:.0f} µs/s on monitored CPUs (limit {lim:g})",
                            round(per_s, 1), lim))
    else:
        checks.append(Check(MODULE, "monitored_cpus", PASS,
                            "no monitored CPUs (no --cpus, no isolcpus/nohz_full): intrusions not judged"))
    if d["targets"]:
        checks.append(judge(MODULE, "target_migrations", d["migrations"], pol["max_target_migrations"], None,
                            "target migrations"))
        checks.append(judge(MODULE, "involuntary_switches", d["involuntary_switches"],
                            pol["max_involuntary_switches"], None, "involuntary switches of targets"))
    return checks


# --- the same figures, one time slice at a time ---------------------------------------
#
# For captures too large to hold (100 M events): ``cap.chunks`` yields
# consecutive time slices; what crosses a slice boundary is carried over
# (each CPU's last switch, whose end is the next slice's first switch there;
# each thread's open wait), counts are summed per slice, the latencies kept
# whole (exact percentiles), and names attached only to the reported rows.
# Every figure equals the in-memory path's (tests/unit/test_isolation_chunked.py).

_WAKEUPS = ("sched_wakeup", "sched_wakeup_new")
_SW_NUMERIC = ["ts_ns", "cpu", "prev_pid", "prev_tgid", "prev_state", "next_pid"]
_WAIT_SCHEMA = {"pid": pl.Int32, "cpu": pl.UInt32, "ready_ns": pl.UInt64, "run_ns": pl.UInt64,
                "latency_ns": pl.Int64, "reason": pl.String}


def _figures_sliced(cap: Capture, ctx: Context, rows: int):
    """One pass over the slices for every figure but the causes (``_explain_sliced``).

    Per slice, numpy on the decoded columns (bincounts over small thread ids,
    no Polars query per slice); Polars joins what the slices summed."""
    monitored = list(ctx.monitored_cpus)
    targets = list(ctx.targets)
    notes: List[str] = []
    _, end = cap.window_ns
    sw_src = cap.arrow.source("sched_switch")
    if sw_src.rows:
        end = max(end, int(sw_src.max_ts))
    # Which waits count depends on the target threads, known once every slice
    # was read (threads met on the way, or the monitored CPUs' main occupants):
    # then each wait's pid and CPU are kept.  With neither, all waits count.
    scoped = bool(targets or monitored)

    # Thread -> process (tgid) names the target threads: only needed when scoped.
    sw_cols = _SW_NUMERIC if scoped else [c for c in _SW_NUMERIC if c != "prev_tgid"]
    # The causes need the switches again (ts_ns, cpu, next_pid; next_comm when
    # stored) once the worst waits are known: kept from this pass when small,
    # else read again.  Rebuilt names are made for the rows used (``_SwitchNames``).
    keep_sw = cap.rows("sched_switch") <= EXPLAIN_KEEP_ROWS
    kept_sw: List[pl.DataFrame] = []
    names = _SwitchNames(cap)
    full = sched.complete_cpus(cap)
    # Each CPU's chain of switches is followed across slices (_chain_gaps) when
    # any CPU was recorded in full.
    chain: Optional[dict] = {} if full != [] else None
    cols = {"sched_switch": sw_cols + names.stored("prev_comm", *(["next_comm"] if monitored or chain is not None
                                                                 or keep_sw else [])),
            "sched_migrate_task": ["ts_ns", "pid", "orig_cpu", "dest_cpu"]}
    for name in _WAKEUPS:
        cols[name] = ["ts_ns", "pid"] + (["waker_pid", "waker_tgid"] if scoped else [])
    ids = sched.ThreadIds()
    # The waits (the biggest share of the work, numpy that releases the GIL)
    # are computed by a second thread, a slice behind the reading and the
    # counting, in order (each slice continues the previous one's carry).
    rq = sched.SlicedWaits()
    pool = ThreadPoolExecutor(1)
    pending: Deque = deque()
    outs_p, intr_p, unrep_p, mig_p, tm_sw = [], [], [], [], []
    tm_wk = {n: [] for n in _WAKEUPS}
    on_carry: Optional[pl.DataFrame] = None
    lat, cand, kept = [], [], []
    for sl in cap.chunks(cols, rows, categorical=True):  # names cast once aggregated
        sw = sl.get("sched_switch")
        arr = None
        if keep_sw and sw is not None and sw.height:
            kept_sw.append(sw.select(names.explain_columns()))
        if sw is not None and sw.height:
            arr = {c: sw[c].to_numpy() for c in sw_cols}
            ts = arr["ts_ns"]
            in_order = bool((ts[1:] >= ts[:-1]).all())
            if scoped:
                tm_sw.append(_latest_names(sw, arr, names, ids, in_order))
            outs_p.append(_switch_outs(sw, arr, names, ids, in_order))
            if monitored or chain is not None:
                order, same = _cpu_order(arr["cpu"])
                gaps, unrep = (_chain_gaps(sw, arr, names, order, same, chain, full) if chain is not None
                               else (np.zeros(0, dtype=np.int64), None))
                if unrep is not None:
                    unrep_p.append(unrep)
                if monitored:
                    part, on_carry = _intrusions(sw, arr, names, ids, on_carry, monitored, order, same, gaps, full)
                    intr_p += part
        wakeups = []
        for name in _WAKEUPS:
            w = sl.get(name)
            if w is not None and w.height:
                wts, wpid = w["ts_ns"].to_numpy(), w["pid"].to_numpy()
                wakeups.append((wts, wpid))
                if scoped:
                    tm_wk[name].append(_latest_waker(w, wts, ids))
        mig = sl.get("sched_migrate_task")
        if mig is not None and mig.height:
            mig_p.append(mig.group_by("pid", hit=pl.col("orig_cpu").is_in(monitored)
                                      | pl.col("dest_cpu").is_in(monitored)).agg(n=pl.len()))
        pending.append(pool.submit(_slice_waits, rq, arr, wakeups, scoped, ctx.top))
        while len(pending) > 1:     # one slice in flight: memory stays bounded
            _take_waits(pending.popleft().result(), scoped, kept, lat, cand)
    while pending:
        _take_waits(pending.popleft().result(), scoped, kept, lat, cand)
    pool.shutdown()
    if monitored and on_carry is not None and on_carry.height:
        intr_p.append(_intr_part(on_carry.with_columns(end_ns=pl.lit(end, pl.UInt64), end_seen=pl.lit(True)),
                                 monitored))

    parts = [cap.tasks.select("tid", "tgid", "comm", "kthread")]
    if tm_sw:
        u = pl.concat(tm_sw).unique("tid", keep="last")
        parts.append(u.select(tid=pl.col("tid"), tgid=pl.col("prev_tgid").cast(pl.Int32), comm=pl.col("prev_comm"),
                              kthread=pl.lit(None, pl.Boolean)))
    for name in _WAKEUPS:
        if tm_wk[name]:
            u = pl.concat(tm_wk[name]).unique("tid", keep="last")
            parts.append(u.select(tid=pl.col("tid").cast(pl.Int32), tgid=pl.col("waker_tgid").cast(pl.Int32),
                                  comm=pl.lit(None, pl.String), kthread=pl.lit(None, pl.Boolean)))
    tmap = pl.concat(parts, how="vertical_relaxed").group_by("tid").agg(
        tgid=pl.col("tgid").drop_nulls().last(), comm=pl.col("comm").drop_nulls().last(),
        kthread=pl.col("kthread").drop_nulls().first())

    intr_all = (pl.concat(intr_p).group_by("next_pid", "next_comm", "cpu")
                .agg(count=pl.col("count").sum(), total_ns=pl.col("total_ns").sum(), max_ns=pl.col("max_ns").max())
                if intr_p else None)
    inferred = False
    if not targets and monitored and intr_all is not None:
        targets = _main_occupants(intr_all.group_by("cpu", "next_pid").agg(on_cpu_ns=pl.col("total_ns").sum()),
                                  tmap, notes)
        inferred = bool(targets)
    tids = sched.target_tids(tmap, targets)

    outs = (pl.concat(outs_p).group_by("prev_pid", "cpu").agg(
        n=pl.col("n").sum(), invol=pl.col("invol").sum(),
        comm=pl.col("comm").sort_by("last_ts").last(), last_ts=pl.col("last_ts").max())
        if outs_p else pl.DataFrame(schema={"prev_pid": pl.Int32, "cpu": pl.UInt32, "n": pl.UInt32,
                                            "invol": pl.UInt32, "comm": pl.String, "last_ts": pl.UInt64}))
    if tids:
        outs = outs.filter(pl.col("prev_pid").is_in(tids))
    elif monitored:
        outs = outs.filter(pl.col("cpu").is_in(monitored))
    context_switches = int(outs["n"].sum() or 0)
    involuntary = int(outs["invol"].sum() or 0)
    mig = (pl.concat(mig_p).group_by("pid", "hit").agg(n=pl.col("n").sum()) if mig_p
           else pl.DataFrame(schema={"pid": pl.Int32, "hit": pl.Boolean, "n": pl.UInt32}))
    mig = mig.filter(pl.col("pid").is_in(tids)) if tids else (mig.filter(pl.col("hit")) if monitored else mig)
    migrations = int(mig["n"].sum() or 0)

    # --- runqueue waits of the threads in scope ---------------------------------------
    for w in kept:
        if tids:
            m = np.isin(w["pid"], np.asarray(tids, dtype=np.int64))
        elif monitored:
            m = np.isin(w["cpu"], np.asarray(monitored, dtype=np.int64))
        else:
            m = None
        w = w if m is None else {k: v[m] for k, v in w.items()}
        lat.append(w["latency_ns"])
        cand.append(_worst_candidates(w, ctx.top))
    kept.clear()
    samples = int(sum(len(a) for a in lat))
    all_lat = np.concatenate(lat) if lat else np.zeros(0, dtype=np.int64)
    lat.clear()
    pct = percentiles(all_lat)
    del all_lat
    top_waits = worst_waits(pl.concat(cand), ctx.top) if cand else None

    # --- who held the CPU during the worst waits (and their names): one more pass ---------
    worst = []
    if top_waits is not None and top_waits.height:
        worst = _explain_sliced(cap, top_waits, end, rows, names, ids, kept_sw if keep_sw else None, full)
    kept_sw.clear()

    # --- intrusions and per-thread rows, names attached -------------------------------------
    intruders_df = pl.DataFrame()
    user_intrusions = 0
    kthread_ns = 0
    if monitored and intr_all is not None:
        intr = (intr_all.filter(~pl.col("next_pid").is_in(tids))
                .join(tmap.select("tid", "kthread"), left_on="next_pid", right_on="tid", how="left")
                .with_columns(kernel_thread=sched.is_kernel_thread("next_comm", "kthread")))
        intruders_df = (intr.group_by("next_pid", "next_comm", "cpu", "kernel_thread")
                        .agg(pl.col("count").sum(), pl.col("total_ns").sum(), pl.col("max_ns").max())
                        .rename({"next_pid": "pid", "next_comm": "comm"})
                        .sort(INTRUDER_ORDER, descending=INTRUDER_DESC))
        user_intrusions = int(intr.filter(~pl.col("kernel_thread"))["count"].sum() or 0)
        kthread_ns = int(intr.filter(pl.col("kernel_thread"))["total_ns"].sum() or 0)

    per = (outs.group_by("prev_pid").agg(
        comm=pl.col("comm").sort_by(["cpu", "last_ts"]).last(),
        voluntary_switches=(pl.col("n") - pl.col("invol")).sum(),
        involuntary_switches=pl.col("invol").sum())
        .rename({"prev_pid": "pid"}))
    mig_per = mig.group_by("pid").agg(migrations=pl.col("n").sum())
    by_pid = (per.join(mig_per, on="pid", how="full", coalesce=True)
              .with_columns(pl.col("voluntary_switches", "involuntary_switches", "migrations").fill_null(0))
              .sort(BY_PID_ORDER, descending=BY_PID_DESC)
              .head(max(ctx.top, len(tids)) if tids else ctx.top))

    data = _figures(ctx, monitored, targets, inferred, tids, context_switches, involuntary, migrations,
                    samples, pct, intruders_df, user_intrusions, kthread_ns, worst, by_pid,
                    _unreported(unrep_p, _scope(monitored, full)))
    return data, notes


def _slice_waits(rq: sched.SlicedWaits, arr, wakeups, scoped: bool, top: int):
    """The waits of one slice: all of them (SCOPED: filtered once the threads are known),
    else their latencies and the candidates for the TOP worst."""
    w = rq.feed_parts(arr, wakeups)
    return w if scoped else (w["latency_ns"], _worst_candidates(w, top))


def _take_waits(res, scoped: bool, kept: list, lat: list, cand: list) -> None:
    if scoped:
        kept.append(res)
    else:
        lat.append(res[0])
        cand.append(res[1])


def _worst_candidates(w, n: int) -> pl.DataFrame:
    """The waits of W (``SlicedWaits.feed`` arrays) that may be among the N worst: those at
    least as long as the N-th longest (ties included; ``worst_waits`` orders them)."""
    lat = w["latency_ns"]
    if len(lat) > n > 0:
        sel = np.flatnonzero(lat >= np.partition(lat, len(lat) - n)[len(lat) - n])
        w = {k: v[sel] for k, v in w.items()}
    elif n <= 0:
        w = {k: v[:0] for k, v in w.items()}
    df = pl.DataFrame({k: w[k] for k in ("pid", "cpu", "ready_ns", "run_ns", "latency_ns")},
                      schema={k: _WAIT_SCHEMA[k] for k in ("pid", "cpu", "ready_ns", "run_ns", "latency_ns")})
    return df.with_columns(reason=pl.Series(np.where(w["preempted"], "preempted", "wakeup"), dtype=pl.String))


def _latest_names(sw: pl.DataFrame, a, names: _SwitchNames, ids: sched.ThreadIds, in_order: bool
                  ) -> pl.DataFrame:
    """Per thread switched out in the slice, its latest tgid and name (and when)."""
    lid, k = sched.small_ids(a["prev_pid"], ids)
    order, starts, _ = sched.group_runs(lid, k, None if in_order else a["ts_ns"])
    last = order[np.r_[starts[1:], len(order)] - 1]
    return pl.DataFrame({"tid": pl.Series(a["prev_pid"][last], dtype=pl.Int32),
                         "prev_tgid": pl.Series(a["prev_tgid"][last], dtype=pl.UInt32),
                         "prev_comm": names.strings(sw, a, "prev_comm", last),
                         "ts_ns": pl.Series(a["ts_ns"][last], dtype=pl.UInt64)})


def _latest_waker(w: pl.DataFrame, ts: np.ndarray, ids: sched.ThreadIds) -> pl.DataFrame:
    """Per waker in the slice, its latest tgid (and when)."""
    waker = w["waker_pid"].to_numpy()
    lid, k = sched.small_ids(waker, ids)
    order, starts, _ = sched.group_runs(lid, k, None if bool((ts[1:] >= ts[:-1]).all()) else ts)
    last = order[np.r_[starts[1:], len(order)] - 1]
    return pl.DataFrame({"tid": pl.Series(waker[last], dtype=pl.Int32),
                         "waker_tgid": w["waker_tgid"].gather(last),
                         "ts_ns": pl.Series(ts[last], dtype=pl.UInt64)})


def _switch_outs(sw: pl.DataFrame, a, names: _SwitchNames, ids: sched.ThreadIds, in_order: bool
                 ) -> pl.DataFrame:
    """Per (thread switched out, CPU) of the slice: switches, involuntary ones,
    the name at the latest one and its time."""
    pid, cpu, ts = a["prev_pid"], a["cpu"], a["ts_ns"]
    lid, k = sched.small_ids(pid, ids)
    g, ng = sched.group_ids((lid, k), sched.dense(cpu))
    order, starts, _ = sched.group_runs(g, ng, None if in_order else ts)
    ends = np.r_[starts[1:], len(order)]
    last = order[ends - 1]
    keep = pid[last] != 0                                  # idle is no thread
    invol = np.add.reduceat(((a["prev_state"] & sched.STATE_MASK) == 0)[order].astype(np.int64), starts)
    last = last[keep]
    return pl.DataFrame({"prev_pid": pl.Series(pid[last], dtype=pl.Int32),
                         "cpu": pl.Series(cpu[last], dtype=pl.UInt32),
                         "n": pl.Series((ends - starts)[keep], dtype=pl.Int64),
                         "invol": pl.Series(invol[keep], dtype=pl.Int64),
                         "comm": names.strings(sw, a, "prev_comm", last),
                         "last_ts": pl.Series(ts[last], dtype=pl.UInt64)})


def _cpu_order(cpu: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(ORDER, SAME) of a slice's switches: rows by CPU (each CPU's stored order
    is its time order), and where the next row in ORDER is on the same CPU."""
    order = np.argsort(cpu.astype(np.uint16) if int(cpu.max()) < 65536 else cpu, kind="stable")
    cs = cpu[order]
    return order, cs[1:] == cs[:-1]


def _chain_gaps(sw: pl.DataFrame, a, names: _SwitchNames, order: np.ndarray, same: np.ndarray, chain: dict,
                full) -> Tuple[np.ndarray, Optional[pl.DataFrame]]:
    """The runs of one slice, on the CPUs recorded in full (FULL; None: all),
    whose end the kernel did not report (``sched.chain_breaks``): (their rows,
    and a part for ``_unreported`` or None).  CHAIN holds each CPU's latest
    switch-in of the slices before, (ts_ns, next_pid, next_comm): a run whose end
    lies in this slice; it is updated to this slice's latest."""
    ts, cpu, prev, nxt = a["ts_ns"], a["cpu"], a["prev_pid"], a["next_pid"]
    rows, ends = sched.chain_breaks(prev, nxt, order, same)
    if full is not None and len(rows):
        keep = np.isin(cpu[rows], np.asarray(full, dtype=np.int64))
        rows, ends = rows[keep], ends[keep]
    first = order[np.flatnonzero(np.r_[True, ~same])]
    last = order[np.flatnonzero(np.r_[~same, True])]
    carried = [chain[int(cpu[f])] + (int(ts[f]), int(cpu[f])) for f in first
               if int(cpu[f]) in chain and chain[int(cpu[f])][1] != int(prev[f])
               and (full is None or int(cpu[f]) in full)]            # a loop per CPU, not per event
    for r, comm in zip(last.tolist(), names.strings(sw, a, "next_comm", last).to_list()):
        chain[int(cpu[r])] = (int(ts[r]), int(nxt[r]), comm)
    if not len(rows) and not carried:
        return rows, None
    c_ts, c_pid, c_comm, c_end, c_cpu = zip(*carried) if carried else ((), (), (), (), ())
    runs = pl.DataFrame({
        "ts_ns": pl.Series(np.r_[ts[rows], np.asarray(c_ts, dtype=np.uint64)], dtype=pl.UInt64),
        "end_ns": pl.Series(np.r_[ts[ends], np.asarray(c_end, dtype=np.uint64)], dtype=pl.UInt64),
        "cpu": pl.Series(np.r_[cpu[rows], np.asarray(c_cpu, dtype=cpu.dtype)], dtype=pl.UInt32),
        "next_pid": pl.Series(np.r_[nxt[rows], np.asarray(c_pid, dtype=nxt.dtype)], dtype=pl.Int32),
        "next_comm": pl.concat([names.strings(sw, a, "next_comm", rows), pl.Series(list(c_comm), dtype=pl.String)]),
    })
    return rows, _unreported_part(runs)


def _intrusions(sw: pl.DataFrame, a, names: _SwitchNames, ids: sched.ThreadIds, carry: Optional[pl.DataFrame],
                monitored, order: np.ndarray, same: np.ndarray, gaps: np.ndarray, full):
    """([intrusion parts], new carry) of one slice: switch-ins on monitored CPUs
    whose end (the CPU's next switch) is known, summed per task (a run whose end
    the kernel did not report -- GAPS, ``_chain_gaps`` -- counts, for no time);
    the carry is each CPU's latest switch-in, whose end lies in a later slice."""
    ts, cpu, nxt = a["ts_ns"], a["cpu"], a["next_pid"]
    n = len(ts)
    end_ns = np.zeros(n, dtype=np.uint64)
    has_end = np.zeros(n, dtype=bool)
    p = np.flatnonzero(same)
    end_ns[order[p]] = ts[order[p + 1]]
    has_end[order[p]] = True
    first = order[np.flatnonzero(np.r_[True, ~same])]
    last = order[np.flatnonzero(np.r_[~same, True])]
    parts = []
    if carry is not None and carry.height:
        firsts = pl.DataFrame({"cpu": pl.Series(cpu[first], dtype=pl.UInt32),
                               "end_ns": pl.Series(ts[first], dtype=pl.UInt64),
                               "first_prev": pl.Series(a["prev_pid"][first], dtype=pl.Int32)})
        ended = (carry.join(firsts, on="cpu", how="inner")
                 .with_columns(end_seen=(pl.col("first_prev") == pl.col("next_pid")) | ~sched.on_full_cpus(full))
                 .drop("first_prev"))
        if ended.height:
            parts.append(_intr_part(ended, monitored))
        carry = carry.join(firsts, on="cpu", how="anti")
    new = pl.DataFrame({"ts_ns": pl.Series(ts[last], dtype=pl.UInt64), "cpu": pl.Series(cpu[last], dtype=pl.UInt32),
                        "next_pid": pl.Series(nxt[last], dtype=pl.Int32),
                        "next_comm": names.strings(sw, a, "next_comm", last)})
    carry = new if carry is None or not carry.height else pl.concat([carry, new], how="vertical")
    sel = np.flatnonzero(has_end & np.isin(cpu, np.asarray(monitored, dtype=np.int64)) & (nxt != 0))
    if len(sel):
        unseen = np.zeros(n, dtype=bool)
        unseen[gaps] = True
        dur = np.where(unseen[sel], 0, end_ns[sel].astype(np.int64) - ts[sel].astype(np.int64))
        lid, tids = ids.local(nxt[sel])
        code = names.codes(sw, a, "next_comm", sel)
        g, ng = sched.group_ids((lid, len(tids)), sched.dense(code), sched.dense(cpu[sel]))
        count = np.bincount(g, minlength=ng)
        total = np.zeros(ng, dtype=np.int64)
        np.add.at(total, g, dur)
        mx = np.full(ng, np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(mx, g, dur)
        rep = np.full(ng, len(sel), dtype=np.int64)
        np.minimum.at(rep, g, np.arange(len(sel)))
        has = count > 0
        rep = rep[has]
        parts.append(pl.DataFrame({
            "next_pid": pl.Series(nxt[sel][rep], dtype=pl.Int32),
            "next_comm": names.strings(sw, a, "next_comm", sel[rep]),
            "cpu": pl.Series(cpu[sel][rep], dtype=pl.UInt32),
            "count": pl.Series(count[has], dtype=pl.get_index_type()),
            "total_ns": pl.Series(total[has], dtype=pl.Int64), "max_ns": pl.Series(mx[has], dtype=pl.Int64)}))
    return parts, carry


class _SwitchNames:
    """Task names of a slice's switches, made only for the rows reported or grouped.

    Format 3 does not store them: rebuilt by the reader for every switch read,
    they took ~55 ms of the main thread's 0.8 s on 850 k switches, for a few
    hundred rows reported.  Here they are rebuilt from the pid, time and CPU of
    those rows only (``Capture.names``); format 2's stored names are read with
    the slice (``stored``) and taken from it.
    """

    def __init__(self, cap: Capture):
        self._cap = cap
        self._pid = cap.arrow.source("sched_switch").derived   # rebuilt name column -> its pid column

    def stored(self, *cols: str) -> List[str]:
        """Of the name columns COLS, those read with the slice."""
        return [c for c in cols if c not in self._pid]

    def explain_columns(self) -> List[str]:
        """The switches' columns the causes read (``_explain_sliced``)."""
        return _EXPLAIN_COLS + self.stored("next_comm")

    def codes(self, sw: pl.DataFrame, a, col: str, rows: np.ndarray) -> np.ndarray:
        """Integers equal where the names in COL at ROWS of slice SW are (A: its numpy
        columns); comparable across slices only for rebuilt names."""
        if col in self._pid:
            return self._cap.names().codes(a[self._pid[col]][rows], a["ts_ns"][rows], a["cpu"][rows])
        return _name_codes(sw[col])[rows]

    def strings(self, sw: pl.DataFrame, a, col: str, rows) -> pl.Series:
        """The names in COL at ROWS of slice SW (A: its numpy columns)."""
        if col in self._pid:
            return self._cap.names().strings(self.codes(sw, a, col, np.asarray(rows)))
        return sw[col].gather(rows).cast(pl.String)


def _name_codes(names: pl.Series) -> np.ndarray:
    """Integers equal where the stored task names of NAMES are (Categorical codes; names
    come as strings from captures that do not store them dictionary-encoded)."""
    if names.dtype != pl.Categorical:
        names = names.cast(pl.Categorical)
    return names.to_physical().to_numpy()


def _intr_part(done: pl.DataFrame, monitored) -> pl.DataFrame:
    """Switch-ins on monitored CPUs whose end is known: count, total and max on-CPU time
    per task (a run whose end the kernel did not report, ``end_seen`` false, counts for
    no time)."""
    on_cpu = pl.col("end_ns").cast(pl.Int64) - pl.col("ts_ns").cast(pl.Int64)
    return (done.filter(pl.col("cpu").is_in(monitored) & (pl.col("next_pid") != 0))
            .with_columns(on_cpu_ns=pl.when(pl.col("end_seen")).then(on_cpu).otherwise(0))
            .group_by("next_pid", "next_comm", "cpu")
            .agg(count=pl.len(), total_ns=pl.col("on_cpu_ns").sum(), max_ns=pl.col("on_cpu_ns").max())
            .with_columns(pl.col("next_comm").cast(pl.String)))


def _scope(monitored, full) -> Optional[List[int]]:
    """The CPUs whose unreported switches are reported: the monitored ones (all
    CPUs when none is) among those recorded in full (FULL,
    ``sched.complete_cpus``); None: all CPUs."""
    if monitored:
        return sorted(set(monitored) if full is None else set(monitored) & set(full))
    return full


def _unreported_part(runs: pl.DataFrame) -> pl.DataFrame:
    """Runs (ts_ns, end_ns, cpu, next_pid, next_comm) whose end the kernel did not
    report: count and time to the next switch seen, per task and CPU."""
    return (runs.group_by("next_pid", "next_comm", "cpu")
            .agg(count=pl.len(), total_ns=(pl.col("end_ns").cast(pl.Int64) - pl.col("ts_ns").cast(pl.Int64)).sum())
            .with_columns(pl.col("next_comm").cast(pl.String)))


def _unreported(parts: List[pl.DataFrame], scope) -> dict:
    """The unreported-switch figures (docs/json-report.md) of the SCOPE CPUs
    (``_scope``) from the parts of either path."""
    if scope == []:
        return {"unreported_switches": None, "unattributed_ns": None, "unreported_after": []}
    u = (pl.concat(parts).filter(pl.col("cpu").is_in(scope) if scope is not None else pl.lit(True))
         .group_by("next_pid", "next_comm", "cpu")
         .agg(pl.col("count").sum(), pl.col("total_ns").sum())
         .sort(["count", "total_ns", "next_pid", "cpu"], descending=[True, True, False, False])
         if parts else pl.DataFrame(schema={"next_pid": pl.Int32, "next_comm": pl.String, "cpu": pl.UInt32,
                                             "count": pl.UInt32, "total_ns": pl.Int64}))
    return {"unreported_switches": int(u["count"].sum() or 0), "unattributed_ns": int(u["total_ns"].sum() or 0),
            "unreported_after": [{"pid": int(r["next_pid"]), "comm": r["next_comm"], "cpu": int(r["cpu"]),
                                  "count": int(r["count"]), "total_ns": int(r["total_ns"])}
                                 for r in u.head(10).iter_rows(named=True)]}


def _unreported_note(d: dict, lost: int = 0) -> Optional[str]:
    """The report's note on the gaps in the CPUs' chains of switches; LOST: the
    sched_switch records the capture itself lost or the kernel skipped, which
    make gaps too."""
    n = d.get("unreported_switches")
    if not n:
        return None
    who = ", ".join(f"{r['comm']} (tid {r['pid']}) x{r['count']} on CPU {r['cpu']}" for r in d["unreported_after"][:3])
    why = "not reported by the kernel" if not lost else \
        f"missing: {lost:,} sched_switch records were lost or skipped (see the capture checks), the rest not reported"
    return (f"{n} context switch{'es' if n > 1 else ''} {why}: a task was seen switching in "
            f"and never out ({who}); the {d['unattributed_ns'] / 1e6:.3g} ms from those switch-ins to the next "
            "switch seen are attributed to no task, and events in those tasks' context (the wakeups they ran) "
            "are missing too")


def _explain_sliced(cap: Capture, top_waits: pl.DataFrame, end: int, rows: int, names: _SwitchNames,
                    ids: Optional[sched.ThreadIds] = None, slices: Optional[List[pl.DataFrame]] = None,
                    full: Optional[List[int]] = None) -> List[dict]:
    """The worst waits' causes and names from one more pass over the switches.

    Per wait, only sums are kept across slices: each occupant's time on the
    wait's CPU within it, and the latest switch there so far (its on-CPU
    interval ends in a later slice).  A wait of a second on a busy CPU spans
    hundreds of thousands of switches; holding them cost 170 MiB here.  An
    interval whose end the kernel did not report, on a CPU of FULL (recorded
    in full; None: all), is its task's "or unreported" (``causes.task_label``).
    """
    ws = list(top_waits.iter_rows(named=True))
    cpus = sorted({int(w["cpu"]) for w in ws})
    last_run = max(int(w["run_ns"]) for w in ws)
    first_ready = {c: min(int(w["ready_ns"]) for w in ws if int(w["cpu"]) == c) for c in cpus}
    # carry: the latest switch on the wait's CPU read so far, (ts_ns, next_pid, next_comm)
    carry: List[Optional[tuple]] = [None] * len(ws)
    hits: List[List[tuple]] = [[] for _ in ws]    # (pid, comm names, overlap_ns) pieces
    comms: List[Optional[str]] = [None] * len(ws)
    ids = ids or sched.ThreadIds()
    if slices is None:
        slices = (sl.get("sched_switch")
                  for sl in cap.chunks({"sched_switch": names.explain_columns()}, rows, categorical=True))
    for sw in slices:
        if sw is None or not sw.height:
            continue
        ts_all = sw["ts_ns"].to_numpy()
        if int(ts_all.min()) > last_run:
            break
        cpu_all = sw["cpu"].to_numpy()
        pid_all = sw["next_pid"].to_numpy()
        prev_all = sw["prev_pid"].to_numpy()
        arr = {"ts_ns": ts_all, "cpu": cpu_all, "next_pid": pid_all}
        for c in cpus:
            whole = full is None or c in full
            on = np.flatnonzero(cpu_all == c)              # each CPU's stored order is its time order
            if not len(on):
                continue
            # Of the switches before its waits' earliest start, only the last one counts.
            ts_c = ts_all[on]
            lo = max(0, int(np.searchsorted(ts_c, np.uint64(first_ready[c]), side="right")) - 1)
            hi = int(np.searchsorted(ts_c, np.uint64(last_run), side="right"))
            if hi <= lo:
                continue
            on, ts_c = on[lo:hi], ts_c[lo:hi]
            occ = None
            for i, w in enumerate(ws):
                if int(w["cpu"]) != c:
                    continue
                a, b, me = int(w["ready_ns"]), int(w["run_ns"]), int(w["pid"])
                ja = int(np.searchsorted(ts_c, np.uint64(a), side="right"))
                jb = int(np.searchsorted(ts_c, np.uint64(b), side="right"))
                if ja:
                    r = int(on[ja - 1])
                    carry[i] = (int(ts_all[r]), int(pid_all[r]), names.strings(sw, arr, "next_comm", [r])[0])
                if jb <= ja:
                    continue
                if comms[i] is None:
                    hit = np.flatnonzero((ts_c[ja:jb] == b) & (pid_all[on[ja:jb]] == me))
                    comms[i] = names.strings(sw, arr, "next_comm", on[ja + hit[:1]])[0] if len(hit) else None
                if carry[i] is not None:
                    hits[i].append(_carry_overlap(carry[i], int(ts_c[ja]), a, b, me,
                                                  whole and int(prev_all[on[ja]]) != carry[i][1]))
                # The intervals between these switches lie within (a, b]: whole, except those
                # starting at b (the wait's own switch-in), which do not overlap it.
                hi = min(jb - 1, int(np.searchsorted(ts_c, np.uint64(b), side="left")))
                if hi > ja:
                    if occ is None:
                        gap = np.zeros(len(on), dtype=bool)
                        if whole:
                            gap[:-1] = prev_all[on[1:]] != pid_all[on[:-1]]
                        occ = _cpu_occupants(sw, arr, names, on, ts_c, ids, gap)
                    hits[i].append(_range_overlaps(occ, ja, hi, me))
                r = int(on[jb - 1])
                carry[i] = (int(ts_all[r]), int(pid_all[r]), names.strings(sw, arr, "next_comm", [r])[0])
    worst = []
    irqs = causes.occupancy(cap, None, windows=[(int(w["cpu"]), int(w["ready_ns"]), int(w["run_ns"])) for w in ws])
    for i, w in enumerate(ws):
        c, a, b = int(w["cpu"]), int(w["ready_ns"]), int(w["run_ns"])
        if carry[i] is not None:  # the last switch before the wait ended: on the CPU until then at least
            hits[i].append(_carry_overlap(carry[i], end, a, b, int(w["pid"]), False))
        others = causes.overlaps(irqs, c, a, b, exclude_pid=w["pid"])
        pieces = [h for h in hits[i] if h is not None]
        if pieces:
            task = (pl.DataFrame({"pid": pl.Series(np.concatenate([p[0] for p in pieces]), dtype=pl.Int32),
                                  "label": pl.concat([p[1] for p in pieces]),
                                  "overlap_ns": pl.Series(np.concatenate([p[2] for p in pieces]), dtype=pl.Int64),
                                  "gap": pl.Series(np.concatenate([p[3] for p in pieces]), dtype=pl.Boolean)})
                    .group_by("label", "pid", "gap").agg(pl.col("overlap_ns").sum())
                    .select(kind=pl.lit("task"), label=causes.task_label("label", "pid", pl.col("gap")), pid="pid",
                            overlap_ns="overlap_ns"))
            others = pl.concat([task, others], how="vertical")
        why = causes.describe(others, c, a, b)
        worst.append({
            "ts_ns": b, "wall_time": cap.wall_time(w["run_ns"]),
            "latency_ns": int(w["latency_ns"]), "pid": int(w["pid"]), "comm": comms[i],
            "cpu": c, "reason": w["reason"], "cause": why["text"],
            "occupants": why["occupants"],
        })
    return worst


def _carry_overlap(carry: tuple, end_ns: int, a: int, b: int, exclude_pid: int, gap: bool):
    """The carried switch's on-CPU interval [its ts, END_NS) within [A, B): a one-row piece
    (GAP: its end was not reported), or None."""
    ts, pid, comm = carry
    if pid == 0 or pid == exclude_pid or not (ts < b and end_ns > a):
        return None
    return (np.array([pid]), pl.Series([comm], dtype=pl.String), np.array([min(end_ns, b) - max(ts, a)]),
            np.array([gap]))


def _cpu_occupants(sw: pl.DataFrame, a, names: _SwitchNames, on: np.ndarray, ts: np.ndarray,
                   ids: sched.ThreadIds, gap: np.ndarray):
    """The on-CPU intervals between the switches ON (rows of one CPU, in time order) of a
    slice SW (A: its numpy columns), grouped by (pid, name, GAP: the interval's end was
    not reported): what ``_range_overlaps`` sums for each wait there."""
    pid = a["next_pid"][on]
    g, ng = sched.group_ids(sched.small_ids(pid, ids), sched.dense(names.codes(sw, a, "next_comm", on)),
                            (gap.astype(np.int64), 2))
    rep = np.full(ng, len(on), dtype=np.int64)
    np.minimum.at(rep, g, np.arange(len(on)))
    has = rep < len(on)
    first = np.minimum(rep, len(on) - 1)
    return {"g": g[:-1], "dur": ts[1:].astype(np.int64) - ts[:-1].astype(np.int64), "ng": ng,
            "pid": np.where(has, pid[first], 0), "gap": gap[first], "rep": rep, "on": on,
            "names": lambda rows: names.strings(sw, a, "next_comm", rows)}


def _range_overlaps(occ: dict, lo: int, hi: int, exclude_pid: int):
    """Time held per (pid, name) by the intervals LO..HI-1 of OCC, all within the wait,
    without idle and the waiting thread: a piece, or None."""
    g = occ["g"][lo:hi]
    cnt = np.bincount(g, minlength=occ["ng"])
    dur = occ["dur"][lo:hi]
    if int(occ["dur"][lo:hi].sum()) < 1 << 52:   # exact in float64
        tot = np.bincount(g, weights=dur, minlength=occ["ng"]).astype(np.int64)
    else:
        tot = np.zeros(occ["ng"], dtype=np.int64)
        np.add.at(tot, g, dur)
    sel = np.flatnonzero((cnt > 0) & (occ["pid"] != 0) & (occ["pid"] != exclude_pid))
    if not len(sel):
        return None
    rows = occ["on"][occ["rep"][sel]]
    return (occ["pid"][sel], occ["names"](rows), tot[sel], occ["gap"][sel])
