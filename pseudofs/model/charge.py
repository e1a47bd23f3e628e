"""The kmem charge path the percpu allocator uses (mm/memcontrol.c, v6.18).

Model choice (README, Model choices): the stocks of one logical CPU, each holding one memcg
(page stock) or one obj_cgroup (byte stock) at a time.
"""

import errno
from typing import Optional

from pseudofs.errors import ModelError
from pseudofs.model.memcg import STAT_KMEM, Memcg, ObjCgroup

MEMCG_CHARGE_BATCH = 64
MAX_RECLAIM_RETRIES = 16
HZ = 250                              # CONFIG_HZ of Debian's x86-64 kernels
MEMCG_DELAY_PRECISION_SHIFT = 20
MEMCG_DELAY_SCALING_SHIFT = 14
PAGE_ALLOC_COSTLY_ORDER = 3


def get_order(nr_pages: int) -> int:
    order = 0
    while (1 << order) < nr_pages:
        order += 1
    return order


class Stocks:
    """memcg_stock (pages) and obj_stock (bytes) of the stock CPU."""

    STATE = ("cached", "nr_pages", "cached_objcg", "nr_bytes", "over_high_pages",
             "over_high_memcg")
    FIXED = ("page_size", "release_objcg")

    def __init__(self, page_size: int):
        self.page_size = page_size
        self.cached: Optional[Memcg] = None
        self.nr_pages = 0
        self.cached_objcg: Optional[ObjCgroup] = None
        self.nr_bytes = 0
        self.release_objcg = None        # callback(objcg) when the stock drops its reference
        # current->memcg_nr_pages_over_high and the memcg whose limits it is checked against.
        # Model choice: the charging context's memcg stands for the task's own memcg.
        self.over_high_pages = 0
        self.over_high_memcg: Optional[Memcg] = None

    # --- page stock -----------------------------------------------------------------------
    def consume_stock(self, memcg: Memcg, nr_pages: int) -> bool:
        if nr_pages > MEMCG_CHARGE_BATCH:
            return False
        if self.cached is memcg and self.nr_pages >= nr_pages:
            self.nr_pages -= nr_pages
            return True
        return False

    def drain_stock(self) -> None:
        if self.cached is not None and self.nr_pages:
            self.cached.memory.uncharge(self.nr_pages)
        self.nr_pages = 0
        self.cached = None

    def refill_stock(self, memcg: Memcg, nr_pages: int) -> None:
        if nr_pages > MEMCG_CHARGE_BATCH:
            memcg.memory.uncharge(nr_pages)
            return
        if self.cached is not memcg:
            self.drain_stock()
            self.cached = memcg
        self.nr_pages += nr_pages
        if self.nr_pages > MEMCG_CHARGE_BATCH:
            self.drain_stock()

    # --- obj stock ------------------------------------------------------------------------
    def consume_obj_stock(self, objcg: ObjCgroup, nr_bytes: int) -> bool:
        if self.cached_objcg is objcg and self.nr_bytes >= nr_bytes:
            self.nr_bytes -= nr_bytes
            return True
        return False

    def drain_obj_stock(self) -> None:
        old = self.cached_objcg
        if old is None:
            return
        if self.nr_bytes:
            nr_pages, rest = divmod(self.nr_bytes, self.page_size)
            if nr_pages:
                memcg = old.memcg
                memcg.mod_stat(STAT_KMEM, -nr_pages)
                if not memcg.is_root():
                    memcg.memory.uncharge(nr_pages)        # memcg_uncharge: no page stock
            old.nr_charged_bytes += rest
            self.nr_bytes = 0
        self.cached_objcg = None
        if self.release_objcg:
            self.release_objcg(old)

    def refill_obj_stock(self, objcg: ObjCgroup, nr_bytes: int, allow_uncharge: bool) -> None:
        if self.cached_objcg is not objcg:
            self.drain_obj_stock()
            self.nr_bytes = objcg.nr_charged_bytes
            objcg.nr_charged_bytes = 0
            self.cached_objcg = objcg
            allow_uncharge = True
        self.nr_bytes += nr_bytes
        nr_pages = 0
        if allow_uncharge and self.nr_bytes > self.page_size:
            nr_pages = self.nr_bytes // self.page_size
            self.nr_bytes %= self.page_size
        if nr_pages:
            self.obj_cgroup_uncharge_pages(objcg, nr_pages)

    def obj_cgroup_uncharge_pages(self, objcg: ObjCgroup, nr_pages: int) -> None:
        memcg = objcg.memcg
        memcg.mod_stat(STAT_KMEM, -nr_pages)
        if not memcg.is_root():
            self.refill_stock(memcg, nr_pages)

    def drain_all_stock(self, root: Memcg) -> None:
        """drain_all_stock(): the stocks of memcgs in root's subtree."""
        if self.cached is not None and self.nr_pages and self.cached.is_descendant_of(root):
            self.drain_stock()
        if self.cached_objcg is not None and self.cached_objcg.memcg.is_descendant_of(root):
            self.drain_obj_stock()

    def drain_all(self) -> None:
        """The stock CPU goes offline (memcg_hotplug_cpu_dead): everything is drained."""
        self.drain_obj_stock()
        self.drain_stock()

    # --- charge ---------------------------------------------------------------------------
    def try_charge_memcg(self, memcg: Memcg, nr_pages: int) -> None:
        """try_charge_memcg() for GFP_KERNEL_ACCOUNT with nothing reclaimable: raises ENOMEM
        after the kernel's retries, counting MEMCG_MAX per pass and MEMCG_OOM once."""
        batch = max(MEMCG_CHARGE_BATCH, nr_pages)
        retries = MAX_RECLAIM_RETRIES
        drained = False
        while True:
            if self.consume_stock(memcg, nr_pages):
                return
            failed = memcg.memory.try_charge(batch)
            if failed is None:
                if batch > nr_pages:
                    self.refill_stock(memcg, batch - nr_pages)
                self._note_over_high(memcg, batch)
                return
            over = failed.owner
            if batch > nr_pages:
                batch = nr_pages
                continue
            over.memory_event("max")
            # try_to_free_mem_cgroup_pages(): percpu memory is not reclaimable
            if over.memory.max - over.memory.usage >= nr_pages:
                continue
            if not drained:
                self.drain_all_stock(over)
                drained = True
                continue
            if retries:
                retries -= 1
                continue
            if get_order(nr_pages) <= PAGE_ALLOC_COSTLY_ORDER:
                over.memory_event("oom")      # mem_cgroup_oom(); model choice: nobody is killed
            raise ModelError(errno.ENOMEM, "memory.max reached")

    # --- memory.high (events only: nothing percpu is reclaimable) -----------------------------
    def _note_over_high(self, memcg: Memcg, batch: int) -> None:
        """try_charge_memcg()'s done_restock: the first level above its high marks the task."""
        for m in memcg.ancestors():
            if m.memory.usage > m.memory.high:
                self.over_high_pages += batch
                self.over_high_memcg = memcg
                if self.over_high_pages > MEMCG_CHARGE_BATCH:
                    self.handle_over_high()      # handled inline past one batch
                return

    def _reclaim_high(self, memcg: Memcg) -> None:
        """reclaim_high(): MEMCG_HIGH on every level over its high, root excluded."""
        for m in memcg.ancestors():
            if m.is_root():
                break
            if m.memory.usage > m.memory.high:
                m.memory_event("high")

    @staticmethod
    def _max_overage(memcg: Memcg) -> int:
        """mem_find_max_overage(): ((usage - high) << 20) / high, the largest below the root."""
        worst = 0
        for m in memcg.ancestors():
            if m.is_root():
                break
            usage, high = m.memory.usage, m.memory.high
            if usage > high:
                high = max(high, 1)
                worst = max(worst, ((usage - high) << MEMCG_DELAY_PRECISION_SHIFT) // high)
        return worst

    def handle_over_high(self) -> None:
        """__mem_cgroup_handle_over_high() on return to user space: reclaim (counting HIGH),
        and while the throttling penalty is above HZ/100, up to MAX_RECLAIM_RETRIES more
        passes; the sleep itself is not modeled."""
        nr_pages, memcg = self.over_high_pages, self.over_high_memcg
        self.over_high_pages, self.over_high_memcg = 0, None
        if not nr_pages or memcg is None:
            return
        retries = MAX_RECLAIM_RETRIES
        while True:
            self._reclaim_high(memcg)
            overage = self._max_overage(memcg)
            penalty = ((overage * overage * HZ) >> MEMCG_DELAY_PRECISION_SHIFT
                       >> MEMCG_DELAY_SCALING_SHIFT) * nr_pages // MEMCG_CHARGE_BATCH
            if penalty <= HZ // 100 or not retries:
                return
            retries -= 1

    def obj_cgroup_charge(self, objcg: ObjCgroup, size: int) -> None:
        if self.cached_objcg is objcg and self.nr_bytes >= size:     # consume_obj_stock()
            self.nr_bytes -= size
            return
        nr_pages, nr_bytes = divmod(size, self.page_size)
        if nr_bytes:
            nr_pages += 1
        memcg = objcg.memcg
        self.try_charge_memcg(memcg, nr_pages)
        memcg.mod_stat(STAT_KMEM, nr_pages)
        if nr_bytes:
            self.refill_obj_stock(objcg, self.page_size - nr_bytes, False)

    def obj_cgroup_uncharge(self, objcg: ObjCgroup, size: int) -> None:
        self.refill_obj_stock(objcg, size, True)
