"""Everything derived from :mod:`latencyscope.schemas.events`.

Regenerate the committed files with::

    python -m latencyscope.schemas.codegen          # writes bpf/events.h, docs/capture-format.md
    python -m latencyscope.schemas.codegen --check  # exit 1 if either is stale
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Dict

import numpy as np

from latencyscope.schemas.events import EVENT_KINDS, EventKind

# Every BPF ring buffer record starts with an 8-byte header: u32 len (bit 31
# BUSY, bit 30 DISCARD) and u32 page offset; records are padded to 8 bytes.
RINGBUF_HDR_SIZE = 8
RINGBUF_BUSY_BIT = 1 << 31
RINGBUF_DISCARD_BIT = 1 << 30
# A staged kind's ring entry (a chunk): ring header, then a u32 count of the
# records that are valid, a u32 kind id, then STAGE_RECORDS record slots.
STAGE_RECORDS = 64
CHUNK_HDR_SIZE = 8
# A staged record reaches its ring when its CPU's chunk is full, or at the
# first event or timer interrupt on that CPU after it is this old.
STAGE_AGE_NS = 1_000_000
assert STAGE_RECORDS & (STAGE_RECORDS - 1) == 0, "the BPF side masks the slot index"
# A stage flushed before it is full (its CPU goes idle, or its oldest record
# aged out) goes to a second ring of the kind and CPU in small chunks of
# SMALL_RECORDS slots: written as one full-size chunk, a CPU that goes idle
# after every switch or two would fill 2.6 KiB of ring per record.
SMALL_RECORDS = 2
assert STAGE_RECORDS % SMALL_RECORDS == 0

ROOT = Path(__file__).resolve().parent.parent
HEADER_PATH = ROOT / "bpf" / "events.h"
DOC_PATH = ROOT / "docs" / "capture-format.md"
REGEN = "python -m latencyscope.schemas.codegen"


@lru_cache(maxsize=None)
def record_dtype(k: EventKind) -> np.dtype:
    """The dtype of one record as the BPF program writes it (no ring header)."""
    dt = np.dtype([(f.name, f.np_type) for f in k.fields])
    assert dt.itemsize == k.record_size
    return dt


def entry_records(k: EventKind, small: bool = False) -> int:
    """Record slots in one ring entry of this kind (SMALL: in its ring of
    small chunks, staged kinds only)."""
    if not k.staged:
        return 1
    return SMALL_RECORDS if small else STAGE_RECORDS


def entry_header_size(k: EventKind) -> int:
    """Bytes before the first record of a ring entry (ring + chunk header)."""
    return RINGBUF_HDR_SIZE + (CHUNK_HDR_SIZE if k.staged else 0)


def entry_size(k: EventKind, small: bool = False) -> int:
    """Bytes one ring entry of this kind takes in its ring."""
    return entry_header_size(k) + entry_records(k, small) * k.record_size


def stage_dtype(k: EventKind) -> np.dtype:
    """A staged kind's per-CPU stage map value (bpf/common.h LS_STAGE): the
    oldest record's time, a busy flag and padding, then the chunk as it
    lands in the ring."""
    return np.dtype({"names": ["first_ts", "busy", "pad", "n", "kind", "rec"],
                     "formats": ["<u8", "<u4", "<u4", "<u4", "<u4", (record_dtype(k), STAGE_RECORDS)],
                     "itemsize": 16 + CHUNK_HDR_SIZE + STAGE_RECORDS * k.record_size})


def slot_dtype(k: EventKind) -> np.dtype:
    """What the drain copies into the writer's buffer: bare records."""
    return record_dtype(k)


def slot_payload_size(k: EventKind, small: bool = False) -> int:
    """The length the ring header of one entry must carry."""
    return entry_size(k, small) - RINGBUF_HDR_SIZE


def arrow_schema(k: EventKind, stored: bool = False, names_stored: bool = False):
    """The Arrow schema of KIND's table as the analyzer sees it: task names
    as strings, the name columns the reader rebuilds (``k.names``) last.

    STORED: as the recorder writes it.  Task names dictionary-encoded since
    format version 2 (each batch carries its few distinct names once; half
    the recorder's cost of a name column, an eighth of its compressed size);
    since format 3 without the ``k.names`` columns, unless NAMES_STORED (a
    format 2 file, where they were recorded, in the same places).  Readers
    cast names back to strings."""
    import pyarrow as pa

    fields = []
    extra = k.name_fields() if names_stored or not stored else []
    for f in (*k.fields, *extra):
        if f.ctype == "comm":
            t = pa.dictionary(pa.int32(), pa.string()) if stored else pa.string()
        else:
            t = pa.from_numpy_dtype(np.dtype(f.np_type))
        meta = {"unit": f.unit, "doc": f.doc, "c_type": f.ctype}
        fields.append(pa.field(f.name, t, nullable=False, metadata=meta))
    return pa.schema(fields, metadata={"latencyscope.kind": k.name,
                                       "latencyscope.tracepoint": k.tracepoint})


def c_header() -> str:
    lines = [
        "/* Generated from schemas/events.py by `%s`. Do not edit. */" % REGEN,
        "#ifndef LATENCYSCOPE_EVENTS_H",
        "#define LATENCYSCOPE_EVENTS_H",
        "",
        "#define LS_NKINDS %d" % len(EVENT_KINDS),
    ]
    for k in EVENT_KINDS:
        lines.append("#define LS_KIND_%s %d" % (k.name.upper(), k.kind_id))
    lines.append("")
    lines.append("/* Staged kinds: chunks of LS_STAGE_RECORDS records per ring entry; stages")
    lines.append(" * flushed before they are full: chunks of LS_SMALL_RECORDS in a second ring. */")
    lines.append("#define LS_STAGE_RECORDS %d" % STAGE_RECORDS)
    lines.append("#define LS_SMALL_RECORDS %d" % SMALL_RECORDS)
    lines.append("#define LS_STAGE_AGE_NS %dULL" % STAGE_AGE_NS)
    lines.append("")
    for k in EVENT_KINDS:
        lines.append("/* %s: %s */" % (k.tracepoint, k.doc))
        lines.append("struct %s {" % k.c_struct)
        for f in k.fields:
            lines.append("    %-24s /* %s%s */" % (f.c_decl, f.doc, f" [{f.unit}]" if f.unit else ""))
        lines.append("};")
        lines.append("_Static_assert(sizeof(struct %s) == %d, \"%s size\");"
                     % (k.c_struct, k.record_size, k.name))
        off = 0
        for f in k.fields:
            lines.append("_Static_assert(__builtin_offsetof(struct %s, %s) == %d, \"%s.%s\");"
                         % (k.c_struct, f.name, off, k.name, f.name))
            off += f.size
        lines.append("")
    lines.append("#endif")
    return "\n".join(lines) + "\n"


def docs_markdown() -> str:
    out = [
        "# Capture format: event tables",
        "",
        "Generated from `schemas/events.py` by `%s`. Do not edit." % REGEN,
        "",
        "Every table is an Arrow IPC stream (`TABLE.arrows`, lz4- or zstd-compressed",
        "record batches) inside the capture; see `docs/capture.md` for the",
        "container and the manifest. Timestamps are CLOCK_MONOTONIC ns",
        "(`bpf_ktime_get_ns()`); `manifest.json` holds the offset to wall-clock.",
        "",
        "Task names (C type `char[16]`) are stored as Arrow `dictionary<int32, string>` "
        "(format version 2; plain `string` in version 1): Polars reads them as Categorical, "
        "`latencyscope-analyze` as strings.",
        "",
        "Columns marked *rebuilt* are not recorded (format version 3; recorded in versions 1 "
        "and 2): the reader derives each from the pid column it names and the event's time, "
        "using the names the capture does record -- the task snapshot in the manifest, "
        "`sched_wakeup_new`, `task_rename` and `sched_migrate_task` (the idle task, pid 0, "
        "is `swapper/CPU`). A pid with no known name reads as `?`.",
        "",
    ]
    for k in EVENT_KINDS:
        out += [
            "## `%s` (module `%s`, tracepoint `%s`)" % (k.name, k.module, k.tracepoint),
            "",
            k.doc,
            "",
            "| field | C type | unit | meaning |",
            "|---|---|---|---|",
        ]
        for f in k.fields:
            ct = "char[16]" if f.ctype == "comm" else f.ctype
            out.append("| `%s` | %s | %s | %s |" % (f.name, ct, f.unit or "", f.doc))
        for c, pid in k.names:
            out.append("| `%s` | *rebuilt* | | name of `%s` at the event (not recorded) |" % (c, pid))
        if k.staged:
            out += ["", "Record size: %d bytes; the BPF program stages up to %d records per CPU and "
                    "writes them to the ring as one chunk (+%d bytes of headers); a stage flushed "
                    "before it is full goes to a second ring in chunks of %d."
                    % (k.record_size, STAGE_RECORDS, RINGBUF_HDR_SIZE + CHUNK_HDR_SIZE, SMALL_RECORDS), ""]
        else:
            out += ["", "Record size: %d bytes (+8 bytes ring-buffer header)." % k.record_size, ""]
    return "\n".join(out)


def generated_files() -> Dict[Path, str]:
    return {HEADER_PATH: c_header(), DOC_PATH: docs_markdown()}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = []
    for path, text in generated_files().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            if "--check" in argv:
                stale.append(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    for p in stale:
        print(f"{p.relative_to(ROOT)} is stale: run `{REGEN}`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
