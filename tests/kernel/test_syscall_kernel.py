"""Lock & Syscall Contention against the real kernel: one child that makes a
known number of getppid calls and 1 ms sleeps, then has two threads contend
one pthread mutex, measuring its own wait.  One recording, three checks."""
import json
import subprocess
import sys

import pytest

from helpers import Recorder, analyze_json, kill

pytestmark = pytest.mark.kernel

N_GETPPID = 1000
N_SLEEPS = 100
HOLDS = 20
HOLD_S = 0.010

CHILD = f"""
import ctypes, json, os, sys, threading, time
libc = ctypes.CDLL(None)
N_GETPPID, N_SLEEPS, HOLDS, HOLD_S = {N_GETPPID}, {N_SLEEPS}, {HOLDS}, {HOLD_S}
mutex = ctypes.create_string_buffer(64)     # all zeros: PTHREAD_MUTEX_INITIALIZER
held, turn = threading.Event(), threading.Event()
waited = []

def holder():
    for _ in range(HOLDS):
        libc.pthread_mutex_lock(mutex)
        held.set()
        time.sleep(HOLD_S)                  # holds the lock this long
        libc.pthread_mutex_unlock(mutex)
        turn.wait(); turn.clear()

def waiter():
    for _ in range(HOLDS):
        held.wait(); held.clear()
        t0 = time.monotonic_ns()
        libc.pthread_mutex_lock(mutex)      # contends: blocks in futex until the holder unlocks
        waited.append(time.monotonic_ns() - t0)
        libc.pthread_mutex_unlock(mutex)
        turn.set()

print("ready", flush=True)
sys.stdin.readline()
for _ in range(N_GETPPID):
    os.getppid()
for _ in range(N_SLEEPS):
    time.sleep(0.001)
h = threading.Thread(target=holder); w = threading.Thread(target=waiter)
h.start(); w.start(); h.join(); w.join()
print(json.dumps({{"uaddr": ctypes.addressof(mutex), "waited_ns": sum(waited), "waiter_tid": None}}), flush=True)
sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    cap = tmp_path_factory.mktemp("syscall") / "sys.lscope"
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        rec = Recorder(cap, "--modules", "syscall", "--pid", str(child.pid))
        rec.wait_ready()
        child.stdin.write("go\n")
        child.stdin.flush()
        truth = json.loads(child.stdout.readline())
        assert rec.stop() == 0, rec.stderr
    finally:
        kill(child)
    code, rep = analyze_json(cap)
    return child.pid, truth, rep


def test_contended_lock_wait_matches_what_the_child_measured(recorded):
    pid, truth, rep = recorded
    f = rep["syscall"]["futex"]
    mine = [a for a in f["by_addr"] if a["uaddr"] == truth["uaddr"] and a["pid"] == pid]
    assert mine, f"mutex 0x{truth['uaddr']:x} of {pid} not among {f['by_addr'][:5]}"
    expected = truth["waited_ns"]
    assert expected > 0.5 * HOLDS * HOLD_S * 1e9
    assert abs(mine[0]["total_wait_ns"] - expected) <= 0.20 * expected, (mine[0], truth)
    assert mine[0]["waiters"] == 1
    # on a loaded machine the waiter may now and then arrive after the unlock and not block
    assert mine[0]["waits"] >= HOLDS * 3 // 4
    assert rep["capture"]["lost_events"] == 0


def test_one_ms_sleeps_of_the_child_are_counted_exactly(recorded):
    pid, truth, rep = recorded
    by_pid = {s["pid"]: s for s in rep["syscall"]["sleeps"]["by_pid"]}
    assert pid in by_pid, by_pid
    s = by_pid[pid]
    assert s["count"] == N_SLEEPS
    assert s["requested_ns"] == pytest.approx(N_SLEEPS * 1e6, rel=0.1)
    assert s["actual_ns"] >= s["requested_ns"]
    assert s["comm"] == "python3" or s["comm"].startswith("python")
    # a sleeping target is a red flag
    assert any("sleep calls by targets" in w for w in rep["verdict"]["warnings"])


def test_known_number_of_getppid_calls_is_counted_exactly(recorded):
    pid, truth, rep = recorded
    by_name = {s["name"]: s for s in rep["syscall"]["syscalls"]}
    assert by_name["getppid"]["count"] == N_GETPPID
    assert by_name["getppid"]["max_ns"] < 10_000_000
    assert by_name["clock_nanosleep"]["count"] >= N_SLEEPS + HOLDS
