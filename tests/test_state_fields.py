"""State that knows itself (pseudofs/model/state.py): every field of every model object is
named by its class as STATE, CACHE, KEPT or FIXED, so a new field cannot escape a failed
command's rollback or the digest; a digest tells equal models from different ones."""

from pseudofs.boot import build_model
from pseudofs.config import parse_config
from pseudofs.model import state

CONFIG = """
topology:
  nodes:
    - {id: 0, cpus: "0-1", memory: 1G}
    - {id: 1, cpus: "2", hotplug_cpus: "3", memory: 1G}
percpu: {reserved_size: 8192}
cgroups:
  - path: /a
    subtree_control: [memory]
    memory.max: 64M
    allocations: [{size: 64, count: 300, tag: x}]
  - path: /a/b
    allocations: [{size: 8, count: 10}]
"""


def _names(obj):
    if hasattr(obj, "__dict__"):
        return set(vars(obj))
    return {n for n in type(obj).__slots__ if hasattr(obj, n)}


def test_every_field_of_every_model_object_is_declared():
    m = build_model(parse_config(CONFIG))
    seen = set()
    for key, obj in [*state.objects(m), (("kernel",), m.kernel)]:
        st, cache, kept, fixed = state.fields(obj)
        declared = set(st) | set(cache) | set(fixed)
        assert set(kept) <= set(st), key
        missing = _names(obj) - declared
        assert not missing, "%s (%s): undeclared fields %s" % (key, type(obj).__name__, missing)
        seen.add(type(obj).__name__)
    assert {"Model", "Topology", "NodeStat", "PercpuAllocator", "PercpuChunk", "Stocks",
            "Cgroup", "Memcg", "PageCounter", "ObjCgroup", "AllocGroups", "AllocGroup",
            "PercpuObject", "Membership", "Kernel", "CpuTime"} <= seen


def test_digest_is_equal_for_equal_histories_and_differs_after_a_change():
    a, b = (build_model(parse_config(CONFIG)) for _ in range(2))
    assert state.digest(a) == state.digest(b)
    a.groups.free_tag("x", 1)
    assert state.digest(a) != state.digest(b)
    b.groups.free_tag("x", 1)
    assert state.digest(a) == state.digest(b)


def test_a_snapshot_restores_an_object_exactly():
    m = build_model(parse_config(CONFIG))
    memcg = m.lookup("/a").memcg
    snap = state.snapshot(memcg)
    before = state.state_of(memcg)
    m.groups.free_tag("x")
    assert state.state_of(memcg) != before
    state.restore(memcg, snap)
    assert state.state_of(memcg) == before
