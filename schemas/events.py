"""Declarations of every event kind (the single source of truth).

Field types are the BPF-side C types.  ``comm`` is the kernel's 16-byte task
name, stored in Arrow as a UTF-8 string.  All timestamps are
``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC, nanoseconds); the manifest carries
the offset to wall-clock time.

Record layout rule: every field sits at an offset that is a multiple of its
alignment and the record is a multiple of 8 bytes, so the C struct has no
padding and the numpy dtype is the same bytes in the same
places.  ``tests/unit/test_schemas.py`` compiles the generated header and
proves it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

# C type -> (numpy dtype string, size in bytes)
SCALARS: Dict[str, Tuple[str, int]] = {
    "u8": ("u1", 1),
    "u16": ("<u2", 2),
    "s16": ("<i2", 2),
    "u32": ("<u4", 4),
    "s32": ("<i4", 4),
    "u64": ("<u8", 8),
    "s64": ("<i8", 8),
    "comm": ("S16", 16),  # char[16], NUL padded
}

C_NAMES = {"u8": "__u8", "u16": "__u16", "s16": "__s16", "u32": "__u32",
           "s32": "__s32", "u64": "__u64", "s64": "__s64"}


@dataclass(frozen=True)
class Field:
    name: str
    ctype: str
    unit: str
    doc: str

    @property
    def size(self) -> int:
        return SCALARS[self.ctype][1]

    @property
    def align(self) -> int:
        return 1 if self.ctype == "comm" else self.size

    @property
    def np_type(self) -> str:
        return SCALARS[self.ctype][0]

    @property
    def c_decl(self) -> str:
        if self.ctype == "comm":
            return f"char {self.name}[16];"
        return f"{C_NAMES[self.ctype]} {self.name};"


TS = Field("ts_ns", "u64", "ns", "bpf_ktime_get_ns() at the tracepoint (CLOCK_MONOTONIC)")
CPU = Field("cpu", "u32", "cpu", "CPU the tracepoint fired on")


@dataclass(frozen=True)
class EventKind:
    name: str
    module: str
    tracepoint: str  # "category:event" (or "perf:NAME" for perf events)
    doc: str
    fields: Tuple[Field, ...]
    ring_pages: int = 64  # default ring size in pages of 4 KiB (power of two)
    # Staged kinds are written to the ring in chunks of STAGE_RECORDS records
    # per CPU (schemas/codegen.py): one ring reservation per chunk instead of
    # per record.  For the kinds that fire on every context switch.
    staged: bool = False
    # Task-name columns the record does not carry: (column, pid column).
    # Readers rebuild them from the capture's other name sources (format 3;
    # analyze/names.py); records stay small where the scheduler is hot.
    names: Tuple[Tuple[str, str], ...] = ()
    kind_id: int = field(default=-1, compare=False)

    @property
    def record_size(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def c_struct(self) -> str:
        return f"ls_{self.name}"

    def field_names(self) -> List[str]:
        return [f.name for f in self.fields]

    def name_fields(self) -> List[Field]:
        """The ``names`` columns as fields (task names, after the record's fields)."""
        return [Field(c, "comm", "", f"name of {pid} (rebuilt by the reader, not recorded)")
                for c, pid in self.names]


def _kinds(defs) -> Tuple[EventKind, ...]:
    out = []
    for i, k in enumerate(defs):
        offset = 0
        for f in k.fields:
            if offset % f.align:
                raise ValueError(f"{k.name}.{f.name}: offset {offset} would need padding")
            offset += f.size
        if k.record_size % 8:
            raise ValueError(f"{k.name}: record size {k.record_size} is not a multiple of 8")
        object.__setattr__(k, "kind_id", i)
        out.append(k)
    return tuple(out)


# Module order is the order of this list; kind ids follow it.  A new module
# adds a file beside this one and a line here.
def _declared():
    from latencyscope.schemas import irq, isolation, memory
    from latencyscope.schemas import network, syscall

    return [*isolation.KINDS, *irq.KINDS, *memory.KINDS, *syscall.KINDS, *network.KINDS]


EVENT_KINDS: Tuple[EventKind, ...] = _kinds(_declared())

MODULES: Tuple[str, ...] = tuple(dict.fromkeys(k.module for k in EVENT_KINDS))

_BY_NAME = {k.name: k for k in EVENT_KINDS}


def kind(name: str) -> EventKind:
    return _BY_NAME[name]


def kinds_of(module: str) -> List[EventKind]:
    return [k for k in EVENT_KINDS if k.module == module]
