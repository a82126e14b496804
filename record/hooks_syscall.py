"""Recorder hooks of the syscall module: say what was recorded per-syscall."""
from __future__ import annotations


def manifest(cfg, tracefs) -> dict:
    # raw_syscalls programs are compiled only with --pid (bpf/syscall.c); the
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
