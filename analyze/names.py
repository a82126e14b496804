"""Task names for the records that do not carry them (capture format 3).

sched_switch and sched_wakeup fire on every context switch; since format 3
their records carry pids only (``EventKind.names`` in schemas/).  A task's
name is known from the capture's other records instead, each with the time
it took effect:

- the task snapshot in the manifest (every thread alive when recording began);
- ``sched_wakeup_new``: a new task, named after its parent;
- ``task_rename``: exec, prctl(PR_SET_NAME), writes to /proc/PID/comm -- with
  the name before, so a task first seen renamed is named before it too;
- ``sched_migrate_task``, which still records the name.

The name of pid P at time T is that of P's last entry at or before T, else
the name before its first entry; pid 0 is the idle task ``swapper/CPU``; a
pid never named reads ``?``.  Lookups are vectorized: one gather for the
pids with a single name (nearly all), one integer search for the others.
"""
from __future__ import annotations

import sys
from typing import List, Optional

import numpy as np
import polars as pl
import pyarrow as pa

UNKNOWN = "?"
BEFORE_ALL = -1   # the snapshot's time: before every event

_TIMELINE = {"pid": pl.Int64, "ts": pl.Int64, "comm": pl.String, "before": pl.String}


class Names:
    """pid and time -> task name, over one capture's name records."""

    def __init__(self, timeline: pl.DataFrame, ncpus: int):
        """TIMELINE: pid, ts, comm (from ts on), before (until ts); any order."""
        tl = (timeline.select([pl.col(c).cast(t) for c, t in _TIMELINE.items()])
              .filter(pl.col("pid") > 0)
              .with_columns(pl.col("before").fill_null(pl.col("comm")))
              .sort("pid", "ts", maintain_order=True))
        # An entry that repeats the name its pid already had says nothing.
        same = ((pl.col("pid") == pl.col("pid").shift(1)) & (pl.col("comm") == pl.col("comm").shift(1))
                & (pl.col("before") == pl.col("comm")))
        tl = tl.filter(~same.fill_null(False))
        swappers = [f"swapper/{c}" for c in range(max(1, ncpus))]
        words = sorted(set(tl["comm"].to_list()) | set(tl["before"].to_list()) | {UNKNOWN} | set(swappers))
        enum = pl.Enum(words)
        codes = tl.select(comm=pl.col("comm").cast(enum).to_physical().cast(pl.Int32),
                          before=pl.col("before").cast(enum).to_physical().cast(pl.Int32))
        self.dictionary = pa.array(words, pa.string())
        self._words = np.array(words, dtype=object)
        self.unknown = words.index(UNKNOWN)
        self._swap = np.array([words.index(s) for s in swappers], dtype=np.int32)
        self._pid = tl["pid"].to_numpy()
        self._ts = tl["ts"].to_numpy()
        self._comm = codes["comm"].to_numpy()
        self._before = codes["before"].to_numpy()
        # pid -> its code when it has a single name all along, else -2 - (its
        # group: index among the pids with several names, in pid order).
        top = int(self._pid.max()) + 1 if len(self._pid) else 1
        self._single = np.full(top, -1, dtype=np.int32)
        first = np.r_[True, self._pid[1:] != self._pid[:-1]] if len(self._pid) else np.zeros(0, bool)
        starts = np.flatnonzero(first)
        counts = np.diff(np.r_[starts, len(self._pid)])
        one = (counts == 1) & (self._comm[starts] == self._before[starts])
        self._single[self._pid[starts[one]]] = self._comm[starts[one]]
        self._single[self._pid[starts[~one]]] = -2 - np.arange(int((~one).sum()), dtype=np.int32)
        # Entries of those pids keyed (group, rank of ts among the timeline's
        # times): one int64 search serves every query (sorted: pid, then ts).
        many = np.repeat(~one, counts)
        self._times = np.unique(self._ts)
        self._stride = len(self._times) + 2
        self._group = (-2 - self._single[self._pid[many]]).astype(np.int64)
        self._mkey = self._group * self._stride + np.searchsorted(self._times, self._ts[many], side="right")
        self._mcomm, self._mbefore = self._comm[many], self._before[many]

    def codes(self, pid: np.ndarray, ts: np.ndarray, cpu: np.ndarray) -> np.ndarray:
        """Indices into ``dictionary``: the name of each PID at TS (on CPU, for pid 0)."""
        pid = np.asarray(pid).astype(np.int64, copy=False)
        inside = (pid >= 0) & (pid < len(self._single))
        out = self._single[np.where(inside, pid, 0)]
        out[~inside] = -1
        several = np.flatnonzero(out <= -2)
        if len(several):
            out[several] = self._search(-2 - out[several].astype(np.int64), np.asarray(ts)[several])
        idle = pid == 0
        if idle.any():
            c = np.asarray(cpu)[idle].astype(np.int64)
            out[idle] = np.where(c < len(self._swap), self._swap[np.minimum(c, len(self._swap) - 1)],
                                 self.unknown)
        out[out < 0] = self.unknown
        return out

    def _search(self, group: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Names of the tasks of GROUP (pids with several names) at TS."""
        key = group * self._stride + np.searchsorted(self._times, ts.astype(np.int64), side="right")
        i = np.searchsorted(self._mkey, key, side="right") - 1
        out = np.full(len(group), -1, dtype=np.int32)
        at = (i >= 0) & (self._group[np.maximum(i, 0)] == group)
        out[at] = self._mcomm[i[at]]
        j = i + 1
        nxt = ~at & (j < len(self._mkey))
        nxt[nxt] = self._group[j[nxt]] == group[nxt]
        out[nxt] = self._mbefore[j[nxt]]
        return out

    def strings(self, codes: np.ndarray) -> pl.Series:
        """The names of CODES (indices into ``dictionary``): a few rows, one call per
        report row or group (9 us per call; Polars' own indexing takes 50-100 us)."""
        return pl.Series(self._words[codes].tolist(), dtype=pl.String)

    def column(self, pid, ts, cpu, plain: bool = True) -> pa.Array:
        """The names as an Arrow column: strings (PLAIN) or dictionary-encoded."""
        arr = pa.DictionaryArray.from_arrays(pa.array(self.codes(pid, ts, cpu), pa.int32()), self.dictionary)
        return decoded(arr) if plain else arr


# Rows above which a column's names are spelled out by pyarrow's cast even
# though that loads pyarrow.compute: numpy takes ~63 ns a row, the cast
# ~12 ns plus ~50 ms (and 10 MiB) to load once.
DECODE_CAST_ABOVE_ROWS = 500_000


def decoded(a: pa.Array) -> pa.Array:
    """A dictionary<int, string> array as plain strings.

    pyarrow's own cast loads pyarrow.compute, ~50-70 ms: a tenth of a small
    capture's analysis, spent to spell out a few names.  So numpy spells them
    out (``spelled_out``), unless pyarrow.compute is loaded anyway or the
    column is long enough to pay for loading it."""
    if len(a) > DECODE_CAST_ABOVE_ROWS or "pyarrow.compute" in sys.modules:
        return a.cast(pa.string())
    return spelled_out(a)


def spelled_out(a: pa.Array) -> pa.Array:
    """A dictionary<int, string> array as plain strings, built with numpy
    (anything unusual -- nulls, other value types, >= 2 GiB of text -- takes
    pyarrow's cast)."""
    d = a.dictionary
    if a.null_count or d.null_count or not pa.types.is_string(d.type) or not len(a):
        return a.cast(pa.string())
    idx = a.indices.to_numpy().astype(np.int64)
    offs = np.frombuffer(d.buffers()[1], dtype=np.int32)[d.offset:d.offset + len(d) + 1].astype(np.int64)
    text = d.buffers()[2]
    data = np.frombuffer(text, dtype=np.uint8) if text is not None else np.zeros(0, np.uint8)
    starts = offs[idx]
    lens = offs[idx + 1] - starts
    out = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lens, out=out[1:])
    total = int(out[-1])
    if total >= 2**31:
        return a.cast(pa.string())
    # Byte j of the output comes from byte j + (start of its name - start of its row).
    pos = np.repeat(starts - out[:-1], lens) + np.arange(total)
    return pa.Array.from_buffers(pa.string(), len(idx),
                                 [None, pa.py_buffer(out.astype(np.int32)), pa.py_buffer(data[pos])])


def timeline(tasks: pl.DataFrame, frames: List[Optional[pl.DataFrame]]) -> pl.DataFrame:
    """The name records of a capture as one table (pid, ts, comm, before).
    TASKS: the manifest's snapshot (tid, comm); FRAMES: tables with pid,
    ts_ns, comm and, for renames, oldcomm."""
    parts = [tasks.select(pid=pl.col("tid"), ts=pl.lit(BEFORE_ALL), comm=pl.col("comm"),
                          before=pl.lit(None, pl.String))]
    for df in frames:
        if df is None or not df.height:
            continue
        parts.append(df.select(pid=pl.col("pid"), ts=pl.col("ts_ns").cast(pl.Int64),
                               comm=pl.col("comm").cast(pl.String),
                               before=(pl.col("oldcomm").cast(pl.String) if "oldcomm" in df.columns
                                       else pl.lit(None, pl.String))))
    return pl.concat([p.select([pl.col(c).cast(t) for c, t in _TIMELINE.items()]) for p in parts],
                     how="vertical")
