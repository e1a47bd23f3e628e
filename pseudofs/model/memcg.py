"""Memory cgroups: page counters, obj_cgroups, hierarchical stats and events (mm/memcontrol.c).

Every stat update walks the ancestors once, so reading a hierarchical value is O(1) and an
update costs the depth of the tree, not its size. The per-node percpu counters (the patch's
lruvec NR_PERCPU_B, updated for every node on every object) are propagated to the ancestors
lazily instead, as the kernel's rstat does: an update marks the memcg, a read flushes the
marked ones first.
"""

from typing import Dict, List, Optional, Tuple

MEMCG_EVENTS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill", "sock_throttled")
STAT_PERCPU = "percpu"        # bytes, memcg-wide (upstream MEMCG_PERCPU_B or sum of NR_PERCPU_B)
STAT_KMEM = "kernel"          # pages (MEMCG_KMEM)


class PageCounter:
    """struct page_counter (mm/page_counter.c), hierarchical through `parent`."""

    STATE = ("usage", "max", "high", "low", "min", "watermark", "local_watermark",
             "swap_max", "swap_high", "zswap_max", "swap_peak")
    FIXED = ("parent", "owner")
    __slots__ = STATE + FIXED

    def state_key(self):
        return self.owner.state_key() + ("memory",)

    def __init__(self, parent: Optional["PageCounter"], counter_max: int, owner=None):
        self.owner = owner              # the Memcg whose `memory` counter this is
        self.usage = 0
        self.max = self.high = counter_max
        self.swap_max = self.swap_high = self.zswap_max = counter_max
        self.low = self.min = 0
        self.watermark = self.local_watermark = self.swap_peak = 0
        self.parent = parent

    def chain(self):
        c = self
        while c is not None:
            yield c
            c = c.parent

    def try_charge(self, nr: int) -> Optional["PageCounter"]:
        """page_counter_try_charge(): None on success, else the counter that hit its max.
        Levels below the failing one keep their raised watermarks, as in the kernel
        (no failcnt on cgroup v2)."""
        done = []
        for c in self.chain():
            new = c.usage + nr
            if new > c.max:
                for d in done:
                    d.usage -= nr
                return c
            c.usage = new
            c._raise_watermarks()
            done.append(c)
        return None

    def _raise_watermarks(self) -> None:
        if self.usage > self.local_watermark:
            self.local_watermark = self.usage
        if self.usage > self.watermark:
            self.watermark = self.usage

    def charge(self, nr: int) -> None:
        for c in self.chain():
            c.usage += nr
            c._raise_watermarks()

    def uncharge(self, nr: int) -> None:
        for c in self.chain():
            c.usage -= nr


class Memcg:
    """struct mem_cgroup: counters local to it and hierarchical (itself + descendants)."""

    STATE = ("local", "hier", "node_local", "node_hier", "events_local", "events", "oom_group",
             "zswap_writeback", "objcg_list", "own_objects", "peak_fds", "online")
    CACHE = ("_node_flushed", "_dirty")     # the rstat flush's bookkeeping
    KEPT = ("events_local", "events")       # a refused charge still counts max/oom
    FIXED = ("cgroup", "parent", "chain", "memory", "_dirty_list", "objcg")

    def state_key(self):
        return ("memcg", self.cgroup.path)

    def __init__(self, cgroup, parent: Optional["Memcg"], node_ids: List[int], counter_max: int):
        self.cgroup = cgroup                      # the Cgroup this memcg belongs to
        self.parent = parent
        self.chain: List["Memcg"] = [self] + (parent.chain if parent else [])   # ancestors()
        self.memory = PageCounter(parent.memory if parent else None, counter_max, self)
        self.local: Dict[str, int] = {}           # stat -> value (sparse: absent means 0)
        self.hier: Dict[str, int] = {}
        # per-node NR_PERCPU_B (lruvec), bytes: own updates, and hierarchical values as of the
        # last flush; `_node_flushed` is the part of node_local already in the ancestors
        self.node_local: Dict[int, int] = dict.fromkeys(node_ids, 0)
        self.node_hier: Dict[int, int] = dict.fromkeys(node_ids, 0)
        self._node_flushed: Dict[int, int] = dict.fromkeys(node_ids, 0)
        self._dirty = False
        self._dirty_list: List["Memcg"] = parent._dirty_list if parent else []   # per tree
        self.events_local: Dict[str, int] = {}
        self.events: Dict[str, int] = {}
        self.oom_group = 0
        self.zswap_writeback = 1
        self.objcg = ObjCgroup(self)
        self.objcg_list = [self.objcg]            # its own objcg + those reparented to it
        self.own_objects: List = []               # this memcg's own percpu structures
        self.peak_fds: Dict[object, int] = {}     # memory.peak files written to (per-fd value)
        self.online = True

    def is_root(self) -> bool:
        return self.parent is None

    def ancestors(self):
        m = self
        while m is not None:
            yield m
            m = m.parent

    def mod_stat(self, item: str, delta: int) -> None:
        """mod_memcg_state(): local on this memcg, hierarchical on it and every ancestor."""
        local = self.local
        local[item] = local.get(item, 0) + delta
        for m in self.chain:
            hier = m.hier
            hier[item] = hier.get(item, 0) + delta

    def mod_lruvec(self, nid: int, delta: int) -> None:
        """mod_memcg_lruvec_state() for NR_PERCPU_B: the node's lruvec and the memcg total."""
        self.mod_lruvecs(((nid, delta),), delta)

    def mod_lruvecs(self, items: Tuple[Tuple[int, int], ...], total: int) -> None:
        """mod_lruvec() for every (nid, bytes) of `items` (signed; `total` is their sum), as
        the patch's loop over the nodes does; the memcg total gets the sum in one update."""
        node_local = self.node_local            # a counter for every possible node
        for nid, v in items:
            node_local[nid] += v
        if not self._dirty:                     # memcg_rstat_updated()
            self._dirty = True
            self._dirty_list.append(self)
        local = self.local                      # mod_stat(STAT_PERCPU, total), inlined
        local[STAT_PERCPU] = local.get(STAT_PERCPU, 0) + total
        for m in self.chain:
            hier = m.hier
            hier[STAT_PERCPU] = hier.get(STAT_PERCPU, 0) + total

    def flush_node_stats(self) -> None:
        """The rstat flush (whole tree): every marked memcg's unflushed per-node updates go to
        it and its ancestors. A removed memcg's marks are flushed the same way, so what it
        contributed stays in its ancestors."""
        dirty = self._dirty_list
        while dirty:
            m = dirty.pop()
            m._dirty = False
            flushed = m._node_flushed
            for nid, v in m.node_local.items():
                d = v - flushed.get(nid, 0)
                if d:
                    flushed[nid] = v
                    for a in m.chain:
                        a.node_hier[nid] = a.node_hier.get(nid, 0) + d

    def stat(self, item: str) -> int:
        return self.hier.get(item, 0)

    def node_stat(self, nid: int) -> int:
        """The hierarchical per-node value (memory.numa_stat)."""
        if self._dirty_list:
            self.flush_node_stats()
        return self.node_hier.get(nid, 0)

    def memory_event(self, event: str) -> None:
        """memcg_memory_event(): local count, then hierarchical up to (not into) the root."""
        self.events_local[event] = self.events_local.get(event, 0) + 1
        m = self
        while m is not None and not m.is_root():
            m.events[event] = m.events.get(event, 0) + 1
            m = m.parent

    def is_descendant_of(self, other: "Memcg") -> bool:
        return any(m is other for m in self.ancestors())


class ObjCgroup:
    """struct obj_cgroup: re-pointed to the parent memcg when its memcg goes offline."""

    STATE = ("memcg", "nr_charged_bytes", "nr_objects")
    FIXED = ("origin",)

    def __init__(self, memcg: Memcg):
        self.origin = memcg.cgroup.path      # the cgroup it was made for: its stable name
        self.memcg = memcg
        self.nr_charged_bytes = 0
        self.nr_objects = 0        # live percpu objects charged through it (the refcount)

    def state_key(self):
        return ("objcg", self.origin)
