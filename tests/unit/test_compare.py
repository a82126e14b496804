"""`latencyscope-analyze report A B C`: one column per capture; the seed's jq gate works on the JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from synth import MS, switch, wakeup, write

BIN = Path(sys.executable).parent


def run(*args):
    p = subprocess.run([str(BIN / "latencyscope-analyze"), *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def jq(expr, path):
    return subprocess.run(["jq", "-e", expr, str(path)], capture_output=True, text=True).returncode


@pytest.fixture
def caps(tmp_path):
    quiet = write(str(tmp_path / "quiet.lscope"),
                  {"sched_switch": [switch(0, 1, 0, 100), switch(1 * MS, 1, 100, 0), switch(2 * MS, 1, 0, 100)],
                   "sched_wakeup": [wakeup(int(1.9 * MS), 100, 1)]},
                  filters={"cpus": [1], "pids": [100]})
    noisy = write(str(tmp_path / "noisy.lscope"),
                  {"sched_switch": [switch(0, 1, 0, 100), switch(1 * MS, 1, 100, 200, prev_state=0x100),
                                    switch(3 * MS, 1, 200, 100)]},
                  filters={"cpus": [1], "pids": [100]})
    return quiet, noisy


def test_one_column_per_capture_and_the_worst_verdict_as_exit_code(caps):
    quiet, noisy = caps
    rc, out, err = run("report", quiet, noisy, quiet)
    assert rc == 2, err
    assert "[1] quiet.lscope" in out and "[2] noisy.lscope" in out and "[3] quiet.lscope" in out
    cells = {tuple(c.strip() for c in l.split("│")[:2]): [c.strip() for c in l.split("│")[2:]]
             for l in out.splitlines() if "│" in l}
    assert cells[("isolation", "user_intrusions")] == ["0", "1", "0"]
    assert cells[("verdict", "status")] == ["PASS", "FAIL", "PASS"]
    assert run("report", quiet, quiet)[0] == 0


def test_several_captures_as_json(caps, tmp_path):
    quiet, noisy = caps
    out = tmp_path / "r.json"
    rc, _, err = run("report", quiet, noisy, "--json", "-o", str(out))
    d = json.loads(out.read_text())
    assert rc == 2 and d["schema"] == "latencyscope.reports/1"
    assert [r["capture"]["path"] for r in d["reports"]] == [quiet, noisy]
    assert [r["verdict"]["exit_code"] for r in d["reports"]] == [0, 2]
    assert jq(".reports[1].isolation.user_intrusions == 1", out) == 0


def test_the_readme_jq_gate_evaluates_true_or_false_never_errors(caps, tmp_path):
    quiet, noisy = caps
    gate = ".isolation.p99_999_runqueue_ns < 1000"
    out = tmp_path / "r.json"
    run("report", quiet, "--json", "-o", str(out))  # one 100 µs wait: false
    assert json.loads(out.read_text())["isolation"]["p99_999_runqueue_ns"] == 100_000
    assert jq(gate, out) == 1
    # a capture with no waits at all: the key is there (null), the gate still evaluates
    empty = write(str(tmp_path / "empty.lscope"), {"sched_switch": [switch(0, 1, 0, 100)]})
    run("report", empty, "--json", "-o", str(out))
    assert "p99_999_runqueue_ns" in json.loads(out.read_text())["isolation"]
    assert jq(gate, out) in (0, 1)
    # and with a policy that passes, the exit code is 0 and the gate is true for a fast wait
    fast = write(str(tmp_path / "fast.lscope"),
                 {"sched_switch": [switch(0, 1, 100, 0), switch(1_500, 1, 0, 100)],
                  "sched_wakeup": [wakeup(1_000, 100, 1)]}, filters={"cpus": [1], "pids": [100]})
    rc, _, _ = run("report", fast, "--json", "-o", str(out))
    assert rc == 0 and jq(gate, out) == 0


def test_a_bad_capture_among_several_is_one_line_and_exit_3(caps):
    quiet, _ = caps
    rc, _, err = run("report", quiet, "/nonexistent.lscope")
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 3 and len(lines) == 1 and "not found" in lines[0]


def test_every_key_of_every_module_is_documented():
    """docs/json-report.md names every key a module emits (even for an empty capture)."""
    import re

    from synth import capture

    from latencyscope.analyze import modules, policy, report

    doc = (Path(__file__).resolve().parents[2] / "docs" / "json-report.md").read_text()
    documented = set(re.findall(r"`([a-z_0-9]+)`", doc))
    cap = capture({"sched_switch": [switch(0, 1, 0, 100), switch(1 * MS, 1, 100, 0)]}, modules=modules.names())
    ctx = report.resolve_context(cap, policy.load(None), cpus=[1], pids=[100])
    rep = report.build(cap, ctx)
    missing = [f"{k}" for k in rep if k not in documented]
    for name in modules.names():
        assert name in documented, f"module {name} has no section in docs/json-report.md"
        missing += [f"{name}.{k}" for k in rep[name] if k not in documented]
    missing += [f"capture.{k}" for k in rep["capture"] if k not in documented]
    assert missing == [], f"undocumented JSON keys: {missing}"
