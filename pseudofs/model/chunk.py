"""One percpu chunk: its allocation map in 4-byte granules and its populated pages.

The kernel keeps alloc_map/bound_map bitmaps with per-page block hints (mm/percpu.c). The model
keeps the same information as sorted free extents and a dict of allocated areas, which give the
same first fit, contig hint, first free bit and the debugfs figures, at Python speed.
"""

import bisect
from typing import Dict, List, Optional, Set, Tuple

PCPU_MIN_ALLOC_SIZE = 4


def _ffs(x: int) -> int:
    """__ffs(): index of the lowest set bit (x > 0)."""
    return (x & -x).bit_length() - 1


class PercpuChunk:
    """struct pcpu_chunk. Offsets (`off`) are bytes from the chunk base inside a unit."""

    STATE = ("isolated", "list_slot", "free_bytes", "_fs", "_fl", "areas", "used", "populated",
             "page_src", "nr_populated", "nr_empty_pop_pages", "nr_alloc", "max_alloc_size")
    CACHE = ("_by_len", "_contig", "_fit_hint")
    FIXED = ("id", "page_size", "nr_pages", "block_bits", "map_bits", "immutable",
             "has_obj_exts", "start_offset", "end_offset", "start_bits", "end_bits")

    def state_key(self):
        return ("chunk", self.id)

    def __init__(self, chunk_id: int, nr_pages: int, page_size: int, *, start_offset: int = 0,
                 map_size: Optional[int] = None, immutable: bool = False,
                 has_obj_exts: bool = True):
        self.id = chunk_id
        self.page_size = page_size
        self.nr_pages = nr_pages
        self.block_bits = page_size // PCPU_MIN_ALLOC_SIZE
        self.map_bits = nr_pages * self.block_bits
        self.immutable = immutable          # first and reserved chunk: never depopulated
        self.has_obj_exts = has_obj_exts    # dynamic chunks only: objects can be accounted
        self.isolated = False
        self.list_slot = -1                 # the allocator's slot list holding it (-1: none)
        map_size = nr_pages * page_size - start_offset if map_size is None else map_size
        self.start_offset = start_offset
        self.end_offset = nr_pages * page_size - start_offset - map_size
        self.start_bits = start_offset // PCPU_MIN_ALLOC_SIZE
        self.end_bits = self.end_offset // PCPU_MIN_ALLOC_SIZE
        self.free_bytes = map_size
        # free extents [start, start+len) in granules, sorted by start
        self._fs: List[int] = [self.start_bits]
        self._fl: Dict[int, int] = {self.start_bits: self.map_bits - self.start_bits - self.end_bits}
        self._by_len: Dict[int, Set[int]] = {}     # run length -> starts: the contig hint in O(1)
        self._add_ext(self.start_bits, self._fl[self.start_bits])
        self.areas: Dict[int, int] = {}            # start granule -> granules, live allocations
        self.used: List[int] = [0] * nr_pages      # allocated granules per page (hidden included)
        self._mark_used(0, self.start_bits, +1)
        self._mark_used(self.map_bits - self.end_bits, self.end_bits, +1)
        self.populated = bytearray(nr_pages)
        self.page_src: Dict[int, Dict[int, int]] = {}   # page index -> {node: pages taken}
        self.nr_populated = 0
        self.nr_empty_pop_pages = 0
        self.nr_alloc = 0
        self.max_alloc_size = 0
        self._contig: Optional[Tuple[int, int]] = None     # (bits, start) cache
        self._fit_hint: Dict[Tuple[int, int], int] = {}     # (bits, align) -> first extent that may fit

    def _add_ext(self, start: int, n: int) -> None:
        starts = self._by_len.get(n)
        if starts is None:                  # (setdefault would build a set on every call)
            self._by_len[n] = {start}
        else:
            starts.add(start)

    def _del_ext(self, start: int, n: int) -> None:
        starts = self._by_len[n]
        starts.discard(start)
        if not starts:
            del self._by_len[n]

    # --- hints -----------------------------------------------------------------------------
    @property
    def first_free(self) -> int:
        """chunk_md.first_free: the first free bit, or map_bits when full."""
        return self._fs[0] if self._fs else self.map_bits

    def contig_hint(self) -> Tuple[int, int]:
        """(contig_hint, contig_hint_start): the largest free run; among equals, the
        first one unless a later start is better aligned (pcpu_block_update).
        Cached; alloc_area/free_area keep the cache when they cannot have changed it."""
        if self._contig is None:
            best, best_start = 0, 0
            if self._by_len:
                best = max(self._by_len)
                ties = sorted(self._by_len[best])
                best_start = ties[0]
                for s in ties[1:]:
                    if best_start and _ffs(s) > _ffs(best_start):
                        best_start = s
            self._contig = (best, best_start)
        return self._contig

    def contig_bytes(self) -> int:
        return self.contig_hint()[0] * PCPU_MIN_ALLOC_SIZE

    # --- pages -----------------------------------------------------------------------------
    def _mark_used(self, start: int, bits: int, sign: int) -> List[int]:
        """Adjust per-page used counts; return the pages whose emptiness changed."""
        bb, used = self.block_bits, self.used
        page = start // bb
        if (start + bits - 1) // bb == page:        # within one page: the common case
            before = used[page]
            used[page] = after = before + sign * bits
            return [page] if (before == 0) != (after == 0) else []
        changed = []
        pos, end = start, start + bits
        while pos < end:
            page = pos // bb
            stop = min(end, (page + 1) * bb)
            before = self.used[page]
            self.used[page] = before + sign * (stop - pos)
            if (before == 0) != (self.used[page] == 0):
                changed.append(page)
            pos = stop
        return changed

    def page_is_empty(self, page: int) -> bool:
        return self.used[page] == 0

    def empty_populated_pages(self) -> int:
        return sum(1 for p in range(self.nr_pages) if self.populated[p] and not self.used[p])

    def unpopulated_ranges(self, start: int, end: int) -> List[Tuple[int, int]]:
        """for_each_clear_bitrange_from(start, end) over the populated bitmap."""
        out, p = [], start
        while p < end:
            if self.populated[p]:
                p += 1
                continue
            q = p
            while q < end and not self.populated[q]:
                q += 1
            out.append((p, q))
            p = q
        return out

    def populated_ranges(self) -> List[Tuple[int, int]]:
        out, p = [], 0
        while p < self.nr_pages:
            if not self.populated[p]:
                p += 1
                continue
            q = p
            while q < self.nr_pages and self.populated[q]:
                q += 1
            out.append((p, q))
            p = q
        return out

    # --- fit -------------------------------------------------------------------------------
    def find_fit(self, bits: int, align: int) -> int:
        """pcpu_find_block_fit() + pcpu_find_zero_area(): first fit from first_free, honouring
        alignment (in granules). Returns the start granule or -1."""
        contig, start = self._contig or self.contig_hint()     # pcpu_check_block_hint()
        if bits > contig or (-start) % align + bits > contig:
            return -1
        # The kernel skips blocks whose hints are too small; the model remembers, per request
        # shape, the extent where the last search succeeded: allocations only split extents,
        # so none before it can fit now, and only a free (which drops the hints) can change
        # that. Without it, small aligned objects that leave gaps make every search walk
        # every gap (quadratic in the number of objects).
        fs, fl = self._fs, self._fl
        key = (bits, align)
        i = bisect.bisect_left(fs, self._fit_hint.get(key, 0))
        for i in range(i, len(fs)):
            s = fs[i]
            a = s + (-s) % align
            if a + bits <= s + fl[s]:
                self._fit_hint[key] = s
                return a
        return -1

    def alloc_area(self, start: int, bits: int) -> List[int]:
        """Take [start, start+bits) out of its free extent; return the pages that stopped
        being empty (the caller updates the empty-page counters)."""
        fs, fl = self._fs, self._fl         # extents are updated in place where they can be
        i = bisect.bisect_right(fs, start) - 1
        s = fs[i]
        n = fl[s]
        tail_start = start + bits
        tail_len = s + n - tail_start
        self._del_ext(s, n)
        if start > s:                       # a head stays
            fl[s] = start - s
            self._add_ext(s, start - s)
            if tail_len:
                fs.insert(i + 1, tail_start)
                fl[tail_start] = tail_len
                self._add_ext(tail_start, tail_len)
        else:
            del fl[s]
            if tail_len:
                fs[i] = tail_start
                fl[tail_start] = tail_len
                self._add_ext(tail_start, tail_len)
            else:
                del fs[i]
        self.areas[start] = bits
        self.free_bytes -= bits * PCPU_MIN_ALLOC_SIZE
        self.nr_alloc += 1
        if bits * PCPU_MIN_ALLOC_SIZE > self.max_alloc_size:
            self.max_alloc_size = bits * PCPU_MIN_ALLOC_SIZE
        if self._contig == (n, s):          # carved out of the contig hint's run: rescan
            self._contig = None             # (pieces of any other run are smaller than it)
        return self._mark_used(start, bits, +1)

    def free_area(self, start: int) -> Tuple[int, List[int]]:
        """pcpu_free_area(): returns (freed bytes, pages that became empty)."""
        bits = self.areas.pop(start)
        if self._fit_hint:
            self._fit_hint = {}                 # a free may open room before any hint
        fs, fl = self._fs, self._fl
        i = bisect.bisect_left(fs, start)
        end = start + bits
        merge_next = i < len(fs) and fs[i] == end
        if i > 0 and fs[i - 1] + fl[fs[i - 1]] == start:              # merge with previous
            new_s = fs[i - 1]
            self._del_ext(new_s, fl[new_s])
            new_n = fl[new_s] + bits
            if merge_next:
                self._del_ext(end, fl[end])
                new_n += fl.pop(end)
                del fs[i]
            fl[new_s] = new_n
        elif merge_next:                                                # merge with next
            self._del_ext(end, fl[end])
            new_s, new_n = start, bits + fl.pop(end)
            fs[i] = start
            fl[start] = new_n
        else:
            new_s, new_n = start, bits
            fs.insert(i, start)
            fl[start] = bits
        self._add_ext(new_s, new_n)
        contig = self._contig
        if contig is not None:              # a longer run is the new hint; a tie: rescan
            if new_n > contig[0]:
                self._contig = (new_n, new_s)
            elif new_n == contig[0]:
                self._contig = None
        self.free_bytes += bits * PCPU_MIN_ALLOC_SIZE
        self.nr_alloc -= 1
        return bits * PCPU_MIN_ALLOC_SIZE, self._mark_used(start, bits, -1)

    # --- debugfs -----------------------------------------------------------------------------
    def _is_set(self, bit: int) -> bool:
        if bit < self.start_bits or bit >= self.map_bits - self.end_bits:
            return True
        i = bisect.bisect_right(self._fs, bit) - 1
        return not (i >= 0 and bit < self._fs[i] + self._fl[self._fs[i]])

    def map_stats(self) -> Dict[str, int]:
        """chunk_map_stats() in mm/percpu-stats.c, walk and quirks included."""
        size = self.map_bits - self.end_bits - 1
        la = size
        # find_last_bit(alloc_map, size): the last set bit below `size`, or `size` if none
        lasts = [min(s + b - 1, size - 1) for s, b in self.areas.items() if s < size]
        if lasts:
            la = max(lasts)
        elif self.start_bits and self.start_bits - 1 < size:
            la = self.start_bits - 1
        last_alloc = la + 1 if self._is_set(la) else 0
        sizes: List[int] = []
        starts = sorted(self.areas)
        pos = self.start_bits
        k = bisect.bisect_left(starts, pos)
        while pos < last_alloc:
            if k < len(starts) and starts[k] == pos:
                end = min(pos + self.areas[pos], last_alloc)
                sizes.append((end - pos) * PCPU_MIN_ALLOC_SIZE)
                k += 1
            else:
                nxt = starts[k] if k < len(starts) else self.map_bits - self.end_bits
                end = min(nxt, last_alloc)
                sizes.append(-(end - pos) * PCPU_MIN_ALLOC_SIZE)
            pos = end
        sum_frag = max_frag = cur_min = cur_med = cur_max = 0
        if sizes:
            sizes.sort()
            i = 0
            while i < len(sizes) and sizes[i] < 0:
                sum_frag -= sizes[i]
                max_frag = max(max_frag, -sizes[i])
                i += 1
            if i < len(sizes):
                cur_min = sizes[i]
                cur_med = sizes[(i + len(sizes) - 1) // 2]
                cur_max = sizes[-1]
        return {
            "nr_alloc": self.nr_alloc,
            "max_alloc_size": self.max_alloc_size,
            "empty_pop_pages": self.nr_empty_pop_pages,
            "first_bit": self.first_free,
            "free_bytes": self.free_bytes,
            "contig_bytes": self.contig_bytes(),
            "sum_frag": sum_frag,
            "max_frag": max_frag,
            "cur_min_alloc": cur_min,
            "cur_med_alloc": cur_med,
            "cur_max_alloc": cur_max,
        }
