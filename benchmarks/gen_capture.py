#!/usr/bin/env python3
"""Write a synthetic but valid isolation capture of N events, in bounded memory.

    python benchmarks/gen_capture.py --events 100000000 -o /tmp/big.lscope

The capture goes through the recorder's own ``CaptureWriter`` and the
schemas' Arrow layouts, so the analyzer reads it exactly like a recorded one.
Events are made batch by batch (``--batch`` events at a time, ~100 bytes of
RAM each), so memory does not grow with ``--events``.

The scheduling it describes is plausible, not random noise: on every CPU the
``prev_pid`` of a switch is the ``next_pid`` of the previous switch there;
most switch-ins of a task are preceded by a wakeup of that task targeting
that CPU a few microseconds earlier; tasks that switch out runnable
(``prev_state`` 0) model preemption; a few migrations are sprinkled in.
Time advances ~2 µs per switch (about this machine's peak rate).  Task
names are in the manifest's task snapshot, as recorded captures have them
(format 3: switches and wakeups carry pids only).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Dict, Iterator, Tuple

import numpy as np

from latencyscope import FORMAT_VERSION, __version__
from latencyscope.record.writer import CaptureWriter
from latencyscope.schemas import kind, kinds_of

# Share of each kind in the event stream (close to a recorded stress-ng --switch capture).
SHARE = {"sched_switch": 0.62, "sched_wakeup": 0.36, "sched_wakeup_new": 0.0, "sched_migrate_task": 0.02}
IDLE_SHARE = 0.1
START_NS = 1_000_000_000_000
MEAN_SWITCH_GAP_NS = 2_000
MEAN_WAKEUP_DELAY_NS = 5_000


def plain_dtype(k) -> np.dtype:
    """The record layout without the ring-buffer header: what CaptureWriter.append needs."""
    return np.dtype([(f.name, f.np_type) for f in k.fields])


def _comms(names) -> np.ndarray:
    return np.array([n.encode()[:15] for n in names], dtype="S16")


class Generator:
    """Yields (kind name, records) batch by batch; state carries across batches."""

    def __init__(self, n_cpus: int = 2, n_tasks: int = 64, seed: int = 1):
        self.rng = np.random.default_rng(seed)
        self.n_cpus = n_cpus
        self.pids = np.arange(1000, 1000 + n_tasks, dtype=np.int32)
        self.tgids = (1000 + (self.pids - 1000) // 4 * 4).astype(np.uint32)  # 4 threads per process
        self.task_comm = _comms([f"worker-{i}" for i in range(n_tasks)])
        self.current = np.zeros(n_cpus, dtype=np.int32)  # who runs on each CPU (0 = idle)
        self.t = START_NS

    # -- helpers -------------------------------------------------------------
    def _task_index(self, pid: np.ndarray) -> np.ndarray:
        return np.clip(pid - self.pids[0], 0, len(self.pids) - 1)

    def batch(self, n: int) -> Dict[str, np.ndarray]:
        rng = self.rng
        n_sw = max(1, int(n * SHARE["sched_switch"]))
        n_mig = int(n * SHARE["sched_migrate_task"])
        n_wk = n - n_sw - n_mig
        t0 = self.t

        # switches: a global timeline, each on a random CPU
        ts = t0 + np.cumsum(rng.exponential(MEAN_SWITCH_GAP_NS, n_sw).astype(np.uint64) + 1)
        cpu = rng.integers(0, self.n_cpus, n_sw).astype(np.uint32)
        nxt = rng.choice(self.pids, n_sw)
        nxt[rng.random(n_sw) < IDLE_SHARE] = 0
        # prev on a CPU is whoever the previous switch there brought in (vectorized per CPU)
        order = np.argsort(cpu, kind="stable")
        c_sorted, n_sorted = cpu[order], nxt[order]
        prev_sorted = np.empty_like(n_sorted)
        prev_sorted[1:] = n_sorted[:-1]
        first = np.ones(n_sw, dtype=bool)
        first[1:] = c_sorted[1:] != c_sorted[:-1]
        prev_sorted[first] = self.current[c_sorted[first]]
        last = np.ones(n_sw, dtype=bool)
        last[:-1] = c_sorted[:-1] != c_sorted[1:]
        self.current[c_sorted[last]] = n_sorted[last]
        prv = np.empty_like(prev_sorted)
        prv[order] = prev_sorted
        state = np.where(rng.random(n_sw) < 0.3, 0, 1).astype(np.int64)  # 30% preempted
        state[prv == 0] = 0
        sw = np.zeros(n_sw, dtype=plain_dtype(kind("sched_switch")))
        sw["ts_ns"], sw["prev_state"], sw["cpu"] = ts, state, cpu
        sw["prev_pid"], sw["next_pid"] = prv, nxt
        sw["prev_tgid"] = np.where(prv == 0, 0, self.tgids[self._task_index(prv)])
        sw["prev_prio"] = sw["next_prio"] = 120

        # wakeups: shortly before a switch-in of a (non-idle) task, onto that CPU
        cand = np.flatnonzero(nxt != 0)
        pick = np.sort(rng.choice(cand, min(n_wk, len(cand)), replace=False)) if len(cand) else cand
        delay = rng.exponential(MEAN_WAKEUP_DELAY_NS, len(pick)).astype(np.uint64) + 200
        wts = np.maximum(ts[pick] - np.minimum(delay, ts[pick] - t0), t0)
        wk = np.zeros(len(pick), dtype=plain_dtype(kind("sched_wakeup")))
        wk["ts_ns"] = wts
        wk["cpu"] = rng.integers(0, self.n_cpus, len(pick))
        wk["pid"] = nxt[pick]
        wk["target_cpu"] = cpu[pick]
        wk["prio"] = 120
        waker = rng.choice(self.pids, len(pick))
        wk["waker_pid"] = waker
        wk["waker_tgid"] = self.tgids[self._task_index(waker)]
        wk = wk[np.argsort(wk["ts_ns"], kind="stable")]

        # migrations: a few, anywhere in the batch window
        mig = np.zeros(n_mig, dtype=plain_dtype(kind("sched_migrate_task")))
        if n_mig:
            mig["ts_ns"] = np.sort(rng.integers(t0, int(ts[-1]) + 1, n_mig, dtype=np.uint64))
            mig["cpu"] = rng.integers(0, self.n_cpus, n_mig)
            pid = rng.choice(self.pids, n_mig)
            mig["pid"], mig["prio"] = pid, 120
            mig["orig_cpu"] = rng.integers(0, self.n_cpus, n_mig)
            mig["dest_cpu"] = (mig["orig_cpu"] + 1) % self.n_cpus
            mig["by_pid"] = rng.choice(self.pids, n_mig)
            mig["comm"] = self.task_comm[self._task_index(pid)]

        self.t = int(ts[-1]) + 1
        return {"sched_switch": sw, "sched_wakeup": wk, "sched_migrate_task": mig}

    def batches(self, total: int, batch: int) -> Iterator[Dict[str, np.ndarray]]:
        left = total
        while left > 0:
            n = min(batch, left)
            out = self.batch(n)
            left -= sum(len(v) for v in out.values())
            yield out


def manifest(gen: Generator, rows: Dict[str, int], end_ns: int, wrote_s: float) -> dict:
    cpus = list(range(gen.n_cpus))
    kinds = kinds_of("isolation")
    tasks = [{"tid": int(p), "tgid": int(t), "comm": c.decode(), "kthread": False}
             for p, t, c in zip(gen.pids, gen.tgids, gen.task_comm)]
    clock = {"monotonic_ns": START_NS, "realtime_minus_monotonic_ns": 1_700_000_000 * 10**9,
             "uncertainty_ns": 0}
    return {
        "format": "latencyscope-capture",
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "complete": True,
        "synthetic": True,
        "command_line": sys.argv,
        "host": {"hostname": "synthetic", "kernel_release": "synthetic", "kernel_version": "",
                 "machine": "x86_64", "cpu_count": gen.n_cpus, "cpus_online": cpus,
                 "isolated_cpus": [], "nohz_full_cpus": [], "numa_nodes": {"0": cpus},
                 "topology": [{"cpu": c, "core_id": c, "package_id": 0, "online": True,
                               "thread_siblings": str(c)} for c in cpus],
                 "irqs": [], "kernel_cmdline": "", "cmdline_isolation": {}, "page_size": 4096,
                 "clock_ticks": 100, "boot_id": "synthetic"},
        "modules": ["isolation"],
        "tables": {k.name: {"module": k.module, "tracepoint": k.tracepoint, "ring_bytes": 0}
                   for k in kinds},
        "filters": {"cpus": None, "pids": [], "semantics": "synthetic: no filter"},
        "tracepoint_formats": {},
        "syscalls": {},
        "kernel_headers": {},
        "tasks": tasks,
        "clock": {"start": clock, "end": dict(clock, monotonic_ns=end_ns)},
        "window": {"start_ns": START_NS, "end_ns": end_ns},
        "events": dict(rows),
        "lost": {k.name: 0 for k in kinds},
        "lost_per_cpu": {k.name: [0] * gen.n_cpus for k in kinds},
        "discarded": {k.name: 0 for k in kinds},
        "stopped_by": "duration",
        "notes": [f"synthetic capture written by benchmarks/gen_capture.py in {wrote_s:.1f} s"],
    }


def generate(path: str, events: int, batch: int = 1_000_000, n_cpus: int = 2, n_tasks: int = 64,
             seed: int = 1, progress=None) -> Tuple[str, Dict[str, int]]:
    """Write a capture of ``events`` events to ``path``; returns (path, rows per kind)."""
    t_start = time.monotonic()
    gen = Generator(n_cpus=n_cpus, n_tasks=n_tasks, seed=seed)
    kinds = kinds_of("isolation")
    by_name = {k.name: k for k in kinds}
    w = CaptureWriter(path, kinds)
    try:
        w.write_manifest(manifest(gen, w.rows, START_NS, 0.0))
        w.started = True
        done = 0
        for out in gen.batches(events, batch):
            for name, recs in out.items():
                w.append(by_name[name], recs)
            w.flush()  # one Arrow batch per kind per generated batch: bounded memory
            done += sum(len(v) for v in out.values())
            if progress:
                progress(done, events)
        w.write_manifest(manifest(gen, w.rows, gen.t, time.monotonic() - t_start))
        out_path = w.finish()
    finally:
        w.close_tables()
    return str(out_path), dict(w.rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", required=True, help="capture file to write (NAME.lscope)")
    ap.add_argument("-n", "--events", type=float, default=1e6, help="total events (e.g. 1e8)")
    ap.add_argument("--batch", type=int, default=1_000_000, help="events generated and written per batch")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)

    def progress(done, total):
        if not a.quiet and sys.stderr.isatty():
            sys.stderr.write(f"\r  {done:,} / {total:,} events")
            sys.stderr.flush()

    t = time.monotonic()
    path, rows = generate(a.output, int(a.events), a.batch, a.cpus, a.tasks, a.seed, progress)
    if not a.quiet:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(f"wrote {path}: {sum(rows.values()):,} events ({rows}) in {time.monotonic() - t:.1f} s, "
              f"{os.path.getsize(path) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
