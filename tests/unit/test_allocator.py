"""latencyscope/allocator.py: memory a flush frees is kept for the next one, so
the recorder does not fault fresh (zeroed) pages in on every flush.  Ground
truth: the process's own minor-fault count (getrusage)."""
import os
import subprocess
import sys

PROG = r"""
import resource, sys
if sys.argv[1] == "keep":
    from latencyscope.allocator import keep_freed_memory
    keep_freed_memory()
import numpy as np, pyarrow as pa
def flush_like():
    a = np.ones(3 << 20)                     # 24 MiB of columns (numpy: glibc malloc)
    b = pa.array(a).to_numpy().copy()        # and through Arrow (mimalloc)
    c = pa.array(b)
    return int(c[0].as_py())
flush_like()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    flush_like()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROG, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_flush_sized_temporaries_are_not_faulted_in_again():
    kept = _faults("keep")
    default = _faults("default")
    assert kept < 64, kept                 # reused: (almost) no new pages
    assert default > kept, (default, kept)  # the default returns them to the kernel


def test_the_analyzer_gives_freed_memory_back():
    """latencyscope-analyze sets the allocators before they load: Arrow on glibc malloc, Polars' jemalloc purging."""
    prog = ("import os\nfrom latencyscope.analyze.cli import main\nimport latencyscope.analyze.cli as c\n"
            "c.run = lambda *a: None\nmain([])\nimport pyarrow\n"
            "print(pyarrow.default_memory_pool().backend_name, os.environ['_RJEM_MALLOC_CONF'])")
    env = {k: v for k, v in os.environ.items() if k not in ("ARROW_DEFAULT_MEMORY_POOL", "_RJEM_MALLOC_CONF")}
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["system", "dirty_decay_ms:0,muzzy_decay_ms:0"]
