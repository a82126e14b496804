/* Isolation Verifier: who runs where, who waits, who moves.
 * Tracepoints: sched:sched_switch, sched_wakeup, sched_wakeup_new,
 * sched_migrate_task.  Records are copied as-is; all interpretation is the
 * analyzer's. */

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 cpu = bpf_get_smp_processor_id();
    if (ls_filtering() && !ls_cpu_match(cpu) &&
        !ls_tid_match(args->prev_pid) && !ls_tid_match(args->next_pid))
        return 0;
    struct ls_sched_switch *e = ls_reserve(LS_KIND_SCHED_SWITCH, sizeof(struct ls_sched_switch));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->prev_state = args->prev_state;
    e->cpu = cpu;
    e->prev_pid = args->prev_pid;
    e->prev_tgid = bpf_get_current_pid_tgid() >> 32;
    e->prev_prio = args->prev_prio;
    e->next_pid = args->next_pid;
    e->next_prio = args->next_prio;
    __builtin_memcpy(e->prev_comm, args->prev_comm, 16);
    __builtin_memcpy(e->next_comm, args->next_comm, 16);
    ls_submit(e);
    return 0;
}

/* sched_wakeup and sched_wakeup_new have the same arguments and records
 * (one schema field list).  Wakeups are filtered by the CPU the task is
 * woken onto, not the CPU running the wakeup. */
static __always_inline int ls_wakeup_wanted(int target_cpu, int pid)
{
    return !ls_filtering() || ls_cpu_match(target_cpu) || ls_tid_match(pid);
}

static __always_inline void ls_fill_wakeup(struct ls_sched_wakeup *e, int pid, int target_cpu, int prio,
                                           const char *comm)
{
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = pid;
    e->target_cpu = target_cpu;
    e->prio = prio;
    e->waker_pid = (u32)id;
    e->waker_tgid = id >> 32;
    __builtin_memcpy(e->comm, comm, 16);
}
_Static_assert(sizeof(struct ls_sched_wakeup) == sizeof(struct ls_sched_wakeup_new), "same wakeup layout");

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    if (!ls_wakeup_wanted(args->target_cpu, args->pid))
        return 0;
    struct ls_sched_wakeup *e = ls_reserve(LS_KIND_SCHED_WAKEUP, sizeof(struct ls_sched_wakeup));
    if (!e)
        return 0;
    ls_fill_wakeup(e, args->pid, args->target_cpu, args->prio, args->comm);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    if (!ls_wakeup_wanted(args->target_cpu, args->pid))
        return 0;
    struct ls_sched_wakeup_new *e = ls_reserve(LS_KIND_SCHED_WAKEUP_NEW, sizeof(struct ls_sched_wakeup_new));
    if (!e)
        return 0;
    ls_fill_wakeup((struct ls_sched_wakeup *)e, args->pid, args->target_cpu, args->prio, args->comm);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_migrate_task)
{
    if (ls_filtering() && !ls_cpu_match(args->orig_cpu) && !ls_cpu_match(args->dest_cpu) &&
        !ls_tid_match(args->pid))
        return 0;
    struct ls_sched_migrate_task *e = ls_reserve(LS_KIND_SCHED_MIGRATE_TASK, sizeof(struct ls_sched_migrate_task));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = args->pid;
    e->prio = args->prio;
    e->orig_cpu = args->orig_cpu;
    e->dest_cpu = args->dest_cpu;
    e->by_pid = (u32)bpf_get_current_pid_tgid();
    TP_DATA_LOC_READ_CONST(e->comm, comm, 16);
    ls_submit(e);
    return 0;
}
