"""Finding what the recorder needs on the host: BCC, tracefs, kernel headers.

Nothing here prints; each function returns facts or raises
:class:`LatencyScopeError` with one line that says what to do.
"""
from __future__ import annotations

import ctypes
import glob
import importlib
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from latencyscope.errors import LatencyScopeError

# Where distros install the BCC binding (python3-bpfcc, python3-bcc, python-bcc).
BCC_SITE_DIRS = (
    "/usr/lib/python3/dist-packages",
    *sorted(glob.glob("/usr/lib/python3*/site-packages"), reverse=True),
    *sorted(glob.glob("/usr/lib64/python3*/site-packages"), reverse=True),
    *sorted(glob.glob("/usr/local/lib/python3*/dist-packages"), reverse=True),
)

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

BCC_INSTALL_HINT = ("install the distro's BCC binding: Debian/Ubuntu `apt-get install python3-bpfcc`, "
                    "Fedora `dnf install python3-bcc`, Arch `pacman -S python-bcc` "
                    "(never `pip install bcc`: that is an unrelated project)")


def import_bcc():
    """Import the real BCC binding, from the venv or the distro's site dir.

    The distro dir is appended (not prepended) so the venv's own numpy etc.
    still win; only ``bcc`` is wanted from there.
    """
    try:
        mod = importlib.import_module("bcc")
        if hasattr(mod, "BPF"):
            return mod
        sys.modules.pop("bcc", None)  # the unrelated PyPI "bcc"
    except ImportError:
        pass
    for d in BCC_SITE_DIRS:
        if os.path.isfile(os.path.join(d, "bcc", "__init__.py")):
            if d not in sys.path:
                sys.path.append(d)
            try:
                mod = importlib.import_module("bcc")
            except Exception as exc:  # libbcc missing, broken install
                raise LatencyScopeError(f"BCC found in {d} but failed to import ({exc}); {BCC_INSTALL_HINT}")
            if hasattr(mod, "BPF"):
                return mod
    raise LatencyScopeError(f"BCC Python binding not found; {BCC_INSTALL_HINT}")


def tracefs_path(mount: bool = True) -> str:
    """Return the mounted tracefs directory, mounting it when root and absent."""
    for p in TRACEFS_CANDIDATES:
        if os.path.isfile(os.path.join(p, "available_events")) or os.path.isdir(os.path.join(p, "events")):
            return p
    if mount and os.geteuid() == 0:
        target = TRACEFS_CANDIDATES[0]
        if _mount("nodev", target, "tracefs"):
            return target
    raise LatencyScopeError("tracefs is not mounted and could not be mounted; "
                            "run as root or `mount -t tracefs nodev /sys/kernel/tracing`")


def debugfs_tracing(mount: bool = True) -> None:
    """BCC 0.26 reads tracepoint formats under /sys/kernel/debug/tracing; make it exist."""
    if os.path.isdir("/sys/kernel/debug/tracing/events"):
        return
    if mount and os.geteuid() == 0:
        _mount("debugfs", "/sys/kernel/debug", "debugfs")


def _mount(source: str, target: str, fstype: str) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
    rc = libc.mount(source.encode(), target.encode(), fstype.encode(), 0, None)
    return rc == 0 or ctypes.get_errno() == 16  # EBUSY: already mounted


def tracepoint_exists(tracefs: str, tracepoint: str) -> bool:
    cat, name = tracepoint.split(":")
    return os.path.isfile(os.path.join(tracefs, "events", cat, name, "format"))


def tracepoint_format(tracefs: str, tracepoint: str) -> str:
    cat, name = tracepoint.split(":")
    return Path(tracefs, "events", cat, name, "format").read_text()


# --- kernel headers ---------------------------------------------------------

@dataclass
class Headers:
    """What BCC will compile against."""
    path: str                    # directory given to BCC
    exact: bool                  # headers of the running kernel
    source: str                  # where they came from (package dir(s))
    tmpdir: Optional[str] = None  # private merged tree to remove afterwards

    def env(self) -> dict:
        return {} if self.exact else {"BCC_KERNEL_SOURCE": self.path}

    def cleanup(self) -> None:
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def manifest(self) -> dict:
        return {"exact": self.exact, "source": self.source,
                "fallback": None if self.exact else self.source}


def _version_key(path: str):
    return [int(x) if x.isdigit() else x for x in re.split(r"[.-]", os.path.basename(path))]


def _usable(d: str) -> bool:
    return os.path.isfile(os.path.join(d, "include", "generated", "autoconf.h")) or \
        os.path.isfile(os.path.join(d, "include", "linux", "kconfig.h"))


def _debian_common(d: str) -> Optional[str]:
    """Debian splits headers into -ARCH (generated) and -common (the rest)."""
    mk = os.path.join(d, "Makefile")
    try:
        first = Path(mk).read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return None
    m = re.match(r"include\s+(\S+)/Makefile$", first)
    return m.group(1) if m and os.path.isdir(m.group(1)) else None


def _overlay(dst: str, srcs: List[str]) -> None:
    """A symlink tree showing SRCS merged (earlier wins), so one -I root works."""
    os.makedirs(dst, exist_ok=True)
    names = {}
    for s in srcs:
        for n in os.listdir(s):
            names.setdefault(n, []).append(os.path.join(s, n))
    for n, paths in names.items():
        dirs = [p for p in paths if os.path.isdir(p) and not os.path.islink(p)]
        if len(dirs) > 1:
            _overlay(os.path.join(dst, n), dirs)
        else:
            os.symlink(paths[0], os.path.join(dst, n))


MERGED_PREFIX = "latencyscope-headers-"
# A merged tree lives while BCC compiles (seconds); one older than this whose
# pid is gone was left by a killed recorder.  The age also spares a live
# recorder whose pid this one cannot see (another pid namespace, same /tmp).
MERGED_STALE_S = 600


def _sweep_merged_trees() -> None:
    """Remove the merged trees of recorders that were killed before they
    could (named after their pid; our own only, never through a link)."""
    root = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(root) if n.startswith(MERGED_PREFIX)]
    except OSError:
        return
    for n in names:
        pid = n[len(MERGED_PREFIX):].split("-", 1)[0]
        path = os.path.join(root, n)
        try:
            st = os.lstat(path)
            if (not pid.isdigit() or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid()
                    or time.time() - st.st_mtime < MERGED_STALE_S):
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def resolve_headers(release: Optional[str] = None) -> Headers:
    """The running kernel's headers, else the newest installed ones.

    Our programs read only tracepoint arguments and helpers, never a kernel
    struct, so headers of another recent kernel compile them correctly.
    """
    release = release or os.uname().release
    exact = f"/lib/modules/{release}/build"
    if os.path.isdir(exact):
        return Headers(exact, True, exact)
    if os.path.isfile("/sys/kernel/kheaders.tar.xz"):
        return Headers("/sys/kernel/kheaders.tar.xz", True, "/sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS)")
    candidates = [d for d in glob.glob("/lib/modules/*/build") + glob.glob("/usr/src/linux-headers-*")
                  + glob.glob("/usr/src/kernels/*") + glob.glob("/usr/lib/modules/*/build")
                  if os.path.isdir(d) and not d.endswith("-common")]
    for d in sorted(set(candidates), key=_version_key, reverse=True):
        common = _debian_common(d)
        if common:
            _sweep_merged_trees()
            tmp = tempfile.mkdtemp(prefix=f"{MERGED_PREFIX}{os.getpid()}-")
            merged = os.path.join(tmp, os.path.basename(d))
            _overlay(merged, [d, common])
            return Headers(merged, False, f"{d} + {common}", tmpdir=tmp)
        if _usable(d):
            return Headers(d, False, d)
    raise LatencyScopeError(
        f"no kernel headers found for {release} nor any fallback; install a headers package "
        "(Debian/Ubuntu `apt-get install linux-headers-amd64`, Fedora `dnf install kernel-devel`, "
        "Arch `pacman -S linux-headers`)")


# --- privileges -------------------------------------------------------------

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def has_tracing_privileges() -> bool:
    """Capabilities, not the uid, decide: root without them (a container,
    a bounding set) cannot load BPF programs either."""
    caps = effective_caps()
    if caps & (1 << CAP_SYS_ADMIN):
        return True
    return bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))
