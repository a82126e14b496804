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
                                        s32 next_pid, s32 next_prio, const char *prev_comm,
                                        const char *next_comm)
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
    __builtin_memcpy(e->prev_comm, prev_comm, 16);
    __builtin_memcpy(e->next_comm, next_comm, 16);
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

/* The two wakeup kinds share one stage layout (same record), so one body
 * serves both once its stage is looked up (BCC needs each map call spelled
 * out). */
_Static_assert(sizeof(struct sched_wakeup_stage) == sizeof(struct sched_wakeup_new_stage), "same stage layout");

static __always_inline int ls_stage_wakeup(struct sched_wakeup_stage *s, u32 kind, int pid, int target_cpu,
                                           int prio, const char *comm)
{
    if (!s)
        return 0;
    ls_busy(&s->busy, 1);
    u64 now = bpf_ktime_get_ns();
    struct ls_sched_wakeup *e = ls_stage_next(&s->n, &s->first_ts, s->rec, sizeof(*e), kind, now);
    ls_fill_wakeup(e, now, pid, target_cpu, prio, comm);
    ls_stage_commit(&s->n, sizeof(*e), kind);
    ls_busy(&s->busy, 0);
    return 0;
}

static __always_inline int ls_on_wakeup(int pid, int target_cpu, int prio, const char *comm)
{
    if (!ls_wakeup_wanted(target_cpu, pid))
        return 0;
    u32 zero = 0;
    return ls_stage_wakeup(ls_stage_sched_wakeup.lookup(&zero), LS_KIND_SCHED_WAKEUP, pid, target_cpu, prio, comm);
}

static __always_inline int ls_on_wakeup_new(int pid, int target_cpu, int prio, const char *comm)
{
    if (!ls_wakeup_wanted(target_cpu, pid))
        return 0;
    u32 zero = 0;
    return ls_stage_wakeup((struct sched_wakeup_stage *)ls_stage_sched_wakeup_new.lookup(&zero),
                           LS_KIND_SCHED_WAKEUP_NEW, pid, target_cpu, prio, comm);
}

#ifdef LS_TP_BTF
#define LS_TASK(p, off, type) (*(type *)((const char *)(p) + (off)))

/* prev_state as the sched_switch tracepoint reports it
 * (__trace_sched_switch_state): TASK_REPORT_MAX (0x100) when preempted,
 * else the highest TASK_REPORT bit of the state (TASK_IDLE reported as
 * TASK_REPORT_IDLE 0x80, an rtlock wait as TASK_UNINTERRUPTIBLE), 0 =
 * runnable.  Constants of include/linux/sched.h, unchanged since 5.15; the
 * kernel test checks them against the task's own context-switch counters. */
static __always_inline s64 ls_switch_state(u64 preempt, u32 state, u32 exit_state)
{
    if (preempt)
        return 0x100;
    u32 s = (state | exit_state) & 0x7f;
    if ((state & 0x402) == 0x402)
        s = 0x80;
    if (state & 0x1000)
        s = 0x2;
    u32 top = 0;
#pragma unroll
    for (int i = 7; i >= 0; i--)
        if (!top && (s & (1u << i)))
            top = 1u << i;
    return top;
}

/* tp_btf/sched_switch(bool preempt, prev, next, unsigned int prev_state) */
int ls_btf_sched_switch(u64 *ctx)
{
    const char *prev = (const char *)ctx[1];
    const char *next = (const char *)ctx[2];
    return ls_on_switch(ls_switch_state(ctx[0], (u32)ctx[3], LS_TASK(prev, LS_TASK_EXIT_STATE, u32)),
                        LS_TASK(prev, LS_TASK_PID, s32), LS_TASK(prev, LS_TASK_TGID, u32),
                        LS_TASK(prev, LS_TASK_PRIO, s32), LS_TASK(next, LS_TASK_PID, s32),
                        LS_TASK(next, LS_TASK_PRIO, s32), prev + LS_TASK_COMM, next + LS_TASK_COMM);
}

/* tp_btf/sched_wakeup(p), tp_btf/sched_wakeup_new(p): target_cpu = task_cpu(p) */
int ls_btf_sched_wakeup(u64 *ctx)
{
    const char *p = (const char *)ctx[0];
    return ls_on_wakeup(LS_TASK(p, LS_TASK_PID, s32), LS_TASK(p, LS_TASK_CPU, u32),
                        LS_TASK(p, LS_TASK_PRIO, s32), p + LS_TASK_COMM);
}

int ls_btf_sched_wakeup_new(u64 *ctx)
{
    const char *p = (const char *)ctx[0];
    return ls_on_wakeup_new(LS_TASK(p, LS_TASK_PID, s32), LS_TASK(p, LS_TASK_CPU, u32),
                            LS_TASK(p, LS_TASK_PRIO, s32), p + LS_TASK_COMM);
}
#else
/* The comms go through the stack: the verifier only takes constant
 * offsets from the tracepoint context, not a pointer into it. */
TRACEPOINT_PROBE(sched, sched_switch)
{
    char prev_comm[16], next_comm[16];
    __builtin_memcpy(prev_comm, args->prev_comm, 16);
    __builtin_memcpy(next_comm, args->next_comm, 16);
    return ls_on_switch(args->prev_state, args->prev_pid, LS_TGID_OF_CURRENT, args->prev_prio,
                        args->next_pid, args->next_prio, prev_comm, next_comm);
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    char comm[16];
    __builtin_memcpy(comm, args->comm, 16);
    return ls_on_wakeup(args->pid, args->target_cpu, args->prio, comm);
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    char comm[16];
    __builtin_memcpy(comm, args->comm, 16);
    return ls_on_wakeup_new(args->pid, args->target_cpu, args->prio, comm);
}
#endif

/* The staged records of a CPU with no more scheduler events (an isolated
 * CPU running one task) would wait in its stages: the timer interrupts
 * that still come there (the tick) flush what is older than
 * LS_STAGE_AGE_NS.  Nothing else is done here. */
TRACEPOINT_PROBE(timer, hrtimer_expire_entry)
{
    ls_sched_stages_expire(bpf_ktime_get_ns(), 0);
    return 0;
}
