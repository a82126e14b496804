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
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import polars as pl
import pyarrow as pa

from latencyscope import FORMAT_VERSION
from latencyscope.errors import LatencyScopeError
from latencyscope.schemas import EVENT_KINDS, kinds_of
from latencyscope.schemas.codegen import arrow_schema

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


@dataclass
class Capture:
    path: str
    manifest: dict
    arrow: Dict[str, pa.Table]
    incomplete: bool = False
    warnings: List[str] = field(default_factory=list)
    _frames: Dict[str, pl.DataFrame] = field(default_factory=dict)

    # --- tables -------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        return name in self.arrow

    def table(self, name: str) -> Optional[pl.DataFrame]:
        """The event table KIND as a DataFrame, or None when not recorded."""
        if name not in self.arrow:
            return None
        if name not in self._frames:
            self._frames[name] = pl.from_arrow(self.arrow[name], rechunk=False)
        return self._frames[name]

    def scan(self, name: str) -> Optional[pl.LazyFrame]:
        df = self.table(name)
        return None if df is None else df.lazy()

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
        for t in self.arrow.values():
            if t.num_rows:
                col = t.column("ts_ns")
                import pyarrow.compute as pc
                mm = pc.min_max(col)
                a, b = mm["min"].as_py(), mm["max"].as_py()
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
        return {name: t.num_rows for name, t in self.arrow.items()}

    @property
    def lost(self) -> Dict[str, int]:
        return {k: int(v) for k, v in (self.manifest.get("lost") or {}).items()}

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
    for key in ("events", "lost"):
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


def _read_stream(source, name: str, warnings: List[str]) -> (pa.Table, bool):
    """All complete batches of one IPC stream; (table, truncated)."""
    expected = arrow_schema(_KINDS[name])
    try:
        reader = pa.ipc.open_stream(source)
        schema = reader.schema.remove_metadata()
        names = schema.names
    except (pa.ArrowException, OSError, EOFError, UnicodeError) as exc:
        warnings.append(f"table {name} is empty or unreadable ({_first_line(exc)}); treated as no events")
        return expected.empty_table(), True
    if not schema.equals(expected.remove_metadata()):
        raise LatencyScopeError(f"table {name} does not have the schema this analyzer expects "
                                f"(written by another version, or damaged): {', '.join(names)[:200]}")
    batches, truncated = [], False
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
        batches.append(pa.RecordBatch.from_arrays(batch.columns, schema=expected))
    return pa.Table.from_batches(batches, schema=expected), truncated


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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
        raise _not_capture(str(path), f"not a capture archive: {_first_line(exc)}")
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EISDIR):
            raise
        raise _not_capture(str(path), f"not a capture archive: {exc.strerror or exc}")
    if MANIFEST_NAME not in members:
        raise _not_capture(str(path), "no manifest.json inside")
    try:
        manifest = json.loads(tar.extractfile(members[MANIFEST_NAME]).read())
    except (ValueError, tarfile.TarError, EOFError) as exc:
        raise _not_capture(str(path), f"manifest.json is damaged: {_first_line(exc)}")
    _check_manifest(str(path), manifest)
    mm = pa.memory_map(str(p), "r")
    size = mm.size()
    warnings: List[str] = []
    tables: Dict[str, pa.Table] = {}
    truncated = False
    for name, m in members.items():
        if not name.endswith(TABLE_SUFFIX):
            continue
        kind = name[: -len(TABLE_SUFFIX)]
        if kind not in _KINDS:
            warnings.append(f"table {kind} is unknown to this analyzer; ignored")
            continue
        end = min(m.offset_data + m.size, size)
        if end < m.offset_data + m.size:
            truncated = True
        buf = mm.read_at(max(0, end - m.offset_data), m.offset_data) if end > m.offset_data else b""
        tables[kind], t = _read_stream(pa.BufferReader(buf), kind, warnings)
        truncated |= t
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
    for fn in sorted(os.listdir(path)):
        if not fn.endswith(TABLE_SUFFIX):
            continue
        kind = fn[: -len(TABLE_SUFFIX)]
        if kind not in _KINDS:
            warnings.append(f"table {kind} is unknown to this analyzer; ignored")
            continue
        with pa.memory_map(os.path.join(path, fn), "r") as src:
            tables[kind], t = _read_stream(src, kind, warnings)
        truncated |= t
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


def _finish(path, manifest, tables, truncated, warnings) -> Capture:
    manifest = _sanitize_manifest(manifest, warnings)
    tables = {name: _repair(name, t, warnings) for name, t in tables.items()}
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
            tables[n] = arrow_schema(_KINDS[n]).empty_table()
    for name, n in declared.items():
        got = tables[name].num_rows if name in tables else 0
        if int(n) != got and name not in missing:
            warnings.append(f"manifest says {n} {name} events but the table holds {got}")
    recorded = set(manifest.get("modules") or [])
    for m in sorted({_KINDS[n].module for n in tables} - recorded):
        warnings.append(f"tables of module {m} are present but the manifest does not list it; ignored")
    cap = Capture(path, manifest, tables, incomplete=incomplete or truncated, warnings=warnings)
    ncpu = cap.cpu_count
    if ncpu:
        for name, t in tables.items():
            if t.num_rows and "cpu" in t.column_names:
                import pyarrow.compute as pc
                mx = pc.max(t.column("cpu")).as_py()
                if mx is not None and mx >= ncpu:
                    n = pc.sum(pc.greater_equal(t.column("cpu"), ncpu)).as_py()
                    warnings.append(f"table {name} has {n:,} events from CPUs up to {mx}, beyond the "
                                    f"manifest's {ncpu} CPUs: the manifest or the table is wrong")
    return cap
