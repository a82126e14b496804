"""A capture too large to hold is analyzed slice by slice: the figures are the in-memory ones.

Both paths run on the same captures; the sliced one with slices of a few
hundred events, so that waits, on-CPU intervals and thread names cross many
slice boundaries.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from latencyscope.analyze import isolation, policy, report
from latencyscope.analyze.capture import open_capture
from synth import MS, US, capture, switch, wakeup

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _gen_module():
    spec = importlib.util.spec_from_file_location("lsbench_gen_capture_chunked", BENCH / "gen_capture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("chunked") / "syn.lscope"
    out, rows = _gen_module().generate(str(path), 60_000, batch=7_000, n_cpus=3, n_tasks=12, seed=7)
    assert rows["sched_switch"] > 30_000
    return out


def _figures(cap, monkeypatch, sliced: bool, rows: int, cpus=None, pids=()):
    monkeypatch.setattr(isolation, "CHUNKED_ABOVE_ROWS", 0 if sliced else 10**12)
    monkeypatch.setattr(isolation, "slice_rows", lambda n: rows)
    ctx = report.resolve_context(cap, policy.default_values(), cpus=cpus, pids=pids, top=8)
    return json.loads(json.dumps(isolation.analyze(cap, ctx).data, sort_keys=True))


@pytest.mark.parametrize("cpus,pids", [(None, ()), ([1], ()), ([0, 2], ()), (None, (1004,)), ([2], (1000, 1008))])
def test_a_large_capture_sliced_gives_the_in_memory_figures(synthetic, monkeypatch, cpus, pids):
    whole = _figures(open_capture(synthetic), monkeypatch, False, 0, cpus, pids)
    sliced = _figures(open_capture(synthetic), monkeypatch, True, 997, cpus, pids)
    assert whole["runqueue_samples"] > 1000 and whole["worst"]
    if cpus:
        assert whole["intrusions"] > 0
    assert sliced == whole


def test_a_wait_and_an_intruder_cut_by_a_slice_boundary_are_whole(monkeypatch):
    HOG, INTRUDER, DAEMON = 100, 200, 300
    tables = {
        "sched_switch": [
            switch(0, 1, 0, HOG), switch(0, 0, 0, DAEMON),
            switch(1500 * US, 1, HOG, INTRUDER, prev_state=0x100),
            switch(2 * MS, 1, INTRUDER, HOG, prev_state=1),
            switch(5100 * US, 1, HOG, INTRUDER, prev_state=0x100),
            switch(5300 * US, 1, INTRUDER, HOG, prev_state=1),
            switch(7 * MS, 0, DAEMON, 0, prev_state=1),
            switch(9200 * US, 0, 0, DAEMON),
        ],
        "sched_wakeup": [wakeup(1 * MS, INTRUDER, 1), wakeup(5 * MS, INTRUDER, 1),
                         wakeup(6 * MS, DAEMON, 0), wakeup(9 * MS, DAEMON, 0)],
        "sched_migrate_task": [{"ts_ns": 8 * MS, "cpu": 1, "pid": HOG, "orig_cpu": 1, "dest_cpu": 0,
                                "comm": "t100"}],
    }
    for cpus in (None, [1]):
        whole = _figures(capture(tables), monkeypatch, False, 0, cpus)
        for rows in (1, 2, 3, 5):
            assert _figures(capture(tables), monkeypatch, True, rows, cpus) == whole


def test_the_sliced_path_is_the_one_taken_above_the_threshold(synthetic, monkeypatch):
    calls = []
    real = isolation._figures_sliced
    monkeypatch.setattr(isolation, "_figures_sliced", lambda *a: calls.append(a[2]) or real(*a))
    _figures(open_capture(synthetic), monkeypatch, True, 997)
    assert calls == [997]
    _figures(open_capture(synthetic), monkeypatch, False, 997)
    assert calls == [997]


def test_a_switch_the_kernel_did_not_report_is_counted_and_its_time_given_to_no_task(monkeypatch):
    """CPU 1: AGENT is seen switching in at 2 ms and never out: the next switch
    there (3 ms) starts from HOG.  Its run counts as an intrusion for no time;
    the 1 ms to the next switch seen is unattributed.  On CPU 0 the chain is
    whole.  Both paths, slices cut anywhere (the gap across a boundary too)."""
    HOG, AGENT, DAEMON = 100, 74, 300
    tables = {"sched_switch": [
        switch(0, 1, 0, HOG), switch(1 * MS, 1, HOG, 0, prev_state=1),
        switch(2 * MS, 1, 0, AGENT),
        switch(3 * MS, 1, HOG, 0, prev_state=1),     # AGENT -> ... -> HOG went unreported
        switch(4 * MS, 1, 0, HOG),
        switch(0, 0, 0, DAEMON), switch(2500 * US, 0, DAEMON, 0, prev_state=1),
    ]}
    want = {"unreported_switches": 1, "unattributed_ns": 1 * MS,
            "unreported_after": [{"pid": AGENT, "comm": f"t{AGENT}", "cpu": 1, "count": 1, "total_ns": 1 * MS}]}
    for cpus in (None, [1], [0]):
        whole = _figures(capture(tables), monkeypatch, False, 0, cpus)
        got = {k: whole[k] for k in want}
        assert got == (want if cpus != [0] else {"unreported_switches": 0, "unattributed_ns": 0,
                                                  "unreported_after": []}), cpus
        if cpus == [1]:
            assert [(i["pid"], i["count"], i["total_ns"]) for i in whole["intruders"]] == [(AGENT, 1, 0)]
        for rows in (1, 2, 3, 4, 100):               # 100: the gap within one slice
            assert _figures(capture(tables), monkeypatch, True, rows, cpus) == whole, (cpus, rows)
    # A --pid filter alone keeps the targets' switches only: no CPU is whole, nothing is judged.
    pid_only = _figures(capture(tables, filters={"cpus": None, "pids": [HOG]}), monkeypatch, False, 0)
    assert (pid_only["unreported_switches"], pid_only["unattributed_ns"]) == (None, None)
    for sliced in (False, True):     # a gap there may be the filter's: the run keeps its span
        got = _figures(capture(tables, filters={"cpus": None, "pids": [HOG]}), monkeypatch, sliced, 3, [1])
        assert [(i["pid"], i["count"], i["total_ns"]) for i in got["intruders"]] == [(AGENT, 1, 1 * MS)]
    cpu_filter = _figures(capture(tables, filters={"cpus": [0], "pids": []}), monkeypatch, False, 0)
    assert cpu_filter["unreported_switches"] == 0          # only CPU 0 was recorded in full
    report_note = isolation.analyze(capture(tables), report.resolve_context(
        capture(tables), policy.default_values(), cpus=None, pids=(), top=8)).notes
    assert any("1 context switch not reported by the kernel" in n and "(tid 74)" in n for n in report_note)
    # Switch records the capture lost make gaps too: the note says so.
    lossy = capture(tables, lost={"sched_switch": 2})
    notes = isolation.analyze(lossy, report.resolve_context(lossy, policy.default_values(), cpus=None, pids=(),
                                                            top=8)).notes
    assert any("missing: 2 sched_switch records were lost or skipped" in n for n in notes), notes


def test_a_wait_through_an_unreported_switch_names_its_occupant_or_unreported(monkeypatch):
    """CPU 1: AGENT switched in at 2 ms; WAITER, woken at 2.2 ms, ran at 3.5 ms,
    switched in from OTHER: how AGENT left, and what OTHER did before 3.5 ms, was
    never reported.  The 1.3 ms of the wait is AGENT's "or unreported", in both
    paths, slices cut anywhere."""
    AGENT, OTHER, WAITER = 74, 500, 600
    tables = {
        "sched_switch": [
            switch(0, 1, 0, AGENT), switch(1 * MS, 1, AGENT, 0, prev_state=1),
            switch(2 * MS, 1, 0, AGENT),
            switch(3500 * US, 1, OTHER, WAITER, prev_state=1),
            switch(4 * MS, 1, WAITER, 0, prev_state=1),
            switch(0, 0, 0, 300), switch(5 * MS, 0, 300, 0, prev_state=1),
        ],
        "sched_wakeup": [wakeup(2200 * US, WAITER, 1)],
    }
    whole = _figures(capture(tables), monkeypatch, False, 0, [1], (WAITER,))
    (w,) = whole["worst"]
    assert (w["pid"], w["latency_ns"]) == (WAITER, 1300 * US)
    assert w["occupants"] == [{"kind": "task", "label": f"t{AGENT} ({AGENT}) or unreported", "overlap_ns": 1300 * US}]
    for rows in (1, 2, 3, 100):
        assert _figures(capture(tables), monkeypatch, True, rows, [1], (WAITER,)) == whole, rows
    # Under a --pid filter alone the gap may be the filter's: no "or unreported".
    got = _figures(capture(tables, filters={"cpus": None, "pids": [WAITER]}), monkeypatch, False, 0, [1], (WAITER,))
    assert got["worst"][0]["occupants"][0]["label"] == f"t{AGENT} ({AGENT})"
