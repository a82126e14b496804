/* Isolation Verifier: who runs where, who waits, who moves.
 * Tracepoints: sched:sched_switch, sched_wakeup, sched_wakeup_new,
 * sched_migrate_task.  Records are copied as-is; all interpretation is the
 * analyzer's. */

/* sched_switch, sched_wakeup and sched_wakeup_new fire on every context
 * switch: they are staged (common.h). */
LS_STAGE(sched_switch, ls_sched_switch);
LS_STAGE(sched_wakeup, ls_sched_wakeup);
LS_STAGE(sched_wakeup_new, ls_sched_wakeup_new);

/* Flush this CPU's scheduler stages: all of them (FORCE), or what is older
 * than LS_STAGE_AGE_NS at NOW. */
static __always_inline void ls_sched_stages_expire(u64 now, int force)
{
    u32 zero = 0;
    struct sched_switch_stage *a = ls_stage_sched_switch.lookup(&zero);
    if (a)
        ls_stage_expire(&a->n, a->first_ts, now, force, sizeof(a->rec[0]), LS_KIND_SCHED_SWITCH);
    struct sched_wakeup_stage *b = ls_stage_sched_wakeup.lookup(&zero);
    if (b)
        ls_stage_expire(&b->n, b->first_ts, now, force, sizeof(b->rec[0]), LS_KIND_SCHED_WAKEUP);
    struct sched_wakeup_new_stage *c = ls_stage_sched_wakeup_new.lookup(&zero);
    if (c)
        ls_stage_expire(&c->n, c->first_ts, now, force, sizeof(c->rec[0]), LS_KIND_SCHED_WAKEUP_NEW);
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u32 cpu = bpf_get_smp_processor_id();
    if (ls_filtering() && !ls_cpu_match(cpu) &&
        !ls_tid_match(args->prev_pid) && !ls_tid_match(args->next_pid))
        return 0;
    u32 zero = 0;
    struct sched_switch_stage *s = ls_stage_sched_switch.lookup(&zero);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_switch *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e),
                                              LS_KIND_SCHED_SWITCH, now);
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
    ls_stage_commit(&s->n, sizeof(*e), LS_KIND_SCHED_SWITCH);
    if (args->next_pid == 0)  /* going idle: no tick may come to flush the stages */
        ls_sched_stages_expire(now, 1);
    return 0;
}

/* sched_wakeup and sched_wakeup_new have the same arguments and records
 * (one schema field list).  Wakeups are filtered by the CPU the task is
 * woken onto, not the CPU running the wakeup. */
static __always_inline int ls_wakeup_wanted(int target_cpu, int pid)
{
    return !ls_filtering() || ls_cpu_match(target_cpu) || ls_tid_match(pid);
}

static __always_inline void ls_fill_wakeup(struct ls_sched_wakeup *e, u64 now, int pid, int target_cpu,
                                           int prio, const char *comm)
{
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = now;
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
    u32 zero = 0;
    struct sched_wakeup_stage *s = ls_stage_sched_wakeup.lookup(&zero);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_wakeup *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e),
                                              LS_KIND_SCHED_WAKEUP, now);
    ls_fill_wakeup(e, now, args->pid, args->target_cpu, args->prio, args->comm);
    ls_stage_commit(&s->n, sizeof(*e), LS_KIND_SCHED_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    if (!ls_wakeup_wanted(args->target_cpu, args->pid))
        return 0;
    u32 zero = 0;
    struct sched_wakeup_new_stage *s = ls_stage_sched_wakeup_new.lookup(&zero);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_wakeup *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e),
                                              LS_KIND_SCHED_WAKEUP_NEW, now);
    ls_fill_wakeup(e, now, args->pid, args->target_cpu, args->prio, args->comm);
    ls_stage_commit(&s->n, sizeof(*e), LS_KIND_SCHED_WAKEUP_NEW);
    return 0;
}

/* The staged records of a CPU with no more scheduler events (an isolated
 * CPU running one task) would wait in its stages: the timer interrupts
 * that still come there (the tick) flush what is older than
 * LS_STAGE_AGE_NS.  Nothing else is done here. */
TRACEPOINT_PROBE(timer, hrtimer_expire_entry)
{
    ls_sched_stages_expire(bpf_ktime_get_ns(), 0);
    return 0;
}
