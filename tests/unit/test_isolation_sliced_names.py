"""The sliced isolation pass names tasks only on the rows it reports, and names
them as the whole-table pass does: rebuilt (format 3) or stored (format 2)."""
from __future__ import annotations

import json

import pytest

from latencyscope.analyze import isolation, names, policy, report
from synth import MS, US, capture, switch, wakeup

HOG, INTRUDER, DAEMON = 100, 200, 300


def renamed_intruder(stored_names: bool):
    """CPU 1: a hog (pid 100) preempted twice by pid 200, named 'old' the first
    time and 'new' the second (renamed at 4 ms).  Format 3 learns the names from
    the snapshot and the rename record; format 2 stores them in the switches
    (and has no snapshot: a name rebuilt from pid and time would read '?')."""
    def sw(ts, cpu, prev, nxt, state, old):
        comm = {INTRUDER: "old" if old else "new"}
        return switch(ts, cpu, prev, nxt, prev_state=state, prev_comm=comm.get(prev), next_comm=comm.get(nxt))
    tables = {
        "sched_switch": [
            sw(0, 1, 0, HOG, 1, True), sw(0, 0, 0, DAEMON, 1, True),
            sw(1500 * US, 1, HOG, INTRUDER, 0x100, True),
            sw(2 * MS, 1, INTRUDER, HOG, 1, True),
            sw(5100 * US, 1, HOG, INTRUDER, 0x100, False),
            sw(5300 * US, 1, INTRUDER, HOG, 1, False),
            sw(7 * MS, 0, DAEMON, 0, 1, False),
            sw(9200 * US, 0, 0, DAEMON, 1, False),
        ],
        "sched_wakeup": [wakeup(1 * MS, INTRUDER, 1), wakeup(5 * MS, INTRUDER, 1), wakeup(9 * MS, DAEMON, 0)],
        "task_rename": [{"ts_ns": 4 * MS, "cpu": 1, "pid": INTRUDER, "oldcomm": "old", "comm": "new"}],
    }
    if stored_names:
        return capture(tables, names=True)
    tasks = [{"tid": t, "tgid": t, "comm": c, "kthread": False}
             for t, c in ((HOG, "t100"), (INTRUDER, "old"), (DAEMON, "t300"))]
    return capture(tables, names=False, tasks=tasks)


def _figures(cap, monkeypatch, sliced: bool, rows: int):
    monkeypatch.setattr(isolation, "CHUNKED_ABOVE_ROWS", 0 if sliced else 10**12)
    monkeypatch.setattr(isolation, "slice_rows", lambda n: rows)
    ctx = report.resolve_context(cap, policy.default_values(), cpus=[1], pids=[HOG], top=8)
    return json.loads(json.dumps(isolation.analyze(cap, ctx).data, sort_keys=True))


@pytest.mark.parametrize("stored_names", [False, True], ids=["format3", "format2"])
def test_a_renamed_intruder_is_two_intruders_under_its_names_at_each_switch(monkeypatch, stored_names):
    whole = _figures(renamed_intruder(stored_names), monkeypatch, False, 0)
    assert whole["intruders"] == [
        {"comm": "old", "pid": INTRUDER, "cpu": 1, "count": 1, "total_ns": 500 * US, "max_ns": 500 * US,
         "kernel_thread": False},
        {"comm": "new", "pid": INTRUDER, "cpu": 1, "count": 1, "total_ns": 200 * US, "max_ns": 200 * US,
         "kernel_thread": False}]
    assert [(w["comm"], w["latency_ns"], [o["label"] for o in w["occupants"]]) for w in whole["worst"]] == [
        ("t100", 500 * US, [f"old ({INTRUDER})"]), ("t100", 200 * US, [f"new ({INTRUDER})"])]
    for keep in (isolation.EXPLAIN_KEEP_ROWS, 0):   # the causes from the kept switches, or read again
        monkeypatch.setattr(isolation, "EXPLAIN_KEEP_ROWS", keep)
        for rows in (1, 2, 3, 5, 100):
            assert _figures(renamed_intruder(stored_names), monkeypatch, True, rows) == whole


def test_the_sliced_pass_rebuilds_no_name_column(monkeypatch):
    def column(*a, **kw):
        raise AssertionError("a whole name column was rebuilt")
    cap = renamed_intruder(stored_names=False)
    monkeypatch.setattr(names.Names, "column", column)
    got = _figures(cap, monkeypatch, True, 3)
    assert [i["comm"] for i in got["intruders"]] == ["old", "new"]
