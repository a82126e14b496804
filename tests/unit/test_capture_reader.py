"""A capture is read back exactly, and bad files are refused with one clear line."""
import json
import os
import tarfile

import numpy as np
import pyarrow as pa
import pytest

from latencyscope.analyze.capture import open_capture
from latencyscope.errors import LatencyScopeError
from synth import MS, switch, wakeup, write


def rows():
    return {"sched_switch": [switch(i * MS, i % 2, 10 + i, 11 + i) for i in range(50)]}


def test_roundtrip_through_the_real_writer(tmp_path):
    p = write(str(tmp_path / "a.lscope"), rows())
    cap = open_capture(p)
    df = cap.table("sched_switch")
    assert df.height == 50 and df["next_pid"].to_list() == [11 + i for i in range(50)]
    assert df["next_comm"][0] == "t11"
    assert cap.warnings == [] and not cap.incomplete
    assert oct(os.stat(p).st_mode & 0o777) == "0o600"


def test_readable_by_stock_polars_and_pyarrow(tmp_path):
    import polars as pl
    import pyarrow as pa

    p = write(str(tmp_path / "a.lscope"), rows())
    with tarfile.open(p) as t:
        t.extractall(tmp_path / "x")
    assert pl.read_ipc_stream(tmp_path / "x" / "sched_switch.arrows").height == 50
    t = pa.ipc.open_stream(pa.OSFile(str(tmp_path / "x" / "sched_switch.arrows"))).read_all()
    assert t.schema.field("ts_ns").metadata[b"unit"] == b"ns"


def test_partial_directory_is_readable_and_marked_incomplete(tmp_path):
    d = write(str(tmp_path / "a.lscope"), rows(), finish=False)
    assert d.endswith(".partial")
    with pytest.raises(LatencyScopeError, match="analyze that"):
        open_capture(str(tmp_path / "a.lscope"))
    cap = open_capture(d)
    assert cap.incomplete and cap.table("sched_switch").height == 50
    assert any("incomplete" in w for w in cap.warnings)


def test_truncated_table_keeps_complete_batches(tmp_path):
    d = write(str(tmp_path / "a.lscope"), rows(), finish=False)
    f = os.path.join(d, "sched_switch.arrows")
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
        fh.truncate(size - 40)
    cap = open_capture(d)
    assert cap.incomplete
    assert cap.table("sched_switch").height in (0, 50)


@pytest.mark.parametrize("content,match", [
    (b"", "empty file"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 600, "not a capture archive"),
    (b"PERFILE2" + b"\0" * 2000, "not a capture archive"),
])
def test_foreign_files_are_refused(tmp_path, content, match):
    p = tmp_path / "f.lscope"
    p.write_bytes(content)
    with pytest.raises(LatencyScopeError, match=match):
        open_capture(str(p))


def test_task_names_are_stored_dictionary_encoded_and_read_as_strings(tmp_path):
    """Format 3 stores no names in sched_switch (the reader rebuilds them) and
    each batch's few distinct names once where it stores them; a reader gets strings."""
    import pyarrow as pa

    mig = [{"ts_ns": i * MS, "cpu": 0, "pid": 11 + i, "orig_cpu": 0, "dest_cpu": 1, "comm": f"t{11 + i}"}
           for i in range(50)]
    p = write(str(tmp_path / "a.lscope"), {**rows(), "sched_migrate_task": mig})
    with tarfile.open(p) as t:
        raw = pa.ipc.open_stream(t.extractfile("sched_switch.arrows").read()).read_all()
        raw_mig = pa.ipc.open_stream(t.extractfile("sched_migrate_task.arrows").read()).read_all()
    assert "next_comm" not in raw.schema.names and "prev_comm" not in raw.schema.names
    assert pa.types.is_dictionary(raw_mig.schema.field("comm").type)
    assert len(raw_mig.column("comm").chunk(0).dictionary) == 50
    cap = open_capture(p)
    df = cap.table("sched_switch")
    assert df["next_comm"].dtype == pl_string() and df["next_comm"].to_list() == [f"t{11 + i}" for i in range(50)]
    assert cap.table("sched_migrate_task")["comm"].to_list() == [f"t{11 + i}" for i in range(50)]


@pytest.mark.parametrize("version", [1, 2])
def test_captures_of_earlier_formats_read_the_same(tmp_path, version):
    """Captures recorded before format 3 (names in every table: as plain
    strings in format 1, dictionary-encoded in 2) still open, table for table
    equal to the same events stored as format 3."""
    import pyarrow as pa

    from latencyscope.schemas import kind
    from latencyscope.schemas.codegen import arrow_schema

    tables = {**rows(), "sched_wakeup": [wakeup(i * MS + 1, 11 + i, i % 2) for i in range(50)]}
    d3 = write(str(tmp_path / "b.lscope"), tables, finish=False)
    new = open_capture(d3)
    old_dir = tmp_path / "a.lscope.partial"
    old_dir.mkdir()
    m = json.load(open(os.path.join(d3, "manifest.json")))
    m["format_version"], m["tasks"] = version, []  # the names are in the tables
    json.dump(m, open(old_dir / "manifest.json", "w"))
    for fn in os.listdir(d3):
        if fn.endswith(".arrows"):
            k = kind(fn[:-len(".arrows")])
            schema = arrow_schema(k, stored=version == 2, names_stored=True)
            whole = new.arrow[k.name].select(schema.names)
            with pa.ipc.new_stream(str(old_dir / fn), schema) as w:
                w.write_table(whole.cast(schema))
    old = open_capture(str(old_dir))
    assert old.manifest["format_version"] == version
    for name in ("sched_switch", "sched_wakeup"):
        assert old.table(name).equals(new.table(name)), name
    assert old.table("sched_switch")["prev_comm"].to_list()[:2] == ["t10", "t11"]
    assert old.table("sched_wakeup")["comm"].to_list()[:2] == ["t11", "t12"]


def pl_string():
    import polars as pl

    return pl.String


def test_future_format_version_is_refused(tmp_path):
    d = write(str(tmp_path / "a.lscope"), rows(), finish=False)
    m = json.load(open(os.path.join(d, "manifest.json")))
    m["format_version"] = 99
    json.dump(m, open(os.path.join(d, "manifest.json"), "w"))
    with pytest.raises(LatencyScopeError, match="newer than this analyzer"):
        open_capture(d)


def test_truncated_archive_is_refused_or_partial(tmp_path):
    p = write(str(tmp_path / "a.lscope"), rows())
    data = open(p, "rb").read()
    q = tmp_path / "cut.lscope"
    q.write_bytes(data[:700])
    with pytest.raises(LatencyScopeError):
        open_capture(str(q))


def test_lying_manifest_counts_are_reported(tmp_path):
    d = write(str(tmp_path / "a.lscope"), rows(), finish=False)
    m = json.load(open(os.path.join(d, "manifest.json")))
    m["events"] = {"sched_switch": 999}
    json.dump(m, open(os.path.join(d, "manifest.json"), "w"))
    cap = open_capture(d)
    assert any("999" in w for w in cap.warnings)


@pytest.mark.parametrize("case", ["plain", "empty-strings", "sliced", "sliced-dictionary", "unicode", "one"])
def test_dictionary_names_decoded_without_pyarrow_compute_equal_the_cast(case):
    """Task names stored dictionary-encoded come out as the same strings
    pyarrow's cast gives, whatever the slicing of indices or dictionary."""
    from latencyscope.analyze.names import spelled_out

    rng = np.random.default_rng(len(case))
    words = {"plain": ["swapper/0", "stress-ng", "kworker/1:2-events", "a"],
             "empty-strings": ["", "x", "", "yz"],
             "sliced": ["alpha", "beta", "gamma", "delta", "eps"],
             "sliced-dictionary": ["alpha", "beta", "gamma", "delta", "eps"],
             "unicode": ["naïve", "日本語", "émoji-🙂", "plain"],
             "one": ["only"]}[case]
    dictionary = pa.array(words, pa.string())
    if case == "sliced-dictionary":
        dictionary = dictionary.slice(1, 3)
    n = 1 if case == "one" else 5000
    indices = pa.array(rng.integers(0, len(dictionary), n).astype(np.int32))
    arr = pa.DictionaryArray.from_arrays(indices, dictionary)
    if case == "sliced":
        arr = arr.slice(17, 3000)
    got = spelled_out(arr)
    assert got.type == pa.string()
    assert got.to_pylist() == arr.cast(pa.string()).to_pylist()


def _resident_kib(path: str) -> int:
    """Resident KiB of this process's mappings of PATH (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:      # a mapping's header line
            inside = head[-1] == path
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


def test_a_pass_over_a_packed_capture_does_not_keep_the_file_resident(tmp_path):
    """The reader maps the capture and hands what a pass has read back to the
    page cache: after the check and a full read, (almost) none of the file's
    pages count in the analyzer's memory."""
    rng = np.random.default_rng(7)
    ts = np.cumsum(rng.integers(1, 5000, size=60_000)) + MS
    pids = rng.integers(100, 30_000, size=len(ts))
    path = write(str(tmp_path / "big.lscope"),
                 {"sched_switch": [switch(int(t), int(t) % 2, int(p), int(p) + 1) for t, p in zip(ts, pids)]})
    size_kib = os.path.getsize(path) // 1024
    assert size_kib > 256                                   # many pages to keep or drop
    cap = open_capture(path)
    assert cap.frame("sched_switch", ["ts_ns", "prev_pid"]).height == len(ts)
    assert _resident_kib(os.path.realpath(path)) < size_kib // 10, (_resident_kib(path), size_kib)


def test_the_reader_counts_steps_back_in_time_within_and_across_batches():
    """The scan looks for steps back only in batches that have one; a batch
    that starts before the previous one ended has one at its first row."""
    import numpy as np
    import pyarrow as pa

    from latencyscope.analyze.capture import _Checker
    from latencyscope.schemas import kind
    from latencyscope.schemas.codegen import arrow_schema

    schema = pa.schema([f for f in arrow_schema(kind("sched_wakeup")) if f.name in ("ts_ns", "cpu", "pid")])

    def batch(ts):
        n = len(ts)
        return pa.RecordBatch.from_arrays([pa.array(ts, schema.field("ts_ns").type),
                                           pa.array(np.zeros(n), schema.field("cpu").type),
                                           pa.array(np.arange(n), schema.field("pid").type)], schema=schema)

    chk = _Checker("sched_wakeup", schema)
    for ts in ([10, 20, 30], [25, 40, 50], [45, 60, 55], [70]):   # back at 25 (only), 45, 55
        chk.feed(batch(ts))
    assert (chk.neg, chk.min_step, chk.late) == (3, -5, 5)
    assert (chk.min_ts, chk.max_ts, chk.rows) == (10, 70, 10)


def test_a_small_capture_is_analyzed_without_loading_pyarrow_compute(tmp_path):
    """Rebuilt task names (format 3) are spelled out with numpy, not pyarrow's
    cast: pyarrow.compute costs ~40 ms and 10 MiB of every analysis, a tenth
    of a small capture's (docs/benchmarks.md, thirteenth round)."""
    import subprocess
    import sys

    from synth import MS, switch, wakeup, write
    path = write(str(tmp_path / "small.lscope"),
                 {"sched_switch": [switch(0, 1, 0, 100, next_comm="app"),
                                   switch(2 * MS, 1, 100, 0, prev_comm="app")],
                  "sched_wakeup": [wakeup(1 * MS, 100, 1, comm="app")]})
    assert open_capture(path).arrow.source("sched_switch").derived   # names rebuilt, not stored
    code = ("import contextlib, io, sys\n"
            "from latencyscope.analyze.cli import main\n"
            f"for args in (['report', {path!r}], ['report', {path!r}, '--json']):\n"
            "    sys.argv = ['latencyscope-analyze', *args]\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try:\n"
            "            main()\n"
            "        except SystemExit as e:\n"
            "            assert e.code in (0, 1, 2), e.code\n"
            "print('pyarrow.compute' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stdout
