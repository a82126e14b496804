"""The recorder under faults, on the real kernel: killed, interrupted twice,
out of disk, flooded, left running, run twice -- nothing lost silently,
nothing left loaded, every failure one clear line."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pytest

from helpers import BIN, Recorder, analyze_json, kill, spawn_pinned
from latencyscope.analyze.capture import open_capture

pytestmark = pytest.mark.kernel

# Sleeps 1 ms, N times: N voluntary switches of a known pid.
SLEEPER = "import time\nfor _ in range({n}): time.sleep(0.001)\n"

PINGPONG = """
import os, threading, time
r1, w1 = os.pipe(); r2, w2 = os.pipe()
def pong():
    while True:
        os.read(r1, 1); os.write(w2, b"x")
threading.Thread(target=pong, daemon=True).start()
end = time.monotonic() + {secs}
while time.monotonic() < end:
    os.write(w1, b"x"); os.read(r2, 1)
"""


def sleeper(n: int = 200, cpu=None) -> subprocess.Popen:
    code = SLEEPER.format(n=n)
    if cpu is not None:
        return spawn_pinned(cpu, code)
    return subprocess.Popen([sys.executable, "-c", code])


def bpf_prog_ids_of(pid: int) -> set:
    """IDs of the BPF programs a process holds (from its fds' fdinfo)."""
    ids = set()
    for fdinfo in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            for line in fdinfo.read_text().splitlines():
                if line.startswith("prog_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            continue
    return ids


def loaded_prog_ids() -> set:
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True, timeout=30, check=True)
    return {p["id"] for p in json.loads(out.stdout or "[]")}


def assert_unloaded(ids: set, timeout: float = 10.0) -> None:
    assert ids, "the recorder held no BPF program?"
    deadline = time.monotonic() + timeout
    while True:
        left = ids & loaded_prog_ids()
        if not left:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"BPF programs {sorted(left)} still loaded after the recorder exited")
        time.sleep(0.1)


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_sigkill_leaves_a_capture_readable_up_to_the_last_flush(tmp_path):
    cap_path = tmp_path / "k.lscope"
    partial = Path(str(cap_path) + ".partial")
    rec = Recorder(cap_path, "--modules", "isolation")
    try:
        rec.wait_ready()
        assert os.stat(partial).st_mode & 0o777 == 0o700
        assert {os.stat(f).st_mode & 0o777 for f in partial.iterdir()} == {0o600}
        marker = sleeper(200)
        assert marker.wait(30) == 0
        time.sleep(2.5)  # flushes happen at least every second
        rec.proc.kill()
        rec.proc.wait(30)
    finally:
        kill(rec.proc)
    assert not cap_path.exists() and partial.is_dir()
    cap = open_capture(str(partial))
    assert cap.incomplete and cap.manifest["complete"] is False
    sw = cap.table("sched_switch")
    assert sw.filter(pl.col("prev_pid") == marker.pid).height >= 200
    rc, rep = analyze_json(partial, "-m", "isolation")
    assert rc >= 1
    assert rep["capture"]["complete"] is False
    assert any("incomplete" in w for w in rep["warnings"])
    assert any(c["name"] == "complete" and c["status"] == "WARN" for c in rep["capture_checks"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_second_signal_during_the_final_flush_does_not_corrupt_the_capture(tmp_path, sig):
    cap_path = tmp_path / "s.lscope"
    rec = Recorder(cap_path, "--modules", "isolation")
    load = subprocess.Popen([sys.executable, "-c", PINGPONG.format(secs=4)])
    try:
        rec.wait_ready()
        time.sleep(1.5)  # up to a second of drained events waits for the final flush
        rec.proc.send_signal(sig)
        time.sleep(0.02)  # delivered first (a signal sent later can be handled by a thread that runs sooner)
        # An impatient operator keeps pressing Ctrl-C until the recorder has
        # exited: through the final flush, the summary and interpreter shutdown.
        deadline = time.monotonic() + 60
        while rec.proc.poll() is None and time.monotonic() < deadline:
            try:
                rec.proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                break
            time.sleep(0.002)
        rc = rec.stop(timeout=60)
    finally:
        kill(load, rec.proc)
    assert rc == 0, rec.stderr
    assert "Traceback" not in rec.stderr
    cap = open_capture(str(cap_path))
    assert cap.manifest["complete"] and cap.manifest["stopped_by"] == sig.name
    assert not cap.incomplete and cap.warnings == []
    assert cap.table("sched_switch").height == cap.manifest["events"]["sched_switch"] > 1000
    assert not os.path.exists(str(cap_path) + ".partial")


@pytest.fixture
def small_disk():
    """A 4 MiB tmpfs mounted under a fresh directory, unmounted afterwards."""
    d = Path(tempfile.mkdtemp(prefix="ls-diskfull-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "lsdiskfull", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        os.rmdir(d)


def test_disk_full_stops_cleanly_and_keeps_what_was_written(small_disk):
    cap_path = small_disk / "full.lscope"
    partial = Path(str(cap_path) + ".partial")
    rec = Recorder(cap_path, "--modules", "isolation")
    load = None
    try:
        rec.wait_ready()
        progs = bpf_prog_ids_of(rec.proc.pid)
        load = subprocess.Popen(["stress-ng", "--switch", "1", "--timeout", "60s", "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rc = rec.proc.wait(90)  # stops by itself when the disk is full
        rec.stderr = rec.proc.stderr.read()
    finally:
        kill(rec.proc)
        if load is not None:
            load.terminate()
            load.wait(30)
    assert rc == 3, rec.stderr
    line = one_line(rec.stderr)
    assert "disk full" in line and f"readable in {partial}/" in line, line
    assert_unloaded(progs)
    assert not Path(str(cap_path) + ".tmp").exists()
    cap = open_capture(str(partial))
    assert cap.incomplete
    sw = cap.table("sched_switch")
    assert sw.height > 10_000
    m = cap.manifest
    if m.get("stopped_by") == "error":  # the last manifest update fit on the disk
        assert "disk full" in m["error"]
        assert m["events"]["sched_switch"] == sw.height
    assert not any("damaged" in w for w in cap.warnings), cap.warnings
    rc, rep = analyze_json(partial, "-m", "isolation")
    assert rc >= 1 and rep["capture"]["complete"] is False


def test_output_directory_removed_while_recording_stops_and_unloads(tmp_path):
    import shutil

    cap_path = tmp_path / "gone.lscope"
    partial = Path(str(cap_path) + ".partial")
    rec = Recorder(cap_path, "--modules", "isolation")
    try:
        rec.wait_ready()
        progs = bpf_prog_ids_of(rec.proc.pid)
        shutil.rmtree(partial)
        rc = rec.proc.wait(30)  # noticed at the next flush, not at the end
        rec.stderr = rec.proc.stderr.read()
    finally:
        kill(rec.proc)
    assert rc == 3
    assert "was removed while recording" in one_line(rec.stderr)
    assert_unloaded(progs)


def test_event_storm_beyond_the_ring_counts_loss_per_cpu_and_kind(tmp_path):
    cap_path = tmp_path / "storm.lscope"
    rec = Recorder(cap_path, "--modules", "isolation", "--ring-scale", "0.002")
    try:
        rec.wait_ready()
        subprocess.run(["stress-ng", "--switch", "2", "--timeout", "2s", "--quiet"], timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert rec.stop() == 0, rec.stderr
    finally:
        kill(rec.proc)
    cap = open_capture(str(cap_path))
    m = cap.manifest
    assert m["lost"]["sched_switch"] > 0
    ncpu = m["host"]["cpu_count"]
    for kind, per_cpu in m["lost_per_cpu"].items():
        assert len(per_cpu) == ncpu and sum(per_cpu) == m["lost"][kind]
    assert m["lost_by_module"]["isolation"] == sum(m["lost"].values())
    # A ring too small for the rate: when a chunk write failed, it was full
    # up to less than one chunk (entry_size) of its size.
    from latencyscope.schemas import kind
    from latencyscope.schemas.codegen import entry_size
    ring = m["tables"]["sched_switch"]["ring_bytes_per_cpu"]
    assert 1 - entry_size(kind("sched_switch")) / ring <= m["recorder"]["ring_fill_when_lost"]["sched_switch"] <= 1
    assert set(m["recorder"]["ring_fill_when_lost"]) == {k for k, v in m["lost"].items() if v}
    assert cap.table("sched_switch").height == m["events"]["sched_switch"] > 0  # what got through is intact
    rc, rep = analyze_json(cap_path, "-m", "isolation")
    assert rep["capture"]["lost_events"] == sum(m["lost"].values()) > 0
    assert rc >= 1 and rep["verdict"]["status"] in ("WARN", "FAIL")
    lost_warning = [w for w in rep["verdict"]["warnings"] if "events lost" in w]
    assert len(lost_warning) == 1 and "record with a larger --ring-scale" in lost_warning[0], lost_warning


def test_recorder_memory_stays_flat_over_a_minute(tmp_path):
    cap_path = tmp_path / "long.lscope"
    rec = Recorder(cap_path, "--modules", "isolation")
    load = None
    try:
        rec.wait_ready()
        load = subprocess.Popen(["stress-ng", "--switch", "1", "--switch-freq", "20000", "--timeout", "70s",
                                 "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            samples.append((time.monotonic() - t0, rss_kib(rec.proc.pid)))
            time.sleep(1)
        assert rec.stop() == 0, rec.stderr
    finally:
        kill(rec.proc)
        if load is not None:
            load.terminate()
            load.wait(30)
    warm = max(r for t, r in samples if 10 <= t < 20)
    late = max(r for t, r in samples if t >= 20)
    # Bounded: after warm-up, growth well under what 40 s of events would take
    # if they were kept (>1.5 M events at 64+ bytes).
    assert late - warm < 32 * 1024, samples
    cap = open_capture(str(cap_path))
    assert cap.table("sched_switch").height > 500_000


# Two threads on the two CPUs answering each other through pipes: every
# switch leaves its CPU idle, so every switch or two the stages are flushed
# with a record or two in them.
CROSS_CPU_PINGPONG = """
import os, threading, time
r1, w1 = os.pipe(); r2, w2 = os.pipe()
def pong():
    os.sched_setaffinity(0, {{1}})
    while True:
        os.read(r1, 1); os.write(w2, b"x")
threading.Thread(target=pong, daemon=True).start()
os.sched_setaffinity(0, {{0}})
end = time.monotonic() + {secs}
while time.monotonic() < end:
    os.write(w1, b"x"); os.read(r2, 1)
"""


def test_cpus_going_idle_after_every_switch_lose_nothing_with_default_rings(tmp_path):
    """Stages flushed early go to rings of small chunks: each record takes
    its own size plus headers there, not a full 64-record chunk (2-3 KiB of
    ring per record, which filled the default 4 MiB wakeup ring within one
    50 ms poll and lost 5-10 % of the wakeups of this very workload)."""
    from latencyscope.schemas import kind
    from latencyscope.schemas.codegen import entry_size

    cap_path = tmp_path / "pingpong.lscope"
    rec = Recorder(cap_path, "--modules", "isolation")
    try:
        rec.wait_ready()
        subprocess.run([sys.executable, "-c", CROSS_CPU_PINGPONG.format(secs=1.5)], check=True, timeout=30)
        assert rec.stop() == 0, rec.stderr
    finally:
        kill(rec.proc)
    m = json.loads(subprocess.run(["tar", "-xOf", str(cap_path), "manifest.json"], capture_output=True,
                                  check=True).stdout)
    assert m["events"]["sched_wakeup"] > 20_000, m["events"]   # the workload ran (~150 k here)
    assert sum(m["lost"].values()) == 0, (m["lost"], m["recorder"])
    per_record = m["recorder"]["ring_bytes_per_record"]
    for name in ("sched_switch", "sched_wakeup"):
        # At most one small chunk per record (an idle flush of one record).
        assert per_record[name] <= entry_size(kind(name), small=True), per_record
    assert m["tables"]["sched_wakeup"]["small_ring_bytes_per_cpu"] > 0


def test_two_recorders_at_once_are_independent(tmp_path):
    a = Recorder(tmp_path / "a.lscope", "--modules", "isolation", "--cpus", "0")
    b = Recorder(tmp_path / "b.lscope", "--modules", "isolation", "--cpus", "1")
    marker = None
    try:
        a.wait_ready()
        b.wait_ready()
        subprocess.run([sys.executable, "-c", PINGPONG.format(secs=1)], check=True, timeout=30)
        assert a.stop() == 0, a.stderr
        # b keeps recording after a detached its own programs.
        marker = sleeper(100, cpu=1)
        assert marker.wait(30) == 0
        assert b.stop() == 0, b.stderr
    finally:
        kill(a.proc, b.proc)
    ca, cb = open_capture(str(tmp_path / "a.lscope")), open_capture(str(tmp_path / "b.lscope"))
    assert set(ca.table("sched_switch")["cpu"].unique().to_list()) == {0}
    assert set(cb.table("sched_switch")["cpu"].unique().to_list()) == {1}
    assert ca.table("sched_switch").filter(pl.col("prev_pid") == marker.pid).height == 0
    assert cb.table("sched_switch").filter(pl.col("prev_pid") == marker.pid).height >= 100
    assert not ca.warnings and not cb.warnings


def test_recorder_keeps_off_monitored_cpus_and_does_not_busy_poll(tmp_path):
    cap_path = tmp_path / "quiet.lscope"
    rec = Recorder(cap_path, "--modules", "isolation", "--cpus", "1")
    try:
        rec.wait_ready()
        pid = rec.proc.pid
        allowed = {t.name: (t / "status").read_text().split("Cpus_allowed_list:")[1].split()[0]
                   for t in Path(f"/proc/{pid}/task").iterdir()}
        assert set(allowed.values()) == {"0"}, allowed
        # The drain runs at SCHED_FIFO 1 by default (--rt-priority) so it keeps
        # up under load; it must still sleep between polls (checked below).
        assert os.sched_getscheduler(pid) == os.SCHED_FIFO
        assert os.sched_getparam(pid).sched_priority == 1
        before = cpu_seconds(pid)
        time.sleep(3)
        used = cpu_seconds(pid) - before
        assert rec.stop() == 0, rec.stderr
    finally:
        kill(rec.proc)
    assert used < 0.3, f"recorder used {used:.2f} s of CPU in 3 s of recording"
    notes = open_capture(str(cap_path)).manifest["notes"]
    assert any("off the monitored ones" in n for n in notes), notes
