"""The Ray side of a search (:mod:`mbnas.search.tune`), seen from the operating system."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from pathlib import Path

import pytest
from cli import command, env
from test_search_e2e import search_args

pytestmark = pytest.mark.slow


def _address(hex_address: str) -> ipaddress._BaseAddress:
    """An address as /proc/net/{tcp,udp}[6] write it: 32-bit words in host byte order."""
    raw = bytes.fromhex(hex_address)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def _is_loopback(address: ipaddress._BaseAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def _processes_of(root: int) -> dict[int, str]:
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


def _listening(processes: dict[int, str]) -> set[tuple[str, int, str]]:
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


def test_a_local_search_listens_on_loopback_only(tmp_path):
    args = search_args(tmp_path, "loopback", 2, "--references", "none",
                       "--inject-faults", "1:slow,2:slow")
    proc = subprocess.Popen(command(*args), env=env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sockets: set[tuple[str, int, str]] = set()
    try:
        while proc.poll() is None:  # sample for the search's whole life
            sockets |= _listening(_processes_of(proc.pid))
            time.sleep(0.3)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    assert proc.returncode == 0, err[-3000:]
    assert "listen on 127.0.0.1 only" in err
    names = {name for _, _, name in sockets}
    # The check saw Ray at work: its control plane, a worker and the driver's own server.
    assert {"gcs_server", "raylet"} <= names, sockets
    assert any(name.startswith("ray::") for name in names), sockets
    assert any(name.startswith("python") for name in names), sockets
    exposed = sorted(s for s in sockets if not _is_loopback(ipaddress.ip_address(s[0])))
    assert not exposed, f"listening beyond loopback: {exposed}"
