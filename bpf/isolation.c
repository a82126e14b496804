/* Isolation Verifier: who runs where, who waits, who moves.
 * Tracepoints: sched:sched_switch, sched_wakeup, sched_wakeup_new,
 * sched_migrate_task.  Records are copied as-is; all interpretation is the
 * analyzer's. */

BPF_RINGBUF_OUTPUT(rb_sched_switch, LS_PAGES_SCHED_SWITCH);
BPF_RINGBUF_OUTPUT(rb_sched_wakeup, LS_PAGES_SCHED_WAKEUP);
BPF_RINGBUF_OUTPUT(rb_sched_wakeup_new, LS_PAGES_SCHED_WAKEUP_NEW);
BPF_RINGBUF_OUTPUT(rb_sched_migrate_task, LS_PAGES_SCHED_MIGRATE_TASK);

/* sched_switch and sched_wakeup are staged: each CPU fills its own batch of
 * LS_STAGE_<KIND> records and pushes it to the ring with one
 * bpf_ringbuf_output, so the ring's lock and producer position (shared by
 * all CPUs) are touched once per batch, not once per event.  A batch goes
 * out when it is full, when its oldest record is older than
 * LS_STAGE_MAX_AGE_NS (bounds the time disorder between CPUs), and when the
 * CPU switches to idle (it has time then, and an idle CPU would otherwise
 * hold its records).  What a CPU still holds at the end is read by the
 * recorder after the programs are detached; on SIGKILL it is lost (at most
 * LS_STAGE_<KIND> - 1 records per CPU and kind). */
#ifndef LS_STAGE_MAX_AGE_NS
#define LS_STAGE_MAX_AGE_NS 200000
#endif
BPF_PERCPU_ARRAY(st_sched_switch, struct ls_sched_switch_batch, 1);
BPF_PERCPU_ARRAY(st_sched_wakeup, struct ls_sched_wakeup_batch, 1);

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 cpu = bpf_get_smp_processor_id();
    if (ls_filtering() && !ls_cpu_match(cpu) &&
        !ls_tid_match(args->prev_pid) && !ls_tid_match(args->next_pid))
        return 0;
    u32 zero = 0;
    struct ls_sched_switch_batch *b = st_sched_switch.lookup(&zero);
    if (!b)
        return 0;
    u32 i = b->count;
    if (i >= LS_STAGE_SCHED_SWITCH)
        i = 0;
    struct ls_sched_switch *e = &b->rec[i];
    u64 now = bpf_ktime_get_ns();
    e->ts_ns = now;
    e->prev_state = args->prev_state;
    e->cpu = cpu;
    e->prev_pid = args->prev_pid;
    e->prev_tgid = bpf_get_current_pid_tgid() >> 32;
    e->prev_prio = args->prev_prio;
    e->next_pid = args->next_pid;
    e->next_prio = args->next_prio;
    __builtin_memcpy(e->prev_comm, args->prev_comm, 16);
    __builtin_memcpy(e->next_comm, args->next_comm, 16);
    i++;
    b->count = i;
    int idle = args->next_pid == 0;
    if (i < LS_STAGE_SCHED_SWITCH && !idle && now - b->rec[0].ts_ns < LS_STAGE_MAX_AGE_NS)
        return 0;
    if (rb_sched_switch.ringbuf_output(b, sizeof(*b), BPF_RB_NO_WAKEUP) < 0)
        ls_count_lost_n(LS_KIND_SCHED_SWITCH, i);
    b->count = 0;
    if (idle) {
        struct ls_sched_wakeup_batch *w = st_sched_wakeup.lookup(&zero);
        if (w && w->count > 0 && w->count <= LS_STAGE_SCHED_WAKEUP) {
            u32 n = w->count;
            if (rb_sched_wakeup.ringbuf_output(w, sizeof(*w), BPF_RB_NO_WAKEUP) < 0)
                ls_count_lost_n(LS_KIND_SCHED_WAKEUP, n);
            w->count = 0;
        }
    }
    return 0;
}


/* Filtered by the CPU the task is woken onto, not the CPU running the wakeup. */
TRACEPOINT_PROBE(sched, sched_wakeup)
{
    if (ls_filtering() && !ls_cpu_match(args->target_cpu) && !ls_tid_match(args->pid))
        return 0;
    u32 zero = 0;
    struct ls_sched_wakeup_batch *b = st_sched_wakeup.lookup(&zero);
    if (!b)
        return 0;
    u32 i = b->count;
    if (i >= LS_STAGE_SCHED_WAKEUP)
        i = 0;
    struct ls_sched_wakeup *e = &b->rec[i];
    u64 id = bpf_get_current_pid_tgid();
    u64 now = bpf_ktime_get_ns();
    e->ts_ns = now;
    e->cpu = bpf_get_smp_processor_id();
    e->pid = args->pid;
    e->target_cpu = args->target_cpu;
    e->prio = args->prio;
    e->waker_pid = (u32)id;
    e->waker_tgid = id >> 32;
    __builtin_memcpy(e->comm, args->comm, 16);
    i++;
    b->count = i;
    if (i < LS_STAGE_SCHED_WAKEUP && now - b->rec[0].ts_ns < LS_STAGE_MAX_AGE_NS)
        return 0;
    if (rb_sched_wakeup.ringbuf_output(b, sizeof(*b), BPF_RB_NO_WAKEUP) < 0)
        ls_count_lost_n(LS_KIND_SCHED_WAKEUP, i);
    b->count = 0;
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    if (ls_filtering() && !ls_cpu_match(args->target_cpu) && !ls_tid_match(args->pid))
        return 0;
    struct ls_sched_wakeup_new *e = rb_sched_wakeup_new.ringbuf_reserve(sizeof(struct ls_sched_wakeup_new));
    if (!e) {
        ls_count_lost(LS_KIND_SCHED_WAKEUP_NEW);
        return 0;
    }
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = args->pid;
    e->target_cpu = args->target_cpu;
    e->prio = args->prio;
    e->waker_pid = (u32)id;
    e->waker_tgid = id >> 32;
    __builtin_memcpy(e->comm, args->comm, 16);
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
