"""Isolation Verifier: intrusions on monitored CPUs, runqueue latency, switches, migrations.

Definitions (DESIGN.md):
- runqueue latency: wakeup (or preemption) to the next switch-in, per thread;
- intrusion: a switch-in, on a monitored CPU, of a task that is neither a
  target nor idle;
- involuntary switch: a target switched out while still runnable (the
  kernel's nivcsw), voluntary otherwise (nvcsw).
"""
from __future__ import annotations

from typing import List

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


def _empty(cap: Capture, ctx: Context) -> ModuleResult:
    return ModuleResult(MODULE, {"message": "module not recorded in this capture "
                                             "(record with --modules isolation)"}, recorded=False)


def analyze(cap: Capture, ctx: Context) -> ModuleResult:
    if not cap.has_module(MODULE) or cap.table("sched_switch") is None:
        return _empty(cap, ctx)
    pol = ctx.policy[MODULE]
    notes: List[str] = []
    sw = sched.switches(cap)
    tmap = sched.task_map(cap)
    monitored = list(ctx.monitored_cpus)

    targets = list(ctx.targets)
    inferred = False
    if not targets and monitored:
        # No target named: the task that used each monitored CPU most is its occupant.
        occ = (sw.filter(pl.col("cpu").is_in(monitored) & (pl.col("next_pid") != 0))
               .join(tmap.select("tid", "tgid"), left_on="next_pid", right_on="tid", how="left")
               .with_columns(tgid=pl.col("tgid").fill_null(pl.col("next_pid")))
               .group_by("cpu", "tgid").agg(pl.col("on_cpu_ns").sum())
               .sort("on_cpu_ns", descending=True).unique("cpu", keep="first"))
        targets = sorted(set(occ["tgid"].to_list()))
        inferred = bool(targets)
        if inferred:
            notes.append("no --pid given: each monitored CPU's main occupant is taken as its target "
                         f"(tgid {', '.join(map(str, targets))})")
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
                        .agg(count=pl.len(), total_ns=pl.col("on_cpu_ns").sum(), max_ns=pl.col("on_cpu_ns").max())
                        .rename({"next_pid": "pid", "next_comm": "comm"})
                        .sort(["total_ns", "count"], descending=True))
        user_intrusions = int(intr.filter(~pl.col("kernel_thread")).height)
        kthread_ns = int(intr.filter(pl.col("kernel_thread"))["on_cpu_ns"].sum() or 0)

    # --- worst delays with their cause -----------------------------------------------
    top_waits = waits.top_k(ctx.top, by="latency_ns").sort("latency_ns", descending=True, maintain_order=True)
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
        comm=pl.col("prev_comm").last(),
        voluntary_switches=(~pl.col("involuntary")).sum(),
        involuntary_switches=pl.col("involuntary").sum())
        .rename({"prev_pid": "pid"}))
    mig_per = mig_sel.group_by("pid").agg(migrations=pl.len())
    by_pid = (per.join(mig_per, on="pid", how="full", coalesce=True)
              .with_columns(pl.col("voluntary_switches", "involuntary_switches", "migrations").fill_null(0))
              .sort(["involuntary_switches", "voluntary_switches"], descending=True)
              .head(max(ctx.top, len(tids)) if tids else ctx.top))

    data = {
        "monitored_cpus": monitored,
        "monitored_source": ctx.monitored_source,
        "targets": targets,
        "targets_inferred": inferred,
        "target_threads": len(tids),
        "context_switches": context_switches,
        "involuntary_switches": involuntary,
        "migrations": migrations,
        "runqueue_samples": waits.height,
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
    }
    return ModuleResult(MODULE, data, _checks(cap, data, pol, monitored), notes=notes)


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
