"""`pseudofs capture`: of a rendered tree it gives back the configuration the tree was rendered
from (topology, profile, percpu geometry, cgroups); of this machine, a mount of what it wrote
shows this machine's /proc/vmstat and /proc/meminfo keys in this machine's order."""

import os
import subprocess
import sys

import pytest

from pseudofs.config import load_config, parse_config
from pseudofs.render.kconfig import VERSIONS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

RENDERED = """\
kernel:
  accounting: memcg
  version: "6.1"
  nr_cpus: 64
  config: {ZSWAP: false, CMA: true, PSI: true, KSM: false}
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 8G, distance: [10, 21, 31]}
    - {id: 1, cpus: "3,5", memory: 2G, distance: [21, 10, 17]}
    - {id: 2, cpus: "", memory: 4G, distance: [31, 17, 10]}
  possible_cpus: "0-7"
percpu: {static_size: 100000, reserved_size: 8192, dyn_size: 40960, atom_size: 2M}
root_subtree_control: [memory]
cgroups:
  - path: /a
    subtree_control: [memory]
    memory.max: 64M
  - path: /a/b
    memory.high: 16M
    memory.oom.group: 1
  - path: /c
"""


def pseudofs(*args, check=True):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "pseudofs", *args], env=env, check=check,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def rendered(tmp_path):
    cfg = tmp_path / "orig.yaml"
    cfg.write_text(RENDERED)
    pseudofs("render", str(tmp_path / "tree"), "-c", str(cfg))
    return load_config(str(cfg)), tmp_path


def test_capture_of_a_rendered_tree_gives_back_its_configuration(rendered):
    orig, tmp = rendered
    out = tmp / "captured.yaml"
    pseudofs("capture", "--root", str(tmp / "tree"), "--cgroups", "-o", str(out))
    got = load_config(str(out))
    assert got.topology.present == orig.topology.present
    assert got.topology.possible == orig.topology.possible
    assert got.topology.online == orig.topology.online
    for a, b in zip(sorted(got.topology.nodes, key=lambda n: n.id),
                    sorted(orig.topology.nodes, key=lambda n: n.id)):
        assert (a.id, a.cpus, a.memory, a.distance) == (b.id, b.cpus, b.memory, b.distance)
    assert got.kernel.version == "6.1" and got.kernel.nr_cpus == 64
    options = dict(got.kernel.options)
    for name, value in orig.kernel.options:
        assert options[name] == value, name
    # the first chunk's geometry: the same dynamic area once rounded to pages
    assert (got.percpu.static_size, got.percpu.reserved_size, got.percpu.atom_size) == (
        100000, 8192, 2 << 20)
    assert got.percpu.first_chunk_dyn_size() == orig.percpu.first_chunk_dyn_size()
    assert got.root_subtree_control == ("memory",)
    assert [(c.path, c.subtree_control, dict(c.files)) for c in got.cgroups] == [
        ("/a", ("memory",), {"memory.max": str(64 << 20)}),
        ("/a/b", (), {"memory.high": str(16 << 20), "memory.oom.group": "1"}),
        ("/c", (), {})]


def test_capture_of_this_machine_mounts_with_its_keys(tmp_path, mounted):
    out = tmp_path / "me.yaml"
    pseudofs("capture", "-o", str(out))
    mnt = mounted(str(out))
    for name, sep in (("vmstat", " "), ("meminfo", ":")):
        ours = subprocess.run(["cat", os.path.join(mnt, "proc", name)], capture_output=True,
                              check=True, text=True).stdout
        with open("/proc/" + name) as f:
            host = [line.split(sep)[0] for line in f.read().splitlines()]
        assert [line.split(sep)[0] for line in ours.splitlines()
                if not line.startswith("nr_percpu ")] == host, name


def test_capture_refuses_nothing_it_writes_and_prints_to_stdout():
    text = pseudofs("capture").stdout
    assert text.startswith("# pseudofs capture\nkernel:\n")
    config = parse_config(text, "stdout")              # what it printed loads as it is
    assert config.kernel.version in VERSIONS


def test_capture_tells_swapaccount_on_5_15(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kernel:\n  version: '5.15'\n  config: {swapaccount: false}\n"
                   "cgroups:\n  - path: /a\n")
    pseudofs("render", str(tmp_path / "tree"), "-c", str(cfg))
    out = tmp_path / "got.yaml"
    pseudofs("capture", "--root", str(tmp_path / "tree"), "-o", str(out))
    assert dict(load_config(str(out)).kernel.options)["swapaccount"] is False
