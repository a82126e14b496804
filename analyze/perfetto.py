"""Perfetto trace of a capture, in Perfetto's native protobuf format.

A trace file is a ``Trace`` message: nothing but repeated ``packet`` fields
(field 1), so it can be written packet by packet and never held whole.  The
few messages we need (TracePacket, TrackDescriptor, TrackEvent, ClockSnapshot,
InternedData) are encoded by hand here: the encoder renders a whole chunk of
rows at once with numpy (one uint8 matrix of per-row byte segments plus a
mask of which bytes are real; ``matrix[mask]`` is the packed stream), so
there is no protobuf object, and no Python loop, per event.  Field numbers
are those of ``protos/perfetto/trace/perfetto_trace.proto``; the tests decode
the output with the ``perfetto`` package's generated classes.

What the trace shows (see docs/perfetto.md):

* group "CPUs": per CPU a track "CPU N" with the running task as slices
  ("comm [tid]", idle not drawn), and "CPU N hardirq" / "CPU N softirq"
  tracks with the interrupt handlers;
* per process / thread: runqueue waits as slices ("runnable (wakeup)" from
  sched_wakeup, "runnable (preempted)" from a switch-out while runnable) up
  to the next switch-in, page faults and sleeps as instants;
* a flow from each wakeup to the switch-in it caused.

Timestamps stay CLOCK_MONOTONIC (the clock of ``bpf_ktime_get_ns()``): the
first packet is a ClockSnapshot whose ``primary_trace_clock`` is
BUILTIN_CLOCK_MONOTONIC, so the trace time *is* the capture's time and no
event is shifted; it also carries REALTIME so the UI can show wall-clock.
"""
from __future__ import annotations

import struct
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import polars as pl

from latencyscope.analyze.sched import complete_cpus, on_full_cpus

__all__ = ["write_trace", "TraceWriter", "Rows", "te_packet"]

# --- protobuf constants (perfetto_trace.proto) --------------------------------
BUILTIN_CLOCK_REALTIME = 1
BUILTIN_CLOCK_MONOTONIC = 3
SEQ_ID = 1  # one trusted_packet_sequence_id for the whole file
SEQ_INCREMENTAL_STATE_CLEARED = 1
SEQ_NEEDS_INCREMENTAL_STATE = 2
TYPE_SLICE_BEGIN, TYPE_SLICE_END, TYPE_INSTANT = 1, 2, 3
CHILD_ORDERING_EXPLICIT = 3

# Track uuids: fixed ranges so a uuid says what it is.
ROOT_CPUS_UUID = 1
CPU_UUID_BASE = 1 << 32  # + cpu * 4 + {0 task, 1 hardirq, 2 softirq}
PROCESS_UUID_BASE = 2 << 40  # + tgid
THREAD_UUID_BASE = 3 << 40  # + tid

# Debug-annotation names, interned once.
ANN_WAKER_TID, ANN_ADDRESS, ANN_ERROR_CODE = 1, 2, 3
_ANNOTATION_NAMES = {ANN_WAKER_TID: "waker_tid", ANN_ADDRESS: "address", ANN_ERROR_CODE: "error_code"}

# Fixed event names, interned first.
NAME_WAIT_WAKEUP = "runnable (wakeup)"
NAME_WAIT_PREEMPTED = "runnable (preempted)"
NAME_PAGE_FAULT = "page fault"
NAME_SLEEP = "sleep"
NAME_UNREPORTED = "unreported switch"
_FIXED_NAMES = (NAME_WAIT_WAKEUP, NAME_WAIT_PREEMPTED, NAME_PAGE_FAULT, NAME_SLEEP, NAME_UNREPORTED)

SOFTIRQ_NAMES = ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET",
                 "SCHED", "HRTIMER", "RCU")

PREEMPTED_BIT = 0x100  # TASK_REPORT_MAX in prev_state: switched out while runnable
CHUNK_ROWS = 1 << 17  # rows rendered at once; bounds memory, not correctness
WAIT_BUCKET_ROWS = 1 << 19  # target rows per pid bucket of the runqueue-wait join

_U64 = (1 << 64) - 1


# --- scalar encoder: descriptors and other once-per-trace packets --------------
def _uv(n: int) -> bytes:
    n &= _U64  # negative int32/int64 are ten-byte two's complement varints
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def f_varint(field: int, v: int) -> bytes:
    return _uv(field << 3) + _uv(int(v))


def f_bytes(field: int, b: bytes) -> bytes:
    return _uv((field << 3) | 2) + _uv(len(b)) + b


def f_str(field: int, s: str) -> bytes:
    return f_bytes(field, s.encode("utf-8", "replace"))


def f_fixed64(field: int, v: int) -> bytes:
    return _uv((field << 3) | 1) + struct.pack("<Q", int(v) & _U64)


def _tag(field: int, wire: int) -> bytes:
    return _uv((field << 3) | wire)


_SEQ_HDR = f_varint(10, SEQ_ID) + f_varint(13, SEQ_NEEDS_INCREMENTAL_STATE)


# --- vectorized encoder --------------------------------------------------------
class Rows:
    """Byte segments of N rows, rendered at once: ``matrix[mask].tobytes()``.

    Each segment is an (N, w) uint8 block with a same-shaped mask of the bytes
    that exist for that row (a varint uses fewer than w bytes; a field or a
    whole packet can be absent in some rows via ``where``).
    """

    def __init__(self, n: int):
        self.n = n
        self._mats: List[np.ndarray] = []
        self._masks: List[np.ndarray] = []

    def _add(self, mat: np.ndarray, mask: np.ndarray, where) -> "Rows":
        if where is not None:
            mask = mask & np.asarray(where, bool)[:, None]
        self._mats.append(mat)
        self._masks.append(mask)
        return self

    def const(self, b: bytes, where=None) -> "Rows":
        m = np.frombuffer(b, np.uint8)
        return self._add(np.broadcast_to(m, (self.n, len(m))),
                         np.ones((self.n, len(m)), bool), where)

    def varint(self, values, where=None) -> "Rows":
        v = np.asarray(values)
        v = v.astype(np.int64).view(np.uint64) if v.dtype.kind == "i" else v.astype(np.uint64)
        nb = np.ones(self.n, np.int64)
        for k in range(1, 10):
            nb += v >= np.uint64(1 << (7 * k))
        w = int(nb.max()) if self.n else 1
        cols = np.arange(w)
        mat = ((v[:, None] >> (cols.astype(np.uint64) * np.uint64(7))) & np.uint64(0x7F)).astype(np.uint8)
        mat |= (cols[None, :] < (nb - 1)[:, None]).astype(np.uint8) << np.uint8(7)
        return self._add(mat, cols[None, :] < nb[:, None], where)

    def fixed64(self, values, where=None) -> "Rows":
        v = np.ascontiguousarray(np.asarray(values).astype(np.int64)).view(np.uint8).reshape(self.n, 8)
        return self._add(v, np.ones((self.n, 8), bool), where)

    def field_varint(self, field: int, values, where=None) -> "Rows":
        return self.const(_tag(field, 0), where).varint(values, where)

    def lengths(self) -> np.ndarray:
        out = np.zeros(self.n, np.int64)
        for m in self._masks:
            out += m.sum(axis=1)
        return out

    def message(self, field: int, inner: "Rows", where=None) -> "Rows":
        """Length-delimited field `field` holding `inner`'s bytes."""
        self.const(_tag(field, 2), where).varint(inner.lengths(), where)
        for mat, mask in zip(inner._mats, inner._masks):
            self._add(mat, mask, where)
        return self

    def extend(self, other: "Rows") -> "Rows":
        self._mats += other._mats
        self._masks += other._masks
        return self

    def render(self) -> bytes:
        if not self.n or not self._mats:
            return b""
        return np.concatenate(self._mats, axis=1)[np.concatenate(self._masks, axis=1)].tobytes()


def te_packet(n: int, ts, te: Rows, where=None) -> Rows:
    """Trace.packet fields of N TracePackets each holding one TrackEvent."""
    body = Rows(n).const(b"\x40").varint(ts).const(_SEQ_HDR)  # timestamp=8
    body.message(11, te)
    return Rows(n).message(1, body, where)


def te_rows(n: int, type_: int, track_uuid, name_iid=None, *, flow_ids=None, flow_where=None,
            annotations: Sequence[Tuple[int, str, object, object]] = ()) -> Rows:
    """TrackEvent bodies: type, track_uuid, name_iid, flow_ids, debug annotations.

    ``annotations``: (name_iid, kind, values, where) with kind "uint" or "pointer".
    """
    te = Rows(n).const(f_varint(9, type_)).field_varint(11, track_uuid)
    if name_iid is not None:
        te.field_varint(10, name_iid)
    for ann_iid, kind, values, where in annotations:
        a = Rows(n).const(f_varint(1, ann_iid))
        a.field_varint({"uint": 3, "pointer": 7}[kind], values)
        te.message(4, a, where)
    if flow_ids is not None:
        te.const(_tag(47, 1), flow_where).fixed64(flow_ids, flow_where)
    return te


class TraceWriter:
    """A Trace written packet by packet to a binary file."""

    def __init__(self, f):
        self.f = f
        self.bytes = 0
        self.packets = 0
        self.track_events = 0

    def packet(self, body: bytes) -> None:
        b = f_bytes(1, body)
        self.f.write(b)
        self.bytes += len(b)
        self.packets += 1

    def rows(self, rows: Rows, packets: int, track_events: int = 0) -> None:
        b = rows.render()
        self.f.write(b)
        self.bytes += len(b)
        self.packets += packets
        self.track_events += track_events

    def event(self, ts: int, te: bytes) -> None:
        self.packet(f_varint(8, ts) + _SEQ_HDR + f_bytes(11, te))
        self.track_events += 1

    # -- once-per-trace packets --
    def clock_snapshot(self, monotonic_ns: int, realtime_minus_monotonic_ns: Optional[int]) -> None:
        clocks = f_bytes(1, f_varint(1, BUILTIN_CLOCK_MONOTONIC) + f_varint(2, monotonic_ns))
        if realtime_minus_monotonic_ns:
            clocks += f_bytes(1, f_varint(1, BUILTIN_CLOCK_REALTIME)
                              + f_varint(2, monotonic_ns + realtime_minus_monotonic_ns))
        snap = clocks + f_varint(2, BUILTIN_CLOCK_MONOTONIC)  # primary_trace_clock
        self.packet(f_varint(8, monotonic_ns) + f_varint(58, BUILTIN_CLOCK_MONOTONIC)
                    + f_varint(10, SEQ_ID) + f_bytes(6, snap))

    def start_sequence(self, event_names: Dict[str, int]) -> None:
        """Clear incremental state; packet defaults (MONOTONIC); interned names."""
        interned = b"".join(f_bytes(2, f_varint(1, iid) + f_str(2, name))
                            for name, iid in event_names.items())
        interned += b"".join(f_bytes(3, f_varint(1, iid) + f_str(2, name))
                             for iid, name in _ANNOTATION_NAMES.items())
        self.packet(f_varint(10, SEQ_ID) + f_varint(13, SEQ_INCREMENTAL_STATE_CLEARED)
                    + f_bytes(59, f_varint(58, BUILTIN_CLOCK_MONOTONIC))
                    + f_bytes(12, interned))

    def track(self, uuid: int, name: Optional[str] = None, *, parent: Optional[int] = None,
              rank: Optional[int] = None, explicit_children: bool = False,
              process: Optional[Tuple[int, str]] = None,
              thread: Optional[Tuple[int, int, str]] = None) -> None:
        td = f_varint(1, uuid)
        if name is not None:
            td += f_str(2, name)
        if parent is not None:
            td += f_varint(5, parent)
        if process is not None:
            td += f_bytes(3, f_varint(1, process[0]) + f_str(6, process[1]))
        if thread is not None:
            td += f_bytes(4, f_varint(1, thread[0]) + f_varint(2, thread[1]) + f_str(5, thread[2]))
        if explicit_children:
            td += f_varint(11, CHILD_ORDERING_EXPLICIT)
        if rank is not None:
            td += f_varint(12, rank)
        self.packet(f_varint(10, SEQ_ID) + f_bytes(60, td))


# --- the capture -> trace mapping ------------------------------------------------
def cpu_track_uuid(cpu, sub: int = 0):
    return CPU_UUID_BASE + cpu * 4 + sub


def _slices(df: pl.DataFrame, n: int) -> Iterator[pl.DataFrame]:
    for off in range(0, n, CHUNK_ROWS):
        yield df.slice(off, min(CHUNK_ROWS, n - off))


def _task_name(pid: str, comm: str) -> pl.Expr:
    return pl.format("{} [{}]", pl.col(comm), pl.col(pid))


class _Threads:
    """Thread/process descriptors, emitted the first time a thread has events."""

    def __init__(self, w: TraceWriter, info: pl.DataFrame):
        self.w = w
        self.info = {int(t): (int(g), c) for t, g, c in info.iter_rows()}  # per thread, not event
        self.threads: set = set()
        self.processes: set = set()

    def ensure(self, tids: np.ndarray) -> None:
        new = np.setdiff1d(np.unique(tids), np.fromiter(self.threads, np.int64, len(self.threads)))
        for tid in new.tolist():
            tgid, comm = self.info.get(tid, (tid, f"tid {tid}"))
            if tgid not in self.processes:
                pname = self.info.get(tgid, (tgid, comm))[1]
                self.w.track(PROCESS_UUID_BASE + tgid, process=(tgid, pname))
                self.processes.add(tgid)
            self.w.track(THREAD_UUID_BASE + tid, parent=PROCESS_UUID_BASE + tgid,
                         thread=(tgid, tid, comm))
            self.threads.add(tid)


def _prepass(cap, sw: Optional[pl.DataFrame], n_sw: int):
    """Names to intern and thread facts, in bounded memory (unique per chunk)."""
    names, threads, cpus = [], [], set()
    if sw is not None:
        for d in _slices(sw, n_sw):
            names.append(d.select(_task_name("next_pid", "next_comm").alias("name")).unique())
            # the task running before a CPU's first switch gets a slice too
            names.append(d.unique("cpu", keep="first").select(_task_name("prev_pid", "prev_comm").alias("name")))
            threads.append(d.select(tid=pl.col("next_pid").cast(pl.Int64), tgid=pl.lit(None, pl.Int64),
                                    comm="next_comm").unique(["tid"], keep="last"))
            threads.append(d.select(tid=pl.col("prev_pid").cast(pl.Int64), tgid=pl.col("prev_tgid").cast(pl.Int64),
                                    comm="prev_comm").unique(["tid"], keep="last"))
            cpus.update(d.get_column("cpu").unique().to_list())
    for kind in ("sched_wakeup", "sched_wakeup_new"):
        t = cap.table(kind)
        if t is not None:
            for d in _slices(t, t.height):
                threads.append(d.select(tid=pl.col("pid").cast(pl.Int64), tgid=pl.lit(None, pl.Int64),
                                        comm="comm").unique(["tid"], keep="last"))
    t = cap.table("page_fault_user")
    if t is not None and {"pid", "tgid"} <= set(t.columns):
        for d in _slices(t, t.height):
            threads.append(d.select(tid=pl.col("pid").cast(pl.Int64), tgid=pl.col("tgid").cast(pl.Int64),
                                    comm=pl.lit(None, pl.String)).unique(["tid"]))
    tasks = cap.tasks
    if tasks.height:
        threads.insert(0, tasks.select(tid=pl.col("tid").cast(pl.Int64), tgid=pl.col("tgid").cast(pl.Int64),
                                       comm="comm"))
    if threads:
        info = (pl.concat(threads, how="vertical_relaxed")
                .group_by("tid", maintain_order=True)
                .agg(pl.col("tgid").drop_nulls().last(), pl.col("comm").drop_nulls().last())
                .with_columns(pl.col("tgid").fill_null(pl.col("tid")),
                              pl.col("comm").fill_null(pl.format("tid {}", pl.col("tid")))))
    else:
        info = pl.DataFrame(schema={"tid": pl.Int64, "tgid": pl.Int64, "comm": pl.String})
    for kind in ("irq_handler_entry", "softirq_entry"):
        t = cap.table(kind)
        if t is not None and "cpu" in t.columns:
            cpus.update(t.get_column("cpu").unique().to_list())
    task_names = pl.concat(names).unique().sort("name").get_column("name").to_list() if names else []
    return task_names, info, sorted(int(c) for c in cpus)


def _irq_names(cap) -> Dict[int, str]:
    """IRQ number -> name, from the table's `name` column or the manifest's IRQ table."""
    t = cap.table("irq_handler_entry")
    out: Dict[int, str] = {}
    rows = (cap.manifest.get("host") or {}).get("irqs") or cap.manifest.get("irqs") or []
    if isinstance(rows, dict):
        rows = [dict(v, irq=k) if isinstance(v, dict) else {"irq": k, "name": v} for k, v in rows.items()]
    for r in rows if isinstance(rows, list) else []:
        if isinstance(r, dict):
            num = r.get("irq", r.get("number"))
            if num is not None and str(num).isdigit() and r.get("name"):
                out[int(num)] = str(r["name"])
    if t is not None and "name" in t.columns:
        for irq, name in t.select("irq", "name").unique("irq").iter_rows():  # per IRQ line
            if name:
                out[int(irq)] = str(name)
    return out


def _irq_slice_name(irq: int, names: Dict[int, str]) -> str:
    return f"IRQ {irq} {names[irq]}" if irq in names else f"IRQ {irq}"


def _softirq_name(vec: int) -> str:
    return SOFTIRQ_NAMES[vec] if 0 <= vec < len(SOFTIRQ_NAMES) else f"softirq {vec}"


def _emit_slices(w: TraceWriter, frame: pl.DataFrame, *, annotations=None, flow=None) -> int:
    """BEGIN at `ts`, END at `end_ts` on `uuid` with `iid`; frame sorted per track."""
    n_total = 0
    for d in _slices(frame, frame.height):
        n = d.height
        ts, end = d.get_column("ts").to_numpy(), d.get_column("end_ts").to_numpy()
        uuid, iid = d.get_column("uuid").to_numpy(), d.get_column("iid").to_numpy()
        anns = annotations(d) if annotations else ()
        fl = flow(d) if flow else (None, None)
        rows = te_packet(n, ts, te_rows(n, TYPE_SLICE_BEGIN, uuid, iid, flow_ids=fl[0],
                                        flow_where=fl[1], annotations=anns))
        rows.extend(te_packet(n, end, te_rows(n, TYPE_SLICE_END, uuid)))
        w.rows(rows, 2 * n, 2 * n)
        n_total += n
    return n_total


def _cpu_tasks(w: TraceWriter, sw: pl.DataFrame, n_sw: int, iids: Dict[str, int],
               start_ns: int, end_ns: int, full: Optional[List[int]] = None) -> Tuple[int, int, int]:
    """Running-task slices per CPU, streamed in row chunks with per-CPU state.

    The table is in per-CPU order (each CPU's events reach the ring buffer in
    the order they happened); only the last `next_pid` of each CPU crosses a
    chunk boundary.  A switch that starts from another task than the one last
    switched in, on a CPU recorded in full (FULL; None: all), follows switches
    the kernel did not report: an "unreported switch" instant marks it, where
    the slice before it ends.  Returns (slices, unreported, last ts written).
    """
    last: Dict[int, int] = {}  # cpu -> next_pid of its latest switch
    slices, unreported, last_ts = 0, 0, start_ns
    for off in range(0, n_sw, CHUNK_ROWS):
        d = (sw.slice(off, min(CHUNK_ROWS, n_sw - off))
             .select("ts_ns", "cpu", "prev_pid", "prev_comm", "next_pid", "next_comm")
             .with_row_index("row", offset=off)
             .sort("cpu", maintain_order=True))
        first = d.unique("cpu", keep="first", maintain_order=True)
        for cpu, prev_pid, prev_comm in first.select("cpu", "prev_pid", "prev_comm").iter_rows():  # per CPU
            if cpu not in last and prev_pid != 0:
                w.event(start_ns, f_varint(9, TYPE_SLICE_BEGIN) + f_varint(11, cpu_track_uuid(cpu))
                        + f_varint(10, iids[f"{prev_comm} [{prev_pid}]"]))
                slices += 1
            last.setdefault(cpu, prev_pid)
        carry = pl.DataFrame({"cpu": list(last), "carried": list(last.values())},
                             schema={"cpu": d.schema["cpu"], "carried": pl.Int64})
        d = (d.join(carry, on="cpu", how="left", maintain_order="left")
             .with_columns(open_before=pl.col("next_pid").shift(1).over("cpu")
                           .fill_null(pl.col("carried")) != 0,
                           is_begin=pl.col("next_pid") != 0,
                           gap=((pl.col("prev_pid") != pl.col("next_pid").shift(1).over("cpu")
                                 .fill_null(pl.col("carried"))).fill_null(False)
                                & on_full_cpus(full)),
                           iid=_task_name("next_pid", "next_comm").replace_strict(iids, default=0,
                                                                                   return_dtype=pl.UInt64)))
        n = d.height
        ts = d.get_column("ts_ns").to_numpy()
        uuid = cpu_track_uuid(d.get_column("cpu").to_numpy().astype(np.int64))
        ob, ib = d.get_column("open_before").to_numpy(), d.get_column("is_begin").to_numpy()
        rows = te_packet(n, ts, te_rows(n, TYPE_SLICE_END, uuid), where=ob)
        # Every switch-in carries flow id row+1; a runqueue wait that ends at
        # this switch-in starts the same flow, so Perfetto draws the arrow.
        rows.extend(te_packet(n, ts, te_rows(n, TYPE_SLICE_BEGIN, uuid, d.get_column("iid").to_numpy(),
                                             flow_ids=d.get_column("row").to_numpy() + 1), where=ib))
        gap = d.get_column("gap").to_numpy()
        if gap.any():
            rows.extend(te_packet(n, ts, te_rows(n, TYPE_INSTANT, uuid, np.full(n, iids[NAME_UNREPORTED], np.uint64)),
                                  where=gap))
        w.rows(rows, int(ob.sum() + ib.sum() + gap.sum()), int(ob.sum() + ib.sum() + gap.sum()))
        slices += int(ib.sum())
        unreported += int(gap.sum())
        for cpu, nxt in d.group_by("cpu").agg(pl.col("next_pid").last()).iter_rows():  # per CPU
            last[cpu] = nxt
        last_ts = max(last_ts, int(ts.max()))
    end_ns = max(end_ns, last_ts)
    for cpu, nxt in sorted(last.items()):
        if nxt != 0:
            w.event(end_ns, f_varint(9, TYPE_SLICE_END) + f_varint(11, cpu_track_uuid(cpu)))
    return slices, unreported, end_ns


def _is_runnable() -> pl.Expr:
    s = pl.col("prev_state")
    return (s == 0) | ((s & PREEMPTED_BIT) != 0)


def _wait_buckets(cap, sw: Optional[pl.DataFrame], n_sw: int, cutoff_ns: int) -> Iterator[pl.DataFrame]:
    """Runqueue waits, one frame per pid bucket (pid % B == b), exact whatever the row order.

    A wait starts at a sched_wakeup(_new) of the task or at a switch-out while
    runnable, and ends at its next switch-in; several starts before one
    switch-in make one wait from the earliest.  Columns: pid, ts, end_ts,
    kind (0 wakeup, 1 preempted), waker, row (of the switch-in).
    """
    if sw is None or not n_sw:
        return
    wakes = [t for t in (cap.table("sched_wakeup"), cap.table("sched_wakeup_new")) if t is not None]
    total = n_sw * 2 + sum(t.height for t in wakes)
    buckets = max(1, -(-total // WAIT_BUCKET_ROWS))
    for b in range(buckets):
        starts, ins = [], []
        for off in range(0, n_sw, CHUNK_ROWS):
            d = sw.slice(off, min(CHUNK_ROWS, n_sw - off)).with_row_index("row", offset=off)
            ins.append(d.filter((pl.col("next_pid") != 0) & (pl.col("next_pid") % buckets == b))
                       .select(pid=pl.col("next_pid").cast(pl.Int64), in_ts="ts_ns", row="row"))
            starts.append(d.filter((pl.col("prev_pid") != 0) & (pl.col("prev_pid") % buckets == b)
                                   & _is_runnable())
                          .select(pid=pl.col("prev_pid").cast(pl.Int64), ts="ts_ns",
                                  kind=pl.lit(1, pl.Int8), waker=pl.lit(None, pl.Int64)))
        for t in wakes:
            for d in _slices(t, t.height):
                starts.append(d.filter((pl.col("pid") % buckets == b) & (pl.col("ts_ns") <= cutoff_ns))
                              .select(pid=pl.col("pid").cast(pl.Int64), ts="ts_ns", kind=pl.lit(0, pl.Int8),
                                      waker=pl.col("waker_pid").cast(pl.Int64)))
        st = pl.concat(starts).sort("ts", "kind")
        sin = pl.concat(ins).sort("in_ts")
        if not st.height or not sin.height:
            continue
        del starts, ins
        waits = (st.join_asof(sin, left_on="ts", right_on="in_ts", by="pid", strategy="forward",
                              check_sortedness=False)
                 .drop_nulls("in_ts")
                 .group_by("pid", "row", maintain_order=True).first()  # earliest start per switch-in
                 .sort("pid", "ts")
                 .rename({"in_ts": "end_ts"}))
        yield waits


def _instants(w: TraceWriter, threads: _Threads, t: pl.DataFrame, cutoff_ns: int, iid: int,
              annotations=None) -> int:
    count = 0
    for d in _slices(t, t.height):
        d = d.filter(pl.col("ts_ns") <= cutoff_ns)
        if not d.height:
            continue
        pid = d.get_column("pid").to_numpy().astype(np.int64)
        threads.ensure(pid)
        n = d.height
        anns = annotations(d) if annotations else ()
        te = te_rows(n, TYPE_INSTANT, THREAD_UUID_BASE + pid, np.full(n, iid, np.uint64), annotations=anns)
        w.rows(te_packet(n, d.get_column("ts_ns").to_numpy(), te), n, n)
        count += n
    return count


def _pair_per_cpu(entry: pl.DataFrame, exit_: pl.DataFrame, key: str, cutoff_ns: int,
                  cpus: Iterable[int]) -> Iterator[pl.DataFrame]:
    """entry/exit pairs per CPU: (cpu, key, ts, end_ts); handlers of one kind don't nest."""
    for cpu in cpus:
        e = entry.filter(pl.col("cpu") == cpu, pl.col("ts_ns") <= cutoff_ns).select(
            ts="ts_ns", k=pl.col(key).cast(pl.Int64), x=pl.lit(0, pl.Int8))
        x = exit_.filter(pl.col("cpu") == cpu, pl.col("ts_ns") <= cutoff_ns).select(
            ts="ts_ns", k=pl.col(key).cast(pl.Int64), x=pl.lit(1, pl.Int8))
        both = pl.concat([e, x]).sort("ts", "x")
        pairs = (both.with_columns(end_ts=pl.col("ts").shift(-1), nk=pl.col("k").shift(-1),
                                   nx=pl.col("x").shift(-1))
                 .filter((pl.col("x") == 0) & (pl.col("nx") == 1) & (pl.col("nk") == pl.col("k")))
                 .select("ts", "end_ts", "k", cpu=pl.lit(cpu, pl.Int64)))
        if pairs.height:
            yield pairs


def write_trace(cap, out_path, *, max_events: Optional[int] = None) -> dict:
    """Write CAP as a Perfetto protobuf trace to OUT_PATH; return what was written.

    ``max_events`` keeps only the first N sched_switch events (table order) and
    everything else up to the last of them, for a trace the UI loads quickly;
    slices still open at that point are closed there.  Tables not in the
    capture are skipped.  Memory is bounded by the chunk size and the number
    of threads / CPUs / names, not by the number of events (runqueue waits
    are joined per bucket of thread ids).
    """
    sw = cap.table("sched_switch")
    n_sw = 0 if sw is None else sw.height
    truncated = max_events is not None and n_sw > max_events
    if truncated:
        n_sw = int(max_events)
    start_ns, end_ns = cap.window_ns
    if n_sw:
        head = sw.head(n_sw).get_column("ts_ns")
        start_ns = min(start_ns or int(head.min()), int(head.min()))
        if truncated:
            end_ns = int(head.max())
    cutoff_ns = end_ns if truncated else (1 << 63) - 1

    task_names, info, cpus = _prepass(cap, sw, n_sw)
    cpus = sorted(set(cpus) | set(range(cap.cpu_count)))
    irq_names = _irq_names(cap)
    has_irq = cap.table("irq_handler_entry") is not None and cap.table("irq_handler_exit") is not None
    has_softirq = cap.table("softirq_entry") is not None and cap.table("softirq_exit") is not None
    names = list(_FIXED_NAMES) + task_names
    if has_irq:
        irqs = pl.concat([cap.table("irq_handler_entry").select("irq"), cap.table("irq_handler_exit")
                          .select("irq")]).unique().sort("irq").get_column("irq").to_list()
        names += [_irq_slice_name(int(i), irq_names) for i in irqs]
    if has_softirq:
        names += list(SOFTIRQ_NAMES) + [_softirq_name(int(v)) for v in cap.table("softirq_entry")
                                        .get_column("vec").unique().sort().to_list()]
    iids = {name: i + 1 for i, name in enumerate(dict.fromkeys(names))}

    stats = {"path": str(out_path), "cpu_tracks": len(cpus), "cpu_slices": 0, "hardirq_slices": 0,
             "softirq_slices": 0, "runqueue_waits": 0, "wakeup_flows": 0, "page_faults": 0,
             "sleeps": 0, "unreported_switches": 0, "truncated": truncated, "skipped": []}
    with open(out_path, "wb") as f:
        w = TraceWriter(f)
        w.clock_snapshot(start_ns, cap.realtime_offset_ns or None)
        w.start_sequence(iids)
        w.track(ROOT_CPUS_UUID, "CPUs", explicit_children=True, rank=0)
        for cpu in cpus:
            w.track(cpu_track_uuid(cpu), f"CPU {cpu}", parent=ROOT_CPUS_UUID, rank=cpu * 4)
            if has_irq:
                w.track(cpu_track_uuid(cpu, 1), f"CPU {cpu} hardirq", parent=ROOT_CPUS_UUID, rank=cpu * 4 + 1)
            if has_softirq:
                w.track(cpu_track_uuid(cpu, 2), f"CPU {cpu} softirq", parent=ROOT_CPUS_UUID, rank=cpu * 4 + 2)
        threads = _Threads(w, info)

        if sw is not None:
            stats["cpu_slices"], stats["unreported_switches"], end_ns = _cpu_tasks(
                w, sw, n_sw, iids, start_ns, end_ns, complete_cpus(cap))
        else:
            stats["skipped"].append("sched_switch")

        wait_iid = {0: iids[NAME_WAIT_WAKEUP], 1: iids[NAME_WAIT_PREEMPTED]}
        for waits in _wait_buckets(cap, sw, n_sw, cutoff_ns):
            threads.ensure(waits.get_column("pid").to_numpy())
            frame = waits.with_columns(uuid=pl.col("pid") + THREAD_UUID_BASE,
                                       iid=pl.col("kind").replace_strict(wait_iid, return_dtype=pl.UInt64))

            def _waker(d):
                return [(ANN_WAKER_TID, "uint", d.get_column("waker").fill_null(0).to_numpy(),
                         d.get_column("kind").to_numpy() == 0)]

            def _flow(d):
                return d.get_column("row").to_numpy() + 1, d.get_column("kind").to_numpy() == 0

            stats["runqueue_waits"] += _emit_slices(w, frame, annotations=_waker, flow=_flow)
            stats["wakeup_flows"] += int((waits.get_column("kind") == 0).sum())

        for entry, exit_, key, sub, stat, name_of in (
                ("irq_handler_entry", "irq_handler_exit", "irq", 1, "hardirq_slices",
                 lambda k: iids[_irq_slice_name(k, irq_names)]),
                ("softirq_entry", "softirq_exit", "vec", 2, "softirq_slices",
                 lambda k: iids[_softirq_name(k)])):
            te, tx = cap.table(entry), cap.table(exit_)
            if te is None or tx is None:
                stats["skipped"].append(entry.rsplit("_", 1)[0])
                continue
            lookup = {k: name_of(k) for k in pl.concat([te.select(pl.col(key).cast(pl.Int64)), tx.select(
                pl.col(key).cast(pl.Int64))]).unique().get_column(key).to_list()}  # per IRQ line / vector
            for pairs in _pair_per_cpu(te, tx, key, cutoff_ns, cpus):
                frame = pairs.with_columns(uuid=pl.col("cpu") * 4 + CPU_UUID_BASE + sub,
                                           iid=pl.col("k").replace_strict(lookup, return_dtype=pl.UInt64))
                stats[stat] += _emit_slices(w, frame)

        pf = cap.table("page_fault_user")
        if pf is not None:
            def _fault_ann(d):
                anns = [(ANN_ADDRESS, "pointer", d.get_column("address").to_numpy(), None)]
                if "error_code" in d.columns:
                    anns.append((ANN_ERROR_CODE, "uint", d.get_column("error_code").to_numpy(), None))
                return anns
            stats["page_faults"] = _instants(w, threads, pf, cutoff_ns, iids[NAME_PAGE_FAULT],
                                             _fault_ann if "address" in pf.columns else None)
        else:
            stats["skipped"].append("page_fault_user")

        # syscall_sleep: the syscall module's table; only (ts_ns, pid) are relied on here.
        sl = cap.table("syscall_sleep")
        if sl is not None and {"ts_ns", "pid"} <= set(sl.columns):
            stats["sleeps"] = _instants(w, threads, sl, cutoff_ns, iids[NAME_SLEEP])
        else:
            stats["skipped"].append("syscall_sleep")

        stats.update(packets=w.packets, track_events=w.track_events, bytes=w.bytes,
                     thread_tracks=len(threads.threads), process_tracks=len(threads.processes),
                     start_ns=start_ns, end_ns=end_ns)
    return stats
