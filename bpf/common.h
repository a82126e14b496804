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

static __always_inline void ls_count_lost_n(u32 kind, u64 n)
{
    u64 *v = ls_lost.lookup(&kind);
    if (v)
        *v += n;
}

static __always_inline void ls_count_lost(u32 kind)
{
    ls_count_lost_n(kind, 1);
}

/* Which of the kinds' rings: KIND's main ring, or its ring of small chunks
 * (SMALL).  record/session.py ring_index numbers them the same way. */
#define LS_RING_INDEX(kind, small) ((kind) + ((small) ? LS_NKINDS : 0))

/* The fullest a ring was (bytes not yet consumed) when a write to it failed,
 * per CPU and kind: near the ring's size, the ring was too small for the
 * rate; far from it, the write failed for another reason.  Touched only on
 * that failure path. */
BPF_PERCPU_ARRAY(ls_lost_fill, u64, 2 * LS_NKINDS);  /* [LS_RING_INDEX(kind, small)] */

static __always_inline void ls_note_lost_fill(void *ring, u32 slot)
{
    u64 avail = bpf_ringbuf_query(ring, 0);  /* BPF_RB_AVAIL_DATA */
    u64 *v = ls_lost_fill.lookup(&slot);
    if (v && avail > *v)
        *v = avail;
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
/* Slots [LS_NKINDS * LS_NCPUS, 2x): the staged kinds' rings of small chunks
 * (ls_stage_flush): slot LS_RING_INDEX(kind, small) * LS_NCPUS + cpu. */
BPF_ARRAY_OF_MAPS(ls_rings, "ls_ring_template", 2 * LS_NKINDS * LS_NCPUS);

/* This CPU's ring of KIND (its ring of small chunks when SMALL), or NULL:
 * not in place yet (the recorder puts every ring in place when the capture
 * window opens: earlier events are not part of the capture). */
static __always_inline void *ls_ring_of(u32 kind, u32 small)
{
    u32 slot = LS_RING_INDEX(kind, small) * LS_NCPUS + bpf_get_smp_processor_id();
    return ls_rings.lookup(&slot);
}

static __always_inline void *ls_ring(u32 kind)
{
    return ls_ring_of(kind, 0);
}

static __always_inline void *ls_reserve(u32 kind, u64 size)
{
    void *ring = ls_ring(kind);
    if (!ring)
        return (void *)0;
    void *e = bpf_ringbuf_reserve(ring, size, 0);
    if (!e) {
        ls_count_lost(kind);
        ls_note_lost_fill(ring, LS_RING_INDEX(kind, 0));
    }
    return e;
}

static __always_inline void ls_submit(void *e)
{
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* Staging (kinds marked staged=True in schemas/).
 *
 * A ring reservation and commit per record costs about as much as the rest
 * of the program together, so the kinds that fire on every context switch
 * collect their records in a per-CPU stage and write LS_STAGE_RECORDS of
 * them to the CPU's ring as one entry (a chunk: u32 count of valid records,
 * u32 kind, the record slots).  A stage is flushed when full, when its CPU
 * goes idle, and early at the first event or timer interrupt on its CPU
 * once its oldest record is LS_STAGE_AGE_NS old; what is flushed before
 * the stage is full goes to a second ring in chunks of LS_SMALL_RECORDS
 * (ls_stage_flush_small: a CPU idle after every switch flushes one or two
 * records at a time).  Records reach userspace
 * a few ms late at most (the recorder's time-order merge waits longer than
 * that); CPUs without timer interrupts (nohz_full) do not stage
 * (LS_DIRECT_CPUS); what is staged when the capture ends is read from the
 * maps by the recorder.
 *
 * A stage has one writer at a time without locks: classic tracepoint
 * programs never nest on a CPU (the kernel's bpf_prog_active guard);
 * tp_btf programs (record/btf.py) only guard against themselves, but
 * sched_switch and most wakeups run with interrupts off.  The one case
 * left, a wakeup of the current task with interrupts on interrupted by the
 * timer program that expires stages, is covered by the stage's BUSY flag:
 * set while a tp_btf wakeup program holds a slot, and the timer leaves
 * such a stage for its next tick.
 *
 * LS_STAGE(table, type) declares the stage type and per-CPU map of one kind
 * (the recorder reads ls_stage_TABLE when the capture ends). */
#define LS_STAGE(table, type)                                                \
    struct table##_stage {                                                   \
        u64 first_ts;                                                        \
        u32 busy;       /* a tp_btf program holds a slot (see above) */      \
        u32 pad;                                                             \
        u32 n;          /* chunk header: valid records ... */               \
        u32 kind;       /* ... and kind id, as they land in the ring */      \
        struct type rec[LS_STAGE_RECORDS];                                   \
    };                                                                       \
    _Static_assert(sizeof(struct type) % 8 == 0, "staged records are copied as 64-bit words"); \
    BPF_PERCPU_ARRAY(ls_stage_##table, struct table##_stage, 1)

/* The N (< LS_STAGE_RECORDS) records of the stage at HDR, of SIZE bytes,
 * to this CPU's ring of small chunks of KIND, LS_SMALL_RECORDS per chunk:
 * a stage flushed early holds few records (a CPU that goes idle after each
 * switch: one or two), and a full-size chunk would take the ring space of
 * LS_STAGE_RECORDS of them.  A full ring loses the records not written yet
 * (counted). */
static __always_inline void ls_stage_flush_small(u32 *hdr, u32 n, u32 size, u32 kind)
{
    void *ring = ls_ring_of(kind, 1);
    if (!ring)
        return;
    /* Records are whole 64-bit words (LS_STAGE) and both ends 8-byte
     * aligned: copied as words, not bytes (a char copy compiled to 80
     * byte loads and stores per switch chunk). */
    const u64 *recs = (const u64 *)(hdr + 2);
    for (u32 first = 0; first < LS_STAGE_RECORDS; first += LS_SMALL_RECORDS) {
        if (first >= n)
            break;
        u32 *e = bpf_ringbuf_reserve(ring, 8 + LS_SMALL_RECORDS * size, 0);
        if (!e) {
            ls_count_lost_n(kind, n - first);
            ls_note_lost_fill(ring, LS_RING_INDEX(kind, 1));
            break;
        }
        e[0] = n - first < LS_SMALL_RECORDS ? n - first : LS_SMALL_RECORDS;
        e[1] = kind;
        __builtin_memcpy((u64 *)(e + 2), recs + first * (size / 8), LS_SMALL_RECORDS * size);
        bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
}

/* Write the stage at HDR (its n field) holding records of SIZE bytes to
 * this CPU's ring of KIND: a full stage as one chunk, fewer records in
 * small chunks (ls_stage_flush_small).  A full ring loses the chunk
 * (counted); no ring means the capture window is not open yet (what was
 * staged before it is not part of the capture). */
static __always_inline void ls_stage_flush(u32 *hdr, u32 size, u32 kind)
{
    u32 n = *hdr;
    if (!n)
        return;
    if (n < LS_STAGE_RECORDS) {
        ls_stage_flush_small(hdr, n, size, kind);
    } else {
        void *ring = ls_ring(kind);
        if (ring) {
            hdr[1] = kind;
            if (bpf_ringbuf_output(ring, hdr, 8 + LS_STAGE_RECORDS * size, BPF_RB_NO_WAKEUP)) {
                ls_count_lost_n(kind, n);
                ls_note_lost_fill(ring, LS_RING_INDEX(kind, 0));
            }
        }
    }
    *hdr = 0;
}

#ifdef LS_DIRECT_CPUS
/* CPUs whose staged kinds go to the ring record by record (nohz_full CPUs:
 * no timer interrupt would flush what waits in their stages). */
BPF_ARRAY(ls_direct, u8, LS_MAX_CPUS);
#endif

static __always_inline int ls_cpu_direct(void)
{
#ifdef LS_DIRECT_CPUS
    u32 cpu = bpf_get_smp_processor_id();
    u8 *v = ls_direct.lookup(&cpu);
    return v && *v;
#else
    return 0;
#endif
}

/* Flush a stage whose oldest record is older than LS_STAGE_AGE_NS at NOW
 * (any staged record when FORCE). */
static __always_inline void ls_stage_expire(u32 *hdr, u64 first_ts, u64 now, int force, u32 size, u32 kind)
{
    if (*hdr && (force || now - first_ts > LS_STAGE_AGE_NS))
        ls_stage_flush(hdr, size, kind);
}

/* The slot for the next record of a stage (HDR, FIRST_TS, RECS: its fields),
 * flushing first what is older than LS_STAGE_AGE_NS at NOW. */
static __always_inline void *ls_stage_next(u32 *hdr, u64 *first_ts, void *recs, u32 size, u32 kind, u64 now)
{
    ls_stage_expire(hdr, *first_ts, now, 0, size, kind);
    u32 i = *hdr;
    if (!i)
        *first_ts = now;
    return (char *)recs + (i & (LS_STAGE_RECORDS - 1)) * size;
}

/* The slot ls_stage_next gave is filled: count it, flush a full stage. */
static __always_inline void ls_stage_commit(u32 *hdr, u32 size, u32 kind)
{
    u32 i = *hdr + 1;
    *hdr = i;
    if (i >= LS_STAGE_RECORDS || ls_cpu_direct())
        ls_stage_flush(hdr, size, kind);
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
