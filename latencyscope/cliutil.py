"""The one place that turns failures into a line on stderr and an exit code.

Exit codes (all three commands): 0 pass, 1 warnings, 2 violations,
3 runtime error (bad flags, files, environment).  Click's own usage errors
(exit 2 by default) are remapped to 3 so that 2 always means "violation".
"""
from __future__ import annotations

import os
import signal
import sys
from typing import List, Optional

import click

from latencyscope.errors import EXIT_ERROR, LatencyScopeError

# What stops a recording (SIGHUP too: an ssh session that drops), and what
# every command ignores once its exit code is decided.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def parse_cpus(value: Optional[str]) -> Optional[List[int]]:
    """'1,3-5' -> [1, 3, 4, 5]; raises LatencyScopeError on anything else."""
    if value is None:
        return None
    from latencyscope.record.host import parse_cpulist

    try:
        cpus = parse_cpulist(value)
    except ValueError:
        cpus = []
    if not cpus or any(c < 0 for c in cpus):
        raise LatencyScopeError(f"malformed CPU list {value!r} (expected e.g. 1 or 2-3,6)")
    return cpus


def parse_modules(values, all_modules) -> List[str]:
    """--module a --module b,c -> [a, b, c], validated; empty means all."""
    mods: List[str] = []
    for v in values or ():
        mods += [m.strip() for m in v.split(",") if m.strip()]
    if not mods or mods == ["all"]:
        return list(all_modules)
    for m in mods:
        if m not in all_modules:
            raise LatencyScopeError(f"unknown module {m!r}; choose from {', '.join(all_modules)}")
    return list(dict.fromkeys(mods))


def run(command: click.Command, prog_name: str, argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("LATENCYSCOPE_DEBUG") == "1"
    try:
        rc = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as e:
        rc = e.exit_code
    except click.Abort:
        click.echo(f"{prog_name}: aborted", err=True)
        rc = EXIT_ERROR
    except click.ClickException as e:
        click.echo(f"{prog_name}: error: {e.format_message()}", err=True)
        rc = EXIT_ERROR
    except LatencyScopeError as e:
        if debug:
            import traceback
            traceback.print_exc()
        click.echo(f"{prog_name}: error: {e.message}", err=True)
        rc = e.exit_code
    except BrokenPipeError:
        rc = 0
    except OSError as e:  # disk full writing a report, a file vanished: the user's world, not a bug
        if debug:
            raise
        where = f" ({e.filename})" if e.filename else ""
        click.echo(f"{prog_name}: error: {e.strerror or e}{where}", err=True)
        rc = EXIT_ERROR
    except MemoryError:
        click.echo(f"{prog_name}: error: out of memory", err=True)
        rc = EXIT_ERROR
    except Exception as e:  # a bug: still one line unless --debug
        if debug:
            raise
        click.echo(f"{prog_name}: internal error: {type(e).__name__}: {e} (rerun with --debug for a traceback)",
                   err=True)
        rc = EXIT_ERROR
    # The work is done and the exit code decided.  Python resets signal
    # handlers to the default action while it shuts down, so a late Ctrl-C
    # there would kill the process with nothing said: ignore it instead.
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    sys.exit(rc or 0)
