"""Memory Stall Profiler events: page faults, TLB flushes, IPIs, NUMA moves.

Minor vs major: ``page_fault_user`` fires on every user-mode fault entry;
the kernel decides only later whether it was major (it waited for I/O).
``page_fault_major`` comes from the software perf event
PERF_COUNT_SW_PAGE_FAULTS_MAJ (sample period 1), which the kernel raises
at the same place it counts a task's majflt, so major = that table and
minor = faults - major, per task.
"""
from latencyscope.schemas.events import CPU, TS, EventKind, Field

_FAULT_FIELDS = (
    TS,
    CPU,
    Field("pid", "s32", "tid", "faulting thread"),
    Field("tgid", "u32", "tgid", "its process"),
    Field("error_code", "u32", "flags", "x86 page-fault error code (bit 0 present, 1 write, 2 user, 4 insn fetch)"),
    Field("address", "u64", "addr", "faulting virtual address"),
    Field("ip", "u64", "addr", "instruction pointer at the fault"),
    Field("comm", "comm", "", "name of the faulting thread"),
)

_NUMA_PAIR_FIELDS = (
    TS,
    CPU,
    Field("src_pid", "s32", "tid", "task on the source CPU"),
    Field("src_tgid", "s32", "tgid", "its process"),
    Field("src_cpu", "s32", "cpu", "source CPU"),
    Field("src_nid", "s32", "node", "source NUMA node"),
    Field("dst_pid", "s32", "tid", "task on the destination CPU (-1 if none)"),
    Field("dst_tgid", "s32", "tgid", "its process"),
    Field("dst_cpu", "s32", "cpu", "destination CPU"),
    Field("dst_nid", "s32", "node", "destination NUMA node"),
    Field("_pad", "u32", "", "zero (alignment)"),
)

KINDS = (
    EventKind("page_fault_user", "memory", "exceptions:page_fault_user",
              "A page fault taken in user mode (minor or major).", _FAULT_FIELDS, ring_pages=2048),
    EventKind("page_fault_kernel", "memory", "exceptions:page_fault_kernel",
              "A page fault taken in kernel mode on a user address (e.g. copy_to_user into fresh memory); "
              "kernel addresses are not recorded.", _FAULT_FIELDS, ring_pages=256),
    EventKind(
        "page_fault_major", "memory", "perf:page-faults-major",
        "A major page fault (the task waited for the page to be read): BPF program on the software "
        "perf event PERF_COUNT_SW_PAGE_FAULTS_MAJ with sample_period 1, on each CPU.",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "faulting thread"),
            Field("tgid", "u32", "tgid", "its process"),
            Field("sample_period", "u32", "events", "perf sample period (1: every major fault recorded)"),
            Field("address", "u64", "addr", "faulting virtual address"),
            Field("ip", "u64", "addr", "instruction pointer of the interrupted context"),
            Field("comm", "comm", "", "name of the faulting thread"),
        ),
        ring_pages=256,
    ),
    EventKind(
        "tlb_flush", "memory", "tlb:tlb_flush",
        "A CPU flushed (part of) its TLB; reason 1 = it received a remote shootdown. Reason 0 "
        "(flush on task switch, one per context switch) is not recorded.",
        (
            TS,
            CPU,
            Field("reason", "s32", "enum", "0 task switch, 1 remote shootdown (received), 2 local shootdown, "
                                           "3 local MM shootdown, 4 remote IPI send, 5 remote wrong CPU"),
            Field("pid", "s32", "tid", "thread running on the CPU (current)"),
            Field("tgid", "u32", "tgid", "its process"),
            Field("pages", "u64", "pages", "pages flushed (-1 = all)"),
            Field("comm", "comm", "", "name of the current thread"),
        ),
        ring_pages=512,
    ),
    EventKind(
        "ipi_send_cpu", "memory", "ipi:ipi_send_cpu",
        "An inter-processor interrupt sent to one CPU (callback 0 = reschedule).",
        (
            TS,
            CPU,
            Field("target_cpu", "u32", "cpu", "CPU the IPI is sent to (the filter key)"),
            Field("pid", "s32", "tid", "sending thread"),
            Field("tgid", "u32", "tgid", "its process"),
            Field("callsite", "u64", "addr", "kernel address that sent it"),
            Field("callback", "u64", "addr", "function the target will run (0: reschedule)"),
            Field("comm", "comm", "", "name of the sending thread"),
        ),
        ring_pages=512,
    ),
    EventKind(
        "ipi_send_cpumask", "memory", "ipi:ipi_send_cpumask",
        "An inter-processor interrupt sent to a set of CPUs (e.g. a TLB shootdown).",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "sending thread"),
            Field("tgid", "u32", "tgid", "its process"),
            Field("mask_words", "u32", "words", "how many 64-bit words of the CPU mask are recorded (<= 2)"),
            Field("callsite", "u64", "addr", "kernel address that sent it"),
            Field("callback", "u64", "addr", "function the targets will run"),
            Field("cpumask0", "u64", "bitmap", "target CPUs 0-63"),
            Field("cpumask1", "u64", "bitmap", "target CPUs 64-127"),
            Field("comm", "comm", "", "name of the sending thread"),
        ),
        ring_pages=512,
    ),
    EventKind(
        "sched_move_numa", "memory", "sched:sched_move_numa",
        "NUMA balancing moved a task to another node.",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "task moved"),
            Field("tgid", "s32", "tgid", "its process"),
            Field("ngid", "s32", "tgid", "its NUMA group"),
            Field("src_cpu", "s32", "cpu", "CPU it left"),
            Field("src_nid", "s32", "node", "node it left"),
            Field("dst_cpu", "s32", "cpu", "CPU it went to"),
            Field("dst_nid", "s32", "node", "node it went to"),
        ),
        ring_pages=64,
    ),
    EventKind("sched_stick_numa", "memory", "sched:sched_stick_numa",
              "NUMA balancing wanted to move a task but kept it.", _NUMA_PAIR_FIELDS, ring_pages=64),
    EventKind("sched_swap_numa", "memory", "sched:sched_swap_numa",
              "NUMA balancing swapped two tasks between nodes.", _NUMA_PAIR_FIELDS, ring_pages=64),
    EventKind(
        "mm_migrate_pages", "memory", "migrate:mm_migrate_pages",
        "The kernel migrated pages (reason 5 = NUMA misplaced; 0 compaction).",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "thread that ran the migration (current)"),
            Field("tgid", "u32", "tgid", "its process"),
            Field("reason", "s32", "enum", "0 compaction, 1 memory_failure, 2 memory_hotplug, "
                                           "3 syscall_or_cpuset, 4 mempolicy_mbind, 5 numa_misplaced, "
                                           "6 contig_range, 7 longterm_pin, 8 demotion, 9 damon"),
            Field("succeeded", "u64", "pages", "pages migrated"),
            Field("failed", "u64", "pages", "pages that failed to migrate"),
            Field("thp_succeeded", "u64", "pages", "transparent huge pages migrated"),
            Field("thp_failed", "u64", "pages", "transparent huge pages that failed"),
        ),
        ring_pages=64,
    ),
)
