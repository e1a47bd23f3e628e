"""Validate a cgroup v2 parser with the pseudofs pytest plugin, in both accounting modes.

The parser below reads flat keyed files (memory.stat), nested keyed files (memory.numa_stat:
`key N0=v N1=v`), single values (memory.max: a number or "max") and CPU lists
(/sys/devices/system/cpu/possible). Each test gets a fresh mount of CONFIG from the
`pseudofs_mount` fixture; the `pseudofs` marker picks the accounting mode: `per-node` (the patch:
a `percpu` line in memory.numa_stat) or `memcg` (upstream: none). Swap `parse_*` for your own.

    python -m pytest examples/test_parser_pytest.py     # pseudofs installed, FUSE available
"""

import pytest

MAX = None      # what the parser returns for "max"


# ---- the parser under test ----------------------------------------------------------------
def parse_flat_keyed(text):
    return {key: int(value) for key, value in (line.split(" ") for line in text.splitlines())}


def parse_nested_keyed(text):
    out = {}
    for line in text.splitlines():
        key, *pairs = line.split(" ")
        out[key] = {int(k[1:]): int(v) for k, v in (p.split("=") for p in pairs)}
    return out


def parse_single(text):
    text = text.strip()
    return MAX if text == "max" else int(text)


def parse_cpulist(text):
    cpus = set()
    for part in filter(None, text.strip().split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


# ---- the tests ------------------------------------------------------------------------------
CONFIG = """
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 4G}
    - {id: 1, cpus: "3", memory: 4G}
    - {id: 2, cpus: "", memory: 4G}
  possible_cpus: "0-5"
cgroups:
  - path: /svc
    memory.max: 16M
"""
MODES = [pytest.param(mode, id=mode, marks=pytest.mark.pseudofs(config=CONFIG, accounting=mode))
         for mode in ("per-node", "memcg")]
SIZE, COUNT = 64, 100


@pytest.mark.parametrize("mode", MODES)
def test_memory_max(pseudofs_mount, mode):
    m = pseudofs_mount
    assert parse_single(m.read(m.cgroup("/svc") / "memory.max")) == 16 << 20
    assert parse_single(m.read(m.cgroup("/") / "cgroup.max.depth")) is MAX


@pytest.mark.parametrize("mode", MODES)
def test_percpu_in_both_modes(pseudofs_mount, mode):
    m = pseudofs_mount
    svc = m.cgroup("/svc")
    before = parse_flat_keyed(m.read(svc / "memory.stat"))
    m.alloc(SIZE, count=COUNT, cgroup="/svc")
    stat = parse_flat_keyed(m.read(svc / "memory.stat"))
    numa = parse_nested_keyed(m.read(svc / "memory.numa_stat"))
    assert set(numa["anon"]) == {0, 1, 2}           # the nodes with memory
    possible = len(parse_cpulist(m.read("sys/devices/system/cpu/possible")))
    if mode == "memcg":
        assert "percpu" not in numa
        # pcpu_obj_full_size(): a copy for every possible CPU, plus one obj_cgroup pointer
        # (8 bytes) per 4-byte unit
        assert stat["percpu"] - before["percpu"] == COUNT * (SIZE * possible + SIZE // 4 * 8)
    else:
        # per node: only the CPUs in a node's mask are charged (4 here, of 6 possible), and
        # memory.stat's percpu is the sum of the nodes (`pseudofs check` explains the rest)
        assert sum(numa["percpu"].values()) == stat["percpu"] > before["percpu"]
        short = [f for f in m.check().findings if f.where == "/svc percpu"]
        assert sum(f.amount for f in short) == \
            stat["percpu"] - COUNT * (SIZE * possible + SIZE // 4 * 8)
