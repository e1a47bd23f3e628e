"""The modeled kernel: topology, node stats, the percpu allocator with its memcg hooks,
the stocks and the cgroup root. No files, no FUSE, no text formats."""

import contextlib
from typing import Dict, Iterable, List, Optional

from pseudofs.model import state
from pseudofs.model.cgroup import Cgroup
from pseudofs.model.limits import page_counter_max
from pseudofs.model.charge import Stocks
from pseudofs.model.memcg import STAT_PERCPU, Memcg, ObjCgroup
from pseudofs.model.nodestat import NodeStat
from pseudofs.model.percpu import PercpuAllocator
from pseudofs.model.topology import Topology

OBJ_CGROUP_PTR = 8       # sizeof(struct obj_cgroup *) on 64-bit
ACCOUNTING_MODES = ("per-node", "memcg")    # the patch, upstream


def mult_frac(x: int, n: int, d: int) -> int:
    """include/linux/math.h mult_frac(): (x / d) * n + ((x % d) * n) / d, floor division."""
    q, r = divmod(x, d)
    return q * n + r * n // d


class PercpuObject:
    """One live percpu object: where it sits and the obj_cgroup it was charged to."""

    STATE = ("objcg",)
    FIXED = ("chunk", "bit_off", "size")
    __slots__ = STATE + FIXED

    def state_key(self):
        return ("object", self.chunk.id, self.bit_off)

    def __init__(self, chunk, bit_off: int, size: int, objcg: Optional[ObjCgroup]):
        self.chunk, self.bit_off, self.size, self.objcg = chunk, bit_off, size, objcg


class Kernel:
    CACHE = ("_charges", "_charges_gen")
    FIXED = ("topo", "accounting", "per_node", "page_size", "counter_max", "_nr_possible",
             "nodestat", "pcpu", "stocks", "root")

    def __init__(self, topo: Topology, accounting: str, page_size: int, static_size: int,
                 reserved_size: int, dyn_size: int, atom_size: int, first_chunk_free: int = 0):
        assert accounting in ACCOUNTING_MODES
        self.topo = topo
        self.accounting = accounting
        self.per_node = accounting == "per-node"
        self.page_size = page_size
        self.counter_max = page_counter_max(page_size)
        self._nr_possible = topo.num_possible_cpus()     # cpu_possible_mask is fixed at boot
        self._charges: Dict[int, tuple] = {}       # _node_updates cache: +-size -> updates
        self._charges_gen = topo.generation
        self.nodestat = NodeStat(topo, page_size, accounting == "per-node")
        self.pcpu = PercpuAllocator(topo, self.nodestat, page_size, static_size, reserved_size,
                                    dyn_size, atom_size, first_chunk_free)
        self.stocks = Stocks(page_size)
        self.stocks.release_objcg = self.objcg_put_check
        self.root = Cgroup("", None)
        self.root.memcg = Memcg(self.root, None, topo.node_ids, self.counter_max)
        self.root.subtree_control = set()

    # --- sizes ---------------------------------------------------------------------------------
    def pcpu_obj_full_size(self, size: int) -> int:
        """mm/percpu-internal.h pcpu_obj_full_size(): every possible CPU's copy + obj_exts."""
        return size * self._nr_possible + size // 4 * OBJ_CGROUP_PTR

    def node_charges(self, size: int) -> Dict[int, int]:
        """The patch's pcpu_mod_memcg_lruvec(): per node n*S + mult_frac(extra, n, P),
        nodes without online CPUs skipped; evaluated with the topology of the moment."""
        extra = size // 4 * OBJ_CGROUP_PTR
        p = self.topo.num_possible_cpus()
        out = {}
        for nid in self.topo.node_ids:
            n = self.topo.nr_cpus_node(nid)
            if n:
                out[nid] = n * size + mult_frac(extra, n, p)
        return out

    def _node_updates(self, size: int, sign: int) -> tuple:
        """node_charges(size) times sign as ((nid, bytes), ...) and their sum, cached per
        signed size for the current hotplug generation (the hot path of every object)."""
        if self._charges_gen != self.topo.generation:
            self._charges.clear()
            self._charges_gen = self.topo.generation
        upd = self._charges.get(sign * size)
        if upd is None:
            items = tuple((nid, sign * v) for nid, v in self.node_charges(size).items())
            upd = self._charges[sign * size] = (items, sum(v for _, v in items))
        return upd

    def _account(self, memcg: Memcg, size: int, sign: int) -> None:
        if self.per_node:               # the patch: pcpu_mod_memcg_lruvec()
            upd = (self._charges.get(sign * size)
                   if self._charges_gen == self.topo.generation else None)
            if upd is None:
                upd = self._node_updates(size, sign)
            memcg.mod_lruvecs(upd[0], upd[1])
        else:                           # upstream: MEMCG_PERCPU_B += pcpu_obj_full_size()
            memcg.mod_stat(STAT_PERCPU,
                           sign * (size * self._nr_possible + size // 4 * OBJ_CGROUP_PTR))

    # --- alloc / free (pcpu_alloc / free_percpu with the memcg hooks) ------------------------------
    def pcpu_alloc(self, size: int, align: int, objcg: Optional[ObjCgroup],
                   account: bool = True) -> PercpuObject:
        size4, align = self.pcpu.check_request(size, align)
        if objcg is not None and (not account or objcg.memcg.parent is None):
            objcg = None        # no __GFP_ACCOUNT, or the root objcg: nothing is charged
        full = size4 * self._nr_possible + size4 // 4 * OBJ_CGROUP_PTR   # pcpu_obj_full_size
        if objcg is not None:
            self.stocks.obj_cgroup_charge(objcg, full)
        try:
            chunk, bit_off = self.pcpu.alloc_checked(size4, align)
        except Exception:
            if objcg is not None:
                self.stocks.obj_cgroup_uncharge(objcg, full)
            raise
        if objcg is not None and not chunk.has_obj_exts:
            self.stocks.obj_cgroup_uncharge(objcg, full)     # first chunk: not accounted
            objcg = None
        obj = PercpuObject(chunk, bit_off, size4, objcg)
        if objcg is not None:
            objcg.nr_objects += 1
            self._account(objcg.memcg, size4, +1)
        return obj

    def pcpu_free(self, obj: PercpuObject) -> None:
        self.pcpu.free(obj.chunk, obj.bit_off)
        objcg = obj.objcg
        if objcg is not None:
            self.stocks.obj_cgroup_uncharge(objcg, self.pcpu_obj_full_size(obj.size))
            self._account(objcg.memcg, obj.size, -1)
            objcg.nr_objects -= 1
            obj.objcg = None
            if not objcg.nr_objects:
                self.objcg_put_check(objcg)

    def objcg_put_check(self, objcg: ObjCgroup) -> None:
        """obj_cgroup_release() once nothing holds the objcg: its memcg is gone, no object
        and no stock refer to it. Whole pages left in nr_charged_bytes are uncharged."""
        if (objcg.nr_objects or self.stocks.cached_objcg is objcg
                or objcg.memcg.objcg is objcg and objcg.memcg.online):
            return
        if objcg.memcg.objcg is objcg:
            return
        nr_pages = objcg.nr_charged_bytes // self.page_size
        objcg.nr_charged_bytes = 0
        memcg = objcg.memcg
        if nr_pages:
            memcg.mod_stat("kernel", -nr_pages)
            if not memcg.is_root():
                memcg.memory.uncharge(nr_pages)
        if objcg in memcg.objcg_list:
            memcg.objcg_list.remove(objcg)

    def end_of_command(self) -> None:
        """Deferred work runs when the command that scheduled it ends (model choice), and the
        writer returns to user space (memory.high handling)."""
        self.pcpu.balance()
        self.stocks.handle_over_high()

    # --- transactions ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, memcgs: Iterable[Memcg]):
        """All or nothing: on an exception everything but the memcg events is restored."""
        snap = self._snapshot(memcgs)
        try:
            yield
        except BaseException:
            self._restore(snap)
            self.stocks.over_high_pages, self.stocks.over_high_memcg = 0, None
            raise
        self.pcpu.commit(snap[1])

    def _touched(self, memcgs: Iterable[Memcg]) -> List[Memcg]:
        seen: Dict[int, Memcg] = {}
        extra = [self.stocks.cached]
        if self.stocks.cached_objcg is not None:
            extra.append(self.stocks.cached_objcg.memcg)
        for m in list(memcgs) + extra:
            while m is not None and id(m) not in seen:
                seen[id(m)] = m
                m = m.parent
        return list(seen.values())

    def _snapshot(self, memcgs: Iterable[Memcg]) -> tuple:
        self.root.memcg.flush_node_stats()      # per-node values settled: restorable as such
        ms = self._touched(memcgs)
        objcgs = [o for m in ms for o in m.objcg_list]
        if self.stocks.cached_objcg is not None:
            objcgs.append(self.stocks.cached_objcg)
        saved = [(o, state.snapshot(o))
                 for o in [*ms, *(m.memory for m in ms), *objcgs, self.stocks, self.nodestat]]
        return saved, self.pcpu.snapshot()

    def _restore(self, snap: tuple) -> None:
        saved, pcpu = snap
        dirty = self.root.memcg._dirty_list     # marks made by the failed command: undone
        for m in dirty:
            m._dirty = False
        dirty.clear()
        for obj, s in saved:
            state.restore(obj, s)
        self.pcpu.restore(pcpu)
