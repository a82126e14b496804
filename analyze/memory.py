"""Memory Stall Profiler: page faults (minor / major) per task and over time,
TLB shootdowns, IPIs that hit monitored CPUs, NUMA migrations.

Definitions:
- faults of a task: user-mode page faults plus kernel-mode faults on its
  user addresses (both count in the kernel's minflt/majflt);
- major faults: the software perf event PERF_COUNT_SW_PAGE_FAULTS_MAJ, which
  the kernel raises exactly where it counts majflt; minor = faults - major,
  per task (never below 0);
- ``pid`` in ``by_pid`` is the process (tgid), as ``ps`` shows it;
- scope of the verdicts: the targets (``--pid``); else the faults taken on
  monitored CPUs; else the whole capture (then a major fault only WARNs);
- a TLB shootdown hitting a CPU: ``tlb_flush`` with reason 1 (remote
  shootdown received) on that CPU;
- an IPI to a monitored CPU: ``ipi_send_cpu`` aimed at it, or
  ``ipi_send_cpumask`` whose mask holds it (one per monitored CPU hit).
"""
from __future__ import annotations

from typing import List, Optional

import polars as pl

from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import FAIL, PASS, WARN, Check, Context, ModuleResult

MODULE = "memory"

POLICY = {
    "max_major_faults": (0, "major page faults in targets (or on monitored CPUs) above this FAIL"),
    "max_minor_faults_per_s": (1000.0, "minor page faults per second in targets (or on monitored CPUs) "
                                       "above this WARN"),
    "max_ipis_to_monitored_per_s": (10.0, "IPIs hitting monitored CPUs per second above this WARN"),
    "max_tlb_shootdowns_per_s": (10.0, "TLB shootdowns received by monitored CPUs per second above this WARN"),
    "max_numa_migrations": (0, "NUMA task moves/swaps of targets above this WARN"),
    "timeline_bucket_ms": (100, "width of a fault timeline bucket (ms); widened so a timeline has at most "
                                "600 buckets"),
}

TLB_REASONS = ["task switch", "remote shootdown", "local shootdown", "local MM shootdown", "remote IPI send",
               "remote wrong CPU"]
MIGRATE_REASONS = ["compaction", "memory_failure", "memory_hotplug", "syscall_or_cpuset", "mempolicy_mbind",
                   "numa_misplaced", "contig_range", "longterm_pin", "demotion", "damon"]
MAX_BUCKETS = 600

_FAULT_COLS = {"ts_ns": pl.UInt64, "cpu": pl.UInt32, "pid": pl.Int32, "tgid": pl.UInt32, "comm": pl.String}


def _names(col: str, names: List[str]) -> pl.Expr:
    return pl.col(col).cast(pl.Int64).replace_strict(list(range(len(names))), names, default=None,
                                                     return_dtype=pl.String).fill_null(pl.format("{}", pl.col(col)))


def _table(cap: Capture, name: str, cols=_FAULT_COLS) -> pl.DataFrame:
    t = cap.without_recorder(cap.table(name))
    if t is None:
        return pl.DataFrame(schema=cols)
    return t.select(list(cols)).cast(cols)


def faults(cap: Capture) -> pl.DataFrame:
    """Every fault of the capture with ``major`` (bool): ts_ns, cpu, pid, tgid, comm.

    Majors are the perf-event rows; the tracepoint rows minus as many of the
    same thread make the minors (a major fault also fired a fault
    tracepoint).  Per thread the minor rows kept are the earliest ones:
    which fault of a thread was major is known from the perf row itself.
    """
    allf = pl.concat([_table(cap, "page_fault_user"), _table(cap, "page_fault_kernel")])
    maj = _table(cap, "page_fault_major")
    majn = maj.group_by("pid").agg(n_major=pl.len())
    minor = (allf.sort("ts_ns")
             .join(majn, on="pid", how="left")
             .with_columns(n_major=pl.col("n_major").fill_null(0))
             # the last n_major fault rows of each thread stand for its major faults
             .filter(pl.int_range(pl.len(), dtype=pl.Int64).over("pid")
                     < (pl.len().over("pid").cast(pl.Int64) - pl.col("n_major").cast(pl.Int64)))
             .drop("n_major").with_columns(major=pl.lit(False)))
    return pl.concat([minor, maj.with_columns(major=pl.lit(True))]).sort("ts_ns")


def _not_recorded() -> ModuleResult:
    return ModuleResult(MODULE, {"message": "module not recorded in this capture (record with --modules memory)"},
                        recorded=False)


def analyze(cap: Capture, ctx: Context) -> ModuleResult:
    if not cap.has_module(MODULE) or cap.table("page_fault_user") is None:
        return _not_recorded()
    pol = ctx.policy[MODULE]
    notes: List[str] = []
    monitored = list(ctx.monitored_cpus)
    targets = [int(t) for t in ctx.targets]
    start, end = cap.window_ns
    f = faults(cap)

    if targets:
        scope, scoped = f.filter(pl.col("tgid").is_in(targets)), "targets"
    elif monitored:
        scope, scoped = f.filter(pl.col("cpu").is_in(monitored)), "monitored CPUs"
    else:
        scope, scoped = f, "system-wide"

    # --- per process ----------------------------------------------------------------
    per = (f.group_by("tgid").agg(
        comm=pl.col("comm").filter(pl.col("pid").cast(pl.Int64) == pl.col("tgid").cast(pl.Int64)).mode().first()
        .fill_null(pl.col("comm").mode().first()),
        minor_faults=(~pl.col("major")).sum(), major_faults=pl.col("major").sum(),
        threads=pl.col("pid").n_unique())
        .sort(["major_faults", "minor_faults"], descending=True))
    if targets:
        per = pl.concat([per.filter(pl.col("tgid").is_in(targets)), per.filter(~pl.col("tgid").is_in(targets))])
    by_pid = [{"pid": int(r["tgid"]), "comm": r["comm"], "minor_faults": int(r["minor_faults"]),
               "major_faults": int(r["major_faults"]), "threads": int(r["threads"]),
               "target": int(r["tgid"]) in targets}
              for r in per.head(max(ctx.top, len(targets))).iter_rows(named=True)]

    # --- timeline and bursts -----------------------------------------------------------
    span = max(1, end - start)
    bucket_ns = max(int(pol["timeline_bucket_ms"] * 1_000_000), -(-span // MAX_BUCKETS), 1)
    nb = max(1, -(-span // bucket_ns))
    counts = (scope.with_columns(b=((pl.col("ts_ns").cast(pl.Int64) - start) // bucket_ns).clip(0, nb - 1))
              .group_by("b").agg(minor=(~pl.col("major")).sum(), major=pl.col("major").sum()))
    tl = (pl.DataFrame({"b": pl.int_range(0, nb, eager=True)}).join(counts, on="b", how="left")
          .with_columns(pl.col("minor", "major").fill_null(0)).sort("b"))
    timeline = [{"t_ns": int(r["b"]) * bucket_ns, "minor": int(r["minor"]), "major": int(r["major"])}
                for r in tl.iter_rows(named=True)]
    top_in_bucket = (scope.with_columns(b=((pl.col("ts_ns").cast(pl.Int64) - start) // bucket_ns).clip(0, nb - 1))
                     .group_by("b", "tgid").agg(n=pl.len(), comm=pl.col("comm").first())
                     .sort("n", descending=True).unique("b", keep="first"))
    worst = (tl.with_columns(total=pl.col("minor") + pl.col("major")).filter(pl.col("total") > 0)
             .sort(["major", "total"], descending=True).head(ctx.top)
             .join(top_in_bucket, on="b", how="left"))
    bursts = [{"t_ns": int(r["b"]) * bucket_ns, "wall_time": cap.wall_time(start + int(r["b"]) * bucket_ns),
               "minor": int(r["minor"]), "major": int(r["major"]),
               "per_s": round((r["minor"] + r["major"]) * 1e9 / bucket_ns, 1),
               "top_pid": None if r["tgid"] is None else int(r["tgid"]), "top_comm": r["comm"]}
              for r in worst.iter_rows(named=True)]

    # --- TLB, IPIs, NUMA ---------------------------------------------------------------------
    tlb = cap.table("tlb_flush")
    tlb = tlb if tlb is not None else pl.DataFrame(schema={"cpu": pl.UInt32, "reason": pl.Int32, "pages": pl.UInt64})
    tlb_by = (tlb.group_by("cpu", "reason").agg(count=pl.len()).with_columns(name=_names("reason", TLB_REASONS))
              .sort("count", descending=True))
    received = tlb.filter(pl.col("reason") == 1)
    tlb_shootdowns = int((received.filter(pl.col("cpu").is_in(monitored)) if monitored else received).height)

    ipis = _ipis_to(cap, monitored)
    symbols = ((cap.manifest.get("module_facts") or {}).get(MODULE) or {}).get("ipi_callbacks") or {}
    ipi_by = []
    if ipis.height:
        g = ipis.group_by("target_cpu", "callback", "comm").agg(count=pl.len()).sort("count", descending=True)
        for r in g.head(max(ctx.top, 10)).iter_rows(named=True):
            cb = int(r["callback"])
            ipi_by.append({"target_cpu": int(r["target_cpu"]), "count": int(r["count"]), "sender": r["comm"],
                           "callback": "reschedule" if cb == 0 else symbols.get(f"{cb:#x}", f"{cb:#x}")})

    moves = _table(cap, "sched_move_numa", {"pid": pl.Int32, "tgid": pl.Int32})
    swaps = pl.concat([_table(cap, n, {"src_tgid": pl.Int32, "dst_tgid": pl.Int32})
                       for n in ("sched_swap_numa",)])
    sticks = cap.table("sched_stick_numa")
    mig = cap.table("mm_migrate_pages")
    mig = mig if mig is not None else pl.DataFrame(schema={"reason": pl.Int32, "succeeded": pl.UInt64,
                                                           "failed": pl.UInt64})
    numa_migrations = moves.height + swaps.height
    target_numa = (moves.filter(pl.col("tgid").is_in(targets)).height
                   + swaps.filter(pl.col("src_tgid").is_in(targets) | pl.col("dst_tgid").is_in(targets)).height) \
        if targets else None
    pages_by_reason = [{"reason": r["name"], "succeeded": int(r["succeeded"]), "failed": int(r["failed"])}
                       for r in mig.group_by("reason").agg(pl.col("succeeded").sum(), pl.col("failed").sum())
                       .with_columns(name=_names("reason", MIGRATE_REASONS)).sort("succeeded", descending=True)
                       .iter_rows(named=True)]

    if not monitored:
        notes.append("no monitored CPUs: TLB shootdowns counted on every CPU, IPIs to monitored CPUs not judged")
    smaj = int(scope["major"].sum() or 0)
    data = {
        "scope": scoped,
        "monitored_cpus": monitored,
        "targets": targets,
        "minor_faults": int((~f["major"]).sum() or 0),
        "major_faults": int(f["major"].sum() or 0),
        "scope_minor_faults": int(scope.height - smaj),
        "scope_major_faults": smaj,
        "tlb_shootdowns": tlb_shootdowns,
        "ipis_to_monitored": int(ipis.height),
        "numa_migrations": numa_migrations,
        "target_numa_migrations": target_numa,
        "numa_stick_decisions": 0 if sticks is None else int(sticks.height),
        "pages_migrated_numa": int(mig.filter(pl.col("reason") == 5)["succeeded"].sum() or 0),
        "by_pid": by_pid,
        "timeline_bucket_ns": bucket_ns,
        "timeline": timeline,
        "bursts": bursts,
        "tlb_by_reason": [{"cpu": int(r["cpu"]), "reason": int(r["reason"]), "name": r["name"],
                           "count": int(r["count"])} for r in tlb_by.iter_rows(named=True)],
        "ipis_by_callback": ipi_by,
        "pages_migrated_by_reason": pages_by_reason,
    }
    return ModuleResult(MODULE, data, _checks(cap, data, pol, monitored, targets), notes=notes)


def _ipis_to(cap: Capture, monitored: List[int]) -> pl.DataFrame:
    """One row per IPI that hit a monitored CPU: target_cpu, callback, comm (sender)."""
    schema = {"ts_ns": pl.UInt64, "target_cpu": pl.UInt32, "callback": pl.UInt64, "comm": pl.String}
    if not monitored:
        return pl.DataFrame(schema=schema)
    parts = []
    one = cap.table("ipi_send_cpu")
    if one is not None:
        parts.append(one.filter(pl.col("target_cpu").is_in(monitored)).select(list(schema)).cast(schema))
    many = cap.table("ipi_send_cpumask")
    if many is not None and many.height:
        for c in monitored:  # a loop over monitored CPUs, not events
            if c >= 128:
                continue
            word = "cpumask0" if c < 64 else "cpumask1"
            bit = 1 << (c % 64)
            parts.append(many.filter((pl.col(word) & pl.lit(bit, pl.UInt64)) != 0)
                         .select("ts_ns", target_cpu=pl.lit(c, pl.UInt32), callback=pl.col("callback"),
                                 comm=pl.col("comm")).cast(schema))
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def _checks(cap: Capture, d: dict, pol: dict, monitored: List[int], targets: List[int]) -> List[Check]:
    checks: List[Check] = []
    dur = max(cap.duration_s, 1e-9)
    where = {"targets": "in targets", "monitored CPUs": "on monitored CPUs", "system-wide": "system-wide"}[d["scope"]]
    n = d["scope_major_faults"]
    lim = pol["max_major_faults"]
    if n > lim:
        who = ", ".join(f"{r['comm']} (pid {r['pid']}) x{r['major_faults']}" for r in d["by_pid"]
                        if r["major_faults"] and (r["target"] or not targets))[:200]
        # System-wide (nothing named), a major fault of some daemon is worth a look, not a violation.
        st = FAIL if d["scope"] != "system-wide" else WARN
        checks.append(Check(MODULE, "major_faults", st, f"{n:,} major page faults {where}: {who}", n, lim))
    else:
        checks.append(Check(MODULE, "major_faults", PASS, f"{n:,} major page faults {where}", n, lim))
    per_s = d["scope_minor_faults"] / dur
    lim = pol["max_minor_faults_per_s"]
    if d["scope"] == "system-wide":   # the limit is for targets or monitored CPUs: said, not judged
        checks.append(Check(MODULE, "minor_fault_rate", PASS,
                            f"system-wide: {per_s:,.0f} minor faults/s (name --pid or --cpus to judge against "
                            f"the limit of {lim:g}/s)", round(per_s, 1), lim))
    else:
        checks.append(Check(MODULE, "minor_fault_rate", WARN if per_s > lim else PASS,
                            f"{per_s:,.0f} minor faults/s {where} (limit {lim:g})", round(per_s, 1), lim))
    if monitored:
        per_s = d["ipis_to_monitored"] / dur
        lim = pol["max_ipis_to_monitored_per_s"]
        checks.append(Check(MODULE, "ipis_to_monitored", WARN if per_s > lim else PASS,
                            f"{d['ipis_to_monitored']:,} IPIs hit monitored CPUs ({per_s:,.1f}/s, limit {lim:g})",
                            round(per_s, 2), lim))
        per_s = d["tlb_shootdowns"] / dur
        lim = pol["max_tlb_shootdowns_per_s"]
        checks.append(Check(MODULE, "tlb_shootdowns", WARN if per_s > lim else PASS,
                            f"{d['tlb_shootdowns']:,} TLB shootdowns on monitored CPUs ({per_s:,.1f}/s, "
                            f"limit {lim:g})", round(per_s, 2), lim))
    if targets:
        n = d["target_numa_migrations"] or 0
        lim = pol["max_numa_migrations"]
        checks.append(Check(MODULE, "numa_migrations", WARN if n > lim else PASS,
                            f"{n:,} NUMA migrations of targets", n, lim))
    return checks
