"""Reading a capture: the tar file ``NAME.lscope`` or a ``.partial`` directory.

The reader never needs BCC or root.  Tables are Arrow IPC streams; a table
cut short (the recorder was SIGKILLed) is read up to its last complete
batch and the capture is marked incomplete.

Files come from colleagues and crashed hosts, so nothing in them is
trusted: every error is one LatencyScopeError line, and anything that
would make a figure wrong is repaired and said in ``Capture.warnings``
(tables sorted by time, exact duplicate events dropped, impossible
timestamps dropped, malformed manifest fields ignored, counts that do not
match the manifest, events from CPUs the host did not have).
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import mmap
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import MutableMapping
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import polars as pl
import pyarrow as pa

from latencyscope import FORMAT_VERSION
from latencyscope.errors import LatencyScopeError, first_line
from latencyscope.schemas import EVENT_KINDS, kinds_of
from latencyscope.schemas.codegen import arrow_schema
from latencyscope.analyze.names import decoded

MANIFEST_NAME = "manifest.json"
TABLE_SUFFIX = ".arrows"
_KINDS = {k.name: k for k in EVENT_KINDS}

# bpf_ktime_get_ns() is CLOCK_MONOTONIC: a value past 2^63 ns (292 years of
# uptime) is damage, and would overflow every signed duration computed from it.
MAX_TS_NS = (1 << 63) - 1
# Records of different CPUs share one ring, ordered by reservation, not by
# their timestamp: a few µs of disorder is normal and silently sorted.  A
# jump back further than this means a damaged or stitched-together table.
DISORDER_WARN_NS = 1_000_000
MAX_CPUS = 1 << 16
PID_MAX_LIMIT = 1 << 22  # the kernel's hard ceiling for pid_max (include/linux/threads.h)


class _Source:
    """Where one table's batches come from, and how to repair them when read.

    Tables are not decompressed into memory when a capture is opened: one
    scanning pass checks them (``_scan``) and each analysis then reads only
    the columns it needs, batch by batch.  The repair plan found by the scan
    (rows with impossible values, exact duplicates, whether the table needs
    a sort) is applied on every read, so every reader sees the same rows.
    """

    def __init__(self, kind: Optional[str], schema: pa.Schema):
        """SCHEMA: the columns as stored (task names as strings); ``schema``
        adds the name columns the reader rebuilds (format 3, ``derived``)."""
        self.kind = kind
        self.stored_schema = schema
        self.schema, self.derived = _view(kind, schema)
        self.names = None  # () -> analyze.names.Names, set by the Capture when derived
        self.rows = 0                   # rows after repair
        self.bad_checks: List[tuple] = []   # (column, limit): rows above any are dropped
        self.drop: Optional[np.ndarray] = None  # sorted raw row indices of duplicates
        self.sorted = True              # rows are in time order as stored
        self.late_ns = 0                # max lateness behind the running max ts (0 when sorted)
        self.min_ts: Optional[int] = None
        self.max_ts: Optional[int] = None
        self.cpu_hist: Optional[np.ndarray] = None
        self._table: Optional[pa.Table] = None

    # raw batches, possibly projected: (raw row offset, batch)
    def raw_batches(self, columns: Optional[Sequence[str]] = None, plain: bool = True
                    ) -> Iterator[Tuple[int, pa.RecordBatch]]:
        """(raw row offset, batch) as stored, COLUMNS only; PLAIN: task names as strings."""
        raise NotImplementedError

    def _needed(self, columns: Optional[Sequence[str]]) -> Optional[List[str]]:
        if columns is None:
            return None
        cols = list(dict.fromkeys(columns))
        for c, _ in self.bad_checks:
            if c not in cols:
                cols.append(c)
        return [c for c in self.stored_schema.names if c in cols]

    def batches(self, columns: Optional[Sequence[str]] = None, plain: bool = True) -> Iterator[pa.RecordBatch]:
        """Repaired batches in stored order (per-CPU time order; see ``late_ns``).
        PLAIN=False: task names stay dictionary-encoded when stored so (format 2)
        or rebuilt (format 3)."""
        want = list(columns) if columns is not None else list(self.schema.names)
        derive = [c for c in want if c in self.derived]
        read = want
        if derive:
            read = [c for c in want if c not in self.derived] + ["ts_ns", "cpu"] + [self.derived[c] for c in derive]
        drop = self.drop
        for off, b in self.raw_batches(self._needed(read), plain):
            n = b.num_rows
            keep = None
            for c, lim in self.bad_checks:
                over = b.column(c).to_numpy() > lim
                if over.any():
                    keep = ~over if keep is None else keep & ~over
            if drop is not None and len(drop):
                lo, hi = np.searchsorted(drop, [off, off + n])
                if hi > lo:
                    keep = np.ones(n, dtype=bool) if keep is None else keep
                    keep[drop[lo:hi] - off] = False
            if keep is not None:
                b = b.filter(pa.array(keep))
            if derive:
                b = self._with_names(b, derive, plain)
            if b.schema.names != want:
                b = b.select(want)
            if b.num_rows:
                yield b

    def _with_names(self, b: pa.RecordBatch, derive: List[str], plain: bool) -> pa.RecordBatch:
        names = self.names()
        ts_cpu = [b.column(c).to_numpy() for c in ("ts_ns", "cpu")]
        cols = [names.column(b.column(self.derived[c]).to_numpy(), *ts_cpu, plain=plain) for c in derive]
        fields = [*b.schema, *(pa.field(c, col.type, nullable=False) for c, col in zip(derive, cols))]
        return pa.RecordBatch.from_arrays([*b.columns, *cols], schema=pa.schema(fields))

    def table(self) -> pa.Table:
        """All columns, repaired and sorted by time (the whole table in memory)."""
        if self._table is None:
            t = pa.Table.from_batches(list(self.batches()), schema=self.schema)
            if not self.sorted and t.num_rows > 1:
                ts = t.column("ts_ns").to_numpy()
                t = t.take(pa.array(np.argsort(ts, kind="stable")))
            self._table = t
        return self._table


class _TableSource(_Source):
    def __init__(self, kind, t: pa.Table):
        super().__init__(kind, t.schema)
        self._raw = t
        self.rows = t.num_rows
        if t.num_rows and "ts_ns" in t.column_names:
            # A table handed over as is (not through _finish): its span and disorder.
            ts = t.column("ts_ns").to_numpy().astype(np.int64)
            self.min_ts, self.max_ts = int(ts.min()), int(ts.max())
            self.late_ns = int((np.maximum.accumulate(ts) - ts).max())

    def raw_batches(self, columns=None, plain=True):
        t = self._raw if columns is None else self._raw.select(columns)
        off = 0
        for b in t.to_batches():
            yield off, b
            off += b.num_rows


class _Mapped:
    """The bytes of one table in a memory-mapped capture file (``buf``).

    A pass over the table hands what it has read back to the page cache
    (``done``): the file stays cached, but the process keeps only the pages
    it is working on resident instead of the whole capture (~8 B per event
    after compression) on top of the analysis; a later pass maps them in
    again from the cache (minor faults)."""

    def __init__(self, mm: mmap.mmap, offset: int, size: int):
        self.mm, self.offset = mm, offset
        self.buf = pa.py_buffer(mm).slice(offset, size)

    def done(self, lo: int, hi: int) -> None:
        """Bytes [LO, HI) of the table were read (whole pages inside them are dropped)."""
        page = mmap.PAGESIZE
        a = -(-(self.offset + lo) // page) * page
        b = (self.offset + hi) // page * page
        if b > a:
            try:
                self.mm.madvise(mmap.MADV_DONTNEED, a, b - a)
            except (OSError, ValueError, AttributeError):  # not on this platform: they stay
                pass


def _reading(source):
    """(a BufferReader over SOURCE -- a pa.Buffer or _Mapped --, a function
    to call after each batch that drops what the reader has passed)."""
    f = pa.BufferReader(getattr(source, "buf", source))
    if not isinstance(source, _Mapped):
        return f, lambda: None
    pos = [0]

    def passed():
        now = f.tell()
        source.done(pos[0], now)
        pos[0] = now
    return f, passed


class _StreamSource(_Source):
    """An IPC stream in a (memory-mapped) buffer; only its first ``n_batches`` are good."""

    def __init__(self, kind, schema, buf, n_batches: int):
        super().__init__(kind, schema)
        self._buf = buf
        self.n_batches = n_batches

    def raw_batches(self, columns=None, plain=True):
        stored = self.stored_schema
        if columns is None:
            idx, schema = None, stored
        else:
            idx = [stored.names.index(c) for c in columns]
            schema = pa.schema([stored.field(i) for i in idx])
        # included_fields: the other columns' buffers are neither decompressed nor copied.
        opts = pa.ipc.IpcReadOptions(included_fields=idx) if idx is not None else None
        f, passed = _reading(self._buf)
        reader = pa.ipc.open_stream(f, options=opts)
        off = 0
        for _ in range(self.n_batches):
            b = reader.read_next_batch()
            passed()
            yield off, (pa.RecordBatch.from_arrays(_plain(b.columns), schema=schema) if plain
                        else pa.RecordBatch.from_arrays(b.columns, names=schema.names))
            off += b.num_rows


def _view(kind: Optional[str], stored: pa.Schema):
    """(the schema readers see, {rebuilt name column: its pid column}) of a
    table stored with STORED's columns: format 3 tables lack the kind's
    ``names`` columns, which the reader rebuilds; earlier ones have them."""
    k = _KINDS.get(kind) if kind else None
    missing = [(c, pid) for c, pid in (k.names if k else ()) if c not in stored.names]
    if not missing or not all(c in stored.names for c in ("ts_ns", "cpu", *(p for _, p in missing))):
        return stored, {}
    extra = [f for f in arrow_schema(k) if f.name in dict(missing)]
    return pa.schema([*stored, *extra], metadata=stored.metadata), dict(missing)


def _plain_fields(schema: pa.Schema) -> list:
    """SCHEMA's fields with dictionary-encoded task names as strings."""
    return [f.with_type(pa.string()) if pa.types.is_dictionary(f.type) else f for f in schema]


def _plain(columns) -> list:
    """Dictionary-encoded task names (format 2) as the strings the analyses use."""
    return [decoded(c) if pa.types.is_dictionary(c.type) else c for c in columns]


class _Tables(MutableMapping):
    """name -> pa.Table, read and repaired only when asked for (``Capture.arrow``)."""

    def __init__(self, sources: Dict[str, _Source]):
        self._src = sources
        self.names_of = None  # the Capture's name lookup, for sources that rebuild names

    def bind_names(self, names_of) -> None:
        """Give every source, now and later, the Capture's name lookup."""
        self.names_of = names_of
        for src in self._src.values():
            src.names = names_of

    def source(self, name: str) -> Optional[_Source]:
        return self._src.get(name)

    def __getitem__(self, name):
        return self._src[name].table()

    def __setitem__(self, name, t):
        src = self._src[name] = t if isinstance(t, _Source) else _TableSource(name, t)
        src.names = self.names_of

    def __delitem__(self, name):
        del self._src[name]

    def __iter__(self):
        return iter(self._src)

    def __len__(self):
        return len(self._src)

    def __contains__(self, name):
        return name in self._src

    def clear(self):
        self._src.clear()


@dataclass
class Capture:
    path: str
    manifest: dict
    arrow: Dict[str, pa.Table]
    incomplete: bool = False
    warnings: List[str] = field(default_factory=list)
    _frames: Dict[str, pl.DataFrame] = field(default_factory=dict)
    _names: Optional[object] = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.arrow, _Tables):
            self.arrow = _Tables({n: _TableSource(n, t) for n, t in self.arrow.items()})
        self.arrow.bind_names(self.names)

    def names(self):
        """The task-name lookup (analyze/names.py) over this capture's name records,
        built when a table that does not record names (format 3) is first read."""
        if self._names is None:
            from latencyscope.analyze.names import Names, timeline

            frames = [self.frame(n, cols) for n, cols in (
                ("sched_wakeup_new", ["pid", "ts_ns", "comm"]),
                ("task_rename", ["pid", "ts_ns", "oldcomm", "comm"]),
                ("sched_migrate_task", ["pid", "ts_ns", "comm"]))]
            hists = [getattr(self.arrow.source(n), "cpu_hist", None) for n in self.arrow]
            ncpus = max([self.cpu_count or 0] + [len(h) for h in hists if h is not None])
            self._names = Names(timeline(self.tasks, frames), ncpus)
        return self._names

    # --- tables -------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        return name in self.arrow

    def table(self, name: str) -> Optional[pl.DataFrame]:
        """The event table KIND as a DataFrame sorted by time, or None when not recorded.

        The whole table in memory: analyses of large captures use ``frame``,
        ``scan`` or ``chunks`` with the columns they need instead.
        """
        if name not in self.arrow:
            return None
        if name not in self._frames:
            self._frames[name] = pl.from_arrow(self.arrow[name], rechunk=False)
        return self._frames[name]

    def frame(self, name: str, columns: Optional[Sequence[str]] = None) -> Optional[pl.DataFrame]:
        """Only COLUMNS of table NAME (repaired), in stored order: each CPU's
        events in time order, CPUs interleaved within ``late_ns``; None when not
        recorded.  Cheap when the table was already read whole."""
        src = self.arrow.source(name) if name in self.arrow else None
        if src is None:
            return None
        cols = list(columns) if columns is not None else list(src.schema.names)
        if name in self._frames:
            return self._frames[name].select(cols)
        if src._table is not None:
            return pl.from_arrow(src._table.select(cols), rechunk=False)
        bs = list(src.batches(cols))
        schema = pa.schema([src.schema.field(c) for c in cols])
        return pl.from_arrow(pa.Table.from_batches(bs, schema=schema), rechunk=False)

    def scan(self, name: str, columns: Optional[Sequence[str]] = None) -> Optional[pl.LazyFrame]:
        """``frame(name, columns)`` as a LazyFrame (stored order, not sorted by time)."""
        df = self.frame(name, columns)
        return None if df is None else df.lazy()

    def chunks(self, columns: Dict[str, Sequence[str]], rows: int = 4_000_000, categorical: bool = False
               ) -> Iterator[Dict[str, pl.DataFrame]]:
        """The tables of COLUMNS (name -> columns) cut into consecutive time slices.

        Each slice holds, for every named table, exactly its events with
        start <= ts_ns < end (about ROWS events in all), in stored order; a
        table not recorded is absent.  Events are read batch by batch, so
        memory stays bounded by the slice size whatever the capture's size.
        Stored order is time order per CPU but CPUs interleave, each at most
        ``late_ns`` behind: a slice is cut only once every table has been read
        that far past its end.

        CATEGORICAL: task names come as Polars Categorical when the capture
        stores them dictionary-encoded (format 2), String otherwise.  Names
        as strings churn memory through every slice's filter and concat
        (+80 MiB over 1.6 M switches); cast what is reported instead.
        """
        srcs = {n: self.arrow.source(n) for n in columns if n in self.arrow}
        srcs = {n: s for n, s in srcs.items() if s.rows}
        if not srcs:
            return
        lo = min(s.min_ts for s in srcs.values())
        hi = max(s.max_ts for s in srcs.values())
        total = sum(s.rows for s in srcs.values())
        n_slices = max(1, -(-total // max(1, rows)))
        step = max(1, -(-(hi - lo + 1) // n_slices))
        its = {n: s.batches(columns[n], plain=not categorical) for n, s in srcs.items()}
        bufs: Dict[str, List[pl.DataFrame]] = {n: [] for n in srcs}
        seen = {n: -1 for n in srcs}          # running max ts read so far
        done = {n: False for n in srcs}
        bound = lo
        while True:
            bound = bound + step
            last = bound > hi
            out = {}
            for n, s in srcs.items():
                while not done[n] and (last or seen[n] < bound + s.late_ns):
                    b = next(its[n], None)
                    if b is None:
                        done[n] = True
                        break
                    df = pl.from_arrow(b, rechunk=False)
                    if df.height:
                        seen[n] = max(seen[n], int(df["ts_ns"].max()))
                        bufs[n].append(df)
                cols = list(columns[n])
                cur = pl.concat(bufs[n], how="vertical") if bufs[n] else None
                if cur is None:
                    out[n] = pl.from_arrow(pa.schema([s.schema.field(c) for c in cols]).empty_table())
                    continue
                if last:
                    out[n], bufs[n] = cur, []
                elif s.sorted and not s.late_ns:
                    # In time order: the slice is a prefix, cut without copying.
                    k = int(cur["ts_ns"].search_sorted(bound, side="left"))
                    out[n] = cur.head(k)
                    bufs[n] = [cur.slice(k)] if k < cur.height else []
                else:
                    inside = cur["ts_ns"] < bound
                    out[n] = cur.filter(inside)
                    rest = cur.filter(~inside)
                    bufs[n] = [rest] if rest.height else []
            if any(df.height for df in out.values()) or last:
                yield out
            if last:
                return

    def rows(self, name: str) -> int:
        src = self.arrow.source(name) if name in self.arrow else None
        return src.rows if src is not None else 0

    def has_module(self, module: str) -> bool:
        return module in self.modules and any(k.name in self.arrow for k in kinds_of(module))

    # --- facts ----------------------------------------------------------------
    @property
    def modules(self) -> List[str]:
        return list(self.manifest.get("modules", []))

    @property
    def host(self) -> dict:
        return self.manifest.get("host", {})

    @property
    def cpu_count(self) -> int:
        return int(self.host.get("cpu_count") or 0)

    @property
    def window_ns(self):
        """(start, end) of the capture window in monotonic ns.

        For an incomplete capture the end is the last event seen.
        """
        w = self.manifest.get("window", {})
        start = w.get("start_ns")
        end = w.get("end_ns")
        if start is None or end is None:
            lo, hi = self._event_span()
            start = lo if start is None else start
            end = hi if end is None else end
        return int(start or 0), int(end or 0)

    @property
    def duration_s(self) -> float:
        s, e = self.window_ns
        return max(0.0, (e - s) / 1e9)

    def _event_span(self):
        lo, hi = None, None
        for name in self.arrow:
            src = self.arrow.source(name)
            a, b = src.min_ts, src.max_ts
            if a is None and src.rows and "ts_ns" in src.schema.names:
                import pyarrow.compute as pc
                mm = pc.min_max(src.table().column("ts_ns"))
                a, b = mm["min"].as_py(), mm["max"].as_py()
            if a is not None:
                lo = a if lo is None else min(lo, a)
                hi = b if hi is None else max(hi, b)
        return lo, hi

    @property
    def realtime_offset_ns(self) -> int:
        clock = self.manifest.get("clock", {})
        start = clock.get("start", {})
        return int(start.get("realtime_minus_monotonic_ns", 0))

    def wall_time(self, ts_ns: int) -> str:
        """Monotonic ns of an event -> ISO-8601 UTC wall-clock time (µs); "" when out of range."""
        t = (int(ts_ns) + self.realtime_offset_ns) / 1e9
        try:
            return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds")
        except (OverflowError, OSError, ValueError):
            return ""

    @property
    def events(self) -> Dict[str, int]:
        return {name: self.arrow.source(name).rows for name in self.arrow}

    @property
    def lost(self) -> Dict[str, int]:
        return {k: int(v) for k, v in (self.manifest.get("lost") or {}).items()}

    @property
    def skipped(self) -> Dict[str, int]:
        """Per program (tracepoint), events the kernel did not run it for because
        another BPF program was running on that CPU (recursion misses)."""
        return {k: int(v) for k, v in (self.manifest.get("skipped_by_kernel") or {}).items()}

    @property
    def recorder_tgid(self) -> Optional[int]:
        """The recorder's own process id (its faults and futexes are not the host's)."""
        rec = self.manifest.get("recorder")
        pid = rec.get("pid") if isinstance(rec, dict) else None
        return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None

    def without_recorder(self, df: Optional[pl.DataFrame], col: str = "tgid") -> Optional[pl.DataFrame]:
        """DF minus the rows of the recorder's own process, when both are known."""
        rec = self.recorder_tgid
        if df is None or rec is None or col not in df.columns:
            return df
        return df.filter(pl.col(col).cast(pl.Int64) != rec)

    @property
    def tasks(self) -> pl.DataFrame:
        """Threads alive when recording started: tid, tgid, comm, kthread."""
        return _tasks_frame(self.manifest.get("tasks") or [])


_TASK_SCHEMA = {"tid": pl.Int32, "tgid": pl.Int32, "comm": pl.String, "kthread": pl.Boolean}


def _tasks_frame(rows) -> pl.DataFrame:
    if not isinstance(rows, list):
        raise ValueError("tasks is not a list")
    if not rows:
        return pl.DataFrame(schema=_TASK_SCHEMA)
    return pl.DataFrame(rows, schema=_TASK_SCHEMA, orient="row") if isinstance(rows[0], list) \
        else pl.DataFrame(rows).select([pl.col(c).cast(t) for c, t in _TASK_SCHEMA.items()])


def _not_capture(path: str, why: str) -> LatencyScopeError:
    return LatencyScopeError(f"{path} is not a LatencyScope capture ({why})")


def _check_manifest(path: str, manifest) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != "latencyscope-capture":
        raise _not_capture(path, "manifest.json lacks the latencyscope-capture format tag")
    v = manifest.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise _not_capture(path, "manifest.json has no format version")
    if v > FORMAT_VERSION:
        raise LatencyScopeError(
            f"{path} has capture format version {v}, newer than this analyzer understands "
            f"({FORMAT_VERSION}); upgrade latencyscope")
    if v < 1:
        raise _not_capture(path, f"manifest.json has an invalid format version {v}")
    return manifest


def _is_int(v, lo: int = 0, hi: int = MAX_TS_NS) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _sanitize_manifest(m: dict, warnings: List[str]) -> dict:
    """Drop manifest facts of the wrong type or range, saying so.

    What the analyses read from the manifest must be what it claims to be;
    a field that is not is ignored (the tables are the ground truth).
    """
    m = dict(m)

    def bad(key: str, why: str, default=None):
        warnings.append(f"manifest field {key} is malformed ({why}); ignored")
        if default is None:
            m.pop(key, None)
        else:
            m[key] = default

    if not isinstance(m.get("complete", False), bool):
        bad("complete", "not true/false", False)
    host = m.get("host", {})
    if not isinstance(host, dict):
        bad("host", "not an object", {})
    else:
        host = dict(host)
        if "cpu_count" in host and not _is_int(host["cpu_count"], 1, MAX_CPUS):
            warnings.append(f"manifest field host.cpu_count is malformed ({host['cpu_count']!r}); ignored")
            host.pop("cpu_count")
        for key in ("isolated_cpus", "nohz_full_cpus"):
            v = host.get(key)
            if v is not None and not (isinstance(v, list) and all(_is_int(c, 0, MAX_CPUS) for c in v)):
                warnings.append(f"manifest field host.{key} is malformed; ignored")
                host[key] = []
        if "irqs" in host and not isinstance(host["irqs"], list):
            host["irqs"] = []
        m["host"] = host
    mods = m.get("modules", [])
    if not (isinstance(mods, list) and all(isinstance(x, str) for x in mods)):
        bad("modules", "not a list of names", [])
    win = m.get("window", {})
    if not isinstance(win, dict):
        bad("window", "not an object", {})
    else:
        win = {k: v for k, v in win.items() if k in ("start_ns", "end_ns")}
        for k in list(win):
            if not _is_int(win[k]):
                warnings.append(f"manifest field window.{k} is malformed ({win[k]!r}); the events' span is used")
                win.pop(k)
        if "start_ns" in win and "end_ns" in win and win["end_ns"] < win["start_ns"]:
            warnings.append("manifest window ends before it starts; the events' span is used")
            win = {}
        m["window"] = win
    for key in ("events", "lost", "skipped_by_kernel"):
        v = m.get(key)
        if v is not None and not (isinstance(v, dict) and all(_is_int(n) for n in v.values())):
            bad(key, "not a table of counts")
    clock = m.get("clock", {})
    start = clock.get("start", {}) if isinstance(clock, dict) else None
    if not isinstance(start, dict) or not _is_int(start.get("realtime_minus_monotonic_ns", 0), -MAX_TS_NS):
        bad("clock", "no usable monotonic-to-wall-clock offset", {})
    filters = m.get("filters", {})
    if not isinstance(filters, dict):
        bad("filters", "not an object", {})
    else:
        filters = dict(filters)
        for key in ("cpus", "pids"):
            v = filters.get(key)
            if v is not None and not (isinstance(v, list) and all(_is_int(x, 0, MAX_TS_NS) for x in v)):
                warnings.append(f"manifest field filters.{key} is malformed; ignored")
                filters[key] = None if key == "cpus" else []
        m["filters"] = filters
    tasks = m.get("tasks", [])
    try:
        _tasks_frame(tasks)
    except Exception:
        bad("tasks", "not a task table", [])
    return m


def _read_stream(source, name: str, warnings: List[str]) -> (_Source, bool):
    """Check every complete batch of one IPC stream (a buffer) without keeping
    it; (source of those batches, truncated).  ``source.checker`` holds the scan."""
    expected = arrow_schema(_KINDS[name])
    stored = arrow_schema(_KINDS[name], stored=True)  # format 3: names dictionary-encoded, some rebuilt
    stored2 = arrow_schema(_KINDS[name], stored=True, names_stored=True)  # format 2: all recorded
    f, passed = _reading(source)
    try:
        reader = pa.ipc.open_stream(f)
        schema = reader.schema.remove_metadata()
        names = schema.names
    except (pa.ArrowException, OSError, EOFError, UnicodeError) as exc:
        warnings.append(f"table {name} is empty or unreadable ({first_line(exc)}); treated as no events")
        return expected.empty_table(), True
    for on_disk in (stored, stored2, expected):
        if schema.equals(on_disk.remove_metadata()):
            break
    else:
        raise LatencyScopeError(f"table {name} does not have the schema this analyzer expects "
                                f"(written by another version, or damaged): {', '.join(names)[:200]}")
    chk = _Checker(name, on_disk)
    n_batches, truncated = 0, False
    while True:
        try:
            batch = reader.read_next_batch()
            # A damaged batch can decode into arrays whose offsets point
            # outside their buffers; check before anything reads them.
            batch.validate(full=True)
        except StopIteration:
            break
        except (pa.ArrowException, OSError, EOFError, UnicodeError):
            truncated = True
            break
        # Our own schema (its units metadata), not the file's: metadata is not
        # checked above and damaged bytes there must not reach Polars.
        chk.feed(pa.RecordBatch.from_arrays(batch.columns, schema=on_disk))
        n_batches += 1
        passed()
    src = _StreamSource(name, pa.schema(_plain_fields(on_disk), metadata=on_disk.metadata), source, n_batches)
    src.checker = chk
    return src, truncated


def _read_streams(streams, tables: dict, warnings: List[str]) -> bool:
    """``_read_stream`` of every (kind, buffer) into TABLES; whether one was cut short.

    Two tables are scanned side by side (the scan is decompression and numpy,
    mostly outside the GIL); tables, warnings and errors come in STREAMS' order."""
    if not streams:
        return False
    with ThreadPoolExecutor(min(2, len(streams))) as pool:
        jobs = [(kind, w, None if buf is None else pool.submit(_read_stream, buf, kind, w))
                for (kind, buf), w in zip(streams, [[] for _ in streams])]
        truncated = False
        for kind, w, job in jobs:
            if job is None:
                warnings.append(f"table {kind} is unknown to this analyzer; ignored")
                continue
            tables[kind], t = job.result()
            warnings += w
            truncated |= t
    return truncated


def open_capture(path: str) -> Capture:
    """Open and validate a capture; raises LatencyScopeError (exit 3) on bad input.

    Accepts the packed file ``NAME.lscope`` or a ``NAME.lscope.partial/``
    directory a recorder left behind.
    """
    try:
        return _open(path)
    except OSError as exc:
        raise LatencyScopeError(f"cannot read {path}: {exc.strerror or exc}"
                                + (f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""))


def _open(path: str) -> Capture:
    p = Path(path)
    if not p.exists():
        partial = Path(str(path) + ".partial")
        hint = f"; a recording that was cut short left {partial}/, analyze that" if partial.is_dir() else ""
        raise LatencyScopeError(f"capture {path} not found{hint}")
    if p.is_dir():
        return _open_dir(str(p))
    if not os.access(p, os.R_OK):
        raise LatencyScopeError(f"cannot read {path}: permission denied")
    if p.stat().st_size == 0:
        raise _not_capture(str(path), "empty file")
    try:
        tar = tarfile.open(p, mode="r:")
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, EOFError, UnicodeError) as exc:
        raise _not_capture(str(path), f"not a capture archive: {first_line(exc)}")
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EISDIR):
            raise
        raise _not_capture(str(path), f"not a capture archive: {exc.strerror or exc}")
    if MANIFEST_NAME not in members:
        raise _not_capture(str(path), "no manifest.json inside")
    try:
        manifest = json.loads(tar.extractfile(members[MANIFEST_NAME]).read())
    except (ValueError, tarfile.TarError, EOFError) as exc:
        raise _not_capture(str(path), f"manifest.json is damaged: {first_line(exc)}")
    _check_manifest(str(path), manifest)
    with open(p, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    size = len(mm)
    warnings: List[str] = []
    tables: Dict[str, pa.Table] = {}
    truncated = False
    streams = []
    for name, m in members.items():
        if not name.endswith(TABLE_SUFFIX):
            continue
        kind = name[: -len(TABLE_SUFFIX)]
        if kind not in _KINDS:
            streams.append((kind, None))   # said in its place among the tables' warnings
            continue
        end = min(m.offset_data + m.size, size)
        if end < m.offset_data + m.size:
            truncated = True
        buf = _Mapped(mm, m.offset_data, end - m.offset_data) if end > m.offset_data else pa.py_buffer(b"")
        streams.append((kind, buf))
    truncated |= _read_streams(streams, tables, warnings)
    return _finish(str(path), manifest, tables, truncated, warnings)


def _open_dir(path: str) -> Capture:
    mpath = os.path.join(path, MANIFEST_NAME)
    if not os.access(path, os.R_OK | os.X_OK):
        raise LatencyScopeError(f"cannot read {path}: permission denied")
    if not os.path.isfile(mpath):
        raise _not_capture(path, "directory without manifest.json")
    try:
        manifest = json.loads(Path(mpath).read_bytes())
    except ValueError as exc:
        raise _not_capture(path, f"manifest.json is damaged: {exc}")
    _check_manifest(path, manifest)
    warnings: List[str] = []
    tables: Dict[str, pa.Table] = {}
    truncated = False
    streams = []
    for fn in sorted(os.listdir(path)):
        if not fn.endswith(TABLE_SUFFIX):
            continue
        kind = fn[: -len(TABLE_SUFFIX)]
        if kind not in _KINDS:
            streams.append((kind, None))   # said in its place among the tables' warnings
            continue
        mm = pa.memory_map(os.path.join(path, fn), "r")
        streams.append((kind, mm.read_at(mm.size(), 0)))
    truncated |= _read_streams(streams, tables, warnings)
    return _finish(path, manifest, tables, truncated, warnings)


def _repair(name: str, t: pa.Table, warnings: List[str]) -> pa.Table:
    """Make a table safe to analyze: drop impossible timestamps, sort by
    time, drop exact duplicates -- each said in the warnings."""
    if not t.num_rows or "ts_ns" not in t.column_names:
        return t
    import pyarrow.compute as pc

    ts = t.column("ts_ns").to_numpy()
    bad = None
    what = []
    checks = [("ts_ns", MAX_TS_NS, "timestamps beyond 2^63 ns")]
    k = _KINDS.get(name)
    for f in (k.fields if k else ()):
        limit = {"tid": PID_MAX_LIMIT, "tgid": PID_MAX_LIMIT, "cpu": MAX_CPUS}.get(f.unit)
        if limit is not None and f.name in t.column_names and f.ctype != "comm":
            checks.append((f.name, limit, f"{f.name} > {limit}"))
    for col, limit, label in checks:
        # Only values no kernel can produce; negative sentinels (-1) stay.
        mx = pc.max(t.column(col)).as_py()
        if mx is not None and mx > limit:
            over = t.column(col).to_numpy() > limit
            bad = over if bad is None else bad | over
            what.append(label)
    if bad is not None:
        n = int(bad.sum())
        warnings.append(f"table {name}: {n:,} events with impossible values ({', '.join(what)}) dropped")
        t = t.filter(pa.array(~bad))
        ts = ts[~bad]
    if len(ts) < 2:
        return t
    if (ts[1:] < ts[:-1]).any():
        step = np.diff(ts.astype(np.int64))
        back = int(-step.min())
        order = np.argsort(ts, kind="stable")
        t = t.take(pa.array(order))
        ts = ts[order]
        if back > DISORDER_WARN_NS:
            warnings.append(f"table {name}: {int((step < 0).sum()):,} events out of time order (up to "
                            f"{back / 1e6:.3f} ms back); sorted by time before analysis -- the capture may "
                            f"be damaged or stitched together")
    same = ts[1:] == ts[:-1]
    if same.any():
        cand = np.zeros(len(ts), dtype=bool)
        cand[1:] |= same
        cand[:-1] |= same
        idx = np.flatnonzero(cand)
        sub = pl.from_arrow(t.take(pa.array(idx)))
        if isinstance(sub, pl.DataFrame):
            again = sub.select(~pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()
            if again.any():
                keep = np.ones(len(ts), dtype=bool)
                keep[idx[again]] = False
                warnings.append(f"table {name}: {int(again.sum()):,} duplicate events (identical in every "
                                f"field) dropped")
                t = t.filter(pa.array(keep))
    return t


def _rows(b: pa.RecordBatch, rows: np.ndarray) -> Dict[str, np.ndarray]:
    """Rows ROWS of B as numpy columns, task names as str objects: duplicate
    candidates.  Gathered column by column: RecordBatch.take would load
    pyarrow.compute (24 ms of every start)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = {}
    for name, col in zip(b.schema.names, b.columns):
        if col.null_count == 0 and pa.types.is_dictionary(col.type):
            cols[name] = col.dictionary.to_numpy(zero_copy_only=False)[col.indices.to_numpy()[rows]]
        elif col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            cols[name] = col.to_numpy()[rows]
        else:
            cols[name] = np.array(pl.from_arrow(col).gather(rows).to_list() + [None], dtype=object)[:-1]
    return cols


class _Checker:
    """One pass over a table's batches, as they are read: what ``_repair``
    would do, found without holding the table (impossible values, order,
    exact duplicates), plus the figures the reader needs (span, CPUs).

    Records of one CPU arrive in time order; CPUs interleave a few µs apart
    (one shared ring, ts taken after the reserve).  Exact duplicates are
    then neighbours among their CPU's records, so they are found per CPU.
    A table whose CPUs are not each in time order (damaged, stitched, or
    shuffled) is read whole and repaired by ``_repair`` instead.
    """

    def __init__(self, name: str, schema: pa.Schema):
        self.name = name
        names = schema.names
        self.has_ts = "ts_ns" in names
        self.has_cpu = "cpu" in names
        self.checks = [("ts_ns", MAX_TS_NS, "timestamps beyond 2^63 ns")] if self.has_ts else []
        k = _KINDS.get(name)
        for f in (k.fields if k else ()):
            limit = {"tid": PID_MAX_LIMIT, "tgid": PID_MAX_LIMIT, "cpu": MAX_CPUS}.get(f.unit)
            if limit is not None and f.name in names and f.ctype != "comm":
                self.checks.append((f.name, limit, f"{f.name} > {limit}"))
        self.raw = 0
        self.rows = 0
        self.bad_rows = 0
        self.bad_labels: set = set()
        self.last_ts: Optional[int] = None
        self.neg = 0
        self.min_step = 0
        self.run_max: Optional[int] = None
        self.late = 0
        self.percpu_ok = self.has_ts and self.has_cpu
        self.carry: Dict[int, tuple] = {}
        self.cand: List[tuple] = []
        self.min_ts: Optional[int] = None
        self.max_ts: Optional[int] = None
        self.cpu_hist = np.zeros(0, dtype=np.int64)

    def feed(self, b: pa.RecordBatch) -> None:
        n = b.num_rows
        off = self.raw
        self.raw += n
        if not n or not self.has_ts:
            self.rows += n
            return
        bad = None
        for col, lim, label in self.checks:
            v = b.column(col).to_numpy()
            if v.max() > lim:          # a reduction; the mask only for a batch that has such values
                over = v > lim
                bad = over if bad is None else bad | over
                self.bad_labels.add(label)
        ts = b.column("ts_ns").to_numpy()
        cpu = b.column("cpu").to_numpy() if self.has_cpu else None
        rowpos = None
        if bad is not None:
            self.bad_rows += int(bad.sum())
            rowpos = np.flatnonzero(~bad)
            ts = ts[rowpos]
            cpu = cpu[rowpos] if cpu is not None else None
        m = len(ts)
        self.rows += m
        if not m:
            return
        ts = ts.view(np.int64) if ts.dtype == np.uint64 else ts.astype(np.int64)   # <= MAX_TS_NS now
        lo, hi = int(ts.min()), int(ts.max())
        self.min_ts = lo if self.min_ts is None else min(self.min_ts, lo)
        self.max_ts = hi if self.max_ts is None else max(self.max_ts, hi)
        # Steps back in time: sought only in a batch that has some (the recorder writes none).
        if (self.last_ts is not None and int(ts[0]) < self.last_ts) or (ts[1:] < ts[:-1]).any():
            step = np.diff(ts, prepend=ts[:1] if self.last_ts is None else np.int64(self.last_ts))
            self.neg += int((step < 0).sum())
            self.min_step = min(self.min_step, int(step.min()))
        self.last_ts = int(ts[-1])
        if self.neg:
            rm = np.maximum.accumulate(ts)
            if self.run_max is not None:
                np.maximum(rm, self.run_max, out=rm)
            self.late = max(self.late, int((rm - ts).max()))
            self.run_max = int(rm[-1])
        else:
            self.run_max = int(ts[-1]) if self.run_max is None else max(self.run_max, int(ts[-1]))
        if cpu is not None:
            h = np.bincount(cpu)
            if len(h) > len(self.cpu_hist):
                h[: len(self.cpu_hist)] += self.cpu_hist
                self.cpu_hist = h
            else:
                self.cpu_hist[: len(h)] += h
        if self.percpu_ok:
            if self.neg:
                self._per_cpu(b, off, ts, cpu, rowpos)
            else:
                self._in_time_order(b, off, ts, cpu, rowpos)

    def _in_time_order(self, b, off, ts, cpu, rowpos) -> None:
        """``_per_cpu`` for a table in time order so far (as the recorder writes
        them): each CPU is then in time order too, and rows with equal times are
        neighbours; all of them are taken as duplicate candidates (a few more
        than ``_per_cpu`` takes, none that changes which are duplicates),
        without sorting the batch by CPU."""
        pos = []
        eq = np.flatnonzero(ts[1:] == ts[:-1])
        if len(eq):
            pos += [eq, eq + 1]
        t0 = int(ts[0])
        same = [(r, row) for t, r, row in self.carry.values() if t == t0]
        if same:
            for r, row in same:
                self.cand.append((np.array([r]), _rows(row, np.zeros(1, dtype=np.int64))))
            pos.append(np.arange(int(np.searchsorted(ts, t0, side="right"))))
        last = np.full(int(cpu.max()) + 1, -1, dtype=np.int64)
        np.maximum.at(last, cpu, np.arange(len(cpu)))
        for c in np.flatnonzero(last >= 0).tolist():   # per CPU, not per event
            p = int(last[c])
            r = p if rowpos is None else int(rowpos[p])
            self.carry[c] = (int(ts[p]), off + r, b.slice(r, 1))
        if pos:
            p = np.unique(np.concatenate(pos))
            r = p if rowpos is None else rowpos[p]
            self.cand.append((off + r, _rows(b, r)))

    def _per_cpu(self, b, off, ts, cpu, rowpos) -> None:
        order = np.argsort(cpu, kind="stable")
        cs, tss = cpu[order], ts[order]
        same = cs[1:] == cs[:-1]
        if (same & (tss[1:] < tss[:-1])).any():
            self.percpu_ok = False
            return
        eq = same & (tss[1:] == tss[:-1])
        pos = [order[1:][eq], order[:-1][eq]] if eq.any() else []
        starts = np.flatnonzero(np.r_[True, ~same])
        ends = np.r_[starts[1:], len(cs)] - 1
        for s, e in zip(starts.tolist(), ends.tolist()):   # per CPU, not per event
            c = int(cs[s])
            prev = self.carry.get(c)
            if prev is not None:
                if tss[s] < prev[0]:
                    self.percpu_ok = False
                    return
                if tss[s] == prev[0]:
                    self.cand.append((np.array([prev[1]]), _rows(prev[2], np.zeros(1, dtype=np.int64))))
                    pos.append(order[s:s + 1])
            p = int(order[e])
            r = p if rowpos is None else int(rowpos[p])
            self.carry[c] = (int(tss[e]), off + r, b.slice(r, 1))
        if pos:
            p = np.unique(np.concatenate(pos))
            r = p if rowpos is None else rowpos[p]
            self.cand.append((off + r, _rows(b, r)))

    def duplicates(self) -> np.ndarray:
        """Sorted raw row indices of exact duplicates (all but the first of each)."""
        if not self.cand:
            return np.zeros(0, dtype=np.int64)
        idx = np.concatenate([i for i, _ in self.cand]).astype(np.int64)
        idx, first = np.unique(idx, return_index=True)
        sub = pl.DataFrame({c: np.concatenate([r[c] for _, r in self.cand])[first] for c in self.cand[0][1]})
        again = sub.select(~pl.struct(pl.all()).is_first_distinct()).to_series().to_numpy()
        return idx[again]


def _apply_scan(src: _Source, chk: _Checker, warnings: List[str]) -> _Source:
    """Turn a finished scan into SRC's repair plan, with the warnings ``_repair`` gives."""
    name = src.kind
    if chk.has_ts and chk.rows and not chk.percpu_ok:
        t = _repair(name, pa.Table.from_batches([b for _, b in src.raw_batches()], schema=src.stored_schema),
                    warnings)
        out = _TableSource(name, t)
        out._table = None if out.derived else t  # else read through batches(), which add the names
        out.cpu_hist = None
        return out
    if chk.bad_rows:
        what = [label for _, _, label in chk.checks if label in chk.bad_labels]
        warnings.append(f"table {name}: {chk.bad_rows:,} events with impossible values ({', '.join(what)}) dropped")
        src.bad_checks = [(c, lim) for c, lim, label in chk.checks if label in chk.bad_labels]
    if chk.neg:
        back = -chk.min_step
        if back > DISORDER_WARN_NS:
            warnings.append(f"table {name}: {chk.neg:,} events out of time order (up to "
                            f"{back / 1e6:.3f} ms back); sorted by time before analysis -- the capture may "
                            f"be damaged or stitched together")
    src.sorted = chk.neg == 0
    src.late_ns = chk.late
    src.min_ts, src.max_ts = chk.min_ts, chk.max_ts
    src.rows = chk.rows
    src.cpu_hist = chk.cpu_hist
    dup = chk.duplicates() if chk.rows >= 2 else np.zeros(0, dtype=np.int64)
    if len(dup):
        warnings.append(f"table {name}: {len(dup):,} duplicate events (identical in every field) dropped")
        src.drop = dup
        src.rows -= len(dup)
        if chk.has_cpu:
            idx = np.concatenate([i for i, _ in chk.cand])
            cpus = np.concatenate([r["cpu"] for _, r in chk.cand])
            u, first = np.unique(idx, return_index=True)
            dcpu = cpus[first][np.searchsorted(u, dup)]
            np.subtract.at(src.cpu_hist, dcpu.astype(np.int64), 1)
    return src


def _finish(path, manifest, tables, truncated, warnings) -> Capture:
    manifest = _sanitize_manifest(manifest, warnings)
    sources = {}
    for name, t in tables.items():
        if isinstance(t, _Source):
            src, chk = t, t.checker
            del t.checker
        else:
            src, chk = _TableSource(name, t), _Checker(name, t.schema)
            for b in t.to_batches():
                chk.feed(b)
        sources[name] = _apply_scan(src, chk, warnings)
    tables = _Tables(sources)
    incomplete = not manifest.get("complete", False)
    if incomplete:
        why = manifest.get("error")
        warnings.append("capture is incomplete (" + (f"the recorder stopped: {why}" if isinstance(why, str) else
                        "the recorder did not finish: killed or crashed") + "); figures cover the events "
                        "flushed before that")
    elif truncated:
        warnings.append("a table ends in a damaged batch; figures cover the complete batches")
    declared = manifest.get("events") or {}
    listed = manifest.get("tables") if isinstance(manifest.get("tables"), dict) else {}
    missing = [n for n in dict.fromkeys([*listed, *declared]) if n in _KINDS and n not in tables]
    if missing:
        truncated = True
        warnings.append(f"table(s) {', '.join(missing)} listed in the manifest are missing from the "
                        f"capture (cut short?); treated as no events")
        for n in missing:
            tables[n] = _TableSource(n, arrow_schema(_KINDS[n]).empty_table())
    for name, n in declared.items():
        got = tables.source(name).rows if name in tables else 0
        if int(n) != got and name not in missing:
            warnings.append(f"manifest says {n} {name} events but the table holds {got}")
    recorded = set(manifest.get("modules") or [])
    for m in sorted({_KINDS[n].module for n in tables} - recorded):
        warnings.append(f"tables of module {m} are present but the manifest does not list it; ignored")
    cap = Capture(path, manifest, tables, incomplete=incomplete or truncated, warnings=warnings)
    ncpu = cap.cpu_count
    if ncpu:
        for name in tables:
            src = tables.source(name)
            if not src.rows or "cpu" not in src.schema.names:
                continue
            hist = getattr(src, "cpu_hist", None)
            if hist is None:
                import pyarrow.compute as pc
                col = src.table().column("cpu")
                mx = pc.max(col).as_py()
                n = pc.sum(pc.greater_equal(col, ncpu)).as_py() if mx is not None and mx >= ncpu else 0
            else:
                nz = np.flatnonzero(hist)
                mx = int(nz[-1]) if len(nz) else None
                n = int(hist[ncpu:].sum())
            if mx is not None and mx >= ncpu:
                warnings.append(f"table {name} has {n:,} events from CPUs up to {mx}, beyond the "
                                f"manifest's {ncpu} CPUs: the manifest or the table is wrong")
    return cap
