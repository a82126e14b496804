"""Format 3: sched_switch and sched_wakeup carry pids only; the reader names
each task as it was named at the event, from the capture's name records."""
import numpy as np
import polars as pl
import pytest

from latencyscope.analyze.names import UNKNOWN
from synth import MS, capture, switch, wakeup


def task(tid, comm, tgid=None):
    return {"tid": tid, "tgid": tgid or tid, "comm": comm, "kthread": False}


def rename(ts, pid, old, new):
    return {"ts_ns": ts, "cpu": 0, "pid": pid, "oldcomm": old, "comm": new}


def names_capture():
    """pid 50: 'old' in the snapshot, renamed 'new' at 5 ms (exec or prctl).
    pid 60: 'gone' in the snapshot; the pid is reused by a new task 'fresh' at 4 ms.
    pid 70: not in the snapshot, first heard of when renamed 'b' (from 'a') at 6 ms.
    pid 80: never named.  pid 90: named only by a migration at 2 ms."""
    sw = [switch(t * MS, t % 2, pid, 0) for t in range(1, 10) for pid in (50, 60, 70, 80, 90)]
    wk = [wakeup(t * MS, pid, 1) for t in range(1, 10) for pid in (50, 60, 70)]
    return capture({
        "sched_switch": sw,
        "sched_wakeup": wk,
        "sched_wakeup_new": [wakeup(4 * MS, 60, 1, comm="fresh")],
        "task_rename": [rename(5 * MS, 50, "old", "new"), rename(6 * MS, 70, "a", "b")],
        "sched_migrate_task": [{"ts_ns": 2 * MS, "cpu": 0, "pid": 90, "orig_cpu": 0, "dest_cpu": 1,
                                "comm": "mover"}],
    }, names=False, tasks=[task(50, "old"), task(60, "gone")])


def expected(pid, t):
    return {50: "old" if t < 5 else "new", 60: "gone" if t < 4 else "fresh", 70: "a" if t < 6 else "b",
            80: UNKNOWN, 90: "mover"}[pid]


def test_names_follow_renames_pid_reuse_and_first_sightings():
    cap = names_capture()
    assert "prev_comm" not in cap.arrow.source("sched_switch").stored_schema.names
    sw = cap.table("sched_switch")
    got = {(p, t // MS): c for p, t, c in sw.select("prev_pid", "ts_ns", "prev_comm").iter_rows()}
    assert got == {(p, t): expected(p, t) for t in range(1, 10) for p in (50, 60, 70, 80, 90)}
    # the idle task is swapper/CPU, as the kernel names it
    assert set(zip(sw["cpu"], sw["next_comm"])) == {(0, "swapper/0"), (1, "swapper/1")}
    wk = cap.table("sched_wakeup")
    assert {(p, t // MS): c for p, t, c in wk.select("pid", "ts_ns", "comm").iter_rows()} == \
        {(p, t): expected(p, t) for t in range(1, 10) for p in (50, 60, 70)}


def test_every_read_path_names_the_same():
    """Whole table, projected frame, and categorical slices give the same names."""
    cap = names_capture()
    whole = cap.table("sched_switch").select("ts_ns", "prev_pid", "prev_comm")
    cap2 = names_capture()
    framed = cap2.frame("sched_switch", ["prev_comm", "ts_ns", "prev_pid"]).select(whole.columns)
    assert framed.equals(whole)
    sliced = pl.concat([s["sched_switch"] for s in names_capture().chunks(
        {"sched_switch": ["ts_ns", "prev_pid", "prev_comm"]}, rows=7, categorical=True)])
    assert sliced["prev_comm"].dtype == pl.Categorical
    assert sliced.with_columns(pl.col("prev_comm").cast(pl.String)).equals(whole)


def test_a_pid_with_many_names_is_searched_not_gathered():
    """Vectorized lookup: 10,000 events of a task renamed 100 times, against a direct answer."""
    from latencyscope.analyze.names import Names, timeline

    rng = np.random.default_rng(3)
    stamps = np.sort(rng.choice(np.arange(1, 1_000_000), 100, replace=False))
    frames = [pl.DataFrame({"pid": [7] * 100, "ts_ns": stamps, "oldcomm": [f"n{i}" for i in range(100)],
                            "comm": [f"n{i + 1}" for i in range(100)]})]
    tasks = pl.DataFrame({"tid": [8], "comm": ["other"]})
    names = Names(timeline(tasks, frames), ncpus=2)
    q = rng.integers(0, 1_000_001, 10_000)
    pids = np.where(rng.random(10_000) < 0.9, 7, 8)
    got = names.dictionary.take(names.codes(pids, q, np.zeros(10_000))).to_pylist()
    want = [f"n{np.searchsorted(stamps, t, side='right')}" if p == 7 else "other" for p, t in zip(pids, q)]
    assert got == want


@pytest.mark.parametrize("module", ["isolation"])
def test_reports_name_tasks_from_the_snapshot(module):
    """An analysis over a format 3 capture names its intruders by the rebuilt names."""
    from latencyscope.analyze import isolation
    from latencyscope.analyze.model import Context
    from latencyscope.analyze.policy import load

    sw = [switch(t * MS, 1, 100, 200) for t in range(1, 5)] + [switch(t * MS + MS // 2, 1, 200, 100)
                                                              for t in range(1, 5)]
    cap = capture({"sched_switch": sw}, names=False, tasks=[task(100, "target"), task(200, "intruder")])
    res = isolation.analyze(cap, Context(monitored_cpus=[1], monitored_source="test", targets=[100],
                                         policy=load(None), top=10))
    assert [r["comm"] for r in res.data["intruders"]] == ["intruder"]
