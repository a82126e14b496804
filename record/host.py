"""Host facts for the manifest: topology, isolation settings, IRQ table, tasks.

The analyzer runs elsewhere, later; everything it needs to interpret a
capture about the machine is read here, once, from /proc and /sys.
"""
from __future__ import annotations

import glob
import os
import re
import socket
import time
from pathlib import Path
from typing import Dict, List, Optional

PF_KTHREAD = 0x00200000


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def parse_cpulist(text: str) -> List[int]:
    """'0-3,8,10-11' -> [0,1,2,3,8,10,11]; '' -> []."""
    out: List[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            hi, _, stride = hi.partition(":")
            out.extend(range(int(lo), int(hi) + 1, int(stride) if stride else 1))
        else:
            out.append(int(part))
    return sorted(set(out))


def online_cpus() -> List[int]:
    """CPUs online now (all of os.cpu_count() when sysfs cannot say)."""
    try:
        return parse_cpulist(Path("/sys/devices/system/cpu/online").read_text())
    except (OSError, ValueError):
        return list(range(os.cpu_count() or 1))


def nohz_full_cpus() -> List[int]:
    """CPUs the kernel runs without a periodic tick (nohz_full=), [] when none."""
    text = _read("/sys/devices/system/cpu/nohz_full")
    try:
        return parse_cpulist(text) if text and text != "(null)" else []
    except ValueError:
        return []


def mem_available() -> Optional[int]:
    """MemAvailable from /proc/meminfo in bytes, None when unknown."""
    m = re.search(r"^MemAvailable:\s+(\d+) kB", _read("/proc/meminfo"), re.M)
    return int(m.group(1)) * 1024 if m else None


def possible_cpus() -> int:
    """How many CPU ids the kernel can ever use."""
    try:
        return max(parse_cpulist(Path("/sys/devices/system/cpu/possible").read_text())) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


def format_cpulist(cpus) -> str:
    cpus = sorted(set(cpus))
    parts, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        parts.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(parts)


def clock_offsets() -> Dict[str, int]:
    """CLOCK_REALTIME - CLOCK_MONOTONIC in ns, read tightly (best of 5)."""
    best = None
    for _ in range(5):
        m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        r = time.clock_gettime_ns(time.CLOCK_REALTIME)
        m1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, r - (m0 + m1) // 2, (m0 + m1) // 2)
    return {"monotonic_ns": best[2], "realtime_minus_monotonic_ns": best[1], "uncertainty_ns": best[0]}


def cmdline_isolation(cmdline: str) -> Dict[str, Optional[str]]:
    out = {}
    for key in ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity", "nohz", "rcu_nocb_poll", "skew_tick"):
        m = re.search(r"(?:^|\s)%s(?:=(\S*))?(?=\s|$)" % key, cmdline)
        out[key] = (m.group(1) or "") if m else None
    return out


def cpu_topology() -> List[dict]:
    cpus = []
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*"), key=lambda p: int(p.rsplit("cpu", 1)[1])):
        n = int(d.rsplit("cpu", 1)[1])
        cpus.append({
            "cpu": n,
            "online": _read(d + "/online", "1") == "1",
            "core_id": int(_read(d + "/topology/core_id", "-1")),
            "package_id": int(_read(d + "/topology/physical_package_id", "-1")),
            "thread_siblings": _read(d + "/topology/thread_siblings_list"),
        })
    return cpus


def numa_nodes() -> Dict[str, List[int]]:
    return {os.path.basename(d)[4:]: parse_cpulist(_read(d + "/cpulist"))
            for d in sorted(glob.glob("/sys/devices/system/node/node[0-9]*"))}


def irq_table() -> List[dict]:
    """Every numbered IRQ: name (device), affinity and effective affinity."""
    out = []
    lines = _read("/proc/interrupts").splitlines()
    if not lines:
        return out
    ncpu = len(lines[0].split())
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        head = head.strip()
        if not head.isdigit():
            continue
        parts = rest.split()
        counts = [int(x) for x in parts[:ncpu] if x.isdigit()]
        desc = parts[len(counts):]
        name = " ".join(desc[2:]) if len(desc) > 2 else " ".join(desc)
        irq = int(head)
        out.append({
            "irq": irq,
            "name": name,
            "chip": " ".join(desc[:2]),
            "count_per_cpu": counts,
            "smp_affinity_list": _read(f"/proc/irq/{irq}/smp_affinity_list"),
            "effective_affinity_list": _read(f"/proc/irq/{irq}/effective_affinity_list"),
        })
    return out


def task_snapshot() -> List[dict]:
    """(tid, tgid, comm, kthread) for every thread alive at the start."""
    out = []
    for tdir in glob.glob("/proc/[0-9]*/task/[0-9]*"):
        stat = _read(tdir + "/stat")
        if not stat:
            continue
        try:
            r = stat.rindex(")")
            comm = stat[stat.index("(") + 1:r]
            fields = stat[r + 2:].split()
            flags = int(fields[6])
        except (ValueError, IndexError):
            continue
        parts = tdir.split("/")
        out.append({"tid": int(parts[4]), "tgid": int(parts[2]), "comm": comm,
                    "kthread": bool(flags & PF_KTHREAD)})
    return out


def host_facts() -> dict:
    uname = os.uname()
    cmdline = _read("/proc/cmdline")
    return {
        "hostname": socket.gethostname(),
        "kernel_release": uname.release,
        "kernel_version": uname.version,
        "machine": uname.machine,
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "cpu_count": os.cpu_count(),
        "cpus_online": online_cpus(),
        "topology": cpu_topology(),
        "isolated_cpus": parse_cpulist(_read("/sys/devices/system/cpu/isolated")),
        "nohz_full_cpus": nohz_full_cpus(),
        "numa_nodes": numa_nodes(),
        "kernel_cmdline": cmdline,
        "cmdline_isolation": cmdline_isolation(cmdline),
        "irqs": irq_table(),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "clock_ticks": os.sysconf("SC_CLK_TCK"),
    }
