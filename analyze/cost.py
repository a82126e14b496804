"""The cost table: what the delays of the target threads cost, by cause.

One row per (module, cause, who, detail) with the delay in ns and, when a
notional and a basis-point rate are given, the cost in money
(``folded.alpha_cost``: delay_µs × bps_per_µs × notional / 10,000).
``who`` is the task, IRQ or softirq vector that held the CPU; ``detail`` the
thread that waited.  The table feeds the alpha flamegraph (folded stacks and
a Perfetto cost trace), the cost summary of the report, and the per-cause
totals of ``diff``.

How a runqueue wait is split (vectorized, no loop per wait): every wait of a
target thread (or of any thread on a monitored CPU) is intersected with what
occupied its CPU during it -- tasks, and hard/soft IRQs when the irq module
offers them through ``causes.register``.  Each occupant gets its overlap;
when IRQs nest inside a task the shares are scaled so that they never add
up to more than the wait; what is left (the CPU was idle or the wakeup was
slow) goes to ``wakeup path``.  The sum of a wait's rows is its latency, so
the total cost is exactly the cost of all waits.

Packets delivered to the targets add their kernel delivery time (arrival in
``netif_receive_skb`` to the copy to user space) as ``network / packet
delivery / <device> / <thread>``.  Futex waits and sleeps are *not* priced:
a thread parked on a futex or in nanosleep may simply have nothing to do,
so their time is not a delay of work.

Other modules can add their own delays: an analysis module that defines
``delays(cap, ctx) -> pl.DataFrame`` with columns ``module, cause, who,
detail, delay_ns`` (optionally ``events``, ``delay_sq_ns2``) is included.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np
import polars as pl

from latencyscope.analyze import causes, sched
from latencyscope.analyze import modules as registry
from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import Context

# delay_sq_ns2: sum of squared per-event delays, so that a total's noise can be
# judged (compound Poisson: var(total) = sum of squares) without the events.
DELAY_SCHEMA = {"module": pl.String, "cause": pl.String, "who": pl.String, "detail": pl.String,
                "delay_ns": pl.Int64, "events": pl.Int64, "delay_sq_ns2": pl.Float64}
# Above this many (wait, occupant) pairs a system-wide capture is attributed
# to the task that ran just before each switch-in only (bounded memory).
MAX_PAIRS = 20_000_000
WAKEUP_PATH = "wakeup path (CPU idle)"


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=DELAY_SCHEMA)


def scoped_waits(cap: Capture, ctx: Context, report: Optional[dict] = None) -> Optional[pl.DataFrame]:
    """The runqueue waits the isolation analysis judges (same scope), or None.

    Scope: the target threads (the report's targets, which include targets
    inferred from monitored CPUs), else every thread on the monitored CPUs,
    else every thread.  Columns as ``sched.runqueue_waits``.
    """
    waits = sched.runqueue_waits(cap)
    if waits is None:
        return None
    iso = (report or {}).get("isolation") or {}
    targets = iso.get("targets") if iso.get("status") not in (None, "NOT_RECORDED") else None
    if targets is None:
        targets = list(ctx.targets)
    monitored = list(ctx.monitored_cpus)
    if targets:
        tids = sched.target_tids(sched.task_map(cap), targets)
        return waits.filter(pl.col("pid").is_in(tids))
    if monitored:
        return waits.filter(pl.col("cpu").is_in(monitored))
    return waits


def _victim(waits: pl.DataFrame) -> pl.DataFrame:
    return waits.with_row_index("wait_id").with_columns(
        victim=pl.format("{} [{}]", pl.col("comm").fill_null("?"), pl.col("pid")),
        cause=pl.format("runqueue wait ({})", pl.col("reason")),
        ready_ns=pl.col("ready_ns").cast(pl.Int64), run_ns=pl.col("run_ns").cast(pl.Int64),
        cpu=pl.col("cpu").cast(pl.Int64))


def _overlaps(w: pl.DataFrame, occ: pl.DataFrame) -> Optional[pl.DataFrame]:
    """(wait_id, kind, label, overlap_ns) for every occupant interval inside each wait.

    Per (cpu, kind) the occupant intervals are sorted and (nearly) disjoint,
    so the ones a wait touches are a contiguous index range: the first whose
    end is at/after the wait's start to the last whose start is at/before its
    end, found with two as-of joins and expanded with ``int_ranges``.
    """
    o = (occ.with_columns(cpu=pl.col("cpu").cast(pl.Int64), start_ns=pl.col("start_ns").cast(pl.Int64),
                          end_ns=pl.col("end_ns").cast(pl.Int64))
         .sort("kind", "cpu", "start_ns")
         .with_columns(end_max=pl.col("end_ns").cum_max().over("kind", "cpu"))  # monotonic for the as-of
         .with_row_index("idx"))
    o = o.with_columns(pl.col("idx").cast(pl.Int64))
    kinds = o.select("kind").unique()
    wk = w.select("wait_id", "cpu", "ready_ns", "run_ns").join(kinds, how="cross")
    lo = (wk.sort("ready_ns")
          .join_asof(o.select("kind", "cpu", "end_max", lo=pl.col("idx")).sort("end_max"),
                     left_on="ready_ns", right_on="end_max", by=["kind", "cpu"], strategy="forward", check_sortedness=False))
    hi = (wk.sort("run_ns")
          .join_asof(o.select("kind", "cpu", "start_ns", hi=pl.col("idx")).sort("start_ns"),
                     left_on="run_ns", right_on="start_ns", by=["kind", "cpu"], strategy="backward", check_sortedness=False))
    rng = (lo.select("wait_id", "kind", "ready_ns", "run_ns", "lo")
           .join(hi.select("wait_id", "kind", "hi"), on=["wait_id", "kind"])
           .drop_nulls(["lo", "hi"]).filter(pl.col("hi") >= pl.col("lo")))
    if int((rng["hi"] - rng["lo"] + 1).sum() or 0) > MAX_PAIRS:
        return None
    pairs = (rng.with_columns(idx=pl.int_ranges("lo", pl.col("hi") + 1)).explode("idx")
             .join(o.select("idx", "start_ns", "end_ns", "label", "pid"), on="idx")
             .with_columns(overlap_ns=pl.min_horizontal("end_ns", "run_ns") - pl.max_horizontal("start_ns", "ready_ns"))
             .filter(pl.col("overlap_ns") > 0))
    return pairs.select("wait_id", "kind", "label", "pid", "overlap_ns")


def _prev_task(w: pl.DataFrame, sw: pl.DataFrame) -> pl.DataFrame:
    """Fallback attribution: the task switched out at each wait's switch-in."""
    prev = sw.select(cpu=pl.col("cpu").cast(pl.Int64), run_ns=pl.col("ts_ns").cast(pl.Int64),
                     label=pl.format("{} [{}]", "prev_comm", "prev_pid"), pid=pl.col("prev_pid"))
    return (w.select("wait_id", "cpu", "run_ns", "latency_ns")
            .join(prev.unique(["cpu", "run_ns"]), on=["cpu", "run_ns"], how="inner")
            .filter(pl.col("pid") != 0)
            .select("wait_id", kind=pl.lit("task"), label="label", pid="pid", overlap_ns="latency_ns"))


def runqueue_delays(cap: Capture, ctx: Context, report: Optional[dict] = None) -> pl.DataFrame:
    """Runqueue waits of the scope split among what held the CPU (see module doc)."""
    waits = scoped_waits(cap, ctx, report)
    if waits is None or waits.height == 0:
        return _empty()
    w = _victim(waits)
    sw = sched.switches(cap)
    occ = causes.occupancy(cap, sw)
    ov = _overlaps(w, occ) if occ.height else None
    if ov is None:
        ov = _prev_task(w, sw)
    # An occupant that is the waiting thread itself is not a cause.
    ov = (ov.join(w.select("wait_id", "pid", "latency_ns"), on="wait_id", suffix="_victim")
          .filter(pl.col("pid").is_null() | (pl.col("pid") != pl.col("pid_victim"))))
    held = ov.group_by("wait_id").agg(held_ns=pl.col("overlap_ns").sum())
    ov = (ov.join(held, on="wait_id")
          .with_columns(share_ns=pl.col("overlap_ns").cast(pl.Float64) * pl.col("latency_ns")
                        / pl.max_horizontal("latency_ns", "held_ns").cast(pl.Float64)))
    rest = (w.join(held, on="wait_id", how="left")
            .with_columns(share_ns=(pl.col("latency_ns") - pl.col("held_ns").fill_null(0)).clip(0, None)
                          .cast(pl.Float64))
            .filter(pl.col("share_ns") > 0))
    module_of = pl.when(pl.col("kind") == "task").then(pl.lit("isolation")).otherwise(pl.lit("irq"))
    rows = pl.concat([
        ov.join(w.select("wait_id", "cause", "victim"), on="wait_id").select(
            module=module_of,
            cause=pl.when(pl.col("kind") == "task").then(pl.col("cause")).otherwise(pl.col("kind")),
            who=pl.col("label"), detail=pl.col("victim"), delay_ns=pl.col("share_ns"),
            wait_id=pl.col("wait_id")),
        rest.select(module=pl.lit("isolation"), cause=pl.col("cause"), who=pl.lit(WAKEUP_PATH),
                    detail=pl.col("victim"), delay_ns=pl.col("share_ns"), wait_id=pl.col("wait_id")),
    ])
    return (rows.group_by("module", "cause", "who", "detail", "wait_id").agg(pl.col("delay_ns").sum())
            .group_by("module", "cause", "who", "detail")
            .agg(delay_sq_ns2=(pl.col("delay_ns") ** 2).sum(),
                 delay_ns=pl.col("delay_ns").sum().round(0).cast(pl.Int64), events=pl.len())
            .filter(pl.col("delay_ns") > 0)
            .select(list(DELAY_SCHEMA)).cast(DELAY_SCHEMA))


def _scope_tgids(cap: Capture, ctx: Context, report: Optional[dict]) -> List[int]:
    iso = (report or {}).get("isolation") or {}
    return [int(t) for t in (iso.get("targets") or ctx.targets or [])]


def scoped_deliveries(cap: Capture, ctx: Context) -> Optional[pl.DataFrame]:
    """Delivered packets as the network analysis counts them (the interface, if any), or None."""
    from latencyscope.analyze import network

    needed = ("netif_receive_skb", "skb_copy_datagram_iovec", "kfree_skb")
    if not hasattr(network, "deliveries") or any(cap.table(t) is None for t in needed):
        return None
    dl = network.deliveries(cap)
    iface = getattr(ctx, "interface", None) or (cap.manifest.get("filters") or {}).get("interface")
    return dl.filter(pl.col("dev") == iface) if iface else dl


def packet_delays(cap: Capture, ctx: Context, report: Optional[dict] = None) -> pl.DataFrame:
    """Kernel delivery time of packets copied to the targets (all packets when none named)."""
    dl = scoped_deliveries(cap, ctx)
    if dl is None:
        return _empty()
    tgids = _scope_tgids(cap, ctx, report)
    if tgids:
        dl = dl.filter(pl.col("tgid").cast(pl.Int64).is_in(tgids))
    if dl.height == 0:
        return _empty()
    comms = sched.task_map(cap).select(pid="tid", comm="comm")
    return (dl.with_columns(pl.col("pid").cast(pl.Int32)).join(comms, on="pid", how="left")
            .with_columns(d=pl.col("delivery_ns").clip(0, None))
            .group_by("dev", "pid", "comm")
            .agg(delay_ns=pl.col("d").sum(), events=pl.len(), delay_sq_ns2=(pl.col("d").cast(pl.Float64) ** 2).sum())
            .select(module=pl.lit("network"), cause=pl.lit("packet delivery"), who=pl.col("dev").cast(pl.String),
                    detail=pl.format("{} [{}]", pl.col("comm").fill_null("?"), "pid"),
                    delay_ns="delay_ns", events="events", delay_sq_ns2="delay_sq_ns2")
            .cast(DELAY_SCHEMA))


def delays(cap: Capture, ctx: Context, report: Optional[dict] = None) -> pl.DataFrame:
    """Every attributed delay of the capture: columns of DELAY_SCHEMA, sorted by delay."""
    for name in registry.names():  # importing a module registers its CPU occupancy (IRQs) with causes
        registry.load(name)
    parts: List[pl.DataFrame] = []
    if cap.has_module("isolation"):
        parts.append(runqueue_delays(cap, ctx, report))
    if cap.has_module("network") and "network" in registry.names():
        parts.append(packet_delays(cap, ctx, report))
    for name in registry.names():
        hook = getattr(registry.load(name), "delays", None)
        if hook is None or not cap.has_module(name):
            continue
        df = hook(cap, ctx)
        if df is not None and df.height:
            if "events" not in df.columns:
                df = df.with_columns(events=pl.lit(1, pl.Int64))
            if "delay_sq_ns2" not in df.columns:  # unknown spread: as if each row were one event
                df = df.with_columns(delay_sq_ns2=pl.col("delay_ns").cast(pl.Float64) ** 2)
            parts.append(df.select(list(DELAY_SCHEMA)).cast(DELAY_SCHEMA))
    if not parts:
        return _empty()
    return (pl.concat(parts).group_by("module", "cause", "who", "detail")
            .agg(pl.col("delay_ns").sum(), pl.col("events").sum(), pl.col("delay_sq_ns2").sum())
            .sort("delay_ns", "module", "cause", "who", "detail", descending=[True, False, False, False, False]))


def with_cost(table: pl.DataFrame, notional: float, bps_per_us: float) -> pl.DataFrame:
    """The delay table plus ``cost`` (money) per row."""
    from latencyscope.analyze.folded import alpha_cost

    return table.with_columns(alpha_cost("delay_ns", notional, bps_per_us))


def summary(table: pl.DataFrame, notional: float, bps_per_us: float, duration_s: float, top: int = 10) -> dict:
    """The report's ``cost`` object: totals, per module, and the top causes."""
    t = with_cost(table, notional, bps_per_us)
    total = float(t["cost"].sum() or 0.0)
    total_ns = int(t["delay_ns"].sum() or 0)
    by_module = (t.group_by("module").agg(pl.col("delay_ns").sum(), pl.col("cost").sum(), pl.col("events").sum())
                 .sort("cost", "module", descending=[True, False]))
    causes_ = (t.group_by("module", "cause", "who").agg(pl.col("delay_ns").sum(), pl.col("cost").sum(),
                                                        pl.col("events").sum())
               .sort("cost", "module", "cause", "who", descending=[True, False, False, False]).head(top))

    def share(c):
        return round(c / total, 4) if total > 0 else 0.0

    return {
        "notional": notional,
        "bps_per_us": bps_per_us,
        "formula": "delay_us * bps_per_us * notional / 10000",
        "total_delay_ns": total_ns,
        "total_cost": round(total, 6),
        "cost_per_s": round(total / duration_s, 6) if duration_s > 0 else None,
        "by_module": [{"module": r["module"], "delay_ns": int(r["delay_ns"]), "cost": round(r["cost"], 6),
                       "share": share(r["cost"])} for r in by_module.iter_rows(named=True)],
        "top_causes": [{"module": r["module"], "cause": r["cause"], "who": r["who"], "delay_ns": int(r["delay_ns"]),
                        "events": int(r["events"]), "cost": round(r["cost"], 6), "share": share(r["cost"])}
                       for r in causes_.iter_rows(named=True)],
    }


def money(v: Optional[float]) -> str:
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:,.2f} M"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.2f}"
    return f"{v:.4g}"


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 and float(v).is_integer() else f"{v:,g}"


def render(cost: dict, console) -> None:
    """Rich panel of a report's ``cost`` object (renders only)."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.console import Group
    from rich.text import Text

    from latencyscope.analyze.stats import fmt_ns

    head = Text.assemble(("estimated cost of delays: ", "bold"), (money(cost["total_cost"]), "bold"),
                         f"  ({fmt_ns(cost['total_delay_ns'])} of delay"
                         + (f", {money(cost['cost_per_s'])} per second of capture" if cost.get("cost_per_s") else "")
                         + f"; notional {_num(cost['notional'])} × {cost['bps_per_us']:g} bp/µs)")
    t = Table(title="top causes", title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for c, j in (("module", "left"), ("cause", "left"), ("who", "left"), ("delay", "right"),
                 ("events", "right"), ("cost", "right"), ("share", "right")):
        t.add_column(c, justify=j, overflow="fold")
    for r in cost["top_causes"]:
        t.add_row(r["module"], r["cause"], r["who"], fmt_ns(r["delay_ns"]), f"{r['events']:,}", money(r["cost"]),
                  f"{r['share'] * 100:.1f}%")
    body = [head] + ([t] if cost["top_causes"] else [Text("no delays in scope", style="dim")])
    console.print(Panel(Group(*body), title=Text("Alpha cost", style="bold"), title_align="left"))
