"""The alpha flamegraph: cost per delay, folded stacks, and the cost trace."""
from __future__ import annotations

import polars as pl
import pytest

from latencyscope.analyze.folded import (alpha_cost, cost_slices, folded_stacks, write_cost_trace,
                                         write_folded)


@pytest.fixture
def costs():
    return pl.DataFrame({
        "module": ["isolation", "isolation", "isolation", "irq", "irq", "memory"],
        "cause": ["intruder", "intruder", "runqueue", "hardirq", "softirq", "page fault"],
        "who": ["kworker/3:1 [812]", "kworker/3:1 [812]", "app [100]", "IRQ 24 eth0-rx", "NET_RX",
                "app [100]"],
        "detail": ["CPU 3", "CPU 3", None, "CPU 3", "CPU 3", "major;file\nbacked"],
        "cost": [1.25, 0.5, 0.000_000_4, 2.0, 0.1, 0.3],
    })


def test_alpha_cost_is_delay_us_times_bps_per_us_times_notional_over_10000():
    df = pl.DataFrame({"delay_ns": [0, 1_000, 5_000, 2_500, None]})
    got = df.select(alpha_cost("delay_ns", notional=1_000_000, bps_per_us=0.01)).get_column("cost")
    # 5 µs × 0.01 bp/µs × 1,000,000 / 10,000 = 5.0
    assert got.to_list() == [0.0, 1.0, 5.0, 2.5, None]
    lazy = df.lazy().select(alpha_cost(pl.col("delay_ns") * 2, 10_000_000, 0.5)).collect()
    assert lazy.get_column("cost").to_list()[:3] == [0.0, 1_000.0, 5_000.0]


def test_folded_lines_sum_equal_stacks_in_micro_units(costs):
    assert folded_stacks(costs).get_column("line").to_list() == [
        "irq;hardirq;IRQ 24 eth0-rx;CPU 3 2000000",
        "irq;softirq;NET_RX;CPU 3 100000",
        "isolation;intruder;kworker/3:1 [812];CPU 3 1750000",
        # isolation;runqueue;app [100] is 0.4 micro-units: rounds to 0, dropped
        "memory;page fault;app [100];major:file backed 300000",
    ]


def test_a_missing_level_ends_the_stack(costs, tmp_path):
    out = tmp_path / "alpha.folded"
    stats = write_folded(costs.with_columns(cost=pl.col("cost") * 10), out, scale=1_000)
    lines = out.read_text().splitlines()
    assert "isolation;runqueue;app [100] 0" not in lines and len(lines) == 4
    stats2 = write_folded(costs.with_columns(cost=pl.lit(1.0)), out)
    assert "isolation;runqueue;app [100] 1000000" in out.read_text().splitlines()
    assert stats["total_weight"] == 41_500 and stats2["stacks"] == 5


def test_cost_trace_slices_nest_side_by_side(costs):
    sl = cost_slices(costs)
    rows = {(r["depth"], r["name"]): (r["start"], r["width"]) for r in sl.iter_rows(named=True)}
    assert rows[(0, "irq")] == (0, 2_100_000)
    assert rows[(1, "hardirq")] == (0, 2_000_000) and rows[(1, "softirq")] == (2_000_000, 100_000)
    assert rows[(0, "isolation")] == (2_100_000, 1_750_000)
    assert rows[(3, "CPU 3")] in {(0, 2_000_000), (2_000_000, 100_000), (2_100_000, 1_750_000)}
    assert rows[(0, "memory")] == (3_850_000, 300_000)


def test_cost_trace_reads_back_with_perfetto_protos(costs, tmp_path):
    pb = pytest.importorskip("perfetto.protos.perfetto.trace.perfetto_trace_pb2")
    out = tmp_path / "alpha.pftrace"
    stats = write_cost_trace(costs, out)
    trace = pb.Trace.FromString(out.read_bytes())
    names = {n.iid: n.name for p in trace.packet for n in p.interned_data.event_names}
    stack, slices = [], []
    for p in trace.packet:
        if p.HasField("track_event"):
            if p.track_event.type == 1:
                stack.append((p.timestamp, names[p.track_event.name_iid], len(stack)))
            else:
                ts, name, depth = stack.pop()
                slices.append((depth, name, ts, p.timestamp - ts))
    assert not stack and len(slices) == stats["slices"] == 3 + 4 + 4 + 4
    assert (0, "irq", 0, 2_100_000) in slices and (1, "softirq", 2_000_000, 100_000) in slices
    assert (3, "major:file backed", 3_850_000, 300_000) in slices
    assert stats["total_width"] == 4_150_000
