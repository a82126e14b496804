"""IRQ Storm Detector on hand-built entry/exit sequences whose answers are known exactly."""
import polars as pl
import pytest

from latencyscope.analyze import irq, policy, report
from synth import MS, US, capture, switch, wakeup

DISK, NIC = 36, 41
TARGET = 100


def hentry(ts, cpu, n, pid=0, name=None):
    return {"ts_ns": ts, "cpu": cpu, "irq": n, "pid": pid, "tgid": pid, "name": name or f"dev{n}"}


def hexit(ts, cpu, n):
    return {"ts_ns": ts, "cpu": cpu, "irq": n, "ret": 1}


def sentry(ts, cpu, vec, pid=0):
    return {"ts_ns": ts, "cpu": cpu, "vec": vec, "pid": pid, "tgid": pid}


def sexit(ts, cpu, vec, pid=0):
    return {"ts_ns": ts, "cpu": cpu, "vec": vec, "pid": pid, "tgid": pid}


def analyze(cap, cpus=None, pids=(), pol=None):
    ctx = report.resolve_context(cap, pol or policy.default_values(), cpus=cpus, pids=pids)
    return report.build(cap, ctx, modules=["isolation", "irq"])


def runs(entries, exits):
    cap = capture({"irq_handler_entry": entries, "irq_handler_exit": exits, "softirq_entry": [],
                   "softirq_exit": []})
    r, trunc = irq.hardirq_runs(cap)
    return sorted((x["cpu"], x["id"], x["start_ns"], x["duration_ns"]) for x in r.iter_rows(named=True)), trunc


def test_nested_handlers_pair_with_their_own_exit():
    got, trunc = runs([hentry(100, 0, DISK), hentry(200, 0, NIC)], [hexit(250, 0, NIC), hexit(400, 0, DISK)])
    assert got == [(0, DISK, 100, 300), (0, NIC, 200, 50)]
    assert trunc == {"entries_without_exit": 0, "exits_without_entry": 0}


def test_capture_cut_mid_handler_at_both_ends_invents_nothing():
    # CPU 1 starts inside a DISK handler (exit without entry) and ends inside another.
    got, trunc = runs([hentry(100, 1, DISK), hentry(900, 1, DISK)], [hexit(50, 1, DISK), hexit(150, 1, DISK)])
    assert got == [(1, DISK, 100, 50)]
    assert trunc == {"entries_without_exit": 1, "exits_without_entry": 1}


def test_a_lost_exit_never_yields_a_negative_or_stretched_duration():
    # DISK's exit was lost; NIC nests above it and still pairs; DISK pairs with nothing.
    got, trunc = runs([hentry(100, 0, DISK), hentry(200, 0, NIC), hentry(500, 0, NIC)],
                      [hexit(300, 0, NIC), hexit(520, 0, NIC)])
    assert got == [(0, NIC, 200, 100), (0, NIC, 500, 20)]
    assert all(d >= 0 for *_, d in got)
    assert trunc["entries_without_exit"] == 1


def test_same_irq_on_two_cpus_pairs_per_cpu():
    got, _ = runs([hentry(100, 0, DISK), hentry(110, 1, DISK)], [hexit(130, 1, DISK), hexit(200, 0, DISK)])
    assert got == [(0, DISK, 100, 100), (1, DISK, 110, 20)]


def scenario():
    """CPU 1 runs the target (pid 100); a disk IRQ lands on it, and NET_RX with a nested NIC IRQ."""
    ent = [hentry(1 * MS, 1, DISK, TARGET, "virtio1-req.0"), hentry(2 * MS, 1, DISK, TARGET, "virtio1-req.0"),
           hentry(5 * MS + 200 * US, 1, NIC, TARGET, "virtio3-rx"), hentry(7 * MS, 0, NIC, 0, "virtio3-rx")]
    ext = [hexit(1 * MS + 10 * US, 1, DISK), hexit(2 * MS + 30 * US, 1, DISK),
           hexit(5 * MS + 300 * US, 1, NIC), hexit(7 * MS + 5 * US, 0, NIC)]
    sen = [sentry(5 * MS, 1, 3, TARGET), sentry(8 * MS, 0, 1, 0)]
    sex = [sexit(5 * MS + 800 * US, 1, 3, TARGET), sexit(8 * MS + 20 * US, 0, 1, 0)]
    irqs = [{"irq": DISK, "name": "virtio1-req.0", "smp_affinity_list": "0-3", "effective_affinity_list": "1"},
            {"irq": NIC, "name": "virtio3-rx", "smp_affinity_list": "0-3", "effective_affinity_list": "0"}]
    cap = capture({"irq_handler_entry": ent, "irq_handler_exit": ext, "softirq_entry": sen, "softirq_exit": sex},
                  cpus=4)
    cap.manifest["host"]["irqs"] = irqs
    cap.manifest["host"]["cpus_online"] = [0, 1, 2, 3]
    return cap


def test_per_irq_and_per_vector_figures():
    d = analyze(scenario(), cpus=[1, 2])["irq"]
    disk = [r for r in d["hardirq"] if r["irq"] == DISK]
    assert disk == [{"irq": DISK, "name": "virtio1-req.0", "cpu": 1, "count": 2, "total_ns": 40 * US,
                     "p50_ns": 10 * US, "p99_ns": 30 * US, "max_ns": 30 * US}]
    net_rx = [r for r in d["softirq"] if r["name"] == "NET_RX"]
    assert net_rx == [{"vec": 3, "name": "NET_RX", "cpu": 1, "count": 1, "total_ns": 800 * US,
                       "p50_ns": 800 * US, "p99_ns": 800 * US, "max_ns": 800 * US}]


def test_irqs_on_monitored_cpus_come_with_a_ready_to_paste_command():
    d = analyze(scenario(), cpus=[1, 2])["irq"]
    assert {(r["irq"], r["cpu"], r["count"]) for r in d["on_monitored_cpus"]} == {(DISK, 1, 2), (NIC, 1, 1)}
    assert d["irqs_on_monitored"] == 3
    rec = {r["irq"]: r for r in d["recommendations"]}
    # affinity 0-3 minus monitored {1, 2} = {0, 3} = 0x9
    assert rec[DISK]["command"] == "echo 9 > /proc/irq/36/smp_affinity"
    assert rec[DISK]["name"] == "virtio1-req.0"
    assert d["status"] == "WARN"


def test_affinity_mask_format_matches_the_kernel():
    assert irq.cpu_mask([0], 2) == "1"
    assert irq.cpu_mask([0, 3], 4) == "9"
    assert irq.cpu_mask([0, 33], 64) == "2,00000001"
    assert irq.cpu_mask([40], 48) == "100,00000000"


def test_softirq_and_irq_time_stolen_from_the_target_is_counted_once():
    d = analyze(scenario(), cpus=[1], pids=[TARGET])["irq"]
    # hard: 10 + 30 + 100 µs; NET_RX 800 µs minus the 100 µs NIC IRQ nested in it
    assert d["stolen_from_targets_ns"] == 140 * US + 700 * US
    by = {r["name"]: r["stolen_ns"] for r in d["stolen_by"]}
    assert by["NET_RX"] == 700 * US
    assert by["irq 36 virtio1-req.0"] == 40 * US


def test_an_irq_storm_is_detected():
    ent = [hentry(i * 30 * US, 0, NIC) for i in range(3000)]   # 33k/s for 90 ms
    ext = [hexit(i * 30 * US + 1 * US, 0, NIC) for i in range(3000)]
    d = analyze(capture({"irq_handler_entry": ent, "irq_handler_exit": ext, "softirq_entry": [],
                         "softirq_exit": []}))["irq"]
    assert d["storms"] and d["storms"][0]["irq"] == NIC and d["storms"][0]["peak_rate_per_s"] > 20_000
    assert any(c["name"] == "irq_storms" and c["status"] == "WARN" for c in d["checks"])


def test_worst_isolation_delay_names_the_irq_that_held_the_cpu():
    sw = [switch(0, 1, 0, 300), switch(900 * US, 1, 300, 0), switch(2 * MS, 1, 0, 200)]
    wk = [wakeup(1 * MS, 200, 1)]
    ent = [hentry(1100 * US, 1, DISK, 0, "virtio1-req.0")]
    ext = [hexit(1900 * US, 1, DISK)]
    cap = capture({"sched_switch": sw, "sched_wakeup": wk, "irq_handler_entry": ent, "irq_handler_exit": ext,
                   "softirq_entry": [], "softirq_exit": []})
    worst = analyze(cap, cpus=[1], pids=[200])["isolation"]["worst"]
    assert worst[0]["latency_ns"] == 1 * MS
    assert "irq 36 virtio1-req.0 hardirq 800.0 µs" in worst[0]["cause"]


def test_a_capture_without_irq_tables_says_module_not_recorded():
    cap = capture({"sched_switch": [switch(0, 0, 0, 1)]})
    d = analyze(cap)["irq"]
    assert d["status"] == "NOT_RECORDED"
    assert "module not recorded" in d["message"] and "--modules irq" in d["message"]
