/* IRQ Storm Detector: hard IRQ handlers and softirqs, entry and exit.
 * Tracepoints: irq:irq_handler_entry/exit, irq:softirq_entry/exit.
 * Kept when the CPU is monitored or the interrupted task is a target
 * (ls_keep_current): entry and exit of one handler run on the same CPU over
 * the same current task, so a kept entry always has its exit kept too.
 * Pairing entry/exit into durations is the analyzer's job. */

TRACEPOINT_PROBE(irq, irq_handler_entry)
{
    if (!ls_keep_current())
        return 0;
    struct ls_irq_handler_entry *e = ls_reserve(LS_KIND_IRQ_HANDLER_ENTRY, sizeof(struct ls_irq_handler_entry));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->irq = args->irq;
    e->pid = (u32)id;
    e->tgid = id >> 32;
    TP_DATA_LOC_READ_CONST(e->name, name, 16);
    e->name[15] = 0;
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(irq, irq_handler_exit)
{
    if (!ls_keep_current())
        return 0;
    struct ls_irq_handler_exit *e = ls_reserve(LS_KIND_IRQ_HANDLER_EXIT, sizeof(struct ls_irq_handler_exit));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->irq = args->irq;
    e->ret = args->ret;
    e->_pad = 0;
    ls_submit(e);
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
    struct ls_softirq_entry *e = ls_reserve(LS_KIND_SOFTIRQ_ENTRY, sizeof(struct ls_softirq_entry));
    if (!e)
        return 0;
    ls_fill_softirq((struct ls_softirq_entry *)e, args->vec);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_exit)
{
    if (!ls_keep_current())
        return 0;
    struct ls_softirq_exit *e = ls_reserve(LS_KIND_SOFTIRQ_EXIT, sizeof(struct ls_softirq_exit));
    if (!e)
        return 0;
    ls_fill_softirq((struct ls_softirq_entry *)e, args->vec);
    ls_submit(e);
    return 0;
}
