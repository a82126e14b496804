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

/* Records are submitted with BPF_RB_NO_WAKEUP: the drain polls on a timer,
 * and a wakeup per record would cost an irq_work in the traced context.
 * (BCC cannot rewrite map calls inside macros, so each program spells out
 * its reserve/submit.) */

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
