"""Many processes at once through a daemon mount (`pseudofs mount`): 8 writers allocate and
free in their own cgroups while 4 readers read; afterwards the counters are exact, and no read
ever showed a state that did not exist (a torn or mixed snapshot).

Every node with CPUs has memory and every CPU is in a node, so the per-node `percpu` values of
`memory.numa_stat` sum exactly to `memory.stat`'s `percpu`. Each writer knows the sequence of
states of its own cgroup (the per-node vector after each of its commands); every vector a reader
saw in one read of that cgroup's `memory.numa_stat`, every `percpu` of its `memory.stat`, and its
share of one read of the `alloc` listing must be one of them.
"""

import json
import os
import random
import subprocess
import sys
import time


import pytest

from daemon_util import REPO

# `make test` runs 5 s, `make soak` 30 s; PSEUDOFS_STRESS_SECONDS overrides both
QUICK_SECONDS, SOAK_SECONDS = 5.0, 30.0
WRITERS, READERS = 8, 4
CONFIG = """\
kernel: {accounting: per-node}
topology:
  nodes:
    - {id: 0, cpus: "0-3", memory: 4G}
    - {id: 1, cpus: "4-5", memory: 4G}
    - {id: 2, cpus: "", memory: 2G}
cgroups:
%s""" % "".join("  - path: /w%d\n" % i for i in range(WRITERS))

PCT = "/sys/kernel/debug/percpu_test"
CG = "/sys/fs/cgroup"
SIZES = (8, 16, 64, 100, 256, 1000, 4096)


def _write(path, data: bytes):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _read(path, chunk=65536) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        out = b""
        while True:
            b = os.read(fd, chunk)
            if not b:
                return out
            out += b
    finally:
        os.close(fd)


def numa_percpu(text: bytes) -> list:
    for line in text.decode().splitlines():
        if line.startswith("percpu "):
            return [int(c.split("=")[1]) for c in line.split()[1:]]
    raise AssertionError("no percpu line")


def stat_value(text: bytes, key: str) -> int:
    for line in text.decode().splitlines():
        k, v = line.split()
        if k == key:
            return int(v)
    raise AssertionError("no %s" % key)


def pcpu_global(text: bytes) -> dict:
    out = {}
    for line in text.decode().split("Per Chunk Stats")[0].splitlines():
        k, _, v = line.partition(":")
        if v.strip():
            out[k.strip()] = int(v)
    return out


def listing_counts(text: bytes) -> dict:
    """{writer: total live objects} from one read of the alloc listing."""
    out = {}
    for line in text.decode().splitlines():
        f = dict(kv.split("=", 1) for kv in line.split())
        w = int(f["cgroup"][2:])
        out[w] = out.get(w, 0) + int(f["count"])
    return out


def writer(mnt, i, duration, out_path):
    """Allocate and free with this writer's own tags in /wI; report every state passed."""
    from pseudofs.config import parse_config
    from pseudofs.model.model import Model
    charges = Model(parse_config(CONFIG)).kernel.node_charges
    nodes = [0, 1, 2]
    rng = random.Random(1000 + i)
    live = {}                       # tag -> [size, count]
    vec = [0, 0, 0]
    states, counts = {(0, 0, 0)}, {0}
    n = {"writes": 0, "alloc_objects": 0, "free_objects": 0}
    seq = 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if live and (rng.random() < 0.45 or len(live) > 40):
            tag = rng.choice(sorted(live))
            size, count = live[tag]
            k = rng.randint(1, count)
            cmd = "tag=%s count=%d" % (tag, k) if k < count or rng.random() < 0.5 \
                else "tag=%s" % tag
            _write(mnt + PCT + "/free", cmd.encode())
            if k == count:
                del live[tag]
            else:
                live[tag][1] -= k
            sign, objs = -1, k
            n["free_objects"] += k
        else:
            size, count = rng.choice(SIZES), rng.randint(1, 20)
            seq += 1
            tag = "w%d-%d" % (i, seq)
            _write(mnt + PCT + "/alloc", b"size=%d count=%d cgroup=/w%d tag=%s"
                   % (size, count, i, tag.encode()))
            live[tag] = [size, count]
            sign, objs = 1, count
            n["alloc_objects"] += count
        per = charges(size)
        vec = [v + sign * objs * per.get(nid, 0) for v, nid in zip(vec, nodes)]
        states.add(tuple(vec))
        counts.add(sum(c for _, c in live.values()))
        n["writes"] += 1
    with open(out_path, "w") as f:
        json.dump(dict(n, states=sorted(states), counts=sorted(counts), final=vec,
                       live={t: v for t, v in live.items()}), f)


def reader(mnt, j, duration, out_path):
    """Read numa_stat/stat of the writers' cgroups, the alloc listing and percpu_stats (in odd
    read sizes), list and stat directories; report what was seen."""
    rng = random.Random(2000 + j)
    seen_vec = {i: set() for i in range(WRITERS)}
    seen_stat = {i: set() for i in range(WRITERS)}
    seen_count = {i: set() for i in range(WRITERS)}
    bad, reads = [], 0
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        i = rng.randrange(WRITERS)
        what = rng.randrange(6)
        if what == 0:
            seen_vec[i].add(tuple(numa_percpu(_read(mnt + CG + "/w%d/memory.numa_stat" % i))))
        elif what == 1:
            seen_stat[i].add(stat_value(_read(mnt + CG + "/w%d/memory.stat" % i), "percpu"))
        elif what == 2:
            c = listing_counts(_read(mnt + PCT + "/alloc", rng.choice((61, 100, 4096))))
            for w in range(WRITERS):
                seen_count[w].add(c.get(w, 0))
        elif what == 3:
            g = pcpu_global(_read(mnt + "/sys/kernel/debug/percpu_stats", rng.choice((13, 61))))
            if g["nr_alloc"] - g["nr_dealloc"] != g["nr_cur_alloc"] or \
                    g["nr_cur_alloc"] > g["nr_max_alloc"]:
                bad.append("percpu_stats inconsistent: %r" % g)
        elif what == 4:
            names = os.listdir(mnt + CG + "/w%d" % i)
            os.stat(mnt + CG + "/w%d/%s" % (i, rng.choice(names)))
        else:
            _read(mnt + rng.choice(("/proc/vmstat", "/proc/meminfo",
                                    "/sys/devices/system/node/node1/vmstat", CG + "/cgroup.stat")))
        reads += 1
    with open(out_path, "w") as f:
        json.dump({"reads": reads, "bad": bad,
                   "vec": {i: sorted(v) for i, v in seen_vec.items()},
                   "stat": {i: sorted(v) for i, v in seen_stat.items()},
                   "count": {i: sorted(v) for i, v in seen_count.items()}}, f)


def _spawn(role, mnt, k, out, duration):
    code = ("import sys; sys.path.insert(0, %r); import test_concurrency as t; t.%s(%r, %d, %r, %r)"
            % (os.path.dirname(os.path.abspath(__file__)), role, mnt, k, duration, out))
    return subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=REPO),
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("seconds", [
    QUICK_SECONDS, pytest.param(SOAK_SECONDS, marks=pytest.mark.soak)])
def test_writers_and_readers_at_once(daemons, tmp_path, seconds):
    duration = float(os.environ.get("PSEUDOFS_STRESS_SECONDS", seconds))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    mnt = str(tmp_path / "mnt")
    daemons.mount(mnt, "-c", cfg)
    start = pcpu_global(_read(mnt + "/sys/kernel/debug/percpu_stats"))
    procs = [_spawn("writer", mnt, i, str(tmp_path / ("w%d.json" % i)), duration)
             for i in range(WRITERS)]
    procs += [_spawn("reader", mnt, j, str(tmp_path / ("r%d.json" % j)), duration)
              for j in range(READERS)]
    for p in procs:
        _, err = p.communicate(timeout=duration + 120)
        assert p.returncode == 0, err
    ws = [json.load(open(tmp_path / ("w%d.json" % i))) for i in range(WRITERS)]
    rs = [json.load(open(tmp_path / ("r%d.json" % j))) for j in range(READERS)]

    # exact final counters
    for i, w in enumerate(ws):
        vec = numa_percpu(_read(mnt + CG + "/w%d/memory.numa_stat" % i))
        assert vec == w["final"], i
        assert stat_value(_read(mnt + CG + "/w%d/memory.stat" % i), "percpu") == sum(w["final"])
    root = numa_percpu(_read(mnt + CG + "/memory.numa_stat"))
    assert root == [sum(w["final"][n] for w in ws) for n in range(3)]
    listing = sorted(_read(mnt + PCT + "/alloc").decode().splitlines())
    want = sorted("tag=%s cgroup=/w%d size=%d align=8 count=%d account=1"
                  % (tag, i, size, count) for i, w in enumerate(ws)
                  for tag, (size, count) in w["live"].items())
    assert listing == want
    end = pcpu_global(_read(mnt + "/sys/kernel/debug/percpu_stats"))
    allocated = sum(w["alloc_objects"] for w in ws)
    freed = sum(w["free_objects"] for w in ws)
    assert end["nr_alloc"] == start["nr_alloc"] + allocated
    assert end["nr_dealloc"] == start["nr_dealloc"] + freed
    assert end["nr_cur_alloc"] == start["nr_cur_alloc"] + allocated - freed

    # no read showed a state that never existed
    problems = [b for r in rs for b in r["bad"]]
    for i, w in enumerate(ws):
        states = {tuple(s) for s in w["states"]}
        totals = {sum(s) for s in states}
        counts = set(w["counts"])
        for r in rs:
            problems += ["w%d numa_stat %r: no such state" % (i, v) for v in r["vec"][str(i)]
                         if tuple(v) not in states]
            problems += ["w%d memory.stat percpu %d: no such state" % (i, v)
                         for v in r["stat"][str(i)] if v not in totals]
            problems += ["w%d listed with %d objects: no such state" % (i, v)
                         for v in r["count"][str(i)] if v not in counts]
    assert not problems, problems[:10]
    writes = sum(w["writes"] for w in ws)
    reads = sum(r["reads"] for r in rs)
    observed = sum(len(r[k][str(i)]) for r in rs for k in ("vec", "stat", "count")
                   for i in range(WRITERS))
    assert writes > 100 and reads > 100
    print("concurrency: %d writers, %d readers, %.0f s: %d writes (%d objects allocated, %d "
          "freed), %d reads, %d distinct snapshots checked" % (
              WRITERS, READERS, duration, writes, allocated, freed, reads, observed))
