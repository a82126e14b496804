/* Lock & Syscall Contention: futex waits and wakes, sleeps, and (with --pid)
 * every syscall of the target processes.
 *
 * Two raw tracepoint programs, raw_syscalls sys_enter and sys_exit, do all of
 * it: the futex, nanosleep and clock_nanosleep records are dispatched by
 * syscall number inside them.  No classic syscall tracepoint is enabled, so
 * no syscall of any task pays for an argument copy into a perf buffer, and
 * one program per side runs instead of one per traced syscall.  What every
 * syscall of an unrelated process still pays is the kernel's syscall
 * tracepoint slow path plus a program that reads one argument and tests one
 * bit of an array (docs/benchmarks.md, "Syscall tracing cost").
 *
 * Raw arguments: sys_enter (struct pt_regs *regs, long id); sys_exit
 * (struct pt_regs *regs, long ret).  The syscall arguments and, at exit, the
 * syscall number (orig_ax) are read from regs with bpf_probe_read_kernel at
 * the offsets of the x86-64 user ABI (uapi asm/ptrace-abi.h: the ptrace
 * PTRACE_PEEKUSER offsets, identical to the kernel's struct pt_regs for
 * these registers and unchanged since x86-64 exists) -- never through the
 * compile headers' struct pt_regs, which may be another kernel's.  The
 * recorder compiles this module on x86-64 only (record/hooks_syscall.py).
 *
 * Filters, cheapest first:
 *   - a target process (--pid) is a bit in ls_sys_targets, indexed by tgid
 *     (an array: the lookup is inlined by the verifier, no hashing); children
 *     forked by a target during the capture get their bit in task_newtask;
 *   - a futex or sleep call is recorded when the thread is a target, or runs
 *     on a monitored CPU (--cpus), or no filter is active; when its enter is
 *     written the thread's bit in ls_sys_pending is set, and its exit is
 *     recorded exactly when that bit is set -- so exits of unrelated threads
 *     cost one bit test, and an exit is never recorded without its enter
 *     (one in flight when the window opened, whose enter found no ring,
 *     included).
 * Enter and exit are recorded separately; the analyzer pairs them. */

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
#define LS_NR_NANOSLEEP       35
#define LS_NR_FUTEX           202
#define LS_NR_CLOCK_NANOSLEEP 230

/* One bit per pid up to PID_MAX_LIMIT (4 M): 64 Ki words, 512 KiB. */
#define LS_SYS_PID_WORDS 65536

/* x86-64 registers at their ptrace offsets (uapi asm/ptrace-abi.h:
 * R10 = 56, R9 = 64, R8 = 72, RAX = 80, RCX = 88, RDX = 96, RSI = 104,
 * RDI = 112, ORIG_RAX = 120, RIP = 128, CS = 136). */
#define LS_REGS_TAIL_OFF 56
#define LS_REGS_ORIG_AX_OFF 120
struct ls_x86_regs_tail {
    u64 r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs;
};
#define LS_USER_CS 0x33  /* __USER_CS: a 64-bit task (ia32 tasks run on 0x23, other numbers) */

BPF_ARRAY(ls_sys_pending, u64, LS_SYS_PID_WORDS);

static __always_inline int ls_sys_pending_set(u32 tid)
{
    u32 w = tid >> 6;
    u64 *v = ls_sys_pending.lookup(&w);
    if (!v)
        return 0;
    __sync_fetch_and_or(v, 1ULL << (tid & 63));
    return 1;
}

/* Test and clear: the bit of a thread is only touched by that thread, but
 * its word is shared with 63 others, hence the atomics. */
static __always_inline int ls_sys_pending_take(u32 tid)
{
    u32 w = tid >> 6;
    u64 *v = ls_sys_pending.lookup(&w);
    u64 bit = 1ULL << (tid & 63);
    if (!v || !(*v & bit))
        return 0;
    __sync_fetch_and_and(v, ~bit);
    return 1;
}

#ifdef LS_FILTER_PIDS
/* Target processes by tgid, filled by the recorder (record/hooks_syscall.py). */
BPF_ARRAY(ls_sys_targets, u64, LS_SYS_PID_WORDS);

static __always_inline int ls_sys_target(u32 tgid)
{
    u32 w = tgid >> 6;
    u64 *v = ls_sys_targets.lookup(&w);
    return v && (*v >> (tgid & 63)) & 1;
}

/* A process forked by a target during the capture is a target (its threads
 * share its tgid; new threads of a target need nothing).  Classic
 * tracepoint: runs once per task creation, in the parent, before the child
 * can run. */
TRACEPOINT_PROBE(task, task_newtask)
{
    if (args->clone_flags & 0x00010000)  /* CLONE_THREAD */
        return 0;
    if (!ls_sys_target(bpf_get_current_pid_tgid() >> 32))
        return 0;
    u32 child = (u32)args->pid;
    u32 w = child >> 6;
    u64 *v = ls_sys_targets.lookup(&w);
    if (v)
        __sync_fetch_and_or(v, 1ULL << (child & 63));
    return 0;
}
#endif

/* A futex or sleep call of a non-target thread is kept when no filter is
 * active or it runs on a monitored CPU. */
static __always_inline int ls_sys_keep_other(void)
{
#if defined(LS_FILTER_CPUS)
    return ls_cpu_match(bpf_get_smp_processor_id());
#elif defined(LS_FILTER_PIDS)
    return 0;
#else
    return 1;
#endif
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

/* ls_futex_enter and ls_sleep_enter return whether the record was written. */
static __always_inline int ls_futex_enter(u64 id, struct ls_x86_regs_tail *r)
{
    struct ls_futex_enter *e = ls_reserve(LS_KIND_FUTEX_ENTER, sizeof(struct ls_futex_enter));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->op = (s32)r->si;           /* futex(uaddr, op, val, utime, uaddr2, val3) */
    e->uaddr = r->di;
    e->val = (u32)r->dx;
    e->has_timeout = r->r10 != 0;
    ls_submit(e);
    return 1;
}

static __always_inline int ls_sleep_enter(u64 id, s64 nr, struct ls_x86_regs_tail *r)
{
    struct ls_sleep_enter *e = ls_reserve(LS_KIND_SLEEP_ENTER, sizeof(struct ls_sleep_enter));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = (s32)nr;
    if (nr == LS_NR_NANOSLEEP) {  /* nanosleep(rqtp, rmtp): CLOCK_MONOTONIC, relative */
        e->clockid = 1;
        e->flags = 0;
        e->requested_ns = ls_read_timespec((const void *)r->di);
    } else {                      /* clock_nanosleep(which_clock, flags, rqtp, rmtp) */
        e->clockid = (s32)r->di;
        e->flags = (s32)r->si;
        e->requested_ns = ls_read_timespec((const void *)r->dx);
    }
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    ls_submit(e);
    return 1;
}

RAW_TRACEPOINT_PROBE(sys_enter)
{
    s64 nr = (s64)ctx->args[1];
    u64 id = bpf_get_current_pid_tgid();
    int target = 0;
#ifdef LS_FILTER_PIDS
    target = ls_sys_target(id >> 32);
    if (target) {
        struct ls_syscall_enter *e = ls_reserve(LS_KIND_SYSCALL_ENTER, sizeof(struct ls_syscall_enter));
        if (e) {
            e->ts_ns = bpf_ktime_get_ns();
            e->cpu = bpf_get_smp_processor_id();
            e->pid = (u32)id;
            e->tgid = id >> 32;
            e->nr = (s32)nr;
            ls_submit(e);
        }
    }
#endif
    if (nr != LS_NR_FUTEX && nr != LS_NR_NANOSLEEP && nr != LS_NR_CLOCK_NANOSLEEP)
        return 0;
    if (!target && !ls_sys_keep_other())
        return 0;
    struct ls_x86_regs_tail r = {};
    if (bpf_probe_read_kernel(&r, sizeof(r), (void *)ctx->args[0] + LS_REGS_TAIL_OFF))
        return 0;
    if ((u16)r.cs != LS_USER_CS)  /* an ia32 task: these numbers are other syscalls there */
        return 0;
    /* The bit only for an enter that was written: before the capture window
     * opens (no ring yet) or with its ring full, an enter is not, and its
     * exit must not be either. */
    if (nr == LS_NR_FUTEX ? ls_futex_enter(id, &r) : ls_sleep_enter(id, nr, &r))
        ls_sys_pending_set((u32)id);
    return 0;
}

/* Every exit record kind (syscall, futex, sleep) is one field list in the
 * schema: one fill for all three. */
_Static_assert(sizeof(struct ls_futex_exit) == sizeof(struct ls_syscall_exit), "same exit layout");
_Static_assert(sizeof(struct ls_sleep_exit) == sizeof(struct ls_syscall_exit), "same exit layout");
static __always_inline void ls_fill_exit(struct ls_syscall_exit *e, u64 ts, u32 cpu, u64 id, long nr, long ret)
{
    e->ts_ns = ts;
    e->cpu = cpu;
    e->pid = (u32)id;
    e->tgid = id >> 32;
    e->nr = (s32)nr;
    e->ret = ret;
}

RAW_TRACEPOINT_PROBE(sys_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    int pending = ls_sys_pending_take((u32)id);
    int target = 0;
#ifdef LS_FILTER_PIDS
    target = ls_sys_target(id >> 32);
#endif
    if (!pending && !target)
        return 0;
    s64 nr = -1;
    bpf_probe_read_kernel(&nr, sizeof(nr), (void *)ctx->args[0] + LS_REGS_ORIG_AX_OFF);
    s64 ret = (s64)ctx->args[1];
    u64 ts = bpf_ktime_get_ns();
    u32 cpu = bpf_get_smp_processor_id();
    if (target) {
        struct ls_syscall_exit *e = ls_reserve(LS_KIND_SYSCALL_EXIT, sizeof(struct ls_syscall_exit));
        if (e) {
            ls_fill_exit(e, ts, cpu, id, nr, ret);
            ls_submit(e);
        }
    }
    if (!pending)
        return 0;
    if (nr == LS_NR_FUTEX) {
        struct ls_futex_exit *e = ls_reserve(LS_KIND_FUTEX_EXIT, sizeof(struct ls_futex_exit));
        if (!e)
            return 0;
        ls_fill_exit((struct ls_syscall_exit *)e, ts, cpu, id, nr, ret);
        ls_submit(e);
    } else if (nr == LS_NR_NANOSLEEP || nr == LS_NR_CLOCK_NANOSLEEP) {
        struct ls_sleep_exit *e = ls_reserve(LS_KIND_SLEEP_EXIT, sizeof(struct ls_sleep_exit));
        if (!e)
            return 0;
        ls_fill_exit((struct ls_syscall_exit *)e, ts, cpu, id, nr, ret);
        ls_submit(e);
    }
    return 0;
}
