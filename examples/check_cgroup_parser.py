#!/usr/bin/env python3
"""Validate a cgroup-file parser against a live pseudofs mount, in both accounting modes.

The parser below is the kind of code a monitoring agent carries: flat keyed files (memory.stat,
memory.events), nested keyed files (memory.numa_stat: `key N0=v N1=v`) and single values
(memory.current, memory.max: a number or "max"). This script mounts pseudofs once per accounting
mode (`per-node`, the patch; `memcg`, upstream), allocates percpu memory in a cgroup, and checks
that the parser reads every file and returns the numbers the model predicts. Swap `parse_*` for
your own parser's functions to test it the same way.

    python3 examples/check_cgroup_parser.py     # needs `pseudofs` (PATH or this python) and FUSE

Exits 1 on any mismatch, naming it.
"""

import os
import shutil
import subprocess
import sys
import tempfile

MAX = None          # what the parser returns for "max"


# ---- the parser under test ----------------------------------------------------------------
def parse_flat_keyed(text):
    out = {}
    for line in text.splitlines():
        key, value = line.split(" ")
        out[key] = int(value)
    return out


def parse_nested_keyed(text):
    out = {}
    for line in text.splitlines():
        key, *pairs = line.split(" ")
        out[key] = {int(k[1:]): int(v) for k, v in (p.split("=") for p in pairs)}
    return out


def parse_single(text):
    text = text.strip()
    return MAX if text == "max" else int(text)


# ---- the live mount -----------------------------------------------------------------------
CONFIG = """
kernel: {accounting: %s}
topology:
  nodes:
    - {id: 0, cpus: "0-2", memory: 4G}
    - {id: 1, cpus: "3", memory: 4G}
    - {id: 2, cpus: "", memory: 4G}
  possible_cpus: "0-5"
cgroups:
  - path: /svc
    memory.max: 16M
"""
SIZE, COUNT, POSSIBLE = 64, 100, 6
NODE_CPUS = {0: 3, 1: 1, 2: 0}


def pseudofs(*args):
    exe = shutil.which("pseudofs")
    argv = [exe] if exe else [sys.executable, "-m", "pseudofs"]
    subprocess.run(argv + list(args), check=True)


def mult_frac(x, n, d):
    return (x // d) * n + ((x % d) * n) // d


def check_mode(mode, work, problems):
    def expect(what, got, want):
        ok = got == want
        print("%-4s %-8s %s = %r%s" % ("ok" if ok else "FAIL", mode, what, got,
                                       "" if ok else " (want %r)" % (want,)))
        if not ok:
            problems.append("%s: %s" % (mode, what))

    cfg = os.path.join(work, mode + ".yaml")
    mnt = os.path.join(work, "mnt-" + mode)
    os.mkdir(mnt)
    with open(cfg, "w") as f:
        f.write(CONFIG % mode)
    pseudofs("mount", mnt, "-c", cfg)
    try:
        svc = os.path.join(mnt, "sys/fs/cgroup/svc")

        def read(name):
            with open(os.path.join(svc, name)) as f:
                return f.read()

        with open(os.path.join(mnt, "sys/kernel/debug/percpu_test/alloc"), "w") as f:
            f.write("size=%d count=%d cgroup=/svc\n" % (SIZE, COUNT))

        # every line of every file parses
        stat = parse_flat_keyed(read("memory.stat"))
        numa = parse_nested_keyed(read("memory.numa_stat"))
        events = parse_flat_keyed(read("memory.events"))
        current = parse_single(read("memory.current"))
        expect("memory.max", parse_single(read("memory.max")), 16 << 20)
        expect("memory.high", parse_single(read("memory.high")), MAX)
        expect("memory.events has max and oom", {"max", "oom", "oom_kill"} <= set(events), True)
        expect("numa_stat nodes", sorted(numa["anon"]), [0, 1, 2])   # nodes with memory

        full = COUNT * (SIZE * POSSIBLE + 2 * SIZE)           # pcpu_obj_full_size, charged
        expect("memory.current is whole pages", current % 4096, 0)
        expect("memory.current covers the charge", current >= full, True)
        if mode == "per-node":
            per_node = {n: COUNT * (c * SIZE + mult_frac(2 * SIZE, c, POSSIBLE)) if c else 0
                        for n, c in NODE_CPUS.items()}
            expect("numa_stat percpu", numa.get("percpu"), per_node)
            expect("memory.stat percpu", stat["percpu"], sum(per_node.values()))
        else:
            expect("numa_stat has a percpu line", "percpu" in numa, False)
            expect("memory.stat percpu", stat["percpu"], full)
        # every per-node statistic adds up to its memory.stat twin (hugetlb is listed per node
        # only, as in the kernel without the memory_hugetlb_accounting mount option)
        for key, nodes in numa.items():
            if key in stat:
                expect("sum of numa_stat %s" % key, sum(nodes.values()), stat[key])
    finally:
        pseudofs("umount", mnt)


def main():
    problems = []
    work = tempfile.mkdtemp(prefix="pseudofs-parser-")
    try:
        for mode in ("per-node", "memcg"):
            check_mode(mode, work, problems)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("check_cgroup_parser.py: %d mismatch(es): %s" % (len(problems), "; ".join(problems)))
        return 1
    print("check_cgroup_parser.py: the parser agrees with the mount in both modes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
