"""Registry of analyses: one Python module per product module.

Each registered module defines ``MODULE`` (its name), ``POLICY`` (threshold
name -> (default, meaning)) and ``analyze(cap, ctx) -> ModuleResult``.
"""
from __future__ import annotations

import importlib
from typing import Dict, List

# Report order.  A new module adds one line.
ANALYSES: Dict[str, str] = {
    "isolation": "latencyscope.analyze.isolation",
    "irq": "latencyscope.analyze.irq",
    "memory": "latencyscope.analyze.memory",
    "syscall": "latencyscope.analyze.syscall",
    "network": "latencyscope.analyze.network",
}


def names() -> List[str]:
    return list(ANALYSES)


def load(name: str):
    return importlib.import_module(ANALYSES[name])
