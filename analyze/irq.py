"""IRQ Storm Detector: hard IRQ and softirq durations, IRQs on monitored CPUs, storms.

Definitions:
- a handler run is an entry paired with the next exit of the same IRQ (or
  softirq vector) at the same nesting level on the same CPU; an exit with
  no entry (the capture began mid-handler) or an entry with no exit (it
  ended mid-handler, or an event was lost) yields no duration -- it is
  counted in ``truncated``, never clipped or invented;
- ``count`` is the number of entries inside the capture window (what
  /proc/interrupts counts); durations come from the paired runs only;
- time stolen from targets: hard IRQs and softirqs that ran on top of a
  target's thread (the interrupted current task), softirqs without the hard
  IRQs nested in them so nothing is counted twice;
- an IRQ storm: more than ``storm_irqs_per_s`` entries of one IRQ on one CPU
  within a ``storm_window_ms`` window.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import polars as pl

from latencyscope.analyze import causes
from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import PASS, WARN, Check, Context, ModuleResult, judge
from latencyscope.analyze.stats import fmt_ns, percentile_expr

MODULE = "irq"

POLICY = {
    "max_irqs_on_monitored": (0, "device IRQs handled on monitored CPUs above this count WARN"),
    "hardirq_max_warn_ns": (100_000, "a hard IRQ handler running longer than this WARNs"),
    "softirq_max_warn_ns": (1_000_000, "a softirq vector running longer than this WARNs"),
    "storm_window_ms": (100, "window over which an IRQ's rate is measured for storm detection (ms)"),
    "storm_irqs_per_s": (20_000, "one IRQ on one CPU firing faster than this (per second, over a window) "
                                 "is a storm and WARNs"),
    "stolen_from_targets_us_per_s": (1000.0, "IRQ + softirq time stolen from target threads "
                                             "(µs per second of capture) above this WARNs"),
}

SOFTIRQ_NAMES = ["HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU"]

RUN_SCHEMA = {"cpu": pl.UInt32, "id": pl.Int64, "start_ns": pl.UInt64, "end_ns": pl.UInt64,
              "duration_ns": pl.Int64, "pid": pl.Int32, "tgid": pl.UInt32}


def softirq_name_expr(col: str = "vec") -> pl.Expr:
    return pl.col(col).cast(pl.Int64).replace_strict(
        list(range(len(SOFTIRQ_NAMES))), SOFTIRQ_NAMES, default=None, return_dtype=pl.String
    ).fill_null(pl.format("vec{}", pl.col(col)))


def pair_runs(entries: Optional[pl.DataFrame], exits: Optional[pl.DataFrame], key: str):
    """Pair entry/exit events per CPU into runs, nesting and truncation handled.

    ENTRIES and EXITS have ts_ns, cpu and KEY (irq number or vector);
    entries may carry pid/tgid (the interrupted task).  Returns
    (runs, truncated): runs has cpu, id, start_ns, end_ns, duration_ns
    (>= 0), pid, tgid; truncated counts entries without an exit and exits
    without an entry.

    Per CPU, a running depth (+1 entry, -1 exit) gives each event a nesting
    level; within one level events alternate entry, exit, so an exit pairs
    with the row just before it at its level when that row is an entry of
    the same KEY.  Anything else (a lost event, a capture cut mid-handler)
    pairs with nothing.
    """
    empty = pl.DataFrame(schema=RUN_SCHEMA)
    if entries is None or exits is None:
        return empty, {"entries_without_exit": 0, "exits_without_entry": 0}
    cols = {"pid": pl.Int32, "tgid": pl.UInt32}
    ent = entries.lazy().select(
        pl.col("cpu"), pl.col("ts_ns"), id=pl.col(key).cast(pl.Int64), k=pl.lit(1, pl.Int8),
        **{c: (pl.col(c).cast(t) if c in entries.columns else pl.lit(None, t)) for c, t in cols.items()})
    ext = exits.lazy().select(
        pl.col("cpu"), pl.col("ts_ns"), id=pl.col(key).cast(pl.Int64), k=pl.lit(-1, pl.Int8),
        **{c: pl.lit(None, t) for c, t in cols.items()})
    ev = (
        pl.concat([ent, ext], how="vertical")
        # At equal timestamps an exit closes the previous run before a new one opens.
        .sort("cpu", "ts_ns", "k")
        .with_columns(depth=pl.col("k").cast(pl.Int64).cum_sum().over("cpu"))
        .with_columns(level=pl.when(pl.col("k") == 1).then(pl.col("depth")).otherwise(pl.col("depth") + 1))
        .sort("cpu", "level", "ts_ns", "k", maintain_order=True)
        .with_columns(
            prev_k=pl.col("k").shift(1).over("cpu", "level"),
            prev_id=pl.col("id").shift(1).over("cpu", "level"),
            prev_ts=pl.col("ts_ns").shift(1).over("cpu", "level"),
            prev_pid=pl.col("pid").shift(1).over("cpu", "level"),
            prev_tgid=pl.col("tgid").shift(1).over("cpu", "level"),
        )
        .with_columns(paired=(pl.col("k") == -1) & (pl.col("prev_k") == 1) & (pl.col("prev_id") == pl.col("id"))
                      & (pl.col("prev_ts") <= pl.col("ts_ns")))
        .collect()
    )
    runs = ev.filter(pl.col("paired")).select(
        pl.col("cpu"), pl.col("id"), start_ns=pl.col("prev_ts"), end_ns=pl.col("ts_ns"),
        duration_ns=pl.col("ts_ns").cast(pl.Int64) - pl.col("prev_ts").cast(pl.Int64),
        pid=pl.col("prev_pid"), tgid=pl.col("prev_tgid"))
    n_exits = int((ev["k"] == -1).sum())
    n_entries = ev.height - n_exits
    return runs.cast(RUN_SCHEMA), {"entries_without_exit": n_entries - runs.height,
                                   "exits_without_entry": n_exits - runs.height}


def in_window(cap: Capture, name: str) -> Optional[pl.DataFrame]:
    """Table NAME restricted to the capture window [start, end].

    The programs are attached a little before the window opens; counting
    only inside it makes ``count`` the change of /proc/interrupts over the
    window the manifest states.
    """
    df = cap.table(name)
    start, end = cap.window_ns
    if df is None or end <= start:
        return df
    return df.filter(pl.col("ts_ns").is_between(start, end))


def hardirq_runs(cap: Capture):
    return pair_runs(in_window(cap, "irq_handler_entry"), in_window(cap, "irq_handler_exit"), "irq")


def softirq_runs(cap: Capture):
    return pair_runs(in_window(cap, "softirq_entry"), in_window(cap, "softirq_exit"), "vec")


def softirq_self(soft: pl.DataFrame, hard: pl.DataFrame) -> pl.DataFrame:
    """Softirq runs with ``self_ns``: duration minus the hard IRQs nested in them."""
    if not soft.height:
        return soft.with_columns(self_ns=pl.col("duration_ns"))
    if not hard.height:
        return soft.with_columns(self_ns=pl.col("duration_ns"))
    # Each hard IRQ belongs to the latest softirq that started before it on its CPU, if still running.
    s = soft.with_row_index("run").sort("start_ns")
    h = (hard.select("cpu", "start_ns", "end_ns", hdur=pl.col("duration_ns")).sort("start_ns")
         .join_asof(s.select("cpu", "start_ns", "run", s_end=pl.col("end_ns")), on="start_ns", by="cpu",
                    strategy="backward", check_sortedness=False)  # sorted by start_ns above
         .filter(pl.col("run").is_not_null() & (pl.col("end_ns") <= pl.col("s_end")))
         .group_by("run").agg(nested_ns=pl.col("hdur").sum()))
    return (s.join(h, on="run", how="left")
            .with_columns(self_ns=(pl.col("duration_ns") - pl.col("nested_ns").fill_null(0)).clip(0, None))
            .drop("run", "nested_ns"))


def irq_names(cap: Capture) -> pl.DataFrame:
    """irq -> name: the handler name recorded at entry, else the manifest's IRQ table."""
    parts = []
    ent = cap.table("irq_handler_entry")
    if ent is not None and ent.height:
        parts.append(ent.group_by("irq").agg(name=pl.col("name").first()).select(
            id=pl.col("irq").cast(pl.Int64), name=pl.col("name")))
    rows = [(int(r["irq"]), r.get("name") or "") for r in (cap.host.get("irqs") or []) if "irq" in r]
    if rows:
        parts.append(pl.DataFrame(rows, schema={"id": pl.Int64, "name": pl.String}, orient="row"))
    if not parts:
        return pl.DataFrame(schema={"id": pl.Int64, "name": pl.String})
    return pl.concat(parts).filter(pl.col("name") != "").unique("id", keep="first")


def occupancy(cap: Capture) -> Optional[pl.DataFrame]:
    """Hard IRQ and softirq runs as CPU occupancy for the cause of the worst delays."""
    if not cap.has_module(MODULE):
        return None
    hard, _ = hardirq_runs(cap)
    soft, _ = softirq_runs(cap)
    names = irq_names(cap)
    h = (hard.join(names, on="id", how="left")
         .select("cpu", "start_ns", "end_ns", kind=pl.lit("hardirq"),
                 label=pl.format("irq {} {}", pl.col("id"), pl.col("name").fill_null("")).str.strip_chars(),
                 pid=pl.lit(None, pl.Int32)))
    s = soft.select("cpu", "start_ns", "end_ns", kind=pl.lit("softirq"),
                    label=pl.concat_str(pl.lit("softirq "), softirq_name_expr("id")), pid=pl.lit(None, pl.Int32))
    return pl.concat([h, s])


causes.register(occupancy)


def cpu_mask(cpus, ncpu: int) -> str:
    """A CPU set as /proc/irq/N/smp_affinity wants it: hex, comma every 32 bits."""
    v = 0
    for c in cpus:
        v |= 1 << int(c)
    words = max(1, (max(ncpu, 1) + 31) // 32)
    groups = [(v >> (32 * i)) & 0xFFFFFFFF for i in reversed(range(words))]
    text = ",".join(f"{g:08x}" for g in groups)
    # The kernel accepts leading zero groups; shorten only the first group's zeros.
    first, _, rest = text.partition(",")
    first = first.lstrip("0") or "0"
    return first + ("," + rest if rest else "")


def _parse_cpulist(text: Optional[str]) -> List[int]:
    out: List[int] = []
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            if a.isdigit() and b.isdigit():
                out.extend(range(int(a), int(b) + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def _stats(runs: pl.DataFrame, counts: pl.DataFrame, by: List[str]) -> pl.DataFrame:
    agg = runs.group_by(by).agg(
        total_ns=pl.col("duration_ns").sum(), p50_ns=percentile_expr("duration_ns", 0.50),
        p99_ns=percentile_expr("duration_ns", 0.99), max_ns=pl.col("duration_ns").max())
    return (counts.join(agg, on=by, how="left")
            .with_columns(pl.col("total_ns").fill_null(0))
            .sort(["total_ns", "count"], descending=True))


def _not_recorded() -> ModuleResult:
    return ModuleResult(MODULE, {"message": "module not recorded in this capture (record with --modules irq)"},
                        recorded=False)


def analyze(cap: Capture, ctx: Context) -> ModuleResult:
    if not cap.has_module(MODULE) or cap.table("irq_handler_entry") is None or cap.table("softirq_entry") is None:
        return _not_recorded()
    pol = ctx.policy[MODULE]
    notes: List[str] = []
    monitored = list(ctx.monitored_cpus)
    targets = [int(t) for t in ctx.targets]
    ent = in_window(cap, "irq_handler_entry")
    sent = in_window(cap, "softirq_entry")
    hard, htrunc = hardirq_runs(cap)
    soft, strunc = softirq_runs(cap)
    names = irq_names(cap)

    # --- per IRQ and per vector ----------------------------------------------------
    hcount = ent.group_by("cpu", id=pl.col("irq").cast(pl.Int64)).agg(count=pl.len())
    hstats = (_stats(hard, hcount, ["cpu", "id"]).join(names, on="id", how="left")
              .with_columns(pl.col("name").fill_null("")))
    scount = sent.group_by("cpu", id=pl.col("vec").cast(pl.Int64)).agg(count=pl.len())
    sstats = _stats(soft, scount, ["cpu", "id"]).with_columns(name=softirq_name_expr("id"))
    hardirq = [{"irq": int(r["id"]), "name": r["name"], "cpu": int(r["cpu"]), "count": int(r["count"]),
                "total_ns": int(r["total_ns"]), "p50_ns": _int(r["p50_ns"]), "p99_ns": _int(r["p99_ns"]),
                "max_ns": _int(r["max_ns"])} for r in hstats.iter_rows(named=True)]
    softirq = [{"vec": int(r["id"]), "name": r["name"], "cpu": int(r["cpu"]), "count": int(r["count"]),
                "total_ns": int(r["total_ns"]), "p50_ns": _int(r["p50_ns"]), "p99_ns": _int(r["p99_ns"]),
                "max_ns": _int(r["max_ns"])} for r in sstats.iter_rows(named=True)]

    # --- IRQs on monitored CPUs, and how to move them -------------------------------------
    on_mon = hstats.filter(pl.col("cpu").is_in(monitored)) if monitored else hstats.clear()
    manifest_irqs = {int(r["irq"]): r for r in (cap.host.get("irqs") or []) if "irq" in r}
    on_monitored = []
    for r in on_mon.iter_rows(named=True):
        m = manifest_irqs.get(int(r["id"]), {})
        on_monitored.append({"irq": int(r["id"]), "name": r["name"], "cpu": int(r["cpu"]),
                             "count": int(r["count"]), "total_ns": int(r["total_ns"]), "max_ns": _int(r["max_ns"]),
                             "smp_affinity_list": m.get("smp_affinity_list"),
                             "effective_affinity_list": m.get("effective_affinity_list")})
    recommendations = _recommendations(cap, monitored, on_monitored, manifest_irqs, notes)

    # --- time stolen from targets -------------------------------------------------------
    stolen_ns = 0
    stolen_by: List[dict] = []
    if targets:
        soft_self = softirq_self(soft, hard)
        parts = [hard.filter(pl.col("tgid").is_in(targets)).join(names, on="id", how="left").select(
                     kind=pl.lit("hardirq"),
                     name=pl.format("irq {} {}", pl.col("id"), pl.col("name").fill_null("")).str.strip_chars(),
                     ns=pl.col("duration_ns")),
                 soft_self.filter(pl.col("tgid").is_in(targets)).select(
                     kind=pl.lit("softirq"), name=softirq_name_expr("id"), ns=pl.col("self_ns"))]
        st = pl.concat(parts).group_by("kind", "name").agg(stolen_ns=pl.col("ns").sum(), count=pl.len()) \
            .sort("stolen_ns", descending=True)
        stolen_ns = int(st["stolen_ns"].sum() or 0)
        stolen_by = [{"kind": r["kind"], "name": r["name"], "count": int(r["count"]),
                      "stolen_ns": int(r["stolen_ns"])} for r in st.iter_rows(named=True)]
    else:
        notes.append("no --pid: time stolen from targets not measured")

    # --- storms ------------------------------------------------------------------------
    storms = _storms(cap, ent, names, pol)

    data = {
        "monitored_cpus": monitored,
        "targets": targets,
        "hardirq_count": int(ent.height),
        "softirq_count": int(sent.height),
        "hardirq_time_ns": int(hard["duration_ns"].sum() or 0),
        "softirq_time_ns": int(soft["duration_ns"].sum() or 0),
        "hardirq": hardirq,
        "softirq": softirq,
        "irqs_on_monitored": int(sum(r["count"] for r in on_monitored)),
        "on_monitored_cpus": on_monitored,
        "stolen_from_targets_ns": stolen_ns,
        "stolen_by": stolen_by,
        "storms": storms,
        "recommendations": recommendations,
        "truncated": {"hardirq": htrunc, "softirq": strunc},
    }
    return ModuleResult(MODULE, data, _checks(cap, data, pol, monitored, targets), notes=notes)


def _int(v) -> Optional[int]:
    return None if v is None else int(v)


def _recommendations(cap: Capture, monitored: List[int], on_monitored: List[dict], manifest_irqs: Dict[int, dict],
                     notes: List[str]) -> List[dict]:
    if not monitored:
        return []
    online = cap.host.get("cpus_online") or list(range(cap.cpu_count))
    ncpu = max(cap.cpu_count, (max(online) + 1) if online else 0)
    housekeeping = [c for c in online if c not in set(monitored)]
    wanted: Dict[int, dict] = {}
    for r in on_monitored:
        w = wanted.setdefault(r["irq"], {"irq": r["irq"], "name": r["name"], "count": 0, "cpus": set()})
        w["count"] += r["count"]
        w["cpus"].add(r["cpu"])
    # Quiet in this window but aimed at a monitored CPU: it will fire there later.
    for irq, m in manifest_irqs.items():
        eff = set(_parse_cpulist(m.get("effective_affinity_list")))
        if irq not in wanted and eff & set(monitored):
            wanted[irq] = {"irq": irq, "name": m.get("name") or "", "count": 0, "cpus": eff & set(monitored)}
    if not wanted:
        return []
    if not housekeeping:
        notes.append("every online CPU is monitored: no CPU left to move IRQs to")
        return []
    out = []
    for irq in sorted(wanted, key=lambda i: (-wanted[i]["count"], i)):
        w = wanted[irq]
        m = manifest_irqs.get(irq, {})
        current = set(_parse_cpulist(m.get("smp_affinity_list"))) - set(monitored)
        dest = sorted(current) if current else housekeeping
        why = (f"fired {w['count']:,} times on CPU {','.join(map(str, sorted(w['cpus'])))}" if w["count"]
               else f"effective affinity on monitored CPU {','.join(map(str, sorted(w['cpus'])))}")
        out.append({"irq": irq, "name": w["name"],
                    "command": f"echo {cpu_mask(dest, ncpu)} > /proc/irq/{irq}/smp_affinity",
                    "cpus": dest, "why": why})
    notes.append("managed IRQs (e.g. NVMe/virtio queues) refuse a new affinity (EIO); for those boot with "
                 "isolcpus=managed_irq,<cpus> or use fewer queues")
    return out


def _storms(cap: Capture, ent: pl.DataFrame, names: pl.DataFrame, pol: dict) -> List[dict]:
    win_ns = max(1, int(pol["storm_window_ms"] * 1_000_000))
    limit = float(pol["storm_irqs_per_s"])
    if not ent.height:
        return []
    start, _ = cap.window_ns
    b = (ent.select("cpu", id=pl.col("irq").cast(pl.Int64),
                    bucket=(pl.col("ts_ns").cast(pl.Int64) - start) // win_ns)
         .group_by("cpu", "id", "bucket").agg(count=pl.len())
         .with_columns(rate_per_s=pl.col("count") * 1e9 / win_ns)
         .filter(pl.col("rate_per_s") > limit))
    if not b.height:
        return []
    worst = (b.sort("rate_per_s", descending=True)
             .group_by("cpu", "id", maintain_order=True)
             .agg(peak_rate_per_s=pl.col("rate_per_s").first(), bucket=pl.col("bucket").first(),
                  windows=pl.len())
             .join(names, on="id", how="left")
             .sort("peak_rate_per_s", descending=True))
    return [{"irq": int(r["id"]), "name": r["name"] or "", "cpu": int(r["cpu"]),
             "peak_rate_per_s": round(float(r["peak_rate_per_s"]), 1), "windows": int(r["windows"]),
             "t_ns": int(r["bucket"]) * win_ns, "wall_time": cap.wall_time(start + int(r["bucket"]) * win_ns)}
            for r in worst.iter_rows(named=True)]


def _checks(cap: Capture, d: dict, pol: dict, monitored: List[int], targets: List[int]) -> List[Check]:
    checks: List[Check] = []
    if monitored:
        n = d["irqs_on_monitored"]
        lim = pol["max_irqs_on_monitored"]
        if n > lim:
            who = ", ".join(f"irq {r['irq']} {r['name']} x{r['count']:,} on CPU {r['cpu']}"
                            for r in d["on_monitored_cpus"][:3])
            checks.append(Check(MODULE, "irqs_on_monitored", WARN,
                                f"{n:,} device IRQs on monitored CPUs: {who} (see recommendations)", n, lim))
        else:
            checks.append(Check(MODULE, "irqs_on_monitored", PASS, f"{n:,} device IRQs on monitored CPUs", n, lim))
    hmax = max((r["max_ns"] or 0 for r in d["hardirq"]), default=None)
    smax = max((r["max_ns"] or 0 for r in d["softirq"]), default=None)
    checks.append(judge(MODULE, "hardirq_max", hmax, pol["hardirq_max_warn_ns"], None,
                        "longest hard IRQ handler", fmt_ns))
    checks.append(judge(MODULE, "softirq_max", smax, pol["softirq_max_warn_ns"], None,
                        "longest softirq run", fmt_ns))
    if d["storms"]:
        s = d["storms"][0]
        checks.append(Check(MODULE, "irq_storms", WARN,
                            f"{len(d['storms'])} IRQ storm(s): irq {s['irq']} {s['name']} at "
                            f"{s['peak_rate_per_s']:,.0f}/s on CPU {s['cpu']}", len(d["storms"]),
                            pol["storm_irqs_per_s"]))
    else:
        checks.append(Check(MODULE, "irq_storms", PASS,
                            f"no IRQ storm (no IRQ above {pol['storm_irqs_per_s']:,}/s)", 0, pol["storm_irqs_per_s"]))
    if targets:
        per_s = d["stolen_from_targets_ns"] / 1e3 / max(cap.duration_s, 1e-9)
        lim = pol["stolen_from_targets_us_per_s"]
        top = d["stolen_by"][0]["name"] if d["stolen_by"] else "—"
        checks.append(Check(MODULE, "stolen_from_targets", WARN if per_s > lim else PASS,
                            f"IRQs stole {fmt_ns(d['stolen_from_targets_ns'])} from targets ({per_s:.0f} µs/s, "
                            f"limit {lim:g}; most by {top})", round(per_s, 1), lim))
    return checks
