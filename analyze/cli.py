"""``latencyscope-analyze``: read captures, report, export. No root, no BCC."""
from __future__ import annotations

import io
import os
import sys
from typing import Optional

import click

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


def analyze_capture(path: str, *, cpus=None, pids=(), modules=None, policy_file=None, top: int = 10, **extra):
    """Open, analyze and return the report dict (the library entry point)."""
    from latencyscope.analyze import policy, report
    from latencyscope.analyze.capture import open_capture

    pol = policy.load(policy_file)
    cap = open_capture(path)
    ctx = report.resolve_context(cap, pol, cpus=cpus, pids=pids, top=top, **extra)
    return report.build(cap, ctx, modules)


def emit_report(rep: dict, fmt: str, output: Optional[str]) -> int:
    if fmt == "json":
        from latencyscope.analyze.jsonout import dumps

        write_text(output, dumps(rep))
    else:
        from rich.console import Console

        from latencyscope.analyze.terminal import render

        if output and output != "-":
            buf = io.StringIO()
            render(rep, Console(file=buf, width=120, force_terminal=False, color_system=None))
            write_text(output, buf.getvalue())
        else:
            render(rep, Console())
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
def report_cmd(captures, as_json, fmt, output, cpus, pids, modules, policy_file, top):
    """Analyze CAPTURE and print the report; exit code is the verdict."""
    fmt = "json" if as_json else (fmt or "text")
    check_writable(output)
    mods = module_list(modules)
    cpu_list = parse_cpus(cpus)
    if len(captures) > 1:
        from latencyscope.analyze import compare

        reps = [analyze_capture(c, cpus=cpu_list, pids=pids, modules=mods, policy_file=policy_file, top=top)
                for c in captures]
        return _exit(compare.emit_columns(reps, fmt, output))
    rep = analyze_capture(captures[0], cpus=cpu_list, pids=pids, modules=mods, policy_file=policy_file, top=top)
    return _exit(emit_report(rep, fmt, output))


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
    from latencyscope.analyze.capture import open_capture
    from latencyscope.analyze.perfetto import write_trace

    check_writable(output)
    st = write_trace(open_capture(capture), output)
    click.echo(f"wrote {output}: {st.get('cpu_tracks', 0)} CPU tracks, {st.get('cpu_slices', 0):,} task slices, "
               f"{st.get('runqueue_waits', 0):,} runqueue waits, {st.get('wakeup_flows', 0):,} wakeup flows, "
               f"{st.get('hardirq_slices', 0) + st.get('softirq_slices', 0):,} IRQ slices, "
               f"{st.get('bytes', 0) / 2**20:.1f} MiB — open it at ui.perfetto.dev", err=True)


def _exit(code: int):
    raise click.exceptions.Exit(code)


def main(argv=None):
    run(cli, "latencyscope-analyze", argv)


if __name__ == "__main__":
    main()
