"""JSON output of a report (schema: docs/json-report.md)."""
from __future__ import annotations

import json


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=_default) + "\n"


def _default(o):
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
