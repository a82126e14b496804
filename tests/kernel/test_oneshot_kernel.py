"""The one-shot `latencyscope` on the real kernel: the README's commands, verbatim."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

BIN = Path(sys.executable).parent


def run(cmd, *args, timeout=300):
    p = subprocess.run([str(BIN / cmd), *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_oneshot_json_is_valid_and_the_exit_code_is_the_verdict(tmp_path):
    out = tmp_path / "r.json"
    rc, _, err = run("latencyscope", "--duration", "2", "--json", "--output", str(out))
    assert rc in (0, 1, 2), err
    r = json.loads(out.read_text())
    assert r["schema"].startswith("latencyscope.report/") and rc == r["verdict"]["exit_code"]
    assert r["capture"]["duration_s"] >= 1.5 and r["capture"]["events"] > 0
    assert set(r["modules"]) <= set(r) and "isolation" in r["modules"]
    gate = subprocess.run(["jq", "-e", ".isolation.p99_999_runqueue_ns < 1000", str(out)], capture_output=True)
    assert gate.returncode in (0, 1)  # the README's CI gate evaluates


def test_oneshot_keep_cost_and_reanalysis(tmp_path):
    kept = tmp_path / "kept.lscope"
    rc, out, err = run("latencyscope", "--duration", "2", "--modules", "isolation", "--cpus", "1",
                       "--notional", "1000000", "--bps-per-us", "0.01", "--keep", str(kept))
    assert rc in (0, 1, 2), err
    assert "Alpha cost" in out and "estimated cost of delays" in out and f"exit {rc}" in out
    assert kept.is_file() and "capture kept at" in err
    rc2, _, err2 = run("latencyscope-analyze", "report", str(kept), "--cpus", "1")
    assert rc2 == rc, err2
    rc3, out3, err3 = run("latencyscope-analyze", "diff", str(kept), str(kept))
    assert rc3 == 0 and "No regression" in out3, err3
    folded = tmp_path / "a.folded"
    rc4, _, err4 = run("latencyscope-analyze", "flamegraph", str(kept), "--notional", "1e6", "--bps-per-us", "0.01",
                       "-o", str(folded))
    assert rc4 == 0 and folded.exists(), err4


def test_oneshot_perfetto_trace(tmp_path):
    trace = tmp_path / "t.pftrace"
    rc, _, err = run("latencyscope", "--duration", "1", "--modules", "isolation", "--format", "perfetto",
                     "-o", str(trace))
    assert rc in (0, 1, 2), err
    assert trace.stat().st_size > 100 and "ui.perfetto.dev" in err
