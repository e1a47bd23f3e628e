"""numactl's `numastat -m`, `numastat` and `numactl --hardware` (libnuma), unmodified, through
`pseudofs exec`: they read /sys/devices/system/node/nodeN/{meminfo,numastat,cpumap,distance}."""

import re

import pytest

from tools.toolkit import (CONFIG, NODE_CPUS_AFTER, NODE_MEM_KB, kv, need, node_meminfo, nodes,
                           pseudofs_exec, read, scenario)


def table(out: str, first_col: str):
    """numastat's tables: {row label: [value per node..., total]} (the Token lines skipped)."""
    rows, header = {}, None
    for line in out.splitlines():
        words = line.split()
        if not words or line.startswith(("Token ", "Per-node ")) or set(line) <= {"-", " "}:
            continue
        if words[0] == first_col or (header is None and words[0].startswith("node")):
            header = words
            continue
        rows[words[0]] = [float(w) for w in words[1:]]
    return header, rows


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_numastat_m_per_node_memory(mounted, mode):
    need("numactl", "numastat")
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    out = pseudofs_exec(mnt, "numastat", "-m").stdout
    assert "Per-node system memory usage (in MBs):" in out
    header, rows = table(out, "Node")
    ids = nodes(mnt)
    assert " ".join(header) == " ".join(f"Node {n}" for n in ids) + " Total"
    per = {n: node_meminfo(mnt, n) for n in ids}
    # numastat prints MB with two decimals: within half a hundredth (and a hair for float ties)
    for key in ("MemTotal", "MemFree", "MemUsed", "Active", "Slab", "KernelStack"):
        want = [per[n][key] / 1024 for n in ids]
        got = rows[key]
        assert got[:-1] == pytest.approx(want, abs=0.0051), key
        assert got[-1] == pytest.approx(sum(want), abs=0.0051 * len(ids)), key
    assert rows["MemTotal"][:-1] == [NODE_MEM_KB[n] / 1024 for n in ids]
    assert rows["MemUsed"][0] > 0


def test_numastat_numa_counters(mounted):
    need("numactl", "numastat")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    header, rows = table(pseudofs_exec(mnt, "numastat").stdout, "node0")
    ids = nodes(mnt)
    assert header == [f"node{n}" for n in ids]
    files = {n: kv(read(mnt, f"sys/devices/system/node/node{n}/numastat")) for n in ids}
    assert list(rows) == list(files[0])
    for key, values in rows.items():
        assert values == [files[n][key] for n in ids], key


def test_numactl_hardware(mounted):
    need("numactl", "numactl")
    mnt = mounted(CONFIG % "per-node")
    scenario(mnt)
    out = pseudofs_exec(mnt, "numactl", "--hardware").stdout
    ids = nodes(mnt)
    assert f"available: {len(ids)} nodes (0-{ids[-1]})" in out.splitlines()
    for n in ids:
        mi = node_meminfo(mnt, n)
        cpus = re.search(rf"^node {n} cpus:(.*)$", out, re.M).group(1).split()
        assert [int(c) for c in cpus] == NODE_CPUS_AFTER[n]
        assert f"node {n} size: {mi['MemTotal'] // 1024} MB" in out
        assert f"node {n} free: {mi['MemFree'] // 1024} MB" in out
    lines = out.splitlines()
    at = lines.index("node distances:")
    assert lines[at + 1].split() == ["node"] + [str(n) for n in ids]
    for i, n in enumerate(ids):
        row = lines[at + 2 + i].split()
        assert row[0] == f"{n}:"
        assert row[1:] == read(mnt, f"sys/devices/system/node/node{n}/distance").split()
