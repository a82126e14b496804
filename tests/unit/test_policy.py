"""The policy file: every threshold with a documented default; typos are errors (exit 3)."""
import subprocess
import sys
from pathlib import Path

import pytest

from latencyscope.analyze import modules, policy
from latencyscope.errors import LatencyScopeError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "policy.toml"
REGENERATE = "latencyscope-analyze policy -o examples/policy.toml"


def test_every_registered_module_has_a_section_and_every_threshold_a_meaning():
    table = policy.defaults()
    assert set(table) == {"capture", "diff", *modules.names()}
    for name in modules.names():
        assert table[name], f"module {name} has no POLICY thresholds"
    for sec, entries in table.items():
        for key, entry in entries.items():
            assert isinstance(entry, tuple) and len(entry) == 2, f"{sec}.{key}: (default, meaning)"
            default, meaning = entry
            assert isinstance(default, (bool, int, float, str, list)), f"{sec}.{key}"
            assert isinstance(meaning, str) and len(meaning) > 10, f"{sec}.{key} needs a meaning"


def test_the_sample_policy_file_is_up_to_date():
    assert SAMPLE.read_text() == policy.to_toml(), f"examples/policy.toml is stale: run `{REGENERATE}`"


def test_the_sample_policy_file_loads_to_the_defaults():
    assert policy.load(str(SAMPLE)) == policy.default_values()


def test_policy_command_prints_a_loadable_file(tmp_path):
    p = subprocess.run([str(BIN / "latencyscope-analyze"), "policy"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == policy.to_toml()
    f = tmp_path / "p.toml"
    f.write_text(p.stdout)
    assert policy.load(str(f)) == policy.default_values()


def test_a_partial_file_overrides_only_what_it_names(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("[isolation]\nrunqueue_p99_999_fail_ns = 50000\n[diff]\ntolerance_pct = 25\n")
    got = policy.load(str(f))
    want = policy.default_values()
    want["isolation"]["runqueue_p99_999_fail_ns"] = 50000
    want["diff"]["tolerance_pct"] = 25
    assert got == want


@pytest.mark.parametrize("text,needle", [
    ("[isolaton]\nmax_user_intrusions = 1\n", "unknown section [isolaton]"),
    ("[isolation]\nmax_user_intrusion = 1\n", "unknown key isolation.max_user_intrusion"),
    ("[diff]\ntolerance = 5\n", "unknown key diff.tolerance"),
    ("[isolation]\nmax_user_intrusions = 'many'\n", "not a valid int"),
    ("[isolation]\nmax_user_intrusions = true\n", "not a valid int"),
    ("[isolation]\nmax_user_intrusions = -1\n", "not a valid int"),
    ("[isolation]\nrunqueue_p99_999_fail_ns = [1, 2]\n", "not a valid int"),
    ("[capture]\nmax_lost_events = 1.5.2\n", "not valid TOML"),
    ("isolation = 3\n", "must be a table"),
])
def test_typos_and_bad_values_are_errors_not_defaults(tmp_path, text, needle):
    f = tmp_path / "p.toml"
    f.write_text(text)
    with pytest.raises(LatencyScopeError) as e:
        policy.load(str(f))
    assert needle in e.value.message and e.value.exit_code == 3


def test_each_threshold_with_a_wrong_type_is_refused(tmp_path):
    f = tmp_path / "p.toml"
    for sec, entries in policy.defaults().items():
        for key, (default, _) in entries.items():
            bad = "'x'" if not isinstance(default, str) else "1"
            f.write_text(f"[{sec}]\n{key} = {bad}\n")
            with pytest.raises(LatencyScopeError, match=f"{sec}.{key}"):
                policy.load(str(f))


@pytest.mark.parametrize("cmd", [["latencyscope-analyze", "report", "CAP"], ["latencyscope-analyze", "diff", "CAP", "CAP"],
                                 ["latencyscope", "--duration", "1"]])
def test_a_bad_policy_is_one_line_and_exit_3_in_every_command(tmp_path, cmd):
    from synth import switch, write

    cap = write(str(tmp_path / "c.lscope"), {"sched_switch": [switch(0, 1, 0, 100)]})
    f = tmp_path / "p.toml"
    f.write_text("[isolation]\nmax_user_intrusion = 3\n")
    args = [str(BIN / cmd[0])] + [cap if a == "CAP" else a for a in cmd[1:]] + ["--policy", str(f)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert p.returncode == 3 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "unknown key isolation.max_user_intrusion" in lines[0]
