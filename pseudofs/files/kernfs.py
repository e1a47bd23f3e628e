"""The order kernfs (sysfs, cgroupfs) lists a directory in: by name hash, then name.

fs/kernfs/dir.c keeps a directory's children in an rbtree ordered by kernfs_sd_compare()
(hash, then namespace, then strcmp of the names), and kernfs_fop_readdir() walks it in that
order. The hash is kernfs_name_hash(): the stringhash.h partial_name_hash() over the bytes,
end_name_hash() (hash_long(), 64-bit: hash_64(h, 32) with GOLDEN_RATIO_64), kept in
[2, INT_MAX - 1]. No namespace tags here (the salt is 0). Checked against the listings of a
6.18 kernel: /sys/devices/system/cpu, cpuN, cpuN/topology, node/nodeN and a cgroup2 root.
"""

import functools
from typing import Iterable, List

_GOLDEN_RATIO_64 = 0x61C8864680B583EB
_M64 = (1 << 64) - 1
_INT_MAX = 0x7FFFFFFF


@functools.lru_cache(maxsize=4096)
def name_hash(name: str) -> int:
    h = 0                                          # init_name_hash(ns), ns NULL
    for c in name.encode("utf-8", "surrogateescape"):
        h = ((h + (c << 4) + (c >> 4)) * 11) & _M64    # partial_name_hash()
    h = ((h * _GOLDEN_RATIO_64) & _M64) >> 32          # end_name_hash() = hash_64(h, 32)
    h &= _INT_MAX
    if h < 2:
        h += 2
    if h >= _INT_MAX:
        h = _INT_MAX - 1
    return h


def order(names: Iterable[str]) -> List[str]:
    """`names` as kernfs_fop_readdir() lists them."""
    return sorted(names, key=lambda n: (name_hash(n), n.encode("utf-8", "surrogateescape")))
