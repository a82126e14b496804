"""``latencyscope-analyze``: read captures, report, export. No root, no BCC."""
from __future__ import annotations

import gc
import io
import os
import sys
from typing import Optional

import click

from latencyscope.allocator import return_freed_memory
from latencyscope.cliutil import parse_cpus, run
from latencyscope.errors import LatencyScopeError


def check_writable(path: Optional[str]) -> None:
    """Fail before the analysis, not after it, when the output cannot be written."""
    if path is None or path == "-":
        return
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise LatencyScopeError(f"output {path} is a directory")
    if not os.path.isdir(parent):
        raise LatencyScopeError(f"output directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise LatencyScopeError(f"output {path} is not writable")


def write_text(path: Optional[str], text: str) -> None:
    if path is None or path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        raise LatencyScopeError(f"cannot write {path}: {exc.strerror}")


def open_capture(path: str):
    """The capture at PATH (analyze.capture.open_capture), once the collector is back on.

    ``main`` turns Python's cyclic garbage collector off while the heavy
    modules load: their ~10^5 objects set off collections that find nothing
    (12 ms), and a full one later walks them all again (13 ms).  They are
    frozen out of its sight before the first capture is read."""
    from latencyscope.analyze.capture import open_capture as _open

    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    return _open(path)


def analyze_capture(path: str, *, cpus=None, pids=(), modules=None, policy_file=None, top: int = 10, **extra):
    """Open, analyze and return the report dict (the library entry point)."""
    from latencyscope.analyze import policy, report

    pol = policy.load(policy_file)
    cap = open_capture(path)
    ctx = report.resolve_context(cap, pol, cpus=cpus, pids=pids, top=top, **extra)
    rep = report.build(cap, ctx, modules)
    if ctx.notional is not None and ctx.bps_per_us is not None:
        from latencyscope.analyze import cost

        rep["cost"] = cost.summary(cost.delays(cap, ctx, rep), ctx.notional, ctx.bps_per_us, cap.duration_s,
                                   top=top)
    return rep


def cost_options(notional, bps_per_us) -> dict:
    """--notional/--bps-per-us as analyze_capture keywords; both or neither."""
    if (notional is None) != (bps_per_us is None):
        raise LatencyScopeError("--notional and --bps-per-us go together")
    return {} if notional is None else {"notional": notional, "bps_per_us": bps_per_us}


def emit_report(rep: dict, fmt: str, output: Optional[str]) -> int:
    if fmt == "json":
        from latencyscope.analyze.jsonout import dumps

        write_text(output, dumps(rep))
    else:
        from rich.console import Console

        from latencyscope.analyze.terminal import render

        def _render(console):
            render(rep, console)
            if rep.get("cost"):
                from latencyscope.analyze import cost

                cost.render(rep["cost"], console)

        if output and output != "-":
            buf = io.StringIO()
            _render(Console(file=buf, width=120, force_terminal=False, color_system=None))
            write_text(output, buf.getvalue())
        else:
            _render(Console())
    return rep["verdict"]["exit_code"]


def module_list(values):
    from latencyscope.analyze import modules as registry
    from latencyscope.cliutil import parse_modules

    return parse_modules(values, registry.names())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Tracebacks for errors.")
def cli(debug):
    """Analyze LatencyScope captures: reports, verdicts, exports (no root needed).

    Exit codes: 0 pass, 1 warnings, 2 violations, 3 error.
    """


@cli.command("report")
@click.argument("captures", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of the terminal report.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), help="Output format.")
@click.option("-o", "--output", help="Write the report to FILE.")
@click.option("--cpus", help="Monitored CPUs (default: recorded --cpus, else the host's isolated CPUs).")
@click.option("-p", "--pid", "pids", type=int, multiple=True, help="Target process id (repeatable).")
@click.option("-m", "--module", "--modules", "modules", multiple=True, help="Only these modules.")
@click.option("--policy", "policy_file", help="TOML file of thresholds (see `policy`).")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="Worst-N list lengths.")
@click.option("--notional", type=click.FloatRange(min=0), help="Notional per trade: adds the cost of delays.")
@click.option("--bps-per-us", type=click.FloatRange(min=0), help="Basis points lost per µs of delay.")
def report_cmd(captures, as_json, fmt, output, cpus, pids, modules, policy_file, top, notional, bps_per_us):
    """Analyze CAPTURE(s) and print the report; exit code is the (worst) verdict.

    With several captures, one column per capture.
    """
    fmt = "json" if as_json else (fmt or "text")
    check_writable(output)
    mods = module_list(modules)
    cpu_list = parse_cpus(cpus)
    extra = cost_options(notional, bps_per_us)
    if len(captures) > 1:
        from latencyscope.analyze import compare

        reps = [analyze_capture(c, cpus=cpu_list, pids=pids, modules=mods, policy_file=policy_file, top=top,
                                **extra)
                for c in captures]
        return _exit(compare.emit_columns(reps, fmt, output))
    rep = analyze_capture(captures[0], cpus=cpu_list, pids=pids, modules=mods, policy_file=policy_file, top=top,
                          **extra)
    return _exit(emit_report(rep, fmt, output))


@cli.command("diff")
@click.argument("base")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of the table.")
@click.option("-o", "--output", help="Write the diff to FILE.")
@click.option("--policy", "policy_file", help="TOML file; its [diff] section sets the tolerances.")
@click.option("--cpus", help="Monitored CPUs for both captures (default: each capture's own).")
@click.option("-p", "--pid", "pids", type=int, multiple=True, help="Target pid for both (default: recorded).")
@click.option("-m", "--module", "--modules", "modules", multiple=True, help="Only these modules.")
def diff_cmd(base, new, as_json, output, policy_file, cpus, pids, modules):
    """Compare NEW with BASE figure by figure; exit 2 when a figure regressed.

    Regression = worse by more than the policy's tolerance and beyond noise
    (percentiles need enough samples beyond them; see `policy`, [diff]).
    Captures may come from different hosts.  Exit codes: 0 no regression,
    2 regression, 3 error.
    """
    from latencyscope.analyze import policy

    check_writable(output)
    pol = policy.load(policy_file)
    if not 0 < float(pol["diff"]["confidence"]) < 1:
        raise LatencyScopeError(f"policy: diff.confidence = {pol['diff']['confidence']} must be between 0 and 1")
    from latencyscope.analyze import diff as diffmod

    kw = dict(cpus=parse_cpus(cpus), pids=pids, modules=module_list(modules), pol=pol)
    d = diffmod.compare(_diff_side(base, **kw), _diff_side(new, **kw), pol["diff"])
    if as_json:
        from latencyscope.analyze.jsonout import dumps

        write_text(output, dumps(d))
    else:
        from rich.console import Console

        if output and output != "-":
            buf = io.StringIO()
            diffmod.render(d, Console(file=buf, width=160, force_terminal=False, color_system=None))
            write_text(output, buf.getvalue())
        else:
            console = Console()
            diffmod.render(d, console if console.is_terminal else Console(width=160))
    return _exit(d["exit_code"])


def _diff_side(path, *, cpus, pids, modules, pol):
    from latencyscope.analyze import cost, diff as diffmod, report

    cap = open_capture(path)
    ctx = report.resolve_context(cap, pol, cpus=cpus, pids=pids)
    rep = report.build(cap, ctx, modules)
    samples = {}
    if "isolation" in rep["modules"] and rep["isolation"]["status"] != "NOT_RECORDED":
        waits = cost.scoped_waits(cap, ctx, rep)
        if waits is not None:
            samples[("isolation", "runqueue")] = waits["latency_ns"].to_numpy()
    dl = cost.scoped_deliveries(cap, ctx) if "network" in rep["modules"] else None
    if dl is not None:
        samples[("network.delivery", "ns")] = dl["delivery_ns"].to_numpy()
    return diffmod.side(rep, cost.delays(cap, ctx, rep), samples)


@cli.command("flamegraph")
@click.argument("capture")
@click.option("--notional", type=click.FloatRange(min=0), required=True, help="Notional per trade (money).")
@click.option("--bps-per-us", type=click.FloatRange(min=0), required=True,
              help="Basis points of the notional lost per µs of delay.")
@click.option("-o", "--output", required=True, help="Folded-stack file to write (flamegraph.pl, speedscope, inferno).")
@click.option("--perfetto", "perfetto_out", help="Also write the cost as a Perfetto trace (slice width = cost).")
@click.option("--cpus", help="Monitored CPUs (default: recorded --cpus, else the host's isolated CPUs).")
@click.option("-p", "--pid", "pids", type=int, multiple=True, help="Target process id (repeatable).")
@click.option("--top", type=click.IntRange(1, 1000), default=10, show_default=True, help="Causes listed.")
def flamegraph_cmd(capture, notional, bps_per_us, output, perfetto_out, cpus, pids, top):
    """Write the alpha flamegraph of CAPTURE: what delays cost, by cause.

    cost = delay_µs × bps_per_µs × notional / 10,000.  Stacks are
    module;cause;who;thread, weights in micro-units of money.
    """
    from latencyscope.analyze import cost, policy, report
    from latencyscope.analyze.folded import MICRO, write_cost_trace, write_folded

    check_writable(output)
    check_writable(perfetto_out)
    cap = open_capture(capture)
    ctx = report.resolve_context(cap, policy.load(None), cpus=parse_cpus(cpus), pids=pids, top=top)
    rep = report.build(cap, ctx, ["isolation"] if "isolation" in cap.modules else None)
    table = cost.with_cost(cost.delays(cap, ctx, rep), notional, bps_per_us)
    st = write_folded(table, output)
    if perfetto_out:
        write_cost_trace(table, perfetto_out)
    s = cost.summary(table, notional, bps_per_us, cap.duration_s, top=top)
    click.echo(f"wrote {output}: {st['stacks']} stacks, weights in 1/{MICRO:,} of money"
               + (f"; {perfetto_out}" if perfetto_out else ""), err=True)
    click.echo(f"estimated cost {cost.money(s['total_cost'])} over {cap.duration_s:.1f} s "
               f"({s['total_delay_ns'] / 1e3:,.0f} µs of delay)", err=True)
    for c in s["top_causes"][:5]:
        click.echo(f"  {cost.money(c['cost']):>10}  {c['share'] * 100:5.1f}%  {c['module']} / {c['cause']} / {c['who']}",
                   err=True)


@cli.command("policy")
@click.option("-o", "--output", help="Write to FILE instead of stdout.")
def policy_cmd(output):
    """Print every verdict threshold with its default, as a TOML policy file."""
    from latencyscope.analyze import policy

    check_writable(output)
    write_text(output, policy.to_toml())


@cli.command("perfetto")
@click.argument("capture")
@click.option("-o", "--output", required=True, help="Trace file to write (.pftrace).")
def perfetto_cmd(capture, output):
    """Write CAPTURE as a Perfetto trace (open it at ui.perfetto.dev)."""
    from latencyscope.analyze.perfetto import write_trace

    check_writable(output)
    st = write_trace(open_capture(capture), output)
    click.echo(f"wrote {output}: {st.get('cpu_tracks', 0)} CPU tracks, {st.get('cpu_slices', 0):,} task slices, "
               f"{st.get('runqueue_waits', 0):,} runqueue waits, {st.get('wakeup_flows', 0):,} wakeup flows, "
               f"{st.get('hardirq_slices', 0) + st.get('softirq_slices', 0):,} IRQ slices, "
               f"{st.get('bytes', 0) / 2**20:.1f} MiB — open it at ui.perfetto.dev", err=True)
    if st.get("unreported_switches"):
        click.echo(f"  {st['unreported_switches']:,} switches the kernel did not report are marked "
                   "'unreported switch' on the CPU tracks", err=True)


def _exit(code: int):
    raise click.exceptions.Exit(code)


def main(argv=None):
    return_freed_memory()  # before pyarrow and polars load (latencyscope/allocator.py)
    gc.disable()           # until the modules are loaded (open_capture)
    try:
        run(cli, "latencyscope-analyze", argv)
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
