"""The eBPF C programs (one per module) and the generated ``events.h``."""
from pathlib import Path

BPF_DIR = Path(__file__).resolve().parent


def source(name: str) -> str:
    return (BPF_DIR / name).read_text()
