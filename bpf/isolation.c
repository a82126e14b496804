/* Isolation Verifier: who runs where, who waits, who moves.
 * Tracepoints: sched:sched_switch, sched_wakeup, sched_wakeup_new,
 * sched_migrate_task.  Records are copied as-is; all interpretation is the
 * analyzer's. */

BPF_RINGBUF_OUTPUT(rb_sched_switch, LS_PAGES_SCHED_SWITCH);
BPF_RINGBUF_OUTPUT(rb_sched_wakeup, LS_PAGES_SCHED_WAKEUP);
BPF_RINGBUF_OUTPUT(rb_sched_wakeup_new, LS_PAGES_SCHED_WAKEUP_NEW);
BPF_RINGBUF_OUTPUT(rb_sched_migrate_task, LS_PAGES_SCHED_MIGRATE_TASK);

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 cpu = bpf_get_smp_processor_id();
    if (ls_filtering() && !ls_cpu_match(cpu) &&
        !ls_tid_match(args->prev_pid) && !ls_tid_match(args->next_pid))
        return 0;
    struct ls_sched_switch *e = rb_sched_switch.ringbuf_reserve(sizeof(struct ls_sched_switch));
    if (!e) {
        ls_count_lost(LS_KIND_SCHED_SWITCH);
        return 0;
    }
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
    rb_sched_switch.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
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
    struct ls_sched_wakeup *e = rb_sched_wakeup.ringbuf_reserve(sizeof(struct ls_sched_wakeup));
    if (!e) {
        ls_count_lost(LS_KIND_SCHED_WAKEUP);
        return 0;
    }
    ls_fill_wakeup(e, args->pid, args->target_cpu, args->prio, args->comm);
    rb_sched_wakeup.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    if (!ls_wakeup_wanted(args->target_cpu, args->pid))
        return 0;
    struct ls_sched_wakeup_new *e = rb_sched_wakeup_new.ringbuf_reserve(sizeof(struct ls_sched_wakeup_new));
    if (!e) {
        ls_count_lost(LS_KIND_SCHED_WAKEUP_NEW);
        return 0;
    }
    ls_fill_wakeup((struct ls_sched_wakeup *)e, args->pid, args->target_cpu, args->prio, args->comm);
    rb_sched_wakeup_new.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_migrate_task)
{
    if (ls_filtering() && !ls_cpu_match(args->orig_cpu) && !ls_cpu_match(args->dest_cpu) &&
        !ls_tid_match(args->pid))
        return 0;
    struct ls_sched_migrate_task *e = rb_sched_migrate_task.ringbuf_reserve(sizeof(struct ls_sched_migrate_task));
    if (!e) {
        ls_count_lost(LS_KIND_SCHED_MIGRATE_TASK);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = args->pid;
    e->prio = args->prio;
    e->orig_cpu = args->orig_cpu;
    e->dest_cpu = args->dest_cpu;
    e->by_pid = (u32)bpf_get_current_pid_tgid();
    TP_DATA_LOC_READ_CONST(e->comm, comm, 16);
    rb_sched_migrate_task.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}
