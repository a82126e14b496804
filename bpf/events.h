/* Generated from schemas/events.py by `python -m latencyscope.schemas.codegen`. Do not edit. */
#ifndef LATENCYSCOPE_EVENTS_H
#define LATENCYSCOPE_EVENTS_H

#define LS_NKINDS 4
#define LS_KIND_SCHED_SWITCH 0
#define LS_KIND_SCHED_WAKEUP 1
#define LS_KIND_SCHED_WAKEUP_NEW 2
#define LS_KIND_SCHED_MIGRATE_TASK 3

/* sched:sched_switch: A CPU switched from prev to next. */
struct ls_sched_switch {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __s64 prev_state;        /* TASK_* state of prev; 0 = runnable, bit 0x100 (TASK_REPORT_MAX) = preempted [flags] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 prev_pid;          /* thread switched out [tid] */
    __u32 prev_tgid;         /* process of prev (prev is current here) [tgid] */
    __s32 prev_prio;         /* kernel priority of prev [prio] */
    __s32 next_pid;          /* thread switched in [tid] */
    __s32 next_prio;         /* kernel priority of next [prio] */
    char prev_comm[16];      /* name of prev */
    char next_comm[16];      /* name of next */
};
_Static_assert(sizeof(struct ls_sched_switch) == 72, "sched_switch size");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, ts_ns) == 0, "sched_switch.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_state) == 8, "sched_switch.prev_state");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, cpu) == 16, "sched_switch.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_pid) == 20, "sched_switch.prev_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_tgid) == 24, "sched_switch.prev_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_prio) == 28, "sched_switch.prev_prio");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, next_pid) == 32, "sched_switch.next_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, next_prio) == 36, "sched_switch.next_prio");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_comm) == 40, "sched_switch.prev_comm");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, next_comm) == 56, "sched_switch.next_comm");

/* sched:sched_wakeup: A sleeping task was made runnable. */
struct ls_sched_wakeup {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task woken (thread id) [tid] */
    __s32 target_cpu;        /* CPU the task was woken onto (the filter key) [cpu] */
    __s32 prio;              /* kernel priority of the woken task [prio] */
    __u32 waker_pid;         /* thread that ran the wakeup (current) [tid] */
    __u32 waker_tgid;        /* process of the waker [tgid] */
    char comm[16];           /* name of the woken task */
};
_Static_assert(sizeof(struct ls_sched_wakeup) == 48, "sched_wakeup size");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, ts_ns) == 0, "sched_wakeup.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, cpu) == 8, "sched_wakeup.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, pid) == 12, "sched_wakeup.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, target_cpu) == 16, "sched_wakeup.target_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, prio) == 20, "sched_wakeup.prio");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, waker_pid) == 24, "sched_wakeup.waker_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, waker_tgid) == 28, "sched_wakeup.waker_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, comm) == 32, "sched_wakeup.comm");

/* sched:sched_wakeup_new: A newly forked task was made runnable for the first time. */
struct ls_sched_wakeup_new {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task woken (thread id) [tid] */
    __s32 target_cpu;        /* CPU the task was woken onto (the filter key) [cpu] */
    __s32 prio;              /* kernel priority of the woken task [prio] */
    __u32 waker_pid;         /* thread that ran the wakeup (current) [tid] */
    __u32 waker_tgid;        /* process of the waker [tgid] */
    char comm[16];           /* name of the woken task */
};
_Static_assert(sizeof(struct ls_sched_wakeup_new) == 48, "sched_wakeup_new size");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, ts_ns) == 0, "sched_wakeup_new.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, cpu) == 8, "sched_wakeup_new.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, pid) == 12, "sched_wakeup_new.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, target_cpu) == 16, "sched_wakeup_new.target_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, prio) == 20, "sched_wakeup_new.prio");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, waker_pid) == 24, "sched_wakeup_new.waker_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, waker_tgid) == 28, "sched_wakeup_new.waker_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, comm) == 32, "sched_wakeup_new.comm");

/* sched:sched_migrate_task: A task was moved from one CPU's runqueue to another's. */
struct ls_sched_migrate_task {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task migrated [tid] */
    __s32 prio;              /* kernel priority [prio] */
    __s32 orig_cpu;          /* CPU it left [cpu] */
    __s32 dest_cpu;          /* CPU it was moved to [cpu] */
    __u32 by_pid;            /* thread running when the migration happened (current) [tid] */
    char comm[16];           /* name of the task */
};
_Static_assert(sizeof(struct ls_sched_migrate_task) == 48, "sched_migrate_task size");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, ts_ns) == 0, "sched_migrate_task.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, cpu) == 8, "sched_migrate_task.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, pid) == 12, "sched_migrate_task.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, prio) == 16, "sched_migrate_task.prio");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, orig_cpu) == 20, "sched_migrate_task.orig_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, dest_cpu) == 24, "sched_migrate_task.dest_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, by_pid) == 28, "sched_migrate_task.by_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, comm) == 32, "sched_migrate_task.comm");

#endif
