"""Recorder hooks of the memory module.

- ``cflags``: the monitored CPUs as a 128-bit bitmap, so ``ipi_send_cpumask``
  tests a whole CPU set against them in one AND.
- ``after_load``: attach ``ls_page_fault_major`` to the software perf event
  PERF_COUNT_SW_PAGE_FAULTS_MAJ (sample period 1) on each CPU.  No
  tracepoint of this kernel tells a major fault from a minor one; the
  kernel raises this perf event in mm_account_fault(), next to
  ``current->maj_flt++``, so it is the task's own majflt counter, event by
  event.  With only a CPU filter it is attached to the monitored CPUs alone.
- ``before_detach``: symbolize the IPI callbacks seen (from /proc/kallsyms
  through BCC), so the analyzer names them without the host.
"""
from __future__ import annotations

import os
from typing import Dict, List

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_PAGE_FAULTS_MAJ = 6
MASK_CPUS = 128


def cflags(cfg) -> List[str]:
    if cfg.cpus is None:
        return []
    words = [0, 0]
    for c in cfg.cpus:
        if c < MASK_CPUS:
            words[c // 64] |= 1 << (c % 64)
    return [f"-DLS_MON_MASK0={words[0]:#x}ULL", f"-DLS_MON_MASK1={words[1]:#x}ULL"]


def _cpus(cfg) -> List[int]:
    from latencyscope.record.host import online_cpus

    online = online_cpus()
    if cfg.cpus is not None and not cfg.pids:
        return [c for c in online if c in set(cfg.cpus)]
    return online


def after_load(b, cfg, tracefs) -> None:
    for cpu in _cpus(cfg):
        b.attach_perf_event(ev_type=PERF_TYPE_SOFTWARE, ev_config=PERF_COUNT_SW_PAGE_FAULTS_MAJ,
                            fn_name="ls_page_fault_major", sample_period=1, cpu=cpu)


def manifest(cfg, tracefs) -> Dict[str, object]:
    return {
        "major_faults": {"method": "perf_event", "type": "PERF_TYPE_SOFTWARE",
                         "config": "PERF_COUNT_SW_PAGE_FAULTS_MAJ", "sample_period": 1,
                         "cpus": _cpus(cfg)},
        "ipi_mask_cpus": MASK_CPUS,
    }


def before_detach(b, cfg) -> Dict[str, object]:
    names: Dict[str, str] = {}
    try:
        table = b.get_table("ls_ipi_funcs")
        for k in table.keys():
            addr = int(k.value)
            if addr == 0:
                continue
            sym = b.ksym(addr, show_offset=False)
            names[f"{addr:#x}"] = sym.decode() if isinstance(sym, bytes) else str(sym)
    except Exception:  # symbols are a convenience; never fail a capture for them
        pass
    return {"ipi_callbacks": names}
