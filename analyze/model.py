"""What every analysis takes and returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

PASS, WARN, FAIL, NOT_RECORDED = "PASS", "WARN", "FAIL", "NOT_RECORDED"
_RANK = {PASS: 0, NOT_RECORDED: 0, WARN: 1, FAIL: 2}


@dataclass
class Check:
    """One verdict line: a figure judged against a policy threshold."""
    module: str
    name: str
    status: str
    message: str
    value: Any = None
    threshold: Any = None

    def to_json(self) -> dict:
        return {"module": self.module, "name": self.name, "status": self.status,
                "message": self.message, "value": self.value, "threshold": self.threshold}


@dataclass
class Context:
    """The analyst's choices, resolved against the capture."""
    monitored_cpus: List[int]
    monitored_source: str            # "--cpus", "recorded filter", "isolated/nohz_full", "none"
    targets: List[int]               # target tgids
    policy: Dict[str, Dict[str, Any]]
    top: int = 10
    notional: Optional[float] = None
    bps_per_us: Optional[float] = None
    interface: Optional[str] = None


@dataclass
class ModuleResult:
    name: str
    data: Dict[str, Any]             # the module's JSON object (without status/checks)
    checks: List[Check] = field(default_factory=list)
    recorded: bool = True
    notes: List[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.recorded:
            return NOT_RECORDED
        return worst_status(c.status for c in self.checks)

    def to_json(self) -> dict:
        out = {"status": self.status}
        out.update(self.data)
        out["checks"] = [c.to_json() for c in self.checks]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def worst_status(statuses) -> str:
    worst = PASS
    for s in statuses:
        if _RANK.get(s, 0) > _RANK[worst]:
            worst = s
    return worst


def judge(module: str, name: str, value, warn=None, fail=None, what: str = "", unit_fmt=str) -> Check:
    """A Check for VALUE against optional WARN/FAIL upper thresholds (exceeding = bad)."""
    if value is None:
        return Check(module, name, PASS, f"{what}: no samples", None, fail if fail is not None else warn)
    if fail is not None and value > fail:
        return Check(module, name, FAIL, f"{what} {unit_fmt(value)} > {unit_fmt(fail)}", value, fail)
    if warn is not None and value > warn:
        return Check(module, name, WARN, f"{what} {unit_fmt(value)} > {unit_fmt(warn)}", value, warn)
    limit = fail if fail is not None else warn
    tail = f" (limit {unit_fmt(limit)})" if limit is not None else ""
    return Check(module, name, PASS, f"{what} {unit_fmt(value)}{tail}", value, limit)
