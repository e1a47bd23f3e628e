"""cgroupfs files from the model (kernel/cgroup/cgroup.c, mm/memcontrol.c show handlers)."""

from pseudofs.model.cgroup import INT_MAX
from pseudofs.model.memcg import STAT_KMEM, STAT_PERCPU
from pseudofs.render.memcg_stats import memory_events, memory_numa_stat, memory_stat, swap_events
from pseudofs.render.procfs import per_node, profile
from pseudofs.render.text import decimal, kv, limit


def _names(names) -> bytes:
    """cgroup.controllers / cgroup.subtree_control: space separated, nothing when empty."""
    return (" ".join(names) + "\n").encode() if names else b""


def controllers(model, cg) -> bytes:
    return _names(cg.controllers())


def subtree_control(model, cg) -> bytes:
    return _names([c for c in ("memory",) if c in cg.subtree_control])


def procs(model, cg) -> bytes:
    return "".join("%d\n" % pid for pid in cg.procs).encode()


def events(model, cg) -> bytes:
    return b"populated %d\nfrozen %d\n" % (cg.populated(), cg.frozen())


def cgroup_type(model, cg) -> bytes:
    return b"domain\n"


def max_value(value: int) -> bytes:
    return b"max\n" if value == INT_MAX else decimal(value)


def cgroup_stat(model, cg) -> bytes:
    return kv([("nr_descendants", cg.nr_descendants()),
               ("nr_subsys_memory", cg.nr_memory_csses()),
               ("nr_dying_descendants", 0),
               ("nr_dying_subsys_memory", 0)])


def stat_local(model, cg) -> bytes:
    return b"frozen_usec 0\n"


def cpu_stat(model, cg) -> bytes:
    return kv([("usage_usec", 0), ("user_usec", 0), ("system_usec", 0)])


# --- memory.* -----------------------------------------------------------------------------------
def memory_stat_file(model, memcg) -> bytes:
    values = {"percpu": memcg.stat(STAT_PERCPU), "kernel": memcg.stat(STAT_KMEM)}
    prof = profile(model)
    return memory_stat(values, model.page_size, prof, per_node(model),
                       "memory_hugetlb_accounting" in prof)


def memory_numa_stat_file(model, memcg) -> bytes:
    nids = model.topo.memory_nodes()
    values = {"percpu": {n: memcg.node_stat(n) for n in nids}} if per_node(model) else {}
    return memory_numa_stat(values, nids, model.page_size, profile(model), per_node(model))


def current(model, memcg) -> bytes:
    return decimal(max(memcg.memory.usage, 0) * model.page_size)


def counter_limit(model, memcg, field: str) -> bytes:
    return limit(getattr(memcg.memory, field), model.page_size, model.kernel.counter_max)


def events_file(model, memcg, local: bool) -> bytes:
    return memory_events(memcg.events_local if local else memcg.events, profile(model))


def swap_events_file(model, memcg) -> bytes:
    return swap_events({})


def zero(model, memcg) -> bytes:
    return b"0\n"
