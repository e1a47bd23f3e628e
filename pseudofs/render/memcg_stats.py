"""memory.stat, memory.numa_stat and memory.events as data (mm/memcontrol.c:
memory_stats[], memcg_stat_format, memory_numa_stat_show,
memcg_vm_event_stat[], __memory_events_show), for every kernel profile.

The 2026 percpu patch changes one row: `percpu` is backed by the node item
NR_PERCPU_B (kind "node": it appears in memory.numa_stat at its memory_stats[]
position, the 6th row on 7.0) instead of the memcg-only MEMCG_PERCPU_B (kind
"memcg": absent from memory.numa_stat). In memory.stat it keeps its line (the
7th on 7.0) either way.

The rows carry version gates (profile.py) for the LTS lines; the bookkeeping
tables at the end (memcg_node_stat_items[], enum memcg_stat_item) describe the
patch base (7.0) only.

Values handed to the formatters are the stored counters, in the unit of the
row: "pages" (printed x PAGE_SIZE), "kb" (x 1024), "bytes" or "count" (x 1)
(memcg_page_state_output_unit). Each is clamped at 0 before the unit is
applied (memcg_page_state / lruvec_page_state clamp negative sums).
"""

from collections import namedtuple
from functools import lru_cache

from .profile import DEFAULT_PROFILE, enabled
from .text import kv, u

StatRow = namedtuple("StatRow", "key item kind unit gate")

PAGES, KB, BYTES, COUNT = "pages", "kb", "bytes", "count"
NODE, MEMCG = "node", "memcg"
_UNIT_BYTES = {KB: 1024, BYTES: 1, COUNT: 1}

_THP = "TRANSPARENT_HUGEPAGE"
_PERCPU = "percpu"  # placeholder row, resolved by the accounting mode


def _r(key, item, kind=NODE, unit=PAGES, gate=None):
    return StatRow(key, item, kind, unit, gate)


def _g_items(names, gate=None):
    return tuple((n, gate) for n in names)


def _counts(prefix, item_prefix, suffixes):
    return tuple(_r(prefix + s, item_prefix + s.upper(), unit=COUNT)
                 for s in suffixes)


# memory_stats[] in order; the `percpu` row is filled in by memory_stat_rows().
# Version gates: see profile.py (first profile version that has the row unless
# a comment names the release).
_OLD, _NEW = "<7.0", ">=7.0"
MEMORY_STATS = (
    _r("anon", "NR_ANON_MAPPED"),
    _r("file", "NR_FILE_PAGES"),
    _r("kernel", "MEMCG_KMEM", MEMCG, gate=">=6.1"),
    _r("kernel_stack", "NR_KERNEL_STACK_KB", unit=KB),
    _r("pagetables", "NR_PAGETABLE", gate=">=5.11"),
    _r("sec_pagetables", "NR_SECONDARY_PAGETABLE", gate=">=6.0"),
    _r(_PERCPU, None, None, BYTES),
    _r("sock", "MEMCG_SOCK", MEMCG),
    _r("vmalloc", "MEMCG_VMALLOC", MEMCG, gate=(">=6.1", _OLD)),
    _r("vmalloc", "NR_VMALLOC", gate=_NEW),
    _r("shmem", "NR_SHMEM"),
    _r("zswap", "MEMCG_ZSWAP_B", MEMCG, BYTES, ("ZSWAP", ">=6.1")),
    _r("zswapped", "MEMCG_ZSWAPPED", MEMCG, PAGES, ("ZSWAP", ">=6.1")),
    _r("zswap_incomp", "MEMCG_ZSWAP_INCOMP", MEMCG, PAGES, ("ZSWAP", _NEW)),
    _r("file_mapped", "NR_FILE_MAPPED"),
    _r("file_dirty", "NR_FILE_DIRTY"),
    _r("file_writeback", "NR_WRITEBACK"),
    _r("swapcached", "NR_SWAPCACHE", gate=("SWAP", ">=5.13")),
    _r("anon_thp", "NR_ANON_THPS", gate=_THP),
    _r("file_thp", "NR_FILE_THPS", gate=(_THP, ">=5.15")),
    _r("shmem_thp", "NR_SHMEM_THPS", gate=(_THP, ">=5.15")),
    _r("inactive_anon", "NR_INACTIVE_ANON"),
    _r("active_anon", "NR_ACTIVE_ANON"),
    _r("inactive_file", "NR_INACTIVE_FILE"),
    _r("active_file", "NR_ACTIVE_FILE"),
    _r("unevictable", "NR_UNEVICTABLE"),
    _r("slab_reclaimable", "NR_SLAB_RECLAIMABLE_B", unit=BYTES),
    _r("slab_unreclaimable", "NR_SLAB_UNRECLAIMABLE_B", unit=BYTES),
    _r("hugetlb", "NR_HUGETLB", gate=("HUGETLB_PAGE", ">=6.13")),
) + _counts("workingset_", "WORKINGSET_", (
    "refault_anon", "refault_file", "activate_anon", "activate_file",
    "restore_anon", "restore_file", "nodereclaim")) + tuple(
    r._replace(gate=">=6.8") for r in _counts(
        "pgdemote_", "PGDEMOTE_", ("kswapd", "direct", "khugepaged"))) + (
    _r("pgdemote_proactive", "PGDEMOTE_PROACTIVE", unit=COUNT, gate=">=6.18"),
    _r("pgpromote_success", "PGPROMOTE_SUCCESS", unit=COUNT,
       gate=("NUMA_BALANCING", ">=6.8", _OLD)),
) + tuple(r._replace(gate=_NEW) for r in _counts(
    "pgsteal_", "PGSTEAL_", ("kswapd", "direct", "khugepaged", "proactive")
) + _counts(
    "pgscan_", "PGSCAN_", ("kswapd", "direct", "khugepaged", "proactive")
)) + (
    _r("pgrefill", "PGREFILL", unit=COUNT, gate=_NEW),
    _r("pgpromote_success", "PGPROMOTE_SUCCESS", unit=COUNT,
       gate=("NUMA_BALANCING", _NEW)),
)

PERCPU_NODE_ROW = _r(_PERCPU, "NR_PERCPU_B", NODE, BYTES)      # the patch
PERCPU_MEMCG_ROW = _r(_PERCPU, "MEMCG_PERCPU_B", MEMCG, BYTES)  # upstream

#: "slab" is printed right after slab_unreclaimable: reclaimable + unreclaimable.
SLAB_AFTER = "slab_unreclaimable"
SLAB_PARTS = ("slab_unreclaimable", "slab_reclaimable")
#: Printed after memory_stats[] (memory_stat_format): 5.10 and 5.15 print a
#: fixed tail of events with the pgscan/pgsteal sums in it; from 6.1 the sums,
#: then memcg_vm_event_stat[] (EVENTS_PRINTED_FROM).
STAT_TAIL = (
    ("pgfault", "<6.1"), ("pgmajfault", "<6.1"), ("pgrefill", "<6.1"),
    ("pgscan", None), ("pgsteal", None),
    ("pgactivate", "<6.1"), ("pgdeactivate", "<6.1"), ("pglazyfree", "<6.1"),
    ("pglazyfreed", "<6.1"), ("thp_fault_alloc", (_THP, "<6.1")),
    ("thp_collapse_alloc", (_THP, "<6.1")),
)
EVENTS_PRINTED_FROM = ">=6.1"
PGSCAN_PARTS = ("pgscan_kswapd", "pgscan_direct", "pgscan_proactive",
                "pgscan_khugepaged")
PGSTEAL_PARTS = ("pgsteal_kswapd", "pgsteal_direct", "pgsteal_proactive",
                 "pgsteal_khugepaged")

# memcg_vm_event_stat[]; PGPGIN/PGPGOUT (CONFIG_MEMCG_V1) are counted in the
# array (NR_MEMCG_EVENTS) but skipped when printing on v2. The reclaim
# counters are node items in 7.0 (memory_stats[] above).
V2_SKIPPED_EVENTS = frozenset({"pgpgin", "pgpgout"})
MEMCG_VM_EVENTS = (
    ("pgpgin", "MEMCG_V1"), ("pgpgout", "MEMCG_V1"),
    ("pswpin", ">=6.18"), ("pswpout", ">=6.18"),
    ("pgscan_kswapd", _OLD), ("pgscan_direct", _OLD),
    ("pgscan_khugepaged", (">=6.6", _OLD)), ("pgscan_proactive", (">=6.18", _OLD)),
    ("pgsteal_kswapd", _OLD), ("pgsteal_direct", _OLD),
    ("pgsteal_khugepaged", (">=6.6", _OLD)), ("pgsteal_proactive", (">=6.18", _OLD)),
    ("pgfault", None), ("pgmajfault", None), ("pgrefill", _OLD),
    ("pgactivate", None), ("pgdeactivate", None), ("pglazyfree", None),
    ("pglazyfreed", None),
    ("swpin_zero", ("SWAP", ">=6.12")), ("swpout_zero", ("SWAP", ">=6.12")),
    ("zswpin", "ZSWAP"), ("zswpout", "ZSWAP"), ("zswpwb", ("ZSWAP", ">=6.12")),
    ("thp_fault_alloc", _THP), ("thp_collapse_alloc", _THP),
    ("thp_swpout", (_THP, ">=6.12")), ("thp_swpout_fallback", (_THP, ">=6.12")),
    ("numa_pages_migrated", ("NUMA_BALANCING", ">=6.12")),
    ("numa_pte_updates", ("NUMA_BALANCING", ">=6.12")),
    ("numa_hint_faults", ("NUMA_BALANCING", ">=6.12")),
)

#: __memory_events_show; oom_group_kill from 5.19, sock_throttled from 6.19.
MEMORY_EVENTS_ROWS = (
    ("low", None), ("high", None), ("max", None), ("oom", None), ("oom_kill", None),
    ("oom_group_kill", ">=5.19"), ("sock_throttled", ">=6.19"))
SWAP_EVENTS = ("high", "max", "fail")  # memory.swap.events

# memcg_node_stat_items[] (bookkeeping: NR_MEMCG_NODE_STAT_ITEMS sizes the
# per-node lruvec_stats_percpu, 2 x N x 8 bytes). NR_PERCPU_B is inserted
# after NR_SLAB_UNRECLAIMABLE_B by the patch.
_PERCPU_MODE = "PERCPU_NODE_ITEM"  # internal gate: the patch's accounting mode
_RECLAIM = ("KSWAPD", "DIRECT", "KHUGEPAGED", "PROACTIVE", "ANON", "FILE")
MEMCG_NODE_STAT_ITEMS = _g_items((
    "NR_INACTIVE_ANON", "NR_ACTIVE_ANON", "NR_INACTIVE_FILE", "NR_ACTIVE_FILE",
    "NR_UNEVICTABLE", "NR_SLAB_RECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE_B",
)) + (("NR_PERCPU_B", _PERCPU_MODE),) + _g_items((
    "WORKINGSET_REFAULT_ANON", "WORKINGSET_REFAULT_FILE",
    "WORKINGSET_ACTIVATE_ANON", "WORKINGSET_ACTIVATE_FILE",
    "WORKINGSET_RESTORE_ANON", "WORKINGSET_RESTORE_FILE",
    "WORKINGSET_NODERECLAIM", "NR_ANON_MAPPED", "NR_FILE_MAPPED",
    "NR_FILE_PAGES", "NR_FILE_DIRTY", "NR_WRITEBACK", "NR_SHMEM",
    "NR_SHMEM_THPS", "NR_FILE_THPS", "NR_ANON_THPS", "NR_VMALLOC",
    "NR_KERNEL_STACK_KB", "NR_PAGETABLE", "NR_SECONDARY_PAGETABLE",
)) + (("NR_SWAPCACHE", "SWAP"), ("PGPROMOTE_SUCCESS", "NUMA_BALANCING")) + (
    _g_items("PGDEMOTE_" + s for s in _RECLAIM[:4])
    + _g_items("PGSTEAL_" + s for s in _RECLAIM)
    + _g_items("PGSCAN_" + s for s in _RECLAIM)
) + (("PGREFILL", None), ("NR_HUGETLB", "HUGETLB_PAGE"))

# enum memcg_stat_item (memcg-only items; all in the enum whatever the config).
MEMCG_STAT_ITEMS = (
    ("MEMCG_SWAP", None), ("MEMCG_SOCK", None),
    ("MEMCG_PERCPU_B", "!" + _PERCPU_MODE), ("MEMCG_KMEM", None),
    ("MEMCG_ZSWAP_B", None), ("MEMCG_ZSWAPPED", None),
    ("MEMCG_ZSWAP_INCOMP", None),
)


def _mode(profile, percpu_node_item):
    return profile | {_PERCPU_MODE} if percpu_node_item else profile


@lru_cache(maxsize=None)
def memory_stat_rows(profile=DEFAULT_PROFILE, percpu_node_item=True,
                     hugetlb_accounting=False):
    """memory_stats[] rows printed by memory.stat, in order. `hugetlb` needs
    the cgroup2 mount option memory_hugetlb_accounting."""
    rows = []
    for row in MEMORY_STATS:
        if not enabled(row.gate, profile):
            continue
        if row.key == _PERCPU:
            row = PERCPU_NODE_ROW if percpu_node_item else PERCPU_MEMCG_ROW
        if row.key == "hugetlb" and not hugetlb_accounting:
            continue
        rows.append(row)
    return tuple(rows)


@lru_cache(maxsize=None)
def numa_stat_rows(profile=DEFAULT_PROFILE, percpu_node_item=True):
    """memory.numa_stat rows: the node-kind memory_stats[] rows (hugetlb
    without the mount-option check)."""
    return tuple(r for r in memory_stat_rows(profile, percpu_node_item, True)
                 if r.kind == NODE)


@lru_cache(maxsize=None)
def memcg_event_names(profile=DEFAULT_PROFILE):
    """The vm-event keys printed at the end of memory.stat (v2)."""
    if not enabled(EVENTS_PRINTED_FROM, profile):
        return ()
    return tuple(n for n in memcg_events_all(profile)
                 if n not in V2_SKIPPED_EVENTS)


@lru_cache(maxsize=None)
def memory_stat_keys(profile=DEFAULT_PROFILE, percpu_node_item=True,
                     hugetlb_accounting=False):
    """Every key memory.stat prints, in order."""
    keys = []
    for row in memory_stat_rows(profile, percpu_node_item, hugetlb_accounting):
        keys.append(row.key)
        if row.key == SLAB_AFTER:
            keys.append("slab")
    return (tuple(keys) + tuple(n for n, g in STAT_TAIL if enabled(g, profile))
            + memcg_event_names(profile))


@lru_cache(maxsize=None)
def memcg_node_stat_items(profile=DEFAULT_PROFILE, percpu_node_item=True):
    """memcg_node_stat_items[] (47 with the full config, 48 with the patch)."""
    mode = _mode(profile, percpu_node_item)
    return tuple(n for n, g in MEMCG_NODE_STAT_ITEMS if enabled(g, mode))


@lru_cache(maxsize=None)
def memcg_stat_items(profile=DEFAULT_PROFILE, percpu_node_item=True):
    """enum memcg_stat_item (7 upstream, 6 with the patch)."""
    mode = _mode(profile, percpu_node_item)
    return tuple(n for n, g in MEMCG_STAT_ITEMS if enabled(g, mode))


@lru_cache(maxsize=None)
def memcg_events_all(profile=DEFAULT_PROFILE):
    """memcg_vm_event_stat[] as compiled (NR_MEMCG_EVENTS = its length)."""
    return tuple(n for n, g in MEMCG_VM_EVENTS if enabled(g, profile))


def output(row, value, page_size) -> int:
    """memcg_page_state_output: the clamped counter times the row's unit."""
    return u(value) * (page_size if row.unit == PAGES else _UNIT_BYTES[row.unit])


def memory_stat(values, page_size, profile=DEFAULT_PROFILE,
                percpu_node_item=True, hugetlb_accounting=False) -> bytes:
    """memory.stat from hierarchical stored values keyed by memory.stat key
    (rows in their stored unit, events as counts; missing keys are 0)."""
    pairs = []
    get = values.get
    for row in memory_stat_rows(profile, percpu_node_item, hugetlb_accounting):
        size = output(row, get(row.key, 0), page_size)
        pairs.append((row.key, size))
        if row.key == SLAB_AFTER:
            slab = size + output(row, get("slab_reclaimable", 0), page_size)
            pairs.append(("slab", slab))
    sums = {"pgscan": sum(u(get(k, 0)) for k in PGSCAN_PARTS),
            "pgsteal": sum(u(get(k, 0)) for k in PGSTEAL_PARTS)}
    pairs.extend((n, sums[n] if n in sums else get(n, 0))
                 for n, g in STAT_TAIL if enabled(g, profile))
    pairs.extend((n, get(n, 0)) for n in memcg_event_names(profile))
    return kv(pairs)


def numa_stat(rows, node_ids) -> bytes:
    """"key N<nid>=<v>..." lines: `rows` are (key, {nid: value}) in output
    units; one column per id of `node_ids` (N_MEMORY, ascending); values
    clamped at 0, missing ones 0."""
    nids = sorted(node_ids)
    return "".join(
        key + "".join(" N%d=%d" % (n, u(per_node.get(n, 0))) for n in nids) + "\n"
        for key, per_node in rows).encode()


def memory_numa_stat(values, node_ids, page_size, profile=DEFAULT_PROFILE,
                     percpu_node_item=True) -> bytes:
    """memory.numa_stat from {key: {nid: stored value}} (hierarchical)."""
    rows = []
    for row in numa_stat_rows(profile, percpu_node_item):
        per_node = values.get(row.key, {})
        rows.append((row.key, {n: output(row, per_node.get(n, 0), page_size)
                               for n in node_ids}))
    return numa_stat(rows, node_ids)


@lru_cache(maxsize=None)
def memory_events_keys(profile=DEFAULT_PROFILE):
    return tuple(k for k, g in MEMORY_EVENTS_ROWS if enabled(g, profile))


def memory_events(values, profile=DEFAULT_PROFILE) -> bytes:
    """memory.events / memory.events.local (missing keys 0)."""
    return kv((k, values.get(k, 0)) for k in memory_events_keys(profile))


def swap_events(values) -> bytes:
    """memory.swap.events (missing keys 0)."""
    return kv((k, values.get(k, 0)) for k in SWAP_EVENTS)
