"""IRQ Storm Detector against the real kernel: per-IRQ counts equal /proc/interrupts deltas."""
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import Recorder, analyze_json
from latencyscope.analyze.capture import open_capture

pytestmark = pytest.mark.kernel


def interrupts() -> dict:
    """IRQ number -> total count over all CPUs, from /proc/interrupts (the kernel's own counter)."""
    out = {}
    lines = Path("/proc/interrupts").read_text().splitlines()
    ncpu = len(lines[0].split())
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        if head.strip().isdigit():
            out[int(head)] = sum(int(x) for x in rest.split()[:ncpu] if x.isdigit())
    return out


def direct_io(path: Path, seconds: float) -> None:
    """4 KiB writes with O_DIRECT: every block is a real disk request, so a disk IRQ."""
    subprocess.run(["timeout", str(seconds), "dd", "if=/dev/zero", f"of={path}", "bs=4k", "count=1000000",
                    "oflag=direct", "status=none"], check=False)


class Sampler(threading.Thread):
    """/proc/interrupts every millisecond with its CLOCK_MONOTONIC time.

    Other tests may do disk I/O at the same time, so the counters are read
    at the edges of the recorder's own window (from its manifest), not
    around our workload.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            t0 = time.monotonic_ns()
            c = interrupts()
            self.samples.append((t0, time.monotonic_ns(), c))
            time.sleep(0.001)

    def around(self, start_ns: int, end_ns: int):
        before = [c for t0, t1, c in self.samples if t1 <= start_ns][-1]
        after = [c for t0, t1, c in self.samples if t0 >= end_ns][0]
        return before, after


def test_irq_counts_equal_proc_interrupts_deltas_under_direct_io(tmp_path):
    data = Path("/var/tmp") / f"latencyscope-irq-{os.getpid()}.bin"  # on the root disk
    cap = tmp_path / "irq.lscope"
    sampler = Sampler()
    sampler.start()
    rec = Recorder(cap, "--modules", "irq")
    try:
        rec.wait_ready()
        direct_io(data, 1.0)
        assert rec.stop() == 0, rec.stderr
        time.sleep(0.05)
    finally:
        sampler.done.set()
        data.unlink(missing_ok=True)
        if rec.proc.poll() is None:
            rec.proc.kill()
    sampler.join()
    window = open_capture(str(cap)).manifest["window"]
    before, after = sampler.around(window["start_ns"], window["end_ns"])
    code, rep = analyze_json(cap)
    d = rep["irq"]
    assert rep["capture"]["lost_events"] == 0
    reported = {}
    for r in d["hardirq"]:
        reported[r["irq"]] = reported.get(r["irq"], 0) + r["count"]
    deltas = {n: after[n] - before.get(n, 0) for n in after}
    busy = {n: dv for n, dv in deltas.items() if dv >= 200}
    assert max(busy.values(), default=0) >= 1000, f"direct I/O raised too few IRQs: {deltas}"
    for n, dv in busy.items():
        got = reported.get(n, 0)
        print(f"irq {n}: analyzer {got}, /proc/interrupts delta {dv}")
        # the reads bracket the window within ~1 ms on each side: 2%, or 20 IRQs for quiet lines
        assert abs(got - dv) <= max(0.02 * dv, 20), (n, got, dv)
    # every handler run is paired: durations are real and non-negative
    disk = max(busy, key=busy.get)
    rows = [r for r in d["hardirq"] if r["irq"] == disk]
    assert all(r["max_ns"] is not None and 0 <= r["p99_ns"] <= r["max_ns"] for r in rows)
    assert d["truncated"]["hardirq"]["exits_without_entry"] <= 2 * rep["capture"]["cpus"]


def test_disk_irq_on_a_monitored_cpu_gets_a_move_command(tmp_path):
    data = Path("/var/tmp") / f"latencyscope-irq2-{os.getpid()}.bin"
    before = interrupts()
    direct_io(data, 0.3)
    deltas = {n: v - before.get(n, 0) for n, v in interrupts().items()}
    disk = max(deltas, key=deltas.get)
    eff = Path(f"/proc/irq/{disk}/effective_affinity_list").read_text().strip()
    cpu = int(eff.split(",")[0].split("-")[0])
    cap = tmp_path / "irqmon.lscope"
    rec = Recorder(cap, "--modules", "irq", "--cpus", str(cpu))
    try:
        rec.wait_ready()
        direct_io(data, 0.5)
        assert rec.stop() == 0, rec.stderr
    finally:
        data.unlink(missing_ok=True)
        if rec.proc.poll() is None:
            rec.proc.kill()
    code, rep = analyze_json(cap)
    d = rep["irq"]
    assert any(r["irq"] == disk and r["cpu"] == cpu for r in d["on_monitored_cpus"]), d["on_monitored_cpus"]
    rec_ = [r for r in d["recommendations"] if r["irq"] == disk]
    assert rec_ and rec_[0]["command"].endswith(f"> /proc/irq/{disk}/smp_affinity")
    mask = int(rec_[0]["command"].split()[1].replace(",", ""), 16)
    assert mask and not mask & (1 << cpu)
    assert d["status"] in ("WARN", "FAIL") and code >= 1
