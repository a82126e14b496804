"""One capture: load the BPF programs, drain their rings, write, finish.

This is the library entry point behind ``latencyscope-record``; it prints
nothing but the optional live status line (to a terminal only).
"""
from __future__ import annotations

import ctypes
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from latencyscope import COMPRESSION, FORMAT_VERSION, __version__
from latencyscope.bpf import source as bpf_source
from latencyscope.cliutil import STOP_SIGNALS
from latencyscope.errors import LatencyScopeError, first_line
from latencyscope.record import environment as env
from latencyscope.record import bpfinfo, btf, host, preflight
from latencyscope.record.ringbuf import RingReader
from latencyscope.record.writer import CaptureWriteError, CaptureWriter
from latencyscope.schemas import EVENT_KINDS, MODULES, kinds_of
from latencyscope.schemas.codegen import SMALL_RECORDS, STAGE_AGE_NS, STAGE_RECORDS, slot_dtype, stage_dtype

FLUSH_INTERVAL_S = 1.0   # design: a crash loses at most the last second
# ... and sooner once a kind has this many records waiting: a flush's merge
# and compression run faster on a batch that still fits in the caches.
FLUSH_ROWS = 1 << 18
LOSS_MANIFEST_INTERVAL_S = 5.0  # loss so far goes into the manifest: a killed capture still shows it
POLL_INTERVAL_S = 0.05   # drain cadence; rings are sized for >= 0.2 s of peak rate
POLL_BUSY_S = 0.005      # cadence while a ring is filling up
BUSY_FILL = 0.125        # a ring this full at a poll means "filling up"
SLOT_BUFFER_RINGS = 2    # the writer's per-kind buffer holds this many full rings (of every CPU)
# A flush keeps records this recent for the time-order merge: a record may
# reach its ring this late (a staged record waits up to STAGE_AGE_NS plus a
# tick, 10 ms at HZ=100, for its CPU's next event or timer interrupt).
HOLD_BACK_NS = 20_000_000
STAGE_MAP_PREFIX = "ls_stage_"  # + kind: the per-CPU stage map of a staged kind (bpf/common.h)
# CPUs whose staged kinds are written record by record (cpulist; default:
# the kernel's nohz_full CPUs, where no tick would flush a stage).
DIRECT_CPUS_ENV = "LATENCYSCOPE_DIRECT_CPUS"
DEFAULT_RT_PRIORITY = 1  # SCHED_FIFO priority of the drain loop (0: normal scheduling)
STATUS_INTERVAL_S = 0.5


@dataclass
class RecordConfig:
    output: str
    modules: Sequence[str] = MODULES
    cpus: Optional[List[int]] = None      # monitored CPUs (in-kernel filter)
    pids: List[int] = field(default_factory=list)  # target tgids (in-kernel filter)
    interface: Optional[str] = None       # network module: only this device (in-kernel filter)
    duration_s: Optional[float] = None    # None: until SIGINT/SIGTERM
    quiet: bool = False
    ring_scale: float = 1.0               # multiply every kind's default ring size
    keep_off_monitored: bool = True       # move our own threads off monitored CPUs
    rt_priority: int = DEFAULT_RT_PRIORITY  # SCHED_FIFO priority of the drain (0: normal)
    compression: str = COMPRESSION        # codec of the capture's tables (latencyscope/__init__.py)
    command_line: List[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class RecordResult:
    path: Path
    events: Dict[str, int]
    lost: Dict[str, int]
    duration_s: float
    bytes: int
    notes: List[str]


def validate(cfg: RecordConfig) -> None:
    unknown = [m for m in cfg.modules if m not in MODULES]
    if unknown:
        raise LatencyScopeError(f"unknown module {unknown[0]!r}; choose from {', '.join(MODULES)}")
    if not cfg.modules:
        raise LatencyScopeError("no module selected")
    if cfg.cpus is not None:
        online = host.online_cpus()
        bad = [c for c in cfg.cpus if c not in online]
        if bad:
            raise LatencyScopeError(f"CPU {bad[0]} is not online (online: {host.format_cpulist(online)})")
    for p in cfg.pids:
        if p <= 0 or not os.path.isdir(f"/proc/{p}"):
            raise LatencyScopeError(f"no process with pid {p}")
    if not 0 <= cfg.rt_priority <= 99:
        raise LatencyScopeError("--rt-priority must be between 0 (normal scheduling) and 99")
    if cfg.duration_s is not None and cfg.duration_s <= 0:
        raise LatencyScopeError("--duration must be positive")
    direct_cpus()  # a malformed override is a bad input like a flag
    if not (cfg.ring_scale > 0 and math.isfinite(cfg.ring_scale)):
        raise LatencyScopeError(f"--ring-scale must be a positive number (got {cfg.ring_scale:g})")
    need = buffer_bytes([k for m in cfg.modules for k in kinds_of(m)], cfg.ring_scale, len(host.online_cpus()))
    avail = host.mem_available()
    if avail is not None and need > avail:
        raise LatencyScopeError(
            f"--ring-scale {cfg.ring_scale:g} needs {need / 2**30:.1f} GiB of ring and writer buffers, more "
            f"than the {avail / 2**30:.1f} GiB available; use a smaller --ring-scale")
    out_dir = Path(cfg.output).resolve().parent
    if not out_dir.is_dir():
        raise LatencyScopeError(f"output directory {out_dir} does not exist")
    if not os.access(out_dir, os.W_OK):
        raise LatencyScopeError(f"output directory {out_dir} is not writable")


def direct_cpus() -> List[int]:
    """CPUs whose staged kinds skip the stage (see DIRECT_CPUS_ENV)."""
    text = os.environ.get(DIRECT_CPUS_ENV)
    if text is None:
        return host.nohz_full_cpus()
    try:
        cpus = host.parse_cpulist(text)
    except ValueError:
        raise LatencyScopeError(f"{DIRECT_CPUS_ENV}={text!r} is not a CPU list (e.g. 1 or 2-3,6)")
    if any(c >= host.possible_cpus() for c in cpus):
        raise LatencyScopeError(f"{DIRECT_CPUS_ENV}={text!r} names a CPU this machine cannot have")
    return cpus


def ring_pages(kind, scale: float, ncpus: int = 1) -> int:
    """Pages of each of KIND's per-CPU rings.

    A kind's ``ring_pages`` is its budget for the whole machine, shared by
    the online CPUs, but each CPU gets at least an eighth of it: one CPU
    alone can produce most of a kind's peak rate.
    """
    total = kind.ring_pages * scale
    pages = max(1, int(max(total / max(ncpus, 1), total / 8)))
    return 1 << (pages - 1).bit_length()  # power of two


# A staged kind's per-CPU ring of small chunks (bpf/common.h ls_stage_flush)
# is this fraction of its main ring: it takes the stages flushed before they
# are full, a few records each.
SMALL_RING_FRACTION = 2


def small_ring_pages(kind, scale: float, ncpus: int = 1) -> int:
    """Pages of each of KIND's per-CPU rings of small chunks (0: not staged)."""
    return max(1, ring_pages(kind, scale, ncpus) // SMALL_RING_FRACTION) if kind.staged else 0


def ring_index(kind, small: bool) -> int:
    """Which of the kinds' rings: KIND's main ring, or its ring of small
    chunks (SMALL), as bpf/common.h numbers them.  Its slot in ``ls_rings``
    is ``ring_index * NCPUS + cpu``; its entry in ``ls_lost_fill`` is the
    index itself."""
    return kind.kind_id + (len(EVENT_KINDS) if small else 0)


def buffer_bytes(kinds, scale: float, ncpus: int) -> int:
    """Memory the rings of KINDS and the writer's slot and column buffers
    take, all resident from the start (record/writer.py ``prefault``)."""
    main = sum(ring_pages(k, scale, ncpus) for k in kinds) * 4096 * ncpus
    small = sum(small_ring_pages(k, scale, ncpus) for k in kinds) * 4096 * ncpus
    return main * (1 + 2 * SLOT_BUFFER_RINGS) + small


BPF_MAP_TYPE_RINGBUF = 27


class CpuRings:
    """One ring buffer per event kind and CPU, in the programs' ls_rings
    array-of-maps (slot ``ring_index`` * NCPUS + cpu), with a reader mmapped
    on each; staged kinds have a second ring per CPU for small chunks
    (``small_ring_pages``).

    The rings are created at once (a failure stops the recorder before the
    window opens) but put in place by ``activate``, in one batch update: each
    update of a map-in-map waits for an RCU grace period (~10 ms here), and
    rings put in place one by one would fill, undrained, meanwhile.
    """

    def __init__(self, bcc, b, kinds, pages: Dict[str, int], ncpus: int, online: Sequence[int],
                 small_pages: Optional[Dict[str, int]] = None):
        self._fds: List[int] = []
        self._outer = b.get_table("ls_rings")
        self._keys: List[int] = []
        self.readers: Dict[str, List[RingReader]] = {}
        create = bcc.lib.bcc_create_map
        create.restype = ctypes.c_int
        create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        online = set(online)
        try:
            for k in kinds:
                rings = []
                for small in (False, True):
                    npages = (small_pages or {}).get(k.name, 0) if small else pages[k.name]
                    if not npages:
                        continue
                    for cpu in range(ncpus):
                        # An offline CPU gets a one-page ring: a CPU brought online
                        # during the capture loses records there, counted as lost.
                        size = npages * 4096 if cpu in online else 4096
                        name = f"ls_{'sm' if small else 'rb'}{k.kind_id}_{cpu}"
                        fd = create(BPF_MAP_TYPE_RINGBUF, name.encode(), 0, 0, size, 0)
                        if fd < 0:
                            raise LatencyScopeError(
                                f"cannot create the {k.name} ring buffer of CPU {cpu} "
                                f"({os.strerror(-fd if fd < -1 else ctypes.get_errno() or 12)}); "
                                "try a smaller --ring-scale")
                        self._fds.append(fd)
                        self._keys.append(ring_index(k, small) * ncpus + cpu)
                        rings.append(RingReader(fd, size, k, small))
                self.readers[k.name] = rings
        except BaseException:
            self.close()
            raise

    def activate(self) -> None:
        """Put every ring in place: from now on events are recorded.  Until
        then the programs find no ring and drop events without counting them
        as lost (they are older than the capture window)."""
        n = len(self._fds)
        try:
            self._outer.items_update_batch((ctypes.c_int * n)(*self._keys), (ctypes.c_int * n)(*self._fds))
        except Exception:  # kernels without batch ops on map-in-map: one update (and grace period) each
            for key, fd in zip(self._keys, self._fds):
                self._outer[ctypes.c_int(key)] = ctypes.c_int(fd)

    def discarded(self) -> Dict[str, int]:
        return {name: sum(r.discarded for r in rings) for name, rings in self.readers.items()}

    def bytes_per_record(self) -> Dict[str, float]:
        """Per kind, ring space taken per record that came through the rings
        (record size plus headers; for staged kinds, the chunk slots left
        empty by stages flushed early): what the ring sizes must cover."""
        out = {}
        for name, rings in self.readers.items():
            n = sum(r.records for r in rings)
            if n:
                out[name] = round(sum(r.ring_bytes for r in rings) / n, 1)
        return out

    def close(self) -> None:
        for rings in self.readers.values():
            for r in rings:
                r.close()
        self.readers = {}
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []


def module_hooks(module: str):
    """Optional recorder hooks of a module: ``record/hooks_<module>.py``.

    A hooks module may define any of:
      cflags(cfg) -> list[str]                 extra -D flags for the BPF compile
      after_load(b, cfg, tracefs) -> None      attach perf events, fill module maps
      manifest(cfg, tracefs) -> dict           merged into the manifest under the module's name
      before_detach(b, cfg) -> dict            read module maps at the end (merged likewise)
    """
    import importlib

    try:
        return importlib.import_module(f"latencyscope.record.hooks_{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"latencyscope.record.hooks_{module}":
            raise
        return None


def _call_hooks(modules, name, *args) -> Dict[str, object]:
    out = {}
    for m in modules:
        h = module_hooks(m)
        fn = getattr(h, name, None) if h else None
        if fn is not None:
            out[m] = fn(*args)
    return out


def build_program(modules: Sequence[str]) -> str:
    parts = [bpf_source("events.h"), bpf_source("common.h")]
    parts += [bpf_source(f"{m}.c") for m in modules]
    return "\n".join(parts)


# Scheduler tracepoints that are tp_btf programs when the kernel has BTF
# (record/btf.py; bpf/isolation.c ls_btf_EVENT).
TP_BTF_EVENTS = {"isolation": tuple(btf.SHORT_NAMES)}


def _load(bcc, modules, cflags: List[str], notes: List[str]):
    """Compile and attach: (BCC object, tp_btf links, {tracepoint: "tp_btf" | "tracepoint"}).

    The scheduler hooks are tp_btf programs when the kernel's BTF allows
    (cheaper for the workload, record/btf.py), classic tracepoints
    otherwise -- the same records either way; why is said in the notes."""
    events = [ev for m in modules for ev in TP_BTF_EVENTS.get(m, ())]
    kbtf, why = btf.probe() if events else (None, None)
    links = btf.TpBtfLinks()
    try:
        if kbtf is not None:
            try:
                b = bcc.BPF(text=build_program(modules), cflags=cflags + ["-DLS_TP_BTF", *kbtf.task_cflags()])
                try:
                    for ev in events:
                        links.attach(b, kbtf, f"ls_btf_{ev}", ev, f"sched:{ev}",
                                     "ls_btf_" + btf.SHORT_NAMES[ev])
                    return b, links, {f"sched:{ev}": "tp_btf" for ev in events}
                except btf.BtfError:
                    links.close()
                    b.cleanup()
                    raise
            except btf.BtfError as exc:
                why = str(exc)
            except Exception as exc:  # BCC could not compile the tp_btf build
                why = f"the tp_btf build did not compile ({first_line(exc)})"
        try:
            b = bcc.BPF(text=build_program(modules), cflags=cflags)
        except Exception as exc:
            raise LatencyScopeError(f"loading the BPF programs failed ({exc}); compiler output is above")
        if events:
            notes.append(f"scheduler hooks are classic tracepoints, not tp_btf: {why}")
        return b, links, {f"sched:{ev}": "tracepoint" for ev in events}
    finally:
        if kbtf is not None:
            kbtf.close()


def _threads_off(cpus: Sequence[int]) -> Optional[List[int]]:
    allowed = set(os.sched_getaffinity(0)) - set(cpus)
    if not allowed:
        return None
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), allowed)
        except OSError:
            pass
    return sorted(allowed)


class _Stop:
    def __init__(self):
        self.requested = False
        self.signal = None

    def __call__(self, signum, frame):
        # Only a flag: a second Ctrl-C while flushing must not interrupt the write.
        if not self.requested:
            self.signal = signal.Signals(signum).name  # the first one is why we stopped
        self.requested = True


def _set_scheduling(priority: int) -> str:
    """Run the calling thread (the drain) at SCHED_FIFO PRIORITY; return what it runs at.

    Under load, a normally scheduled drain waits on a runqueue for seconds
    while the rings overflow (measured: 2.4 s of 3.1 s at 1 M events/s);
    at SCHED_FIFO 1 it runs as soon as its poll timer fires, and since it
    sleeps between polls it takes only the CPU the events need.  The
    kernel's RT throttling (sched_rt_runtime_us) bounds it even then.
    """
    if priority <= 0:
        return "SCHED_OTHER"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return f"SCHED_FIFO {priority}"
    except OSError as exc:
        return f"SCHED_OTHER (SCHED_FIFO {priority} refused: {exc.strerror})"


def _normal_scheduling() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass


def _drain(readers: Sequence[RingReader], writer: CaptureWriter, k) -> int:
    """Move everything pending in KIND's per-CPU rings into the writer; return slots moved."""
    moved = 0
    for reader in readers:
        while True:
            free = writer.free_slots(k)
            n = reader.drain_into(free)
            writer.commit(k, n)
            moved += n
            if reader.last_entries < len(free) // reader.per_entry or reader.pending_bytes() < reader.entry:
                break
            # The buffer is full and the ring is not: write everything, even
            # what the time-order merge would hold back (a buffer smaller
            # than the hold-back window would otherwise never empty).
            writer.flush(hold=False)
    return moved


def _drain_stages(b, writer: CaptureWriter, kinds) -> int:
    """Move the records still staged in the programs' per-CPU stages (see
    bpf/common.h) into the writer; only once the programs are detached."""
    moved = 0
    for k in kinds:
        if not k.staged:
            continue
        per_cpu = b.get_table(STAGE_MAP_PREFIX + k.name)[ctypes.c_int(0)]
        stages = np.frombuffer(b"".join(bytes(v) for v in per_cpu), dtype=stage_dtype(k))
        if (stages["n"] > STAGE_RECORDS).any():
            raise LatencyScopeError(f"{k.name} stage claims more than {STAGE_RECORDS} records: "
                                    "BPF program and schema disagree")
        recs = stages["rec"][np.arange(STAGE_RECORDS) < stages["n"][:, None].astype(np.int64)]
        while len(recs):
            free = writer.free_slots(k)
            if not len(free):
                writer.flush()
                continue
            m = min(len(free), len(recs))
            free[:m] = recs[:m]
            writer.commit(k, m)
            recs = recs[m:]
            moved += m
    return moved


def _lost_fill(b, kinds, pages: Dict[str, int], small_pages: Dict[str, int],
               lost: Dict[str, List[int]]) -> Dict[str, float]:
    """For each kind that lost records: the fullest one of its rings was
    (0..1 of a ring: its main ring or its ring of small chunks, whichever
    was fuller) when a write failed (bpf/common.h ls_lost_fill)."""
    table = b.get_table("ls_lost_fill")
    out = {}
    for k in kinds:
        if sum(lost.get(k.name) or []):
            fill = max(int(v) for v in table[ctypes.c_int(ring_index(k, False))]) / (pages[k.name] * 4096)
            if small_pages.get(k.name):
                small = max(int(v) for v in table[ctypes.c_int(ring_index(k, True))])
                fill = max(fill, small / (small_pages[k.name] * 4096))
            out[k.name] = round(fill, 4)
    return out


def _lost_by_kind(b, kinds) -> Dict[str, List[int]]:
    table = b.get_table("ls_lost")
    out = {}
    for k in kinds:
        per_cpu = table[ctypes.c_int(k.kind_id)]
        out[k.name] = [int(v) for v in per_cpu]
    return out


def record(cfg: RecordConfig, status_stream=None, then_exit: bool = False) -> RecordResult:
    """Record until cfg's duration or a stop signal; return what was written.

    THEN_EXIT: the caller exits next (latencyscope-record).  The stop signals
    then stay ignored instead of getting their old handlers back: a late
    Ctrl-C must not turn a written capture into an error, and Python resets
    handlers to the default action while it shuts down, so a Ctrl-C there
    would kill the process with nothing said.
    """
    modules = [m for m in MODULES if m in cfg.modules]
    kinds = [k for m in modules for k in kinds_of(m)]
    # Preflight first: without privileges nothing else matters, say that.
    pf = preflight.run(modules)
    problem = pf.first_problem()
    try:
        if problem:
            raise LatencyScopeError(f"preflight: {problem.name}: {problem.detail}")
        validate(cfg)
    except BaseException:
        if pf.headers:
            pf.headers.cleanup()
        raise
    bcc = pf.bcc
    headers = pf.headers
    notes: List[str] = []
    if not headers.exact:
        notes.append(f"kernel headers for {os.uname().release} not found; compiling against {headers.source}")

    old_umask = os.umask(0o077)  # captures hold command names and addresses: owner-only
    writer = None
    b = None
    links: Optional[btf.TpBtfLinks] = None
    rings: Optional[CpuRings] = None
    stop = _Stop()
    # SIGHUP too: an ssh session that drops must not leave a half capture.
    old_handlers = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        ncpus, online = host.possible_cpus(), host.online_cpus()
        pages = {k.name: ring_pages(k, cfg.ring_scale, len(online)) for k in kinds}
        small_pages = {k.name: small_ring_pages(k, cfg.ring_scale, len(online)) for k in kinds if k.staged}
        slots = {k.name: (slot_dtype(k),
                          SLOT_BUFFER_RINGS * len(online) * pages[k.name] * 4096 // slot_dtype(k).itemsize)
                 for k in kinds}
        writer = CaptureWriter(cfg.output, kinds, slots=slots, compression=cfg.compression)
        cflags = ["-w"]
        if cfg.cpus is not None:
            cflags.append("-DLS_FILTER_CPUS")
        if cfg.pids:
            cflags.append("-DLS_FILTER_PIDS")
        cflags.append(f"-DLS_NCPUS={ncpus}")
        direct = direct_cpus()
        if direct:
            cflags.append("-DLS_DIRECT_CPUS")
        for extra in _call_hooks(modules, "cflags", cfg).values():
            cflags += list(extra or [])
        os.environ.update(headers.env())
        b, links, hooks = _load(bcc, modules, cflags, notes)
        headers.cleanup()   # compiled: a recorder killed from here on leaves no merged tree behind

        if cfg.cpus is not None:
            t = b.get_table("ls_cpus")
            for c in cfg.cpus:
                t[ctypes.c_int(c)] = ctypes.c_uint8(1)
        if direct:
            t = b.get_table("ls_direct")
            for c in direct:
                t[ctypes.c_int(c)] = ctypes.c_uint8(1)
        if cfg.pids:
            tg, td = b.get_table("ls_tgids"), b.get_table("ls_tids")
            for p in cfg.pids:
                tg[ctypes.c_uint32(p)] = ctypes.c_uint8(1)
                for tid in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
                    td[ctypes.c_uint32(int(tid))] = ctypes.c_uint8(1)

        _call_hooks(modules, "after_load", b, cfg, pf.tracefs)
        rings = CpuRings(bcc, b, kinds, pages, ncpus, online, small_pages)
        readers = rings.readers

        if cfg.keep_off_monitored and cfg.cpus:
            moved = _threads_off(cfg.cpus)
            if moved is not None:
                notes.append(f"recorder threads kept on CPUs {host.format_cpulist(moved)}, off the monitored ones")
            else:
                notes.append("every allowed CPU is monitored: the recorder shares them with the targets")

        scheduling = _set_scheduling(cfg.rt_priority)
        if cfg.rt_priority > 0 and not scheduling.startswith("SCHED_FIFO"):
            notes.append(f"drain runs at {scheduling}: events may be lost under load")
        facts = host.host_facts()
        formats = {k.tracepoint: env.tracepoint_format(pf.tracefs, k.tracepoint)
                   for k in kinds if k.tracepoint.split(":")[0] != "perf"}
        syscalls = _syscall_table(bcc)
        tasks = host.task_snapshot()
        module_facts = _call_hooks(modules, "manifest", cfg, pf.tracefs)
        # The window opens here; everything slow was done before, so the
        # rings start draining at once.
        writer.min_ts_ns = time.monotonic_ns()
        misses_before = bpfinfo.misses_by_program(b, links.prog_fds())
        rings.activate()
        activated = time.monotonic()
        start_clock = host.clock_offsets()
        manifest = {
            "format": "latencyscope-capture",
            "format_version": FORMAT_VERSION,
            "tool_version": __version__,
            "complete": False,
            "command_line": cfg.command_line,
            "host": facts,
            "modules": modules,
            "tables": {k.name: {"module": k.module, "tracepoint": k.tracepoint,
                                "ring_bytes": pages[k.name] * 4096 * len(online),
                                "ring_bytes_per_cpu": pages[k.name] * 4096,
                                **({"small_ring_bytes_per_cpu": small_pages[k.name] * 4096}
                                   if k.name in small_pages else {})} for k in kinds},
            "filters": {"cpus": cfg.cpus, "pids": cfg.pids, "interface": cfg.interface,
                        "semantics": "an event is kept when its CPU (wakeups: target CPU) is "
                                     "monitored or its task belongs to a target process"},
            "tracepoint_formats": formats,
            "syscalls": syscalls,
            "kernel_headers": headers.manifest(),
            "tasks": tasks,
            "clock": {"start": start_clock},
            "window": {"start_ns": start_clock["monotonic_ns"]},
            "notes": notes,
            "module_facts": module_facts,
            "recorder": {"pid": os.getpid(), "drain_scheduling": scheduling, "rt_priority": cfg.rt_priority,
                         "poll_interval_s": [POLL_BUSY_S, POLL_INTERVAL_S], "compression": cfg.compression,
                         "staging": {"kinds": [k.name for k in kinds if k.staged],
                                     "records_per_chunk": STAGE_RECORDS,
                                     "records_per_small_chunk": SMALL_RECORDS, "max_age_ns": STAGE_AGE_NS,
                                     "direct_cpus": direct},
                         "hooks": hooks},
        }
        writer.write_manifest(manifest)
        writer.started = True

        status = _Status(status_stream, cfg.quiet)
        t_start = time.monotonic()
        deadline = t_start + cfg.duration_s if cfg.duration_s else None
        last_flush = last_loss = t_start
        total = 0
        lost = {k.name: [] for k in kinds}
        lost_shown = 0
        try:
            last_poll = activated  # the manifest's write (an fsync) counts too
            max_gap = 0.0
            max_fill = {k.name: 0.0 for k in kinds}  # fullest any CPU's ring of a kind was at a poll
            while True:
                now = time.monotonic()
                # The longest time the rings went undrained: what a lost
                # event's ring had to survive (in the manifest).
                max_gap = max(max_gap, now - last_poll)
                last_poll = now
                finishing = stop.requested or (deadline is not None and now >= deadline)
                busy = False
                # Records older than this are final: whatever the next
                # pass finds was reserved after it (a record in flight
                # takes well under the margin to commit).
                writer.hold_from_ns = None if finishing else time.monotonic_ns() - HOLD_BACK_NS
                for k in kinds:
                    rs = readers[k.name]
                    fill = max(r.fill_fraction() for r in rs)
                    max_fill[k.name] = max(max_fill[k.name], fill)
                    busy |= fill >= BUSY_FILL
                    total += _drain(rs, writer, k)
                if finishing:
                    break
                if now - last_flush >= FLUSH_INTERVAL_S or writer.slots_full(rows=FLUSH_ROWS):
                    writer.flush()
                    last_flush = now
                    if now - last_loss >= LOSS_MANIFEST_INTERVAL_S:
                        last_loss = now
                        lost = _lost_by_kind(b, kinds)
                        if _total(lost) != lost_shown:
                            lost_shown = _total(lost)
                            manifest.update(_loss_facts(lost, kinds))
                            writer.write_manifest(manifest)
                status.update(now - t_start, total, lambda: _total(_lost_by_kind(b, kinds)),
                              writer.bytes_written)
                poll = POLL_BUSY_S if busy else POLL_INTERVAL_S
                sleep = poll if deadline is None else min(poll, max(0.0, deadline - now))
                time.sleep(sleep)

            end_clock = host.clock_offsets()
            # Detach, then take what the rings still hold: the window is
            # closed and nothing is written into them any more.
            links.detach()
            for tp in list(b.tracepoint_fds):
                b.detach_tracepoint(tp)
            for tp in list(getattr(b, "raw_tracepoint_fds", {})):
                b.detach_raw_tracepoint(tp)
            for ev_type, ev_config in list(getattr(b, "open_perf_events", {})):
                b.detach_perf_event(ev_type, ev_config)
            writer.hold_from_ns = None
            for k in kinds:
                _drain(readers[k.name], writer, k)
            total += _drain_stages(b, writer, kinds)
            lost = _lost_by_kind(b, kinds)
            manifest["recorder"]["ring_fill_when_lost"] = _lost_fill(b, kinds, pages, small_pages, lost)
            misses = bpfinfo.misses_by_program(b, links.prog_fds())
            manifest["skipped_by_kernel"] = {p: n - misses_before.get(p, 0) for p, n in sorted(misses.items())}
            end_facts = _call_hooks(modules, "before_detach", b, cfg)
            for m, facts in end_facts.items():
                manifest["module_facts"].setdefault(m, {}).update(facts or {})
            # Detach before the final flush so nothing arrives after the window closes.
            b.cleanup()
            b = None
            writer.flush()
            _normal_scheduling()  # packing the capture is no emergency
        except CaptureWriteError as exc:
            status.done()
            if b is not None:
                lost = _lost_by_kind(b, kinds)
            raise _write_failure(exc, writer, manifest, lost, kinds)
        status.done()
        duration = (end_clock["monotonic_ns"] - start_clock["monotonic_ns"]) / 1e9
        manifest.update({
            "complete": True,
            "stopped_by": stop.signal or ("duration" if deadline else "unknown"),
            "clock": {"start": start_clock, "end": end_clock},
            "window": {"start_ns": start_clock["monotonic_ns"], "end_ns": end_clock["monotonic_ns"]},
            "events": dict(writer.rows),
            "discarded": rings.discarded(),
        })
        manifest["recorder"]["longest_drain_gap_ms"] = round(max_gap * 1e3, 1)
        manifest["recorder"]["max_ring_fill"] = {name: round(f, 4) for name, f in max_fill.items()}
        manifest["recorder"]["ring_bytes_per_record"] = rings.bytes_per_record()
        manifest.update(_loss_facts(lost, kinds))
        try:
            writer.write_manifest(manifest)
        except CaptureWriteError as exc:
            raise _write_failure(exc, writer, None, lost, kinds)
        nbytes = writer.bytes_written
        path = writer.finish()  # on failure its message says where the intact capture is
        return RecordResult(path, dict(writer.rows), manifest["lost"], duration, nbytes, notes)
    finally:
        _normal_scheduling()
        if links is not None:
            links.close()
        if b is not None:
            try:
                b.cleanup()
            except Exception:
                pass
        if rings is not None:
            rings.close()
        if writer is not None:
            writer.close_tables()
            if not writer.started:
                writer.discard()
        headers.cleanup()
        for s, h in old_handlers.items():
            signal.signal(s, signal.SIG_IGN if then_exit else h)
        os.umask(old_umask)


def _total(lost: Dict[str, List[int]]) -> int:
    return sum(sum(v) for v in lost.values())


def _loss_facts(lost: Dict[str, List[int]], kinds) -> dict:
    """Lost records per kind, per kind and CPU, and per module (manifest keys)."""
    by_module: Dict[str, int] = {}
    for k in kinds:
        by_module[k.module] = by_module.get(k.module, 0) + sum(lost.get(k.name) or [])
    return {"lost": {name: sum(v) for name, v in lost.items()},
            "lost_per_cpu": lost,
            "lost_by_module": by_module}


def _write_failure(exc: CaptureWriteError, writer: CaptureWriter, manifest: Optional[dict],
                   lost: Dict[str, List[int]], kinds) -> LatencyScopeError:
    """Stop after a failed write (disk full...): leave the partial capture
    consistent and say where the readable data is, in one line.

    The BPF programs are detached by record()'s cleanup whatever happens here.
    """
    writer.close_tables()
    if not writer.dir.is_dir():
        return LatencyScopeError(f"recording stopped: {exc.message}; nothing could be kept")
    if manifest is not None:
        # Best effort: with the space the rolled-back flush freed, say why the
        # capture ended and what was lost.  If even this fails, the manifest
        # written at start (complete: false) stays and still opens.
        manifest.update({"complete": False, "stopped_by": "error", "error": exc.message,
                         "events": dict(writer.rows)})
        if any(lost.values()):
            manifest.update(_loss_facts(lost, kinds))
        try:
            writer.write_manifest(manifest)
        except CaptureWriteError:
            pass
    n = sum(writer.rows.values())
    return LatencyScopeError(
        f"recording stopped: {exc.message}; the {n:,} events written before are readable in "
        f"{writer.dir}/ (latencyscope-analyze report {writer.dir})")


def _syscall_table(bcc) -> Dict[str, str]:
    try:
        from bcc.syscall import syscalls  # type: ignore
        return {str(k): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in syscalls.items()}
    except Exception:
        return {}


class _Status:
    """Live one-line status on a terminal; silent otherwise."""

    def __init__(self, stream, quiet: bool):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last = 0.0
        self.last_total = 0
        self.last_t = 0.0
        self.shown = False

    def update(self, elapsed: float, total: int, lost_fn, nbytes: int) -> None:
        if not self.enabled or elapsed - self.last < STATUS_INTERVAL_S:
            return
        rate = (total - self.last_total) / max(elapsed - self.last_t, 1e-9)
        self.last = self.last_t = elapsed
        self.last_total = total
        try:
            self.stream.write(f"\r\x1b[K  recording {elapsed:7.1f} s  {rate / 1e3:9.1f} k ev/s  "
                              f"{total:>11,} events  lost {lost_fn():,}  {nbytes / 2**20:8.1f} MiB")
            self.stream.flush()
            self.shown = True
        except OSError:
            self.enabled = False  # the terminal went away (SIGHUP): keep recording

    def done(self) -> None:
        if self.shown:
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except OSError:
                pass
            self.shown = False
