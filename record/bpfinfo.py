"""What the kernel says about our loaded BPF programs (BPF_OBJ_GET_INFO_BY_FD).

The figure we need is ``recursion_misses``: the times the kernel did not
run a program because another BPF program was already running on that CPU
(a classic tracepoint program never nests inside any other, e.g. a wakeup
in an interrupt that arrives while our wakeup program runs; a tp_btf
program never inside itself).  Each is an
event the capture does not have; the recorder reports them per program.
"""
from __future__ import annotations

import ctypes
import os
from typing import Dict, Optional

SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
BPF_OBJ_GET_INFO_BY_FD = 15

_u32, _u64 = ctypes.c_uint32, ctypes.c_uint64


class _ProgInfo(ctypes.Structure):
    """struct bpf_prog_info (include/uapi/linux/bpf.h) up to recursion_misses."""
    _fields_ = [
        ("type", _u32), ("id", _u32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", _u32), ("xlated_prog_len", _u32),
        ("jited_prog_insns", _u64), ("xlated_prog_insns", _u64), ("load_time", _u64),
        ("created_by_uid", _u32), ("nr_map_ids", _u32), ("map_ids", _u64),
        ("name", ctypes.c_char * 16), ("ifindex", _u32), ("gpl_compatible", _u32),
        ("netns_dev", _u64), ("netns_ino", _u64),
        ("nr_jited_ksyms", _u32), ("nr_jited_func_lens", _u32),
        ("jited_ksyms", _u64), ("jited_func_lens", _u64),
        ("btf_id", _u32), ("func_info_rec_size", _u32), ("func_info", _u64),
        ("nr_func_info", _u32), ("nr_line_info", _u32), ("line_info", _u64), ("jited_line_info", _u64),
        ("nr_jited_line_info", _u32), ("line_info_rec_size", _u32), ("jited_line_info_rec_size", _u32),
        ("nr_prog_tags", _u32), ("prog_tags", _u64),
        ("run_time_ns", _u64), ("run_cnt", _u64), ("recursion_misses", _u64),
    ]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", _u32), ("info_len", _u32), ("info", _u64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def recursion_misses(prog_fd: int) -> Optional[int]:
    """Times the kernel skipped this program because another BPF program was
    running on the CPU; None when the kernel cannot say (older than 5.12)."""
    if SYS_BPF is None:
        return None
    info = _ProgInfo()
    attr = _InfoAttr(bpf_fd=prog_fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    if _libc.syscall(SYS_BPF, BPF_OBJ_GET_INFO_BY_FD, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        return None
    # The kernel writes back how much of the struct it knows.
    if attr.info_len < _ProgInfo.recursion_misses.offset + 8:
        return None
    return int(info.recursion_misses)


def program_label(fn_name: str) -> str:
    """BCC function name -> what it is attached to: 'tracepoint__sched__sched_switch'
    -> 'sched:sched_switch', 'raw_tracepoint__sys_enter' -> 'raw:sys_enter'."""
    if fn_name.startswith("tracepoint__"):
        cat, _, ev = fn_name[len("tracepoint__"):].partition("__")
        return f"{cat}:{ev}"
    if fn_name.startswith("raw_tracepoint__"):
        return "raw:" + fn_name[len("raw_tracepoint__"):]
    return fn_name


def misses_by_program(b, extra: Optional[Dict[str, int]] = None) -> Dict[str, int]:
    """recursion_misses of every loaded program of BCC object B, by label,
    plus EXTRA programs loaded outside BCC (label -> prog fd)."""
    progs = [(program_label(name.decode() if isinstance(name, bytes) else name), fn.fd)
             for name, fn in getattr(b, "funcs", {}).items()]
    progs += list((extra or {}).items())
    out: Dict[str, int] = {}
    for label, fd in progs:
        n = recursion_misses(fd)
        if n is not None:
            out[label] = out.get(label, 0) + n
    return out
