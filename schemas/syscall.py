"""Lock & Syscall Contention events: futex waits and wakes, sleeps, and every
syscall of the target processes.

Enter and exit are separate records (the analyzer pairs them per thread), so
a call still in progress when the capture ends is seen as such, not lost.
"""
from latencyscope.schemas.events import CPU, TS, EventKind, Field

PID = Field("pid", "s32", "tid", "thread making the call (current)")
TGID = Field("tgid", "u32", "tgid", "process of the thread")

_EXIT_FIELDS = (
    TS,
    CPU,
    PID,
    TGID,
    Field("nr", "s32", "syscall", "syscall number (see the manifest's syscall table)"),
    Field("ret", "s64", "", "return value (negative: -errno)"),
)

KINDS = (
    EventKind(
        "futex_enter", "syscall", "syscalls:sys_enter_futex",
        "A thread entered futex(2): a lock or condition wait, or a wake.",
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
    EventKind("futex_exit", "syscall", "syscalls:sys_exit_futex",
              "futex(2) returned (for a wait: the thread stopped waiting).", _EXIT_FIELDS, ring_pages=1024),
    EventKind(
        "sleep_enter", "syscall", "syscalls:sys_enter_clock_nanosleep",
        "A thread entered nanosleep(2) or clock_nanosleep(2) (both feed this table).",
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
    EventKind("sleep_exit", "syscall", "syscalls:sys_exit_clock_nanosleep",
              "nanosleep(2) or clock_nanosleep(2) returned.", _EXIT_FIELDS, ring_pages=128),
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
