"""The percpu allocator (mm/percpu.c, mm/percpu-vm.c): chunks on slot lists, first fit,
population on demand, and the balance work, run synchronously when a command ends."""

import errno
from typing import Dict, List, Optional, Tuple

from pseudofs.errors import ModelError
from pseudofs.model import state
from pseudofs.model.chunk import PCPU_MIN_ALLOC_SIZE, PercpuChunk
from pseudofs.model.nodestat import NodeStat
from pseudofs.model.topology import Topology
from pseudofs.model.units import PCPU_MIN_UNIT_SIZE, build_alloc_info

PCPU_SLOT_BASE_SHIFT = 5
PCPU_SLOT_FAIL_THRESHOLD = 3
PCPU_EMPTY_POP_PAGES_LOW = 2
PCPU_EMPTY_POP_PAGES_HIGH = 4
BOOT_ALLOC_SIZE = 4096      # model choice: boot-time allocations fill the first chunk in 4 KiB areas


def _fls(x: int) -> int:
    return x.bit_length()


class PercpuAllocator:
    STATE = ("lists", "nr_populated", "nr_empty_pop_pages", "atomic_alloc_failed",
             "need_balance", "_next_id", "stats")
    FIXED = ("topo", "nodestat", "info", "_txns", "page_size", "unit_size", "unit_pages",
             "sidelined_slot", "free_slot", "to_depopulate_slot", "reserved_chunk",
             "first_chunk")

    def __init__(self, topo: Topology, nodestat: NodeStat, page_size: int, static_size: int,
                 reserved_size: int, dyn_size: int, atom_size: int, first_chunk_free: int = 0):
        self._txns: List[dict] = []     # open transactions (snapshot/commit/restore)
        self.topo = topo
        self.nodestat = nodestat
        self.page_size = page_size
        self.info = build_alloc_info(topo, static_size, reserved_size, dyn_size, atom_size,
                                     page_size)
        self.unit_size = self.info.unit_size
        self.unit_pages = self.unit_size // page_size
        # pcpu_setup_first_chunk: slot layout
        self.sidelined_slot = self.size_to_slot(self.unit_size, raw=True) + 1
        self.free_slot = self.sidelined_slot + 1
        self.to_depopulate_slot = self.free_slot + 1
        self.lists: List[List[PercpuChunk]] = [[] for _ in range(self.to_depopulate_slot + 1)]
        self.nr_populated = 0           # pcpu_nr_populated: pages per unit, all chunks
        self.nr_empty_pop_pages = 0     # pcpu_nr_empty_pop_pages
        self.atomic_alloc_failed = False
        self.need_balance = False
        self._next_id = 0
        self.stats = {"nr_alloc": 0, "nr_dealloc": 0, "nr_cur_alloc": 0, "nr_max_alloc": 0,
                      "nr_chunks": 0, "nr_max_chunks": 0,
                      "min_alloc_size": self.unit_size, "max_alloc_size": 0}
        self.reserved_chunk = None
        info = self.info
        if info.reserved_size:
            self.reserved_chunk = self._first_chunk_like(info.static_size, info.reserved_size)
        self.first_chunk = self._first_chunk_like(info.static_size + info.reserved_size,
                                                  info.dyn_size)
        self.nr_populated += (info.static_size + info.reserved_size + info.dyn_size) // page_size
        self._stats_chunk_alloc()
        self.nr_empty_pop_pages = self.first_chunk.nr_empty_pop_pages
        self.relocate(self.first_chunk, -1)
        self._boot_allocations(first_chunk_free)

    # --- construction ------------------------------------------------------------------------
    def _first_chunk_like(self, tmp: int, map_size: int) -> PercpuChunk:
        """pcpu_alloc_first_chunk(): a region of whole pages around [tmp, tmp + map_size)."""
        start_offset = tmp % self.page_size
        region = -(-(start_offset + map_size) // self.page_size) * self.page_size
        chunk = PercpuChunk(self._new_id(), region // self.page_size, self.page_size,
                            start_offset=start_offset, map_size=map_size, immutable=True,
                            has_obj_exts=False)
        chunk.populated[:] = b"\x01" * chunk.nr_pages
        chunk.nr_populated = chunk.nr_pages
        chunk.nr_empty_pop_pages = chunk.empty_populated_pages()
        return chunk

    def _boot_allocations(self, first_chunk_free: int) -> None:
        """Model choice: the boot leaves the first chunk's dynamic area taken but for
        `first_chunk_free` bytes, by unaccounted allocations of up to 4 KiB."""
        left = (self.first_chunk.free_bytes - first_chunk_free) // PCPU_MIN_ALLOC_SIZE * 4
        while left > 0:
            size = min(BOOT_ALLOC_SIZE, left)
            self.alloc(size, PCPU_MIN_ALLOC_SIZE)
            left -= size
        self.balance()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def create_chunk(self) -> PercpuChunk:
        """pcpu_create_chunk(): a dynamic chunk, nothing populated."""
        chunk = PercpuChunk(self._new_id(), self.unit_pages, self.page_size)
        self._stats_chunk_alloc()
        return chunk

    # --- slots -------------------------------------------------------------------------------
    def size_to_slot(self, size: int, raw: bool = False) -> int:
        if not raw and size == self.unit_size:
            return self.free_slot
        return max(_fls(size) - PCPU_SLOT_BASE_SHIFT + 2, 1)

    def chunk_slot(self, chunk: PercpuChunk) -> int:
        contig = (chunk._contig or chunk.contig_hint())[0]
        if chunk.free_bytes < PCPU_MIN_ALLOC_SIZE or contig == 0:
            return 0
        size = contig * PCPU_MIN_ALLOC_SIZE      # size_to_slot(), inlined: the hot path
        if size == self.unit_size:
            return self.free_slot
        slot = size.bit_length() - PCPU_SLOT_BASE_SHIFT + 2
        return slot if slot > 1 else 1

    def _move(self, chunk: PercpuChunk, slot: int, front: bool) -> None:
        self._touch(chunk)
        old = chunk.list_slot
        if old >= 0:
            self.lists[old].remove(chunk)
        if front:
            self.lists[slot].insert(0, chunk)
        else:
            self.lists[slot].append(chunk)
        chunk.list_slot = slot

    def relocate(self, chunk: PercpuChunk, oslot: int) -> None:
        """pcpu_chunk_relocate(): isolated chunks stay; up moves to the head, down to the tail."""
        if chunk.isolated or chunk is self.reserved_chunk:
            return
        nslot = self.chunk_slot(chunk)
        if oslot != nslot:
            self._move(chunk, nslot, oslot < nslot)

    def isolate(self, chunk: PercpuChunk) -> None:
        self._touch(chunk)
        if not chunk.isolated:
            chunk.isolated = True
            self.nr_empty_pop_pages -= chunk.nr_empty_pop_pages
        self._move(chunk, self.to_depopulate_slot, True)

    def reintegrate(self, chunk: PercpuChunk) -> None:
        self._touch(chunk)
        if chunk.isolated:
            chunk.isolated = False
            self.nr_empty_pop_pages += chunk.nr_empty_pop_pages
            self.relocate(chunk, -1)

    def chunks(self) -> List[PercpuChunk]:
        return [c for lst in self.lists for c in lst]

    # --- empty page bookkeeping ---------------------------------------------------------------
    def _update_empty(self, chunk: PercpuChunk, nr: int) -> None:
        """pcpu_update_empty_pages()."""
        self._touch(chunk)
        chunk.nr_empty_pop_pages += nr
        if not chunk.isolated:
            self.nr_empty_pop_pages += nr

    def _populate(self, chunk: PercpuChunk, rs: int, re: int) -> None:
        """pcpu_populate_chunk() + pcpu_chunk_populated(); ENOMEM leaves nothing behind."""
        self._touch(chunk)
        got = []
        try:
            for p in range(rs, re):
                got.append(self.nodestat.alloc_pages(None, 1))   # every possible CPU
        except ModelError:
            for taken in got:
                self.nodestat.free_pages_to(taken)
            raise
        for p, taken in zip(range(rs, re), got):
            chunk.page_src[p] = taken
            chunk.populated[p] = 1
        self.nodestat.mod_percpu(re - rs, +1)
        chunk.nr_populated += re - rs
        self.nr_populated += re - rs
        # every newly populated page counts as empty: the allocation that asked for it
        # took its block out of the count already (pcpu_block_update_hint_alloc)
        self._update_empty(chunk, re - rs)

    def _depopulate(self, chunk: PercpuChunk, rs: int, re: int) -> None:
        """pcpu_depopulate_chunk() + pcpu_chunk_depopulated(): the pages go back per node."""
        self._touch(chunk)
        for p in range(rs, re):
            self.nodestat.free_pages_to(chunk.page_src.pop(p))
            chunk.populated[p] = 0
        self.nodestat.mod_percpu(re - rs, -1)
        chunk.nr_populated -= re - rs
        self.nr_populated -= re - rs
        self._update_empty(chunk, -(re - rs))

    # --- alloc / free -------------------------------------------------------------------------
    def check_request(self, size: int, align: int) -> Tuple[int, int]:
        """pcpu_alloc()'s first checks: returns (size rounded to 4, align at least 4)."""
        if align < PCPU_MIN_ALLOC_SIZE:
            align = PCPU_MIN_ALLOC_SIZE
        size = -(-size // PCPU_MIN_ALLOC_SIZE) * PCPU_MIN_ALLOC_SIZE
        if (size <= 0 or size > PCPU_MIN_UNIT_SIZE or align > self.page_size
                or align & (align - 1)):
            raise ModelError(errno.EINVAL, f"illegal size ({size}) or align ({align})")
        return size, align

    def alloc(self, size: int, align: int) -> Tuple[PercpuChunk, int]:
        """pcpu_alloc() for a non-atomic, non-reserved request. Returns (chunk, bit offset)."""
        size, align = self.check_request(size, align)
        return self.alloc_checked(size, align)

    def alloc_checked(self, size: int, align: int) -> Tuple[PercpuChunk, int]:
        """alloc() for a request check_request() already rounded and accepted."""
        bits, bit_align = size // PCPU_MIN_ALLOC_SIZE, align // PCPU_MIN_ALLOC_SIZE
        while True:
            found = self._search(size, bits, bit_align)
            if found is not None:
                break
            if not self.lists[self.free_slot]:
                self.relocate(self.create_chunk(), -1)
        chunk, bit_off = found
        self._stats_area_alloc(size)
        off = bit_off * PCPU_MIN_ALLOC_SIZE
        rs, re = off // self.page_size, -(-(off + size) // self.page_size)
        if chunk.nr_populated == chunk.nr_pages or all(chunk.populated[rs:re]):
            return chunk, bit_off
        for rs, re in chunk.unpopulated_ranges(rs, re):
            try:
                self._populate(chunk, rs, re)
            except ModelError:
                self.free(chunk, bit_off)
                raise
        return chunk, bit_off

    def _search(self, size: int, bits: int, bit_align: int) -> Optional[Tuple[PercpuChunk, int]]:
        lists = self.lists
        for slot in range(self.size_to_slot(size), self.free_slot + 1):
            lst = lists[slot]
            if not lst:
                continue
            # only a failed fit below the threshold moves a chunk while the list is walked
            for chunk in (list(lst) if slot < PCPU_SLOT_FAIL_THRESHOLD else lst):
                off = chunk.find_fit(bits, bit_align)
                if off < 0:
                    if slot < PCPU_SLOT_FAIL_THRESHOLD:
                        self._move(chunk, 0, False)
                    continue
                oslot = self.chunk_slot(chunk)
                # pcpu_block_update_hint_alloc: fully free blocks touched leave the count,
                # populated or not (the pages alloc_area reports as no longer empty);
                # pcpu_chunk_populated adds the newly populated ones back
                self._touch(chunk)
                was_empty = chunk.alloc_area(off, bits)
                if was_empty:
                    self._update_empty(chunk, -len(was_empty))
                self.relocate(chunk, oslot)
                if chunk.isolated:
                    self.reintegrate(chunk)
                if self.nr_empty_pop_pages < PCPU_EMPTY_POP_PAGES_LOW:
                    self.need_balance = True
                return chunk, off
        return None

    def free(self, chunk: PercpuChunk, bit_off: int) -> int:
        """free_percpu(): returns the freed size in bytes; may schedule the balance work."""
        oslot = self.chunk_slot(chunk)
        self._touch(chunk)
        freed, became_empty = chunk.free_area(bit_off)
        # pcpu_block_update_hint_free: every block the free makes empty comes back, populated
        # or not (after a failed populate, alloc took out blocks that never got pages)
        if became_empty:
            self._update_empty(chunk, len(became_empty))
        self.relocate(chunk, oslot)
        stats = self.stats                      # pcpu_stats_area_dealloc()
        stats["nr_dealloc"] += 1
        stats["nr_cur_alloc"] -= 1
        if not chunk.isolated and chunk.free_bytes == self.unit_size:
            if any(c is not chunk for c in self.lists[self.free_slot]):
                self.need_balance = True
        elif self._should_reclaim(chunk):
            self.isolate(chunk)
            self.need_balance = True
        return freed

    def _should_reclaim(self, chunk: PercpuChunk) -> bool:
        if chunk is self.first_chunk or chunk is self.reserved_chunk:
            return False
        return ((chunk.isolated and chunk.nr_empty_pop_pages > 0) or
                (self.nr_empty_pop_pages > PCPU_EMPTY_POP_PAGES_HIGH + chunk.nr_empty_pop_pages
                 and chunk.nr_empty_pop_pages >= chunk.nr_pages // 4))

    # --- balance work (pcpu_balance_workfn) ------------------------------------------------------
    def balance(self) -> None:
        """Model choice: the work the kernel defers runs when the command that scheduled it ends."""
        if not self.need_balance:
            return
        self.need_balance = False
        self._balance_free(empty_only=False)
        self._reclaim_populated()
        self._balance_populated()
        self._balance_free(empty_only=True)

    def _balance_free(self, empty_only: bool) -> None:
        head = self.lists[self.free_slot]
        doomed = [c for c in head[1:] if not empty_only or c.nr_empty_pop_pages == 0]
        for chunk in doomed:
            head.remove(chunk)
            chunk.list_slot = -1
            for rs, re in chunk.populated_ranges():
                self._depopulate(chunk, rs, re)
            self.stats["nr_chunks"] -= 1        # pcpu_destroy_chunk

    def _reclaim_populated(self) -> None:
        lst = self.lists[self.to_depopulate_slot]
        while lst:
            chunk = lst[0]
            reintegrate = False
            end = -1
            i = chunk.nr_pages - 1
            while i >= 0:
                if chunk.nr_empty_pop_pages == 0:
                    break
                if self.nr_empty_pop_pages < PCPU_EMPTY_POP_PAGES_HIGH:
                    reintegrate = True
                    break
                if chunk.page_is_empty(i) and chunk.populated[i]:
                    if end == -1:
                        end = i
                    if i > 0:
                        i -= 1
                        continue
                    i -= 1
                if end != -1:
                    self._depopulate(chunk, i + 1, end + 1)
                    end = -1
                i -= 1
            if reintegrate or chunk.free_bytes == self.unit_size:
                self.reintegrate(chunk)
            else:
                self._move(chunk, self.sidelined_slot, False)

    def _balance_populated(self) -> None:
        while True:
            if self.atomic_alloc_failed:
                nr_to_pop = PCPU_EMPTY_POP_PAGES_HIGH
                self.atomic_alloc_failed = False
            else:
                nr_to_pop = min(max(PCPU_EMPTY_POP_PAGES_HIGH - self.nr_empty_pop_pages, 0),
                                PCPU_EMPTY_POP_PAGES_HIGH)
            for slot in range(self.size_to_slot(self.page_size), self.free_slot + 1):
                if not nr_to_pop:
                    break
                chunk = next((c for c in self.lists[slot] if c.nr_pages - c.nr_populated), None)
                if chunk is None:
                    continue
                for rs, re in chunk.unpopulated_ranges(0, chunk.nr_pages):
                    nr = min(re - rs, nr_to_pop)
                    try:
                        self._populate(chunk, rs, rs + nr)
                        nr_to_pop -= nr
                    except ModelError:
                        nr_to_pop = 0
                    if not nr_to_pop:
                        break
            if not nr_to_pop:
                return
            self.relocate(self.create_chunk(), -1)

    # --- figures --------------------------------------------------------------------------------
    def pcpu_nr_pages(self) -> int:
        """pcpu_nr_pages(): populated pages times units, for Percpu: in /proc/meminfo."""
        return self.nr_populated * self.info.nr_units

    def _stats_area_alloc(self, size: int) -> None:
        s = self.stats
        s["nr_alloc"] += 1
        cur = s["nr_cur_alloc"] = s["nr_cur_alloc"] + 1
        if cur > s["nr_max_alloc"]:
            s["nr_max_alloc"] = cur
        if size < s["min_alloc_size"]:
            s["min_alloc_size"] = size
        if size > s["max_alloc_size"]:
            s["max_alloc_size"] = size

    def _stats_chunk_alloc(self) -> None:
        self.stats["nr_chunks"] += 1
        self.stats["nr_max_chunks"] = max(self.stats["nr_max_chunks"], self.stats["nr_chunks"])

    def chunk_listing(self) -> List[Tuple[str, Dict[str, int]]]:
        """percpu_stats_show(): the reserved chunk, then every slot list in order."""
        out = []
        if self.reserved_chunk is not None:
            out.append(("Chunk: <- Reserved Chunk", self.reserved_chunk.map_stats()))
        for slot, lst in enumerate(self.lists):
            for chunk in lst:
                if chunk is self.first_chunk:
                    head = "Chunk: <- First Chunk"
                elif slot == self.to_depopulate_slot:
                    head = "Chunk (to_depopulate)"
                elif slot == self.sidelined_slot:
                    head = "Chunk (sidelined):"
                else:
                    head = "Chunk:"
                out.append((head, chunk.map_stats()))
        return out

    # --- transactions ---------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """Open a transaction: the allocator's own state now, and each chunk's state the first
        time the transaction touches it (copy on write), so a command costs what it changes,
        not the size of the allocator. Restored INTO the same chunk objects: live
        PercpuObjects keep pointing at the chunks they were allocated from."""
        txn = {"state": state.snapshot(self), "chunks": {}}
        self._txns.append(txn)
        return txn

    def _touch(self, chunk: PercpuChunk) -> None:
        """About to change `chunk`: keep its state for every open transaction."""
        for txn in self._txns:
            saved = txn["chunks"]
            if id(chunk) not in saved:
                saved[id(chunk)] = (chunk, state.snapshot(chunk))

    def commit(self, txn: dict) -> None:
        self._txns.remove(txn)

    def restore(self, txn: dict) -> None:
        self._txns.remove(txn)
        state.restore(self, txn["state"])
        for chunk, saved in txn["chunks"].values():
            state.restore(chunk, saved)
