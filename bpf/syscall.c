/* Lock & Syscall Contention: futex waits and wakes, sleeps, and (with --pid)
 * every syscall of the target processes.
 * Tracepoints: syscalls:sys_enter_futex / sys_exit_futex,
 * syscalls:sys_{enter,exit}_nanosleep and _clock_nanosleep,
 * raw_syscalls:sys_enter / sys_exit (only compiled with LS_FILTER_PIDS, so a
 * capture without targets does not put every syscall of the host through a
 * program).  Enter and exit are recorded separately; the analyzer pairs them. */

BPF_RINGBUF_OUTPUT(rb_futex_enter, LS_PAGES_FUTEX_ENTER);
BPF_RINGBUF_OUTPUT(rb_futex_exit, LS_PAGES_FUTEX_EXIT);
BPF_RINGBUF_OUTPUT(rb_sleep_enter, LS_PAGES_SLEEP_ENTER);
BPF_RINGBUF_OUTPUT(rb_sleep_exit, LS_PAGES_SLEEP_EXIT);
BPF_RINGBUF_OUTPUT(rb_syscall_enter, LS_PAGES_SYSCALL_ENTER);
BPF_RINGBUF_OUTPUT(rb_syscall_exit, LS_PAGES_SYSCALL_EXIT);

/* A call of the current task is kept when no filter is active, or it runs on
 * a monitored CPU, or it belongs to a target (thread, or child forked during
 * the capture). */
static __always_inline int ls_sys_keep(u64 id)
{
    if (!ls_filtering())
        return 1;
    return ls_tgid_match(id >> 32) || ls_tid_match((u32)id) ||
           ls_cpu_match(bpf_get_smp_processor_id());
}

TRACEPOINT_PROBE(syscalls, sys_enter_futex)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_sys_keep(id))
        return 0;
    struct ls_futex_enter *e = rb_futex_enter.ringbuf_reserve(sizeof(struct ls_futex_enter));
    if (!e) {
        ls_count_lost(LS_KIND_FUTEX_ENTER);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->op = (s32)args->op;
    e->uaddr = (u64)args->uaddr;
    e->val = (u32)args->val;
    e->has_timeout = args->utime != 0;
    rb_futex_enter.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_futex)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_sys_keep(id))
        return 0;
    struct ls_futex_exit *e = rb_futex_exit.ringbuf_reserve(sizeof(struct ls_futex_exit));
    if (!e) {
        ls_count_lost(LS_KIND_FUTEX_EXIT);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = args->__syscall_nr;
    e->ret = args->ret;
    rb_futex_exit.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

/* The requested time is read from the caller's timespec; -1 when the read
 * fails (bad pointer: the call fails with EFAULT too). */
static __always_inline s64 ls_read_timespec(const void *uptr)
{
    struct { s64 sec; s64 nsec; } ts = {};
    if (!uptr || bpf_probe_read_user(&ts, sizeof(ts), uptr))
        return -1;
    return ts.sec * 1000000000LL + ts.nsec;
}

TRACEPOINT_PROBE(syscalls, sys_enter_nanosleep)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_sys_keep(id))
        return 0;
    struct ls_sleep_enter *e = rb_sleep_enter.ringbuf_reserve(sizeof(struct ls_sleep_enter));
    if (!e) {
        ls_count_lost(LS_KIND_SLEEP_ENTER);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = args->__syscall_nr;
    e->clockid = 1;  /* nanosleep(2) measures CLOCK_MONOTONIC */
    e->flags = 0;
    e->requested_ns = ls_read_timespec((const void *)args->rqtp);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    rb_sleep_enter.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_clock_nanosleep)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_sys_keep(id))
        return 0;
    struct ls_sleep_enter *e = rb_sleep_enter.ringbuf_reserve(sizeof(struct ls_sleep_enter));
    if (!e) {
        ls_count_lost(LS_KIND_SLEEP_ENTER);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = args->__syscall_nr;
    e->clockid = (s32)args->which_clock;
    e->flags = (s32)args->flags;
    e->requested_ns = ls_read_timespec((const void *)args->rqtp);
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    rb_sleep_enter.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_nanosleep)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_sys_keep(id))
        return 0;
    struct ls_sleep_exit *e = rb_sleep_exit.ringbuf_reserve(sizeof(struct ls_sleep_exit));
    if (!e) {
        ls_count_lost(LS_KIND_SLEEP_EXIT);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = args->__syscall_nr;
    e->ret = args->ret;
    rb_sleep_exit.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_clock_nanosleep)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_sys_keep(id))
        return 0;
    struct ls_sleep_exit *e = rb_sleep_exit.ringbuf_reserve(sizeof(struct ls_sleep_exit));
    if (!e) {
        ls_count_lost(LS_KIND_SLEEP_EXIT);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = args->__syscall_nr;
    e->ret = args->ret;
    rb_sleep_exit.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

#ifdef LS_FILTER_PIDS
/* Every syscall of the host passes here: the target test comes first and is
 * one hash lookup for the common (unrelated) case of a thread of another
 * process -- plus one for the rare child forked by a target. */
static __always_inline int ls_target_current(u64 id)
{
    return ls_tgid_match(id >> 32) || ls_tid_match((u32)id);
}

TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_target_current(id))
        return 0;
    struct ls_syscall_enter *e = rb_syscall_enter.ringbuf_reserve(sizeof(struct ls_syscall_enter));
    if (!e) {
        ls_count_lost(LS_KIND_SYSCALL_ENTER);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = (s32)args->id;
    rb_syscall_enter.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(raw_syscalls, sys_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    if (!ls_target_current(id))
        return 0;
    struct ls_syscall_exit *e = rb_syscall_exit.ringbuf_reserve(sizeof(struct ls_syscall_exit));
    if (!e) {
        ls_count_lost(LS_KIND_SYSCALL_EXIT);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = (s32)args->id;
    e->ret = args->ret;
    rb_syscall_exit.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}
#endif
