"""util-linux's lscpu with --sysroot at the mount: online CPUs, the NUMA layout of the model, and
the CPU topology (a package per node, a core per CPU: sysfs cpuN/topology/)."""

import json

import pytest

from tools.toolkit import CONFIG, NODE_CPUS_AFTER, ONLINE_AFTER, cpulist, need, run, scenario


def fields(entries, out=None):
    """lscpu -J: a list of {field, data[, children]}, flattened to {field: data}."""
    out = {} if out is None else out
    for e in entries:
        out[e["field"].rstrip(":")] = e.get("data")
        fields(e.get("children", []), out)
    return out


@pytest.mark.parametrize("mode", ["per-node", "memcg"])
def test_lscpu_sysroot(mounted, mode):
    (lscpu,) = need("util-linux", "lscpu")
    mnt = mounted(CONFIG % mode)
    scenario(mnt)
    f = fields(json.loads(run([lscpu, "--sysroot", mnt, "-J"]).stdout)["lscpu"])
    assert int(f["CPU(s)"]) == 8                      # the present CPUs: 0-5, 8-9
    assert cpulist(f["On-line CPU(s) list"]) == ONLINE_AFTER
    assert cpulist(f["Off-line CPU(s) list"]) == [5]
    assert int(f["NUMA node(s)"]) == len(NODE_CPUS_AFTER)
    for n, cpus in NODE_CPUS_AFTER.items():
        assert cpulist(f[f"NUMA node{n} CPU(s)"] or "") == cpus

    # the parsable form a script would use: one line per online CPU with its node
    out = run([lscpu, "--sysroot", mnt, "-p=CPU,NODE"]).stdout
    rows = [tuple(map(int, line.split(","))) for line in out.splitlines()
            if not line.startswith("#")]
    assert sorted(rows) == sorted((c, n) for n, cpus in NODE_CPUS_AFTER.items() for c in cpus)

    # the topology: one thread per core, one socket per node with online CPUs; lscpu numbers
    # sockets and cores itself, so compare the groupings, not the numbers
    assert int(f["Thread(s) per core"]) == 1
    assert int(f["Socket(s)"]) == sum(1 for cpus in NODE_CPUS_AFTER.values() if cpus)
    out = run([lscpu, "--sysroot", mnt, "-p=CPU,NODE,SOCKET,CORE"]).stdout
    rows = [tuple(map(int, line.split(","))) for line in out.splitlines()
            if not line.startswith("#")]
    socket_of_node = {node: socket for _, node, socket, _ in rows}
    assert len(set(socket_of_node.values())) == len(socket_of_node)
    assert all(socket == socket_of_node[node] for _, node, socket, _ in rows)
    assert len({core for *_, core in rows}) == len(rows)
