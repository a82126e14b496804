"""Recorder hooks of the network module: the interface filter and the
kernel's drop-reason names."""
from __future__ import annotations

import bisect
import os
import re
from typing import Dict, List, Optional

from latencyscope.errors import LatencyScopeError

IFNAMSIZ = 16
_IFNAME = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
# __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, { 3, "NO_SOCKET" }, ...)
_SYMBOLIC = re.compile(r"__print_symbolic\(\s*REC->reason\s*,(.*?)\)\s*$", re.S)
_PAIR = re.compile(r"\{\s*(\d+)\s*,\s*\"([A-Za-z0-9_]+)\"\s*\}")


def validate_interface(name: str) -> str:
    if not _IFNAME.match(name or "") or name in (".", ".."):
        raise LatencyScopeError(f"--interface {name!r} is not a valid interface name "
                                f"(1-{IFNAMSIZ - 1} characters of A-Z a-z 0-9 _ . : -)")
    return name


def ifname_words(name: str) -> Dict[str, int]:
    """The name as the BPF filter compares it: two little-endian u64 words
    of the NUL-terminated name and masks covering name + NUL."""
    raw = name.encode("ascii") + b"\0"
    data = raw.ljust(IFNAMSIZ, b"\0")
    mask = (b"\xff" * len(raw)).ljust(IFNAMSIZ, b"\0")
    le = lambda b: int.from_bytes(b, "little")  # noqa: E731
    return {"LS_IFNAME_LO": le(data[:8]), "LS_IFNAME_HI": le(data[8:]),
            "LS_IFMASK_LO": le(mask[:8]), "LS_IFMASK_HI": le(mask[8:])}


# Receive-path functions whose consume_skb() means "the data went to user
# space" (UDP copies linear skbs without the skb_copy_datagram_iovec
# tracepoint; skb_consume_udp may be inlined into the recvmsg functions).
USER_CONSUMERS = ("skb_consume_udp", "udp_recvmsg", "udpv6_recvmsg", "skb_free_datagram")
_ranges_cache: Dict[str, List[int]] = {}


def function_ranges(names=USER_CONSUMERS, kallsyms: str = "/proc/kallsyms") -> Dict[str, List[int]]:
    """[start, end) of each named kernel function: its address to the next text symbol's."""
    try:
        with open(kallsyms) as f:
            text = f.read()
    except OSError:
        return {}
    addrs, found = [], {}
    want = set(names)
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] not in ("t", "T"):
            continue
        a = int(parts[0], 16)
        addrs.append(a)
        if parts[2] in want and parts[2] not in found:
            found[parts[2]] = a
    if not found or not any(found.values()):  # kptr_restrict hides addresses (all zero)
        return {}
    addrs = sorted(set(addrs))
    out = {}
    for name, a in found.items():
        i = bisect.bisect_right(addrs, a)
        if i < len(addrs):
            out[name] = [a, addrs[i]]
    return out


def cflags(cfg) -> List[str]:
    out = []
    if cfg.interface:
        words = ifname_words(validate_interface(cfg.interface))
        out += [f"-D{k}=0x{v:016x}ULL" for k, v in words.items()]
    ranges = list(_user_consumers().values())[:4]
    if ranges:
        ranges += [[0, 0]] * (4 - len(ranges))
        for i, (lo, hi) in enumerate(ranges):
            out += [f"-DLS_UCONS_LO{i}=0x{lo:x}ULL", f"-DLS_UCONS_HI{i}=0x{hi:x}ULL"]
    return out


def _user_consumers() -> Dict[str, List[int]]:
    if not _ranges_cache:
        _ranges_cache.update(function_ranges())
    return _ranges_cache


def drop_reasons(kfree_skb_format: str) -> Dict[str, str]:
    """enum skb_drop_reason value -> name, from the kfree_skb print fmt."""
    m = _SYMBOLIC.search(kfree_skb_format or "")
    if not m:
        return {}
    return {v: n for v, n in _PAIR.findall(m.group(1))}


def _read_format(tracefs: str) -> str:
    try:
        with open(os.path.join(tracefs, "events", "skb", "kfree_skb", "format")) as f:
            return f.read()
    except OSError:
        return ""


def _ifindex(name: Optional[str]) -> Optional[int]:
    if not name:
        return None
    try:
        with open(f"/sys/class/net/{name}/ifindex") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def manifest(cfg, tracefs) -> dict:
    out = {"drop_reasons": drop_reasons(_read_format(tracefs)), "interface": cfg.interface,
           "user_consumers": sorted(_user_consumers()),
           "udp_delivery": bool(_user_consumers())}
    if cfg.interface:
        idx = _ifindex(cfg.interface)
        out["interface_in_recorder_netns"] = idx is not None
        out["interface_note"] = ("matched by name in every network namespace; copies and drops are kept "
                                 "for packets that arrived on it")
    return out
