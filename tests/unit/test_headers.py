"""The merged kernel-header trees the recorder builds in the temporary
directory when the running kernel's headers are missing."""
import os
import subprocess
import sys
import tempfile
import time

from latencyscope.record import environment as env


def test_trees_of_killed_recorders_are_swept_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()                    # a pid no process has now (reuse within the test is negligible)
    dead = tmp_path / f"{env.MERGED_PREFIX}{gone.pid}-abc"
    alive = tmp_path / f"{env.MERGED_PREFIX}{os.getpid()}-def"
    unnamed = tmp_path / f"{env.MERGED_PREFIX}zz9_x1"   # not ours to judge: no pid in the name
    target = tmp_path / "elsewhere"
    for d in (dead, alive, unnamed, target):
        (d / "include").mkdir(parents=True)
    link = tmp_path / f"{env.MERGED_PREFIX}{gone.pid}-lnk"
    link.symlink_to(target)
    fresh = tmp_path / f"{env.MERGED_PREFIX}{gone.pid}-new"   # may be a live recorder's in another pid namespace
    fresh.mkdir()
    old = time.time() - env.MERGED_STALE_S - 60
    for d in (dead, alive, unnamed):
        os.utime(d, (old, old))
    env._sweep_merged_trees()
    assert not dead.exists()
    assert alive.is_dir() and unnamed.is_dir() and fresh.is_dir()
    assert link.is_symlink() and (target / "include").is_dir()   # a link is never followed nor removed
