"""Isolation analysis on hand-built event tables whose answers are known exactly."""
import polars as pl
import pytest

from latencyscope.analyze import policy, report, sched
from synth import MS, US, capture, switch, wakeup

HOG, INTRUDER, DAEMON, STRAY = 100, 200, 300, 400


def scenario(**kw):
    """CPU 1: a hog (pid 100) preempted twice by an intruder (pid 200).
    CPU 0: a daemon (300) with a wakeup that arrives while it still runs,
    and a task (400) whose wait began before the capture."""
    sw = [
        switch(0, 1, 0, HOG),
        switch(1500 * US, 1, HOG, INTRUDER, prev_state=0x100),
        switch(2 * MS, 1, INTRUDER, HOG, prev_state=1),
        switch(5100 * US, 1, HOG, INTRUDER, prev_state=0x100),
        switch(5300 * US, 1, INTRUDER, HOG, prev_state=1),
        switch(0, 0, 0, DAEMON),
        switch(7 * MS, 0, DAEMON, 0, prev_state=1),
        switch(8 * MS, 0, 0, STRAY),
        switch(8500 * US, 0, STRAY, 0, prev_state=1),
        switch(9200 * US, 0, 0, DAEMON),
    ]
    wk = [
        wakeup(1 * MS, INTRUDER, 1),
        wakeup(5 * MS, INTRUDER, 1),
        wakeup(6 * MS, DAEMON, 0),   # spurious: DAEMON is still on CPU 0
        wakeup(9 * MS, DAEMON, 0),
    ]
    mig = [{"ts_ns": 8 * MS, "cpu": 1, "pid": HOG, "orig_cpu": 1, "dest_cpu": 0, "comm": "t100"}]
    return capture({"sched_switch": sw, "sched_wakeup": wk, "sched_migrate_task": mig}, **kw)


def analyze(cap, cpus=None, pids=(), pol=None):
    ctx = report.resolve_context(cap, pol or policy.default_values(), cpus=cpus, pids=pids)
    return report.build(cap, ctx)


def test_runqueue_waits_from_wakeups_and_preemptions():
    waits = sched.runqueue_waits(scenario()).sort("pid", "run_ns")
    got = [(r["pid"], r["latency_ns"], r["reason"]) for r in waits.iter_rows(named=True)]
    assert got == [
        (HOG, 500 * US, "preempted"),
        (HOG, 200 * US, "preempted"),
        (INTRUDER, 500 * US, "wakeup"),
        (INTRUDER, 100 * US, "wakeup"),
        # the wakeup at 6 ms came before DAEMON slept: its wait starts at 9 ms
        (DAEMON, 200 * US, "wakeup"),
    ]  # STRAY's switch-in has no known start: no invented sample


def test_intruder_on_isolated_cpu_is_named_and_fails():
    rep = analyze(scenario(), cpus=[1], pids=[HOG])
    iso = rep["isolation"]
    assert iso["intruders"] == [{"comm": "t200", "pid": INTRUDER, "cpu": 1, "count": 2, "total_ns": 700 * US,
                                 "max_ns": 500 * US, "kernel_thread": False}]
    assert iso["user_intrusions"] == 2
    assert iso["status"] == "FAIL"
    assert rep["verdict"]["exit_code"] == 2
    assert any("t200 (pid 200) x2 on CPU 1" in v for v in rep["verdict"]["violations"])


def test_target_percentiles_switches_and_migrations():
    iso = analyze(scenario(), cpus=[1], pids=[HOG])["isolation"]
    assert iso["runqueue_samples"] == 2
    assert iso["p50_runqueue_ns"] == 200 * US      # nearest rank: ceil(0.5*2) = 1st
    assert iso["p99_runqueue_ns"] == 500 * US
    assert iso["max_runqueue_ns"] == 500 * US
    assert iso["context_switches"] == 2
    assert iso["involuntary_switches"] == 2
    assert iso["migrations"] == 1
    assert iso["by_pid"] == [{"pid": HOG, "comm": "t100", "voluntary_switches": 0,
                              "involuntary_switches": 2, "migrations": 1}]


def test_worst_delay_names_what_held_the_cpu():
    iso = analyze(scenario(), cpus=[1], pids=[HOG])["isolation"]
    w = iso["worst"][0]
    assert (w["pid"], w["latency_ns"], w["cpu"]) == (HOG, 500 * US, 1)
    assert "t200 (200) task 500.0 µs" in w["cause"]
    assert w["wall_time"].startswith("2023-11-14T22:13:20")


def test_no_monitored_cpus_and_no_targets_never_fails_on_latency():
    rep = analyze(scenario())
    iso = rep["isolation"]
    assert iso["runqueue_samples"] == 5
    assert iso["max_runqueue_ns"] == 500 * US
    # 500 µs is over the 200 µs warning line, but system-wide it never FAILs
    assert rep["verdict"]["exit_code"] == 1


def test_quiet_cpu_passes_and_lost_events_warn():
    sw = [switch(0, 1, 0, HOG), switch(1 * MS, 1, HOG, HOG + 1, prev_tgid=HOG, prev_state=1),
          switch(2 * MS, 1, HOG + 1, HOG, prev_tgid=HOG, prev_state=1)]
    cap = capture({"sched_switch": sw}, tasks=[{"tid": HOG + 1, "tgid": HOG, "comm": "hogthr", "kthread": False}])
    rep = analyze(cap, cpus=[1], pids=[HOG])
    assert rep["isolation"]["intrusions"] == 0  # a second thread of the target is not an intruder
    assert rep["verdict"]["exit_code"] == 0
    cap2 = capture({"sched_switch": sw}, lost={"sched_switch": 7})
    rep2 = analyze(cap2, cpus=[1], pids=[HOG])
    assert rep2["capture"]["lost_events"] == 7
    assert rep2["verdict"]["exit_code"] == 1
    assert any("7 events lost" in w for w in rep2["verdict"]["warnings"])
    assert not any("ring-scale" in w for w in rep2["verdict"]["warnings"])  # no diagnostics: no advice
    # The recorder's diagnostics say why: a ring full when writes failed wants a larger --ring-scale.
    cap4 = capture({"sched_switch": sw}, lost={"sched_switch": 7, "sched_wakeup": 2},
                   recorder={"ring_fill_when_lost": {"sched_switch": 0.997, "sched_wakeup": 0.08},
                             "longest_drain_gap_ms": 88.5})
    warn = [w for w in analyze(cap4, cpus=[1], pids=[HOG])["verdict"]["warnings"] if "events lost" in w]
    assert len(warn) == 1 and "sched_switch: ring full when writes failed, record with a larger --ring-scale" in warn[0]
    assert "writes to the ring buffer failed" in warn[0] and "ring buffer full" not in warn[0]  # no contradiction
    assert "sched_wakeup: ring at most 8% full when writes failed, not too small, rings undrained up to 88.5 ms" \
        in warn[0]
    malformed = capture({"sched_switch": sw}, lost={"sched_switch": 7}, recorder={"ring_fill_when_lost": "full"})
    assert any("7 events lost" in w and "--" not in w
               for w in analyze(malformed, cpus=[1], pids=[HOG])["verdict"]["warnings"])
    # Hits the kernel skipped (another BPF program running on the CPU) are loss too.
    cap3 = capture({"sched_switch": sw}, skipped_by_kernel={"sched:sched_wakeup": 3, "sched:sched_switch": 0})
    rep3 = analyze(cap3, cpus=[1], pids=[HOG])
    assert rep3["capture"]["skipped_events"] == 3 and rep3["capture"]["lost_events"] == 0
    assert rep3["verdict"]["exit_code"] == 1
    assert any("3 events not recorded" in w and "sched:sched_wakeup 3" in w for w in rep3["verdict"]["warnings"])


def test_kernel_thread_intrusions_only_warn_above_their_budget():
    sw = [switch(0, 1, 0, HOG), switch(1 * MS, 1, HOG, 55, prev_state=0x100, next_comm="kworker/1:1"),
          switch(1 * MS + 20 * US, 1, 55, HOG, prev_state=0x80)]
    rep = analyze(capture({"sched_switch": sw}), cpus=[1], pids=[HOG])
    iso = rep["isolation"]
    assert iso["intruders"][0]["kernel_thread"] is True
    assert iso["user_intrusions"] == 0
    assert rep["verdict"]["exit_code"] == 0  # 20 µs in a 10 s window is within budget
    pol = policy.default_values()
    pol["isolation"]["max_kernel_thread_time_us_per_s"] = 1.0
    assert analyze(capture({"sched_switch": sw}), cpus=[1], pids=[HOG], pol=pol)["verdict"]["exit_code"] == 1


def test_inferred_target_when_only_cpus_given():
    iso = analyze(scenario(), cpus=[1])["isolation"]
    assert iso["targets"] == [HOG] and iso["targets_inferred"]
    assert iso["user_intrusions"] == 2


def test_module_not_recorded_is_a_clear_line_not_an_error():
    cap = capture({}, modules=["isolation"])
    cap.arrow.clear()
    rep = analyze(cap)
    assert rep["isolation"]["status"] == "NOT_RECORDED"
    assert "not recorded" in rep["isolation"]["message"]


def test_same_answer_eager_and_lazy():
    cap = scenario()
    a = sched.runqueue_waits(cap)
    b = sched.runqueue_waits(cap)
    assert a.sort("pid", "run_ns").equals(b.sort("pid", "run_ns"))


def test_pid_ts_k_order_matches_lexsort_with_and_without_the_packed_key():
    import numpy as np

    from latencyscope.analyze.sched import _order_by_pid_ts_k

    rng = np.random.default_rng(3)
    n = 5000
    pid = rng.integers(0, 50, n).astype(np.int32)
    ts = (10**15 + rng.integers(0, 10**9, n)).astype(np.uint64)
    k = rng.integers(0, 3, n).astype(np.int8)
    want = np.lexsort((k, ts, pid))
    key = lambda o: list(zip(pid[o], ts[o], k[o]))  # noqa: E731
    assert key(_order_by_pid_ts_k(pid, ts, k)) == key(want)           # packed 64-bit key
    ts_long = ts.copy()
    ts_long[0] += np.uint64(1 << 41)                                  # span beyond 40 bits: lexsort
    assert key(_order_by_pid_ts_k(pid, ts_long, k)) == key(np.lexsort((k, ts_long, pid)))
    big = pid.copy()
    big[1] = 1 << 22                                                  # pid beyond 22 bits: lexsort
    assert key(_order_by_pid_ts_k(big, ts, k)) == key(np.lexsort((k, ts, big)))
