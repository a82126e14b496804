"""Lock & Syscall Contention on hand-built event tables whose answers are known exactly."""
import polars as pl

from latencyscope.analyze import policy, report
from latencyscope.analyze import syscall as sc
from synth import MS, US, capture

APP, LOCKER, WAITER, OTHER = 100, 101, 102, 300
LOCK = 0x7F00_0000_1000
FUTEX_WAIT_PRIVATE, FUTEX_WAKE_PRIVATE = 128, 129
NR_FUTEX, NR_NANOSLEEP, NR_CLOCK_NANOSLEEP, NR_READ, NR_GETPPID, NR_EXIT = 202, 35, 230, 0, 110, 60
TASKS = [{"tid": APP, "tgid": APP, "comm": "app", "kthread": False},
         {"tid": LOCKER, "tgid": APP, "comm": "locker", "kthread": False},
         {"tid": WAITER, "tgid": APP, "comm": "waiter", "kthread": False},
         {"tid": OTHER, "tgid": OTHER, "comm": "other", "kthread": False}]
SYSCALLS = {"0": "read", "35": "nanosleep", "110": "getppid", "202": "futex", "230": "clock_nanosleep",
            "60": "exit"}


def fenter(ts, pid, op, uaddr=LOCK, tgid=APP):
    return {"ts_ns": ts, "cpu": 1, "pid": pid, "tgid": tgid, "op": op, "uaddr": uaddr, "val": 1}


def fexit(ts, pid, ret=0, tgid=APP, nr=NR_FUTEX):
    return {"ts_ns": ts, "cpu": 1, "pid": pid, "tgid": tgid, "nr": nr, "ret": ret}


def contention():
    """WAITER blocks on LOCK three times (2, 3 and 5 ms), LOCKER wakes it each time;
    OTHER (another process) waits 40 ms on its own futex; WAITER's first exit
    belongs to a wait that began before the capture, and its last wait is still
    going when the capture ends."""
    fe = [
        fenter(10 * MS, WAITER, FUTEX_WAIT_PRIVATE), fenter(12 * MS, LOCKER, FUTEX_WAKE_PRIVATE),
        fenter(20 * MS, WAITER, FUTEX_WAIT_PRIVATE), fenter(23 * MS, LOCKER, FUTEX_WAKE_PRIVATE),
        fenter(30 * MS, WAITER, FUTEX_WAIT_PRIVATE | 9), fenter(35 * MS, LOCKER, FUTEX_WAKE_PRIVATE),
        fenter(50 * MS, OTHER, FUTEX_WAIT_PRIVATE, uaddr=0x5000, tgid=OTHER),
        fenter(9000 * MS, WAITER, FUTEX_WAIT_PRIVATE),
    ]
    fx = [
        fexit(1 * MS, WAITER),  # began before the capture: no sample
        fexit(12 * MS + 5 * US, LOCKER, ret=1), fexit(12 * MS + 10 * US, WAITER),
        fexit(23 * MS + 5 * US, LOCKER, ret=1), fexit(23 * MS + 10 * US, WAITER),
        fexit(35 * MS + 5 * US, LOCKER, ret=1), fexit(35 * MS + 10 * US, WAITER),
        fexit(90 * MS, OTHER, ret=-110, tgid=OTHER),
    ]
    return fe, fx


def scenario(**kw):
    fe, fx = contention()
    # A 1 ms relative nanosleep that took 1.1 ms, and two absolute 2 ms
    # clock_nanosleeps on CLOCK_MONOTONIC (deadline = entry + 2 ms).
    se = [
        {"ts_ns": 100 * MS, "cpu": 1, "pid": WAITER, "tgid": APP, "nr": NR_NANOSLEEP, "clockid": 1, "flags": 0,
         "requested_ns": 1 * MS, "comm": "waiter"},
        {"ts_ns": 200 * MS, "cpu": 1, "pid": WAITER, "tgid": APP, "nr": NR_CLOCK_NANOSLEEP, "clockid": 1,
         "flags": 1, "requested_ns": 202 * MS, "comm": "waiter"},
        {"ts_ns": 300 * MS, "cpu": 0, "pid": OTHER, "tgid": OTHER, "nr": NR_CLOCK_NANOSLEEP, "clockid": 1,
         "flags": 1, "requested_ns": 302 * MS, "comm": "other"},
    ]
    sx = [fexit(101 * MS + 100 * US, WAITER, nr=NR_NANOSLEEP), fexit(202 * MS + 50 * US, WAITER, nr=NR_CLOCK_NANOSLEEP),
          fexit(302 * MS, OTHER, tgid=OTHER, nr=NR_CLOCK_NANOSLEEP)]
    tables = {"futex_enter": fe, "futex_exit": fx, "sleep_enter": se, "sleep_exit": sx}
    return capture(tables, syscalls=SYSCALLS, tasks=TASKS, **kw)


def target_calls():
    """Every syscall of APP's threads: 5 getppid of 1 µs, one read of 4 ms, an exit that never returns."""
    en, ex = [], []
    for i in range(5):
        en.append({"ts_ns": (400 + i) * MS, "cpu": 1, "pid": APP, "tgid": APP, "nr": NR_GETPPID})
        ex.append(fexit((400 + i) * MS + 1 * US, APP, nr=NR_GETPPID))
    en.append({"ts_ns": 500 * MS, "cpu": 1, "pid": LOCKER, "tgid": APP, "nr": NR_READ})
    ex.append(fexit(504 * MS, LOCKER, nr=NR_READ, ret=-4))
    en.append({"ts_ns": 600 * MS, "cpu": 1, "pid": APP, "tgid": APP, "nr": NR_EXIT})
    # an exit of read whose enter was lost never pairs with the next call
    ex.append(fexit(700 * MS, WAITER, nr=NR_READ))
    return en, ex


def analyze(cap, pids=(), cpus=None, pol=None):
    ctx = report.resolve_context(cap, pol or policy.default_values(), cpus=cpus, pids=pids)
    return report.build(cap, ctx)


def test_pairing_drops_calls_begun_before_the_capture_and_marks_unfinished_ones():
    fe, fx = contention()
    cap = capture({"futex_enter": fe, "futex_exit": fx})
    pairs = sc.pair_calls(cap.table("futex_enter"), cap.table("futex_exit"), end_ns=10_000 * MS)
    w = pairs.filter(pl.col("pid") == WAITER).sort("ts_ns")
    assert w["duration_ns"].to_list() == [2 * MS + 10 * US, 3 * MS + 10 * US, 5 * MS + 10 * US, 1000 * MS]
    assert w["unfinished"].to_list() == [False, False, False, True]
    assert pairs.height == 8 - 0 - 0  # 8 enters, every one accounted for


def test_pairing_is_the_same_eager_and_lazy_and_ignores_a_lost_exit():
    en = [{"ts_ns": 1 * MS, "pid": 5, "tgid": 5, "nr": 0}, {"ts_ns": 3 * MS, "pid": 5, "tgid": 5, "nr": 1}]
    ex = [{"ts_ns": 4 * MS, "pid": 5, "tgid": 5, "nr": 1, "ret": 0}]  # the exit of call 0 was lost
    cap = capture({"syscall_enter": en, "syscall_exit": ex})
    p = sc.pair_calls(cap.table("syscall_enter"), cap.table("syscall_exit"), 10 * MS, match_nr=True)
    assert p.select("nr", "duration_ns").rows() == [(1, 1 * MS)]


def test_contended_lock_is_named_with_its_waiter_and_wait_time():
    rep = analyze(scenario(), pids=[APP])
    f = rep["syscall"]["futex"]
    assert f["waits"] == 3
    assert f["total_wait_ns"] == 10 * MS + 30 * US
    assert f["max_wait_ns"] == 5 * MS + 10 * US
    assert f["unfinished_waits"] == 1
    assert f["wakes"] == 3 and f["woken"] == 3
    assert f["by_addr"] == [{"uaddr": LOCK, "pid": APP, "waits": 3, "waiters": 1, "total_wait_ns": 10 * MS + 30 * US,
                             "max_wait_ns": 5 * MS + 10 * US, "wakes": 3, "woken": 3}]
    assert f["by_thread"][0]["comm"] == "waiter"
    # a 5 ms wait of a target is over the 1 ms line: WARN, not FAIL by default
    assert any("futex 0x7f0000001000 of pid 100: 3 waits by 1 thread(s)" in w for w in rep["verdict"]["warnings"])
    assert rep["syscall"]["status"] == "WARN"


def test_system_wide_counts_every_process_but_judges_nothing():
    rep = analyze(scenario())
    s = rep["syscall"]
    assert s["scope"] == "system-wide"
    assert s["futex"]["waits"] == 4 and s["futex"]["timeouts"] == 1
    assert s["futex"]["by_addr"][0] == {"uaddr": 0x5000, "pid": OTHER, "waits": 1, "waiters": 1,
                                        "total_wait_ns": 40 * MS, "max_wait_ns": 40 * MS, "wakes": 0, "woken": 0}
    assert s["status"] == "PASS" and s["blocking"] == []


def test_sleeps_per_task_requested_vs_actual_with_absolute_deadlines():
    s = analyze(scenario(), pids=[APP])["syscall"]["sleeps"]
    assert s["count"] == 2
    assert s["by_pid"] == [{"pid": WAITER, "tgid": APP, "comm": "waiter", "count": 2,
                            "requested_ns": 3 * MS, "actual_ns": 3 * MS + 150 * US,
                            "max_actual_ns": 2 * MS + 50 * US, "max_overshoot_ns": 100 * US, "unfinished": 0}]


def test_a_sleeping_target_warns_and_policy_can_allow_it():
    rep = analyze(scenario(), pids=[APP])
    assert any("2 sleep calls by targets: waiter (tid 102)" in w for w in rep["verdict"]["warnings"])
    pol = policy.default_values()
    pol["syscall"].update(max_target_sleeps=5, futex_wait_warn_ns=10 * MS, max_blocking_syscalls=10)
    assert analyze(scenario(), pids=[APP], pol=pol)["syscall"]["status"] == "PASS"


def test_per_syscall_latency_table_and_blocking_calls_of_targets():
    en, ex = target_calls()
    fe, fx = contention()
    cap = capture({"syscall_enter": en, "syscall_exit": ex, "futex_enter": fe, "futex_exit": fx},
                  syscalls=SYSCALLS, tasks=TASKS, filters={"cpus": None, "pids": [APP]},
                  module_facts={"syscall": {"per_syscall": True}})
    s = analyze(cap)["syscall"]
    by = {r["name"]: r for r in s["syscalls"]}
    assert by["getppid"] == {"name": "getppid", "count": 5, "total_ns": 5 * US, "p50_ns": 1 * US, "p99_ns": 1 * US,
                             "max_ns": 1 * US, "errors": 0}
    assert by["read"]["count"] == 1 and by["read"]["errors"] == 1 and by["read"]["max_ns"] == 4 * MS
    assert s["syscalls"][0]["name"] == "read"  # sorted by total time
    assert "exit" not in by  # never returned: not a latency sample
    blocking = s["blocking"]
    assert [(b["name"], b["duration_ns"], b["comm"]) for b in blocking] == [("read", 4 * MS, "locker")]
    assert blocking[0]["wall_time"].startswith("2023-11-14T22:13:20.5")
    assert s["blocking_calls"] == 1


def test_blocking_can_fail_when_the_policy_says_so():
    en, ex = target_calls()
    cap = capture({"syscall_enter": en, "syscall_exit": ex}, syscalls=SYSCALLS, tasks=TASKS)
    pol = policy.default_values()
    pol["syscall"]["blocking_fail_ns"] = 2 * MS
    rep = analyze(cap, pids=[APP], pol=pol)
    assert rep["syscall"]["status"] == "FAIL"
    assert any("longest read by locker (tid 101) 4.00 ms" in v for v in rep["verdict"]["violations"])


def test_unknown_syscall_numbers_are_named_by_number():
    en = [{"ts_ns": 1 * MS, "pid": APP, "tgid": APP, "nr": 999}]
    ex = [{"ts_ns": 2 * MS, "pid": APP, "tgid": APP, "nr": 999, "ret": 0}]
    s = analyze(capture({"syscall_enter": en, "syscall_exit": ex}, syscalls=SYSCALLS), pids=[APP])["syscall"]
    assert s["syscalls"][0]["name"] == "syscall_999"


def test_no_target_means_no_per_syscall_table_and_a_note():
    s = analyze(scenario())["syscall"]
    assert s["syscalls"] == []
    assert any("--pid" in n for n in s["notes"])


def test_module_not_recorded_is_a_clear_line():
    cap = capture({}, modules=["isolation"])
    rep = analyze(cap)
    assert rep["syscall"]["status"] == "NOT_RECORDED"
    assert "--modules syscall" in rep["syscall"]["message"]


def test_targets_are_bits_of_their_process_and_threads_name_their_process(monkeypatch):
    import os
    import threading

    from latencyscope.record import hooks_syscall as hs

    me = os.getpid()
    assert hs.tgid_of(me) == me
    assert hs.tgid_of(2 ** 22 + 7) == 2 ** 22 + 7  # no such task: taken as given
    # a thread id given as --pid marks its whole process (as /proc/TID/task lists it)
    seen, done = [], threading.Event()

    def thread():
        seen.append(hs.tgid_of(threading.get_native_id()))
        done.wait(5)

    t = threading.Thread(target=thread)
    t.start()
    done.set()
    t.join()
    assert seen == [me]
    monkeypatch.setattr(hs, "tgid_of", lambda p: p)
    assert hs.target_words([5, 70, 64 * 3 + 1]) == {0: 1 << 5, 1: 1 << 6, 3: 1 << 1}
    assert hs.target_words([100, 101]) == {1: (1 << 36) | (1 << 37)}


def test_other_architectures_get_one_clear_line(monkeypatch):
    import pytest

    from latencyscope.errors import LatencyScopeError
    from latencyscope.record import hooks_syscall as hs

    monkeypatch.setattr(hs.platform, "machine", lambda: "aarch64")
    with pytest.raises(LatencyScopeError, match="x86-64 only.*aarch64"):
        hs.cflags(None)
    monkeypatch.setattr(hs.platform, "machine", lambda: "x86_64")
    assert hs.cflags(None) == []


def test_no_per_syscall_tracepoint_is_enabled():
    """Every syscall event comes from the raw sys_enter/sys_exit programs: a classic
    syscalls:* or raw_syscalls:* tracepoint would make every task of the host pay."""
    from pathlib import Path

    from latencyscope.schemas import kinds_of

    src = (Path(__file__).resolve().parents[2] / "bpf" / "syscall.c").read_text()
    assert "TRACEPOINT_PROBE(syscalls" not in src and "TRACEPOINT_PROBE(raw_syscalls" not in src
    assert src.count("RAW_TRACEPOINT_PROBE(sys_enter)") == 1 and src.count("RAW_TRACEPOINT_PROBE(sys_exit)") == 1
    assert {k.tracepoint for k in kinds_of("syscall")} == {"raw_syscalls:sys_enter", "raw_syscalls:sys_exit"}
