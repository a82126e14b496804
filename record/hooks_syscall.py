"""Recorder hooks of the syscall module: check the architecture, mark the
target processes in the program's bitmap, say what was recorded per-syscall."""
from __future__ import annotations

import ctypes
import platform
from typing import Dict, Iterable

from latencyscope.errors import LatencyScopeError

# bpf/syscall.c reads syscall arguments and numbers from struct pt_regs at the
# x86-64 ptrace offsets and dispatches on x86-64 syscall numbers.
SUPPORTED_MACHINES = ("x86_64",)


def cflags(cfg) -> list:
    machine = platform.machine()
    if machine not in SUPPORTED_MACHINES:
        raise LatencyScopeError(f"the syscall module supports x86-64 only (it reads syscall registers by the "
                                f"x86-64 ABI); this machine is {machine}: record without --modules syscall")
    return []


def tgid_of(pid: int) -> int:
    """The process a --pid belongs to (a thread id names its process, as /proc/TID/task does)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pid


def target_words(pids: Iterable[int]) -> Dict[int, int]:
    """Bitmap words (index -> value) of ls_sys_targets for these processes."""
    words: Dict[int, int] = {}
    for p in pids:
        t = tgid_of(int(p))
        words[t >> 6] = words.get(t >> 6, 0) | (1 << (t & 63))
    return words


def after_load(b, cfg, tracefs) -> None:
    if not cfg.pids:
        return
    table = b.get_table("ls_sys_targets")
    for w, v in target_words(cfg.pids).items():
        table[ctypes.c_int(w)] = ctypes.c_uint64(v)


def manifest(cfg, tracefs) -> dict:
    # Per-syscall records are made only with --pid (bpf/syscall.c); the
    # analyzer tells "no per-syscall table because no target" from this.
    return {
        "syscall_names_extra": {str(k): v for k, v in GENERIC_SYSCALLS.items()},
        "per_syscall": bool(cfg.pids),
        "per_syscall_note": ("every syscall of the target processes (--pid) was recorded" if cfg.pids else
                             "no --pid: futex and sleep calls only (per-syscall latency needs a target)"),
    }


# Syscalls from 424 on have one number on every architecture; BCC's table
# (0.26) stops before many of them.  The analyzer uses these only for numbers
# the recorded table lacks.
GENERIC_SYSCALLS = {
    424: "pidfd_send_signal", 425: "io_uring_setup", 426: "io_uring_enter", 427: "io_uring_register",
    428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick",
    434: "pidfd_open", 435: "clone3", 436: "close_range", 437: "openat2", 438: "pidfd_getfd",
    439: "faccessat2", 440: "process_madvise", 441: "epoll_pwait2", 442: "mount_setattr",
    443: "quotactl_fd", 444: "landlock_create_ruleset", 445: "landlock_add_rule",
    446: "landlock_restrict_self", 447: "memfd_secret", 448: "process_mrelease", 449: "futex_waitv",
    450: "set_mempolicy_home_node", 451: "cachestat", 452: "fchmodat2", 453: "map_shadow_stack",
    454: "futex_wake", 455: "futex_wait", 456: "futex_requeue", 457: "statmount", 458: "listmount",
    459: "lsm_get_self_attr", 460: "lsm_set_self_attr", 461: "lsm_list_modules", 462: "mseal",
    463: "setxattrat", 464: "getxattrat", 465: "listxattrat", 466: "removexattrat", 467: "open_tree_attr",
}
