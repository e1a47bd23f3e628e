"""debugfs percpu_stats (mm/percpu-stats.c, percpu_stats_show and
chunk_map_stats).

Every field line is "  %-20s: %12lld\\n" (signed; the allocation info and
the per-chunk fields, and the global empty_pop_pages) or "  %-20s: %12llu\\n"
(the other global counters, unsigned in the kernel; clamped at 0 here).
A blank line ends each block: the allocation info, the global stats and
every chunk.
"""

from .text import u

RULE = "-" * 40

#: struct pcpu_alloc_info fields printed (PL), in order.
ALLOC_INFO_FIELDS = ("unit_size", "static_size", "reserved_size", "dyn_size",
                     "atom_size", "alloc_size")
#: struct percpu_stats fields printed unsigned (PU), in order ...
GLOBAL_FIELDS = ("nr_alloc", "nr_dealloc", "nr_cur_alloc", "nr_max_alloc",
                 "nr_chunks", "nr_max_chunks", "min_alloc_size",
                 "max_alloc_size")
#: ... then pcpu_nr_empty_pop_pages, printed signed (P).
GLOBAL_EMPTY_POP_PAGES = "empty_pop_pages"
#: chunk_map_stats fields, in order.
CHUNK_FIELDS = ("nr_alloc", "max_alloc_size", "empty_pop_pages", "first_bit",
                "free_bytes", "contig_bytes", "sum_frag", "max_frag",
                "cur_min_alloc", "cur_med_alloc", "cur_max_alloc")

# Chunk headers. Order of chunks: the reserved chunk (if any), then every
# pcpu_chunk_lists[] slot in index order, list order within a slot; the
# header follows the first match of: first chunk, slot is the to_depopulate
# slot, slot is the sidelined slot, otherwise plain.
CHUNK_RESERVED = "Chunk: <- Reserved Chunk"
CHUNK_FIRST = "Chunk: <- First Chunk"
CHUNK_TO_DEPOPULATE = "Chunk (to_depopulate)"
CHUNK_SIDELINED = "Chunk (sidelined):"
CHUNK_PLAIN = "Chunk:"


def _signed(name, value):
    return "  %-20s: %12d\n" % (name, int(value))


def _unsigned(name, value):
    return "  %-20s: %12d\n" % (name, u(value))


def percpu_stats(alloc_info, global_stats, chunks) -> bytes:
    """The whole file. `alloc_info` is keyed by ALLOC_INFO_FIELDS,
    `global_stats` by GLOBAL_FIELDS plus "empty_pop_pages", and `chunks` is
    a list of (header, {CHUNK_FIELDS: value}) in print order, headers being
    the CHUNK_* strings (without newline)."""
    out = ["Percpu Memory Statistics\n", "Allocation Info:\n", RULE + "\n"]
    out += [_signed(f, alloc_info[f]) for f in ALLOC_INFO_FIELDS]
    out += ["\n", "Global Stats:\n", RULE + "\n"]
    out += [_unsigned(f, global_stats[f]) for f in GLOBAL_FIELDS]
    out.append(_signed(GLOBAL_EMPTY_POP_PAGES,
                       global_stats[GLOBAL_EMPTY_POP_PAGES]))
    out += ["\n", "Per Chunk Stats:\n", RULE + "\n"]
    for header, fields in chunks:
        out.append(header + "\n")
        out += [_signed(f, fields[f]) for f in CHUNK_FIELDS]
        out.append("\n")
    return "".join(out).encode()
