"""Node memory and the node stat NR_PERCPU_B (the patch's hunks in mm/percpu-vm.c).

Pages for a CPU come from the CPU's node, or from the nearest node with free memory
(the page allocator's fallback for memoryless nodes); ENOMEM only when no node has them.
"""

import errno
from typing import Dict, Iterable, Optional

from pseudofs.errors import ModelError
from pseudofs.model.topology import Topology


class NodeStat:
    STATE = ("free_pages", "nr_percpu")
    CACHE = ("_per_node",)
    FIXED = ("topo", "page_size", "per_node", "total_pages")

    def __init__(self, topo: Topology, page_size: int, per_node: bool):
        self.topo = topo
        self.page_size = page_size
        self.per_node = per_node
        self.total_pages: Dict[int, int] = {n: topo.nodes[n].memory // page_size
                                            for n in topo.node_ids}
        self.free_pages: Dict[int, int] = dict(self.total_pages)
        self.nr_percpu: Dict[int, int] = {n: 0 for n in topo.node_ids}   # pages, signed
        self._per_node: Optional[Dict[int, int]] = None

    # --- physical pages ------------------------------------------------------------------
    def possible_per_node(self) -> Dict[int, int]:
        """Possible CPUs per cpu_to_node() node (cpu_possible_mask is fixed at boot)."""
        if self._per_node is None:
            self._per_node = {}
            for cpu in self.topo.possible:
                nid = self.topo.cpu_to_node(cpu)
                self._per_node[nid] = self._per_node.get(nid, 0) + 1
        return self._per_node

    def alloc_pages(self, cpus: Optional[Iterable[int]], nr_pages: int) -> Dict[int, int]:
        """pcpu_alloc_pages(): `nr_pages` pages for every CPU in `cpus` (None: every possible
        CPU), each on its node or the nearest with memory. All or nothing: ENOMEM leaves every
        node untouched. Returns {nid: pages taken}."""
        want: Dict[int, int] = {}
        if cpus is None:
            want = {nid: n * nr_pages for nid, n in self.possible_per_node().items()}
        else:
            for cpu in cpus:
                nid = self.topo.cpu_to_node(cpu)
                want[nid] = want.get(nid, 0) + nr_pages
        taken: Dict[int, int] = {}
        free = dict(self.free_pages)
        for nid in sorted(want):
            need = want[nid]
            for src in self.topo.fallback_order(nid):
                got = min(need, free[src])
                if got:
                    free[src] -= got
                    taken[src] = taken.get(src, 0) + got
                    need -= got
                if not need:
                    break
            if need:
                raise ModelError(errno.ENOMEM, "out of node memory for percpu pages")
        self.free_pages = free
        return taken

    def free_pages_to(self, taken: Dict[int, int]) -> None:
        for nid, n in taken.items():
            self.free_pages[nid] += n

    # --- NR_PERCPU_B ---------------------------------------------------------------------
    def mod_percpu(self, nr_pages: int, sign: int) -> None:
        """The patch: for_each_node, NR_PERCPU_B += sign * nr_pages * nr_cpus_node * PAGE_SIZE,
        stored in pages (vmstat_item_in_bytes). Upstream has no such stat."""
        if not self.per_node:
            return
        for nid in self.topo.node_ids:
            self.nr_percpu[nid] += sign * nr_pages * self.topo.nr_cpus_node(nid)

    def used_pages(self, nid: int) -> int:
        return self.total_pages[nid] - self.free_pages[nid]

