"""The percpu unit layout decided at boot (mm/percpu.c pcpu_build_alloc_info)."""

from dataclasses import dataclass
from typing import Dict, List

from pseudofs.model.topology import LOCAL_DISTANCE, Topology

PCPU_MIN_UNIT_SIZE = 32 << 10           # include/linux/percpu.h
PERCPU_DYNAMIC_EARLY_SIZE = 20 << 10
PCPU_UNIT_LIMIT = 16 << 20              # model limit on static + reserved + dynamic


def first_chunk_dyn_size(static_size: int, reserved_size: int, dyn_size: int,
                         page_size: int) -> int:
    """The first chunk's dynamic area as pcpu_build_alloc_info() sizes it: the request (at
    least PERCPU_DYNAMIC_EARLY_SIZE) grown so static + reserved + dynamic fill whole pages."""
    head = static_size + reserved_size
    return _round_up(head + max(dyn_size, PERCPU_DYNAMIC_EARLY_SIZE), page_size) - head


@dataclass(frozen=True)
class AllocInfo:
    """struct pcpu_alloc_info as percpu_stats prints it, plus the unit map."""

    static_size: int
    reserved_size: int
    dyn_size: int          # grown so that static + reserved + dyn fills whole pages
    unit_size: int
    atom_size: int
    alloc_size: int
    nr_units: int
    upa: int
    groups: List[List[int]]        # CPUs per group, group order (first CPU ascending)
    cpu_unit: Dict[int, int]       # possible CPU -> unit index


def _round_up(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def build_alloc_info(topo: Topology, static_size: int, reserved_size: int, dyn_size: int,
                     atom_size: int, page_size: int) -> AllocInfo:
    """pcpu_build_alloc_info() with the x86 distance function (pcpu_cpu_distance)."""
    dyn_size = first_chunk_dyn_size(static_size, reserved_size, dyn_size, page_size)
    size_sum = static_size + reserved_size + dyn_size
    min_unit_size = max(size_sum, PCPU_MIN_UNIT_SIZE)
    alloc_size = _round_up(min_unit_size, atom_size)
    upa = alloc_size // min_unit_size
    while alloc_size % upa or (alloc_size // upa) % page_size:
        upa -= 1
    max_upa = upa

    # group CPUs by proximity: pop the first CPU, take every CPU at LOCAL_DISTANCE both ways
    remaining = sorted(topo.possible)
    groups: List[List[int]] = []
    while remaining:
        cpu = remaining.pop(0)
        group = [cpu]
        keep = []
        for t in remaining:
            a, b = topo.cpu_to_node(cpu), topo.cpu_to_node(t)
            if topo.distance(a, b) == LOCAL_DISTANCE and topo.distance(b, a) == LOCAL_DISTANCE:
                group.append(t)
            else:
                keep.append(t)
        remaining = keep
        groups.append(group)

    # expand the unit size until wasted units are at most a third of the possible CPUs
    last_allocs = None
    best_upa = 0
    nr_possible = len(topo.possible)
    for upa in range(max_upa, 0, -1):
        if alloc_size % upa or (alloc_size // upa) % page_size:
            continue
        allocs = wasted = 0
        for g in groups:
            this = -(-len(g) // upa)
            allocs += this
            wasted += this * upa - len(g)
        if wasted > nr_possible // 3:
            continue
        if last_allocs is not None and allocs > last_allocs:
            break
        last_allocs = allocs
        best_upa = upa
    assert best_upa, "pcpu_build_alloc_info: no units-per-allocation fits"
    upa = best_upa

    cpu_unit: Dict[int, int] = {}
    unit = 0
    for g in groups:
        for i, cpu in enumerate(g):
            cpu_unit[cpu] = unit + i
        unit += _round_up(len(g), upa)
    info = AllocInfo(static_size=static_size, reserved_size=reserved_size, dyn_size=dyn_size,
                     unit_size=alloc_size // upa, atom_size=atom_size, alloc_size=alloc_size,
                     nr_units=unit, upa=upa, groups=groups, cpu_unit=cpu_unit)
    return info
