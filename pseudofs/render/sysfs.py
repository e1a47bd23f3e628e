"""sysfs files from the model: /sys/devices/system/{cpu,node}/..."""

from pseudofs.render.bitmap import cpulist, cpumap, distance as _distance
from pseudofs.render.meminfo import node_meminfo as _node_meminfo, node_meminfo_labels, numastat as _numastat
from pseudofs.render.procfs import meminfo_values, per_node, vmstat_values
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
    return _node_meminfo(nid, [(label, v.get(label, 0)) for label in node_meminfo_labels()])


def node_numastat(model, nid: int) -> bytes:
    return _numastat({})


def node_vmstat(model, nid: int) -> bytes:
    names = node_vmstat_names(percpu_node_item=per_node(model))
    return _vmstat(names, vmstat_values(model, nid))
