"""Rich terminal rendering of a report dictionary (renders only, computes nothing)."""
from __future__ import annotations

from typing import Any, Dict, List

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from latencyscope.analyze.stats import fmt_ns

STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red", "NOT_RECORDED": "dim"}
TITLES = {"isolation": "Isolation Verifier", "irq": "IRQ Storm Detector", "memory": "Memory Stall Profiler",
          "syscall": "Lock & Syscall Contention", "network": "Network Path Analyzer"}


def _status(s: str) -> Text:
    return Text(f"{s:4s}", style=STYLE.get(s, ""))


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if key.endswith("_ns") and isinstance(v, (int, float)):
        return fmt_ns(v)
    if isinstance(v, float):
        return f"{v:,.3g}"
    if isinstance(v, int):
        # identifiers are not quantities: no thousands separators
        if key in ("pid", "tid", "tgid", "irq", "cpu", "vec", "top_pid") or key.endswith("_pid"):
            return str(v)
        return f"{v:,}"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) if v else "—"
    return str(v)


def _checks(checks: List[dict]) -> Table:
    t = Table.grid(padding=(0, 1))
    for c in checks:
        t.add_row(_status(c["status"]), c["message"])
    return t


def _rows_table(title: str, rows: List[dict], limit: int = 10, skip=("occupants",)) -> Table:
    cols = [k for k in rows[0] if k not in skip]
    t = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for c in cols:
        t.add_column(c, overflow="fold", justify="right" if isinstance(rows[0][c], (int, float)) else "left")
    for r in rows[:limit]:
        t.add_row(*[_fmt(c, r.get(c)) for c in cols])
    if len(rows) > limit:
        t.caption = f"{len(rows) - limit} more in --json"
    return t


def _isolation(d: Dict[str, Any]) -> List:
    parts: List = []
    mon = ", ".join(map(str, d.get("monitored_cpus") or [])) or "none"
    tg = ", ".join(map(str, d.get("targets") or [])) or "none"
    parts.append(Text(f"monitored CPUs {mon} ({d.get('monitored_source')}) · targets {tg}"
                      + (" (inferred)" if d.get("targets_inferred") else "")
                      + f" · {d['context_switches']:,} switches, {d['involuntary_switches']:,} involuntary,"
                        f" {d['migrations']:,} migrations", style="dim"))
    pct = Table(show_edge=False, pad_edge=False, title="runqueue latency "
                f"({d['runqueue_samples']:,} waits)", title_justify="left", title_style="bold")
    keys = [("P50", "p50_runqueue_ns"), ("P99", "p99_runqueue_ns"), ("P99.9", "p99_9_runqueue_ns"),
            ("P99.99", "p99_99_runqueue_ns"), ("P99.999", "p99_999_runqueue_ns"), ("max", "max_runqueue_ns")]
    for label, _ in keys:
        pct.add_column(label, justify="right")
    pct.add_row(*[fmt_ns(d.get(k)) for _, k in keys])
    parts.append(pct)
    if d.get("intruders"):
        parts.append(_rows_table("intruders on monitored CPUs", d["intruders"]))
    if d.get("worst"):
        w = Table(title="worst delays", title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
        for c in ("wall time", "latency", "task", "cpu", "after", "cause"):
            w.add_column(c, overflow="fold")
        for r in d["worst"][:5]:
            w.add_row(r["wall_time"][11:26], fmt_ns(r["latency_ns"]), f"{r['comm']} ({r['pid']})", str(r["cpu"]),
                      r["reason"], r["cause"])
        parts.append(w)
    return parts


def _generic(d: Dict[str, Any]) -> List:
    parts: List = []
    grid = Table.grid(padding=(0, 2))
    scalars = [(k, v) for k, v in d.items()
               if k not in ("status", "checks", "notes", "message") and not isinstance(v, (list, dict))]
    for i in range(0, len(scalars), 3):
        row = []
        for k, v in scalars[i:i + 3]:
            row += [Text(k.removesuffix("_ns").replace("_", " "), style="dim"), _fmt(k, v)]
        grid.add_row(*row)
    if scalars:
        parts.append(grid)
    for k, v in d.items():
        if isinstance(v, list) and v and isinstance(v[0], dict) and k != "checks":
            parts.append(_rows_table(k.replace("_", " "), v))
        elif isinstance(v, dict) and k not in ("checks",):
            sub = {kk: vv for kk, vv in v.items() if not isinstance(vv, (list, dict))}
            if sub:
                parts.append(Text(k + ": " + " · ".join(f"{kk.replace('_', ' ')} {_fmt(kk, vv)}"
                                                        for kk, vv in sub.items()), style="dim"))
            for kk, vv in v.items():
                if isinstance(vv, list) and vv and isinstance(vv[0], dict):
                    parts.append(_rows_table(f"{k} {kk}".replace("_", " "), vv))
    return parts


def _small_table(title: str, rows: List[dict], cols, limit: int = 5) -> Table:
    """A table of chosen columns: (header, key or callable)."""
    t = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for head, _ in cols:
        t.add_column(head, overflow="fold")
    for r in rows[:limit]:
        t.add_row(*[(get(r) if callable(get) else _fmt(get, r.get(get))) for _, get in cols])
    if len(rows) > limit:
        t.caption = f"{len(rows) - limit} more in --json"
    return t


def _line(*pairs) -> Text:
    return Text(" · ".join(f"{label} {value}" for label, value in pairs if value is not None), style="dim")


def _irq(d: Dict[str, Any]) -> List:
    parts: List = [_line(("hard IRQs", f"{d.get('hardirq_count', 0):,}"),
                         ("in handlers", fmt_ns(d.get("hardirq_time_ns"))),
                         ("softirqs", f"{d.get('softirq_count', 0):,}"),
                         ("in softirq", fmt_ns(d.get("softirq_time_ns"))),
                         ("stolen from targets", fmt_ns(d.get("stolen_from_targets_ns"))
                          if d.get("targets") else None))]
    dur = [("count", "count"), ("total", "total_ns"), ("P99", "p99_ns"), ("max", "max_ns")]
    if d.get("hardirq"):
        parts.append(_small_table("hard IRQs", d["hardirq"],
                                  [("irq", "irq"), ("device", "name"), ("cpu", "cpu")] + dur))
    if d.get("softirq"):
        parts.append(_small_table("softirqs", d["softirq"], [("vector", "name"), ("cpu", "cpu")] + dur))
    if d.get("recommendations"):
        parts.append(_small_table("move these IRQs off the monitored CPUs", d["recommendations"],
                                  [("irq", "irq"), ("device", "name"), ("command", "command")], limit=10))
    return parts


def _memory(d: Dict[str, Any]) -> List:
    parts: List = [_line(("scope", d.get("scope")), ("minor faults", f"{d.get('minor_faults', 0):,}"),
                         ("major faults", f"{d.get('major_faults', 0):,}"),
                         ("TLB shootdowns", f"{d.get('tlb_shootdowns', 0):,}"),
                         ("IPIs to monitored CPUs", f"{d.get('ipis_to_monitored', 0):,}"),
                         ("NUMA migrations", f"{d.get('numa_migrations', 0):,}"))]
    if d.get("by_pid"):
        parts.append(_small_table("faults by process", d["by_pid"],
                                  [("pid", "pid"), ("comm", "comm"), ("minor", "minor_faults"),
                                   ("major", "major_faults")]))
    if d.get("bursts"):
        parts.append(_small_table("worst bursts", d["bursts"],
                                  [("wall time", lambda r: str(r.get("wall_time", ""))[11:23]),
                                   ("minor", "minor"), ("major", "major"),
                                   ("top process", lambda r: f"{r.get('top_comm')} ({r.get('top_pid')})")], limit=3))
    return parts


def _syscall(d: Dict[str, Any]) -> List:
    fx, sl = d.get("futex") or {}, d.get("sleeps") or {}
    parts: List = [_line(("scope", d.get("scope")), ("futex waits", f"{fx.get('waits', 0):,}"),
                         ("waited", fmt_ns(fx.get("total_wait_ns"))), ("P99 wait", fmt_ns(fx.get("p99_wait_ns"))),
                         ("sleeps", f"{sl.get('count', 0):,}"), ("blocking calls", f"{d.get('blocking_calls', 0):,}"))]
    if fx.get("by_addr"):
        parts.append(_small_table("contended futexes", fx["by_addr"],
                                  [("address", lambda r: f"{int(r['uaddr']):#x}"), ("pid", "pid"),
                                   ("waits", "waits"), ("waiters", lambda r: _fmt("waiters", r.get("waiters"))),
                                   ("total", "total_wait_ns"), ("max", "max_wait_ns")]))
    if sl.get("by_pid"):
        parts.append(_small_table("sleeps", sl["by_pid"],
                                  [("pid", "pid"), ("comm", "comm"), ("count", "count"),
                                   ("requested", "requested_ns"), ("actual", "actual_ns")]))
    if d.get("syscalls"):
        parts.append(_small_table("syscalls of the targets", d["syscalls"],
                                  [("syscall", "name"), ("count", "count"), ("total", "total_ns"),
                                   ("P99", "p99_ns"), ("max", "max_ns")]))
    return parts


def _network(d: Dict[str, Any]) -> List:
    dl = d.get("delivery") or {}
    parts: List = [_line(("interface", d.get("interface") or "all"), ("rx packets", f"{d.get('rx_packets', 0):,}"),
                         ("delivered", f"{dl.get('count', 0):,}"), ("P50", fmt_ns(dl.get("p50_ns"))),
                         ("P99", fmt_ns(dl.get("p99_ns"))), ("max", fmt_ns(dl.get("max_ns"))),
                         ("dropped", f"{d.get('dropped_packets', 0):,}"))]
    if d.get("napi"):
        parts.append(_small_table("NAPI polls", d["napi"], [("device", "dev"), ("polls", "polls"),
                                                            ("work", "work"), ("budget exhausted", "budget_exhausted")]))
    if d.get("drops"):
        parts.append(_small_table("drops by reason", d["drops"], [("reason", "reason"), ("count", "count")]))
    return parts


PANELS = {"isolation": _isolation, "irq": _irq, "memory": _memory, "syscall": _syscall, "network": _network}


def render(report: dict, console: Console) -> None:
    cap = report["capture"]
    head = (f"[bold]LatencyScope[/] · {cap['host']} · kernel {cap['kernel']} · {cap['duration_s']:.1f} s · "
            f"{cap['cpus']} CPUs · {cap['events']:,} events · "
            + (f"[bold red]{cap['lost_events']:,} lost[/]" if cap["lost_events"] else "0 lost")
            + ("" if cap["complete"] else " · [bold yellow]INCOMPLETE[/]"))
    console.print(head)
    console.print(f"[dim]{cap['path']} · started {cap['start_wall_time']}"
                  + (f" · headers fallback {cap['header_fallback']}" if cap.get("header_fallback") else "") + "[/]")
    for w in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")
    for name in report["modules"]:
        d = report[name]
        title = Text.assemble((TITLES.get(name, name), "bold"), "  ", _status(d["status"]))
        if d["status"] == "NOT_RECORDED":
            console.print(Panel(Text(d.get("message", "not recorded"), style="dim"), title=title,
                                title_align="left", border_style="dim"))
            continue
        body = PANELS.get(name, _generic)(d)
        for n in d.get("notes", []):
            body.append(Text(f"note: {n}", style="dim"))
        body.append(_checks(d["checks"]))
        console.print(Panel(Group(*body), title=title, title_align="left",
                            border_style=STYLE.get(d["status"], "").replace("bold ", "")))
    cc = [c for c in report.get("capture_checks", []) if c["status"] != "PASS"]
    if cc:
        console.print(_checks(cc))
    v = report["verdict"]
    console.print(Text.assemble(("Verdict: ", "bold"), _status(v["status"]),
                                f" — {len(v['violations'])} violation(s), {len(v['warnings'])} warning(s) "
                                f"· exit {v['exit_code']}"))
