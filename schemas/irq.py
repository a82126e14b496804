"""IRQ Storm Detector events: hard IRQ handlers and softirq vectors, entry and exit.

``pid``/``tgid`` on the entries are the task the interrupt landed on
(current): that is how the analyzer tells how much of a target's run was
stolen, without needing the scheduler tables.
"""
from latencyscope.schemas.events import CPU, TS, EventKind, Field

_SOFTIRQ_FIELDS = (
    TS,
    CPU,
    Field("vec", "u32", "vector", "softirq vector (0 HI, 1 TIMER, 2 NET_TX, 3 NET_RX, 4 BLOCK, 5 IRQ_POLL, "
                                  "6 TASKLET, 7 SCHED, 8 HRTIMER, 9 RCU)"),
    Field("pid", "s32", "tid", "thread that was running when the softirq ran (current; 0 = idle)"),
    Field("tgid", "u32", "tgid", "process of that thread"),
)

KINDS = (
    EventKind(
        "irq_handler_entry", "irq", "irq:irq_handler_entry",
        "A hard IRQ handler (one action of IRQ line irq) starts.",
        (
            TS,
            CPU,
            Field("irq", "s32", "irq", "IRQ number (as in /proc/interrupts)"),
            Field("pid", "s32", "tid", "thread interrupted (current; 0 = idle)"),
            Field("tgid", "u32", "tgid", "process of the interrupted thread"),
            Field("name", "comm", "", "name of the handler's action (device), first 15 bytes"),
        ),
        ring_pages=512,
    ),
    EventKind(
        "irq_handler_exit", "irq", "irq:irq_handler_exit",
        "A hard IRQ handler returns.",
        (
            TS,
            CPU,
            Field("irq", "s32", "irq", "IRQ number"),
            Field("ret", "s32", "irqreturn", "0 = IRQ_NONE (not handled), 1 = handled, 2 = wake thread"),
            Field("_pad", "u32", "", "zero (alignment)"),
        ),
        ring_pages=512,
    ),
    EventKind("softirq_entry", "irq", "irq:softirq_entry",
              "A softirq vector starts running.", _SOFTIRQ_FIELDS, ring_pages=1024),
    EventKind("softirq_exit", "irq", "irq:softirq_exit",
              "A softirq vector finished running.", _SOFTIRQ_FIELDS, ring_pages=1024),
)
