"""LatencyScope: record what steals microseconds from latency-critical threads, analyze anywhere."""
__version__ = "0.1.0"

# Capture format version written by the recorder; the analyzer refuses newer ones.
FORMAT_VERSION = 3  # 3: no task names in sched_switch/sched_wakeup (rebuilt); 2: names dictionary-encoded; 1: strings
