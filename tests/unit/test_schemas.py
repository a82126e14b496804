"""The C structs the BPF programs fill and the numpy dtypes the drain uses agree."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from latencyscope.schemas import EVENT_KINDS
from latencyscope.schemas.codegen import HEADER_PATH, c_header, main as codegen_main, record_dtype


def test_generated_files_are_fresh():
    assert codegen_main(["--check"]) == 0, "run `python -m latencyscope.schemas.codegen`"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_c_struct_layout_matches_numpy_dtype(tmp_path):
    prog = ["#include <stdio.h>", "#include <stddef.h>",
            "typedef unsigned char __u8; typedef unsigned short __u16; typedef short __s16;",
            "typedef unsigned int __u32; typedef int __s32;",
            "typedef unsigned long long __u64; typedef long long __s64;",
            HEADER_PATH.read_text(), "int main(void) {"]
    for k in EVENT_KINDS:
        prog.append(f'printf("{k.name} size %zu\\n", sizeof(struct {k.c_struct}));')
        for f in k.fields:
            prog.append(f'printf("{k.name} {f.name} %zu %zu\\n", offsetof(struct {k.c_struct}, {f.name}), '
                        f'sizeof(((struct {k.c_struct} *)0)->{f.name}));')
    prog.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(prog))
    subprocess.run(["cc", "-Wall", "-o", str(tmp_path / "layout"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "layout")], check=True, capture_output=True, text=True).stdout
    c = {}
    for line in out.splitlines():
        parts = line.split()
        c[(parts[0], parts[1])] = tuple(int(x) for x in parts[2:])
    for k in EVENT_KINDS:
        dt = record_dtype(k)
        assert c[(k.name, "size")] == (dt.itemsize,)
        for f in k.fields:
            off = dt.fields[f.name][1]
            assert c[(k.name, f.name)] == (off, dt.fields[f.name][0].itemsize), f"{k.name}.{f.name}"


def test_ring_entry_is_headers_plus_whole_records():
    from latencyscope.schemas.codegen import STAGE_RECORDS, entry_header_size, entry_records, entry_size

    for k in EVENT_KINDS:
        n = STAGE_RECORDS if k.staged else 1
        assert entry_records(k) == n and entry_header_size(k) == (16 if k.staged else 8)
        assert entry_size(k) == entry_header_size(k) + n * k.record_size and entry_size(k) % 8 == 0


def test_header_has_compile_time_asserts():
    text = c_header()
    for k in EVENT_KINDS:
        assert f"_Static_assert(sizeof(struct {k.c_struct}) == {k.record_size}" in text


def test_prog_info_layout_matches_the_kernel_uapi_header(tmp_path):
    """record/bpfinfo.py reads recursion_misses out of struct bpf_prog_info
    by offset: compare with the system's <linux/bpf.h> through gcc."""
    from latencyscope.record.bpfinfo import _ProgInfo

    if not shutil.which("gcc") or not Path("/usr/include/linux/bpf.h").exists():
        pytest.skip("gcc or linux uapi headers (linux-libc-dev) missing")
    src = tmp_path / "off.c"
    fields = ("name", "run_time_ns", "run_cnt", "recursion_misses")
    src.write_text("#include <stdio.h>\n#include <stddef.h>\n#include <linux/bpf.h>\nint main(void){"
                   + "".join(f'printf("%zu\\n", offsetof(struct bpf_prog_info, {f}));' for f in fields) + "}\n")
    subprocess.run(["gcc", str(src), "-o", str(tmp_path / "off")], check=True)
    got = subprocess.run([str(tmp_path / "off")], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in got] == [getattr(_ProgInfo, f).offset for f in fields]
