"""``latencyscope-record``: options -> RecordConfig -> record()."""
from __future__ import annotations

import time

import click

from latencyscope import COMPRESSION, COMPRESSIONS
from latencyscope.cliutil import parse_cpus, parse_modules, run
from latencyscope.errors import EXIT_ERROR, LatencyScopeError
from latencyscope.allocator import keep_freed_memory
from latencyscope.schemas import MODULES


def default_output() -> str:
    return time.strftime("latencyscope-%Y%m%d-%H%M%S.lscope")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Capture file (default latencyscope-DATE.lscope).")
@click.option("-d", "--duration", type=float, help="Seconds to record (default: until Ctrl-C / SIGTERM).")
@click.option("-m", "--module", "--modules", "modules", multiple=True,
              help=f"Module(s), repeatable or comma list: {', '.join(MODULES)} (default all).")
@click.option("--cpus", help="Monitored CPUs, e.g. 1 or 2-3,6 (filtered in the kernel).")
@click.option("-p", "--pid", "pids", type=int, multiple=True, help="Target process id (repeatable).")
@click.option("-i", "--interface", help="Network module: only this interface (filtered in the kernel).")
@click.option("--ring-scale", type=float, default=1.0, show_default=True,
              help="Multiply every ring buffer's default size.")
@click.option("--rt-priority", type=click.IntRange(0, 99), default=1, show_default=True,
              help="SCHED_FIFO priority of the drain loop once the programs are loaded, so it "
                   "keeps up under load (it sleeps between polls); 0 = normal scheduling.")
@click.option("--compression", type=click.Choice(COMPRESSIONS), default=COMPRESSION, show_default=True,
              help="Codec of the capture's tables: lz4 costs the traced machine about half the CPU "
                   "per event, zstd writes captures about 3x smaller.")
@click.option("-q", "--quiet", is_flag=True, help="No live status line.")
@click.option("--check", is_flag=True, help="Only run the preflight checks and report.")
@click.option("--debug", is_flag=True, help="Tracebacks for errors.")
def record_command(output, duration, modules, cpus, pids, interface, ring_scale, rt_priority, compression, quiet,
                   check, debug):
    """Record raw scheduler/IRQ/memory/syscall/network events into a capture file (root)."""
    mods = parse_modules(modules, MODULES)
    if check:
        return preflight_report(mods)
    from latencyscope.record.session import RecordConfig, record

    cfg = RecordConfig(output=output or default_output(), modules=mods, cpus=parse_cpus(cpus),
                       pids=list(pids), interface=interface, duration_s=duration, quiet=quiet,
                       ring_scale=ring_scale, rt_priority=rt_priority, compression=compression)
    res = record(cfg, then_exit=True)
    if not quiet:
        for n in res.notes:
            click.echo(f"note: {n}", err=True)
        total = sum(res.events.values())
        lost = sum(res.lost.values())
        click.echo(f"wrote {res.path}: {total:,} events in {res.duration_s:.1f} s, "
                   f"{lost:,} lost, {res.path.stat().st_size / 2**20:.1f} MiB", err=True)
    return 0


def preflight_report(mods) -> int:
    from latencyscope.record import preflight

    pf = preflight.run(mods)
    for f in pf.findings:
        click.echo(f"{'ok  ' if f.ok else 'FAIL'} {f.name:12s} {f.detail}")
    if pf.headers:
        pf.headers.cleanup()
    if not pf.ok:
        raise click.exceptions.Exit(EXIT_ERROR)
    return 0


def main(argv=None):
    keep_freed_memory()  # before pyarrow loads (latencyscope/allocator.py)
    run(record_command, "latencyscope-record", argv)


if __name__ == "__main__":
    main()
