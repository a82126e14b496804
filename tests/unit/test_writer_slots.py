"""The drain copies ring slots into the writer's preallocated buffers; a
flush turns them into one Arrow batch and the buffer is reused."""
import mmap
import tarfile

import numpy as np
import pyarrow as pa

from latencyscope.record.ringbuf import RingReader
from latencyscope.record.writer import CaptureWriter
from latencyscope.schemas import kind
from latencyscope.schemas.codegen import RINGBUF_BUSY_BIT, slot_dtype, slot_payload_size


def _slots(k, n, first_ts):
    s = np.zeros(n, dtype=slot_dtype(k))
    s["_len"] = slot_payload_size(k)
    s["ts_ns"] = np.arange(first_ts, first_ts + n)
    s["next_comm"] = b"worker"
    s["prev_comm"] = b"swapper/1"
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
    assert set(t.column("next_comm").to_pylist()) == {"worker"}
    assert set(t.column("prev_comm").to_pylist()) == {"swapper/1"}



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


def test_drain_into_stops_at_a_busy_record_and_at_the_end_of_the_buffer(tmp_path):
    k = kind("sched_switch")
    dt = slot_dtype(k)
    size = 64 * 1024
    page = mmap.PAGESIZE
    f = tmp_path / "ring"
    f.write_bytes(b"\0" * (2 * page + size))
    fd = open(f, "r+b")
    try:
        # RingReader maps the data area twice; a plain file has it once, which
        # is enough for spans that do not wrap.
        r = RingReader.__new__(RingReader)
        r.page, r.size, r.mask, r.dtype, r.slot = page, size, size - 1, dt, dt.itemsize
        r.record_size, r.discarded = slot_payload_size(k), 0
        m = mmap.mmap(fd.fileno(), 2 * page + size)
        r._cons = np.frombuffer(m, dtype=np.uint64, count=1)
        r._prod = np.frombuffer(m, dtype=np.uint64, count=1, offset=page)
        r._data = np.frombuffer(m, dtype=np.uint8, offset=2 * page)
        ring = r._data[:10 * dt.itemsize].view(dt)
        ring[:10] = _slots(k, 10, 1000)
        ring["_len"][7] |= RINGBUF_BUSY_BIT
        r._prod[0] = 10 * dt.itemsize
        out = np.zeros(5, dtype=dt)
        assert r.drain_into(out) == 5                       # buffer full
        assert list(out["ts_ns"]) == [1000, 1001, 1002, 1003, 1004]
        assert r.drain_into(out) == 2                       # stops before the busy record
        assert list(out["ts_ns"][:2]) == [1005, 1006]
        assert int(r._cons[0]) == 7 * dt.itemsize
        del ring, r
    finally:
        fd.close()
