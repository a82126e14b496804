"""Reading a capture: the tar file ``NAME.lscope`` or a ``.partial`` directory.

The reader never needs BCC or root.  Tables are Arrow IPC streams; a table
cut short (the recorder was SIGKILLed) is read up to its last complete
batch and the capture is marked incomplete.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import polars as pl
import pyarrow as pa

from latencyscope import FORMAT_VERSION
from latencyscope.errors import LatencyScopeError
from latencyscope.schemas import EVENT_KINDS, kinds_of
from latencyscope.schemas.codegen import arrow_schema

MANIFEST_NAME = "manifest.json"
TABLE_SUFFIX = ".arrows"
_KINDS = {k.name: k for k in EVENT_KINDS}


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
        """Monotonic ns of an event -> ISO-8601 UTC wall-clock time (µs)."""
        t = (int(ts_ns) + self.realtime_offset_ns) / 1e9
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds")

    @property
    def events(self) -> Dict[str, int]:
        return {name: t.num_rows for name, t in self.arrow.items()}

    @property
    def lost(self) -> Dict[str, int]:
        return {k: int(v) for k, v in (self.manifest.get("lost") or {}).items()}

    @property
    def tasks(self) -> pl.DataFrame:
        """Threads alive when recording started: tid, tgid, comm, kthread."""
        rows = self.manifest.get("tasks") or []
        schema = {"tid": pl.Int32, "tgid": pl.Int32, "comm": pl.String, "kthread": pl.Boolean}
        if not rows:
            return pl.DataFrame(schema=schema)
        return pl.DataFrame(rows, schema=schema, orient="row") if isinstance(rows[0], list) \
            else pl.DataFrame(rows).select([pl.col(c).cast(t) for c, t in schema.items()])


def _not_capture(path: str, why: str) -> LatencyScopeError:
    return LatencyScopeError(f"{path} is not a LatencyScope capture ({why})")


def _check_manifest(path: str, manifest) -> dict:
    if not isinstance(manifest, dict) or manifest.get("format") != "latencyscope-capture":
        raise _not_capture(path, "manifest.json lacks the latencyscope-capture format tag")
    v = manifest.get("format_version")
    if not isinstance(v, int):
        raise _not_capture(path, "manifest.json has no format version")
    if v > FORMAT_VERSION:
        raise LatencyScopeError(
            f"{path} has capture format version {v}, newer than this analyzer understands "
            f"({FORMAT_VERSION}); upgrade latencyscope")
    return manifest


def _read_stream(source, name: str, warnings: List[str]) -> (pa.Table, bool):
    """All complete batches of one IPC stream; (table, truncated)."""
    expected = arrow_schema(_KINDS[name])
    try:
        reader = pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        warnings.append(f"table {name} is empty or unreadable ({exc}); treated as no events")
        return expected.empty_table(), True
    if not reader.schema.remove_metadata().equals(expected.remove_metadata()):
        raise LatencyScopeError(f"table {name} does not have the schema this analyzer expects "
                                f"(written by another version?): {reader.schema.names}")
    batches, truncated = [], False
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError, EOFError):
            truncated = True
            break
    return pa.Table.from_batches(batches, schema=reader.schema), truncated


def open_capture(path: str) -> Capture:
    """Open and validate a capture; raises LatencyScopeError (exit 3) on bad input."""
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
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _not_capture(str(path), f"not a capture archive: {exc}")
    if MANIFEST_NAME not in members:
        raise _not_capture(str(path), "no manifest.json inside")
    try:
        manifest = json.loads(tar.extractfile(members[MANIFEST_NAME]).read())
    except (ValueError, OSError, tarfile.TarError) as exc:
        raise _not_capture(str(path), f"manifest.json is damaged: {exc}")
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
    if not os.path.isfile(mpath):
        raise _not_capture(path, "directory without manifest.json")
    try:
        manifest = json.loads(Path(mpath).read_text())
    except (ValueError, OSError) as exc:
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


def _finish(path, manifest, tables, truncated, warnings) -> Capture:
    incomplete = not manifest.get("complete", False)
    if incomplete:
        warnings.append("capture is incomplete (the recorder did not finish: killed or crashed); "
                        "figures cover the events flushed before that")
    elif truncated:
        warnings.append("a table ends in a damaged batch; figures cover the complete batches")
    declared = manifest.get("events") or {}
    for name, n in declared.items():
        got = tables[name].num_rows if name in tables else 0
        if int(n) != got:
            warnings.append(f"manifest says {n} {name} events but the table holds {got}")
    cap = Capture(path, manifest, tables, incomplete=incomplete or truncated, warnings=warnings)
    ncpu = cap.cpu_count
    if ncpu:
        for name, t in tables.items():
            if t.num_rows and "cpu" in t.column_names:
                import pyarrow.compute as pc
                mx = pc.max(t.column("cpu")).as_py()
                if mx is not None and mx >= ncpu:
                    warnings.append(f"table {name} has events from CPU {mx}, beyond the manifest's "
                                    f"{ncpu} CPUs")
    return cap
