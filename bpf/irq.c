/* IRQ Storm Detector: hard IRQ handlers and softirqs, entry and exit.
 * Tracepoints: irq:irq_handler_entry/exit, irq:softirq_entry/exit.
 * Kept when the CPU is monitored or the interrupted task is a target
 * (ls_keep_current): entry and exit of one handler run on the same CPU over
 * the same current task, so a kept entry always has its exit kept too.
 * Pairing entry/exit into durations is the analyzer's job. */

BPF_RINGBUF_OUTPUT(rb_irq_handler_entry, LS_PAGES_IRQ_HANDLER_ENTRY);
BPF_RINGBUF_OUTPUT(rb_irq_handler_exit, LS_PAGES_IRQ_HANDLER_EXIT);
BPF_RINGBUF_OUTPUT(rb_softirq_entry, LS_PAGES_SOFTIRQ_ENTRY);
BPF_RINGBUF_OUTPUT(rb_softirq_exit, LS_PAGES_SOFTIRQ_EXIT);

TRACEPOINT_PROBE(irq, irq_handler_entry)
{
    if (!ls_keep_current())
        return 0;
    struct ls_irq_handler_entry *e = rb_irq_handler_entry.ringbuf_reserve(sizeof(struct ls_irq_handler_entry));
    if (!e) {
        ls_count_lost(LS_KIND_IRQ_HANDLER_ENTRY);
        return 0;
    }
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->irq = args->irq;
    e->pid = (u32)id;
    e->tgid = id >> 32;
    TP_DATA_LOC_READ_CONST(e->name, name, 16);
    e->name[15] = 0;
    rb_irq_handler_entry.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(irq, irq_handler_exit)
{
    if (!ls_keep_current())
        return 0;
    struct ls_irq_handler_exit *e = rb_irq_handler_exit.ringbuf_reserve(sizeof(struct ls_irq_handler_exit));
    if (!e) {
        ls_count_lost(LS_KIND_IRQ_HANDLER_EXIT);
        return 0;
    }
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->irq = args->irq;
    e->ret = args->ret;
    e->_pad = 0;
    rb_irq_handler_exit.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

/* softirq_entry and softirq_exit records share one field list: one fill. */
_Static_assert(sizeof(struct ls_softirq_entry) == sizeof(struct ls_softirq_exit), "same softirq layout");
static __always_inline void ls_fill_softirq(struct ls_softirq_entry *e, u32 vec)
{
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->vec = vec;
    e->pid = (u32)id;
    e->tgid = id >> 32;
}

TRACEPOINT_PROBE(irq, softirq_entry)
{
    if (!ls_keep_current())
        return 0;
    struct ls_softirq_entry *e = rb_softirq_entry.ringbuf_reserve(sizeof(struct ls_softirq_entry));
    if (!e) {
        ls_count_lost(LS_KIND_SOFTIRQ_ENTRY);
        return 0;
    }
    ls_fill_softirq((struct ls_softirq_entry *)e, args->vec);
    rb_softirq_entry.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_exit)
{
    if (!ls_keep_current())
        return 0;
    struct ls_softirq_exit *e = rb_softirq_exit.ringbuf_reserve(sizeof(struct ls_softirq_exit));
    if (!e) {
        ls_count_lost(LS_KIND_SOFTIRQ_EXIT);
        return 0;
    }
    ls_fill_softirq((struct ls_softirq_entry *)e, args->vec);
    rb_softirq_exit.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}
