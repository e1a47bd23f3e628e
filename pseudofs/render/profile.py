"""Kernel-config profiles: which gated lines of the kernel's text tables exist.

A profile is a frozenset of names (hashable: the name lists are cached per
profile). Most are Kconfig symbols without the
``CONFIG_`` prefix; a few are not Kconfig symbols but facts of the running
kernel or of the source version, and are marked below. Every table in
``pseudofs.render`` carries a gate per row, evaluated by :func:`enabled`:

* ``None``: always present;
* ``"NAME"``: present when NAME is in the profile;
* ``"!NAME"``: present when NAME is NOT in the profile;
* a tuple of those: present when all of them hold.

``PATCH_BASE`` is the profile the mount uses: the gates that were on in the
Linux 6.18 x86-64 VM of ``tests/data/samples-linux-6.18`` (read off its
/proc/vmstat, /proc/meminfo and node meminfo), plus the version markers of the
mm tree the 2026 percpu patch applies to. ``LINUX_6_18`` is the same VM
without those markers, i.e. exactly what the sample files show; it exists so
the tables can be checked byte for byte against a real kernel.
"""

# Version markers (not Kconfig symbols).
#: mm tree early 2026: pgsteal_*/pgscan_*/pgrefill are node stat items (in
#: vmstat_text[] between pgdemote_proactive and nr_hugetlb, and in memcg's
#: memory_stats[]) instead of vm events; vmalloc is a node item (nr_vmalloc,
#: memcg `vmalloc` from NR_VMALLOC); memory.stat has zswap_incomp.
MM_2026 = "MM_2026"
#: nodeN/meminfo has a "Balloon:" line. Present in the newest drivers/base/node.c
#: copy read (which also has the later GPU lines), absent on 6.18 (sample);
#: not confirmed for the patch base, so off by default (the sample wins).
NODE_MEMINFO_BALLOON = "NODE_MEMINFO_BALLOON"
# Runtime facts (not Kconfig symbols).
#: x86 direct_gbpages: /proc/meminfo prints DirectMap1G (arch_report_meminfo).
DIRECT_GBPAGES = "DIRECT_GBPAGES"
#: CONFIG_MEMTEST and the boot memtest ran: /proc/meminfo EarlyMemtestBad.
MEMTEST_DONE = "MEMTEST_DONE"

#: Gates read off the 6.18 sample VM (x86-64, 2 CPUs, 1 node):
#:  - zones DMA, DMA32, Normal, Movable, Device (pgalloc_device exists; no _high);
#:  - NUMA (numa_hit...), NUMA_BALANCING (pgpromote_*, numa_pte_updates);
#:  - ZSMALLOC (nr_zspages), no UNACCEPTED_MEMORY (no nr_unaccepted/Unaccepted);
#:  - IOMMU_SUPPORT (nr_iommu_pages), SWAP (nr_swapcached, swap_ra), ZSWAP, KSM;
#:  - MIGRATION, COMPACTION, HUGETLB_PAGE, TRANSPARENT_HUGEPAGE with PUD
#:    (thp_split_pud), balloon with migration (balloon_migrate);
#:  - no CMA (no cma_alloc_*, no CmaTotal), no MEMORY_FAILURE (no
#:    HardwareCorrupted), no HIGHMEM, no SHADOW_CALL_STACK, no DEBUG_TLBFLUSH,
#:    no PER_VMA_LOCK_STATS, no DEBUG_STACK_USAGE;
#:  - X86_64 with direct_gbpages (DirectMap4k/2M/1G).
LINUX_6_18 = frozenset({
    "MMU", "X86", "X86_64", DIRECT_GBPAGES,
    "ZONE_DMA", "ZONE_DMA32", "ZONE_DEVICE",
    "NUMA", "NUMA_BALANCING", "MIGRATION", "COMPACTION",
    "ZSMALLOC", "IOMMU_SUPPORT", "SWAP", "ZSWAP", "KSM",
    "HUGETLB_PAGE", "TRANSPARENT_HUGEPAGE", "HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD",
    # Renamed BALLOON / BALLOON_MIGRATION in the newest trees.
    "MEMORY_BALLOON", "BALLOON_COMPACTION",
    "VM_EVENT_COUNTERS", "MEMCG", "MEMCG_V1",
})

#: The profile of the mount: the sample's gates on the patch base tree.
PATCH_BASE = LINUX_6_18 | {MM_2026}

DEFAULT_PROFILE = PATCH_BASE


def enabled(gate, profile) -> bool:
    """True when a table row with this gate exists under `profile`."""
    if gate is None:
        return True
    if isinstance(gate, tuple):
        return all(enabled(g, profile) for g in gate)
    if gate.startswith("!"):
        return gate[1:] not in profile
    return gate in profile


def select(rows, profile):
    """The rows of a ``(name, gate, ...)`` table present under `profile`."""
    return [row for row in rows if enabled(row[1], profile)]
