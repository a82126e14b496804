"""Spooling (record/writer.py): while the window is open a flush appends raw
records to KIND.spool; they are compressed into KIND.arrows when it closes,
or as the recorder goes once the spools pass their limit.  Checked against
hand-built records whose every timestamp is known."""
import os
import tarfile

import numpy as np
import pyarrow as pa
import pytest

from latencyscope.analyze.capture import open_capture
from latencyscope.record.writer import CaptureWriteError, CaptureWriter
from latencyscope.schemas import kind
from latencyscope.schemas.codegen import record_dtype, slot_dtype

K = kind("sched_switch")
ITEM = record_dtype(K).itemsize


def _put(w, first, n, cpu=1):
    free = w.free_slots(K)
    s = np.zeros(n, dtype=slot_dtype(K))
    s["ts_ns"] = np.arange(first, first + n)
    s["cpu"] = cpu
    s["next_pid"] = np.arange(n) % 7 + 100
    s["next_comm"] = b"worker"
    s["prev_comm"] = b"swapper/1"
    free[:n] = s
    w.commit(K, n)


def _writer(tmp_path, spool_bytes, cap=100_000):
    return CaptureWriter(str(tmp_path / "c.lscope"), [K], slots={K.name: (slot_dtype(K), cap)},
                         spool_bytes=spool_bytes)


def _manifest(w, complete):
    w.write_manifest({"format": "latencyscope-capture", "format_version": 1, "complete": complete,
                      "modules": ["isolation"], "tables": {K.name: {}},
                      "recorder": {"spool": {"record_bytes": {K.name: ITEM}}}})


def _table_rows(path):
    with tarfile.open(path) as tar:
        return pa.ipc.open_stream(tar.extractfile("sched_switch.arrows").read()).read_all()


def test_flushes_only_spool_and_the_end_encodes_everything_in_order(tmp_path):
    w = _writer(tmp_path, spool_bytes=1 << 30)
    spool = w.dir / "sched_switch.spool"
    for rnd in range(3):
        _put(w, rnd * 1000, 1000)
        w.flush()
        assert spool.stat().st_size == (rnd + 1) * 1000 * ITEM   # raw records, as they are
        assert w.rows[K.name] == 0 and w.spooled_rows == (rnd + 1) * 1000
        assert w.events[K.name] == (rnd + 1) * 1000
    arrows_before = (w.dir / "sched_switch.arrows").stat().st_size
    w.encode_spool()
    assert w.spooled_rows == 0 and w.rows[K.name] == 3000
    assert spool.stat().st_size == 0                               # emptied once encoded
    assert (w.dir / "sched_switch.arrows").stat().st_size > arrows_before
    _manifest(w, True)
    t = _table_rows(w.finish())
    assert t.column("ts_ns").to_pylist() == list(range(3000))
    assert t.column("next_pid").to_pylist() == [i % 7 + 100 for i in range(1000)] * 3
    assert set(t.column("next_comm").to_pylist()) == {"worker"}


def test_finish_refuses_to_pack_a_capture_whose_spool_is_not_encoded(tmp_path):
    w = _writer(tmp_path, spool_bytes=1 << 30)
    _put(w, 0, 10)
    w.flush()
    with pytest.raises(CaptureWriteError, match="still spooled"):
        w.finish()


def test_past_the_limit_flushes_encode_until_the_spool_is_empty(tmp_path):
    """Limit 5,000 records: the flush that takes the spool over it starts
    encoding, each flush encodes at least twice what it appends, and the
    spool empties within a few flushes; nothing is lost or reordered."""
    w = _writer(tmp_path, spool_bytes=5000 * ITEM)
    spool = w.dir / "sched_switch.spool"
    sizes, encoded = [], []
    for rnd in range(12):
        _put(w, rnd * 2000, 2000)
        w.flush()
        sizes.append(spool.stat().st_size // ITEM)
        encoded.append(w.rows[K.name])
    assert sizes[:2] == [2000, 4000]          # under the limit: spooled only
    assert encoded[:2] == [0, 0]
    assert encoded[2] == 6000 and sizes[2] == 0   # over it: encoded to empty (one batch covers it)
    assert w.events[K.name] == 24000
    w.encode_spool()
    _manifest(w, True)
    t = _table_rows(w.finish())
    assert t.column("ts_ns").to_pylist() == list(range(24000))


def test_a_large_backlog_is_encoded_in_bounded_steps(tmp_path, monkeypatch):
    """Over the limit a flush encodes twice what it appended, at least one
    batch (ENCODE_ROWS), not the whole backlog at once: the drain is not
    stalled.  Encoding goes on flush after flush until the spool is empty."""
    from latencyscope.record import writer as wmod

    monkeypatch.setattr(wmod, "ENCODE_ROWS", 1000)
    w = _writer(tmp_path, spool_bytes=1 << 30)
    _put(w, 0, 3000)
    w.flush()
    assert w.spooled_rows == 3000
    w.spool_bytes = 10 * ITEM
    _put(w, 3000, 10)
    w.flush()                                 # appended 10: encodes one batch
    assert (w.rows[K.name], w.spooled_rows) == (1000, 2010)
    w.flush()                                 # nothing appended: still encoding
    assert (w.rows[K.name], w.spooled_rows) == (2000, 1010)
    _put(w, 3010, 600)
    w.flush()                                 # appended 600: up to 1,200 encoded
    assert (w.rows[K.name], w.spooled_rows) == (3200, 410)
    w.flush()
    assert (w.rows[K.name], w.spooled_rows) == (3610, 0)
    assert (w.dir / "sched_switch.spool").stat().st_size == 0
    w.encode_spool()
    _manifest(w, True)
    assert _table_rows(w.finish()).column("ts_ns").to_pylist() == list(range(3610))


def test_a_recorder_killed_while_spooling_leaves_a_readable_partial(tmp_path):
    """kill -9 after some flushes: the directory holds encoded batches and a
    spool; the analyzer reads both, in order, and says it did."""
    w = _writer(tmp_path, spool_bytes=3000 * ITEM)
    _manifest(w, False)
    for rnd in range(3):                            # 3,000 encoded (limit passed at the 4th flush)...
        _put(w, rnd * 1000, 1000)
        w.flush()
    _put(w, 3000, 1000)
    w.flush()
    _put(w, 4000, 500)                               # ...and this one only spooled
    w.flush()
    assert w.rows[K.name] == 4000 and w.spooled_rows == 500
    # A half-written record at the spool's end (killed mid-write).
    with open(w.dir / "sched_switch.spool", "ab") as f:
        f.write(b"\1" * (ITEM // 2))
    cap = open_capture(str(w.dir))
    ts = cap.table("sched_switch")["ts_ns"].to_list()
    assert ts == list(range(4500))
    assert any("500 events read from the recorder's spool" in x for x in cap.warnings), cap.warnings
    assert any("partial record" in x for x in cap.warnings), cap.warnings
    assert cap.incomplete


def test_a_spool_of_another_record_layout_is_not_misread(tmp_path):
    w = _writer(tmp_path, spool_bytes=1 << 30)
    w.write_manifest({"format": "latencyscope-capture", "format_version": 1, "complete": False,
                      "modules": ["isolation"], "recorder": {"spool": {"record_bytes": {K.name: ITEM + 8}}}})
    _put(w, 0, 100)
    w.flush()
    cap = open_capture(str(w.dir))
    assert cap.table("sched_switch").height == 0
    assert any("its events are ignored" in x for x in cap.warnings), cap.warnings


def _failing_pwrite(fd_of, errno_):
    real = os.pwrite
    calls = []

    def pwrite(fd, data, off):
        if fd == fd_of() and calls:
            raise OSError(errno_, os.strerror(errno_))
        calls.append(1)
        return real(fd, data[:len(data) // 2], off)   # a short write, then the failure
    return pwrite


def test_a_failed_flush_cuts_the_spool_back_to_where_it_began(tmp_path, monkeypatch):
    """All or nothing, like the tables: a write that fails midway (an I/O
    error) leaves the spool exactly as before the flush."""
    w = _writer(tmp_path, spool_bytes=1 << 30)
    _put(w, 0, 100)
    w.flush()
    _put(w, 100, 100)
    monkeypatch.setattr(os, "pwrite", _failing_pwrite(lambda: w._spools[K.name].fd, 5))
    with pytest.raises(CaptureWriteError, match="Input/output error"):
        w.flush()
    assert (w.dir / "sched_switch.spool").stat().st_size == 100 * ITEM
    assert w.events[K.name] == 100


def test_a_disk_too_small_for_the_spool_gives_it_up_and_keeps_every_record(tmp_path, monkeypatch):
    """The spool takes ~10x the space of the compressed table: when it hits
    a full disk, what it holds is compressed, it is removed, and recording
    goes on compressing as it goes -- nothing lost."""
    w = _writer(tmp_path, spool_bytes=1 << 30)
    _put(w, 0, 100)
    w.flush()
    _put(w, 100, 100)
    monkeypatch.setattr(os, "pwrite", _failing_pwrite(lambda: w._spools[K.name].fd if w._spools else -1, 28))
    w.flush()
    assert w.spool_gave_up and not (w.dir / "sched_switch.spool").exists()
    assert w.rows[K.name] == 200 and w.spooled_rows == 0
    _put(w, 200, 50)
    w.flush()
    w.encode_spool()
    _manifest(w, True)
    assert _table_rows(w.finish()).column("ts_ns").to_pylist() == list(range(250))
