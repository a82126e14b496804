"""Property tests: random event tables of every declared kind through the
reader and every registered analysis.  They never crash, and what they
report is self-consistent: no negative durations, percentiles in order,
counts that add up.

Tables come from the schemas (tests/synth.py builds them with the real
writer's conversion), so a module added later is fuzzed without editing
this file.
"""
import io
import json
import math
import os
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from latencyscope.analyze import modules as registry
from latencyscope.analyze import policy as policy_mod
from latencyscope.analyze import report as report_mod
from latencyscope.analyze.capture import open_capture
from latencyscope.errors import LatencyScopeError
from latencyscope.schemas import EVENT_KINDS
from synth import capture, write

SETTINGS = settings(max_examples=int(os.environ.get("LS_FUZZ_EXAMPLES", "40")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

NCPU = 4
SPAN_NS = 50_000_000  # events within 50 ms: dense enough for pairs, waits and overlaps
PIDS = [0, 1, 2, 3, 100, 101, 200]
COMMS = ["swapper/1", "t100", "t101", "kworker/1:0", "ksoftirqd/1", "eth0", "", "ünï", "x" * 15]

LIMITS = {"u8": (0, 2**8 - 1), "u16": (0, 2**16 - 1), "s16": (-2**15, 2**15 - 1), "u32": (0, 2**32 - 1),
          "s32": (-2**31, 2**31 - 1), "u64": (0, 2**64 - 1), "s64": (-2**63, 2**63 - 1)}


def field_strategy(f, extreme: bool):
    """Values a tracepoint could plausibly give, plus (EXTREME) anything the type holds."""
    lo, hi = LIMITS.get(f.ctype, (0, 0))
    if f.ctype == "comm":
        plausible = st.sampled_from(COMMS)
        return st.one_of(plausible, st.binary(max_size=16)) if extreme else plausible
    if f.name == "ts_ns":
        plausible = st.integers(0, SPAN_NS)
        return st.one_of(plausible, st.integers(lo, hi)) if extreme else plausible
    if f.unit == "cpu":
        plausible = st.integers(0, NCPU - 1)
        return st.one_of(plausible, st.integers(lo, hi)) if extreme else st.one_of(plausible, st.just(NCPU + 3))
    if f.unit in ("tid", "tgid"):
        plausible = st.sampled_from(PIDS)
    elif f.name == "prev_state":
        plausible = st.sampled_from([0, 1, 2, 0x40, 0x100, 0x101])
    elif f.unit == "ns":
        plausible = st.integers(0, SPAN_NS)
    else:
        plausible = st.integers(max(lo, 0), min(hi, 300))
    return st.one_of(plausible, st.integers(lo, hi)) if extreme else plausible


def rows_strategy(k, extreme: bool, max_rows: int = 25):
    return st.lists(st.fixed_dictionaries({f.name: field_strategy(f, extreme) for f in k.fields}),
                    max_size=max_rows)


def tables_strategy(extreme: bool = False):
    return st.fixed_dictionaries({}, optional={k.name: rows_strategy(k, extreme) for k in EVENT_KINDS})


def context_strategy():
    return st.fixed_dictionaries({
        "cpus": st.one_of(st.none(), st.lists(st.integers(0, NCPU - 1), min_size=1, max_size=NCPU, unique=True)),
        "pids": st.lists(st.sampled_from([p for p in PIDS if p]), max_size=2, unique=True),
    })


def run_all(cap, ctx_args):
    pol = policy_mod.load(None)
    ctx = report_mod.resolve_context(cap, pol, cpus=ctx_args["cpus"], pids=ctx_args["pids"], top=1000)
    rep = report_mod.build(cap, ctx)
    json.dumps(rep, allow_nan=False)  # the JSON contract: serializable, no NaN
    from rich.console import Console
    from latencyscope.analyze.terminal import render
    render(rep, Console(file=io.StringIO(), width=120, force_terminal=False, color_system=None))
    return rep


PCT = re.compile(r"^(p50|p99|p99_9|p99_99|p99_999|max)_(.+)$")
ORDER = ["p50", "p99", "p99_9", "p99_99", "p99_999", "max"]
# Keys ending in _ns that are signed by design, not durations: an offset
# between clocks, a sleep's overshoot (negative when it ended early).
SIGNED = re.compile(r"(overshoot|offset|minus|delta|slack)")


def walk(obj, path=""):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")


def check_invariants(rep):
    for path, d in walk(rep):
        for k, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert not (isinstance(v, float) and math.isnan(v)), f"{path}.{k} is NaN"
                if k.endswith("_ns") and not SIGNED.search(k):
                    assert v >= 0, f"{path}.{k} = {v} is a negative duration"
                if k in ("count", "samples") or k.endswith(("_count", "_samples", "events")):
                    assert v >= 0, f"{path}.{k} = {v} is a negative count"
        # Percentiles: P50 <= P99 <= ... <= max, for every figure that has them.
        groups = {}
        for k, v in d.items():
            m = PCT.match(k)
            if m and isinstance(v, (int, float)) and not isinstance(v, bool):
                groups.setdefault(m.group(2), {})[m.group(1)] = v
        for suffix, g in groups.items():
            seq = [g[q] for q in ORDER if q in g]
            assert seq == sorted(seq), f"{path}: percentiles of {suffix} out of order: {g}"
    check_isolation(rep.get("isolation") or {})
    cap = rep["capture"]
    assert cap["events"] == sum(cap["events_by_table"].values())
    assert cap["lost_events"] == sum(cap["lost_by_table"].values())


def check_isolation(iso):
    if iso.get("status") in (None, "NOT_RECORDED"):
        return
    assert sum(i["count"] for i in iso["intruders"]) == iso["intrusions"]
    assert sum(i["count"] for i in iso["intruders"] if not i["kernel_thread"]) == iso["user_intrusions"]
    assert sum(i["total_ns"] for i in iso["intruders"] if i["kernel_thread"]) == iso["kernel_thread_time_ns"]
    for i in iso["intruders"]:
        assert 0 <= i["max_ns"] <= i["total_ns"]
    assert 0 <= iso["involuntary_switches"] <= iso["context_switches"]
    assert sum(p["voluntary_switches"] + p["involuntary_switches"] for p in iso["by_pid"]) == iso["context_switches"]
    assert sum(p["involuntary_switches"] for p in iso["by_pid"]) == iso["involuntary_switches"]
    assert sum(p["migrations"] for p in iso["by_pid"]) == iso["migrations"]
    worst = iso["worst"]
    assert len(worst) <= iso["runqueue_samples"]
    lat = [w["latency_ns"] for w in worst]
    assert lat == sorted(lat, reverse=True)
    if worst:
        assert worst[0]["latency_ns"] == iso["max_runqueue_ns"]
    for w in worst:
        for o in w["occupants"]:
            assert 0 <= o["overlap_ns"] <= w["latency_ns"] * max(1, len(worst)) + 1


@SETTINGS
@given(tables=tables_strategy(), ctx=context_strategy())
def test_random_plausible_tables_never_crash_and_add_up(tables, ctx):
    cap = capture(tables, modules=sorted({k.module for k in EVENT_KINDS}), cpus=NCPU, window=(0, SPAN_NS))
    rep = run_all(cap, ctx)
    check_invariants(rep)
    assert set(rep["modules"]) == set(registry.names())


@SETTINGS
@given(tables=tables_strategy(extreme=True), ctx=context_strategy(),
       window=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)))
def test_random_extreme_tables_never_crash(tables, ctx, window):
    cap = capture(tables, modules=sorted({k.module for k in EVENT_KINDS}), cpus=NCPU, window=window)
    run_all(cap, ctx)


@settings(max_examples=int(os.environ.get("LS_FUZZ_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tables=st.fixed_dictionaries({"sched_switch": rows_strategy(EVENT_KINDS[0], False, 30)}),
       cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4),
       partial=st.booleans())
def test_damaged_capture_files_are_refused_or_read_never_crash(tmp_path_factory, tables, cut, flips, partial):
    d = tmp_path_factory.mktemp("fz")
    path = write(str(d / "c.lscope"), tables, modules=["isolation"], cpus=NCPU, window=(0, SPAN_NS),
                 finish=not partial)
    target = os.path.join(path, "sched_switch.arrows") if partial else path
    data = bytearray(open(target, "rb").read())
    for pos, x in flips:
        if data:
            data[min(len(data) - 1, int(pos * len(data)))] ^= x
    data = data[: int(cut * len(data))] if cut < 0.9 else data
    with open(target, "wb") as f:
        f.write(bytes(data))
    try:
        cap = open_capture(path)
    except LatencyScopeError as e:
        assert e.message and "\n" not in e.message
        return
    assert cap.table("sched_switch") is None or cap.table("sched_switch").height <= len(tables["sched_switch"])
    rep = run_all(cap, {"cpus": None, "pids": []})
    check_invariants(rep)
