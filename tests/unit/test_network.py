"""Network Path Analyzer on hand-built event tables whose answers are known exactly."""
import pytest

from latencyscope.analyze import network as net
from latencyscope.analyze import policy, report
from latencyscope.record import hooks_network as hooks
from latencyscope.errors import LatencyScopeError
from latencyscope.schemas import EVENT_KINDS
from synth import MS, US, capture, switch

RCVR, HOG = 500, 600
A, B, C = 0xFFFF_8880_0000_1000, 0xFFFF_8880_0000_2000, 0xFFFF_8880_0000_3000
KFREE_FMT = ('print fmt: "skbaddr=%p rx_sk=%p protocol=%u location=%pS reason: %s", REC->skbaddr, REC->rx_sk, '
             'REC->protocol, REC->location, __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, '
             '{ 3, "NO_SOCKET" }, { 6, "SOCKET_RCVBUFF" })\n')


def rx(ts, skb, dev="eth0", cpu=0, length=100):
    return {"ts_ns": ts, "cpu": cpu, "len": length, "skbaddr": skb, "dev": dev}


def copy(ts, skb, pid=RCVR, cpu=1, length=72):
    return {"ts_ns": ts, "cpu": cpu, "pid": pid, "tgid": pid, "skbaddr": skb, "len": length}


def drop(ts, skb, reason=6):
    return {"ts_ns": ts, "cpu": 0, "reason": reason, "skbaddr": skb, "location": 0xFFFFFFFF81000000,
            "protocol": 0x0800, "pid": 0}


def napi(ts, work, budget=64, dev="eth0", cpu=0):
    return {"ts_ns": ts, "cpu": cpu, "pid": 0, "napi": 0xFFFF_8880_1000_0000, "work": work, "budget": budget,
            "dev": dev}


def scenario(**kw):
    """Address A carries two packets in turn (reuse): 10 µs and 30 µs to user space.
    B is copied twice (a partial read then the rest): only the first copy counts.
    C arrives, is dropped (receive buffer full), then a packet the capture did not
    see arrive reuses C and is copied: that copy must not pair with C's arrival.
    A packet on lo is delivered in 5 µs."""
    tables = {
        "netif_receive_skb": [rx(1 * MS, A), rx(2 * MS, B), rx(3 * MS, A), rx(4 * MS, C), rx(6 * MS, A, dev="lo")],
        "skb_copy_datagram_iovec": [copy(1 * MS + 10 * US, A), copy(2 * MS + 20 * US, B), copy(2 * MS + 90 * US, B),
                                    copy(3 * MS + 30 * US, A), copy(5 * MS, C), copy(6 * MS + 5 * US, A)],
        "kfree_skb": [drop(4 * MS + 1 * US, C), drop(7 * MS, 0xDEAD, reason=3), drop(8 * MS, 0xBEEF, reason=99)],
        "napi_poll": [napi(1 * MS, 3), napi(2 * MS, 64), napi(3 * MS, 10), napi(4 * MS, 64), napi(5 * MS, 1, dev="lo")],
    }
    return capture(tables, tracepoint_formats={"skb:kfree_skb": KFREE_FMT}, **kw)


def analyze(cap, interface=None, pol=None):
    ctx = report.resolve_context(cap, pol or policy.default_values(), interface=interface)
    return report.build(cap, ctx)


def test_delivery_pairs_each_copy_with_the_latest_arrival_of_its_skb_address():
    d = net.deliveries(scenario())
    got = [(r["skbaddr"], r["dev"], r["delivery_ns"]) for r in d.iter_rows(named=True)]
    assert got == [(A, "eth0", 10 * US), (B, "eth0", 20 * US), (A, "eth0", 30 * US), (A, "lo", 5 * US)]


def test_network_json_has_napi_arrivals_delivery_and_drops_by_reason_name():
    n = analyze(scenario())["network"]
    assert n["rx_packets"] == 5
    assert n["delivery"]["count"] == 4
    assert n["delivery"]["p50_ns"] == 10 * US
    assert n["delivery"]["p99_ns"] == 30 * US and n["delivery"]["max_ns"] == 30 * US
    assert [(x["reason"], x["count"]) for x in n["drops"]] == [("NO_SOCKET", 1), ("SOCKET_RCVBUFF", 1),
                                                                ("reason_99", 1)]
    eth0 = n["napi"][0]
    assert {k: eth0[k] for k in ("dev", "polls", "work", "budget_exhausted")} == \
        {"dev": "eth0", "polls": 4, "work": 141, "budget_exhausted": 2}


def test_drops_and_a_starved_napi_warn():
    rep = analyze(scenario())
    warnings = rep["verdict"]["warnings"]
    assert any("3 packets dropped (NO_SOCKET 1, SOCKET_RCVBUFF 1, reason_99 1)" in w for w in warnings)
    assert any("eth0: 2 of 4 NAPI polls used their whole budget" in w for w in warnings)
    assert rep["network"]["status"] == "WARN"


def test_interface_at_analysis_keeps_only_its_packets_and_their_drops():
    n = analyze(scenario(), interface="eth0")["network"]
    assert n["rx_packets"] == 4
    assert n["delivery"]["count"] == 3
    assert [(x["reason"], x["count"]) for x in n["drops"]] == [("SOCKET_RCVBUFF", 1)]
    assert [x["dev"] for x in n["napi"]] == ["eth0"]


def test_slow_delivery_fails_and_names_what_held_the_receiving_cpu():
    tables = {
        "netif_receive_skb": [rx(1 * MS, A)],
        "skb_copy_datagram_iovec": [copy(21 * MS, A)],
        "kfree_skb": [], "napi_poll": [],
        "sched_switch": [switch(0, 1, 0, HOG), switch(20 * MS, 1, HOG, RCVR, prev_state=0x100)],
    }
    rep = analyze(capture(tables))
    n = rep["network"]
    assert n["delivery"]["p99_ns"] == 20 * MS
    assert n["status"] == "FAIL"
    w = n["worst"][0]
    assert (w["delivery_ns"], w["copy_cpu"], w["pid"]) == (20 * MS, 1, RCVR)
    assert "t600 (600) task 19.00 ms" in w["cause"]


def test_drop_reason_names_come_from_the_recorded_table_first():
    cap = scenario(module_facts={"network": {"drop_reasons": {"3": "NO_SOCKET_V2"}}})
    assert net.drop_reason_names(cap) == {3: "NO_SOCKET_V2"}
    assert net.drop_reason_names(scenario()) == {2: "NOT_SPECIFIED", 3: "NO_SOCKET", 6: "SOCKET_RCVBUFF"}
    assert hooks.drop_reasons(KFREE_FMT) == {"2": "NOT_SPECIFIED", "3": "NO_SOCKET", "6": "SOCKET_RCVBUFF"}


def test_interface_name_reaches_bpf_as_numbers_and_bad_names_are_refused():
    w = hooks.ifname_words("eth0")
    assert w["LS_IFNAME_LO"] == int.from_bytes(b"eth0\0\0\0\0", "little")
    assert w["LS_IFMASK_LO"] == 0xFF_FFFF_FFFF and w["LS_IFMASK_HI"] == 0
    w = hooks.ifname_words("a" * 15)
    assert w["LS_IFMASK_HI"] == 2**64 - 1 and w["LS_IFNAME_HI"] == int.from_bytes(b"a" * 7 + b"\0", "little")
    for bad in ("", "a" * 16, 'eth0"; }', "eth 0", "../x", "."):
        with pytest.raises(LatencyScopeError):
            hooks.validate_interface(bad)


def test_net_rx_softirq_time_comes_from_the_irq_tables_when_recorded():
    if "softirq_entry" not in [k.name for k in EVENT_KINDS]:
        pytest.skip("irq module schema not present")
    tables = {
        "netif_receive_skb": [rx(1 * MS, A)], "skb_copy_datagram_iovec": [], "kfree_skb": [], "napi_poll": [],
        "softirq_entry": [{"ts_ns": 1 * MS, "cpu": 0, "vec": 3}, {"ts_ns": 2 * MS, "cpu": 0, "vec": 1}],
        "softirq_exit": [{"ts_ns": 1 * MS + 40 * US, "cpu": 0, "vec": 3}, {"ts_ns": 2 * MS + 5 * US, "cpu": 0, "vec": 1}],
    }
    n = analyze(capture(tables))["network"]
    assert n["net_rx_softirq"]["count"] == 1 and n["net_rx_softirq"]["total_ns"] == 40 * US


def test_module_not_recorded_is_a_clear_line():
    rep = analyze(capture({}, modules=["isolation"]))
    assert rep["network"]["status"] == "NOT_RECORDED"
    assert "--modules network" in rep["network"]["message"]


SK, SK2 = 0xFFFF_8880_2000_0000, 0xFFFF_8880_3000_0000


def enq(ts, sk, skb, batch=1, cpu=0):
    return {"ts_ns": ts, "cpu": cpu, "rx_batch": batch, "sk": sk, "skbaddr": skb, "family": 2, "protocol": 17,
            "_pad": 0}


def recv(ts, sk, ret=64, flags=0, pid=RCVR, cpu=1):
    return {"ts_ns": ts, "cpu": cpu, "pid": pid, "sk": sk, "tgid": pid, "ret": ret, "flags": flags, "family": 2,
            "protocol": 17}


def test_udp_datagrams_pair_queue_order_per_socket_from_arrival_to_the_read():
    """SK gets A, B queued, a MSG_PEEK, then reads A and B in order; -EAGAIN,
    then C (a GRO batch: no exact arrival) is read.  SK2 held a datagram when
    recording began: its reads precede their pairs' queueing and are dropped."""
    D = 0xFFFF_8880_0000_4000
    tables = {
        "netif_receive_skb": [rx(1 * MS, A), rx(2 * MS, B), rx(4 * MS, C), rx(4 * MS + 1, D), rx(6 * MS, A)],
        "skb_copy_datagram_iovec": [], "kfree_skb": [], "napi_poll": [],
        "udp_enqueue": [enq(1 * MS + 1 * US, SK, A), enq(2 * MS + 1 * US, SK, B),
                        enq(4 * MS + 2 * US, SK, D, batch=2), enq(6 * MS + 1 * US, SK2, A)],
        "udp_recv": [recv(2 * MS + 5 * US, SK, flags=2), recv(2 * MS + 10 * US, SK), recv(2 * MS + 20 * US, SK),
                     recv(3 * MS, SK, ret=-11), recv(5 * MS, SK),
                     recv(5 * MS + 1, SK2), recv(7 * MS, SK2, ret=-11)],
    }
    d = net.deliveries(capture(tables))
    assert [(r["via"], r["skbaddr"], r["delivery_ns"]) for r in d.iter_rows(named=True)] == \
        [("udp_queue", A, 1 * MS + 10 * US), ("udp_queue", B, 20 * US)]
    _, stats = net.deliveries_and_udp(capture(tables))
    assert stats == {"enqueued": 4, "read": 4, "paired": 3, "unaligned": 1, "batched": 1, "delivered": 2}
    n = analyze(capture(tables))["network"]
    assert n["delivery"]["methods"]["udp_queue"]["count"] == 2 and n["delivery"]["count"] == 2
