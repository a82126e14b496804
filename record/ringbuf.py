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


# Up to this many short entries in one drain are stepped over one by one;
# beyond, the records are copied whole and packed by index.
SHORT_ENTRIES_AS_BLOCKS = 16


class RingReader:
    """Reader of one ring of event kind K.  A ring entry is the ring's 8-byte
    header, for staged kinds a chunk header (u32 valid records, u32 kind),
    then ``per_entry`` record slots; the drain copies bare records."""

    def __init__(self, map_fd: int, data_size: int, k: EventKind, small: bool = False):
        if data_size & (data_size - 1):
            raise ValueError("ring size must be a power of two")
        self.page = mmap.PAGESIZE
        self.size = data_size
        self.mask = data_size - 1
        self._layout(k, small)
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

    @classmethod
    def over(cls, mem: np.ndarray, data_size: int, k: EventKind, small: bool = False) -> "RingReader":
        """A reader over MEM (bytes: a consumer page, a producer page, then
        the data area, ideally twice as the kernel maps it so that spans that
        wrap are contiguous) instead of a BPF map: for a test or benchmark
        that plays the kernel's part itself."""
        r = cls.__new__(cls)
        r.page, r.size, r.mask = mmap.PAGESIZE, data_size, data_size - 1
        r._layout(k, small)
        r._cons_map = r._prod_map = None
        r._cons = mem[:8].view(np.uint64)
        r._prod = mem[r.page:r.page + 8].view(np.uint64)
        r._data = mem[2 * r.page:]
        return r

    def _layout(self, k: EventKind, small: bool = False) -> None:
        self.kind = k
        self.dtype = record_dtype(k)
        self.per_entry = entry_records(k, small)
        self.entry = entry_size(k, small)
        self.payload = slot_payload_size(k, small)
        self.staged = k.staged
        self._hdr_words = entry_header_size(k) // 8
        self._slot_index = np.arange(self.per_entry)
        self.discarded = 0
        self.last_entries = 0  # entries the last drain_into copied
        self.ring_bytes = 0    # ring space the copied entries took ...
        self.records = 0       # ... and the records they held

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

        Every numpy call costs microseconds and a poll drains every CPU's
        ring of every kind, so the usual cases take few of them: entries
        committed and of the right size, and for staged kinds full chunks,
        or full chunks with some flushed early (a quiet CPU's stage aged out).
        """
        self.last_entries = 0
        cons = int(self._cons[0])
        prod = int(self._prod[0])  # x86 is TSO: this load is an acquire
        n = min((prod - cons) // self.entry, len(out) // self.per_entry)
        if n <= 0:
            return 0
        start = cons & self.mask
        words = self._data[start:start + n * self.entry].view(np.uint64).reshape(n, self.entry // 8)
        head = words[:, :self._hdr_words].view(np.uint32)  # ring: (len, pg_off); chunk: (valid, kind)
        disc = None
        if not (head[:, 0] == self.payload).all():
            n, disc = self._odd_entries(head[:, 0])
            if n == 0:
                return 0
            words, head = words[:n], head[:n]
        valid = None
        if self.staged:
            other = head[:, 3] != self.kind.kind_id
            if other.any():
                raise LatencyScopeError(f"{self.kind.name} ring entry of kind {int(head[other.argmax(), 3])} "
                                        f"(expected {self.kind.kind_id}): BPF program and schema disagree")
            if not (head[:, 2] == self.per_entry).all():
                valid = head[:, 2].astype(np.int64)
                if (valid > self.per_entry).any():
                    raise LatencyScopeError(f"{self.kind.name} chunk claims {int(valid.max())} records "
                                            f"(at most {self.per_entry}): BPF program and schema disagree")
        rows = out[:n * self.per_entry].view(np.uint64).reshape(n * self.per_entry, -1)
        body = words[:, self._hdr_words:]
        if valid is None and disc is None:
            rows.reshape(n, -1)[:] = body
            got = len(rows)
        else:
            if valid is None:
                valid = np.full(n, self.per_entry, dtype=np.int64)
            if disc is not None:
                self.discarded += int(disc.sum())
                valid[disc] = 0
            got = self._copy_valid(rows, body, valid)
        # Release the space only after the copy; the kernel may reuse it at once.
        self._cons[0] = np.uint64(cons + n * self.entry)
        self.last_entries = n
        self.ring_bytes += n * self.entry
        self.records += got
        return got

    def _copy_valid(self, rows: np.ndarray, body: np.ndarray, valid: np.ndarray) -> int:
        """Copy the first VALID[i] records of entry i's BODY (rows of 64-bit
        words) to ROWS, packed; return how many.  Entries short of records
        (chunks flushed early by a quiet CPU, discarded entries) are rare
        when the rate is high: runs of full entries between them are copied
        as blocks, a copy per short entry.  Many short entries (a low rate,
        little data) are copied whole and packed by index."""
        per, width = self.per_entry, rows.shape[1]
        short = np.flatnonzero(valid != per)
        if len(short) > SHORT_ENTRIES_AS_BLOCKS:
            rows.reshape(len(body), -1)[:] = body
            first = int(short[0])
            base = first * per
            idx = np.flatnonzero(self._slot_index < valid[first:, None])
            rows[base:base + len(idx)] = rows[base:][idx]
            return base + len(idx)
        at = prev = 0
        for j in short.tolist() + [len(body)]:  # a step per short entry, not per record
            if j > prev:
                m = (j - prev) * per
                rows[at:at + m].reshape(j - prev, -1)[:] = body[prev:j]
                at += m
            if j < len(body) and valid[j]:
                v = int(valid[j])
                rows[at:at + v] = body[j, :v * width].reshape(v, width)
                at += v
            prev = j + 1
        return at

    def _odd_entries(self, lens: np.ndarray):
        """Entries not all committed with the expected size: (how many of
        them can be copied -- up to the first one still being written --,
        which of those were discarded)."""
        busy = np.flatnonzero(lens & RINGBUF_BUSY_BIT)
        n = int(busy[0]) if busy.size else len(lens)
        lens = lens[:n]
        bad = (lens & ~np.uint32(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT)) != self.payload
        if bad.any():
            raise LatencyScopeError(
                f"{self.kind.name} ring entry of unexpected size (size {int(lens[bad][0] & 0x3fffffff)}, "
                f"expected {self.payload}): BPF program and schema disagree")
        disc = (lens & RINGBUF_DISCARD_BIT) != 0
        return n, (disc if disc.any() else None)

    def close(self) -> None:
        # numpy views pin the buffers; drop them before closing the maps.
        self._cons = self._prod = self._data = None
        for m in (self._cons_map, self._prod_map):
            try:
                if m is not None:
                    m.close()
            except BufferError:
                pass


assert RINGBUF_HDR_SIZE == 8
