"""CPU and node masks as the kernel prints them (lib/vsprintf.c: bitmap_string
for "%*pb", bitmap_list_string for "%*pbl"), each with the trailing newline
the sysfs show functions add.

Used by cpu/{possible,present,online,offline}, node/{possible,online,
has_cpu,has_memory,has_normal_memory}, nodeN/cpulist, nodeN/cpumap and
nodeN/distance.
"""

CHUNKSZ = 32  # bits per comma-separated group of "%*pb"


def _ranges(bits):
    """Sorted runs (first, last) of a set of non-negative ints."""
    runs = []
    for b in sorted(set(bits)):
        if runs and b == runs[-1][1] + 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    return runs


def cpulist(cpus) -> bytes:
    """"%*pbl\\n": "0-3,8-11"; a run of two is "0-1"; empty -> "\\n"."""
    return (",".join(str(a) if a == b else "%d-%d" % (a, b)
                     for a, b in _ranges(cpus)) + "\n").encode()


nodelist = cpulist  # the node masks use the same "%*pbl" format


def cpumap(cpus, nr_cpu_ids) -> bytes:
    """"%*pb\\n" over nr_cpu_ids bits: hex, most significant 32-bit group
    first, groups joined by ","; each group zero-padded to 8 digits except the
    first, which gets ceil(bits_in_it / 4) digits (bits_in_it = nbits % 32,
    or 32). 4 CPUs -> "f", 40 -> "ff,ffffffff". Bits >= nr_cpu_ids are not
    printed; nr_cpu_ids 0 prints just "\\n"."""
    mask = 0
    for c in cpus:
        if 0 <= c < nr_cpu_ids:
            mask |= 1 << c
    chunksz = nr_cpu_ids % CHUNKSZ or CHUNKSZ
    groups = []
    i = -(-nr_cpu_ids // CHUNKSZ) * CHUNKSZ - CHUNKSZ
    while i >= 0:
        val = (mask >> i) & ((1 << chunksz) - 1)
        groups.append("%0*x" % (-(-chunksz // 4), val))
        chunksz = CHUNKSZ
        i -= CHUNKSZ
    return (",".join(groups) + "\n").encode()


def distance(distances) -> bytes:
    """nodeN/distance: the distances to every online node, in node order,
    space separated (node_read_distance)."""
    return (" ".join("%d" % d for d in distances) + "\n").encode()
