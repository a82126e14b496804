"""Isolation Verifier against the real kernel: a hog on CPU 1, an intruder beside it."""
import time

import pytest

from helpers import HOG, Recorder, analyze_json, ctxt_switches, kill, shield, spawn_pinned

pytestmark = pytest.mark.kernel

INTRUDER = """
import sys, time
end = time.monotonic() + 2.5
while time.monotonic() < end:
    time.sleep(0.003)
sys.stdout.write("done\\n"); sys.stdout.flush()
sys.stdin.read()
"""


def test_intruder_on_isolated_cpu_is_named_counted_and_fails(tmp_path):
    cap = tmp_path / "intr.lscope"
    with shield(1):
        hog = spawn_pinned(1, HOG)
        rec = Recorder(cap, "--modules", "isolation", "--cpus", "1", "--pid", str(hog.pid))
        try:
            rec.wait_ready()
            intruder = spawn_pinned(1, INTRUDER)
            assert intruder.stdout.readline() == b"done\n"
            time.sleep(0.2)  # it is now blocked on stdin: every switch it made is counted
            truth = ctxt_switches(intruder.pid)
            assert rec.stop() == 0, rec.stderr
        finally:
            kill(hog)
            if "intruder" in locals():
                kill(intruder)
    code, rep = analyze_json(cap)
    iso = rep["isolation"]
    mine = [i for i in iso["intruders"] if i["pid"] == intruder.pid]
    assert mine, f"intruder {intruder.pid} not named: {iso['intruders']}"
    expected = truth["voluntary_ctxt_switches"] + truth["nonvoluntary_ctxt_switches"]
    assert expected > 300
    assert abs(mine[0]["count"] - expected) <= 0.10 * expected, (mine[0], truth)
    assert mine[0]["kernel_thread"] is False
    assert code == 2 and rep["verdict"]["exit_code"] == 2
    # the hog was preempted by the intruder: the kernel counted it too
    assert iso["involuntary_switches"] > 0.5 * mine[0]["count"]
    assert rep["capture"]["lost_events"] == 0


def test_quiet_isolated_cpu_with_the_hog_alone_passes(tmp_path):
    cap = tmp_path / "quiet.lscope"
    with shield(1):
        hog = spawn_pinned(1, HOG)
        try:
            time.sleep(0.2)
            rec = Recorder(cap, "--modules", "isolation", "--cpus", "1", "--pid", str(hog.pid), duration=3)
            assert rec.proc.wait(60) == 0, rec.proc.stderr.read()
        finally:
            kill(hog)
    code, rep = analyze_json(cap)
    iso = rep["isolation"]
    assert iso["user_intrusions"] == 0, iso["intruders"]
    assert not rep["verdict"]["violations"], rep["verdict"]
    if code != 0:
        # CPU 1 is not booted isolated: per-CPU kernel threads (kworker/1:*,
        # ksoftirqd/1) cannot be moved off it, and on a busy host they can
        # delay the hog past the 200 µs warning line.  That is a WARN, and
        # every such delay must be blamed on a kernel thread, by name.
        assert code == 1, rep["verdict"]
        kernel = {i["pid"] for i in iso["intruders"] if i["kernel_thread"]}
        for w in iso["worst"]:
            if w["latency_ns"] > 200_000:
                assert w["occupants"] and all(
                    o["kind"] != "task" or int(o["label"].rsplit("(", 1)[1].rstrip(")")) in kernel
                    for o in w["occupants"]), w
    assert rep["capture"]["duration_s"] == pytest.approx(3, abs=0.5)
