"""The drain copies ring slots into the writer's preallocated buffers; a
flush turns them into one Arrow batch and the buffer is reused."""
import mmap
import tarfile

import numpy as np
import pyarrow as pa

from latencyscope.record.ringbuf import RingReader
from latencyscope.record.writer import CaptureWriter
from latencyscope.schemas import kind
import pytest

from latencyscope.errors import LatencyScopeError
from latencyscope.schemas.codegen import (RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, SMALL_RECORDS, STAGE_RECORDS,
                                          entry_size, record_dtype, slot_dtype, slot_payload_size)


def _slots(k, n, first_ts):
    s = np.zeros(n, dtype=slot_dtype(k))
    s["ts_ns"] = np.arange(first_ts, first_ts + n)
    s["next_pid"] = 4321
    s["prev_tgid"] = 1234
    return s


def test_slots_written_through_the_buffer_read_back_in_order(tmp_path):
    k = kind("sched_switch")
    w = CaptureWriter(str(tmp_path / "c.lscope"), [k], slots={k.name: (slot_dtype(k), 100)})
    for first in (0, 60, 120):          # three rounds reuse the same buffer
        free = w.free_slots(k)
        free[:60] = _slots(k, 60, first)
        w.commit(k, 60)
        assert w.slots_full() and w.pending_rows == 60
        w.flush()
        assert w.pending_rows == 0 and len(w.free_slots(k)) == 100
    w.write_manifest({"format_version": 1})
    path = w.finish()
    with tarfile.open(path) as tar:
        t = pa.ipc.open_stream(tar.extractfile("sched_switch.arrows").read()).read_all()
    assert t.column("ts_ns").to_pylist() == list(range(180))
    assert set(t.column("next_pid").to_pylist()) == {4321}
    assert set(t.column("prev_tgid").to_pylist()) == {1234}



def test_per_cpu_runs_are_written_merged_by_time_and_recent_records_held_back(tmp_path):
    """Two CPUs' rings drained one after the other: each run is in time
    order, the buffer is not.  Every flush writes a time-ordered batch and
    keeps records at or after hold_from_ns for the next one; the tables end
    up complete and in time order across batches."""
    k = kind("sched_switch")
    w = CaptureWriter(str(tmp_path / "c.lscope"), [k], slots={k.name: (slot_dtype(k), 1000)})
    rng = np.random.default_rng(7)
    ts_all = []
    for rnd in range(4):
        lo = rnd * 1000
        for cpu in (0, 1):  # one sorted run per CPU, overlapping in time
            ts = np.sort(rng.integers(lo, lo + 1000, 150)).astype(np.uint64)
            s = _slots(k, len(ts), 0)
            s["ts_ns"] = ts
            s["cpu"] = cpu
            free = w.free_slots(k)
            free[:len(s)] = s
            w.commit(k, len(s))
            ts_all.append(ts)
        w.hold_from_ns = lo + 900  # the last 100 ns of this round may still get company
        w.flush()
        held = w.pending_rows
        assert held == sum(int((t >= lo + 900).sum()) for t in ts_all[-2:]) > 0
    w.hold_from_ns = None
    w.flush()                         # the final flush writes what was held
    assert w.pending_rows == 0
    w.write_manifest({"format_version": 1})
    path = w.finish()
    with tarfile.open(path) as tar:
        t = pa.ipc.open_stream(tar.extractfile("sched_switch.arrows").read()).read_all()
    got = t.column("ts_ns").to_numpy()
    assert (np.diff(got.astype(np.int64)) >= 0).all()          # in time order across batches
    assert sorted(got.tolist()) == sorted(np.concatenate(ts_all).tolist())  # nothing lost or doubled


class _FileRing:
    """A RingReader over a plain file laid out like a BPF ring (consumer
    page, producer page, data).  The kernel maps the data area twice; a file
    has it once, which is enough for spans that do not wrap."""

    def __init__(self, tmp_path, k, size=64 * 1024, small=False):
        page = mmap.PAGESIZE
        self.small = small
        f = tmp_path / f"ring-{k.name}{'-small' if small else ''}"
        f.write_bytes(b"\0" * (2 * page + size))
        self.fd = open(f, "r+b")
        self.m = mmap.mmap(self.fd.fileno(), 2 * page + size)
        r = RingReader.over(np.frombuffer(self.m, dtype=np.uint8), size, k, small)
        self.r, self.k = r, k
        self.words = r._data.view(np.uint64)
        self.at = 0

    def put(self, records, valid=None, length=None, kind_id=None, busy=False):
        """Append one entry holding RECORDS (a staged kind: one chunk)."""
        k, r = self.k, self.r
        w0 = self.at // 8
        ln = slot_payload_size(k, self.small) if length is None else length
        self.words[w0] = ln | (RINGBUF_BUSY_BIT if busy else 0)
        hdr = 1
        if k.staged:
            n = len(records) if valid is None else valid
            self.words[w0 + 1] = n | ((k.kind_id if kind_id is None else kind_id) << 32)
            hdr = 2
        body = np.zeros(r.per_entry, dtype=record_dtype(k))
        body[:len(records)] = records
        self.words[w0 + hdr:w0 + hdr + body.nbytes // 8] = body.view(np.uint64)
        self.at += entry_size(k, self.small)
        r._prod[0] = self.at

    def close(self):
        self.r._cons = self.r._prod = self.r._data = None
        self.words = None
        self.m.close()
        self.fd.close()


def _recs(k, first, n):
    a = np.zeros(n, dtype=record_dtype(k))
    a["ts_ns"] = np.arange(first, first + n)
    return a


def test_drain_into_stops_at_a_busy_record_and_at_the_end_of_the_buffer(tmp_path):
    k = kind("sched_migrate_task")          # not staged: one record per entry
    ring = _FileRing(tmp_path, k)
    try:
        r = ring.r
        for i in range(10):
            ring.put(_recs(k, 1000 + i, 1), busy=(i == 7))
        out = np.zeros(5, dtype=record_dtype(k))
        assert r.drain_into(out) == 5                       # buffer full
        assert list(out["ts_ns"]) == [1000, 1001, 1002, 1003, 1004]
        assert r.drain_into(out) == 2                       # stops before the busy record
        assert list(out["ts_ns"][:2]) == [1005, 1006]
        assert int(r._cons[0]) == 7 * entry_size(k)
    finally:
        ring.close()


def test_drain_of_staged_chunks_keeps_only_the_valid_records_in_order(tmp_path):
    k = kind("sched_switch")
    assert k.staged
    ring = _FileRing(tmp_path, k)
    try:
        r = ring.r
        ring.put(_recs(k, 0, STAGE_RECORDS))              # a full chunk
        ring.put(_recs(k, 100, 3))                        # flushed early (age): 3 valid
        ring.put(_recs(k, 200, STAGE_RECORDS))
        out = np.zeros(10 * STAGE_RECORDS, dtype=record_dtype(k))
        n = r.drain_into(out)
        want = list(range(STAGE_RECORDS)) + [100, 101, 102] + list(range(200, 200 + STAGE_RECORDS))
        assert n == len(want) and list(out["ts_ns"][:n]) == want
        assert r.last_entries == 3 and r.pending_bytes() == 0
        # Room for less than one chunk: nothing is copied, nothing released.
        ring.put(_recs(k, 300, STAGE_RECORDS))
        assert r.drain_into(out[:STAGE_RECORDS - 1]) == 0 and r.pending_bytes() == entry_size(k)
        assert r.drain_into(out) == STAGE_RECORDS
    finally:
        ring.close()


def test_small_chunks_of_stages_flushed_early_are_drained_in_order(tmp_path):
    """A stage flushed before it is full goes to the kind's ring of small
    chunks (SMALL_RECORDS slots each, the last one maybe short): one idle
    CPU's single records and a longer early flush split in chunks."""
    k = kind("sched_wakeup")
    ring = _FileRing(tmp_path, k, small=True)
    try:
        r, want = ring.r, []
        assert r.per_entry == SMALL_RECORDS and r.entry == 16 + SMALL_RECORDS * k.record_size
        for i in range(40):                                  # one record per flush (idle after each)
            ring.put(_recs(k, 10 * i, 1))
            want.append(10 * i)
        for first in range(0, 7, SMALL_RECORDS):             # 7 records flushed at once
            ring.put(_recs(k, 1000 + first, min(SMALL_RECORDS, 7 - first)))
        want += list(range(1000, 1007))
        out = np.zeros(100, dtype=record_dtype(k))
        n = r.drain_into(out)
        assert n == len(want) and list(out["ts_ns"][:n]) == want
        assert r.pending_bytes() == 0 and r.records == n
        assert r.ring_bytes == (40 + -(-7 // SMALL_RECORDS)) * entry_size(k, small=True)
    finally:
        ring.close()


@pytest.mark.parametrize("first_full", [0, 1, 2])
def test_discarded_and_short_chunks_anywhere_leave_the_other_records_in_order(tmp_path, first_full):
    """Only records after the first short or discarded chunk move; every
    valid record is kept once, in ring order."""
    k = kind("sched_switch")
    ring = _FileRing(tmp_path, k)
    try:
        r, want = ring.r, []
        for i in range(first_full):                                   # full chunks before anything short
            ring.put(_recs(k, 1000 * i, STAGE_RECORDS))
            want += list(range(1000 * i, 1000 * i + STAGE_RECORDS))
        ring.put(_recs(k, 5000, 3))                                   # short
        want += [5000, 5001, 5002]
        ring.put(_recs(k, 6000, STAGE_RECORDS), length=slot_payload_size(k) | RINGBUF_DISCARD_BIT)
        ring.put(_recs(k, 7000, STAGE_RECORDS))
        want += list(range(7000, 7000 + STAGE_RECORDS))
        ring.put(_recs(k, 8000, 1))                                   # short, last
        want += [8000]
        out = np.zeros(10 * STAGE_RECORDS, dtype=record_dtype(k))
        n = r.drain_into(out)
        assert n == len(want) and list(out["ts_ns"][:n]) == want
        assert r.discarded == 1 and r.pending_bytes() == 0
    finally:
        ring.close()


@pytest.mark.parametrize("bad", [{"length": 72}, {"kind_id": 5}, {"valid": STAGE_RECORDS + 1}])
def test_a_chunk_that_disagrees_with_the_schema_is_one_clear_error(tmp_path, bad):
    ring = _FileRing(tmp_path, kind("sched_wakeup"))
    try:
        ring.put(_recs(ring.k, 0, 2), **bad)
        with pytest.raises(LatencyScopeError, match="BPF program and schema disagree"):
            ring.r.drain_into(np.zeros(64, dtype=record_dtype(ring.k)))
    finally:
        ring.close()


@pytest.mark.parametrize("entries,short_every", [(40, 7), (60, 2), (50, 1)])
def test_many_short_chunks_and_discards_are_packed_in_ring_order(tmp_path, entries, short_every):
    """A quiet CPU flushes most chunks before they are full: few or many
    short chunks (stepped over one by one, or packed by index), discarded
    entries among them, every valid record comes out once, in order."""
    k = kind("sched_switch")
    ring = _FileRing(tmp_path, k, size=1 << 20)
    rng = np.random.default_rng(entries + short_every)
    try:
        want = []
        for i in range(entries):
            first = 1000 * i
            if i % 11 == 5:
                ring.put(_recs(k, first, STAGE_RECORDS), length=slot_payload_size(k) | RINGBUF_DISCARD_BIT)
                continue
            n = int(rng.integers(0, STAGE_RECORDS)) if i % short_every == 0 else STAGE_RECORDS
            ring.put(_recs(k, first, n))
            want += list(range(first, first + n))
        out = np.zeros(entries * STAGE_RECORDS, dtype=record_dtype(k))
        got = ring.r.drain_into(out)
        assert got == len(want) and out["ts_ns"][:got].tolist() == want
        assert ring.r.discarded == sum(1 for i in range(entries) if i % 11 == 5)
        assert ring.r.pending_bytes() == 0
    finally:
        ring.close()


def test_a_large_merge_keeps_every_record_whole(tmp_path):
    """Three CPUs' runs, far more records than one merge block: every
    column of a record still belongs to that record after the merge."""
    k = kind("sched_switch")
    n = 3 * 70_000
    w = CaptureWriter(str(tmp_path / "c.lscope"), [k], slots={k.name: (slot_dtype(k), n)})
    rng = np.random.default_rng(3)
    free = w.free_slots(k)
    at = 0
    for cpu in range(3):
        s = _slots(k, n // 3, 0)
        s["ts_ns"] = np.sort(rng.choice(10**9, n // 3, replace=False)) * 4 + cpu  # distinct across CPUs
        s["cpu"] = cpu
        s["prev_pid"] = (s["ts_ns"] % 100_003).astype(np.int32)
        s["next_pid"] = (s["ts_ns"] % 7_919).astype(np.int32)
        s["prev_state"] = (s["ts_ns"] % 3).astype(np.int64)
        free[at:at + len(s)] = s
        at += len(s)
    w.commit(k, n)
    w.hold_from_ns = int(np.median(free["ts_ns"][:n]))  # about half waits for the next flush
    w.flush()
    assert 0 < w.pending_rows < n
    w.hold_from_ns = None
    w.flush()
    w.write_manifest({"format_version": 1})
    with tarfile.open(w.finish()) as tar:
        t = pa.ipc.open_stream(tar.extractfile("sched_switch.arrows").read()).read_all()
    ts = t.column("ts_ns").to_numpy()
    assert len(ts) == n and (np.diff(ts.astype(np.int64)) > 0).all()
    assert (t.column("cpu").to_numpy() == ts % 4).all()
    assert (t.column("prev_pid").to_numpy() == ts % 100_003).all()
    assert (t.column("next_pid").to_numpy() == ts % 7_919).all()
    assert (t.column("prev_state").to_numpy() == ts % 3).all()


def test_both_codecs_write_the_same_table_zstd_smaller_and_an_unknown_one_is_refused(tmp_path):
    k = kind("sched_switch")
    rng = np.random.default_rng(5)
    s = _slots(k, 50_000, 0)
    s["ts_ns"] = np.cumsum(rng.integers(1, 5000, len(s)))
    s["prev_pid"] = rng.integers(1, 300, len(s))
    tables, sizes = {}, {}
    for codec in ("lz4", "zstd"):
        w = CaptureWriter(str(tmp_path / f"{codec}.lscope"), [k], slots={k.name: (slot_dtype(k), len(s))},
                          compression=codec)
        w.free_slots(k)[:] = s
        w.commit(k, len(s))
        w.flush()
        w.write_manifest({"format_version": 1})
        path = w.finish()
        with tarfile.open(path) as tar:
            data = tar.extractfile("sched_switch.arrows").read()
        tables[codec] = pa.ipc.open_stream(data).read_all()
        sizes[codec] = len(data)
    assert tables["lz4"].equals(tables["zstd"]) and tables["lz4"].num_rows == len(s)
    assert sizes["zstd"] < sizes["lz4"] < s.nbytes
    with pytest.raises(LatencyScopeError, match="unknown compression 'gzip'"):
        CaptureWriter(str(tmp_path / "g.lscope"), [k], compression="gzip")
    assert not (tmp_path / "g.lscope.partial").exists()
