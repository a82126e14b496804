"""Memory Stall Profiler on hand-built fault, TLB, IPI and NUMA tables."""
import pytest

from latencyscope.analyze import memory, policy, report
from synth import MS, US, capture, switch

TARGET, OTHER = 100, 200


def fault(ts, pid, cpu=1, tgid=None, comm=None, address=0x7f0000000000):
    return {"ts_ns": ts, "cpu": cpu, "pid": pid, "tgid": pid if tgid is None else tgid,
            "comm": comm or f"t{pid}", "address": address, "ip": 0x400000, "error_code": 6}


def major(ts, pid, cpu=1, tgid=None):
    return {"ts_ns": ts, "cpu": cpu, "pid": pid, "tgid": pid if tgid is None else tgid, "comm": f"t{pid}",
            "sample_period": 1, "address": 0x7f0000000000, "ip": 0x400000}


def scenario(majors=True):
    user = [fault(i * MS, TARGET) for i in range(6)] + [fault(250 * MS + i * MS, OTHER, cpu=0) for i in range(3)]
    user += [fault(7 * MS, TARGET + 1, tgid=TARGET, comm="worker")]       # a second thread of the target
    kern = [fault(8 * MS, TARGET)]                                        # copy_to_user into fresh memory
    maj = [major(2 * MS, TARGET), major(5 * MS, TARGET)] if majors else []
    tables = {"page_fault_user": user, "page_fault_kernel": kern, "page_fault_major": maj,
              "tlb_flush": [{"ts_ns": 3 * MS, "cpu": 1, "reason": 1, "pid": TARGET, "tgid": TARGET, "pages": 1},
                            {"ts_ns": 4 * MS, "cpu": 0, "reason": 1, "pid": OTHER, "tgid": OTHER, "pages": 1},
                            {"ts_ns": 4 * MS, "cpu": 0, "reason": 4, "pid": OTHER, "tgid": OTHER, "pages": 1}],
              "ipi_send_cpu": [{"ts_ns": 4 * MS, "cpu": 0, "target_cpu": 1, "pid": OTHER, "tgid": OTHER,
                                "callback": 0, "comm": "t200"},
                               {"ts_ns": 4 * MS, "cpu": 1, "target_cpu": 0, "pid": TARGET, "tgid": TARGET,
                                "callback": 0, "comm": "t100"}],
              "ipi_send_cpumask": [{"ts_ns": 4 * MS, "cpu": 0, "pid": OTHER, "tgid": OTHER, "mask_words": 1,
                                    "callback": 0xffffffff81000000, "cpumask0": 0b11, "comm": "t200"}],
              "sched_move_numa": [{"ts_ns": 9 * MS, "cpu": 1, "pid": TARGET, "tgid": TARGET, "src_nid": 0,
                                   "dst_nid": 1}],
              "mm_migrate_pages": [{"ts_ns": 9 * MS, "cpu": 1, "pid": TARGET, "tgid": TARGET, "reason": 5,
                                    "succeeded": 12}]}
    cap = capture(tables, window=(0, 300 * MS))
    cap.manifest["module_facts"] = {"memory": {"ipi_callbacks": {"0xffffffff81000000": "flush_tlb_func"}}}
    return cap


def analyze(cap, cpus=None, pids=()):
    ctx = report.resolve_context(cap, policy.default_values(), cpus=cpus, pids=pids)
    return report.build(cap, ctx, modules=["memory"])


def test_minor_and_major_faults_per_process():
    d = analyze(scenario(), cpus=[1], pids=[TARGET])["memory"]
    mine = [r for r in d["by_pid"] if r["pid"] == TARGET][0]
    # 6 + 1 (other thread) user faults + 1 kernel-mode fault; 2 of them were major
    assert (mine["minor_faults"], mine["major_faults"], mine["threads"]) == (6, 2, 2)
    assert mine["comm"] == "t100" and mine["target"] is True
    assert (d["minor_faults"], d["major_faults"]) == (9, 2)
    assert (d["scope_minor_faults"], d["scope_major_faults"]) == (6, 2)


def test_any_major_fault_in_a_target_fails():
    rep = analyze(scenario(), cpus=[1], pids=[TARGET])
    assert rep["memory"]["status"] == "FAIL"
    assert rep["verdict"]["exit_code"] == 2
    assert any("2 major page faults in targets" in v for v in rep["verdict"]["violations"])


def test_no_major_fault_passes_that_check():
    d = analyze(scenario(majors=False), cpus=[1], pids=[TARGET])["memory"]
    assert [c["status"] for c in d["checks"] if c["name"] == "major_faults"] == ["PASS"]


def test_major_faults_without_a_scope_only_warn():
    d = analyze(scenario())["memory"]
    assert [c["status"] for c in d["checks"] if c["name"] == "major_faults"] == ["WARN"]


def test_a_minor_fault_rate_is_judged_in_a_scope_and_only_said_system_wide():
    pol = policy.default_values()
    pol["memory"]["max_minor_faults_per_s"] = 10.0     # the scenario: 6 faults of targets, 9 in all, in 0.3 s
    def rate(**scope):
        ctx = report.resolve_context(scenario(), pol, **scope)
        return [c for c in report.build(scenario(), ctx, modules=["memory"])["memory"]["checks"]
                if c["name"] == "minor_fault_rate"][0]
    scoped = rate(pids=[TARGET])
    assert scoped["status"] == "WARN" and "in targets (limit 10)" in scoped["message"]
    wide = rate()
    assert wide["status"] == "PASS" and wide["message"].startswith("system-wide: 30 minor faults/s (name --pid")


def test_timeline_buckets_and_worst_burst():
    d = analyze(scenario(), pids=[TARGET])["memory"]
    assert d["timeline_bucket_ns"] == 100 * MS
    assert d["timeline"] == [{"t_ns": 0, "minor": 6, "major": 2},
                             {"t_ns": 100 * MS, "minor": 0, "major": 0},
                             {"t_ns": 200 * MS, "minor": 0, "major": 0}]
    assert d["bursts"][0]["t_ns"] == 0 and d["bursts"][0]["top_pid"] == TARGET


def test_tlb_shootdowns_and_ipis_that_hit_monitored_cpus():
    d = analyze(scenario(), cpus=[1], pids=[TARGET])["memory"]
    assert d["tlb_shootdowns"] == 1            # reason 1 on CPU 1; CPU 0's is not monitored
    assert d["ipis_to_monitored"] == 2         # the single-CPU IPI to 1, and the mask {0, 1}
    cbs = {r["callback"] for r in d["ipis_by_callback"]}
    assert cbs == {"reschedule", "flush_tlb_func"}


def test_numa_migrations_of_targets_warn():
    d = analyze(scenario(), cpus=[1], pids=[TARGET])["memory"]
    assert d["numa_migrations"] == 1 and d["target_numa_migrations"] == 1
    assert d["pages_migrated_numa"] == 12
    assert [c["status"] for c in d["checks"] if c["name"] == "numa_migrations"] == ["WARN"]


def test_more_majors_than_fault_rows_never_gives_negative_minors():
    cap = capture({"page_fault_user": [fault(1 * MS, TARGET)],
                   "page_fault_major": [major(1 * MS, TARGET), major(2 * MS, TARGET)]})
    d = analyze(cap, pids=[TARGET])["memory"]
    assert d["by_pid"][0]["minor_faults"] == 0 and d["by_pid"][0]["major_faults"] == 2


def test_a_capture_without_memory_tables_says_module_not_recorded():
    d = analyze(capture({"sched_switch": [switch(0, 0, 0, 1)]}))["memory"]
    assert d["status"] == "NOT_RECORDED"
    assert "module not recorded" in d["message"] and "--modules memory" in d["message"]
