"""Capture writer: one compressed Arrow IPC stream per event kind.

While recording, the capture is a directory ``NAME.lscope.partial/`` holding
``manifest.json`` and ``KIND.arrows`` streams; every ``flush()`` appends one
record batch per kind straight to the file descriptor, so a crash or
SIGKILL loses at most what was drained since the last flush.  ``finish()``
packs the directory into the single shareable file ``NAME.lscope`` (an
uncompressed tar: manifest first, then the tables) and removes the
directory.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import pyarrow as pa

from latencyscope.errors import LatencyScopeError
from latencyscope.schemas.codegen import arrow_schema
from latencyscope.schemas.events import EventKind

COMPRESSION = "zstd"
MANIFEST_NAME = "manifest.json"
TABLE_SUFFIX = ".arrows"


def comm_array(col: np.ndarray) -> pa.Array:
    """char[16] NUL-padded task names -> Arrow strings.

    Hashing the 16-byte values first makes this cost one pass plus a take,
    because a capture holds few distinct names.
    """
    raw = np.ascontiguousarray(col)
    fsb = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(raw), [None, pa.py_buffer(raw.view(np.uint8))])
    d = fsb.dictionary_encode()
    names = pa.array([v.split(b"\0", 1)[0].decode("utf-8", "replace") for v in d.dictionary.to_pylist()],
                     pa.string())
    return names.take(d.indices)


def to_record_batch(k: EventKind, records: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    cols = []
    for f in k.fields:
        col = records[f.name]
        cols.append(comm_array(col) if f.ctype == "comm" else pa.array(np.ascontiguousarray(col)))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


class CaptureWriter:
    def __init__(self, path: str, kinds: List[EventKind], mode: int = 0o600):
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
        self._writers = {}
        self._files = {}
        self.rows: Dict[str, int] = {k.name: 0 for k in kinds}
        self.started = False  # set once the first manifest is written
        opts = pa.ipc.IpcWriteOptions(compression=COMPRESSION)
        for k in kinds:
            p = self.dir / (k.name + TABLE_SUFFIX)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            f = open(fd, "wb", buffering=0)
            self._files[k.name] = f
            self._writers[k.name] = pa.ipc.new_stream(f, self._schemas[k.name], options=opts)

    @property
    def bytes_written(self) -> int:
        return sum(f.tell() for f in self._files.values() if not f.closed)

    def append(self, k: EventKind, records: np.ndarray) -> None:
        if len(records):
            self._pending[k.name].append(records)

    def flush(self) -> None:
        """Write what was appended since the last flush, one batch per kind."""
        for k in self.kinds:
            chunks = self._pending[k.name]
            if not chunks:
                continue
            records = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
            self._pending[k.name] = []
            try:
                self._writers[k.name].write_batch(to_record_batch(k, records, self._schemas[k.name]))
            except OSError as exc:
                raise LatencyScopeError(f"writing {self.dir}: {exc.strerror or exc}") from exc
            self.rows[k.name] += len(records)

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
            raise LatencyScopeError(f"writing the manifest in {self.dir}: {exc.strerror or exc}") from exc

    def close_tables(self) -> None:
        for name, w in self._writers.items():
            try:
                w.close()
            except Exception:
                pass
            self._files[name].close()
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
            tmp.unlink(missing_ok=True)
            raise LatencyScopeError(
                f"could not pack {self.final_path} ({exc.strerror or exc}); the capture is intact "
                f"in {self.dir}/ and can be analyzed from there")
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.final_path
