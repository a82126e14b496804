/* Isolation Verifier: who runs where, who waits, who moves.
 * Tracepoints: sched:sched_switch, sched_wakeup, sched_wakeup_new,
 * sched_migrate_task, task:task_rename.  Records are copied as-is; all
 * interpretation is the analyzer's.  sched_switch and sched_wakeup carry no
 * task names (format 3): the reader rebuilds them from the snapshot, the
 * names of new tasks (sched_wakeup_new), renames and migrations. */

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
    if (b && !b->busy)
        ls_stage_expire(&b->n, b->first_ts, now, force, sizeof(b->rec[0]), LS_KIND_SCHED_WAKEUP);
    struct sched_wakeup_new_stage *c = ls_stage_sched_wakeup_new.lookup(&zero);
    if (c && !c->busy)
        ls_stage_expire(&c->n, c->first_ts, now, force, sizeof(c->rec[0]), LS_KIND_SCHED_WAKEUP_NEW);
}

/* The scheduler programs come in two builds of the same bodies (ls_on_*):
 * classic tracepoints, or -- with LS_TP_BTF, when the kernel has BTF
 * (record/btf.py) -- tp_btf programs that load the fields from the
 * task_structs the tracepoint passes, at offsets the recorder reads from
 * the kernel's BTF (LS_TASK_*).  Both write the same records. */

/* sched_switch: PREV_TGID == LS_TGID_OF_CURRENT means "ask the helper"
 * (prev is current), after the filter. */
#define LS_TGID_OF_CURRENT 0xffffffffu

static __always_inline int ls_on_switch(s64 prev_state, s32 prev_pid, u32 prev_tgid, s32 prev_prio,
                                        s32 next_pid, s32 next_prio)
{
    u32 cpu = bpf_get_smp_processor_id();
    if (ls_filtering() && !ls_cpu_match(cpu) && !ls_tid_match(prev_pid) && !ls_tid_match(next_pid))
        return 0;
    u32 zero = 0;
    struct sched_switch_stage *s = ls_stage_sched_switch.lookup(&zero);
    if (!s)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_switch *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e),
                                              LS_KIND_SCHED_SWITCH, now);
    e->ts_ns = now;
    e->prev_state = prev_state;
    e->cpu = cpu;
    e->prev_pid = prev_pid;
    e->prev_tgid = prev_tgid == LS_TGID_OF_CURRENT ? bpf_get_current_pid_tgid() >> 32 : prev_tgid;
    e->prev_prio = prev_prio;
    e->next_pid = next_pid;
    e->next_prio = next_prio;
    ls_stage_commit(&s->n, sizeof(*e), LS_KIND_SCHED_SWITCH);
    if (next_pid == 0)  /* going idle: no tick may come to flush the stages */
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
                                           int prio)
{
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = now;
    e->cpu = bpf_get_smp_processor_id();
    e->pid = pid;
    e->target_cpu = target_cpu;
    e->prio = prio;
    e->waker_pid = (u32)id;
    e->waker_tgid = id >> 32;
}
/* sched_wakeup_new is sched_wakeup's record plus the new task's name. */
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, comm) == sizeof(struct ls_sched_wakeup),
               "wakeup_new = wakeup + comm");

/* Mark a wakeup stage held (tp_btf builds only: see common.h).  Compiler
 * barriers keep the flag around the slot's writes; the timer program that
 * checks it runs on the same CPU, so program order is all it needs. */
static __always_inline void ls_busy(u32 *flag, u32 v)
{
#ifdef LS_TP_BTF
    asm volatile("" ::: "memory");
    *(volatile u32 *)flag = v;
    asm volatile("" ::: "memory");
#endif
}

static __always_inline int ls_on_wakeup(int pid, int target_cpu, int prio)
{
    if (!ls_wakeup_wanted(target_cpu, pid))
        return 0;
    u32 zero = 0;
    struct sched_wakeup_stage *s = ls_stage_sched_wakeup.lookup(&zero);
    if (!s)
        return 0;
    ls_busy(&s->busy, 1);
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_wakeup *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e), LS_KIND_SCHED_WAKEUP, now);
    ls_fill_wakeup(e, now, pid, target_cpu, prio);
    ls_stage_commit(&s->n, sizeof(*e), LS_KIND_SCHED_WAKEUP);
    ls_busy(&s->busy, 0);
    return 0;
}

static __always_inline int ls_on_wakeup_new(int pid, int target_cpu, int prio, const char *comm)
{
    if (!ls_wakeup_wanted(target_cpu, pid))
        return 0;
    u32 zero = 0;
    struct sched_wakeup_new_stage *s = ls_stage_sched_wakeup_new.lookup(&zero);
    if (!s)
        return 0;
    ls_busy(&s->busy, 1);
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_wakeup_new *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e),
                                                  LS_KIND_SCHED_WAKEUP_NEW, now);
    ls_fill_wakeup((struct ls_sched_wakeup *)e, now, pid, target_cpu, prio);
    __builtin_memcpy(e->comm, comm, 16);
    ls_stage_commit(&s->n, sizeof(*e), LS_KIND_SCHED_WAKEUP_NEW);
    ls_busy(&s->busy, 0);
    return 0;
}

#ifdef LS_TP_BTF
#define LS_TASK(p, off, type) (*(type *)((const char *)(p) + (off)))

/* prev_state as the sched_switch tracepoint reports it
 * (__trace_sched_switch_state): TASK_REPORT_MAX (0x100) when preempted,
 * else the highest TASK_REPORT bit of the state (TASK_IDLE reported as
 * TASK_REPORT_IDLE 0x80, an rtlock wait as TASK_UNINTERRUPTIBLE), 0 =
 * runnable.  Constants of include/linux/sched.h, unchanged since 5.15; the
 * kernel test checks them against the task's own context-switch counters. */
static __always_inline s64 ls_switch_state(u64 preempt, u32 state, const char *prev)
{
    if (preempt)
        return 0x100;
    u32 s = state;
    /* exit_state (another cache line of the task) is read for TASK_DEAD
     * only: the last switch of an exiting task, the one it shows in. */
    if (state & 0x80)
        s |= LS_TASK(prev, LS_TASK_EXIT_STATE, u32);
    s &= 0x7f;
    if ((state & 0x402) == 0x402)
        s = 0x80;
    if (state & 0x1000)
        s = 0x2;
    s |= s >> 1;  /* the highest bit of s (< 0x100), without branches */
    s |= s >> 2;
    s |= s >> 4;
    return s - (s >> 1);
}

/* tp_btf/sched_switch(bool preempt, prev, next, unsigned int prev_state) */
int ls_btf_sched_switch(u64 *ctx)
{
    const char *prev = (const char *)ctx[1];
    const char *next = (const char *)ctx[2];
    return ls_on_switch(ls_switch_state(ctx[0], (u32)ctx[3], prev),
                        LS_TASK(prev, LS_TASK_PID, s32), LS_TASK(prev, LS_TASK_TGID, u32),
                        LS_TASK(prev, LS_TASK_PRIO, s32), LS_TASK(next, LS_TASK_PID, s32),
                        LS_TASK(next, LS_TASK_PRIO, s32));
}

/* tp_btf/sched_wakeup(p), tp_btf/sched_wakeup_new(p): target_cpu = task_cpu(p) */
int ls_btf_sched_wakeup(u64 *ctx)
{
    const char *p = (const char *)ctx[0];
    return ls_on_wakeup(LS_TASK(p, LS_TASK_PID, s32), LS_TASK(p, LS_TASK_CPU, u32),
                        LS_TASK(p, LS_TASK_PRIO, s32));
}

int ls_btf_sched_wakeup_new(u64 *ctx)
{
    const char *p = (const char *)ctx[0];
    return ls_on_wakeup_new(LS_TASK(p, LS_TASK_PID, s32), LS_TASK(p, LS_TASK_CPU, u32),
                            LS_TASK(p, LS_TASK_PRIO, s32), p + LS_TASK_COMM);
}
#else
TRACEPOINT_PROBE(sched, sched_switch)
{
    return ls_on_switch(args->prev_state, args->prev_pid, LS_TGID_OF_CURRENT, args->prev_prio,
                        args->next_pid, args->next_prio);
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    return ls_on_wakeup(args->pid, args->target_cpu, args->prio);
}

/* The comm goes through the stack: the verifier only takes constant
 * offsets from the tracepoint context, not a pointer into it. */
TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    char comm[16];
    __builtin_memcpy(comm, args->comm, 16);
    return ls_on_wakeup_new(args->pid, args->target_cpu, args->prio, comm);
}
#endif

/* Migrations are rare next to switches: a record each, not staged.  Kept
 * when either end is a monitored CPU or the task is a target. */
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

/* Every rename, unfiltered: the reader names the tasks of the other
 * records from these (any task may show up on a monitored CPU). */
TRACEPOINT_PROBE(task, task_rename)
{
    struct ls_task_rename *e = ls_reserve(LS_KIND_TASK_RENAME, sizeof(struct ls_task_rename));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = args->pid;
    __builtin_memcpy(e->oldcomm, args->oldcomm, 16);
    __builtin_memcpy(e->comm, args->newcomm, 16);
    ls_submit(e);
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
