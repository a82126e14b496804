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

Spooling (``spool_bytes > 0``, what the recorder does): turning records into
compressed Arrow costs ~0.1 µs per event (splitting columns, naming comms,
zstd), most of the recorder's CPU while the window is open, taken from the
workload it watches.  So a flush only appends the merged records as they
are (fixed-size, the kind's record dtype) to ``KIND.spool``; they are
encoded into ``KIND.arrows`` when the window closes (``encode_spool``), or
already while recording once the spools together pass ``spool_bytes``
(then a flush encodes twice what it appends until the spools are empty, so
a long capture stays bounded on disk).  A spool is records in time order
after everything in its table; a reader that finds one in a ``.partial``
directory (a recorder killed with -9) reads its whole records too.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pyarrow as pa

from latencyscope.errors import LatencyScopeError
from latencyscope.schemas.codegen import arrow_schema, record_dtype, to_record_batch
from latencyscope.schemas.events import EventKind

COMPRESSION = "zstd"
MANIFEST_NAME = "manifest.json"
TABLE_SUFFIX = ".arrows"
SPOOL_SUFFIX = ".spool"
# Rows per batch when a spool is encoded: big batches compress better and
# cost less per row; the buffer is reused (no page faults per batch).
ENCODE_ROWS = 1 << 18


def _rows(a: np.ndarray) -> np.ndarray:
    """Structured records as a 2-D array of words (fancy indexing of a
    structured dtype is several times slower)."""
    return a.view(np.uint64).reshape(len(a), -1)


def _in_time_order(records: np.ndarray, hold_from_ns: Optional[int],
                   scratch: np.ndarray, min_ts_ns: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """RECORDS (runs each in time order, one per CPU ring) merged by ts_ns,
    split into (ready to write, held back: ts_ns >= HOLD_FROM_NS); records
    before MIN_TS_NS are dropped.  A merge is gathered into SCRATCH (same
    dtype, reused: no page faults per flush)."""
    ts = records["ts_ns"]
    if len(ts) > 1 and (ts[1:] < ts[:-1]).any():
        # Stable: equal timestamps keep drain order.  Merging a few sorted
        # runs is linear for numpy's stable (tim)sort.
        order = np.argsort(ts, kind="stable")
        out = scratch[:len(records)]
        np.take(_rows(records), order, axis=0, out=_rows(out))
        records = out
        ts = records["ts_ns"]
    if min_ts_ns is not None and len(ts) and ts[0] < min_ts_ns:
        cut = int(np.searchsorted(ts, np.uint64(max(min_ts_ns, 0)), side="left"))
        records, ts = records[cut:], ts[cut:]
    if hold_from_ns is None or not len(ts) or ts[-1] < hold_from_ns:
        return records, records[:0]
    cut = int(np.searchsorted(ts, np.uint64(max(hold_from_ns, 0)), side="left"))
    return records[:cut], records[cut:].copy()


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
                 slots: Optional[Dict[str, Tuple[np.dtype, int]]] = None, spool_bytes: int = 0):
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
        self._schemas = {k.name: arrow_schema(k) for k in kinds}
        self._pending: Dict[str, List[np.ndarray]] = {k.name: [] for k in kinds}
        self._slots = {name: np.zeros(cap, dtype=dt) for name, (dt, cap) in (slots or {}).items()}
        self._used: Dict[str, int] = {name: 0 for name in self._slots}
        # Where a flush merges the per-CPU runs of a slot buffer by time.
        self._scratch = {name: np.zeros_like(b) for name, b in self._slots.items()}
        self._writers = {}
        self._files = {}
        self.rows: Dict[str, int] = {k.name: 0 for k in kinds}
        self.hold_from_ns: Optional[int] = None  # flush keeps slot records with ts_ns >= this
        # Slot records older than this are dropped: staged before the capture
        # window opened (bpf/common.h), not part of it.
        self.min_ts_ns: Optional[int] = None
        if spool_bytes:
            # Never let a spool take more than a quarter of the free space:
            # the host's own processes share this disk.
            st = os.statvfs(self.dir)
            spool_bytes = max(1, min(spool_bytes, st.f_bavail * st.f_frsize // 4))
        self.spool_bytes = spool_bytes
        self._spools: Dict[str, _Spool] = {}
        self._encoding = False  # over spool_bytes: flushes encode until the spools are empty
        self._encode_buf: Optional[np.ndarray] = None
        self.spool_gave_up = False  # the disk filled: the spool was compressed and dropped
        self.started = False  # set once the first manifest is written
        self.failed = False   # a write failed: no more batches, no EOS marker
        opts = pa.ipc.IpcWriteOptions(compression=COMPRESSION)
        for k in kinds:
            p = self.dir / (k.name + TABLE_SUFFIX)
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
                f = _Sink(fd)
                self._files[k.name] = f
                self._writers[k.name] = pa.ipc.new_stream(f, self._schemas[k.name], options=opts)
                if spool_bytes:
                    sp = self.dir / (k.name + SPOOL_SUFFIX)
                    self._spools[k.name] = _Spool(os.open(sp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode),
                                                  record_dtype(k))
            except OSError as exc:
                self.close_tables()
                raise self._error(f"creating {p}", exc)

    @property
    def bytes_written(self) -> int:
        """Bytes in the tables plus records waiting in the spools."""
        return (sum(f.tell() for f in self._files.values() if not f.closed)
                + sum(sp.backlog for sp in self._spools.values()))

    @property
    def events(self) -> Dict[str, int]:
        """Records kept per kind: in the tables plus in the spools."""
        return {name: n + (self._spools[name].rows if name in self._spools else 0)
                for name, n in self.rows.items()}

    @property
    def spooled_rows(self) -> int:
        """Records in the spools, not yet encoded into the tables."""
        return sum(sp.rows for sp in self._spools.values())

    def append(self, k: EventKind, records: np.ndarray) -> None:
        if len(records):
            self._pending[k.name].append(records)

    def free_slots(self, k: EventKind) -> np.ndarray:
        """The unused tail of KIND's slot buffer (may be empty: flush first)."""
        return self._slots[k.name][self._used[k.name]:]

    def commit(self, k: EventKind, n: int) -> None:
        """N slots were written at the start of ``free_slots(k)``."""
        self._used[k.name] += n

    def slots_full(self, fraction: float = 0.5) -> bool:
        """Is any slot buffer more than FRACTION used?  (Then flush early.)"""
        return any(self._used[n] > fraction * len(b) for n, b in self._slots.items())

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
        CaptureWriteError is raised; the directory stays readable.  A spool
        that no longer fits on the disk is given up first: what it holds is
        compressed (~10x smaller) and the capture goes on without one.
        """
        if self.failed:
            raise CaptureWriteError(f"the capture in {self.dir} already failed")
        self.check_alive()
        held: Dict[str, np.ndarray] = {}
        try:
            sources: Dict[str, List[np.ndarray]] = {}
            for k in self.kinds:
                sources[k.name] = list(self._pending[k.name])
                used = self._used.get(k.name, 0)
                if used:
                    ready, later = _in_time_order(self._slots[k.name][:used],
                                                  self.hold_from_ns if hold else None,
                                                  self._scratch[k.name], self.min_ts_ns)
                    sources[k.name].append(ready)
                    if len(later):
                        held[k.name] = later
            try:
                self._all_or_nothing(lambda: self._write(sources))
            except OSError as exc:
                if not (self._spools and exc.errno in (errno.ENOSPC, errno.EDQUOT)):
                    raise
                self._all_or_nothing(self._drop_spools)
                self.spool_gave_up = True
                self._all_or_nothing(lambda: self._write(sources))
        except OSError as exc:
            self.failed = True
            raise self._error(f"writing {self.dir}", exc) from exc
        finally:
            self._pending = {k.name: [] for k in self.kinds}
            self._used = {name: 0 for name in self._slots}
            if not self.failed:
                for name, later in held.items():
                    self._slots[name][:len(later)] = later
                    self._used[name] = len(later)

    def _all_or_nothing(self, step) -> None:
        """Run STEP (returns rows written per kind); if it raises OSError, cut
        every table and spool back to where it began and re-raise."""
        start = {name: f.tell() for name, f in self._files.items()}
        spool_start = {name: (sp.head, sp.tail) for name, sp in self._spools.items()}
        try:
            written = step()
        except OSError:
            for name, pos in start.items():
                try:
                    self._files[name].rewind(pos)
                except OSError:
                    pass
            for name, (head, tail) in spool_start.items():
                try:
                    self._spools[name].rewind(head, tail)
                except OSError:
                    pass
            raise
        for sp in self._spools.values():
            sp.settle()
        for name, n in written.items():
            self.rows[name] += n

    def _write(self, sources: Dict[str, List[np.ndarray]]) -> Dict[str, int]:
        """Spool (or encode) SOURCES; then, over the spool limit, encode
        twice what was spooled.  Rows written to the tables per kind."""
        written: Dict[str, int] = {}
        spooled: Dict[str, int] = {}
        for k in self.kinds:
            sp = self._spools.get(k.name)
            for records in sources.get(k.name, ()):
                if sp is not None:
                    sp.append(records)
                    spooled[k.name] = spooled.get(k.name, 0) + len(records)
                    continue
                batch = to_record_batch(k, records, self._schemas[k.name])
                if batch.num_rows:
                    self._writers[k.name].write_batch(batch)
                    written[k.name] = written.get(k.name, 0) + batch.num_rows
        if self._spools:
            backlog = sum(sp.backlog for sp in self._spools.values())
            self._encoding = backlog > 0 and (self._encoding or backlog > self.spool_bytes)
            if self._encoding:
                for name in self._spools:
                    written[name] = written.get(name, 0) + self._encode(name, 2 * spooled.get(name, 0))
                self._encoding = self.spooled_rows > 0
        return written

    def _drop_spools(self) -> Dict[str, int]:
        """Encode every spool, then stop spooling (the disk is too small)."""
        written = {name: self._encode(name, sp.rows) for name, sp in self._spools.items()}
        for name, sp in self._spools.items():
            sp.close()
            try:
                os.unlink(self.dir / (name + SPOOL_SUFFIX))
            except OSError:
                pass
        self._spools = {}
        self._encoding = False
        return written

    def _encode(self, name: str, max_rows: int) -> int:
        """Encode up to MAX_ROWS (at least one batch's worth) of NAME's spool
        into its table; return the rows written.  The spool's head moves only
        past batches written."""
        sp = self._spools[name]
        k = next(k for k in self.kinds if k.name == name)
        if self._encode_buf is None:
            width = max(s.dtype.itemsize for s in self._spools.values())
            self._encode_buf = np.empty(ENCODE_ROWS * width, np.uint8)
        done = 0
        budget = max(max_rows, ENCODE_ROWS)
        while sp.rows and done < budget:
            n = min(sp.rows, ENCODE_ROWS, budget - done)
            records = self._encode_buf[:n * sp.dtype.itemsize].view(sp.dtype)
            sp.read(records)
            self._writers[name].write_batch(to_record_batch(k, records, self._schemas[name]))
            sp.consumed(n)
            done += n
        return done

    def encode_spool(self) -> None:
        """Encode everything spooled into the tables (the window is closed).
        All or nothing like ``flush``; on failure the spools keep what was
        not written and the directory stays readable."""
        if not self._spools or self.failed:
            return
        try:
            self._all_or_nothing(lambda: {name: self._encode(name, sp.rows)
                                          for name, sp in self._spools.items()})
        except OSError as exc:
            self.failed = True
            raise self._error(f"writing {self.dir}", exc) from exc
        self._encoding = False

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
        for sp in self._spools.values():
            sp.close()
        self._writers = {}

    def discard(self) -> None:
        """Remove a capture that never started recording."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def finish(self) -> Path:
        """Pack the directory into the single capture file; return its path
        (``encode_spool`` first: a spool left over is not packed)."""
        if self.spooled_rows:
            raise CaptureWriteError(f"{self.spooled_rows:,} records are still spooled in {self.dir}; "
                                    "encode_spool() first")
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


class _Spool:
    """Fixed-size records appended at the tail of a file and read back from
    its head.  When the head catches up, the file is emptied (its blocks
    freed), so a spool that is encoded as it goes stays small."""

    def __init__(self, fd: int, dtype: np.dtype):
        self.fd = fd
        self.dtype = dtype
        self.head = 0  # byte offsets
        self.tail = 0
        self.closed = False

    @property
    def backlog(self) -> int:
        return self.tail - self.head

    @property
    def rows(self) -> int:
        return self.backlog // self.dtype.itemsize

    def append(self, records: np.ndarray) -> None:
        if records.dtype != self.dtype:
            raise TypeError(f"spool holds {self.dtype}, got {records.dtype}")
        view = memoryview(np.ascontiguousarray(records).view(np.uint8))
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], self.tail + done)
        self.tail += done

    def read(self, records: np.ndarray) -> None:
        """Fill RECORDS from the head (does not move it: ``consumed`` does)."""
        view = memoryview(records.view(np.uint8))
        done = 0
        while done < len(view):
            got = os.preadv(self.fd, [view[done:]], self.head + done)
            if got <= 0:
                raise OSError(errno.EIO, f"spool ended {len(view) - done} bytes early")
            done += got

    def consumed(self, n: int) -> None:
        self.head += n * self.dtype.itemsize

    def settle(self) -> None:
        """Once what was consumed is safely in the table: empty a spool that
        was read to its end (not before, so a failed write can still
        ``rewind``)."""
        if self.head == self.tail and self.tail and not self.closed:
            os.ftruncate(self.fd, 0)
            self.head = self.tail = 0

    def rewind(self, head: int, tail: int) -> None:
        """Back to HEAD/TAIL (a failed flush): records appended since are cut off."""
        self.head, self.tail = head, tail
        if not self.closed:
            os.ftruncate(self.fd, tail)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
