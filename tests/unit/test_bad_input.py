"""Files colleagues send: every bad capture is one clear line (exit 3) or a
warning in the report -- never a traceback, never a wrong figure presented
as right."""
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from latencyscope import FORMAT_VERSION
from latencyscope.analyze.capture import open_capture
from latencyscope.errors import LatencyScopeError
from synth import MS, US, capture, switch, wakeup, write

BIN = Path(sys.executable).parent


def analyze(path, *args):
    p = subprocess.run([str(BIN / "latencyscope-analyze"), "report", str(path), "--json", "-m", "isolation",
                        *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def one_line_error(path, *args) -> str:
    rc, out, err = analyze(path, *args)
    assert rc == 3, (rc, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    return lines[0]


def report(path, *args) -> dict:
    rc, out, err = analyze(path, *args)
    assert rc in (0, 1, 2), err
    assert "Traceback" not in err
    return json.loads(out)


def busy_cpu1():
    """A target (100) preempted by an intruder (200) and woken, on CPU 1."""
    return {
        "sched_switch": [switch(0, 1, 0, 100), switch(1 * MS, 1, 100, 200, prev_state=0x100),
                         switch(3 * MS, 1, 200, 100), switch(5 * MS, 1, 100, 0),
                         switch(6 * MS, 1, 0, 100)],
        "sched_wakeup": [wakeup(5 * MS + 500 * US, 100, 1)],
    }


def edit_manifest(d: str, **changes) -> None:
    path = os.path.join(d, "manifest.json")
    m = json.load(open(path))
    for k, v in changes.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    json.dump(m, open(path, "w"))


def pack(d: str, out: Path, names=None) -> Path:
    """A tar like the recorder's, from a directory (optionally only NAMES)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for fn in sorted(os.listdir(d)):
            if names is None or fn in names:
                tar.add(os.path.join(d, fn), arcname=fn)
    return out


# --- refused: one line, exit 3 ----------------------------------------------

def test_zero_length_file_is_one_line(tmp_path):
    p = tmp_path / "empty.lscope"
    p.write_bytes(b"")
    assert "empty file" in one_line_error(p)


def test_png_is_not_a_capture(tmp_path):
    p = tmp_path / "shot.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + os.urandom(2000))
    assert "not a LatencyScope capture" in one_line_error(p)


def test_perf_data_is_not_a_capture(tmp_path):
    p = tmp_path / "perf.data"
    # perf.data header: magic, header size, attr size, sections...
    p.write_bytes(b"PERFILE2" + (104).to_bytes(8, "little") + (136).to_bytes(8, "little") + os.urandom(4096))
    assert "not a LatencyScope capture" in one_line_error(p)


def test_parquet_file_is_not_a_capture(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "events.parquet"
    pq.write_table(pa.table({"ts_ns": [1, 2, 3], "cpu": [0, 1, 0]}), p)
    assert "not a LatencyScope capture" in one_line_error(p)


def test_a_tar_of_something_else_is_not_a_capture(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hello")
    p = pack(str(tmp_path / "x"), tmp_path / "other.lscope")
    assert "no manifest.json" in one_line_error(p)


def test_missing_file_is_one_line(tmp_path):
    assert "not found" in one_line_error(tmp_path / "nope.lscope")


def test_capture_truncated_at_every_point_is_refused_or_partial(tmp_path):
    path = write(str(tmp_path / "a.lscope"), busy_cpu1())
    full = Path(path).read_bytes()
    with tarfile.open(path) as t:
        data_end = max(m.offset_data + m.size for m in t.getmembers())
    # Every cut: through the tar headers, the manifest, the tables, the padding.
    for cut in sorted(set(list(range(0, len(full), max(1, len(full) // 80))) + [511, 512, 513, data_end - 1])):
        q = tmp_path / f"cut{cut}.lscope"
        q.write_bytes(full[:cut])
        try:
            cap = open_capture(str(q))
        except LatencyScopeError as e:
            assert "\n" not in e.message
            continue
        # Whatever opened is marked and holds no invented events.
        assert cap.table("sched_switch") is None or cap.table("sched_switch").height <= 5
        if cut < data_end:
            assert cap.incomplete or cap.warnings, cut


def test_truncated_capture_through_the_cli(tmp_path):
    full = Path(write(str(tmp_path / "a.lscope"), busy_cpu1())).read_bytes()
    q = tmp_path / "cut.lscope"
    q.write_bytes(full[:700])
    one_line_error(q)


def test_future_format_version_is_refused_with_upgrade_hint(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    edit_manifest(d, format_version=FORMAT_VERSION + 1)
    assert "upgrade latencyscope" in one_line_error(pack(d, tmp_path / "future.lscope"))


@pytest.mark.parametrize("version", [0, -1, "1", True, None, 1.5])
def test_nonsense_format_version_is_refused(tmp_path, version):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    edit_manifest(d, format_version=version)
    assert "not a LatencyScope capture" in one_line_error(d)


def test_manifest_missing_from_archive(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    p = pack(d, tmp_path / "nomanifest.lscope", names=["sched_switch.arrows", "sched_wakeup.arrows"])
    assert "no manifest.json" in one_line_error(p)


def test_manifest_missing_from_directory(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    os.remove(os.path.join(d, "manifest.json"))
    assert "without manifest.json" in one_line_error(d)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '"just a string"', "\xff\xfe garbage"])
def test_damaged_manifest_is_one_line(tmp_path, text):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    Path(d, "manifest.json").write_bytes(text.encode("latin-1"))
    one_line_error(d)


def test_table_with_a_foreign_schema_is_one_line(tmp_path):
    import pyarrow as pa

    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    with pa.OSFile(os.path.join(d, "sched_switch.arrows"), "wb") as f, \
            pa.ipc.new_stream(f, pa.schema([("ts_ns", pa.uint64()), ("x", pa.string())])) as w:
        w.write_table(pa.table({"ts_ns": pa.array([1], pa.uint64()), "x": ["y"]}))
    assert "schema" in one_line_error(d)


def test_unreadable_capture_is_one_line(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    p = Path(write(str(tmp_path / "a.lscope"), busy_cpu1()))
    p.chmod(0)
    assert "permission denied" in one_line_error(p)


# --- repaired and said: a warning, the right figures ---------------------------

def test_table_of_garbage_bytes_is_a_warning_not_a_crash(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    Path(d, "sched_wakeup.arrows").write_bytes(os.urandom(3000))
    r = report(d)
    assert any("sched_wakeup" in w and "unreadable" in w for w in r["warnings"])
    assert r["capture"]["complete"] is False


def test_corrupted_batch_body_stops_the_table_there(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    f = Path(d, "sched_switch.arrows")
    data = bytearray(f.read_bytes())
    for i in range(len(data) - 120, len(data) - 20):  # inside the (compressed) body of the last batch
        data[i] ^= 0x5A
    f.write_bytes(bytes(data))
    cap = open_capture(d)
    assert cap.incomplete
    assert cap.table("sched_switch").height in (0, 5)


def test_lying_event_counts_are_warned_in_the_report(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    edit_manifest(d, complete=True, events={"sched_switch": 999, "sched_wakeup": 1})
    r = report(d)
    assert any("manifest says 999 sched_switch events but the table holds 5" in w for w in r["warnings"])
    assert r["capture"]["events_by_table"]["sched_switch"] == 5  # the table, not the claim


def test_manifest_fields_of_the_wrong_type_are_ignored_and_said(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    edit_manifest(d, complete=True, host={"cpu_count": "lots", "hostname": "h"},
                  window={"start_ns": "yesterday", "end_ns": -5}, lost={"sched_switch": "many"},
                  tasks="none", clock=[1], filters={"cpus": "1", "pids": [100]})
    r = report(d, "--cpus", "1")
    w = " | ".join(r["warnings"])
    for field in ("host.cpu_count", "window.start_ns", "window.end_ns", "lost", "tasks", "clock", "filters.cpus"):
        assert field in w, field
    assert r["capture"]["duration_s"] == pytest.approx(0.006)  # the events' span
    assert r["isolation"]["intrusions"] == 1


def test_window_that_ends_before_it_starts_uses_the_events(tmp_path):
    cap = capture(busy_cpu1(), window=(10 * MS, 1 * MS))
    assert any("ends before it starts" in w for w in cap.warnings)
    assert cap.window_ns == (0, 6 * MS)


def test_out_of_order_timestamps_are_sorted_and_flagged(tmp_path):
    ordered = capture(busy_cpu1())
    rows = busy_cpu1()
    rows["sched_switch"] = rows["sched_switch"][::-1]  # written backwards
    shuffled = capture(rows)
    assert shuffled.table("sched_switch")["ts_ns"].is_sorted()
    assert any("out of time order" in w and "sorted" in w for w in shuffled.warnings)
    from latencyscope.analyze import isolation, policy, report as rep
    a = isolation.analyze(ordered, rep.resolve_context(ordered, policy.load(None), cpus=[1], pids=[100]))
    b = isolation.analyze(shuffled, rep.resolve_context(shuffled, policy.load(None), cpus=[1], pids=[100]))
    assert a.data == b.data


def test_small_cross_cpu_disorder_is_sorted_silently():
    # One ring holds every CPU's records in reservation order: µs of disorder is normal.
    sw = [switch(1000, 0, 0, 10), switch(900, 1, 0, 11), switch(2000, 0, 10, 0)]
    cap = capture({"sched_switch": sw})
    assert cap.table("sched_switch")["ts_ns"].to_list() == [900, 1000, 2000]
    assert not any("order" in w for w in cap.warnings)


def test_duplicate_events_are_dropped_and_warned():
    rows = busy_cpu1()
    dup = {"sched_switch": rows["sched_switch"] + rows["sched_switch"][1:3],
           "sched_wakeup": rows["sched_wakeup"] * 3}
    cap = capture(dup)
    assert cap.table("sched_switch").height == 5 and cap.table("sched_wakeup").height == 1
    assert any("sched_switch: 2 duplicate events" in w for w in cap.warnings)
    assert any("sched_wakeup: 2 duplicate events" in w for w in cap.warnings)
    clean = capture(busy_cpu1())
    from latencyscope.analyze import isolation, policy, report as rep
    a = isolation.analyze(clean, rep.resolve_context(clean, policy.load(None), cpus=[1], pids=[100]))
    b = isolation.analyze(cap, rep.resolve_context(cap, policy.load(None), cpus=[1], pids=[100]))
    assert a.data == b.data  # counted once, not twice


def test_same_time_different_events_are_not_duplicates():
    sw = [switch(1000, 0, 0, 10), switch(1000, 1, 0, 11)]
    cap = capture({"sched_switch": sw})
    assert cap.table("sched_switch").height == 2 and not cap.warnings


def test_impossible_timestamps_are_dropped_and_warned():
    rows = busy_cpu1()
    rows["sched_switch"].append(switch(2**64 - 5, 1, 100, 300))
    cap = capture(rows)
    assert cap.table("sched_switch").height == 5
    assert any("impossible values (timestamps beyond 2^63 ns)" in w for w in cap.warnings)


def test_impossible_thread_ids_and_cpus_are_dropped_and_warned():
    rows = busy_cpu1()
    rows["sched_switch"].append(switch(7 * MS, 1, 100, 2**31 - 1))
    rows["sched_wakeup"].append(wakeup(8 * MS, 100, 1, cpu=2**32 - 1))
    cap = capture(rows)
    assert cap.table("sched_switch").height == 5 and cap.table("sched_wakeup").height == 1
    assert any("next_pid > 4194304" in w for w in cap.warnings)
    assert any("cpu > 65536" in w for w in cap.warnings)


def test_events_from_cpus_beyond_the_manifest_are_warned(tmp_path):
    rows = busy_cpu1()
    rows["sched_switch"].append(switch(7 * MS, 7, 0, 400))
    p = write(str(tmp_path / "c.lscope"), rows, cpus=2)
    r = report(p)
    assert any("from CPUs up to 7, beyond the manifest's 2 CPUs" in w for w in r["warnings"])


def test_monitoring_a_cpu_the_host_did_not_have_is_one_line(tmp_path):
    p = write(str(tmp_path / "c.lscope"), busy_cpu1(), cpus=2)
    assert "beyond the 2 CPUs" in one_line_error(p, "--cpus", "5")


def test_tables_of_an_unlisted_module_are_said(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    edit_manifest(d, modules=[])
    cap = open_capture(d)
    assert any("does not list it" in w for w in cap.warnings)


def test_killed_recording_points_to_the_partial_directory(tmp_path):
    write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    line = one_line_error(tmp_path / "a.lscope")
    assert "a.lscope.partial" in line and "analyze that" in line


def test_partial_directory_report_is_marked_incomplete_and_warns(tmp_path):
    d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
    rc, out, err = analyze(d, "--cpus", "1", "--pid", "100")
    r = json.loads(out)
    assert r["capture"]["complete"] is False
    assert any(c["name"] == "complete" and c["status"] == "WARN" for c in r["capture_checks"])
    assert rc >= 1


# --- privileges ----------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to `nobody` needs root")


def as_nobody(*cmd, **kw):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd],
                          capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture
def public_dir():
    """A directory `nobody` can reach (pytest's own tmp dirs are root-only)."""
    d = Path(tempfile.mkdtemp(prefix="ls-nobody-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_the_analyzer_never_needs_root(public_dir):
    p = write(str(public_dir / "c.lscope"), busy_cpu1())
    assert os.stat(p).st_mode & 0o777 == 0o600
    shutil.chown(p, "nobody", "nogroup")  # handed over to an unprivileged analyst
    out = as_nobody(str(BIN / "latencyscope-analyze"), "report", p, "--json", "-m", "isolation",
                    "--cpus", "1", "--pid", "100", cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.returncode == 2, out.stderr  # the violation, judged without privileges
    assert json.loads(out.stdout)["isolation"]["intrusions"] == 1


@needs_root
def test_the_recorder_without_privileges_is_one_preflight_line(public_dir):
    out = as_nobody(str(BIN / "latencyscope-record"), "-q", "-d", "1", "-o", str(public_dir / "x.lscope"),
                    cwd="/", env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.returncode == 3
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "preflight: privileges" in lines[0] and "CAP_BPF" in lines[0] and "sudo" in lines[0]
    assert not list(public_dir.iterdir())  # nothing left behind


def test_captures_are_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        d = write(str(tmp_path / "a.lscope"), busy_cpu1(), finish=False)
        assert os.stat(d).st_mode & 0o777 == 0o700
        assert {os.stat(os.path.join(d, f)).st_mode & 0o777 for f in os.listdir(d)} == {0o600}
        p = write(str(tmp_path / "b.lscope"), busy_cpu1())
        assert os.stat(p).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@pytest.mark.parametrize("scale, says", [
    (-1.0, "--ring-scale must be a positive number"),
    (0.0, "--ring-scale must be a positive number"),
    (float("nan"), "--ring-scale must be a positive number"),
    (1e9, "use a smaller --ring-scale"),     # far beyond any machine's memory
])
def test_ring_scale_out_of_range_is_one_line_before_anything_loads(tmp_path, scale, says):
    from latencyscope.record.session import RecordConfig, validate

    cfg = RecordConfig(output=str(tmp_path / "c.lscope"), modules=["isolation"], ring_scale=scale)
    with pytest.raises(LatencyScopeError) as e:
        validate(cfg)
    assert says in e.value.message and "\n" not in e.value.message
    assert not list(tmp_path.iterdir())   # nothing written


def test_ring_buffer_memory_counts_rings_slots_and_merge_buffers():
    from latencyscope.record.session import (SLOT_BUFFER_RINGS, SMALL_RING_FRACTION, buffer_bytes, ring_pages,
                                             small_ring_pages)
    from latencyscope.schemas import kind

    k = kind("sched_switch")
    # 2 CPUs: each gets half the kind's budget; slots and the column buffers hold 2 x that each;
    # a staged kind's ring of small chunks is a fraction of its main ring, per CPU too.
    per_cpu = ring_pages(k, 1.0, 2) * 4096
    assert per_cpu == k.ring_pages * 4096 // 2
    small = small_ring_pages(k, 1.0, 2) * 4096
    assert small == per_cpu // SMALL_RING_FRACTION
    assert buffer_bytes([k], 1.0, 2) == 2 * per_cpu * (1 + 2 * SLOT_BUFFER_RINGS) + 2 * small
    m = kind("sched_migrate_task")   # not staged: no ring of small chunks
    assert small_ring_pages(m, 1.0, 2) == 0
    assert buffer_bytes([m], 1.0, 2) == 2 * ring_pages(m, 1.0, 2) * 4096 * (1 + 2 * SLOT_BUFFER_RINGS)


@pytest.mark.parametrize("value, says", [("one", "is not a CPU list"), ("99999", "cannot have")])
def test_a_bad_direct_cpus_override_is_one_line_before_anything_loads(tmp_path, monkeypatch, value, says):
    from latencyscope.record.session import DIRECT_CPUS_ENV, RecordConfig, validate

    monkeypatch.setenv(DIRECT_CPUS_ENV, value)
    with pytest.raises(LatencyScopeError) as e:
        validate(RecordConfig(output=str(tmp_path / "c.lscope"), modules=["isolation"]))
    assert says in e.value.message and DIRECT_CPUS_ENV in e.value.message and "\n" not in e.value.message
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_root_without_capabilities_is_refused_by_the_preflight_in_one_line(tmp_path):
    """uid 0 is not enough (a container, a bounding set): the capabilities decide."""
    rec = Path(sys.executable).with_name("latencyscope-record")
    r = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", str(rec), "-d", "1",
                        "-o", str(tmp_path / "c.lscope")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "preflight: privileges: missing CAP_BPF" in r.stderr
    assert not list(tmp_path.iterdir())


def test_an_unknown_compression_is_one_line_and_exit_3(tmp_path):
    rec = Path(sys.executable).with_name("latencyscope-record")
    r = subprocess.run([str(rec), "-d", "1", "--compression", "gzip", "-o", str(tmp_path / "c.lscope")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--compression" in r.stderr and "gzip" in r.stderr
    assert not list(tmp_path.iterdir())
