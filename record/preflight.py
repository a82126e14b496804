"""Preflight: everything a capture needs, checked before anything is loaded.

``latencyscope-record --check`` prints each finding; a capture runs the same
checks and refuses to start on the first problem (exit code 3).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, List, Optional

from latencyscope.errors import LatencyScopeError
from latencyscope.record import environment as env
from latencyscope.schemas import EVENT_KINDS


@dataclass
class Finding:
    name: str
    ok: bool
    detail: str


@dataclass
class Preflight:
    findings: List[Finding] = field(default_factory=list)
    tracefs: Optional[str] = None
    headers: Optional[env.Headers] = None
    bcc: object = None

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def first_problem(self) -> Optional[Finding]:
        return next((f for f in self.findings if not f.ok), None)


def run(modules: Iterable[str], mount: bool = True) -> Preflight:
    pf = Preflight()
    add = pf.findings.append

    if env.has_tracing_privileges():
        add(Finding("privileges", True, "root" if os.geteuid() == 0 else "CAP_BPF + CAP_PERFMON"))
    else:
        add(Finding("privileges", False,
                    "missing CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN); run as root with full capabilities "
                    "(sudo), or grant "
                    "`setcap cap_bpf,cap_perfmon,cap_sys_resource+ep` to the interpreter"))

    try:
        pf.bcc = env.import_bcc()
        add(Finding("bcc", True, os.path.dirname(pf.bcc.__file__)))
    except LatencyScopeError as e:
        add(Finding("bcc", False, e.message))

    try:
        pf.tracefs = env.tracefs_path(mount=mount)
        env.debugfs_tracing(mount=mount)
        add(Finding("tracefs", True, pf.tracefs))
    except LatencyScopeError as e:
        add(Finding("tracefs", False, e.message))

    if os.path.isfile("/sys/kernel/btf/vmlinux"):
        add(Finding("btf", True, "/sys/kernel/btf/vmlinux"))
    else:
        add(Finding("btf", False, "no /sys/kernel/btf/vmlinux: the kernel was built without "
                    "CONFIG_DEBUG_INFO_BTF; use a distro kernel with BTF"))

    if pf.tracefs:
        wanted = [k.tracepoint for k in EVENT_KINDS if k.module in set(modules)]
        missing = [tp for tp in wanted if tp.split(":")[0] != "perf"
                   and not env.tracepoint_exists(pf.tracefs, tp)]
        if missing:
            add(Finding("tracepoints", False, "missing tracepoint(s) " + ", ".join(missing)
                        + f" under {pf.tracefs}/events; this kernel cannot record those modules"))
        else:
            add(Finding("tracepoints", True, f"{len(wanted)} present"))

    try:
        pf.headers = env.resolve_headers()
        add(Finding("headers", True, pf.headers.source
                    + ("" if pf.headers.exact else " (fallback: not the running kernel's)")))
    except LatencyScopeError as e:
        add(Finding("headers", False, e.message))
    return pf
