"""Hand-built captures for unit tests: exact tables, known answers.

``capture(tables)`` builds an in-memory Capture; ``write(path, tables)``
writes a real capture file through the recorder's own writer, so the
reader, CLI and fuzz tests exercise the real format.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import pyarrow as pa

from latencyscope import FORMAT_VERSION
from latencyscope.analyze.capture import Capture, _finish, _plain_fields
from latencyscope.record.writer import CaptureWriter
from latencyscope.schemas import EVENT_KINDS, kind
from latencyscope.schemas.codegen import arrow_schema, record_dtype
from latencyscope.record.writer import to_record_batch

MS = 1_000_000
US = 1_000


def records(kind_name: str, rows: List[dict]) -> np.ndarray:
    """Rows (dicts; missing fields are 0 / '') -> structured array of the record dtype."""
    k = kind(kind_name)
    arr = np.zeros(len(rows), dtype=record_dtype(k))
    for f in k.fields:
        if rows and any(f.name in r for r in rows):
            vals = [r.get(f.name, b"" if f.ctype == "comm" else 0) for r in rows]
            if f.ctype == "comm":
                vals = [v.encode() if isinstance(v, str) else v for v in vals]
            arr[f.name] = vals
    return arr


def manifest(modules=None, cpus=2, window=(0, 10 * 1000 * MS), **extra) -> dict:
    mods = modules or sorted({k.module for k in EVENT_KINDS})
    m = {
        "format": "latencyscope-capture", "format_version": FORMAT_VERSION, "tool_version": "test",
        "complete": True, "modules": mods,
        "host": {"hostname": "synth", "kernel_release": "6.18-test", "cpu_count": cpus,
                 "isolated_cpus": [], "nohz_full_cpus": [], "irqs": []},
        "filters": {"cpus": None, "pids": []},
        "window": {"start_ns": window[0], "end_ns": window[1]},
        "clock": {"start": {"realtime_minus_monotonic_ns": 1_700_000_000 * 1000 * MS}},
        "tasks": [], "lost": {},
    }
    m.update(extra)
    return m


def table(name: str, rows: List[dict], names: bool = True) -> pa.Table:
    """Rows as the table a reader sees: with task-name columns of their own
    (NAMES, as format 2 stored them) or without the ones format 3 rebuilds."""
    k = kind(name)
    stored = pa.schema(_plain_fields(arrow_schema(k, stored=True)))
    b = to_record_batch(k, records(name, rows), stored)
    if names and k.names:
        cols = [pa.array([r.get(c, "") for r in rows], pa.string()) for c, _ in k.names]
        b = pa.RecordBatch.from_arrays([*b.columns, *cols], schema=arrow_schema(k))
    return pa.Table.from_batches([b], schema=b.schema)


def snapshot(tables: Dict[str, List[dict]]) -> List[dict]:
    """A manifest task list naming every pid of TABLES as its rows first name it."""
    seen: Dict[int, str] = {}
    for name, rows in tables.items():
        for c, pid in kind(name).names:
            for r in rows:
                if r.get(c) and r.get(pid):
                    seen.setdefault(int(r[pid]), r[c])
    return [{"tid": t, "tgid": t, "comm": c, "kthread": False} for t, c in sorted(seen.items())]


def capture(tables: Dict[str, List[dict]], modules=None, names: bool = True, **mextra) -> Capture:
    """An in-memory capture of TABLES; NAMES: task names as columns (format 2),
    else rebuilt by the reader (format 3) from the manifest's tasks."""
    arrow = {}
    mods = modules or sorted({kind(n).module for n in tables}) or ["isolation"]
    for name, rows in tables.items():
        arrow[name] = table(name, rows, names)
    for k in EVENT_KINDS:  # a recorded module has all its tables, maybe empty
        if k.module in mods and k.name not in arrow:
            arrow[k.name] = arrow_schema(k).empty_table()
    m = manifest(modules=mods, **mextra)
    m["events"] = {n: t.num_rows for n, t in arrow.items()}
    return _finish("synth.lscope", m, arrow, False, [])


def write(path: str, tables: Dict[str, List[dict]], modules=None, finish: bool = True, **mextra) -> str:
    mods = modules or sorted({kind(n).module for n in tables}) or ["isolation"]
    kinds = [k for k in EVENT_KINDS if k.module in mods]
    w = CaptureWriter(path, kinds)
    # Format 3 files name the tasks of sched_switch/sched_wakeup from the snapshot.
    given = mextra.get("tasks", [])
    if isinstance(given, list) and all(isinstance(t, dict) for t in given):
        known = {t.get("tid") for t in given}
        mextra["tasks"] = given + [t for t in snapshot(tables) if t["tid"] not in known]
    m = manifest(modules=mods, **mextra)
    w.write_manifest({**m, "complete": False})
    for k in kinds:
        w.append(k, records(k.name, tables.get(k.name, [])))
    w.flush()
    if not finish:
        w.close_tables()
        return str(w.dir)
    m["events"] = dict(w.rows)
    w.write_manifest(m)
    return str(w.finish())


def switch(ts, cpu, prev_pid, next_pid, prev_state=1, prev_comm=None, next_comm=None, prev_tgid=None):
    """One sched_switch row; prev_state 1 = sleeping (S), 0 = runnable, 0x100 = preempted."""
    return {"ts_ns": ts, "cpu": cpu, "prev_pid": prev_pid, "next_pid": next_pid, "prev_state": prev_state,
            "prev_tgid": prev_pid if prev_tgid is None else prev_tgid,
            "prev_comm": prev_comm or ("swapper" if prev_pid == 0 else f"t{prev_pid}"),
            "next_comm": next_comm or ("swapper" if next_pid == 0 else f"t{next_pid}"),
            "prev_prio": 120, "next_prio": 120}


def wakeup(ts, pid, target_cpu, cpu=0, comm=None):
    return {"ts_ns": ts, "cpu": cpu, "pid": pid, "target_cpu": target_cpu, "prio": 120,
            "comm": comm or f"t{pid}"}
