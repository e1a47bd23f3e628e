"""Which gated cgroup files a profile has: mm/memcontrol.c memory_files[], swap_files[],
zswap_files[] and kernel/cgroup/cgroup.c's PSI files, as data (gates as in profile.py).

Each row is (name, gate, on_root, mode). A file is listed once per behaviour: memory.peak and
memory.swap.peak are read-only until 6.11 and writable (a write resets the peak of the
writer's open file) from 6.12. The swap files need CONFIG_MEMCG_SWAP and the `swapaccount` boot setting up to 5.15
(do_swap_account), CONFIG_SWAP alone from 6.1 (swapaccount=0 gone); the rows say both.
"""

from collections import namedtuple
from functools import lru_cache

from pseudofs.render.profile import DEFAULT_PROFILE, enabled

CgroupFileRow = namedtuple("CgroupFileRow", "name gate on_root mode")

RW, RO, WO = 0o644, 0o444, 0o200
_SWAP_GATES = (("SWAP", "swapaccount", "<6.1"), ("SWAP", ">=6.1"))


def _swap(name, mode, *versions):
    return tuple(CgroupFileRow(name, g + versions, False, mode) for g in _SWAP_GATES)


# Existence, root and mode per profile; the listing order is kernfs' (hash), not this table's.
MEMCG_FILE_ROWS = (
    CgroupFileRow("memory.current", None, False, RO),
    CgroupFileRow("memory.min", None, False, RW),
    CgroupFileRow("memory.low", None, False, RW),
    CgroupFileRow("memory.high", None, False, RW),
    CgroupFileRow("memory.max", None, False, RW),
    CgroupFileRow("memory.events", None, False, RO),
    CgroupFileRow("memory.events.local", None, False, RO),
    CgroupFileRow("memory.stat", None, True, RO),
    CgroupFileRow("memory.numa_stat", "NUMA", True, RO),
    CgroupFileRow("memory.oom.group", None, False, RW),
    CgroupFileRow("memory.reclaim", ">=5.19", True, WO),
    CgroupFileRow("memory.peak", (">=5.19", "<6.12"), False, RO),
    CgroupFileRow("memory.peak", ">=6.12", False, RW),
) + _swap("memory.swap.current", RO) + _swap("memory.swap.high", RW) + _swap(
    "memory.swap.max", RW) + _swap("memory.swap.peak", RO, ">=6.5", "<6.12") + _swap(
    "memory.swap.peak", RW, ">=6.12") + _swap(
    "memory.swap.events", RO) + (
    CgroupFileRow("memory.zswap.current", ("ZSWAP", ">=5.19"), False, RO),
    CgroupFileRow("memory.zswap.max", ("ZSWAP", ">=5.19"), False, RW),
    CgroupFileRow("memory.zswap.writeback", ("ZSWAP", ">=6.8"), True, RW),
)

#: cgroup_psi_files[] (part of cgroup_base_files[] before 6.1): on every cgroup, the root too,
#: writable to register a trigger (cgroup_pressure_write). cgroup.pressure and irq.pressure
#: (CONFIG_IRQ_TIME_ACCOUNTING), both from 6.1, are not modeled.
PSI_FILE_ROWS = (
    CgroupFileRow("io.pressure", "PSI", True, RW),
    CgroupFileRow("memory.pressure", "PSI", True, RW),
    CgroupFileRow("cpu.pressure", "PSI", True, RW),
)

#: Every name some profile may have (the route table keeps a handler for each).
GATED_NAMES = frozenset(r.name for r in MEMCG_FILE_ROWS + PSI_FILE_ROWS)


@lru_cache(maxsize=None)
def gated_cgroup_files(profile=DEFAULT_PROFILE):
    """{name: CgroupFileRow} of the gated files that exist under `profile`."""
    return {r.name: r for r in MEMCG_FILE_ROWS + PSI_FILE_ROWS if enabled(r.gate, profile)}


def cgroup_file_exists(name, root, profile=DEFAULT_PROFILE) -> bool:
    """Whether a gated file exists on a cgroup (root or not) under `profile`."""
    row = gated_cgroup_files(profile).get(name)
    return row is not None and (row.on_root or not root)
