"""Network Path Analyzer events: NAPI polls, packet arrival, user copy, drops.

Packets are followed by their skb address: arrival (netif_receive_skb), copy
to user space (skb_copy_datagram_iovec) or drop (kfree_skb).  Addresses are
reused by the slab allocator; the analyzer pairs events in time order.

UDP on recent kernels copies most datagrams without a tracepoint on the skb
(linear copy, deferred free), so UDP delivery is followed through the socket:
sk_data_ready (queued, with the arrival that was being processed on that
CPU) and sock_recv_length (dequeued by recvmsg), paired in queue order per
socket.
"""
from latencyscope.schemas.events import CPU, TS, EventKind, Field

KINDS = (
    EventKind(
        "napi_poll", "network", "napi:napi_poll",
        "One NAPI poll of a device's receive queue (work done vs budget).",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "thread running the poll (0 / ksoftirqd / a busy-polling task)"),
            Field("napi", "u64", "address", "napi_struct (one per receive queue)"),
            Field("work", "s32", "packets", "packets processed in this poll"),
            Field("budget", "s32", "packets", "most the poll could process (work == budget: more pending)"),
            Field("dev", "comm", "", "device name ('(no_device)' for the per-CPU backlog)"),
        ),
        ring_pages=256,
    ),
    EventKind(
        "netif_receive_skb", "network", "net:netif_receive_skb",
        "A packet entered the network stack on a device.",
        (
            TS,
            CPU,
            Field("len", "u32", "bytes", "skb->len at the stack's entry (without the link header)"),
            Field("skbaddr", "u64", "address", "the packet's sk_buff (reused after it is freed)"),
            Field("dev", "comm", "", "receiving device"),
        ),
        ring_pages=1024,
    ),
    EventKind(
        "skb_copy_datagram_iovec", "network", "skb:skb_copy_datagram_iovec",
        "Packet data was copied to a user buffer (recv/read by a socket owner).",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "receiving thread"),
            Field("skbaddr", "u64", "address", "the packet's sk_buff"),
            Field("tgid", "u32", "tgid", "receiving process"),
            Field("len", "s32", "bytes", "bytes copied"),
        ),
        ring_pages=1024,
    ),
    EventKind(
        "consume_skb", "network", "skb:consume_skb",
        "A packet was freed by a receive call after its data reached user space.  UDP copies a "
        "linear skb without the skb_copy_datagram_iovec tracepoint, so this is its user copy; "
        "the kernel keeps only frees called from the receive paths (skb_consume_udp, "
        "udp(v6)_recvmsg, skb_free_datagram), located by address at record time.",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "receiving thread"),
            Field("skbaddr", "u64", "address", "the packet's sk_buff"),
            Field("location", "u64", "address", "kernel code address that freed it"),
            Field("tgid", "u32", "tgid", "receiving process"),
            Field("_pad", "u32", "", "zero (alignment)"),
        ),
        ring_pages=1024,
    ),
    EventKind(
        "udp_enqueue", "network", "sock:sk_data_ready",
        "A UDP datagram was queued to a socket (sk_data_ready fires once per queued skb on 6.18).  "
        "The BPF program adds the latest packet that arrived on this CPU: the stack handles a "
        "packet from netif_receive_skb to the socket queue in one call, so it is this datagram's "
        "arrival when rx_batch == 1; GRO list receive (rx_batch > 1) fires the arrivals of a "
        "batch before any delivery and the arrival is then ambiguous.",
        (
            TS,
            CPU,
            Field("rx_batch", "u32", "packets", "arrivals on this CPU since the previous sk_data_ready or drop here "
                                                "(1: the arrival is exactly this datagram's)"),
            Field("sk", "u64", "address", "the receiving socket"),
            Field("skbaddr", "u64", "address", "latest arrival on this CPU (0: none, or not on --interface)"),
            Field("family", "u16", "", "AF_INET 2, AF_INET6 10"),
            Field("protocol", "u16", "", "IPPROTO_UDP 17, IPPROTO_UDPLITE 136"),
            Field("_pad", "u32", "", "zero (alignment)"),
        ),
        ring_pages=1024,
    ),
    EventKind(
        "udp_recv", "network", "sock:sock_recv_length",
        "A recvmsg on a UDP socket returned (one datagram dequeued and copied when ret >= 0 "
        "without MSG_PEEK).  -EAGAIN (the queue was empty) is kept once per run per socket: "
        "it re-anchors the queue-order pairing.",
        (
            TS,
            CPU,
            Field("pid", "s32", "tid", "receiving thread"),
            Field("sk", "u64", "address", "the socket"),
            Field("tgid", "u32", "tgid", "receiving process"),
            Field("ret", "s32", "bytes", "bytes returned, or -errno"),
            Field("flags", "s32", "", "recvmsg flags (MSG_PEEK 0x2, MSG_ERRQUEUE 0x2000)"),
            Field("family", "u16", "", "AF_INET 2, AF_INET6 10"),
            Field("protocol", "u16", "", "IPPROTO_UDP 17, IPPROTO_UDPLITE 136"),
        ),
        ring_pages=1024,
    ),
    EventKind(
        "kfree_skb", "network", "skb:kfree_skb",
        "A packet was dropped (freed with a drop reason).",
        (
            TS,
            CPU,
            Field("reason", "u32", "enum", "enum skb_drop_reason (names in the manifest)"),
            Field("skbaddr", "u64", "address", "the packet's sk_buff"),
            Field("location", "u64", "address", "kernel code address that dropped it"),
            Field("protocol", "u32", "ethertype", "skb->protocol (0x0800 IPv4, 0x86dd IPv6)"),
            Field("pid", "s32", "tid", "thread running when it was dropped (0: softirq on idle)"),
        ),
        ring_pages=256,
    ),
)
