"""Config loading (README, Configuration): defaults, partial configs, all problems at once."""

import re
from pathlib import Path

import pytest

from pseudofs.config import load_config, parse_config
from pseudofs.config_schema import (
    DEFAULT_NODES, AllocConfig, CgroupConfig, Config, KernelConfig, NodeConfig, PercpuConfig,
    TopologyConfig)
from pseudofs.errors import ConfigError
from pseudofs.model.model import Model

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def problems(text, source="t.yaml"):
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    return info.value.problems


def line_of(problem):
    return int(re.search(r", line (\d+):", problem).group(1))


# --- shipped configs and defaults -----------------------------------------------------------

@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.source == str(path)
    assert cfg.topology.nodes


def test_builtin_defaults_match_configs_default_yaml():
    builtin = load_config(None)
    shipped = load_config(CONFIGS / "default.yaml")
    assert builtin.source == "<built-in defaults>"
    assert Config(builtin.source, shipped.kernel, shipped.topology, shipped.percpu,
                  shipped.cgroups, shipped.root_subtree_control) == builtin


def test_builtin_defaults():
    cfg = load_config(None)
    assert cfg.kernel == KernelConfig("per-node", 4096, 512)
    topo = cfg.topology
    assert topo.nodes == DEFAULT_NODES
    assert topo.present == frozenset(range(6))
    assert topo.possible == frozenset(range(8))
    assert topo.online == frozenset(range(6))
    assert [n.id for n in topo.nodes if not n.cpus] == [2]          # memory-only node
    assert cfg.percpu == PercpuConfig(185496, 8192, 28672, 2 << 20, 0)
    assert cfg.root_subtree_control == ("memory",)
    app = cfg.cgroups[0]
    assert app == CgroupConfig("/app", ("memory",), (("memory.max", "256M"),),
                               (AllocConfig(64, 1000, 8, "warm", True),))
    assert [c.path for c in cfg.cgroups] == ["/app", "/app/web", "/batch"]
    assert cfg.cgroups[2].allocations[0].account is False


def test_seed_config():
    cfg = load_config(CONFIGS / "seed-200cpu.yaml")
    assert [sorted(n.cpus) for n in cfg.topology.nodes] == [list(range(100)),
                                                            list(range(100, 200))]
    assert len(cfg.topology.possible) == 200
    assert [c.path for c in cfg.cgroups] == [f"/seed{i:02d}" for i in range(1, 50)]
    assert cfg.root_subtree_control == ("memory",)


@pytest.mark.parametrize("text", ["", "# nothing\n", "kernel:\n", "kernel: {}\npercpu:\n"])
def test_empty_configs_take_every_default(text):
    cfg = parse_config(text, "empty.yaml")
    assert cfg == Config("empty.yaml")
    assert cfg.topology.nodes == DEFAULT_NODES and cfg.cgroups == ()


def test_partial_config_keeps_other_defaults():
    cfg = parse_config("kernel: {accounting: memcg}\npercpu: {first_chunk_free: 4K}\n")
    assert cfg.kernel == KernelConfig(accounting="memcg")
    assert cfg.percpu == PercpuConfig(first_chunk_free=4096)
    assert cfg.topology == TopologyConfig()


def test_design_example_topology():
    text = """
topology:
  nodes:
    - {id: 0, cpus: "0-5", memory: 16G}
    - {id: 1, cpus: "6-7", hotplug_cpus: "8-11", memory: 16G}
    - {id: 2, cpus: "", memory: 64G}
    - {id: 3, cpus: "12-13", memory: 0}
  possible_cpus: "0-15"
  online_cpus: "0-7,12-13"
"""
    topo = parse_config(text).topology
    assert topo.nodes[1] == NodeConfig(1, frozenset({6, 7}), frozenset(range(8, 12)), 16 << 30)
    assert topo.nodes[3].memory == 0
    assert topo.possible == frozenset(range(16))
    assert topo.online == frozenset(range(8)) | {12, 13}
    model = Model(parse_config(text)).topo          # the model's view of the same topology
    assert model.node_of(14) is None and model.node_of(9) == 1
    assert model.distance(0, 0) == 10 and model.distance(0, 3) == 20


def test_node_defaults_cpu_lists_as_yaml_lists_and_distance_rows():
    text = """
topology:
  nodes:
    - {id: 0, cpus: [0, 1], distance: [10, 21]}
    - {id: 1, cpus: 2-3, memory: 0x40000000, distance: [21, 10]}
"""
    topo = parse_config(text).topology
    assert topo.nodes[0] == NodeConfig(0, frozenset({0, 1}), memory=16 << 30, distance=(10, 21))
    assert topo.nodes[1].memory == 1 << 30
    assert Model(parse_config(text)).topo.distance(1, 0) == 21


def test_cgroup_files_keep_their_raw_text_in_file_order():
    text = """
cgroups:
  - path: /a
    subtree_control: memory
    memory.high: 1G
    memory.max: max
    memory.oom.group: 1
    memory.low: 0x1000
  - path: /a/b
    cgroup.max.depth: max
    memory.min: 4096
    allocations:
      - {size: 1K, count: 3, align: 4K, account: false}
"""
    a, b = parse_config(text).cgroups
    assert a.subtree_control == ("memory",)
    assert a.files == (("memory.high", "1G"), ("memory.max", "max"),
                       ("memory.oom.group", "1"), ("memory.low", "0x1000"))
    assert b.files == (("cgroup.max.depth", "max"), ("memory.min", "4096"))
    assert b.allocations == (AllocConfig(1024, 3, 4096, None, False),)


# --- problems: all of them, in file order, each naming file, line and key ---------------------

BAD = """\
kernel:
  accounting: upstream
  page_size: 3000
  nr_cpus: 8
  colour: blue
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 8G}
    - {id: 1, cpus: "3-5", memory: 1.5G}
    - {id: 1, cpus: "6-9", memory: 4G}
  possible_cpus: "0-5"
  online_cpus: "0-3,12"
percpu:
  static_size: 0
  atom_size: 3M
root_subtree_control: [memory, cpu]
cgroups:
  - path: app
  - path: /a/b
  - path: /c
    memory.max: 12Q
    allocations:
      - {size: 40000, count: 0, align: 3, tag: "x y"}
      - {size: 8, tag: t}
      - {size: 8, tag: t, account: maybe}
  - path: /c
"""

EXPECTED = [  # (line, key path, words in the message)
    (2, "kernel.accounting", "per-node, memcg"),
    (3, "kernel.page_size", "power of two"),
    (5, "kernel.colour", "unknown key"),
    (9, "topology.nodes[1].cpus", "CPU 3: already listed in topology.nodes[0].cpus"),
    (9, "topology.nodes[1].memory", "not a size"),
    (10, "topology.nodes[2].id", "node id 1 already used"),
    (10, "topology.nodes[2].cpus", "beyond kernel.nr_cpus"),
    (11, "topology.possible_cpus", "missing 6-9"),
    (12, "topology.online_cpus", "CPU 12: online but not present"),
    (12, "topology.online_cpus", "CPU 12: beyond kernel.nr_cpus"),
    (14, "percpu.static_size", "must be > 0"),
    (15, "percpu.atom_size", "power of two"),
    (16, "root_subtree_control", "unknown controller 'cpu'"),
    (18, "cgroups[0].path", "absolute"),
    (19, "cgroups[1].path", "parent /a is not declared"),
    (21, "cgroups[2].memory.max", "EINVAL"),
    (23, "cgroups[2].allocations[0].size", "1..32768"),
    (23, "cgroups[2].allocations[0].count", "1..100000"),
    (23, "cgroups[2].allocations[0].align", "power of two"),
    (23, "cgroups[2].allocations[0].tag", "whitespace"),
    (25, "cgroups[2].allocations[2].tag", "already used by cgroups[2].allocations[1]"),
    (25, "cgroups[2].allocations[2].account", "true/false"),
    (26, "cgroups[3].path", "declared twice"),
]


def test_every_problem_reported_once_in_file_order():
    found = problems(BAD, "configs/bad.yaml")
    assert len(found) == len(EXPECTED), "\n".join(found)
    for problem, (line, key, words) in zip(found, EXPECTED):
        assert problem.startswith(f"configs/bad.yaml, line {line}: {key}: "), problem
        assert words in problem, problem
    assert [line_of(p) for p in found] == sorted(line_of(p) for p in found)


def test_config_error_message_lists_all_problems():
    with pytest.raises(ConfigError) as info:
        parse_config(BAD, "bad.yaml")
    assert str(info.value).count("\n") == len(EXPECTED) - 1


@pytest.mark.parametrize("text, key, words", [
    ("kernel: {nr_cpus: 4}", "kernel.nr_cpus", "too small for the default topology"),
    ("kernel: {nr_cpus: 0}", "kernel.nr_cpus", "1..8192"),
    ("kernel: {nr_cpus: '8'}", "kernel.nr_cpus", "expected an integer"),
    ("kernel: {nr_cpus: true}", "kernel.nr_cpus", "expected an integer"),
    ("kernel: {page_size: 64K}\ntopology: {nodes: [{id: 0, cpus: '0', memory: 100K}]}",
     "topology.nodes[0].memory", "whole number of 65536-byte pages"),
    ("kernel: [1]", "kernel", "expected a mapping"),
    ("topology: {nodes: []}", "topology.nodes", "at least one node"),
    ("topology: {nodes: [{cpus: '0'}]}", "topology.nodes[0]", "missing key 'id'"),
    ("topology: {nodes: [{id: 0, cpus: '0-3', hotplug_cpus: '3'}]}",
     "topology.nodes[0].hotplug_cpus", "CPU 3: already listed in topology.nodes[0].cpus"),
    ("topology: {nodes: [{id: 0, cpus: '1'}]}", "topology.nodes", "CPU 0 (the boot CPU)"),
    ("topology: {nodes: [{id: 0, cpus: '0-1'}], online_cpus: '1'}", "topology.online_cpus",
     "must be online"),
    ("topology: {nodes: [{id: 0, cpus: '0', memory: 0}]}", "topology.nodes", "no node has memory"),
    ("topology: {nodes: [{id: 0, cpus: '0'}, {id: 1, memory: 0}]}", "topology.nodes[1]",
     "neither CPUs nor memory"),
    ("topology: {nodes: [{id: 0, cpus: '0', distance: [10]}, {id: 1}]}",
     "topology.nodes[0].distance", "needs 2 entries"),
    ("topology: {nodes: [{id: 0, cpus: '0', distance: [11, 20]}, {id: 1}]}",
     "topology.nodes[0].distance", "must be 10"),
    ("topology: {nodes: [{id: 0, cpus: '0', distance: [10, 5]}, {id: 1}]}",
     "topology.nodes[0].distance", "11..255"),
    ("topology: {nodes: [{id: 1024, cpus: '0'}]}", "topology.nodes[0].id", "0..1023"),
    ("topology: {nodes: [{id: 0, cpus: '0-9000'}]}", "topology.nodes[0].cpus", "above 8191"),
    ("topology: {nodes: [{id: 0, cpus: 'all'}]}", "topology.nodes[0].cpus", "not allowed"),
    ("topology: {nodes: [{id: 0, cpus: '3-1'}]}", "topology.nodes[0].cpus", "bad cpulist"),
    ("topology: {nodes: [{id: 0, cpus: }]}", "topology.nodes[0].cpus", "missing value"),
    ("percpu: {reserved_size: 6}", "percpu.reserved_size", "multiple of 4"),
    ("percpu: {first_chunk_free: 64K}", "percpu.first_chunk_free", "31592"),
    ("percpu: {dyn_size: 20M}", "percpu.dyn_size", "0..16777216"),
    ("percpu: {static_size: 8M, dyn_size: 9M}", "percpu.dyn_size", "exceeds"),
    ("percpu: {atom_size: 2K}", "percpu.atom_size", "power of two"),
    ("cgroups: [{path: /}]", "cgroups[0].path", "root cgroup exists"),
    ("cgroups: [{path: /a/}]", "cgroups[0].path", "'.' or '..'"),
    ("cgroups: [{path: /a/../b}]", "cgroups[0].path", "'.' or '..'"),
    ("cgroups: [{memory.max: 1G}]", "cgroups[0]", "missing key 'path'"),
    ("cgroups: [{path: /a, memory.maximum: 1G}]", "cgroups[0].memory.maximum", "unknown key"),
    ("cgroups: [{path: /a, memory.max: -1}]", "cgroups[0].memory.max", "EINVAL"),
    ("cgroups: [{path: /a, cgroup.max.depth: -1}]", "cgroups[0].cgroup.max.depth", "ERANGE"),
    ("cgroups: [{path: /a, cgroup.freeze: 2}]", "cgroups[0].cgroup.freeze", "ERANGE"),
    ("cgroups: [{path: /a, memory.max: [1]}]", "cgroups[0].memory.max", "single value"),
    ("root_subtree_control: []\ncgroups: [{path: /a, memory.max: 1G}]",
     "cgroups[0].memory.max", "does not enable memory"),
    ("root_subtree_control: []\ncgroups: [{path: /a, subtree_control: [memory]}]",
     "cgroups[0].subtree_control", "ENOENT"),
    ("cgroups: [{path: /a, allocations: [{count: 2}]}]", "cgroups[0].allocations[0]",
     "missing key 'size'"),
    ("cgroups: [{path: /a, allocations: [{size: 0}]}]", "cgroups[0].allocations[0].size",
     "1..32768"),
    ("cgroups: [{path: /a, allocations: [{size: 8, align: 8K}]}]",
     "cgroups[0].allocations[0].align", "page size"),
    ("cgroups: [{path: /a, allocations: [{size: 8, tag: 'a=b'}]}]",
     "cgroups[0].allocations[0].tag", "'='"),
    ("cgroups: {path: /a}", "cgroups", "expected a list"),
])
def test_single_problem(text, key, words):
    found = problems(text)
    assert len(found) == 1, found
    assert re.match(rf"t\.yaml, line \d+: {re.escape(key)}: ", found[0]), found[0]
    assert words in found[0], found[0]


def test_duplicate_yaml_key():
    found = problems("kernel:\n  nr_cpus: 8\n  nr_cpus: 16\n")
    assert found == ["t.yaml, line 3: kernel.nr_cpus: key given twice"]


def test_yaml_syntax_error_names_file_and_line():
    found = problems("kernel:\n  nr_cpus: [8\n", "x.yaml")
    assert len(found) == 1 and found[0].startswith("x.yaml, line ")
    assert "YAML syntax error" in found[0]


def test_top_level_must_be_a_mapping():
    assert problems("- 1\n") == ["t.yaml, line 1: (top level): expected a mapping of keys"]


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert str(tmp_path / "missing.yaml") in str(info.value)
