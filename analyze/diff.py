"""Regression comparison of two captures: which figures got worse, beyond noise.

Every figure of the two reports (percentiles, counts, totals of every
module, plus the delay per cause from the cost table) is put side by side
with its change, and judged with the ``[diff]`` section of the policy:

* a **percentile** regresses when it grew by more than ``tolerance_pct`` and
  ``min_abs_ns``, *and* both captures have at least ``min_tail_samples``
  samples beyond it (a P99.999 of 300 samples is the max of a handful of
  events and is shown, not judged), *and* -- when the samples are at hand --
  the two distribution-free confidence intervals (order statistics of the
  binomial rank, ``confidence``) do not overlap.  The max (P100) has no
  sample beyond it and is never judged.
* a **count** (intrusions, migrations, lost events, ...) is compared per
  second of capture; it regresses when the new rate is above the base rate
  by more than ``tolerance_pct`` and the excess is beyond Poisson noise
  (z of ``confidence``, at least 1 event).
* a **total** in ns (kernel-thread time, delay per cause) is compared per
  second too, beyond ``tolerance_pct`` and ``min_abs_ns``; a cause's total
  must also grow beyond its noise: a sum of random delays has variance
  sum(delay²) (compound Poisson), so one outlier that doubles a total of a
  few hundred short waits is not a regression, a new intruder that keeps
  coming back is.
* other numbers are judged by ``tolerance_pct``; sample counts, switch
  and packet counts, futex waits and sleeps (a parked thread may just be
  idle) are shown for context only.

Higher is worse for every judged figure.  The comparison does not care on
which host each capture was made; when they differ it says so, since CPU
numbers, pids and IRQ lines need not correspond.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from latencyscope.analyze.stats import PERCENTILES

DIFF_SCHEMA = "latencyscope.diff/1"

REGRESSED, IMPROVED, SAME, NOT_JUDGED, INFO, NEW, GONE = (
    "regressed", "improved", "same", "not judged", "info", "new", "gone")

# Two-sided normal quantiles for the confidence levels the policy accepts.
_Z = {0.9: 1.645, 0.95: 1.96, 0.99: 2.576, 0.999: 3.291}

# Figures shown for context, never judged: more samples, packets or switches is
# not worse, settings echoed from the policy are not measurements, and what the
# kernel did not report (unreported switches) is the host's, not the workload's.
INFO_KEYS = {"context_switches", "target_threads", "events", "duration_s", "cpus", "targets_inferred",
             "rx_packets", "wakes", "woken", "blocking_threshold_ns", "timeline_bucket_ns",
             "unreported_switches", "unattributed_ns"}
# Whole sections shown, not judged: a thread parked on a futex or in nanosleep
# may simply have nothing to do, so longer waits there are not a regression
# (the blocking-call and futex-wait checks of the report judge them instead).
INFO_SECTIONS = {"syscall.futex", "syscall.sleeps"}
_PCT = re.compile(r"^p(\d+(?:_\d+)?)_(.+)$")
_MAX = re.compile(r"^max_(.+)$")
_PID = re.compile(r"\s*[\(\[]\d+[\)\]]$")


def z_of(confidence: float) -> float:
    """Two-sided z for a confidence level (0.99 -> 2.576); nearest tabulated level."""
    best = min(_Z, key=lambda c: abs(c - confidence))
    return _Z[best]


@dataclass
class Figure:
    section: str
    key: str
    kind: str                          # percentile | count | total | value | info
    q: Optional[float] = None          # percentile level (1.0 = max)
    samples_key: Optional[str] = None  # key of the sample count behind a percentile


@dataclass
class Side:
    """What one capture contributes: its report, figure values, raw samples."""
    report: dict
    values: Dict[Tuple[str, str], object] = field(default_factory=dict)
    samples: Dict[Tuple[str, str], np.ndarray] = field(default_factory=dict)  # (section, stem) -> sorted ns
    events: Dict[Tuple[str, str], int] = field(default_factory=dict)          # cause rows: events behind
    sq: Dict[Tuple[str, str], float] = field(default_factory=dict)            # cause rows: sum of delay²

    @property
    def duration_s(self) -> float:
        return float(self.report["capture"].get("duration_s") or 0.0)


def _percentile_level(key: str) -> Optional[float]:
    m = _PCT.match(key)
    if m and key.endswith("_ns"):
        name = "p" + m.group(1)
        for n, q in PERCENTILES:
            if n == name:
                return q
        digits = m.group(1).replace("_", ".")
        try:
            return float(digits) / 100.0
        except ValueError:
            return None
    if _MAX.match(key) and key.endswith("_ns"):
        return 1.0
    return None


def _stem(key: str) -> str:
    """p99_9_runqueue_ns / max_runqueue_ns -> runqueue."""
    m = _PCT.match(key) or _MAX.match(key)
    s = m.group(m.lastindex) if m else key
    return s[:-3] if s.endswith("_ns") else s


def _samples_key(d: dict, key: str) -> Optional[str]:
    stem = _stem(key)
    for cand in (f"{stem}_samples", f"{stem}_count", f"{stem}s", "samples", "count"):
        if isinstance(d.get(cand), int) and not isinstance(d.get(cand), bool):
            return cand
    return None


def q_free(d: dict) -> bool:
    """A 'count' beside percentiles is their sample count (context), not a figure to judge."""
    return any(_percentile_level(k) is not None for k in d)


def classify(section: str, d: dict, key: str, value) -> Optional[Figure]:
    """How a scalar of a report is compared; None when it is not a figure."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
        return None
    if key in INFO_KEYS or key.endswith("_samples") or section in INFO_SECTIONS or (key == "count" and q_free(d)):
        return Figure(section, key, INFO)
    q = _percentile_level(key)
    if q is not None:
        return Figure(section, key, "percentile", q=q, samples_key=_samples_key(d, key))
    if key.endswith("_ns"):
        return Figure(section, key, "total")
    if isinstance(value, int) or value is None:
        return Figure(section, key, "count")
    return Figure(section, key, "value")


def report_figures(rep: dict) -> List[Tuple[Figure, object]]:
    """Every comparable scalar of a report dict, in report order."""
    out: List[Tuple[Figure, object]] = []
    cap = rep.get("capture", {})
    for key in ("duration_s", "events", "lost_events"):
        f = classify("capture", cap, key, cap.get(key))
        if f:
            out.append((f, cap.get(key)))
    for name in rep.get("modules", []):
        d = rep.get(name) or {}
        if d.get("status") == "NOT_RECORDED":
            continue
        for key, v in d.items():
            f = classify(name, d, key, v)
            if f:
                out.append((f, v))
            elif isinstance(v, dict):  # one level of nested figures (e.g. per-vector summaries)
                for k2, v2 in v.items():
                    f = classify(f"{name}.{key}", v, k2, v2)
                    if f:
                        out.append((f, v2))
    return out


def _percentile_ci(sorted_ns: np.ndarray, q: float, z: float) -> Tuple[int, int, int]:
    """(value, ci_low, ci_high) of the nearest-rank q-quantile.

    Distribution-free: the rank of the q-quantile among n samples is
    Binomial(n, q); its z-interval of ranks gives the interval of values.
    """
    n = sorted_ns.size
    k = n * q
    half = z * math.sqrt(max(n * q * (1 - q), 0.0))
    idx = np.clip(np.array([math.ceil(k - 1e-9) - 1, math.floor(k - half) - 1, math.ceil(k + half) - 1]), 0, n - 1)
    v = sorted_ns[idx]
    return int(v[0]), int(v[1]), int(v[2])


def judge(fig: Figure, b, n, base: Side, new: Side, pol: dict) -> dict:
    """One row of the diff: values, change and status (see module doc)."""
    row = {"section": fig.section, "figure": fig.key, "kind": fig.kind, "base": b, "new": n,
           "change": None, "change_pct": None, "status": SAME, "note": ""}
    if b is None and n is None:
        row["status"] = INFO if fig.kind == INFO else SAME
        return row
    if b is None or n is None:
        row["status"] = NEW if b is None else GONE
        row["note"] = "only in " + ("NEW" if b is None else "BASE")
        return row
    row["change"] = n - b
    row["change_pct"] = round((n - b) / b * 100.0, 2) if b else (None if n == b else math.inf)
    if fig.kind == INFO:
        row["status"] = INFO
        return row
    tol = float(pol["tolerance_pct"]) / 100.0
    min_abs = float(pol["min_abs_ns"])
    min_tail = float(pol["min_tail_samples"])
    z = z_of(float(pol.get("confidence", 0.99)))
    db, dn = max(base.duration_s, 1e-9), max(new.duration_s, 1e-9)

    def worse(lo, hi, abs_min=0.0):
        return hi > lo * (1 + tol) and hi - lo > abs_min

    if fig.kind == "percentile":
        label = "max" if fig.q == 1.0 else f"P{fig.q * 100:g}"
        nb = base.values.get((fig.section, fig.samples_key)) if fig.samples_key else None
        nn = new.values.get((fig.section, fig.samples_key)) if fig.samples_key else None
        sb = base.samples.get((fig.section, _stem(fig.key)))
        sn = new.samples.get((fig.section, _stem(fig.key)))
        if sb is not None and sn is not None:
            nb, nn = sb.size, sn.size
        if nb is None or nn is None:
            row["status"] = NOT_JUDGED
            row["note"] = "sample count unknown"
            return row
        tail = min(nb, nn) * (1 - fig.q)
        if tail < min_tail:
            row["status"] = NOT_JUDGED
            row["note"] = f"{min(nb, nn):,} samples: {tail:.3g} beyond {label} (need {min_tail:g})"
            return row
        up, down = worse(b, n, min_abs), worse(n, b, min_abs)
        if (up or down) and sb is not None and sn is not None and sb.size and sn.size:
            _, blo, bhi = _percentile_ci(sb, fig.q, z)
            _, nlo, nhi = _percentile_ci(sn, fig.q, z)
            row["base_ci"], row["new_ci"] = [blo, bhi], [nlo, nhi]
            if up and nlo <= bhi or down and blo <= nhi:
                row["status"] = SAME
                row["note"] = "within noise: confidence intervals overlap"
                return row
        row["status"] = REGRESSED if up else IMPROVED if down else SAME
        return row
    if fig.kind == "count":
        expected = b * dn / db
        excess = n - expected
        sig = z * math.sqrt(max(expected, 1.0))
        if n > expected * (1 + tol) and excess >= 1 and excess > sig:
            row["status"] = REGRESSED
        elif expected > n * (1 + tol) and -excess >= 1 and -excess > z * math.sqrt(max(n * db / dn, 1.0)):
            row["status"] = IMPROVED
        elif abs(excess) >= 1 and n != b and (n > expected * (1 + tol) or expected > n * (1 + tol)):
            row["note"] = "within Poisson noise"
        if abs(dn - db) > 0.1 * db:
            row["note"] = (row["note"] + "; " if row["note"] else "") + "compared per second"
        return row
    if fig.kind == "total":
        expected = b * dn / db
        if fig.section == "causes":
            r = dn / db
            sd = math.sqrt(r * r * base.sq.get((fig.section, fig.key), 0.0) + new.sq.get((fig.section, fig.key), 0.0))
            row["events"] = [base.events.get((fig.section, fig.key), 0), new.events.get((fig.section, fig.key), 0)]
            if (worse(expected, n, min_abs) or worse(n, expected, min_abs)) and abs(n - expected) <= z * sd:
                row["note"] = f"within noise (±{z * sd / 1e3:,.0f} µs for {row['events'][1]:,} events)"
                return row
        if worse(expected, n, min_abs):
            row["status"] = REGRESSED
        elif worse(n, expected, min_abs):
            row["status"] = IMPROVED
        if abs(dn - db) > 0.1 * db:
            row["note"] = "compared per second"
        return row
    row["status"] = REGRESSED if worse(b, n) else IMPROVED if worse(n, b) else SAME
    return row


def side(report: dict, delays=None, samples: Optional[Dict[Tuple[str, str], np.ndarray]] = None) -> Side:
    """A Side from a report, its cost-table delays (optional) and raw samples."""
    s = Side(report)
    for fig, v in report_figures(report):
        s.values[(fig.section, fig.key)] = v
    for k, arr in (samples or {}).items():
        s.samples[k] = np.sort(np.asarray(arr))
    if delays is not None and delays.height:
        import polars as pl

        aggs = (pl.col("delay_ns").sum(), pl.col("events").sum(), pl.col("delay_sq_ns2").sum())
        by_cause = delays.group_by("module", "cause").agg(*aggs)
        by_who = (delays.with_columns(who=pl.col("who").str.replace(_PID.pattern, ""))
                  .group_by("module", "cause", "who").agg(*aggs))
        for r in by_cause.iter_rows(named=True):
            key = f"{r['module']} / {r['cause']}"
            s.values[("causes", key)] = int(r["delay_ns"])
            s.events[("causes", key)] = int(r["events"])
            s.sq[("causes", key)] = float(r["delay_sq_ns2"])
        for r in by_who.iter_rows(named=True):
            key = f"{r['module']} / {r['cause']} / {r['who']}"
            s.values[("causes", key)] = int(r["delay_ns"])
            s.events[("causes", key)] = int(r["events"])
            s.sq[("causes", key)] = float(r["delay_sq_ns2"])
    return s


def compare(base: Side, new: Side, pol: dict, top_causes: int = 15) -> dict:
    """The diff object (JSON contract, see docs/json-report.md#diff)."""
    figs: Dict[Tuple[str, str], Figure] = {}
    for s in (base, new):
        for fig, _ in report_figures(s.report):
            figs.setdefault((fig.section, fig.key), fig)
    rows = [judge(f, base.values.get(k), new.values.get(k), base, new, pol) for k, f in figs.items()]
    cause_keys = sorted({k for k in list(base.values) + list(new.values) if k[0] == "causes"},
                        key=lambda k: -max(base.values.get(k) or 0, new.values.get(k) or 0))
    for k in cause_keys[:top_causes]:
        # a cause absent from one capture delayed nothing there: 0, not unknown
        rows.append(judge(Figure("causes", k[1], "total"), base.values.get(k, 0), new.values.get(k, 0),
                          base, new, pol))
    for r in rows:
        if r["change_pct"] == math.inf:
            r["change_pct"] = None
    bc, nc = base.report["capture"], new.report["capture"]
    notes = []
    if bc.get("host") != nc.get("host") or bc.get("kernel") != nc.get("kernel"):
        notes.append(f"captures from different hosts: BASE {bc.get('host')} (kernel {bc.get('kernel')}, "
                     f"{bc.get('cpus')} CPUs), NEW {nc.get('host')} (kernel {nc.get('kernel')}, {nc.get('cpus')} "
                     "CPUs); figures are compared as measured, CPU numbers, pids and IRQ lines may not correspond")
    if abs(new.duration_s - base.duration_s) > 0.1 * max(base.duration_s, 1e-9):
        notes.append(f"durations differ ({base.duration_s:.1f} s vs {new.duration_s:.1f} s): "
                     "counts and totals are compared per second")
    for name, c in (("BASE", bc), ("NEW", nc)):
        if c.get("lost_events"):
            notes.append(f"{name} lost {c['lost_events']:,} events: its figures undercount")
    regressions = [r for r in rows if r["status"] == REGRESSED]
    return {
        "schema": DIFF_SCHEMA,
        "base": bc,
        "new": nc,
        "cross_host": bc.get("host") != nc.get("host"),
        "policy": dict(pol),
        "verdicts": {"base": base.report["verdict"]["status"], "new": new.report["verdict"]["status"]},
        "notes": notes,
        "figures": rows,
        "regressions": [f"{r['section']}.{r['figure']}" for r in regressions],
        "improvements": [f"{r['section']}.{r['figure']}" for r in rows if r["status"] == IMPROVED],
        "exit_code": 2 if regressions else 0,
    }


def _fmt(fig_key: str, kind: str, v) -> str:
    from latencyscope.analyze.stats import fmt_ns

    if v is None:
        return "—"
    if kind in ("percentile", "total") or fig_key.endswith("_ns"):
        return fmt_ns(v)
    if isinstance(v, float):
        return f"{v:,.4g}"
    return f"{v:,}"


STATUS_STYLE = {REGRESSED: "bold red", IMPROVED: "green", NOT_JUDGED: "dim yellow", INFO: "dim", SAME: "",
                NEW: "cyan", GONE: "cyan"}


def render(d: dict, console) -> None:
    """Side-by-side table of a diff object (renders only)."""
    from rich.table import Table
    from rich.text import Text

    b, n = d["base"], d["new"]
    console.print(f"[bold]LatencyScope diff[/] · BASE {b['path']} ({b['host']}, {b['duration_s']:.1f} s, "
                  f"{d['verdicts']['base']}) → NEW {n['path']} ({n['host']}, {n['duration_s']:.1f} s, "
                  f"{d['verdicts']['new']})")
    for note in d["notes"]:
        console.print(f"[yellow]note:[/] {note}")
    p = d["policy"]
    console.print(f"[dim]regression = worse by > {p['tolerance_pct']:g}% (and > {p['min_abs_ns']:,} ns for "
                  f"durations), beyond noise; percentiles need ≥ {p['min_tail_samples']:g} samples beyond them[/]")
    t = Table(show_edge=False, pad_edge=False)
    for c, j in (("figure", "left"), ("BASE", "right"), ("NEW", "right"),
                 ("change", "right"), ("", "left"), ("note", "left")):
        t.add_column(c, justify=j, overflow="fold", no_wrap=c in ("BASE", "NEW", "change", ""))
    for r in d["figures"]:
        if r["change"] is None:
            ch = ""
        else:
            sign = "+" if r["change"] > 0 else "−" if r["change"] < 0 else "±"
            absch = abs(r["change"])
            ch = f"{sign}{_fmt(r['figure'], r['kind'], absch)}"
            if r["change_pct"] is not None and r["change"]:
                ch += f" ({r['change_pct']:+.1f}%)"
        st = r["status"]
        mark = {REGRESSED: "▲ REGRESSED", IMPROVED: "▼ improved", NOT_JUDGED: "? not judged"}.get(st, "")
        name = f"{r['section']}: {r['figure']}" if r["section"] == "causes" else f"{r['section']}.{r['figure']}"
        t.add_row(name, _fmt(r["figure"], r["kind"], r["base"]),
                  _fmt(r["figure"], r["kind"], r["new"]), ch, Text(mark, style=STATUS_STYLE.get(st, "")),
                  Text(r.get("note", ""), style="dim"))
    console.print(t)
    if d["regressions"]:
        console.print(Text.assemble(("Regressions: ", "bold red"), ", ".join(d["regressions"]),
                                    f" · exit {d['exit_code']}"))
    else:
        console.print(Text.assemble(("No regression", "bold green"),
                                    f" ({len(d['improvements'])} improved) · exit {d['exit_code']}"))
