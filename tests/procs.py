"""The processes of a running search and the sockets they listen on, read from /proc."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path


def _address(hex_address: str) -> ipaddress._BaseAddress:
    """An address as /proc/net/{tcp,udp}[6] write it: 32-bit words in host byte order."""
    raw = bytes.fromhex(hex_address)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def _is_loopback(address: ipaddress._BaseAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def processes_of(root: int) -> dict[int, str]:
    """``root``, its descendants and its session's processes: pid -> name."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid, _, sid = stat[stat.rindex(")") + 2:].split()[1:4]
            stats[int(entry.name)] = (name, int(ppid), int(sid))
    ours = {root} | {pid for pid, (_, _, sid) in stats.items() if sid == root}
    grew = True
    while grew:
        more = {pid for pid, (_, ppid, _) in stats.items() if ppid in ours} - ours
        ours |= more
        grew = bool(more)
    return {pid: stats[pid][0] for pid in ours if pid in stats}


def listening(processes: dict[int, str]) -> set[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP and bound UDP socket that
    ``processes`` hold, from the kernel's socket tables."""
    owner = {}
    for pid, name in processes.items():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                owner[int(link[8:-1])] = name
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        for line in Path("/proc/net", table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if inode not in owner or (table.startswith("tcp") and state != "0A"):  # LISTEN
                continue
            address, port = local.split(":")
            found.add((str(_address(address)), int(port, 16), owner[inode]))
    return found


def exposed(sockets: set[tuple[str, int, str]]) -> list[tuple[str, int, str]]:
    """The sockets of ``sockets`` that listen beyond loopback."""
    return sorted(s for s in sockets if not _is_loopback(ipaddress.ip_address(s[0])))
