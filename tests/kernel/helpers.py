"""Real workloads and a real recorder for kernel tests (no mocks)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

BIN = Path(sys.executable).parent


def ctxt_switches(pid: int, tid: Optional[int] = None) -> dict:
    """The kernel's own counters: voluntary / nonvoluntary context switches."""
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            k, v = line.split(":")
            out[k] = int(v)
    return out


def settled_switches(pid: int) -> dict:
    """ctxt_switches once PID blocks (on stdin, say): the switch into that
    sleep is counted too, and nothing changes the counters after it."""
    for _ in range(100):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S":
            break
        time.sleep(0.01)
    time.sleep(0.1)
    return ctxt_switches(pid)


def spawn_pinned(cpu: int, code: str, **kw) -> subprocess.Popen:
    """A Python child pinned to CPU before it execs (so all its life is there)."""
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kw)


HOG = "while True: pass"


@contextlib.contextmanager
def shield(cpu: int):
    """Move every movable thread off CPU (like `cset shield` / `tuna -i`), restore after.

    This machine is not booted with isolcpus; tests make CPU 1 'isolated' so
    that what runs there is what the test put there, plus the per-CPU kernel
    threads nobody can move (the kernel refuses: PF_NO_SETAFFINITY), which
    the analyzer classifies as kernel threads.  Unbound kernel threads
    (kdamond, unbound kworkers) are moved like user threads.
    """
    moved = []
    wq = Path("/sys/devices/virtual/workqueue/cpumask")
    wq_old = None
    try:  # unbound workqueues (kworker/uN:M) follow this mask
        wq_old = wq.read_text().strip()
        allowed = int(wq_old, 16) & ~(1 << cpu)
        if allowed:
            wq.write_text(f"{allowed:x}\n")
    except (OSError, ValueError):
        wq_old = None
    for tdir in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        try:
            tid = int(tdir.name)
            aff = os.sched_getaffinity(tid)
            if cpu in aff and len(aff) > 1:
                os.sched_setaffinity(tid, aff - {cpu})
                moved.append((tid, aff))
        except (OSError, ValueError):
            continue
    try:
        yield
    finally:
        if wq_old is not None:
            try:
                wq.write_text(wq_old + "\n")
            except OSError:
                pass
        for tid, aff in moved:
            try:
                os.sched_setaffinity(tid, aff)
            except OSError:
                pass


class Recorder:
    """latencyscope-record as a child process, started and stopped like a user would."""

    def __init__(self, out: Path, *args: str, duration: Optional[float] = None):
        self.out = Path(out)
        cmd = [str(BIN / "latencyscope-record"), "-q", "-o", str(self.out), *args]
        if duration:
            cmd += ["-d", str(duration)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        manifest = Path(str(self.out) + ".partial") / "manifest.json"
        t0 = time.monotonic()
        while not manifest.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"recorder exited early: {self.proc.stderr.read()}")
            if time.monotonic() - t0 > timeout:
                raise AssertionError("recorder not ready in time")
            time.sleep(0.05)
        time.sleep(0.1)

    def stop(self, sig=signal.SIGINT, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self.stderr = self.proc.stderr.read()
        return self.proc.returncode


def analyze_json(capture: Path, *args: str) -> (int, dict):
    p = subprocess.run([str(BIN / "latencyscope-analyze"), "report", str(capture), "--json", *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode in (0, 1, 2), p.stderr
    return p.returncode, json.loads(p.stdout)


def kill(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
