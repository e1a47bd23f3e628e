"""The model against values computed by hand (mm/percpu.c, mm/memcontrol.c, the patch).

Every expected number below is derived in the comment next to it; none is read back from the model.
Notation: S object size, P num_possible_cpus(), n nr_cpus_node(nid), extra = S/4*8 = 2S,
F = pcpu_obj_full_size(S) = S*P + extra, per-node charge = n*S + mult_frac(extra, n, P).
"""

import errno

import pytest

from helpers import three_node_nodes
from pseudofs.check import check, live_objects
from pseudofs.model.state import digest
from pseudofs.config import parse_config
from pseudofs.errors import ModelError
from pseudofs.model.kernel import mult_frac
from pseudofs.model.model import Model
from pseudofs.model.topology import Node, Topology
from pseudofs.model.units import build_alloc_info

PAGE = 4096
MODES = ("per-node", "memcg")


def make(topology: str, mode: str = "per-node", percpu: str = "") -> Model:
    """A model from a YAML topology block; the root enables memory, as boot does."""
    text = f"kernel: {{accounting: {mode}}}\ntopology:\n{topology}\n{percpu}"
    m = Model(parse_config(text))
    m.subtree_control(m.root, {"memory"}, set())
    return m


def digest_but_events(m: Model):
    """Everything a failed command must leave alone (memory.events excluded)."""
    return digest(m, but_kept=True)


# CPUs 0-2 on node 0, CPU 3 on node 1, node 2 memory-only; possible 0-5 (4-5 in no node): P = 6
THREE_NODES = three_node_nodes("4G", node0_memory="8G")


# --- the unit layout (pcpu_build_alloc_info) -----------------------------------------------------

def test_boot_line_unit_layout():
    # "percpu: Embedded 53 pages/cpu s185496 r0 d31592 u1048576" on a 2-CPU, 1-node VM:
    # size_sum = roundup(185496 + 0 + 28672 = 214168, 4096) = 217088 = 53 pages,
    # dyn = 217088 - 185496 = 31592; alloc 2 MiB / 217088 -> upa 9, not a divisor -> 8, 4, 2;
    # waste rule (<= 2/3 = 0 wasted) keeps upa 2: unit 1 MiB, 2 units.
    m = make('  nodes:\n    - {id: 0, cpus: "0-1", memory: 1G}', percpu=(
        "percpu: {static_size: 185496, reserved_size: 0, dyn_size: 28672, atom_size: 2M}"))
    info = m.kernel.pcpu.info
    assert (info.static_size, info.reserved_size, info.dyn_size) == (185496, 0, 31592)
    assert (info.static_size + info.reserved_size + info.dyn_size) // PAGE == 53
    assert info.unit_size == 1048576
    assert info.nr_units == 2 and info.upa == 2 and info.alloc_size == 2 << 20
    assert m.kernel.pcpu.reserved_chunk is None
    # pcpu_nr_populated: the first chunk's 53 pages, plus what the balance work populated
    pc = m.kernel.pcpu
    assert pc.nr_populated == 53 + sum(c.nr_populated for c in pc.chunks() if not c.immutable)


def test_two_nodes_of_six_cpus_take_sixteen_units():
    # 2 x 6 CPUs, 8 units per 2 MiB: upa 8 wastes 2 x 2 = 4 <= 12/3 -> 2 allocations of 8 units
    topo = Topology([Node(0, frozenset(range(6)), frozenset(), 1 << 30),
                     Node(1, frozenset(range(6, 12)), frozenset(), 1 << 30)])
    info = build_alloc_info(topo, 185496, 8192, 28672, 2 << 20, PAGE)
    assert (info.unit_size, info.upa, info.nr_units) == (262144, 8, 16)
    assert info.groups == [list(range(6)), list(range(6, 12))]
    assert [info.cpu_unit[c] for c in (0, 5, 6, 11)] == [0, 5, 8, 13]


# --- the per-node charge formula -----------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_three_nodes_one_cpu_each_size_4(mode):
    # S = 4, P = 3, extra 8: per node 1*4 + mult_frac(8, 1, 3) = 4 + 2 = 6, sum 18; F = 12 + 8 = 20
    m = make("""  nodes:
    - {id: 0, cpus: "0", memory: 1G}
    - {id: 1, cpus: "1", memory: 1G}
    - {id: 2, cpus: "2", memory: 1G}""", mode)
    assert m.kernel.node_charges(4) == {0: 6, 1: 6, 2: 6}
    assert m.kernel.pcpu_obj_full_size(4) == 20
    app = m.mkdir("/app")
    m.groups.alloc(4, 1, 4, app, "x", True)
    mc = app.memcg
    if mode == "per-node":
        assert [mc.node_stat(n) for n in (0, 1, 2)] == [6, 6, 6]
        assert mc.stat("percpu") == 18
    else:
        assert [mc.node_stat(n) for n in (0, 1, 2)] == [0, 0, 0]
        assert mc.stat("percpu") == 20
    assert mc.stat("kernel") == 1                       # ceil(20 / 4096) pages to MEMCG_KMEM
    assert mc.memory.usage == 64                        # one MEMCG_CHARGE_BATCH, 63 in the stock
    assert m.kernel.stocks.nr_pages == 63 and m.kernel.stocks.nr_bytes == PAGE - 20


def test_rounding_loss_p7_split_3_4():
    # S = 4, P = 7 split 3 + 4: 12 + mult_frac(8,3,7)=3 -> 15,
    # 16 + mult_frac(8,4,7)=4 -> 20; total 35 instead of F = 36
    m = make("""  nodes:
    - {id: 0, cpus: "0-2", memory: 1G}
    - {id: 1, cpus: "3-6", memory: 1G}""")
    assert m.kernel.node_charges(4) == {0: 15, 1: 20}
    assert m.kernel.pcpu_obj_full_size(4) == 36
    app = m.mkdir("/app")
    m.groups.alloc(4, 10, 4, app, "x", True)
    assert app.memcg.stat("percpu") == 350
    rep = check(m)
    assert rep.sound, rep.text()
    found = {(f.kind, f.where): f.amount for f in rep.findings}
    assert found[("rounding", "/app percpu")] == -10            # 1 byte per object
    assert ("offline-cpus", "/app percpu") not in found          # 3 + 4 = P


def test_mult_frac_is_the_kernel_macro():
    # (x / d) * n + ((x % d) * n) / d, each step floored
    assert mult_frac(2560, 1, 6) == 426 and mult_frac(2560, 3, 6) == 1280
    assert mult_frac(8, 3, 7) == 3 and mult_frac(8, 4, 7) == 4
    assert mult_frac(128, 8, 64) == 16


# --- CPUs that are possible but in no node mask --------------------------------------------------

def test_offline_cpus_worked_example_4_plus_2():
    # S = 1280, P = 8, nodes 4 + 4 with CPUs 6-7 offline: node 0 5120 + mult_frac(2560,4,8)=1280
    # -> 6400, node 1 2560 + 640 = 3200; total 9600 against F = 12800
    m = make("""  nodes:
    - {id: 0, cpus: "0-3", memory: 1G}
    - {id: 1, cpus: "4-7", memory: 1G}
  online_cpus: "0-5\"""")
    app = m.mkdir("/app")
    m.groups.alloc(1280, 1, 64, app, "x", True)
    assert [app.memcg.node_stat(n) for n in (0, 1)] == [6400, 3200]
    assert app.memcg.stat("percpu") == 9600
    assert app.memcg.stat("kernel") == 4                # F = 12800 -> 4 pages, as before
    found = {(f.kind, f.where): f.amount for f in check(m).findings}
    # shortfall F - 9600 = 3200: 2 offline CPUs x 1280 + (2560 - mult_frac(2560, 6, 8) = 640)
    assert found[("offline-cpus", "/app percpu")] == -3200


def test_hotplug_slots_and_cpus_of_no_node():
    # node 0: CPUs 0-3 present, 4-7 hotplug slots (possible, never present): P = 8, n = 4;
    # S = 1280: 4*1280 + mult_frac(2560, 4, 8) = 6400 against F = 12800
    m = make("""  nodes:
    - {id: 0, cpus: "0-3", hotplug_cpus: "4-7", memory: 1G}""")
    assert m.topo.num_possible_cpus() == 8 and m.topo.nr_cpus_node(0) == 4
    assert m.kernel.node_charges(1280) == {0: 6400}
    # possible 64, online 8 on one node : 8S + floor(2S*8/64) vs 66S
    m = make("""  nodes:
    - {id: 0, cpus: "0-7", memory: 1G}
  possible_cpus: "0-63\"""")
    assert m.kernel.node_charges(64) == {0: 8 * 64 + 16}
    assert m.kernel.pcpu_obj_full_size(64) == 66 * 64
    app = m.mkdir("/app")
    m.groups.alloc(64, 1, 8, app, "x", True)
    assert app.memcg.stat("percpu") == 528
    # pages are populated for all 64 CPUs (from node 0: CPUs of no node count as node 0),
    # the node stat counts 8 of them
    pc = m.kernel.pcpu
    dyn = sum(c.nr_populated for c in pc.chunks() if not c.immutable)
    assert m.kernel.nodestat.used_pages(0) == dyn * 64
    assert m.kernel.nodestat.nr_percpu[0] == dyn * 8


# --- the charge path: a worked example ----------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_worked_example_single_object(mode):
    # S = 1280, P = 8 on one node: F = 10240 + 2560 = 12800 = 3 pages + 512 -> 4 pages to KMEM;
    # the page counter takes a batch of 64 (60 stay in the page stock); the object stock keeps
    # 4096 - 512 = 3584 bytes; percpu 12800 in both modes (8*1280 + mult_frac(2560, 8, 8))
    m = make('  nodes:\n    - {id: 0, cpus: "0-7", memory: 1G}', mode)
    app = m.mkdir("/app")                               # a child of the root: charges nothing
    st = m.kernel.stocks
    assert (st.cached, st.nr_pages, st.cached_objcg, st.nr_bytes) == (None, 0, None, 0)
    m.groups.alloc(1280, 1, 64, app, "x", True)
    mc = app.memcg
    assert mc.stat("percpu") == 12800
    assert mc.node_stat(0) == (12800 if mode == "per-node" else 0)
    assert mc.stat("kernel") == 4
    assert mc.memory.usage == 64
    assert st.cached is mc and st.nr_pages == 60
    assert st.cached_objcg is mc.objcg and st.nr_bytes == 3584


def test_worked_example_two_nodes_4_plus_4():
    # 2 x (5120 + mult_frac(2560, 4, 8) = 1280) = 2 x 6400 = 12800
    m = make("""  nodes:
    - {id: 0, cpus: "0-3", memory: 1G}
    - {id: 1, cpus: "4-7", memory: 1G}""")
    app = m.mkdir("/app")
    m.groups.alloc(1280, 1, 64, app, "x", True)
    assert [app.memcg.node_stat(n) for n in (0, 1)] == [6400, 6400]
    assert app.memcg.stat("percpu") == 12800


# --- the three-node scenario ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_three_node_scenario(mode):
    # S = 64, P = 6, extra 128: node 0 (n=3) 192 + mult_frac(128,3,6)=64 -> 256 x 100 = 25600;
    # node 1 (n=1) 64 + mult_frac(128,1,6)=21 -> 85 x 100 = 8500; node 2 (no CPU) skipped.
    # F = 384 + 128 = 512; x 100 = 51200 = 12.5 pages -> 13 charges of one page (8 objects
    # per page from the object stock), all from the first batch of 64
    m = make(THREE_NODES, mode)
    app = m.mkdir("/app")
    m.groups.alloc(64, 100, 8, app, None, True)
    mc = app.memcg
    if mode == "per-node":
        assert [mc.node_stat(n) for n in (0, 1, 2)] == [25600, 8500, 0]
        assert mc.stat("percpu") == 34100
    else:
        assert [mc.node_stat(n) for n in (0, 1, 2)] == [0, 0, 0]
        assert mc.stat("percpu") == 51200
    assert mc.stat("kernel") == 13
    assert mc.memory.usage == 64
    assert m.root.memcg.stat("percpu") == mc.stat("percpu")    # hierarchical at the root
    # node stat: populated dynamic pages x nr_cpus_node (3, 1, 0) in per-node mode only
    dyn = sum(c.nr_populated for c in m.kernel.pcpu.chunks() if not c.immutable)
    want = [dyn * 3, dyn, 0] if mode == "per-node" else [0, 0, 0]
    assert [m.kernel.nodestat.nr_percpu[n] for n in (0, 1, 2)] == want
    m.groups.free_all()
    assert mc.stat("percpu") == 0 and [mc.node_stat(n) for n in (0, 1, 2)] == [0, 0, 0]
    m.kernel.stocks.drain_all()
    assert mc.stat("kernel") == 0 and mc.memory.usage == 0


# --- a cgroup's own percpu -----------------------------------------------------------------------

OWN = {"per-node": 768, "memcg": 752}       # struct lruvec_stats_percpu, one per possible node


@pytest.mark.parametrize("mode", MODES)
def test_mkdir_charges_the_new_memcg_structures_to_the_parent(mode):
    m = make(THREE_NODES, mode)
    app = m.mkdir("/app")
    assert m.root.memcg.stat("percpu") == 0             # /app's structures: parent is the root
    m.subtree_control(app, {"memory"}, set())
    sub = m.mkdir("/app/sub")
    sizes = [o.size for o in sub.memcg.own_objects]
    assert sizes == [1280, 24, OWN[mode], OWN[mode], OWN[mode]]     # 3 possible nodes
    assert sub.memcg.own_objects[0].bit_off * 4 % 64 == 0           # cacheline-aligned type
    full = sum(s * 6 + s // 4 * 8 for s in sizes)
    if mode == "per-node":
        # 1280: N0 3840 + mult_frac(2560,3,6)=1280 -> 5120, N1 1280 + 426 -> 1706
        # 24:   N0 72 + mult_frac(48,3,6)=24 -> 96,       N1 24 + 8 -> 32
        # 768:  N0 2304 + mult_frac(1536,3,6)=768 -> 3072, N1 768 + 256 -> 1024 (x 3)
        assert full == 10240 + 192 + 3 * 6144 == 28864
        assert [app.memcg.node_stat(n) for n in (0, 1, 2)] == [14432, 4810, 0]
        assert app.memcg.stat("percpu") == 19242
    else:
        # 1280*6 + 2560 = 10240; 24*6 + 48 = 192; 752*6 + 1504 = 6016 (x 3)
        assert full == 10240 + 192 + 3 * 6016 == 28480
        assert app.memcg.stat("percpu") == 28480
    assert sub.memcg.stat("percpu") == 0                # nothing is charged to itself
    # the page counter was charged F for each: kernel pages hold F plus what the stock keeps
    st = m.kernel.stocks
    held = st.nr_bytes if st.cached_objcg is app.memcg.objcg else 0
    assert app.memcg.stat("kernel") * PAGE == full + held + app.memcg.objcg.nr_charged_bytes
    assert check(m).sound


def test_plus_memory_on_a_parent_with_children_creates_their_memcgs():
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    a, b = m.mkdir("/app/a"), m.mkdir("/app/b")
    assert a.memcg is None and b.memcg is None
    m.subtree_control(app, {"memory"}, set())
    assert a.memcg is not None and b.memcg is not None
    assert app.memcg.stat("percpu") == 2 * 19242
    m.subtree_control(app, set(), {"memory"})           # -memory: offlined and released at once
    assert a.memcg is None and b.memcg is None
    assert app.memcg.stat("percpu") == 0
    assert check(m).sound


# --- memory.max ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size,order_small", [(64, True), (4096, True), (4100, False),
                                              (32768, False)])
def test_memory_max_enomem_events(size, order_small):
    # F = 8S with P = 6: 64 -> 1 page, 4096 -> 8 pages (order 3), 4100 -> 9 pages (order 4),
    # 32768 -> 64 pages. try_charge_memcg: batch 64 fails, then nr_pages fails: one MEMCG_MAX per
    # pass: 1 before draining, 1 after, 16 retries = 18; mem_cgroup_oom() counts MEMCG_OOM only
    # for order <= PAGE_ALLOC_COSTLY_ORDER (3); nobody is killed, the charge fails with ENOMEM
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    m.groups.alloc(64, 10, 8, app, "warm", True)
    m.kernel.stocks.drain_all()                         # no page or byte left in the stocks
    m.set_memory_max(app, app.memcg.memory.usage)       # full: no room for one more page
    before = digest_but_events(m)
    events = dict(app.memcg.events)
    with pytest.raises(ModelError) as e:
        m.groups.alloc(size, 1, 8, app, None, True)
    assert e.value.errno == errno.ENOMEM
    assert digest_but_events(m) == before
    assert app.memcg.events.get("max", 0) - events.get("max", 0) == 18
    assert app.memcg.events.get("oom", 0) - events.get("oom", 0) == (1 if order_small else 0)
    assert app.memcg.events_local.get("max", 0) == app.memcg.events.get("max", 0)
    assert m.root.memcg.events == {}                    # never counted on the root
    assert check(m).sound


def test_mkdir_over_the_parents_limit_fails_and_counts():
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    m.subtree_control(app, {"memory"}, set())
    m.set_memory_max(app, 0)
    before = digest_but_events(m)
    with pytest.raises(ModelError) as e:
        m.mkdir("/app/sub")
    assert e.value.errno == errno.ENOMEM
    assert "sub" not in app.children
    assert digest_but_events(m) == before
    # the first structure (1280 B, F = 10240, 3 pages) is the one refused: order 2 -> oom
    assert app.memcg.events == {"max": 18, "oom": 1}


# --- rmdir: reparenting --------------------------------------------------------------------------

def test_rmdir_reparents_live_objects_to_the_parent():
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    m.subtree_control(app, {"memory"}, set())
    sub = m.mkdir("/app/sub")
    m.groups.alloc(64, 100, 8, sub, "a", True)
    # own structures of /app/sub (19242, see above) + 100 objects of 341 (256 + 85)
    assert app.memcg.stat("percpu") == 19242 + 34100
    assert sub.memcg.stat("percpu") == 34100
    m.rmdir("/app/sub")
    # the dying memcg is released at once: its structures are freed, uncharging /app
    assert app.memcg.stat("percpu") == 34100
    assert [app.memcg.node_stat(n) for n in (0, 1, 2)] == [25600, 8500, 0]
    assert m.groups.listing()[0]["cgroup"] == "/app"
    assert m.root.memcg.stat("percpu") == 34100
    m.groups.free_tag("a", 40)                          # later frees decrement the parent
    assert app.memcg.stat("percpu") == 60 * 341
    assert [app.memcg.node_stat(n) for n in (0, 1, 2)] == [60 * 256, 60 * 85, 0]
    assert m.root.memcg.stat("percpu") == 60 * 341
    m.groups.free_all()
    m.kernel.stocks.drain_all()
    assert app.memcg.stat("percpu") == 0 and app.memcg.stat("kernel") == 0
    assert app.memcg.memory.usage == 0
    assert app.memcg.objcg_list == [app.memcg.objcg]    # the dead objcg was released
    assert check(m).sound


def test_objects_reparented_to_the_root_decrement_it():
    m = make(THREE_NODES)
    x = m.mkdir("/x")
    m.groups.alloc(64, 10, 8, x, "a", True)
    m.rmdir("/x")
    root = m.root.memcg
    assert root.stat("percpu") == 3410
    m.groups.free_all()
    assert root.stat("percpu") == 0 and root.node_stat(0) == 0
    assert root.local["percpu"] == -3410                # the root's own value goes negative
    assert check(m).sound


# --- percpu_stats --------------------------------------------------------------------------------

def test_percpu_stats_numbers():
    # default config: static 185496, reserved 8192, dyn 28672 -> first chunk dynamic area 31592
    # bytes from offset 193688 % 4096 = 1176, taken at boot by 7 x 4096 + 1 x 2920 allocations
    m = make("""  nodes:
    - {id: 0, cpus: "0-3", memory: 8G}
    - {id: 1, cpus: "4-5", hotplug_cpus: "6-7", memory: 4G}""")
    pc = m.kernel.pcpu
    assert pc.stats["nr_alloc"] == 8 and pc.stats["nr_cur_alloc"] == 8
    assert pc.stats["min_alloc_size"] == 2920 and pc.stats["max_alloc_size"] == 4096
    m.groups.alloc(64, 100, 8, m.root, "r", True)       # the root: placed, not charged
    m.groups.free_tag("r", 40)                          # the 40 most recent
    s = pc.stats
    assert (s["nr_alloc"], s["nr_dealloc"], s["nr_cur_alloc"], s["nr_max_alloc"]) == \
        (108, 40, 68, 108)
    assert (s["min_alloc_size"], s["max_alloc_size"]) == (64, 4096)
    assert s["nr_chunks"] == s["nr_max_chunks"] == 2
    listing = pc.chunk_listing()
    heads = [h for h, _ in listing]
    assert heads == ["Chunk: <- Reserved Chunk", "Chunk: <- First Chunk", "Chunk:"]
    reserved, first, dyn = (st for _, st in listing)
    # reserved: 8192 bytes from offset 1176: first_bit 294, a 3-page region, page 1 empty
    assert (reserved["free_bytes"], reserved["contig_bytes"], reserved["first_bit"],
            reserved["nr_alloc"], reserved["empty_pop_pages"]) == (8192, 8192, 294, 0, 1)
    assert (first["free_bytes"], first["contig_bytes"], first["nr_alloc"]) == (0, 0, 8)
    # 60 objects of 64 B = 3840 B = 960 granules from offset 0, no gap
    unit = pc.unit_size
    assert (dyn["nr_alloc"], dyn["free_bytes"], dyn["contig_bytes"], dyn["first_bit"]) == \
        (60, unit - 3840, unit - 3840, 960)
    assert (dyn["sum_frag"], dyn["max_frag"], dyn["cur_min_alloc"], dyn["cur_med_alloc"],
            dyn["cur_max_alloc"], dyn["max_alloc_size"]) == (0, 0, 64, 64, 64, 64)
    # pages: boot populated 4 (the balance work); the 100 objects used pages 0-1, page 1 is
    # empty again: 3 empty populated pages, which is the global count too
    assert dyn["empty_pop_pages"] == 3 == pc.nr_empty_pop_pages
    assert m.root.memcg.stat("percpu") == 0
    assert pc.pcpu_nr_pages() == (55 + 4) * 8           # (first-chunk pages + 4) x 8 units
    assert len(live_objects(m)) == 60


def test_first_chunk_room_serves_unaccounted_objects():
    # 4096 bytes left free in the first chunk: /app's structures (1280 + 24 + 3 x 768 = 3608)
    # and then two objects of 64 land there; no obj_exts: the charge is reverted
    m = make(THREE_NODES, percpu="percpu: {first_chunk_free: 4096}")
    first = m.kernel.pcpu.first_chunk
    app = m.mkdir("/app")
    assert all(o.chunk is first for o in app.memcg.own_objects)
    m.groups.alloc(64, 2, 8, app, "a", True)
    objs = m.groups.groups["a"].objects
    assert all(o.chunk is first and o.objcg is None for o in objs)
    assert app.memcg.stat("percpu") == 0
    assert app.memcg.stat("kernel") == 1                # charged, uncharged into the byte stock
    rep = check(m)
    found = {(f.kind, f.where): f.amount for f in rep.findings}
    assert found[("first-chunk", "objects")] == 2 * 512
    assert rep.sound
