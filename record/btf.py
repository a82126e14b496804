"""tp_btf programs: the scheduler hooks as BTF-typed raw tracepoints.

A classic tracepoint program runs after the kernel has copied the event's
fields (two task names for sched_switch) into a buffer; a tp_btf program
gets the tracepoint's own arguments (``struct task_struct *``) and loads
the few fields it needs straight from them, each load checked by the
verifier against the running kernel's BTF.  Measured on the benchmark VM
(``stress-ng --switch 2``, bpf_stats): the same sched_switch record costs
108 ns as tp_btf vs 111 ns as a tracepoint, and the hook itself -- empty
programs on the recorder's tracepoints -- costs the workload 8% instead of
12% of its throughput (docs/benchmarks.md).

BCC 0.26 compiles such a program (ordinary C over ``u64 *ctx``) but cannot
load it, so the recorder takes the bytecode BCC built (map fds already in
place), loads it with ``bpf(BPF_PROG_LOAD)`` as BPF_PROG_TYPE_TRACING /
BPF_TRACE_RAW_TP against the tracepoint's BTF id, and attaches it with
``BPF_RAW_TRACEPOINT_OPEN``.  Field offsets come from the kernel's BTF
through libbpf (which BCC itself depends on), never from headers: the
headers may be another kernel's.

When anything here is missing (no ``/sys/kernel/btf/vmlinux``, no libbpf,
a field renamed), the recorder uses classic tracepoints and says why.
"""
from __future__ import annotations

import ctypes
import os
from typing import Dict, List, Optional, Tuple

from latencyscope.record.bpfinfo import SYS_BPF

# Set to 0 to force classic tracepoints (a kernel whose BTF misleads us).
TP_BTF_ENV = "LATENCYSCOPE_TP_BTF"
VMLINUX_BTF = "/sys/kernel/btf/vmlinux"

BPF_PROG_LOAD = 5
BPF_RAW_TRACEPOINT_OPEN = 17
BPF_PROG_TYPE_TRACING = 26
BPF_TRACE_RAW_TP = 23
BTF_KIND_STRUCT = 4

# The tracepoints whose programs can be tp_btf (bpf/isolation.c ls_btf_EVENT).
# The kernel keeps 15 characters of a program's name (bpftool, bpf_stats):
# tracepoint -> the short name of LatencyScope's tp_btf program (ls_btf_X)
# and of the benchmarks' empty one (e_btf_X).
SHORT_NAMES = {"sched_switch": "switch", "sched_wakeup": "wakeup", "sched_wakeup_new": "wake_new"}

# C macro -> (struct, member) of the fields the programs load.
TASK_FIELDS = {
    "LS_TASK_PID": ("task_struct", "pid"),
    "LS_TASK_TGID": ("task_struct", "tgid"),
    "LS_TASK_PRIO": ("task_struct", "prio"),
    "LS_TASK_COMM": ("task_struct", "comm"),
    "LS_TASK_EXIT_STATE": ("task_struct", "exit_state"),
}


class _ProgLoad(ctypes.Structure):
    """union bpf_attr for BPF_PROG_LOAD (include/uapi/linux/bpf.h), up to attach_prog_fd."""
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32), ("prog_btf_fd", ctypes.c_uint32),
                ("func_info_rec_size", ctypes.c_uint32), ("func_info", ctypes.c_uint64),
                ("func_info_cnt", ctypes.c_uint32), ("line_info_rec_size", ctypes.c_uint32),
                ("line_info", ctypes.c_uint64), ("line_info_cnt", ctypes.c_uint32),
                ("attach_btf_id", ctypes.c_uint32), ("attach_prog_fd", ctypes.c_uint32)]


class _RawTpOpen(ctypes.Structure):
    """union bpf_attr for BPF_RAW_TRACEPOINT_OPEN: name 0 = the program's attach_btf_id."""
    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class BtfError(Exception):
    """tp_btf programs cannot be used here; the message says why."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr) -> int:
    fd = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return int(fd)


class KernelBtf:
    """The running kernel's BTF, read through libbpf."""

    def __init__(self):
        if SYS_BPF is None:
            raise BtfError(f"no bpf() syscall number for {os.uname().machine}")
        if not os.path.isfile(VMLINUX_BTF):
            raise BtfError(f"{VMLINUX_BTF} is missing (kernel built without CONFIG_DEBUG_INFO_BTF)")
        try:
            lib = ctypes.CDLL("libbpf.so.1")
        except OSError as exc:
            raise BtfError(f"libbpf.so.1 not found ({exc})")
        lib.btf__load_vmlinux_btf.restype = ctypes.c_void_p
        lib.btf__free.argtypes = [ctypes.c_void_p]
        lib.btf__find_by_name_kind.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
        lib.btf__type_by_id.restype = ctypes.c_void_p
        lib.btf__type_by_id.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__name_by_offset.restype = ctypes.c_char_p
        lib.btf__name_by_offset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.libbpf_find_vmlinux_btf_id.argtypes = [ctypes.c_char_p, ctypes.c_int]
        self._lib = lib
        self._btf = lib.btf__load_vmlinux_btf()
        if not self._btf:
            raise BtfError(f"libbpf could not parse {VMLINUX_BTF}")

    def close(self) -> None:
        if self._btf:
            self._lib.btf__free(self._btf)
            self._btf = None

    def member_offset(self, struct: str, member: str) -> int:
        """Byte offset of STRUCT.MEMBER (a direct member)."""
        tid = self._lib.btf__find_by_name_kind(self._btf, struct.encode(), BTF_KIND_STRUCT)
        if tid <= 0:
            raise BtfError(f"struct {struct} not in the kernel's BTF")
        p = self._lib.btf__type_by_id(self._btf, tid)
        _name, info, _size = (ctypes.c_uint32 * 3).from_address(p)
        vlen, kflag = info & 0xFFFF, info >> 31
        members = (ctypes.c_uint32 * (3 * vlen)).from_address(p + 12)  # {name_off, type, offset}
        for i in range(vlen):
            if self._lib.btf__name_by_offset(self._btf, members[3 * i]) == member.encode():
                bits = members[3 * i + 2] & 0xFFFFFF if kflag else members[3 * i + 2]
                if bits % 8:
                    raise BtfError(f"{struct}.{member} is a bit field")
                return bits // 8
        raise BtfError(f"{struct}.{member} not in the kernel's BTF")

    def tracepoint_id(self, event: str) -> int:
        """BTF id of the raw tracepoint EVENT (its btf_trace_EVENT typedef)."""
        tid = self._lib.libbpf_find_vmlinux_btf_id(event.encode(), BPF_TRACE_RAW_TP)
        if tid <= 0:
            raise BtfError(f"no BTF for tracepoint {event}")
        return int(tid)

    def task_cflags(self) -> List[str]:
        """-D flags with the task_struct offsets the tp_btf programs load."""
        flags = [f"-D{macro}={self.member_offset(s, m)}" for macro, (s, m) in TASK_FIELDS.items()]
        # task_cpu(p): thread_info.cpu (thread_info is task_struct's first member) or task_struct.cpu.
        try:
            cpu = self.member_offset("task_struct", "thread_info") + self.member_offset("thread_info", "cpu")
        except BtfError:
            cpu = self.member_offset("task_struct", "cpu")
        return flags + [f"-DLS_TASK_CPU={cpu}"]


def disabled_by_env() -> bool:
    return os.environ.get(TP_BTF_ENV, "1").strip() == "0"


class TpBtfLinks:
    """tp_btf programs of a BCC object, loaded and attached by hand."""

    def __init__(self):
        self.progs: Dict[str, Tuple[int, int]] = {}  # label -> (prog fd, link fd)

    def attach(self, b, kbtf: KernelBtf, fn_name: str, event: str, label: str, prog_name: str) -> None:
        """Load BCC function FN_NAME of B as tp_btf/EVENT, named PROG_NAME (15
        characters at most), and attach it; LABEL names it in ``prog_fds``."""
        code = b.dump_func(fn_name)
        insns = ctypes.create_string_buffer(code, len(code))
        log = ctypes.create_string_buffer(1 << 20)
        lic = ctypes.c_char_p(b"GPL")
        attr = _ProgLoad(prog_type=BPF_PROG_TYPE_TRACING, insn_cnt=len(code) // 8,
                         insns=ctypes.addressof(insns), license=ctypes.cast(lic, ctypes.c_void_p).value,
                         log_level=0, log_size=0, log_buf=0, prog_name=prog_name.encode()[:15],
                         expected_attach_type=BPF_TRACE_RAW_TP, attach_btf_id=kbtf.tracepoint_id(event))
        try:
            prog = _bpf(BPF_PROG_LOAD, attr)
        except OSError as exc:
            # Load again with the verifier's log: its last line says why.
            attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
            try:
                os.close(_bpf(BPF_PROG_LOAD, attr))
            except OSError:
                pass
            why = (log.value.decode(errors="replace").strip().splitlines() or [exc.strerror])[-1]
            raise BtfError(f"the kernel refused {fn_name} as tp_btf/{event}: {why}")
        try:
            link = _bpf(BPF_RAW_TRACEPOINT_OPEN, _RawTpOpen(name=0, prog_fd=prog))
        except OSError as exc:
            os.close(prog)
            raise BtfError(f"attaching {fn_name} to tp_btf/{event} failed: {exc.strerror}")
        self.progs[label] = (prog, link)

    def detach(self) -> None:
        """Detach (close the links); the program fds stay for their counters."""
        for label, (prog, link) in list(self.progs.items()):
            if link >= 0:
                os.close(link)
                self.progs[label] = (prog, -1)

    def close(self) -> None:
        self.detach()
        for prog, _ in self.progs.values():
            os.close(prog)
        self.progs = {}

    def prog_fds(self) -> Dict[str, int]:
        return {label: prog for label, (prog, _) in self.progs.items()}


def probe() -> Tuple[Optional[KernelBtf], Optional[str]]:
    """(kernel BTF, None) when tp_btf programs may be tried, else (None, why
    not).  A missing field or tracepoint shows later, as a BtfError from
    ``task_cflags`` or ``attach``."""
    if disabled_by_env():
        return None, f"{TP_BTF_ENV}=0"
    try:
        return KernelBtf(), None
    except BtfError as exc:
        return None, str(exc)
