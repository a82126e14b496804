"""The cost table: each wait of a target split among what held its CPU, priced in money."""
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from synth import MS, US, capture, switch, wakeup, write

from latencyscope.analyze import causes, cost, policy, report

BIN = Path(sys.executable).parent


def analyzed(tables, cpus=(1,), pids=(100,)):
    cap = capture(tables)
    ctx = report.resolve_context(cap, policy.load(None), cpus=list(cpus), pids=list(pids))
    return cap, ctx, report.build(cap, ctx, ["isolation"])


def rows(df):
    return {(r["module"], r["cause"], r["who"]): (r["delay_ns"], r["events"]) for r in df.iter_rows(named=True)}


# engine (100) runs on CPU 1, is preempted by 200 for 1 ms, sleeps, and is woken
# at 3.5 ms onto an idle CPU it gets 0.5 ms later.
ENGINE = {
    "sched_switch": [switch(0, 1, 0, 100), switch(1 * MS, 1, 100, 200, prev_state=0x100),
                     switch(2 * MS, 1, 200, 100), switch(3 * MS, 1, 100, 0), switch(4 * MS, 1, 0, 100)],
    "sched_wakeup": [wakeup(int(3.5 * MS), 100, 1)],
}


def test_a_preemption_is_charged_to_the_intruder_and_an_idle_wakeup_to_the_wakeup_path():
    cap, ctx, rep = analyzed(ENGINE)
    got = rows(cost.delays(cap, ctx, rep))
    assert got == {
        ("isolation", "runqueue wait (preempted)", "t200 (200)"): (1 * MS, 1),
        ("isolation", "runqueue wait (wakeup)", cost.WAKEUP_PATH): (MS // 2, 1),
    }


def test_cost_is_delay_us_times_bps_per_us_times_notional_over_10000():
    cap, ctx, rep = analyzed(ENGINE)
    s = cost.summary(cost.delays(cap, ctx, rep), notional=1_000_000, bps_per_us=0.01, duration_s=10.0)
    # 1500 µs × 0.01 bp/µs × 1,000,000 / 10,000
    assert s["total_delay_ns"] == 1_500 * US and s["total_cost"] == pytest.approx(1_500.0)
    assert s["cost_per_s"] == pytest.approx(150.0)
    top = s["top_causes"][0]
    assert (top["who"], top["cost"], top["share"]) == ("t200 (200)", pytest.approx(1_000.0), pytest.approx(0.6667))
    assert s["by_module"] == [{"module": "isolation", "delay_ns": 1_500 * US, "cost": pytest.approx(1500.0),
                               "share": 1.0}]


def test_waits_of_threads_outside_the_scope_cost_nothing():
    tables = {"sched_switch": ENGINE["sched_switch"] + [switch(5 * MS, 0, 0, 400), switch(6 * MS, 0, 400, 0)],
              "sched_wakeup": ENGINE["sched_wakeup"] + [wakeup(int(4.5 * MS), 400, 0)]}
    cap, ctx, rep = analyzed(tables)
    assert {k[2] for k in rows(cost.delays(cap, ctx, rep))} == {"t200 (200)", cost.WAKEUP_PATH}
    # system-wide (no --pid, no --cpus) the other thread's 0.5 ms wait counts too
    cap, ctx, rep = analyzed(tables, cpus=(), pids=())
    total = int(cost.delays(cap, ctx, rep)["delay_ns"].sum())
    assert total >= 2 * MS


def test_an_irq_inside_the_intruders_slice_shares_the_wait_without_inflating_it():
    def irqs(cap):  # a 200 µs hard IRQ on CPU 1 in the middle of the preemption
        return pl.DataFrame({"cpu": [1], "start_ns": [int(1.4 * MS)], "end_ns": [int(1.6 * MS)],
                             "kind": ["hardirq"], "label": ["IRQ 24 eth0"], "pid": [None]},
                            schema=causes.OCCUPANCY_SCHEMA)

    causes.register(irqs)
    try:
        cap, ctx, rep = analyzed(ENGINE)
        got = rows(cost.delays(cap, ctx, rep))
    finally:
        causes._PROVIDERS.remove(irqs)
    # 1 ms held by t200 + 0.2 ms by the IRQ inside it: scaled to the 1 ms wait
    assert got[("irq", "hardirq", "IRQ 24 eth0")][0] == pytest.approx(MS * 0.2 / 1.2, abs=1)
    assert got[("isolation", "runqueue wait (preempted)", "t200 (200)")][0] == pytest.approx(MS / 1.2, abs=1)
    assert sum(v[0] for v in got.values()) == pytest.approx(1.5 * MS, abs=2)


def test_a_module_can_offer_its_own_delays(monkeypatch):
    from latencyscope.analyze import isolation

    def futex(cap, ctx):
        return pl.DataFrame({"module": ["syscall"], "cause": ["futex wait"], "who": ["0x7f00"],
                             "detail": ["engine [100]"], "delay_ns": [3 * MS]})

    monkeypatch.setattr(isolation, "delays", futex, raising=False)
    cap, ctx, rep = analyzed(ENGINE)
    got = rows(cost.delays(cap, ctx, rep))
    assert got[("syscall", "futex wait", "0x7f00")] == (3 * MS, 1)


def test_many_waits_are_split_without_a_loop_per_wait():
    # 20k wakeups, each waiting behind a 30 µs intruder slice: answer is exact
    sw, wk = [], []
    for i in range(20_000):
        t0 = i * 200 * US
        wk.append(wakeup(t0, 100, 1))
        sw += [switch(t0 + 10 * US, 1, 0, 300), switch(t0 + 40 * US, 1, 300, 100), switch(t0 + 60 * US, 1, 100, 0)]
    cap, ctx, rep = analyzed({"sched_switch": sw, "sched_wakeup": wk})
    got = rows(cost.delays(cap, ctx, rep))
    assert got[("isolation", "runqueue wait (wakeup)", "t300 (300)")] == (20_000 * 30 * US, 20_000)
    assert got[("isolation", "runqueue wait (wakeup)", cost.WAKEUP_PATH)] == (20_000 * 10 * US, 20_000)


# --- through the CLI -----------------------------------------------------------------
def run(cmd, *args):
    p = subprocess.run([str(BIN / cmd), *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture
def capfile(tmp_path):
    return write(str(tmp_path / "c.lscope"), ENGINE, filters={"cpus": [1], "pids": [100]})


def test_flamegraph_writes_folded_stacks_weighted_in_micro_units_of_money(capfile, tmp_path):
    out, trace = tmp_path / "alpha.folded", tmp_path / "alpha.pftrace"
    rc, _, err = run("latencyscope-analyze", "flamegraph", capfile, "--notional", "1000000", "--bps-per-us", "0.01",
                     "-o", str(out), "--perfetto", str(trace))
    assert rc == 0, err
    assert out.read_text().splitlines() == [
        "isolation;runqueue wait (preempted);t200 (200);t100 [100] 1000000000",
        "isolation;runqueue wait (wakeup);wakeup path (CPU idle);t100 [100] 500000000",
    ]
    assert trace.stat().st_size > 0
    assert "estimated cost 1,500" in err and "t200 (200)" in err


@pytest.mark.parametrize("args,needle", [
    (["--bps-per-us", "0.01", "-o", "OUT"], "Missing option '--notional'"),
    (["--notional", "1e6", "--bps-per-us", "-1", "-o", "OUT"], "-1"),
    (["--notional", "1e6", "--bps-per-us", "0.01", "-o", "/nonexistent-dir/a.folded"], "does not exist"),
])
def test_flamegraph_bad_flags(capfile, tmp_path, args, needle):
    args = [str(tmp_path / "a.folded") if a == "OUT" else a for a in args]
    rc, _, err = run("latencyscope-analyze", "flamegraph", capfile, *args)
    lines = [x for x in err.splitlines() if x.strip()]
    assert rc == 3 and len(lines) == 1 and needle in lines[0], err


def test_report_states_the_total_cost_and_top_causes_when_given_a_notional(capfile, tmp_path):
    rc, out, err = run("latencyscope-analyze", "report", capfile, "--notional", "1000000", "--bps-per-us", "0.01")
    assert "Alpha cost" in out and "estimated cost of delays: 1,500" in out and "t200 (200)" in out, out
    j = tmp_path / "r.json"
    rc2, _, _ = run("latencyscope-analyze", "report", capfile, "--notional", "1000000", "--bps-per-us", "0.01",
                    "--json", "-o", str(j))
    r = json.loads(j.read_text())
    assert rc == rc2 == r["verdict"]["exit_code"]
    assert r["cost"]["total_cost"] == pytest.approx(1500.0) and r["cost"]["top_causes"][0]["who"] == "t200 (200)"
    # without a notional there is no cost object
    run("latencyscope-analyze", "report", capfile, "--json", "-o", str(j))
    assert "cost" not in json.loads(j.read_text())


def test_notional_and_bps_per_us_go_together(capfile):
    rc, _, err = run("latencyscope-analyze", "report", capfile, "--notional", "1000000")
    assert rc == 3 and "go together" in err
    rc, _, err = run("latencyscope", "--notional", "1000000", "--duration", "1")
    assert rc == 3 and "go together" in err


def test_packets_delivered_to_the_target_add_their_kernel_delivery_time():
    tables = dict(ENGINE)
    tables["netif_receive_skb"] = [{"ts_ns": 1_000, "cpu": 0, "skbaddr": 0xA, "dev": "eth0", "len": 100},
                                   {"ts_ns": 2_000, "cpu": 0, "skbaddr": 0xB, "dev": "eth0", "len": 100},
                                   {"ts_ns": 3_000, "cpu": 0, "skbaddr": 0xC, "dev": "eth0", "len": 100}]
    tables["skb_copy_datagram_iovec"] = [
        {"ts_ns": 31_000, "cpu": 1, "skbaddr": 0xA, "pid": 100, "tgid": 100, "len": 100},
        {"ts_ns": 12_000, "cpu": 1, "skbaddr": 0xB, "pid": 100, "tgid": 100, "len": 100},
        {"ts_ns": 9_000, "cpu": 0, "skbaddr": 0xC, "pid": 400, "tgid": 400, "len": 100}]  # not a target
    cap = capture(tables, modules=["isolation", "network"])
    ctx = report.resolve_context(cap, policy.load(None), cpus=[1], pids=[100])
    got = cost.delays(cap, ctx, report.build(cap, ctx, ["isolation"]))
    net = got.filter(pl.col("module") == "network").to_dicts()
    assert [(r["cause"], r["who"], r["detail"], r["delay_ns"], r["events"]) for r in net] == [
        ("packet delivery", "eth0", "t100 [100]", 30_000 + 10_000, 2)]
