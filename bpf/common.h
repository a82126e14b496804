/* Shared by every LatencyScope BPF program: filters and loss accounting.
 *
 * Filters are read-only settings chosen at load time (-D flags) plus maps
 * the recorder fills before the capture window opens:
 *   LS_FILTER_CPUS  keep events whose CPU (for wakeups: target CPU) is in ls_cpus
 *   LS_FILTER_PIDS  keep events whose task is a thread of a target process
 * With both, an event is kept when either matches (monitored CPUs plus
 * wherever the targets go).  An event that no filter keeps never touches a
 * ring buffer.
 */
#ifndef LATENCYSCOPE_COMMON_H
#define LATENCYSCOPE_COMMON_H

#ifndef LS_MAX_CPUS
#define LS_MAX_CPUS 1024
#endif

/* Records that could not be reserved (ring full), per CPU and event kind. */
BPF_PERCPU_ARRAY(ls_lost, u64, LS_NKINDS);

#ifdef LS_FILTER_CPUS
BPF_ARRAY(ls_cpus, u8, LS_MAX_CPUS);
#endif
#ifdef LS_FILTER_PIDS
/* Thread ids of the target processes; seeded from /proc, followed through fork. */
BPF_HASH(ls_tids, u32, u8, 65536);
BPF_HASH(ls_tgids, u32, u8, 4096);
#endif

static __always_inline int ls_filtering(void)
{
#if defined(LS_FILTER_CPUS) || defined(LS_FILTER_PIDS)
    return 1;
#else
    return 0;
#endif
}

static __always_inline int ls_cpu_match(u32 cpu)
{
#ifdef LS_FILTER_CPUS
    u8 *v = ls_cpus.lookup(&cpu);
    return v && *v;
#else
    return 0;
#endif
}

static __always_inline int ls_tid_match(u32 tid)
{
#ifdef LS_FILTER_PIDS
    return ls_tids.lookup(&tid) != 0;
#else
    return 0;
#endif
}

static __always_inline int ls_tgid_match(u32 tgid)
{
#ifdef LS_FILTER_PIDS
    return ls_tgids.lookup(&tgid) != 0;
#else
    return 0;
#endif
}

/* Keep an event about the current task on the current CPU? */
static __always_inline int ls_keep_current(void)
{
    if (!ls_filtering())
        return 1;
    return ls_cpu_match(bpf_get_smp_processor_id()) ||
           ls_tgid_match(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline void ls_count_lost(u32 kind)
{
    u64 *v = ls_lost.lookup(&kind);
    if (v)
        (*v)++;
}

/* One ring buffer per event kind and CPU, in one ARRAY_OF_MAPS indexed by
 * kind * LS_NCPUS + cpu, which the recorder fills (ls_ring_template only
 * gives BCC the inner map type).  A CPU writes only its own rings: no lock
 * or cache line is shared between CPUs in the traced context (a shared
 * ring's spinlock and producer position bounced between CPUs on every
 * record), and each ring stays in time order, because a program never nests
 * inside itself on one CPU.  The recorder merges the rings by timestamp.
 *
 * Records are submitted with BPF_RB_NO_WAKEUP: the drain polls on a timer,
 * and a wakeup per record would cost an irq_work in the traced context. */
#ifndef LS_NCPUS
#define LS_NCPUS 1
#endif
BPF_RINGBUF_OUTPUT(ls_ring_template, 1);
BPF_ARRAY_OF_MAPS(ls_rings, "ls_ring_template", LS_NKINDS * LS_NCPUS);

/* A record of KIND in this CPU's ring, or NULL: the ring is full (counted
 * as lost) or not in place yet (the recorder puts every ring in place when
 * the capture window opens: earlier events are not part of the capture). */
static __always_inline void *ls_reserve(u32 kind, u64 size)
{
    u32 slot = kind * LS_NCPUS + bpf_get_smp_processor_id();
    void *ring = ls_rings.lookup(&slot);
    if (!ring)
        return (void *)0;
    void *e = bpf_ringbuf_reserve(ring, size, 0);
    if (!e)
        ls_count_lost(kind);
    return e;
}

static __always_inline void ls_submit(void *e)
{
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

#ifdef LS_FILTER_PIDS
/* Threads and children created by a target during the capture are targets. */
TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u32 parent = args->parent_pid;
    if (!ls_tids.lookup(&parent))
        return 0;
    u32 child = args->child_pid;
    u8 one = 1;
    ls_tids.update(&child, &one);
    return 0;
}
#endif

#endif
