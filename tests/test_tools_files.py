"""The files tools read beside ours agree with each other as on a real kernel (issue 4, item 2):
per-node meminfo, vmstat and numastat add up to the global files; /proc/stat, /proc/cpuinfo and
the node and cpu masks follow the online CPUs; every cgroup says which controllers it has; and
every file is in the strict shape real parsers insist on."""

import os
import re

import pytest

from tools.toolkit import (CONFIG, NODE_CPUS_AFTER, NODE_MEM_KB, ONLINE_AFTER, POSSIBLE, cpulist,
                           kv, meminfo, node_meminfo, nodes, read, scenario)

NODE = "sys/devices/system/node"
CPU = "sys/devices/system/cpu"
# nodeN/numastat name -> the /proc/vmstat counter it is part of
NUMASTAT_TO_VMSTAT = {"numa_hit": "numa_hit", "numa_miss": "numa_miss",
                      "numa_foreign": "numa_foreign", "interleave_hit": "numa_interleave",
                      "local_node": "numa_local", "other_node": "numa_other"}


@pytest.fixture(params=["per-node", "memcg"])
def mnt(request, mounted):
    m = mounted(CONFIG % request.param)
    scenario(m)
    return m


def test_node_files_add_up_to_the_global_ones(mnt):
    ids = nodes(mnt)
    assert ids == [0, 1, 2, 3]
    glob = meminfo(read(mnt, "proc/meminfo"))
    per = {n: node_meminfo(mnt, n) for n in ids}
    for n in ids:
        assert per[n]["MemTotal"] == NODE_MEM_KB[n]
        assert per[n]["MemUsed"] == per[n]["MemTotal"] - per[n]["MemFree"]
    for key in ("MemTotal", "MemFree", "Active", "Inactive", "Dirty", "Writeback", "AnonPages",
                "Mapped", "Shmem", "Slab", "KernelStack", "PageTables", "HugePages_Total"):
        assert sum(per[n][key] for n in ids) == glob[key], key
    assert glob["MemTotal"] - glob["MemFree"] > 0           # the percpu pages of the scenario

    vm = kv(read(mnt, "proc/vmstat"))
    node_vm = {n: kv(read(mnt, f"{NODE}/node{n}/vmstat")) for n in ids}
    for key in node_vm[0]:
        assert sum(node_vm[n][key] for n in ids) == vm[key], key
    assert vm["nr_free_pages"] * 4 == glob["MemFree"]
    numastat = {n: kv(read(mnt, f"{NODE}/node{n}/numastat")) for n in ids}
    for key, vm_key in NUMASTAT_TO_VMSTAT.items():
        assert sum(numastat[n][key] for n in ids) == vm[vm_key], key
    assert list(numastat[0]) == list(NUMASTAT_TO_VMSTAT)


def test_percpu_pages_per_node_follow_online_cpus(mnt):
    vm = kv(read(mnt, "proc/vmstat"))
    if "nr_percpu" not in vm:                     # memcg (upstream) mode: no such counter
        assert all("nr_percpu" not in read(mnt, f"{NODE}/node{n}/vmstat") for n in nodes(mnt))
        return
    per = {n: kv(read(mnt, f"{NODE}/node{n}/vmstat"))["nr_percpu"] for n in nodes(mnt)}
    assert sum(per.values()) == vm["nr_percpu"] > 0
    # populated dynamic pages x nr_cpus_node: nodes 0 and 3 kept their CPUs all along (node 1
    # lost CPU 5 after the boot-time pages were counted, which `pseudofs check` calls hotplug
    # drift); node 2 has none
    assert per[0] * len(NODE_CPUS_AFTER[3]) == per[3] * len(NODE_CPUS_AFTER[0]) > 0
    assert per[2] == 0 and per[1] >= per[0] // len(NODE_CPUS_AFTER[0])


def test_cpu_files_follow_online_cpus(mnt):
    online = cpulist(read(mnt, f"{CPU}/online"))
    assert online == ONLINE_AFTER
    possible = cpulist(read(mnt, f"{CPU}/possible"))
    present = cpulist(read(mnt, f"{CPU}/present"))
    assert len(possible) == POSSIBLE and present == [0, 1, 2, 3, 4, 5, 8, 9]
    assert cpulist(read(mnt, f"{CPU}/offline")) == sorted(set(possible) - set(online))
    assert read(mnt, f"{CPU}/kernel_max") == "511\n"
    assert sorted(int(d[3:]) for d in os.listdir(os.path.join(mnt, CPU))
                  if re.fullmatch(r"cpu\d+", d)) == present
    stat = read(mnt, "proc/stat").splitlines()
    assert stat[0].startswith("cpu  ")
    assert [int(line.split()[0][3:]) for line in stat[1:] if re.match(r"cpu\d", line)] == online
    cpuinfo = read(mnt, "proc/cpuinfo")
    assert [int(x) for x in re.findall(r"^processor\t: (\d+)$", cpuinfo, re.M)] == online
    assert cpuinfo.endswith("\n\n")                       # a blank line ends every block


def test_node_masks_cpumap_and_distance(mnt):
    ids = nodes(mnt)
    nr_cpu_ids = max(cpulist(read(mnt, f"{CPU}/possible"))) + 1
    for n in ids:
        cpus = cpulist(read(mnt, f"{NODE}/node{n}/cpulist"))
        assert cpus == NODE_CPUS_AFTER[n]
        cpumap = read(mnt, f"{NODE}/node{n}/cpumap")
        assert cpumap.endswith("\n") and len(cpumap.strip()) == (nr_cpu_ids + 3) // 4
        bits = int(cpumap.strip().replace(",", ""), 16)
        assert [c for c in range(nr_cpu_ids) if bits >> c & 1] == cpus
        dist = [int(x) for x in read(mnt, f"{NODE}/node{n}/distance").split()]
        assert len(dist) == len(ids) and dist[ids.index(n)] == 10
    dist = {n: read(mnt, f"{NODE}/node{n}/distance").split() for n in ids}
    assert all(dist[a][ids.index(b)] == dist[b][ids.index(a)] for a in ids for b in ids)
    assert cpulist(read(mnt, f"{NODE}/has_cpu")) == [n for n in ids if NODE_CPUS_AFTER[n]]
    assert cpulist(read(mnt, f"{NODE}/has_memory")) == [n for n in ids if NODE_MEM_KB[n]]
    assert cpulist(read(mnt, f"{NODE}/possible")) == ids


def test_every_cgroup_lists_its_controllers(mnt):
    root = os.path.join(mnt, "sys/fs/cgroup")
    assert read(root, "cgroup.controllers") == "memory\n"
    count = 0
    for dirpath, dirnames, _ in os.walk(root):
        count += 1
        for d in dirnames:
            parent = read(dirpath, "cgroup.subtree_control").split()
            assert read(os.path.join(dirpath, d), "cgroup.controllers").split() == parent
    assert sorted(os.listdir(os.path.join(root, "app"))).count("web") == 1
    cgroups = read(mnt, "proc/cgroups").splitlines()
    assert cgroups[0] == "#subsys_name\thierarchy\tnum_cgroups\tenabled"
    assert "memory\t0\t%d\t1" % count in cgroups[1:]


KEY_VALUE = ["proc/vmstat", f"{NODE}/node0/vmstat", f"{NODE}/node3/vmstat",
             f"{NODE}/node1/numastat", "sys/fs/cgroup/memory.stat",
             "sys/fs/cgroup/app/memory.stat", "sys/fs/cgroup/app/web/memory.stat",
             "sys/fs/cgroup/app/memory.events", "sys/fs/cgroup/app/cgroup.stat"]


@pytest.mark.parametrize("path", KEY_VALUE)
def test_key_value_files_are_strict(mnt, path):
    text = read(mnt, path)
    assert text.endswith("\n")
    for line in text.split("\n")[:-1]:
        assert re.fullmatch(r"[a-z0-9_]+ (0|[1-9][0-9]*)", line), f"{path}: {line!r}"


@pytest.mark.parametrize("path", ["proc/meminfo"] + [f"{NODE}/node{n}/meminfo" for n in range(4)])
def test_meminfo_lines_carry_kb(mnt, path):
    text = read(mnt, path)
    prefix = r"Node \d+ " if path.startswith("sys") else ""
    for line in text.split("\n")[:-1]:
        if "HugePages_" in line:
            assert re.fullmatch(prefix + r"HugePages_\w+: +\d+", line), line
        else:
            assert re.fullmatch(prefix + r"[\w()]+: +\d+ kB", line), line
    assert meminfo(text)        # and every line parses


def test_numa_stat_lines_list_nodes_with_memory(mnt):
    text = read(mnt, "sys/fs/cgroup/app/memory.numa_stat")
    for line in text.split("\n")[:-1]:
        assert re.fullmatch(r"[a-z_]+( N[0-2]=(0|[1-9]\d*)){3}", line), line
    assert text.startswith("anon N0=")
