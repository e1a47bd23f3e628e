"""Configuration (DESIGN section 5): YAML -> frozen dataclasses, checked once at start.

Every key has a default. All problems are collected in file order, each as
"FILE, line N: key.path: what is wrong", and raised together as one ConfigError.
Sizes take memparse suffixes (K M G ...); cgroup file values are checked with the parser the
kernel's write handler uses, so a config is refused for exactly what the kernel would refuse.
"""

import errno
from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

from . import kparse
from .errors import ConfigError, ModelError

LOCAL_DISTANCE = 10   # include/linux/topology.h
REMOTE_DISTANCE = 20
MAX_NR_CPUS = 8192    # largest x86-64 NR_CPUS (MAXSMP)
MAX_NUMNODES = 1024   # 1 << NODES_SHIFT (10 with MAXSMP)
PCPU_MIN_ALLOC_SIZE = 4
PERCPU_DYNAMIC_EARLY_SIZE = 20 << 10
PCPU_UNIT_LIMIT = 16 << 20  # model limit on static + reserved + dynamic
ALLOC_MAX_SIZE = 32768      # PCPU_MIN_UNIT_SIZE: the largest percpu allocation
ALLOC_MAX_COUNT = 100000
CONTROLLERS = ("memory",)   # the one modeled controller
ACCOUNTING_MODES = ("per-node", "memcg")
CLOCK_MODES = ("live", "frozen")


@dataclass(frozen=True)
class KernelConfig:
    accounting: str = "per-node"   # per-node (the patch) | memcg (upstream)
    page_size: int = 4096
    nr_cpus: int = 512             # NR_CPUS; kernel_max = nr_cpus - 1
    clock: Optional[str] = None    # live | frozen; None: the command's default (docs/time.md)


@dataclass(frozen=True)
class NodeConfig:
    id: int
    cpus: FrozenSet[int] = frozenset()          # present CPUs
    hotplug_cpus: FrozenSet[int] = frozenset()  # possible, not present
    memory: int = 16 << 30                      # bytes
    distance: Optional[Tuple[int, ...]] = None  # row over all nodes, ascending id; None: 10/20


DEFAULT_NODES = (
    NodeConfig(0, frozenset(range(0, 4)), memory=8 << 30),
    NodeConfig(1, frozenset(range(4, 6)), frozenset(range(6, 8)), memory=4 << 30),
    NodeConfig(2, frozenset(), memory=4 << 30),
)


@dataclass(frozen=True)
class TopologyConfig:
    nodes: Tuple[NodeConfig, ...] = DEFAULT_NODES
    possible_cpus: Optional[FrozenSet[int]] = None  # None: every CPU the nodes list
    online_cpus: Optional[FrozenSet[int]] = None    # None: every present CPU

    @property
    def present(self) -> FrozenSet[int]:
        return frozenset().union(*(n.cpus for n in self.nodes))

    @property
    def possible(self) -> FrozenSet[int]:
        if self.possible_cpus is not None:
            return self.possible_cpus
        return self.present.union(*(n.hotplug_cpus for n in self.nodes))

    @property
    def online(self) -> FrozenSet[int]:
        return self.present if self.online_cpus is None else self.online_cpus

    def node_of(self, cpu: int) -> Optional[int]:
        """The node that lists `cpu` (present or hotplug), None for a CPU of no node."""
        for n in self.nodes:
            if cpu in n.cpus or cpu in n.hotplug_cpus:
                return n.id
        return None

    def distance(self, src: int, dst: int) -> int:
        """node_distance(src, dst): the configured row entry, else LOCAL/REMOTE_DISTANCE."""
        ids = sorted(n.id for n in self.nodes)
        row = next(n.distance for n in self.nodes if n.id == src)
        if row is not None:
            return row[ids.index(dst)]
        return LOCAL_DISTANCE if src == dst else REMOTE_DISTANCE


@dataclass(frozen=True)
class PercpuConfig:
    static_size: int = 185496
    reserved_size: int = 8192
    dyn_size: int = 28672
    atom_size: int = 2 << 20
    first_chunk_free: int = 0   # bytes of the first chunk's dynamic area left free at boot

    def first_chunk_dyn_size(self, page_size: int = 4096) -> int:
        """The dynamic area as pcpu_build_alloc_info sizes it: the request (at least
        PERCPU_DYNAMIC_EARLY_SIZE) grown so static + reserved + dynamic fill whole pages."""
        head = self.static_size + self.reserved_size
        size_sum = -(-(head + max(self.dyn_size, PERCPU_DYNAMIC_EARLY_SIZE)) // page_size)
        return size_sum * page_size - head


@dataclass(frozen=True)
class AllocConfig:
    size: int
    count: int = 1
    align: int = 8
    tag: Optional[str] = None   # None: a new unique tag
    account: bool = True        # __GFP_ACCOUNT


@dataclass(frozen=True)
class CgroupConfig:
    path: str
    subtree_control: Tuple[str, ...] = ()
    files: Tuple[Tuple[str, str], ...] = ()   # (file name, raw value) in file order
    allocations: Tuple[AllocConfig, ...] = ()


@dataclass(frozen=True)
class Config:
    source: str = "<built-in defaults>"
    kernel: KernelConfig = KernelConfig()
    topology: TopologyConfig = TopologyConfig()
    percpu: PercpuConfig = PercpuConfig()
    cgroups: Tuple[CgroupConfig, ...] = ()
    root_subtree_control: Tuple[str, ...] = ("memory",)


def _limit(value, page_size):   # memory_max_write() & co: strstrip + page_counter_memparse
    kparse.page_counter_memparse(value, "max", page_size)


def _zero_one(value, _ps):      # memory_oom_group_write(), zswap_writeback_write()
    if kparse.kstrtoint(kparse.strstrip(value)) not in (0, 1):
        raise ModelError(errno.EINVAL, "only 0 or 1")


def _max_or_count(value, _ps):  # cgroup_max_descendants_write(), cgroup_max_depth_write()
    value = kparse.strstrip(value)
    if value != "max" and kparse.kstrtoint(value) < 0:
        raise ModelError(errno.ERANGE, "negative")


def _freeze(value, _ps):        # cgroup_freeze_write()
    if kparse.kstrtoint(kparse.strstrip(value)) not in (0, 1):
        raise ModelError(errno.ERANGE, "only 0 or 1")


# Writable cgroup files a config may set, with the check their kernel write handler makes.
CGROUP_FILES = {
    "memory.min": _limit, "memory.low": _limit, "memory.high": _limit, "memory.max": _limit,
    "memory.oom.group": _zero_one, "memory.swap.high": _limit, "memory.swap.max": _limit,
    "memory.zswap.max": _limit, "memory.zswap.writeback": _zero_one,
    "cgroup.max.descendants": _max_or_count, "cgroup.max.depth": _max_or_count,
    "cgroup.freeze": _freeze,
}

DEFAULT_YAML = """\
# pseudofs default configuration: a small asymmetric machine (also configs/default.yaml)
kernel:
  accounting: per-node
  page_size: 4096
  nr_cpus: 512
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 8G}
    - {id: 1, cpus: "4-5", hotplug_cpus: "6-7", memory: 4G}
    - {id: 2, cpus: "", memory: 4G}        # memory-only node
percpu:
  static_size: 185496
  reserved_size: 8192
  dyn_size: 28672
  atom_size: 2M
  first_chunk_free: 0
root_subtree_control: [memory]
cgroups:
  - path: /app
    subtree_control: [memory]
    memory.max: 256M
    allocations:
      - {size: 64, count: 1000, tag: warm}
  - path: /app/web
    memory.high: 64M
    allocations:
      - {size: 256, count: 100, align: 64, tag: web}
  - path: /batch
    allocations:
      - {size: 8, count: 500, tag: batch-unaccounted, account: 0}
"""


def load_config(path=None) -> Config:
    """Load and check a config file; None gives the built-in defaults (DEFAULT_YAML)."""
    if path is None:
        return parse_config(DEFAULT_YAML, "<built-in defaults>")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {e}"]) from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<string>") -> Config:
    """Parse and check YAML text; `source` names the file in every problem."""
    from .config_check import Checker  # the checker builds the dataclasses above
    return Checker(source).run(text)
