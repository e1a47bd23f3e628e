"""The key lists of tests/data/kernel-formats (extracted from stable kernel sources, one file
per file and version, each key with the `[CONFIG_...]` gate it has in the source), parsed and
evaluated against a profile: what each file shows on that kernel with those options."""

import functools
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
REFS = os.path.join(HERE, "data", "kernel-formats")
LTS = ("5.10", "5.15", "6.1", "6.6", "6.12", "6.18")

# x86-64 without KASAN: THREAD_SIZE = PAGE_SIZE << 2 (arch/x86/include/asm/page_64_types.h)
THREAD_SIZE = 16384

# Lines the lists leave as a call: what the callee prints on x86-64 (key, gate).
EXPANSIONS = {
    # mm/hugetlb.c hugetlb_report_meminfo()
    "<hugetlb_report_meminfo>": [(k, "CONFIG_HUGETLB_PAGE") for k in (
        "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "Hugepagesize",
        "Hugetlb")],
    # arch/x86/mm/pat/set_memory.c arch_report_meminfo(), x86-64 with direct_gbpages
    "<arch_report_meminfo>": [("DirectMap4k", None), ("DirectMap2M", None),
                              ("DirectMap1G", "DIRECT_GBPAGES")],
    # mm/memtest.c memtest_report_meminfo(): only after a boot memtest ran; never modeled
    "<memtest_report_meminfo>": [("EarlyMemtestBad", "MEMTEST_DONE")],
}


def _path(kind, version):
    return os.path.join(REFS, f"{kind}.{version}.txt")


@functools.lru_cache(maxsize=None)
def gate_holds(expr, profile) -> bool:
    """Evaluate a list's gate (`CONFIG_X && !CONFIG_Y`, `defined(..)`, `IS_ENABLED(..)`,
    `THREAD_SIZE > N`) with the profile's options."""
    if expr is None:
        return True
    py = re.sub(r"(?:defined|IS_ENABLED)\((CONFIG_\w+)\)", r"\1", expr)
    py = py.replace("&&", " and ").replace("||", " or ")
    py = re.sub(r"!(?!=)", " not ", py)
    names = {n: n[len("CONFIG_"):] in profile for n in re.findall(r"CONFIG_\w+", py)}
    names.update({n: n in profile for n in re.findall(r"\b[A-Z_]+\b", py)
                  if not n.startswith("CONFIG_") and n != "THREAD_SIZE"})
    names["THREAD_SIZE"] = THREAD_SIZE
    return bool(eval(py, {"__builtins__": {}}, names))  # noqa: S307 - our own test data


@functools.lru_cache(maxsize=None)
def _lines(kind, version):
    """((key, gate or None, note), ...) of a one-key-per-line list."""
    out = []
    with open(_path(kind, version)) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            m = re.match(r"^(\S+)\s*(?:\[([^\]]*)\])?\s*(.*)$", line)
            key, gate, note = m.group(1), m.group(2), m.group(3)
            if key in EXPANSIONS:
                out.extend((k, g, "") for k, g in EXPANSIONS[key])
            else:
                out.append((key, gate, note))
    return tuple(out)


def proc_vmstat(version, profile, per_node):
    """/proc/vmstat keys; per-node mode adds the patch's nr_percpu after nr_kernel_file_pages,
    or at the end of the node items (before nr_dirty_threshold) where there is none."""
    keys = [k for k, g, _ in _lines("proc_vmstat", version) if gate_holds(g, profile)]
    keys.append("nr_unstable")      # vmstat_show's fixed last line, not in the lists
    if per_node:
        at = (keys.index("nr_kernel_file_pages") + 1 if "nr_kernel_file_pages" in keys
              else keys.index("nr_dirty_threshold"))
        keys.insert(at, "nr_percpu")
    return keys


def node_vmstat(version, profile, per_node):
    """nodeN/vmstat (drivers/base/node.c node_read_vmstat): zone, NUMA and node items, i.e.
    /proc/vmstat up to the first global writeback item."""
    keys = proc_vmstat(version, profile, per_node)
    return keys[:keys.index("nr_dirty_threshold")]


def proc_meminfo(version, profile):
    return [k for k, g, _ in _lines("proc_meminfo", version) if gate_holds(g, profile)]


def memory_stat(version, profile):
    """memory.stat keys; `hugetlb` only with the memory_hugetlb_accounting mount option."""
    out = []
    for key, gate, note in _lines("memory.stat", version):
        if not gate_holds(gate, profile):
            continue
        if "memory_hugetlb_accounting" in note and "memory_hugetlb_accounting" not in profile:
            continue
        out.append(key)
    return out


def memory_numa_stat(version, profile, per_node):
    """memory.numa_stat keys; the patch makes `percpu` a node item, printed in its
    memory_stats[] position."""
    with open(_path("memory.numa_stat", version)) as f:
        text = f.read()
    tokens = re.findall(r"\([^)]*\)|\S+", text)[1:]      # the first token names the version
    out = []
    for tok in tokens:
        if tok.startswith("("):
            if per_node and tok.startswith("(percpu:"):
                out.append("percpu")
            continue
        m = re.match(r"^([a-z_]+)(?:\[([^\]]*)\])?$", tok)
        if gate_holds(m.group(2), profile):
            out.append(m.group(1))
    return out


def memcg_files(version, profile):
    """{file name: on_root} of mm/memcontrol.c's memory_files[], swap_files[], zswap_files[]
    as the list gives them (gates evaluated; swap/zswap arrays taken as registered)."""
    files, section = {}, None
    with open(_path("memcg_arrays_and_files", version)) as f:
        for line in f:
            if line.startswith("#"):
                section = line[1:].strip()
                continue
            if section not in ("memory_files", "swap_files", "zswap_files"):
                continue
            m = re.match(r"^\s+(\S+) \(([^)]*)\)\s*(.*)$", line)
            gate = m.group(2).strip("',") or None
            if gate_holds(gate, profile):
                files["memory." + m.group(1)] = "CFTYPE_NOT_ON_ROOT" not in m.group(3)
    return files
