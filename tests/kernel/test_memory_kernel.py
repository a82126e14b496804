"""Memory Stall Profiler against the real kernel: faults equal the task's own minflt/majflt."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import Recorder, analyze_json, kill

pytestmark = pytest.mark.kernel

ANON = """
import mmap, sys
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
m = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.madvise(mmap.MADV_NOHUGEPAGE)   # one fault per 4 KiB page, not per 2 MiB
for off in range(0, len(m), 4096):
    m[off] = 1
sys.stdout.write("done\\n"); sys.stdout.flush()
sys.stdin.readline()
"""

FILE = """
import mmap, sys
f = open(sys.argv[1], "rb")
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
m.madvise(mmap.MADV_RANDOM)       # no readahead: every page not in the cache is a major fault
s = 0
for off in range(0, len(m), 4096):
    s += m[off]
sys.stdout.write("done\\n"); sys.stdout.flush()
sys.stdin.readline()
"""


def faults(pid: int) -> (int, int):
    """(minflt, majflt) from /proc/PID/stat: the kernel's own counters."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    f = stat[stat.rindex(")") + 2:].split()
    return int(f[7]), int(f[9])


def run_child(tmp_path, code: str, *args: str, drop_caches: bool = False):
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    cap = tmp_path / "mem.lscope"
    rec = None
    try:
        assert child.stdout.readline() == b"ready\n"
        rec = Recorder(cap, "--modules", "memory", "--pid", str(child.pid))
        rec.wait_ready()
        if drop_caches:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        before = faults(child.pid)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"done\n"
        after = faults(child.pid)
        assert rec.stop() == 0, rec.stderr
    finally:
        kill(child)
        if rec is not None and rec.proc.poll() is None:
            rec.proc.kill()
    code_, rep = analyze_json(cap)
    return code_, rep, child.pid, (after[0] - before[0], after[1] - before[1])


def test_minor_faults_of_a_child_touching_fresh_memory_match_its_minflt(tmp_path):
    code, rep, pid, (minflt, majflt) = run_child(tmp_path, ANON)
    d = rep["memory"]
    mine = [r for r in d["by_pid"] if r["pid"] == pid]
    assert mine, d["by_pid"]
    print(f"minor: analyzer {mine[0]['minor_faults']}, minflt delta {minflt}")
    assert minflt >= 16384
    assert abs(mine[0]["minor_faults"] - minflt) <= 0.02 * minflt, (mine[0], minflt)
    assert mine[0]["major_faults"] == majflt
    assert sum(b["minor"] for b in d["timeline"]) >= mine[0]["minor_faults"]
    assert rep["capture"]["lost_events"] == 0


def test_major_faults_after_dropping_the_page_cache_match_majflt_and_fail(tmp_path):
    data = Path("/var/tmp") / f"latencyscope-mem-{os.getpid()}.bin"   # on the root disk
    with open(data, "wb") as f:
        f.write(os.urandom(16 << 20))
        f.flush()
        os.fsync(f.fileno())
    try:
        code, rep, pid, (minflt, majflt) = run_child(tmp_path, FILE, str(data), drop_caches=True)
    finally:
        data.unlink(missing_ok=True)
    d = rep["memory"]
    mine = [r for r in d["by_pid"] if r["pid"] == pid][0]
    print(f"major: analyzer {mine['major_faults']}, majflt delta {majflt}")
    assert majflt >= 1000, majflt
    assert abs(mine["major_faults"] - majflt) <= 0.10 * majflt, (mine, majflt)
    assert d["status"] == "FAIL" and code == 2
    assert any("major page faults in targets" in v for v in rep["verdict"]["violations"])
