"""Property-based tests: random sequences of cgroup, controller, allocation, hotplug and limit
commands, checking the invariants of docs/ARCHITECTURE.md ("Invariants") after every one.

- after every command the model is sound (`pseudofs.check`: allocator and memcg agree on the live
  objects, per-chunk and global empty-page counts, kmem and page counter account for every live
  byte, node stat = populated dynamic pages x nr_cpus_node while no CPU was hotplugged, memcg
  totals = recomputation from the live objects);
- a failed command leaves the whole state but memory.events unchanged;
- with a constant topology, freeing every object returns percpu (memcg-wide and per node), kernel
  and the page counter (stocks drained) to their values before;
- across hotplug, per-memcg and per-node values equal the formula evaluated at each event.
"""

import errno
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import three_node_nodes
from pseudofs.check import check
from pseudofs.model.state import digest
from pseudofs.config import parse_config
from pseudofs.errors import ModelError
from pseudofs.model.model import Model

# PSEUDOFS_EXAMPLES=2000 for a deeper run than the default
SETTINGS = settings(max_examples=int(os.environ.get("PSEUDOFS_EXAMPLES", "100")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TOPOLOGIES = {
    # CPUs 0-2 / CPU 3 / memory-only node; CPUs 4-5 possible in no node (P = 6)
    "three": three_node_nodes("1G"),
    # 3 + 4 CPUs (mult_frac rounding), hotplug slots 7-8 on node 1
    "rounding": """  nodes:
    - {id: 0, cpus: "0-2", memory: 1G}
    - {id: 1, cpus: "3-6", hotplug_cpus: "7-8", memory: 1G}
""",
    # a memoryless CPU node and CPUs 2-3 offline at boot
    "memoryless": """  nodes:
    - {id: 0, cpus: "0-3", memory: 1G}
    - {id: 1, cpus: "4-5", memory: 0}
  online_cpus: "0-1,4-5"
""",
}
NAMES = ("a", "b", "c")


def make(topo: str, mode: str, tree: bool = True) -> Model:
    """The root enables memory; `tree` adds /a (+memory), /a/b and /c (memory.max 8 pages, so
    that charges fail there now and then) for commands to work on."""
    m = Model(parse_config(f"kernel: {{accounting: {mode}}}\ntopology:\n{TOPOLOGIES[topo]}"))
    m.subtree_control(m.root, {"memory"}, set())
    if tree:
        a = m.mkdir("/a")
        m.subtree_control(a, {"memory"}, set())
        m.mkdir("/a/b")
        m.set_memory_max(m.mkdir("/c"), 8)
    return m


# --- commands ---------------------------------------------------------------------------

sizes = st.one_of(st.integers(1, 128), st.integers(1, 32768))
aligns = st.sampled_from([1 << i for i in range(13)])
pick = st.integers(0, 1000)        # an index into whatever exists, modulo its length

alloc_op = st.tuples(st.just("alloc"), pick, sizes, aligns, st.integers(1, 12), st.booleans())
free_op = st.tuples(st.just("free"), pick, st.one_of(st.none(), st.integers(1, 15)))
tree_ops = st.one_of(
    st.tuples(st.just("mkdir"), pick, st.sampled_from(NAMES)),
    st.tuples(st.just("rmdir"), pick),
    st.tuples(st.just("memory"), pick, st.booleans()),
)
hotplug_op = st.tuples(st.just("hotplug"), pick, st.booleans())
max_op = st.tuples(st.just("max"), pick, st.one_of(st.none(), st.integers(0, 4)))
any_op = st.one_of(alloc_op, alloc_op, free_op, tree_ops, tree_ops, hotplug_op, max_op)
modes = st.sampled_from(["per-node", "memcg"])
topos = st.sampled_from(sorted(TOPOLOGIES))


def cgroups(m):
    return [m.root, *m.root.descendants()]


def apply(m: Model, op, tags=None) -> None:
    """One command, as the control files and cgroupfs would issue it."""
    kind = op[0]
    cgs = cgroups(m)
    if kind == "alloc":
        _, i, size, align, count, account = op
        g = m.groups.alloc(size, count, align, cgs[i % len(cgs)], None, account)
        if tags is not None:
            tags.append(g.tag)
    elif kind == "free":
        _, i, count = op
        pool = tags if tags is not None else sorted(m.groups.groups)
        if not pool:
            raise ModelError(errno.ENOENT, "no group")
        tag = pool[i % len(pool)]
        m.groups.free_tag(tag, count)
        if tags is not None and tag not in m.groups.groups:
            tags.remove(tag)
    elif kind == "mkdir":
        _, i, name = op
        parent = cgs[i % len(cgs)]
        m.mkdir(parent.path.rstrip("/") + "/" + name)
    elif kind == "rmdir":
        m.rmdir(cgs[op[1] % len(cgs)].path)
    elif kind == "memory":
        _, i, on = op
        cg = cgs[i % len(cgs)]
        m.subtree_control(cg, {"memory"} if on else set(), set() if on else {"memory"})
    elif kind == "hotplug":
        _, i, online = op
        cpus = sorted(m.topo.present - {0})
        m.set_cpu_online(cpus[i % len(cpus)], online)
    elif kind == "max":
        _, i, pages = op
        with_memcg = [c for c in cgs if c.memcg is not None and not c.is_root()]
        if not with_memcg:
            return
        cg = with_memcg[i % len(with_memcg)]
        # a few pages above what is charged: the stock is drained, charges soon fail
        m.set_memory_max(cg, m.kernel.counter_max if pages is None
                         else cg.memcg.stat("kernel") + pages)


def run(m: Model, op, tags=None) -> bool:
    """Apply `op`; a failed one must leave everything but memory.events as it was."""
    before = digest(m, but_kept=True)
    try:
        apply(m, op, tags)
    except ModelError as e:
        assert e.errno in (errno.ENOMEM, errno.EEXIST, errno.ENOENT, errno.EINVAL,
                           errno.EBUSY, errno.ENODEV), e
        assert digest(m, but_kept=True) == before, f"{op} failed with {e} but changed the state"
        return False
    return True


def sound(m: Model) -> None:
    rep = check(m)
    assert rep.sound, rep.text()


def values(m: Model) -> dict:
    """What freeing everything must return to: per live memcg percpu (total and per node),
    kernel, and the page counter (the root's counter is not uncharged for objects reparented
    to it, as in the kernel, and is not shown: left out)."""
    out = {}
    for c in cgroups(m):
        mc = c.memcg
        if mc is not None:
            out[c.path] = (mc.stat("percpu"), tuple(mc.node_stat(n) for n in m.topo.node_ids),
                           mc.stat("kernel"), None if mc.is_root() else mc.memory.usage)
    return out


# --- the properties ----------------------------------------------------------------------

@SETTINGS
@given(topo=topos, mode=modes, ops=st.lists(any_op, min_size=5, max_size=40))
def test_every_command_keeps_the_model_sound(topo, mode, ops):
    m = make(topo, mode)
    for op in ops:
        run(m, op)
        sound(m)
    m.groups.free_all()
    sound(m)


@SETTINGS
@given(topo=topos, mode=modes, setup=st.lists(st.one_of(tree_ops, alloc_op, max_op), max_size=12),
       work=st.lists(st.one_of(alloc_op, alloc_op, free_op), min_size=1, max_size=20))
def test_freeing_everything_returns_to_the_values_before(topo, mode, setup, work):
    m = make(topo, mode)
    for op in setup:
        run(m, op)
    m.kernel.stocks.drain_all()
    before = values(m)
    tags = []
    for op in work:
        run(m, op, tags)
        sound(m)
    for tag in list(tags):
        m.groups.free_tag(tag)
    m.kernel.stocks.drain_all()
    assert values(m) == before
    sound(m)


def charge(m: Model, online: set, size: int) -> dict:
    """The patch's per-node charge, computed here from the CPU sets (not by the model)."""
    p, extra = len(m.topo.possible), size // 4 * 8
    out = {}
    for nid, node in m.topo.nodes.items():
        n = len(node.cpus & online)
        if n:
            out[nid] = n * size + (extra // p) * n + (extra % p) * n // p
    return out


@SETTINGS
@given(topo=topos, ops=st.lists(st.one_of(alloc_op, free_op, hotplug_op, hotplug_op),
                                max_size=30))
def test_hotplug_drift_equals_the_formula(topo, ops):
    m = make(topo, "per-node")
    online = set(m.topo.online)
    nodes = m.topo.node_ids
    # expected per-memcg LOCAL per-node bytes (events since now), and node stat pages
    want = {c.memcg.cgroup.path: dict.fromkeys(nodes, 0) for c in cgroups(m) if c.memcg}
    base = {c.path: [c.memcg.node_stat(n) for n in nodes] for c in cgroups(m) if c.memcg}
    nr_percpu = dict(m.kernel.nodestat.nr_percpu)
    pc = m.kernel.pcpu
    orig_pop, orig_depop = pc._populate, pc._depopulate

    def node_pages(sign, rs, re):
        for nid, node in m.topo.nodes.items():
            nr_percpu[nid] += sign * (re - rs) * len(node.cpus & online)

    def populate(chunk, rs, re):
        orig_pop(chunk, rs, re)
        node_pages(+1, rs, re)

    def depopulate(chunk, rs, re):
        orig_depop(chunk, rs, re)
        node_pages(-1, rs, re)

    pc._populate, pc._depopulate = populate, depopulate
    tags = []
    for op in ops:
        if op[0] == "free" and tags:
            tag = tags[op[1] % len(tags)]
            g = m.groups.groups[tag]
            n = len(g.objects) if op[2] is None else min(op[2], len(g.objects))
            for o in g.objects[len(g.objects) - n:]:
                if o.objcg is not None:
                    for nid, v in charge(m, online, o.size).items():
                        want[o.objcg.memcg.cgroup.path][nid] -= v
            apply(m, ("free", op[1], n), tags)
        elif op[0] == "alloc":
            saved = dict(nr_percpu)
            if not run(m, op, tags):        # rolled back, populated pages included
                nr_percpu.update(saved)
                continue
            g = m.groups.groups[tags[-1]]
            for o in g.objects:
                if o.objcg is not None:
                    for nid, v in charge(m, online, o.size).items():
                        want[o.objcg.memcg.cgroup.path][nid] += v
        elif op[0] == "hotplug":
            if run(m, op):
                online = set(m.topo.online)
        for c in cgroups(m):
            if c.memcg is None:
                continue
            got = [c.memcg.node_stat(n) for n in nodes]
            sub = [d for d in cgroups(m) if d.memcg and d.memcg.is_descendant_of(c.memcg)]
            exp = [base[c.path][i] + sum(want[d.path][n] for d in sub)
                   for i, n in enumerate(nodes)]
            assert got == exp, (c.path, got, exp)
            assert c.memcg.stat("percpu") == sum(got)
        assert m.kernel.nodestat.nr_percpu == nr_percpu
        sound(m)            # findings may show drift; the invariants must hold


@SETTINGS
@given(topo=topos, mode=modes, ops=st.lists(st.one_of(alloc_op, tree_ops), max_size=10),
       bad=st.sampled_from(["enomem", "eexist", "enoent", "einval"]))
def test_failed_commands_change_nothing(topo, mode, ops, bad):
    m = make(topo, mode)
    for op in ops:
        run(m, op)
    cgs = [c for c in cgroups(m) if c.memcg is not None and not c.is_root()]
    before = digest(m, but_kept=True)
    events = {c.path: dict(c.memcg.events) for c in cgroups(m) if c.memcg}
    if bad == "enomem" and not cgs:
        bad = "einval"
    try:
        if bad == "enomem":
            cg = cgs[0]
            m.kernel.stocks.drain_all()
            m.set_memory_max(cg, cg.memcg.memory.usage)
            before = digest(m, but_kept=True)
            events = {c.path: dict(c.memcg.events) for c in cgroups(m) if c.memcg}
            m.groups.alloc(64, 100, 8, cg, None, True)
        elif bad == "eexist":
            m.groups.alloc(8, 1, 8, m.root, "dup", True)
            before = digest(m, but_kept=True)
            m.groups.alloc(8, 1, 8, m.root, "dup", True)
        elif bad == "enoent":
            m.groups.free_tag("no-such-tag")
        else:
            m.groups.alloc(8, 1, 8192, m.root, None, True)     # align above the page size
    except ModelError as e:
        assert e.errno == getattr(errno, bad.upper())
    else:
        raise AssertionError(f"{bad}: the command did not fail")
    assert digest(m, but_kept=True) == before
    if bad != "enomem":
        assert {c.path: dict(c.memcg.events) for c in cgroups(m) if c.memcg} == events
    sound(m)
