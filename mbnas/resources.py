"""Memory guards: sizes this machine cannot hold are refused before anything is allocated.

Without them a too-wide network or a too-large image size meets the OOM killer instead of
a one-line error (issue 18).  Every estimate here is a lower bound, so a guard never
refuses what would fit.  No torch: the figures come from the analytic cost model.
"""

from __future__ import annotations

import os
from pathlib import Path

from mbnas.arch.cost import count
from mbnas.arch.spec import Arch, Network, resolve
from mbnas.errors import MbnasError
from mbnas.units import format_count

FLOAT_BYTES = 4  # float32 parameters and activations


def format_bytes(n: int) -> str:
    """``84_500_000_000`` -> ``84.5 GB`` (decimal units)."""
    for suffix, scale in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6),
                          ("KB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{n} bytes"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None  # no sysconf (Windows) or no such name


def _cgroup_room() -> int | None:
    """What a container's cgroup v2 limit leaves (MemAvailable shows the host's)."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((root / "memory.current").read_text()))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes this process can still allocate: Linux's MemAvailable (else the physical
    memory), capped by a cgroup limit; None where nothing is known, and then no guard."""
    known = [m for m in (_meminfo_available() or _physical_memory(), _cgroup_room())
             if m is not None]
    return min(known) if known else None


def check_fits(needed: int, what: str, advice: str) -> None:
    """Refuse ``what`` (which says how large it is) when ``needed`` bytes exceed the
    memory available."""
    available = available_memory()
    if available is not None and needed > available:
        raise MbnasError(f"{what}: {format_bytes(needed)} in all, but this machine has "
                         f"{format_bytes(available)} of memory available; {advice}")


def network_bytes(arch: Arch | Network) -> tuple[int, int]:
    """A lower bound on what building and running ``arch`` holds: its float32 parameters,
    and every convolution's output at batch 1 at its resolution (what a training step
    keeps for the backward pass)."""
    net = arch if isinstance(arch, Network) else resolve(arch)
    activations = sum(conv.out_channels * conv.out_size ** 2
                      for block in net.blocks for conv in block.convs())
    return count(net).params * FLOAT_BYTES, activations * FLOAT_BYTES


def check_network_fits(arch: Arch | Network) -> None:
    """Refuse a network whose parameters and batch-1 activations exceed the memory."""
    net = arch if isinstance(arch, Network) else resolve(arch)
    params, activations = network_bytes(net)
    a = net.arch
    check_fits(params + activations,
               f"the network at width {a.width:g}, {a.resolution}x{a.resolution} has "
               f"{format_count(params // FLOAT_BYTES, 2)} parameters ({format_bytes(params)} "
               f"as float32) and at least {format_bytes(activations)} of activations at "
               "batch 1", "use a smaller width, resolution or fewer channels")


def image_bytes(images: int, size: int, channels: int = 3) -> int:
    """uint8 bytes of ``images`` images of ``channels`` x ``size`` x ``size``."""
    return images * channels * size * size
