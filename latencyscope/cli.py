"""``latencyscope``: record and analyze in one go (the quick start).

    sudo latencyscope --duration 10
    sudo latencyscope --duration 30 --cpus 3 --pid 4242 --json --output results.json
"""
from __future__ import annotations

import os
import shutil
import tempfile

import click

from latencyscope.cliutil import parse_cpus, parse_modules, run
from latencyscope.errors import LatencyScopeError
from latencyscope.allocator import keep_freed_memory
from latencyscope.schemas import MODULES


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-d", "--duration", type=float, default=10.0, show_default=True, help="Seconds to record.")
@click.option("-p", "--pid", "pids", type=int, multiple=True, help="Target process id (repeatable).")
@click.option("--cpus", help="Monitored CPUs, e.g. 1 or 2-3.")
@click.option("-m", "--module", "--modules", "modules", multiple=True,
              help=f"Module(s): {', '.join(MODULES)} (default all).")
@click.option("-i", "--interface", help="Network interface for the network module.")
@click.option("--json", "as_json", is_flag=True, help="JSON report (same as --format json).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "perfetto"]), help="Output format.")
@click.option("-o", "--output", help="Write the report (or trace) to FILE.")
@click.option("--notional", type=click.FloatRange(min=0),
              help="Notional per trade: the report states the estimated cost of delays (with --bps-per-us).")
@click.option("--bps-per-us", type=click.FloatRange(min=0), help="Basis points of the notional lost per µs of delay.")
@click.option("--policy", "policy_file", help="TOML file of verdict thresholds.")
@click.option("--keep", "keep", help="Keep the capture at this path for later re-analysis.")
@click.option("-q", "--quiet", is_flag=True, help="No live status line while recording.")
@click.option("--debug", is_flag=True, help="Tracebacks for errors.")
def oneshot(duration, pids, cpus, modules, interface, as_json, fmt, output, notional, bps_per_us,
            policy_file, keep, quiet, debug):
    """Record for --duration seconds, then analyze and report (root).

    Exit codes: 0 pass, 1 warnings, 2 violations, 3 error.
    """
    from latencyscope.analyze import policy
    from latencyscope.analyze.cli import analyze_capture, check_writable, emit_report
    from latencyscope.record.session import RecordConfig, record

    fmt = "json" if as_json else (fmt or "text")
    if fmt == "perfetto" and not output:
        raise LatencyScopeError("--format perfetto needs --output FILE")
    check_writable(output)
    mods = parse_modules(modules, MODULES)
    cpu_list = parse_cpus(cpus)
    if (notional is None) != (bps_per_us is None):
        raise LatencyScopeError("--notional and --bps-per-us go together")
    policy.load(policy_file)  # a bad policy fails before a 10 s recording, not after
    tmpdir = None
    if keep:
        path = keep
    else:
        tmpdir = tempfile.mkdtemp(prefix="latencyscope-")
        path = os.path.join(tmpdir, "capture.lscope")
    try:
        extra = {"interface": interface} if interface else {}
        res = record(RecordConfig(output=path, modules=mods, cpus=cpu_list, pids=list(pids),
                                  duration_s=duration, quiet=quiet, **extra))
        if not quiet:
            for n in res.notes:
                click.echo(f"note: {n}", err=True)
        if fmt == "perfetto":
            from latencyscope.analyze.capture import open_capture
            from latencyscope.analyze.perfetto import write_trace

            write_trace(open_capture(str(res.path)), output)
            rep = analyze_capture(str(res.path), cpus=cpu_list, pids=pids, modules=mods, policy_file=policy_file)
            v = rep["verdict"]
            click.echo(f"wrote {output} (open it at https://ui.perfetto.dev); verdict {v['status']}, "
                       f"{len(v['violations'])} violation(s), {len(v['warnings'])} warning(s)", err=True)
            if keep and not quiet:
                click.echo(f"capture kept at {res.path}", err=True)
            return _exit(v["exit_code"])
        rep = analyze_capture(str(res.path), cpus=cpu_list, pids=pids, modules=mods, policy_file=policy_file,
                              notional=notional, bps_per_us=bps_per_us)
        if keep and not quiet:
            click.echo(f"capture kept at {res.path}", err=True)
        return _exit(emit_report(rep, fmt, output))
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _exit(code):
    raise click.exceptions.Exit(code)


def main(argv=None):
    keep_freed_memory()  # before pyarrow loads (latencyscope/allocator.py)
    run(oneshot, "latencyscope", argv)


if __name__ == "__main__":
    main()
