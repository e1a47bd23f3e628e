"""A memcg's life: mem_cgroup_css_alloc (its own percpu, charged to the parent) and
css_offline + release (reparenting, then freeing what it allocated)."""

from typing import List, TYPE_CHECKING

from pseudofs.model.memcg import Memcg

if TYPE_CHECKING:       # pragma: no cover
    from pseudofs.model.kernel import Kernel

# mem_cgroup_alloc(): per-CPU sizes of its structures on x86-64 with every option on
VMSTATS_PERCPU = 1280            # struct memcg_vmstats_percpu, 64-byte aligned type
VMSTATS_ALIGN = 64
MEMCG1_EVENTS_PERCPU = 24        # struct memcg1_events_percpu (CONFIG_MEMCG_V1)
LRUVEC_STATS_PERCPU = {"memcg": 752, "per-node": 768}   # 2 x NR_MEMCG_NODE_STAT_ITEMS x 8


def own_percpu_sizes(k: "Kernel") -> List[tuple]:
    """(size, align) of every percpu object mem_cgroup_alloc() makes, in its order:
    vmstats_percpu, the v1 event counters, then one lruvec stats block per possible node."""
    lru = LRUVEC_STATS_PERCPU[k.accounting]
    return ([(VMSTATS_PERCPU, VMSTATS_ALIGN), (MEMCG1_EVENTS_PERCPU, 8)]
            + [(lru, 8) for _ in k.topo.node_ids])


def memcg_online(k: "Kernel", cgroup) -> None:
    """mem_cgroup_css_alloc() + css_online for `cgroup` (whose parent enabled memory).
    The structures are charged to the parent's memcg (set_active_memcg(parent)); nothing is
    charged when that is the root. ENOMEM leaves everything as it was (caller's transaction)."""
    parent = cgroup.parent.nearest_memcg()
    memcg = Memcg(cgroup, parent, k.topo.node_ids, k.counter_max)
    objs = []
    for size, align in own_percpu_sizes(k):
        objs.append(k.pcpu_alloc(size, align, parent.objcg, account=True))
    memcg.own_objects = objs
    cgroup.memcg = memcg
    cgroup.memcg_count(+1)


def memcg_offline(k: "Kernel", cgroup) -> None:
    """css_offline + (at once, since nothing holds a dying memcg) css_free."""
    memcg = cgroup.memcg
    parent = memcg.parent
    memcg.online = False
    memcg.memory.min = memcg.memory.low = 0
    # memcg_reparent_objcgs(): the objcg now resolves to the parent
    for objcg in memcg.objcg_list:
        objcg.memcg = parent
    parent.objcg_list.extend(memcg.objcg_list)
    memcg.objcg_list = []
    # drain_all_stock(memcg): only page-stock slots of the dying memcg holding pages
    st = k.stocks
    if st.cached is memcg and st.nr_pages:
        st.drain_stock()
    elif st.cached is memcg:
        st.cached = None
    k.objcg_put_check(memcg.objcg)
    cgroup.memcg = None
    cgroup.memcg_count(-1)
    # release: free its own percpu structures, uncharging the parent's objcg
    for obj in memcg.own_objects:
        k.pcpu_free(obj)
    memcg.own_objects = []
