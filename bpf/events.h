/* Generated from schemas/events.py by `python -m latencyscope.schemas.codegen`. Do not edit. */
#ifndef LATENCYSCOPE_EVENTS_H
#define LATENCYSCOPE_EVENTS_H

#define LS_NKINDS 32
#define LS_KIND_SCHED_SWITCH 0
#define LS_KIND_SCHED_WAKEUP 1
#define LS_KIND_SCHED_WAKEUP_NEW 2
#define LS_KIND_SCHED_MIGRATE_TASK 3
#define LS_KIND_TASK_RENAME 4
#define LS_KIND_IRQ_HANDLER_ENTRY 5
#define LS_KIND_IRQ_HANDLER_EXIT 6
#define LS_KIND_SOFTIRQ_ENTRY 7
#define LS_KIND_SOFTIRQ_EXIT 8
#define LS_KIND_PAGE_FAULT_USER 9
#define LS_KIND_PAGE_FAULT_KERNEL 10
#define LS_KIND_PAGE_FAULT_MAJOR 11
#define LS_KIND_TLB_FLUSH 12
#define LS_KIND_IPI_SEND_CPU 13
#define LS_KIND_IPI_SEND_CPUMASK 14
#define LS_KIND_SCHED_MOVE_NUMA 15
#define LS_KIND_SCHED_STICK_NUMA 16
#define LS_KIND_SCHED_SWAP_NUMA 17
#define LS_KIND_MM_MIGRATE_PAGES 18
#define LS_KIND_FUTEX_ENTER 19
#define LS_KIND_FUTEX_EXIT 20
#define LS_KIND_SLEEP_ENTER 21
#define LS_KIND_SLEEP_EXIT 22
#define LS_KIND_SYSCALL_ENTER 23
#define LS_KIND_SYSCALL_EXIT 24
#define LS_KIND_NAPI_POLL 25
#define LS_KIND_NETIF_RECEIVE_SKB 26
#define LS_KIND_SKB_COPY_DATAGRAM_IOVEC 27
#define LS_KIND_CONSUME_SKB 28
#define LS_KIND_UDP_ENQUEUE 29
#define LS_KIND_UDP_RECV 30
#define LS_KIND_KFREE_SKB 31

/* Staged kinds: chunks of LS_STAGE_RECORDS records per ring entry; stages
 * flushed before they are full: chunks of LS_SMALL_RECORDS in a second ring. */
#define LS_STAGE_RECORDS 64
#define LS_SMALL_RECORDS 2
#define LS_STAGE_AGE_NS 1000000ULL

/* sched:sched_switch: A CPU switched from prev to next. */
struct ls_sched_switch {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __s64 prev_state;        /* TASK_* state of prev; 0 = runnable, bit 0x100 (TASK_REPORT_MAX) = preempted [flags] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 prev_pid;          /* thread switched out [tid] */
    __u32 prev_tgid;         /* process of prev (prev is current here) [tgid] */
    __s32 prev_prio;         /* kernel priority of prev [prio] */
    __s32 next_pid;          /* thread switched in [tid] */
    __s32 next_prio;         /* kernel priority of next [prio] */
};
_Static_assert(sizeof(struct ls_sched_switch) == 40, "sched_switch size");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, ts_ns) == 0, "sched_switch.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_state) == 8, "sched_switch.prev_state");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, cpu) == 16, "sched_switch.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_pid) == 20, "sched_switch.prev_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_tgid) == 24, "sched_switch.prev_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, prev_prio) == 28, "sched_switch.prev_prio");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, next_pid) == 32, "sched_switch.next_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_switch, next_prio) == 36, "sched_switch.next_prio");

/* sched:sched_wakeup: A sleeping task was made runnable. */
struct ls_sched_wakeup {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task woken (thread id) [tid] */
    __s32 target_cpu;        /* CPU the task was woken onto (the filter key) [cpu] */
    __s32 prio;              /* kernel priority of the woken task [prio] */
    __u32 waker_pid;         /* thread that ran the wakeup (current) [tid] */
    __u32 waker_tgid;        /* process of the waker [tgid] */
};
_Static_assert(sizeof(struct ls_sched_wakeup) == 32, "sched_wakeup size");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, ts_ns) == 0, "sched_wakeup.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, cpu) == 8, "sched_wakeup.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, pid) == 12, "sched_wakeup.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, target_cpu) == 16, "sched_wakeup.target_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, prio) == 20, "sched_wakeup.prio");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, waker_pid) == 24, "sched_wakeup.waker_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup, waker_tgid) == 28, "sched_wakeup.waker_tgid");

/* sched:sched_wakeup_new: A newly forked task was made runnable for the first time. */
struct ls_sched_wakeup_new {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task woken (thread id) [tid] */
    __s32 target_cpu;        /* CPU the task was woken onto (the filter key) [cpu] */
    __s32 prio;              /* kernel priority of the woken task [prio] */
    __u32 waker_pid;         /* thread that ran the wakeup (current) [tid] */
    __u32 waker_tgid;        /* process of the waker [tgid] */
    char comm[16];           /* name of the woken task */
};
_Static_assert(sizeof(struct ls_sched_wakeup_new) == 48, "sched_wakeup_new size");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, ts_ns) == 0, "sched_wakeup_new.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, cpu) == 8, "sched_wakeup_new.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, pid) == 12, "sched_wakeup_new.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, target_cpu) == 16, "sched_wakeup_new.target_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, prio) == 20, "sched_wakeup_new.prio");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, waker_pid) == 24, "sched_wakeup_new.waker_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, waker_tgid) == 28, "sched_wakeup_new.waker_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_wakeup_new, comm) == 32, "sched_wakeup_new.comm");

/* sched:sched_migrate_task: A task was moved from one CPU's runqueue to another's. */
struct ls_sched_migrate_task {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task migrated [tid] */
    __s32 prio;              /* kernel priority [prio] */
    __s32 orig_cpu;          /* CPU it left [cpu] */
    __s32 dest_cpu;          /* CPU it was moved to [cpu] */
    __u32 by_pid;            /* thread running when the migration happened (current) [tid] */
    char comm[16];           /* name of the task */
};
_Static_assert(sizeof(struct ls_sched_migrate_task) == 48, "sched_migrate_task size");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, ts_ns) == 0, "sched_migrate_task.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, cpu) == 8, "sched_migrate_task.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, pid) == 12, "sched_migrate_task.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, prio) == 16, "sched_migrate_task.prio");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, orig_cpu) == 20, "sched_migrate_task.orig_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, dest_cpu) == 24, "sched_migrate_task.dest_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, by_pid) == 28, "sched_migrate_task.by_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_migrate_task, comm) == 32, "sched_migrate_task.comm");

/* task:task_rename: A task's name changed: exec, prctl(PR_SET_NAME), a write to /proc/PID/comm. */
struct ls_task_rename {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task renamed [tid] */
    char oldcomm[16];        /* its name before */
    char comm[16];           /* its name from now on */
};
_Static_assert(sizeof(struct ls_task_rename) == 48, "task_rename size");
_Static_assert(__builtin_offsetof(struct ls_task_rename, ts_ns) == 0, "task_rename.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_task_rename, cpu) == 8, "task_rename.cpu");
_Static_assert(__builtin_offsetof(struct ls_task_rename, pid) == 12, "task_rename.pid");
_Static_assert(__builtin_offsetof(struct ls_task_rename, oldcomm) == 16, "task_rename.oldcomm");
_Static_assert(__builtin_offsetof(struct ls_task_rename, comm) == 32, "task_rename.comm");

/* irq:irq_handler_entry: A hard IRQ handler (one action of IRQ line irq) starts. */
struct ls_irq_handler_entry {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 irq;               /* IRQ number (as in /proc/interrupts) [irq] */
    __s32 pid;               /* thread interrupted (current; 0 = idle) [tid] */
    __u32 tgid;              /* process of the interrupted thread [tgid] */
    char name[16];           /* name of the handler's action (device), first 15 bytes */
};
_Static_assert(sizeof(struct ls_irq_handler_entry) == 40, "irq_handler_entry size");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_entry, ts_ns) == 0, "irq_handler_entry.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_entry, cpu) == 8, "irq_handler_entry.cpu");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_entry, irq) == 12, "irq_handler_entry.irq");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_entry, pid) == 16, "irq_handler_entry.pid");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_entry, tgid) == 20, "irq_handler_entry.tgid");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_entry, name) == 24, "irq_handler_entry.name");

/* irq:irq_handler_exit: A hard IRQ handler returns. */
struct ls_irq_handler_exit {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 irq;               /* IRQ number [irq] */
    __s32 ret;               /* 0 = IRQ_NONE (not handled), 1 = handled, 2 = wake thread [irqreturn] */
    __u32 _pad;              /* zero (alignment) */
};
_Static_assert(sizeof(struct ls_irq_handler_exit) == 24, "irq_handler_exit size");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_exit, ts_ns) == 0, "irq_handler_exit.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_exit, cpu) == 8, "irq_handler_exit.cpu");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_exit, irq) == 12, "irq_handler_exit.irq");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_exit, ret) == 16, "irq_handler_exit.ret");
_Static_assert(__builtin_offsetof(struct ls_irq_handler_exit, _pad) == 20, "irq_handler_exit._pad");

/* irq:softirq_entry: A softirq vector starts running. */
struct ls_softirq_entry {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __u32 vec;               /* softirq vector (0 HI, 1 TIMER, 2 NET_TX, 3 NET_RX, 4 BLOCK, 5 IRQ_POLL, 6 TASKLET, 7 SCHED, 8 HRTIMER, 9 RCU) [vector] */
    __s32 pid;               /* thread that was running when the softirq ran (current; 0 = idle) [tid] */
    __u32 tgid;              /* process of that thread [tgid] */
};
_Static_assert(sizeof(struct ls_softirq_entry) == 24, "softirq_entry size");
_Static_assert(__builtin_offsetof(struct ls_softirq_entry, ts_ns) == 0, "softirq_entry.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_softirq_entry, cpu) == 8, "softirq_entry.cpu");
_Static_assert(__builtin_offsetof(struct ls_softirq_entry, vec) == 12, "softirq_entry.vec");
_Static_assert(__builtin_offsetof(struct ls_softirq_entry, pid) == 16, "softirq_entry.pid");
_Static_assert(__builtin_offsetof(struct ls_softirq_entry, tgid) == 20, "softirq_entry.tgid");

/* irq:softirq_exit: A softirq vector finished running. */
struct ls_softirq_exit {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __u32 vec;               /* softirq vector (0 HI, 1 TIMER, 2 NET_TX, 3 NET_RX, 4 BLOCK, 5 IRQ_POLL, 6 TASKLET, 7 SCHED, 8 HRTIMER, 9 RCU) [vector] */
    __s32 pid;               /* thread that was running when the softirq ran (current; 0 = idle) [tid] */
    __u32 tgid;              /* process of that thread [tgid] */
};
_Static_assert(sizeof(struct ls_softirq_exit) == 24, "softirq_exit size");
_Static_assert(__builtin_offsetof(struct ls_softirq_exit, ts_ns) == 0, "softirq_exit.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_softirq_exit, cpu) == 8, "softirq_exit.cpu");
_Static_assert(__builtin_offsetof(struct ls_softirq_exit, vec) == 12, "softirq_exit.vec");
_Static_assert(__builtin_offsetof(struct ls_softirq_exit, pid) == 16, "softirq_exit.pid");
_Static_assert(__builtin_offsetof(struct ls_softirq_exit, tgid) == 20, "softirq_exit.tgid");

/* exceptions:page_fault_user: A page fault taken in user mode (minor or major). */
struct ls_page_fault_user {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* faulting thread [tid] */
    __u32 tgid;              /* its process [tgid] */
    __u32 error_code;        /* x86 page-fault error code (bit 0 present, 1 write, 2 user, 4 insn fetch) [flags] */
    __u64 address;           /* faulting virtual address [addr] */
    __u64 ip;                /* instruction pointer at the fault [addr] */
    char comm[16];           /* name of the faulting thread */
};
_Static_assert(sizeof(struct ls_page_fault_user) == 56, "page_fault_user size");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, ts_ns) == 0, "page_fault_user.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, cpu) == 8, "page_fault_user.cpu");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, pid) == 12, "page_fault_user.pid");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, tgid) == 16, "page_fault_user.tgid");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, error_code) == 20, "page_fault_user.error_code");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, address) == 24, "page_fault_user.address");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, ip) == 32, "page_fault_user.ip");
_Static_assert(__builtin_offsetof(struct ls_page_fault_user, comm) == 40, "page_fault_user.comm");

/* exceptions:page_fault_kernel: A page fault taken in kernel mode on a user address (e.g. copy_to_user into fresh memory); kernel addresses are not recorded. */
struct ls_page_fault_kernel {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* faulting thread [tid] */
    __u32 tgid;              /* its process [tgid] */
    __u32 error_code;        /* x86 page-fault error code (bit 0 present, 1 write, 2 user, 4 insn fetch) [flags] */
    __u64 address;           /* faulting virtual address [addr] */
    __u64 ip;                /* instruction pointer at the fault [addr] */
    char comm[16];           /* name of the faulting thread */
};
_Static_assert(sizeof(struct ls_page_fault_kernel) == 56, "page_fault_kernel size");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, ts_ns) == 0, "page_fault_kernel.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, cpu) == 8, "page_fault_kernel.cpu");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, pid) == 12, "page_fault_kernel.pid");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, tgid) == 16, "page_fault_kernel.tgid");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, error_code) == 20, "page_fault_kernel.error_code");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, address) == 24, "page_fault_kernel.address");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, ip) == 32, "page_fault_kernel.ip");
_Static_assert(__builtin_offsetof(struct ls_page_fault_kernel, comm) == 40, "page_fault_kernel.comm");

/* perf:page-faults-major: A major page fault (the task waited for the page to be read): BPF program on the software perf event PERF_COUNT_SW_PAGE_FAULTS_MAJ with sample_period 1, on each CPU. */
struct ls_page_fault_major {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* faulting thread [tid] */
    __u32 tgid;              /* its process [tgid] */
    __u32 sample_period;     /* perf sample period (1: every major fault recorded) [events] */
    __u64 address;           /* faulting virtual address [addr] */
    __u64 ip;                /* instruction pointer of the interrupted context [addr] */
    char comm[16];           /* name of the faulting thread */
};
_Static_assert(sizeof(struct ls_page_fault_major) == 56, "page_fault_major size");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, ts_ns) == 0, "page_fault_major.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, cpu) == 8, "page_fault_major.cpu");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, pid) == 12, "page_fault_major.pid");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, tgid) == 16, "page_fault_major.tgid");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, sample_period) == 20, "page_fault_major.sample_period");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, address) == 24, "page_fault_major.address");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, ip) == 32, "page_fault_major.ip");
_Static_assert(__builtin_offsetof(struct ls_page_fault_major, comm) == 40, "page_fault_major.comm");

/* tlb:tlb_flush: A CPU flushed (part of) its TLB; reason 1 = it received a remote shootdown. Reason 0 (flush on task switch, one per context switch) is not recorded. */
struct ls_tlb_flush {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 reason;            /* 0 task switch, 1 remote shootdown (received), 2 local shootdown, 3 local MM shootdown, 4 remote IPI send, 5 remote wrong CPU [enum] */
    __s32 pid;               /* thread running on the CPU (current) [tid] */
    __u32 tgid;              /* its process [tgid] */
    __u64 pages;             /* pages flushed (-1 = all) [pages] */
    char comm[16];           /* name of the current thread */
};
_Static_assert(sizeof(struct ls_tlb_flush) == 48, "tlb_flush size");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, ts_ns) == 0, "tlb_flush.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, cpu) == 8, "tlb_flush.cpu");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, reason) == 12, "tlb_flush.reason");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, pid) == 16, "tlb_flush.pid");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, tgid) == 20, "tlb_flush.tgid");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, pages) == 24, "tlb_flush.pages");
_Static_assert(__builtin_offsetof(struct ls_tlb_flush, comm) == 32, "tlb_flush.comm");

/* ipi:ipi_send_cpu: An inter-processor interrupt sent to one CPU (callback 0 = reschedule). */
struct ls_ipi_send_cpu {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __u32 target_cpu;        /* CPU the IPI is sent to (the filter key) [cpu] */
    __s32 pid;               /* sending thread [tid] */
    __u32 tgid;              /* its process [tgid] */
    __u64 callsite;          /* kernel address that sent it [addr] */
    __u64 callback;          /* function the target will run (0: reschedule) [addr] */
    char comm[16];           /* name of the sending thread */
};
_Static_assert(sizeof(struct ls_ipi_send_cpu) == 56, "ipi_send_cpu size");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, ts_ns) == 0, "ipi_send_cpu.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, cpu) == 8, "ipi_send_cpu.cpu");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, target_cpu) == 12, "ipi_send_cpu.target_cpu");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, pid) == 16, "ipi_send_cpu.pid");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, tgid) == 20, "ipi_send_cpu.tgid");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, callsite) == 24, "ipi_send_cpu.callsite");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, callback) == 32, "ipi_send_cpu.callback");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpu, comm) == 40, "ipi_send_cpu.comm");

/* ipi:ipi_send_cpumask: An inter-processor interrupt sent to a set of CPUs (e.g. a TLB shootdown). */
struct ls_ipi_send_cpumask {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* sending thread [tid] */
    __u32 tgid;              /* its process [tgid] */
    __u32 mask_words;        /* how many 64-bit words of the CPU mask are recorded (<= 2) [words] */
    __u64 callsite;          /* kernel address that sent it [addr] */
    __u64 callback;          /* function the targets will run [addr] */
    __u64 cpumask0;          /* target CPUs 0-63 [bitmap] */
    __u64 cpumask1;          /* target CPUs 64-127 [bitmap] */
    char comm[16];           /* name of the sending thread */
};
_Static_assert(sizeof(struct ls_ipi_send_cpumask) == 72, "ipi_send_cpumask size");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, ts_ns) == 0, "ipi_send_cpumask.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, cpu) == 8, "ipi_send_cpumask.cpu");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, pid) == 12, "ipi_send_cpumask.pid");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, tgid) == 16, "ipi_send_cpumask.tgid");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, mask_words) == 20, "ipi_send_cpumask.mask_words");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, callsite) == 24, "ipi_send_cpumask.callsite");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, callback) == 32, "ipi_send_cpumask.callback");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, cpumask0) == 40, "ipi_send_cpumask.cpumask0");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, cpumask1) == 48, "ipi_send_cpumask.cpumask1");
_Static_assert(__builtin_offsetof(struct ls_ipi_send_cpumask, comm) == 56, "ipi_send_cpumask.comm");

/* sched:sched_move_numa: NUMA balancing moved a task to another node. */
struct ls_sched_move_numa {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* task moved [tid] */
    __s32 tgid;              /* its process [tgid] */
    __s32 ngid;              /* its NUMA group [tgid] */
    __s32 src_cpu;           /* CPU it left [cpu] */
    __s32 src_nid;           /* node it left [node] */
    __s32 dst_cpu;           /* CPU it went to [cpu] */
    __s32 dst_nid;           /* node it went to [node] */
};
_Static_assert(sizeof(struct ls_sched_move_numa) == 40, "sched_move_numa size");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, ts_ns) == 0, "sched_move_numa.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, cpu) == 8, "sched_move_numa.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, pid) == 12, "sched_move_numa.pid");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, tgid) == 16, "sched_move_numa.tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, ngid) == 20, "sched_move_numa.ngid");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, src_cpu) == 24, "sched_move_numa.src_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, src_nid) == 28, "sched_move_numa.src_nid");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, dst_cpu) == 32, "sched_move_numa.dst_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_move_numa, dst_nid) == 36, "sched_move_numa.dst_nid");

/* sched:sched_stick_numa: NUMA balancing wanted to move a task but kept it. */
struct ls_sched_stick_numa {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 src_pid;           /* task on the source CPU [tid] */
    __s32 src_tgid;          /* its process [tgid] */
    __s32 src_cpu;           /* source CPU [cpu] */
    __s32 src_nid;           /* source NUMA node [node] */
    __s32 dst_pid;           /* task on the destination CPU (-1 if none) [tid] */
    __s32 dst_tgid;          /* its process [tgid] */
    __s32 dst_cpu;           /* destination CPU [cpu] */
    __s32 dst_nid;           /* destination NUMA node [node] */
    __u32 _pad;              /* zero (alignment) */
};
_Static_assert(sizeof(struct ls_sched_stick_numa) == 48, "sched_stick_numa size");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, ts_ns) == 0, "sched_stick_numa.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, cpu) == 8, "sched_stick_numa.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, src_pid) == 12, "sched_stick_numa.src_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, src_tgid) == 16, "sched_stick_numa.src_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, src_cpu) == 20, "sched_stick_numa.src_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, src_nid) == 24, "sched_stick_numa.src_nid");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, dst_pid) == 28, "sched_stick_numa.dst_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, dst_tgid) == 32, "sched_stick_numa.dst_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, dst_cpu) == 36, "sched_stick_numa.dst_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, dst_nid) == 40, "sched_stick_numa.dst_nid");
_Static_assert(__builtin_offsetof(struct ls_sched_stick_numa, _pad) == 44, "sched_stick_numa._pad");

/* sched:sched_swap_numa: NUMA balancing swapped two tasks between nodes. */
struct ls_sched_swap_numa {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 src_pid;           /* task on the source CPU [tid] */
    __s32 src_tgid;          /* its process [tgid] */
    __s32 src_cpu;           /* source CPU [cpu] */
    __s32 src_nid;           /* source NUMA node [node] */
    __s32 dst_pid;           /* task on the destination CPU (-1 if none) [tid] */
    __s32 dst_tgid;          /* its process [tgid] */
    __s32 dst_cpu;           /* destination CPU [cpu] */
    __s32 dst_nid;           /* destination NUMA node [node] */
    __u32 _pad;              /* zero (alignment) */
};
_Static_assert(sizeof(struct ls_sched_swap_numa) == 48, "sched_swap_numa size");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, ts_ns) == 0, "sched_swap_numa.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, cpu) == 8, "sched_swap_numa.cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, src_pid) == 12, "sched_swap_numa.src_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, src_tgid) == 16, "sched_swap_numa.src_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, src_cpu) == 20, "sched_swap_numa.src_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, src_nid) == 24, "sched_swap_numa.src_nid");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, dst_pid) == 28, "sched_swap_numa.dst_pid");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, dst_tgid) == 32, "sched_swap_numa.dst_tgid");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, dst_cpu) == 36, "sched_swap_numa.dst_cpu");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, dst_nid) == 40, "sched_swap_numa.dst_nid");
_Static_assert(__builtin_offsetof(struct ls_sched_swap_numa, _pad) == 44, "sched_swap_numa._pad");

/* migrate:mm_migrate_pages: The kernel migrated pages (reason 5 = NUMA misplaced; 0 compaction). */
struct ls_mm_migrate_pages {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread that ran the migration (current) [tid] */
    __u32 tgid;              /* its process [tgid] */
    __s32 reason;            /* 0 compaction, 1 memory_failure, 2 memory_hotplug, 3 syscall_or_cpuset, 4 mempolicy_mbind, 5 numa_misplaced, 6 contig_range, 7 longterm_pin, 8 demotion, 9 damon [enum] */
    __u64 succeeded;         /* pages migrated [pages] */
    __u64 failed;            /* pages that failed to migrate [pages] */
    __u64 thp_succeeded;     /* transparent huge pages migrated [pages] */
    __u64 thp_failed;        /* transparent huge pages that failed [pages] */
};
_Static_assert(sizeof(struct ls_mm_migrate_pages) == 56, "mm_migrate_pages size");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, ts_ns) == 0, "mm_migrate_pages.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, cpu) == 8, "mm_migrate_pages.cpu");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, pid) == 12, "mm_migrate_pages.pid");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, tgid) == 16, "mm_migrate_pages.tgid");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, reason) == 20, "mm_migrate_pages.reason");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, succeeded) == 24, "mm_migrate_pages.succeeded");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, failed) == 32, "mm_migrate_pages.failed");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, thp_succeeded) == 40, "mm_migrate_pages.thp_succeeded");
_Static_assert(__builtin_offsetof(struct ls_mm_migrate_pages, thp_failed) == 48, "mm_migrate_pages.thp_failed");

/* raw_syscalls:sys_enter: A thread entered futex(2): a lock or condition wait, or a wake (raw sys_enter, futex number). */
struct ls_futex_enter {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread making the call (current) [tid] */
    __u32 tgid;              /* process of the thread [tgid] */
    __s32 op;                /* futex op (cmd in the low 7 bits; 128 = PRIVATE, 256 = CLOCK_REALTIME) [flags] */
    __u64 uaddr;             /* user address of the futex word (per process unless shared) [address] */
    __u32 val;               /* val argument (expected value for waits, count for wakes) */
    __u32 has_timeout;       /* 1 when a timeout pointer was passed [bool] */
};
_Static_assert(sizeof(struct ls_futex_enter) == 40, "futex_enter size");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, ts_ns) == 0, "futex_enter.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, cpu) == 8, "futex_enter.cpu");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, pid) == 12, "futex_enter.pid");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, tgid) == 16, "futex_enter.tgid");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, op) == 20, "futex_enter.op");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, uaddr) == 24, "futex_enter.uaddr");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, val) == 32, "futex_enter.val");
_Static_assert(__builtin_offsetof(struct ls_futex_enter, has_timeout) == 36, "futex_enter.has_timeout");

/* raw_syscalls:sys_exit: futex(2) returned (for a wait: the thread stopped waiting); recorded when its enter was. */
struct ls_futex_exit {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread making the call (current) [tid] */
    __u32 tgid;              /* process of the thread [tgid] */
    __s32 nr;                /* syscall number (orig_ax; see the manifest's syscall table) [syscall] */
    __s64 ret;               /* return value (negative: -errno) */
};
_Static_assert(sizeof(struct ls_futex_exit) == 32, "futex_exit size");
_Static_assert(__builtin_offsetof(struct ls_futex_exit, ts_ns) == 0, "futex_exit.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_futex_exit, cpu) == 8, "futex_exit.cpu");
_Static_assert(__builtin_offsetof(struct ls_futex_exit, pid) == 12, "futex_exit.pid");
_Static_assert(__builtin_offsetof(struct ls_futex_exit, tgid) == 16, "futex_exit.tgid");
_Static_assert(__builtin_offsetof(struct ls_futex_exit, nr) == 20, "futex_exit.nr");
_Static_assert(__builtin_offsetof(struct ls_futex_exit, ret) == 24, "futex_exit.ret");

/* raw_syscalls:sys_enter: A thread entered nanosleep(2) or clock_nanosleep(2) (both feed this table; raw sys_enter). */
struct ls_sleep_enter {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread making the call (current) [tid] */
    __u32 tgid;              /* process of the thread [tgid] */
    __s32 nr;                /* syscall number: nanosleep or clock_nanosleep [syscall] */
    __s32 clockid;           /* clock (nanosleep: CLOCK_MONOTONIC = 1) [clockid] */
    __s32 flags;             /* 1 = TIMER_ABSTIME: requested_ns is an absolute time on clockid [flags] */
    __s64 requested_ns;      /* requested duration (or absolute deadline); -1 if unreadable [ns] */
    char comm[16];           /* name of the thread */
};
_Static_assert(sizeof(struct ls_sleep_enter) == 56, "sleep_enter size");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, ts_ns) == 0, "sleep_enter.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, cpu) == 8, "sleep_enter.cpu");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, pid) == 12, "sleep_enter.pid");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, tgid) == 16, "sleep_enter.tgid");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, nr) == 20, "sleep_enter.nr");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, clockid) == 24, "sleep_enter.clockid");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, flags) == 28, "sleep_enter.flags");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, requested_ns) == 32, "sleep_enter.requested_ns");
_Static_assert(__builtin_offsetof(struct ls_sleep_enter, comm) == 40, "sleep_enter.comm");

/* raw_syscalls:sys_exit: nanosleep(2) or clock_nanosleep(2) returned; recorded when its enter was. */
struct ls_sleep_exit {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread making the call (current) [tid] */
    __u32 tgid;              /* process of the thread [tgid] */
    __s32 nr;                /* syscall number (orig_ax; see the manifest's syscall table) [syscall] */
    __s64 ret;               /* return value (negative: -errno) */
};
_Static_assert(sizeof(struct ls_sleep_exit) == 32, "sleep_exit size");
_Static_assert(__builtin_offsetof(struct ls_sleep_exit, ts_ns) == 0, "sleep_exit.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_sleep_exit, cpu) == 8, "sleep_exit.cpu");
_Static_assert(__builtin_offsetof(struct ls_sleep_exit, pid) == 12, "sleep_exit.pid");
_Static_assert(__builtin_offsetof(struct ls_sleep_exit, tgid) == 16, "sleep_exit.tgid");
_Static_assert(__builtin_offsetof(struct ls_sleep_exit, nr) == 20, "sleep_exit.nr");
_Static_assert(__builtin_offsetof(struct ls_sleep_exit, ret) == 24, "sleep_exit.ret");

/* raw_syscalls:sys_enter: A thread of a target process (--pid) entered any syscall (recorded only with --pid). */
struct ls_syscall_enter {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread making the call (current) [tid] */
    __u32 tgid;              /* process of the thread [tgid] */
    __s32 nr;                /* syscall number [syscall] */
};
_Static_assert(sizeof(struct ls_syscall_enter) == 24, "syscall_enter size");
_Static_assert(__builtin_offsetof(struct ls_syscall_enter, ts_ns) == 0, "syscall_enter.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_syscall_enter, cpu) == 8, "syscall_enter.cpu");
_Static_assert(__builtin_offsetof(struct ls_syscall_enter, pid) == 12, "syscall_enter.pid");
_Static_assert(__builtin_offsetof(struct ls_syscall_enter, tgid) == 16, "syscall_enter.tgid");
_Static_assert(__builtin_offsetof(struct ls_syscall_enter, nr) == 20, "syscall_enter.nr");

/* raw_syscalls:sys_exit: A syscall of a target process returned (recorded only with --pid). */
struct ls_syscall_exit {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread making the call (current) [tid] */
    __u32 tgid;              /* process of the thread [tgid] */
    __s32 nr;                /* syscall number (orig_ax; see the manifest's syscall table) [syscall] */
    __s64 ret;               /* return value (negative: -errno) */
};
_Static_assert(sizeof(struct ls_syscall_exit) == 32, "syscall_exit size");
_Static_assert(__builtin_offsetof(struct ls_syscall_exit, ts_ns) == 0, "syscall_exit.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_syscall_exit, cpu) == 8, "syscall_exit.cpu");
_Static_assert(__builtin_offsetof(struct ls_syscall_exit, pid) == 12, "syscall_exit.pid");
_Static_assert(__builtin_offsetof(struct ls_syscall_exit, tgid) == 16, "syscall_exit.tgid");
_Static_assert(__builtin_offsetof(struct ls_syscall_exit, nr) == 20, "syscall_exit.nr");
_Static_assert(__builtin_offsetof(struct ls_syscall_exit, ret) == 24, "syscall_exit.ret");

/* napi:napi_poll: One NAPI poll of a device's receive queue (work done vs budget). */
struct ls_napi_poll {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* thread running the poll (0 / ksoftirqd / a busy-polling task) [tid] */
    __u64 napi;              /* napi_struct (one per receive queue) [address] */
    __s32 work;              /* packets processed in this poll [packets] */
    __s32 budget;            /* most the poll could process (work == budget: more pending) [packets] */
    char dev[16];            /* device name ('(no_device)' for the per-CPU backlog) */
};
_Static_assert(sizeof(struct ls_napi_poll) == 48, "napi_poll size");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, ts_ns) == 0, "napi_poll.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, cpu) == 8, "napi_poll.cpu");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, pid) == 12, "napi_poll.pid");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, napi) == 16, "napi_poll.napi");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, work) == 24, "napi_poll.work");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, budget) == 28, "napi_poll.budget");
_Static_assert(__builtin_offsetof(struct ls_napi_poll, dev) == 32, "napi_poll.dev");

/* net:netif_receive_skb: A packet entered the network stack on a device. */
struct ls_netif_receive_skb {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __u32 len;               /* skb->len at the stack's entry (without the link header) [bytes] */
    __u64 skbaddr;           /* the packet's sk_buff (reused after it is freed) [address] */
    char dev[16];            /* receiving device */
};
_Static_assert(sizeof(struct ls_netif_receive_skb) == 40, "netif_receive_skb size");
_Static_assert(__builtin_offsetof(struct ls_netif_receive_skb, ts_ns) == 0, "netif_receive_skb.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_netif_receive_skb, cpu) == 8, "netif_receive_skb.cpu");
_Static_assert(__builtin_offsetof(struct ls_netif_receive_skb, len) == 12, "netif_receive_skb.len");
_Static_assert(__builtin_offsetof(struct ls_netif_receive_skb, skbaddr) == 16, "netif_receive_skb.skbaddr");
_Static_assert(__builtin_offsetof(struct ls_netif_receive_skb, dev) == 24, "netif_receive_skb.dev");

/* skb:skb_copy_datagram_iovec: Packet data was copied to a user buffer (recv/read by a socket owner). */
struct ls_skb_copy_datagram_iovec {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* receiving thread [tid] */
    __u64 skbaddr;           /* the packet's sk_buff [address] */
    __u32 tgid;              /* receiving process [tgid] */
    __s32 len;               /* bytes copied [bytes] */
};
_Static_assert(sizeof(struct ls_skb_copy_datagram_iovec) == 32, "skb_copy_datagram_iovec size");
_Static_assert(__builtin_offsetof(struct ls_skb_copy_datagram_iovec, ts_ns) == 0, "skb_copy_datagram_iovec.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_skb_copy_datagram_iovec, cpu) == 8, "skb_copy_datagram_iovec.cpu");
_Static_assert(__builtin_offsetof(struct ls_skb_copy_datagram_iovec, pid) == 12, "skb_copy_datagram_iovec.pid");
_Static_assert(__builtin_offsetof(struct ls_skb_copy_datagram_iovec, skbaddr) == 16, "skb_copy_datagram_iovec.skbaddr");
_Static_assert(__builtin_offsetof(struct ls_skb_copy_datagram_iovec, tgid) == 24, "skb_copy_datagram_iovec.tgid");
_Static_assert(__builtin_offsetof(struct ls_skb_copy_datagram_iovec, len) == 28, "skb_copy_datagram_iovec.len");

/* skb:consume_skb: A packet was freed by a receive call after its data reached user space.  UDP copies a linear skb without the skb_copy_datagram_iovec tracepoint, so this is its user copy; the kernel keeps only frees called from the receive paths (skb_consume_udp, udp(v6)_recvmsg, skb_free_datagram), located by address at record time. */
struct ls_consume_skb {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* receiving thread [tid] */
    __u64 skbaddr;           /* the packet's sk_buff [address] */
    __u64 location;          /* kernel code address that freed it [address] */
    __u32 tgid;              /* receiving process [tgid] */
    __u32 _pad;              /* zero (alignment) */
};
_Static_assert(sizeof(struct ls_consume_skb) == 40, "consume_skb size");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, ts_ns) == 0, "consume_skb.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, cpu) == 8, "consume_skb.cpu");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, pid) == 12, "consume_skb.pid");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, skbaddr) == 16, "consume_skb.skbaddr");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, location) == 24, "consume_skb.location");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, tgid) == 32, "consume_skb.tgid");
_Static_assert(__builtin_offsetof(struct ls_consume_skb, _pad) == 36, "consume_skb._pad");

/* sock:sk_data_ready: A UDP datagram was queued to a socket (sk_data_ready fires once per queued skb on 6.18).  The BPF program adds the latest packet that arrived on this CPU: the stack handles a packet from netif_receive_skb to the socket queue in one call, so it is this datagram's arrival when rx_batch == 1; GRO list receive (rx_batch > 1) fires the arrivals of a batch before any delivery and the arrival is then ambiguous. */
struct ls_udp_enqueue {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __u32 rx_batch;          /* arrivals on this CPU since the previous sk_data_ready or drop here (1: the arrival is exactly this datagram's) [packets] */
    __u64 sk;                /* the receiving socket [address] */
    __u64 skbaddr;           /* latest arrival on this CPU (0: none, or not on --interface) [address] */
    __u16 family;            /* AF_INET 2, AF_INET6 10 */
    __u16 protocol;          /* IPPROTO_UDP 17, IPPROTO_UDPLITE 136 */
    __u32 _pad;              /* zero (alignment) */
};
_Static_assert(sizeof(struct ls_udp_enqueue) == 40, "udp_enqueue size");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, ts_ns) == 0, "udp_enqueue.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, cpu) == 8, "udp_enqueue.cpu");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, rx_batch) == 12, "udp_enqueue.rx_batch");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, sk) == 16, "udp_enqueue.sk");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, skbaddr) == 24, "udp_enqueue.skbaddr");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, family) == 32, "udp_enqueue.family");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, protocol) == 34, "udp_enqueue.protocol");
_Static_assert(__builtin_offsetof(struct ls_udp_enqueue, _pad) == 36, "udp_enqueue._pad");

/* sock:sock_recv_length: A recvmsg on a UDP socket returned (one datagram dequeued and copied when ret >= 0 without MSG_PEEK).  -EAGAIN (the queue was empty) is kept once per run per socket: it re-anchors the queue-order pairing. */
struct ls_udp_recv {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __s32 pid;               /* receiving thread [tid] */
    __u64 sk;                /* the socket [address] */
    __u32 tgid;              /* receiving process [tgid] */
    __s32 ret;               /* bytes returned, or -errno [bytes] */
    __s32 flags;             /* recvmsg flags (MSG_PEEK 0x2, MSG_ERRQUEUE 0x2000) */
    __u16 family;            /* AF_INET 2, AF_INET6 10 */
    __u16 protocol;          /* IPPROTO_UDP 17, IPPROTO_UDPLITE 136 */
};
_Static_assert(sizeof(struct ls_udp_recv) == 40, "udp_recv size");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, ts_ns) == 0, "udp_recv.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, cpu) == 8, "udp_recv.cpu");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, pid) == 12, "udp_recv.pid");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, sk) == 16, "udp_recv.sk");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, tgid) == 24, "udp_recv.tgid");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, ret) == 28, "udp_recv.ret");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, flags) == 32, "udp_recv.flags");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, family) == 36, "udp_recv.family");
_Static_assert(__builtin_offsetof(struct ls_udp_recv, protocol) == 38, "udp_recv.protocol");

/* skb:kfree_skb: A packet was dropped (freed with a drop reason). */
struct ls_kfree_skb {
    __u64 ts_ns;             /* bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC) [ns] */
    __u32 cpu;               /* CPU the tracepoint fired on [cpu] */
    __u32 reason;            /* enum skb_drop_reason (names in the manifest) [enum] */
    __u64 skbaddr;           /* the packet's sk_buff [address] */
    __u64 location;          /* kernel code address that dropped it [address] */
    __u32 protocol;          /* skb->protocol (0x0800 IPv4, 0x86dd IPv6) [ethertype] */
    __s32 pid;               /* thread running when it was dropped (0: softirq on idle) [tid] */
};
_Static_assert(sizeof(struct ls_kfree_skb) == 40, "kfree_skb size");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, ts_ns) == 0, "kfree_skb.ts_ns");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, cpu) == 8, "kfree_skb.cpu");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, reason) == 12, "kfree_skb.reason");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, skbaddr) == 16, "kfree_skb.skbaddr");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, location) == 24, "kfree_skb.location");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, protocol) == 32, "kfree_skb.protocol");
_Static_assert(__builtin_offsetof(struct ls_kfree_skb, pid) == 36, "kfree_skb.pid");

#endif
