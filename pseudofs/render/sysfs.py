"""sysfs files from the model: /sys/devices/system/{cpu,node}/..."""

from pseudofs.render.bitmap import cpulist, cpumap, distance as _distance
from pseudofs.render.meminfo import node_meminfo as _node_meminfo, node_meminfo_labels, numastat as _numastat
from pseudofs.render.procfs import meminfo_values, per_node, profile, vmstat_values
from pseudofs.render.text import decimal
from pseudofs.render.vmstat_text import node_vmstat_names, vmstat as _vmstat


def cpu_mask(model, which: str) -> bytes:
    topo = model.topo
    masks = {"possible": topo.possible, "present": topo.present, "online": topo.online,
             "offline": topo.offline_cpus()}
    return cpulist(masks[which])


def kernel_max(model) -> bytes:
    return decimal(model.topo.nr_cpus - 1)


def cpu_online(model, cpu: int) -> bytes:
    return decimal(1 if cpu in model.topo.online else 0)


def node_mask(model, which: str) -> bytes:
    """node/{possible,online,has_cpu,has_memory,has_normal_memory}: every configured node is
    possible and online; N_CPU is nodes with online CPUs; N_MEMORY nodes with memory."""
    topo = model.topo
    ids = topo.node_ids
    if which == "has_cpu":
        ids = [n for n in ids if topo.has_cpu(n)]
    elif which in ("has_memory", "has_normal_memory"):
        ids = topo.memory_nodes()
    return cpulist(ids)


def node_cpulist(model, nid: int) -> bytes:
    return cpulist(model.topo.cpumask_of_node(nid))


def node_cpumap(model, nid: int) -> bytes:
    return cpumap(model.topo.cpumask_of_node(nid), model.topo.nr_cpu_ids)


def node_distance(model, nid: int) -> bytes:
    topo = model.topo
    return _distance([topo.distance(nid, m) for m in topo.node_ids])


def node_meminfo(model, nid: int) -> bytes:
    v = meminfo_values(model, [nid])
    prof = profile(model)
    return _node_meminfo(nid, [(label, v.get(label, 0)) for label in node_meminfo_labels(prof)],
                         prof)


def node_numastat(model, nid: int) -> bytes:
    return _numastat({})


def node_vmstat(model, nid: int) -> bytes:
    names = node_vmstat_names(profile(model), per_node(model))
    return _vmstat(names, vmstat_values(model, nid))


# cpuN/topology/ (drivers/base/topology.c, x86 6.18), in the order kernfs lists them (as read
# off a 6.18 x86 VM). Model choice: each NUMA node is one package and one die, each CPU one
# core of one thread, and no L2 cluster is known (cluster_id 65535, a cluster of the CPU
# alone), as on that VM. Masks hold online CPUs (set_cpu_sibling_map at bring-up,
# remove_siblinginfo at offline); the directory exists only while the CPU is online
# (cpuhp state CPUHP_TOPOLOGY_PREPARE).
TOPOLOGY_FILES = (
    "cluster_cpus", "die_id", "cluster_cpus_list", "physical_package_id", "core_cpus_list",
    "die_cpus_list", "core_siblings", "cluster_id", "core_siblings_list", "package_cpus",
    "package_cpus_list", "die_cpus", "thread_siblings_list", "core_id", "core_cpus",
    "thread_siblings",
)
_ONE_CPU = ("thread_siblings", "core_cpus", "cluster_cpus")          # the CPU itself
_PACKAGE = ("core_siblings", "die_cpus", "package_cpus")             # its node's online CPUs


def topology_size(model, name: str) -> int:
    """st_size of a topology file. The masks are binary attributes sized for NR_CPUS
    (include/linux/cpumask.h CPUMAP_FILE_MAX_BYTES, CPULIST_FILE_MAX_BYTES); the ids are
    ordinary attributes (a page)."""
    nr, page = model.topo.nr_cpus, model.page_size
    if name.endswith("_list"):
        return nr * 7 // 2 if nr * 7 // 2 > page else page
    if name in _ONE_CPU + _PACKAGE:
        return nr * 9 // 32 - 1 if nr * 9 // 32 > page else page
    return page


def cpu_topology(model, cpu: int, name: str) -> bytes:
    topo = model.topo
    nid = topo.node_of(cpu)
    ids = {"physical_package_id": nid, "die_id": 0, "cluster_id": 65535,
           "core_id": sorted(topo.nodes[nid].cpus).index(cpu)}
    if name in ids:
        return decimal(ids[name])
    listing = name.endswith("_list")
    base = name[:-len("_list")] if listing else name
    mask = {cpu} if base in _ONE_CPU else topo.cpumask_of_node(nid)
    return cpulist(mask) if listing else cpumap(mask, topo.nr_cpu_ids)
