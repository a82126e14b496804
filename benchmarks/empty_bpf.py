#!/usr/bin/env python3
"""Attach an empty BPF program to tracepoints and hold them until SIGINT/SIGTERM.

The reference point of the in-kernel cost benchmark: the kernel's
``bpf_stats`` (run_time_ns / run_cnt) of a program that does nothing, on the
same tracepoint and in the same run as LatencyScope's programs.  Also used as
an observer-effect row ("the floor any BPF tracer pays").

Runs under the distro Python (BCC's binding lives in dist-packages), e.g.
``/usr/bin/python3 benchmarks/empty_bpf.py sched:sched_switch sched:sched_wakeup``.
Prints one line ``ready NAME=TRACEPOINT ...`` once everything is attached.
Program names are ``empty__CATEGORY__EVENT`` (bpftool shows the full name).
``raw_tp:NAME`` (e.g. ``raw_tp:sys_enter``) attaches a raw tracepoint program
instead, named ``empty__raw_tp__NAME``: the floor of raw tracepoint programs.
``tp_btf:NAME`` (e.g. ``tp_btf:sched_switch``) attaches a tp_btf program the
way the recorder attaches its scheduler hooks (record/btf.py), named
``e_btf_SHORT`` (the kernel keeps 15 characters; SHORT from btf.SHORT_NAMES);
it needs the project importable (run it with the project's venv Python).
``--clock`` (first argument): each program reads the clock once
(``bpf_ktime_get_ns()``, what every recorded event pays for its
timestamp) and does nothing else; names start ``clock__`` / ``k_btf_``.
"""
from __future__ import annotations

import signal
import sys


def program_name(tracepoint: str, clock: bool = False) -> str:
    cat, ev = tracepoint.split(":")
    if cat == "tp_btf":
        from latencyscope.record.btf import SHORT_NAMES

        return ("k" if clock else "e") + "_btf_" + SHORT_NAMES[ev]
    return f"{'clock' if clock else 'empty'}__{cat}__{ev}"


def source(tracepoints, clock: bool = False) -> str:
    body = "return bpf_ktime_get_ns() == 0;" if clock else "return 0;"
    return "\n".join(f"int {program_name(tp, clock)}(void *ctx) {{ {body} }}" for tp in tracepoints)


def main(argv) -> int:
    clock = bool(argv) and argv[0] == "--clock"
    tracepoints = argv[1:] if clock else argv
    tracepoints = tracepoints or ["sched:sched_switch"]
    sys.path.append("/usr/lib/python3/dist-packages")
    from bcc import BPF  # the distro binding

    b = BPF(text=source(tracepoints, clock))
    links = kbtf = None
    for tp in tracepoints:
        if tp.startswith("tp_btf:"):
            from latencyscope.record.btf import KernelBtf, TpBtfLinks

            links, kbtf = links or TpBtfLinks(), kbtf or KernelBtf()
            links.attach(b, kbtf, program_name(tp, clock), tp.split(":", 1)[1], tp, program_name(tp, clock))
        elif tp.startswith("raw_tp:"):
            b.attach_raw_tracepoint(tp=tp.split(":", 1)[1], fn_name=program_name(tp, clock))
        else:
            b.attach_tracepoint(tp=tp, fn_name=program_name(tp, clock))
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    if kbtf is not None:
        kbtf.close()
    print("ready " + " ".join(f"{program_name(tp, clock)}={tp}" for tp in tracepoints), flush=True)
    while not stop:
        signal.pause()
    if links is not None:
        links.close()
    b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
