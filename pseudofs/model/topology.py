"""NUMA topology: nodes, possible/present/online CPUs, distances, CPU hotplug.

Mirrors the masks the kernel keeps (cpu_possible_mask, cpu_present_mask, cpu_online_mask,
cpumask_of_node) and the helpers the percpu code uses (nr_cpus_node, num_possible_cpus).
"""

import errno
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from pseudofs.errors import ModelError

LOCAL_DISTANCE = 10    # include/linux/topology.h
REMOTE_DISTANCE = 20
MAX_NR_CPUS = 8192     # largest x86-64 NR_CPUS (CONFIG_MAXSMP)
MAX_NUMNODES = 1024    # 1 << NODES_SHIFT (10 with CONFIG_MAXSMP)


@dataclass(frozen=True)
class Node:
    id: int
    cpus: FrozenSet[int]            # present CPUs of the node
    hotplug_cpus: FrozenSet[int]    # possible, not present
    memory: int                     # bytes
    distances: Optional[Tuple[int, ...]] = None   # to every node id in ascending order


class Topology:
    """The machine's CPUs and nodes. Only `online` changes at run time (CPU hotplug)."""

    STATE = ("online", "generation")
    CACHE = ("_nr_cpus_node",)
    FIXED = ("nodes", "node_ids", "nr_cpus", "present", "possible", "_cpu_node", "nr_cpu_ids",
             "nr_node_ids", "_dist")

    def __init__(self, nodes: Sequence[Node], possible: Optional[FrozenSet[int]] = None,
                 online: Optional[FrozenSet[int]] = None, nr_cpus: int = 512):
        self.nodes: Dict[int, Node] = {n.id: n for n in sorted(nodes, key=lambda n: n.id)}
        self.node_ids: List[int] = sorted(self.nodes)
        self.nr_cpus = nr_cpus
        self.present: FrozenSet[int] = frozenset().union(*(n.cpus for n in nodes))
        listed = self.present.union(*(n.hotplug_cpus for n in nodes))
        self.possible: FrozenSet[int] = frozenset(possible) if possible is not None else listed
        self.online = set(online if online is not None else self.present)
        # bumped by every hotplug change (set_online is the only writer of `online`):
        # per-node figures derived from the online mask may be cached on it
        self.generation = 0
        self._nr_cpus_node: Dict[int, int] = {}
        # cpu -> node for every CPU a node lists; possible CPUs no node lists have none
        self._cpu_node: Dict[int, int] = {}
        for n in nodes:
            for c in n.cpus | n.hotplug_cpus:
                self._cpu_node[c] = n.id
        self.nr_cpu_ids = max(self.possible) + 1 if self.possible else 1
        self.nr_node_ids = max(self.node_ids) + 1 if self.node_ids else 1
        self._dist = self._distance_table()

    # --- masks -------------------------------------------------------------------------
    def num_possible_cpus(self) -> int:
        return len(self.possible)

    def node_of(self, cpu: int) -> Optional[int]:
        """The node that lists `cpu`, or None for a possible CPU no node lists."""
        return self._cpu_node.get(cpu)

    def cpu_to_node(self, cpu: int) -> int:
        """cpu_to_node(): CPUs no node lists are grouped with node 0 (README, Configuration)."""
        nid = self._cpu_node.get(cpu)
        return self.node_ids[0] if nid is None else nid

    def cpumask_of_node(self, nid: int) -> FrozenSet[int]:
        """The node's CPU mask: its online CPUs (x86 removes a CPU from it on offline)."""
        node = self.nodes[nid]
        return frozenset(c for c in node.cpus if c in self.online)

    def nr_cpus_node(self, nid: int) -> int:
        n = self._nr_cpus_node.get(nid)
        if n is None:
            n = self._nr_cpus_node[nid] = len(self.cpumask_of_node(nid))
        return n

    def has_memory(self, nid: int) -> bool:
        return self.nodes[nid].memory > 0

    def has_cpu(self, nid: int) -> bool:
        return self.nr_cpus_node(nid) > 0

    def memory_nodes(self) -> List[int]:
        """N_MEMORY: the nodes memory.numa_stat lists."""
        return [n for n in self.node_ids if self.has_memory(n)]

    def offline_cpus(self) -> FrozenSet[int]:
        """cpu/offline: possible CPUs that are not online (drivers/base/cpu.c print_cpus_offline)."""
        return frozenset(c for c in self.possible if c not in self.online)

    # --- distances -----------------------------------------------------------------------
    def _distance_table(self) -> Dict[Tuple[int, int], int]:
        table = {}
        for a in self.node_ids:
            given = self.nodes[a].distances
            for i, b in enumerate(self.node_ids):
                if given is not None:
                    table[(a, b)] = given[i]
                else:
                    table[(a, b)] = LOCAL_DISTANCE if a == b else REMOTE_DISTANCE
        return table

    def distance(self, a: int, b: int) -> int:
        return self._dist[(a, b)]

    def fallback_order(self, nid: int) -> List[int]:
        """Nodes with memory, nearest first, ties by lowest id (the page allocator's zonelist)."""
        return sorted(self.memory_nodes(), key=lambda m: (self.distance(nid, m), m))

    # --- hotplug -------------------------------------------------------------------------
    def set_online(self, cpu: int, online: bool) -> bool:
        """cpuN/online: returns True when the state changed. The last online CPU is EBUSY."""
        if cpu not in self.present:
            raise ModelError(errno.ENODEV, f"cpu{cpu} is not present")
        if online == (cpu in self.online):
            return False
        if not online and len(self.online) == 1:
            raise ModelError(errno.EBUSY, "cannot offline the last online CPU")
        if online:
            self.online.add(cpu)
        else:
            self.online.discard(cpu)
        self.generation += 1
        self._nr_cpus_node.clear()
        return True
