"""Network Path Analyzer: NAPI polls, kernel delivery time, drops by reason.

Definitions:
- NAPI poll: one napi_poll record; ``budget_exhausted`` when work reached
  the budget (more packets were pending: the softirq will loop or hand the
  queue to ksoftirqd);
- delivery time: from a packet's arrival in the stack (netif_receive_skb)
  to the first copy of its data to user space of the same skb
  (skb_copy_datagram_iovec; for UDP, which copies linear skbs without that
  tracepoint, the consume_skb its recvmsg does right after the copy).  skb
  addresses are reused, so a copy belongs to the latest arrival of its
  address before it (as-of join), and only when no drop of that address came
  in between; a copy whose arrival was not recorded yields no sample;
- UDP delivery through the socket queue (``via == "udp_queue"``): recent
  kernels copy most UDP datagrams with no tracepoint on the skb, so each
  datagram is followed from its arrival to the return of the recvmsg that
  read it: sk_data_ready (queued; the BPF program attaches the arrival being
  processed on that CPU) and sock_recv_length (dequeued), paired in queue
  order per socket (the n-th datagram queued is the n-th read; MSG_PEEK and
  errors dequeue nothing).  An -EAGAIN return proves the queue empty and
  restarts the count; a run of pairs in which a read would precede its
  datagram's queueing (the socket held datagrams when recording began, or
  an enqueue raced the anchor) is dropped whole (``unaligned``).  A datagram
  of a GRO list batch (rx_batch > 1: the batch's arrivals fire before any
  delivery) has no exact arrival and yields no sample (``batched``).  A UDP
  skb seen by both methods counts once, by the queue;
- drop: a kfree_skb record, named by the kernel's own drop-reason table
  (stored in the manifest at record time).
"""
from __future__ import annotations

import re
from typing import Dict, List

import polars as pl

from latencyscope.analyze import causes, sched
from latencyscope.analyze.capture import Capture
from latencyscope.analyze.model import FAIL, PASS, WARN, Check, Context, ModuleResult
from latencyscope.analyze.stats import fmt_ns, percentiles

MODULE = "network"

POLICY = {
    "delivery_p99_warn_ns": (1_000_000, "P99 kernel delivery time (arrival to user copy) above this WARNs"),
    "delivery_p99_fail_ns": (10_000_000, "P99 kernel delivery time above this FAILs"),
    "max_drops": (0, "dropped packets above this count WARN"),
    "max_budget_exhausted_pct": (10.0, "NAPI polls that used their whole budget, in % of a device's polls, "
                                       "above this WARN (the softirq is not keeping up)"),
}

NET_RX_VEC = 3
TOP_ROWS = 20
_PAIR = re.compile(r"\{\s*(\d+)\s*,\s*\"([A-Za-z0-9_]+)\"\s*\}")


def drop_reason_names(cap: Capture) -> Dict[int, str]:
    """enum skb_drop_reason value -> name from the capture (no kernel needed)."""
    facts = (cap.manifest.get("module_facts") or {}).get(MODULE) or {}
    table = facts.get("drop_reasons") or {}
    if not table:  # older captures: the print fmt of kfree_skb is in the manifest too
        fmt = (cap.manifest.get("tracepoint_formats") or {}).get("skb:kfree_skb") or ""
        tail = fmt.split("__print_symbolic(REC->reason", 1)
        table = dict(_PAIR.findall(tail[1])) if len(tail) == 2 else {}
    return {int(k): str(v) for k, v in table.items()}


def deliveries(cap: Capture) -> pl.DataFrame:
    """One row per delivered packet: arrival (ts, cpu, dev, len), copy (ts, cpu, pid, tgid, via), delivery_ns."""
    return deliveries_and_udp(cap)[0]


def deliveries_and_udp(cap: Capture):
    """deliveries() and the UDP queue-pairing counts (None when not recorded)."""
    rx, cp, dr = cap.table("netif_receive_skb"), cap.table("skb_copy_datagram_iovec"), cap.table("kfree_skb")
    arr = (rx.lazy().with_row_index("arrival_id")
           .select("arrival_id", "skbaddr", arrival_ns="ts_ns", arrival_cpu="cpu", dev="dev", rx_len="len")
           .sort("arrival_ns"))
    drops = dr.lazy().select("skbaddr", drop_ns="ts_ns").sort("drop_ns")
    parts = [cp.lazy().select("skbaddr", copy_ns="ts_ns", copy_cpu="cpu", pid="pid", tgid="tgid",
                              via=pl.lit("copy"))]
    cs = cap.table("consume_skb")
    if cs is not None:
        parts.append(cs.lazy().select("skbaddr", copy_ns="ts_ns", copy_cpu="cpu", pid="pid", tgid="tgid",
                                      via=pl.lit("consume")))
    copies = pl.concat(parts, how="vertical").sort("copy_ns")
    by_copy = (
        copies
        .join_asof(arr, left_on="copy_ns", right_on="arrival_ns", by="skbaddr", strategy="backward",
                   check_sortedness=False)  # sorted above; the check cannot see inside groups
        .filter(pl.col("arrival_id").is_not_null())
        .join_asof(drops, left_on="copy_ns", right_on="drop_ns", by="skbaddr", strategy="backward",
                   check_sortedness=False)  # sorted above; the check cannot see inside groups
        # a drop after the arrival ended that skb's life: the copy is of a later, unrecorded one
        .filter(pl.col("drop_ns").is_null() | (pl.col("drop_ns") < pl.col("arrival_ns")))
        .sort("copy_ns")
        .group_by("arrival_id", maintain_order=True).first()  # several reads of one skb: the first one counts
        .with_columns(delivery_ns=pl.col("copy_ns").cast(pl.Int64) - pl.col("arrival_ns").cast(pl.Int64))
        .drop("drop_ns")
        .collect()
    )
    udp, stats = udp_deliveries(cap, arr)
    if udp is None:
        return by_copy.sort("arrival_ns"), None
    udp = udp.with_columns(delivery_ns=pl.col("copy_ns").cast(pl.Int64) - pl.col("arrival_ns").cast(pl.Int64))
    # a UDP skb seen by both methods counts once, by the queue (all UDP samples end at the recvmsg return)
    by_copy = by_copy.join(udp.select("arrival_id"), on="arrival_id", how="anti")
    return pl.concat([by_copy, udp], how="diagonal_relaxed").sort("arrival_ns"), stats


MSG_PEEK, MSG_ERRQUEUE, EAGAIN = 0x2, 0x2000, 11
_UDP_EMPTY = {"enqueued": 0, "read": 0, "paired": 0, "delivered": 0, "batched": 0, "unaligned": 0}


def udp_queue(cap: Capture):
    """UDP datagrams paired queue → read per socket.

    Returns (pairs, stats): one row per paired datagram (sk, enq_ns, skbaddr,
    rx_batch, copy_ns, copy_cpu, pid, tgid) and counts, or (None, None) when
    not recorded."""
    enq, rv = cap.table("udp_enqueue"), cap.table("udp_recv")
    if enq is None or rv is None:
        return None, None
    rv = rv.lazy().filter((pl.col("flags") & (MSG_PEEK | MSG_ERRQUEUE)) == 0)
    ev = pl.concat([
        enq.lazy().select("sk", "ts_ns", "cpu", "skbaddr", "rx_batch",
                          pid=pl.lit(None, pl.Int32), tgid=pl.lit(None, pl.UInt32), k=pl.lit(0, pl.Int8)),
        rv.filter((pl.col("ret") >= 0) | (pl.col("ret") == -EAGAIN))
        .select("sk", "ts_ns", "cpu", skbaddr=pl.lit(None, pl.UInt64), rx_batch=pl.lit(None, pl.UInt32),
                pid=pl.col("pid").cast(pl.Int32), tgid=pl.col("tgid").cast(pl.UInt32),
                k=pl.when(pl.col("ret") >= 0).then(pl.lit(1, pl.Int8)).otherwise(pl.lit(2, pl.Int8))),
    ], how="vertical_relaxed").sort("sk", "ts_ns", "k")
    # -EAGAIN: the queue was empty; the pairing restarts after it
    ev = ev.with_columns(epoch=(pl.col("k") == 2).cum_sum().over("sk"))
    ev = ev.filter(pl.col("k") < 2).with_columns(n=pl.col("k").cum_count().over("sk", "epoch", "k"))
    qd = ev.filter(pl.col("k") == 0).select("sk", "epoch", "n", "skbaddr", "rx_batch", enq_ns="ts_ns")
    rd = ev.filter(pl.col("k") == 1).select("sk", "epoch", "n", "pid", "tgid", copy_ns="ts_ns", copy_cpu="cpu")
    pairs = qd.join(rd, on=["sk", "epoch", "n"], how="inner")
    # a read before its datagram was queued: this run's count is off (unaligned), drop the run
    pairs = pairs.with_columns(bad=(pl.col("copy_ns") < pl.col("enq_ns")).any().over("sk", "epoch"))
    pairs = pairs.collect()
    good = pairs.filter(~pl.col("bad")).drop("bad")
    stats = {"enqueued": enq.height,
             "read": int(rv.filter(pl.col("ret") >= 0).select(pl.len()).collect().item()),
             "paired": good.height, "unaligned": pairs.height - good.height}
    return good, stats


def udp_deliveries(cap: Capture, arr: pl.LazyFrame):
    """Paired UDP datagrams joined to their arrival; rows like deliveries()."""
    pairs, stats = udp_queue(cap)
    if pairs is None:
        return None, None
    exact = pairs.lazy().filter((pl.col("rx_batch") == 1) & (pl.col("skbaddr") != 0)).sort("enq_ns")
    got = (exact.join_asof(arr, left_on="enq_ns", right_on="arrival_ns", by="skbaddr", strategy="backward",
                           check_sortedness=False)
           .filter(pl.col("arrival_id").is_not_null())
           .select("skbaddr", "copy_ns", "copy_cpu", "pid", "tgid", via=pl.lit("udp_queue"),
                   arrival_id="arrival_id", arrival_ns="arrival_ns", arrival_cpu="arrival_cpu", dev="dev",
                   rx_len="rx_len", queued_ns="enq_ns")
           .collect())
    stats["batched"] = int(pairs.filter(pl.col("rx_batch") > 1).height)
    stats["delivered"] = got.height
    return got, stats


def dropped(cap: Capture) -> pl.DataFrame:
    """kfree_skb records with the device of the arrival they end (null if not recorded)."""
    rx, dr = cap.table("netif_receive_skb"), cap.table("kfree_skb")
    return (dr.lazy().sort("ts_ns")
            .join_asof(rx.lazy().select("skbaddr", arrival_ns="ts_ns", dev="dev").sort("arrival_ns"),
                       left_on="ts_ns", right_on="arrival_ns", by="skbaddr", strategy="backward",
                       check_sortedness=False)
            .collect())


def net_rx_softirq(cap: Capture) -> pl.DataFrame:
    """NET_RX softirq runs per CPU [start_ns, end_ns) from the IRQ module's tables (empty if absent)."""
    en, ex = cap.table("softirq_entry"), cap.table("softirq_exit")
    schema = {"cpu": pl.UInt32, "start_ns": pl.UInt64, "end_ns": pl.UInt64}
    if en is None or ex is None or not en.height:
        return pl.DataFrame(schema=schema)
    ev = pl.concat([
        en.lazy().filter(pl.col("vec") == NET_RX_VEC).select("cpu", "ts_ns", k=pl.lit(0, pl.Int8)),
        ex.lazy().filter(pl.col("vec") == NET_RX_VEC).select("cpu", "ts_ns", k=pl.lit(1, pl.Int8)),
    ]).sort("cpu", "ts_ns", "k")
    return (ev.with_columns(n_k=pl.col("k").shift(-1).over("cpu"), end_ns=pl.col("ts_ns").shift(-1).over("cpu"))
            .filter((pl.col("k") == 0) & (pl.col("n_k") == 1))
            .select("cpu", start_ns="ts_ns", end_ns="end_ns").collect())


def analyze(cap: Capture, ctx: Context) -> ModuleResult:
    if not cap.has_module(MODULE) or cap.table("netif_receive_skb") is None:
        return ModuleResult(MODULE, {"message": "module not recorded in this capture "
                                                "(record with --modules network [--interface IF])"},
                            recorded=False)
    pol = ctx.policy[MODULE]
    notes: List[str] = []
    recorded_if = (cap.manifest.get("filters") or {}).get("interface")
    iface = getattr(ctx, "interface", None) or recorded_if
    on_if = (lambda df, col="dev": df.filter(pl.col(col) == iface)) if iface else (lambda df, col="dev": df)

    # --- NAPI ------------------------------------------------------------------
    napi_t = on_if(cap.table("napi_poll"))
    napi = (napi_t.group_by("dev")
            .agg(polls=pl.len(), work=pl.col("work").sum(),
                 budget_exhausted=(pl.col("work") >= pl.col("budget")).sum(),
                 max_work=pl.col("work").max(), budget=pl.col("budget").max(),
                 cpus=pl.col("cpu").unique().sort())
            .sort("polls", descending=True))

    # --- arrivals and delivery ----------------------------------------------------
    rx = on_if(cap.table("netif_receive_skb"))
    dl, udp_stats = deliveries_and_udp(cap)
    if iface:
        dl = dl.filter(pl.col("dev") == iface)
    if udp_stats is None:
        notes.append("UDP datagrams read by recvmsg without a copy tracepoint are not in the delivery time "
                     "(capture recorded without sock:sk_data_ready / sock:sock_recv_length)")
    pct = percentiles(dl["delivery_ns"].to_numpy())
    rx_by_dev = rx.group_by("dev").agg(packets=pl.len(), bytes=pl.col("len").sum()).sort("packets", descending=True)

    # --- drops ------------------------------------------------------------------------
    names = drop_reason_names(cap)
    dr = dropped(cap)
    if iface and not recorded_if:
        dr = dr.filter(pl.col("dev") == iface)  # drops of packets seen arriving on it
    reason_df = pl.DataFrame({"reason": list(names), "reason_name": list(names.values())},
                             schema={"reason": pl.UInt32, "reason_name": pl.String})
    drops = (dr.group_by("reason").agg(count=pl.len())
             .join(reason_df, on="reason", how="left")
             .with_columns(reason_name=pl.col("reason_name").fill_null(pl.format("reason_{}", pl.col("reason"))))
             .sort(["count", "reason"], descending=[True, False]))

    # --- NET_RX softirq time (IRQ module) ----------------------------------------------
    nrx = net_rx_softirq(cap)
    softirq = None
    if nrx.height:
        d = nrx.with_columns(ns=(pl.col("end_ns").cast(pl.Int64) - pl.col("start_ns").cast(pl.Int64)))
        softirq = {"count": d.height, "total_ns": int(d["ns"].sum()), "max_ns": int(d["ns"].max()),
                   "by_cpu": [{"cpu": int(r["cpu"]), "count": int(r["count"]), "total_ns": int(r["total_ns"])}
                              for r in d.group_by("cpu").agg(count=pl.len(), total_ns=pl.col("ns").sum())
                              .sort("cpu").iter_rows(named=True)]}
    elif cap.table("softirq_entry") is None:
        notes.append("NET_RX softirq time needs the irq module (record with --modules irq,network)")

    # --- the worst deliveries and what the receiving CPU was doing ----------------------------
    worst = []
    if dl.height:
        occ = causes.occupancy(cap, sched.switches(cap))
        comm = _comms(cap)
        top = dl.sort("delivery_ns", descending=True).head(ctx.top).join(comm, on="pid", how="left")
        for r in top.sort("delivery_ns", descending=True).iter_rows(named=True):
            why = causes.explain(occ, int(r["copy_cpu"]), int(r["arrival_ns"]), int(r["copy_ns"]),
                                 exclude_pid=r["pid"]) if occ.height else \
                {"text": "record with --modules isolation (and irq) to see what the CPU was doing"}
            worst.append({"ts_ns": int(r["arrival_ns"]), "wall_time": cap.wall_time(r["arrival_ns"]),
                          "delivery_ns": int(r["delivery_ns"]), "dev": r["dev"], "pid": int(r["pid"]),
                          "tgid": int(r["tgid"]), "comm": r["comm"], "arrival_cpu": int(r["arrival_cpu"]),
                          "copy_cpu": int(r["copy_cpu"]), "cause": why["text"]})

    data = {
        "interface": iface,
        "napi": [{"dev": r["dev"], "polls": int(r["polls"]), "work": int(r["work"]),
                  "budget_exhausted": int(r["budget_exhausted"]), "max_work": int(r["max_work"]),
                  "budget": int(r["budget"]), "cpus": [int(c) for c in r["cpus"]]}
                 for r in napi.iter_rows(named=True)],
        "rx_packets": rx.height,
        "rx_by_dev": [{"dev": r["dev"], "packets": int(r["packets"]), "bytes": int(r["bytes"])}
                      for r in rx_by_dev.head(TOP_ROWS).iter_rows(named=True)],
        "delivery": {"count": dl.height, "p50_ns": pct["p50_ns"], "p99_ns": pct["p99_ns"],
                     "p99_9_ns": pct["p99_9_ns"], "max_ns": pct["max_ns"],
                     "methods": {m: _pct(dl.filter(sel)) for m, sel in
                                 (("skb_copy", pl.col("via") != "udp_queue"),
                                  ("udp_queue", pl.col("via") == "udp_queue"))},
                     "udp_queue": udp_stats},
        "drops": [{"reason": r["reason_name"], "count": int(r["count"]), "code": int(r["reason"])}
                  for r in drops.iter_rows(named=True)],
        "dropped_packets": dr.height,
        "net_rx_softirq": softirq,
        "worst": worst,
    }
    return ModuleResult(MODULE, data, _checks(data, pol), notes=notes)


def _pct(d: pl.DataFrame) -> dict:
    p = percentiles(d["delivery_ns"].to_numpy())
    return {"count": d.height, "p50_ns": p["p50_ns"], "p99_ns": p["p99_ns"], "max_ns": p["max_ns"]}


def _comms(cap: Capture) -> pl.DataFrame:
    parts = [cap.tasks.select(pid=pl.col("tid"), comm=pl.col("comm"))]
    sw = cap.table("sched_switch")
    if sw is not None and sw.height:
        parts.append(sw.select(pid=pl.col("next_pid"), comm=pl.col("next_comm")))
    return pl.concat(parts, how="vertical_relaxed").group_by("pid").agg(pl.col("comm").drop_nulls().last())


def _checks(d: dict, pol: dict) -> List[Check]:
    checks: List[Check] = []
    p99 = d["delivery"]["p99_ns"]
    warn, fail = pol["delivery_p99_warn_ns"], pol["delivery_p99_fail_ns"]
    n = d["delivery"]["count"]
    what = f"P99 kernel delivery time ({n:,} packets)"
    if p99 is None:
        checks.append(Check(MODULE, "delivery_p99", PASS, "no packet copied to user space in the capture"))
    elif fail and p99 > fail:
        checks.append(Check(MODULE, "delivery_p99", FAIL, f"{what} {fmt_ns(p99)} > {fmt_ns(fail)}", p99, fail))
    elif p99 > warn:
        checks.append(Check(MODULE, "delivery_p99", WARN, f"{what} {fmt_ns(p99)} > {fmt_ns(warn)}", p99, warn))
    else:
        checks.append(Check(MODULE, "delivery_p99", PASS, f"{what} {fmt_ns(p99)} (limit {fmt_ns(warn)})", p99, warn))
    nd = d["dropped_packets"]
    lim = pol["max_drops"]
    if nd > lim:
        top = ", ".join(f"{x['reason']} {x['count']:,}" for x in d["drops"][:3])
        checks.append(Check(MODULE, "drops", WARN, f"{nd:,} packets dropped ({top})", nd, lim))
    else:
        checks.append(Check(MODULE, "drops", PASS, f"{nd:,} packets dropped", nd, lim))
    lim = pol["max_budget_exhausted_pct"]
    bad = [x for x in d["napi"] if x["polls"] and 100.0 * x["budget_exhausted"] / x["polls"] > lim]
    if bad:
        x = max(bad, key=lambda x: x["budget_exhausted"] / x["polls"])
        pct = 100.0 * x["budget_exhausted"] / x["polls"]
        checks.append(Check(MODULE, "napi_budget", WARN,
                            f"{x['dev']}: {x['budget_exhausted']:,} of {x['polls']:,} NAPI polls used their whole "
                            f"budget ({pct:.0f}% > {lim:g}%): the receive softirq is not keeping up",
                            round(pct, 1), lim))
    else:
        checks.append(Check(MODULE, "napi_budget", PASS,
                            f"{sum(x['polls'] for x in d['napi']):,} NAPI polls, budget exhausted in "
                            f"{sum(x['budget_exhausted'] for x in d['napi']):,}", None, lim))
    return checks
