"""Test policy for BPF tests.

Tests marked ``kernel`` record with real BPF on this machine.  Where BPF is
not usable they skip with the reason -- except under CI=true, where they
must run and fail: a CI run that silently skipped the kernel is not green.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _bpf_problem():
    if os.geteuid() != 0:
        return "not root: kernel tests need root to load BPF programs"
    try:
        from latencyscope.record import preflight
        pf = preflight.run(["isolation"])
        if pf.headers:
            pf.headers.cleanup()
        p = pf.first_problem()
        return f"{p.name}: {p.detail}" if p else None
    except Exception as exc:  # pragma: no cover
        return f"preflight crashed: {exc}"


_PROBLEM = None
_CHECKED = False


def bpf_problem():
    global _PROBLEM, _CHECKED
    if not _CHECKED:
        _PROBLEM = _bpf_problem()
        _CHECKED = True
    return _PROBLEM


def pytest_collection_modifyitems(config, items):
    kernel_items = [i for i in items if "kernel" in i.keywords]
    if not kernel_items:
        return
    problem = bpf_problem()
    if problem is None:
        return
    for item in kernel_items:
        if IN_CI:
            item.add_marker(pytest.mark.usefixtures("_fail_no_bpf"))
        else:
            item.add_marker(pytest.mark.skip(reason=f"BPF not available here ({problem}); set CI=true to fail instead"))


@pytest.fixture
def _fail_no_bpf():
    pytest.fail(f"CI=true and BPF is not usable: {bpf_problem()}")
