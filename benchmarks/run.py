#!/usr/bin/env python3
"""LatencyScope benchmark suite: LatencyScope side by side with the tools users would pick instead.

    sudo .venv/bin/python benchmarks/run.py            # ~8 min, writes docs/benchmarks.md
    sudo .venv/bin/python benchmarks/run.py --quick    # ~2 min smoke run, same report
    sudo .venv/bin/python benchmarks/run.py --big      # + a 100 M-event synthetic capture analyzed

Parts (each bounded in time; see docs/benchmarks.md for the results):
  1. observer effect: workload throughput untraced / under latencyscope-record /
     perf sched record / trace-cmd record (or raw ftrace when trace-cmd cannot
     run) / bcc runqlat / an empty BPF program; interleaved, repeated
  2. in-kernel cost per event (bpf_stats) of every LatencyScope program beside
     an empty program on the same tracepoint, same run
  3. loss and recorder CPU at the highest event rate this machine produces;
     3b (`drain`): the recorder's drain + write capacity, its rings filled by
     the benchmark faster than the kernel here can (benchmarks/drain_feed.py)
  4. capture bytes per event vs perf.data and trace.dat, same workload
  5. analysis wall time / peak RSS: perf sched latency vs latencyscope-analyze
     on captures of the same workload recorded at the same time; --big adds a
     100 M-event synthetic capture (benchmarks/gen_capture.py)
  6. syscall tracing cost: ns per syscall of a process that is not the --pid
     target (untraced / empty raw and classic programs / --modules syscall),
     and bpf_stats of the syscall programs beside an empty raw tracepoint
     program (`--only syscall` updates just that section of docs/benchmarks.md)

Needs root, stress-ng, fio, perf, bpftool, bpfcc-tools; a missing tool skips
its rows with a note.  Nothing here is a test: the suite only smoke-tests the
pure pieces (tests/unit/test_benchmarks_smoke.py).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from latencyscope.record.btf import SHORT_NAMES

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin").is_dir() else Path(sys.executable).parent
SYS_PYTHON = "/usr/bin/python3"  # BCC's binding is a distro package
TRACEFS = Path("/sys/kernel/tracing")
ISOLATION_TPS = ["sched:sched_switch", "sched:sched_wakeup", "sched:sched_wakeup_new", "sched:sched_migrate_task",
                 "task:task_rename"]
# Everything latencyscope-record --modules isolation attaches: the five (switch
# and wakeups as tp_btf programs when the kernel has BTF, record/btf.py), plus
# the timer interrupt that flushes staged records of quiet CPUs (bpf/isolation.c).
HAVE_BTF = Path("/sys/kernel/btf/vmlinux").is_file()
# bpftool's (15-character) names of the tp_btf programs -> their tracepoint.
BTF_EVENT_OF = {short: ev for ev, short in SHORT_NAMES.items()}
LS_ISOLATION_TPS = ([("tp_btf:" + tp.split(":")[1]) if HAVE_BTF and tp.split(":")[1] in SHORT_NAMES else tp
                     for tp in ISOLATION_TPS] + ["timer:hrtimer_expire_entry"])


def module_tracepoints(modules: str) -> List[str]:
    """The tracepoints latencyscope-record attaches for MODULES (comma list),
    as tracefs names (perf events, which are not tracepoints, left out)."""
    from latencyscope.schemas import kinds_of

    tps = [k.tracepoint for m in modules.split(",") for k in kinds_of(m)]
    return list(dict.fromkeys(tp for tp in tps if not tp.startswith("perf:")))


def module_programs(modules: str) -> List[str]:
    """What an empty program must attach to pay what LatencyScope's programs
    pay to be called for MODULES: the isolation hooks as the recorder
    attaches them (tp_btf, plus the stage-flushing timer), the rest as
    classic tracepoints."""
    out = []
    for m in modules.split(","):
        out += LS_ISOLATION_TPS if m == "isolation" else module_tracepoints(m)
    return list(dict.fromkeys(out))
CLK_TCK = os.sysconf("SC_CLK_TCK")
# What the recorder writes into the manifest about its own drain (record/session.py).
RECORDER_DIAGNOSTICS = ("longest_drain_gap_ms", "max_ring_fill", "ring_fill_when_lost", "ring_bytes_per_record",
                        "compression")


# --------------------------------------------------------------------------- pure helpers

def paired_ratios(values: List[Optional[float]], untraced: List[Optional[float]]) -> List[Optional[float]]:
    """Per repetition, a tracer's throughput over the untraced throughput of the same
    repetition (None where either run failed).  Paired, the host's slow drifts cancel:
    untraced runs of one workload went from 253 k to 337 k ops/s over a run on
    2026-12-04, while each repetition's ratio stayed within 0.87-0.89."""
    return [v / b if v and b else None for v, b in zip(values, untraced)]


def observer_ratio(tracers: dict, name: str) -> Dict[str, float]:
    """min / median / max of NAME's paired ratios (``paired_ratios``) in a workload's TRACERS."""
    base = tracers.get("untraced", {}).get("values")
    return summarize(paired_ratios(tracers[name]["values"], base)) if base else tracers[name].get("ratio", {})


def summarize(values: List[float]) -> Dict[str, float]:
    """min / median / max of a list (empty -> {})."""
    v = [x for x in values if x is not None]
    if not v:
        return {}
    return {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}


_STRESS_RE = re.compile(r"metrc: \[\d+\]\s+(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")


def parse_stress_ng(text: str, stressor: str) -> Optional[float]:
    """Bogo ops per second (real time) of ``stressor`` from stress-ng --metrics-brief output."""
    for m in _STRESS_RE.finditer(text):
        if m.group(1) == stressor:
            return float(m.group(6))
    return None


def parse_stress_ng_sum(text: str, stressor: str) -> Optional[float]:
    """Sum of the bogo ops/s (real time) of several stress-ng runs' ``stressor`` lines."""
    v = [float(m.group(6)) for m in _STRESS_RE.finditer(text) if m.group(1) == stressor]
    return sum(v) if v else None


def parse_fio_iops(text: str) -> Optional[float]:
    """Total IOPS (read + write, all jobs) from fio --output-format=json."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = json.loads(text[start:])
    except ValueError:
        return None
    return sum(j["read"]["iops"] + j["write"]["iops"] for j in data.get("jobs", []))


def parse_time_v(text: str) -> Dict[str, float]:
    """Wall seconds and peak RSS (bytes) from GNU time -v output."""
    out = {}
    m = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    if m:
        h, mi, s = m.group(1), m.group(2), m.group(3)
        out["wall_s"] = int(h or 0) * 3600 + int(mi) * 60 + float(s)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["rss_bytes"] = int(m.group(1)) * 1024
    m = re.search(r"User time \(seconds\): ([\d.]+)", text)
    if m:
        out["user_s"] = float(m.group(1))
    m = re.search(r"System time \(seconds\): ([\d.]+)", text)
    if m:
        out["sys_s"] = float(m.group(1))
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        out["exit"] = int(m.group(1))
    return out


def parse_perf_samples(text: str) -> Optional[int]:
    m = re.search(r"\((\d+) samples\)", text)
    return int(m.group(1)) if m else None


_PERF_STATS_RE = re.compile(r"^(\S+:\S+) stats:\s*\n\s*SAMPLE events:\s*(\d+)", re.M)


def parse_perf_stats(text: str) -> Dict[str, int]:
    """Samples per tracepoint from `perf report --stats` ({"sched:sched_switch": N, ...})."""
    return {k: int(n) for k, n in _PERF_STATS_RE.findall(text)}


def shared_events(by_kind: Dict[str, int]) -> int:
    """perf sched record's samples of the events LatencyScope records too: all
    but sched_stat_* (perf's runtime/wait accounting, one per switch or tick)."""
    return sum(n for k, n in by_kind.items() if not k.split(":")[-1].startswith("sched_stat_"))


def capture_manifest(path: Path) -> dict:
    with tarfile.open(path) as t:
        return json.loads(t.extractfile("manifest.json").read())


def _nonzero(by_kind: Optional[Dict[str, int]]) -> Dict[str, int]:
    return {k: v for k, v in (by_kind or {}).items() if v}


def _recording_note(x: dict) -> str:
    """One LatencyScope recording of part 1: events (lost, and for each kind
    that lost records how full its rings got; the longest drain gap)."""
    out = f"{x['events']:,} ({x.get('lost', 0):,}"
    if x.get("lost"):
        losing = _nonzero(x.get("lost_by_kind"))
        out += f" {losing}, fullest ring at a poll / when a write failed " + ", ".join(
            f"{k} {fmt_pct((x.get('max_ring_fill') or {}).get(k))} / "
            f"{fmt_pct((x.get('ring_fill_when_lost') or {}).get(k))}" for k in losing)
    if x.get("longest_drain_gap_ms") is not None:
        out += f"; {x['longest_drain_gap_ms']:.0f} ms"
    return out + ")"


def fmt_pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "n/a"
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


# --------------------------------------------------------------------------- processes

def sched_stat(pid: int) -> Optional[tuple]:
    """(on-CPU s, runqueue-wait s, timeslices) summed over a process's threads (/proc/PID/task/*/schedstat)."""
    tot = [0, 0, 0]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            v = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
            for i in range(3):
                tot[i] += int(v[i])
    except (OSError, ValueError, IndexError):
        return None
    return tot[0] / 1e9, tot[1] / 1e9, tot[2]


def proc_cpu_s(pid: int) -> Optional[float]:
    """user+sys CPU seconds of a live process (all its threads) from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


LIVE: List["Child"] = []       # children to stop if the suite is interrupted
LIVE_FTRACE: List["Ftrace"] = []


@dataclass
class Child:
    """A background process with its output in files and its rusage at exit."""
    name: str
    argv: List[str]
    work: Path
    env: Optional[dict] = None
    proc: Optional[subprocess.Popen] = None
    rusage: Optional[object] = None
    rc: Optional[int] = None

    def start(self) -> "Child":
        self.out = self.work / f"{self.name}.out"
        self.err = self.work / f"{self.name}.err"
        env = dict(os.environ, **(self.env or {}))
        self.proc = subprocess.Popen(self.argv, stdout=open(self.out, "wb"), stderr=open(self.err, "wb"),
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        LIVE.append(self)
        return self

    def _reap(self) -> bool:
        """Collect exit status and rusage if the child has exited (never Popen.poll: it would
        reap the child without its rusage)."""
        if self.rc is not None:
            return True
        pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
        if not pid:
            return False
        self.rusage = ru
        self.rc = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.rc
        if self in LIVE:
            LIVE.remove(self)
        return True

    def alive(self) -> bool:
        return not self._reap()

    def text(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_for(self, ready: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready():
                return True
            if self._reap():
                return False
            time.sleep(0.02)
        return False

    def stop(self, sig=signal.SIGINT, timeout: float = 60.0) -> int:
        if self._reap():
            return self.rc
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        end = time.monotonic() + timeout
        while not self._reap():
            if time.monotonic() > end:
                os.kill(self.proc.pid, signal.SIGKILL)
                end = time.monotonic() + 5.0
            time.sleep(0.02)
        return self.rc

    @property
    def cpu_s(self) -> Optional[float]:
        return None if self.rusage is None else self.rusage.ru_utime + self.rusage.ru_stime


def cpu_times():
    """(busy CPU seconds of the whole machine, idle+busy seconds / CPUs) from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    total = sum(f[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK / (os.cpu_count() or 1)


def wait_quiet(max_wait: float, threshold: float = 0.1) -> float:
    """Wait (up to max_wait s) until the machine is < threshold busy over 0.5 s; return last busy share.

    Other people's jobs on a shared box would otherwise land in one tracer's runs.
    """
    end = time.monotonic() + max_wait
    while True:
        b0, t0 = cpu_times()
        time.sleep(0.5)
        b1, t1 = cpu_times()
        share = (b1 - b0) / max((t1 - t0) * (os.cpu_count() or 1), 1e-9)
        if share < threshold or time.monotonic() > end:
            return share


def run_cmd(argv: List[str], timeout: float, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def have(tool: str) -> bool:
    return shutil.which(tool) is not None or Path(tool).exists()


# --------------------------------------------------------------------------- workloads

@dataclass
class Workload:
    name: str
    label: str
    unit: str
    argv: Callable[[float, Path], List[str]]
    parse: Callable[[str], Optional[float]]
    prepare: Optional[Callable[[Path], None]] = None
    modules: str = "isolation"  # what latencyscope-record (and the tracers copying it) record here

    def run(self, seconds: float, work: Path) -> Optional[float]:
        return self.run_measured(seconds, work)["value"]

    def run_measured(self, seconds: float, work: Path) -> dict:
        """Throughput plus the CPU the workload itself used and the whole machine's busy CPU."""
        c = Child(f"wl-{self.name}", self.argv(seconds, work), work)
        busy0 = cpu_times()
        c.start()
        end = time.monotonic() + seconds + 60
        while not c._reap():
            if time.monotonic() > end:
                os.kill(c.proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        busy1 = cpu_times()
        return {"value": self.parse(c.text()), "workload_cpu_s": c.cpu_s,
                "busy_cpu_s": busy1[0] - busy0[0], "wall_s": busy1[1] - busy0[1]}


def switch_workload(instances: int = 2) -> Workload:
    return Workload(
        f"switch{instances}", f"`stress-ng --switch {instances}` (context switches)", "bogo ops/s",
        lambda s, w: ["stress-ng", "--switch", str(instances), "-t", f"{max(1, round(s))}s", "--metrics-brief"],
        lambda t: parse_stress_ng(t, "switch"))


def pinned_switch_workload() -> Workload:
    """One stress-ng --switch pair pinned to each CPU: both ends of every pipe on one CPU, so no
    cross-CPU wakeups; the steadiest and highest context-switch rate this machine reaches.
    (Unpinned, the two pairs sometimes end up split across CPUs and run ~3x slower.)"""
    n = os.cpu_count() or 1

    def argv(s, w):
        t = f"{max(1, round(s))}s"
        one = " & ".join(f"stress-ng --switch 1 --taskset {c} -t {t} --metrics-brief" for c in range(n))
        return ["sh", "-c", f"{one}; wait"]

    return Workload("switch-pinned", f"`stress-ng --switch 1 --taskset N` on each of the {n} CPUs "
                    "(highest context-switch rate)", "bogo ops/s", argv,
                    lambda t: parse_stress_ng_sum(t, "switch"))


def _fio_prepare(work: Path) -> None:
    run_cmd(["fio", "--name=prep", f"--filename={work / 'fio.dat'}", "--rw=write", "--bs=1M", "--size=64M",
             "--direct=1"], timeout=120)


def fio_workload() -> Workload:
    return Workload(
        "fio", "`fio` 4 KiB random reads, O_DIRECT, 2 jobs, QD1 (block IRQs, sleep/wake per I/O)", "IOPS",
        lambda s, w: ["fio", "--name=lsbench", f"--filename={w / 'fio.dat'}", "--rw=randread", "--direct=1",
                      "--bs=4k", "--size=64M", "--ioengine=psync", "--numjobs=2", "--group_reporting",
                      f"--runtime={s}", "--time_based", "--output-format=json"],
        parse_fio_iops, prepare=_fio_prepare, modules="isolation,irq")


def fault_workload() -> Workload:
    """Page faults and TLB shootdowns: every loop maps, writes and unmaps
    32 MiB (~0.7 M minor faults/s on this machine kind)."""
    return Workload(
        "vm", "`stress-ng --vm 2 --vm-bytes 32M --vm-method write64` (page faults, TLB shootdowns)", "bogo ops/s",
        lambda s, w: ["stress-ng", "--vm", "2", "--vm-bytes", "32M", "--vm-method", "write64",
                      "-t", f"{max(1, round(s))}s", "--metrics-brief"],
        lambda t: parse_stress_ng(t, "vm"), modules="memory")


# --------------------------------------------------------------------------- tracers

class Tracer:
    """Start fully (ready before the workload), stop, report what it saw."""
    name = "?"
    label = "?"

    def available(self) -> Optional[str]:
        """None when usable, else why not."""
        return None

    def start(self, work: Path, tag: str) -> None:
        pass

    def stop(self) -> dict:
        return {}

    def for_workload(self, wl: "Workload") -> None:
        """Record what matches WL (its modules); by default the same everywhere."""


class Untraced(Tracer):
    name, label = "untraced", "untraced"


class LatencyScopeRecord(Tracer):
    name, label = "latencyscope", "latencyscope-record --modules isolation"
    modules = "isolation"

    def __init__(self, extra: Optional[List[str]] = None, prefix: Optional[List[str]] = None):
        self.extra = extra or []
        self.prefix = prefix or []  # e.g. ["chrt", "-f", "1"]: exec'ed, so the pid stays the recorder's

    def for_workload(self, wl):
        if self.label == f"latencyscope-record --modules {self.modules}":
            self.label = f"latencyscope-record --modules {wl.modules}"
        self.modules = wl.modules

    def available(self):
        return None if (BIN / "latencyscope-record").exists() else f"{BIN}/latencyscope-record not found"

    def start(self, work, tag):
        self.path = work / f"{tag}.lscope"
        for p in (self.path, Path(str(self.path) + ".partial")):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        self.child = Child(tag + ".record", [*self.prefix, str(BIN / "latencyscope-record"), "-o", str(self.path),
                                             "--modules", self.modules, "-q", *self.extra], work).start()
        ready = Path(str(self.path) + ".partial") / "manifest.json"
        if not self.child.wait_for(ready.exists, 60):
            self.child.stop()
            raise RuntimeError(f"latencyscope-record did not start: {self.child.text()[-500:]}")
        self.t_ready = time.monotonic()
        self.cpu_ready = proc_cpu_s(self.child.proc.pid)
        self.sched_ready = sched_stat(self.child.proc.pid)

    def stop(self):
        cpu_before_stop = proc_cpu_s(self.child.proc.pid)
        sched_before_stop = sched_stat(self.child.proc.pid)
        t_stop = time.monotonic()
        rc = self.child.stop(signal.SIGINT)
        info = {"rc": rc, "window_s": t_stop - self.t_ready, "cpu_total_s": self.child.cpu_s,
                "cpu_window_s": (cpu_before_stop - self.cpu_ready)
                if cpu_before_stop is not None and self.cpu_ready is not None else None,
                "user_total_s": self.child.rusage.ru_utime, "sys_total_s": self.child.rusage.ru_stime}
        if self.sched_ready and sched_before_stop:
            info["oncpu_window_s"] = sched_before_stop[0] - self.sched_ready[0]
            info["runqueue_wait_window_s"] = sched_before_stop[1] - self.sched_ready[1]
            info["timeslices_window"] = sched_before_stop[2] - self.sched_ready[2]
        if rc == 0 and self.path.exists():
            m = capture_manifest(self.path)
            rec = m.get("recorder", {})
            info.update(events=sum(m.get("events", {}).values()), lost=sum(m.get("lost", {}).values()),
                        **{k: rec.get(k) for k in RECORDER_DIAGNOSTICS},
                        events_by_kind=m.get("events"), lost_by_kind=m.get("lost"),
                        ring_bytes={k: v.get("ring_bytes") for k, v in m.get("tables", {}).items()},
                        bytes=self.path.stat().st_size, path=str(self.path),
                        duration_s=(m["window"]["end_ns"] - m["window"]["start_ns"]) / 1e9)
        else:
            info["error"] = self.child.text()[-500:]
        return info


class PerfSched(Tracer):
    name, label = "perf", "perf sched record"

    def __init__(self, extra=()):
        self.extra = list(extra)  # e.g. ["-m", "512M"]: a buffer big enough to lose nothing

    def available(self):
        return None if have("perf") else "perf not installed"

    def start(self, work, tag):
        self.path = work / f"{tag}.perf.data"
        ctl, ack = work / f"{tag}.ctl", work / f"{tag}.ack"
        for p in (ctl, ack):
            if p.exists():
                p.unlink()
            os.mkfifo(p)
        # Start disabled and enable through the control fifo: "ack" means events are on.
        self.child = Child(tag + ".perf", ["perf", "sched", "record", *self.extra, "-o", str(self.path), "-D", "-1",
                                           "--control", f"fifo:{ctl},{ack}"], work).start()
        self.ctl = os.open(ctl, os.O_RDWR)
        self.ack = os.open(ack, os.O_RDWR)
        os.write(self.ctl, b"enable\n")
        import select
        r, _, _ = select.select([self.ack], [], [], 30)
        if not r:
            self.child.stop()
            raise RuntimeError(f"perf sched record did not start: {self.child.text()[-500:]}")
        os.read(self.ack, 64)
        self.t_ready = time.monotonic()

    def stop(self):
        rc = self.child.stop(signal.SIGINT, timeout=300)
        for fd in (self.ctl, self.ack):
            os.close(fd)
        text = self.child.text()
        info = {"rc": rc, "cpu_total_s": self.child.cpu_s, "events": parse_perf_samples(text),
                "bytes": self.path.stat().st_size if self.path.exists() else None, "path": str(self.path)}
        m = re.search(r"lost (\d+)", text, re.I)
        info["lost_note"] = m.group(0) if m else None
        if self.path.exists():
            try:
                r = run_cmd(["perf", "report", "--stats", "-i", str(self.path)], timeout=300)
                info["events_by_kind"] = parse_perf_stats(r.stdout)
            except subprocess.TimeoutExpired:
                pass
        return info


def _tp_args(tps):
    out = []
    for tp in tps:
        out += ["-e", tp]
    return out


class _OnModuleTracepoints(Tracer):
    """A tracer that enables the tracepoints latencyscope-record attaches for
    the workload's modules (``self.tps``)."""
    tps = ISOLATION_TPS

    def for_workload(self, wl):
        self.tps = module_tracepoints(wl.modules)


class TraceCmd(_OnModuleTracepoints):
    name, label = "trace-cmd", "trace-cmd record -e (LatencyScope's tracepoints)"

    def __init__(self):
        self._why = None

    def available(self):
        if not have("trace-cmd"):
            return "trace-cmd not installed"
        if self._why is None:
            self._why = self._probe()
        return self._why or None

    def _probe(self) -> str:
        """trace-cmd record writes /proc/sys/kernel/ftrace_enabled even for events only."""
        with tempfile.TemporaryDirectory() as d:
            try:
                r = run_cmd(["trace-cmd", "record", *_tp_args(ISOLATION_TPS), "-o", f"{d}/probe.dat",
                             "sleep", "0.2"], timeout=30)
            except subprocess.TimeoutExpired:
                return "trace-cmd record hung in a 0.2 s probe"
            msg = (r.stdout + r.stderr).strip().splitlines()
            if r.returncode != 0 or any("Operation not permitted" in m for m in msg):
                detail = " / ".join(m.strip() for m in msg[-2:])
                fe = Path("/proc/sys/kernel/ftrace_enabled")
                try:
                    with open(fe, "w") as f:
                        f.write(fe.read_text().strip())
                    extra = ""
                except OSError as exc:
                    extra = f"; writing {fe} as root gives {exc.strerror} (locked by this kernel/VM)"
                return f"`trace-cmd record` fails: \"{detail}\"{extra}"
            return ""

    def start(self, work, tag):
        self.path = work / f"{tag}.trace.dat"
        self.child = Child(tag + ".trace-cmd", ["trace-cmd", "record", *_tp_args(self.tps),
                                                "-o", str(self.path)], work).start()
        if not self.child.wait_for(lambda: "Hit Ctrl^C" in self.child.text(), 30):
            self.child.stop()
            raise RuntimeError(f"trace-cmd did not start: {self.child.text()[-300:]}")

    def stop(self):
        rc = self.child.stop(signal.SIGINT, timeout=300)
        return {"rc": rc, "cpu_total_s": self.child.cpu_s,
                "bytes": self.path.stat().st_size if self.path.exists() else None}


class Ftrace(_OnModuleTracepoints):
    """The kernel path trace-cmd record drives (tracefs events into the ftrace ring buffer).

    Without trace-cmd's reader threads (the buffer is read once at the end
    with `trace-cmd extract`), so its cost is a lower bound of trace-cmd's.
    """
    name, label = "ftrace", "ftrace events via tracefs (trace-cmd's kernel path, no reader)"

    def __init__(self, buffer_kb: int = 65536):
        self.buffer_kb = buffer_kb

    def available(self):
        return None if (TRACEFS / "events/sched/sched_switch/enable").exists() else "tracefs not mounted"

    def _w(self, rel, val):
        (TRACEFS / rel).write_text(str(val))

    def start(self, work, tag):
        self.work, self.tag = work, tag
        self.saved = {"buffer_size_kb": (TRACEFS / "buffer_size_kb").read_text().split()[0],
                      "tracing_on": (TRACEFS / "tracing_on").read_text().strip()}
        self._w("tracing_on", 0)
        self._w("trace", "")
        self._w("buffer_size_kb", self.buffer_kb)
        for tp in self.tps:
            self._w(f"events/{tp.replace(':', '/')}/enable", 1)
        self._w("tracing_on", 1)
        LIVE_FTRACE.append(self)

    def stop(self, extract: bool = False):
        if self in LIVE_FTRACE:
            LIVE_FTRACE.remove(self)
        self._w("tracing_on", 0)
        entries = overrun = 0
        for st in sorted(TRACEFS.glob("per_cpu/cpu*/stats")):
            t = st.read_text()
            entries += int(re.search(r"^entries: (\d+)", t, re.M).group(1))
            overrun += int(re.search(r"^overrun: (\d+)", t, re.M).group(1))
        info = {"events": entries, "lost": overrun, "buffer_kb_per_cpu": self.buffer_kb}
        if extract and have("trace-cmd"):
            path = self.work / f"{self.tag}.trace.dat"
            r = run_cmd(["trace-cmd", "extract", "-o", str(path)], timeout=300)
            if path.exists():
                info["bytes"] = path.stat().st_size
                info["path"] = str(path)
            else:
                info["error"] = (r.stdout + r.stderr)[-300:]
        for tp in self.tps:
            self._w(f"events/{tp.replace(':', '/')}/enable", 0)
        self._w("trace", "")
        self._w("buffer_size_kb", self.saved["buffer_size_kb"])
        self._w("tracing_on", self.saved["tracing_on"])
        return info


class Runqlat(Tracer):
    name, label = "runqlat", "bcc runqlat (in-kernel histogram)"
    path = "/usr/sbin/runqlat-bpfcc"

    def available(self):
        return None if Path(self.path).exists() else f"{self.path} not found"

    def start(self, work, tag):
        self.child = Child(tag + ".runqlat", [self.path], work, env={"PYTHONUNBUFFERED": "1"}).start()
        if not self.child.wait_for(lambda: "Tracing" in self.child.text(), 60):
            self.child.stop()
            raise RuntimeError(f"runqlat did not start: {self.child.text()[-300:]}")

    def stop(self):
        rc = self.child.stop(signal.SIGINT)
        return {"rc": rc, "cpu_total_s": self.child.cpu_s}


class EmptyBpf(Tracer):
    name, label = "empty-bpf", "empty BPF program on latencyscope-record's tracepoints (floor)"

    def __init__(self, tps=None, clock: bool = False):
        self.tps = tps or LS_ISOLATION_TPS
        self.fixed = tps is not None
        self.clock = clock   # programs that read the clock once (the floor of a timestamped event)
        if clock:
            self.name = "clock-bpf"
            self.label = ("BPF program that only reads the clock, on latencyscope-record's tracepoints "
                          "(floor of a tracer that timestamps each event)")

    def for_workload(self, wl):
        if not self.fixed:
            self.tps = module_programs(wl.modules)

    def available(self):
        return None if Path(self.python).exists() else f"{self.python} not found"

    @property
    def python(self) -> str:
        # tp_btf programs are loaded through the project (record/btf.py): its venv
        return str(BIN / "python") if any(t.startswith("tp_btf:") for t in self.tps) else SYS_PYTHON

    def start(self, work, tag):
        args = [self.python, str(HERE / "empty_bpf.py"), *(["--clock"] if self.clock else []), *self.tps]
        self.child = Child(tag + (".clock" if self.clock else ".empty"), args, work).start()
        if not self.child.wait_for(lambda: "ready" in self.child.out.read_text(), 60):
            self.child.stop()
            raise RuntimeError(f"empty_bpf.py did not start: {self.child.text()[-300:]}")

    def stop(self):
        return {"rc": self.child.stop(signal.SIGINT)}


# --------------------------------------------------------------------------- parts

@dataclass
class Config:
    work: Path
    seconds: float
    repeats: int
    quick: bool
    big: bool
    big_events: int
    big_rss_kill_bytes: int
    quiet_wait: float = 20.0
    analysis_repeats: int = 5
    log: Callable[[str], None] = print


def part_observer(cfg: Config, workloads: List[Workload], tracers: List[Tracer]) -> dict:
    out = {"seconds": cfg.seconds, "repeats": cfg.repeats, "quiet_wait": cfg.quiet_wait, "workloads": {}}
    usable = []
    skipped = {}
    for t in tracers:
        why = t.available()
        if why:
            skipped[t.name] = why
        else:
            usable.append(t)
    out["skipped"] = skipped
    out["tracers"] = {t.name: t.label for t in tracers}
    for wl in workloads:
        if wl.prepare:
            wl.prepare(cfg.work)
        here = [t for t in usable if not getattr(t, "only", None) or wl.name in t.only]
        runs: Dict[str, List[dict]] = {t.name: [] for t in here}
        labels = {}
        for t in here:
            t.for_workload(wl)
            labels[t.name] = t.label
        for rep in range(cfg.repeats):
            # rotate the order each repetition: drift and warm-up spread over every tracer
            order = here[rep % len(here):] + here[:rep % len(here)]
            for t in order:
                tag = f"obs-{wl.name}-{t.name}-{rep}"
                idle_before = 1 - wait_quiet(cfg.quiet_wait)
                foreign = foreign_sched_progs()
                try:
                    t.start(cfg.work, tag)
                    tpid = t.child.proc.pid if getattr(t, "child", None) else None
                    tcpu0 = proc_cpu_s(tpid) if tpid else 0.0
                    meas = wl.run_measured(cfg.seconds, cfg.work)
                    tcpu1 = proc_cpu_s(tpid) if tpid else 0.0
                    value = meas["value"]
                    info = t.stop()
                except Exception as exc:  # one failing tracer must not sink the suite
                    cfg.log(f"    {t.name}: {exc}")
                    runs[t.name].append({"value": None, "error": str(exc)[:300]})
                    continue
                for k in ("path",):
                    p = info.pop(k, None)
                    if p and Path(p).exists():
                        Path(p).unlink()
                tracer_cpu = (tcpu1 - tcpu0) if tcpu0 is not None and tcpu1 is not None else 0.0
                other = meas["busy_cpu_s"] - (meas["workload_cpu_s"] or 0) - tracer_cpu
                runs[t.name].append({"value": value, "foreign_progs": foreign, "idle_before": idle_before,
                                     "tracer_cpu_window_s": tracer_cpu, "other_cpu_s": other,
                                     **{k: v for k, v in info.items()
                                        if k in ("events", "lost", "cpu_total_s", "lost_by_kind",
                                                 *RECORDER_DIAGNOSTICS)}})
                cfg.log(f"    {wl.name:8s} rep {rep} {t.name:12s} {value if value is None else round(value):>10} "
                        f"{wl.unit}" + (f"  events {info.get('events')} lost {info.get('lost')}"
                                        if "events" in info else ""))
        base = [r["value"] for r in runs.get("untraced", [])]
        base_med = statistics.median([b for b in base if b]) if any(base) else None
        table = {}
        for name, rs in runs.items():
            vals = [r["value"] for r in rs]
            table[name] = {"values": vals, "ratio": summarize(paired_ratios(vals, base)), "runs": rs}
        out["workloads"][wl.name] = {"label": wl.label, "unit": wl.unit, "untraced_median": base_med,
                                     "modules": wl.modules, "tracer_labels": labels, "tracers": table}
    return out


def bpftool_progs() -> List[dict]:
    r = run_cmd(["bpftool", "prog", "show", "-j"], timeout=30)
    return json.loads(r.stdout or "[]")


def prog_ids_of(pid: int) -> List[int]:
    """Ids of the BPF programs a process holds (its fds' fdinfo), so that other
    people's programs on the same tracepoints are never mistaken for ours."""
    ids = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            m = re.search(r"^prog_id:\s*(\d+)", Path(f"/proc/{pid}/fdinfo/{fd}").read_text(), re.M)
        except OSError:
            continue
        if m:
            ids.append(int(m.group(1)))
    return ids


def foreign_sched_progs() -> int:
    """Tracing BPF programs attached by anyone else right now (noise in the observer runs)."""
    try:
        return sum(1 for p in bpftool_progs() if p.get("type") in ("tracepoint", "raw_tracepoint", "tracing"))
    except Exception:
        return -1


def part_bpf_cost(cfg: Config) -> dict:
    """Repeated: the rate stress-ng reaches (hence ring contention) differs from run to run."""
    if not have("bpftool"):
        return {"skipped": "bpftool not installed"}
    runs = [cost_once(cfg, f"cost{i}") for i in range(cfg.repeats)]
    tps = sorted({tp for r in runs for tp in r["programs"]})

    def over_runs(key: str) -> dict:
        return {tp: summarize([r["programs"][tp][key] for r in runs if key in r["programs"].get(tp, {})])
                for tp in tps}
    return {"runs": runs, "ratio": over_runs("ratio"), "clock_ratio": over_runs("clock_ratio"),
            "seconds": runs[0]["seconds"], "note": runs[0]["note"]}


def cost_once(cfg: Config, tag: str) -> dict:
    """One run: LatencyScope beside an empty program, then, in a window of its own,
    the clock-only program beside another empty one.  The two programs that read
    the clock never share a tracepoint: on this host the first program to read the
    clock in a tracepoint call paid ~50 ns more than any program after it
    (2026-12-05: 155 vs 100 ns on sched_switch, either order), so sharing would
    flatter whichever ran second."""
    stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    old = stats.read_text().strip()
    seconds = max(2.0, cfg.seconds)
    rows: Dict[str, dict] = {}
    out = {"seconds": seconds, "programs": rows}
    try:
        stats.write_text("1")
        for window, (other, who) in enumerate(((LatencyScopeRecord(), "latencyscope"),
                                               (EmptyBpf(clock=True), "clock"))):
            busy = wait_quiet(cfg.quiet_wait)
            empty = EmptyBpf()
            empty.start(cfg.work, f"{tag}w{window}")
            try:
                other.start(cfg.work, f"{tag}w{window}")
                try:
                    value = switch_workload(2).run(seconds, cfg.work)
                    mine = {i: who for i in prog_ids_of(other.child.proc.pid)}
                    mine.update({i: "empty" if who == "latencyscope" else "empty_clock_window"
                                 for i in prog_ids_of(empty.child.proc.pid)})
                    progs = [p for p in bpftool_progs() if p.get("id") in mine]
                finally:
                    info = other.stop()
            finally:
                empty.stop()
            if who == "latencyscope":
                out.update(workload_ops_s=value, busy_before=busy,
                           capture={k: info.get(k) for k in ("events", "lost")}, offered_events_per_s=None)
                if info.get("duration_s"):
                    out["offered_events_per_s"] = ((info.get("events") or 0) + (info.get("lost") or 0)) / info["duration_s"]
            for p in progs:
                name = p.get("name", "")
                m = re.match(r"(tracepoint|empty|clock)__(\w+?)__(\w+)$", name)
                b = re.match(r"(ls|e|k)_btf_(\w+)$", name)
                if not (m or b) or not p.get("run_cnt"):
                    continue
                tp = f"{m.group(2)}:{m.group(3)}" if m else "sched:" + BTF_EVENT_OF[b.group(2)]
                rows.setdefault(tp, {})[mine[p["id"]]] = {
                    "id": p["id"], "name": name, "run_cnt": p["run_cnt"], "run_time_ns": p["run_time_ns"],
                    "ns_per_event": p["run_time_ns"] / p["run_cnt"], "insns": p.get("bytes_xlated", 0) // 8 or None}
    finally:
        stats.write_text(old)
    for tp, r in rows.items():
        if "latencyscope" in r and "empty" in r:
            r["ratio"] = r["latencyscope"]["ns_per_event"] / r["empty"]["ns_per_event"]
        if "clock" in r and "empty_clock_window" in r:
            r["clock_ratio"] = r["clock"]["ns_per_event"] / r["empty_clock_window"]["ns_per_event"]
    out["note"] = ("ns/event is run_time_ns / run_cnt from bpftool; runs counted while bpf_stats_enabled=1. "
                   "run_time_ns covers the program only, not the tracepoint's argument copy. LatencyScope and "
                   "the clock-only program each ran in a window of their own beside an empty program (the "
                   "clock-only ratio is to its own window's empty program): the first program to read the "
                   "clock in a tracepoint call pays more than a later one, so they must not share one.")
    return out


def part_loss(cfg: Config) -> dict:
    """Repeated; the headline is the run with the highest offered rate (recorded + lost).

    When the default rings lose events, larger ones (--ring-scale) are tried to find the size
    needed, or to show that ring size is not what limits.
    """
    runs = [loss_once(cfg, f"loss{i}") for i in range(cfg.repeats)]
    scales = []
    if any(r.get("lost") for r in runs):
        for scale in (4, 16):
            r = loss_once(cfg, f"loss-x{scale}", scale)
            scales.append(r)
            if r.get("events") and not r.get("lost"):
                break
        # Diagnostic: is it the drain's speed or its scheduling?  Same default rings, higher priority.
        for prefix in (["nice", "-n", "-10"], ["chrt", "-f", "1"]):
            scales.append(loss_once(cfg, f"loss-{prefix[0]}", 1, prefix))
    ok = [r for r in runs if r.get("events")]
    if not ok:
        return {"runs": runs, "error": "no run produced a capture"}
    top = max(ok, key=lambda r: r.get("offered_events_per_s", 0))
    return {**top, "runs": runs, "ring_scale_runs": scales, "lost_all_runs": sum(r.get("lost") or 0 for r in ok),
            "events_all_runs": sum(r["events"] for r in ok)}


def loss_once(cfg: Config, tag: str, ring_scale: float = 1, prefix: Optional[List[str]] = None) -> dict:
    busy = wait_quiet(cfg.quiet_wait)
    ls = LatencyScopeRecord([] if ring_scale == 1 else ["--ring-scale", str(ring_scale)], prefix)
    ls.start(cfg.work, tag)
    wl = pinned_switch_workload()
    seconds = max(3.0, cfg.seconds)
    value = wl.run(seconds, cfg.work)
    info = ls.stop()
    ev = info.get("events") or 0
    res = {"workload": wl.label, "seconds": seconds, "workload_ops_s": value, "busy_before": busy,
           "ring_scale": ring_scale, "prefix": " ".join(prefix or []), **info}
    res.pop("path", None)
    if ev and info.get("duration_s"):
        res["events_per_s"] = ev / info["duration_s"]
        res["lost_events_per_s"] = (info.get("lost") or 0) / info["duration_s"]
        res["offered_events_per_s"] = (ev + (info.get("lost") or 0)) / info["duration_s"]
        if info.get("cpu_window_s") is not None:
            res["cpu_us_per_event_window"] = 1e6 * info["cpu_window_s"] / ev
        res["cpu_s_per_M_events_total"] = 1e6 * info["cpu_total_s"] / ev
        res["user_us_per_event_total"] = 1e6 * info["user_total_s"] / ev
    return res


PERF_ANALYSIS_BUFFER = ["-m", "512M"]


def part_drain(cfg: Config) -> dict:
    """The recorder's drain, merge, compression and writes fed by rings this
    benchmark fills (benchmarks/drain_feed.py): its capacity, above what the
    workloads here can produce.  Repeated; the median run by events per CPU-second."""
    import drain_feed

    events = 1_000_000 if cfg.quick else 10_000_000
    runs = [drain_feed.measure(events, cfg.work) for _ in range(1 if cfg.quick else 3)]
    rates = [r["events_per_cpu_s"] for r in runs if r.get("events_per_cpu_s")]
    return {"runs": runs, "median_events_per_cpu_s": statistics.median(rates) if rates else None,
            "kinds": drain_feed.KINDS, "chunks_per_poll": drain_feed.CHUNKS_PER_POLL}


def part_capture_and_analysis(cfg: Config) -> dict:
    """Same workload, LatencyScope and perf recording at the same time; then sizes and analysis."""
    res: dict = {}
    # perf's default buffer loses most events at this rate, and then its
    # analysis has far less to chew: give it a buffer that loses nothing, so
    # both analyzers get the same events.
    ls, perf = LatencyScopeRecord(), PerfSched(extra=PERF_ANALYSIS_BUFFER)
    if perf.available():
        return {"skipped": perf.available()}
    busy = wait_quiet(cfg.quiet_wait)
    seconds = max(2.0, cfg.seconds)
    perf.start(cfg.work, "same")
    ls.start(cfg.work, "same")
    value = switch_workload(2).run(seconds, cfg.work)
    ls_info = ls.stop()
    perf_info = perf.stop()
    res["recording"] = {"workload": "stress-ng --switch 2", "seconds": seconds, "ops_s": value}
    res["latencyscope"] = {k: ls_info.get(k) for k in ("events", "lost", "bytes", "events_by_kind", "compression")}
    res["perf"] = {k: perf_info.get(k) for k in ("events", "bytes", "lost_note", "events_by_kind")}
    for d in (res["latencyscope"], res["perf"]):
        if d.get("events") and d.get("bytes"):
            d["bytes_per_event"] = d["bytes"] / d["events"]

    # trace.dat: the same events through ftrace, alone, read out with trace-cmd extract
    ft = Ftrace()
    if not ft.available() and have("trace-cmd"):
        ft.start(cfg.work, "same")
        switch_workload(2).run(min(seconds, 2.0), cfg.work)
        fi = ft.stop(extract=True)
        if fi.get("bytes") and fi.get("events"):
            fi["bytes_per_event"] = fi["bytes"] / fi["events"]
        fi.pop("path", None)
        res["trace_dat"] = fi

    # analysis speed and memory: interleaved, repeated; the median run by wall time stands for each tool
    runs: Dict[str, List[dict]] = {}
    analyzer = analyze_command()
    for _ in range(cfg.analysis_repeats):
        if perf_info.get("path") and Path(perf_info["path"]).exists():
            runs.setdefault("perf sched latency", []).append(
                timed(["perf", "sched", "latency", "-i", perf_info["path"]], perf_info.get("events"), timeout=600))
        if not isinstance(analyzer, str) and ls_info.get("path"):
            runs.setdefault("latencyscope-analyze", []).append(
                timed(analyzer + [ls_info["path"]], ls_info.get("events"), timeout=600))
    ana = {name: median_run(rs) for name, rs in runs.items()}
    if isinstance(analyzer, str):
        ana["latencyscope-analyze"] = {"skipped": analyzer}
    shared = {"perf sched latency": shared_events(perf_info.get("events_by_kind") or {}) or perf_info.get("events"),
              "latencyscope-analyze": ls_info.get("events")}
    for name, d in ana.items():
        if shared.get(name) and d.get("wall_s") and not d.get("killed"):
            d["shared_events"] = shared[name]
            d["shared_events_per_s"] = shared[name] / d["wall_s"]
    res["analysis"] = ana
    return res


def median_run(rs: List[dict]) -> dict:
    """The run with the median wall time, with every run's wall time and the largest peak RSS."""
    ok = [r for r in rs if r.get("wall_s") is not None]
    if not ok:
        return rs[-1]
    d = dict(sorted(ok, key=lambda r: r["wall_s"])[(len(ok) - 1) // 2])
    d["wall_s_runs"] = [r["wall_s"] for r in rs]
    d["rss_bytes"] = max(r.get("rss_bytes") or 0 for r in ok)
    return d


def analyze_command():
    """argv prefix of the analyzer's report command, or why it is not usable yet."""
    exe = BIN / "latencyscope-analyze"
    if not exe.exists():
        return f"{exe} not found"
    try:
        r = run_cmd([str(exe), "report", "--help"], timeout=60)
    except subprocess.TimeoutExpired:
        return "latencyscope-analyze report --help timed out"
    if r.returncode != 0:
        return ("`latencyscope-analyze report` is not available yet: "
                + ((r.stderr or r.stdout).strip().splitlines() or ["?"])[-1][:200])
    # Our modules' bytecode up to date first: where .pyc files are not written
    # (PYTHONDONTWRITEBYTECODE), every timed run would compile what changed since
    # the venv was made (~70 ms of a 0.8 s analysis on 2026-12-04).  The Makefile
    # holds the list of packages.
    try:
        run_cmd(["make", "-s", "-C", str(REPO), "bytecode"], timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        pass  # timed with whatever bytecode there is: slower, never wrong
    return [str(exe), "report", "--modules", "isolation"] if "--modules" in r.stdout else [str(exe), "report"]


def timed(argv: List[str], events: Optional[int], timeout: float, rss_kill: Optional[int] = None) -> dict:
    """Run under GNU time -v; wall, peak RSS, events/s.  Killed when over rss_kill bytes or timeout."""
    tv = "/usr/bin/time"
    if not Path(tv).exists():
        return {"skipped": "/usr/bin/time not installed"}
    wait_quiet(10.0)
    with tempfile.NamedTemporaryFile("w+", suffix=".time") as tf, \
            tempfile.TemporaryFile("w+b") as out:
        t0 = time.monotonic()
        p = subprocess.Popen([tv, "-v", "-o", tf.name, *argv], stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        killed = None
        peak = 0
        while p.poll() is None:
            time.sleep(0.2)
            if rss_kill:
                rss = _tree_rss(p.pid)
                peak = max(peak, rss)
                if rss > rss_kill:
                    killed = f"killed at {fmt_bytes(rss)} RSS (limit {fmt_bytes(rss_kill)})"
            if time.monotonic() - t0 > timeout:
                killed = f"killed after {timeout:.0f} s"
            if killed:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                break
        wall = time.monotonic() - t0
        out.seek(0)
        err = out.read().decode(errors="replace")
        tf.seek(0)
        res = parse_time_v(tf.read())
    res.setdefault("wall_s", wall)
    if killed:
        res.update(killed=killed, wall_s=wall, rss_bytes=max(peak, res.get("rss_bytes", 0)))
    res["events"] = events
    if events and res.get("wall_s") and not killed:
        res["events_per_s"] = events / res["wall_s"]
    if res.get("exit") not in (None, 0, 1, 2):
        res["error"] = err.strip()[-300:]
    # the tool's own caveats (perf: "INFO: 50.8% lost events ...")
    info = [ln.strip() for ln in err.splitlines() if ln.strip().startswith("INFO:")]
    if info:
        res["info"] = info[:3]
    return res


def _tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants (GNU time's child is what matters)."""
    try:
        kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        kids = []
    return _self_rss(pid) + sum(_tree_rss(k) for k in kids)


def _self_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def part_big(cfg: Config) -> dict:
    sys.path.insert(0, str(HERE))
    import gen_capture

    path = cfg.work / "big.lscope"
    t0 = time.monotonic()
    gen_capture.generate(str(path), cfg.big_events)
    gen_s = time.monotonic() - t0
    res = {"events": cfg.big_events, "generate_s": gen_s, "bytes": path.stat().st_size}
    analyzer = analyze_command()
    if isinstance(analyzer, str):
        res["skipped"] = analyzer
    else:
        res["analysis"] = timed(analyzer + [str(path)], cfg.big_events, timeout=900,
                                rss_kill=cfg.big_rss_kill_bytes)
    path.unlink()
    return res


# --------------------------------------------------------------------------- environment

# --------------------------------------------------------------------------- syscall tracing cost

SYSCALL_LOOP_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
/* CPU time of this thread: time other tasks take from the CPU is not counted. */
static long long now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    for (int r = 0; r < rounds; r++) {
        long long t0 = now();
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        printf("%.2f\n", (double)(now() - t0) / n);
        fflush(stdout);
    }
    return 0;
}
"""
SYSCALL_RAW_TPS = ["raw_tp:sys_enter", "raw_tp:sys_exit"]
SYSCALL_CLASSIC_TPS = ["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"]


def _syscall_record(*extra: str) -> "LatencyScopeRecord":
    t = LatencyScopeRecord(extra=list(extra))
    t.modules = "syscall"
    return t


def syscall_loop_ns(binary: Path, cpu: int, calls: int, rounds: int) -> Optional[float]:
    """ns (thread CPU time) per getppid of an untraced process pinned on CPU: the median of ROUNDS loops."""
    r = run_cmd(["taskset", "-c", str(cpu), str(binary), str(calls), str(rounds)], timeout=300)
    vals = [float(x) for x in r.stdout.split()]
    return statistics.median(vals) if vals else None


def part_syscall(cfg: Config) -> dict:
    """Cost of --modules syscall on a process that is NOT the --pid target.

    A tiny C loop of getppid (raw syscall, no libc caching) is timed untraced,
    under an empty raw tracepoint program on sys_enter+sys_exit (the floor of
    the mechanism), under empty classic raw_syscalls programs (the floor of
    the mechanism used before), under ``latencyscope-record --modules syscall
    --pid SLEEPER`` (another process is the target) and without --pid
    (futex/sleep system-wide); configurations interleaved, repeated.  Then
    bpf_stats ns/run of each of the module's programs beside an empty raw
    tracepoint program on the same hook, same run.
    """
    if not have("gcc"):
        return {"skipped": "gcc not installed"}
    src, binary = cfg.work / "syscall_loop.c", cfg.work / "syscall_loop"
    src.write_text(SYSCALL_LOOP_C)
    r = run_cmd(["gcc", "-O2", "-o", str(binary), str(src)], timeout=120)
    if r.returncode:
        return {"skipped": f"gcc failed: {r.stderr[-300:]}"}
    calls = 500_000 if cfg.quick else 2_000_000
    rounds = 5
    cpu = 0
    sleeper = Child("syscall.target", ["sleep", "100000"], cfg.work).start()
    target = sleeper.proc.pid
    configs = [
        ("untraced", "untraced", lambda: None),
        ("empty-raw", "empty raw tracepoint programs on sys_enter + sys_exit (floor)",
         lambda: EmptyBpf(SYSCALL_RAW_TPS)),
        ("empty-classic", "empty classic programs on raw_syscalls:sys_enter + sys_exit",
         lambda: EmptyBpf(SYSCALL_CLASSIC_TPS)),
        ("ls-pid-other", "latencyscope-record --modules syscall --pid OTHER",
         lambda: _syscall_record("--pid", str(target))),
        ("ls-system-wide", "latencyscope-record --modules syscall (no --pid: futex/sleep of every process)",
         lambda: _syscall_record()),
    ]
    runs: Dict[str, List[float]] = {name: [] for name, _, _ in configs}
    try:
        for i in range(cfg.repeats):
            for name, label, make in configs:
                tracer = make()
                busy = wait_quiet(cfg.quiet_wait)
                if tracer is not None:
                    tracer.start(cfg.work, f"sys{i}-{name}")
                try:
                    v = syscall_loop_ns(binary, cpu, calls, rounds)
                finally:
                    if tracer is not None:
                        tracer.stop()
                cfg.log(f"   {name:16s} {v:8.1f} ns/syscall (busy before {busy:.0%})")
                if v:
                    runs[name].append(v)
        stats = syscall_bpf_stats(cfg, binary, cpu, calls, target)
    finally:
        sleeper.stop(signal.SIGKILL)
    base = statistics.median(runs["untraced"]) if runs["untraced"] else None
    table = {}
    for name, label, _ in configs:
        med = statistics.median(runs[name]) if runs[name] else None
        table[name] = {"label": label, "ns_per_syscall": runs[name], "median_ns": med,
                       "added_ns": (med - base) if med is not None and base is not None else None}
    return {"cpu": cpu, "calls": calls, "rounds": rounds, "repeats": cfg.repeats, "configs": table,
            "bpf_stats": stats,
            "note": "thread CPU ns per getppid of a C loop pinned on one CPU (median of rounds, then of repeats); "
                    "the --pid target is a sleeping process, never the loop."}


def syscall_bpf_stats(cfg: Config, binary: Path, cpu: int, calls: int, target: int) -> dict:
    """bpf_stats ns/run of the syscall module's programs (--pid OTHER) beside empty raw programs."""
    if not have("bpftool"):
        return {"skipped": "bpftool not installed"}
    stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    old = stats.read_text().strip()
    ls = _syscall_record("--pid", str(target))
    empty = EmptyBpf(SYSCALL_RAW_TPS)
    stats.write_text("1")
    try:
        empty.start(cfg.work, "sysstats")
        ls.start(cfg.work, "sysstats")
        loop = syscall_loop_ns(binary, cpu, calls, 3)
        mine = {i: "latencyscope" for i in prog_ids_of(ls.child.proc.pid)}
        mine.update({i: "empty" for i in prog_ids_of(empty.child.proc.pid)})
        progs = [p for p in bpftool_progs() if p.get("id") in mine]
        ls.stop()
        empty.stop()
    finally:
        stats.write_text(old)
    rows = {}
    for p in progs:
        name = p.get("name", "")
        hook = {"sys_enter": "sys_enter", "raw_tracepoint__sys_enter": "sys_enter", "empty__raw_tp__sys_enter": "sys_enter",
                "sys_exit": "sys_exit", "raw_tracepoint__sys_exit": "sys_exit", "empty__raw_tp__sys_exit": "sys_exit"}.get(name)
        hook = hook or ("sys_enter" if name.endswith("sys_enter") else "sys_exit" if name.endswith("sys_exit") else name)
        if not p.get("run_cnt"):
            continue
        rows.setdefault(hook, {})[mine[p["id"]]] = {
            "id": p["id"], "name": name, "type": p.get("type"), "run_cnt": p["run_cnt"],
            "ns_per_run": p["run_time_ns"] / p["run_cnt"], "insns": p.get("bytes_xlated", 0) // 8 or None}
    for r in rows.values():
        if "latencyscope" in r and "empty" in r:
            r["ratio"] = r["latencyscope"]["ns_per_run"] / r["empty"]["ns_per_run"]
    return {"programs": rows, "loop_ns_with_stats": loop,
            "note": "run_time_ns / run_cnt with bpf_stats_enabled=1 (the timing itself adds tens of ns per run "
                    "here, to both columns); nearly every run is a syscall of a process that is not the target."}


def render_syscall(res: dict) -> str:
    """The "Syscall tracing cost" section of docs/benchmarks.md."""
    s = res.get("syscall") or {}
    out = [SYSCALL_SECTION, "", f"Run {res.get('date')} (`{measuring_command(res.get('command') or '')}`), "
           f"kernel {res.get('machine', {}).get('kernel')}, {res.get('machine', {}).get('nproc')} CPUs ({res.get('machine', {}).get('model_name')}).", ""]
    if "skipped" in s:
        return "\n".join(out + [f"Skipped: {s['skipped']}", ""])
    out += ["Cost on a process that is **not** traced: a C loop of `getppid` pinned on CPU "
            f"{s['cpu']} ({s['calls']:,} calls x {s['rounds']} rounds, median; {s['repeats']} interleaved "
            "repeats, median), while the recorder's `--pid` target is another (sleeping) process.", "",
            "| configuration | ns/syscall (median) | added ns/syscall | runs |", "|---|---:|---:|---|"]
    for name, c in s["configs"].items():
        med = "-" if c["median_ns"] is None else f"{c['median_ns']:.0f}"
        add = "-" if c["added_ns"] is None or name == "untraced" else f"{c['added_ns']:+.0f}"
        out.append(f"| {c['label']} | {med} | {add} | {', '.join(f'{v:.0f}' for v in c['ns_per_syscall'])} |")
    st = s.get("bpf_stats") or {}
    out += [""]
    if "skipped" in st:
        out.append(f"bpf_stats skipped: {st['skipped']}")
    else:
        out += ["In-kernel cost per run (bpf_stats) of the module's programs with `--pid OTHER`, beside an "
                "empty raw tracepoint program on the same hook, same run:", "",
                "| hook | program | ns/run | empty ns/run | ratio | runs |", "|---|---|---:|---:|---:|---:|"]
        for hook, r in sorted(st.get("programs", {}).items()):
            ls, em = r.get("latencyscope"), r.get("empty")
            if not ls:
                continue
            out.append(f"| {hook} | {ls['name']} ({ls['type']}) | {ls['ns_per_run']:.1f} | "
                       f"{em['ns_per_run']:.1f} | {r['ratio']:.2f}x | {ls['run_cnt']:,} |" if em else
                       f"| {hook} | {ls['name']} ({ls['type']}) | {ls['ns_per_run']:.1f} | - | - | {ls['run_cnt']:,} |")
        out += ["", st.get("note", "")]
    out += ["", s.get("note", ""), ""]
    return "\n".join(out)


SYSCALL_SECTION = "## Syscall tracing cost"


HISTORY_HEADING = "# History"


def with_history(path: Path, report: str) -> str:
    """REPORT followed by the history kept in PATH (everything from its
    "# History" heading on): a new run replaces the numbers, never the record
    of what each optimization changed."""
    old = path.read_text() if path.exists() else ""
    at = old.find("\n" + HISTORY_HEADING)
    return report if at < 0 else report.rstrip("\n") + "\n\n" + old[at + 1:]


def write_syscall_section(path: Path, section: str) -> None:
    """Replace (or append) the syscall section of PATH, keeping everything else."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find(SYSCALL_SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        # the section ends at the next heading of level 1 or 2
        ends = [i for i in (text.find("\n## ", start + len(SYSCALL_SECTION)),
                            text.find("\n# ", start + len(SYSCALL_SECTION))) if i >= 0]
        nxt = min(ends) if ends else -1
        text = text[:start] + section.rstrip("\n") + "\n" + (text[nxt:] if nxt >= 0 else "")
    path.write_text(text)


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    m = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    return {"nproc": os.cpu_count(), "model_name": m.group(1).strip() if m else "?",
            "kernel": platform.release(), "mem_bytes": int(mem.group(1)) * 1024 if mem else None,
            "python": platform.python_version()}


def tool_versions() -> Dict[str, str]:
    def first(argv):
        try:
            r = run_cmd(argv, timeout=20)
            return ((r.stdout or r.stderr).strip().splitlines() or ["?"])[0]
        except Exception as exc:
            return f"unavailable ({exc.__class__.__name__})"

    out = {"stress-ng": first(["stress-ng", "--version"]), "fio": first(["fio", "--version"]),
           "perf": first(["perf", "--version"]), "trace-cmd": first(["trace-cmd", "--version"]),
           "bpftool": first(["bpftool", "version"]),
           "bcc": first(["dpkg-query", "-W", "-f", "${Version}", "python3-bpfcc"])}
    try:
        import latencyscope
        out["latencyscope"] = latencyscope.__version__
    except ImportError:
        out["latencyscope"] = "?"
    rev = run_cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], timeout=10).stdout.strip()
    dirty = run_cmd(["git", "-C", str(REPO), "status", "--porcelain", "--", "record", "bpf", "schemas", "analyze"],
                    timeout=10).stdout.strip()
    out["latencyscope"] += f" (git {rev}{', recorder/analyzer files modified' if dirty else ''})"
    try:
        import polars
        import pyarrow
        out["polars / pyarrow"] = f"{polars.__version__} / {pyarrow.__version__}"
    except ImportError:
        pass
    return out


# --------------------------------------------------------------------------- report

def relative_slowdown(traced: List[Optional[float]], perf: List[Optional[float]]) -> Optional[float]:
    """A tracer's slowdown over perf's, from the medians of their paired ratios
    (``paired_ratios``); None when either has none or perf's slowdown vanishes."""
    t, p = summarize(traced).get("median"), summarize(perf).get("median")
    return (1 - t) / (1 - p) if t is not None and p is not None and p < 1 else None


def slowdown_ratio_interval(traced: List[Optional[float]], perf: List[Optional[float]],
                            resamples: int = 2000) -> Optional[Tuple[float, float]]:
    """5th-95th percentile of the observer ratio (the tracer's slowdown over perf's,
    from the medians of their paired ratios, ``paired_ratios``) over bootstrap
    resamples of the repetitions: how far the runs' noise alone moves it.  None with
    fewer than 3 repetitions where both ran, or when perf's slowdown vanishes in a
    resample.  Seeded: the same runs render the same text."""
    reps = [(t, p) for t, p in zip(traced, perf) if t is not None and p is not None]
    if len(reps) < 3:
        return None
    rng = random.Random(6)
    out = []
    for _ in range(resamples):
        pick = rng.choices(reps, k=len(reps))
        r = relative_slowdown([t for t, _ in pick], [p for _, p in pick])
        if r is None:
            return None
        out.append(r)
    out.sort()
    return out[int(0.05 * (len(out) - 1))], out[int(0.95 * (len(out) - 1))]


def per_run_ratios(tracers: dict, name: str, reps_per_run: List[int]) -> List[Optional[float]]:
    """NAME's slowdown over perf's in each run a pooled workload (``pool_observer``)
    holds, REPS_PER_RUN repetitions after another: what moves between runs, which
    the bootstrap over pooled repetitions treats as if it moved within one."""
    out, at = [], 0
    base = tracers.get("untraced", {}).get("values") or []
    for n in reps_per_run:
        run = slice(at, at + n)
        out.append(relative_slowdown(paired_ratios(tracers[name]["values"][run], base[run]),
                                     paired_ratios(tracers["perf"]["values"][run], base[run])))
        at += n
    return out


def budgets(res: dict) -> List[dict]:
    """Each budget of issue 6 (and DESIGN.md) -> met / missed with the measured ratio."""
    rows = []

    def row(budget, measured, met):
        rows.append({"budget": budget, "measured": measured,
                     "status": "not measured" if met is None else ("met" if met else "MISSED")})

    for wname in ("switch2", "switch-pinned"):
        wl = res.get("observer", {}).get("workloads", {}).get(wname, {})
        obs = wl.get("tracers", {})
        pf_r = observer_ratio(obs, "perf").get("median") if "perf" in obs else None
        for tname, what in (("latencyscope", "latencyscope-record"),
                            ("latencyscope-rt", "latencyscope-record under `chrt -f 1` (what-if)")):
            ls_r = observer_ratio(obs, tname).get("median") if tname in obs else None
            if ls_r is None or pf_r is None or pf_r >= 1:
                if tname == "latencyscope" and wname == "switch2":
                    row("Observer effect ≤ 1/3 of perf's slowdown", "n/a", None)
                continue
            runs = [r for r in obs[tname]["runs"] if r.get("events") is not None]
            ev = sum(r["events"] for r in runs)
            lost = sum(r.get("lost") or 0 for r in runs)
            lost_share = lost / (ev + lost) if ev + lost else 0.0
            ls_slow, pf_slow = 1 - ls_r, 1 - pf_r
            rel = ls_slow / pf_slow
            # two decimals unless that would round across the budget
            measured = (f"slowdown {fmt_pct(ls_slow)} vs perf {fmt_pct(pf_slow)} → "
                        f"{rel:.{3 if abs(rel - 1 / 3) < 0.005 else 2}f}× of perf's")
            base = obs.get("untraced", {}).get("values") or []
            band = slowdown_ratio_interval(paired_ratios(obs[tname]["values"], base),
                                           paired_ratios(obs["perf"]["values"], base))
            if band:
                measured += f" (90% bootstrap interval of the runs: {band[0]:.2f}× to {band[1]:.2f}×"
                measured += ", which straddles the budget)" if band[0] <= 1 / 3 < band[1] else ")"
            if len(wl.get("pooled_runs") or []) > 1:
                measured += "; each pooled run alone: " + ", ".join(
                    "–" if x is None else f"{x:.2f}×" for x in per_run_ratios(obs, tname, wl["pooled_runs"]))
            clk = observer_ratio(obs, "clock-bpf").get("median") if "clock-bpf" in obs else None
            if clk is not None and tname == "latencyscope":
                measured += (f"; a program that only reads the clock on the same tracepoints: slowdown "
                             f"{fmt_pct(1 - clk)} → {(1 - clk) / pf_slow:.2f}× of perf's")
            if lost_share > 0.01:
                measured += (f"; **but it lost {fmt_pct(lost_share)} of the events**, so the recorder did "
                             f"less work than a lossless one would")
            row(f"Observer effect ≤ 1/3 of `perf sched record`'s slowdown: {what}, "
                f"{res['observer']['workloads'][wname]['label']}", measured,
                rel <= 1 / 3 and lost_share <= 0.01)

    sw = res.get("bpf_cost", {}).get("ratio", {}).get("sched:sched_switch", {})
    if sw:
        runs = res["bpf_cost"]["runs"]
        ns = [(r["programs"]["sched:sched_switch"]["latencyscope"]["ns_per_event"],
               r["programs"]["sched:sched_switch"]["empty"]["ns_per_event"])
              for r in runs if "ratio" in r["programs"].get("sched:sched_switch", {})]
        clock = (res["bpf_cost"].get("clock_ratio") or {}).get("sched:sched_switch") or {}
        row("In-kernel cost per recorded sched_switch ≤ 2× the empty program",
            "median " + f"{sw['median']:.2f}× (runs: "
            + ", ".join(f"{a:.0f}/{b:.0f} ns" for a, b in ns) + f"; max {sw['max']:.2f}×)"
            + (f"; a program that only reads the clock: {clock['median']:.2f}×" if clock else ""),
            sw["median"] <= 2)
    else:
        row("In-kernel cost ≤ 2× empty", "n/a", None)

    loss = res.get("loss", {})
    if loss.get("events"):
        row("Zero lost events at the highest rate this machine produces, default ring size",
            f"{loss.get('lost', 0):,} lost / {loss['events']:,} recorded at an offered "
            f"{loss.get('offered_events_per_s', 0) / 1e3:.0f} k events/s (all {len(loss.get('runs', []))} runs: "
            f"{loss.get('lost_all_runs', 0):,} lost)", loss.get("lost_all_runs", 0) == 0)
        extra = loss.get("ring_scale_runs", [])
        rt = next((r for r in extra if r.get("prefix", "").startswith("chrt") and r.get("events")), None)
        best = max(loss.get("runs", []) + extra, key=lambda r: r.get("events_per_s", 0) if not r.get("lost") else 0)
        fast = [r for r in loss.get("runs", []) if not r.get("lost")]
        top = max(r["events_per_s"] for r in fast) if fast else 0
        # Every default run lossless below 1 M/s: the workload, not the recorder, set the rate.
        capped = bool(fast) and len(fast) == len(loss.get("runs", [])) and top < 1e6
        feed = (res.get("drain") or {}).get("median_events_per_cpu_s")
        row("Drain + write ≥ 1 M events/s sustained with zero loss, default settings (DESIGN.md)",
            (f"best lossless default run {top / 1e3:.0f} k events/s" if fast else "no default run was lossless")
            + (" (every run lossless: the workload produced no more on this machine)" if capped else "")
            + (f"; under `chrt -f 1`: {rt['events_per_s'] / 1e3:.0f} k events/s recorded, {rt.get('lost', 0):,} lost"
               if rt else "")
            + (f"; fed by the benchmark (part 3b): {feed / 1e6:.1f} M events per CPU-second" if feed else
               ("; not measured at 1 M/s" if capped else "")),
            (feed >= 1e6 if feed else None) if capped else bool(fast) and top >= 1e6)
        ref = rt if rt and not rt.get("lost") else (best if not best.get("lost") else None)
        if ref and ref.get("cpu_us_per_event_window") is not None:
            row("Recorder user CPU ≤ 0.2 µs per event (DESIGN.md)",
                f"{ref['cpu_us_per_event_window']:.3f} µs user+sys per event while recording "
                f"({'`' + ref['prefix'] + '` ' if ref.get('prefix') else ''}lossless run at "
                f"{ref['events_per_s'] / 1e3:.0f} k events/s; whole process incl. BCC compile and packing: "
                f"{ref['user_us_per_event_total']:.3f} µs user/event)", ref["cpu_us_per_event_window"] <= 0.2)
        else:
            row("Recorder user CPU ≤ 0.2 µs per event (DESIGN.md)", "no lossless run to measure on", None)
    else:
        row("Zero lost events at the highest rate", "n/a", None)

    ca = res.get("capture", {})
    ana = ca.get("analysis", {})
    p, l = ana.get("perf sched latency", {}), ana.get("latencyscope-analyze", {})
    if p.get("events_per_s") and l.get("events_per_s"):
        # The budget is "on the same events": perf's capture also holds one
        # sched_stat_runtime per switch, which LatencyScope does not record, so
        # events/s count only the events both captures hold (shared_events).
        ps, ls_ = p.get("shared_events_per_s") or p["events_per_s"], l.get("shared_events_per_s") or l["events_per_s"]
        speed = ls_ / ps
        cpu_l = (l.get("user_s") or 0) + (l.get("sys_s") or 0)
        cpu_p = (p.get("user_s") or 0) + (p.get("sys_s") or 0)
        extra = (f"; wall {l['wall_s']:.2f} s vs {p['wall_s']:.2f} s for the same {ca['recording']['seconds']:g} s "
                 f"of workload; counting all of perf's samples {l['events_per_s'] / 1e6:.2f} M vs "
                 f"{p['events_per_s'] / 1e6:.2f} M → {l['events_per_s'] / p['events_per_s']:.2f}×")
        if cpu_l and cpu_p:
            el, ep = l.get("shared_events") or l["events"], p.get("shared_events") or p["events"]
            extra += (f"; per CPU-second {el / cpu_l / 1e6:.2f} M vs {ep / cpu_p / 1e6:.2f} M "
                      f"→ {(el / cpu_l) / (ep / cpu_p):.2f}×")
        row("Analysis at least as fast as `perf sched latency` on the same events (events/s)",
            f"median of {len(l.get('wall_s_runs') or [1])}: {ls_ / 1e6:.2f} M ev/s vs {ps / 1e6:.2f} M ev/s "
            f"→ {speed:.2f}×" + extra, speed >= 1)
        mem = l["rss_bytes"] / p["rss_bytes"]
        row("Analysis peak RSS ≤ 1/2 of `perf sched latency`'s",
            f"{fmt_bytes(l['rss_bytes'])} vs {fmt_bytes(p['rss_bytes'])} → {mem:.2f}×", mem <= 0.5)
    else:
        why = l.get("skipped") or l.get("error") or "n/a"
        row("Analysis speed and memory vs `perf sched latency`", why, None)

    big = res.get("big", {})
    ba = big.get("analysis", {})
    if ba:
        ok = not ba.get("killed") and ba.get("wall_s", 1e9) < 60 and ba.get("rss_bytes", 1e18) < 4 * 2**30
        row(f"{big['events'] / 1e6:.0f} M events analyzed on 2 cores in < 60 s and < 4 GiB",
            f"{ba.get('wall_s', 0):.1f} s, {fmt_bytes(ba.get('rss_bytes'))}"
            + (f" ({ba['killed']})" if ba.get("killed") else ""), ok)
    else:
        row("100 M events analyzed in < 60 s and < 4 GiB", big.get("skipped", "not run (use --big)"), None)

    lb, pb = ca.get("latencyscope", {}).get("bytes_per_event"), ca.get("perf", {}).get("bytes_per_event")
    if lb and pb:
        row("Capture bytes per event ≤ 1/5 of perf.data's",
            f"{lb:.1f} B vs {pb:.1f} B → {lb / pb:.2f}×", lb / pb <= 0.2)
    else:
        row("Capture bytes/event ≤ 1/5 of perf.data's", "n/a", None)
    return rows


def diagnose(res: dict) -> List[str]:
    """Plain-sentence conclusions that follow from the raw numbers (no judgement calls)."""
    out = []
    loss = res.get("loss", {})
    extra = loss.get("ring_scale_runs", [])
    rt = next((r for r in extra if r.get("prefix", "").startswith("chrt")), None)
    if loss.get("lost_all_runs") and rt and rt.get("events") and not rt.get("lost"):
        worst = max(loss["runs"], key=lambda r: r.get("runqueue_wait_window_s") or 0)
        out.append(
            f"Loss comes from the drain being starved, not slow: in the worst default run the recorder was "
            f"on CPU {worst.get('oncpu_window_s', 0):.2f} s and waited on a runqueue "
            f"{worst.get('runqueue_wait_window_s', 0):.2f} s of {worst.get('window_s', 0):.1f} s; the same "
            f"recorder under `chrt -f 1` recorded {rt['events']:,} events with 0 lost at "
            f"{rt.get('offered_events_per_s', 0) / 1e3:.0f} k events/s using {rt.get('cpu_window_s', 0):.2f} s "
            f"CPU ({rt.get('cpu_us_per_event_window', 0):.3f} µs/event).")
        big = [r for r in extra if r.get("ring_scale", 1) > 1 and r.get("events") and not r.get("lost")]
        if big:
            out.append(f"With default scheduling only rings ×{big[0]['ring_scale']:g} were lossless, because "
                       f"they held the whole {big[0]['seconds']:g} s run until the workload stopped: ring size "
                       f"only postpones starvation.")
    ana = res.get("capture", {}).get("analysis", {})
    perf = ana.get("perf sched latency", {})
    if perf.get("info"):
        info = " ".join(perf["info"])
        # "INFO: 7.5% lost events (N out of M, in K chunks)" vs "context switch bugs"
        why = (" (perf's recording lost events, so it analyzed less than it was given)"
               if re.search(r"%\s*lost events", info) else
               " (perf's own consistency check on the events it was given; it reports no lost events)")
        out.append("`perf sched latency` itself warns: " + info + why + ".")
    pr = res.get("capture", {}).get("perf", {})
    if pr.get("lost_note"):
        out.append(f"`perf sched record` reported \"{pr['lost_note']}\" for the same workload.")
    return out


def floor_split(tracers: dict) -> Optional[str]:
    """A workload's LatencyScope slowdown next to the two floors measured beside it
    (an empty BPF program; one that only reads the clock), as a sentence; None
    without all three."""
    med = {n: observer_ratio(tracers, n).get("median") for n in ("latencyscope", "empty-bpf", "clock-bpf")
           if n in tracers}
    if len(med) < 3 or None in med.values():
        return None
    ls, empty, clock = (1 - med[n] for n in ("latencyscope", "empty-bpf", "clock-bpf"))
    cpu = [x["tracer_cpu_window_s"] for x in tracers["latencyscope"]["runs"] if "tracer_cpu_window_s" in x]
    def step(x: float) -> str:   # a layer: the difference of two noisy medians, may come out negative
        return f"{'+' if x >= 0 else '−'}{fmt_pct(abs(x))}"

    return (f"Median slowdowns: LatencyScope {fmt_pct(ls)}; an empty BPF program on the same tracepoints "
            f"{fmt_pct(empty)}; one that only reads the clock {fmt_pct(clock)}. Read as layers of "
            f"LatencyScope's slowdown (differences of noisy medians; a negative one is noise): being called "
            f"at all {fmt_pct(empty)}, the clock read {step(clock - empty)}, the rest (staging, ring writes and "
            f"the recorder process{f', median {statistics.median(cpu):.2f} CPU s per run' if cpu else ''}) "
            f"{step(ls - clock)}.")


# --------------------------------------------------------------------------- pooling saved runs

NOT_IN_RUN = "not in this run"   # a pooled run that did not have this tracer


class PoolError(Exception):
    """Saved runs that cannot be pooled (one line for the user)."""


def recorder_rev(res: dict) -> Optional[str]:
    """The git revision a saved run recorded with; None when unknown or when its
    recorder/analyzer files were modified (``tool_versions``)."""
    m = re.search(r"\(git (\w+)(, recorder/analyzer files modified)?\)", res.get("versions", {}).get("latencyscope", ""))
    return m.group(1) if m and not m.group(2) else None


def recorder_changes(a: str, b: str) -> Optional[List[str]]:
    """The files of record/, bpf/ and schemas/ that differ between revisions A and B
    ([] when none); None when git cannot tell."""
    if a == b:
        return []
    r = subprocess.run(["git", "-C", str(REPO), "diff", "--name-only", a, b, "--", "record", "bpf", "schemas"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.stdout.split() if r.returncode == 0 else None


def pool_observer(saved: List[Tuple[str, dict]], across_changes: bool = False) -> dict:
    """The observer parts of SAVED runs ((path, results) pairs) as one part: every
    workload's repetitions of every run, one run after another, each still paired
    with the untraced run of its own repetition.  The runs must have measured the
    same recorder code (or, ACROSS_CHANGES, code whose differences the caller
    vouches for: they are listed in the result) with the same workload length; a
    tracer one run lacks shows as missing there.  Raises PoolError."""
    if not saved:
        raise PoolError("nothing to pool: none of the runs has an observer part")
    for path, res in saved:
        if "observer" not in res:
            raise PoolError(f"{path}: no observer part (run with --only observer or without --only)")
    path0, res0 = saved[0]
    rev0 = recorder_rev(res0)
    changes: Dict[str, List[str]] = {}
    for path, res in saved:
        rev = recorder_rev(res)
        if rev is None or rev0 is None:
            raise PoolError(f"{path if rev is None else path0}: recorded from modified recorder files or an unknown "
                            f"git revision; its recorder cannot be matched to the other runs'")
        changed = recorder_changes(rev0, rev)
        if changed is None:
            raise PoolError(f"cannot compare git {rev0} ({path0}) with git {rev} ({path}): not in this repository")
        if changed and not across_changes:
            raise PoolError(f"{path0} (git {rev0}) and {path} (git {rev}) measured different recorder code "
                            f"({', '.join(changed)}); --pool-across-changes pools them anyway and says so")
        for f in changed:
            changes.setdefault(f, []).append(rev)
        if res["observer"]["seconds"] != res0["observer"]["seconds"]:
            raise PoolError(f"{path0} ran each workload {res0['observer']['seconds']:g} s, {path} "
                            f"{res['observer']['seconds']:g} s: not the same measurement")
    obs = [res["observer"] for _, res in saved]
    out = {"seconds": obs[0]["seconds"], "repeats": sum(o["repeats"] for o in obs),
           "skipped": {}, "tracers": {}, "workloads": {},
           "pooled": [{"date": res["date"], "git": recorder_rev(res), "repeats": res["observer"]["repeats"],
                       "command": measuring_command(res.get("command", ""))} for _, res in saved]}
    if changes:
        out["recorder_changes"] = {"from": rev0, "files": changes}
    waits = [o["quiet_wait"] for o in obs if o.get("quiet_wait") is not None]
    if waits:
        out["quiet_wait"] = max(waits)
    for o in obs:
        out["skipped"].update(o.get("skipped", {}))
        out["tracers"].update(o.get("tracers", {}))
    for o in obs:
        for wname, wl in o["workloads"].items():
            if wname in out["workloads"]:
                continue
            have = [x["workloads"][wname] for x in obs if wname in x["workloads"]]
            names = list(dict.fromkeys(n for w in have for n in w["tracers"]))
            reps = [max(len(t["values"]) for t in w["tracers"].values()) for w in have]
            tracers = {}
            for n in names:
                vals, runs = [], []
                for w, k in zip(have, reps):
                    t = w["tracers"].get(n)
                    vals += t["values"] if t else [None] * k
                    runs += t["runs"] if t else [{"value": None, "error": NOT_IN_RUN}] * k
                tracers[n] = {"values": vals, "runs": runs}
            base = tracers.get("untraced", {}).get("values") or []
            for t in tracers.values():
                t["ratio"] = summarize(paired_ratios(t["values"], base))
            labels = {}
            for w in have:
                labels.update(w.get("tracer_labels", {}))
            good = [b for b in base if b]
            out["workloads"][wname] = {**{k: v for k, v in wl.items() if k not in ("tracers", "tracer_labels")},
                                       "untraced_median": statistics.median(good) if good else None,
                                       "tracer_labels": labels, "tracers": tracers, "pooled_runs": reps}
    return out


def load_saved(path: str) -> dict:
    """A --json file of an earlier run, or PoolError saying why not."""
    try:
        res = json.loads(Path(path).read_text())
    except OSError as exc:
        raise PoolError(f"{path}: {exc.strerror or exc}")
    except ValueError as exc:
        raise PoolError(f"{path}: not a saved run (invalid JSON: {exc})")
    if not isinstance(res, dict) or not {"date", "command", "machine", "versions"} <= res.keys():
        raise PoolError(f"{path}: not a saved run of benchmarks/run.py --json")
    return res


# Where a run's output and scratch files go; not part of what it measures.
_OUTPUT_OPTIONS = ("--out", "--json", "--workdir")


def measuring_command(cmd: str) -> str:
    """CMD without its output options: the command that regenerates the numbers."""
    words, out, skip = cmd.split(), [], False
    for w in words:
        if skip:
            skip = False
        elif w in _OUTPUT_OPTIONS:
            skip = True
        elif not w.startswith(tuple(o + "=" for o in _OUTPUT_OPTIONS)):
            out.append(w)
    return " ".join(out)


def render(res: dict) -> str:
    L: List[str] = []
    a = L.append
    m = res["machine"]
    a("# LatencyScope benchmarks")
    a("")
    a(f"Generated by `{measuring_command(res['command'])}` on {res['date']} (output options left out) — the "
      "numbers below are raw output of that run; regenerate them with the same command (root; see "
      "`benchmarks/run.py --help`).")
    for line in res.get("provenance", []):   # parts taken from other runs (merged JSON), said up front
        a("")
        a(f"**Not from that run:** {line}")
    a("")
    a(f"**Machine**: {m['nproc']} CPUs · {m['model_name']} · kernel {m['kernel']} · "
      f"{fmt_bytes(m.get('mem_bytes'))} RAM · Python {m['python']}  ")
    a("**Tools**: " + " · ".join(f"{k} {v}" for k, v in res["versions"].items()))
    a("")
    a("## Budgets")
    a("")
    a("| budget (issue 6) | measured | status |")
    a("|---|---|---|")
    for b in res["budgets"]:
        a(f"| {b['budget']} | {b['measured']} | {b['status']} |")
    a("")

    findings = diagnose(res)
    if findings:
        a("## What the numbers say (derived automatically from this run)")
        a("")
        for f in findings:
            a(f"- {f}")
        a("")

    obs = res.get("observer")
    if obs:
        a("## 1. Observer effect")
        a("")
        a(f"Each tracer is fully started (LatencyScope: `.partial/manifest.json` exists, i.e. programs "
          f"attached; perf: enabled through its control fifo and acknowledged; runqlat: printed "
          f"\"Tracing\") before the workload runs {obs['seconds']:g} s. Runs are interleaved, "
          f"{obs['repeats']} repetitions, order rotated each repetition; before each run the suite waits "
          f"(up to {obs.get('quiet_wait', 6):g} s) for the machine to be under 10% busy, and the table shows CPU used by anything "
          f"else during the run (this is a shared box: other engineers' jobs are noise). Ratio = throughput / the "
          f"untraced throughput of the same repetition (paired: the host's slow drifts cancel; min / median / max "
          f"over repetitions).")
        if len(obs.get("pooled") or []) > 1:
            a("")
            same = "" if obs.get("recorder_changes") else " of the same recorder code"
            a(f"The repetitions are pooled from {len(obs['pooled'])} runs{same}, in this order "
              f"(each run's repetitions after the previous run's): "
              + "; ".join(f"{r['date']} (git {r['git']}, {r['repeats']} repetitions)" for r in obs["pooled"])
              + ". A tracer missing from a run shows – there.")
        a("")
        for name, why in obs.get("skipped", {}).items():
            a(f"- **{name}** not run: {why}")
        if obs.get("skipped"):
            a("")
        for wl in obs["workloads"].values():
            a(f"### {wl['label']}")
            a("")
            a(f"Untraced median: {wl['untraced_median'] or 0:,.0f} {wl['unit']}")
            a("")
            a(f"| tracer | ratio min | ratio median | ratio max | raw {wl['unit']} per run "
              f"| tracer process CPU s during the workload | other CPU s (machine − workload − tracer) "
              f"| others' tracing BPF progs present |")
            a("|---|---|---|---|---|---|---|---|")
            for name, t in wl["tracers"].items():
                r = observer_ratio(wl["tracers"], name)
                raw = ", ".join(("–" if x.get("error") == NOT_IN_RUN else "fail") if v is None else f"{v:,.0f}"
                                for v, x in zip(t["values"], t["runs"]))
                cpu = ", ".join(f"{x['tracer_cpu_window_s']:.2f}" for x in t["runs"] if "tracer_cpu_window_s" in x)
                other = ", ".join(f"{x['other_cpu_s']:.2f}" for x in t["runs"] if "other_cpu_s" in x)
                label = wl.get("tracer_labels", {}).get(name) or obs["tracers"].get(name, name)
                a(f"| {label} | {fmt_pct(r.get('min'))} | **{fmt_pct(r.get('median'))}** "
                  f"| {fmt_pct(r.get('max'))} | {raw} | {cpu or '–'} | {other or '–'} "
                  f"| {', '.join(str(x.get('foreign_progs', '?')) for x in t['runs'])} |")
            split = floor_split(wl["tracers"])
            if split:
                a("")
                a(split)
            lsr = wl["tracers"].get("latencyscope", {}).get("runs", [])
            ev = [x for x in lsr if x.get("events")]
            if ev:
                a("")
                a("LatencyScope events per run (lost; longest time the rings went undrained): "
                  + ", ".join(_recording_note(x) for x in ev))
            a("")

    cost = res.get("bpf_cost")
    if cost:
        a("## 2. In-kernel cost per event (`bpf_stats`)")
        a("")
        if cost.get("skipped"):
            a(f"Not run: {cost['skipped']}")
        else:
            windows = any("empty_clock_window" in r for run in cost["runs"] for r in run["programs"].values())
            a(f"`kernel.bpf_stats_enabled=1`; LatencyScope's programs, an empty program and a program "
              f"that only reads the clock once (`bpf_ktime_get_ns()`, what every recorded event pays for "
              f"its timestamp; `benchmarks/empty_bpf.py --clock`) attached to the same tracepoints "
              + ("(LatencyScope and the empty program together, then the clock-only program and another empty "
                 "program together)" if windows else "at the same time")
              + f", under `stress-ng --switch 2` for {cost['seconds']:g} s. {cost['note']}")
            a("")
            a("| run | offered events/s (recorded + lost) | tracepoint | LatencyScope ns/event | empty ns/event "
              "| clock-only ns/event | " + ("its window's empty ns/event | " if windows else "")
              + "ratio | clock-only ratio | LatencyScope run_cnt | empty run_cnt |")
            a("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if windows else ""))
            for i, run in enumerate(cost["runs"]):
                for tp, r in sorted(run["programs"].items()):
                    lsp, ep, kp = r.get("latencyscope", {}), r.get("empty", {}), r.get("clock", {})
                    clock = f"{kp['ns_per_event']:.1f}" if kp else "–"
                    if windows:
                        ek = r.get("empty_clock_window", {})
                        clock += f" | {ek['ns_per_event']:.1f}" if ek else " | –"
                    cratio = f"{r['clock_ratio']:.2f}×" if "clock_ratio" in r else "–"
                    a(f"| {i} | {run.get('offered_events_per_s') or 0:,.0f} | {tp} | {lsp.get('ns_per_event', 0):.1f} "
                      f"| {ep.get('ns_per_event', 0):.1f} | {clock} | {r.get('ratio', 0):.2f}× | {cratio} "
                      f"| {lsp.get('run_cnt', 0):,} | {ep.get('run_cnt', 0):,} |")
            a("")
            a("Ratio over runs (min / median / max): " + "; ".join(
                f"{tp} {r['min']:.2f}× / **{r['median']:.2f}×** / {r['max']:.2f}×"
                for tp, r in cost["ratio"].items() if r))
            clock = {tp: r for tp, r in (cost.get("clock_ratio") or {}).items() if r}
            if clock:
                a("")
                a("The clock read alone, as a ratio to the empty program (min / median / max): " + "; ".join(
                    f"{tp} {r['min']:.2f}× / **{r['median']:.2f}×** / {r['max']:.2f}×" for tp, r in clock.items()))
        a("")

    loss = res.get("loss")
    if loss:
        a("## 3. Loss and recorder CPU at the highest event rate")
        a("")
        if loss.get("events"):
            rings = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in (loss.get("ring_bytes") or {}).items())
            a(f"Workload: {loss['workload']} for {loss['seconds']:g} s "
              f"({loss.get('workload_ops_s') or 0:,.0f} bogo ops/s while recorded).")
            a("")
            a("| figure | value |")
            a("|---|---|")
            a(f"| events recorded | {loss['events']:,} in {loss['duration_s']:.2f} s |")
            a(f"| events/s recorded | {loss.get('events_per_s', 0):,.0f} |")
            a(f"| events lost | {loss.get('lost', 0):,} ({loss.get('lost_by_kind')}) |")
            a(f"| ring sizes (default) | {rings} |")
            a(f"| recorder CPU, whole run (user+sys) | {loss['cpu_total_s']:.2f} s = "
              f"{loss.get('cpu_s_per_M_events_total', 0):.2f} s per M events |")
            a(f"| recorder user CPU, whole run | {loss.get('user_us_per_event_total', 0):.3f} µs/event |")
            if loss.get("runqueue_wait_window_s") is not None:
                a(f"| recorder on-CPU / waiting on a runqueue while recording (schedstat) | "
                  f"{loss['oncpu_window_s']:.2f} s / {loss['runqueue_wait_window_s']:.2f} s over "
                  f"{loss['window_s']:.1f} s, {loss['timeslices_window']:,} timeslices |")
            if loss.get("lost_events_per_s") is not None:
                a(f"| offered rate (recorded + lost) | {loss['offered_events_per_s']:,.0f} events/s |")
            if loss.get("cpu_us_per_event_window") is not None:
                a(f"| recorder CPU while recording (ready → SIGINT, excl. BPF compile and final pack) | "
                  f"{loss['cpu_window_s']:.2f} s = {loss['cpu_us_per_event_window']:.3f} µs/event |")
            a("")
            a("Every run (the table above is the one with the highest offered rate):")
            a("")
            a("| run | offered events/s | recorded | lost | workload bogo ops/s | recorder CPU while recording "
              "| recorder runqueue wait |")
            a("|---|---|---|---|---|---|---|")
            for i, r in enumerate(loss.get("runs", []) + loss.get("ring_scale_runs", [])):
                label = (f"`{r['prefix']}` (default rings)" if r.get("prefix") else
                         str(i) if r.get("ring_scale", 1) == 1 else "ring ×%g" % r["ring_scale"])
                a(f"| {label} | {r.get('offered_events_per_s', 0):,.0f} | {r.get('events') or 0:,} | {r.get('lost') or 0:,} "
                  f"| {r.get('workload_ops_s') or 0:,.0f} | {r.get('cpu_window_s') or 0:.2f} s "
                  f"| {r.get('runqueue_wait_window_s') or 0:.2f} s |")
        else:
            a(f"Failed: {loss.get('error', '?')}")
        a("")

    drain = res.get("drain")
    if drain and drain.get("runs"):
        a("### 3b. Drain + write capacity, rings fed by the benchmark")
        a("")
        a(f"The workloads above cannot produce more events than part 3 shows; here the benchmark plays the "
          f"kernel's part (`benchmarks/drain_feed.py`): it puts full 64-record chunks of "
          f"{' and '.join(drain['kinds'])} in per-CPU rings laid out as BPF ring buffers "
          f"({drain['chunks_per_poll']} chunks per CPU and kind between two drains, each CPU in time order, "
          f"CPUs interleaved) and runs the recorder's own drain, time-order merge, compression and writes "
          f"with default settings. Only the drain and the flushes are timed (thread CPU time).")
        a("")
        a("| run | events | CPU s | events per CPU-second | codec | bytes/event |")
        a("|---|---|---|---|---|---|")
        for i, r in enumerate(drain["runs"]):
            a(f"| {i} | {r['events']:,} | {r['cpu_s']:.2f} | {r['events_per_cpu_s'] / 1e6:.1f} M "
              f"| {r['compression']} | {r['bytes_per_event']:.1f} |")
        a("")

    ca = res.get("capture")
    if ca:
        a("## 4. Capture size (same workload, same time)")
        a("")
        if ca.get("skipped"):
            a(f"Not run: {ca['skipped']}")
        else:
            rec = ca["recording"]
            a(f"`perf sched record {' '.join(PERF_ANALYSIS_BUFFER)}` (a buffer big enough that perf loses "
              f"nothing, so both analyzers below get the same events) and "
              f"`latencyscope-record --modules isolation` recorded "
              f"`{rec['workload']}` together for {rec['seconds']:g} s; trace.dat comes from a separate "
              f"ftrace run of the same workload (trace-cmd record cannot run here; see part 1) read "
              f"out with `trace-cmd extract`. perf's event count is its sample count (perf sched "
              f"record also enables sched_stat_* and sched_process_* tracepoints).")
            a("")
            a("| format | events | bytes | bytes/event |")
            a("|---|---|---|---|")
            codec = ca.get("latencyscope", {}).get("compression") or "codec not recorded by this run"
            for label, d in ((f"LatencyScope .lscope (Arrow IPC, {codec})", ca.get("latencyscope", {})),
                             ("perf.data", ca.get("perf", {})),
                             ("trace.dat (trace-cmd extract)", ca.get("trace_dat", {}))):
                if d:
                    a(f"| {label} | {d.get('events') or 0:,} | {d.get('bytes') or 0:,} | "
                      f"{d.get('bytes_per_event', 0):.1f} |")
            a("")
            a("## 5. Analysis speed and memory")
            a("")
            pk = ca.get("perf", {}).get("events_by_kind") or {}
            a("Wall time and peak RSS from `/usr/bin/time -v`, each tool on its own capture from part 4, "
              "the two tools interleaved; the row is the run with the median wall time (every run's wall "
              "time in the note), peak RSS the largest of the runs. \"Same events\" leaves out perf's "
              "sched_stat_* samples, which LatencyScope does not record"
              + (": perf's capture held " + ", ".join(f"{k.split(':')[-1]} {n:,}" for k, n in
                                                    sorted(pk.items(), key=lambda kv: -kv[1])) if pk else "")
              + ".")
            a("")
            a("| command | events | same events | wall s | same events/s (wall) | CPU s (user+sys) | "
              "same events per CPU-second | peak RSS | note |")
            a("|---|---|---|---|---|---|---|---|---|")
            for name, d in ca.get("analysis", {}).items():
                if d.get("skipped"):
                    a(f"| {name} | | | | | | | | skipped: {d['skipped']} |")
                    continue
                cpu = (d.get("user_s") or 0) + (d.get("sys_s") or 0)
                same = d.get("shared_events") or d.get("events") or 0
                runs = d.get("wall_s_runs") or []
                a(f"| {name} | {d.get('events') or 0:,} | {same:,} | {d.get('wall_s', 0):.2f} | "
                  f"{d.get('shared_events_per_s', d.get('events_per_s', 0)) / 1e6:.2f} M | {cpu:.2f} | "
                  f"{same / cpu / 1e6 if cpu else 0:.2f} M | {fmt_bytes(d.get('rss_bytes'))} | "
                  + (f"runs {', '.join(f'{w:.2f}' for w in runs)} s; " if len(runs) > 1 else "") +
                  f"exit {d.get('exit')}{'; ' + d['error'] if d.get('error') else ''}"
                  f"{'; ' + ' '.join(d['info']) if d.get('info') else ''} |")
        a("")

    big = res.get("big")
    a("### 100 M-event synthetic capture")
    a("")
    if not big:
        a("Not run in this run (`--big`; `python benchmarks/gen_capture.py -n 1e8 -o big.lscope` makes the capture).")
    else:
        a(f"`benchmarks/gen_capture.py` wrote {big['events']:,} events ({fmt_bytes(big['bytes'])}, "
          f"{big['bytes'] / big['events']:.1f} B/event) in {big['generate_s']:.1f} s.")
        ba = big.get("analysis")
        if ba:
            a("")
            a(f"`latencyscope-analyze report`: {ba.get('wall_s', 0):.1f} s wall, peak RSS "
              f"{fmt_bytes(ba.get('rss_bytes'))}, exit {ba.get('exit')}"
              + (f", **{ba['killed']}**" if ba.get("killed") else "")
              + (f", {ba['events_per_s'] / 1e6:.2f} M events/s" if ba.get("events_per_s") else "") + ".")
        elif big.get("skipped"):
            a(f"Analysis skipped: {big['skipped']}")
    a("")
    for n in res.get("notes", []):
        a(f"- {n}")
    return "\n".join(L).rstrip() + "\n"


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="LatencyScope benchmark suite (writes docs/benchmarks.md)")
    ap.add_argument("--quick", action="store_true", help="short runs, one repetition (~2 min)")
    ap.add_argument("--big", action="store_true", help="also generate and analyze a 100 M-event capture")
    ap.add_argument("--big-events", type=float, default=1e8)
    ap.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"), help="markdown report")
    ap.add_argument("--json", help="also write the raw results as JSON here")
    ap.add_argument("--seconds", type=float, help="workload seconds per observer run")
    ap.add_argument("--repeats", type=int, help="observer-effect repetitions")
    ap.add_argument("--only", help="comma list of parts: observer,cost,loss,drain,capture,big,syscall")
    ap.add_argument("--quiet-wait", type=float, default=3.0,
                    help="max seconds to wait before each run for the machine to be <10%% busy")
    ap.add_argument("--workdir", help="scratch directory (default: a temporary one, removed)")
    ap.add_argument("--render", metavar="JSON", help="only re-render the report from a saved --json file")
    ap.add_argument("--pool", metavar="JSON", action="append", default=[],
                    help="with --render: part 1 pools its repetitions with these saved runs' (same recorder "
                         "code; repeatable), so the observer budgets see how runs at different times differ")
    ap.add_argument("--pool-across-changes", action="store_true",
                    help="pool runs whose recorder code differs (the report lists the differing files)")
    a = ap.parse_args(argv)
    if a.pool and not a.render:
        print("--pool goes with --render (pooling re-renders saved runs)", file=sys.stderr)
        return 3
    if a.render:
        try:
            res = load_saved(a.render)
            if a.pool:
                # The rendered run's own part 1 joins the pool; one it took from
                # another run (merged JSON) does not: pass that run to --pool.
                own = "observer" in res and not any(x.startswith("part 1") for x in res.get("provenance", []))
                saved = ([(a.render, res)] if own else []) + [(p, load_saved(p)) for p in a.pool]
                res["observer"] = pool_observer(saved, a.pool_across_changes)
                p0 = res["observer"]["pooled"][0]
                line = (f"part 1 (observer effect) pools the repetitions of {len(saved)} runs of the same recorder "
                        f"code (listed in part 1), each repetition paired with the untraced run of its own "
                        f"repetition; the budget rows also give each run's ratio alone." if len(saved) > 1 else
                        f"part 1 (observer effect) comes from `{p0['command']}` on {p0['date']} (git {p0['git']}).")
                ch = res["observer"].get("recorder_changes")
                if ch:
                    line = line.replace("of the same recorder code", "of recorder code that is not the same") + (
                        f" Pooled with --pool-across-changes: the recorder code differs from git {ch['from']}'s in "
                        + ", ".join(f"{f} (at git {', '.join(revs)})" for f, revs in ch["files"].items())
                        + "; whoever pooled them judged that these changes do not alter what part 1 measures.")
                res["provenance"] = [x for x in res.get("provenance", []) if not x.startswith("part 1")] + [line]
        except PoolError as exc:
            print(f"benchmarks/run.py: {exc}", file=sys.stderr)
            return 3
        res["budgets"] = budgets(res)
        Path(a.out).write_text(with_history(Path(a.out), render(res)))
        if "syscall" in res:   # as a run writes it; without, the section already there stays
            write_syscall_section(Path(a.out), render_syscall(res))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1, default=str))
        print(f"wrote {a.out}", file=sys.stderr)
        return 0
    if os.geteuid() != 0:
        print("benchmarks/run.py needs root (BPF, perf, tracefs)", file=sys.stderr)
        return 3
    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="lsbench-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg = Config(work=work, seconds=a.seconds or (2.0 if a.quick else 3.0),
                 repeats=a.repeats or (1 if a.quick else 5), quick=a.quick, big=a.big,
                 big_events=int(a.big_events), big_rss_kill_bytes=int(min(1.5 * 4 * 2**30, 0.5 * (machine()["mem_bytes"] or 8 << 30))),
                 analysis_repeats=1 if a.quick else 5, quiet_wait=a.quiet_wait, log=lambda s: print(s, file=sys.stderr, flush=True))
    parts = set((a.only or "observer,cost,loss,drain,capture,syscall" + (",big" if a.big else "")).split(","))
    cmd = "python benchmarks/run.py" + "".join(f" {x}" for x in (argv if argv is not None else sys.argv[1:]))
    res = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "command": cmd,
           "machine": machine(), "versions": tool_versions(), "notes": []}
    t0 = time.monotonic()
    headers = None
    interrupted = False
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # BCC-based children (empty_bpf.py, runqlat) compile against the same headers the
        # recorder would pick (the running kernel's are usually missing on this machine kind).
        from latencyscope.record.environment import resolve_headers
        headers = resolve_headers()
        os.environ.update(headers.env())
        if not headers.exact:
            res["notes"].append(f"Kernel headers for {platform.release()} are absent: BCC programs "
                                f"(LatencyScope, runqlat, the empty program) compiled against {headers.source}.")
    except Exception as exc:
        res["notes"].append(f"kernel headers not resolved ({exc}); BCC tools may fail")
    try:
        if "observer" in parts:
            cfg.log("== 1. observer effect")
            wls = [switch_workload(2), pinned_switch_workload(), fault_workload()] + \
                ([fio_workload()] if have("fio") else [])
            if not have("fio"):
                res["notes"].append("fio not installed: the IRQ/I/O workload was skipped")
            tc = TraceCmd()
            # The two floors: any BPF program on these tracepoints, and one that
            # also reads the clock, as every timestamped event must.
            tracers = [Untraced(), LatencyScopeRecord(), PerfSched(), tc, Runqlat(), EmptyBpf(),
                       EmptyBpf(clock=True)]
            if tc.available():
                tracers.insert(3, Ftrace())  # trace-cmd's kernel path, measured directly
            res["observer"] = part_observer(cfg, wls, tracers)
        if "cost" in parts:
            cfg.log("== 2. in-kernel cost")
            res["bpf_cost"] = part_bpf_cost(cfg)
        if "loss" in parts:
            cfg.log("== 3. loss at the highest rate")
            res["loss"] = part_loss(cfg)
        if "drain" in parts:
            cfg.log("== 3b. drain + write fed synthetically")
            res["drain"] = part_drain(cfg)
        if "capture" in parts:
            cfg.log("== 4/5. capture size and analysis")
            res["capture"] = part_capture_and_analysis(cfg)
        if "big" in parts:
            cfg.log(f"== 5b. {cfg.big_events:,} synthetic events")
            res["big"] = part_big(cfg)
        if "syscall" in parts:
            cfg.log("== 6. syscall tracing cost on an untraced process")
            res["syscall"] = part_syscall(cfg)
    except KeyboardInterrupt:
        cfg.log("interrupted: stopping what the suite started")
        interrupted = True
    finally:
        for c in list(LIVE):
            try:
                os.killpg(c.proc.pid, signal.SIGINT)
            except OSError:
                pass
            c.stop(signal.SIGINT, timeout=15)
        for f in list(LIVE_FTRACE):
            f.stop()
        if headers is not None:
            headers.cleanup()
        if not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if interrupted:
        return 130
    res["elapsed_s"] = time.monotonic() - t0
    res["notes"].append(f"Whole run took {res['elapsed_s']:.0f} s.")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    if parts == {"syscall"}:
        # Only its own section of the report changes; the other parts' results stay.
        write_syscall_section(Path(a.out), render_syscall(res))
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1, default=str))
        cfg.log(f"updated the syscall section of {a.out}")
        return 0
    res["budgets"] = budgets(res)
    Path(a.out).write_text(with_history(Path(a.out), render(res)))
    if "syscall" in res:
        write_syscall_section(Path(a.out), render_syscall(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    cfg.log(f"wrote {a.out}")
    for b in res["budgets"]:
        cfg.log(f"  {b['status']:12s} {b['budget']}: {b['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
