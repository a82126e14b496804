"""The event schema, declared once.

Every event kind the recorder can write is described here (name, module,
tracepoint, fields with C type, unit and meaning).  The C header the BPF
programs include (``bpf/events.h``), the numpy dtypes the ring-buffer drain
views records through, the Arrow schemas of the capture tables and the field
table in ``docs/capture-format.md`` are all derived from this one place.
"""
from latencyscope.schemas.events import (  # noqa: F401
    EVENT_KINDS,
    MODULES,
    EventKind,
    Field,
    kind,
    kinds_of,
)
