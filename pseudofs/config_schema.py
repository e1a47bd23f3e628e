"""The configuration as checked, frozen dataclasses (README, Configuration). Every field has the
default a partial YAML file gets; config_check.py builds them from YAML, config.py loads."""

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

from .model.units import first_chunk_dyn_size

CLOCK_MODES = ("live", "frozen")    # kernel.clock (docs/time.md)


@dataclass(frozen=True)
class KernelConfig:
    accounting: str = "per-node"   # per-node (the patch) | memcg (upstream)
    page_size: int = 4096
    nr_cpus: int = 512             # NR_CPUS; kernel_max = nr_cpus - 1
    version: str = "7.0"           # kernel profile (pseudofs.render.kconfig.VERSIONS)
    options: Tuple[Tuple[str, bool], ...] = ()   # kernel.config as given (name, on), in file order
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


@dataclass(frozen=True)
class PercpuConfig:
    static_size: int = 185496
    reserved_size: int = 8192
    dyn_size: int = 28672
    atom_size: int = 2 << 20
    first_chunk_free: int = 0   # bytes of the first chunk's dynamic area left free at boot

    def first_chunk_dyn_size(self, page_size: int = 4096) -> int:
        return first_chunk_dyn_size(self.static_size, self.reserved_size, self.dyn_size,
                                    page_size)


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
    faults: object = None          # a pseudofs.faults.plan.Plan, or None (docs/faults.md)
