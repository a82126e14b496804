"""LatencyScope: record what steals microseconds from latency-critical threads, analyze anywhere."""
__version__ = "0.1.0"

# Capture format version written by the recorder; the analyzer refuses newer ones.
FORMAT_VERSION = 3  # 3: no task names in sched_switch/sched_wakeup (rebuilt); 2: names dictionary-encoded; 1: strings

# Codecs a capture's tables may be written with (every Arrow reader reads
# both).  lz4 takes about half zstd's CPU per record and writes captures
# about 3x larger (docs/benchmarks.md); the recorder's default is lz4, so
# the capture window costs the watched workload less.
COMPRESSIONS = ("lz4", "zstd")
COMPRESSION = "lz4"
