"""Lock & Syscall Contention: futex waits per thread and per lock, sleeps,
per-syscall latency of the targets, blocking calls.

Definitions:
- a call is an enter record followed, on the same thread, by its exit
  record; an exit with no enter (the call began before the capture) yields
  nothing, an enter with no exit is *unfinished* (still blocked when the
  capture ended, or its exit was lost);
- futex wait: FUTEX_WAIT, WAIT_BITSET, LOCK_PI, LOCK_PI2, WAIT_REQUEUE_PI;
  its wait time is exit - enter (time blocked, or ~0 when the word had
  already changed); a futex is a (process, user address) pair;
- futex wake: WAKE, WAKE_BITSET, WAKE_OP, UNLOCK_PI, (CMP_)REQUEUE(_PI);
  ``woken`` sums their return values (threads woken or requeued);
- sleep: nanosleep / clock_nanosleep; requested time of an absolute
  (TIMER_ABSTIME) sleep is its deadline minus the clock at entry.
Scope: the targets' threads when targets are known, else calls made on the
monitored CPUs, else every recorded thread (system-wide, never judged).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import polars as pl

from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import FAIL, PASS, WARN, Check, Context, ModuleResult
from latencyscope.analyze.stats import fmt_ns, percentile_expr, percentiles

MODULE = "syscall"

POLICY = {
    "blocking_syscall_ns": (1_000_000, "a target syscall that takes longer than this is a blocking call"),
    "max_blocking_syscalls": (0, "blocking calls of targets above this count WARN"),
    "blocking_fail_ns": (0, "a target call longer than this FAILs (0 = never)"),
    "futex_wait_warn_ns": (1_000_000, "a futex wait of a target longer than this WARNs"),
    "futex_wait_fail_ns": (0, "a futex wait of a target longer than this FAILs (0 = never)"),
    "max_target_sleeps": (0, "sleep calls (nanosleep/clock_nanosleep) by targets above this count WARN"),
}

FUTEX_CMD_MASK = 0x7F
FUTEX_WAIT_CMDS = (0, 6, 9, 11, 13)          # WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2
FUTEX_WAKE_CMDS = (1, 3, 4, 5, 7, 10, 12)    # WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP, UNLOCK_PI, WAKE_BITSET, CMP_REQUEUE_PI
TIMER_ABSTIME = 1
REALTIME_CLOCKS = (0, 8, 11)                 # CLOCK_REALTIME, REALTIME_ALARM, TAI (as realtime)
ETIMEDOUT = 110
NEVER_RETURN = ("exit", "exit_group")
TOP_ROWS = 20


def pair_calls(enter: pl.DataFrame, exit_: pl.DataFrame, end_ns: int,
               match_nr: bool = False) -> pl.DataFrame:
    """Pair each enter record with the next record of its thread when that is an exit.

    Both frames have ts_ns, pid (thread), tgid and, with MATCH_NR, nr (both
    must agree: a lost record never pairs two different calls).  Returns
    the enter columns plus end_ns, ret, duration_ns and unfinished (no exit
    seen: duration is counted up to END_NS, the capture's end).
    """
    nr_in = pl.col("nr") if match_nr else pl.lit(-1, pl.Int32)
    ev = pl.concat([
        enter.lazy().with_row_index("_row").select(
            "pid", "ts_ns", k=pl.lit(0, pl.Int8), _row=pl.col("_row").cast(pl.Int64), _nr=nr_in.cast(pl.Int32),
            ret=pl.lit(None, pl.Int64)),
        exit_.lazy().select(
            "pid", "ts_ns", k=pl.lit(1, pl.Int8), _row=pl.lit(None, pl.Int64),
            _nr=(pl.col("nr") if match_nr else pl.lit(-1)).cast(pl.Int32), ret=pl.col("ret").cast(pl.Int64)),
    ]).sort("pid", "ts_ns", "k")
    nxt = ev.with_columns(
        n_k=pl.col("k").shift(-1).over("pid"),
        n_ts=pl.col("ts_ns").shift(-1).over("pid"),
        n_nr=pl.col("_nr").shift(-1).over("pid"),
        n_ret=pl.col("ret").shift(-1).over("pid"),
    ).filter(pl.col("k") == 0)
    paired = (pl.col("n_k") == 1) & (pl.col("n_nr") == pl.col("_nr"))
    ends = nxt.select(
        "_row",
        end_ns=pl.when(paired).then(pl.col("n_ts")),
        ret=pl.when(paired).then(pl.col("n_ret")),
        # Last record of its thread: still in the call when the capture ended.
        unfinished=pl.col("n_k").is_null(),
        # Followed by another enter: its exit was lost, no duration is known.
        _broken=~paired & pl.col("n_k").is_not_null(),
    )
    return (
        enter.lazy().with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
        .join(ends, on="_row", how="left")
        .filter(~pl.col("_broken"))
        .with_columns(duration_ns=pl.when(pl.col("unfinished"))
                      .then(pl.lit(end_ns, pl.Int64) - pl.col("ts_ns").cast(pl.Int64))
                      .otherwise(pl.col("end_ns").cast(pl.Int64) - pl.col("ts_ns").cast(pl.Int64)))
        .drop("_row", "_broken")
        .collect()
    )


def futex_cmd() -> pl.Expr:
    return pl.col("op") & FUTEX_CMD_MASK


def requested_expr(realtime_offset_ns: int) -> pl.Expr:
    """Requested sleep in ns: relative as given; absolute minus the clock at entry (>= 0)."""
    now = pl.when(pl.col("clockid").is_in(REALTIME_CLOCKS)) \
        .then(pl.col("ts_ns").cast(pl.Int64) + realtime_offset_ns) \
        .otherwise(pl.col("ts_ns").cast(pl.Int64))
    rel = pl.when((pl.col("flags") & TIMER_ABSTIME) != 0) \
        .then((pl.col("requested_ns") - now).clip(0, None)) \
        .otherwise(pl.col("requested_ns"))
    return pl.when(pl.col("requested_ns") < 0).then(None).otherwise(rel)


def _scope(df: pl.DataFrame, tids: List[int], tgids: List[int], monitored: List[int]) -> pl.DataFrame:
    if tgids:
        return df.filter(pl.col("tgid").cast(pl.Int64).is_in(tgids) | pl.col("pid").is_in(tids))
    if monitored:
        return df.filter(pl.col("cpu").is_in(monitored))
    return df


def _comms(cap: Capture) -> pl.DataFrame:
    """tid -> comm: names seen in the capture (sleep records, switches) over the start snapshot."""
    parts = [cap.tasks.select(pid=pl.col("tid"), comm=pl.col("comm"))]
    se = cap.table("sleep_enter")
    if se is not None and se.height:
        parts.append(se.select("pid", "comm"))
    sw = cap.table("sched_switch")
    if sw is not None and sw.height:
        parts.append(sw.select(pid=pl.col("next_pid"), comm=pl.col("next_comm")))
    return (pl.concat(parts, how="vertical_relaxed").filter(pl.col("comm").is_not_null() & (pl.col("comm") != ""))
            .group_by("pid").agg(pl.col("comm").last()))


def syscall_names(cap: Capture) -> pl.DataFrame:
    """nr -> name from the manifest (the recorder's table wins over the module's extra names)."""
    extra = ((cap.manifest.get("module_facts") or {}).get(MODULE) or {}).get("syscall_names_extra") or {}
    table = {**extra, **(cap.manifest.get("syscalls") or {})}
    return pl.DataFrame({"nr": [int(k) for k in table], "name": [str(v) for v in table.values()]},
                        schema={"nr": pl.Int32, "name": pl.String})


def _empty(why: str) -> ModuleResult:
    return ModuleResult(MODULE, {"message": why}, recorded=False)


def analyze(cap: Capture, ctx: Context) -> ModuleResult:
    if not cap.has_module(MODULE) or cap.table("futex_enter") is None:
        return _empty("module not recorded in this capture (record with --modules syscall)")
    pol = ctx.policy[MODULE]
    notes: List[str] = []
    _, end_ns = cap.window_ns
    targets = [int(t) for t in ctx.targets]
    monitored = list(ctx.monitored_cpus)
    tids = _target_tids(cap, targets)
    scope = ("targets" if targets else "monitored CPUs" if monitored else "system-wide")
    comms = _comms(cap)

    # --- futex --------------------------------------------------------------
    fx = pair_calls(cap.without_recorder(cap.table("futex_enter")), cap.without_recorder(cap.table("futex_exit")),
                    end_ns)
    fx = _scope(fx, tids, targets, monitored).with_columns(cmd=futex_cmd())
    waits_all = fx.filter(pl.col("cmd").is_in(FUTEX_WAIT_CMDS))
    waits = waits_all.filter(~pl.col("unfinished"))
    wakes = fx.filter(pl.col("cmd").is_in(FUTEX_WAKE_CMDS))
    wpct = percentiles(waits["duration_ns"].to_numpy())
    wake_by = (wakes.group_by("tgid", "uaddr")
               .agg(wakes=pl.len(), woken=pl.col("ret").filter(pl.col("ret") > 0).sum()))
    by_addr = (waits.group_by("tgid", "uaddr")
               .agg(waits=pl.len(), waiters=pl.col("pid").n_unique(),
                    total_wait_ns=pl.col("duration_ns").sum(), max_wait_ns=pl.col("duration_ns").max())
               .join(wake_by, on=["tgid", "uaddr"], how="left")
               .with_columns(pl.col("wakes", "woken").fill_null(0))
               .sort(["total_wait_ns", "waits"], descending=True))
    by_thread = (waits.group_by("pid", "tgid")
                 .agg(waits=pl.len(), total_wait_ns=pl.col("duration_ns").sum(),
                      max_wait_ns=pl.col("duration_ns").max(),
                      timeouts=(pl.col("ret") == -ETIMEDOUT).sum())
                 .join(comms, on="pid", how="left")
                 .sort(["total_wait_ns", "waits"], descending=True))
    futex = {
        "waits": waits.height,
        "total_wait_ns": int(waits["duration_ns"].sum() or 0),
        "p50_wait_ns": wpct["p50_ns"],
        "p99_wait_ns": wpct["p99_ns"],
        "max_wait_ns": wpct["max_ns"],
        "unfinished_waits": int(waits_all["unfinished"].sum() or 0),
        "timeouts": int((waits["ret"] == -ETIMEDOUT).sum() or 0),
        "wakes": wakes.height,
        "woken": int(wakes.filter(pl.col("ret") > 0)["ret"].sum() or 0),
        "by_addr": [{"uaddr": int(r["uaddr"]), "pid": int(r["tgid"]), "waits": int(r["waits"]),
                     "waiters": int(r["waiters"]), "total_wait_ns": int(r["total_wait_ns"]),
                     "max_wait_ns": int(r["max_wait_ns"]), "wakes": int(r["wakes"]), "woken": int(r["woken"])}
                    for r in by_addr.head(max(ctx.top, TOP_ROWS)).iter_rows(named=True)],
        "by_thread": [{"pid": int(r["pid"]), "tgid": int(r["tgid"]), "comm": r["comm"], "waits": int(r["waits"]),
                       "total_wait_ns": int(r["total_wait_ns"]), "max_wait_ns": int(r["max_wait_ns"]),
                       "timeouts": int(r["timeouts"])}
                      for r in by_thread.head(max(ctx.top, TOP_ROWS)).iter_rows(named=True)],
    }

    # --- sleeps -------------------------------------------------------------
    sl = pair_calls(cap.without_recorder(cap.table("sleep_enter")), cap.without_recorder(cap.table("sleep_exit")),
                    end_ns, match_nr=True)
    sl = _scope(sl, tids, targets, monitored).with_columns(req_ns=requested_expr(cap.realtime_offset_ns))
    done = sl.filter(~pl.col("unfinished"))
    by_pid = (sl.group_by("pid", "tgid")
              .agg(comm=pl.col("comm").last(), count=pl.len(),
                   requested_ns=pl.col("req_ns").filter(~pl.col("unfinished")).sum(),
                   actual_ns=pl.col("duration_ns").filter(~pl.col("unfinished")).sum(),
                   max_actual_ns=pl.col("duration_ns").filter(~pl.col("unfinished")).max(),
                   # woken early (a signal: EINTR) is no overshoot, not a negative one
                   max_overshoot_ns=(pl.col("duration_ns") - pl.col("req_ns")).clip(0, None)
                   .filter(~pl.col("unfinished")).max(),
                   unfinished=pl.col("unfinished").sum())
              .sort(["count", "actual_ns"], descending=True))
    sleeps = {
        "count": sl.height,
        "unfinished": int(sl["unfinished"].sum() or 0),
        "requested_ns": int(done["req_ns"].sum() or 0),
        "actual_ns": int(done["duration_ns"].sum() or 0),
        "by_pid": [{"pid": int(r["pid"]), "tgid": int(r["tgid"]), "comm": r["comm"], "count": int(r["count"]),
                    "requested_ns": int(r["requested_ns"] or 0), "actual_ns": int(r["actual_ns"] or 0),
                    "max_actual_ns": _int(r["max_actual_ns"]), "max_overshoot_ns": _int(r["max_overshoot_ns"]),
                    "unfinished": int(r["unfinished"])}
                   for r in by_pid.head(max(ctx.top, TOP_ROWS)).iter_rows(named=True)],
    }

    # --- every syscall of the targets ----------------------------------------
    names = syscall_names(cap)
    se, sx = cap.table("syscall_enter"), cap.table("syscall_exit")
    per_syscall = bool((cap.manifest.get("module_facts") or {}).get(MODULE, {}).get("per_syscall")) or \
        bool(se is not None and se.height)
    calls = None
    syscalls: List[dict] = []
    if se is not None and sx is not None and se.height:
        calls = pair_calls(se, sx, end_ns, match_nr=True)
        if targets:
            calls = calls.filter(pl.col("tgid").cast(pl.Int64).is_in(targets) | pl.col("pid").is_in(tids))
        calls = (calls.join(names, on="nr", how="left")
                 .with_columns(name=pl.col("name").fill_null(pl.format("syscall_{}", pl.col("nr")))))
        table = (calls.filter(~pl.col("unfinished"))
                 .group_by("name")
                 .agg(count=pl.len(), total_ns=pl.col("duration_ns").sum(),
                      p50_ns=percentile_expr("duration_ns", 0.50), p99_ns=percentile_expr("duration_ns", 0.99),
                      max_ns=pl.col("duration_ns").max(), errors=(pl.col("ret") < 0).sum())
                 .sort(["total_ns", "count"], descending=True))
        syscalls = [{"name": r["name"], "count": int(r["count"]), "total_ns": int(r["total_ns"]),
                     "p50_ns": int(r["p50_ns"]), "p99_ns": int(r["p99_ns"]), "max_ns": int(r["max_ns"]),
                     "errors": int(r["errors"])} for r in table.iter_rows(named=True)]
    elif not per_syscall:
        notes.append("per-syscall latency needs a target: record with --pid")

    # --- blocking calls ------------------------------------------------------------
    limit = int(pol["blocking_syscall_ns"])
    blocking: List[dict] = []
    n_blocking = 0
    if scope != "system-wide":
        if calls is not None:
            pool = calls.select("ts_ns", "pid", "tgid", "cpu", "name", "duration_ns", "ret", "unfinished")
        else:
            # Without the per-syscall tables the futex and sleep calls are what is known.
            pool = pl.concat([
                fx.select("ts_ns", "pid", "tgid", "cpu", name=pl.lit("futex"), duration_ns="duration_ns",
                          ret="ret", unfinished="unfinished"),
                sl.join(names, on="nr", how="left").select(
                    "ts_ns", "pid", "tgid", "cpu", name=pl.col("name").fill_null("clock_nanosleep"),
                    duration_ns="duration_ns", ret="ret", unfinished="unfinished"),
            ], how="vertical_relaxed")
        slow = (pool.filter((pl.col("duration_ns") > limit) & ~(pl.col("unfinished") & pl.col("name").is_in(NEVER_RETURN)))
                .join(comms, on="pid", how="left")
                .sort("duration_ns", descending=True))
        n_blocking = slow.height
        blocking = [{"ts_ns": int(r["ts_ns"]), "wall_time": cap.wall_time(r["ts_ns"]), "pid": int(r["pid"]),
                     "tgid": int(r["tgid"]), "comm": r["comm"], "name": r["name"],
                     "duration_ns": int(r["duration_ns"]), "ret": _int(r["ret"]), "unfinished": bool(r["unfinished"])}
                    for r in slow.head(max(ctx.top, TOP_ROWS)).iter_rows(named=True)]
    else:
        notes.append("system-wide capture (no --pid, no monitored CPUs): blocking calls are not listed")

    data = {
        "scope": scope,
        "targets": targets,
        "futex": futex,
        "sleeps": sleeps,
        "syscalls": syscalls,
        "blocking_threshold_ns": limit,
        "blocking_calls": n_blocking,
        "blocking": blocking,
    }
    return ModuleResult(MODULE, data, _checks(data, pol), notes=notes)


def _int(v) -> Optional[int]:
    return None if v is None else int(v)


def _target_tids(cap: Capture, targets: List[int]) -> List[int]:
    if not targets:
        return []
    from latencyscope.analyze import sched

    return sched.target_tids(sched.task_map(cap), targets)


def _checks(d: dict, pol: Dict) -> List[Check]:
    if d["scope"] == "system-wide":
        f = d["futex"]
        return [Check(MODULE, "scope", PASS,
                      f"system-wide: {f['waits']:,} futex waits, {d['sleeps']['count']:,} sleeps "
                      "(name --pid or --cpus to judge)")]
    checks: List[Check] = []
    who = d["scope"]
    f = d["futex"]
    mx = f["max_wait_ns"]
    warn, fail = pol["futex_wait_warn_ns"], pol["futex_wait_fail_ns"]
    top = f["by_addr"][0] if f["by_addr"] else None
    where = (f" (futex 0x{top['uaddr']:x} of pid {top['pid']}: {top['waits']} waits by "
             f"{top['waiters']} thread(s), {fmt_ns(top['total_wait_ns'])} in all)") if top else ""
    if mx is not None and fail and mx > fail:
        checks.append(Check(MODULE, "futex_wait", FAIL, f"longest futex wait of {who} {fmt_ns(mx)} > "
                            f"{fmt_ns(fail)}{where}", mx, fail))
    elif mx is not None and mx > warn:
        checks.append(Check(MODULE, "futex_wait", WARN, f"longest futex wait of {who} {fmt_ns(mx)} > "
                            f"{fmt_ns(warn)}{where}", mx, warn))
    else:
        checks.append(Check(MODULE, "futex_wait", PASS, f"longest futex wait of {who} {fmt_ns(mx)} "
                            f"(limit {fmt_ns(warn)})", mx, warn))
    n = d["sleeps"]["count"]
    lim = pol["max_target_sleeps"]
    if n > lim:
        s = d["sleeps"]["by_pid"][0]
        checks.append(Check(MODULE, "sleeps", WARN, f"{n:,} sleep calls by {who}: {s['comm']} (tid {s['pid']}) "
                            f"slept {s['count']:,} times, {fmt_ns(s['actual_ns'])} in all", n, lim))
    else:
        checks.append(Check(MODULE, "sleeps", PASS, f"{n:,} sleep calls by {who}", n, lim))
    nb = d["blocking_calls"]
    lim = pol["max_blocking_syscalls"]
    bfail = pol["blocking_fail_ns"]
    worst = d["blocking"][0] if d["blocking"] else None
    desc = (f": longest {worst['name']} by {worst['comm']} (tid {worst['pid']}) {fmt_ns(worst['duration_ns'])}"
            if worst else "")
    if worst and bfail and worst["duration_ns"] > bfail:
        checks.append(Check(MODULE, "blocking_syscalls", FAIL, f"{nb:,} calls of {who} blocked > "
                            f"{fmt_ns(d['blocking_threshold_ns'])}{desc} > {fmt_ns(bfail)}", worst["duration_ns"], bfail))
    elif nb > lim:
        checks.append(Check(MODULE, "blocking_syscalls", WARN, f"{nb:,} calls of {who} blocked > "
                            f"{fmt_ns(d['blocking_threshold_ns'])}{desc}", nb, lim))
    else:
        checks.append(Check(MODULE, "blocking_syscalls", PASS, f"{nb:,} calls of {who} blocked > "
                            f"{fmt_ns(d['blocking_threshold_ns'])}", nb, lim))
    return checks
