"""Vectorized consumer of a BPF ring buffer of fixed-size records.

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
from latencyscope.schemas.codegen import RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HDR_SIZE


class RingReader:
    def __init__(self, map_fd: int, data_size: int, dtype: np.dtype, record_size: int):
        if data_size & (data_size - 1):
            raise ValueError("ring size must be a power of two")
        self.page = mmap.PAGESIZE
        self.size = data_size
        self.mask = data_size - 1
        self.dtype = dtype
        self.slot = dtype.itemsize
        self.record_size = record_size
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
        self.discarded = 0

    def pending_bytes(self) -> int:
        return int(self._prod[0] - self._cons[0])

    def fill_fraction(self) -> float:
        """How full the ring is (0..1): the drain polls sooner when it fills."""
        return self.pending_bytes() / self.size

    def drain_into(self, out: np.ndarray) -> int:
        """Copy complete records into OUT (an array of the ring dtype) from
        its start, release their space, return how many were copied.

        One memcpy into memory the caller reuses: no allocation, no page
        faults per drain.  Stops early when OUT is full.
        """
        cons = int(self._cons[0])
        prod = int(self._prod[0])  # x86 is TSO: this load is an acquire
        n = min((prod - cons) // self.slot, len(out))
        if n <= 0:
            return 0
        start = cons & self.mask
        view = self._data[start:start + n * self.slot].view(self.dtype)
        lens = view["_len"]
        busy = np.flatnonzero(lens & RINGBUF_BUSY_BIT)
        if busy.size:
            n = int(busy[0])
            view = view[:n]
            lens = lens[:n]
        if n == 0:
            return 0
        if (lens != self.record_size).any():
            bad = (lens & ~np.uint32(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT)) != self.record_size
            if bad.any():
                raise LatencyScopeError(
                    f"ring buffer record of unexpected size {int(lens[bad][0] & 0x3fffffff)} "
                    f"(expected {self.record_size}): BPF program and schema disagree")
        # A byte copy: numpy's structured-dtype copy is ~10x slower.
        out[:n].view(np.uint8)[:] = self._data[start:start + n * self.slot]
        # Release the space only after the copy; the kernel may reuse it at once.
        self._cons[0] = np.uint64(cons + n * self.slot)
        disc = (out["_len"][:n] & RINGBUF_DISCARD_BIT) != 0
        if disc.any():
            self.discarded += int(disc.sum())
            keep = out[:n][~disc]
            n = len(keep)
            out[:n] = keep
        return n

    def close(self) -> None:
        # numpy views pin the buffers; drop them before closing the maps.
        self._cons = self._prod = self._data = None
        for m in (self._cons_map, self._prod_map):
            try:
                m.close()
            except BufferError:
                pass


assert RINGBUF_HDR_SIZE == 8
