/* Memory Stall Profiler: page faults (all user faults, plus kernel-mode
 * faults on user addresses), major faults (software perf event), TLB
 * flushes, IPIs to monitored CPUs, NUMA balancing and page migration.
 * Tracepoints: exceptions:page_fault_user, exceptions:page_fault_kernel,
 * tlb:tlb_flush, ipi:ipi_send_cpu, ipi:ipi_send_cpumask,
 * sched:sched_move_numa/sched_stick_numa/sched_swap_numa,
 * migrate:mm_migrate_pages; perf event PERF_COUNT_SW_PAGE_FAULTS_MAJ
 * (attached per CPU by record/hooks_memory.py). */
#include <uapi/linux/bpf_perf_event.h>

/* Monitored CPUs as a bitmap (CPUs 0-127), set by hooks_memory.cflags so an
 * IPI to a set of CPUs is tested against the set without a loop. */
#ifndef LS_MON_MASK0
#define LS_MON_MASK0 0ULL
#endif
#ifndef LS_MON_MASK1
#define LS_MON_MASK1 0ULL
#endif

/* Distinct IPI callback addresses seen, symbolized by the recorder at the end. */
BPF_HASH(ls_ipi_funcs, u64, u8, 1024);

static __always_inline void ls_note_ipi_func(u64 fn)
{
    u8 one = 1;
    if (!ls_ipi_funcs.lookup(&fn))
        ls_ipi_funcs.update(&fn, &one);
}

TRACEPOINT_PROBE(exceptions, page_fault_user)
{
    if (!ls_keep_current())
        return 0;
    struct ls_page_fault_user *e = ls_reserve(LS_KIND_PAGE_FAULT_USER, sizeof(struct ls_page_fault_user));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->error_code = args->error_code;
    e->address = args->address;
    e->ip = args->ip;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    return 0;
}

/* Kernel-mode faults count in a task's minflt/majflt only when they touch
 * user memory (copy_to_user into fresh pages): kernel addresses (top bit
 * set) are dropped before anything else. */
TRACEPOINT_PROBE(exceptions, page_fault_kernel)
{
    if (args->address >> 63)
        return 0;
    if (!ls_keep_current())
        return 0;
    struct ls_page_fault_kernel *e = ls_reserve(LS_KIND_PAGE_FAULT_KERNEL, sizeof(struct ls_page_fault_kernel));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->error_code = args->error_code;
    e->address = args->address;
    e->ip = args->ip;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    return 0;
}

/* Software perf event PERF_COUNT_SW_PAGE_FAULTS_MAJ, sample_period 1: the
 * kernel raises it in mm_account_fault() right where it increments the
 * task's maj_flt, so this is the kernel's own definition of "major". */
int ls_page_fault_major(struct bpf_perf_event_data *ctx)
{
    if (!ls_keep_current())
        return 0;
    struct ls_page_fault_major *e = ls_reserve(LS_KIND_PAGE_FAULT_MAJOR, sizeof(struct ls_page_fault_major));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->sample_period = ctx->sample_period;
    e->address = ctx->addr;
    e->ip = PT_REGS_IP(&ctx->regs);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    return 0;
}

/* Reason 0 (flush on task switch) fires on every context switch and says
 * nothing about shootdowns: dropped before the ring. */
TRACEPOINT_PROBE(tlb, tlb_flush)
{
    if (args->reason == 0 || !ls_keep_current())
        return 0;
    struct ls_tlb_flush *e = ls_reserve(LS_KIND_TLB_FLUSH, sizeof(struct ls_tlb_flush));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->reason = args->reason;
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->pages = args->pages;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    return 0;
}

/* IPIs are kept by their target CPU (like wakeups), or when a target sends them. */
TRACEPOINT_PROBE(ipi, ipi_send_cpu)
{
    if (ls_filtering() && !ls_cpu_match(args->cpu) &&
        !ls_tgid_match(bpf_get_current_pid_tgid() >> 32))
        return 0;
    struct ls_ipi_send_cpu *e = ls_reserve(LS_KIND_IPI_SEND_CPU, sizeof(struct ls_ipi_send_cpu));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    u64 fn = (u64)args->callback;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->target_cpu = args->cpu;
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->callsite = (u64)args->callsite;
    e->callback = fn;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    ls_note_ipi_func(fn);
    return 0;
}

TRACEPOINT_PROBE(ipi, ipi_send_cpumask)
{
    u64 words[2] = {0, 0};
    u32 loc = args->data_loc_cpumask;
    u32 len = loc >> 16;
    /* Constant-size reads keep the verifier simple: one or two words. */
    if (len >= 16) {
        len = 16;
        bpf_probe_read_kernel(words, 16, (void *)args + (loc & 0xffff));
    } else {
        len = 8;
        bpf_probe_read_kernel(words, 8, (void *)args + (loc & 0xffff));
    }
#ifdef LS_FILTER_CPUS
    int hit = (words[0] & LS_MON_MASK0) || (words[1] & LS_MON_MASK1);
#else
    int hit = 0;
#endif
    if (ls_filtering() && !hit && !ls_tgid_match(bpf_get_current_pid_tgid() >> 32))
        return 0;
    struct ls_ipi_send_cpumask *e = ls_reserve(LS_KIND_IPI_SEND_CPUMASK, sizeof(struct ls_ipi_send_cpumask));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    u64 fn = (u64)args->callback;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->mask_words = len / 8;
    e->callsite = (u64)args->callsite;
    e->callback = fn;
    e->cpumask0 = words[0];
    e->cpumask1 = words[1];
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    ls_note_ipi_func(fn);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_move_numa)
{
    if (ls_filtering() && !ls_cpu_match(args->src_cpu) && !ls_cpu_match(args->dst_cpu) &&
        !ls_tid_match(args->pid))
        return 0;
    struct ls_sched_move_numa *e = ls_reserve(LS_KIND_SCHED_MOVE_NUMA, sizeof(struct ls_sched_move_numa));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = args->pid;
    e->tgid = args->tgid;
    e->ngid = args->ngid;
    e->src_cpu = args->src_cpu;
    e->src_nid = args->src_nid;
    e->dst_cpu = args->dst_cpu;
    e->dst_nid = args->dst_nid;
    ls_submit(e);
    return 0;
}

/* sched_stick_numa and sched_swap_numa describe a task pair the same way:
 * one field list, one fill. */
_Static_assert(sizeof(struct ls_sched_stick_numa) == sizeof(struct ls_sched_swap_numa), "same numa pair layout");
static __always_inline void ls_fill_numa_pair(struct ls_sched_stick_numa *e, int src_pid, int src_tgid, int src_cpu,
                                              int src_nid, int dst_pid, int dst_tgid, int dst_cpu, int dst_nid)
{
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->src_pid = src_pid;
    e->src_tgid = src_tgid;
    e->src_cpu = src_cpu;
    e->src_nid = src_nid;
    e->dst_pid = dst_pid;
    e->dst_tgid = dst_tgid;
    e->dst_cpu = dst_cpu;
    e->dst_nid = dst_nid;
    e->_pad = 0;
}

TRACEPOINT_PROBE(sched, sched_stick_numa)
{
    if (ls_filtering() && !ls_cpu_match(args->src_cpu) && !ls_cpu_match(args->dst_cpu) &&
        !ls_tid_match(args->src_pid) && !ls_tid_match(args->dst_pid))
        return 0;
    struct ls_sched_stick_numa *e = ls_reserve(LS_KIND_SCHED_STICK_NUMA, sizeof(struct ls_sched_stick_numa));
    if (!e)
        return 0;
    ls_fill_numa_pair((struct ls_sched_stick_numa *)e, args->src_pid, args->src_tgid, args->src_cpu,
                      args->src_nid, args->dst_pid, args->dst_tgid, args->dst_cpu, args->dst_nid);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_swap_numa)
{
    if (ls_filtering() && !ls_cpu_match(args->src_cpu) && !ls_cpu_match(args->dst_cpu) &&
        !ls_tid_match(args->src_pid) && !ls_tid_match(args->dst_pid))
        return 0;
    struct ls_sched_swap_numa *e = ls_reserve(LS_KIND_SCHED_SWAP_NUMA, sizeof(struct ls_sched_swap_numa));
    if (!e)
        return 0;
    ls_fill_numa_pair((struct ls_sched_stick_numa *)e, args->src_pid, args->src_tgid, args->src_cpu,
                      args->src_nid, args->dst_pid, args->dst_tgid, args->dst_cpu, args->dst_nid);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(migrate, mm_migrate_pages)
{
    if (!ls_keep_current())
        return 0;
    struct ls_mm_migrate_pages *e = ls_reserve(LS_KIND_MM_MIGRATE_PAGES, sizeof(struct ls_mm_migrate_pages));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->reason = args->reason;
    e->succeeded = args->succeeded;
    e->failed = args->failed;
    e->thp_succeeded = args->thp_succeeded;
    e->thp_failed = args->thp_failed;
    ls_submit(e);
    return 0;
}
