"""Isolation Verifier events: who runs where, who waits, who moves."""
from latencyscope.schemas.events import CPU, TS, EventKind, Field

_WAKEUP_FIELDS = (
    TS,
    CPU,
    Field("pid", "s32", "tid", "task woken (thread id)"),
    Field("target_cpu", "s32", "cpu", "CPU the task was woken onto (the filter key)"),
    Field("prio", "s32", "prio", "kernel priority of the woken task"),
    Field("waker_pid", "u32", "tid", "thread that ran the wakeup (current)"),
    Field("waker_tgid", "u32", "tgid", "process of the waker"),
)

# Format 3: the records that fire on every context switch carry no task
# names (32 of sched_switch's 72 bytes, a third of its BPF program's cost
# beyond an empty one).  Readers rebuild them per pid and time from the
# names the capture does carry: the task snapshot in the manifest,
# sched_wakeup_new (new tasks), task_rename (exec, prctl PR_SET_NAME,
# pthread_setname_np) and sched_migrate_task.
KINDS = (
    EventKind(
        "sched_switch", "isolation", "sched:sched_switch",
        "A CPU switched from prev to next.",
        (
            TS,
            Field("prev_state", "s64", "flags",
                  "TASK_* state of prev; 0 = runnable, bit 0x100 (TASK_REPORT_MAX) = preempted"),
            CPU,
            Field("prev_pid", "s32", "tid", "thread switched out"),
            Field("prev_tgid", "u32", "tgid", "process of prev (prev is current here)"),
            Field("prev_prio", "s32", "prio", "kernel priority of prev"),
            Field("next_pid", "s32", "tid", "thread switched in"),
            Field("next_prio", "s32", "prio", "kernel priority of next"),
        ),
        ring_pages=4096, staged=True, names=(("prev_comm", "prev_pid"), ("next_comm", "next_pid")),
    ),
    EventKind("sched_wakeup", "isolation", "sched:sched_wakeup",
              "A sleeping task was made runnable.", _WAKEUP_FIELDS, ring_pages=2048, staged=True,
              names=(("comm", "pid"),)),
    EventKind("sched_wakeup_new", "isolation", "sched:sched_wakeup_new",
              "A newly forked task was made runnable for the first time.",
              _WAKEUP_FIELDS + (Field("comm", "comm", "", "name of the woken task"),),
              ring_pages=256, staged=True),
    EventKind(
        "sched_migrate_task", "isolation", "sched:sched_migrate_task",
        "A task was moved from one CPU's runqueue to another's.",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "task migrated"),
            Field("prio", "s32", "prio", "kernel priority"),
            Field("orig_cpu", "s32", "cpu", "CPU it left"),
            Field("dest_cpu", "s32", "cpu", "CPU it was moved to"),
            Field("by_pid", "u32", "tid", "thread running when the migration happened (current)"),
            Field("comm", "comm", "", "name of the task"),
        ),
        ring_pages=256,
    ),
    EventKind(
        "task_rename", "isolation", "task:task_rename",
        "A task's name changed: exec, prctl(PR_SET_NAME), a write to /proc/PID/comm.",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "task renamed"),
            Field("oldcomm", "comm", "", "its name before"),
            Field("comm", "comm", "", "its name from now on"),
        ),
        ring_pages=64,
    ),
)
