"""Capture writer: one compressed Arrow IPC stream per event kind.

While recording, the capture is a directory ``NAME.lscope.partial/`` holding
``manifest.json`` and ``KIND.arrows`` streams; every ``flush()`` appends one
record batch per kind straight to the file descriptor, so a crash or
SIGKILL loses at most what was drained since the last flush.  ``finish()``
packs the directory into the single shareable file ``NAME.lscope`` (an
uncompressed tar: manifest first, then the tables) and removes the
directory.

Failures (disk full, directory removed) raise ``CaptureWriteError`` and
leave the directory consistent: a flush that fails is rolled back in every
table (truncated to where the flush began), so each stream ends at a batch
boundary; the manifest is replaced atomically or not at all.

Time order: the recorder drains one ring per CPU into a kind's slot buffer,
so a buffer holds several runs, each in time order.  A flush writes them
merged by timestamp, and holds back the records at or after
``hold_from_ns`` (set by the recorder a few ms behind "now"): a record of
another CPU still in flight could be older than them.  They go out with the
next flush, so every table is written in time order.
"""
from __future__ import annotations

import errno
import json
import mmap
import os
import shutil
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from latencyscope import COMPRESSION, COMPRESSIONS
from latencyscope.errors import LatencyScopeError
from latencyscope.schemas.codegen import arrow_schema, slot_dtype
from latencyscope.schemas.events import EventKind

MERGE_BLOCK_ROWS = 32768  # records gathered per step of a flush's time-order merge
MANIFEST_NAME = "manifest.json"
TABLE_SUFFIX = ".arrows"


def comm_array(col: np.ndarray, dictionary: bool = True) -> pa.Array:
    """char[16] NUL-padded task names -> Arrow dictionary<int32, string>
    (DICTIONARY=False: plain strings, format version 1).

    Hashing the 16-byte values is one pass, and a capture holds few
    distinct names: measured on 1 M rows, 8.5 ns per row dictionary-encoded
    and 8.2 ns to compress it, vs 17.5 + 15.2 ns as strings (the take that
    spells every name out, and zstd over the spelled-out names).
    """
    raw = np.ascontiguousarray(col)
    fsb = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw.view(np.uint8))])
    d = fsb.dictionary_encode()
    names = pa.array([v.split(b"\0", 1)[0].decode("utf-8", "replace") for v in d.dictionary.to_pylist()],
                     pa.string())
    if dictionary:
        return pa.DictionaryArray.from_arrays(d.indices, names)
    return names.take(d.indices)


def to_record_batch(k: EventKind, records: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    """Records (a structured array, or a dict of column arrays) -> one batch
    of SCHEMA (stored: names dictionary-encoded, or plain).  Contiguous
    numeric columns are wrapped, not copied."""
    cols = []
    for f in k.fields:
        col = np.ascontiguousarray(records[f.name])
        if f.ctype == "comm":
            cols.append(comm_array(col, pa.types.is_dictionary(schema.field(f.name).type)))
        else:
            cols.append(pa.array(col))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def _rows(a: np.ndarray) -> np.ndarray:
    """Structured records as a 2-D array of words (fancy indexing of a
    structured dtype is several times slower)."""
    return a.view(np.uint64).reshape(len(a), -1)


def prefault(a: np.ndarray) -> np.ndarray:
    """Write one byte of every page of A: its pages are faulted in (and
    zeroed by the kernel) now, before tracing starts, and not during the
    capture window, where that work is CPU taken from the watched workload."""
    a.reshape(-1).view(np.uint8)[::mmap.PAGESIZE] = 0
    return a


def _time_order(ts: np.ndarray, hold_from_ns: Optional[int],
                min_ts_ns: Optional[int]) -> Tuple[Optional[np.ndarray], int, int]:
    """TS (runs each in time order, one per CPU ring) -> (ORDER, LO, HI): the
    records in time order are ``ORDER`` (None: already in order), of which
    ``[LO:HI]`` are ready to write; before LO they are older than MIN_TS_NS
    (dropped), from HI on at or after HOLD_FROM_NS (held back)."""
    order = None
    if len(ts) > 1 and (ts[1:] < ts[:-1]).any():
        # Stable: equal timestamps keep drain order.  Merging a few sorted
        # runs is linear for numpy's stable (tim)sort.
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
    lo, hi = 0, len(ts)
    if min_ts_ns is not None and hi and ts[0] < min_ts_ns:
        lo = int(np.searchsorted(ts, np.uint64(max(min_ts_ns, 0)), side="left"))
    if hold_from_ns is not None and hi and ts[-1] >= hold_from_ns:
        hi = max(lo, int(np.searchsorted(ts, np.uint64(max(hold_from_ns, 0)), side="left")))
    return order, lo, hi


class CaptureWriteError(LatencyScopeError):
    """Writing the capture failed (disk full, directory gone, I/O error)."""

    def __init__(self, message: str, errno_: int = 0):
        super().__init__(message)
        self.errno = errno_


class _Sink:
    """A file descriptor that pyarrow writes to.

    pyarrow ignores the count a Python ``write()`` returns, so a short write
    (a filesystem filling up) would silently drop the middle of a batch;
    this loops until everything is written or the kernel says why not.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.closed = False
        self._pos = 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            done += os.write(self.fd, view[done:])
        self._pos += done
        return done

    def tell(self) -> int:
        return self._pos

    def rewind(self, pos: int) -> None:
        """Forget everything written after POS (a failed flush)."""
        os.ftruncate(self.fd, pos)
        os.lseek(self.fd, pos, os.SEEK_SET)
        self._pos = pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


class CaptureWriter:
    """SLOTS (kind name -> (dtype, capacity)) gives a kind a preallocated
    buffer the drain copies ring slots into (``free_slots``/``commit``); a
    flush turns it into one batch and reuses it.  ``append`` takes arrays of
    records (or slots) from anywhere else."""

    def __init__(self, path: str, kinds: List[EventKind], mode: int = 0o600,
                 slots: Optional[Dict[str, Tuple[np.dtype, int]]] = None, compression: str = COMPRESSION):
        if compression not in COMPRESSIONS:
            raise LatencyScopeError(f"unknown compression {compression!r}; choose from {', '.join(COMPRESSIONS)}")
        self.final_path = Path(path)
        self.dir = Path(str(path) + ".partial")
        self.mode = mode
        self.kinds = kinds
        if self.final_path.exists():
            raise LatencyScopeError(f"{self.final_path} already exists; choose another --output or remove it")
        try:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.dir.mkdir(mode=0o700, parents=False)
        except OSError as exc:
            raise LatencyScopeError(f"cannot create capture directory {self.dir}: {exc.strerror}")
        self._schemas = {k.name: arrow_schema(k, stored=True) for k in kinds}
        self._pending: Dict[str, List[np.ndarray]] = {k.name: [] for k in kinds}
        # Both faulted in here, before tracing starts (``prefault``).
        self._slots = {name: prefault(np.zeros(cap, dtype=dt)) for name, (dt, cap) in (slots or {}).items()}
        self._used: Dict[str, int] = {name: 0 for name in self._slots}
        # Where a flush gathers a slot buffer's records, merged by time, into
        # one contiguous array per column: the batch is built on them.
        self._columns = {name: {f: prefault(np.zeros(cap, dtype=dt.fields[f][0])) for f in dt.names}
                         for name, (dt, cap) in (slots or {}).items()}
        self._writers = {}
        self._files = {}
        self.rows: Dict[str, int] = {k.name: 0 for k in kinds}
        self.hold_from_ns: Optional[int] = None  # flush keeps slot records with ts_ns >= this
        # Slot records older than this are dropped: staged before the capture
        # window opened (bpf/common.h), not part of it.
        self.min_ts_ns: Optional[int] = None
        self.started = False  # set once the first manifest is written
        self.failed = False   # a write failed: no more batches, no EOS marker
        self.compression = compression
        # One thread: Arrow's pool compresses a batch's buffers in parallel
        # for less wall time but ~30% more CPU (measured), and CPU is what a
        # recorder takes from the workload it watches.
        opts = pa.ipc.IpcWriteOptions(compression=compression, use_threads=False)
        self._warm_up(opts)
        for k in kinds:
            p = self.dir / (k.name + TABLE_SUFFIX)
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                f = _Sink(fd)
                self._files[k.name] = f
                self._writers[k.name] = pa.ipc.new_stream(f, self._schemas[k.name], options=opts)
            except OSError as exc:
                self.close_tables()
                raise self._error(f"creating {p}", exc)

    def _warm_up(self, opts: pa.ipc.IpcWriteOptions) -> None:
        """Build and compress one batch of each kind into memory: pyarrow
        sets up its compute kernels and codec on first use (~90 ms here),
        which belongs before the capture window, not in its first flush."""
        for k in self.kinds:
            one = np.zeros(1, dtype=slot_dtype(k))
            with pa.ipc.new_stream(pa.BufferOutputStream(), self._schemas[k.name], options=opts) as w:
                w.write_batch(to_record_batch(k, one, self._schemas[k.name]))

    @property
    def bytes_written(self) -> int:
        return sum(f.tell() for f in self._files.values() if not f.closed)

    def append(self, k: EventKind, records: np.ndarray) -> None:
        if len(records):
            self._pending[k.name].append(records)

    def free_slots(self, k: EventKind) -> np.ndarray:
        """The unused tail of KIND's slot buffer (may be empty: flush first)."""
        return self._slots[k.name][self._used[k.name]:]

    def commit(self, k: EventKind, n: int) -> None:
        """N slots were written at the start of ``free_slots(k)``."""
        self._used[k.name] += n

    def slots_full(self, fraction: float = 0.5, rows: Optional[int] = None) -> bool:
        """Is any slot buffer more than FRACTION used, or holding ROWS
        records or more?  (Then flush early.)"""
        return any(self._used[n] > fraction * len(b) or (rows is not None and self._used[n] >= rows)
                   for n, b in self._slots.items())

    @property
    def pending_rows(self) -> int:
        n = sum(len(c) for chunks in self._pending.values() for c in chunks)
        return n + sum(self._used.values())

    def _error(self, what: str, exc: OSError) -> CaptureWriteError:
        why = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        return CaptureWriteError(f"{what}: {why}", exc.errno or 0)

    def check_alive(self) -> None:
        """Raise when the capture directory was removed under us.

        Writes to unlinked files succeed and fill the disk invisibly; one
        fstat per flush notices it.
        """
        f = next(iter(self._files.values()), None)
        if f is not None and not f.closed and os.fstat(f.fd).st_nlink == 0:
            raise CaptureWriteError(f"the capture directory {self.dir} was removed while recording",
                                    errno.ENOENT)

    def flush(self, hold: bool = True) -> None:
        """Write what was appended since the last flush, one batch per kind
        (HOLD=False: also the records ``hold_from_ns`` would hold back).

        All or nothing: when a write fails (disk full), every table is cut
        back to where this flush began, the pending events are dropped and
        CaptureWriteError is raised; the directory stays readable.
        """
        if self.failed:
            raise CaptureWriteError(f"the capture in {self.dir} already failed")
        self.check_alive()
        start = {name: f.tell() for name, f in self._files.items()}
        written: Dict[str, int] = {}
        held: Dict[str, np.ndarray] = {}
        try:
            for k in self.kinds:
                sources = list(self._pending[k.name])
                used = self._used.get(k.name, 0)
                if used:
                    ready, later = self._merged(k.name, used, self.hold_from_ns if hold else None)
                    sources.append(ready)
                    if len(later):
                        held[k.name] = later
                for records in sources:
                    batch = to_record_batch(k, records, self._schemas[k.name])
                    if batch.num_rows:
                        self._writers[k.name].write_batch(batch)
                        written[k.name] = written.get(k.name, 0) + batch.num_rows
        except OSError as exc:
            self.failed = True
            for name, pos in start.items():
                try:
                    self._files[name].rewind(pos)
                except OSError:
                    pass
            raise self._error(f"writing {self.dir}", exc) from exc
        finally:
            self._pending = {k.name: [] for k in self.kinds}
            self._used = {name: 0 for name in self._slots}
            if not self.failed:
                for name, later in held.items():
                    self._slots[name][:len(later)] = later
                    self._used[name] = len(later)
        for name, n in written.items():
            self.rows[name] += n

    def _merged(self, name: str, used: int, hold_from_ns: Optional[int]) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """The first USED slots of NAME merged by time: (columns ready to
        write, records held back (a copy)).

        The records are gathered in time order as rows of 64-bit words, a
        block at a time, and each block is split into the column buffers
        while it is still in the cache.  (A take per column from the
        structured buffer copies the whole field out first: ~40% slower.)"""
        recs = self._slots[name][:used]
        order, lo, hi = _time_order(recs["ts_ns"], hold_from_ns, self.min_ts_ns)
        cols = {f: buf[:hi - lo] for f, buf in self._columns[name].items()}
        rows = _rows(recs)
        if order is None:
            for f, out in cols.items():
                out[:] = recs[f][lo:hi]
        else:
            block = np.empty((min(MERGE_BLOCK_ROWS, hi - lo), rows.shape[1]), dtype=np.uint64)
            for at in range(lo, hi, MERGE_BLOCK_ROWS):  # a step per block of records
                part = order[at:min(at + MERGE_BLOCK_ROWS, hi)]
                b = block[:len(part)]
                np.take(rows, part, axis=0, out=b, mode="clip")  # "raise" would buffer OUT
                b = b.view(recs.dtype).reshape(-1)
                for f, out in cols.items():
                    out[at - lo:at - lo + len(b)] = b[f]
        later = recs[hi:].copy() if order is None else rows[order[hi:]].view(recs.dtype).reshape(-1)
        return cols, later

    def write_manifest(self, manifest: dict) -> None:
        tmp = self.dir / (MANIFEST_NAME + ".tmp")
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.mode)
            with open(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.dir / MANIFEST_NAME)
        except OSError as exc:
            try:
                tmp.unlink()  # a half-written manifest would only hold the space
            except OSError:
                pass
            raise self._error(f"writing the manifest in {self.dir}", exc) from exc

    def close_tables(self) -> None:
        """Close every stream (end-of-stream marker unless a write failed)."""
        for name, w in self._writers.items():
            if not self.failed:
                f = self._files[name]
                pos = f.tell()
                try:
                    w.close()
                except Exception:
                    # The EOS marker is optional (readers also stop at a batch
                    # boundary), half of one is not: cut it off.
                    try:
                        f.rewind(pos)
                    except OSError:
                        pass
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
        self._writers = {}

    def discard(self) -> None:
        """Remove a capture that never started recording."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def finish(self) -> Path:
        """Pack the directory into the single capture file; return its path."""
        self.close_tables()
        tmp = Path(str(self.final_path) + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.mode)
            with open(fd, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(self.dir / MANIFEST_NAME, arcname=MANIFEST_NAME)
                for k in self.kinds:
                    tar.add(self.dir / (k.name + TABLE_SUFFIX), arcname=k.name + TABLE_SUFFIX)
            os.replace(tmp, self.final_path)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            why = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
            raise CaptureWriteError(
                f"could not pack {self.final_path} ({why}); the capture is complete and intact "
                f"in {self.dir}/ and can be analyzed from there", exc.errno or 0)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.final_path
