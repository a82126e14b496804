"""`latencyscope-analyze diff BASE NEW`: regressions named, noise ignored, exit 2 / 0."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from synth import US, switch, wakeup, write

from latencyscope.analyze import diff, policy

BIN = Path(sys.executable).parent
PERIOD = 1000 * US


def workload(path, n=2000, seed=0, slow_every=0, slow_ns=400 * US, period=PERIOD, hostname="synth",
             spread_us=(5, 50)):
    """A target thread (pid 100, 'engine') woken on CPU 1 every PERIOD, waiting 5..50 µs.

    With SLOW_EVERY, every n-th wakeup finds an intruder (pid 300) on the CPU
    and waits SLOW_NS: the regression a diff must name.
    """
    rng = np.random.default_rng(seed)
    lat = rng.integers(spread_us[0] * US, spread_us[1] * US, n)
    sw, wk = [], []
    for i in range(n):
        t0 = i * period
        wait = int(lat[i])
        if slow_every and i % slow_every == 0:
            wait = slow_ns
            sw.append(switch(t0 + 1000, 1, 0, 300, next_comm="intruder"))
            sw.append(switch(t0 + wait - 1000, 1, 300, 0, prev_comm="intruder"))
        wk.append(wakeup(t0, 100, 1, cpu=0, comm="engine"))
        sw.append(switch(t0 + wait, 1, 0, 100, next_comm="engine"))
        sw.append(switch(t0 + wait + 20 * US, 1, 100, 0, prev_comm="engine"))
    host = {"hostname": hostname, "kernel_release": "6.18-test", "cpu_count": 2, "isolated_cpus": [],
            "nohz_full_cpus": [], "irqs": []}
    return write(str(path), {"sched_switch": sw, "sched_wakeup": wk}, window=(0, n * period),
                 filters={"cpus": [1], "pids": [100]}, host=host)


def run(*args):
    p = subprocess.run([str(BIN / "latencyscope-analyze"), *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_a_known_regression_exits_2_and_names_the_figure(tmp_path):
    base = workload(tmp_path / "base.lscope", seed=1)
    new = workload(tmp_path / "new.lscope", seed=2, slow_every=20)  # 5% of wakeups now wait 400 µs
    rc, out, err = run("diff", base, new)
    assert rc == 2, err
    assert "isolation.p99_runqueue_ns" in out and "REGRESSED" in out
    assert "Regressions:" in out and "exit 2" in out
    rc, out, err = run("diff", base, new, "--json")
    assert rc == 2, err
    d = json.loads(out)
    assert d["schema"] == "latencyscope.diff/1" and d["exit_code"] == 2
    assert "isolation.p99_runqueue_ns" in d["regressions"]
    assert "isolation.user_intrusions" in d["regressions"]
    # the new cause is named with what it cost
    assert "causes.isolation / runqueue wait (wakeup) / intruder" in d["regressions"]
    row = next(r for r in d["figures"] if r["figure"] == "p99_runqueue_ns")
    assert row["base"] < 50 * US and row["new"] == 400 * US and row["status"] == "regressed"
    assert row["new_ci"][0] > row["base_ci"][1]  # judged with the confidence intervals
    # the other way round it is an improvement, not a regression
    rc, out, _ = run("diff", new, base, "--json")
    assert rc == 0 and "isolation.p99_runqueue_ns" in json.loads(out)["improvements"]


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4), (5, 6)])
def test_two_captures_of_the_same_quiet_workload_do_not_regress(tmp_path, seeds):
    base = workload(tmp_path / "a.lscope", seed=seeds[0])
    new = workload(tmp_path / "b.lscope", seed=seeds[1])
    for _ in range(2):  # and again: the answer does not flicker
        rc, out, err = run("diff", base, new, "--json")
        assert rc == 0, err
        d = json.loads(out)
        assert d["regressions"] == [] and not d["cross_host"] and d["notes"] == []
    assert run("diff", base, base)[0] == 0


def test_a_p99_999_of_300_samples_does_not_fail_the_build(tmp_path):
    base = workload(tmp_path / "a.lscope", n=300, seed=1, period=5 * PERIOD)
    # one wait of 2 ms instead of ~30 µs: P99.999 (= the max) jumps 40x, the wait total by ~25%
    new = workload(tmp_path / "b.lscope", n=300, seed=1, slow_every=1000, slow_ns=2_000 * US, period=5 * PERIOD)
    rc, out, err = run("diff", base, new, "--json")
    d = json.loads(out)
    row = next(r for r in d["figures"] if r["figure"] == "p99_999_runqueue_ns")
    assert row["new"] == 2_000 * US and row["status"] == "not judged"
    assert "beyond P99.999" in row["note"]
    total = next(r for r in d["figures"] if r["figure"] == "isolation / runqueue wait (wakeup)")
    assert total["change_pct"] > 20 and total["status"] != "regressed"
    # the lone intruder is a new cause, but one event is not a trend
    intr = next(r for r in d["figures"] if r["figure"].endswith("/ intruder"))
    assert intr["status"] != "regressed"
    assert [r for r in d["regressions"] if "runqueue" in r] == []
    # with a stricter policy the same tail is judged
    p = tmp_path / "p.toml"
    p.write_text("[diff]\nmin_tail_samples = 0\n")
    rc, out, _ = run("diff", base, new, "--json", "--policy", str(p))
    d = json.loads(out)
    row = next(r for r in d["figures"] if r["figure"] == "p99_999_runqueue_ns")
    assert row["status"] != "not judged"


def test_captures_from_different_hosts_are_compared_and_it_says_so(tmp_path):
    base = workload(tmp_path / "a.lscope", seed=1, hostname="prod-a")
    new = workload(tmp_path / "b.lscope", seed=2, hostname="prod-b")
    rc, out, err = run("diff", base, new)
    assert rc == 0, err
    assert "different hosts" in out and "prod-a" in out and "prod-b" in out
    d = json.loads(run("diff", base, new, "--json")[1])
    assert d["cross_host"] is True and any("different hosts" in n for n in d["notes"])


def test_counts_are_compared_per_second_when_durations_differ(tmp_path):
    # the same intrusion rate over 1 s and over 2 s is not a regression
    base = workload(tmp_path / "a.lscope", n=1000, seed=1, slow_every=10)
    new = workload(tmp_path / "b.lscope", n=2000, seed=2, slow_every=10)
    d = json.loads(run("diff", base, new, "--json")[1])
    row = next(r for r in d["figures"] if r["figure"] == "user_intrusions")
    assert (row["base"], row["new"]) == (100, 200) and row["status"] == "same"
    assert "per second" in row["note"] and any("per second" in n for n in d["notes"])
    assert d["exit_code"] == 0, d["regressions"]


def test_tolerance_comes_from_the_policy(tmp_path):
    base = workload(tmp_path / "a.lscope", seed=1, spread_us=(10, 50))
    new = workload(tmp_path / "b.lscope", seed=2, spread_us=(10, 70))  # P99 ~49.6 -> ~69.5 µs (+40%)
    d = json.loads(run("diff", base, new, "--json")[1])
    assert "isolation.p99_runqueue_ns" in d["regressions"]
    p = tmp_path / "p.toml"
    p.write_text("[diff]\ntolerance_pct = 50.0\n")
    rc, out, _ = run("diff", base, new, "--json", "--policy", str(p))
    d = json.loads(out)
    assert "isolation.p99_runqueue_ns" not in d["regressions"] and d["policy"]["tolerance_pct"] == 50.0


@pytest.mark.parametrize("args,needle", [
    (["diff", "/nonexistent.lscope", "CAP"], "not found"),
    (["diff", "CAP"], "Missing argument"),
    (["diff", "CAP", "CAP", "--policy", "BADPOL"], "unknown key diff.tolerance"),
    (["diff", "CAP", "CAP", "-o", "/nonexistent-dir/d.json"], "does not exist"),
])
def test_diff_bad_input_is_one_line_and_exit_3(tmp_path, args, needle):
    cap = workload(tmp_path / "a.lscope", n=50)
    bad = tmp_path / "bad.toml"
    bad.write_text("[diff]\ntolerance = 5\n")
    args = [cap if a == "CAP" else str(bad) if a == "BADPOL" else a for a in args]
    rc, _, err = run(*args)
    assert rc == 3 and "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0], err


# --- the noise tests themselves, without files -------------------------------------
def _side(samples_ns, duration_s=10.0):
    from latencyscope.analyze.stats import percentiles

    pct = percentiles(samples_ns)
    iso = {"status": "PASS", "runqueue_samples": len(samples_ns),
           **{k.replace("_ns", "_runqueue_ns"): v for k, v in pct.items()}}
    rep = {"capture": {"duration_s": duration_s, "host": "h", "kernel": "k", "path": "p", "cpus": 2,
                       "events": 0, "lost_events": 0},
           "verdict": {"status": "PASS", "exit_code": 0}, "modules": ["isolation"], "isolation": iso}
    return diff.side(rep, None, {("isolation", "runqueue"): samples_ns})


def test_heavy_tailed_noise_never_flags_a_percentile():
    pol = policy.default_values()["diff"]
    flagged = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        a = (rng.lognormal(10, 1.0, 5000)).astype(np.int64)
        b = (rng.lognormal(10, 1.0, 5000)).astype(np.int64)
        d = diff.compare(_side(a), _side(b), pol)
        flagged += [r for r in d["regressions"] if "runqueue" in r]
    assert flagged == []


def test_a_shifted_distribution_is_flagged_at_every_judgeable_percentile():
    pol = policy.default_values()["diff"]
    rng = np.random.default_rng(0)
    a = rng.lognormal(10, 0.5, 200_000).astype(np.int64)
    b = (rng.lognormal(10, 0.5, 200_000) * 1.5).astype(np.int64)
    d = diff.compare(_side(a), _side(b), pol)
    # 200k samples: P99.99 has 20 beyond it (judged), P99.999 has 2 (not)
    assert {"isolation.p50_runqueue_ns", "isolation.p99_runqueue_ns", "isolation.p99_9_runqueue_ns",
            "isolation.p99_99_runqueue_ns"} <= set(d["regressions"])
    assert "isolation.p99_999_runqueue_ns" not in d["regressions"]


def test_percentile_confidence_interval_brackets_the_value():
    s = np.arange(1, 10_001)
    v, lo, hi = diff._percentile_ci(s, 0.99, 2.576)
    assert v == 9900 and lo < 9900 < hi and hi - lo < 60
    v, lo, hi = diff._percentile_ci(s, 1.0, 2.576)
    assert v == lo == hi == 10_000
