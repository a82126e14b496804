"""The benchmark command's pure pieces run on tiny inputs (no timing, no root, no BPF)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"lsbench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _load("gen_capture")


@pytest.fixture(scope="module")
def run():
    return _load("run")


def test_a_generated_capture_opens_like_a_recorded_one(gen, tmp_path):
    from latencyscope.analyze.capture import open_capture

    path, rows = gen.generate(str(tmp_path / "tiny.lscope"), 5_000, batch=1_000)
    cap = open_capture(path)
    assert sum(cap.events.values()) == 5_000 == sum(rows.values())
    assert cap.warnings == []
    assert not cap.incomplete
    assert cap.cpu_count == 2
    sw = cap.table("sched_switch").sort("ts_ns")
    assert sw.height > 0
    # on each CPU, prev of a switch is the task the previous switch brought in
    for cpu in (0, 1):
        s = sw.filter(sw["cpu"] == cpu)
        assert (s["prev_pid"][1:].to_numpy() == s["next_pid"][:-1].to_numpy()).all()


def test_generator_batches_carry_state_and_keep_time_moving(gen):
    g = gen.Generator(n_cpus=2, n_tasks=8, seed=3)
    a = g.batch(1_000)
    b = g.batch(1_000)
    assert a["sched_switch"]["ts_ns"][-1] < b["sched_switch"]["ts_ns"][0]
    assert np.all(np.diff(b["sched_switch"]["ts_ns"].astype(np.int64)) > 0)
    assert sum(len(v) for v in a.values()) == 1_000


def test_the_empty_bpf_program_does_nothing():
    empty = _load("empty_bpf")
    src = empty.source(["sched:sched_switch"])
    assert "int empty__sched__sched_switch(void *ctx) { return 0; }" in src
    clock = empty.source(["sched:sched_switch"], clock=True)   # the clock-read reference
    assert "int clock__sched__sched_switch(void *ctx) { return bpf_ktime_get_ns() == 0; }" in clock


def test_parsers_read_the_tools_output(run):
    stress = ("stress-ng: metrc: [4435] switch          1771137      3.00      0.50      5.48    "
              "590299.55      296219.50\n")
    assert run.parse_stress_ng(stress, "switch") == pytest.approx(590299.55)
    assert run.parse_stress_ng_sum(stress + stress.replace("4435", "4436"), "switch") == pytest.approx(2 * 590299.55)
    assert run.parse_fio_iops('note\n{"jobs": [{"read": {"iops": 10.5}, "write": {"iops": 0}}]}') == 10.5
    tv = ("\tUser time (seconds): 0.05\n\tSystem time (seconds): 0.01\n"
          "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50\n"
          "\tMaximum resident set size (kbytes): 86628\n\tExit status: 0\n")
    t = run.parse_time_v(tv)
    assert t["wall_s"] == pytest.approx(62.5) and t["rss_bytes"] == 86628 * 1024 and t["exit"] == 0
    assert run.parse_perf_samples("[ perf record: Captured and wrote 0.049 MB p.data (216 samples) ]") == 216
    stats = ("Aggregated stats:\n           TOTAL events:    2422575\n"
             "sched:sched_switch stats:\n          SAMPLE events:     937330\n"
             "sched:sched_stat_runtime stats:\n          SAMPLE events:     990337\n"
             "sched:sched_waking stats:\n          SAMPLE events:     494547\n")
    by_kind = run.parse_perf_stats(stats)
    assert by_kind == {"sched:sched_switch": 937330, "sched:sched_stat_runtime": 990337, "sched:sched_waking": 494547}
    assert run.shared_events(by_kind) == 937330 + 494547
    assert run.median_run([{"wall_s": 3.0, "rss_bytes": 1}, {"wall_s": 1.0, "rss_bytes": 5},
                           {"wall_s": 2.0, "rss_bytes": 2}]) == {"wall_s": 2.0, "rss_bytes": 5,
                                                                 "wall_s_runs": [3.0, 1.0, 2.0]}
    assert run.summarize([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3}


def test_the_report_renders_from_partial_results(run):
    res = {"date": "2026-01-01T00:00:00+00:00",
           "command": "python benchmarks/run.py --quick --json /tmp/x.json --out=/tmp/x.md --workdir /tmp/w",
           "machine": {"nproc": 2, "model_name": "test cpu", "kernel": "6.18", "mem_bytes": 2**30,
                       "python": "3.11"},
           "versions": {"perf": "6.1"}, "notes": [],
           "observer": {"seconds": 1, "repeats": 1, "skipped": {"trace-cmd": "EPERM"},
                        "tracers": {"untraced": "untraced", "perf": "perf sched record",
                                    "latencyscope": "latencyscope-record"},
                        "workloads": {"switch2": {"label": "stress-ng --switch 2", "unit": "bogo ops/s",
                                                  "untraced_median": 100.0, "tracers": {
                                                      "untraced": {"values": [100.0], "ratio": run.summarize([1.0]),
                                                                   "runs": [{"value": 100.0}]},
                                                      "latencyscope": {"values": [90.0], "ratio": run.summarize([0.9]),
                                                                       "runs": [{"value": 90.0, "events": 5, "lost": 0}]},
                                                      "perf": {"values": [40.0], "ratio": run.summarize([0.4]),
                                                               "runs": [{"value": 40.0}]}}}}}}
    res["budgets"] = run.budgets(res)
    res["provenance"] = ["part 1 comes from another run"]
    md = run.render(res)
    assert md.startswith("# LatencyScope benchmarks")
    assert "**Not from that run:** part 1 comes from another run" in md.split("## Budgets")[0]
    assert "test cpu" in md and "trace-cmd** not run: EPERM" in md
    assert "Generated by `python benchmarks/run.py --quick` on" in md and "/tmp/" not in md  # how to regenerate
    observer = res["budgets"][0]
    assert observer["status"] == "met"  # 10% slowdown vs perf's 60%: 0.17x


def test_observer_ratios_pair_each_run_with_the_untraced_run_of_its_repetition(run):
    # The host speeds up over the repetitions; the tracer always costs 10%, perf 30%.
    untraced = [100.0, 120.0, None, 140.0, 160.0]
    traced, perf = [90.0, 108.0, 117.0, 126.0, None], [70.0, 84.0, 91.0, 98.0, 112.0]
    assert run.paired_ratios(traced, untraced) == pytest.approx([0.9, 0.9, None, 0.9, None])
    obs = {"untraced": {"values": untraced}, "ls": {"values": traced}}
    assert run.observer_ratio(obs, "ls") == pytest.approx({"min": 0.9, "median": 0.9, "max": 0.9, "n": 3})
    same = run.slowdown_ratio_interval(run.paired_ratios(traced, untraced), run.paired_ratios(perf, untraced))
    assert same == pytest.approx((1 / 3, 1 / 3))       # no spread left once paired: 10% vs 30%
    lo, hi = run.slowdown_ratio_interval([0.90, 0.86, 0.94, 0.91, 0.89], [0.7] * 5)
    assert lo < 1 / 3 < hi                             # repetitions 4% apart move a 10% slowdown a lot
    assert run.slowdown_ratio_interval([0.9, 0.9, None], [0.7] * 3) is None   # 2 repetitions where both ran


def test_a_new_report_keeps_the_optimization_history(tmp_path):
    run = _load("run")
    out = tmp_path / "b.md"
    out.write_text("# LatencyScope benchmarks\n\nold numbers\n\n# History: optimizations\n\n### Round 1\nbefore/after\n")
    text = run.with_history(out, "# LatencyScope benchmarks\n\nnew numbers\n")
    assert "new numbers" in text and "old numbers" not in text
    assert text.endswith("# History: optimizations\n\n### Round 1\nbefore/after\n")
    assert run.with_history(tmp_path / "none.md", "fresh\n") == "fresh\n"


def test_the_synthetic_drain_feed_writes_every_record_it_fed(tmp_path):
    """benchmarks/drain_feed.py on a tiny input: the recorder's drain and writer
    get every record the fake rings held (several polls, ring wrap included)."""
    feed = _load("drain_feed")
    r = feed.measure(300_000, tmp_path, ring_scale=0.05)   # rings of ~0.4 MiB: each wraps several times
    assert r["events"] == r["fed"] >= 300_000
    assert r["events_per_cpu_s"] > 0 and r["bytes"] > 0 and r["compression"] == "lz4"
    assert not list(tmp_path.iterdir())   # the capture is removed


def _saved_observer(run, rev, untraced, ls, perf, tracers=("untraced", "latencyscope", "perf"), seconds=3):
    values = {"untraced": untraced, "latencyscope": ls, "perf": perf, "clock-bpf": [u * 0.95 for u in untraced]}
    return {"date": f"run at {rev}", "command": "python benchmarks/run.py --only observer --json /tmp/x.json",
            "machine": {}, "versions": {"latencyscope": f"0.1.0 (git {rev})"},
            "observer": {"seconds": seconds, "repeats": len(untraced), "tracers": {n: n for n in tracers},
                         "workloads": {"switch-pinned": {"label": "pinned", "unit": "ops/s", "modules": "isolation",
                                                         "tracers": {n: {"values": values[n],
                                                                         "runs": [{"value": v} for v in values[n]]}
                                                                     for n in tracers}}}}}


def test_pooled_runs_keep_each_repetition_paired_and_show_each_run_alone(run):
    # Run A: the host is fast, LatencyScope costs 10% and perf 40% (0.25x);
    # run B, same code, slower host: 20% and 40% (0.5x).  Pooled, the ratio
    # is the pooled medians'; each run alone is still shown.
    a = _saved_observer(run, "abc1234", [100.0] * 3, [90.0] * 3, [60.0] * 3)
    b = _saved_observer(run, "abc1234", [50.0] * 3, [40.0] * 3, [30.0] * 3,
                        tracers=("untraced", "latencyscope", "perf", "clock-bpf"))
    obs = run.pool_observer([("a.json", a), ("b.json", b)])
    wl = obs["workloads"]["switch-pinned"]
    assert obs["repeats"] == 6 and wl["pooled_runs"] == [3, 3]
    assert run.paired_ratios(wl["tracers"]["latencyscope"]["values"], wl["tracers"]["untraced"]["values"]) == \
        pytest.approx([0.9] * 3 + [0.8] * 3)
    assert run.per_run_ratios(wl["tracers"], "latencyscope", wl["pooled_runs"]) == pytest.approx([0.25, 0.5])
    # run A had no clock floor: missing there, not failed
    assert wl["tracers"]["clock-bpf"]["values"][:3] == [None] * 3
    assert wl["tracers"]["clock-bpf"]["runs"][0]["error"] == run.NOT_IN_RUN
    res = {"date": "d", "command": "c", "machine": {"nproc": 2, "model_name": "m", "kernel": "k", "python": "3"},
           "versions": {}, "notes": [], "observer": obs}
    res["budgets"] = run.budgets(res)
    pinned = next(b for b in res["budgets"] if "pinned" in b["budget"])
    assert "each pooled run alone: 0.25×, 0.50×" in pinned["measured"]
    assert "only reads the clock on the same tracepoints: slowdown 5.0%" in pinned["measured"]
    md = run.render(res)
    assert "pooled from 2 runs" in md and "git abc1234, 3 repetitions" in md
    assert "| –, –, –, 48, 48, 48 |" in md    # the clock floor's row: absent in run A


def test_runs_of_different_recorders_or_lengths_are_not_pooled(run):
    a = _saved_observer(run, "abc1234", [100.0] * 3, [90.0] * 3, [60.0] * 3)
    with pytest.raises(run.PoolError, match="not the same measurement"):
        run.pool_observer([("a.json", a), ("b.json", _saved_observer(run, "abc1234", [1.0], [1.0], [1.0], seconds=5))])
    if run.recorder_changes("aeb419f", "6d91ff1") == ["record/environment.py"]:   # this repository's history
        other = _saved_observer(run, "6d91ff1", [1.0], [1.0], [1.0])
        with pytest.raises(run.PoolError, match=r"different recorder code \(record/environment.py\)"):
            run.pool_observer([("a.json", _saved_observer(run, "aeb419f", [1.0], [1.0], [1.0])), ("b.json", other)])
        pooled = run.pool_observer([("a.json", _saved_observer(run, "aeb419f", [1.0], [1.0], [1.0])),
                                    ("b.json", other)], across_changes=True)
        assert pooled["recorder_changes"] == {"from": "aeb419f", "files": {"record/environment.py": ["6d91ff1"]}}
    with pytest.raises(run.PoolError, match="cannot compare git abc1234"):
        run.pool_observer([("a.json", a), ("b.json", _saved_observer(run, "0000000", [1.0], [1.0], [1.0]))])
    dirty = _saved_observer(run, "abc1234", [1.0], [1.0], [1.0])
    dirty["versions"]["latencyscope"] = "0.1.0 (git abc1234, recorder/analyzer files modified)"
    with pytest.raises(run.PoolError, match="b.json: recorded from modified recorder files"):
        run.pool_observer([("a.json", a), ("b.json", dirty)])
    with pytest.raises(run.PoolError, match="b.json: no observer part"):
        run.pool_observer([("a.json", a), ("b.json", {"versions": {}})])


def test_bad_saved_runs_get_one_line_and_exit_3(run, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert run.main(["--render", str(bad), "--out", str(tmp_path / "o.md")]) == 3
    assert run.main(["--render", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o.md")]) == 3
    assert run.main(["--pool", str(bad)]) == 3
    other = tmp_path / "other.json"
    other.write_text('{"machine": {}}')
    assert run.main(["--render", str(other), "--out", str(tmp_path / "o.md")]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and "invalid JSON" in err[0] and "No such file" in err[1] and "--render" in err[2]
    assert "not a saved run of benchmarks/run.py --json" in err[3]
    assert not (tmp_path / "o.md").exists()


def test_the_floor_split_reads_the_layers_of_latencyscope_slowdown(run):
    tracers = {"untraced": {"values": [100.0, 200.0]},
               "latencyscope": {"values": [80.0, 160.0], "runs": [{"tracer_cpu_window_s": 0.2}] * 2},
               "empty-bpf": {"values": [95.0, 190.0]}, "clock-bpf": {"values": [90.0, 180.0]}}
    text = run.floor_split(tracers)
    assert "LatencyScope 20.0%" in text and "being called at all 5.0%" in text
    assert "the clock read +5.0%" in text and ") +10.0%." in text and "0.20 CPU s per run" in text
    tracers["clock-bpf"] = {"values": [96.0, 192.0]}   # noise: the clock floor below the empty one
    assert "the clock read −1.0%" in run.floor_split(tracers)
    del tracers["clock-bpf"]
    assert run.floor_split(tracers) is None
