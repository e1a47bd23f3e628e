"""pseudofs.render against real Linux 6.18 files and the reference's vectors.

The samples are read from $PSEUDOFS_SAMPLES, else tests/data/samples-linux-6.18 (checked in).
Each sample is parsed into plain values, formatted back, and compared byte
for byte.
"""

import os
from pathlib import Path

import pytest

import pseudofs.render.memcg_stats as mc
import pseudofs.render.meminfo as mi
import pseudofs.render.percpu_stats as ps
import pseudofs.render.vmstat_text as vt
from pseudofs.render.bitmap import cpulist, cpumap, distance, nodelist
from pseudofs.render.cgroup_text import pid_cgroup, proc_cgroups, v2_rows
from pseudofs.render.cpuinfo import cpuinfo
from pseudofs.render.meminfo import meminfo, node_meminfo, numastat
from pseudofs.render.percpu_stats import percpu_stats
from pseudofs.render.proc_stat import proc_stat
from pseudofs.render.text import decimal, kv, limit
from pseudofs.render.vmstat_text import vmstat
from pseudofs.render.profile import LINUX_6_18, PATCH_BASE, enabled

SAMPLES = Path(os.environ.get("PSEUDOFS_SAMPLES")
               or Path(__file__).parent / "data" / "samples-linux-6.18")


def sample(rel) -> bytes:
    return (SAMPLES / rel).read_bytes()


def lines(rel):
    return sample(rel).decode().splitlines()


def pairs(rel):
    return [(l.split()[0], int(l.split()[1])) for l in lines(rel)]


NODE0 = "sys/devices/system/node/node0/"
RECLAIM = {p + s for p in ("pgsteal_", "pgscan_") for s in (
    "kswapd", "direct", "khugepaged", "proactive", "anon", "file")} | {"pgrefill"}


# ---- meminfo family ------------------------------------------------------

def _meminfo_pairs(text_lines, prefix=""):
    out = []
    for line in text_lines:
        assert line.startswith(prefix)
        label, rest = line[len(prefix):].split(":", 1)
        out.append((label, int(rest.split()[0])))
    return out


def test_proc_meminfo_bytes_and_order():
    p = _meminfo_pairs(lines("proc/meminfo"))
    assert meminfo(p) == sample("proc/meminfo")
    labels = tuple(l for l, _ in p)
    assert labels == mi.meminfo_labels(LINUX_6_18) == mi.meminfo_labels(PATCH_BASE)


def test_node_meminfo_bytes_and_order():
    p = _meminfo_pairs(lines(NODE0 + "meminfo"), "Node 0 ")
    assert node_meminfo(0, p) == sample(NODE0 + "meminfo")
    assert tuple(l for l, _ in p) == mi.node_meminfo_labels(PATCH_BASE)
    assert "Percpu" not in mi.node_meminfo_labels(PATCH_BASE)


def test_meminfo_special_lines():
    assert meminfo([("HardwareCorrupted", 0)]) == b"HardwareCorrupted:     0 kB\n"
    assert meminfo([("ShadowCallStack", 12)]) == b"ShadowCallStack:      12 kB\n"
    assert meminfo([("HugePages_Rsvd", 3)]) == b"HugePages_Rsvd:        3\n"
    assert meminfo([("Percpu", 7488)]) == b"Percpu:             7488 kB\n"
    assert meminfo([("MemFree", -5)]) == b"MemFree:               0 kB\n"
    assert meminfo([("VmallocTotal", 34359738367)]) == \
        b"VmallocTotal:   34359738367 kB\n"
    assert node_meminfo(12, [("MemTotal", 16303412), ("HugePages_Free", 7)]) == (
        b"Node 12 MemTotal:       16303412 kB\n"
        b"Node 12 HugePages_Free:      7\n")
    assert "HardwareCorrupted" in mi.meminfo_labels(PATCH_BASE | {"MEMORY_FAILURE"})
    assert "Balloon" in mi.node_meminfo_labels(PATCH_BASE | {"NODE_MEMINFO_BALLOON"})


def test_numastat_bytes():
    assert numastat(dict(pairs(NODE0 + "numastat"))) == sample(NODE0 + "numastat")


# ---- vmstat --------------------------------------------------------------

def test_vmstat_linux_6_18_bytes():
    for rel, names in (("proc/vmstat", vt.proc_vmstat_names(LINUX_6_18, False)),
                       (NODE0 + "vmstat", vt.node_vmstat_names(LINUX_6_18, False))):
        p = pairs(rel)
        assert tuple(n for n, _ in p) == names
        assert vmstat(names, dict(p)) == sample(rel)


def _sections(profile, per_node):
    zone, numa = vt.zone_stat_names(profile), vt.numa_event_names(profile)
    node = vt.node_stat_names(profile, per_node)
    return zone, numa, node, vt.vm_event_names(profile)


def test_patch_base_vmstat_agrees_with_sample_modulo_documented_moves():
    sample_names = [n for n, _ in pairs("proc/vmstat")]
    zone, numa, node, events = _sections(PATCH_BASE, True)
    names = list(vt.proc_vmstat_names(PATCH_BASE, True))
    # zone items and NUMA events open the file exactly as on 6.18
    k = len(zone) + len(numa)
    assert names[:k] == sample_names[:k]
    # node items: 6.18's, plus nr_vmalloc after nr_foll_pin_released, the
    # reclaim counters moved in before nr_hugetlb, nr_percpu appended
    s618_node = list(vt.node_stat_names(LINUX_6_18, False))
    assert sample_names[k:k + len(s618_node)] == s618_node
    assert [n for n in node if n not in RECLAIM | {"nr_vmalloc", "nr_percpu"}] \
        == s618_node
    assert node[node.index("nr_foll_pin_released") + 1] == "nr_vmalloc"
    assert node[node.index("pgdemote_proactive") + 1:node.index("nr_hugetlb")] \
        == tuple(n for n in vt.node_stat_names() if n in RECLAIM)
    assert set(node) & RECLAIM == RECLAIM
    # vm events: the sample's, minus the moved counters, same order
    s_events = sample_names[sample_names.index("pgpgin"):-1]
    assert list(events) == [n for n in s_events if n not in RECLAIM]
    assert not set(events) & RECLAIM
    # the global items and the trailing line
    assert names[-1] == "nr_unstable"
    g = names.index("nr_dirty_threshold")
    assert names[g:g + 4] == sample_names[sample_names.index("nr_dirty_threshold"):][:4]
    # zone sets: pgalloc_<zone> for exactly the sample's zones
    assert [n for n in events if n.startswith("pgalloc_")] == \
        [n for n in sample_names if n.startswith("pgalloc_")]


def test_nr_percpu_last_node_item_only_per_node():
    node = vt.node_stat_names(PATCH_BASE, True)
    assert node[-1] == "nr_percpu" and node[-2] == "nr_kernel_file_pages"
    assert "nr_percpu" not in vt.node_stat_names(PATCH_BASE, False)
    assert vt.node_vmstat_names(PATCH_BASE, True)[-1] == "nr_percpu"
    assert "nr_percpu" not in vt.proc_vmstat_names(PATCH_BASE, False)
    names = vt.proc_vmstat_names(PATCH_BASE, True)
    assert names[names.index("nr_percpu") + 1] == "nr_dirty_threshold"


def test_vmstat_values_clamped_and_nr_unstable_zero():
    out = vmstat(("nr_percpu", "pgfree", "nr_unstable"),
                 {"nr_percpu": -3, "nr_unstable": 9})
    assert out == b"nr_percpu 0\npgfree 0\nnr_unstable 0\n"


# ---- bitmaps and small files ----------------------------------------------

@pytest.mark.parametrize("cpus,nbits,text", [
    (range(4), 4, b"f\n"), (range(8), 8, b"ff\n"), (range(40), 40, b"ff,ffffffff\n"),
    (range(64), 64, b"ffffffff,ffffffff\n"), ({0, 1}, 2, b"3\n"),
    ({0}, 33, b"0,00000001\n"), ({32}, 33, b"1,00000000\n"),
    (set(), 12, b"000\n"), ({4, 5}, 16, b"0030\n")])
def test_cpumap(cpus, nbits, text):
    assert cpumap(cpus, nbits) == text


def test_cpulist_nodelist():
    assert cpulist({0, 1, 2, 3, 8, 9, 10, 11}) == b"0-3,8-11\n"
    assert cpulist({0, 1}) == b"0-1\n"
    assert cpulist({5, 0, 2, 3}) == b"0,2-3,5\n"
    assert cpulist(set()) == b"\n"
    assert nodelist({0}) == b"0\n"


def test_sysfs_samples():
    cpu = "sys/devices/system/cpu/"
    assert cpulist({0, 1}) == sample(cpu + "online") == sample(cpu + "possible")
    assert cpulist(set()) == sample(cpu + "offline")
    assert decimal(255) == sample(cpu + "kernel_max")
    assert cpulist({0, 1}) == sample(NODE0 + "cpulist")
    assert cpumap({0, 1}, 2) == sample(NODE0 + "cpumap")
    assert distance([10]) == sample(NODE0 + "distance")
    for f in ("online", "possible", "has_cpu", "has_memory", "has_normal_memory"):
        assert nodelist({0}) == sample("sys/devices/system/node/" + f)
    assert distance([10, 21]) == b"10 21\n"


def test_limit_and_kv():
    pcmax = (2 ** 63 - 1) // 4096
    assert limit(pcmax, 4096, pcmax) == b"max\n"
    assert limit(1, 4096, pcmax) == b"4096\n"
    assert limit(0, 4096, pcmax) == b"0\n"
    assert kv([("a", 1), ("b", -2)]) == b"a 1\nb 0\n"


# ---- memcg ----------------------------------------------------------------

@pytest.mark.parametrize("per_node", [True, False])
def test_memory_stat_percpu_is_7th_key(per_node):
    assert mc.memory_stat_keys(PATCH_BASE, per_node)[6] == "percpu"
    out = mc.memory_stat({"percpu": 12800}, 4096, PATCH_BASE, per_node)
    assert out.split(b"\n")[6] == b"percpu 12800"


def test_numa_stat_percpu_6th_row_only_per_node():
    rows = [r.key for r in mc.numa_stat_rows(PATCH_BASE, True)]
    assert rows[:6] == ["anon", "file", "kernel_stack", "pagetables",
                        "sec_pagetables", "percpu"]
    assert "percpu" not in [r.key for r in mc.numa_stat_rows(PATCH_BASE, False)]
    for excluded in ("kernel", "sock", "zswap", "slab", "pgscan", "pgfault"):
        assert excluded not in rows
    assert "hugetlb" in rows  # no mount-option check in numa_stat


def test_memory_numa_stat_format():
    out = mc.memory_numa_stat({"percpu": {0: 12800, 1: 6400, 3: 99},
                               "anon": {0: 2, 1: -1}}, [0, 1], 4096)
    lines_ = out.decode().splitlines()
    assert lines_[0] == "anon N0=8192 N1=0"
    assert lines_[5] == "percpu N0=12800 N1=6400"
    assert mc.numa_stat([("x", {2: 5})], [2, 0]) == b"x N0=0 N2=5\n"


def test_memory_stat_units_and_synthesized_lines():
    v = {"anon": 3, "kernel_stack": 16, "kernel": 4, "slab_reclaimable": 100,
         "slab_unreclaimable": 28, "workingset_refault_file": 7, "pgscan_kswapd": 2,
         "pgscan_khugepaged": 3, "pgsteal_direct": 4, "pgfault": 11, "hugetlb": 5,
         "zswap": 10, "zswapped": 1}
    d = dict(l.split() for l in
             mc.memory_stat(v, 4096).decode().splitlines())
    keys = list(d)
    assert tuple(keys) == mc.memory_stat_keys()
    assert d["anon"] == "12288" and d["kernel"] == "16384"
    assert d["kernel_stack"] == "16384" and d["zswap"] == "10"
    assert d["zswapped"] == "4096" and d["workingset_refault_file"] == "7"
    assert keys[keys.index("slab_unreclaimable") + 1] == "slab"
    assert d["slab"] == "128"
    assert d["pgscan"] == "5" and d["pgsteal"] == "4"
    i = keys.index("pgscan")
    assert keys[i - 1:i + 3] == ["pgpromote_success", "pgscan", "pgsteal", "pswpin"]
    assert "hugetlb" not in d and "pgpgin" not in d
    assert keys[-1] == "numa_hint_faults"
    with_h = mc.memory_stat(v, 4096, hugetlb_accounting=True).decode()
    assert "\nhugetlb 20480\nworkingset_refault_anon 0\n" in with_h


def test_memcg_tables_sizes():
    assert len(mc.memcg_node_stat_items(PATCH_BASE, False)) == 47
    assert len(mc.memcg_node_stat_items(PATCH_BASE, True)) == 48
    assert len(mc.memcg_stat_items(PATCH_BASE, False)) == 7
    assert len(mc.memcg_stat_items(PATCH_BASE, True)) == 6
    assert len(mc.memcg_events_all(PATCH_BASE)) == 22


def test_memory_events():
    assert mc.memory_events({"max": 3}) == (
        b"low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\noom_group_kill 0\n"
        b"sock_throttled 0\n")
    assert mc.swap_events({}) == b"high 0\nmax 0\nfail 0\n"


# ---- debugfs, /proc/stat, cpuinfo, cgroups -----------------------------------

def test_percpu_stats_sample_bytes():
    alloc_info = dict(unit_size=1048576, static_size=185496, reserved_size=0,
                      dyn_size=31592, atom_size=2097152, alloc_size=2097152)
    global_stats = dict(nr_alloc=106098, nr_dealloc=104955, nr_cur_alloc=1143,
                        nr_max_alloc=2019, nr_chunks=2, nr_max_chunks=2,
                        min_alloc_size=4, max_alloc_size=4096, empty_pop_pages=47)
    first = dict(nr_alloc=529, max_alloc_size=4096, empty_pop_pages=0,
                 first_bit=3012, free_bytes=20, contig_bytes=4, sum_frag=20,
                 max_frag=16, cur_min_alloc=4, cur_med_alloc=48, cur_max_alloc=4096)
    second = dict(nr_alloc=614, max_alloc_size=2288, empty_pop_pages=47,
                  first_bit=6174, free_bytes=1011152, contig_bytes=786592,
                  sum_frag=224560, max_frag=79664, cur_min_alloc=4,
                  cur_med_alloc=8, cur_max_alloc=2288)
    out = percpu_stats(alloc_info, global_stats,
                       [(ps.CHUNK_FIRST, first), (ps.CHUNK_PLAIN, second)])
    assert out == sample("sys/kernel/debug/percpu_stats")


def test_percpu_stats_other_headers():
    z = dict.fromkeys(ps.CHUNK_FIELDS, 0)
    ai = dict.fromkeys(ps.ALLOC_INFO_FIELDS, 0)
    gs = dict.fromkeys(ps.GLOBAL_FIELDS + ("empty_pop_pages",), 0)
    out = percpu_stats(ai, gs, [(ps.CHUNK_RESERVED, z), (ps.CHUNK_SIDELINED, z),
                                (ps.CHUNK_TO_DEPOPULATE, dict(z, sum_frag=-1))])
    text = out.decode()
    assert "\nChunk: <- Reserved Chunk\n  nr_alloc            :            0\n" in text
    assert "\nChunk (sidelined):\n" in text and "\nChunk (to_depopulate)\n" in text
    assert "  sum_frag            :           -1\n" in text
    assert text.endswith("  cur_max_alloc       :            0\n\n")


def test_proc_stat_sample_bytes():
    ls = lines("proc/stat")
    f = {l.split()[0]: [int(x) for x in l.split()[1:]] for l in ls}
    out = proc_stat({0, 1}, cpu_times={0: f["cpu0"], 1: f["cpu1"]},
                    cpu_total=f["cpu"], irqs=f["intr"][1:], intr_total=f["intr"][0],
                    ctxt=f["ctxt"][0], btime=f["btime"][0],
                    processes=f["processes"][0], procs_running=1,
                    procs_blocked=0, softirqs=f["softirq"][1:])
    assert out == sample("proc/stat")


def test_proc_stat_default_rule():
    out = proc_stat({0, 2}).decode().splitlines()
    assert out[0] == "cpu  0 0 0 0 0 0 0 0 0 0"
    assert out[1:3] == ["cpu0 0 0 0 0 0 0 0 0 0 0", "cpu2 0 0 0 0 0 0 0 0 0 0"]
    assert out[3] == "intr 0" and out[-1] == "softirq 0 0 0 0 0 0 0 0 0 0 0"
    assert out[4:9] == ["ctxt 0", "btime 0", "processes 0", "procs_running 1",
                        "procs_blocked 0"]


def test_cpuinfo_sample_prefix():
    out = cpuinfo({0, 1}, {0: 0, 1: 0})
    assert out.startswith(sample("proc/cpuinfo"))
    assert out.endswith(b"power management:\n\n")
    assert out.count(b"processor\t:") == 2


def test_cpuinfo_topology():
    text = cpuinfo({0, 1, 6, 7}, {0: 0, 1: 0, 2: 0, 6: 1, 7: 1, 8: 1}).decode()
    blocks = text.split("\n\n")[:-1]
    assert len(blocks) == 4
    b6 = {k.rstrip("\t"): v for k, v in
          (l.split(": ", 1) for l in blocks[2].splitlines() if ": " in l)}
    assert b6["processor"] == "6" and b6["physical id"] == "1"
    assert b6["core id"] == "0" and b6["siblings"] == "2" and b6["cpu cores"] == "2"
    assert b6["apicid"] == "6"


def test_proc_cgroups_sample_bytes():
    ls = lines("proc/cgroups")
    rows = [(l.split("\t")[0], *map(int, l.split("\t")[1:])) for l in ls[1:]]
    assert proc_cgroups(rows) == sample("proc/cgroups")
    assert proc_cgroups(v2_rows(["memory"], 3)) == (
        b"#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t3\t1\n")


def test_pid_cgroup():
    assert pid_cgroup("/") == b"0::/\n"
    assert pid_cgroup("/app", deleted=True) == b"0::/app (deleted)\n"


def test_gates():
    assert enabled(None, frozenset())
    assert enabled("!HIGHMEM", PATCH_BASE) and not enabled("HIGHMEM", PATCH_BASE)
    assert enabled(("SWAP", "KSM"), PATCH_BASE)
    assert not enabled(("SWAP", "CMA"), PATCH_BASE)


def test_topology_file_sizes_follow_nr_cpus():
    """include/linux/cpumask.h: mask files are sized for NR_CPUS, at least a page."""
    from types import SimpleNamespace
    from pseudofs.render.sysfs import topology_size
    def at(nr, name, page_size=4096):
        return topology_size(SimpleNamespace(topo=SimpleNamespace(nr_cpus=nr),
                                             page_size=page_size), name)
    assert [at(256, n) for n in ("core_id", "package_cpus", "package_cpus_list")] == [4096] * 3
    assert at(256, "core_id", 65536) == 65536 == at(8192, "package_cpus_list", 65536)
    assert [at(8192, n) for n in ("core_id", "package_cpus", "package_cpus_list")] == \
        [4096, 4096, 8192 * 7 // 2]
    assert at(16384, "thread_siblings") == 16384 * 9 // 32 - 1
