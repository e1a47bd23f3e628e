"""/proc/meminfo (fs/proc/meminfo.c, meminfo_proc_show), nodeN/meminfo and
nodeN/numastat (drivers/base/node.c, node_read_meminfo / node_read_numastat).

Labels are given WITHOUT their colon. Values are what is printed: kB for the
" kB" lines (pages << (PAGE_SHIFT - 10), KernelStack already in KiB), plain
counts for the HugePages_* lines. Negative values print as 0.

Line shapes:
* normal: label+":" left-justified in 16 columns, value "%8lu", " kB"
  (show_val_kb; the kernel writes the padded label literally, e.g.
  "MemTotal:       "); wider values just extend the line;
* /proc/meminfo HugePages_{Total,Free,Rsvd,Surp}: label+":" in 16 columns,
  3 spaces, "%5lu", no unit (hugetlb_report_meminfo);
* nodeN/meminfo HugePages_{Total,Free,Surp}: label+":" in 16 columns, 1 space,
  "%5u", no unit (hugetlb_report_node_meminfo);
* "HardwareCorrupted: %5lu kB" and "EarlyMemtestBad:   %5lu kB".
"""

from functools import lru_cache

from .profile import (DEFAULT_PROFILE, DIRECT_GBPAGES, MEMTEST_DONE,
                      NODE_MEMINFO_BALLOON, enabled, select)
from .text import kv, u

_HIGHMEM = ("HighTotal", "HighFree", "LowTotal", "LowFree")
_THP = ("AnonHugePages", "ShmemHugePages", "ShmemPmdMapped", "FileHugePages",
        "FilePmdMapped")


def _g(names, gate):
    return tuple((n, gate) for n in names)


# meminfo_proc_show, then hugetlb_report_meminfo, then arch_report_meminfo (x86).
MEMINFO_ROWS = (
    _g(("MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached",
        "SwapCached", "Active", "Inactive", "Active(anon)", "Inactive(anon)",
        "Active(file)", "Inactive(file)", "Unevictable", "Mlocked"), None)
    + _g(_HIGHMEM, "HIGHMEM")
    + (("MmapCopy", "!MMU"),)
    + _g(("SwapTotal", "SwapFree"), None)
    + _g(("Zswap", "Zswapped"), ("ZSWAP", ">=6.1"))
    + _g(("Dirty", "Writeback", "AnonPages", "Mapped", "Shmem", "KReclaimable",
          "Slab", "SReclaimable", "SUnreclaim", "KernelStack"), None)
    + (("ShadowCallStack", "SHADOW_CALL_STACK"),)
    + (("PageTables", None), ("SecPageTables", ">=6.0"))
    + _g(("NFS_Unstable", "Bounce",
          "WritebackTmp", "CommitLimit", "Committed_AS", "VmallocTotal",
          "VmallocUsed", "VmallocChunk", "Percpu"), None)
    + (("EarlyMemtestBad", (MEMTEST_DONE, ">=6.2")),
       ("HardwareCorrupted", "MEMORY_FAILURE"))
    + _g(_THP, "TRANSPARENT_HUGEPAGE")
    + _g(("CmaTotal", "CmaFree"), "CMA")
    + (("Unaccepted", ("UNACCEPTED_MEMORY", ">=6.5")), ("Balloon", ">=6.18"))
    + _g(("HugePages_Total", "HugePages_Free", "HugePages_Rsvd",
          "HugePages_Surp", "Hugepagesize", "Hugetlb"), "HUGETLB_PAGE")
    + (("DirectMap4k", "X86"), ("DirectMap2M", "X86_64"),
       ("DirectMap4M", ("X86", "!X86_64")),
       ("DirectMap1G", ("X86_64", DIRECT_GBPAGES)))
)

# node_read_meminfo, then hugetlb_report_node_meminfo. No Percpu line, before
# or after the patch.
NODE_MEMINFO_ROWS = (
    _g(("MemTotal", "MemFree", "MemUsed"), None)
    + (("SwapCached", ">=5.13"),)    # with NR_SWAPCACHE (5.13)
    + _g(("Active", "Inactive",
        "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)",
        "Unevictable", "Mlocked"), None)
    + _g(_HIGHMEM, "HIGHMEM")
    + _g(("Dirty", "Writeback", "FilePages", "Mapped", "AnonPages", "Shmem",
          "KernelStack"), None)
    + (("ShadowCallStack", "SHADOW_CALL_STACK"),)
    + (("PageTables", None), ("SecPageTables", ">=6.0"))
    + _g(("NFS_Unstable", "Bounce",
          "WritebackTmp", "KReclaimable", "Slab", "SReclaimable",
          "SUnreclaim"), None)
    + _g(_THP, "TRANSPARENT_HUGEPAGE")
    + (("Unaccepted", ("UNACCEPTED_MEMORY", ">=6.5")), ("Balloon", NODE_MEMINFO_BALLOON))
    + _g(("HugePages_Total", "HugePages_Free", "HugePages_Surp"),
         "HUGETLB_PAGE")
)

#: nodeN/meminfo lines printed one column short ("Node %d FileHugePages: %8lu kB")
#: until "mm,thp: fix nodeN/meminfo output alignment" (Hugh Dickins, August 2023, 6.6).
NODE_MEMINFO_NARROW = (("FileHugePages", "FilePmdMapped"), "<6.6")

# node_read_numastat: fixed names, different from vmstat's numa_* names.
NODE_NUMASTAT_NAMES = ("numa_hit", "numa_miss", "numa_foreign",
                       "interleave_hit", "local_node", "other_node")

#: Lines printed as a count without a unit (both files).
HUGEPAGES_COUNT_LABELS = frozenset({
    "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"})

# The two odd " %5lu kB" lines of /proc/meminfo: the literal label prefix.
_SPECIAL_KB = {
    "HardwareCorrupted": "HardwareCorrupted: ",
    "EarlyMemtestBad": "EarlyMemtestBad:   ",
}


@lru_cache(maxsize=None)
def meminfo_labels(profile=DEFAULT_PROFILE):
    """/proc/meminfo labels in order (without colons)."""
    return tuple(name for name, _ in select(MEMINFO_ROWS, profile))


@lru_cache(maxsize=None)
def node_meminfo_labels(profile=DEFAULT_PROFILE):
    """nodeN/meminfo labels in order (without colons and "Node N ")."""
    return tuple(name for name, _ in select(NODE_MEMINFO_ROWS, profile))


def meminfo_line(label, value) -> str:
    """One /proc/meminfo line."""
    value = u(value)
    if label in HUGEPAGES_COUNT_LABELS:
        return "%-16s   %5d\n" % (label + ":", value)
    if label in _SPECIAL_KB:
        return "%s%5d kB\n" % (_SPECIAL_KB[label], value)
    return "%-16s%8d kB\n" % (label + ":", value)


def meminfo(pairs) -> bytes:
    """/proc/meminfo from (label, value) pairs in output order."""
    return "".join(meminfo_line(l, v) for l, v in pairs).encode()


def node_meminfo(nid, pairs, profile=DEFAULT_PROFILE) -> bytes:
    """nodeN/meminfo from (label, value) pairs in output order."""
    labels, gate = NODE_MEMINFO_NARROW
    narrow = labels if enabled(gate, profile) else ()
    out = []
    for label, value in pairs:
        if label in HUGEPAGES_COUNT_LABELS:
            out.append("Node %d %-16s %5d\n" % (nid, label + ":", u(value)))
        elif label in narrow:
            out.append("Node %d %-15s%8d kB\n" % (nid, label + ":", u(value)))
        else:
            out.append("Node %d %-16s%8d kB\n" % (nid, label + ":", u(value)))
    return "".join(out).encode()


def numastat(values) -> bytes:
    """nodeN/numastat from a dict keyed by NODE_NUMASTAT_NAMES (missing: 0)."""
    return kv((n, values.get(n, 0)) for n in NODE_NUMASTAT_NAMES)
