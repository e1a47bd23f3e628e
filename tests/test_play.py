"""`pseudofs play` on real mounts (docs/scenarios.md): the same seed on two fresh mounts records
the same figures (wall time aside), the figures are what the mount shows, CPU events keep to the
mount's own CPUs, ENOMEM is counted, the mount is left as found; `pseudofs plot` writes a PNG
of a recorded run and of `pseudofs bench --json`; scenario errors name the key."""

import importlib.util
import json
import os
import struct
import subprocess
import sys

from daemon_util import REPO
from tools.toolkit import missing

EXAMPLES = os.path.join(REPO, "examples", "scenarios")
# every node with CPUs has memory; CPUs 0-2 / 3-4 and a memory-only node
CONFIG = """
kernel: {clock: live}
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 2G}
    - {id: 1, cpus: "3-4", memory: 2G}
    - {id: 2, cpus: "", memory: 1G}
"""
FAST = ["--speed", "1000"]


def pfs(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "pseudofs", *map(str, args)], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def read(path):
    with open(path) as f:
        return f.read()


def figures(path):
    rows = [json.loads(line) for line in read(path).splitlines()]
    for r in rows:
        assert isinstance(r.pop("t"), float)
    return rows


def test_play_same_seed_same_figures(mounted, tmp_path):
    sc = os.path.join(EXAMPLES, "cpu-offline.yaml")
    runs = []
    for name in ("a", "b"):
        mnt = mounted(CONFIG, name=name)
        before = sorted(os.listdir(mnt + "/sys/fs/cgroup"))
        rec = tmp_path / f"{name}.jsonl"
        pfs("play", mnt, sc, "--seed", 5, "--duration", 30, "--record", rec, *FAST)
        runs.append(figures(rec))
        # left as found: no container of the scenario, every CPU back
        assert not [d for d in os.listdir(mnt + "/sys/fs/cgroup/load") if d.startswith("svc-")]
        assert sorted(os.listdir(mnt + "/sys/fs/cgroup")) == sorted(before + ["load"])
        assert read(mnt + "/sys/devices/system/cpu/online") == "0-4\n"
    a, b = runs
    assert len(a) == 30 and [r["s"] for r in a] == list(range(30))
    assert a == b
    # the CPU event of second 20 happened, on a CPU the mount has, not cpu0 (cleanup brought
    # it back, as checked above)
    offline = [d for r in a for d in r["done"] if d.endswith("offline")]
    assert offline and all(d.split()[0] in {"cpu1", "cpu2", "cpu3", "cpu4"} for d in offline)
    assert a[19]["online"] == "0-4" and a[20]["online"] != "0-4"
    assert max(r["alive"] for r in a) > 0
    # a different seed plays differently
    mnt = mounted(CONFIG, name="c")
    rec = tmp_path / "c.jsonl"
    pfs("play", mnt, sc, "--seed", 6, "--duration", 15, "--record", rec, *FAST)
    assert figures(rec) != a[:15]


def test_play_records_what_the_mount_shows_and_counts_enomem(mounted, tmp_path):
    mnt = mounted(CONFIG)
    rec = tmp_path / "run.jsonl"
    r = pfs("play", mnt, os.path.join(EXAMPLES, "limit-hit.yaml"), "--duration", 35, "--keep",
            "--record", rec, *FAST)
    last = figures(rec)[-1]
    assert last["counts"].get("ENOMEM", 0) > 0 and "ENOMEM" in r.stdout
    assert last["counts"]["mkdir"] >= 1
    cg = mnt + "/sys/fs/cgroup"
    for path, f in last["cgroups"].items():
        stat = dict(line.split() for line in read(cg + path + "/memory.stat").splitlines())
        assert f["percpu_total"] == int(stat["percpu"]), path
        numa = {line.split()[0]: line.split()[1:]
                for line in read(cg + path + "/memory.numa_stat").splitlines()}
        assert f["percpu"] == {n[1:].split("=")[0]: int(n.split("=")[1])
                               for n in numa["percpu"]}, path
        if path != "/":
            assert f["current"] == int(read(cg + path + "/memory.current"))
    tight = [p for p in last["cgroups"] if p.startswith("/limits/tight-")]
    assert tight
    for p in tight:        # the limit: 2M since second 30 (and never more than 4M)
        assert read(cg + p + "/memory.max") == "2097152\n"
        assert last["cgroups"][p]["current"] <= 4 << 20
    for nid, n in last["nodes"].items():
        vm = dict(line.split() for line in read(
            mnt + f"/sys/devices/system/node/node{nid}/vmstat").splitlines())
        assert n["nr_percpu"] == int(vm["nr_percpu"])


def test_play_refuses_a_bad_scenario_naming_the_key(mounted, tmp_path):
    mnt = mounted(CONFIG)
    bad = tmp_path / "bad.yaml"
    bad.write_text("containers:\n  - {name: a, lifetime: {min: 5}}\nevents:\n"
                   "  - {at: 1, set: {container: b, memory.max: 1M}}\n")
    r = pfs("play", mnt, bad, check=False)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"{bad}, line 2: containers[0].lifetime: needs min and max")
    assert lines[1].startswith(f"{bad}, line 4: events[0].set.container: must name one of")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_plot_run_and_bench(mounted, tmp_path):
    if importlib.util.find_spec("matplotlib") is None:
        missing("matplotlib", "pseudofs[plot]")
    mnt = mounted(CONFIG)
    rec = tmp_path / "run.jsonl"
    pfs("play", mnt, os.path.join(EXAMPLES, "steady-churn.yaml"), "--duration", 30,
        "--record", rec, *FAST)
    pfs("plot", rec, "-o", tmp_path / "run.png")
    # 11 in wide at 100 dpi; two node panels (nodes 0 and 1 have CPUs) + total + nr_percpu
    assert png_size(tmp_path / "run.png") == (1100, 1040)
    pfs("bench", "--trials", 2, "--count", 200, "--json", tmp_path / "bench.json")
    doc = json.loads(read(tmp_path / "bench.json"))
    assert set(doc["times"]) == {"batched", "interleaved"} and \
        all(len(v) == 2 for t in doc["times"].values() for v in t.values())
    pfs("plot", tmp_path / "bench.json", "-o", tmp_path / "bench.png")
    assert png_size(tmp_path / "bench.png") == (800, 450)
    r = pfs("plot", tmp_path / "bad.json", "-o", tmp_path / "x.png", check=False)
    assert r.returncode == 2 and "No such file" in r.stderr


def test_plot_without_matplotlib_says_how_to_install(tmp_path):
    # a stand-in package that fails to import, first on the path
    (tmp_path / "matplotlib").mkdir()
    (tmp_path / "matplotlib" / "__init__.py").write_text("raise ImportError('absent')\n")
    r = subprocess.run([sys.executable, "-m", "pseudofs", "plot", "x.jsonl", "-o", "x.png"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=f"{tmp_path}:{REPO}"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "pseudofs plot needs matplotlib: pip install 'pseudofs[plot]' (or pip install matplotlib)"]


def test_play_on_one_cpu_skips_hotplug_and_plays_again(mounted, tmp_path):
    """Any topology: with cpu0 alone online there is no CPU to take offline; a second play on
    the same mount (the first one's state kept) takes new names and tags."""
    mnt = mounted('topology:\n  nodes:\n    - {id: 0, cpus: "0", memory: 1G}\n')
    sc = os.path.join(EXAMPLES, "cpu-offline.yaml")
    for run in (1, 2):
        r = pfs("play", mnt, sc, "--duration", 22, "--keep", *FAST)
        assert "cpu_offline_skipped 1" in r.stdout and "EEXIST" not in r.stdout, r.stdout
    assert read(mnt + "/sys/devices/system/cpu/online") == "0\n"
    tags = [line.split()[0] for line in read(mnt + "/sys/kernel/debug/percpu_test/alloc")
            .splitlines() if line.startswith("tag=p")]
    assert {t.split(".")[0] for t in tags} == {"tag=p1", "tag=p2"}
