"""Several captures side by side: ``latencyscope-analyze report A B C``.

One column per capture, one row per figure (the same figures ``diff``
compares), plus each capture's verdict.  The exit code is the worst verdict.
JSON output is ``{"schema": "latencyscope.reports/1", "reports": [...]}``:
the full report of each capture, in the order given.
"""
from __future__ import annotations

import io
from typing import Dict, List, Optional, Tuple

from latencyscope.analyze.diff import report_figures

COMPARE_SCHEMA = "latencyscope.reports/1"


def table(reps: List[dict]) -> dict:
    """Rows of figures, one value per report: {"columns": [...], "rows": [...]} (computes only)."""
    keys: Dict[Tuple[str, str], str] = {}
    values: List[Dict[Tuple[str, str], object]] = []
    for rep in reps:
        vals = {}
        for fig, v in report_figures(rep):
            keys.setdefault((fig.section, fig.key), fig.kind)
            vals[(fig.section, fig.key)] = v
        values.append(vals)
    rows = [{"section": "verdict", "figure": "status", "kind": "status",
             "values": [r["verdict"]["status"] for r in reps]}]
    rows += [{"section": "verdict", "figure": "exit_code", "kind": "info",
              "values": [r["verdict"]["exit_code"] for r in reps]}]
    for (sec, key), kind in keys.items():
        rows.append({"section": sec, "figure": key, "kind": kind, "values": [v.get((sec, key)) for v in values]})
    cost_rows = [r.get("cost") for r in reps]
    if any(cost_rows):
        rows.append({"section": "cost", "figure": "total_cost", "kind": "value",
                     "values": [c["total_cost"] if c else None for c in cost_rows]})
    cols = [{"path": r["capture"]["path"], "host": r["capture"]["host"], "duration_s": r["capture"]["duration_s"]}
            for r in reps]
    return {"columns": cols, "rows": rows}


def exit_code(reps: List[dict]) -> int:
    return max((r["verdict"]["exit_code"] for r in reps), default=0)


def render(reps: List[dict], console) -> None:
    """One column per capture (renders only)."""
    from rich.table import Table
    from rich.text import Text

    from latencyscope.analyze.diff import _fmt
    from latencyscope.analyze.terminal import STYLE

    tab = table(reps)
    t = Table(show_edge=False, pad_edge=False, title="LatencyScope · one column per capture",
              title_justify="left", title_style="bold")
    t.add_column("section")
    t.add_column("figure")
    for i, c in enumerate(tab["columns"]):
        t.add_column(f"[{i + 1}] {c['path'].rsplit('/', 1)[-1]}", justify="right", overflow="fold")
    for r in tab["rows"]:
        if r["kind"] == "status":
            cells = [Text(v, style=STYLE.get(v, "")) for v in r["values"]]
        else:
            cells = [_fmt(r["figure"], r["kind"], v) for v in r["values"]]
        t.add_row(r["section"], r["figure"], *cells)
    for i, c in enumerate(tab["columns"]):
        console.print(f"[dim][{i + 1}] {c['path']} · {c['host']} · {c['duration_s']:.1f} s[/]")
    hosts = {c["host"] for c in tab["columns"]}
    if len(hosts) > 1:
        console.print(f"[yellow]note:[/] captures from {len(hosts)} different hosts ({', '.join(sorted(map(str, hosts)))})")
    console.print(t)
    console.print(f"worst verdict · exit {exit_code(reps)}")


def emit_columns(reps: List[dict], fmt: str, output: Optional[str]) -> int:
    """Write the multi-capture report as text or JSON; return the worst verdict's exit code."""
    from latencyscope.analyze.cli import write_text

    if fmt == "json":
        from latencyscope.analyze.jsonout import dumps

        write_text(output, dumps({"schema": COMPARE_SCHEMA, "reports": reps}))
    else:
        from rich.console import Console

        if output and output != "-":
            buf = io.StringIO()
            render(reps, Console(file=buf, width=160, force_terminal=False, color_system=None))
            write_text(output, buf.getvalue())
        else:
            console = Console()
            render(reps, console if console.is_terminal else Console(width=160))
    return exit_code(reps)
