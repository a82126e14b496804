"""The Perfetto trace of a hand-built capture, read back with Perfetto's own protos."""
from __future__ import annotations

import os
import resource
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from latencyscope.analyze.capture import Capture
from latencyscope.analyze.perfetto import write_trace

pb = pytest.importorskip("perfetto.protos.perfetto.trace.perfetto_trace_pb2")

BEGIN, END, INSTANT = 1, 2, 3
MONOTONIC = 3


def _switch(rows):
    cols = ["ts_ns", "cpu", "prev_pid", "prev_tgid", "prev_comm", "prev_state", "next_pid", "next_comm"]
    data = dict(zip(cols, map(list, zip(*rows))))
    return pa.table({
        "ts_ns": pa.array(data["ts_ns"], pa.uint64()),
        "prev_state": pa.array(data["prev_state"], pa.int64()),
        "cpu": pa.array(data["cpu"], pa.uint32()),
        "prev_pid": pa.array(data["prev_pid"], pa.int32()),
        "prev_tgid": pa.array(data["prev_tgid"], pa.uint32()),
        "prev_prio": pa.array([120] * len(rows), pa.int32()),
        "next_pid": pa.array(data["next_pid"], pa.int32()),
        "next_prio": pa.array([120] * len(rows), pa.int32()),
        "prev_comm": pa.array(data["prev_comm"], pa.string()),
        "next_comm": pa.array(data["next_comm"], pa.string()),
    })


def _capture(arrow, cpu_count=2, window=(1000, 10000), filters=None):
    manifest = {"format": "latencyscope-capture", "format_version": 1, "complete": True,
                "modules": ["isolation"], "host": {"cpu_count": cpu_count},
                "window": {"start_ns": window[0], "end_ns": window[1]},
                "clock": {"start": {"realtime_minus_monotonic_ns": 1_700_000_000_000_000_000}}}
    if filters is not None:
        manifest["filters"] = filters
    return Capture("synthetic", manifest, arrow)


@pytest.fixture
def capture():
    #         ts    cpu prev tgid  prev_comm    state  next  next_comm
    sw = _switch([
        (2000, 0, 0, 0, "swapper/0", 0, 100, "app"),
        (2500, 1, 0, 0, "swapper/1", 0, 200, "intruder"),
        (3000, 0, 100, 100, "app", 1, 0, "swapper/0"),           # app sleeps
        (3200, 1, 200, 200, "intruder", 0, 101, "worker"),       # intruder preempted (runnable)
        (4000, 0, 0, 0, "swapper/0", 0, 100, "app"),             # app back, woken at 3500
        (5000, 1, 101, 100, "worker", 0x100, 200, "intruder"),   # worker preempted (flag)
        (6000, 0, 100, 100, "app", 1, 0, "swapper/0"),
        (7000, 1, 200, 200, "intruder", 1, 101, "worker"),       # worker runs to the end
    ])
    wake = pa.table({
        "ts_ns": pa.array([3500, 3600], pa.uint64()), "cpu": pa.array([1, 1], pa.uint32()),
        "pid": pa.array([100, 100], pa.int32()), "target_cpu": pa.array([0, 0], pa.int32()),
        "prio": pa.array([120, 120], pa.int32()), "waker_pid": pa.array([101, 101], pa.uint32()),
        "waker_tgid": pa.array([100, 100], pa.uint32()), "comm": pa.array(["app", "app"]),
    })
    irq_entry = pa.table({"ts_ns": pa.array([2100, 2600, 9000], pa.uint64()),
                          "cpu": pa.array([0, 1, 0], pa.uint32()),
                          "irq": pa.array([24, 1, 24], pa.int32()),
                          "name": pa.array(["eth0-rx", "i8042", "eth0-rx"])})
    irq_exit = pa.table({"ts_ns": pa.array([2150, 2605], pa.uint64()), "cpu": pa.array([0, 1], pa.uint32()),
                         "irq": pa.array([24, 1], pa.int32()), "ret": pa.array([1, 1], pa.int32())})
    soft_entry = pa.table({"ts_ns": pa.array([2150], pa.uint64()), "cpu": pa.array([0], pa.uint32()),
                           "vec": pa.array([3], pa.uint32())})
    soft_exit = pa.table({"ts_ns": pa.array([2300], pa.uint64()), "cpu": pa.array([0], pa.uint32()),
                          "vec": pa.array([3], pa.uint32())})
    fault = pa.table({"ts_ns": pa.array([2200], pa.uint64()), "cpu": pa.array([0], pa.uint32()),
                      "pid": pa.array([100], pa.int32()), "tgid": pa.array([100], pa.uint32()),
                      "address": pa.array([0x7F00_0000_1000], pa.uint64()),
                      "error_code": pa.array([6], pa.uint64())})
    sleep = pa.table({"ts_ns": pa.array([2900], pa.uint64()), "cpu": pa.array([0], pa.uint32()),
                      "pid": pa.array([100], pa.int32())})
    return _capture({"sched_switch": sw, "sched_wakeup": wake, "irq_handler_entry": irq_entry,
                     "irq_handler_exit": irq_exit, "softirq_entry": soft_entry,
                     "softirq_exit": soft_exit, "page_fault_user": fault, "syscall_sleep": sleep})


class Parsed:
    """Slices, instants, tracks and flows of a trace, resolved like trace processor does."""

    def __init__(self, path):
        trace = pb.Trace.FromString(open(path, "rb").read())
        self.packets = list(trace.packet)
        self.names, self.tracks, self.clock = {}, {}, None
        events = []
        for i, p in enumerate(self.packets):
            if p.HasField("clock_snapshot"):
                self.clock = p.clock_snapshot
            if p.HasField("interned_data"):
                self.names.update({n.iid: n.name for n in p.interned_data.event_names})
                self.ann_names = {n.iid: n.name for n in p.interned_data.debug_annotation_names}
                self.defaults = p.trace_packet_defaults
                self.first_flags = p.sequence_flags
            if p.HasField("track_descriptor"):
                self.tracks[p.track_descriptor.uuid] = p.track_descriptor
            if p.HasField("track_event"):
                events.append((p.timestamp, i, p))
        events.sort(key=lambda e: (e[0], e[1]))  # trace processor: by ts, file order on ties
        self.slices, self.instants = [], []
        stacks = defaultdict(list)
        for ts, _, p in events:
            te = p.track_event
            assert te.track_uuid in self.tracks, "event on a track without descriptor"
            assert p.sequence_flags == 2
            if te.type == BEGIN:
                stacks[te.track_uuid].append((ts, te))
            elif te.type == END:
                t0, b = stacks[te.track_uuid].pop()
                self.slices.append(dict(track=self.track_name(te.track_uuid), name=self.names[b.name_iid],
                                        ts=t0, dur=ts - t0, flows=list(b.flow_ids),
                                        ann={self.ann_names[a.name_iid]: a for a in b.debug_annotations}))
            elif te.type == INSTANT:
                self.instants.append(dict(track=self.track_name(te.track_uuid), name=self.names[te.name_iid],
                                          ts=ts, ann={self.ann_names[a.name_iid]: a
                                                      for a in te.debug_annotations}))
        assert not any(stacks.values()), "unterminated slices"

    def track_name(self, uuid):
        td = self.tracks[uuid]
        if td.HasField("thread"):
            return f"thread {td.thread.tid}"
        return td.name

    def on(self, track, kind=None):
        return sorted((s["name"], s["ts"], s["dur"]) for s in self.slices if s["track"] == track)


def test_trace_shows_cpus_irqs_waits_faults_and_flows(capture, tmp_path):
    out = tmp_path / "t.pftrace"
    stats = write_trace(capture, out)
    t = Parsed(out)

    # CPUs group, 3 tracks per CPU, 2 processes, 3 threads
    assert len(t.tracks) == 1 + 2 * 3 + 2 + 3
    assert stats["thread_tracks"] == 3 and stats["process_tracks"] == 2
    thread = {td.thread.tid: td for td in t.tracks.values() if td.HasField("thread")}
    assert thread[101].thread.pid == 100 and thread[101].thread.thread_name == "worker"
    assert t.tracks[thread[101].parent_uuid].process.pid == 100

    # the running task per CPU; idle not drawn; the last one runs to the window end
    assert t.on("CPU 0") == [("app [100]", 2000, 1000), ("app [100]", 4000, 2000)]
    assert t.on("CPU 1") == [("intruder [200]", 2500, 700), ("intruder [200]", 5000, 2000),
                             ("worker [101]", 3200, 1800), ("worker [101]", 7000, 3000)]
    assert t.on("CPU 0 hardirq") == [("IRQ 24 eth0-rx", 2100, 50)]  # unpaired entry at 9000 dropped
    assert t.on("CPU 1 hardirq") == [("IRQ 1 i8042", 2600, 5)]
    assert t.on("CPU 0 softirq") == [("NET_RX", 2150, 150)]

    # runqueue waits: from the first wakeup (3500, not 3600), and after preemptions
    assert t.on("thread 100") == [("runnable (wakeup)", 3500, 500)]
    assert t.on("thread 200") == [("runnable (preempted)", 3200, 1800)]
    assert t.on("thread 101") == [("runnable (preempted)", 5000, 2000)]
    wait = next(s for s in t.slices if s["track"] == "thread 100")
    assert wait["ann"]["waker_tid"].uint_value == 101

    # the wakeup's flow arrives at the switch-in it caused, and only there
    switch_in = next(s for s in t.slices if s["track"] == "CPU 0" and s["ts"] == 4000)
    assert len(wait["flows"]) == 1 and wait["flows"][0] in switch_in["flows"]
    others = [s for s in t.slices if s is not switch_in and s is not wait]
    assert all(wait["flows"][0] not in s["flows"] for s in others)
    assert [s for s in t.slices if s["track"].startswith("thread") and s["flows"]] == [wait]

    # page fault and sleep as instants on the thread
    assert sorted((i["track"], i["name"], i["ts"]) for i in t.instants) == [
        ("thread 100", "page fault", 2200), ("thread 100", "sleep", 2900)]
    fault = next(i for i in t.instants if i["name"] == "page fault")
    assert fault["ann"]["address"].pointer_value == 0x7F00_0000_1000
    assert fault["ann"]["error_code"].uint_value == 6

    assert len(t.slices) == stats["cpu_slices"] + stats["hardirq_slices"] + stats["softirq_slices"] \
        + stats["runqueue_waits"] == 6 + 2 + 1 + 3
    assert stats["wakeup_flows"] == 1 and stats["page_faults"] == 1 and stats["sleeps"] == 1
    assert stats["track_events"] == 2 * len(t.slices) + len(t.instants)
    assert stats["packets"] == len(t.packets) and stats["bytes"] == out.stat().st_size


def test_time_is_monotonic_with_realtime_for_display(capture, tmp_path):
    out = tmp_path / "t.pftrace"
    write_trace(capture, out)
    t = Parsed(out)
    assert t.clock.primary_trace_clock == MONOTONIC
    clocks = {c.clock_id: c.timestamp for c in t.clock.clocks}
    assert clocks[MONOTONIC] == 1000 and clocks[1] == 1000 + 1_700_000_000_000_000_000
    assert t.defaults.timestamp_clock_id == MONOTONIC and t.first_flags == 1


def test_absent_tables_are_skipped(capture, tmp_path):
    only = _capture({"sched_switch": capture.arrow["sched_switch"]})
    out = tmp_path / "t.pftrace"
    stats = write_trace(only, out)
    t = Parsed(out)
    assert set(stats["skipped"]) == {"irq_handler", "softirq", "page_fault_user", "syscall_sleep"}
    assert len(t.tracks) == 1 + 2 + 2 + 2  # CPUs, CPU 0/1, waiting threads 101 and 200, processes 100 and 200
    assert stats["runqueue_waits"] == 2 and stats["wakeup_flows"] == 0 and not t.instants


def test_a_task_running_before_the_first_switch_gets_a_slice(tmp_path):
    cap = _capture({"sched_switch": _switch([(5000, 0, 42, 42, "spin", 0, 0, "swapper/0")])},
                   cpu_count=1)
    out = tmp_path / "t.pftrace"
    write_trace(cap, out)
    assert Parsed(out).on("CPU 0") == [("spin [42]", 1000, 4000)]


def test_max_events_keeps_the_start_and_closes_open_slices(capture, tmp_path):
    out = tmp_path / "t.pftrace"
    stats = write_trace(capture, out, max_events=4)
    t = Parsed(out)
    assert stats["truncated"] and stats["end_ns"] == 3200
    assert t.on("CPU 1") == [("intruder [200]", 2500, 700), ("worker [101]", 3200, 0)]
    assert t.on("thread 100") == [] and stats["runqueue_waits"] == 0  # the wakeup is after the cut


def test_chunk_boundaries_do_not_change_the_trace(capture, tmp_path, monkeypatch):
    import latencyscope.analyze.perfetto as perfetto
    whole = tmp_path / "whole.pftrace"
    write_trace(capture, whole)
    monkeypatch.setattr(perfetto, "CHUNK_ROWS", 3)
    monkeypatch.setattr(perfetto, "WAIT_BUCKET_ROWS", 4)
    chunked = tmp_path / "chunked.pftrace"
    write_trace(capture, chunked)
    a, b = Parsed(whole), Parsed(chunked)
    key = lambda s: (s["track"], s["ts"], s["name"], s["dur"])  # noqa: E731
    assert sorted(map(key, a.slices)) == sorted(map(key, b.slices))
    assert len(a.tracks) == len(b.tracks)


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise KeyError(field)


def test_ten_million_switches_write_in_bounded_memory(tmp_path):
    """10 M sched_switch events; the writer's peak RSS growth stays far below the input size."""
    n, ncpu, nthreads = 10_000_000, 4, 1000
    rng = np.random.default_rng(7)
    cpu = (np.arange(n) % ncpu).astype(np.uint32)
    ts = (np.arange(n, dtype=np.uint64) * 250 + 1_000_000)
    pid_seq = rng.integers(1, nthreads + 1, n // ncpu + 1, dtype=np.int32)
    # per CPU a chain: next of one switch is prev of the following one on that CPU
    next_pid = np.empty(n, np.int32)
    for c in range(ncpu):
        idx = np.arange(c, n, ncpu)
        next_pid[idx] = pid_seq[: len(idx)] + c * nthreads
        next_pid[idx[::50]] = 0  # some idle
    prev_pid = np.roll(next_pid, ncpu)
    prev_pid[:ncpu] = 0
    comms = pa.array([f"task{i}" for i in range(ncpu * nthreads + 1)])
    comm_of = lambda p: pa.DictionaryArray.from_arrays(pa.array(p), comms).cast(pa.string())  # noqa: E731
    sw = pa.table({
        "ts_ns": ts, "prev_state": (np.arange(n) % 3 == 0).astype(np.int64), "cpu": cpu,
        "prev_pid": prev_pid, "prev_tgid": prev_pid.astype(np.uint32), "prev_prio": np.full(n, 120, np.int32),
        "next_pid": next_pid, "next_prio": np.full(n, 120, np.int32),
        "prev_comm": comm_of(prev_pid), "next_comm": comm_of(next_pid),
    })
    del cpu, ts, pid_seq, next_pid, prev_pid
    input_kib = sw.nbytes // 1024
    cap = _capture({"sched_switch": sw}, cpu_count=ncpu, window=(0, 1 << 40))
    cap.table("sched_switch")  # the frame view is the input, not the writer's growth
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS mark (VmHWM)
        base, peak_of = _rss_kib("VmRSS:"), lambda: _rss_kib("VmHWM:")
    except OSError:  # pragma: no cover - no clear_refs: lifetime peak is an upper bound
        base, peak_of = _rss_kib("VmRSS:"), lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = tmp_path / "big.pftrace"
    stats = write_trace(cap, out)
    growth = peak_of() - base
    assert stats["cpu_slices"] > 0.9 * n and stats["runqueue_waits"] > 0
    assert out.stat().st_size == stats["bytes"]
    # a writer that materialized per-event rows would need several times the input
    assert growth < max(400 * 1024, input_kib // 2), (growth, input_kib)


def test_a_switch_the_kernel_did_not_report_is_marked_on_its_cpu(tmp_path, monkeypatch):
    """CPU 0: agent [74] switched in at 2000 and the next switch seen (3000)
    starts from app [100]: one "unreported switch" instant at 3000, whole or
    cut in chunks anywhere; none under a --pid filter (the gap may be the
    filter's)."""
    import latencyscope.analyze.perfetto as perfetto
    rows = [(1000, 0, 0, 0, "swapper/0", 0, 100, "app"),
            (1500, 0, 100, 100, "app", 1, 0, "swapper/0"),
            (2000, 0, 0, 0, "swapper/0", 0, 74, "agent"),
            (3000, 0, 100, 100, "app", 1, 0, "swapper/0"),
            (3500, 0, 0, 0, "swapper/0", 0, 100, "app")]
    for chunk in (1 << 17, 1, 2, 3):
        monkeypatch.setattr(perfetto, "CHUNK_ROWS", chunk)
        out = tmp_path / f"gap{chunk}.pftrace"
        stats = write_trace(_capture({"sched_switch": _switch(rows)}, cpu_count=1), out)
        t = Parsed(out)
        assert stats["unreported_switches"] == 1
        assert [(i["track"], i["name"], i["ts"]) for i in t.instants] == [("CPU 0", "unreported switch", 3000)]
        assert ("agent [74]", 2000, 1000) in t.on("CPU 0")
    out = tmp_path / "pid-filter.pftrace"
    cap = _capture({"sched_switch": _switch(rows)}, cpu_count=1, filters={"cpus": None, "pids": [100]})
    assert write_trace(cap, out)["unreported_switches"] == 0 and Parsed(out).instants == []
