"""Vectorized consumer of a BPF ring buffer of fixed-size entries.

Instead of a Python callback per record, the ring is mmap'ed the way libbpf
does it (consumer page RW; producer page and data area RO, the data area
mapped twice back to back so a run that wraps is contiguous) and the span
between the consumer and producer positions is viewed as a numpy structured
array in one step.  The span stops at the first record still being written
(BUSY bit) and the consumer position advances past what was copied.
"""
from __future__ import annotations

import mmap

import numpy as np

from latencyscope.errors import LatencyScopeError
from latencyscope.schemas.codegen import (RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SIZE,
                                          entry_header_size, entry_records, entry_size, record_dtype,
                                          slot_payload_size)
from latencyscope.schemas.events import EventKind


class RingReader:
    """Reader of one ring of event kind K.  A ring entry is the ring's 8-byte
    header, for staged kinds a chunk header (u32 valid records, u32 kind),
    then ``per_entry`` record slots; the drain copies bare records."""

    def __init__(self, map_fd: int, data_size: int, k: EventKind):
        if data_size & (data_size - 1):
            raise ValueError("ring size must be a power of two")
        self.page = mmap.PAGESIZE
        self.size = data_size
        self.mask = data_size - 1
        self._layout(k)
        try:
            self._cons_map = mmap.mmap(map_fd, self.page, mmap.MAP_SHARED,
                                       mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            self._prod_map = mmap.mmap(map_fd, self.page + 2 * data_size, mmap.MAP_SHARED,
                                       mmap.PROT_READ, offset=self.page)
        except OSError as exc:
            raise LatencyScopeError(f"cannot mmap BPF ring buffer (fd {map_fd}): {exc}")
        self._cons = np.frombuffer(self._cons_map, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._prod_map, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._prod_map, dtype=np.uint8, offset=self.page)

    def _layout(self, k: EventKind) -> None:
        self.kind = k
        self.dtype = record_dtype(k)
        self.per_entry = entry_records(k)
        self.entry = entry_size(k)
        self.payload = slot_payload_size(k)
        self.staged = k.staged
        self.discarded = 0
        self.last_entries = 0  # entries the last drain_into copied

    def pending_bytes(self) -> int:
        return int(self._prod[0] - self._cons[0])

    def fill_fraction(self) -> float:
        """How full the ring is (0..1): the drain polls sooner when it fills."""
        return self.pending_bytes() / self.size

    def drain_into(self, out: np.ndarray) -> int:
        """Copy the records of complete entries into OUT (an array of the
        record dtype) from its start, release their space, return how many
        records were copied.

        One strided copy into memory the caller reuses (headers skipped): no
        allocation, no page faults per drain.  Copies only whole entries,
        and stops early when OUT has no room for one more.
        """
        self.last_entries = 0
        cons = int(self._cons[0])
        prod = int(self._prod[0])  # x86 is TSO: this load is an acquire
        n = min((prod - cons) // self.entry, len(out) // self.per_entry)
        if n <= 0:
            return 0
        start = cons & self.mask
        words = self._data[start:start + n * self.entry].view(np.uint64).reshape(n, self.entry // 8)
        lens = (words[:, 0] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        busy = np.flatnonzero(lens & RINGBUF_BUSY_BIT)
        if busy.size:
            n = int(busy[0])
            words, lens = words[:n], lens[:n]
        if n == 0:
            return 0
        bad = (lens & ~np.uint32(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT)) != self.payload
        if self.staged:
            bad |= (words[:, 1] >> np.uint64(32)) != np.uint64(self.kind.kind_id)
        if bad.any():
            raise LatencyScopeError(
                f"{self.kind.name} ring entry of unexpected size or kind (size "
                f"{int(lens[bad][0] & 0x3fffffff)}, expected {self.payload}): BPF program and schema disagree")
        hdr = entry_header_size(self.kind) // 8
        rec = out[:n * self.per_entry]
        rec.view(np.uint64).reshape(n, -1)[:] = words[:, hdr:]
        valid = (words[:, 1] & np.uint64(0xFFFFFFFF)).astype(np.int64) if self.staged else None
        # Release the space only after the copy; the kernel may reuse it at once.
        self._cons[0] = np.uint64(cons + n * self.entry)
        self.last_entries = n
        disc = (lens & RINGBUF_DISCARD_BIT) != 0
        partial = valid is not None and bool((valid != self.per_entry).any())
        if not disc.any() and not partial:
            return len(rec)
        # A chunk flushed before it was full (a quiet CPU's stage aged out),
        # or a discarded entry: the records after the first such entry are
        # moved up over the empty slots; the ones before it stay where they are.
        if partial and (valid > self.per_entry).any():
            raise LatencyScopeError(f"{self.kind.name} chunk claims {int(valid.max())} records "
                                    f"(at most {self.per_entry}): BPF program and schema disagree")
        short = disc | (valid != self.per_entry) if partial else disc
        first = int(np.argmax(short))
        keep = np.ones((n - first, self.per_entry), dtype=bool)
        if partial:
            keep &= np.arange(self.per_entry) < valid[first:, None]
        keep[disc[first:]] = False
        self.discarded += int(disc.sum())
        base = first * self.per_entry
        kept = rec[base:][keep.ravel()]
        out[base:base + len(kept)] = kept
        return base + len(kept)

    def close(self) -> None:
        # numpy views pin the buffers; drop them before closing the maps.
        self._cons = self._prod = self._data = None
        for m in (self._cons_map, self._prod_map):
            try:
                m.close()
            except BufferError:
                pass


assert RINGBUF_HDR_SIZE == 8
