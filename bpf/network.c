/* Network Path Analyzer: NAPI polls, packet arrival, copy to user, drops.
 * Tracepoints: napi:napi_poll, net:netif_receive_skb,
 * skb:skb_copy_datagram_iovec, skb:kfree_skb.
 *
 * Interface filter (--interface): the recorder passes the validated name as
 * numbers, never as text: LS_IFNAME_LO/HI are its first 16 bytes (NUL
 * included, little-endian) and LS_IFMASK_LO/HI select the bytes to compare.
 * Copies and drops carry no device, so with a filter they are kept only for
 * skbs that arrived on the interface: arrivals there enter ls_rx_skbs, an
 * arrival elsewhere (the address was reused) or a drop removes the entry.
 *
 * consume_skb fires for every freed packet of the host (transmit
 * completions, ACKs, ...); only frees called from the receive paths count as
 * a user copy.  The recorder passes those functions' address ranges
 * [LS_UCONS_LOn, LS_UCONS_HIn) from /proc/kallsyms (0, 0 when absent); the
 * test is two compares per range before anything else.
 *
 * UDP delivery (sock:sk_data_ready, sock:sock_recv_length): this kernel
 * copies most UDP datagrams to user space with no tracepoint on their skb,
 * so the socket is followed instead.  Every arrival (on any interface)
 * notes its skb in a per-CPU slot; a UDP sk_data_ready (the datagram was
 * queued, in the same call that began at netif_receive_skb) carries that
 * skb and how many arrivals this CPU saw since the previous inet
 * sk_data_ready (rx_batch; 1 = exactly this datagram's arrival, > 1 = a GRO
 * list batch fired its arrivals first).  UDP enqueues and recvmsg returns are
 * recorded on every interface (the analyzer pairs them in queue order per
 * socket, which needs all of a socket's traffic); with --interface the skb
 * is 0 when the arrival was elsewhere.  -EAGAIN is recorded once per run of
 * them per socket (a spinning non-blocking reader returns it millions of
 * times a second). */

struct ls_rx_cpu {
    u64 skb;     /* latest arrival on this CPU (0: not on --interface) */
    u32 batch;   /* arrivals since the previous inet sk_data_ready */
    u32 taken;   /* an inet sk_data_ready came after the latest arrival */
};
BPF_PERCPU_ARRAY(ls_rx_cpu, struct ls_rx_cpu, 1);
BPF_TABLE("lru_hash", u64, u8, ls_udp_eagain, 65536);

#define LS_AF_INET 2
#define LS_AF_INET6 10
#define LS_IPPROTO_UDP 17
#define LS_IPPROTO_UDPLITE 136
#define LS_EAGAIN 11

#ifdef LS_IFNAME_LO
BPF_TABLE("lru_hash", u64, u8, ls_rx_skbs, 65536);

static __always_inline int ls_ifname_match(const char *name)
{
    u64 w[2] = {};
    __builtin_memcpy(w, name, 16);
    return (w[0] & LS_IFMASK_LO) == LS_IFNAME_LO && (w[1] & LS_IFMASK_HI) == LS_IFNAME_HI;
}
#endif

TRACEPOINT_PROBE(napi, napi_poll)
{
    char dev[16] = {};
    TP_DATA_LOC_READ_CONST(dev, dev_name, 16);
#ifdef LS_IFNAME_LO
    if (!ls_ifname_match(dev))
        return 0;
#endif
    struct ls_napi_poll *e = ls_reserve(LS_KIND_NAPI_POLL, sizeof(struct ls_napi_poll));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)bpf_get_current_pid_tgid();
    e->napi = (u64)args->napi;
    e->work = args->work;
    e->budget = args->budget;
    __builtin_memcpy(e->dev, dev, 16);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(net, netif_receive_skb)
{
    char dev[16] = {};
    u64 skb = (u64)args->skbaddr;
    TP_DATA_LOC_READ_CONST(dev, name, 16);
    int zero = 0;
    struct ls_rx_cpu *st = ls_rx_cpu.lookup(&zero);
    if (st) {
        st->batch = st->taken ? 1 : st->batch + 1;
        st->taken = 0;
        st->skb = skb;
    }
#ifdef LS_IFNAME_LO
    if (!ls_ifname_match(dev)) {
        if (st)
            st->skb = 0;
        ls_rx_skbs.delete(&skb);
        return 0;
    }
    u8 one = 1;
    ls_rx_skbs.update(&skb, &one);
#endif
    struct ls_netif_receive_skb *e = ls_reserve(LS_KIND_NETIF_RECEIVE_SKB, sizeof(struct ls_netif_receive_skb));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->len = args->len;
    e->skbaddr = skb;
    __builtin_memcpy(e->dev, dev, 16);
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(skb, skb_copy_datagram_iovec)
{
    u64 skb = (u64)args->skbaddr;
#ifdef LS_IFNAME_LO
    if (!ls_rx_skbs.lookup(&skb))
        return 0;
#endif
    struct ls_skb_copy_datagram_iovec *e = ls_reserve(LS_KIND_SKB_COPY_DATAGRAM_IOVEC, sizeof(struct ls_skb_copy_datagram_iovec));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->skbaddr = skb;
    e->tgid = id >> 32;
    e->len = args->len;
    ls_submit(e);
    return 0;
}

/* The tracepoint's reason field is an `enum skb_drop_reason`, which BCC
 * copies into the args struct it generates; no header we include defines it
 * (we read no kernel structs), so give it its 4-byte body here. */
enum skb_drop_reason { LS_SKB_DROP_REASON_MAX_ = 0x7fffffff };

/* The end of an skb's life (user consume or drop): with an interface filter,
 * keep it only if it arrived there, and forget it. */
static __always_inline int ls_take_rx_skb(u64 skb)
{
#ifdef LS_IFNAME_LO
    if (!ls_rx_skbs.lookup(&skb))
        return 0;
    ls_rx_skbs.delete(&skb);
#endif
    return 1;
}

#ifdef LS_UCONS_LO0
static __always_inline int ls_user_consume(u64 loc)
{
    return (loc >= LS_UCONS_LO0 && loc < LS_UCONS_HI0) || (loc >= LS_UCONS_LO1 && loc < LS_UCONS_HI1) ||
           (loc >= LS_UCONS_LO2 && loc < LS_UCONS_HI2) || (loc >= LS_UCONS_LO3 && loc < LS_UCONS_HI3);
}

TRACEPOINT_PROBE(skb, consume_skb)
{
    u64 loc = (u64)args->location;
    if (!ls_user_consume(loc))
        return 0;
    u64 skb = (u64)args->skbaddr;
    if (!ls_take_rx_skb(skb))
        return 0;
    struct ls_consume_skb *e = ls_reserve(LS_KIND_CONSUME_SKB, sizeof(struct ls_consume_skb));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->skbaddr = skb;
    e->location = loc;
    e->tgid = id >> 32;
    e->_pad = 0;
    ls_submit(e);
    return 0;
}
#endif

TRACEPOINT_PROBE(skb, kfree_skb)
{
    u64 skb = (u64)args->skbaddr;
    if (!ls_take_rx_skb(skb))
        return 0;
    struct ls_kfree_skb *e = ls_reserve(LS_KIND_KFREE_SKB, sizeof(struct ls_kfree_skb));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->reason = (u32)args->reason;
    e->skbaddr = skb;
    e->location = (u64)args->location;
    e->protocol = args->protocol;
    e->pid = (u32)bpf_get_current_pid_tgid();
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(sock, sk_data_ready)
{
    u16 family = args->family, proto = args->protocol;
    if (family != LS_AF_INET && family != LS_AF_INET6)
        return 0;  /* packet sockets (tcpdump) wake inside a receive batch */
    int zero = 0;
    struct ls_rx_cpu *st = ls_rx_cpu.lookup(&zero);
    if (!st)
        return 0;
    st->taken = 1;
    if (proto != LS_IPPROTO_UDP && proto != LS_IPPROTO_UDPLITE)
        return 0;
    struct ls_udp_enqueue *e = ls_reserve(LS_KIND_UDP_ENQUEUE, sizeof(struct ls_udp_enqueue));
    if (!e)
        return 0;
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->rx_batch = st->batch;
    e->sk = (u64)args->skaddr;
    e->skbaddr = st->skb;
    e->family = family;
    e->protocol = proto;
    e->_pad = 0;
    ls_submit(e);
    return 0;
}

TRACEPOINT_PROBE(sock, sock_recv_length)
{
    u16 proto = args->protocol;
    if (proto != LS_IPPROTO_UDP && proto != LS_IPPROTO_UDPLITE)
        return 0;
    u64 sk = (u64)args->sk;
    int ret = args->ret;
    if (ret == -LS_EAGAIN) {
        u8 *again = ls_udp_eagain.lookup(&sk);
        if (again && *again)
            return 0;
        u8 one = 1;
        ls_udp_eagain.update(&sk, &one);
    } else {
        u8 *again = ls_udp_eagain.lookup(&sk);
        if (again && *again)
            *again = 0;
    }
    struct ls_udp_recv *e = ls_reserve(LS_KIND_UDP_RECV, sizeof(struct ls_udp_recv));
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->ts_ns = bpf_ktime_get_ns();
    e->cpu = bpf_get_smp_processor_id();
    e->pid = (u32)id;
    e->sk = sk;
    e->tgid = id >> 32;
    e->ret = ret;
    e->flags = args->flags;
    e->family = args->family;
    e->protocol = proto;
    ls_submit(e);
    return 0;
}
