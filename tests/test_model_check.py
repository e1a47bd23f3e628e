"""`pseudofs check`: every disagreement between per-node sums and memcg totals named, with its
amount and cause; broken invariants make the report unsound and the command exit 1."""

from pathlib import Path

import pytest

from pseudofs import check as check_mod
from pseudofs.check import check
from test_model_exact import THREE_NODES, make

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def findings(m):
    rep = check(m)
    assert rep.sound, rep.text()
    return {(f.kind, f.where): f.amount for f in rep.findings}


def test_three_node_scenario_is_explained():
    # 100 x 64 B in /app, P = 6 (CPUs 4-5 in no node), node 2 without CPUs:
    # F = 512, per-node sum 341; shortfall 171 = 2 x 64 + (128 - mult_frac(128, 4, 6) = 43);
    # mult_frac(128,4,6) = 85 = mult_frac(128,3,6) + mult_frac(128,1,6) = 64 + 21: no rounding
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    m.groups.alloc(64, 100, 8, app, "a", True)
    f = findings(m)
    assert f[("offline-cpus", "/app percpu")] == -17100
    assert ("rounding", "/app percpu") not in f
    assert ("drift", "/app percpu") not in f
    # node stat: populated dynamic pages x (P - 4 CPUs in node masks) are in no nr_percpu
    dyn = sum(c.nr_populated for c in m.kernel.pcpu.chunks() if not c.immutable)
    assert f[("offline-cpus", "nr_percpu")] == -2 * dyn
    # 8 units (CPUs 0-2,4,5 -> 3 allocations of 2 units, CPU 3 -> 1) for 6 possible CPUs
    assert f[("nr-units", "Percpu:")] == m.kernel.pcpu.nr_populated * 2 * 4
    assert f[("first-chunk", "Percpu:")] == 55 * 8 * 4      # 55 boot pages x 8 units, in kB
    # the page stock keeps 64 - 13 = 51 pages charged to /app's page counter
    assert f[("stock", "/app memory.current")] == 64 * 4096 - 34100


def test_memoryless_cpu_node():
    # node 1 has CPU 3 and no memory: 100 x 85 B charged to it, absent from numa_stat; its
    # pages come from node 0 and still count in node 1's nr_percpu
    m = make(THREE_NODES.replace('cpus: "3", memory: 4G', 'cpus: "3", memory: 0'))
    app = m.mkdir("/app")
    m.groups.alloc(64, 100, 8, app, "a", True)
    f = findings(m)
    assert f[("memoryless", "/app N1")] == 8500
    assert f[("memoryless", "/ N1")] == 8500
    dyn = sum(c.nr_populated for c in m.kernel.pcpu.chunks() if not c.immutable)
    assert f[("memoryless", "node 1 nr_percpu")] == dyn


def test_hotplug_drift_is_named_with_its_amount():
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    m.groups.alloc(64, 100, 8, app, "a", True)
    m.set_cpu_online(2, False)          # node 0: 3 -> 2 CPUs
    # recomputed today: N0 2*64 + mult_frac(128,2,6)=42 -> 170, N1 85: 255 per object;
    # charged at allocation 341: drift +86 per live object
    f = findings(m)
    assert f[("drift", "/app percpu")] == 8600
    # freeing subtracts today's 255, not 341: the 86 per object stay behind in /app
    m.groups.free_tag("a", 60)
    assert findings(m)[("drift", "/app percpu")] == 8600
    m.groups.free_all()
    f = findings(m)
    assert f[("drift", "/app percpu")] == 8600
    assert app.memcg.stat("percpu") == 8600     # never returns to 0: the drift the patch has
    # node stat: pages populated with 3 CPUs in node 0, some depopulated with 2
    drift = f.get(("drift", "node 0 nr_percpu"), 0)
    dyn = sum(c.nr_populated for c in m.kernel.pcpu.chunks() if not c.immutable)
    assert m.kernel.nodestat.nr_percpu[0] == dyn * 2 + drift


def test_memcg_mode_has_no_per_node_findings():
    m = make(THREE_NODES, "memcg")
    app = m.mkdir("/app")
    m.groups.alloc(64, 100, 8, app, "a", True)
    m.set_cpu_online(2, False)
    kinds = {k for k, _ in findings(m)}
    assert kinds <= {"nr-units", "stock"}
    m.groups.free_all()
    assert app.memcg.stat("percpu") == 0


def test_broken_invariants_make_the_report_unsound():
    m = make(THREE_NODES)
    app = m.mkdir("/app")
    m.groups.alloc(64, 10, 8, app, "a", True)
    assert check(m).sound
    m.kernel.nodestat.nr_percpu[0] += 1                     # node stat off by a page
    app.memcg.node_stat(1)
    app.memcg.node_hier[1] -= 5                              # a lost per-node update
    chunk = m.groups.groups["a"].objects[0].chunk
    chunk.nr_empty_pop_pages += 1                            # an empty page miscounted
    rep = check(m)
    assert not rep.sound
    text = "\n".join(rep.broken)
    assert "node 0: nr_percpu" in text
    assert "/app: percpu != sum of its per-node values" in text
    assert f"chunk {chunk.id}: nr_empty_pop_pages" in text
    assert "UNSOUND" in rep.text()


def test_main_prints_the_report_and_exits_0(capsys):
    assert check_mod.main(["-c", str(CONFIGS / "default.yaml")]) == 0
    out = capsys.readouterr().out
    assert "accounting=per-node, 8 possible CPUs" in out
    assert "[offline-cpus] /app percpu:" in out         # CPUs 6-7 are hotplug slots
    assert "sound:" in out


def test_main_exits_1_when_unsound(monkeypatch, capsys):
    import pseudofs.boot

    def corrupt(config):
        m = make(THREE_NODES)
        m.kernel.pcpu.stats["nr_cur_alloc"] += 1
        return m
    monkeypatch.setattr(pseudofs.boot, "build_model", corrupt)
    assert check_mod.main([]) == 1
    assert "UNSOUND" in capsys.readouterr().out


def test_main_bad_config_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kernel: {accounting: sideways}\n")
    assert check_mod.main(["-c", str(bad)]) == 2
    assert "accounting" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["default.yaml", "seed-200cpu.yaml"])
def test_shipped_configs_are_sound(name):
    from pseudofs.boot import build_model
    from pseudofs.config import load_config
    assert check(build_model(load_config(CONFIGS / name))).sound
