"""Turn a capture into the report dictionary (the JSON contract).

The JSON schema is documented in docs/json-report.md; figures only, no
presentation.  ``build`` computes, the output modules render.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from latencyscope.analyze import modules as registry
from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import FAIL, PASS, WARN, Check, Context, worst_status
from latencyscope.errors import EXIT_PASS, EXIT_VIOLATION, EXIT_WARN, LatencyScopeError

REPORT_SCHEMA = "latencyscope.report/1"


def resolve_context(cap: Capture, policy: dict, cpus: Optional[List[int]] = None,
                    pids: Sequence[int] = (), top: int = 10, **extra) -> Context:
    filters = cap.manifest.get("filters") or {}
    host = cap.host
    if cpus is not None:
        monitored, source = list(cpus), "--cpus"
    elif filters.get("cpus"):
        monitored, source = list(filters["cpus"]), "recorded --cpus"
    elif host.get("isolated_cpus") or host.get("nohz_full_cpus"):
        monitored = sorted(set(host.get("isolated_cpus") or []) | set(host.get("nohz_full_cpus") or []))
        source = "isolcpus/nohz_full of the host"
    else:
        monitored, source = [], "none"
    ncpu = cap.cpu_count
    if ncpu and any(c >= ncpu for c in monitored):
        raise LatencyScopeError(f"CPU {max(monitored)} is beyond the {ncpu} CPUs of the captured host")
    targets = list(pids) if pids else list(filters.get("pids") or [])
    return Context(monitored_cpus=monitored, monitored_source=source, targets=targets, policy=policy,
                   top=top, **extra)


def capture_summary(cap: Capture) -> dict:
    host = cap.host
    lost = cap.lost
    return {
        "path": cap.path,
        "host": host.get("hostname"),
        "kernel": host.get("kernel_release"),
        "duration_s": round(cap.duration_s, 6),
        "cpus": cap.cpu_count,
        "isolated_cpus": host.get("isolated_cpus", []),
        "nohz_full_cpus": host.get("nohz_full_cpus", []),
        "modules": cap.modules,
        "events": int(sum(cap.events.values())),
        "events_by_table": cap.events,
        "lost_events": int(sum(lost.values())),
        "lost_by_table": lost,
        "skipped_events": int(sum(cap.skipped.values())),
        "skipped_by_program": cap.skipped,
        "start_wall_time": cap.wall_time(cap.window_ns[0]),
        "complete": not cap.incomplete,
        "header_fallback": (cap.manifest.get("kernel_headers") or {}).get("fallback"),
        "tool_version": cap.manifest.get("tool_version"),
    }


# A ring at least this full when a write to it failed was too small for the rate.
FULL_RING = 0.9


def loss_advice(cap: Capture) -> str:
    """What the recorder's diagnostics say about the loss, for the warning:
    rings that were full when writes failed want a larger --ring-scale;
    rings far from full point at something else.  "" when the capture has
    no such diagnostics (older recorders) or they are malformed."""
    rec = cap.manifest.get("recorder")
    fills = rec.get("ring_fill_when_lost") if isinstance(rec, dict) else None
    if not isinstance(fills, dict):
        return ""
    fills = {k: float(v) for k, v in fills.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1.5 and cap.lost.get(k)}
    if not fills:
        return ""
    full = sorted(k for k, v in fills.items() if v >= FULL_RING)
    other = sorted(k for k in fills if k not in full)
    out = []
    if full:
        out.append(f"{', '.join(full)}: ring full when writes failed, record with a larger --ring-scale")
    if other:
        gap = rec.get("longest_drain_gap_ms")
        gap = f", rings undrained up to {gap:g} ms" if isinstance(gap, (int, float)) and not isinstance(gap, bool) \
            else ""
        out.append(f"{', '.join(other)}: ring at most {max(fills[k] for k in other):.0%} full when writes "
                   f"failed, not too small{gap}")
    return " -- " + "; ".join(out)


def capture_checks(cap: Capture, policy: dict) -> List[Check]:
    lost = sum(cap.lost.values())
    lim = policy["capture"]["max_lost_events"]
    checks = []
    if lost > lim:
        per = ", ".join(f"{k} {v:,}" for k, v in cap.lost.items() if v)
        checks.append(Check("capture", "lost_events", WARN,
                            f"{lost:,} events lost in the kernel (writes to the ring buffer failed: {per}); "
                            "figures undercount"
                            + loss_advice(cap), lost, lim))
    else:
        checks.append(Check("capture", "lost_events", PASS, f"{lost:,} events lost", lost, lim))
    skipped = sum(cap.skipped.values())
    if skipped > lim:
        per = ", ".join(f"{k} {v:,}" for k, v in cap.skipped.items() if v)
        checks.append(Check("capture", "skipped_events", WARN,
                            f"{skipped:,} events not recorded: the kernel skipped our program because another "
                            f"BPF program was running on that CPU ({per}); figures undercount", skipped, lim))
    if cap.incomplete:
        err = cap.manifest.get("error") if isinstance(cap.manifest.get("error"), str) else None
        why = f"recording stopped: {err}" if err else "recorder killed or crashed"
        checks.append(Check("capture", "complete", WARN,
                            f"capture is incomplete ({why}); figures cover what was flushed"))
    return checks


def build(cap: Capture, ctx: Context, modules: Optional[Sequence[str]] = None) -> dict:
    wanted = list(modules) if modules else registry.names()
    results = {}
    for name in registry.names():
        if name in wanted:
            results[name] = registry.load(name).analyze(cap, ctx)
    cchecks = capture_checks(cap, ctx.policy)
    all_checks = cchecks + [c for r in results.values() for c in r.checks]
    status = worst_status(c.status for c in all_checks)
    exit_code = {PASS: EXIT_PASS, WARN: EXIT_WARN, FAIL: EXIT_VIOLATION}[status]
    report = {
        "schema": REPORT_SCHEMA,
        "capture": capture_summary(cap),
        "verdict": {
            "status": status,
            "exit_code": exit_code,
            "violations": [c.message for c in all_checks if c.status == FAIL],
            "warnings": [c.message for c in all_checks if c.status == WARN],
        },
        "capture_checks": [c.to_json() for c in cchecks],
        "modules": list(results),
        "warnings": list(cap.warnings),
    }
    for name, r in results.items():
        report[name] = r.to_json()
    return report
