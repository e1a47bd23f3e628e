"""vmstat_text[] as data (mm/vmstat.c): /proc/vmstat and nodeN/vmstat.

Order of /proc/vmstat (vmstat_start/vmstat_show): zone stat items, NUMA event
items [CONFIG_NUMA], node stat items, the global writeback/memmap items, vm
events [CONFIG_VM_EVENT_COUNTERS], then the fixed deprecated "nr_unstable 0"
(vmstat_next/vmstat_show appends it after the last item).
nodeN/vmstat (drivers/base/node.c, node_read_vmstat): zone items, NUMA events,
node items; nothing else.

Each table row is ``(name, gate)``; gates as in :mod:`.profile`.
With the 2026 percpu patch, ``nr_percpu`` (NR_PERCPU_B, printed in pages) is
appended as the last node item, right after nr_kernel_file_pages.
"""

from functools import lru_cache

from .profile import DEFAULT_PROFILE, MM_2026, select
from .text import kv

_MM = MM_2026
_OLD = "<7.0"

# enum zone_stat_item
ZONE_STAT_ITEMS = (
    ("nr_free_pages", None),
    ("nr_free_pages_blocks", ">=6.18"),
    ("nr_zone_inactive_anon", None),
    ("nr_zone_active_anon", None),
    ("nr_zone_inactive_file", None),
    ("nr_zone_active_file", None),
    ("nr_zone_unevictable", None),
    ("nr_zone_write_pending", None),
    ("nr_mlock", None),
    ("nr_page_table_pages", "<5.11"),    # a node item from 5.11
    ("nr_bounce", "<6.18"),
    ("nr_zspages", "ZSMALLOC"),
    ("nr_free_cma", None),
    ("nr_unaccepted", ("UNACCEPTED_MEMORY", ">=6.5")),
)

# enum numa_stat_item (vmstat names; nodeN/numastat uses other names, see meminfo.py)
NUMA_STAT_ITEMS = tuple((n, "NUMA") for n in (
    "numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local",
    "numa_other"))

_RECLAIM_SUFFIXES = ("kswapd", "direct", "khugepaged", "proactive", "anon", "file")

# enum node_stat_item, patch base (nr_percpu is added by node_stat_names()).
NODE_STAT_ITEMS = (
    ("nr_inactive_anon", None),
    ("nr_active_anon", None),
    ("nr_inactive_file", None),
    ("nr_active_file", None),
    ("nr_unevictable", None),
    ("nr_slab_reclaimable", None),
    ("nr_slab_unreclaimable", None),
    ("nr_isolated_anon", None),
    ("nr_isolated_file", None),
    ("workingset_nodes", None),
    ("workingset_refault_anon", None),
    ("workingset_refault_file", None),
    ("workingset_activate_anon", None),
    ("workingset_activate_file", None),
    ("workingset_restore_anon", None),
    ("workingset_restore_file", None),
    ("workingset_nodereclaim", None),
    ("nr_anon_pages", None),
    ("nr_mapped", None),
    ("nr_file_pages", None),
    ("nr_dirty", None),
    ("nr_writeback", None),
    ("nr_writeback_temp", "<6.18"),
    ("nr_shmem", None),
    ("nr_shmem_hugepages", None),
    ("nr_shmem_pmdmapped", None),
    ("nr_file_hugepages", None),
    ("nr_file_pmdmapped", None),
    ("nr_anon_transparent_hugepages", None),
    ("nr_vmscan_write", None),
    ("nr_vmscan_immediate_reclaim", None),
    ("nr_dirtied", None),
    ("nr_written", None),
    ("nr_throttled_written", ">=6.1"),
    ("nr_kernel_misc_reclaimable", None),
    ("nr_foll_pin_acquired", None),
    ("nr_foll_pin_released", None),
    ("nr_vmalloc", _MM),
    ("nr_kernel_stack", None),
    ("nr_shadow_call_stack", "SHADOW_CALL_STACK"),
    ("nr_page_table_pages", ">=5.11"),
    ("nr_sec_page_table_pages", ">=6.0"),
    ("nr_iommu_pages", ("IOMMU_SUPPORT", ">=6.12")),
    ("nr_swapcached", ("SWAP", ">=5.13")),
    ("pgpromote_success", ("NUMA_BALANCING", ">=6.1")),
    ("pgpromote_candidate", ("NUMA_BALANCING", ">=6.1")),
    ("pgpromote_candidate_nrl", ("NUMA_BALANCING", ">=6.18")),
    ("pgdemote_kswapd", ">=6.8"),       # vm events before (see VM_EVENT_ITEMS)
    ("pgdemote_direct", ">=6.8"),
    ("pgdemote_khugepaged", ">=6.8"),
    ("pgdemote_proactive", ">=6.18"),
) + tuple(("pgsteal_" + s, _MM) for s in _RECLAIM_SUFFIXES) + tuple(
    ("pgscan_" + s, _MM) for s in _RECLAIM_SUFFIXES) + (
    ("pgrefill", _MM),
    ("nr_hugetlb", ("HUGETLB_PAGE", ">=6.18")),
    ("nr_balloon_pages", ">=6.18"),
    ("nr_kernel_file_pages", ">=6.18"),
)

#: The patch's item (enum NR_PERCPU_B), appended after the last node item.
NR_PERCPU = "nr_percpu"

#: Node items stored in base pages but printed divided by HPAGE_PMD_NR
#: (vmstat_show / node_read_vmstat, CONFIG_TRANSPARENT_HUGEPAGE).
THP_PMD_ITEMS = frozenset({
    "nr_shmem_hugepages", "nr_shmem_pmdmapped", "nr_file_hugepages",
    "nr_file_pmdmapped", "nr_anon_transparent_hugepages"})

# enum vm_stat_item
GLOBAL_STAT_ITEMS = (
    ("nr_dirty_threshold", None),
    ("nr_dirty_background_threshold", None),
    ("nr_memmap_pages", ">=6.12"),
    ("nr_memmap_boot_pages", ">=6.12"),
)

# FOR_ALL_ZONES() expansion order (include/linux/vm_event_item.h)
ZONE_SUFFIXES = (
    ("dma", "ZONE_DMA"),
    ("dma32", "ZONE_DMA32"),
    ("normal", None),
    ("high", "HIGHMEM"),
    ("movable", None),
    ("device", ("ZONE_DEVICE", ">=6.1")),
)


def _zoned(prefix):
    return tuple((prefix + "_" + z, g) for z, g in ZONE_SUFFIXES)


def _g(names, gate):
    return tuple((n, gate) for n in names)


# enum vm_event_item. Rows gated "<7.0" are the event positions of the reclaim
# counters that the patch base (7.0) moved into the node items.
VM_EVENT_ITEMS = (
    _g(("pgpgin", "pgpgout", "pswpin", "pswpout"), None)
    + _zoned("pgalloc") + _zoned("allocstall") + _zoned("pgskip")
    + _g(("pgfree", "pgactivate", "pgdeactivate", "pglazyfree", "pgfault",
          "pgmajfault", "pglazyfreed"), None)
    + (("pgrefill", _OLD), ("pgreuse", None))
    + _g(("pgsteal_kswapd", "pgsteal_direct"), _OLD)
    + (("pgsteal_khugepaged", (">=6.6", _OLD)), ("pgsteal_proactive", (">=6.18", _OLD)))
    # PGDEMOTE_* were vm events from 5.15 (khugepaged from 6.6) until node items in 6.8
    + _g(("pgdemote_kswapd", "pgdemote_direct"), (">=5.15", "<6.8"))
    + (("pgdemote_khugepaged", (">=6.6", "<6.8")),)
    + _g(("pgscan_kswapd", "pgscan_direct"), _OLD)
    + (("pgscan_khugepaged", (">=6.6", _OLD)), ("pgscan_proactive", (">=6.18", _OLD)))
    + (("pgscan_direct_throttle", None),)
    + _g(("pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file"), _OLD)
    + (("zone_reclaim_success", ("NUMA", ">=6.12")), ("zone_reclaim_failed", "NUMA"))
    + _g(("pginodesteal", "slabs_scanned", "kswapd_inodesteal",
          "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly",
          "pageoutrun", "pgrotated", "drop_pagecache", "drop_slab", "oom_kill"),
         None)
    + _g(("numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
          "numa_hint_faults_local", "numa_pages_migrated"), "NUMA_BALANCING")
    + _g(("pgmigrate_success", "pgmigrate_fail", "thp_migration_success",
          "thp_migration_fail", "thp_migration_split"), "MIGRATION")
    + _g(("compact_migrate_scanned", "compact_free_scanned", "compact_isolated",
          "compact_stall", "compact_fail", "compact_success",
          "compact_daemon_wake", "compact_daemon_migrate_scanned",
          "compact_daemon_free_scanned"), "COMPACTION")
    + _g(("htlb_buddy_alloc_success", "htlb_buddy_alloc_fail"), "HUGETLB_PAGE")
    + _g(("cma_alloc_success", "cma_alloc_fail"), ("CMA", ">=5.15"))
    + _g(("unevictable_pgs_culled", "unevictable_pgs_scanned",
          "unevictable_pgs_rescued", "unevictable_pgs_mlocked",
          "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
          "unevictable_pgs_stranded"), None)
    + _g(("thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
          "thp_collapse_alloc", "thp_collapse_alloc_failed", "thp_file_alloc",
          "thp_file_fallback", "thp_file_fallback_charge", "thp_file_mapped",
          "thp_split_page", "thp_split_page_failed", "thp_deferred_split_page"),
         "TRANSPARENT_HUGEPAGE")
    + (("thp_underused_split_page", ("TRANSPARENT_HUGEPAGE", ">=6.12")),
       ("thp_split_pmd", "TRANSPARENT_HUGEPAGE"))
    + _g(("thp_scan_exceed_none_pte", "thp_scan_exceed_swap_pte",
          "thp_scan_exceed_share_pte"), ("TRANSPARENT_HUGEPAGE", ">=6.1"))
    + (("thp_split_pud",
        ("TRANSPARENT_HUGEPAGE", "HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD")),)
    + _g(("thp_zero_page_alloc", "thp_zero_page_alloc_failed", "thp_swpout",
          "thp_swpout_fallback"), "TRANSPARENT_HUGEPAGE")
    + _g(("balloon_inflate", "balloon_deflate"), "MEMORY_BALLOON")
    + (("balloon_migrate", ("MEMORY_BALLOON", "BALLOON_COMPACTION")),)
    + _g(("nr_tlb_remote_flush", "nr_tlb_remote_flush_received",
          "nr_tlb_local_flush_all", "nr_tlb_local_flush_one"), "DEBUG_TLBFLUSH")
    + _g(("vmacache_find_calls", "vmacache_find_hits"), ("DEBUG_VM_VMACACHE", "<6.1"))
    + _g(("swap_ra", "swap_ra_hit"), "SWAP")
    + _g(("swpin_zero", "swpout_zero"), ("SWAP", ">=6.12"))
    + (("ksm_swpin_copy", ("SWAP", "KSM", ">=6.1")), ("cow_ksm", ("KSM", ">=6.1")))
    + _g(("zswpin", "zswpout"), ("ZSWAP", ">=6.1"))
    + (("zswpwb", ("ZSWAP", ">=6.12")),)
    + _g(("direct_map_level2_splits", "direct_map_level3_splits"), ("X86", ">=5.15"))
    + _g(("direct_map_level2_collapses", "direct_map_level3_collapses"), ("X86", ">=6.18"))
    + _g(("vma_lock_success", "vma_lock_abort", "vma_lock_retry",
          "vma_lock_miss"), ("PER_VMA_LOCK_STATS", ">=6.6"))
    # Buckets up to THREAD_SIZE; x86-64 (16 KiB stacks, no KASAN).
    + _g(("kstack_1k", "kstack_2k", "kstack_4k", "kstack_8k", "kstack_16k"),
         ("DEBUG_STACK_USAGE", ">=6.12"))
)

#: The fixed deprecated line vmstat_show prints after the last item.
NR_UNSTABLE = "nr_unstable"


def _names(rows, profile):
    return tuple(name for name, _ in select(rows, profile))


@lru_cache(maxsize=None)
def node_stat_names(profile=DEFAULT_PROFILE, percpu_node_item=True):
    """enum node_stat_item names in order; nr_percpu last in per-node mode."""
    names = _names(NODE_STAT_ITEMS, profile)
    return names + (NR_PERCPU,) if percpu_node_item else names


@lru_cache(maxsize=None)
def zone_stat_names(profile=DEFAULT_PROFILE):
    return _names(ZONE_STAT_ITEMS, profile)


@lru_cache(maxsize=None)
def numa_event_names(profile=DEFAULT_PROFILE):
    return _names(NUMA_STAT_ITEMS, profile)


@lru_cache(maxsize=None)
def vm_event_names(profile=DEFAULT_PROFILE):
    if "VM_EVENT_COUNTERS" not in profile:
        return ()
    return _names(VM_EVENT_ITEMS, profile)


@lru_cache(maxsize=None)
def node_vmstat_names(profile=DEFAULT_PROFILE, percpu_node_item=True):
    """Lines of nodeN/vmstat: zone items, NUMA events, node items."""
    return (zone_stat_names(profile) + numa_event_names(profile)
            + node_stat_names(profile, percpu_node_item))


@lru_cache(maxsize=None)
def proc_vmstat_names(profile=DEFAULT_PROFILE, percpu_node_item=True):
    """Lines of /proc/vmstat, the trailing "nr_unstable" included."""
    return (node_vmstat_names(profile, percpu_node_item)
            + _names(GLOBAL_STAT_ITEMS, profile) + vm_event_names(profile)
            + (NR_UNSTABLE,))


def vmstat(names, values) -> bytes:
    """"%s %lu\\n" per name; missing values print 0, negatives clamp to 0
    (the kernel clamps the signed atomics, events are unsigned sums), and
    nr_unstable is always 0. `values` hold what is printed (pages, THP items
    already divided by HPAGE_PMD_NR)."""
    return kv((n, 0 if n == NR_UNSTABLE else values.get(n, 0)) for n in names)
