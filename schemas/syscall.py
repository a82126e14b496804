"""Lock & Syscall Contention events: futex waits and wakes, sleeps, and every
syscall of the target processes.

Enter and exit are separate records (the analyzer pairs them per thread), so
a call still in progress when the capture ends is seen as such, not lost.

All six kinds come from two raw tracepoint programs on raw_syscalls:sys_enter
and raw_syscalls:sys_exit that dispatch on the syscall number (bpf/syscall.c):
no per-syscall tracepoint is enabled.  A futex or sleep exit is recorded
exactly when its enter was.
"""
from latencyscope.schemas.events import CPU, TS, EventKind, Field

PID = Field("pid", "s32", "tid", "thread making the call (current)")
TGID = Field("tgid", "u32", "tgid", "process of the thread")

_EXIT_FIELDS = (
    TS,
    CPU,
    PID,
    TGID,
    Field("nr", "s32", "syscall", "syscall number (orig_ax; see the manifest's syscall table)"),
    Field("ret", "s64", "", "return value (negative: -errno)"),
)

KINDS = (
    EventKind(
        "futex_enter", "syscall", "raw_syscalls:sys_enter",
        "A thread entered futex(2): a lock or condition wait, or a wake (raw sys_enter, futex number).",
        (
            TS,
            CPU,
            PID,
            TGID,
            Field("op", "s32", "flags", "futex op (cmd in the low 7 bits; 128 = PRIVATE, 256 = CLOCK_REALTIME)"),
            Field("uaddr", "u64", "address", "user address of the futex word (per process unless shared)"),
            Field("val", "u32", "", "val argument (expected value for waits, count for wakes)"),
            Field("has_timeout", "u32", "bool", "1 when a timeout pointer was passed"),
        ),
        ring_pages=1024,
    ),
    EventKind("futex_exit", "syscall", "raw_syscalls:sys_exit",
              "futex(2) returned (for a wait: the thread stopped waiting); recorded when its enter was.",
              _EXIT_FIELDS, ring_pages=1024),
    EventKind(
        "sleep_enter", "syscall", "raw_syscalls:sys_enter",
        "A thread entered nanosleep(2) or clock_nanosleep(2) (both feed this table; raw sys_enter).",
        (
            TS,
            CPU,
            PID,
            TGID,
            Field("nr", "s32", "syscall", "syscall number: nanosleep or clock_nanosleep"),
            Field("clockid", "s32", "clockid", "clock (nanosleep: CLOCK_MONOTONIC = 1)"),
            Field("flags", "s32", "flags", "1 = TIMER_ABSTIME: requested_ns is an absolute time on clockid"),
            Field("requested_ns", "s64", "ns", "requested duration (or absolute deadline); -1 if unreadable"),
            Field("comm", "comm", "", "name of the thread"),
        ),
        ring_pages=128,
    ),
    EventKind("sleep_exit", "syscall", "raw_syscalls:sys_exit",
              "nanosleep(2) or clock_nanosleep(2) returned; recorded when its enter was.",
              _EXIT_FIELDS, ring_pages=128),
    EventKind(
        "syscall_enter", "syscall", "raw_syscalls:sys_enter",
        "A thread of a target process (--pid) entered any syscall (recorded only with --pid).",
        (TS, CPU, PID, TGID, Field("nr", "s32", "syscall", "syscall number")),
        ring_pages=1024,
    ),
    EventKind("syscall_exit", "syscall", "raw_syscalls:sys_exit",
              "A syscall of a target process returned (recorded only with --pid).", _EXIT_FIELDS,
              ring_pages=1024),
)
